"""Ada-NETS adaptive graph: keep each node's first ``k_hat[i]`` structure-space neighbours.

Node ``i`` keeps the neighbours at positions ``< k_hat[i]`` of its structure-space
list (position 0 is ``i`` itself, so ``k_hat = 1`` keeps none), each with weight
equal to its structure similarity (negative similarities are dropped). The
matrix is then made symmetric with an element-wise max, one self loop per node
is added (weight 1) and rows are normalised to sum 1, as learn-to-cluster's
``build_symmetric_adj`` + ``row_normalize`` do.

The result is a PyG-style ``edge_index`` (``source_to_target``: entry ``A[i, j]``
becomes the edge ``j -> i``) with ``edge_weight``; ``A`` itself is available as a
scipy CSR matrix through :func:`adaptive_adjacency`.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._validate import ClustergError

__all__ = ["adaptive_adjacency", "adaptive_graph", "AdaptiveGraph"]


def _check(nbrs, sims, k_hat):
    if isinstance(nbrs, torch.Tensor):
        nbrs = nbrs.detach().cpu().numpy()
    if isinstance(sims, torch.Tensor):
        sims = sims.detach().cpu().numpy()
    if isinstance(k_hat, torch.Tensor):
        k_hat = k_hat.detach().cpu().numpy()
    nbrs, sims = np.asarray(nbrs), np.asarray(sims)
    if nbrs.ndim != 2 or nbrs.shape[0] < 1 or nbrs.shape[1] < 1:
        raise ClustergError(f"nbrs: expected shape (N, K), got {tuple(nbrs.shape)}")
    if not np.issubdtype(nbrs.dtype, np.integer):
        raise ClustergError(f"nbrs: expected integer ids, got dtype {nbrs.dtype}")
    if sims.shape != nbrs.shape:
        raise ClustergError(f"sims: shape {tuple(sims.shape)} does not match nbrs {tuple(nbrs.shape)}")
    if not np.issubdtype(sims.dtype, np.floating) or not np.isfinite(sims).all():
        raise ClustergError("sims: expected finite floats")
    n, kk = nbrs.shape
    if nbrs.min() < 0 or nbrs.max() >= n:
        raise ClustergError(f"nbrs: ids must lie in [0, {n - 1}] (no -1 padding)")
    if np.isscalar(k_hat) or np.ndim(k_hat) == 0:
        k_hat = np.full(n, int(k_hat), dtype=np.int64)
    k_hat = np.asarray(k_hat)
    if k_hat.shape != (n,):
        raise ClustergError(f"k_hat: expected shape ({n},) or a scalar, got {tuple(k_hat.shape)}")
    if not (np.issubdtype(k_hat.dtype, np.integer) or np.issubdtype(k_hat.dtype, np.floating)):
        raise ClustergError(f"k_hat: expected integers, got dtype {k_hat.dtype}")
    if not np.isfinite(k_hat).all():
        raise ClustergError("k_hat: contains NaN or inf")
    k_hat = np.clip(np.round(k_hat).astype(np.int64), 1, kk)
    return nbrs.astype(np.int64, copy=False), sims.astype(np.float32, copy=False), k_hat


def adaptive_adjacency(nbrs, sims, k_hat, self_loops: bool = True, normalize: bool = True) -> sp.csr_matrix:
    """Adaptive adjacency as a scipy CSR matrix.

    Args:
        nbrs: int (N, K) structure-space neighbour ids (row i starts with i).
        sims: float (N, K) structure similarities (the weights).
        k_hat: int (N,) or scalar, neighbours kept per node counting self,
            clipped to [1, K].
        self_loops: add the identity (weight 1) after symmetrisation.
        normalize: divide each row by its sum.

    Returns:
        float32 CSR (N, N) matrix ``A`` with ``A[i, j]`` the weight of j in i's row.
    """
    nbrs, sims, k_hat = _check(nbrs, sims, k_hat)
    n, kk = nbrs.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), kk).reshape(n, kk)
    keep = (np.arange(kk)[None, :] < k_hat[:, None]) & (nbrs != rows) & (sims >= 0)
    a = sp.csr_matrix((sims[keep], (rows[keep], nbrs[keep])), shape=(n, n), dtype=np.float32)
    a.sum_duplicates()
    a = a.maximum(a.T).tocsr()
    if self_loops:
        a = (a + sp.identity(n, dtype=np.float32, format="csr")).tocsr()
    if normalize:
        rs = np.asarray(a.sum(axis=1)).ravel()
        rs[rs <= 0] = 1.0
        a = sp.diags((1.0 / rs).astype(np.float32)) @ a
    a = a.tocsr().astype(np.float32)
    a.sort_indices()
    return a


def adaptive_graph(nbrs, sims, k_hat, self_loops: bool = True, normalize: bool = True
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive graph as PyG ``(edge_index long (2, E), edge_weight float (E,))``.

    Same arguments as :func:`adaptive_adjacency`; ``A[i, j]`` becomes the edge
    ``j -> i`` (source j, target i), so a sum aggregation with these weights
    computes ``A @ x``.
    """
    a = adaptive_adjacency(nbrs, sims, k_hat, self_loops=self_loops, normalize=normalize).tocoo()
    edge_index = torch.from_numpy(np.stack([a.col, a.row]).astype(np.int64))
    return edge_index, torch.from_numpy(a.data.astype(np.float32))


@functional_transform("adaptive_graph")
class AdaptiveGraph(BaseTransform):
    """PyG transform (functional name: ``adaptive_graph``) building ``data.edge_index`` / ``data.edge_weight`` from
    ``data.ss_nbrs``, ``data.ss_sims`` (see :class:`StructureSpace`) and
    ``data.k_hat`` (long (N,), e.g. from :class:`clusterg.nn.and_module.AND`).
    Without ``data.k_hat`` the constant ``k`` given here is used.
    """

    def __init__(self, k: int | None = None, self_loops: bool = True, normalize: bool = True):
        self.k = k
        self.self_loops = self_loops
        self.normalize = normalize

    def forward(self, data: Data) -> Data:
        if getattr(data, "ss_nbrs", None) is None or getattr(data, "ss_sims", None) is None:
            raise ClustergError("AdaptiveGraph: data needs ss_nbrs and ss_sims (apply StructureSpace first)")
        k_hat = getattr(data, "k_hat", None)
        if k_hat is None:
            if self.k is None:
                raise ClustergError("AdaptiveGraph: data has no k_hat and no constant k was given")
            k_hat = int(self.k)
        data.edge_index, data.edge_weight = adaptive_graph(data.ss_nbrs, data.ss_sims, k_hat,
                                                           self_loops=self.self_loops, normalize=self.normalize)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k}, self_loops={self.self_loops}, normalize={self.normalize})"
