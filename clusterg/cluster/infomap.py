"""Infomap community detection on the kNN graph: the unsupervised anchor of the field."""
from __future__ import annotations

import logging
import os
import tempfile

import numpy as np

from .._validate import ClustergError, check_k
from ..linkage import relabel
from ._common import features_and_knn
from ._threshold import is_auto, resolve_threshold
from .base import BaseClusterer

__all__ = ["InfomapClusterer", "infomap_labels", "edge_weights", "WEIGHTINGS"]

#: neighbours the label-free threshold rule looks at (see :func:`clusterg.linkage.auto_threshold`)
RULE_K = 80
logger = logging.getLogger("clusterg.cluster.infomap")
_LINK_BLOCK = 1 << 22  # links handed to Infomap at once
#: ``k="auto"``: neighbours per point for compact (dlib-like) and for spread (text, ArcFace) geometry
AUTO_K = {"compact": 20, "spread": 80}
#: ``k="auto"`` with the silhouette cut search (compact embeddings, 20 to 20,000 points): the k values
#: searched; the one whose silhouette peak is highest is kept, ties to the larger k. Chosen on training
#: identities and synthetic sets, with identities of hundreds of faces among them (``benchmarks/fit_infomap_k.py``,
#: ``docs/benchmarks/infomap_k.json``)
SEARCH_K = (10, 20)
#: relative tolerance below the highest silhouette peak within which the larger k is kept (same fit)
SEARCH_K_TOL = 0.005


WEIGHTINGS = ("similarity", "margin", "margin2")


def edge_weights(sims: np.ndarray, cut: float, weighting: str) -> np.ndarray:
    """Infomap link weights of the edges kept above ``cut``: their cosine similarity
    (``"similarity"``), or their margin above the cut, ``(s - cut) / (1 - cut)`` (``"margin"``) or its
    square (``"margin2"``), so that an edge counts nothing at the cut and fully for identical features."""
    if weighting == "similarity":
        return sims
    m = (np.asarray(sims, dtype=np.float64) - cut) / max(1.0 - cut, 1e-12)
    m = m if weighting == "margin" else m * m
    return np.maximum(m, 1e-6)  # Infomap drops links of weight 0


def infomap_labels(n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, seed: int = 0,
                   trials: int = 1, directed: bool = False) -> np.ndarray:
    """Two-level Infomap modules of a weighted graph on ``n`` nodes (isolated nodes are singletons)."""
    try:
        import infomap
    except ImportError:
        raise ClustergError('Infomap needs the infomap package: pip install "clusterg[infomap]"') from None
    # Infomap seeds start at 1
    flags = f"--two-level --silent --seed {int(seed) + 1} --num-trials {int(trials)}"
    flags += " --directed" if directed else ""
    im = infomap.Infomap(flags)
    im.add_nodes(range(int(n)))
    # in blocks, in order (the same network as one call): the float64 link table is 24 bytes an edge, which at
    # millions of nodes would sit beside Infomap's own copy of the network
    for s in range(0, len(src), _LINK_BLOCK):
        im.add_links(np.column_stack([src[s:s + _LINK_BLOCK], dst[s:s + _LINK_BLOCK],
                                      weight[s:s + _LINK_BLOCK]]).astype(np.float64))
    im.run()
    # Read the partition through a .clu file, not the result iterators: infomap and faiss are both
    # SWIG modules, and when infomap is imported first its iterators resolve to faiss's and crash.
    with tempfile.TemporaryDirectory(prefix="clusterg-infomap-") as tmp:
        clu = os.path.join(tmp, "modules.clu")
        im.write_clu(clu)
        table = np.loadtxt(clu, comments="#", usecols=(0, 1), dtype=np.int64, ndmin=2)
    labels = np.full(int(n), -1, dtype=np.int64)
    labels[table[:, 0]] = table[:, 1]
    missing = labels < 0  # every node was added, so none should be; keep them apart if one is
    labels[missing] = labels.max() + 1 + np.arange(missing.sum())
    return relabel(labels)


