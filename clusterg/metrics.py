"""Clustering metrics used by the face-clustering literature, computed exactly and fast.

Definitions follow the evaluation code of learn-to-cluster (also used by Ada-NETS,
STAR-FC and later work), so numbers are directly comparable with published tables:

* **pairwise** precision / recall / F (a Fowlkes-Mallows variant over ordered pairs),
* **BCubed** precision / recall / F (F of the averaged P and R),
* **NMI** (scikit-learn's ``normalized_mutual_info_score``, ``average_method="arithmetic"``).

Everything is derived from the sparse contingency table of (ground truth, prediction),
built with one integer sort, so 5.21M labels score in well under a second per metric.

Negative predictions (``-1``, "unassigned") become singleton clusters first
(``singleton_negatives=True``), as the reference pipelines do before scoring.
Ground-truth labels must be non-negative.

Degenerate cases never give NaN: with no predicted same-cluster pair, pairwise
precision is 1.0 (no false pair was made); with no ground-truth same-class pair,
pairwise recall is 1.0; an F-score is 0.0 when P + R == 0. A single item scores 1.0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import ClustergError, check_labels

__all__ = ["singletonize", "pairwise", "bcubed", "nmi", "evaluate", "contingency"]

# Labels whose values stay below this multiple of N are used as bin indices directly;
# anything sparser is compacted first (a slower argsort-based relabelling).
_DIRECT_FACTOR = 4


def singletonize(pred, name: str = "pred") -> np.ndarray:
    """Give every negative label (``-1`` = unassigned) its own new cluster id.

    Parameters
    ----------
    pred : array-like of int, shape (N,)
        Predicted cluster ids; any negative value means "no cluster".

    Returns
    -------
    np.ndarray of int64, shape (N,)
        A copy where the k-th negative entry (in order of position) gets the id
        ``max(pred) + 1 + k`` (``k`` from 0). Non-negative ids are unchanged.
    """
    p = check_labels(pred, name=name).copy()
    neg = np.flatnonzero(p < 0)
    if neg.size:
        top = int(p.max())
        if top > np.iinfo(np.int64).max - neg.size - 1:  # keep new ids representable
            _, p = np.unique(np.where(p < 0, -1, p), return_inverse=True)
            p = p.astype(np.int64)
            top = int(p.max())
        p[neg] = np.arange(max(top, -1) + 1, max(top, -1) + 1 + neg.size, dtype=np.int64)
    return p


def _compact(y: np.ndarray) -> tuple[np.ndarray, int]:
    """Return (ids, n_bins) with ids in [0, n_bins); ids stay as given when already dense enough."""
    n = len(y)
    lo, hi = int(y.min()), int(y.max())
    if lo >= 0 and hi < _DIRECT_FACTOR * n + 16:
        return y, hi + 1
    # sparse or huge label values: relabel to 0..K-1 (sorting the values, then a binary search)
    uniq = np.unique(y)
    return np.searchsorted(uniq, y).astype(np.int64), len(uniq)


@dataclass(frozen=True)
class Contingency:
    """Non-zero cells of the (ground truth x prediction) contingency table.

    ``counts[c]`` items have ground-truth class ``rows[c]`` and predicted cluster ``cols[c]``;
    ``row_size[c]`` / ``col_size[c]`` are the sizes of that class and that cluster.
    ``class_sizes`` and ``cluster_sizes`` list the non-empty classes and clusters.
    Counts are int64, which is exact for any N below about 3e9.
    """

    n: int
    counts: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    row_size: np.ndarray
    col_size: np.ndarray
    class_sizes: np.ndarray
    cluster_sizes: np.ndarray


def _prepare(gt, pred, singleton_negatives: bool) -> tuple[np.ndarray, np.ndarray]:
    g = check_labels(gt, name="gt")
    p = check_labels(pred, name="pred")
    if len(g) != len(p):
        raise ClustergError(f"gt has {len(g)} labels but pred has {len(p)}; they must have equal length")
    if len(g) == 0:
        raise ClustergError("gt and pred are empty; need at least 1 labelled item")
    if g.min() < 0:
        raise ClustergError(f"gt: ground-truth labels must be >= 0, found {int(g.min())} "
                            f"at index {int(np.argmin(g))}")
    if singleton_negatives:
        p = singletonize(p)
    return g, p


def _table(g: np.ndarray, p: np.ndarray) -> Contingency:
    n = len(g)
    gi, ng = _compact(g)
    pi, npd = _compact(p)
    if ng * npd >= 2 ** 62:  # cell keys must fit int64: compact both sides first
        _, gi = np.unique(g, return_inverse=True)
        _, pi = np.unique(p, return_inverse=True)
        gi, pi = gi.astype(np.int64), pi.astype(np.int64)
        ng, npd = int(gi.max()) + 1, int(pi.max()) + 1
    a = np.bincount(gi, minlength=ng)
    b = np.bincount(pi, minlength=npd)
    # one sort of the cell keys gives every non-zero cell and its count
    keys, counts = np.unique(gi * np.int64(npd) + pi, return_counts=True)
    rows, cols = np.divmod(keys, np.int64(npd))
    return Contingency(n=n, counts=counts.astype(np.int64), rows=rows, cols=cols,
                       row_size=a[rows], col_size=b[cols], class_sizes=a[a > 0], cluster_sizes=b[b > 0])


def contingency(gt, pred, singleton_negatives: bool = True) -> Contingency:
    """Sparse contingency table of ``gt`` (N,) against ``pred`` (N,) (see :class:`Contingency`)."""
    return _table(*_prepare(gt, pred, singleton_negatives))


def _f(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


def _pairwise(t: Contingency) -> tuple[float, float, float]:
    n = t.n
    # ordered pairs (i != j): same class & same cluster / same cluster / same class
    tk = int(np.dot(t.counts, t.counts)) - n
    pk = int(np.dot(t.cluster_sizes, t.cluster_sizes)) - n
    qk = int(np.dot(t.class_sizes, t.class_sizes)) - n
    p = 1.0 if pk == 0 else tk / pk
    r = 1.0 if qk == 0 else tk / qk
    return float(p), float(r), _f(p, r)


def _bcubed(t: Contingency) -> tuple[float, float, float]:
    sq = t.counts.astype(np.float64) ** 2
    p = float(np.sum(sq / t.col_size) / t.n)
    r = float(np.sum(sq / t.row_size) / t.n)
    return p, r, _f(p, r)


def _entropy(sizes: np.ndarray) -> float:
    if sizes.size <= 1:
        return 0.0
    s = sizes.astype(np.float64)
    tot = s.sum()
    return float(-np.sum((s / tot) * (np.log(s) - math.log(tot))))


_AVERAGES = ("arithmetic", "geometric", "min", "max")


def _nmi(t: Contingency, average_method: str) -> float:
    if average_method not in _AVERAGES:
        raise ClustergError(f"average_method must be one of {', '.join(_AVERAGES)}, got {average_method!r}")
    if t.class_sizes.size == 1 and t.cluster_sizes.size == 1:
        return 1.0  # both labellings put everything together: a perfect match (sklearn convention)
    if t.class_sizes.size == 1 or t.cluster_sizes.size == 1:
        return 0.0  # one side is constant: MI is exactly 0 (avoid 0/0 from rounding noise)
    n = float(t.n)
    c = t.counts.astype(np.float64)
    outer = t.row_size.astype(np.float64) * t.col_size.astype(np.float64)
    # MI = sum_ij c/N * log(N c / (a_i b_j)), written as sklearn does to agree to rounding error
    terms = (c / n) * (np.log(c) - math.log(n)) + (c / n) * (-np.log(outer) + 2.0 * math.log(n))
    terms = np.where(np.abs(terms) < np.finfo(np.float64).eps, 0.0, terms)
    mi = max(float(terms.sum()), 0.0)
    if mi == 0.0:
        return 0.0
    h1, h2 = _entropy(t.class_sizes), _entropy(t.cluster_sizes)
    if average_method == "arithmetic":
        norm = (h1 + h2) / 2.0
    elif average_method == "geometric":
        norm = math.sqrt(h1 * h2)
    elif average_method == "min":
        norm = min(h1, h2)
    else:
        norm = max(h1, h2)
    norm = max(norm, np.finfo(np.float64).eps)
    return float(min(mi / norm, 1.0))


def pairwise(gt, pred, singleton_negatives: bool = True) -> tuple[float, float, float]:
    """Pairwise precision, recall and F-score.

    With ``c_ij`` the contingency counts (class i, cluster j) over N items:
    ``tk = sum c_ij^2 - N`` (ordered pairs sharing class and cluster),
    ``pk = sum_j |C_j|^2 - N`` (pairs sharing a cluster), ``qk = sum_i |G_i|^2 - N``
    (pairs sharing a class); ``P = tk / pk``, ``R = tk / qk``, ``F = 2PR / (P + R)``.

    Parameters
    ----------
    gt : array-like of int, shape (N,)
        Ground-truth classes, all >= 0.
    pred : array-like of int, shape (N,)
        Predicted clusters; negatives are unassigned items.
    singleton_negatives : bool, default True
        Give each negative prediction its own cluster (the reference convention).
        With False, all items with the same negative value form one cluster.

    Returns
    -------
    (precision, recall, fscore) as floats. ``pk == 0`` gives precision 1.0,
    ``qk == 0`` gives recall 1.0, and F is 0.0 when P + R == 0.
    """
    return _pairwise(contingency(gt, pred, singleton_negatives))


def bcubed(gt, pred, singleton_negatives: bool = True) -> tuple[float, float, float]:
    """BCubed precision, recall and F-score.

    ``P = (1/N) sum_ij c_ij^2 / |C_j|``, ``R = (1/N) sum_ij c_ij^2 / |G_i|`` (the item-wise
    BCubed averages), ``F = 2PR / (P + R)`` of the averaged P and R (not the mean of
    per-item F). Arguments as in :func:`pairwise`; never NaN (F is 0.0 if P + R == 0).
    """
    return _bcubed(contingency(gt, pred, singleton_negatives))


def nmi(gt, pred, singleton_negatives: bool = True, average_method: str = "arithmetic") -> float:
    """Normalized mutual information, equal to scikit-learn's ``normalized_mutual_info_score``.

    ``NMI = MI(gt, pred) / mean(H(gt), H(pred))`` with the arithmetic mean by default
    (scikit-learn's default since 0.22; ``"geometric"``, ``"min"`` and ``"max"`` are accepted).
    Symmetric in its arguments. Both labellings with a single cluster give 1.0;
    zero mutual information gives 0.0.
    """
    return _nmi(contingency(gt, pred, singleton_negatives), average_method)


def evaluate(gt, pred, singleton_negatives: bool = True) -> dict:
    """All metrics from one contingency table.

    Returns a dict of plain Python numbers with keys ``pairwise_precision``,
    ``pairwise_recall``, ``pairwise_fscore``, ``bcubed_precision``, ``bcubed_recall``,
    ``bcubed_fscore``, ``nmi`` (arithmetic), ``n`` (items) and ``n_clusters``
    (predicted clusters after negatives became singletons, when ``singleton_negatives``).
    """
    t = contingency(gt, pred, singleton_negatives)
    pp, pr, pf = _pairwise(t)
    bp, br, bf = _bcubed(t)
    return {
        "pairwise_precision": pp, "pairwise_recall": pr, "pairwise_fscore": pf,
        "bcubed_precision": bp, "bcubed_recall": br, "bcubed_fscore": bf,
        "nmi": _nmi(t, "arithmetic"),
        "n": int(t.n), "n_clusters": int(t.cluster_sizes.size),
    }
