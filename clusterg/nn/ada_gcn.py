"""Ada-NETS GCN encoder and its pair loss.

Two GraphSAGE layers with the 'gcn' aggregator (mean over the neighbours and the
node itself, then one linear map), as in Ada-NETS:

    h1 = ReLU(W1 mean_{j in N(i) + i} x_j)          (D -> hidden)
    h1 = h1 / ||h1||
    h2 = ReLU(W2 mean_{j in N(i) + i} h1_j)         (hidden -> hidden)
    z  = L2norm(PReLU(W3 h2))                        (hidden -> out)

Edge weights are not used (only the topology matters), so the layers are
``torch_geometric.nn.SAGEConv(aggr='mean', root_weight=False)`` on a graph whose
edge list includes one self loop per node. ``edge_index`` follows PyG's
``source_to_target`` convention: ``edge_index[0]`` are neighbours (sources),
``edge_index[1]`` the nodes they are aggregated into.

:func:`pair_loss` is Ada-NETS' ``ClusterLoss(losstype='allmax')``: the mean of
``relu(pos_margin - s_ij)`` over all same-label pairs plus
``relu(neg_margin + max s_ij)`` over the hardest different-label pair, on the
cosine similarities of the (L2-normalised) outputs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv

from .._validate import ClustergError

__all__ = ["AdaGCN", "pair_loss", "mean_aggregate"]


def mean_aggregate(x: Tensor, edge_index: Tensor, num_nodes: int | None = None) -> Tensor:
    """Mean of ``x`` over each target node's incoming sources (``edge_index`` as in PyG).

    Shapes: x (N, D), edge_index (2, E) -> (N, D). Nodes with no incoming edge get 0.
    Used to precompute the first layer's (parameter-free) aggregation once.
    """
    n = x.shape[0] if num_nodes is None else num_nodes
    out = torch.zeros(n, x.shape[1], dtype=x.dtype, device=x.device)
    out.index_add_(0, edge_index[1], x[edge_index[0]])
    deg = torch.bincount(edge_index[1], minlength=n).clamp_(min=1).to(x.dtype)
    return out / deg[:, None]


class AdaGCN(nn.Module):
    """GCN encoder of Ada-NETS.

    Args:
        in_dim: input feature dimension D.
        hidden: width of both SAGE layers (default 512, the paper's value).
        out_dim: output embedding dimension (default 512).

    ``forward(x, edge_index)``: x float (N, D), edge_index long (2, E) including
    self loops -> float (N, out_dim), rows of unit L2 norm.
    """

    def __init__(self, in_dim: int, hidden: int = 512, out_dim: int = 512):
        super().__init__()
        if in_dim < 1 or hidden < 1 or out_dim < 1:
            raise ClustergError(f"AdaGCN: dimensions must be positive, got {in_dim}, {hidden}, {out_dim}")
        self.in_dim, self.hidden, self.out_dim = int(in_dim), int(hidden), int(out_dim)
        self.conv1 = SAGEConv(in_dim, hidden, aggr="mean", root_weight=False)
        self.conv2 = SAGEConv(hidden, hidden, aggr="mean", root_weight=False)
        self.head = nn.Linear(hidden, out_dim)
        self.act = nn.PReLU(out_dim)

    @classmethod
    def from_pretrained(cls, checkpoint=None) -> "AdaGCN":
        """The packaged Ada-NETS encoder (128-d dlib faces), or the one in a ``clusterg train ada-nets`` checkpoint.

        ``model.config`` holds the pipeline's settings: ``graph`` (``"knn"``: the encoder runs on the
        symmetrised ``k_graph``-NN graph, self included, with self loops; ``"and"``: on the adaptive
        graph of :class:`~clusterg.nn.AND`), ``k``, ``lam``, ``k_final``, ``linkage``, ``threshold``, ...
        """
        from ._pretrained import load_blob, load_state
        blob = load_blob("ada-nets", checkpoint)
        cfg = dict(blob["config"])
        model = cls(int(blob["in_dim"]), hidden=int(cfg.get("gcn_hidden", 512)), out_dim=int(cfg.get("gcn_out", 512)))
        model = load_state(model, blob["state_dict"], "gcn.", "an Ada-NETS encoder")
        model.config = cfg
        return model

    def _check(self, x: Tensor, edge_index: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ClustergError(f"AdaGCN: expected x of shape (N, {self.in_dim}), got {tuple(x.shape)}")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ClustergError(f"AdaGCN: edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= x.shape[0]):
            raise ClustergError("AdaGCN: edge_index refers to nodes outside 0..N-1")

    def layer1(self, agg_x: Tensor) -> Tensor:
        """First layer from a precomputed neighbourhood mean ``agg_x`` (N, D) -> (N, hidden)."""
        return F.normalize(F.relu(self.conv1.lin_l(agg_x)), dim=1)

    def layer2_and_head(self, h1: tuple[Tensor, Tensor] | Tensor, edge_index: Tensor,
                        size: tuple[int, int] | None = None) -> Tensor:
        """Second layer (possibly bipartite: (h_src, h_dst)) and the output head."""
        h2 = F.relu(self.conv2(h1, edge_index, size=size))
        return F.normalize(self.act(self.head(h2)), dim=1)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        self._check(x, edge_index)
        h1 = self.layer1(mean_aggregate(x, edge_index))
        return self.layer2_and_head(h1, edge_index)

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, hidden={self.hidden}, out_dim={self.out_dim}"


def pair_loss(z: Tensor, labels: Tensor, pos_margin: float = 0.9, neg_margin: float = 1.0,
              groups: Tensor | None = None, neg_mode: str = "max") -> Tensor:
    """Ada-NETS 'allmax' pair loss on L2-normalised embeddings.

    Args:
        z: float (B, d) unit-norm embeddings.
        labels: long (B,) identities.
        pos_margin: same-label pairs are pushed above this cosine (0.9).
        neg_margin: the hardest negative is pushed towards ``-neg_margin`` (1.0
            as in the paper, i.e. ``relu(1 + max s_neg)``).
        groups: optional long (B,) batch ids; pairs are only formed inside a
            group (several seed neighbourhoods in one step) and the group losses
            are averaged.
        neg_mode: 'max' (the paper's 'allmax': only the hardest negative) or
            'all' (mean of ``relu(neg_margin + s)`` over all negatives, a denser
            signal for short trainings).

    Returns:
        scalar loss.
    """
    if z.dim() != 2 or labels.dim() != 1 or labels.shape[0] != z.shape[0]:
        raise ClustergError(f"pair_loss: z (B, d) and labels (B,) expected, got {tuple(z.shape)}, "
                            f"{tuple(labels.shape)}")
    if neg_mode not in ("max", "all"):
        raise ClustergError(f"pair_loss: neg_mode must be 'max' or 'all', got {neg_mode!r}")
    if groups is None:
        groups = torch.zeros_like(labels)
    losses = []
    # one small similarity matrix per group (cheaper than masking a B x B matrix)
    for g in torch.unique(groups):
        idx = torch.nonzero(groups == g).squeeze(1)
        zg, yg = z[idx], labels[idx]
        s = zg @ zg.t()
        same = yg[:, None] == yg[None, :]
        pos = same & ~torch.eye(len(idx), dtype=torch.bool, device=z.device)
        parts = []
        if pos.any():
            parts.append(F.relu(pos_margin - s[pos]).mean())
        if (~same).any():
            if neg_mode == "max":
                parts.append(F.relu(neg_margin + s[~same].max()))
            else:
                parts.append(F.relu(neg_margin + s[~same]).mean())
        if parts:
            losses.append(torch.stack(parts).sum())
    if not losses:
        return z.sum() * 0.0
    return torch.stack(losses).mean()
