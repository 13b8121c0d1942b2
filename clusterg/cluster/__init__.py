"""Clusterers behind one scikit-learn-style API (``fit``/``fit_predict``/``labels_``).

:data:`CLUSTERERS` maps the names used by ``clusterg cluster --method NAME`` to classes,
imported on first use so a missing optional dependency only affects its own method.
Every estimator class is importable from here (``from clusterg.cluster import GCNVClusterer``);
the modules load lazily, so ``import clusterg.cluster`` (and the command line's parser) stays light.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .._validate import ClustergError

if TYPE_CHECKING:  # pragma: no cover
    from .ada_nets import AdaNetsClusterer
    from .auto import AutoClusterer
    from .base import BaseClusterer
    from .dbscan import KNNDBSCAN
    from .gcn_v import GCNVClusterer, GCNVEClusterer
    from .hac import KNNHAC
    from .infomap import InfomapClusterer
    from .kmeans import FaissKMeans
    from .knn_cc import KNNConnectedComponents

CLUSTERERS: dict[str, str] = {
    "auto": "clusterg.cluster.auto:AutoClusterer",
    "knn-cc": "clusterg.cluster.knn_cc:KNNConnectedComponents",
    "infomap": "clusterg.cluster.infomap:InfomapClusterer",
    "kmeans": "clusterg.cluster.kmeans:FaissKMeans",
    "dbscan": "clusterg.cluster.dbscan:KNNDBSCAN",
    "hac": "clusterg.cluster.hac:KNNHAC",
    "gcn-v": "clusterg.cluster.gcn_v:GCNVClusterer",
    "gcn-ve": "clusterg.cluster.gcn_v:GCNVEClusterer",
    "ada-nets": "clusterg.cluster.ada_nets:AdaNetsClusterer",
}


def get_clusterer_class(name: str) -> "type[BaseClusterer]":
    """The class registered under ``name``."""
    if name not in CLUSTERERS:
        raise ClustergError(f"unknown method {name!r}; choose one of {', '.join(CLUSTERERS)}")
    module, cls = CLUSTERERS[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise ClustergError(f"method {name!r} is not available in this installation ({e})") from None


def available_methods() -> list[str]:
    """Registered names whose class imports."""
    out = []
    for name in CLUSTERERS:
        try:
            get_clusterer_class(name)
            out.append(name)
        except ClustergError:
            pass
    return out


def make_clusterer(name: str, **params) -> "BaseClusterer":
    """An instance of the method ``name`` with ``params`` (``None`` values mean "the method's default").

    A parameter the method does not take is an error naming the method (it is never dropped silently).
    """
    cls = get_clusterer_class(name)
    accepted = cls._param_names()
    bad = [k for k, v in params.items() if v is not None and k not in accepted]
    if bad:
        flags = ", ".join(f"{k} (--{k.replace('_', '-')})" for k in bad)
        raise ClustergError(f"method {name!r} does not take {flags}; its parameters are: {', '.join(accepted)}")
    return cls(**{k: v for k, v in params.items() if v is not None})


#: class name -> module, for the lazy attribute access below
_CLASSES = {"BaseClusterer": "base", **{path.split(":")[1]: path.split(":")[0].rsplit(".", 1)[1]
                                          for path in CLUSTERERS.values()}}


def __getattr__(name: str):
    if name in _CLASSES:
        value = getattr(importlib.import_module(f"{__name__}.{_CLASSES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CLASSES))


__all__ = ["BaseClusterer", "CLUSTERERS", "make_clusterer", "get_clusterer_class", "available_methods",
           "KNNConnectedComponents", "InfomapClusterer", "FaissKMeans", "KNNDBSCAN", "KNNHAC",
           "GCNVClusterer", "GCNVEClusterer", "AdaNetsClusterer", "AutoClusterer"]
