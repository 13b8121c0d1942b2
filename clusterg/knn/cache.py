"""Build a kNN once and keep it on disk in the ``faiss_k_<k>.npz`` layout."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .._validate import ClustergError
from .io import load_knn, save_knn
from .search import knn_search

logger = logging.getLogger("clusterg.knn")

__all__ = ["cached_knn"]


def cached_knn(x, k: int, path: str | os.PathLike | None, **search_kw) -> tuple[np.ndarray, np.ndarray]:
    """:func:`knn_search` with a file cache at ``path`` (``None``: no cache).

    A cached file with the same N and at least ``k`` columns is reused (sliced to ``k``);
    one made for other data (another N) or unreadable is rebuilt and replaced atomically.
    """
    n = x.shape[0]
    if path is not None:
        path = Path(path)
        if path.is_file():
            try:
                nbrs, sims = load_knn(path)
                if nbrs.shape[0] == n and nbrs.shape[1] >= k:
                    logger.info("kNN read from cache %s", path)
                    return np.ascontiguousarray(nbrs[:, :k]), np.ascontiguousarray(sims[:, :k])
                logger.warning("kNN cache %s holds %s neighbours for %d points; rebuilding", path, nbrs.shape, n)
            except ClustergError as e:
                logger.warning("kNN cache unusable (%s); rebuilding", e)
    nbrs, sims = knn_search(x, k, **search_kw)
    if path is not None:
        save_knn(path, nbrs, sims)
    return nbrs, sims
