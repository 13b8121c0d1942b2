"""PyG transforms that build and reshape kNN graphs of embeddings."""
from .adaptive_graph import AdaptiveGraph, adaptive_adjacency, adaptive_graph
from .data import NODE_INDEX_ATTRS, KNNData, as_knn_data
from .gcn_graph import GCNGraph, build_adjacency
from .k_reciprocal import KReciprocal, k_reciprocal_jaccard
from .knn_graph import KNNGraph, knn_to_edge_index
from .structure_space import StructureSpace, structure_space

__all__ = ["KNNData", "NODE_INDEX_ATTRS", "as_knn_data", "KNNGraph", "knn_to_edge_index", "GCNGraph", "build_adjacency",
           "StructureSpace", "structure_space",
           "KReciprocal", "k_reciprocal_jaccard",
           "AdaptiveGraph", "adaptive_graph", "adaptive_adjacency"]
