"""figures.study refuses a wrong --dataset, --data-dir or --teacher before it prints its plan or probes anything, and
keeps each network's throughput probe in OUT_DIR/probe.json, so a restart does not probe again."""
import datetime
import json
import pickle

import pytest

import figures.study as study
from figures.probe import PROBE_CACHE, Rates
from training.cli.common import run_cli


@pytest.fixture
def probes(monkeypatch):
    """The networks probed (the probe itself is replaced by fixed rates)."""
    seen = []

    def fake_probe(model, width, device):
        seen.append(model)
        return Rates(1000.0, 4000.0)

    monkeypatch.setattr(study, "probe", fake_probe)
    return seen


def _study(argv, capsys):
    try:
        rc = run_cli(study.main, [str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.err


@pytest.mark.parametrize("extra,needle", [
    (["--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["--dataset", "npz", "--data-dir", "{d}/no-such-folder"], "no-such-folder"),
    (["--tables", "1", "--dataset", "cifar100", "--data-dir", "{d}"], "CIFAR100 not found"),
    (["--teacher", "{d}/foreign.pt"], "foreign.pt"),
])
def test_bad_names_and_paths_are_refused_before_the_plan_and_the_probe(extra, needle, tmp_path, capsys, probes):
    (tmp_path / "foreign.pt").write_bytes(pickle.dumps(datetime.date(2020, 1, 1)))
    out = tmp_path / "runs"
    rc, err = _study(["--preset", "micro", "--dry-run", "--device", "cpu", "--out-dir", out,
                      *(a.format(d=tmp_path) for a in extra)], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
    assert probes == [] and not out.exists()


def test_the_probe_is_cached_per_network_and_reused_on_restart(tmp_path, capsys, probes):
    argv = ["--preset", "micro", "--tables", "1", "6", "--dry-run", "--device", "cpu", "--out-dir", tmp_path]
    assert _study(argv, capsys)[0] == 0
    first = sorted(probes)
    assert len(first) >= 2 and len(set(first)) == len(first)  # each network once
    cache = json.loads((tmp_path / PROBE_CACHE).read_text())
    assert sorted(k.split(" width ")[0] for k in cache) == first
    assert all(k.endswith(" on cpu") for k in cache)
    assert _study(argv, capsys)[0] == 0
    assert sorted(probes) == first  # the restart probed nothing
    (tmp_path / PROBE_CACHE).write_text("{damaged")
    assert _study(argv, capsys)[0] == 0 and len(probes) == 2 * len(first)  # a damaged cache is measured again
