"""The architectures a run can train: ``MODELS`` maps each name to its ModelSpec, the builder and its family's facts
(registry.py); one module per family (resnet.py, slimming.py, pyramidnet.py); wrap.py unwraps DDP / torch.compile."""
from training.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
