"""Tree deduction: confidences (and optional edge scores) -> clusters.

GCN-V / GCN-E linkage (Yang et al., CVPR 2020). Every node links to one
*parent*: among its kNN neighbours with a strictly higher confidence, the
nearest one (GCN-V), or the one GCN-E scores highest. Edges whose cosine
similarity is at most ``tau`` are cut; the remaining parent edges form a forest
whose trees are the clusters (nodes with no higher-confidence neighbour are
roots, i.e. cluster peaks).
"""
from __future__ import annotations

import numpy as np

from .._validate import ClustergError, check_threshold
from ..knn.io import check_knn
from .components import connected_components

__all__ = ["sort_knn", "nearest_higher", "candidate_sets", "ignore_mask", "tree_deduction",
           "parents_to_labels"]


def _check(nbrs, sims, conf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nbrs, sims = check_knn(nbrs, sims, allow_pad=True)
    conf = np.asarray(conf)
    if conf.ndim != 1 or len(conf) != nbrs.shape[0]:
        raise ClustergError(f"confidence: expected shape ({nbrs.shape[0]},), got {tuple(conf.shape)}")
    if not np.issubdtype(conf.dtype, np.number) or not np.isfinite(conf).all():
        raise ClustergError("confidence: must be finite numbers")
    return nbrs, sims, conf.astype(np.float64)


def sort_knn(nbrs: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by descending similarity (stable), so "first" means "nearest"."""
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(nbrs, order, 1), np.take_along_axis(sims, order, 1)


def nearest_higher(nbrs, sims, conf) -> tuple[np.ndarray, np.ndarray]:
    """For each node, the nearest kNN neighbour with a strictly higher confidence.

    Args:
        nbrs, sims: (N, k) kNN lists (any row order; ``-1`` pads ignored).
        conf: (N,) confidences.
    Returns:
        ``parent`` int64 (N,) (-1 for peaks) and ``parent_sim`` float32 (N,) (-inf for peaks).
    """
    nbrs, sims, conf = _check(nbrs, sims, conf)
    nbrs, sims = sort_knn(nbrs, sims)
    n = nbrs.shape[0]
    valid = (nbrs >= 0) & (nbrs != np.arange(n)[:, None])
    higher = valid & (conf[np.where(nbrs >= 0, nbrs, 0)] > conf[:, None])
    has = higher.any(axis=1)
    first = np.argmax(higher, axis=1)
    parent = np.where(has, nbrs[np.arange(n), first], -1).astype(np.int64)
    psim = np.where(has, sims[np.arange(n), first], -np.inf).astype(np.float32)
    return parent, psim


def candidate_sets(nbrs, sims, conf) -> tuple[np.ndarray, np.ndarray]:
    """GCN-E candidate sets: neighbours with higher confidence, nearest first.

    Returns ``(cand, mask)``: ``cand`` int64 (N, k) neighbour ids in nearest-first
    order and ``mask`` bool (N, k) marking the candidates (sorted to the left).
    """
    nbrs, sims, conf = _check(nbrs, sims, conf)
    nbrs, sims = sort_knn(nbrs, sims)
    n = nbrs.shape[0]
    valid = (nbrs >= 0) & (nbrs != np.arange(n)[:, None])
    mask = valid & (conf[np.where(nbrs >= 0, nbrs, 0)] > conf[:, None])
    order = np.argsort(~mask, axis=1, kind="stable")  # candidates first, keeping distance order
    return np.take_along_axis(nbrs, order, 1), np.take_along_axis(mask, order, 1)


def ignore_mask(conf, ignore_ratio: float) -> np.ndarray:
    """The ``int(N * ignore_ratio)`` lowest-confidence nodes (GCN-E skips them): bool (N,)."""
    conf = np.asarray(conf, dtype=np.float64)
    ignore_ratio = check_threshold(ignore_ratio, "ignore_ratio", lo=0.0, hi=1.0)
    n = len(conf)
    m = int(n * ignore_ratio)
    mask = np.zeros(n, dtype=bool)
    if m >= n:
        mask[:] = True
    elif m > 0:
        mask[np.argsort(conf, kind="stable")[:m]] = True
    return mask


def parents_to_labels(parent, parent_sim, tau: float) -> np.ndarray:
    """Keep parent edges with similarity > ``tau``, union-find: int64 labels 0..C-1."""
    parent = np.asarray(parent, dtype=np.int64)
    parent_sim = np.asarray(parent_sim, dtype=np.float64)
    if parent.shape != parent_sim.shape or parent.ndim != 1:
        raise ClustergError("parent and parent_sim must be 1-D arrays of one length")
    tau = check_threshold(tau, "tau")
    n = len(parent)
    keep = (parent >= 0) & (parent_sim > tau)
    src = np.flatnonzero(keep)
    return connected_components(n, src, parent[src])


def tree_deduction(nbrs, sims, conf, tau: float, parent=None, parent_sim=None) -> np.ndarray:
    """Cluster labels from confidences on a kNN graph.

    Args:
        nbrs, sims: (N, k) kNN lists with cosine similarities.
        conf: (N,) predicted confidences.
        tau: cut parent edges with similarity <= tau.
        parent, parent_sim: optional (N,) overrides (e.g. GCN-E's choices); by default
            the nearest higher-confidence neighbour.
    Returns:
        int64 (N,) labels 0..C-1, clusters numbered by first member.
    """
    if parent is None:
        parent, parent_sim = nearest_higher(nbrs, sims, conf)
    elif parent_sim is None:
        raise ClustergError("parent_sim is required with parent")
    return parents_to_labels(parent, parent_sim, tau)
