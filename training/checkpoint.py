"""The former home of the checkpoint schema, kept because README documented ``training.checkpoint.load_model``:
the schema now lives in ``training.store.checkpoint``."""
from training.store.checkpoint import load_checkpoint, load_model, model_from_checkpoint, save_checkpoint

__all__ = ["load_checkpoint", "load_model", "model_from_checkpoint", "save_checkpoint"]
