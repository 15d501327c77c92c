"""Before it starts, the study prints the device-hours each table costs, from the throughput
probe of each network; a one-table study's ETA is that table's hours."""
import re

import figures.study as study
from figures.probe import Rates


def _hours(err: str) -> dict[int, float]:
    line = next(ln for ln in err.splitlines() if ln.startswith("plan: Table"))
    assert "estimated from the throughput probe of each network on this cpu device" in line
    return {int(t): float(h) for t, h in re.findall(r"Table (\d) ([\d.]+) CPU-hours", line)}


def _eta_hours(err: str) -> float:
    eta = re.search(r"ETA (?:(\d+)h(\d+)m|(\d+)m(\d+)s)", err)
    h, m, mm, s = (int(g) if g else 0 for g in eta.groups())
    return h + m / 60 + mm / 60 + s / 3600


def test_each_table_costed_before_the_study_starts(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(study, "probe", lambda model, width, device: Rates(5.0, 50.0))
    flags = ["--preset", "micro", "--out-dir", str(tmp_path), "--device", "cpu", "--dry-run"]
    assert study.main([*flags, "--tables", "3", "5", "6"]) == 0
    hours = _hours(capfd.readouterr().err)
    assert sorted(hours) == [3, 5, 6] and all(h > 0 for h in hours.values())
    assert study.main([*flags, "--tables", "3"]) == 0
    err = capfd.readouterr().err
    assert _hours(err) == {3: hours[3]}
    assert abs(_eta_hours(err) - hours[3]) < 0.051  # the one-table plan's ETA, to the printed decimal


def test_stage_modules_build_the_jobs_and_one_helper_the_table_jobs(tmp_path):
    """figures.analysis.stage builds the Tables 6-8 jobs from explicit arguments; every table job is a table_job."""
    import torch

    from figures.analysis.plan import PRESETS
    from figures.analysis.stage import surface_study_jobs
    from figures.jobs import table_job

    jobs = surface_study_jobs(
        PRESETS["micro"], {6, 8}, tmp_path, tmp_path / "figs", Rates(5.0, 50.0), torch.device("cpu")
    )
    assert [(j.stage, j.name) for j in jobs if j.stage in ("score", "tables")] == [
        ("score", "table6"),
        ("tables", "table8"),
    ]
    assert {j.stage for j in jobs} == {"teacher", "train", "surface", "score", "tables"} and not any(
        j.done() for j in jobs
    )
    out = tmp_path / "table4.md"
    job = table_job(tmp_path, 4, 2.0, lambda: [out] if out.write_text("x") else [])
    assert (job.stage, job.name, job.cost, job.done()) == ("tables", "table4", 2.0, False)
    job.run()
    assert job.done() and (tmp_path / "table4.manifest.json").is_file()
