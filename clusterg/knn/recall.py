"""Quality of an approximate kNN result against exact search."""
from __future__ import annotations

import faiss
import numpy as np

from .._validate import ClustergError, check_features
from .search import normalize_rows

__all__ = ["knn_recall", "sampled_recall"]


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
