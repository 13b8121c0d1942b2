"""The list-major IVF builder (``method="ivf-gemm"``) against faiss ``IndexIVFFlat`` on the same lists.

Two modes.

* **pytest-benchmark** (CI, seconds)::

      pytest benchmarks/bench_knn_gemm.py                       # N = 10000, D = 128, k = 80
      CLUSTERG_BENCH_KNN_N=100000 CLUSTERG_BENCH_KNN_D=256 pytest benchmarks/bench_knn_gemm.py

* **standalone** (the numbers of ``docs/benchmarks/knn_gemm.md``)::

      python benchmarks/bench_knn_gemm.py --n 200000 --dim 256 --k 80 --nprobe 16,32,48 \\
          --growth 50000,100000,200000 --out docs/benchmarks/knn_gemm.md

ivf-gemm runs one pass here (``expand=0``), the scan ``IndexIVFFlat`` does; ``test_ivf_gemm_expanded``
times its default second pass on the same lists. Both builders get the **same centroids** (one spherical k-means, timed once and reported
apart), so for one ``nprobe`` they scan the same candidates and reach the same recall:
the ratio is at matched recall by construction, and the recall column shows it. faiss's
time is ``add`` + ``search`` (its quantizer assigns every row, then every query); ours is
the whole :func:`~clusterg.knn.ivf_gemm.ivf_gemm_knn` call given the centroids (probe
search, reorder, GEMMs, heaps, final ordering). Runs alternate in one process, same threads.
Recall@k is measured on a 2,000-query sample against exact search.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import faiss
import numpy as np
import pytest

from clusterg.knn.ivf_gemm import default_list_size, ivf_gemm_knn, train_centroids

N = int(os.environ.get("CLUSTERG_BENCH_KNN_N", "10000"))
D = int(os.environ.get("CLUSTERG_BENCH_KNN_D", "128"))
K = int(os.environ.get("CLUSTERG_BENCH_KNN_K", "80"))


def _unit(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def shared_centroids(xn: np.ndarray, k: int, seed: int = 0, list_size: int | None = None) -> np.ndarray:
    """The k-means both builders use: ``N / list_size`` lists, 32 sampled rows a list, 10 iterations."""
    n = len(xn)
    nlist = max(1, round(n / (list_size or default_list_size(n, k))))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, min(n, 32 * nlist), replace=False))
    return train_centroids(xn[pick], nlist, seed=seed, niter=10)


def faiss_ivfflat(xn: np.ndarray, centroids: np.ndarray, k: int, nprobe: int):
    """Raw faiss: IndexIVFFlat over the given centroids (no training), add, search every row."""
    d = xn.shape[1]
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(centroids)
    index = faiss.IndexIVFFlat(quantizer, d, len(centroids), faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True
    index.add(xn)
    index.nprobe = int(nprobe)
    sims, nbrs = index.search(xn, k)
    return nbrs, sims


def _recall(nbrs: np.ndarray, exact: np.ndarray, rows: np.ndarray) -> float:
    from clusterg.knn import knn_recall
    return knn_recall(nbrs[rows], exact)


# ----------------------------------------------------------------------------- pytest-benchmark

@pytest.fixture(scope="module")
def setup():
    from clusterg.data.synth import synth_ms1m
    x, _ = synth_ms1m(N, dim=D, seed=0)
    xn = _unit(x)
    return xn, shared_centroids(xn, K)


def test_ivf_gemm(benchmark, setup):
    xn, c = setup
    benchmark.pedantic(ivf_gemm_knn, args=(xn, K), kwargs=dict(centroids=c, nprobe=24, expand=0, quiet=True),
                       rounds=2, iterations=1)


def test_ivf_gemm_expanded(benchmark, setup):
    """The default second pass (``expand``) on the same lists: its cost over test_ivf_gemm."""
    xn, c = setup
    benchmark.pedantic(ivf_gemm_knn, args=(xn, K), kwargs=dict(centroids=c, nprobe=24, quiet=True),
                       rounds=2, iterations=1)


def test_faiss_ivfflat_same_lists(benchmark, setup):
    xn, c = setup
    benchmark.pedantic(faiss_ivfflat, args=(xn, c, K, 24), rounds=2, iterations=1)


def test_ratio_same_lists(benchmark, setup):
    """ivf-gemm / IndexIVFFlat time on the same lists and nprobe; the recall must match."""
    xn, c = setup
    rows = np.arange(0, len(xn), max(1, len(xn) // 1000))
    _, exact = faiss.knn(xn[rows], xn, K, metric=faiss.METRIC_INNER_PRODUCT)
    t = time.perf_counter()
    a, _ = faiss_ivfflat(xn, c, K, 24)
    t_faiss = time.perf_counter() - t
    t = time.perf_counter()
    b, _ = ivf_gemm_knn(xn, K, centroids=c, nprobe=24, expand=0, quiet=True)
    t_ours = time.perf_counter() - t
    r_faiss, r_ours = _recall(a, exact, rows), _recall(b, exact, rows)
    benchmark.extra_info.update(ratio=t_ours / t_faiss, ivf_gemm_s=t_ours, faiss_s=t_faiss, recall_ivf_gemm=r_ours,
                                recall_faiss=r_faiss, n=N, d=D, k=K)
    print(f"\nN={N} D={D} k={K} nprobe 24: ivf-gemm {t_ours:.2f} s (recall {r_ours:.3f}), "
          f"IndexIVFFlat {t_faiss:.2f} s (recall {r_faiss:.3f}), ratio {t_ours / t_faiss:.2f}")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    assert abs(r_ours - r_faiss) < 0.01, "same lists and probes must give the same recall"


# ----------------------------------------------------------------------------- standalone

def _run_size(n: int, dim: int, k: int, nprobes: list[int], seed: int, n_sample: int, log) -> dict:
    from clusterg.data.synth import synth_ms1m
    t = time.perf_counter()
    x, _ = synth_ms1m(n, dim=dim, seed=seed)
    xn = _unit(x)
    del x
    log(f"N={n}: data {time.perf_counter() - t:.1f} s")
    rows = np.sort(np.random.default_rng(seed + 1).choice(n, min(n, n_sample), replace=False))
    t = time.perf_counter()
    _, exact = faiss.knn(xn[rows], xn, k, metric=faiss.METRIC_INNER_PRODUCT)
    t_exact = time.perf_counter() - t
    t = time.perf_counter()
    c = shared_centroids(xn, k, seed)
    t_train = time.perf_counter() - t
    log(f"N={n}: exact on {len(rows)} queries {t_exact:.1f} s (full est. {t_exact * n / len(rows):.0f} s); "
        f"k-means {len(c)} lists {t_train:.1f} s")
    out = dict(n=n, dim=dim, k=k, nlist=len(c), kmeans_s=t_train, exact_sample_s=t_exact,
               exact_full_est_s=t_exact * n / len(rows), runs=[])
    for p in nprobes:
        t = time.perf_counter()
        a, _ = faiss_ivfflat(xn, c, k, p)
        t_f = time.perf_counter() - t
        ra = _recall(a, exact, rows)
        del a
        t = time.perf_counter()
        b, _ = ivf_gemm_knn(xn, k, centroids=c, nprobe=p, expand=0, quiet=True)
        t_g = time.perf_counter() - t
        rb = _recall(b, exact, rows)
        del b
        run = dict(nprobe=p, faiss_s=t_f, ivf_gemm_s=t_g, recall_faiss=ra, recall_ivf_gemm=rb, ratio=t_g / t_f,
                   ratio_with_kmeans=(t_g + t_train) / (t_f + t_train))
        out["runs"].append(run)
        log(f"N={n} nprobe={p}: IndexIVFFlat {t_f:.1f} s recall {ra:.4f} | ivf-gemm {t_g:.1f} s recall {rb:.4f} "
            f"| ratio {run['ratio']:.2f}")
    return out


def _growth(sizes: list[int], dim: int, k: int, nprobe: int, seed: int, n_sample: int, log) -> list[dict]:
    """ivf-gemm end to end (its own k-means) at fixed list size and nprobe over N."""
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import sampled_recall
    rows = []
    for n in sizes:
        x, _ = synth_ms1m(n, dim=dim, seed=seed)
        t = time.perf_counter()
        nbrs, _ = ivf_gemm_knn(x, k, nprobe=nprobe, expand=0, quiet=True)
        dt = time.perf_counter() - t
        r = sampled_recall(x, nbrs, n_sample=n_sample, seed=seed + 1)
        rows.append(dict(n=n, seconds=dt, recall=r))
        log(f"growth N={n}: ivf-gemm {dt:.1f} s recall {r:.4f}")
        del x, nbrs
    return rows


def _markdown(cmd: str, sizes: list[dict], growth: list[dict], nprobe_growth: int) -> str:
    lines = ["# kNN graph builder: list-major IVF (`ivf-gemm`) vs faiss `IndexIVFFlat`", "",
             f"Command: `{cmd}`", "",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; shared with other jobs while it "
             "ran, so absolute times are inflated and noisy; the ratios come from alternating runs in one process.", "",
             "Both builders use the same centroids (spherical k-means, 32 rows a list, 10 iterations, "
             "lists of ~192 rows), so at one `nprobe` they scan the same candidates: the ratio is at matched "
             "recall (see the two recall columns). Times exclude the shared k-means (listed per size); "
             "`ratio+km` includes it on both sides. Recall@k on a 2,000-query sample against exact search.", ""]
    for s in sizes:
        lines += [f"## N = {s['n']:,} x {s['dim']}, k = {s['k']}, {s['nlist']:,} lists", "",
                  f"k-means {s['kmeans_s']:.1f} s; exact search estimated at {s['exact_full_est_s']:.0f} s "
                  f"(from {s['exact_sample_s']:.1f} s for the sample).", "",
                  "| nprobe | IndexIVFFlat s | recall | ivf-gemm s | recall | ratio | ratio+km |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for r in s["runs"]:
            lines.append(f"| {r['nprobe']} | {r['faiss_s']:.1f} | {r['recall_faiss']:.4f} | {r['ivf_gemm_s']:.1f} | "
                         f"{r['recall_ivf_gemm']:.4f} | {r['ratio']:.2f} | {r['ratio_with_kmeans']:.2f} |")
        lines.append("")
    if growth:
        lines += [f"## Growth (ivf-gemm end to end, own k-means, lists of ~192, nprobe {nprobe_growth})", "",
                  "| N | s | recall@k |", "|---:|---:|---:|"]
        lines += [f"| {g['n']:,} | {g['seconds']:.1f} | {g['recall']:.4f} |" for g in growth]
        if len(growth) >= 2:
            a, b = growth[0], growth[-1]
            e = np.log(b["seconds"] / a["seconds"]) / np.log(b["n"] / a["n"])
            lines += ["", f"Exponent from {a['n']:,} to {b['n']:,}: {e:.2f} (time ~ N^e)."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", default="200000", help="comma-separated sizes (default 200000)")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--k", type=int, default=80)
    p.add_argument("--nprobe", default="16,32,48", help="comma-separated nprobe values")
    p.add_argument("--growth", default="", help="comma-separated sizes for the growth run (empty: none)")
    p.add_argument("--growth-nprobe", type=int, default=32)
    p.add_argument("--sample", type=int, default=2000, help="queries for recall")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="Markdown report (written atomically); JSON beside it")
    a = p.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    sizes = [_run_size(int(n), a.dim, a.k, [int(v) for v in a.nprobe.split(",")], a.seed, a.sample, log)
             for n in a.n.split(",") if n]
    growth = _growth([int(n) for n in a.growth.split(",") if n], a.dim, a.k, a.growth_nprobe, a.seed, a.sample, log)
    cmd = "python benchmarks/bench_knn_gemm.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = _markdown(cmd, sizes, growth, a.growth_nprobe)
    if a.out:
        from clusterg._atomic import atomic_open
        with atomic_open(a.out, "w") as f:
            f.write(md)
        with atomic_open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump(dict(command=cmd, sizes=sizes, growth=growth), f, indent=1)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
