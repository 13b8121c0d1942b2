"""List-major IVF kNN: one dense float32 GEMM per inverted list, compiled top-k.

faiss's ``IndexIVFFlat.search`` walks the lists query by query: every query scans its
``nprobe`` lists with vector-at-a-time inner products, so the work never reaches BLAS speed.
When the queries *are* the base (a kNN graph), the work can be turned around:

1. **Coarse partition.** Spherical k-means (faiss) splits the normalised rows into
   ``nlist`` lists of about ``list_size`` rows; above :data:`FLAT_KMEANS_MAX` lists (32,768:
   about 6.3M rows at 192 a list) the k-means is two-level (``sqrt(nlist)`` top cells, each
   split again in proportion to its size) so training stays near linear in N, and the
   centroids are searched through HNSW; both lose recall (``docs/benchmarks/knn_gemm.md``).
   Every row gets its ``nprobe`` nearest lists (the first is its own), once.
2. **List-major scan.** The rows are reordered list by list (one copy). For each list, the
   queries that probe it are gathered and scored in one float32 GEMM
   ``(queries probing l, D) @ (D, rows of l)`` (numpy / OpenBLAS).
3. **Top-k in compiled code.** Each block goes straight into the running per-query heaps of
   faiss (``float_minheap_array_t.addn_query_subset_with_ids``: one comparison per candidate,
   O(log k) for the few that enter), so there is no merge in Python. After this pass the recall
   is that of ``IndexIVFFlat`` with the same lists and ``nprobe``; only the order of the work differs.
4. **Expansion.** The neighbours a row misses are mostly of other identities, in lists far from
   its own centre, and their identity mates are often among its found neighbours. So each row
   then scans ``expand`` (default :data:`EXPAND`) more lists, the unprobed ones that hold its
   neighbours' first :data:`EXPAND_DEPTH` neighbours most often, into the same heaps: a second,
   smaller list-major pass. At 1M synthetic faces 32 probes and 32 more lists reach the
   recall of 64 probes in less time (``docs/benchmarks/knn_gemm.md``).

The list size is fixed (``list_size``, default 192), so the number of lists grows with N
and the work per query, ``nprobe * list_size * D``, does not: the scan is linear in N. Up to
:data:`FLAT_KMEANS_MAX` lists the k-means (``train_per_list * nlist`` rows, ``niter`` rounds)
and the exact probe search cost ``train_per_list * niter * nlist^2 * D`` and ``N * nlist * D``,
both quadratic in N: at 5.21M rows (27,135 lists) that partition takes most of the time
(``docs/benchmarks/knn_gemm.md``). Above, two-level lists and HNSW probes are near linear. Memory: one reordered float32
copy of the rows (N x D), the probes (N x nprobe int32), the heaps of one query chunk and the
result (which may be a memory map, ``out``); input is read in chunks, so a memory-mapped
``.bin`` / ``.npy`` works.

Ties: each row of the result is ordered by descending similarity, then ascending id; which
of several equally similar candidates makes the cut at the k-th place is fixed by the scan
order (deterministic, but not by id).
"""
from __future__ import annotations

import logging
import math
import time

import faiss
import numpy as np

from .._progress import is_quiet, progress
from .._validate import ClustergError, check_features, check_k

logger = logging.getLogger("clusterg.knn")

__all__ = ["ivf_gemm_knn", "train_centroids", "training_rows", "default_list_size", "FLAT_KMEANS_MAX"]

FLAT_KMEANS_MAX = 32768  #: above this many lists the k-means is two-level and assignment goes through HNSW
#: HNSW search depth when assigning probes above FLAT_KMEANS_MAX lists (``benchmarks/knn_two_level.py``)
HNSW_EF_SEARCH = 64
_ROW_CHUNK = 65536  # input rows normalised / assigned at once
_HEAP_THREADS = 0  # threads of the heap insertion (0: faiss's own setting)
#: bound (per sqrt(D), relative) on a float32 GEMM's rounding of a cosine: entries closer than this
#: are scored again pair by pair (measured max 9e-7 at D=256, synthetic 200K; 2.5e-7 * 16 = 4e-6)
_GEMM_EPS = 2.5e-7
_BLOCK_FLOATS = 1 << 24  # similarity block of one GEMM: at most 64 MiB of float32
_EXPAND_CELLS = 1 << 24  # candidate list ids ranked at once in the expansion
#: extra lists a row scans after the first pass (``expand``; ``docs/benchmarks/knn_gemm.md``)
EXPAND = 32
#: neighbours of each neighbour whose lists vote in the expansion
EXPAND_DEPTH = 20


