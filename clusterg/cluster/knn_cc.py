"""Threshold + connected components on the kNN graph (the field's ``knn-cc`` baseline)."""
from __future__ import annotations

import numpy as np

from .._validate import ClustergError, check_features, check_threshold
from ..knn import search_knn
from ..linkage import UnionFind, connected_components, relabel, threshold_edges
from ._common import features_and_knn, ray_engine
from ._threshold import infomap_reference, resolve_threshold
from .base import BaseClusterer

__all__ = ["KNNConnectedComponents"]


class KNNConnectedComponents(BaseClusterer):
    """Link every point to its kNN whose cosine similarity exceeds ``threshold``; clusters are
    the connected components. O(N k) after the kNN search.

    Args:
        k: neighbours per point including itself (default 20; clamped to N).
        threshold: cosine similarity an edge must exceed, or ``"auto"`` (default): chosen from the
            data by :func:`clusterg.linkage.auto_threshold` (``"cc"`` rule). Embeddings differ a lot
            here: dlib faces need about 0.96, MS1M ArcFace features about 0.6-0.7.
        knn_method: ``"auto"`` (default: exact up to :data:`clusterg.knn.AUTO_EXACT_MAX` points,
            ``"ivf-gemm"`` up to :data:`clusterg.knn.AUTO_GEMM_MAX`, ``"hnsw"`` above), ``"flat"``, ``"ivf"``, ``"hnsw"`` or ``"ivf-gemm"``.
        device: faiss device, ``"cpu"``, ``"cuda"`` or ``"auto"``.
        seed: seed for approximate kNN training.
        engine: ``"local"`` (default) or ``"ray"``: run the kNN search and the linkage (per-shard edges,
            one global union-find) on Ray (:mod:`clusterg.distributed`, ``pip install "clusterg[ray]"``); labels are identical with exact kNN.
        address: Ray cluster address for ``engine="ray"`` (None: a local Ray; ``"HOST:PORT"``; ``"auto"``).
        shards: row shards for ``engine="ray"`` (default: the cluster's CPUs).

    Attributes:
        labels_: int64 ``(N,)``, clusters 0..C-1.
        threshold_: the threshold used (the chosen one when ``threshold="auto"``).

    New points can join an existing clustering without redoing it (:meth:`add`), or be assigned
    to it without changing it (:meth:`predict`).
    """

    def __init__(self, k: int = 20, threshold: float | str = "auto", knn_method: str = "auto", device: str = "cpu",
                 seed: int = 0, engine: str = "local", address: str | None = None, shards: int | None = None):
        self.engine = engine
        self.address = address
        self.shards = shards
        self.k = k
        self.threshold = threshold
        self.knn_method = knn_method
        self.device = device
        self.seed = seed

    def fit(self, X, y=None, knn=None) -> "KNNConnectedComponents":
        eng = ray_engine(self.engine, self.address, self.shards)
        x, nbrs, sims = features_and_knn(X, self.k, knn, self.knn_method, self.device, self.seed, engine=eng)
        n = len(x)
        t = self.threshold_ = resolve_threshold(
            self.threshold, x, sims, "cc", "knn-cc", self.seed,
            labels_at=lambda t: connected_components(n, *threshold_edges(nbrs, sims, t)),
            reference=lambda: infomap_reference(x, nbrs, sims, self.seed))
        if eng is not None:
            from ..distributed.linkage import ray_threshold_components
            self.labels_ = ray_threshold_components(nbrs, sims, t, engine=eng)
            rows = np.arange(len(x))[:, None]
            self.n_edges_ = int(((sims > t) & (nbrs != rows)).sum())
        else:
            src, dst = threshold_edges(nbrs, sims, t)
            self.labels_ = connected_components(len(x), src, dst)
            self.n_edges_ = len(src)
        self._x = x
        return self

    def add(self, X_new) -> np.ndarray:
        """Assign new points to the fitted clustering (they may also merge clusters or form new ones).

        Each new point links to its ``k`` nearest among old and new points above ``threshold``,
        exactly as if it had been in the data (its edges from old points' lists are not
        recomputed: old points keep their neighbours). Returns the labels of the new points;
        ``labels_`` grows to cover them. Cluster ids of old points keep their value unless two
        clusters merge (the merged one takes the smaller id).
        """
        if not hasattr(self, "labels_"):
            raise ClustergError("call fit() before add()")
        xn = check_features(X_new, name="new features", normalize=True)
        if xn.shape[1] != self._x.shape[1]:
            raise ClustergError(f"new features have dimension {xn.shape[1]}, fitted ones {self._x.shape[1]}")
        t = check_threshold(self.threshold_)
        allx = np.concatenate([self._x, xn])
        n_old = len(self._x)
        k = min(self.k, len(allx))
        nbrs, sims = search_knn(allx, xn, k, method="flat", device=self.device, normalize=False)
        rows = np.repeat(np.arange(n_old, len(allx)), k)
        keep = (sims.ravel() > t) & (nbrs.ravel() != rows)
        uf = UnionFind.from_labels(self.labels_)
        uf.add(len(xn))
        uf.union_many(rows[keep], nbrs.ravel()[keep])
        roots = uf.roots()
        # keep old ids stable: a cluster takes the smallest old label among its members
        old = np.full(len(allx), np.iinfo(np.int64).max)
        np.minimum.at(old, roots[:n_old], self.labels_)
        lab = old[roots]
        fresh = lab == np.iinfo(np.int64).max
        if fresh.any():
            lab[fresh] = relabel(roots[fresh]) + (self.labels_.max() + 1 if n_old else 0)
        self.labels_ = lab.astype(np.int64)
        self._x = allx
        return self.labels_[n_old:]

    def predict(self, X) -> np.ndarray:
        """Cluster of each new point, without changing the fitted clustering (``labels_`` stays as it is).

        A new point takes the cluster of its most similar fitted point when that similarity
        exceeds the threshold used by ``fit`` (the edge ``fit`` would have drawn), else -1 (no
        cluster). Each point is assigned on its own, so the result does not depend on which other
        points are passed. Use :meth:`add` to grow the clustering instead.

        Args:
            X: float ``(M, D)`` with the fitted D.
        Returns:
            int64 ``(M,)`` cluster ids of ``labels_``, or -1.
        """
        xn = self._check_new_features(X)
        t = check_threshold(getattr(self, "threshold_", self.threshold))
        nbrs, sims = search_knn(self._x, xn, 1, method="flat", device=self.device, normalize=False)
        out = self.labels_[: len(self._x)][nbrs[:, 0]]
        return np.where(sims[:, 0] > t, out, -1).astype(np.int64)
