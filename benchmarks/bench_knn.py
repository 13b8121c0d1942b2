"""kNN search throughput: clusterg's :func:`~clusterg.knn.knn_search` against raw faiss on the same index.

Small sizes by default so CI runs in seconds::

    pytest benchmarks/bench_knn.py                                   # N = 10000, D = 128
    CLUSTERG_BENCH_KNN_N=100000 CLUSTERG_BENCH_KNN_D=256 pytest benchmarks/bench_knn.py --benchmark-columns=median

The goal (exact flat search within 1.05x of raw faiss) is read off the ``ratio`` the
``test_exact_ratio`` case prints and stores in ``extra_info``: both run in the same process
on the same data and thread count; clusterg adds validation, normalisation, chunking, 8 extra
candidates a row, a thread-independent re-scoring of every kept pair and the tie/self-first fix. The ratio is the median of five back-to-back (faiss, clusterg) pairs, so a load
change during the run hits both sides of a pair. The case fails above ``CLUSTERG_BENCH_KNN_MAX_RATIO``
(default 1.3): on a shared 2-core machine the median over pairs was 1.04-1.14 in three runs of the same
code (it was about 1.35 while the re-scoring gathered rows with numpy), so the 1.05 goal itself is checked
on an idle machine by setting the variable to 1.05.
"""
from __future__ import annotations

import os
import time

import faiss
import numpy as np
import pytest

from clusterg.knn import knn_search

N = int(os.environ.get("CLUSTERG_BENCH_KNN_N", "10000"))
D = int(os.environ.get("CLUSTERG_BENCH_KNN_D", "128"))
K = int(os.environ.get("CLUSTERG_BENCH_KNN_K", "80"))
MAX_RATIO = float(os.environ.get("CLUSTERG_BENCH_KNN_MAX_RATIO", "1.3"))


@pytest.fixture(scope="module")
def feats():
    from clusterg.data.synth import synth_ms1m
    x, _ = synth_ms1m(N, dim=D, seed=0)
    return x


def raw_faiss_flat(x: np.ndarray, k: int):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(xn)
    return index.search(xn, k)


def test_raw_faiss_flat(benchmark, feats):
    benchmark.pedantic(raw_faiss_flat, args=(feats, K), rounds=3, iterations=1)


def test_clusterg_flat(benchmark, feats):
    benchmark.pedantic(knn_search, args=(feats, K), kwargs=dict(quiet=True), rounds=3, iterations=1)


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_clusterg_approximate(benchmark, feats, method):
    benchmark.pedantic(knn_search, args=(feats, K), kwargs=dict(method=method, quiet=True), rounds=1, iterations=1)


def test_exact_ratio(benchmark, feats):
    """Median time of clusterg flat / raw faiss flat, interleaved runs in one process."""
    def timed(fn, *a, **kw):
        t = time.perf_counter()
        fn(*a, **kw)
        return time.perf_counter() - t

    ours, raw = [], []
    for _ in range(5):
        raw.append(timed(raw_faiss_flat, feats, K))
        ours.append(timed(knn_search, feats, K, quiet=True))
    ratio = float(np.median(np.array(ours) / np.array(raw)))
    benchmark.extra_info.update(ratio=ratio, clusterg_s=float(np.median(ours)), faiss_s=float(np.median(raw)), n=N,
                                d=D, k=K)
    print(f"\nexact kNN N={N} D={D} k={K}: clusterg {np.median(ours):.3f} s, raw faiss {np.median(raw):.3f} s, "
          f"ratio {ratio:.3f}")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert ratio < MAX_RATIO, f"clusterg takes {ratio:.3f}x raw faiss's time (limit {MAX_RATIO})"
