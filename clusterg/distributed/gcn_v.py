"""GCN-V on Ray: confidences per node shard, the 1-hop halo gathered from the kNN lists.

GCN-V's one graph layer reads ``Â x`` where ``Â`` is the row-normalised ``max(A, Aᵀ) + I`` of the kNN
lists (:func:`clusterg.transforms.gcn_graph.build_adjacency`). Row ``i`` of ``Â`` needs ``i``'s own list
and every list that names ``i`` (the reverse edges), and ``Â x`` the features of those neighbours (the
1-hop halo). Three rounds of Ray tasks compute it without any worker holding the whole graph:

1. every node shard's kNN lists are cut into the reverse edges each destination shard needs (a shuffle);
2. every destination shard builds its rows of ``Â`` (the same scipy operations, on the same entries in the
   same column order as the single-node matrix, so the same float32 values) and lists its halo;
3. every source shard sends each destination the halo rows it holds; the destination runs
   ``Â_rows x_halo`` and GCN-V on its rows.

The rows of ``Â`` are bit-identical to the single-node matrix, and ``Â x`` is computed with the same
coalesced sparse matrix (``to_torch_csr_tensor``, entries sorted by target then source; the halo columns
numbered in global-id order) and the same ``spmm`` call, so every row sums the same terms in the same
order. GCN-V's dense layers then run on the single-node batches (65,536 nodes): a dense product's rounding
depends on its number of rows, so node shards are cut on batch boundaries where N spans several batches
(at most ``ceil(N / 65536)`` shards in this stage), and a shard inside one batch rebuilds that batch at
full size with zeros in the other rows (costing up to ``S`` times the single-node products when
``N <= 65536``). The confidences are bit-identical to the single-node ones (tested with 1, 2 and 4 shards,
also on exact duplicate rows, whose confidences tie). The parent of every node (nearest neighbour with
a higher confidence) is found per shard from the confidences, broadcast (``4 N`` bytes). Network bytes:
the reverse edges (``~12 N k`` in all) and the halo rows (at most ``N k D 4``, far less where neighbours
share a shard).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .engine import RayEngine, env_threads, get_engine, shard_bounds

__all__ = ["ray_gcn_v_confidence", "ray_nearest_higher"]


def _reverse_buckets(nbrs, sims, lo, th_sim, bounds):
    """Kept edges ``j -> i`` of this shard's lists (``j`` here), bucketed by the shard holding ``i``."""
    n, k = nbrs.shape
    rows = np.repeat(np.arange(lo, lo + n, dtype=np.int64), k)
    cols, vals = nbrs.ravel().astype(np.int64), sims.ravel().astype(np.float32)
    keep = (cols >= 0) & (cols != rows) & (vals >= th_sim)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    starts = np.array([b[0] for b in bounds] + [bounds[-1][1]])
    dest = np.searchsorted(starts, cols, side="right") - 1
    out = [(cols[dest == d], rows[dest == d], vals[dest == d]) for d in range(len(bounds))]
    return out if len(out) > 1 else out[0]


def _shard_rows(nbrs, sims, lo, n_total, th_sim, *incoming):
    """This shard's rows of ``Â`` over its halo columns (CSR pieces) and the halo ids (sorted)."""
    from ..transforms.gcn_graph import row_normalize
    nd, k = nbrs.shape
    rows_g = np.repeat(np.arange(lo, lo + nd, dtype=np.int64), k)
    cols, vals = nbrs.ravel().astype(np.int64), sims.ravel().astype(np.float32)
    keep = (cols >= 0) & (cols != rows_g) & (vals >= th_sim)
    f = sp.csr_matrix((vals[keep], (rows_g[keep] - lo, cols[keep])), shape=(nd, n_total), dtype=np.float32)
    f.sum_duplicates()
    dst = np.concatenate([b[0] for b in incoming]) if incoming else np.empty(0, np.int64)
    src = np.concatenate([b[1] for b in incoming]) if incoming else np.empty(0, np.int64)
    rv = np.concatenate([b[2] for b in incoming]) if incoming else np.empty(0, np.float32)
    r = sp.csr_matrix((rv, (dst - lo, src)), shape=(nd, n_total), dtype=np.float32)
    r.sum_duplicates()
    a = f.maximum(r).tocsr()
    eye = sp.csr_matrix((np.ones(nd, np.float32), (np.arange(nd), np.arange(lo, lo + nd))), shape=(nd, n_total),
                        dtype=np.float32)
    a = (a + eye).tocsr()
    a.sort_indices()
    a = row_normalize(a)  # its entries in the single-node matrix's order (not re-sorted): the same sums
    halo = np.unique(a.indices).astype(np.int64)
    local = np.searchsorted(halo, a.indices).astype(np.int64)
    return (a.indptr.astype(np.int64), local, a.data.astype(np.float32), len(halo)), halo


