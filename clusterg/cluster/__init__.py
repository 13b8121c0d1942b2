"""Clusterers behind one scikit-learn-style API (``fit``/``fit_predict``/``labels_``).

:data:`CLUSTERERS` maps the names used by ``clusterg cluster --method NAME`` to classes,
imported on first use so a missing optional dependency only affects its own method.
"""
from __future__ import annotations

import importlib

from .._validate import ClustergError
from .base import BaseClusterer
from .dbscan import KNNDBSCAN
from .hac import KNNHAC
from .infomap import InfomapClusterer
from .kmeans import FaissKMeans
from .knn_cc import KNNConnectedComponents

CLUSTERERS: dict[str, str] = {
    "knn-cc": "clusterg.cluster.knn_cc:KNNConnectedComponents",
    "infomap": "clusterg.cluster.infomap:InfomapClusterer",
    "kmeans": "clusterg.cluster.kmeans:FaissKMeans",
    "dbscan": "clusterg.cluster.dbscan:KNNDBSCAN",
    "hac": "clusterg.cluster.hac:KNNHAC",
    "gcn-v": "clusterg.cluster.gcn_v:GCNVClusterer",
    "gcn-ve": "clusterg.cluster.gcn_v:GCNVEClusterer",
    "ada-nets": "clusterg.cluster.ada_nets:AdaNetsClusterer",
}


def get_clusterer_class(name: str) -> type[BaseClusterer]:
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


def make_clusterer(name: str, **params) -> BaseClusterer:
    """An instance of the method ``name``; parameters its class does not take are ignored."""
    cls = get_clusterer_class(name)
    accepted = set(cls._param_names())
    return cls(**{k: v for k, v in params.items() if k in accepted and v is not None})


__all__ = ["BaseClusterer", "CLUSTERERS", "make_clusterer", "get_clusterer_class", "available_methods",
           "KNNConnectedComponents", "InfomapClusterer", "FaissKMeans", "KNNDBSCAN", "KNNHAC"]
