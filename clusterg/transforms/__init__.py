"""PyG transforms that build and reshape kNN graphs of embeddings."""
from .knn_graph import KNNGraph, knn_to_edge_index

__all__ = ["KNNGraph", "knn_to_edge_index"]