def _take(x_shard, halo, lo, hi):
    """Rows of this source shard that a destination's halo names (in halo order)."""
    sel = halo[(halo >= lo) & (halo < hi)]
    return np.ascontiguousarray(x_shard[sel - lo])


def _batch_size() -> int:
    """The node batch of :func:`clusterg.models.gcn_v.predict_gcn_v` (its default, 65536)."""
    import inspect

    from ..models.gcn_v import predict_gcn_v
    return int(inspect.signature(predict_gcn_v).parameters["batch_size"].default)


def _run_model(model, x_own: np.ndarray, agg, lo: int, n_total: int):
    """GCN-V on rows ``lo .. lo + n_d`` exactly as the single-node batches compute them.

    A dense product's rounding depends on its number of rows (the BLAS kernel it picks), so each
    single-node batch ``[c, c + B)`` (``B`` = :func:`_batch_size`) that this shard meets is rebuilt at its
    full size, this shard's rows at their own positions and zeros elsewhere; rows of a product do not
    depend on the other rows, so this shard's outputs are those of the single-node run, bit for bit.
    Shards cut on batch boundaries (:func:`clusterg.distributed.engine.shard_bounds` with ``align``) need
    no padding at all.
    """
    import torch

    from ..models.gcn_v import predict_gcn_v
    bs = _batch_size()
    hi = lo + len(x_own)
    confs, hs = [], []
    for c in range((lo // bs) * bs, hi, bs):
        ce = min(c + bs, n_total)
        a, b = max(lo, c), min(hi, ce)
        if (a, b) == (c, ce):
            xb, ab = x_own[a - lo:b - lo], agg[a - lo:b - lo]
        else:
            xb = np.zeros((ce - c, x_own.shape[1]), np.float32)
            xb[a - c:b - c] = x_own[a - lo:b - lo]
            ab = torch.zeros((ce - c, agg.shape[1]), dtype=agg.dtype)
            ab[a - c:b - c] = agg[a - lo:b - lo]
        conf, hidden = predict_gcn_v(model, np.ascontiguousarray(xb), ab, batch_size=bs)
        confs.append(conf[a - c:b - c])
        hs.append(hidden[a - c:b - c])
    return np.concatenate(confs), torch.cat(hs)


def _infer(model, adj, x_own, lo, n_total, threads, want_hidden, *chunks):
    """GCN-V on one shard's rows: ``(conf (n_d,), hidden (n_d, H) or None)``."""
    import warnings

    import torch
    from torch_geometric.utils import spmm, to_torch_csr_tensor

    from ..transforms.gcn_graph import adjacency_to_edges
    env_threads(threads, torch_too=True)
    indptr, local, data, nh = adj
    a = sp.csr_matrix((data, local, indptr), shape=(len(indptr) - 1, nh))
    xh = np.ascontiguousarray(np.concatenate(chunks) if chunks else np.empty((0, x_own.shape[1]), np.float32))
    # the sparse matrix as gcn_v_graph builds it (edges j -> i, coalesced by target then source), rectangular:
    # halo columns are numbered in global-id order, so every row sums the same entries in the same order
    edge_index, edge_weight = adjacency_to_edges(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        adj_t = to_torch_csr_tensor(edge_index.flip(0), edge_weight.float(), size=(a.shape[0], nh))
    with torch.no_grad():
        agg = spmm(adj_t, torch.from_numpy(xh), reduce="sum")
    conf, hidden = _run_model(model, np.ascontiguousarray(x_own), agg, lo, n_total)
    return conf, (hidden.numpy() if want_hidden else None)


def ray_gcn_v_confidence(model, x: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, th_sim: float = 0.0,
                         address: str | None = None, shards: int | None = None, engine: RayEngine | None = None,
                         return_hidden: bool = False, stats: dict | None = None):
    """GCN-V confidences of ``x`` (N, D), L2-normalised, on its kNN ``(nbrs, sims)`` (N, k), shard by shard.

    Equal to ``predict_gcn_v(model, x, gcn_v_graph(x, k, th_sim, knn=(nbrs, sims))[2])``. Returns
    ``(conf float32 (N,), hidden float32 (N, H) or None)`` (``hidden`` only with ``return_hidden``, for a
    second linkage pass: it is gathered on the driver).
    """
    import time
    eng = engine if engine is not None else get_engine(address, shards)
    ray = eng.ray
    n = len(x)
    b = shard_bounds(n, eng.shards, align=_batch_size())
    s_n = len(b)
    t0 = time.perf_counter()
    x_refs = [ray.put(np.ascontiguousarray(x[lo:hi], dtype=np.float32)) for lo, hi in b]
    nb_refs = [ray.put(np.ascontiguousarray(nbrs[lo:hi])) for lo, hi in b]
    sm_refs = [ray.put(np.ascontiguousarray(sims[lo:hi])) for lo, hi in b]
    rev = ray.remote(num_returns=s_n)(_reverse_buckets)
    buckets = [rev.remote(nb_refs[s], sm_refs[s], lo, float(th_sim), b) for s, (lo, _) in enumerate(b)]
    if s_n == 1:
        buckets = [[r] for r in buckets]
    rows_task = ray.remote(num_returns=2)(_shard_rows)
    adj = [rows_task.remote(nb_refs[d], sm_refs[d], lo, n, float(th_sim), *[buckets[s][d] for s in range(s_n)])
           for d, (lo, _) in enumerate(b)]
    take = ray.remote(_take)
    infer = ray.remote(_infer)
    model_ref = ray.put(model)
    outs = []
    for d in range(s_n):
        chunks = [take.remote(x_refs[s], adj[d][1], lo, hi) for s, (lo, hi) in enumerate(b)]
        outs.append(infer.remote(model_ref, adj[d][0], x_refs[d], b[d][0], n, eng.threads, bool(return_hidden),
                                 *chunks))
    res = ray.get(outs)
    conf = np.concatenate([r[0] for r in res]).astype(np.float32)
    hidden = np.concatenate([r[1] for r in res]) if return_hidden else None
    if stats is not None:
        stats.update(gcn_v_s=time.perf_counter() - t0, shards=s_n)
    return conf, hidden


def _nearest_higher_rows(nbrs, sims, conf, lo):
    from ..linkage.tree_deduction import sort_knn
    nbrs, sims = sort_knn(np.asarray(nbrs), np.asarray(sims))
    n = nbrs.shape[0]
    conf = np.asarray(conf, dtype=np.float64)
    valid = (nbrs >= 0) & (nbrs != np.arange(lo, lo + n)[:, None])
    higher = valid & (conf[np.where(nbrs >= 0, nbrs, 0)] > conf[lo:lo + n][:, None])
    has = higher.any(axis=1)
    first = np.argmax(higher, axis=1)
    parent = np.where(has, nbrs[np.arange(n), first], -1).astype(np.int64)
    psim = np.where(has, sims[np.arange(n), first], -np.inf).astype(np.float32)
    return parent, psim


def ray_nearest_higher(nbrs: np.ndarray, sims: np.ndarray, conf: np.ndarray, address: str | None = None,
                       shards: int | None = None, engine: RayEngine | None = None):
    """:func:`clusterg.linkage.tree_deduction.nearest_higher` per node shard on Ray: ``(parent, psim)`` (N,)."""
    from ..linkage.tree_deduction import _check
    nbrs, sims, conf = _check(nbrs, sims, conf)
    eng = engine if engine is not None else get_engine(address, shards)
    ray = eng.ray
    task = ray.remote(num_returns=2)(_nearest_higher_rows)
    conf_ref = ray.put(conf)
    outs = [task.remote(np.ascontiguousarray(nbrs[lo:hi]), np.ascontiguousarray(sims[lo:hi]), conf_ref, lo)
            for lo, hi in shard_bounds(len(nbrs), eng.shards)]
    parts = ray.get([o for pair in outs for o in pair])
    return np.concatenate(parts[0::2]), np.concatenate(parts[1::2])
