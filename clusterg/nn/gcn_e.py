"""GCN-E: edge connectivity estimation on candidate sets (Yang et al., CVPR 2020).

For a node ``i`` the candidate set holds its kNN neighbours whose GCN-V
confidence is higher than ``i``'s, nearest first. Each candidate set is a small
graph: node features ``x_j - x_i`` (the direction from ``i``), adjacency the
global symmetric kNN adjacency restricted to the set and row-normalised again.
GCN-E (four :class:`~clusterg.nn.graph_conv.GCNVConv` layers and a two-way head)
scores, for every candidate ``j``, whether ``j`` shares ``i``'s identity; ``i``
then links to its best-scored candidate. Many candidate sets are batched into
one PyG :class:`~torch_geometric.data.Batch` (block-diagonal adjacency).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import Batch

from .._validate import ClustergError
from .graph_conv import GCNVConv, sparse_adj

__all__ = ["GCNE", "candidate_batch"]


class GCNE(torch.nn.Module):
    """Candidate-edge classifier.

    Args:
        in_dim: feature size of the candidate features (GCN-V hidden size or raw D).
        dims: widths of the graph layers (default ``(512, 512, 256, 256)``, the paper's).
        dropout: input dropout of each layer (default 0).

    ``forward(x (M, in_dim), edge_index (2, E) [source, target], edge_weight (E,))``
    returns logits (M, 2); column 1 is "same identity as the centre".
    ``edge_index`` may also be a sparse (M, M) ``adj_t``.
    """

    def __init__(self, in_dim: int, dims: Sequence[int] = (512, 512, 256, 256), dropout: float = 0.0):
        super().__init__()
        dims = [int(d) for d in dims]
        if int(in_dim) < 1 or not dims or min(dims) < 1:
            raise ClustergError(f"GCNE: in_dim and dims must be positive, got {in_dim}, {dims}")
        self.in_dim, self.dims = int(in_dim), tuple(dims)
        chans = [self.in_dim, *dims]
        self.convs = torch.nn.ModuleList(GCNVConv(a, b, dropout=dropout) for a, b in zip(chans[:-1], chans[1:]))
        self.head = torch.nn.Sequential(torch.nn.Linear(dims[-1], dims[-1]), torch.nn.PReLU(dims[-1]),
                                        torch.nn.Linear(dims[-1], 2))

    @classmethod
    def from_pretrained(cls, checkpoint=None, with_gcn_v: bool = False):
        """The packaged GCN-E (128-d dlib faces), or the one in a ``clusterg train gcn-e`` checkpoint.

        ``model.config`` holds its settings (``k``, ``feature``, ``center_dot``, ``tau``, ``rule``, ...;
        ``config["gcn_v"]`` those of the GCN-V it was trained on). With ``with_gcn_v`` returns
        ``(gcn_v, gcn_e)``: the checkpoint embeds the GCN-V whose features GCN-E reads.
        """
        from ._pretrained import load_blob, load_state
        from .gcn_v import GCNV
        blob = load_blob("gcn-e", checkpoint)
        cfg, in_dim = dict(blob["config"]), int(blob["in_dim"])
        hidden = int(cfg["gcn_v"]["hidden"])
        e_in = {"raw": in_dim, "gcn": hidden, "raw+gcn": in_dim + hidden}[cfg["feature"]] \
            + int(bool(cfg.get("center_dot", False)))
        model = load_state(cls(e_in, dims=cfg["dims"]), blob["state_dict"], "e.", "a GCN-E")
        model.config = cfg
        if not with_gcn_v:
            return model
        v = load_state(GCNV(in_dim, hidden=hidden), blob["state_dict"], "v.", "a GCN-V")
        v.config = dict(cfg["gcn_v"])
        return v, model

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.in_dim:
            raise ClustergError(f"GCNE: expected x of shape (M, {self.in_dim}), got {tuple(x.shape)}")
        adj = edge_index
        if isinstance(edge_index, Tensor) and not edge_index.is_sparse and edge_index.layout == torch.strided:
            # one sparse matrix for all layers: no (E, D) message tensors
            adj = sparse_adj(edge_index, edge_weight, x.size(0))
        h = x
        for conv in self.convs:
            h = conv(h, adj)
        return self.head(h)


def candidate_batch(feat: np.ndarray | Tensor, adj: sp.csr_matrix, centers: np.ndarray, cand: np.ndarray,
                    mask: np.ndarray, labels: np.ndarray | None = None, center_dot: bool = False) -> Batch:
    """Batch the candidate sets of ``centers`` into one PyG ``Batch``.

    Args:
        feat: (N, D) node features.
        adj: (N, N) symmetric kNN adjacency with self loops (``knn_adjacency``), CSR.
        centers: (B,) node ids; each must have at least one candidate.
        cand, mask: (N, k) from :func:`clusterg.linkage.tree_deduction.candidate_sets`.
        labels: optional (N,) identities; sets ``y`` = 1 where a candidate shares its centre's.
        center_dot: append the dot product ``feat[j] . feat[centre]`` (the edge's similarity
            for L2-normalised features) as one more column (default False).
    Returns:
        ``Batch`` with ``x`` (M, D) = ``feat[j] - feat[centre]`` ((M, D + 1) with ``center_dot``),
        ``edge_index`` (2, E) [source, target],
        ``edge_weight`` (E,) (each subgraph's restricted adjacency, row-normalised), ``batch`` (M,),
        ``ptr`` (B+1,), ``node_id`` (M,) global ids, ``center`` (B,) and, with labels, ``y`` (M,).
    """
    centers = np.asarray(centers, dtype=np.int64)
    n = adj.shape[0]
    sizes = mask[centers].sum(axis=1)
    if (sizes < 1).any():
        raise ClustergError("candidate_batch: every centre needs at least one candidate")
    sub_mask = mask[centers]
    g = cand[centers][sub_mask]                       # (M,) global ids, block by block, nearest first
    blk = np.repeat(np.arange(len(centers)), sizes)  # subgraph of each row
    m = len(g)
    rows = adj[g]                                     # (M, N) rows of the global adjacency
    r = np.repeat(np.arange(m), np.diff(rows.indptr))
    key = blk[r] * n + rows.indices                   # (subgraph, neighbour) of each nonzero
    own = blk * n + g                                 # (subgraph, member): unique inside a subgraph
    order = np.argsort(own, kind="stable")
    pos = np.searchsorted(own[order], key)
    pos = np.minimum(pos, m - 1)
    hit = own[order][pos] == key
    tgt, src, w = r[hit], order[pos[hit]], rows.data[hit].astype(np.float64)
    rs = np.bincount(tgt, weights=w, minlength=m)
    w = w / np.where(rs[tgt] > 0, rs[tgt], 1.0)
    f = feat if isinstance(feat, Tensor) else torch.from_numpy(np.asarray(feat, dtype=np.float32))
    gi = torch.from_numpy(g)
    fc = f[torch.from_numpy(centers[blk])]
    x = f[gi] - fc
    if center_dot:
        # the similarity is the strongest single cue; a difference vector only encodes it nonlinearly
        x = torch.cat([x, (f[gi] * fc).sum(dim=1, keepdim=True)], dim=1)
    out = Batch(x=x, edge_index=torch.from_numpy(np.vstack([src, tgt]).astype(np.int64)),
                edge_weight=torch.from_numpy(w.astype(np.float32)), batch=torch.from_numpy(blk),
                ptr=torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)),
                node_id=gi, center=torch.from_numpy(centers))
    if labels is not None:
        labels = np.asarray(labels)
        out.y = torch.from_numpy((labels[g] == labels[centers[blk]]).astype(np.int64))
    return out
