"""Ada-NETS GCN encoder and its pair loss.

Two GraphSAGE layers with the 'gcn' aggregator (mean over the neighbours and the
node itself, then one linear map), as in Ada-NETS:

    h1 = ReLU(W1 mean_{j in N(i) + i} x_j)          (D -> hidden)
    h1 = h1 / ||h1||
    h2 = ReLU(W2 mean_{j in N(i) + i} h1_j)         (hidden -> hidden)
    z  = L2norm(PReLU(W3 h2))                        (hidden -> out)

Edge weights are not used (only the topology matters), so the layers are
``torch_geometric.nn.SAGEConv(aggr='mean', root_weight=False)`` on a graph whose
edge list includes one self loop per node. ``forward`` computes the two means as
sparse products with one mean matrix (:func:`mean_adj_t`) and :meth:`AdaGCN.encode`,
the code :func:`clusterg.models.ada_nets.embed` (the clusterer) runs too, so the
module and :class:`~clusterg.cluster.AdaNetsClusterer` give bit-identical embeddings. ``edge_index`` follows PyG's
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

__all__ = ["AdaGCN", "pair_loss", "mean_aggregate", "mean_adj_t"]


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


def mean_adj_t(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Sparse CSR ``adj_t`` (N, N) of the mean over each target's incoming sources.

    ``adj_t[i, j] = m_ij / deg(i)`` with ``m_ij`` the number of edges ``j -> i`` and ``deg(i)`` the
    number of edges into ``i`` (so ``spmm(adj_t, x)`` equals :func:`mean_aggregate`). Entries are
    coalesced (sorted by target, then source) exactly as :func:`~clusterg.nn.graph_conv.sparse_adj`
    stores a row-normalised adjacency.
    """
    from torch_geometric.utils import coalesce
    from .graph_conv import sparse_adj
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ClustergError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    ones = torch.ones(edge_index.size(1), device=edge_index.device)
    ei, cnt = coalesce(edge_index, ones, int(num_nodes), reduce="sum")
    deg = torch.zeros(int(num_nodes), device=edge_index.device).index_add_(0, ei[1], cnt)
    inv = 1.0 / deg.clamp(min=1.0)
    return sparse_adj(ei, cnt * inv[ei[1]], int(num_nodes))


class AdaGCN(nn.Module):
    """GCN encoder of Ada-NETS.

    Args:
        in_dim: input feature dimension D.
        hidden: width of both SAGE layers (default 512, the paper's value).
        out_dim: output embedding dimension (default 512).

    ``forward(x, edge_index)``: x float (N, D), edge_index long (2, E) including
    self loops (or a sparse mean matrix ``adj_t`` (N, N), see :func:`mean_adj_t`) -> float
    (N, out_dim), rows of unit L2 norm.
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

    def encode(self, x: Tensor, adj_t: Tensor, chunk_size: int = 65536) -> Tensor:
        """Both layers and the head on a sparse mean matrix ``adj_t`` (N, N): x (N, D) -> (N, out_dim).

        The per-node maps run in chunks of ``chunk_size`` nodes (bounded temporaries on large graphs).
        This is the one implementation of the encoder's inference: ``forward`` and the clusterer use it.
        """
        from torch_geometric.utils import spmm
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ClustergError(f"AdaGCN: expected x of shape (N, {self.in_dim}), got {tuple(x.shape)}")
        if tuple(adj_t.shape) != (x.shape[0], x.shape[0]):
            raise ClustergError(f"AdaGCN: adj_t must have shape ({x.shape[0]}, {x.shape[0]}), got {tuple(adj_t.shape)}")
        if isinstance(chunk_size, bool) or int(chunk_size) < 1:
            raise ClustergError(f"AdaGCN: chunk_size must be a positive integer, got {chunk_size!r}")
        n, c = x.shape[0], int(chunk_size)
        if n == 0:
            return x.new_zeros(0, self.out_dim)
        agg = spmm(adj_t, x, reduce="sum")
        h1 = torch.cat([self.layer1(agg[s:s + c]) for s in range(0, n, c)])
        agg2 = spmm(adj_t, h1, reduce="sum")
        return torch.cat([F.normalize(self.act(self.head(F.relu(self.conv2.lin_l(agg2[s:s + c])))), dim=1)
                          for s in range(0, n, c)])

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if isinstance(edge_index, Tensor) and edge_index.layout != torch.strided:  # a ready adj_t
            return self.encode(x, edge_index)
        self._check(x, edge_index)
        return self.encode(x, mean_adj_t(edge_index, x.shape[0]))

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
