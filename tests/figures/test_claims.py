"""figures.claims: the intervals and verdicts against their formulas, the surface measures on surfaces of known shape,
the Tables 1-5 claims on run directories of known accuracies (and the paper's numbers recomputed from its printed
cells), the Tables 6-8 claims and report.html on the micro study, "not run" rows and refused inputs."""
import json
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from figures.augment.plan import MICRO as AUGMENT_MICRO
from figures.augment.plan import matrix, student_run, teacher_run
from figures.claims import main as claims_main
from figures.paper import AUGMENT_PUBLISHED, PRUNING_PUBLISHED, PRUNING_TABLES
from figures.pruning.plan import MICRO as PRUNE_MICRO
from figures.pruning.plan import schedule_cells, schedule_run
from figures.report.catalogue import CLAIMS, Inputs, _label_mismatch, _surplus, _synergy, evaluate_claims
from figures.report.inputs import study_json
from figures.report.measures import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_RUN,
    SUPPORTED,
    basin_width,
    combine,
    local_minima,
    paired,
    welch,
)
from figures.report.page import claims_and_report
from landscape.heights import loss_heights, resolve_zscale, scaled_heights
from landscape.record import Surface, load_surface
from landscape.sharpness import flatness
from training.cli.common import run_cli
from training.engine.schedules import SUMMARY
from training.errors import UserError
from training.store.rundir import milestone_name


def _surface(loss):
    n = loss.shape[0]
    coords = np.linspace(-1, 1, n)
    return Surface(coords, coords, loss, np.full_like(loss, 50.0), {})


