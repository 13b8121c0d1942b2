"""Training loops and checkpoints for clusterg's learned models."""
from .checkpoint import load_checkpoint, packaged_weights, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint", "packaged_weights"]
