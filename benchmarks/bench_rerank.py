"""k-reciprocal Jaccard re-ranking: the sparse implementation against a dense peer, and a large standalone run.

In CI (small, seconds)::

    pytest benchmarks/bench_rerank.py                                  # N = 3000, D = 64
    CLUSTERG_BENCH_RERANK_N=8000 pytest benchmarks/bench_rerank.py --benchmark-columns=median

``test_sparse_vs_dense_ratio`` times, in one process on the same data, the sparse Jaccard step
(:func:`clusterg.transforms.k_reciprocal.k_reciprocal_jaccard` with every pair kept) and a dense
N x N peer (the formulation of the reference re-ID code: dense weights, one row of minima at a
time) and stores their ratio and the largest difference in ``extra_info``.

Standalone, at scale (synthetic MS1M-like faces; prints one JSON line with the time of each stage
and the peak resident memory)::

    nice -n 10 python benchmarks/bench_rerank.py --n 1000000 --dim 64
    nice -n 10 python benchmarks/bench_rerank.py --n 200000 --dim 64 --knn-method flat

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


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="k-reciprocal Jaccard re-ranking at scale (synthetic faces)")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k1", type=int, default=30)
    ap.add_argument("--k2", type=int, default=6)
    ap.add_argument("--knn-method", default=None, help="flat / ivf / hnsw (default: flat up to 200000, else ivf)")
    ap.add_argument("--max-distance", type=float, default=1.0)
    ap.add_argument("--chunk-size", type=int, default=2048)
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from clusterg.knn import knn_search
    from clusterg.transforms.k_reciprocal import k_reciprocal_jaccard
    out = {"n": args.n, "dim": args.dim, "k1": args.k1, "k2": args.k2, "threads": os.cpu_count()}
    t0 = time.perf_counter()
    x, _ = _data(args.n, args.dim)
    out["synth_s"] = round(time.perf_counter() - t0, 1)
    method = args.knn_method or ("flat" if args.n <= 200_000 else "ivf")
    t0 = time.perf_counter()
    knn = knn_search(x, args.k1 + 1, method=method)
    out["knn_method"], out["knn_s"] = method, round(time.perf_counter() - t0, 1)
    out["rss_after_knn_gib"] = round(_rss_gib(), 2)
    t0 = time.perf_counter()
    g = k_reciprocal_jaccard(x, k1=args.k1, k2=args.k2, knn=knn, max_distance=args.max_distance,
                             chunk_size=args.chunk_size)
    out["rerank_s"] = round(time.perf_counter() - t0, 1)
    out["pairs"] = int(g.nnz)
    out["peak_rss_gib"] = round(_rss_gib(), 2)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
