"""Resolving a clusterer's ``threshold`` parameter: a number, or ``"auto"`` (chosen from the data)."""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from .._validate import ClustergError, check_threshold
from ..linkage.auto_threshold import auto_threshold, warn_if_degenerate_threshold

logger = logging.getLogger("clusterg.cluster")


def is_auto(threshold) -> bool:
    return threshold is None or (isinstance(threshold, str) and threshold.strip().lower() == "auto")


def resolve_threshold(threshold, x: np.ndarray, sims: np.ndarray, rule: str, method: str, seed: int = 0,
                      name: str = "threshold", labels_at: Callable[[float], np.ndarray] | None = None,
                      reference: Callable[[], np.ndarray] | None = None, mean_linkage: bool = False) -> float:
    """``threshold`` as a float; a number is validated and checked for a degenerate cut (warning).

    ``"auto"``/None chooses it from the data, logged at info level: with ``labels_at`` (the
    method's clustering at a threshold), on compact embeddings of 20 to
    :data:`~clusterg.linkage.threshold_search.SELECT_MAX_N` points, by the silhouette of the
    clusterings (:func:`~clusterg.linkage.threshold_search.select_threshold`) or, given
    ``reference`` (a clustering to agree with), by agreement with it
    (:func:`~clusterg.linkage.threshold_search.select_by_agreement`; ``mean_linkage`` widens the
    grid down to the random-pair median, where average-linkage cuts of large clusters lie); otherwise, and when that
    finds no usable cut, by the similarity-scale rule :func:`~clusterg.linkage.auto_threshold`.
    """
    if is_auto(threshold):
        choice = auto_threshold(x, sims, rule=rule, seed=seed)
        if labels_at is not None and _searchable(x, sims, choice):
            from ..linkage.threshold_search import SilhouetteScorer, select_by_agreement, select_threshold, threshold_grid
            # average linkage: cluster-mean similarities reach down to the random-pair level
            grid = threshold_grid(sims, low=choice.m_far if mean_linkage else None)
            if reference is not None:
                found = select_by_agreement(reference(), labels_at, grid)
            else:
                found = select_threshold(SilhouetteScorer(x, seed=seed), labels_at, grid)
            if found is not None:
                logger.info("%s: %s; the similarity-scale rule gives %.4f", method, found.describe(), choice.threshold)
                return found.cut
        logger.info("%s: %s", method, choice.describe())
        return choice.threshold
    if isinstance(threshold, str):
        try:
            threshold = float(threshold)
        except ValueError:
            raise ClustergError(f"{name}: expected a number or 'auto', got {threshold!r}") from None
    t = check_threshold(threshold, name)
    warn_if_degenerate_threshold(sims, t, method)
    return t


def _searchable(x: np.ndarray, sims: np.ndarray, choice) -> bool:
    """Whether the cut search applies: compact geometry (where it was fitted), 20 to SELECT_MAX_N points."""
    from ..linkage.threshold_search import SELECT_MAX_N
    n = len(x)
    return 20 <= n <= SELECT_MAX_N and np.shape(sims)[1] >= 3 and np.isfinite(choice.m_far) and choice.spread < 0.5


def infomap_reference(x: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, seed: int = 0) -> np.ndarray:
    """The clustering other linkages' cuts agree with: Infomap at its label-free defaults on the same kNN graph."""
    from .infomap import InfomapClusterer
    return InfomapClusterer(seed=seed).fit(x, knn=(nbrs, sims)).labels_
