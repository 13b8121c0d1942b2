"""What graph-based clusterers share: input checks and the kNN of ``X``."""
from __future__ import annotations

import logging

import numpy as np

from .._validate import ClustergError, check_features, check_k
from ..knn import check_knn, knn_search

logger = logging.getLogger("clusterg.cluster")


def features_and_knn(X, k: int, knn=None, knn_method: str = "auto", device: str = "cpu", seed: int = 0,
                     min_n: int = 1, engine=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated, L2-normalised features and their kNN with ``k`` columns (self included).

    ``k`` larger than N is clamped to N with a warning, so tiny inputs work. A precomputed
    ``knn=(nbrs, sims)`` with at least ``k`` columns is sliced instead of searched again.
    ``engine``: None searches here; a :class:`clusterg.distributed.engine.RayEngine` searches on Ray
    (:func:`clusterg.distributed.knn.ray_knn_search`, identical lists for ``knn_method="flat"``).
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
    if engine is not None:
        from ..distributed.knn import ray_knn_search
        nbrs, sims = ray_knn_search(x, k, method=knn_method, device=device, seed=seed, normalize=False, engine=engine)
        return x, nbrs, sims
    nbrs, sims = knn_search(x, k, method=knn_method, device=device, seed=seed, normalize=False)
    return x, nbrs, sims


def ray_engine(engine, address=None, shards=None):
    """None for ``engine="local"`` (or None); a connected Ray engine for ``"ray"`` (see :mod:`clusterg.distributed`).

    ``address``/``shards`` without ``engine="ray"`` are an error (they would be ignored silently otherwise).
    """
    from ..distributed.engine import check_engine
    if check_engine(engine) == "local":
        if address is not None or shards is not None:
            raise ClustergError("address and shards apply to engine='ray' only")
        return None
    from ..distributed.engine import get_engine
    return get_engine(address, shards)
