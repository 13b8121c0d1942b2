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
                      reference: Callable[[], np.ndarray] | None = None, mean_linkage: bool = False,
                      scorer=None, with_choice: bool = False):
    """``threshold`` as a float; a number is validated and checked for a degenerate cut (warning).

    ``"auto"``/None chooses it from the data, logged at info level: with ``labels_at`` (the
    method's clustering at a threshold), on compact embeddings of 20 to
    :data:`~clusterg.linkage.threshold_search.SELECT_MAX_N` points, by the silhouette of the
    clusterings (:func:`~clusterg.linkage.threshold_search.select_threshold`) or, given
    ``reference`` (a clustering to agree with), by agreement with it
    (:func:`~clusterg.linkage.threshold_search.select_by_agreement`; ``mean_linkage`` widens the
    grid down to the random-pair median, where average-linkage cuts of large clusters lie); otherwise, and when that
    finds no usable cut, by the similarity-scale rule :func:`~clusterg.linkage.auto_threshold`.

    ``scorer``: a :class:`~clusterg.linkage.threshold_search.SilhouetteScorer` of ``x`` to reuse;
    ``with_choice``: return ``(threshold, ThresholdChoice or None)``, the choice being None when the
    silhouette/agreement search did not decide (a number given, or the rule used).
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
                found = select_threshold(scorer if scorer is not None else SilhouetteScorer(x, seed=seed), labels_at,
                                         grid)
            if found is not None:
                logger.info("%s: %s; the similarity-scale rule gives %.4f", method, found.describe(), choice.threshold)
                return (found.cut, found) if with_choice else found.cut
        logger.info("%s: %s", method, choice.describe())
        return (choice.threshold, None) if with_choice else choice.threshold
    if isinstance(threshold, str):
        try:
            threshold = float(threshold)
        except ValueError:
            raise ClustergError(f"{name}: expected a number or 'auto', got {threshold!r}") from None
    t = check_threshold(threshold, name)
    warn_if_degenerate_threshold(sims, t, method)
    return (t, None) if with_choice else t


def _searchable(x: np.ndarray, sims: np.ndarray, choice) -> bool:
    """Whether the cut search applies: compact geometry (where it was fitted), 20 to SELECT_MAX_N points."""
    from ..linkage.threshold_search import SELECT_MAX_N
    n = len(x)
    return 20 <= n <= SELECT_MAX_N and np.shape(sims)[1] >= 3 and np.isfinite(choice.m_far) and choice.spread < 0.5


def infomap_reference(x: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, seed: int = 0) -> np.ndarray:
    """The clustering other linkages' cuts agree with: Infomap on the same 20-NN graph (compact
    embeddings: where the agreement search runs) with its silhouette-chosen cut. k stays 20, the
    graph the agreement was checked on (``benchmarks/fit_silhouette_tol.py``)."""
    from .infomap import AUTO_K, InfomapClusterer
    return InfomapClusterer(k=min(AUTO_K["compact"], np.shape(nbrs)[1]), seed=seed).fit(x, knn=(nbrs, sims)).labels_


def parent_cut_by_agreement(x: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, parent: np.ndarray, psim: np.ndarray,
                            method: str, seed: int = 0, with_reference: bool = False):
    """The tree-deduction cut (GCN-V, GCN-V + GCN-E) whose clusters agree best with Infomap's.

    On compact embeddings of 20 to :data:`~clusterg.linkage.threshold_search.SELECT_MAX_N` points the
    cut ``tau`` on the parent links (``parent``/``psim`` ``(N,)``, -1/-inf for peaks) is chosen over
    24 cuts spanning the 1st to 99.5th percentile of the link similarities by pairwise agreement
    with the silhouette-cut Infomap clustering of the input kNN graph (``nbrs``/``sims``), as
    knn-cc's cut is; the checkpoint's tau was fitted on CelebA identities of at most 30 faces and
    does not follow other identity sizes. Returns None where the search does not apply (the caller
    keeps the checkpoint's tau); with ``with_reference``, ``(cut, reference labels)`` or
    ``(None, None)``. Chosen on tune sets only (``benchmarks/fit_parent_cut.py``).
    """
    from ..linkage.threshold_search import GRID_SIZE, select_by_agreement
    from ..linkage.tree_deduction import parents_to_labels
    choice = auto_threshold(x, sims, rule="infomap", seed=seed)
    linked = psim[(parent >= 0) & np.isfinite(psim)]
    if not _searchable(x, sims, choice) or linked.size < 2:
        return (None, None) if with_reference else None
    lo, hi = np.percentile(linked.astype(np.float64), [1.0, 99.5])
    hi = min(hi, 0.9999)
    grid = np.unique(np.round(np.linspace(min(lo, hi), hi, GRID_SIZE), 4))
    ref = infomap_reference(x, nbrs, sims, seed)
    found = select_by_agreement(ref, lambda t: parents_to_labels(parent, psim, t), grid)
    logger.info("%s: %s", method, found.describe())
    return (found.cut, ref) if with_reference else found.cut
