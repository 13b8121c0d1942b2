"""The estimator API every clusterer follows: scikit-learn's.

:class:`BaseClusterer` is a :class:`sklearn.base.BaseEstimator` and
:class:`sklearn.base.ClusterMixin`, so ``get_params``/``set_params``/``repr``,
:func:`sklearn.base.clone`, :class:`~sklearn.pipeline.Pipeline` and
:class:`~sklearn.model_selection.GridSearchCV` work as for any scikit-learn clusterer.

Parameters are stored in ``__init__`` untouched and validated in ``fit``;
``fit(X, y=None, knn=None)`` sets ``labels_`` (int64, one cluster id per row,
0..C-1, no -1) and ``n_features_in_`` (D) and returns ``self``; ``fit_predict``
returns ``labels_``. ``knn`` is an optional precomputed ``(nbrs, sims)`` pair for
``X`` (see :func:`clusterg.knn.knn_search`), so one kNN graph serves many runs.
"""
from __future__ import annotations

import functools
import logging
import threading

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

__all__ = ["BaseClusterer", "warn_if_giant", "GIANT_MIN_N", "GIANT_SHARE"]

logger = logging.getLogger("clusterg.cluster")


def _n_features(X) -> int | None:
    shape = getattr(X, "shape", None)
    if shape is None:
        try:
            shape = np.shape(X)
        except Exception:  # ragged input: the subclass's own check reports it
            return None
    return int(shape[1]) if len(shape) == 2 else None


def _as_array(X):
    """Array-likes, sparse and complex input through scikit-learn's own checks (its messages), as a ClustergError.

    NaN/inf, zero rows and the minimum number of points are left to :func:`clusterg._validate.check_features`,
    whose messages name the bad row. Torch tensors pass through untouched.
    """
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        return X
    from sklearn.utils.validation import check_array

    from .._validate import ClustergError
    try:
        return check_array(X, accept_sparse=False, dtype=(np.float32, np.float64), ensure_all_finite=False,
                           ensure_min_samples=0, ensure_min_features=1, input_name="X")
    except ClustergError:
        raise
    except ValueError as e:
        raise ClustergError(str(e)) from None


#: a clustering of at least GIANT_MIN_N points whose largest cluster holds more than GIANT_SHARE of them
#: is reported (a warning): the usual sign of a cut that chains many identities into one
GIANT_MIN_N, GIANT_SHARE = 1000, 0.5
_depth = threading.local()  # nested fits (auto runs another clusterer) report once, from the outermost


def warn_if_giant(labels: np.ndarray, method: str) -> None:
    """Log a warning when one cluster holds more than :data:`GIANT_SHARE` of :data:`GIANT_MIN_N` or more points."""
    labels = np.asarray(labels)
    n = len(labels)
    if n < GIANT_MIN_N or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        return
    sizes = np.bincount(labels)
    top = int(sizes.max())
    if top > GIANT_SHARE * n:
        logger.warning("%s: the largest cluster holds %d of the %d points (%.0f%%); unless the data is mostly one "
                       "identity, the cut chains many into one: try threshold='auto' or a higher threshold",
                       method, top, n, 100.0 * top / n)


def _record_n_features(fit):
    """Wrap a subclass's ``fit``: scikit-learn's input checks first, ``n_features_in_`` after a successful fit;
    the outermost fit then reports a giant cluster (:func:`warn_if_giant`)."""
    @functools.wraps(fit)
    def wrapper(self, X, *args, **kwargs):
        X = _as_array(X)
        depth = getattr(_depth, "n", 0)
        _depth.n = depth + 1
        try:
            out = fit(self, X, *args, **kwargs)
        finally:
            _depth.n = depth
        d = _n_features(X)
        if d is not None:
            self.n_features_in_ = d
        if depth == 0 and getattr(self, "labels_", None) is not None:
            warn_if_giant(self.labels_, type(self).__name__)
        return out
    wrapper._records_n_features = True
    return wrapper


class BaseClusterer(ClusterMixin, BaseEstimator):
    """Base class of the clusterers (scikit-learn estimator + cluster mixin).

    Subclasses implement ``fit(X, y=None, knn=None)``; ``n_features_in_`` is then set for them.
    """

    labels_: np.ndarray
    n_features_in_: int

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "_records_n_features", False):
            cls.fit = _record_n_features(fit)

    @classmethod
    def _param_names(cls) -> list[str]:
        return list(cls._get_param_names())

    def fit(self, X, y=None, knn=None) -> "BaseClusterer":  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_predict(self, X, y=None, knn=None) -> np.ndarray:
        """``fit(X, knn=knn)`` and return ``labels_`` (int64 ``(N,)``)."""
        return self.fit(X, y=y, knn=knn).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    def _check_new_features(self, X, name: str = "new features") -> np.ndarray:
        """Validated, L2-normalised float32 ``(M, D)`` new points for ``predict``; D must match the fit."""
        from sklearn.utils.validation import check_is_fitted

        from .._validate import ClustergError, check_features
        check_is_fitted(self, "labels_")
        x = check_features(_as_array(X), name=name, normalize=True)
        if x.shape[1] != self.n_features_in_:
            raise ClustergError(f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                                f"{self.n_features_in_} features as input")
        return x
