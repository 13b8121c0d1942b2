"""The learned methods' model bundles: checkpoint format, packaged weights and inference.

One module per method (:mod:`~clusterg.models.ada_nets`, :mod:`~clusterg.models.gcn_v`,
:mod:`~clusterg.models.gcn_e`) rebuilds its networks from a checkpoint
(:mod:`~clusterg.models.checkpoint`) and runs them; the clusterers in :mod:`clusterg.cluster`
and the trainers in :mod:`clusterg.train` both use these.
"""
from .checkpoint import load_checkpoint, packaged_weights, save_checkpoint

__all__ = ["save_checkpoint", "load_checkpoint", "packaged_weights"]
