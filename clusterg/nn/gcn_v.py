"""GCN-V: vertex confidence estimation (Yang et al., "Learning to Cluster Faces via
Confidence and Connectivity Estimation", CVPR 2020).

One :class:`~clusterg.nn.graph_conv.GCNVConv` on the kNN graph, then
``Linear -> PReLU -> Linear`` to one confidence per node. The hidden features
feed the second linkage pass and GCN-E.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._validate import ClustergError, check_labels
from .graph_conv import GCNVConv, sparse_adj

__all__ = ["GCNV", "confidence_targets"]


class GCNV(torch.nn.Module):
    """Confidence regressor.

    Args:
        in_dim: feature size D.
        hidden: width of the graph layer and head (default 512).
        dropout: input dropout of the graph layer (default 0).

    ``forward(x (N, D), edge_index, edge_weight=None, x_agg=None)`` returns
    ``(confidence (N,), hidden (N, hidden))``. A dense ``edge_index`` (2, E) is turned into one sparse
    ``adj_t`` (:func:`~clusterg.nn.graph_conv.sparse_adj`) and aggregated with a sparse product, the code
    :class:`~clusterg.cluster.GCNVClusterer` runs, so both give bit-identical confidences.
    """

    def __init__(self, in_dim: int, hidden: int = 512, dropout: float = 0.0):
        super().__init__()
        if int(in_dim) < 1 or int(hidden) < 1:
            raise ClustergError(f"GCNV: in_dim and hidden must be >= 1, got {in_dim}, {hidden}")
        self.in_dim, self.hidden = int(in_dim), int(hidden)
        self.conv = GCNVConv(self.in_dim, self.hidden, dropout=dropout)
        self.head = torch.nn.Sequential(torch.nn.Linear(self.hidden, self.hidden),
                                        torch.nn.PReLU(self.hidden),
                                        torch.nn.Linear(self.hidden, 1))

    @classmethod
    def from_pretrained(cls, checkpoint=None) -> "GCNV":
        """The packaged GCN-V (128-d dlib faces), or the one in ``checkpoint``, in eval mode.

        ``model.config`` holds the settings it was trained and tuned with (``k``, ``th_sim``,
        ``tau_0``, ``tau``, ``passes``, ...); :meth:`graph_transform` builds its input graph.
        """
        from ._pretrained import load_blob, load_state
        blob = load_blob("gcn-v", checkpoint)
        model = load_state(cls(int(blob["in_dim"]), hidden=int(blob["config"]["hidden"])), blob["state_dict"], "",
                           "a GCN-V")
        model.config = dict(blob["config"])
        return model

    def graph_transform(self, **kwargs):
        """A :class:`~clusterg.transforms.GCNGraph` with the ``k`` and ``th_sim`` this model was trained with."""
        from ..transforms import GCNGraph
        cfg = getattr(self, "config", {})
        return GCNGraph(k=int(cfg.get("k", 20)), th_sim=float(cfg.get("th_sim", 0.0)), **kwargs)

    def forward(self, x: Tensor, edge_index=None, edge_weight: Tensor | None = None,
                x_agg: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if x.dim() != 2 or x.size(1) != self.in_dim:
            raise ClustergError(f"GCNV: expected x of shape (N, {self.in_dim}), got {tuple(x.shape)}")
        if x_agg is None and isinstance(edge_index, Tensor) and edge_index.layout == torch.strided:
            edge_index, edge_weight = sparse_adj(edge_index, edge_weight, x.size(0)), None
        h = self.conv(x, edge_index, edge_weight, x_agg=x_agg)
        return self.head(h).view(-1), h


def confidence_targets(nbrs, sims, labels) -> np.ndarray:
    """Ground-truth confidence ``s_nbr`` (learn-to-cluster ``conf_metric='s_nbr'``).

    ``c_i = Σ_{j in kNN(i)} (+sim_ij if y_j == y_i else -sim_ij)`` over the whole kNN
    row (self included, adding +1; ``-1`` pads skipped), then ``c /= max |c|``.

    Args:
        nbrs: int (N, k) neighbour ids; sims: float (N, k) cosine similarities;
        labels: int (N,) identities.
    Returns:
        float32 (N,) in [-1, 1].
    """
    from ..knn.io import check_knn
    nbrs, sims = check_knn(nbrs, sims, allow_pad=True)
    y = check_labels(labels, n=nbrs.shape[0])
    valid = nbrs >= 0
    same = y[np.where(valid, nbrs, 0)] == y[:, None]
    signed = np.where(same, sims, -sims) * valid
    conf = signed.sum(axis=1, dtype=np.float64)
    m = np.abs(conf).max() if conf.size else 0.0
    if m > 0:
        conf = conf / m
    return conf.astype(np.float32)