def test_paired_interval_is_the_student_t_formula_and_verdicts_follow_it():
    d = [0.5, 1.0, 1.5, 0.8]
    e = paired(d, 0.95)
    half = stats.t.ppf(0.975, 3) * np.std(d, ddof=1) / 2
    assert (e.mean, e.low, e.high) == pytest.approx((np.mean(d), np.mean(d) - half, np.mean(d) + half))
    assert e.verdict(+1) == SUPPORTED and e.verdict(-1) == CONTRADICTED
    assert paired([1.0, -1.0, 0.5], 0.95).verdict(+1) == INCONCLUSIVE
    one = paired([2.0], 0.95)
    assert one.low is None and one.verdict(+1) == INCONCLUSIVE and "no interval" in one.text()
    w = welch([1, 2, 3], [0, 0.5, 1.5], 0.99)
    se = math.sqrt(np.var([1, 2, 3], ddof=1) / 3 + np.var([0, 0.5, 1.5], ddof=1) / 3)
    assert w.mean == pytest.approx(4 / 3) and w.high - w.mean > stats.norm.ppf(0.995) * se  # t is wider than z
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED and combine([SUPPORTED, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine([SUPPORTED, CONTRADICTED]) == CONTRADICTED and combine([NOT_RUN]) == NOT_RUN


def test_local_minima_and_basin_width_on_surfaces_of_known_shape():
    x = np.linspace(-1, 1, 21)
    X, Y = np.meshgrid(x, x, indexing="ij")
    bowl = X ** 2 + Y ** 2
    assert local_minima(_surface(bowl), math.inf) == 1
    dip = bowl - 0.6 * np.exp(-((X - 0.7) ** 2 + (Y - 0.7) ** 2) / 0.01)  # a second minimum at (0.7, 0.7)
    low = float(dip[17, 17])  # about 0.38 above the centre's 0
    assert 0.3 < low < 0.5
    assert local_minima(_surface(dip), math.inf) == local_minima(_surface(dip), 0.5) == 2
    assert local_minima(_surface(dip), 0.3) == 1  # the threshold leaves the second minimum out
    # basin below centre + 0.25 of the bowl: the grid points of x^2 + y^2 <= 0.25, a disc of diameter ~1
    points = int(np.count_nonzero(bowl <= 0.25))
    assert basin_width(_surface(bowl), 0.25) == pytest.approx(2 * math.sqrt(points * 0.1 * 0.1 / math.pi))
    assert basin_width(_surface(bowl), 0.25) == pytest.approx(1.0, abs=0.1)
    assert basin_width(_surface(2 * bowl), 0.25) < basin_width(_surface(bowl), 0.25)


def _write_prune_runs(root, spec, acc):
    """A schedule.json per (setting, schedule, kd, seed) with the accuracies acc(table, label, row, kd, seed)."""
    for table in (1, 2, 3):
        for paper, setting in zip(PRUNING_TABLES[table], spec.settings(table)):
            for schedule, kd in schedule_cells(spec):
                for seed in spec.seeds:
                    d = schedule_run(root, setting, schedule, kd, seed)
                    d.mkdir(parents=True)
                    ft_row = {"finetuned": "Finetuned / Pre-Distill", "pre-distill": "Finetuned / Pre-Distill",
                              "post-distill": "Post-Distill", "pre-post": "Pre-Post",
                              "self-distill": "Self-Distill"}[schedule]
                    col = "baseline" if schedule == "finetuned" else kd
                    init_col = "baseline" if schedule in ("finetuned", "post-distill") else kd
                    summary = {"rule": setting.rule, "pruning": {"requested": list(setting.remaining)},
                               "initial": {"test_acc": acc(table, paper.label, "Unpruned", init_col, seed),
                                           "dir": str(d / "initial")},
                               "finetune": {"test_acc": acc(table, paper.label, ft_row, col, seed), "dir": str(d)}}
                    (d / SUMMARY).write_text(json.dumps(summary))


def _acc_table():
    rng = np.random.default_rng(0)
    values = {}

    def acc(table, label, row, col, seed):
        return values.setdefault((table, label, row, col, seed), float(rng.uniform(60, 75)))

    return values, acc


def _inputs(root, prune=PRUNE_MICRO, augment=AUGMENT_MICRO):
    return Inputs(root, root / "figures", prune, augment)


def _by_id(rows):
    return {r["id"]: r for r in rows}


def test_pruning_claims_equal_the_hand_computed_paired_estimate(tmp_path):
    spec = replace(PRUNE_MICRO, seeds=(0, 1, 2))
    values, acc = _acc_table()
    _write_prune_runs(tmp_path, spec, acc)
    rows = _by_id(evaluate_claims(_inputs(tmp_path, spec)))
    settings = sorted({(t, s.label) for t in (1, 2, 3) for s in PRUNING_TABLES[t]})
    per_seed = [np.mean([np.mean([values[(*s, "Unpruned", kd, seed)] - values[(*s, "Unpruned", "baseline", seed)]
                                  for kd in ("label", "feature")]) for s in settings]) for seed in (0, 1, 2)]
    part = rows["kd-unpruned"]["parts"][0]
    assert part["values"] == pytest.approx(per_seed) and part["n"] == 3
    half = stats.t.ppf(0.975, 2) * np.std(per_seed, ddof=1) / math.sqrt(3)
    assert (part["low"], part["high"]) == pytest.approx((np.mean(per_seed) - half, np.mean(per_seed) + half))
    # the paper's number: the same formula on its printed cells gives the mean of its printed surplus cells
    printed = np.mean([PRUNING_PUBLISHED[(*s, "Surplus", kd)].value for s in settings for kd in ("label", "feature")])
    assert float(rows["surplus-positive"]["paper"]) == pytest.approx(printed, abs=0.01)
    surplus = [np.mean([_surplus(lambda r, c, s=s, seed=seed: np.array([values[(*s, r, c, seed)]]))[0]
                        for s in settings]) for seed in (0, 1, 2)]
    assert rows["surplus-positive"]["parts"][0]["values"] == pytest.approx(surplus)
    assert rows["surplus-positive"]["verdict"] in (SUPPORTED, CONTRADICTED, INCONCLUSIVE)
    assert rows["kd-more-diverse"]["verdict"] == NOT_RUN and "scores.json" in rows["kd-more-diverse"]["note"]


def test_missing_pruning_table_is_left_out_and_all_missing_is_not_run(tmp_path):
    spec = replace(PRUNE_MICRO, seeds=(0, 1))
    _, acc = _acc_table()
    _write_prune_runs(tmp_path, spec, acc)
    for p in (tmp_path / "prune").rglob(SUMMARY):
        if "weight-" in str(p):  # Table 3's runs gone
            p.unlink()
    row = _by_id(evaluate_claims(_inputs(tmp_path, spec)))["pre-beats-post"]
    assert row["verdict"] != NOT_RUN and "Tables 1, 2:" in row["note"]
    for p in (tmp_path / "prune").rglob(SUMMARY):
        p.unlink()
    assert _by_id(evaluate_claims(_inputs(tmp_path, spec)))["pre-beats-post"]["verdict"] == NOT_RUN


def test_mixed_pruning_runs_are_refused(tmp_path):
    spec = replace(PRUNE_MICRO, seeds=(0,))
    _, acc = _acc_table()
    _write_prune_runs(tmp_path, spec, acc)
    path = next(p for p in (tmp_path / "prune").rglob(SUMMARY) if "weight-" in str(p))
    doc = json.loads(path.read_text())
    doc["pruning"]["requested"] = [0.9]
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match="was pruned by"):
        evaluate_claims(_inputs(tmp_path, spec))


def _write_augment_runs(root, spec, acc):
    for table in (4, 5):
        for setting in spec.settings(table):
            for aug in (False, True):
                (teacher_run(root, setting, aug)).mkdir(parents=True, exist_ok=True)
            for kd, s_aug, t_aug in matrix(spec):
                for seed in spec.seeds:
                    d = student_run(root, setting, kd, s_aug, t_aug, seed)
                    if d.is_dir():
                        continue
                    d.mkdir(parents=True)
                    teacher = str(teacher_run(root, setting, t_aug) / milestone_name(spec.epochs)) if kd else None
                    (d / "config.json").write_text(json.dumps({"teacher": teacher}))
                    rows = [{"epoch": e, "test_acc": 10.0} for e in range(1, spec.epochs)]
                    rows.append({"epoch": spec.epochs, "test_acc": acc(setting.model, kd, s_aug, t_aug, seed)})
                    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
                    (d / milestone_name(spec.epochs)).write_bytes(b"")


def test_augment_claims_from_runs_and_the_papers_implied_synergy(tmp_path):
    spec = replace(AUGMENT_MICRO, seeds=(0, 1))
    rng = np.random.default_rng(1)
    values = {}

    def acc(model, kd, s_aug, t_aug, seed):
        return values.setdefault((kd, s_aug, t_aug, seed), float(rng.uniform(40, 60)))

    _write_augment_runs(tmp_path, spec, acc)  # one stand-in model: every block of Tables 4-5 reads the same runs
    rows = _by_id(evaluate_claims(_inputs(tmp_path, augment=spec)))
    mismatch = [(values[("label", True, False, s)] + values[("label", False, True, s)]) / 2
                - values[("label", True, True, s)] for s in (0, 1)]
    assert rows["cutmix-mismatch-hurts-label"]["parts"][0]["values"] == pytest.approx(mismatch)
    synergy = [np.mean([(values[(kd, True, True, s)] - values[(None, False, False, s)])
                        - ((values[(kd, False, False, s)] - values[(None, False, False, s)])
                           + (values[(None, True, False, s)] - values[(None, False, False, s)]))
                        for kd in ("label", "feature")]) for s in (0, 1)]
    assert rows["augment-synergy"]["parts"][0]["values"] == pytest.approx(synergy)
    # the paper's synergy: its printed cells through the same formula, as figures.augment_tables computes it
    implied = []
    for cells in AUGMENT_PUBLISHED.values():
        implied.append(float(_synergy(lambda c, cells=cells: np.array([cells[c].value]))[0]))
    assert float(rows["augment-synergy"]["paper"]) == pytest.approx(np.mean(implied), abs=0.005)
    t5 = [c for (t, _), c in AUGMENT_PUBLISHED.items() if t == 5]
    assert float(rows["cutmix-mismatch-hurts-label"]["paper"]) == pytest.approx(
        np.mean([_label_mismatch(lambda c, cells=cells: np.array([cells[c].value]))[0] for cells in t5]), abs=0.005)
    assert float(rows["cutmix-mismatch-hurts-label"]["paper"]) < 0  # the paper's own cells support it


def test_every_claim_has_a_source_a_quantity_and_a_direction():
    keys = [c.key for c in CLAIMS]
    assert len(keys) == len(set(keys)) >= 16
    assert all(c.source and c.quantity and c.sign in (-1, 1) for c in CLAIMS)


@pytest.fixture(scope="module")
def claimed(micro, tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    paths = claims_and_report(micro, micro / "figures", out, "micro")
    return out, paths


def test_micro_study_claims_read_the_scores_and_the_surfaces(micro, claimed):
    out, paths = claimed
    assert [p.name for p in paths] == ["claims.md", "claims.json", "report.html"]
    rows = _by_id(json.loads((out / "claims.json").read_text())["rows"])
    assert rows["kd-unpruned"]["verdict"] == NOT_RUN and rows["augment-synergy"]["verdict"] == NOT_RUN
    scores = {}
    for c in json.loads((micro / "figures" / "scores.json").read_text())["checkpoints"]:
        scores.setdefault(c["method"], []).append(c["score"])
    part = rows["kd-more-diverse"]["parts"][0]
    assert part["mean"] == pytest.approx(np.mean(scores["label_kd"]) - np.mean(scores["scratch"]))
    assert part["level"] == 0.99 and part["low"] is not None
    # one surface seed: the difference of the two surfaces' rise, n = 1, no interval, inconclusive
    rise = rows["kd-flatter-rise"]
    assert rise["verdict"] == INCONCLUSIVE and rise["n"] == 1
    epochs = sorted(int(m) for m in re.findall(r"e(\d+)\)", rise["estimate"]))
    first = epochs[0]
    surf = {m: load_surface(micro / "surfaces" / f"{m}-s0_e{first:03d}.npz") for m in ("label_kd", "scratch")}
    expected = flatness(surf["label_kd"])["rise_within_1_cells"] - flatness(surf["scratch"])["rise_within_1_cells"]
    assert rise["parts"][0]["mean"] == pytest.approx(expected)
    md = (out / "claims.md").read_text()
    assert md.startswith("TOY SIZE") and "| not run |" in md


def test_report_page_holds_every_table_and_surface_with_the_vtk_heights(micro, claimed):
    out, _ = claimed
    page = (out / "report.html").read_text()
    assert 'id="toy"' in page and "plotly" in page
    assert not re.search(r"<script[^>]*\ssrc=", page)  # offline: plotly.js inline, no script fetched
    for stem in ("table6", "table7_hessian", "table8_flatness"):
        assert f'id="{stem}"' in page
    divs = re.findall(r'id="(surface-[^"]+)"', page)
    surfaces = sorted((micro / "surfaces").glob("*.npz"))
    assert len(set(divs)) == len(surfaces) == 15
    # the heights in the page are those of the VTK file: (ln(loss + 0.1)) x the automatic z scale
    s = load_surface(micro / "surfaces" / "scratch-s0_e001.npz")
    z = scaled_heights(loss_heights(s.loss, None, True), resolve_zscale(s, None, True, None))
    import plotly.io

    from figures.report.page import surface_figure

    fig = surface_figure(micro / "figures" / "table8_vtk" / "scratch_e001.vts", "t")
    assert np.asarray(fig.data[0].z) == pytest.approx(z.T)  # plotly rows are y, the surface's rows are x
    assert "loss" in fig.data[0].text[0][0] and plotly.io.to_json(fig)


def test_cli_writes_the_files_and_refuses_bad_input(micro, tmp_path, capsys):
    assert run_cli(claims_main, ["--runs-dir", str(micro), "--out", str(tmp_path), "--preset", "micro",
                                 "--quiet"]) == 0
    assert "| claim |" in capsys.readouterr().out and (tmp_path / "report.html").is_file()
    assert run_cli(claims_main, ["--runs-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert run_cli(claims_main, ["--runs-dir", str(micro), "--out", str(tmp_path), "--level", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("error:") for e in err)


def test_a_damaged_study_file_is_one_error_naming_the_command_that_writes_it(tmp_path):
    good, truncated, foreign = tmp_path / "good.json", tmp_path / "truncated.json", tmp_path / "foreign.json"
    good.write_text('{"checkpoints": []}')
    truncated.write_text('{"checkpoi')
    foreign.write_bytes(b"\x80\x04\x95 not json")
    assert study_json(good, "python -m figures.study --tables 6") == {"checkpoints": []}
    for path in (truncated, foreign, tmp_path / "missing.json"):
        with pytest.raises(UserError, match=rf"{path.name} cannot be read .*re-run python -m figures.study --tables 6"):
            study_json(path, "python -m figures.study --tables 6")
