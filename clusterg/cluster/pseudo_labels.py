"""Pseudo-labels for training on unlabeled data: labels, outliers (-1) and reliabilities.

Unsupervised re-identification (SpCL, Cluster-Contrast) and pseudo-labelling of
unlabeled faces cluster the training embeddings once per epoch and train on the
result. :func:`pseudo_labels` is that step:

* ``method="dbscan-jaccard"``: the k-reciprocal Jaccard distance
  (:func:`clusterg.transforms.k_reciprocal_jaccard`, k1, k2), then DBSCAN
  (``eps``, ``min_samples``) on it; DBSCAN noise points are outliers (-1).
* ``method="infomap"``: Infomap on the cosine kNN graph (``k`` neighbours, edges with
  similarity above ``min_sim``); clusters of fewer than ``min_size`` points are outliers.

Reliability (SpCL's self-paced criteria, Ge et al., NeurIPS 2020). The clustering is
repeated with a tighter and a looser setting (``eps -/+ delta``, or ``min_sim +/- delta``
for Infomap); with ``C(i)`` the cluster of ``i`` (``{i}`` for an outlier):

* ``independence[i] = IoU(C(i), C_loose(i))``: 1 when the cluster does not merge with
  others when the criterion is relaxed;
* ``compactness[i] = IoU(C(i), C_tight(i))``: 1 when the cluster does not split when it
  is tightened;
* ``sample_reliability[i] = min(independence[i], compactness[i])`` (0 for outliers);
* ``cluster_reliability[c]`` = the largest ``independence`` among the members of ``c``;
* ``reliable[i]`` (SpCL's rule): ``i`` is in a cluster whose reliability is at least the
  ``reliable_quantile`` (default 0.1) quantile over the clusters of two or more points,
  and ``compactness[i]`` is the largest in its cluster.

Everything is deterministic: the same features and parameters give the same labels
(clusters numbered by their first member, outliers -1).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .._validate import ClustergError, check_features, check_threshold

__all__ = ["pseudo_labels", "PseudoLabels", "PSEUDO_LABEL_PRESETS", "PSEUDO_LABEL_METHODS"]

logger = logging.getLogger("clusterg.cluster.pseudo_labels")

PSEUDO_LABEL_METHODS = ("dbscan-jaccard", "infomap")

#: Named defaults: SpCL and Cluster-Contrast (DBSCAN on the k-reciprocal Jaccard distance, their re-ID
#: values), Cluster-Contrast's Infomap variant (faiss kNN graph, k 15, min_sim 0.5, clusters of <= 4 are
#: outliers), and ``spcl-faces``: SpCL's pipeline with eps 0.4 for dlib face features, chosen on held-aside
#: CelebA train identities (benchmarks/pseudo_label_eps.py), where eps 0.6 merges identities (docs/reid.rst).
PSEUDO_LABEL_PRESETS: dict[str, dict] = {
    "spcl": {"method": "dbscan-jaccard", "k1": 30, "k2": 6, "eps": 0.6, "min_samples": 4},
    "spcl-faces": {"method": "dbscan-jaccard", "k1": 30, "k2": 6, "eps": 0.4, "min_samples": 4},
    "cluster-contrast": {"method": "dbscan-jaccard", "k1": 30, "k2": 6, "eps": 0.6, "min_samples": 4},
    "cluster-contrast-infomap": {"method": "infomap", "k": 15, "min_sim": 0.5, "min_size": 5},
}

_DEFAULTS = {"k1": 30, "k2": 6, "eps": 0.6, "min_samples": 4, "k": 15, "min_sim": 0.5, "min_size": 5}


@dataclass
class PseudoLabels:
    """Result of :func:`pseudo_labels` (N points, C clusters).

    Attributes:
        labels: int64 (N,), cluster ids 0..C-1, outliers -1.
        sample_reliability: float32 (N,) in [0, 1], 0 for outliers.
        cluster_reliability: float32 (C,) in [0, 1].
        independence: float32 (N,), IoU with the looser clustering.
        compactness: float32 (N,), IoU with the tighter clustering.
        reliable: bool (N,), SpCL's keep rule (see the module docstring).
        params: the parameters used (preset applied).
    """

    labels: np.ndarray
    sample_reliability: np.ndarray
    cluster_reliability: np.ndarray
    independence: np.ndarray
    compactness: np.ndarray
    reliable: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max() + 1) if len(self.labels) and self.labels.max() >= 0 else 0

    @property
    def n_outliers(self) -> int:
        return int((self.labels < 0).sum())

    def summary(self) -> dict:
        """Counts as a JSON-ready dict."""
        sizes = np.bincount(self.labels[self.labels >= 0]) if self.n_clusters else np.zeros(0, np.int64)
        return {"n": int(len(self.labels)), "n_clusters": self.n_clusters, "n_outliers": self.n_outliers,
                "largest_cluster": int(sizes.max()) if len(sizes) else 0,
                "n_reliable": int(self.reliable.sum()),
                "mean_sample_reliability": float(self.sample_reliability.mean()) if len(self.labels) else 0.0}


def _number(labels: np.ndarray) -> np.ndarray:
    """Clusters 0..C-1 in order of their first member, negatives -> -1."""
    out = np.full(len(labels), -1, dtype=np.int64)
    pos = labels >= 0
    if pos.any():
        _, first, inv = np.unique(labels[pos], return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        out[pos] = rank[inv.ravel()]
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per point: IoU of its cluster in ``a`` with its cluster in ``b`` (-1 = alone)."""
    n = len(a)
    a = np.where(a < 0, a.max(initial=-1) + 1 + np.arange(n), a)
    b = np.where(b < 0, b.max(initial=-1) + 1 + np.arange(n), b)
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    size_a = np.bincount(a)
    size_b = np.bincount(b)
    key = a.astype(np.int64) * (b.max() + 1) + b
    _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    inter = cnt[inv.ravel()]
    return (inter / (size_a[a] + size_b[b] - inter)).astype(np.float32)


