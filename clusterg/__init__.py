"""clusterg: cluster large sets of embeddings by learning on kNN graphs (PyG + faiss, CPU first).

Pipeline, one sub-package per stage::

    data -> knn -> transforms -> nn -> linkage -> metrics -> cli
"""
__version__ = "0.1.0"

from ._validate import ClustergError  # noqa: E402
from ._progress import set_quiet  # noqa: E402

__all__ = ["ClustergError", "set_quiet", "__version__"]
