"""Every bad input to figures.make and figures.study: one line naming the fix, exit 2, nothing written or lost."""
import json

import pytest

from figures.make import main as make_main
from figures.study import main as study_main
from training.cli.common import run_cli


def _run(main, argv, capsys):
    try:
        rc = run_cli(main, argv)
    except SystemExit as e:  # argparse errors exit from inside parse_args
        rc = e.code
    return (rc, *capsys.readouterr())


@pytest.fixture
def places(tmp_path):
    """An output folder holding an earlier result, and a runs folder with one run trained on the embedded subset."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "table6.md").write_text("earlier result\n")
    runs = tmp_path / "runs"
    (runs / "scratch-s0").mkdir(parents=True)
    (runs / "scratch-s0" / "config.json").write_text(json.dumps({"method": "scratch", "data_dir": None, "epochs": 3}))
    return out, runs


MAKE = "make"
STUDY = "study"
CASES = [
    # (command, flags, words the one error line must contain)
    (MAKE, ["--steps", "-2"], ["--steps", "positive"]),
    (MAKE, ["--steps", "0"], ["--steps", "positive"]),
    (MAKE, ["--steps", "2"], ["--steps", "at least 3"]),
    (MAKE, ["--steps", "nan"], ["--steps", "integer"]),
    (MAKE, ["--batch-size", "0"], ["--batch-size", "positive"]),
    (MAKE, ["--batch-size", "-4"], ["--batch-size", "positive"]),
    (MAKE, ["--runs", "0"], ["--runs", "positive"]),
    (MAKE, ["--max-images", "-5"], ["--max-images", "positive"]),
    (MAKE, ["--max-images", "0"], ["--max-images", "positive"]),
    (MAKE, ["--zmax", "nan"], ["--zmax", "finite"]),
    (MAKE, ["--zmax", "inf"], ["--zmax", "finite"]),
    (MAKE, ["--zmax", "-1"], ["--zmax", "positive"]),
    (MAKE, ["--zmax", "0"], ["--zmax", "positive"]),
    (MAKE, ["--batches", "0"], ["--batches", "positive"]),
    (MAKE, ["--sharpness-images", "0"], ["--sharpness-images", "positive"]),
    (MAKE, ["--milestone", "0"], ["--milestone", "positive"]),
    (MAKE, ["--surface-seed", "-1"], ["--surface-seed", ">= 0"]),
    (MAKE, ["--preset", "huge"], ["--preset", "invalid choice"]),
    (MAKE, ["--preset", "full", "--device", "cpu"], ["CPU", "--allow-cpu"]),
    (MAKE, ["--preset", "full", "--device", "cpu", "--allow-cpu"], ["embedded 5,000-image subset", "--preset demo"]),
    (STUDY, ["--seeds", "0"], ["--seeds", "positive"]),
    (STUDY, ["--seeds", "-1"], ["--seeds", "positive"]),
    (STUDY, ["--seeds", "nan"], ["--seeds", "integer"]),
    (STUDY, ["--device", "cpu"], ["--data-dir", "embedded 5,000-image subset"]),  # preset full, no real data
    (STUDY, ["--device", "cpu", "--data-dir", "DATA"], ["CPU", "--allow-cpu"]),
    (STUDY, ["--preset", "micro", "--teacher", "missing.pt"], ["--teacher", "not a file"]),
]


@pytest.mark.parametrize("command, flags, words", CASES, ids=[f"{c} {' '.join(f)}" for c, f, _ in CASES])
def test_bad_input_is_one_line_exit_2(places, capsys, command, flags, words, tmp_path):
    out, runs = places
    if command == MAKE:
        rc, stdout, err = _run(make_main, ["--table", "6", "--runs-dir", str(runs), "--out", str(out),
                                           "--preset", "micro", *flags], capsys)
    else:
        flags = [str(tmp_path) if f == "DATA" else f for f in flags]
        rc, stdout, err = _run(study_main, ["--out-dir", str(tmp_path / "study"), "--dry-run", *flags], capsys)
        assert not (tmp_path / "study").exists()
    assert rc == 2, err
    assert stdout == "" and len(err.strip().splitlines()) == 1 and err.startswith("error:"), err
    assert all(w in err for w in words), err
    assert (
        sorted(p.name for p in out.iterdir()) == ["table6.md"] and (out / "table6.md").read_text() == "earlier result\n"
    )