class InfomapClusterer(BaseClusterer):
    """Infomap (two-level, undirected) on the kNN graph, edges weighted by cosine similarity.

    Args:
        k: neighbours per point including itself, or ``"auto"`` (default): 20 for compact
            embeddings (dlib faces, similarity gap below 0.35), 80 for spread ones (text, ArcFace),
            read off the same label-free similarity scale as the threshold
            (:func:`clusterg.linkage.auto_threshold.geometry_weight`). Where the cut is chosen by
            silhouette (compact, 20 to 20,000 points, ``threshold="auto"``), k is chosen with it:
            the cut search runs for each k of :data:`SEARCH_K` and the largest k whose silhouette
            peak is within :data:`SEARCH_K_TOL` (relative) of the highest is kept. ``k_`` holds the
            value used.
        threshold: keep edges with similarity above it, or ``"auto"`` (default): chosen from the
            data, on compact embeddings of up to 20,000 points by the silhouette of the clusterings
            over a grid of cuts (:func:`clusterg.linkage.threshold_search.select_threshold`), else by
            :func:`clusterg.linkage.auto_threshold` (``"infomap"`` rule). For reference the
            plain-Infomap face baseline uses k=50, ``min_sim`` 0.58 on MS1M features; dlib face
            vectors are best near 0.94-0.95.
        knn_method, device, seed: as :class:`~clusterg.cluster.KNNConnectedComponents`; ``seed``
            also seeds Infomap, so the same input gives the same clusters.
        trials: Infomap restarts (the best is kept).
        weighting: link weights: ``"similarity"`` (default: the cosine similarity, plain Infomap),
            ``"margin"`` or ``"margin2"``: the margin above the cut, ``(s - t) / (1 - t)``, or its square
            (:func:`edge_weights`; measured against the default in ``docs/defaults.rst``).
    """

    def __init__(self, k: int | str = "auto", threshold: float | str = "auto", knn_method: str = "auto", device: str = "cpu",
                 seed: int = 0, trials: int = 1, weighting: str = "similarity"):
        self.weighting = weighting
        self.k = k
        self.threshold = threshold
        self.knn_method = knn_method
        self.device = device
        self.seed = seed
        self.trials = trials

    def fit(self, X, y=None, knn=None) -> "InfomapClusterer":
        if self.weighting not in WEIGHTINGS:
            raise ClustergError(f"weighting: expected one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        auto_k = isinstance(self.k, str)
        if auto_k and self.k != "auto":
            raise ClustergError(f"k: expected an integer or 'auto', got {self.k!r}")
        if auto_k:  # the largest k it may pick; the graph's own k is chosen once the scale is known
            k = min(RULE_K, int(np.shape(X)[0]) if np.ndim(X) == 2 else RULE_K)
            if knn is not None and np.ndim(knn[0]) == 2:
                k = max(1, min(k, int(np.shape(knn[0])[1])))
        else:
            k = check_k(self.k, 10**12, name="k")
        k_search = k
        if is_auto(self.threshold) or auto_k:
            # the rule reads its identity-size share off an 80-NN list (as it was fitted), whatever k the graph uses
            k_search = max(k, min(RULE_K, int(np.shape(X)[0]) if np.ndim(X) == 2 else k))
            if knn is not None:
                k_search = max(k, min(k_search, int(np.shape(knn[0])[1])))
        x, nbrs, sims = features_and_knn(X, k_search, knn, self.knn_method, self.device, self.seed)
        if auto_k:
            from ..linkage.auto_threshold import geometry_weight, similarity_scale
            w = geometry_weight(*similarity_scale(x, sims, seed=self.seed)) if len(x) >= 3 and sims.shape[1] >= 2 else 0.0
            k = min(AUTO_K["spread" if w >= 0.5 else "compact"], sims.shape[1])
            logger.info("infomap: k=%d neighbours (%s embeddings)", k, "spread" if w >= 0.5 else "compact")
        k = min(k, nbrs.shape[1])  # tiny inputs: the search clamped k to N
        n = len(x)

        idx = np.int32 if n < 2**31 else np.int64  # edge lists of millions of nodes: half the memory

        def labels_fn(k: int):
            rows = np.repeat(np.arange(n, dtype=idx), k)
            cols, w = nbrs[:, :k].astype(idx).ravel(), sims[:, :k].ravel()
            edge = cols != rows

            def labels_at(t: float) -> np.ndarray:
                keep = edge & (w > t)
                return infomap_labels(n, rows[keep], cols[keep], edge_weights(w[keep], t, self.weighting),
                                      seed=self.seed, trials=self.trials)
            return labels_at

        labels_at = labels_fn(k)
        from ..linkage.threshold_search import SilhouetteScorer
        scorer = SilhouetteScorer.lazy(x, seed=self.seed)  # one distance table for every k searched
        t, found = resolve_threshold(self.threshold, x, sims, "infomap", "infomap", self.seed, labels_at=labels_at,
                                     scorer=scorer, with_choice=True)
        if auto_k and found is not None and k == AUTO_K["compact"]:
            # the cut was chosen by silhouette: the neighbourhood size is chosen the same way, so that
            # libraries of few faces per person are not over-linked by 20 neighbours
            tried = {k: (found.peak, t, labels_at)}
            for kk in SEARCH_K:
                if kk not in tried and kk < nbrs.shape[1]:
                    fn = labels_fn(kk)
                    tk, ch = resolve_threshold(self.threshold, x, sims, "infomap", f"infomap (k={kk})", self.seed,
                                               labels_at=fn, scorer=scorer, with_choice=True)
                    if ch is not None:
                        tried[kk] = (ch.peak, tk, fn)
            top = max(v[0] for v in tried.values())
            kept = max(kk for kk, v in tried.items() if v[0] >= top - SEARCH_K_TOL * abs(top))
            if kept != k:
                logger.info("infomap: k=%d neighbours (silhouette peak %.3f against %.3f at k=%d)", kept,
                            tried[kept][0], found.peak, k)
            k = kept
            _, t, labels_at = tried[k]
        self.k_ = k
        self.threshold_ = t
        del x, scorer  # the features are not needed for the final run (at millions of rows, a copy of them)
        self.labels_ = labels_at(t)
        return self
