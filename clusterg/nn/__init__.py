"""PyTorch modules (``nn.Module``) of the learned clustering methods, usable inside any PyG model."""
from .ada_gcn import AdaGCN, pair_loss
from .and_module import AND, and_loss
from .gcn_e import GCNE, candidate_batch
from .gcn_v import GCNV, confidence_targets
from .graph_conv import GCNVConv
from .quality import neighbour_quality

__all__ = ["GCNVConv", "GCNV", "confidence_targets", "GCNE", "candidate_batch", "AND", "and_loss",
           "neighbour_quality", "AdaGCN", "pair_loss"]
