"""The kNN graph GCN-V and GCN-E run on (learn-to-cluster's adjacency).

From a kNN list ``(nbrs, sims)`` (cosine similarities, self in column 0):
drop the self entries and edges with ``sim < th_sim``, symmetrise by the
elementwise maximum ``A = max(A, Aᵀ)``, add self loops ``A + I`` and
row-normalise ``Â = D⁻¹ A``. Row ``i`` of ``Â`` is a weighted mean over ``i``'s
neighbourhood, so in PyG terms the entry ``Â[i, j]`` is the weight of the edge
``j -> i`` (``edge_index[:, e] = [j, i]``).
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._validate import ClustergError, check_features, check_k, check_threshold
from ..knn.io import check_knn

__all__ = ["GCNGraph", "knn_adjacency", "build_adjacency", "adjacency_to_edges"]

log = logging.getLogger("clusterg.transforms.gcn_graph")


def knn_adjacency(nbrs, sims, th_sim: float = 0.0, self_loops: bool = True) -> sp.csr_matrix:
    """Symmetric kNN adjacency ``max(A, Aᵀ) (+ I)`` as a float32 CSR (N, N), not normalised.

    Self entries, ``-1`` pads and similarities below ``th_sim`` are dropped first.
    """
    nbrs, sims = check_knn(nbrs, sims, allow_pad=True)
    th_sim = check_threshold(th_sim, "th_sim", lo=-1.0, hi=1.0)
    n, k = nbrs.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = nbrs.ravel()
    vals = sims.ravel()
    keep = (cols >= 0) & (cols != rows) & (vals >= th_sim)
    a = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n), dtype=np.float32)
    a.sum_duplicates()
    a = a.maximum(a.T).tocsr()
    if self_loops:
        a = (a + sp.identity(n, dtype=np.float32, format="csr")).tocsr()
    a.sort_indices()
    return a


def row_normalize(a: sp.csr_matrix) -> sp.csr_matrix:
    """``D⁻¹ A``; rows whose sum is <= 0 keep their values (as learn-to-cluster does)."""
    s = np.asarray(a.sum(axis=1)).ravel()
    inv = np.ones_like(s)
    pos = s > 0
    inv[pos] = 1.0 / s[pos]
    return (sp.diags(inv.astype(np.float32)) @ a).tocsr()


def build_adjacency(nbrs, sims, th_sim: float = 0.0) -> sp.csr_matrix:
    """Row-normalised symmetric adjacency with self loops ``Â`` (scipy CSR, N x N)."""
    return row_normalize(knn_adjacency(nbrs, sims, th_sim=th_sim, self_loops=True))


def adjacency_to_edges(a: sp.spmatrix) -> tuple[torch.Tensor, torch.Tensor]:
    """``Â`` -> PyG ``(edge_index (2, E) [source j, target i], edge_weight (E,))``."""
    coo = a.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.col, coo.row]).astype(np.int64))
    return edge_index, torch.from_numpy(coo.data.astype(np.float32))


def adjacency_to_torch(a: sp.spmatrix) -> torch.Tensor:
    """``Â`` as a torch sparse CSR (N, N) tensor usable as ``adj_t`` in :class:`~clusterg.nn.GCNVConv`."""
    import warnings
    a = a.tocsr()
    with warnings.catch_warnings():  # torch flags sparse CSR as beta; spmm with it is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(np.int64)),
                                       torch.from_numpy(a.indices.astype(np.int64)),
                                       torch.from_numpy(a.data.astype(np.float32)), size=a.shape)


@functional_transform("gcn_graph")
class GCNGraph(BaseTransform):
    """Attach GCN-V's normalised kNN graph to ``Data(x)`` (functional name: ``gcn_graph``).

    Sets ``edge_index`` (2, E), ``edge_weight`` (E,), and keeps the kNN lists as
    ``knn_nbrs`` / ``knn_sims`` (N, k) for the linkage step. A plain ``Data`` comes back as a
    :class:`~clusterg.transforms.KNNData`, so ``knn_nbrs`` stays right in a batch.

    Args:
        k: kNN list size, self included (default 20, the value the packaged GCN-V weights were
            trained with; the paper used 80 on MS1M); clamped to N with a warning on small inputs.
            ``GCNV.from_pretrained().graph_transform()`` gives the packaged model's settings.
        th_sim: drop edges with cosine similarity below this (default 0).
        knn_method: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (see :func:`clusterg.knn.knn_search`).
        seed: for the approximate indexes.
        normalize: L2-normalise ``data.x`` first (written back as float32) and search on those rows,
            exactly as the clusterers prepare their input (default True), so that
            ``GCNV.from_pretrained()`` on ``graph_transform()(Data(x=raw_features))`` gives the
            clusterer's confidences bit for bit; False leaves ``data.x`` as it is (the search still
            uses cosine similarity).
    """

    def __init__(self, k: int = 20, th_sim: float = 0.0, knn_method: str = "flat", seed: int = 0,
                 normalize: bool = True):
        self.k = k
        self.th_sim = th_sim
        self.knn_method = knn_method
        self.seed = seed
        self.normalize = normalize

    def forward(self, data: Data) -> Data:
        from ..knn import knn_search
        from .data import as_knn_data
        from .knn_graph import check_homogeneous
        check_homogeneous(data, "GCNGraph")
        data = as_knn_data(data)
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ClustergError(f"GCNGraph: normalize must be True or False, got {self.normalize!r}")
        device = data.x.device if isinstance(data.x, torch.Tensor) else None
        x = check_features(data.x, min_n=2, normalize=bool(self.normalize))
        k = check_k(self.k, x.shape[0], clamp=True, min_k=2)
        if k != self.k:
            log.warning("k=%d is larger than N=%d; using k=%d", self.k, x.shape[0], k)
        # normalised here exactly as the clusterers do (check_features), then searched as they search
        nbrs, sims = knn_search(x, k, method=self.knn_method, seed=self.seed, normalize=not self.normalize)
        if self.normalize:
            data.x = torch.from_numpy(x).to(device) if device is not None else torch.from_numpy(x)
        edge_index, edge_weight = adjacency_to_edges(build_adjacency(nbrs, sims, self.th_sim))
        data.edge_index = edge_index
        data.edge_weight = edge_weight
        data.knn_nbrs = torch.from_numpy(np.asarray(nbrs, dtype=np.int64))
        data.knn_sims = torch.from_numpy(np.asarray(sims, dtype=np.float32))
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, th_sim={self.th_sim}, normalize={self.normalize})"
