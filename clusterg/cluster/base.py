"""The estimator API every clusterer follows (scikit-learn style).

Parameters are stored in ``__init__`` untouched and validated in ``fit``;
``fit(X, y=None, knn=None)`` sets ``labels_`` (int64, one cluster id per row,
0..C-1, no -1) and returns ``self``; ``fit_predict`` returns ``labels_``.
``knn`` is an optional precomputed ``(nbrs, sims)`` pair for ``X``
(see :func:`clusterg.knn.knn_search`), so one kNN graph serves many runs.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

__all__ = ["BaseClusterer"]


class BaseClusterer:
    labels_: np.ndarray

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "BaseClusterer":
        names = set(self._param_names())
        for key, value in params.items():
            if key not in names:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def fit(self, X, y=None, knn=None) -> "BaseClusterer":  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_predict(self, X, y=None, knn=None) -> np.ndarray:
        return self.fit(X, y=y, knn=knn).labels_

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
