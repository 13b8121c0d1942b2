"""Connected components and union-find: the last step of every graph clusterer."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc

from .._validate import ClustergError

__all__ = ["connected_components", "threshold_edges", "relabel", "UnionFind"]


def relabel(labels: np.ndarray) -> np.ndarray:
    """Map any labelling to 0..C-1, numbering clusters in order of their first member (deterministic)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return labels.astype(np.int64)
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.ravel()]


def _edge_ids(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
                                 or a.dtype == bool):
        raise ClustergError(f"{name}: expected integer node ids, got dtype {a.dtype}")
    if a.ndim > 1:
        raise ClustergError(f"{name}: expected a 1-D array of node ids, got shape {a.shape}")
    a = a.ravel()
    if np.issubdtype(a.dtype, np.floating) and len(a):
        if not np.isfinite(a).all() or (a != np.round(a)).any() or np.abs(a).max() >= 2.0 ** 63:
            raise ClustergError(f"{name}: node ids must be whole numbers")
    if np.issubdtype(a.dtype, np.unsignedinteger) and len(a) and int(a.max()) > np.iinfo(np.int64).max:
        raise ClustergError(f"{name}: node id {int(a.max())} does not fit in int64")
    return a.astype(np.int64)


def connected_components(n: int, src, dst) -> np.ndarray:
    """Labels 0..C-1 of the undirected graph on ``n`` nodes with edges ``src[e] - dst[e]``.

    O(N + E) through scipy's csgraph; isolated nodes are singletons. ``n`` must be a
    non-negative integer, ``src``/``dst`` 1-D integer ids in ``[0, n)`` of equal length
    (else :class:`~clusterg.ClustergError`).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ClustergError(f"n: expected an integer number of nodes, got {n!r}")
    n = int(n)
    if n < 0:
        raise ClustergError(f"n must be >= 0, got {n}")
    src, dst = _edge_ids(src, "src"), _edge_ids(dst, "dst")
    if src.shape != dst.shape:
        raise ClustergError(f"src and dst differ in length: {len(src)} vs {len(dst)}")
    if n == 0:
        if len(src):
            raise ClustergError(f"edge endpoints must lie in [0, 0): a graph with n=0 nodes has no edges, "
                                f"got {len(src)}")
        return np.empty(0, dtype=np.int64)
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ClustergError(f"edge endpoints must lie in [0, {n})")
    g = sp.coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = _cc(g, directed=True, connection="weak")
    return relabel(labels)


def threshold_edges(nbrs: np.ndarray, sims: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``i - nbrs[i, j]`` with ``sims[i, j] > threshold``; self pairs dropped."""
    nbrs = np.asarray(nbrs)
    rows = np.broadcast_to(np.arange(nbrs.shape[0])[:, None], nbrs.shape)
    keep = (np.asarray(sims) > threshold) & (nbrs != rows)
    return rows[keep].astype(np.int64), nbrs[keep].astype(np.int64)


class UnionFind:
    """Array union-find with path halving and union by size; grows with :meth:`add`.

    For linkage that arrives edge by edge, and for adding new points to an existing
    clustering without redoing it.
    """

    def __init__(self, n: int = 0):
        self.parent = np.arange(int(n), dtype=np.int64)
        self.size = np.ones(int(n), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.parent)

    def add(self, m: int = 1) -> np.ndarray:
        """Append ``m`` singleton nodes; returns their ids."""
        start = len(self.parent)
        self.parent = np.concatenate([self.parent, np.arange(start, start + m, dtype=np.int64)])
        self.size = np.concatenate([self.size, np.ones(m, dtype=np.int64)])
        return np.arange(start, start + m)

    def find(self, i: int) -> int:
        p = self.parent
        while p[i] != i:
            p[i] = p[p[i]]
            i = p[i]
        return int(i)

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return ra

    def union_many(self, src, dst) -> None:
        for a, b in zip(np.asarray(src).tolist(), np.asarray(dst).tolist()):
            self.union(a, b)

    def roots(self) -> np.ndarray:
        """The root of every node, by vectorised pointer jumping (also compresses every path)."""
        p = self.parent
        while True:
            pp = p[p]
            if np.array_equal(pp, p):
                return p.copy()
            p[:] = pp

    def labels(self) -> np.ndarray:
        """Labels 0..C-1 in order of each cluster's first member."""
        return relabel(self.roots())

    @classmethod
    def from_labels(cls, labels) -> "UnionFind":
        """A union-find whose sets are the clusters of ``labels``."""
        labels = relabel(np.asarray(labels))
        uf = cls(len(labels))
        first = np.full(labels.max() + 1 if len(labels) else 0, -1, dtype=np.int64)
        for i, c in enumerate(labels.tolist()):
            if first[c] < 0:
                first[c] = i
        uf.parent = first[labels].copy()
        uf.size = np.bincount(uf.parent, minlength=len(labels)).astype(np.int64)
        return uf