LIST_SIZE = 192  #: default rows per inverted list


def default_list_size(n: int, k: int) -> int:
    """Rows per inverted list: :data:`LIST_SIZE`, at least ``k`` (a list must be able to fill a row), at most N."""
    return int(min(n, max(LIST_SIZE, k)))


def _as_array(x):
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = check_features(x, min_n=0, allow_zero=True)
    if len(x.shape) != 2:
        raise ClustergError(f"features: expected shape (N, D), got shape {tuple(x.shape)}")
    return x


def _rows(x, start: int, stop: int, normalize: bool) -> np.ndarray:
    """Validated float32 rows ``x[start:stop]`` (normalised when asked)."""
    return check_features(np.asarray(x[start:stop]), name="features", min_n=0, normalize=normalize,
                          allow_zero=not normalize)


def _kmeans(sample: np.ndarray, n_centroids: int, seed: int, niter: int) -> np.ndarray:
    n, d = sample.shape
    n_centroids = max(1, min(n_centroids, n))
    if n_centroids == 1:
        c = sample.mean(axis=0, keepdims=True)
        return (c / max(float(np.linalg.norm(c)), 1e-12)).astype(np.float32)
    km = faiss.Kmeans(d, n_centroids, niter=niter, seed=int(seed), spherical=True, verbose=False,
                      max_points_per_centroid=max(1, -(-n // n_centroids)), min_points_per_centroid=1)
    km.train(np.ascontiguousarray(sample))
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def training_rows(n: int, nlist: int, train_per_list: int = 32, seed: int = 0) -> np.ndarray:
    """The sorted rows :func:`ivf_gemm_knn` trains its ``nlist`` lists on: ``train_per_list * nlist`` drawn
    without replacement with ``seed`` (every row when that reaches N)."""
    n_train = min(int(n), int(train_per_list) * int(nlist))
    if n_train == n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, n_train, replace=False))


def train_centroids(sample: np.ndarray, nlist: int, seed: int = 0, niter: int = 10) -> np.ndarray:
    """``nlist`` spherical k-means centroids (float32 ``(<= nlist, D)``) of the unit rows ``sample``.

    Two-level above :data:`FLAT_KMEANS_MAX` lists: ``sqrt(nlist)`` top cells, each split again in
    proportion to its share of the sample.
    """
    sample = check_features(sample, name="sample")
    if isinstance(nlist, bool) or not isinstance(nlist, (int, np.integer)) or nlist < 1:
        raise ClustergError(f"nlist: expected an integer >= 1, got {nlist!r}")
    if nlist <= FLAT_KMEANS_MAX:
        return _kmeans(sample, nlist, seed, niter)
    n_top = int(round(math.sqrt(nlist)))
    top = _kmeans(sample, n_top, seed, niter)
    _, a = faiss.knn(sample, top, 1, metric=faiss.METRIC_INNER_PRODUCT)
    a = a[:, 0]
    counts = np.bincount(a, minlength=len(top))
    share = counts / counts.sum() * nlist
    sub = np.maximum(1, np.floor(share)).astype(int)
    rest = nlist - int(sub.sum())  # hand the rounding remainder to the largest fractional parts
    if rest > 0:
        sub[np.argsort(-(share - np.floor(share)), kind="stable")[:rest]] += 1
    out = []
    for c in range(len(top)):
        pts = sample[a == c]
        if len(pts):
            out.append(_kmeans(pts, int(sub[c]), seed + 1 + c, niter))
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def _assigner(centroids: np.ndarray):
    """Nearest-centroid search over the centroids: exact up to FLAT_KMEANS_MAX, HNSW above."""
    d = centroids.shape[1]
    if len(centroids) <= FLAT_KMEANS_MAX:
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(centroids)
    return index


def _expansion_pairs(near: np.ndarray, hi: np.ndarray, probes: np.ndarray, skip: np.ndarray, expand: int,
                     nlist: int) -> tuple[np.ndarray, np.ndarray]:
    """The expansion's ``(lists, chunk-local queries)`` pairs of one query chunk.

    ``near[p]``: the lists of position p's first neighbours; ``hi``: the chunk's neighbours (positions),
    ``probes``: its first-pass lists, ``skip``: rows left out. Each row gets the ``expand`` lists not
    among its probes that occur most often in ``near[hi[row]]``, ties by ascending list id.
    """
    lists, queries = [], []
    nc = len(hi)
    sub = max(1, _EXPAND_CELLS // (hi.shape[1] * near.shape[1]))
    for s in range(0, nc, sub):
        e = min(nc, s + sub)
        c = np.sort(near[hi[s:e]].reshape(e - s, -1), axis=1, kind="stable")  # radix sort on uint16
        width = c.shape[1]
        new = np.empty(c.shape, dtype=bool)
        new[:, 0] = True
        np.not_equal(c[:, 1:], c[:, :-1], out=new[:, 1:])
        first = np.flatnonzero(new)  # one entry per (row, list), rows ascending, lists ascending
        count = np.diff(np.append(first, c.size))
        r = first // width
        v = c.ravel()[first].astype(np.int64)
        key = r * nlist + v
        probed = np.sort((np.arange(e - s, dtype=np.int64)[:, None] * nlist + probes[s:e]).ravel())
        at = np.minimum(np.searchsorted(probed, key), len(probed) - 1)
        keep = (probed[at] != key) & ~skip[s:e][r]
        r, v, count = r[keep], v[keep], count[keep]
        o = np.lexsort((v, -count, r))
        r, v = r[o], v[o]
        sel = np.arange(len(r)) - np.searchsorted(r, r) < expand  # rank within the row
        lists.append(v[sel])
        queries.append(r[sel] + s)
    if not lists:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(lists), np.concatenate(queries)


def ivf_gemm_knn(x, k: int, list_size: int | None = None, nlist: int | None = None, nprobe: int | None = None,
                 normalize: bool = True, seed: int = 0, train_per_list: int = 32, niter: int = 10,
                 query_chunk: int = 1 << 20, centroids: np.ndarray | None = None, quiet: bool | None = None,
                 out: tuple[np.ndarray, np.ndarray] | None = None,
                 expand: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate kNN graph of the rows of ``x`` on cosine similarity, list by list with GEMMs.

    Args:
        x: features ``(N, D)``: array, ``np.memmap`` (read in chunks of 65,536 rows) or tensor;
            finite, no zero rows when ``normalize``.
        k: neighbours per row **including the row itself**, ``1 <= k <= N``.
        list_size: target rows per inverted list (default :func:`default_list_size`: 192); the
            number of lists is ``round(N / list_size)``, so it grows with N.
        nlist: number of lists; overrides ``list_size``.
        nprobe: lists each query scans, its own included (default 32, as ``method="ivf"``);
            recall and time grow with it.
        normalize: L2-normalise rows (cosine); False uses raw inner products.
        seed: seed of the training sample and the k-means.
        train_per_list: k-means training rows per list (default 32).
        niter: k-means iterations (default 10).
        query_chunk: queries whose heaps are held at once (default 1,048,576: 0.5 GiB at k=80).
        centroids: optional float32 ``(nlist, D)`` unit-norm list centres (e.g. from
            :func:`train_centroids`); skips the k-means and overrides ``nlist`` / ``list_size``.
        quiet: hide the progress bar (default: the library setting).
        out: optional preallocated ``(nbrs, sims)`` arrays (int64 and float32, ``(N, k)``, e.g.
            ``np.lib.format.open_memmap`` files) that receive the result list by list.
        expand: after the first pass, each row also scans this many lists it did not probe: those
            that hold its neighbours' first :data:`EXPAND_DEPTH` neighbours most often (default
            :data:`EXPAND`; 0: one pass, the recall of ``IndexIVFFlat`` with the same lists).

    Returns:
        ``(nbrs, sims)``: int64 ``(N, k)`` and float32 ``(N, k)``; column 0 is the row itself,
        then descending similarity (ties by ascending id); no ``-1``.
    """
    from .search import _exact_sims, _self_first  # the rules of every other method

    quiet = is_quiet() if quiet is None else quiet
    x = _as_array(x)
    n, d = int(x.shape[0]), int(x.shape[1])
    if n < 1:
        raise ClustergError("features: need at least 1 points, got N=0")
    if d == 0:
        raise ClustergError("features: feature dimension D is 0")
    k = check_k(k, n)
    for name, v in (("list_size", list_size), ("nlist", nlist), ("nprobe", nprobe)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ClustergError(f"{name}: expected an integer >= 1, got {v!r}")
    expand = EXPAND if expand is None else expand
    if isinstance(expand, bool) or not isinstance(expand, (int, np.integer)) or expand < 0:
        raise ClustergError(f"expand: expected an integer >= 0, got {expand!r}")
    if isinstance(query_chunk, bool) or not isinstance(query_chunk, (int, np.integer)) or query_chunk < 1:
        raise ClustergError(f"query_chunk: expected an integer >= 1, got {query_chunk!r}")
    if int(train_per_list) < 1 or int(niter) < 1:
        raise ClustergError(f"train_per_list and niter must be >= 1, got {train_per_list} and {niter}")
    if nlist is None:
        nlist = max(1, int(round(n / (list_size or default_list_size(n, k)))))
    nlist = int(min(nlist, n))
    nprobe = int(nprobe if nprobe is not None else 32)
    if out is not None:
        nbrs, sims = out
        if nbrs.shape != (n, k) or sims.shape != (n, k) or nbrs.dtype != np.int64 or sims.dtype != np.float32:
            raise ClustergError(f"out: expected int64 and float32 arrays of shape {(n, k)}, got "
                                f"{nbrs.dtype}{tuple(nbrs.shape)} and {sims.dtype}{tuple(sims.shape)}")
    else:
        nbrs = np.empty((n, k), dtype=np.int64)
        sims = np.empty((n, k), dtype=np.float32)
    t0 = time.perf_counter()

    # 1. coarse partition: k-means on a sample; every row's nprobe nearest lists (the first is its own)
    if centroids is not None:
        centroids = check_features(centroids, name="centroids")
        if centroids.shape[1] != d:
            raise ClustergError(f"centroids: dimension {centroids.shape[1]} but features have {d}")
        nlist = len(centroids)
    if centroids is None:
        pick = training_rows(n, nlist, train_per_list, seed)
        centroids = train_centroids(np.concatenate(
            [check_features(np.asarray(x[pick[s:s + _ROW_CHUNK]]), name="features", min_n=0, normalize=normalize,
                            allow_zero=not normalize) for s in range(0, len(pick), _ROW_CHUNK)]), nlist, seed, niter)
    nlist = len(centroids)
    nprobe = min(nprobe, nlist)
    assigner = _assigner(centroids)
    if hasattr(assigner, "hnsw"):
        assigner.hnsw.efSearch = max(64, 2 * nprobe)
    probes = np.empty((n, nprobe), dtype=np.int32)
    for s in range(0, n, _ROW_CHUNK):
        _, a = assigner.search(_rows(x, s, s + _ROW_CHUNK, normalize), nprobe)
        probes[s:s + len(a)] = a
    lost = np.flatnonzero((probes < 0).any(axis=1))
    if len(lost):  # HNSW returned fewer than nprobe lists: those rows get theirs exactly
        _, a = faiss.knn(np.concatenate([_rows(x, r, r + 1, normalize) for r in lost]), centroids, nprobe,
                         metric=faiss.METRIC_INNER_PRODUCT)
        probes[lost] = a
    del assigner
    t_part = time.perf_counter() - t0

    # 2. reorder the rows list by list (one copy); list offsets; probes indexed by position
    order = np.argsort(probes[:, 0], kind="stable")  # position -> original id
    offsets = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(np.bincount(probes[:, 0], minlength=nlist), out=offsets[1:])
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    xs = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, _ROW_CHUNK):
        xs[pos[s:s + _ROW_CHUNK]] = _rows(x, s, s + _ROW_CHUNK, normalize)
    probes = probes[order]
    logger.info("ivf-gemm: %d lists of ~%d rows, nprobe %d; partition %.1f s", nlist, n // nlist, nprobe, t_part)

    # 3. queries in chunks (bounded heaps); per chunk, list by list: the queries that probe the
    #    list, one GEMM against the list's rows, compiled heap insertion into those queries' heaps
    bar = progress(total=n * (2 if expand and k > 1 and nprobe < nlist else 1), desc="kNN search (ivf-gemm)", disable=quiet or n <= _ROW_CHUNK,
                   unit="q")
    qbuf = np.empty(_BLOCK_FLOATS // 4, dtype=np.float32)
    sbuf = np.empty(_BLOCK_FLOATS // 4, dtype=np.float32)
    omp_threads = faiss.omp_get_max_threads()
    # the heap insertion is memory-bound: on few (or busy) cores its OpenMP region costs more than it gains
    heap_threads = _HEAP_THREADS or max(1, omp_threads // 2)

    def scan(heap, pair_lists: np.ndarray, pair_queries: np.ndarray, c0: int) -> None:
        """Score every (query, list) pair of one chunk into the chunk's heaps, list by list."""
        by_list = np.argsort(pair_lists, kind="stable")
        qs_all = pair_queries[by_list]  # chunk-local query of each pair, grouped by list
        starts = np.searchsorted(pair_lists[by_list], np.arange(nlist + 1))
        for lst in np.flatnonzero(np.diff(starts)):
            a, b = int(offsets[lst]), int(offsets[lst + 1])
            qa, qb = int(starts[lst]), int(starts[lst + 1])
            if a == b:
                continue
            m = b - a
            ids = np.arange(a, b, dtype=np.int64)
            base_t = xs[a:b].T
            step = max(1, min(qb - qa, len(sbuf) // m, len(qbuf) // d))
            for s0 in range(qa, qb, step):
                s1 = min(qb, s0 + step)
                qsub = qs_all[s0:s1]
                q = qbuf[:(s1 - s0) * d].reshape(s1 - s0, d)
                np.take(xs, qsub + c0, axis=0, out=q)
                block = sbuf[:(s1 - s0) * m].reshape(s1 - s0, m)
                np.matmul(q, base_t, out=block)
                if heap_threads:
                    faiss.omp_set_num_threads(heap_threads)
                heap.addn_query_subset_with_ids(s1 - s0, faiss.swig_ptr(qsub), m, faiss.swig_ptr(block),
                                                faiss.swig_ptr(ids), 0)
                if heap_threads:
                    faiss.omp_set_num_threads(omp_threads)

    def heaps(hv: np.ndarray, hi: np.ndarray, fresh: bool):
        heap = faiss.float_minheap_array_t()
        heap.nh, heap.k = len(hv), k
        heap.val, heap.ids = faiss.swig_ptr(hv), faiss.swig_ptr(hi)
        if fresh:
            heap.heapify()
        return heap

    short = np.zeros(n, dtype=bool)  # by position: probes held fewer than k candidates
    for c0 in range(0, n, query_chunk):
        c1 = min(n, c0 + query_chunk)
        nc = c1 - c0
        hv = np.empty((nc, k), dtype=np.float32)
        hi = np.empty((nc, k), dtype=np.int64)
        heap = heaps(hv, hi, fresh=True)
        scan(heap, probes[c0:c1].ravel(), (np.arange(nc * nprobe) // nprobe).astype(np.int64), c0)
        heap.reorder()
        rows = order[c0:c1]
        sims[rows] = hv
        short[c0:c1] = (hi < 0).any(axis=1)
        nbrs[rows] = order[np.maximum(hi, 0)]
        bar.update(nc)

    # 3b. expansion: each row also scans the `expand` unprobed lists that hold its neighbours' first
    #     EXPAND_DEPTH neighbours most often (count, ties by list id). The neighbours a row misses are
    #     mostly of other identities, in lists far from its own centre; their identity mates are among
    #     the row's found neighbours, whose own neighbours point to those lists
    #     (docs/benchmarks/knn_gemm.md: a quarter of the scan buys more recall than doubling nprobe)
    if expand and k > 1 and nprobe < nlist:  # (every list probed: nothing to add)
        t_exp = time.perf_counter()
        depth = min(EXPAND_DEPTH, k - 1)
        lid = np.repeat(np.arange(nlist, dtype=np.uint16 if nlist <= 1 << 16 else np.int32), np.diff(offsets))
        near = np.empty((n, depth), dtype=lid.dtype)  # by position: lists of the row's first neighbours
        for s in range(0, n, _ROW_CHUNK):
            near[s:s + _ROW_CHUNK] = lid[pos[nbrs[order[s:s + _ROW_CHUNK], 1:depth + 1]]]
        del lid
        added = 0
        for c0 in range(0, n, query_chunk):
            c1 = min(n, c0 + query_chunk)
            nc = c1 - c0
            rows = order[c0:c1]
            # the chunk's heaps from the first pass: rows in ascending order are valid min-heaps
            hv = np.ascontiguousarray(sims[rows][:, ::-1])
            hi = np.ascontiguousarray(pos[nbrs[rows]][:, ::-1])
            heap = heaps(hv, hi, fresh=False)
            pl, pq = _expansion_pairs(near, hi, probes[c0:c1], short[c0:c1], int(expand), nlist)
            added += len(pl)
            scan(heap, pl, pq, c0)
            heap.reorder()
            todo = ~short[c0:c1]  # short rows keep their first pass: they are searched exactly below
            sims[rows[todo]] = hv[todo]
            nbrs[rows[todo]] = order[hi[todo]]
            bar.update(nc)
        del near
        logger.info("ivf-gemm: expansion scanned %.1f more lists a row in %.1f s", added / n,
                    time.perf_counter() - t_exp)
    bar.close()
    del qbuf, sbuf
    if short.any():  # probes held fewer than k candidates: exact search for those rows
        p = np.flatnonzero(short)
        logger.info("ivf-gemm: %d rows had fewer than k=%d candidates; searched exactly", len(p), k)
        dd, ii = faiss.knn(np.ascontiguousarray(xs[p]), xs, k, metric=faiss.METRIC_INNER_PRODUCT)
        sims[order[p]], nbrs[order[p]] = dd, order[ii]

    # 4. rows by descending similarity then ascending id; the row itself first. A GEMM's rounding
    #    depends on where a pair falls in its block, so equal pairs (duplicates) can differ in the
    #    last bits (< 1e-6 at D=256): the entries within _GEMM_EPS of a neighbour in their row are
    #    scored again pair by pair in a fixed order (the flat search's rule), so equal pairs are equal
    #    and fall in id order; entries farther apart keep their order, which rescoring cannot change
    rescored = 0
    eps = _GEMM_EPS * math.sqrt(d)
    for s in range(0, n, _ROW_CHUNK):
        nb, sm = np.asarray(nbrs[s:s + _ROW_CHUNK]), np.asarray(sims[s:s + _ROW_CHUNK])
        o = np.lexsort((nb, -sm), axis=1)
        nb, sm = np.take_along_axis(nb, o, axis=1), np.take_along_axis(sm, o, axis=1)
        if k > 1:
            tol = eps * np.maximum(1.0, np.abs(sm).max(axis=1, keepdims=True))
            close = sm[:, :-1] - sm[:, 1:] <= tol
            near = np.zeros(sm.shape, dtype=bool)
            near[:, :-1] |= close
            near[:, 1:] |= close
            rr, cc = np.nonzero(near)
            if len(rr):
                sm[rr, cc] = _exact_sims(pos[nb[rr, cc]][:, None], xs, xs[pos[rr + s]])[:, 0]
                rows = np.unique(rr)
                o = np.lexsort((nb[rows], -sm[rows]), axis=1)
                nb[rows] = np.take_along_axis(nb[rows], o, axis=1)
                sm[rows] = np.take_along_axis(sm[rows], o, axis=1)
                rescored += len(rr)
        nbrs[s:s + _ROW_CHUNK] = nb
        sims[s:s + _ROW_CHUNK] = sm
    if normalize:
        self_sim = np.ones(n, dtype=np.float32)
    else:
        self_sim = np.concatenate([np.einsum("ij,ij->i", r, r) for r in
                                   (_rows(x, s, s + _ROW_CHUNK, False) for s in range(0, n, _ROW_CHUNK))])
    del xs, pos
    _self_first(nbrs, sims, self_sim)
    logger.debug("ivf-gemm: %d near-tied entries scored again pair by pair", rescored)
    logger.info("ivf-gemm: kNN of %d rows in %.1f s", n, time.perf_counter() - t0)
    return nbrs, sims
