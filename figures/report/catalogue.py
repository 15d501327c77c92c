"""The paper's claims, each tested on the study's runs: one row per claim with its source, the quantity measured,
our estimate with a confidence interval, the paper's number where it printed one, and a verdict (supported,
contradicted, inconclusive at the stated level, or not run). Definitions and weaknesses: docs/reference.md,
"Claims and their measures".

Tables 1-3 and 4-5: per seed s, the quantity q_s is a mean over the table's settings (and over label and feature KD)
of differences between cells of the same seed, so the interval is the paired Student-t one over seeds
(figures.report.measures.paired); the paper's number is the same quantity computed from its printed cells over the
same settings. Table 6: Welch intervals between methods (its models are trained independently). Tables 7-8: per LR
step, differences between methods of the same seed's surfaces, paired over the seeds whose surfaces exist (the study
computes one seed: then n = 1 and no interval, so inconclusive).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from figures.augment.plan import AugmentStudySpec
from figures.paper import AUGMENT_PUBLISHED, PRUNING_PUBLISHED, TABLE6, TABLE6_ROWS
from figures.pruning.plan import PruneStudySpec
from figures.report.inputs import (
    AugmentBlocks,
    Missing,
    PruneCells,
    SurfacePoint,
    augment_blocks,
    naswot_scores,
    prune_cells,
    surfaces,
)
from figures.report.measures import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_RUN,
    SUPPORTED,
    Estimate,
    basin_width,
    combine,
    local_minima,
    paired,
    welch,
)
from figures.tables import to_markdown
from landscape.sharpness import flatness
from training.store.files import atomic_write_text, strict_json

LEVEL = 0.95  # confidence of every interval, except where a claim states its own (Table 6: 99%)
BASIN_DELTA = 0.5  # basin width: loss at most centre + this
MINIMA_DELTA = 0.5  # local minima counted at most this far above the centre ...
MINIMA_SENSITIVITY = (0.1, 0.5, 1.0, math.inf)  # ... and at these levels in the note
KDS = ("label", "feature")
SCHEDULES = ("Finetuned / Pre-Distill", "Post-Distill", "Pre-Post", "Self-Distill")


@dataclass(frozen=True)
class Inputs:
    """Where the claims read from: the study's run directories, its tables folder, and the presets of its studies."""

    runs_dir: Path
    tables_dir: Path
    prune: PruneStudySpec
    augment: AugmentStudySpec
    cache: dict = field(default_factory=dict, compare=False)  # what the claims share is read once

    def read(self, key: Any, reader: Callable[[], Any]) -> Any:
        """reader() the first time ``key`` is asked for, its value (or its Missing) afterwards."""
        if key not in self.cache:
            try:
                self.cache[key] = reader()
            except Missing as e:
                self.cache[key] = e
        value = self.cache[key]
        if isinstance(value, Missing):
            raise value
        return value


@dataclass(frozen=True)
class Claim:
    key: str
    source: str  # where the paper makes it
    claim: str  # as the paper makes it, refined to something measurable
    quantity: str  # what is measured; the claim says it is > 0 (sign +1) or < 0 (sign -1)
    sign: int
    evaluate: Callable[[Inputs, float], tuple[list[tuple[str, Estimate]], str, str]]  # (parts, paper, note)


def _row(claim: Claim, inputs: Inputs, level: float) -> dict:
    try:
        parts, paper, note = claim.evaluate(inputs, level)
    except Missing as e:
        return {"id": claim.key, "source": claim.source, "claim": claim.claim, "quantity": claim.quantity,
                "estimate": "", "n": None, "paper": "", "verdict": NOT_RUN, "note": str(e), "parts": []}
    verdict = combine([e.verdict(claim.sign) for _, e in parts])
    text = "; ".join(f"{label}: {e.text()}" if label else e.text() for label, e in parts)
    levels = sorted({e.level for _, e in parts if e.low is not None})  # a single value has no interval to name
    level_text = f" ({'/'.join(f'{100 * x:g}' for x in levels)}% t interval)" if levels else ""
    return {"id": claim.key, "source": claim.source, "claim": claim.claim, "quantity": claim.quantity,
            "estimate": text + level_text,
            "n": min(e.n for _, e in parts), "paper": paper, "verdict": verdict, "note": note,
            "parts": [{"label": label, **e.to_json(), "verdict": e.verdict(claim.sign)} for label, e in parts]}