def _dbscan(graph, eps: float, min_samples: int) -> np.ndarray:
    from sklearn.cluster import DBSCAN
    return DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(graph)


def _jaccard_graph(x, k1, k2, eps_max, max_neighbors, knn, knn_method, device, seed, quiet):
    from ..transforms.k_reciprocal import k_reciprocal_jaccard
    g = k_reciprocal_jaccard(x, k1=k1, k2=k2, knn=knn, max_neighbors=max_neighbors,
                             max_distance=min(1.0, eps_max + 1e-6), knn_method=knn_method, device=device,
                             seed=seed, quiet=quiet)
    # distances of exactly 0 (self, duplicates) would vanish from a sparse graph; the floor keeps them
    g.data = np.maximum(g.data, 1e-12).astype(np.float64)
    g = g.maximum(g.T).tocsr()  # d_J is symmetric; rows cut by max_neighbors are completed from the other side
    g.sort_indices()
    return g


def _infomap(nbrs, sims, min_sim, min_size, seed):
    from .infomap import infomap_labels
    n = nbrs.shape[0]
    rows = np.repeat(np.arange(n), nbrs.shape[1])
    cols, w = nbrs.ravel(), sims.ravel()
    keep = (cols != rows) & (w > min_sim)
    lab = infomap_labels(n, rows[keep], cols[keep], w[keep], seed=seed)
    sizes = np.bincount(lab)
    return np.where(sizes[lab] < min_size, -1, lab)


def _warn_collapse(labels: np.ndarray, params: dict) -> None:
    n = len(labels)
    if n < 20:
        return
    out = float((labels < 0).mean())
    biggest = int(np.bincount(labels[labels >= 0]).max()) if (labels >= 0).any() else 0
    hint = ("dlib-style face features have compressed cosine similarities; tune eps (dbscan-jaccard) "
            "or min_sim (infomap) on these data")
    if out >= 0.95:
        logger.warning("pseudo_labels: %.0f%% of the %d points are outliers (%s); %s", 100 * out, n, params, hint)
    elif biggest >= 0.5 * n:
        logger.warning("pseudo_labels: one cluster holds %d of the %d points (%s); %s", biggest, n, params, hint)


