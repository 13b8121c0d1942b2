"""PyG transforms that build and reshape kNN graphs of embeddings."""
from .adaptive_graph import AdaptiveGraph, adaptive_adjacency, adaptive_graph
from .gcn_graph import GCNGraph, build_adjacency
from .knn_graph import KNNGraph, knn_to_edge_index
from .structure_space import StructureSpace, structure_space

__all__ = ["KNNGraph", "knn_to_edge_index", "GCNGraph", "build_adjacency", "StructureSpace", "structure_space",
           "AdaptiveGraph", "adaptive_graph", "adaptive_adjacency"]