# Tables 1-3 ------------------------------------------------------------------------------------------------------

Getter = Callable[[str, str], np.ndarray]  # (row, column) of one setting -> values per seed


def _prune_inputs(inputs: Inputs) -> PruneCells:
    return inputs.read("prune", lambda: _prune_tables(inputs))


def _prune_tables(inputs: Inputs) -> PruneCells:
    cells: PruneCells = {}
    errors = []
    for table in (1, 2, 3):
        try:
            cells.update(prune_cells(inputs.prune, inputs.runs_dir, table))
        except Missing as e:
            errors.append(str(e))
    if not cells:
        raise Missing("; ".join(errors))
    return cells


def _mean_kd(diff: Callable[[str], np.ndarray]) -> np.ndarray:
    """diff(kd) averaged over label and feature KD, per seed."""
    return np.mean([diff(kd) for kd in KDS], axis=0)


def _prune_claim(per_setting: Callable[[Getter], np.ndarray]) -> Callable:
    """A Tables 1-3 claim: q_s = the mean over every setting that ran of per_setting(cells of seed s)."""

    def evaluate(inputs: Inputs, level: float) -> tuple[list[tuple[str, Estimate]], str, str]:
        ours = _prune_inputs(inputs)
        settings = sorted({k[:2] for k in ours})
        q = [per_setting(lambda row, col, s=s: ours[(*s, row, col)]) for s in settings]
        paper = [float(per_setting(lambda row, col, s=s: np.array([PRUNING_PUBLISHED[(*s, row, col)].value]))[0])
                 for s in settings]
        tables = sorted({t for t, _ in settings})
        mean_q = [float(np.mean(v)) for v in q]
        note = (f"Tables {', '.join(map(str, tables))}: {sum(v > 0 for v in mean_q)} of {len(settings)} settings > 0 "
                f"(paper: {sum(v > 0 for v in paper)} of {len(settings)})")
        return [("", paired(np.mean(q, axis=0), level))], f"{np.mean(paper):+.2f}", note

    return evaluate


def _kd_unpruned(get: Getter) -> np.ndarray:
    return _mean_kd(lambda kd: get("Unpruned", kd) - get("Unpruned", "baseline"))


def _every_stage(get: Getter) -> np.ndarray:
    return np.min([_mean_kd(lambda kd, r=r: get(r, kd) - get("Finetuned / Pre-Distill", "baseline"))
                   for r in SCHEDULES], axis=0)


def _pre_vs_post(get: Getter) -> np.ndarray:
    return _mean_kd(lambda kd: get("Finetuned / Pre-Distill", kd) - get("Post-Distill", kd))


def _pre_post_beats_both(get: Getter) -> np.ndarray:
    return _mean_kd(lambda kd: get("Pre-Post", kd) - np.maximum(get("Finetuned / Pre-Distill", kd),
                                                                      get("Post-Distill", kd)))


def _self_best(get: Getter) -> np.ndarray:
    return _mean_kd(lambda kd: get("Self-Distill", kd) - np.max([get(r, kd) for r in SCHEDULES[:3]], axis=0))


def _surplus(get: Getter) -> np.ndarray:
    """(Self-Distill - Finetuned) - (Unpruned KD - Unpruned Scratch), training.surplus's formula."""
    return _mean_kd(lambda kd: (get("Self-Distill", kd) - get("Finetuned / Pre-Distill", "baseline"))
                    - (get("Unpruned", kd) - get("Unpruned", "baseline")))


# Tables 4-5 ------------------------------------------------------------------------------------------------------

Block = Callable[[tuple[str | None, bool, bool]], np.ndarray]  # cell (kd, student_aug, teacher_aug) -> per seed


def _augment_claim(tables: Sequence[int], per_block: Callable[[Block], np.ndarray]) -> Callable:
    """A Tables 4-5 claim: q_s = the mean over the networks of ``tables`` that ran of per_block(cells of seed s)."""

    def evaluate(inputs: Inputs, level: float) -> tuple[list[tuple[str, Estimate]], str, str]:
        ours: AugmentBlocks = {}
        errors = []
        for t in tables:
            try:
                ours.update(inputs.read(("augment", t),
                                        lambda t=t: augment_blocks(inputs.augment, inputs.runs_dir, t)))
            except Missing as e:
                errors.append(str(e))
        if not ours:
            raise Missing("; ".join(errors))
        q = [per_block(lambda c, b=b: ours[b][c]) for b in ours]
        paper = [float(per_block(lambda c, b=b: np.array([AUGMENT_PUBLISHED[b][c].value]))[0]) for b in ours]
        note = "; ".join(f"Table {t}, {n}: {np.mean(v):+.2f} (paper {p:+.2f})" for (t, n), v, p in zip(ours, q, paper))
        return [("", paired(np.mean(q, axis=0), level))], f"{np.mean(paper):+.2f}", note

    return evaluate


