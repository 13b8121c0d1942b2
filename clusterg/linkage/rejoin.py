"""Rejoin the pieces of one cluster that a finer clustering split, where a reference clustering keeps them whole.

Ada-NETS links its refined embeddings with Infomap on an 80-NN graph. On identities of several
hundred faces that graph can hold two or three dense communities of one person, and Infomap
separates them: large pieces of one identity (synthetic median-500 sets: pairwise F 0.56-0.95).
Infomap on the raw 20-NN graph keeps those identities whole, but is coarser on small ones. The rule
here takes the best of both: two clusters of at least ``min_size`` points are joined when more than
half of each lies in the same reference module. Small clusters, where Ada-NETS is the finer and the
better judge, are never touched.
"""
from __future__ import annotations

import numpy as np

from .._validate import ClustergError, check_int
from .components import connected_components, relabel

__all__ = ["rejoin_by_reference", "majority_groups", "REJOIN_MIN_SIZE"]

#: Smallest cluster the rule may join; fitted on training identities and synthetic sets
#: (``benchmarks/fit_rejoin.py`` -> ``docs/benchmarks/rejoin_fit.json``).
REJOIN_MIN_SIZE = 50


def _labels(a, name: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ClustergError(f"{name}: expected a 1-D integer label array, got shape {a.shape} dtype {a.dtype}")
    if n is not None and len(a) != n:
        raise ClustergError(f"{name}: has {len(a)} labels, expected {n} (one per point of labels)")
    if len(a) and a.min() < 0:
        raise ClustergError(f"{name}: labels must be >= 0 (got {int(a.min())})")
    return a.astype(np.int64)


def majority_groups(labels, reference, min_size: int = 1) -> list[list[int]]:
    """The clusters of ``labels`` that share the ``reference`` module holding the majority of each.

    A module holds the majority of a cluster when it has more than half of its points (at most
    one can). Clusters smaller than ``min_size`` take no part.

    Returns:
        one sorted list of cluster ids (as given in ``labels``) per module holding the majority of
        two or more clusters, in order of module id.
    """
    lab = _labels(labels, "labels")
    ref = _labels(reference, "reference", len(lab))
    min_size = check_int(min_size, "min_size", 1)
    if len(lab) == 0:
        return []
    ids, lab = np.unique(lab, return_inverse=True)
    mods, ref = np.unique(ref, return_inverse=True)
    size = np.bincount(lab)
    pair, count = np.unique(lab * len(mods) + ref, return_counts=True)
    owner, module = pair // len(mods), pair % len(mods)
    major = (2 * count > size[owner]) & (size[owner] >= min_size)
    groups: dict[int, list[int]] = {}
    for m, o in zip(module[major].tolist(), owner[major].tolist()):  # pairs come sorted by (owner, module)
        groups.setdefault(m, []).append(int(ids[o]))
    return [sorted(g) for _, g in sorted(groups.items()) if len(g) > 1]


def rejoin_by_reference(labels, reference, min_size: int = REJOIN_MIN_SIZE) -> tuple[np.ndarray, int]:
    """Join clusters of ``labels`` that one module of ``reference`` holds the majority of.

    Args:
        labels: ``(N,)`` cluster ids (the finer clustering, e.g. Ada-NETS').
        reference: ``(N,)`` cluster ids of the same points (e.g. Infomap's on the raw kNN graph).
        min_size: only clusters of at least this many points take part (default
            :data:`REJOIN_MIN_SIZE`).

    Returns:
        ``(labels, joins)``: ``(N,)`` ids ``0..C-1`` numbered by first member, and how many clusters
        were joined into another (0: ``labels`` unchanged up to renumbering).
    """
    lab = relabel(_labels(labels, "labels"))
    groups = majority_groups(lab, reference, min_size)
    if not groups:
        return lab, 0
    src = np.asarray([g[0] for g in groups for _ in g[1:]], dtype=np.int64)
    dst = np.asarray([c for g in groups for c in g[1:]], dtype=np.int64)
    n_lab = int(lab.max()) + 1
    out = relabel(connected_components(n_lab, src, dst)[lab])
    return out, int(n_lab - (int(out.max()) + 1))
