"""Resolving a clusterer's ``threshold`` parameter: a number, or ``"auto"`` (chosen from the data)."""
from __future__ import annotations

import logging

import numpy as np

from .._validate import ClustergError, check_threshold
from ..linkage.auto_threshold import auto_threshold, warn_if_degenerate_threshold

logger = logging.getLogger("clusterg.cluster")


def is_auto(threshold) -> bool:
    return threshold is None or (isinstance(threshold, str) and threshold.strip().lower() == "auto")


def resolve_threshold(threshold, x: np.ndarray, sims: np.ndarray, rule: str, method: str, seed: int = 0,
                      name: str = "threshold") -> float:
    """``threshold`` as a float: ``"auto"``/None picks it with :func:`~clusterg.linkage.auto_threshold`
    (logged at info level); a number is validated and checked for a degenerate cut (warning)."""
    if is_auto(threshold):
        choice = auto_threshold(x, sims, rule=rule, seed=seed)
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
