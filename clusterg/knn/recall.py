"""Quality of an approximate kNN result against exact search."""
from __future__ import annotations

import faiss
import numpy as np

from .._validate import ClustergError, check_features
from .search import normalize_rows

__all__ = ["knn_recall", "sampled_recall", "streamed_recall"]


def knn_recall(nbrs_approx: np.ndarray, nbrs_exact: np.ndarray) -> float:
    """recall@k: the mean over rows of ``len(set(approx[i]) & set(exact[i])) / k``; both ``(M, k)`` id arrays."""
    a, e = np.asarray(nbrs_approx, dtype=np.int64), np.asarray(nbrs_exact, dtype=np.int64)
    if a.ndim != 2 or a.shape != e.shape:
        raise ClustergError(f"recall: shapes differ or are not 2-D: {a.shape} vs {e.shape}")
    if a.size == 0:
        raise ClustergError("recall: empty neighbour lists")
    m, k = a.shape
    base = max(int(a.max()), int(e.max())) + 1
    rows = np.arange(m, dtype=np.int64)[:, None] * base
    return float(np.isin(a + rows, e + rows).sum() / (m * k))


def sampled_recall(x, nbrs: np.ndarray, n_sample: int = 1000, seed: int = 0, normalize: bool = True) -> float:
    """recall@k of ``nbrs`` (a full kNN result for ``x``) on ``n_sample`` random rows, against exact search."""
    n, k = nbrs.shape
    xs = normalize_rows(x) if normalize else check_features(x)
    if xs.shape[0] != n:
        raise ClustergError(f"recall: kNN has {n} rows but features have {xs.shape[0]}")
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, n_sample), replace=False))
    _, exact = faiss.knn(np.ascontiguousarray(xs[rows]), xs, k, metric=faiss.METRIC_INNER_PRODUCT)
    # the exact list may start with a duplicate instead of self: compare as sets with self forced in
    exact[:, 0] = np.where((exact == rows[:, None]).any(axis=1), exact[:, 0], rows)
    return knn_recall(nbrs[rows], exact)


def streamed_recall(x, nbrs: np.ndarray, n_sample: int = 256, seed: int = 0, normalize: bool = True,
                    block: int = 65536) -> float:
    """:func:`sampled_recall` reading ``x`` in blocks of ``block`` rows (a memory map is never copied
    whole): the exact neighbours of the sampled rows are kept as running top-k lists. Ties at the k-th
    place may be broken differently from faiss's exact search."""
    nbrs = np.asarray(nbrs)
    if nbrs.ndim != 2 or nbrs.shape[1] < 1:
        raise ClustergError(f"recall: expected kNN ids of shape (N, k), got {nbrs.shape}")
    n, k = nbrs.shape
    if np.shape(x)[0] != n:
        raise ClustergError(f"recall: kNN has {n} rows but features have {np.shape(x)[0]}")

    def rows_of(a, b=None):
        r = np.asarray(x[a] if b is None else x[a:b])
        return normalize_rows(r) if normalize else check_features(r)

    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, int(n_sample)), replace=False))
    q = rows_of(rows)
    top_s = np.full((len(rows), 0), -np.inf, dtype=np.float32)
    top_i = np.empty((len(rows), 0), dtype=np.int64)
    for s in range(0, n, int(block)):
        sim = q @ rows_of(s, s + int(block)).T
        cs = np.concatenate([top_s, sim], axis=1)
        ci = np.concatenate([top_i, np.broadcast_to(np.arange(s, s + sim.shape[1]), sim.shape)], axis=1)
        if cs.shape[1] > k:
            keep = np.argpartition(-cs, k - 1, axis=1)[:, :k]
            cs, ci = np.take_along_axis(cs, keep, axis=1), np.take_along_axis(ci, keep, axis=1)
        top_s, top_i = cs, ci
    # self belongs to its own list (a duplicate may have displaced it): force it in, as sampled_recall does
    has_self = (top_i == rows[:, None]).any(axis=1)
    top_i[~has_self, np.argmin(top_s[~has_self], axis=1)] = rows[~has_self]
    return knn_recall(nbrs[rows], top_i)
