"""``Data`` that batches clusterg's node-index attributes correctly.

clusterg's transforms store neighbour lists as ``(N, k)`` tensors of node ids: ``knn_nbrs``
(:class:`GCNGraph`, :class:`StructureSpace`) and ``ss_nbrs`` (:class:`StructureSpace`). PyG's
:class:`~torch_geometric.data.Data` only shifts attributes whose name contains ``index`` when
graphs are batched, and would also concatenate those along the last dimension; a
:class:`KNNData` shifts these lists by the number of nodes of the graphs before them and
stacks them along dimension 0, so ``Batch.from_data_list`` (and a ``DataLoader``) keep them
pointing at the right nodes. The transforms return a :class:`KNNData` when they add such an
attribute to a plain ``Data``.
"""
from __future__ import annotations

from typing import Any

from torch_geometric.data import Data

__all__ = ["KNNData", "NODE_INDEX_ATTRS", "as_knn_data"]

#: ``(N, k)`` attributes holding node ids (no ``-1`` padding), shifted when graphs are batched
NODE_INDEX_ATTRS = frozenset({"knn_nbrs", "ss_nbrs"})


class KNNData(Data):
    """:class:`~torch_geometric.data.Data` whose ``knn_nbrs`` / ``ss_nbrs`` (long ``(N, k)``) batch as node ids."""

    def __inc__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key in NODE_INDEX_ATTRS:
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)

    def __cat_dim__(self, key: str, value: Any, *args, **kwargs) -> Any:
        if key in NODE_INDEX_ATTRS:
            return 0
        return super().__cat_dim__(key, value, *args, **kwargs)


def as_knn_data(data: Data) -> Data:
    """``data`` itself when it already batches the node-index attributes, else a :class:`KNNData` copy of it.

    A user's own ``Data`` subclass is kept as it is (its ``__inc__`` is the user's to define).
    """
    if isinstance(data, KNNData) or type(data) is not Data:
        return data
    return KNNData(**{key: value for key, value in data.items()})
