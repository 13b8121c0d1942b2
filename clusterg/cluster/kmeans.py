"""Spherical k-means with faiss."""
from __future__ import annotations

import faiss
import numpy as np

from .._validate import ClustergError, check_features
from ..linkage import relabel
from .base import BaseClusterer

__all__ = ["FaissKMeans", "kmeanspp_init"]


def kmeanspp_init(x: np.ndarray, c: int, seed: int = 0, sample: int | None = None) -> np.ndarray:
    """Greedy k-means++ seeding (D^2 sampling, best of 2 + log c draws per centre) on at most ``sample`` rows (default ``64 c``); float32 ``(c, D)``.

    Random seeding often puts two centroids in one identity and none in another; D^2 sampling
    avoids most of it. O(sample * c * D log c).
    """
    rng = np.random.default_rng(seed)
    n = len(x)
    m = min(n, sample or max(64 * c, 1000))
    pts = x if m == n else x[np.sort(rng.choice(n, m, replace=False))]
    centers = np.empty((c, x.shape[1]), dtype=np.float32)
    centers[0] = pts[rng.integers(m)]
    d2 = np.maximum(2.0 - 2.0 * (pts @ centers[0]), 0.0)
    trials = 2 + int(np.log(c))  # greedy k-means++: best of a few D^2 draws per centre
    for i in range(1, c):
        total = d2.sum()
        cand = rng.choice(m, size=trials, p=d2 / total) if total > 0 else rng.integers(m, size=trials)
        dots = pts @ pts[cand].T  # (m, trials); rows are unit vectors, so |a - b|^2 = 2 - 2 a.b
        cand_d2 = np.minimum(d2[None, :], np.maximum(2.0 - 2.0 * dots.T, 0.0))
        best = int(cand_d2.sum(1).argmin())
        centers[i] = pts[cand[best]]
        d2 = cand_d2[best]
    return centers


class FaissKMeans(BaseClusterer):
    """k-means on L2-normalised features (faiss, spherical centroids).

    Args:
        n_clusters: number of clusters (required; at most N).
        niter: Lloyd iterations (default 20).
        nredo: restarts, the best objective is kept (default 1).
        seed: seed for the k-means++ initial centroids.
        gpu: use faiss-gpu when available.
        kmeanspp_max_clusters: up to this many clusters the centroids start from greedy k-means++
            (:func:`kmeanspp_init`), above it from faiss's random rows (default 2000).

    Attributes:
        labels_: int64 ``(N,)``, clusters 0..C-1.
        cluster_centers_: float32 ``(C, D)``, unit-norm centroids, row c for cluster c (C = n_clusters
            unless a centroid ended up empty).
        n_features_in_: D.

    :meth:`predict` assigns new points to the nearest centroid.
    """

    def __init__(self, n_clusters: int | None = None, niter: int = 20, nredo: int = 1, seed: int = 0,
                 gpu: bool = False, kmeanspp_max_clusters: int = 2000):
        self.n_clusters = n_clusters
        self.kmeanspp_max_clusters = kmeanspp_max_clusters
        self.niter = niter
        self.nredo = nredo
        self.seed = seed
        self.gpu = gpu

    def fit(self, X, y=None, knn=None) -> "FaissKMeans":
        x = check_features(X, normalize=True)
        n = len(x)
        if self.n_clusters is None:
            raise ClustergError("kmeans needs n_clusters (CLI: --n-clusters)")
        c = int(self.n_clusters)
        if c < 1 or c > n:
            raise ClustergError(f"n_clusters must lie in [1, N={n}], got {c}")
        km = faiss.Kmeans(x.shape[1], c, niter=int(self.niter), nredo=int(self.nredo), seed=int(self.seed),
                          spherical=True, gpu=bool(self.gpu), verbose=False,
                          min_points_per_centroid=1, max_points_per_centroid=max(256, n // c + 1))
        # k-means++ costs O(c^2 D log c) on its sample: beyond ~2000 clusters faiss's random seeding is used
        init = kmeanspp_init(x, c, seed=int(self.seed)) if c <= self.kmeanspp_max_clusters else None
        km.train(x, init_centroids=init)
        _, assign = km.index.search(x, 1)
        assign = assign.ravel()
        self.labels_ = relabel(assign)
        # row c of cluster_centers_ is the centroid of cluster c (a centroid left empty is dropped)
        first = np.unique(assign, return_index=True)
        used = first[0][np.argsort(first[1], kind="stable")]
        self.cluster_centers_ = np.ascontiguousarray(km.centroids[used], dtype=np.float32)
        return self

    def predict(self, X) -> np.ndarray:
        """Cluster of each new point: its most similar centroid (the fitted ``labels_`` do not change).

        Args:
            X: float ``(M, D)`` with the fitted D.
        Returns:
            int64 ``(M,)`` cluster ids in 0..C-1, ties to the smaller id.
        """
        x = self._check_new_features(X)
        index = faiss.IndexFlatL2(self.cluster_centers_.shape[1])
        index.add(self.cluster_centers_)
        _, assign = index.search(x, 1)
        return assign.ravel().astype(np.int64)