def _synergy(cell: Block) -> np.ndarray:
    """(KD with the augmentation at both - Scratch) - [(KD alone - Scratch) + (augmentation alone - Scratch)]."""
    scratch, aug = cell((None, False, False)), cell((None, True, False))
    return np.mean([(cell((kd, True, True)) - scratch) - ((cell((kd, False, False)) - scratch) + (aug - scratch))
                    for kd in KDS], axis=0)


def _label_beats_feature_both(cell: Block) -> np.ndarray:
    return cell(("label", True, True)) - cell(("feature", True, True))


def _label_mismatch(cell: Block) -> np.ndarray:
    """Mean of label KD with the augmentation at one side only (teacher or student) - label KD with it at both."""
    return (cell(("label", True, False)) + cell(("label", False, True))) / 2 - cell(("label", True, True))


# Table 6 ---------------------------------------------------------------------------------------------------------

TABLE6_ORDER = tuple(TABLE6_ROWS)  # scratch < cutmix < label_kd < feature_kd < cutmix_feature_kd


def _paper_diff(a: str, b: str) -> float:
    return TABLE6[a]["mean"].value - TABLE6[b]["mean"].value


def _scores(inputs: Inputs, methods: Sequence[str]) -> dict[str, list[float]]:
    got = inputs.read("scores", lambda: naswot_scores(inputs.runs_dir, inputs.tables_dir))
    absent = [m for m in methods if m not in got]
    if absent:
        raise Missing(f"Table 6: no scored run of {', '.join(absent)}")
    return got


def _kd_scores_higher(inputs: Inputs, level: float) -> tuple[list[tuple[str, Estimate]], str, str]:
    s = _scores(inputs, ("scratch", "label_kd", "feature_kd"))
    parts = [(f"{TABLE6_ROWS[m]} - Scratch", welch(s[m], s["scratch"], 0.99)) for m in ("label_kd", "feature_kd")]
    paper = ", ".join(f"{_paper_diff(m, 'scratch'):+.2f}" for m in ("label_kd", "feature_kd"))
    return parts, paper, "the paper's own reading: 99% intervals (2.576 x std / sqrt(5)) disjoint"


def _score_order(inputs: Inputs, level: float) -> tuple[list[tuple[str, Estimate]], str, str]:
    s = _scores(inputs, TABLE6_ORDER)
    pairs = list(zip(TABLE6_ORDER[1:], TABLE6_ORDER[:-1]))
    parts = [(f"{TABLE6_ROWS[a]} - {TABLE6_ROWS[b]}", welch(s[a], s[b], level)) for a, b in pairs]
    return parts, ", ".join(f"{_paper_diff(a, b):+.2f}" for a, b in pairs), "each adjacent pair of the order"


# Tables 7-8 ------------------------------------------------------------------------------------------------------

Measure = Callable[[SurfacePoint], float]


def _hessian(key: str) -> Measure:
    def measure(p: SurfacePoint) -> float:
        if p.hessian is None:
            raise Missing("Tables 7-8: a surface has no Hessian numbers beside it (python -m figures.study --tables 7 "
                          "8)")
        return float(p.hessian[key])

    return measure


def _rise(p: SurfacePoint) -> float:
    return float(flatness(p.surface, cells=(1,), deltas=())["rise_within_1_cells"])


def _surfaces(inputs: Inputs) -> dict[tuple[str, int, int], SurfacePoint]:
    return inputs.read("surfaces", lambda: surfaces(inputs.runs_dir))


