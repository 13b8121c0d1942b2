"""Linkage: from graph edges (and scores) to cluster labels."""
from .components import UnionFind, connected_components, relabel, threshold_edges
from .rejoin import rejoin_by_reference
from .tree_deduction import candidate_sets, nearest_higher, parents_to_labels, tree_deduction

__all__ = ["connected_components", "threshold_edges", "relabel", "UnionFind", "tree_deduction", "nearest_higher",
           "candidate_sets", "parents_to_labels", "rejoin_by_reference"]
