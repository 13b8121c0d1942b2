"""The graph convolution of GCN-V / GCN-E (Yang et al., CVPR 2020).

``h' = ReLU([h || Â h] W + b)`` where ``Â`` is the row-normalised kNN adjacency
with self loops, so ``Â h`` is a similarity-weighted mean over the neighbourhood
(self included). ``W`` has shape ``(2 * in, out)``, Xavier-uniform, bias 0.

This equals PyG's :class:`~torch_geometric.nn.GraphConv` (``aggr="add"``) fed the
entries of ``Â`` as edge weights with ``edge_index = [j, i]`` for ``Â[i, j]``,
followed by a ReLU; the layer below keeps one weight matrix over the
concatenation, as the paper writes it, and adds a sparse-matrix fast path.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

__all__ = ["GCNVConv", "sparse_adj"]


def sparse_adj(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int) -> Tensor:
    """Sparse CSR ``adj_t`` (N, N) with ``adj_t[i, j]`` = weight of edge ``j -> i``.

    One sparse product per layer instead of an (E, D) message tensor. Entries are coalesced (sorted by
    target, then source), so the same edge set gives the same matrix, and the same sums in the same order,
    whatever order the edges come in: the PyG-module path and the clusterers' path share this.
    """
    from torch_geometric.utils import to_torch_csr_tensor
    w = edge_weight if edge_weight is not None else torch.ones(edge_index.size(1), device=edge_index.device)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta; the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        return to_torch_csr_tensor(edge_index.flip(0), w.float(), size=(num_nodes, num_nodes))


class GCNVConv(MessagePassing):
    """``ReLU([x || Â x] W + b)``.

    Args:
        in_channels: input feature size ``D``.
        out_channels: output size.
        relu: apply the ReLU (default True, as in the paper).
        dropout: dropout on the input (default 0).

    Shapes:
        ``x``: (N, D); ``edge_index``: (2, E) with source ``j`` in row 0 and target
        ``i`` in row 1, or a sparse (N, N) tensor ``adj_t`` whose row ``i`` holds
        ``Â[i, :]``; ``edge_weight``: (E,) entries of ``Â``. Output (N, out).
    """

    def __init__(self, in_channels: int, out_channels: int, relu: bool = True, dropout: float = 0.0):
        super().__init__(aggr="add")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.relu = bool(relu)
        self.dropout = float(dropout)
        self.lin = torch.nn.Linear(2 * self.in_channels, self.out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        torch.nn.init.xavier_uniform_(self.lin.weight)
        torch.nn.init.zeros_(self.lin.bias)

    def aggregate_neighbours(self, x: Tensor, edge_index, edge_weight: Tensor | None = None) -> Tensor:
        """``Â x``: (N, D). Sparse ``edge_index`` takes the spmm path (no (E, D) message tensor)."""
        if isinstance(edge_index, Tensor) and edge_index.layout != torch.strided:
            return spmm(edge_index, x, reduce="sum")
        return self.propagate(edge_index, x=x, edge_weight=edge_weight, size=(x.size(0), x.size(0)))

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None, x_agg: Tensor | None = None) -> Tensor:
        """``x_agg`` may carry a precomputed ``Â x`` (constant when ``x`` is fixed input)."""
        if self.dropout > 0:
            x = torch.nn.functional.dropout(x, self.dropout, self.training)
        if x_agg is None:
            x_agg = self.aggregate_neighbours(x, edge_index, edge_weight)
        out = self.lin(torch.cat([x, x_agg], dim=-1))
        return torch.relu(out) if self.relu else out

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce="sum")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"