def _paired_surfaces(inputs: Inputs, a: str, b: str, measure: Measure, level: float,
                     epochs: Callable[[list[int]], list[int]] = lambda e: e) -> list[tuple[str, Estimate]]:
    """Per LR step (milestone epoch), measure(a) - measure(b) paired over the seeds whose surfaces of both exist."""
    got = _surfaces(inputs)
    steps = sorted({e for m, _, e in got if m in (a, b)})
    parts = []
    for i, e in enumerate(steps):
        if e not in epochs(steps):
            continue
        seeds = sorted(s for m, s, ep in got if m == a and ep == e and (b, s, e) in got)
        if not seeds:
            raise Missing(f"Tables 7-8: no seed with surfaces of both {a} and {b} at epoch {e}")
        parts.append((f"step {i + 1} (e{e})", paired([measure(got[(a, s, e)]) - measure(got[(b, s, e)])
                                                      for s in seeds], level)))
    if not parts:
        raise Missing(f"Tables 7-8: no surface of {a} or {b}")
    return parts


def _flatter(a: str, b: str, measure: Measure) -> Callable:
    def evaluate(inputs: Inputs, level: float) -> tuple[list[tuple[str, Estimate]], str, str]:
        return _paired_surfaces(inputs, a, b, measure, level), "pictures only", ""

    return evaluate


def _cutmix_wider(inputs: Inputs, level: float) -> tuple[list[tuple[str, Estimate]], str, str]:
    parts = _paired_surfaces(inputs, "cutmix", "scratch", lambda p: basin_width(p.surface, BASIN_DELTA), level)
    got = _surfaces(inputs)
    sens = "; ".join(f"delta {d:g}: " + ", ".join(
        f"e{e} {basin_width(got[('cutmix', s, e)].surface, d) - basin_width(got[('scratch', s, e)].surface, d):+.2f}"
        for m, s, e in sorted(got) if m == "cutmix" and ("scratch", s, e) in got) for d in (0.1, 1.0))
    return parts, "pictures only", f"sensitivity (cutmix - scratch per surface): {sens}"


def _fewer_minima(inputs: Inputs, level: float) -> tuple[list[tuple[str, Estimate]], str, str]:
    parts = _paired_surfaces(inputs, "scratch", "label_kd", lambda p: local_minima(p.surface, MINIMA_DELTA), level,
                             epochs=lambda e: e[-1:])
    got = _surfaces(inputs)
    counts = "; ".join(f"{m} s{s} e{e}: " + "/".join(str(local_minima(got[(m, s, e)].surface, d))
                                                     for d in MINIMA_SENSITIVITY)
                       for m, s, e in sorted(got) if m in ("scratch", "label_kd"))
    levels = "/".join(f"{d:g}" for d in MINIMA_SENSITIVITY)
    return parts, "pictures only", f"local minima below centre + {levels}: {counts}"


# The claims ------------------------------------------------------------------------------------------------------

