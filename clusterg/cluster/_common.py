"""What graph-based clusterers share: input checks and the kNN of ``X``."""
from __future__ import annotations

import logging

import numpy as np

from .._validate import ClustergError, check_features, check_k
from ..knn import check_knn, knn_search

logger = logging.getLogger("clusterg.cluster")


def features_and_knn(X, k: int, knn=None, knn_method: str = "flat", device: str = "cpu", seed: int = 0,
                     min_n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated, L2-normalised features and their kNN with ``k`` columns (self included).

    ``k`` larger than N is clamped to N with a warning, so tiny inputs work. A precomputed
    ``knn=(nbrs, sims)`` with at least ``k`` columns is sliced instead of searched again.
    """
    x = check_features(X, min_n=min_n, normalize=True)
    n = x.shape[0]
    k_req = check_k(k, 10**12, name="k")
    k = min(k_req, n)
    if k < k_req:
        logger.warning("k=%d exceeds the %d points; using k=%d", k_req, n, k)
    if knn is not None:
        nbrs, sims = check_knn(*knn, n=n)
        if nbrs.shape[1] < k:
            raise ClustergError(f"the precomputed kNN has {nbrs.shape[1]} neighbours per point, fewer than k={k}")
        return x, np.ascontiguousarray(nbrs[:, :k]), np.ascontiguousarray(sims[:, :k])
    nbrs, sims = knn_search(x, k, method=knn_method, device=device, seed=seed, normalize=False)
    return x, nbrs, sims
