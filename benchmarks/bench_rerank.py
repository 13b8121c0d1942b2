"""k-reciprocal Jaccard re-ranking: the sparse implementation against a dense peer, and a large standalone run.

In CI (small, seconds)::

    pytest benchmarks/bench_rerank.py                                  # N = 3000, D = 64
    CLUSTERG_BENCH_RERANK_N=8000 pytest benchmarks/bench_rerank.py --benchmark-columns=median

``test_sparse_vs_dense_ratio`` times, in one process on the same data, the sparse Jaccard step
(:func:`clusterg.transforms.k_reciprocal.k_reciprocal_jaccard` with every pair kept) and a dense
N x N peer (the formulation of the reference re-ID code: dense weights, one row of minima at a
time) and stores their ratio and the largest difference in ``extra_info``.

Standalone, at scale (synthetic MS1M-like faces; prints one JSON line with the time of each stage
and the peak resident memory, and with ``-o`` writes it atomically to a file)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_rerank.py --n 1000000 --dim 64 --threads 1 \
        -o docs/benchmarks/rerank_1m.json
    nice -n 10 python benchmarks/bench_rerank.py --n 200000 --dim 64 --knn-method flat

and the speed-up of the join over its previous formulation (:func:`_jaccard_rows_previous`: a
COO -> CSR matrix with ``sum_duplicates`` per chunk, then a full ``lexsort``), timed in one process
on the same chunks of the same data, results compared pair by pair::

    OMP_NUM_THREADS=1 python benchmarks/bench_rerank.py --speedup --n 20000 50000 --rows 4096 --threads 1 \
        -o docs/benchmarks/rerank_speedup.json

The numbers measured are in ``docs/reid.rst``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import pytest

N = int(os.environ.get("CLUSTERG_BENCH_RERANK_N", "3000"))
D = int(os.environ.get("CLUSTERG_BENCH_RERANK_D", "64"))


def _data(n, d, seed=0):
    from clusterg.data.synth import synth_ms1m
    return synth_ms1m(n, dim=d, n_ids=max(2, n // 8), seed=seed)


def dense_jaccard(v_dense: np.ndarray) -> np.ndarray:
    """The dense formulation: an N x N matrix of Jaccard distances from dense weights."""
    n = v_dense.shape[0]
    out = np.empty((n, n), dtype=np.float32)
    for i in range(n):
        supp = np.flatnonzero(v_dense[i])
        m = np.minimum(v_dense[i, supp][None, :], v_dense[:, supp]).sum(axis=1)
        out[i] = 1.0 - m / (2.0 - m)
    return np.maximum(out, 0.0)


@pytest.fixture(scope="module")
def feats():
    x, _ = _data(N, D)
    return x


def test_sparse_rerank(benchmark, feats):
    from clusterg.transforms.k_reciprocal import k_reciprocal_jaccard
    g = benchmark.pedantic(k_reciprocal_jaccard, args=(feats,), kwargs=dict(k1=30, k2=6, quiet=True), rounds=2,
                           iterations=1)
    assert g.shape == (N, N) and np.diff(g.indptr).min() >= 1


def test_sparse_vs_dense_ratio(benchmark, feats):
    from clusterg.knn import knn_search
    from clusterg.transforms.k_reciprocal import k_reciprocal_jaccard, k_reciprocal_weights
    knn = knn_search(feats, 31, quiet=True)
    v, _ = k_reciprocal_weights(feats, 30, 6, knn=knn)
    vd = v.toarray()
    t0 = time.perf_counter()
    dense = dense_jaccard(vd)
    t_dense = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = benchmark.pedantic(k_reciprocal_jaccard, args=(feats,),
                           kwargs=dict(k1=30, k2=6, knn=knn, max_neighbors=N, quiet=True), rounds=1, iterations=1)
    t_sparse = time.perf_counter() - t0
    coo = g.tocoo()
    diff = float(np.abs(coo.data - dense[coo.row, coo.col]).max())
    benchmark.extra_info.update({"n": N, "dense_s": round(t_dense, 3), "sparse_s": round(t_sparse, 3),
                                 "dense_over_sparse": round(t_dense / max(t_sparse, 1e-9), 2),
                                 "max_abs_diff": diff, "pairs_per_row": g.nnz / N})
    print(f"\nN={N}: dense {t_dense:.2f} s, sparse {t_sparse:.2f} s (ratio {t_dense / t_sparse:.1f}x), "
          f"max |diff| {diff:.1e}, {g.nnz / N:.0f} pairs a row")
    assert diff <= 1e-5


def _jaccard_rows_previous(v, vc, s, e, max_distance, max_neighbors):
    """The join as it was first written (kept to time the speed-up): COO -> CSR, sum_duplicates, lexsort."""
    import scipy.sparse as sp
    n = v.shape[0]
    lo, hi = v.indptr[s], v.indptr[e]
    ks = v.indices[lo:hi]
    vals = v.data[lo:hi]
    erow = np.repeat(np.arange(e - s, dtype=np.int64), np.diff(v.indptr[s:e + 1]))
    starts = vc.indptr[ks]
    lens = vc.indptr[ks + 1] - starts
    total = int(lens.sum())
    offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    idx = np.repeat(starts, lens) + offs
    mins = np.minimum(np.repeat(vals, lens), vc.data[idx])
    acc = sp.csr_matrix((mins, (np.repeat(erow, lens), vc.indices[idx])), shape=(e - s, n))
    acc.sum_duplicates()
    m = acc.data
    dj = np.maximum(1.0 - m / np.maximum(2.0 - m, 1e-12), 0.0)
    r = np.repeat(np.arange(e - s, dtype=np.int64), np.diff(acc.indptr))
    c = acc.indices.astype(np.int64)
    keep = dj < max_distance
    r, c, dj = r[keep], c[keep], dj[keep]
    order = np.lexsort((c, dj, r))
    r, c, dj = r[order], c[order], dj[order]
    rank = np.arange(len(r)) - np.searchsorted(r, r, side="left")
    keep = rank < max_neighbors
    return r[keep] + s, c[keep], dj[keep]


def _compare(a, b, n: int) -> dict:
    """Kept pairs of two joins: how many only one keeps (each must tie with its row's last kept distance)."""
    ka, kb = a[0] * n + a[1], b[0] * n + b[1]
    _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    worst_tie = 0.0
    for key_set, (r, c, d) in ((np.setdiff1d(ka, kb), a), (np.setdiff1d(kb, ka), b)):
        if len(key_set):
            k = r * n + c
            last = np.maximum.reduceat(d, np.flatnonzero(np.r_[True, r[1:] != r[:-1]]))
            rows_u = np.unique(r)
            at = np.isin(k, key_set)
            worst_tie = max(worst_tie, float(np.abs(d[at] - last[np.searchsorted(rows_u, r[at])]).max()))
    return {"pairs": int(len(ka)), "pairs_other": int(len(kb)), "only_one": int(len(ka) + len(kb) - 2 * len(ia)),
            "max_abs_diff_common": float(np.abs(a[2][ia] - b[2][ib]).max()) if len(ia) else 0.0,
            "max_gap_to_row_cut": worst_tie}


def speedup(n: int, dim: int, rows: int, chunk_size: int, previous_chunk: int = 2048) -> dict:
    """Previous and current join on the first ``rows`` rows of the same data, in this process."""
    from clusterg.knn import knn_search
    from clusterg.transforms import k_reciprocal as kr
    x, _ = _data(n, dim)
    knn = knn_search(x, 31, method="flat", quiet=True)
    x, nbrs, k1, k2 = kr._prepare(x, 30, 6, knn, "flat", "cpu", 0, True)
    v = kr._weights(x, nbrs, k1, k2)
    vc = v.tocsc()
    vc.sort_indices()
    rows = min(rows, n)
    out = {"n": n, "dim": dim, "k1": k1, "k2": k2, "rows": rows, "weights_per_row": v.nnz / n}
    for name, md, mn in (("default", 1.0, k1 + 1), ("max_distance_0.6", 0.6, k1 + 1), ("all_pairs", 1.0, n)):
        res = {}
        for label, fn, cs in (("previous", _jaccard_rows_previous, previous_chunk),
                              ("current", kr._jaccard_rows, chunk_size)):
            t = time.perf_counter()
            parts = [fn(v, vc, s, min(rows, s + cs), md, mn) for s in range(0, rows, cs)]
            res[label + "_s"] = round(time.perf_counter() - t, 3)
            res[label] = tuple(np.concatenate(p) for p in zip(*parts))
        cmp_ = _compare(res.pop("previous"), res.pop("current"), n)
        res.update(cmp_, previous_chunk=previous_chunk, chunk_size=chunk_size,
                   ratio=round(res["previous_s"] / max(res["current_s"], 1e-9), 2),
                   rows_per_s_previous=round(rows / res["previous_s"], 1),
                   rows_per_s_current=round(rows / res["current_s"], 1))
        out[name] = res
    return out


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="k-reciprocal Jaccard re-ranking at scale (synthetic faces)")
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000], help="points (several with --speedup)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k1", type=int, default=30)
    ap.add_argument("--k2", type=int, default=6)
    ap.add_argument("--knn-method", default=None, help="flat / ivf / hnsw (default: flat up to 200000, else ivf)")
    ap.add_argument("--max-distance", type=float, default=1.0)
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None, help="faiss threads (default: all cores or "
                    "$OMP_NUM_THREADS; set OMP_NUM_THREADS too, for BLAS)")
    ap.add_argument("--speedup", action="store_true", help="time the join against its previous formulation")
    ap.add_argument("--rows", type=int, default=8192, help="rows joined per size with --speedup")
    ap.add_argument("-o", "--output", default=None, help="also write the JSON to this file (atomically)")
    args = ap.parse_args(argv)
    if len(args.n) > 1 and not args.speedup:
        ap.error("several --n values need --speedup")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from clusterg._atomic import atomic_open, guard_output
    from clusterg.knn import knn_search
    from clusterg.knn.search import set_num_threads
    from clusterg.transforms.k_reciprocal import k_reciprocal_jaccard
    if args.output:
        guard_output(args.output)
    set_num_threads(args.threads)
    omp = os.environ.get("OMP_NUM_THREADS")
    cmd = ((f"OMP_NUM_THREADS={omp} " if omp else "") + "python benchmarks/bench_rerank.py "
           + " ".join(argv if argv is not None else sys.argv[1:]))
    machine = {"cores": os.cpu_count(), "threads": args.threads, "omp_num_threads": omp,
               "load_avg_start": [round(a, 2) for a in os.getloadavg()]}
    if args.speedup:
        out = {"command": cmd, "machine": machine,
               "runs": [speedup(n, args.dim, args.rows, args.chunk_size) for n in args.n]}
    else:
        n = args.n[0]
        out = {"n": n, "dim": args.dim, "k1": args.k1, "k2": args.k2, "chunk_size": args.chunk_size,
               "max_distance": args.max_distance}
        t0 = time.perf_counter()
        x, _ = _data(n, args.dim)
        out["synth_s"] = round(time.perf_counter() - t0, 1)
        method = args.knn_method or ("flat" if n <= 200_000 else "ivf")
        t0 = time.perf_counter()
        knn = knn_search(x, args.k1 + 1, method=method)
        out["knn_method"], out["knn_s"] = method, round(time.perf_counter() - t0, 1)
        out["rss_after_knn_gib"] = round(_rss_gib(), 2)
        stats = {}
        t0 = time.perf_counter()
        g = k_reciprocal_jaccard(x, k1=args.k1, k2=args.k2, knn=knn, max_distance=args.max_distance,
                                 chunk_size=args.chunk_size, stats=stats)
        out["rerank_s"] = round(time.perf_counter() - t0, 1)
        out.update({k: (round(val, 1) if k.endswith("_s") else val) for k, val in stats.items()})
        out["join_rows_per_s"] = round(n / max(stats["join_s"], 1e-9), 1)
        out["pairs"] = int(g.nnz)
        out["peak_rss_gib"] = round(_rss_gib(), 2)
        out["command"], out["machine"] = cmd, machine
    line = json.dumps(out)
    print(line, flush=True)
    if args.output:
        with atomic_open(args.output) as f:
            f.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
