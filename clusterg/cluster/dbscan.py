"""DBSCAN on the kNN graph (distances 1 - cosine similarity)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from .._validate import ClustergError, check_threshold
from ..linkage import relabel
from ._common import features_and_knn
from ._threshold import infomap_reference, resolve_threshold
from .base import BaseClusterer

__all__ = ["KNNDBSCAN"]


class KNNDBSCAN(BaseClusterer):
    """scikit-learn DBSCAN restricted to the kNN graph: O(N k) memory instead of O(N^2).

    Args:
        k: neighbours per point including itself (default 80, as learn-to-cluster's baseline).
        threshold: cosine similarity of a neighbour (``eps = 1 - threshold``), or ``"auto"`` (default:
            chosen from the data, ``"cc"`` rule of :func:`clusterg.linkage.auto_threshold`).
        min_samples: core-point neighbourhood size, the point counted (default 1, every point a core point).
        knn_method, device, seed: as the other graph clusterers.

    Noise points (when ``min_samples > 1``) become singletons, as the field scores -1.
    """

    def __init__(self, k: int = 80, threshold: float | str = "auto", min_samples: int = 1, knn_method: str = "auto",
                 device: str = "cpu", seed: int = 0):
        self.k = k
        self.threshold = threshold
        self.min_samples = min_samples
        self.knn_method = knn_method
        self.device = device
        self.seed = seed

    def fit(self, X, y=None, knn=None) -> "KNNDBSCAN":
        if int(self.min_samples) < 1:
            raise ClustergError(f"min_samples must be >= 1, got {self.min_samples}")
        x, nbrs, sims = features_and_knn(X, self.k, knn, self.knn_method, self.device, self.seed)
        n, k = nbrs.shape
        rows = np.repeat(np.arange(n), k)
        # distances of exactly 0 would vanish from a sparse matrix; the tiny floor keeps them as edges
        dist = np.maximum(1.0 - sims.ravel(), 1e-12)
        g = sp.csr_matrix((dist, (rows, nbrs.ravel())), shape=(n, n))
        g = g.maximum(g.T).tocsr()  # DBSCAN's neighbourhoods are symmetric
        g.sort_indices()

        def labels_at(t: float) -> np.ndarray:
            lab = DBSCAN(eps=max(1.0 - t, 1e-12), min_samples=int(self.min_samples), metric="precomputed").fit_predict(g)
            noise = lab < 0
            lab = lab.astype(np.int64)
            lab[noise] = lab.max() + 1 + np.arange(noise.sum())
            return relabel(lab)

        t = self.threshold_ = resolve_threshold(self.threshold, x, sims, "cc", "dbscan", self.seed, labels_at=labels_at,
                                                reference=lambda: infomap_reference(x, nbrs, sims, self.seed))
        self.labels_ = labels_at(t)
        return self
