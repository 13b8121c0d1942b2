"""How surely a face belongs to its cluster, from its kNN: ``confidence`` per face, ``quality`` per cluster."""
from __future__ import annotations

import numpy as np

from .._validate import ClustergError

__all__ = ["face_confidence", "cluster_quality", "labelling_errors", "DEFAULT_TAU"]

#: Width of the soft edge around the threshold, as a share of ``1 - threshold`` (see :func:`face_confidence`).
DEFAULT_TAU = 0.5


def _edge_weight(sims: np.ndarray, threshold: float, tau: float) -> np.ndarray:
    scale = max(tau * (1.0 - threshold), 1e-4)
    return 1.0 / (1.0 + np.exp(-(sims.astype(np.float64) - threshold) / scale))


def face_confidence(nbrs: np.ndarray, sims: np.ndarray, labels: np.ndarray, threshold: float,
                    query_labels: np.ndarray | None = None, tau: float = DEFAULT_TAU) -> np.ndarray:
    """Share of a face's soft kNN edge mass that stays inside its own cluster, in [0, 1].

    Every neighbour ``j`` of face ``i`` (self excluded) carries the weight
    ``w = sigmoid((s_ij - threshold) / (tau * (1 - threshold)))``: about 1 well
    above the edge threshold, 1/2 at it, about 0 well below. The face itself
    counts as one unit of mass inside its cluster, so

    ``confidence_i = (1 + sum_j w_ij [label_j = label_i]) / (1 + sum_j w_ij)``.

    A face whose strong neighbours are all in its cluster scores near 1; a face
    with strong neighbours in other clusters, or with neighbours just around
    the threshold (it could have gone either way), scores low; a face alone
    with nothing near it is sure to be alone and scores near 1.

    Args:
        nbrs: int64 ``(M, k)`` neighbour ids into ``labels`` (self and ``-1`` columns are ignored).
        sims: float ``(M, k)`` cosine similarities.
        labels: int64 ``(N,)`` cluster ids of every face.
        threshold: the clustering's edge threshold.
        query_labels: cluster id of each query row (default: ``labels[:M]``, i.e. the rows are faces 0..M-1).
        tau: width of the soft edge (share of ``1 - threshold``).

    Returns:
        float32 ``(M,)``.
    """
    nbrs = np.asarray(nbrs, dtype=np.int64)
    sims = np.asarray(sims)
    if nbrs.shape != sims.shape or nbrs.ndim != 2:
        raise ClustergError(f"nbrs and sims: expected equal (M, k) shapes, got {nbrs.shape} and {sims.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    m = len(nbrs)
    own = labels[:m] if query_labels is None else np.asarray(query_labels, dtype=np.int64)
    if len(own) != m:
        raise ClustergError(f"query_labels: expected {m} entries, got {len(own)}")
    if m == 0:
        return np.zeros(0, dtype=np.float32)
    valid = nbrs >= 0
    if query_labels is None:
        valid &= nbrs != np.arange(m)[:, None]
    w = _edge_weight(sims, threshold, tau) * valid
    lab = labels[np.where(valid, nbrs, 0)]
    inside = (w * (lab == own[:, None])).sum(axis=1)
    return ((1.0 + inside) / (1.0 + w.sum(axis=1))).astype(np.float32)


def cluster_quality(labels: np.ndarray, confidence: np.ndarray) -> dict[int, float]:
    """Mean member confidence of every cluster: ``{cluster id: quality in [0, 1]}``."""
    labels = np.asarray(labels, dtype=np.int64)
    confidence = np.asarray(confidence, dtype=np.float64)
    if labels.shape != confidence.shape:
        raise ClustergError(f"labels and confidence differ in shape: {labels.shape} vs {confidence.shape}")
    if len(labels) == 0:
        return {}
    ids, inv = np.unique(labels, return_inverse=True)
    mean = np.bincount(inv, weights=confidence) / np.bincount(inv)
    return {int(c): float(q) for c, q in zip(ids, mean)}


def labelling_errors(gt, pred) -> np.ndarray:
    """Which faces a clustering got wrong, against true identities ``gt`` (bool ``(N,)``).

    Face ``i`` is an error when it is not in its identity's majority cluster
    (the cluster holding most of that identity's faces; ties to the lower id),
    or when its cluster's majority identity is not its identity. This counts
    faces split off their person and faces merged into someone else's.
    """
    gt = np.asarray(gt, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if gt.shape != pred.shape or gt.ndim != 1:
        raise ClustergError(f"gt and pred: expected equal 1-D shapes, got {gt.shape} and {pred.shape}")
    if len(gt) == 0:
        return np.zeros(0, dtype=bool)
    _, g = np.unique(gt, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    pairs = g.astype(np.int64) * (p.max() + 1) + p
    uniq, count = np.unique(pairs, return_counts=True)
    ug, up = uniq // (p.max() + 1), uniq % (p.max() + 1)
    # majority cluster of each identity, majority identity of each cluster (ties: lower index)
    order = np.lexsort((up, -count, ug))
    best_p = np.full(g.max() + 1, -1, dtype=np.int64)
    first = np.r_[True, ug[order][1:] != ug[order][:-1]]
    best_p[ug[order][first]] = up[order][first]
    order = np.lexsort((ug, -count, up))
    best_g = np.full(p.max() + 1, -1, dtype=np.int64)
    first = np.r_[True, up[order][1:] != up[order][:-1]]
    best_g[up[order][first]] = ug[order][first]
    return (best_p[g] != p) | (best_g[p] != g)