T13 = "Tables 1-3, Section 4 (pruning)"
T45 = "Tables 4-5, Section 5 (augmentation)"
CLAIMS: tuple[Claim, ...] = (
    Claim("kd-unpruned", T13, "KD improves the unpruned network",
          "Unpruned KD - Unpruned Scratch (points), mean over settings and label/feature KD", +1,
          _prune_claim(_kd_unpruned)),
    Claim("kd-every-stage", T13, "KD helps at every stage (Pre-Distill, Post-Distill, Pre-Post, Self-Distill)",
          "min over the four schedules of (schedule - Finetuned), per setting, mean over settings", +1,
          _prune_claim(_every_stage)),
    Claim("pre-beats-post", T13, "Pre-Distill usually beats Post-Distill", "Pre-Distill - Post-Distill", +1,
          _prune_claim(_pre_vs_post)),
    Claim("pre-post-beats-both", T13, "Pre-Post beats both Pre-Distill and Post-Distill",
          "Pre-Post - max(Pre-Distill, Post-Distill)", +1, _prune_claim(_pre_post_beats_both)),
    Claim("self-distill-best", T13, "Self-Distill is the best schedule in most settings",
          "Self-Distill - max(Pre-Distill, Post-Distill, Pre-Post)", +1, _prune_claim(_self_best)),
    Claim("surplus-positive", T13, "The surplus is positive in nearly all settings",
          "(Self-Distill - Finetuned) - (Unpruned KD - Unpruned Scratch)", +1, _prune_claim(_surplus)),
    Claim("augment-synergy", T45, "KD with the augmentation at teacher and student beats the sum of the separate gains",
          "synergy = (KD, both - Scratch) - [(KD alone - Scratch) + (augmentation alone - Scratch)], mean over "
          "networks and label/feature KD", +1, _augment_claim((4, 5), _synergy)),
    Claim("label-beats-feature-autoaugment", "Table 4, Section 5",
          "Label KD beats feature KD with AutoAugment at teacher and student",
          "Label KD - Feature KD, AutoAugment at both", +1, _augment_claim((4,), _label_beats_feature_both)),
    Claim("cutmix-mismatch-hurts-label", "Table 5, Section 5",
          "Label KD suffers when teacher and student differ in CutMix",
          "mean(label KD, CutMix at teacher only / student only) - label KD, CutMix at both", -1,
          _augment_claim((5,), _label_mismatch)),
    Claim("kd-more-diverse", "Table 6, Section 6 (diversity)",
          "Label and Feature KD score higher than Scratch at 99%",
          "NASWOT score difference of means (Welch, 99%)", +1, _kd_scores_higher),
    Claim("diversity-order", "Table 6, Section 6 (diversity)",
          "Scores rise in the order Scratch < CutMix < Label < Feature < Feat+CutMix",
          "each adjacent difference of mean NASWOT scores (Welch)", +1, _score_order),
    *(Claim(f"kd-flatter-{key}", "Table 7, Section 6 (loss landscape)",
            "KD minima are flatter than Scratch at each LR step", f"{label}: label KD - Scratch, per LR step", -1,
            _flatter("label_kd", "scratch", measure))
      for key, label, measure in (("lambda-max", "top Hessian eigenvalue", _hessian("lambda_max")),
                                  ("trace", "Hessian trace (Hutch++)", _hessian("hessian_trace")),
                                  ("rise", "surface rise within 1 grid cell", _rise))),
    Claim("cutmix-wider", "Table 7, Section 6 (loss landscape)", "CutMix's basin is wider than Scratch's",
          f"basin width (equivalent diameter of the basin below centre + {BASIN_DELTA:g}): CutMix - Scratch, per LR "
          "step", +1, _cutmix_wider),
    Claim("scratch-several-minima", "Table 7, Section 6 (loss landscape)",
          "Scratch has several local minima around the main one, KD converges to one",
          f"local minima below centre + {MINIMA_DELTA:g}: Scratch - label KD, final LR step", +1, _fewer_minima),
    *(Claim(f"feature-smoother-{key}", "Table 8, Appendix C", "Feature KD is smoother than label KD",
            f"{label}: feature KD - label KD, per LR step", -1, _flatter("feature_kd", "label_kd", measure))
      for key, label, measure in (("lambda-max", "top Hessian eigenvalue", _hessian("lambda_max")),
                                  ("rise", "surface rise within 1 grid cell", _rise))),
)

COLUMNS = ["claim", "source", "quantity", "estimate", "n", "paper", "verdict"]
TOY_NOTE = ("TOY SIZE: these runs are a small stand-in for the paper's (few epochs, tiny networks, a CIFAR-10 "
            "subset, few seeds). With one or two seeds most verdicts are inconclusive: the verdicts say nothing about "
            "the paper's claims.")


def evaluate_claims(inputs: Inputs, level: float = LEVEL) -> list[dict]:
    """One row per claim of CLAIMS (a claim whose inputs are missing: verdict "not run", the reason in its note)."""
    return [_row(c, inputs, level) for c in CLAIMS]


def write_claims(out: Path, rows: Sequence[dict], level: float, toy: bool) -> list[Path]:
    """claims.md (the notice on toy runs, the table, the notes) and claims.json (every number); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)}
    head = (f"Claims of Park et al. 2020 tested on these runs: {', '.join(f'{n} {v}' for v, n in counts.items())}. "
            f"Estimate: our mean with its {100 * level:g}% Student-t interval over seeds (paired where the runs pair "
            "by seed); verdict: supported / contradicted when the whole interval lies on the claimed / the other side "
            "of 0, inconclusive otherwise; definitions in docs/reference.md (Claims and their measures).")
    notes = "".join(f"\n- {r['id']}: {r['note']}" for r in rows if r["note"])
    md = f"{TOY_NOTE + chr(10) + chr(10) if toy else ''}{head}\n\n{to_markdown(rows, COLUMNS)}\nNotes:{notes}\n"
    paths = [out / "claims.md", out / "claims.json"]
    atomic_write_text(paths[0], md)
    atomic_write_text(paths[1], strict_json({"level": level, "toy": toy, "summary": head, "rows": list(rows)},
                                            indent=2) + "\n")
    return paths
