"""orthokd diversity: NAS-without-training Jacobian-correlation scores (Table 6) and pairwise model diversity.
Public API: ``diversity.naswot(model, images)`` (diversity.naswot) and ``diversity.score_models({name: [model,
...]}, images)`` (diversity.api), for any classifier."""
import importlib


def __getattr__(name: str):
    if name in ("score_models", "ScoreTable"):
        return getattr(importlib.import_module("diversity.api"), name)
    if name == "naswot":  # a callable module: diversity.naswot(model, images) and its functions
        return importlib.import_module("diversity.naswot")
    raise AttributeError(f"module 'diversity' has no attribute {name!r}")
