"""Sparse k-reciprocal Jaccard distance (re-ranking of Zhong et al., CVPR 2017), in O(N * k1) memory.

This is the distance that unsupervised person re-identification pipelines (SpCL,
Cluster-Contrast) recompute every epoch before DBSCAN. With ``x`` the L2-normalised
features, ``kNN(i, k)`` the first ``k + 1`` entries of the cosine kNN list of ``i``
(the point itself first) and ``d(i, j) = 2 - 2 cos(i, j)``:

1. **k-reciprocal sets** ``R(i, k) = {j in kNN(i, k) : i in kNN(j, k)}``.
2. **Expansion** ``R*(i) = R(i, k1)`` united with ``R(c, round(k1 / 2))`` for every
   candidate ``c in R(i, k1)`` whose half-size set lies mostly inside ``R(i, k1)``:
   ``|R(c, round(k1/2)) & R(i, k1)| > 2/3 |R(c, round(k1/2))|`` (strictly).
3. **Gaussian weights** ``V[i, j] = exp(-d(i, j)) / sum_{j' in R*(i)} exp(-d(i, j'))`` for
   ``j in R*(i)``, 0 elsewhere (rows sum to 1).
4. **Local query expansion** ``V_qe[i] = mean of V[j]`` over the first ``k2`` entries of
   the kNN list of ``i`` (itself included; skipped when ``k2 == 1``).
5. **Jaccard distance** ``d_J(i, j) = 1 - m / (2 - m)`` with ``m = sum_l min(V_qe[i, l],
   V_qe[j, l])`` (rows sum to 1, so ``2 - m`` is the sum of the maxima), clipped at 0.
6. With ``lam > 0``: ``(1 - lam) d_J + lam (1 - cos)`` (the original distance here is the
   cosine distance of the normalised features; the dense re-ranking code normalises
   squared distances by a column maximum instead, which has no sparse counterpart).

The dense reference implementations hold N x N matrices (4.3 GB of float32 at 32.6K
images). Here every step is a sparse matrix (``R*``: about k1 entries a row, ``V_qe``:
a few times more), and step 5 joins each row of ``V_qe`` with the columns it touches,
``chunk_size`` rows at a time, keeping per row only the pairs with
``d_J < max_distance``, at most ``max_neighbors`` of them (smallest distance first, ties
by id; distances within 2^-40 count as ties). Pairs that share no weight have ``d_J = 1``
and are never stored. The result is exact on every kept pair; memory is
O(N * (k1 + max_neighbors)) plus one chunk.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

try:
    from torch_geometric.data.datapipes import functional_transform
except ImportError:  # pragma: no cover - older PyG
    def functional_transform(name):
        return lambda cls: cls

from .._progress import progress
from .._validate import ClustergError, check_features, check_int, check_threshold

__all__ = ["k_reciprocal_jaccard", "k_reciprocal_weights", "KReciprocal"]

logger = logging.getLogger("clusterg.transforms.k_reciprocal")


def _prepare(x, k1, k2, knn, knn_method, device, seed, quiet=None):
    x = check_features(x, name="features", min_n=2, normalize=True)
    n = x.shape[0]
    k1 = check_int(k1, "k1", 1)
    k2 = check_int(k2, "k2", 1)
    if k1 + 1 > n:
        logger.warning("k1=%d needs %d neighbours but there are %d points; using k1=%d", k1, k1 + 1, n, n - 1)
        k1 = n - 1
    if k2 > k1 + 1:
        raise ClustergError(f"k2={k2} must be <= k1 + 1 = {k1 + 1} (it takes the first k2 kNN entries)")
    if knn is not None:
        from ..knn import check_knn
        nbrs, _ = check_knn(*knn, n=n)
        if nbrs.shape[1] < k1 + 1:
            raise ClustergError(f"the precomputed kNN has {nbrs.shape[1]} neighbours per point; k1={k1} needs "
                                f"{k1 + 1} (self included)")
        nbrs = np.ascontiguousarray(nbrs[:, :k1 + 1], dtype=np.int64)
    else:
        from ..knn import knn_search
        nbrs, _ = knn_search(x, k1 + 1, method=knn_method, device=device, seed=seed, normalize=False, quiet=quiet)
    return x, nbrs, k1, k2


def _pair_dots(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.float64)
    for s in range(0, len(rows), chunk):
        r, c = rows[s:s + chunk], cols[s:s + chunk]
        out[s:s + len(r)] = np.einsum("ij,ij->i", x[r].astype(np.float64), x[c].astype(np.float64))
    return out


def _expanded_sets(nbrs: np.ndarray, k1: int) -> sp.csr_matrix:
    """``R*`` of step 2 as a boolean CSR (N, N)."""
    from .structure_space import reciprocal_sets
    n = nbrs.shape[0]
    r = reciprocal_sets(nbrs, k1 + 1)
    rh = reciprocal_sets(nbrs, int(np.around(k1 / 2)) + 1)
    overlap = (r @ rh.T).multiply(r).tocoo()  # |R(i) & Rh(c)| for c in R(i)
    half = np.diff(rh.indptr)
    keep = 3 * np.rint(overlap.data).astype(np.int64) > 2 * half[overlap.col]  # exact "> 2/3 |Rh(c)|"
    sel = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (overlap.row[keep], overlap.col[keep])),
                        shape=(n, n))
    rstar = (r + sel @ rh).tocsr()
    rstar.data[:] = 1.0
    rstar.sort_indices()
    return rstar


def k_reciprocal_weights(x, k1: int = 30, k2: int = 6, knn=None, knn_method: str = "flat", device: str = "cpu",
                         seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """The query-expanded weight matrix ``V_qe`` of steps 1-4 (see the module docstring).

    Args:
        x: features (N, D); L2-normalised here.
        k1, k2: reciprocal-set size and query-expansion size (defaults 30 and 6, SpCL's).
        knn: optional precomputed ``(nbrs, sims)`` with at least ``k1 + 1`` columns, self first.
        knn_method, device, seed: for the kNN search when ``knn`` is not given.

    Returns:
        ``(v_qe, nbrs)``: float64 CSR (N, N) with rows summing to 1, and the int64
        (N, k1 + 1) kNN lists used.
    """
    x, nbrs, k1, k2 = _prepare(x, k1, k2, knn, knn_method, device, seed)
    return _weights(x, nbrs, k1, k2), nbrs


def _weights(x: np.ndarray, nbrs: np.ndarray, k1: int, k2: int) -> sp.csr_matrix:
    n = x.shape[0]
    rstar = _expanded_sets(nbrs, k1)
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(rstar.indptr))
    cols = rstar.indices.astype(np.int64)
    d = 2.0 - 2.0 * _pair_dots(x, rows, cols)
    # softmax(-d) per row; d lies in [0, 4], so exp(-d) neither overflows nor underflows
    w = np.exp(-d)
    rs = np.bincount(rows, weights=w, minlength=n)
    w /= rs[rows]
    v = sp.csr_matrix((w, rstar.indices.copy(), rstar.indptr.copy()), shape=(n, n))
    if k2 > 1:
        q = sp.csr_matrix((np.full(n * k2, 1.0 / k2), (np.repeat(np.arange(n), k2), nbrs[:, :k2].ravel())),
                          shape=(n, n))
        v = (q @ v).tocsr()
    v.sort_indices()
    return v


#: kept pairs are ordered on ``d_J`` rounded to a grid of 2^-40: distances closer than that (rounding
#: noise of the sums) count as ties and are broken by id
_QBITS = 40
#: the per-row cut first finds the coarse bin (2^10 of them over [0, 1]) of the max_neighbors-th distance
_HBITS = 10


def _jaccard_rows(v: sp.csr_matrix, vc: sp.csc_matrix, s: int, e: int, max_distance: float,
                  max_neighbors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept (row, col, d_J) of rows s..e-1: join row entries with the columns they touch.

    The join's entries (one per row entry ``(i, l)`` and column entry ``(j, l)``, value
    ``min(V[i, l], V[j, l])``) come grouped by row; as a (b, N) CSR with duplicates, its
    conversion to CSC (two counting sorts, linear, stable) groups them by ``(j, i)`` and
    ``sum_duplicates`` adds each pair's minima in the order of ``l``. The per-row cut then
    counts distances into coarse bins to find, per row, the bin of its ``max_neighbors``-th
    smallest distance, and sorts only the pairs up to that bin.
    """
    n = v.shape[0]
    b = e - s
    lo, hi = int(v.indptr[s]), int(v.indptr[e])
    starts = vc.indptr[v.indices[lo:hi]].astype(np.int64)
    lens = vc.indptr[v.indices[lo:hi] + 1].astype(np.int64) - starts
    ends = np.cumsum(lens)
    total = int(ends[-1]) if len(ends) else 0
    idx = np.repeat(starts - (ends - lens), lens)  # entry t joins row entry p with column entry idx[t]
    idx += np.arange(total, dtype=np.int64)
    mins = vc.data[idx]
    np.minimum(mins, np.repeat(v.data[lo:hi], lens), out=mins)
    cols = vc.indices[idx]
    del idx
    rp = np.concatenate(([0], ends))[v.indptr[s:e + 1] - lo]  # row pointers of the join
    if total < 2**31 and n < 2**31:
        rp = rp.astype(np.int32)
    acc = sp.csr_matrix((mins, cols, rp), shape=(b, n)).tocsc()
    del mins, cols
    acc.sum_duplicates()
    m = acc.data
    r = acc.indices.astype(np.int64)
    c = np.repeat(np.arange(n, dtype=np.int64), np.diff(acc.indptr))
    del acc
    dj = np.maximum(1.0 - m / np.maximum(2.0 - m, 1e-12), 0.0)
    keep = dj < max_distance
    if not keep.all():
        r, c, dj = r[keep], c[keep], dj[keep]
    qd = np.floor(dj * 2.0 ** _QBITS + 0.5).astype(np.int64)
    cnt = np.bincount(r, minlength=b)
    if cnt.max(initial=0) > max_neighbors:
        # bins are a function of qd, so a pair in a later bin than the row's max_neighbors-th
        # distance has at least max_neighbors pairs strictly before it: it cannot be kept
        nb = (1 << _HBITS) + 1
        bins = qd >> (_QBITS - _HBITS)
        hist = np.bincount(r * nb + bins, minlength=b * nb).reshape(b, nb)
        np.cumsum(hist, axis=1, out=hist)
        last = np.argmax(hist >= max_neighbors, axis=1)
        last[cnt <= max_neighbors] = nb
        keep = bins <= last[r]
        r, c, dj, qd = r[keep], c[keep], dj[keep], qd[keep]
    order = np.lexsort((c, qd, r))  # per row: smallest distance first, ties by id
    r, c, dj = r[order], c[order], dj[order]
    rank = np.arange(len(r)) - np.searchsorted(r, r, side="left")
    keep = rank < max_neighbors
    return r[keep] + s, c[keep], dj[keep]


def k_reciprocal_jaccard(x, k1: int = 30, k2: int = 6, lam: float = 0.0, knn=None,
                         max_neighbors: int | None = None, max_distance: float = 1.0, chunk_size: int = 1024,
                         knn_method: str = "flat", device: str = "cpu", seed: int = 0,
                         quiet: bool | None = None, stats: dict | None = None) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance with local query expansion.

    Args:
        x: features (N, D), N >= 2 (array, memmap or tensor); L2-normalised here.
        k1: k-reciprocal neighbourhood size (default 30, SpCL's; the kNN lists have
            ``k1 + 1`` entries, self included). Clamped to N - 1 with a warning.
        k2: local query expansion size, self included (default 6; 1 switches it off).
        lam: weight of the original (cosine) distance, in [0, 1] (default 0: the
            Jaccard distance alone, as SpCL and Cluster-Contrast use it).
        knn: optional precomputed ``(nbrs, sims)`` (self first, >= k1 + 1 columns).
        max_neighbors: pairs kept per row, smallest Jaccard distance first, ties by id
            (default ``k1 + 1``); distances within 2^-40 of each other (rounding noise of the
            sums) count as ties. The point itself (distance 0) is among them unless
            ``max_neighbors`` or more other points at distance 0 have smaller ids.
        max_distance: keep only pairs with Jaccard distance below it, in (0, 1]
            (default 1: every pair that shares any weight).
        chunk_size: rows joined at once (default 1024; memory of one chunk: about
            chunk_size x 13,000 x 40 bytes at k1=30, k2=6 on synthetic faces).
        knn_method, device, seed: for the kNN search when ``knn`` is not given.
        stats: optional dict, filled with the seconds of each stage (``weights_s``: steps
            1-4, ``join_s``: step 5, ``assemble_s``: blending and the CSR) and ``weights_nnz``
            (entries of ``V_qe``).

    Returns:
        CSR float32 (N, N) holding the kept pairs, indices sorted: entry ``(i, j)`` is
        ``(1 - lam) d_J(i, j) + lam (1 - cos(i, j))``. A kept zero distance (the diagonal,
        duplicates) is stored explicitly, so read ``.indptr/.indices/.data`` (or use
        ``.tocoo()``) rather than ``!= 0``. Pairs not stored have ``d_J = 1`` or were cut.
        Kept pairs are chosen on ``d_J``, so ``lam`` changes values, not which pairs.
        ``d_J`` is symmetric, so the stored set is symmetric when no row is cut by
        ``max_neighbors``.
    """
    lam = check_threshold(lam, "lam", 0.0, 1.0)
    max_distance = check_threshold(max_distance, "max_distance", 0.0, 1.0)
    if max_distance <= 0:
        raise ClustergError("max_distance: must be > 0 (the point itself is at distance 0)")
    chunk_size = check_int(chunk_size, "chunk_size", 1)
    if stats is not None and not isinstance(stats, dict):
        raise ClustergError(f"stats: expected a dict or None, got {type(stats).__name__}")
    x, nbrs, k1, k2 = _prepare(x, k1, k2, knn, knn_method, device, seed, quiet)
    max_neighbors = k1 + 1 if max_neighbors is None else check_int(max_neighbors, "max_neighbors", 1)
    n = x.shape[0]
    t0 = time.perf_counter()
    v = _weights(x, nbrs, k1, k2)
    vc = v.tocsc()
    vc.sort_indices()
    t1 = time.perf_counter()
    rows, cols, dist = [], [], []
    starts = range(0, n, chunk_size)
    for s in progress(starts, total=len(starts), desc="k-reciprocal jaccard", disable=quiet):
        r, c, d = _jaccard_rows(v, vc, s, min(n, s + chunk_size), max_distance, max_neighbors)
        rows.append(r.astype(np.int64))
        cols.append(c.astype(np.int32 if n < 2**31 else np.int64))
        dist.append(d.astype(np.float32))
    nnz_v = int(v.nnz)
    del vc, v
    t2 = time.perf_counter()
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    d = np.concatenate(dist)
    if lam > 0:
        cosd = 1.0 - _pair_dots(x, r, c.astype(np.int64))
        d = ((1.0 - lam) * d.astype(np.float64) + lam * np.maximum(cosd, 0.0)).astype(np.float32)
    order = np.lexsort((c, r))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    g = sp.csr_matrix((d[order], c[order], indptr), shape=(n, n))
    if stats is not None:
        stats.update(weights_s=t1 - t0, join_s=t2 - t1, assemble_s=time.perf_counter() - t2, weights_nnz=nnz_v)
    logger.info("k-reciprocal jaccard: N=%d, weights %.1f s (%d entries), join %.1f s, %d pairs kept",
                n, t1 - t0, nnz_v, t2 - t1, g.nnz)
    return g


@functional_transform("k_reciprocal")
class KReciprocal(BaseTransform):
    """PyG transform: k-reciprocal Jaccard distances of ``data.x`` as a sparse graph.

    Writes ``data.jaccard_edge_index`` (long (2, E), the kept pairs of
    :func:`k_reciprocal_jaccard`, self pairs included) and ``data.jaccard_dist``
    (float (E,), their distances). Uses ``data.knn_nbrs`` / ``data.knn_sims`` when they
    hold at least ``k1 + 1`` columns, else searches the kNN of ``data.x``. Parameters as
    :func:`k_reciprocal_jaccard`.
    """

    def __init__(self, k1: int = 30, k2: int = 6, lam: float = 0.0, max_neighbors: int | None = None,
                 max_distance: float = 1.0):
        self.k1 = k1
        self.k2 = k2
        self.lam = lam
        self.max_neighbors = max_neighbors
        self.max_distance = max_distance

    def forward(self, data: Data) -> Data:
        if getattr(data, "x", None) is None:
            raise ClustergError("KReciprocal: data.x (N, D) is required")
        knn = None
        nb, si = getattr(data, "knn_nbrs", None), getattr(data, "knn_sims", None)
        if nb is not None and si is not None and int(nb.shape[1]) >= int(self.k1) + 1:
            knn = (nb.detach().cpu().numpy(), si.detach().cpu().numpy())
        g = k_reciprocal_jaccard(data.x.detach().cpu().numpy(), k1=self.k1, k2=self.k2, lam=self.lam,
                                 knn=knn, max_neighbors=self.max_neighbors, max_distance=self.max_distance)
        coo = g.tocoo()
        data.jaccard_edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        data.jaccard_dist = torch.from_numpy(coo.data.astype(np.float32))
        return data

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(k1={self.k1}, k2={self.k2}, lam={self.lam}, "
                f"max_neighbors={self.max_neighbors}, max_distance={self.max_distance})")
