"""Training loops for clusterg's learned models (their inference lives in :mod:`clusterg.models`)."""
from ..models.checkpoint import load_checkpoint, packaged_weights, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint", "packaged_weights"]
