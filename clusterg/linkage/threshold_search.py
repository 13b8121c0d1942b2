"""Choosing an edge threshold by looking at the clusterings it gives (label-free).

The similarity-scale rules of :mod:`clusterg.linkage.auto_threshold` place a cut from two
statistics of the data; they were fitted on sets of thousands of points and miss on small
libraries whose identities hold 10-50 faces (ORL-, Yale- or UMIST-like sets: the cut that
suits 10,000 CelebA faces splits them). For up to :data:`SELECT_MAX_N` points the threshold is
instead chosen by *looking at the clusterings*: the method is run at every threshold of a grid
spanning the data's kNN similarities, and each result is scored by its mean silhouette

    s(i) = (b(i) - a(i)) / max(a(i), b(i)),

``a(i)`` the mean cosine distance of point ``i`` to the other members of its cluster, ``b(i)``
the smallest mean distance to another cluster, ``s(i) = 0`` for a singleton (scikit-learn's
convention). Silhouettes change slowly near their peak while the clustering moves from merging
look-alikes to splitting people, so the cut taken is the **largest** threshold whose silhouette
stays within a relative tolerance :data:`SILHOUETTE_TOL` of the peak, contiguous with it (the
finest clustering that is as coherent as the best one). Partitions with one cluster, or with a
cluster holding more than half of the points, are never chosen.

``SILHOUETTE_TOL`` was chosen on CelebA ``train`` identities (the held-aside part, and ORL-,
Yale- and UMIST-shaped subsets of 40 x 10, 15 x 11 and 20 x 19-30 faces) and on synthetic sets of
median identity size 5, 50 and 500 (``benchmarks/fit_silhouette_tol.py``, results in
``docs/benchmarks/silhouette_tol.json``; ``docs/defaults.rst`` gives the protocol).

Linkages that chain (connected components, DBSCAN) or average (HAC) score poorly on silhouette
near their best cut: a few look-alike bridges leave the silhouette flat. Their threshold is
chosen by **agreement** instead (:func:`select_by_agreement`): the cut whose clustering has the
highest pairwise F against a reference clustering of the same points, here the
silhouette-chosen Infomap clustering. No labels enter; the linkage keeps its own character
(a single-linkage result, merged at its own cut), only the cut is read off the reference.

Cost: one clustering per grid point plus, per clustering, the distances of at most
:data:`SAMPLE` sampled points to all ``N`` (computed once; O(SAMPLE N) per score), so the
silhouette is exact below ``SAMPLE`` points and an unbiased estimate above.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .._validate import ClustergError

__all__ = ["SilhouetteScorer", "select_threshold", "threshold_grid", "SILHOUETTE_TOL", "SELECT_MAX_N", "SAMPLE",
           "ThresholdChoice", "select_by_agreement", "pairwise_agreement"]

logger = logging.getLogger("clusterg.linkage")

#: relative tolerance below the silhouette peak (see the module docstring)
SILHOUETTE_TOL = 0.04
#: the silhouette choice runs up to this many points; above, the similarity-scale rule alone
SELECT_MAX_N = 20_000
#: points whose silhouette is computed (all of them below this)
SAMPLE = 2000
#: grid points spanning the kNN similarities, then refined between the chosen one and the next
GRID_SIZE, REFINE = 24, 5


class SilhouetteScorer:
    """Mean silhouette (cosine distance) of labelings of one fixed set of points.

    Args:
        x: float32 ``(N, D)``, L2-normalised rows.
        sample: points scored (default :data:`SAMPLE`; all points when N is at most this).
        seed: seed of the sample.
    """

    def __init__(self, x: np.ndarray, sample: int = SAMPLE, seed: int = 0):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) < 2:
            raise ClustergError("SilhouetteScorer needs features of shape (N, D) with N >= 2")
        n = len(x)
        if sample < 2:
            raise ClustergError(f"sample must be at least 2, got {sample}")
        self.n = n
        self.idx = (np.arange(n) if n <= sample else
                    np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)))
        # distances of the sampled points to every point: a float64 product (its float32 rounding does not
        # depend on BLAS blocking or threads), stored as float32 (S x N x 4 bytes: 160 MB at 20,000 points)
        xs = x.astype(np.float64)
        self.dist = np.empty((len(self.idx), n), dtype=np.float32)
        for a in range(0, len(self.idx), 256):
            self.dist[a:a + 256] = 1.0 - xs[self.idx[a:a + 256]] @ xs.T

    @classmethod
    def lazy(cls, x: np.ndarray, sample: int = SAMPLE, seed: int = 0):
        """A scorer built on its first call (its distance table is the costly part), for searches that
        may not run; later calls reuse it."""
        made: list = []

        def score(labels: np.ndarray) -> float:
            if not made:
                made.append(cls(x, sample, seed))
            return made[0](labels)
        return score

    def __call__(self, labels: np.ndarray) -> float:
        """Mean silhouette of ``labels`` (int ``(N,)``, 0..C-1); -1 when there is a single cluster."""
        lab = np.asarray(labels, dtype=np.int64)
        if lab.shape != (self.n,):
            raise ClustergError(f"labels must have shape ({self.n},), got {lab.shape}")
        c = int(lab.max()) + 1
        if c < 2:
            return -1.0
        cnt = np.bincount(lab, minlength=c).astype(np.float64)
        onehot = sp.csr_matrix((np.ones(self.n, dtype=np.float32), (np.arange(self.n), lab)), shape=(self.n, c))
        # (S, C): summed distance to each cluster (scipy's sparse product is one sequential loop: deterministic)
        tot = np.asarray((onehot.T @ self.dist.T).T, dtype=np.float64)
        li = lab[self.idx]
        r = np.arange(len(li))
        own = cnt[li] - 1.0
        a = np.where(own > 0, tot[r, li] / np.maximum(own, 1.0), 0.0)
        mean = tot / cnt  # every cluster has at least one member
        mean[r, li] = np.inf
        b = mean.min(axis=1)
        s = np.where(own > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
        return float(s.mean())


@dataclass
class ThresholdChoice:
    """The cut :func:`select_threshold` (or :func:`select_by_agreement`) chose: ``cut``, its ``score``
    (silhouette, or pairwise F against the reference), the best-scoring cut ``peak_cut`` and its
    score ``peak``, and every ``(cut, score)`` tried."""

    cut: float
    score: float
    peak_cut: float
    peak: float
    tried: list = field(default_factory=list)
    criterion: str = "silhouette"  #: or "agreement" (pairwise F against a reference clustering)

    def describe(self) -> str:
        if self.criterion == "agreement":
            return (f"threshold {self.cut:.4f} chosen by agreement (pairwise F {self.score:.3f} against the "
                    f"reference, {len(self.tried)} thresholds tried)")
        return (f"threshold {self.cut:.4f} chosen by silhouette ({self.score:.3f}; peak {self.peak:.3f} "
                f"at {self.peak_cut:.4f}, {len(self.tried)} thresholds tried)")


def threshold_grid(sims: np.ndarray, k: int = 20, size: int = GRID_SIZE, low: float | None = None) -> np.ndarray:
    """``size`` thresholds spanning the 1st to 99.5th percentile of the ``k``-NN similarities
    (``sims`` ``(N, >=2)``, self in column 0), or from ``low`` when given: average linkage compares
    cluster-mean similarities, which for large clusters lie below every kNN edge, so its grid starts
    at the random-pair median instead."""
    s = np.asarray(sims)[:, 1:max(2, min(k, np.shape(sims)[1]))]
    s = s[s > -1.0]
    if s.size == 0:
        raise ClustergError("no kNN similarities to build a threshold grid from")
    lo, hi = np.percentile(s.astype(np.float64), [1.0, 99.5])
    if low is not None and np.isfinite(low):
        lo = min(lo, float(low))
    hi = min(hi, 0.9999)  # a cut at 1 keeps no edge at all
    return np.unique(np.round(np.linspace(min(lo, hi), hi, size), 4))


def select_threshold(scorer: SilhouetteScorer, labels_at: Callable[[float], np.ndarray], grid: np.ndarray,
                     tol: float = SILHOUETTE_TOL, max_share: float = 0.5, refine: int = REFINE) -> ThresholdChoice | None:
    """The largest threshold of ``grid`` whose clustering's silhouette is within ``tol`` (relative)
    of the best one, contiguous with it; refined by ``refine`` thresholds towards the next grid point.

    Args:
        scorer: a :class:`SilhouetteScorer` of the points being clustered.
        labels_at: the clustering at a threshold (``float -> int (N,)``).
        grid: increasing thresholds (see :func:`threshold_grid`).
        tol: relative tolerance below the peak, in [0, 1).
        max_share: clusterings with a cluster above this share of the points are never chosen.
    Returns:
        :class:`ThresholdChoice`, or None when no threshold gives a usable clustering.
    """
    if not 0.0 <= tol < 1.0:
        raise ClustergError(f"tol must be in [0, 1), got {tol}")
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or len(grid) == 0 or np.any(np.diff(grid) <= 0):
        raise ClustergError("grid must be a non-empty increasing 1-D array of thresholds")
    tried: list[tuple[float, float]] = []

    def score(t: float) -> float:
        lab = np.asarray(labels_at(float(t)), dtype=np.int64)
        usable = lab.max() >= 1 and np.bincount(lab).max() <= max_share * len(lab)
        s = scorer(lab) if usable else -np.inf
        tried.append((float(t), float(s)))
        return s

    sil = np.array([score(t) for t in grid])
    if not np.isfinite(sil).any():
        return None
    ip = int(np.argmax(sil))  # ties: the lowest threshold, then walk right
    peak = float(sil[ip])
    floor = peak - tol * abs(peak)
    j = ip
    while j + 1 < len(grid) and sil[j + 1] >= floor:
        j += 1
    t_best, s_best = float(grid[j]), float(sil[j])
    if j + 1 < len(grid) and refine > 0:
        for t in np.linspace(grid[j], grid[j + 1], refine + 2)[1:-1]:
            s = score(float(t))
            if s < floor:
                break
            t_best, s_best = float(t), float(s)
    tried.sort()
    return ThresholdChoice(round(t_best, 6), s_best, float(grid[ip]), peak, tried)


def pairwise_agreement(reference: np.ndarray, labels: np.ndarray) -> float:
    """Pairwise F of ``labels`` against ``reference`` (both int ``(N,)``; singletons are no pairs)."""
    from ..metrics import pairwise
    return float(pairwise(reference, labels)[2])


def select_by_agreement(reference: np.ndarray, labels_at: Callable[[float], np.ndarray], grid: np.ndarray,
                        refine: int = REFINE) -> ThresholdChoice:
    """The threshold of ``grid`` whose clustering agrees best (pairwise F) with ``reference``,
    refined by ``refine`` thresholds on each side; ties go to the lower threshold.

    ``score`` and ``peak`` of the returned :class:`ThresholdChoice` hold the agreement.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or len(grid) == 0 or np.any(np.diff(grid) <= 0):
        raise ClustergError("grid must be a non-empty increasing 1-D array of thresholds")
    ref = np.asarray(reference, dtype=np.int64)
    tried: list[tuple[float, float]] = []

    def score(t: float) -> float:
        f = pairwise_agreement(ref, np.asarray(labels_at(float(t)), dtype=np.int64))
        tried.append((float(t), f))
        return f

    f = np.array([score(t) for t in grid])
    j = int(np.argmax(f))
    best_t, best_f = float(grid[j]), float(f[j])
    if refine > 0 and len(grid) > 1:
        lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
        for t in np.linspace(lo, hi, 2 * refine + 3)[1:-1]:
            if np.isclose(t, grid[j]):
                continue
            ft = score(float(t))
            if ft > best_f or (ft == best_f and t < best_t):
                best_t, best_f = float(t), ft
    tried.sort()
    return ThresholdChoice(round(best_t, 6), best_f, round(best_t, 6), best_f, tried, "agreement")
