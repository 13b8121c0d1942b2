"""PyG transform: a kNN graph on the cosine similarity of ``data.x`` (faiss, no pyg-lib)."""
from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform
from torch_geometric.utils import coalesce

from .._validate import ClustergError, check_k
from ..knn import knn_search

__all__ = ["KNNGraph", "knn_to_edge_index"]


def knn_to_edge_index(nbrs: np.ndarray, sims: np.ndarray, loop: bool = False, symmetric: bool = False,
                      threshold: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a ``(nbrs, sims)`` kNN result into PyG ``edge_index`` ``[2, E]`` and ``edge_weight`` ``[E]``.

    Edges point from neighbour to node (``flow="source_to_target"``): ``edge_index[:, e] = (j, i)``
    for ``j`` in the kNN of ``i``. ``symmetric`` adds the reverse of every edge, keeping the larger
    weight when both exist; ``threshold`` keeps edges with similarity > threshold.
    """
    n, k = nbrs.shape
    dst = np.repeat(np.arange(n, dtype=np.int64), k)
    src = np.asarray(nbrs, dtype=np.int64).ravel()
    w = np.asarray(sims, dtype=np.float32).ravel()
    keep = src != dst
    if threshold is not None:
        keep &= w > threshold
    src, dst, w = src[keep], dst[keep], w[keep]
    edge_index = torch.from_numpy(np.stack([src, dst]))
    edge_weight = torch.from_numpy(w)
    if symmetric:
        edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        edge_weight = torch.cat([edge_weight, edge_weight])
    edge_index, edge_weight = coalesce(edge_index, edge_weight, num_nodes=n, reduce="max")
    if loop:
        idx = torch.arange(n)
        self_w = torch.from_numpy(np.asarray(sims[:, 0], dtype=np.float32))
        edge_index = torch.cat([edge_index, torch.stack([idx, idx])], dim=1)
        edge_weight = torch.cat([edge_weight, self_w])
        edge_index, edge_weight = coalesce(edge_index, edge_weight, num_nodes=n, reduce="max")
    return edge_index, edge_weight


def check_homogeneous(data, name: str) -> None:
    """A clear error for input a transform cannot take (``HeteroData``, no ``x``)."""
    if isinstance(data, HeteroData):
        raise ClustergError(f"{name} works on a homogeneous Data; apply it to one node type's features, e.g. "
                            f"{name}(...)(Data(x=hetero['paper'].x))")
    if getattr(data, "x", None) is None:
        raise ClustergError(f"{name}: data.x is missing (node features (N, D) are required)")


@functional_transform("knn_graph_cos")
class KNNGraph(BaseTransform):
    r"""Creates a k-NN graph on the cosine similarity of node features ``data.x`` (functional name: ``knn_graph_cos``).

    Unlike :class:`torch_geometric.transforms.KNNGraph` (which works on ``data.pos`` and needs pyg-lib),
    this runs on faiss, on the CPU by default, in bounded memory.

    Args:
        k (int): kNN list size, the node itself included as everywhere in clusterg, so each node
            receives ``k - 1`` edges (default: ``20``). Clamped to ``N`` on small graphs.
        loop (bool): add self loops with weight 1 (default: ``False``).
        symmetric (bool): make the graph undirected, max weight on both directions (default: ``False``).
        threshold (float, optional): keep only edges with cosine similarity above it (default: ``None``).
        method (str): ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (default: ``"flat"``).
        device (str): ``"cpu"``, ``"cuda"`` or ``"auto"`` (default: ``"cpu"``).

    Sets ``data.edge_index`` ``[2, E]`` (``flow="source_to_target"``: neighbour -> node) and
    ``data.edge_weight`` ``[E]`` (cosine similarity).
    """

    def __init__(self, k: int = 20, loop: bool = False, symmetric: bool = False, threshold: float | None = None,
                 method: str = "flat", device: str = "cpu"):
        self.k = k
        self.loop = loop
        self.symmetric = symmetric
        self.threshold = threshold
        self.method = method
        self.device = device

    def forward(self, data: Data) -> Data:
        check_homogeneous(data, "KNNGraph")
        n = data.num_nodes
        if n < 1:
            raise ClustergError("KNNGraph: the graph has no nodes")
        k = check_k(self.k, n, name="k", clamp=True, min_k=1)
        if k <= 1:
            data.edge_index = torch.empty((2, 0), dtype=torch.long)
            data.edge_weight = torch.empty(0)
        else:
            nbrs, sims = knn_search(data.x, k, method=self.method, device=self.device)
            data.edge_index, data.edge_weight = knn_to_edge_index(nbrs, sims, loop=False, symmetric=self.symmetric,
                                                                  threshold=self.threshold)
        if self.loop:
            idx = torch.arange(n)
            data.edge_index = torch.cat([data.edge_index, torch.stack([idx, idx])], dim=1)
            data.edge_weight = torch.cat([data.edge_weight, torch.ones(n)])
        return data

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(k={self.k}, loop={self.loop}, symmetric={self.symmetric}, "
                f"threshold={self.threshold}, method={self.method!r})")
