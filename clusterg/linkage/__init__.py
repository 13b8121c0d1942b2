"""Linkage: from graph edges (and scores) to cluster labels."""
from .components import UnionFind, connected_components, relabel, threshold_edges

__all__ = ["connected_components", "threshold_edges", "relabel", "UnionFind"]
