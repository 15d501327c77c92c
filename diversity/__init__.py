"""orthokd diversity: NAS-without-training Jacobian-correlation scores (Table 6) and pairwise model diversity.
Public API: ``diversity.naswot(model, images)`` (diversity.naswot) and ``diversity.score_models({name: [model,
...]}, images) -> ScoreTable`` (diversity.api), for any classifier."""
from __future__ import annotations

from typing import TYPE_CHECKING

from orthokd import check_packages, export_faces

check_packages("training")

if TYPE_CHECKING:
    from diversity.api import ScoreTable, score_models
    from diversity.naswot import naswot

__all__ = ["ScoreTable", "naswot", "score_models"]

export_faces(__name__, {"score_models": "diversity.api", "ScoreTable": "diversity.api", "naswot": "diversity.naswot"})
