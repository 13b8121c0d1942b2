"""Label-free edge thresholds chosen from the similarity scale of the data itself.

Embeddings differ wildly in where "same identity" ends: dlib face vectors put different
people near 0.83 cosine and the same person near 0.95, MS1M ArcFace features need about 0.6,
sentence embeddings about 0.45. A fixed default threshold is therefore wrong on most data.
:func:`auto_threshold` places the cut between two statistics every kNN graph has, without labels:

- ``m_far``: the median cosine similarity of random pairs (almost all of them different
  identities; estimated on a fixed-seed sample of pairs),
- ``m_near``: the median similarity of each point to its first neighbour (almost all of
  them the same identity; edges a guard cut to similarity -1 are skipped),

near ``m_far + a * (m_near - m_far)``. Large identities tolerate (and need) a lower cut: the
share ``f`` of kNN edges above a reference level ``m_far + a_f * (m_near - m_far)`` estimates
how many of a point's neighbours are its own identity, and the final cut is
``m_far + (a + c * log10(N) - b * f) * (m_near - m_far)``. The ``log10(N)`` term is for
connected components, which chain more the more points there are (``c = 0`` for Infomap);
``log10(N)`` is held within [2, 4], about the range it was fitted on.

Two geometries need different constants. *Compact* embeddings (dlib faces: random pairs near
0.83, first neighbours near 0.97, a gap of about 0.13) have near-uniform kNN similarities, and the
cut must sit close to the first-neighbour level. *Spread* embeddings (sentence encoders, ArcFace:
random pairs near 0, a gap of 0.6-0.75) have informative edge weights and want a cut nearer the
middle. :data:`RULES` holds the compact constants, :data:`SPREAD_RULES` the spread ones; the
constants used are blended linearly by the gap, from compact at a gap of 0.2 or less to spread
at 0.5 or more (the range between was not fitted on). ``a``, ``b``, ``c`` per linkage were
fitted on CelebA ``train`` identities held aside from training and on synthetic sets with median
identity sizes of about 5, 50 and 500 (compact), and on 16 synthetic 384-d spread sets with median
identity sizes of 5 to 300 (``docs/defaults.rst`` gives the protocol and the results on every
regime).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .._validate import ROW_BLOCK, ClustergError

__all__ = ["AutoThreshold", "auto_threshold", "similarity_scale", "RULES", "SPREAD_RULES", "geometry_weight",
           "warn_if_degenerate_threshold"]

logger = logging.getLogger("clusterg.linkage")

#: (a, b, c, a_f) of the rule per linkage family, ``f`` measured at ``m_far + a_f * gap``;
#: see the module docstring.
RULES: dict[str, tuple[float, float, float, float]] = {
    "infomap": (0.87, 0.35, 0.0, 0.87),
    "cc": (0.48, 0.0, 0.115, 0.87),
    "hac": (0.85, 0.35, 0.0, 0.85),
    # refined (Ada-NETS) embeddings: same-identity pairs pulled to ~1, others spread out
    "embedding-infomap": (0.90, 0.14, 0.0, 0.90),
}

#: the same for spread embeddings (gap >= 0.5), fitted on synthetic 384-d sets
#: (``benchmarks/fit_spread_rules.py``, results in ``docs/benchmarks/spread_fit.json``; Infomap
#: at the 80 neighbours ``k="auto"`` takes there); ``c`` of "cc" kept from the compact fit
SPREAD_RULES: dict[str, tuple[float, float, float, float]] = {
    "infomap": (0.63, 0.5, 0.0, 0.87),
    "cc": (0.32, 0.0, 0.115, 0.87),
    "hac": (0.53, 0.35, 0.0, 0.85),
    "embedding-infomap": (0.90, 0.14, 0.0, 0.90),  # refined face embeddings only: no spread fit
}

_GAP_COMPACT, _GAP_SPREAD = 0.2, 0.5

_N_PAIRS = 20_000  # the median of 20,000 pairs is within ~0.001 of the population's


@dataclass(frozen=True)
class AutoThreshold:
    """A label-free threshold and the statistics it came from (all cosine similarities)."""

    threshold: float
    m_far: float
    m_near: float
    share: float
    rule: str
    spread: float = 0.0  #: weight of :data:`SPREAD_RULES` in the constants (0 compact, 1 spread)

    def describe(self) -> str:
        return (f"threshold {self.threshold:.4f} chosen from the data ({self.rule} rule: random-pair median "
                f"{self.m_far:.3f}, first-neighbour median {self.m_near:.3f}, share of kNN edges in identity "
                f"range {self.share:.2f}, {'spread' if self.spread >= 0.5 else 'compact'} geometry)")


def geometry_weight(m_far: float, m_near: float) -> float:
    """Weight in [0, 1] of the spread constants for a similarity gap ``m_near - m_far``."""
    gap = float(m_near) - float(m_far)
    if not np.isfinite(gap):
        return 0.0
    return float(np.clip((gap - _GAP_COMPACT) / (_GAP_SPREAD - _GAP_COMPACT), 0.0, 1.0))


def similarity_scale(x: np.ndarray, sims: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """``(m_far, m_near)``: median random-pair and median first-neighbour cosine similarity.

    ``x`` (N, D) L2-normalised rows; ``sims`` (N, k) kNN similarities with the point itself
    in column 0 (k >= 2). Random pairs come from a fixed-seed sample (at most 20,000).
    """
    x = np.asarray(x)
    sims = np.asarray(sims)
    n = len(x)
    if n < 2 or sims.ndim != 2 or sims.shape[0] != n or sims.shape[1] < 2:
        raise ClustergError("similarity_scale needs at least 2 points and kNN sims of shape (N, k>=2)")
    rng = np.random.default_rng(seed)
    m = min(_N_PAIRS, n * (n - 1))
    i = rng.integers(0, n, m)
    j = (i + rng.integers(1, n, m)) % n  # never i itself
    # float64 accumulation: the scale must not depend on float32 rounding of long rows
    far = np.concatenate([np.einsum("ij,ij->i", x[i[c:c + 4096]].astype(np.float64), x[j[c:c + 4096]].astype(np.float64))
                          for c in range(0, m, 4096)])
    # the nearest neighbour that is an edge at all (a guard may have cut edges to similarity -1)
    # in blocks of rows (the same values): a float64 copy of all the kNN similarities is gigabytes at millions of rows
    nearest = np.concatenate([np.where(r > -1.0, r, -np.inf).max(axis=1) for r in
                              (sims[c:c + ROW_BLOCK, 1:].astype(np.float64) for c in range(0, n, ROW_BLOCK))])
    nearest = nearest[np.isfinite(nearest)]
    return float(np.median(far)), float(np.median(nearest)) if len(nearest) else -1.0


def auto_threshold(x: np.ndarray, sims: np.ndarray, rule: str = "infomap", seed: int = 0) -> AutoThreshold:
    """The label-free threshold of ``rule`` (a key of :data:`RULES`) for kNN ``sims`` of ``x``.

    Args:
        x: float32 (N, D), L2-normalised features (or refined embeddings).
        sims: float32 (N, k) cosine similarities of the kNN lists, self in column 0.
        rule: ``"infomap"``, ``"cc"`` (knn-cc, dbscan, single-linkage), ``"hac"`` or
            ``"embedding-infomap"``.
        seed: seed of the random-pair sample (the result is deterministic for a seed).

    Returns:
        :class:`AutoThreshold` with the threshold and the statistics behind it.
    """
    if rule not in RULES:
        raise ClustergError(f"unknown threshold rule {rule!r}; choose one of {', '.join(RULES)}")
    n = len(x)
    if n < 3 or np.shape(sims)[1] < 2:
        # nothing to estimate a scale from: link only near-duplicates
        return AutoThreshold(0.99, float("nan"), float("nan"), 0.0, rule)
    m_far, m_near = similarity_scale(x, sims, seed=seed)
    gap = m_near - m_far
    if not np.isfinite(gap) or gap <= 1e-6:
        # first neighbours no closer than random pairs: no structure; link near-duplicates only
        t = 0.99
        logger.warning("first neighbours are no more similar than random pairs (median %.3f vs %.3f): "
                       "the data shows no cluster structure", m_near, m_far)
        return AutoThreshold(t, m_far, m_near, 0.0, rule)
    w = geometry_weight(m_far, m_near)
    a, b, c, a_f = (float((1 - w) * p + w * q) for p, q in zip(RULES[rule], SPREAD_RULES[rule]))
    # the log10(N) term was fitted on 150 to 9,000 points: held at its 10,000-point value beyond, so that
    # millions of points do not push the cut up to the first-neighbour median (all singletons)
    a = a + c * float(np.clip(np.log10(n), 2.0, 4.0))
    sims = np.asarray(sims)
    level = m_far + a_f * gap
    above = sum(int(np.count_nonzero(sims[c:c + ROW_BLOCK, 1:] > level)) for c in range(0, n, ROW_BLOCK))
    share = float(above / (n * (sims.shape[1] - 1)))
    t = float(m_far + float(np.clip(a - b * share, 0.0, 0.995)) * gap)
    return AutoThreshold(float(np.clip(t, -1.0, 0.999)), m_far, m_near, share, rule, w)


def warn_if_degenerate_threshold(sims: np.ndarray, threshold: float, method: str) -> None:
    """Log a warning when a given threshold keeps nearly every kNN edge or nearly none.

    Such a cut gives one giant cluster or all singletons; the message names the similarity
    range of the data so the user can pick a better value (or ``threshold="auto"``).
    """
    s = np.asarray(sims)[:, 1:] if np.ndim(sims) == 2 and np.shape(sims)[1] > 1 else None
    if s is None or s.size == 0:
        return
    kept = float((s > threshold).mean())
    if kept > 0.98 or kept < 0.01:
        lo, med, hi = np.percentile(s, [5, 50, 95])
        logger.warning("%s: threshold %.3f keeps %.1f%% of the kNN edges (their similarities span %.3f-%.3f, "
                       "median %.3f), which gives %s; use threshold='auto' or a value inside that range",
                       method, threshold, 100 * kept, lo, hi, med,
                       "nearly one cluster" if kept > 0.98 else "nearly all singletons")