def pseudo_labels(x, method: str | None = None, preset: str | None = None, *, k1: int | None = None,
                  k2: int | None = None, eps: float | None = None, min_samples: int | None = None,
                  k: int | None = None, min_sim: float | None = None, min_size: int | None = None,
                  delta: float = 0.02, reliable_quantile: float = 0.1, max_neighbors: int | None = None,
                  knn=None, knn_method: str = "flat", device: str = "cpu", seed: int = 0,
                  quiet: bool | None = None) -> PseudoLabels:
    """Cluster embeddings into pseudo-labels with outliers and reliabilities (one call per epoch).

    Args:
        x: features (N, D), N >= 2 (numpy, memmap or torch); L2-normalised here.
        method: ``"dbscan-jaccard"`` (default) or ``"infomap"``; a preset sets it too.
        preset: a name in :data:`PSEUDO_LABEL_PRESETS` (``"spcl"``, ``"spcl-faces"``,
            ``"cluster-contrast"``, ``"cluster-contrast-infomap"``); explicit arguments override its values.
        k1, k2: k-reciprocal and query-expansion sizes (dbscan-jaccard; defaults 30, 6).
        eps: DBSCAN radius on the Jaccard distance (default 0.6).
        min_samples: DBSCAN core-point neighbourhood, the point included (default 4).
        k: kNN size for Infomap, self included (default 15).
        min_sim: Infomap edge threshold on cosine similarity (default 0.5).
        min_size: Infomap clusters smaller than this are outliers (default 5).
        delta: offset of the tight and loose clusterings for the reliabilities (default 0.02,
            SpCL's); 0 switches the extra clusterings off (all reliabilities 1 for clusters).
        reliable_quantile: cluster-reliability quantile below which clusters are unreliable.
        max_neighbors: Jaccard pairs kept per point (default ``4 * (k1 + 1)``).
        knn: optional precomputed ``(nbrs, sims)`` (self first).
        knn_method, device, seed: kNN search (and Infomap's seed).

    Returns:
        :class:`PseudoLabels`. A warning is logged when the result has collapsed (one
        cluster with half the points or more, or 95 % outliers).
    """
    if preset is not None:
        if preset not in PSEUDO_LABEL_PRESETS:
            raise ClustergError(f"unknown preset {preset!r}; choose one of {', '.join(PSEUDO_LABEL_PRESETS)}")
        base = dict(PSEUDO_LABEL_PRESETS[preset])
        if method is not None and method != base["method"]:
            raise ClustergError(f"preset {preset!r} uses method {base['method']!r}, not {method!r}")
    else:
        base = {"method": method or "dbscan-jaccard"}
    method = base.pop("method")
    if method not in PSEUDO_LABEL_METHODS:
        raise ClustergError(f"unknown method {method!r}; choose one of {', '.join(PSEUDO_LABEL_METHODS)}")
    given = {"k1": k1, "k2": k2, "eps": eps, "min_samples": min_samples, "k": k, "min_sim": min_sim,
             "min_size": min_size}
    p = {name: (given[name] if given[name] is not None else base.get(name, _DEFAULTS[name])) for name in given}
    delta = check_threshold(delta, "delta", 0.0, 0.5)
    reliable_quantile = check_threshold(reliable_quantile, "reliable_quantile", 0.0, 1.0)
    x = check_features(x, name="features", min_n=2, normalize=True)
    n = x.shape[0]
    for name in ("k1", "k2", "min_samples", "k", "min_size"):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
            raise ClustergError(f"{name}: expected an integer >= 1, got {v!r}")
        p[name] = int(v)
    if method == "dbscan-jaccard":
        eps_ = check_threshold(p["eps"], "eps", 0.0, 1.0)
        if eps_ <= 0:
            raise ClustergError("eps: must be > 0")
        mn = 4 * (p["k1"] + 1) if max_neighbors is None else max_neighbors
        g = _jaccard_graph(x, p["k1"], p["k2"], eps_ + delta, mn, knn, knn_method, device, seed, quiet)

        def run(e):
            return _dbscan(g, max(e, 1e-9), p["min_samples"])

        runs = (run(eps_), run(eps_ - delta), run(eps_ + delta)) if delta > 0 else (run(eps_),)
        used = {"method": method, **{kk: p[kk] for kk in ("k1", "k2", "eps", "min_samples")}}
    else:
        min_sim_ = check_threshold(p["min_sim"], "min_sim", -1.0, 1.0)
        from ._common import features_and_knn
        _, nbrs, sims = features_and_knn(x, p["k"], knn, knn_method, device, seed, min_n=2)

        def run(t):
            return _infomap(nbrs, sims, t, p["min_size"], seed)

        runs = ((run(min_sim_), run(min(1.0, min_sim_ + delta)), run(max(-1.0, min_sim_ - delta)))
                if delta > 0 else (run(min_sim_),))
        used = {"method": method, **{kk: p[kk] for kk in ("k", "min_sim", "min_size")}}
    used["delta"] = delta
    labels = _number(runs[0])
    _warn_collapse(labels, used)
    if len(runs) == 3:
        compactness = _iou(labels, runs[1])
        independence = _iou(labels, runs[2])
    else:
        compactness = np.ones(n, np.float32)
        independence = np.ones(n, np.float32)
    out = labels < 0
    compactness[out] = 0.0
    independence[out] = 0.0
    c = int(labels.max() + 1) if (~out).any() else 0
    cl_rel = np.zeros(c, np.float32)
    cl_comp = np.zeros(c, np.float32)
    if c:
        np.maximum.at(cl_rel, labels[~out], independence[~out])
        np.maximum.at(cl_comp, labels[~out], compactness[~out])
    sample_rel = np.minimum(independence, compactness)
    reliable = np.zeros(n, bool)
    if c:
        sizes = np.bincount(labels[~out], minlength=c)
        multi = cl_rel[sizes > 1]
        thr = float(np.quantile(multi, reliable_quantile)) if len(multi) else 0.0
        lab = labels[~out]
        reliable[~out] = (cl_rel[lab] >= thr) & (compactness[~out] >= cl_comp[lab] - 1e-6)
    return PseudoLabels(labels=labels, sample_reliability=sample_rel.astype(np.float32),
                        cluster_reliability=cl_rel, independence=independence, compactness=compactness,
                        reliable=reliable, params=used)
