"""Sharded kNN on Ray: index shards held by actors, every query shard against every index shard.

The rows of ``x`` are cut into ``S`` contiguous shards and put in Ray's object store (one copy). Actor ``s``
holds a faiss index (the methods of :func:`clusterg.knn.build_index`) over shard ``s``. For each query shard
``q``, every actor returns its top ``k + 8`` candidates with their similarities scored pair by pair
(faiss's ``fvec_inner_products_by_idx``, the thread-independent kernel :func:`clusterg.knn.knn_search`
re-scores with); the driver merges the ``S (k + 8)`` candidates of a row by (the point itself, descending
similarity, ascending id) and keeps ``k + 8``. A row whose rank-``k`` score is tied (within 2e-5) with its
last candidate is settled exactly as the single-node search settles it: every actor returns all of its
points within 2e-5 of its own rank-``k + 8`` score, and the union is ordered again. For ``method="flat"``
the result is therefore identical to :func:`clusterg.knn.knn_search` (self first, ties by id), whatever
the number of shards. IVF / HNSW shards are approximate per shard (each shard trains its own IVF with
``nlist`` ~ 4 sqrt(N / S) lists), so their recall, not their lists, is compared with a single index.

Actors are created with ``max_restarts`` and ``max_task_retries`` (3): a worker process that dies mid-run is
restarted by Ray (its index is rebuilt from the shard in the object store) and the search it was running is
retried, so the result does not change.

Memory: the object store holds ``N D 4`` bytes of features; actor ``s`` its shard and its index; the driver
the merged ``(N, k)`` ids and similarities (12 ``N k`` bytes), written at the end to ``out`` in the
``faiss_k_<k>.npz`` layout when asked.
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from .._progress import is_quiet, progress
from .._validate import ClustergError, check_k
from ..knn import search as _search
from .engine import MAX_RETRIES, RayEngine, env_threads, get_engine, shard_bounds

logger = logging.getLogger("clusterg.distributed.knn")

__all__ = ["ray_knn_search", "IndexShard"]


class IndexShard:
    """One index shard (a plain class; :func:`_actor_class` makes it a Ray actor).

    Args:
        x: float32 ``(n_s, D)`` rows of the shard (already normalised as the search asks).
        offset: global id of the shard's first row.
        method, nlist, nprobe, hnsw_m, ef_search, seed, device: as :func:`clusterg.knn.knn_search`.
        threads: faiss threads of this worker.
    """

    def __init__(self, x: np.ndarray, offset: int, method: str, nlist, nprobe, hnsw_m: int, ef_search, seed: int,
                 device: str, threads: int):
        env_threads(threads)
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.offset = int(offset)
        self.method = method
        self.nprobe, self.ef_search = nprobe, ef_search
        n = len(self.x)
        if method == "ivf" and nlist is None:
            nlist = _search.default_nlist(n)
        self.index = _search.build_index(self.x, method, device, nlist=None if nlist is None else min(int(nlist), n),
                                         hnsw_m=hnsw_m, seed=seed, quiet=True)

    def pid(self) -> int:
        """The worker's process id (the fault test kills it)."""
        return os.getpid()

    def search(self, q: np.ndarray, kc: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``min(kc, n_s)`` of this shard for every query row: global int64 ids, pair-scored float32 sims."""
        n = len(self.x)
        kk = min(int(kc), n)
        _search._set_search_params(self.index, self.method, kk, self.nprobe, self.ef_search)
        nbrs, sims = _search._search_chunks(self.index, q, kk, 16384, "", True)
        _search._fill_pads(nbrs, sims, self.x, q, kk)
        sims = _search._exact_sims(nbrs, self.x, q)
        return nbrs + self.offset, sims

    def ties(self, q: np.ndarray, kc: int, self_ids: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each row of ``q``: every point of this shard within 2e-5 of its rank-``kc`` score (all points when
        the shard has fewer), plus the row's own point when it lies here; global ids and pair-scored sims."""
        n = len(self.x)
        kk = min(int(kc), n)
        out = []
        for r in range(len(q)):
            scores = self.x @ q[r]
            kth = np.partition(scores, n - kk)[n - kk]
            ids = np.flatnonzero(scores >= kth - _search._TIE_EPS)
            if self_ids is not None:
                me = int(self_ids[r]) - self.offset
                if 0 <= me < n and not (ids == me).any():
                    ids = np.append(ids, me)
            s = _search._exact_sims(ids[None, :], self.x, q[r:r + 1])[0]
            out.append((ids + self.offset, s))
        return out


def _actor_class(ray):
    return ray.remote(max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES, num_cpus=0)(IndexShard)


def _self_first_rows(nbrs: np.ndarray, sims: np.ndarray, ids: np.ndarray, self_sim: np.ndarray) -> None:
    """:func:`clusterg.knn.search._self_first` for rows whose own ids are ``ids`` (not ``0..n-1``)."""
    bad = np.flatnonzero(nbrs[:, 0] != ids)
    if len(bad):
        nb, sb, me = nbrs[bad], sims[bad], ids[bad]
        absent = ~(nb == me[:, None]).any(axis=1)
        nb[absent, -1] = me[absent]
        order = np.argsort(nb != me[:, None], axis=1, kind="stable")
        nbrs[bad] = np.take_along_axis(nb, order, axis=1)
        sims[bad] = np.take_along_axis(sb, order, axis=1)
    sims[:, 0] = self_sim


def _merge(parts, k: int, kc: int, n: int, ids: np.ndarray, exact: bool, tie_fetch):
    """Merge the shards' candidates of one query shard into its final ``(nbrs, sims)`` (as ``_settle``)."""
    nbrs = np.concatenate([p[0] for p in parts], axis=1)
    sims = np.concatenate([p[1] for p in parts], axis=1)
    nbrs, sims = _search._order(nbrs, sims, ids)
    nbrs, sims = nbrs[:, :kc].copy(), sims[:, :kc].copy()
    if exact and kc < n:
        rows = np.flatnonzero(sims[:, k - 1] - sims[:, -1] <= _search._TIE_EPS)
        if len(rows):
            logger.debug("%d rows with ties at rank %d settled against every shard", len(rows), k)
            per_shard = tie_fetch(rows)
            for j, r in enumerate(rows.tolist()):
                cn = np.concatenate([ps[j][0] for ps in per_shard])[None, :]
                cs = np.concatenate([ps[j][1] for ps in per_shard])[None, :]
                cn, cs = _search._order(cn, cs, ids[r:r + 1])
                nbrs[r], sims[r] = cn[0, :kc], cs[0, :kc]
    nbrs, sims = np.ascontiguousarray(nbrs[:, :k]), np.ascontiguousarray(sims[:, :k])
    absent = nbrs[:, 0] != ids
    if absent.any():
        a = np.flatnonzero(absent)
        nbrs[a, 1:] = nbrs[a, :-1].copy()
        sims[a, 1:] = sims[a, :-1].copy()
        nbrs[a, 0] = ids[a]
    return nbrs, sims


def ray_knn_search(x, k: int, method: str = "flat", normalize: bool = True, nlist: int | None = None,
                   nprobe: int | None = None, hnsw_m: int = 32, ef_search: int | None = None, seed: int = 0,
                   device: str = "cpu", address: str | None = None, shards: int | None = None,
                   engine: RayEngine | None = None, out=None, quiet: bool | None = None, callback=None,
                   stats: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clusterg.knn.knn_search` on Ray: the same arguments and result (identical for ``method="flat"``).

    Args:
        x: features ``(N, D)`` (array or memmap; read shard by shard).
        k: neighbours per row including itself, ``1 <= k <= N``.
        method: ``"flat"`` (also for ``"auto"``), ``"ivf"`` or ``"hnsw"`` (per shard; ``"ivf-gemm"`` is
            single-node only).
        normalize, nlist, nprobe, hnsw_m, ef_search, seed, device: as :func:`~clusterg.knn.knn_search`
            (``nlist`` is per shard; default ~4 sqrt(N / S)).
        address, shards: passed to :func:`~clusterg.distributed.engine.get_engine` (ignored with ``engine``).
        engine: a connected :class:`~clusterg.distributed.engine.RayEngine`.
        out: optional path: the result is also written there (``faiss_k_<k>.npz`` layout, atomic).
        callback: ``callback(q, actors)`` after each query shard ``q`` (progress, fault injection).
        stats: optional dict filled with seconds per stage (``put``, ``index``, ``search``) and sizes.

    Returns:
        ``(nbrs, sims)``: int64 ``(N, k)`` and float32 ``(N, k)``, self first, descending similarity.
    """
    if method == "auto":  # sharded exact search is what "auto" means on Ray
        method = "flat"
    if method not in ("flat", "ivf", "hnsw"):
        raise ClustergError(f"method: the Ray engine runs 'flat', 'ivf' or 'hnsw' (or 'auto'), got {method!r}")
    n = int(np.shape(x)[0]) if np.ndim(x) == 2 else 0
    if np.ndim(x) != 2:
        raise ClustergError(f"features: expected shape (N, D), got shape {tuple(np.shape(x))}")
    k = check_k(k, max(n, 1))
    if n < 1:
        raise ClustergError("features: need at least 1 points, got N=0")
    eng = engine if engine is not None else get_engine(address, shards)
    ray = eng.ray
    quiet = is_quiet() if quiet is None else quiet
    bounds = shard_bounds(n, eng.shards)
    st = stats if stats is not None else {}
    t0 = time.perf_counter()
    refs, self_sim = [], []
    for lo, hi in bounds:  # validated and normalised shard by shard: the driver never holds all of x twice
        xs = _search._prepare(x[lo:hi], "features", normalize, min_n=1)
        self_sim.append(np.ones(hi - lo, np.float32) if normalize else np.einsum("ij,ij->i", xs, xs))
        refs.append(ray.put(xs))
        del xs
    t1 = time.perf_counter()
    actor = _actor_class(ray)
    actors = [actor.remote(refs[s], lo, method, nlist, nprobe, hnsw_m, ef_search, seed, device, eng.threads)
              for s, (lo, hi) in enumerate(bounds)]
    ray.get([a.pid.remote() for a in actors])  # the indexes are built
    t2 = time.perf_counter()
    kc = min(n, k + _search._MARGIN)
    nbrs = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    bar = progress(total=len(bounds), desc=f"kNN on Ray ({method}, {len(bounds)} shards)", disable=quiet, unit="shard")
    try:
        for q, (lo, hi) in enumerate(bounds):
            parts = ray.get([a.search.remote(refs[q], kc) for a in actors])
            ids = np.arange(lo, hi, dtype=np.int64)

            def tie_fetch(rows, q=q, ids=ids):
                qr = ray.put(ray.get(refs[q])[rows])
                return ray.get([a.ties.remote(qr, kc, ids[rows]) for a in actors])

            nb, sm = _merge(parts, k, kc, n, ids, method == "flat", tie_fetch)
            _self_first_rows(nb, sm, ids, self_sim[q])
            nbrs[lo:hi], sims[lo:hi] = nb, sm
            bar.update(1)
            if callback is not None:
                callback(q, actors)
    finally:
        bar.close()
        for a in actors:
            ray.kill(a)
    t3 = time.perf_counter()
    st.update(put_s=t1 - t0, index_s=t2 - t1, search_s=t3 - t2, shards=len(bounds), n=n, k=k, method=method,
              object_store_bytes=int(sum(hi - lo for lo, hi in bounds) * np.shape(x)[1] * 4))
    if out is not None:
        from ..knn import save_knn
        save_knn(out, nbrs, sims)
    return nbrs, sims
