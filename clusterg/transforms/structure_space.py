"""Ada-NETS structure space: k-reciprocal re-ranking of kNN lists.

Ada-NETS (Wang et al., ICLR 2022) measures how similar two faces are not only by
the cosine similarity of their embeddings but also by how much their
neighbourhoods agree. For each node ``i``:

* ``R_k(i)`` is its k-reciprocal set ``{j in kNN_k(i) : i in kNN_k(j)}`` (``i``
  itself included, since the kNN lists count self);
* ``R*(i)`` expands ``R_k(i)`` with ``R_{k//2}(j)`` for every ``j in R_k(i)``
  whose half-size reciprocal set lies mostly inside ``R_k(i)``:
  ``|R_{k//2}(j) & R_k(i)| >= 2/3 |R_{k//2}(j)|``;
* the structure similarity to each of its top-k neighbours is
  ``s'(i, j) = (1 - lam) * Jaccard(R*(i), R*(j)) + lam * cos(i, j)``
  (``lam = 0.3``; the paper writes ``eta = 1 - lam = 0.7`` for the Jaccard
  weight), and the list is re-sorted by ``s'`` (descending).

Everything is sparse-matrix algebra (scipy), chunked over rows, so it runs on
hundreds of thousands of nodes without a Python loop per node.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data
from torch_geometric.data.datapipes import functional_transform
from torch_geometric.transforms import BaseTransform

from .._progress import progress
from .._validate import ClustergError, check_threshold

__all__ = ["reciprocal_sets", "expanded_reciprocal_sets", "jaccard_on_lists", "structure_space",
           "StructureSpace"]

logger = logging.getLogger("clusterg.transforms.structure_space")


def _check_knn(nbrs, sims=None, name: str = "nbrs") -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(nbrs, torch.Tensor):
        nbrs = nbrs.detach().cpu().numpy()
    nbrs = np.asarray(nbrs)
    if nbrs.ndim != 2:
        raise ClustergError(f"{name}: expected shape (N, K), got shape {tuple(nbrs.shape)}")
    if not np.issubdtype(nbrs.dtype, np.integer):
        raise ClustergError(f"{name}: expected integer neighbour ids, got dtype {nbrs.dtype}")
    n, k = nbrs.shape
    if n < 2:
        raise ClustergError(f"{name}: need at least 2 points, got N={n}")
    if k < 1:
        raise ClustergError(f"{name}: need at least 1 neighbour per row")
    nbrs = nbrs.astype(np.int64, copy=False)
    if nbrs.min() < 0 or nbrs.max() >= n:
        raise ClustergError(f"{name}: neighbour ids must lie in [0, N-1] (no -1 padding); found "
                            f"{int(nbrs.min())}..{int(nbrs.max())} with N={n}")
    if sims is not None:
        if isinstance(sims, torch.Tensor):
            sims = sims.detach().cpu().numpy()
        sims = np.asarray(sims)
        if sims.shape != nbrs.shape:
            raise ClustergError(f"sims: shape {tuple(sims.shape)} does not match nbrs {tuple(nbrs.shape)}")
        if not np.issubdtype(sims.dtype, np.floating):
            raise ClustergError(f"sims: expected floats, got dtype {sims.dtype}")
        if not np.isfinite(sims).all():
            raise ClustergError("sims: contains NaN or inf")
        sims = sims.astype(np.float32, copy=False)
    return nbrs, sims


def _knn_matrix(nbrs: np.ndarray, k: int) -> sp.csr_matrix:
    """Boolean (N, N) matrix with A[i, j] = 1 iff j is in the first k entries of row i."""
    n = nbrs.shape[0]
    cols = nbrs[:, :k].ravel()
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    a = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1.0
    return a


def reciprocal_sets(nbrs, k: int) -> sp.csr_matrix:
    """k-reciprocal sets as a boolean sparse matrix.

    Args:
        nbrs: int (N, K) kNN lists, self included (normally column 0), K >= k.
        k: size of the neighbour lists compared.

    Returns:
        CSR float32 (N, N), entry (i, j) = 1 iff j is in the top-k of i and i is
        in the top-k of j. The diagonal is set wherever a node lists itself.
    """
    nbrs, _ = _check_knn(nbrs)
    if not 1 <= int(k) <= nbrs.shape[1]:
        raise ClustergError(f"k={k} must lie in [1, {nbrs.shape[1]}] (the number of neighbours per row)")
    a = _knn_matrix(nbrs, int(k))
    r = a.multiply(a.T).tocsr()
    r.eliminate_zeros()
    r.sort_indices()
    return r


def expanded_reciprocal_sets(nbrs, k: int) -> sp.csr_matrix:
    """Ada-NETS / k-reciprocal re-ranking expansion ``R*(i)``.

    ``R*(i) = R_k(i) | union of R_{k//2}(j)`` over ``j in R_k(i)`` with
    ``|R_{k//2}(j) & R_k(i)| >= 2/3 |R_{k//2}(j)|``.

    Returns:
        CSR float32 (N, N) boolean matrix, row i = R*(i).
    """
    nbrs, _ = _check_knn(nbrs)
    k = int(k)
    if not 2 <= k <= nbrs.shape[1]:
        raise ClustergError(f"k={k} must lie in [2, {nbrs.shape[1]}] (the number of neighbours per row)")
    r = reciprocal_sets(nbrs, k)
    rh = reciprocal_sets(nbrs, k // 2)
    # overlap[i, j] = |R_k(i) & R_{k//2}(j)|, needed only where j in R_k(i)
    overlap = (r @ rh.T).multiply(r).tocsr()
    overlap.sort_indices()
    half_size = np.asarray(rh.sum(axis=1)).ravel()
    coo = overlap.tocoo()
    keep = coo.data >= (2.0 / 3.0) * half_size[coo.col] - 1e-6
    sel = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (coo.row[keep], coo.col[keep])),
                        shape=r.shape)
    rstar = (r + sel @ rh).tocsr()
    rstar.data[:] = 1.0
    rstar.eliminate_zeros()
    rstar.sort_indices()
    return rstar


def jaccard_on_lists(sets: sp.csr_matrix, nbrs: np.ndarray, chunk_size: int = 20000,
                     quiet: bool | None = None) -> np.ndarray:
    """Jaccard index between each node's set and the sets of its listed neighbours.

    Args:
        sets: (N, N) boolean CSR matrix, row i = the set of node i.
        nbrs: int64 (N, K) neighbour ids.
        chunk_size: rows per sparse product (bounds memory).

    Returns:
        float32 (N, K): ``|S_i & S_j| / |S_i | S_j|`` for ``j = nbrs[i, c]``
        (0 where both sets are empty).
    """
    n, kk = nbrs.shape
    sets = sets.tocsr()
    size = np.asarray(sets.sum(axis=1)).ravel().astype(np.float32)
    setst = sets.T.tocsc()
    out = np.empty((n, kk), dtype=np.float32)
    starts = range(0, n, chunk_size)
    for s in progress(starts, total=len(starts), desc="jaccard", disable=quiet):
        e = min(n, s + chunk_size)
        prod = (sets[s:e] @ setst).tocsr()  # |S_i & S_j| for every j sharing an element
        prod.sort_indices()
        # look up (row, nbr) pairs by sorted linear keys instead of fancy-indexing scipy
        rows_nnz = np.repeat(np.arange(e - s, dtype=np.int64), np.diff(prod.indptr))
        keys = rows_nnz * n + prod.indices.astype(np.int64)
        q = (np.arange(e - s, dtype=np.int64)[:, None] * n + nbrs[s:e]).ravel()
        pos = np.searchsorted(keys, q)
        pos_c = np.minimum(pos, max(len(keys) - 1, 0))
        hit = (pos < len(keys)) & (keys[pos_c] == q) if len(keys) else np.zeros(len(q), bool)
        inter = np.where(hit, prod.data[pos_c] if len(keys) else 0.0, 0.0).reshape(e - s, kk)
        union = size[s:e, None] + size[nbrs[s:e]] - inter
        out[s:e] = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return out


def structure_space(nbrs, sims, k: int = 80, lam: float = 0.3, chunk_size: int = 20000,
                    return_cosine: bool = False, quiet: bool | None = None):
    """Re-rank each node's top-k list in the Ada-NETS structure space.

    Args:
        nbrs: int (N, K) kNN ids, self included (column 0), rows by descending
            cosine similarity (as :func:`clusterg.knn.knn_search` returns), K >= k.
        sims: float (N, K) cosine similarities matching ``nbrs``.
        k: neighbourhood size for the reciprocal sets and the re-ranked list
            (default 80, the paper's value; clamped to K with a warning).
        lam: weight of the cosine similarity; ``1 - lam`` weights the Jaccard
            similarity (default 0.3, i.e. the paper's eta = 0.7).
        chunk_size: rows per sparse product.
        return_cosine: also return the cosine similarities in the new order.

    Returns:
        ``(nbrs_s, sims_s)``: int64 (N, k) ids and float32 (N, k) structure
        similarities ``(1 - lam) * Jaccard + lam * cos``, each row sorted by
        descending structure similarity (stable, so ties keep the kNN order;
        self stays first). With ``return_cosine`` a third float32 (N, k)
        array of cosine similarities in that order.
    """
    nbrs, sims = _check_knn(nbrs, sims)
    if sims is None:
        raise ClustergError("sims: required")
    lam = check_threshold(lam, "lam", 0.0, 1.0)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ClustergError(f"k: expected an integer, got {k!r}")
    k = int(k)
    if k < 2:
        raise ClustergError(f"k: must be >= 2, got {k}")
    if k > nbrs.shape[1]:
        logger.warning("structure_space: k=%d > %d neighbours per row; using k=%d", k, nbrs.shape[1], nbrs.shape[1])
        k = nbrs.shape[1]
    if chunk_size < 1:
        raise ClustergError(f"chunk_size: must be >= 1, got {chunk_size}")
    rstar = expanded_reciprocal_sets(nbrs, k)
    nb = np.ascontiguousarray(nbrs[:, :k])
    cos = np.ascontiguousarray(sims[:, :k])
    jac = jaccard_on_lists(rstar, nb, chunk_size=chunk_size, quiet=quiet)
    s_new = ((1.0 - lam) * jac + lam * cos).astype(np.float32)
    order = np.argsort(-s_new, axis=1, kind="stable")
    nb_s = np.take_along_axis(nb, order, axis=1)
    s_s = np.take_along_axis(s_new, order, axis=1)
    if return_cosine:
        return nb_s, s_s, np.take_along_axis(cos, order, axis=1)
    return nb_s, s_s


@functional_transform("structure_space")
class StructureSpace(BaseTransform):
    """PyG transform: re-rank ``data.knn_nbrs`` / ``data.knn_sims`` in structure space
    (functional name: ``structure_space``).

    ``k`` is the list size, self included (default 80, the paper's value). A plain ``Data``
    comes back as a :class:`~clusterg.transforms.KNNData`, so ``knn_nbrs`` and ``ss_nbrs``
    stay right in a batch.

    Expects ``data.knn_nbrs`` (long (N, K), self first) and ``data.knn_sims``
    (float (N, K) cosine). Writes ``data.ss_nbrs`` (long (N, k)),
    ``data.ss_sims`` (float (N, k) structure similarity) and ``data.ss_cos``
    (float (N, k) cosine in the same order). If the kNN attributes are missing
    they are computed from ``data.x`` with :func:`clusterg.knn.knn_search`.
    """

    def __init__(self, k: int = 80, lam: float = 0.3):
        self.k = k
        self.lam = lam

    def forward(self, data: Data) -> Data:
        from .data import as_knn_data
        data = as_knn_data(data)
        if getattr(data, "knn_nbrs", None) is None or getattr(data, "knn_sims", None) is None:
            if getattr(data, "x", None) is None:
                raise ClustergError("StructureSpace: data needs knn_nbrs/knn_sims or x")
            from ..knn import knn_search
            n = int(data.x.shape[0])
            nb, si = knn_search(data.x.detach().cpu().numpy(), k=min(int(self.k), n))
            data.knn_nbrs, data.knn_sims = torch.from_numpy(nb), torch.from_numpy(si)
        nb, s, c = structure_space(data.knn_nbrs, data.knn_sims, k=min(int(self.k), int(data.knn_nbrs.shape[1])),
                                   lam=self.lam, return_cosine=True)
        data.ss_nbrs = torch.from_numpy(nb)
        data.ss_sims = torch.from_numpy(s)
        data.ss_cos = torch.from_numpy(c)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k}, lam={self.lam})"
