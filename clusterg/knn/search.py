"""k-nearest-neighbour search on cosine similarity with faiss.

Plain functions over arrays. Every result is a pair ``(nbrs, sims)``:

* ``nbrs``: int64 ``(N, k)``, neighbour ids, each row sorted by descending similarity;
* ``sims``: float32 ``(N, k)``, cosine similarities.

``k`` counts the point itself: column 0 is always the query point (similarity 1
on normalised rows), as in learn-to-cluster's ``faiss_k_80.npz`` files. faiss
pads rows it cannot fill with ``-1``; those rows are searched again exactly, so
no ``-1`` ever leaves this module.

Results do not depend on the thread count: faiss is asked for ``k + 8`` candidates, flat
(BLAS) scores are recomputed with a fixed summation order, and every row is sorted by
(the point itself, descending similarity, ascending id); a row with a tie at rank ``k``
(e.g. more than ``k`` duplicates) is settled against every point. See docs/reliability.rst.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Literal

import faiss
import numpy as np

from .._progress import is_quiet, progress
from .._validate import ClustergError, check_features, check_k
from .ivf_gemm import FLAT_KMEANS_MAX, LIST_SIZE

logger = logging.getLogger("clusterg.knn")

__all__ = ["knn_search", "search_knn", "build_index", "default_nlist", "normalize_rows", "gpu_available",
           "resolve_method", "AUTO_EXACT_MAX", "AUTO_GEMM_MAX", "RECALL_CHECK_MIN", "RECALL_WARN"]

Method = Literal["auto", "flat", "ivf", "hnsw", "ivf-gemm"]

#: ``method="auto"``: exact (``"flat"``) search up to this many points, ``"ivf-gemm"`` above it on the
#: CPU. Exact search costs N^2 D: 174 s for 200,000 x 256 on 2 idle cores (docs/benchmarks/knn_gemm.md),
#: about 1,280 s estimated at 584K (knn_gemm_584k.md), where ivf-gemm's kNN plus the default clustering
#: took 104 s (docs/benchmarks/default_584k.json).
AUTO_EXACT_MAX = 200_000
#: ``method="auto"``: ``"ivf-gemm"`` up to this many points (its lists stay one-level k-means with exact
#: probes: FLAT_KMEANS_MAX = 32,768 lists of LIST_SIZE = 192 rows), ``"hnsw"`` above. One-level ivf-gemm
#: built its kNN 1.7x to 2.6x faster than HNSW from 1M to 5.21M points, for a higher pairwise F
#: (docs/benchmarks/knn_gemm.md, "One-level lists to 6,291,456 points"); its k-means and probe search
#: grow as N^2, and two-level lists lose recall (0.361 at 5.21M, default_5210k.json), so HNSW above.
AUTO_GEMM_MAX = FLAT_KMEANS_MAX * LIST_SIZE
#: approximate graphs of at least this many rows get their recall@k estimated on RECALL_SAMPLE rows
RECALL_CHECK_MIN = 20_000
RECALL_SAMPLE = 256
#: below this estimated recall@k a warning names the search depth
RECALL_WARN = 0.8


def resolve_method(method: str, n: int, device: str = "cpu") -> str:
    """The search ``method="auto"`` stands for at ``n`` points (others are returned as given)."""
    if method != "auto":
        return method
    gpu = device == "cuda" or (device == "auto" and gpu_available())
    if n <= AUTO_EXACT_MAX or gpu:  # the GPU's exact search is fast enough at any size here
        return "flat"
    if n <= AUTO_GEMM_MAX:
        logger.info("kNN: %d points > %d, approximate ivf-gemm search (method='auto'; pass 'flat' for exact)",
                    n, AUTO_EXACT_MAX)
        return "ivf-gemm"
    logger.info("kNN: %d points > %d, approximate hnsw search (method='auto'; ivf-gemm's one-level k-means "
                "would grow as N^2 and two-level lists lose recall; pass 'flat' for exact)", n, AUTO_GEMM_MAX)
    return "hnsw"
_ROW_CHUNK = 65536  # rows validated/normalised/added at once: bounds the memory of memmapped input


def gpu_available() -> bool:
    """True when faiss was built with GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def default_nlist(n: int) -> int:
    """IVF lists: about 4 sqrt(N), with at least 39 training points per list (faiss's minimum)."""
    return int(max(1, min(int(4 * math.sqrt(n)), n // 39)))


def normalize_rows(x: np.ndarray, name: str = "features") -> np.ndarray:
    """Validated, L2-normalised float32 copy of ``x`` (N, D); chunked so memmaps stay cheap."""
    n = x.shape[0]
    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, n, _ROW_CHUNK):
        chunk = check_features(np.asarray(x[s:s + _ROW_CHUNK]), name=name, min_n=0, normalize=True)
        out[s:s + len(chunk)] = chunk
    return out


def _prepare(x, name: str, normalize: bool, min_n: int = 1) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.ndim == 2 and np.issubdtype(x.dtype, np.floating):
        if x.shape[0] < min_n:
            raise ClustergError(f"{name}: need at least {min_n} points, got N={x.shape[0]}")
        if x.shape[1] == 0:
            raise ClustergError(f"{name}: feature dimension D is 0")
        if normalize:
            return normalize_rows(x, name)
        out = np.empty(x.shape, dtype=np.float32)
        for s in range(0, x.shape[0], _ROW_CHUNK):
            out[s:s + _ROW_CHUNK] = check_features(np.asarray(x[s:s + _ROW_CHUNK]), name=name, min_n=0,
                                                    allow_zero=True)
        return out
    return check_features(x, name=name, min_n=min_n, normalize=normalize, allow_zero=not normalize)


def _use_gpu(device: str) -> bool:
    if device == "cpu":
        return False
    if device == "cuda":
        if not gpu_available():
            raise ClustergError("device='cuda' asked for, but faiss has no GPU support or sees no GPU; "
                                "install clusterg[gpu] on a machine with a GPU, or use device='cpu'")
        return True
    if device == "auto":
        return gpu_available()
    raise ClustergError(f"device: expected 'cpu', 'cuda' or 'auto', got {device!r}")


def build_index(x: np.ndarray, method: Method = "flat", device: str = "cpu", nlist: int | None = None,
                hnsw_m: int = 32, seed: int = 0, quiet: bool | None = None,
                train_per_list: int = 64) -> faiss.Index:
    """An inner-product faiss index over the float32 rows of ``x`` (already normalised).

    * ``flat``: exact (``IndexFlatIP``).
    * ``ivf``: ``IndexIVFFlat`` with ``nlist`` lists (default :func:`default_nlist`), its k-means
      trained on at most ``train_per_list * nlist`` rows drawn with ``seed`` (64 a list: training
      costs ``rows * nlist * D`` an iteration, which dominates at millions of rows with faiss's
      own 256).
    * ``hnsw``: ``IndexHNSWFlat`` with ``hnsw_m`` links per node (CPU only).
    """
    n, d = x.shape
    if method == "flat":
        index = faiss.IndexFlatIP(d)
    elif method == "ivf":
        nlist = default_nlist(n) if nlist is None else int(nlist)
        if nlist < 1 or nlist > n:
            raise ClustergError(f"nlist must lie in [1, N={n}], got {nlist}")
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(seed)
        if int(train_per_list) < 1:
            raise ClustergError(f"train_per_list must be >= 1, got {train_per_list}")
        n_train = min(n, int(train_per_list) * nlist)
        rng = np.random.default_rng(seed)
        sample = x if n_train == n else x[np.sort(rng.choice(n, n_train, replace=False))]
        logger.info("training IVF%d on %d rows", nlist, n_train)
        index.cp.max_points_per_centroid = int(train_per_list)
        index.train(np.ascontiguousarray(sample))
    elif method == "hnsw":
        if device == "cuda":
            raise ClustergError("method='hnsw' runs on the CPU only; use 'flat' or 'ivf' on the GPU")
        index = faiss.IndexHNSWFlat(d, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
        device = "cpu"  # faiss has no GPU HNSW: device="auto" means the CPU here
    else:
        raise ClustergError(f"method: expected 'flat', 'ivf' or 'hnsw', got {method!r}")
    if _use_gpu(device):
        res = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(res, 0, index)
        index._clusterg_res = res  # keep the resources alive as long as the index
    quiet = is_quiet() if quiet is None else quiet
    for s in progress(range(0, n, _ROW_CHUNK), desc=f"kNN index ({method})", disable=quiet or n <= _ROW_CHUNK):
        index.add(np.ascontiguousarray(x[s:s + _ROW_CHUNK]))
    return index


def _set_search_params(index, method: str, k: int, nprobe: int | None, ef_search: int | None) -> None:
    if method == "ivf":
        nlist = faiss.extract_index_ivf(index).nlist if not hasattr(index, "nlist") else index.nlist
        index.nprobe = int(min(nlist, nprobe if nprobe is not None else 32))
    elif method == "hnsw":
        index.hnsw.efSearch = int(ef_search if ef_search is not None else max(2 * k, 64))


def _search_chunks(index, q: np.ndarray, k: int, chunk_size: int, desc: str, quiet: bool):
    """Raw faiss results ``(nbrs, sims)`` of ``q`` in chunks of ``chunk_size`` rows (pads ``-1``)."""
    n = q.shape[0]
    nbrs = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    bar = progress(total=n, desc=desc, disable=quiet or n <= chunk_size, unit="q")
    for s in range(0, n, chunk_size):
        d, i = index.search(np.ascontiguousarray(q[s:s + chunk_size]), k)
        sims[s:s + len(d)] = d
        nbrs[s:s + len(d)] = i
        bar.update(len(d))
    bar.close()
    return nbrs, sims


def _stored_rows(index, x: np.ndarray) -> np.ndarray:
    """The rows a CPU flat or HNSW-flat index stores, as a view (no copy) when it has them in id
    order; else ``x``. The view is valid only while ``index`` lives."""
    store = getattr(index, "storage", None)
    flat = faiss.downcast_index(store) if store is not None else index
    if not isinstance(flat, faiss.IndexFlat) or flat.ntotal != x.shape[0] or flat.d != x.shape[1]:
        return x
    return faiss.rev_swig_ptr(flat.get_xb(), x.shape[0] * x.shape[1]).reshape(x.shape)


def _search_settled(index, base: np.ndarray, query: np.ndarray, k: int, kc: int, chunk_size: int, desc: str,
                    quiet: bool, self_first: bool, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """``kc`` candidates a query row from faiss, settled to the final ``k`` chunk by chunk (see
    :func:`_settle`), so only one chunk's candidates are held besides the ``(N, k)`` result."""
    n = query.shape[0]
    nbrs = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    bar = progress(total=n, desc=desc, disable=quiet or n <= chunk_size, unit="q")
    n_redone = 0
    for s in range(0, n, chunk_size):
        q = np.ascontiguousarray(query[s:s + chunk_size])
        d, i = index.search(q, kc)
        redone = _fill_pads(i, d, base, q, kc)
        n_redone += len(redone)
        ids = np.arange(s, s + len(q)) if self_first else None
        nbrs[s:s + len(q)], sims[s:s + len(q)] = _settle(i, d, base, q, k, ids, exact=exact, rescore=redone)
        bar.update(len(q))
    bar.close()
    if n_redone:
        logger.info("%d rows padded by faiss were searched again exactly", n_redone)
    return nbrs, sims


def _fill_pads(nbrs, sims, base: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Redo rows that faiss padded with -1 by exact brute force; returns those rows' indices."""
    bad = np.flatnonzero((nbrs < 0).any(axis=1))
    if len(bad):
        d, i = faiss.knn(np.ascontiguousarray(query[bad]), base, k, metric=faiss.METRIC_INNER_PRODUCT)
        nbrs[bad], sims[bad] = i, d
    return bad


_TIE_EPS = 2e-5  # faiss's similarities move by < 1e-6 with the thread count (BLAS blocking); 20x that
_MARGIN = 8  # extra candidates searched so that a near-tie at rank k is settled by exact scores


def _exact_sims(nbrs: np.ndarray, base: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Similarities of ``query[i]`` to ``base[nbrs[i, j]]``, each scored on its own.

    faiss's ``fvec_inner_products_by_idx`` computes every pair with one SIMD dot product in a
    fixed order, so the result, unlike the flat index's BLAS scores, is the same at 1 and 16
    threads; it reads rows in place (no gathered copy). Pads (-1) get -inf.
    """
    n, kc = nbrs.shape
    out = np.empty((n, kc), dtype=np.float32)
    if n == 0 or kc == 0:
        return out
    pad = nbrs < 0
    ids = np.ascontiguousarray(np.where(pad, 0, nbrs), dtype=np.int64)  # never hand faiss a -1
    q = np.ascontiguousarray(query, dtype=np.float32)
    b = np.ascontiguousarray(base, dtype=np.float32)
    faiss.fvec_inner_products_by_idx(faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(b),
                                     faiss.swig_ptr(ids), q.shape[1], n, kc)
    out[pad] = -np.inf
    return out


def _order(nbrs: np.ndarray, sims: np.ndarray, self_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Sort every row by (self first, descending similarity, ascending id): ties broken by id."""
    n, kc = nbrs.shape
    if n == 0:
        return nbrs, sims
    if max(n, int(nbrs.max(initial=0)) + 1) < (1 << 30):
        # one int64 key a cell: bit 62 "not self", bits 30-61 the similarity's order (float32 bits made
        # monotone, reversed), bits 0-29 the id: a single argsort instead of a three-key lexsort
        f = np.ascontiguousarray(sims, dtype=np.float32) + np.float32(0.0)  # -0.0 sorts as 0.0
        bits = f.view(np.int32).astype(np.int64)
        mono = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # increasing with the float value
        key = ((1 << 31) - 1 - mono) << 30  # descending similarity, in [0, 2**32)
        key |= np.where(nbrs < 0, (1 << 30) - 1, nbrs)
        if self_ids is not None:
            key |= (nbrs != self_ids[:, None]).astype(np.int64) << 62
        order = np.argsort(key, axis=1)
    else:
        ids = np.where(nbrs < 0, np.iinfo(np.int64).max, nbrs)
        keys = [ids, -sims.astype(np.float64)]
        if self_ids is not None:
            keys.append((nbrs != self_ids[:, None]).astype(np.int8))
        order = np.lexsort(keys, axis=-1)
    return np.take_along_axis(nbrs, order, axis=1), np.take_along_axis(sims, order, axis=1)


def _brute_rows(rows: np.ndarray, base: np.ndarray, query: np.ndarray, kc: int) -> np.ndarray:
    """Candidate ids of ``query[rows]`` among all of ``base``: the top ``kc`` plus everything within
    ``_TIE_EPS`` of the ``kc``-th score (a superset of the exact top ``kc`` at any thread count)."""
    n = base.shape[0]
    step = max(1, (1 << 24) // max(n, 1))
    out = []
    for s in range(0, len(rows), step):
        r = rows[s:s + step]
        scores = query[r] @ base.T  # (R, N)
        kth = np.partition(scores, n - kc, axis=1)[:, n - kc]
        for j in range(len(r)):
            out.append(np.flatnonzero(scores[j] >= kth[j] - _TIE_EPS))
    return out


def _settle(nbrs: np.ndarray, sims: np.ndarray, base: np.ndarray, query: np.ndarray, k: int,
            self_ids: np.ndarray | None, exact: bool,
            rescore: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """From faiss's candidates (k + margin a row) to the final ``k``: ties by id, self first.

    Flat search is scored again by :func:`_exact_sims` (its BLAS scores move with the thread
    count); IVF/HNSW scores are per-vector and kept, except rows in ``rescore``.

    With ``exact`` (flat search), a row whose rank-k score is tied (within ``_TIE_EPS``) with
    its last candidate is searched again against every base row, so which of many tied points
    (duplicates) make the list is decided by id, not by thread scheduling.
    """
    nq, kc = nbrs.shape
    nb = base.shape[0]
    if exact:  # flat search scores through BLAS, whose rounding depends on the threads: score again
        sims = _exact_sims(nbrs, base, query)
    else:  # IVF / HNSW score each vector on its own (fvec_inner_product): already thread-independent
        sims = np.where(nbrs < 0, -np.inf, sims).astype(np.float32)
        if rescore is not None and len(rescore):  # rows redone by the brute-force (BLAS) pad filler
            sims[rescore] = _exact_sims(nbrs[rescore], base, query[rescore])
    nbrs, sims = _order(nbrs, sims, self_ids)
    if exact and kc < nb:
        rows = np.flatnonzero(sims[:, k - 1] - sims[:, -1] <= _TIE_EPS)
        if len(rows):
            logger.debug("%d rows with ties at rank %d searched against every point", len(rows), k)
            cand = _brute_rows(rows, base, query, min(nb, kc))
            for r, c in zip(rows.tolist(), cand):
                if self_ids is not None and not (c == self_ids[r]).any():
                    c = np.append(c, self_ids[r])
                cn = c[None, :]
                cs = _exact_sims(cn, base, query[r:r + 1])
                cn, cs = _order(cn, cs, None if self_ids is None else self_ids[r:r + 1])
                nbrs[r], sims[r] = cn[0, :kc], cs[0, :kc]
    nbrs, sims = np.ascontiguousarray(nbrs[:, :k]), np.ascontiguousarray(sims[:, :k])
    if self_ids is not None:
        absent = nbrs[:, 0] != self_ids
        if absent.any():  # approximate search missed the point itself: it takes column 0
            a = np.flatnonzero(absent)
            nbrs[a, 1:] = nbrs[a, :-1].copy()
            sims[a, 1:] = sims[a, :-1].copy()
            nbrs[a, 0] = self_ids[a]
    return nbrs, sims


def _self_first(nbrs: np.ndarray, sims: np.ndarray, self_sim: np.ndarray) -> None:
    """Make column 0 the query itself (ties and duplicates can put another point first)."""
    n, k = nbrs.shape
    ids = np.arange(n)
    bad = np.flatnonzero(nbrs[:, 0] != ids)
    if len(bad):
        nb, sb, me = nbrs[bad], sims[bad], ids[bad]
        absent = ~(nb == me[:, None]).any(axis=1)
        nb[absent, -1] = me[absent]  # self fell off the list: it replaces the farthest entry
        order = np.argsort(nb != me[:, None], axis=1, kind="stable")  # self first, others keep their order
        nbrs[bad] = np.take_along_axis(nb, order, axis=1)
        sims[bad] = np.take_along_axis(sb, order, axis=1)
    sims[:, 0] = self_sim


def knn_search(x, k: int, method: Method = "flat", device: str = "cpu", chunk_size: int | None = None,
               nlist: int | None = None, nprobe: int | None = None, hnsw_m: int = 32,
               ef_search: int | None = None, normalize: bool = True, seed: int = 0,
               quiet: bool | None = None, expand: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """kNN of every row of ``x`` among the rows of ``x``, on cosine similarity.

    Args:
        x: features ``(N, D)`` (array, memmap or tensor); N >= 1, finite, no zero rows.
        k: neighbours per row **including the row itself**; ``1 <= k <= N``, else
            :class:`~clusterg.ClustergError` (pass ``min(k, N)`` to clamp).
        method: ``"flat"`` (exact), ``"ivf"`` or ``"hnsw"`` (approximate), ``"ivf-gemm"``
            (approximate, list-major IVF with BLAS, :func:`clusterg.knn.ivf_gemm.ivf_gemm_knn`), or
            ``"auto"``: ``"flat"`` up to :data:`AUTO_EXACT_MAX` points, ``"ivf-gemm"`` up to
            :data:`AUTO_GEMM_MAX`, ``"hnsw"`` above.
        device: ``"cpu"``, ``"cuda"`` (faiss-gpu) or ``"auto"``.
        chunk_size: queries per faiss call (bounds the memory of one call); default 16384.
        nlist, nprobe: IVF lists (default ~4 sqrt(N); ``ivf-gemm``: N / 192) and lists visited per
            query (default 32).
        hnsw_m, ef_search: HNSW links per node (32) and search depth (default max(2k, 64)).
        normalize: L2-normalise rows first (cosine); False uses raw inner products.
        seed: seed for IVF training.
        expand: ``ivf-gemm`` only: unprobed lists a row scans in the second pass (default
            :data:`clusterg.knn.ivf_gemm.EXPAND`; 0: one pass). Given with another method:
            :class:`~clusterg.ClustergError`.

    Returns:
        ``(nbrs, sims)``: int64 ``(N, k)`` and float32 ``(N, k)``, self first,
        descending similarity, no ``-1``.
    """
    if method == "auto":
        method = resolve_method(method, int(np.shape(x)[0]) if np.ndim(x) == 2 else 0, device)
    if expand is not None and method != "ivf-gemm":
        raise ClustergError(f"expand is a setting of method='ivf-gemm' only, not of {method!r}")
    if method == "ivf-gemm":  # list-major IVF, one GEMM per list: clusterg.knn.ivf_gemm (CPU)
        from .ivf_gemm import ivf_gemm_knn
        if device == "cuda":
            raise ClustergError("method='ivf-gemm' runs on the CPU; use 'flat' or 'ivf' on the GPU")
        nbrs, sims = ivf_gemm_knn(x, k, nlist=nlist, nprobe=nprobe, normalize=normalize, seed=seed, quiet=quiet,
                                  expand=expand)
        _check_recall(x, nbrs, method, nprobe, normalize, seed)
        return nbrs, sims
    xs = _prepare(x, "features", normalize)
    n = xs.shape[0]
    k = check_k(k, n)
    chunk_size = int(chunk_size or 16384)
    if chunk_size < 1:
        raise ClustergError(f"chunk_size must be >= 1, got {chunk_size}")
    quiet = is_quiet() if quiet is None else quiet
    index = build_index(xs, method, device, nlist=nlist, hnsw_m=hnsw_m, seed=seed, quiet=quiet)
    # a flat or HNSW index on the CPU holds its own copy of the rows, in id order: read that one and
    # let the prepared copy go (5.3 GB at 5.21M x 256); `index` must then outlive every use of `xs`
    xs = _stored_rows(index, xs)
    kc = min(n, k + _MARGIN)
    _set_search_params(index, method, kc, nprobe, ef_search)
    nbrs, sims = _search_settled(index, xs, xs, k, kc, chunk_size, f"kNN search ({method})", quiet,
                                 self_first=True, exact=(method == "flat"))
    self_sim = np.ones(n, dtype=np.float32) if normalize else np.einsum("ij,ij->i", xs, xs)
    _self_first(nbrs, sims, self_sim)
    if method != "flat":
        _check_recall(xs, nbrs, method, nprobe, False, seed)
    del xs, index
    return nbrs, sims


def _check_recall(x, nbrs: np.ndarray, method: str, nprobe, normalize: bool, seed: int) -> None:
    """Approximate graphs of at least RECALL_CHECK_MIN rows: recall@k on RECALL_SAMPLE rows against exact
    search (RECALL_SAMPLE x N x D multiply-adds, the rows read in blocks), logged, and a warning
    below RECALL_WARN, where a clustering splits people (synthetic 5.21M x 256 at nprobe 32: recall 0.36,
    pairwise F 0.63; at 584K, recall 0.91 and F 0.98: docs/benchmarks/default_5210k.json, default_584k.json)."""
    n, k = nbrs.shape
    if n < RECALL_CHECK_MIN or k < 2:
        return
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    from .recall import streamed_recall
    r = streamed_recall(x, nbrs, n_sample=RECALL_SAMPLE, seed=seed, normalize=normalize)
    if r < RECALL_WARN:
        logger.warning("kNN (%s): recall@%d is %.2f on %d sampled rows, so the graph misses many true neighbours "
                       "and clusterings will split people; search deeper (nprobe, now %s) or exactly (method='flat')",
                       method, k, r, RECALL_SAMPLE, nprobe if nprobe is not None else "the default")
    else:
        logger.info("kNN (%s): recall@%d %.3f on %d sampled rows", method, k, r, RECALL_SAMPLE)


def search_knn(base, query, k: int, method: Method = "flat", device: str = "cpu", chunk_size: int | None = None,
               nlist: int | None = None, nprobe: int | None = None, hnsw_m: int = 32,
               ef_search: int | None = None, normalize: bool = True, seed: int = 0,
               quiet: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """kNN of each ``query`` row among the ``base`` rows (no self handling): new faces against known ones.

    Same arguments and result layout as :func:`knn_search`; ``k <= len(base)``.
    """
    xb = _prepare(base, "base", normalize)
    xq = _prepare(query, "query", normalize, min_n=0)
    if xb.shape[1] != xq.shape[1]:
        raise ClustergError(f"query has dimension {xq.shape[1]} but base has {xb.shape[1]}")
    k = check_k(k, xb.shape[0])
    quiet = is_quiet() if quiet is None else quiet
    if xq.shape[0] == 0:
        return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
    chunk_size = int(chunk_size or 16384)
    if chunk_size < 1:
        raise ClustergError(f"chunk_size must be >= 1, got {chunk_size}")
    index = build_index(xb, method, device, nlist=nlist, hnsw_m=hnsw_m, seed=seed, quiet=quiet)
    xb = _stored_rows(index, xb)
    kc = min(xb.shape[0], k + _MARGIN)
    _set_search_params(index, method, kc, nprobe, ef_search)
    out = _search_settled(index, xb, xq, k, kc, chunk_size, f"kNN search ({method})", quiet,
                          self_first=False, exact=(method == "flat"))
    del xb, index
    return out


def set_num_threads(n: int | None = None) -> None:
    """Threads faiss may use (default: all cores, or $OMP_NUM_THREADS)."""
    faiss.omp_set_num_threads(int(n or os.environ.get("OMP_NUM_THREADS", 0) or os.cpu_count() or 1))
