"""Where ivf-gemm's recall@80 goes on the synthetic MS1M splits: the neighbours of other identities.

ivf-gemm scans every row of a query's ``nprobe`` lists exactly, so a true neighbour is found if and
only if its own list is among the query's probes. That makes recall@80 a function of the lists
alone, and this script reads it off without running the scan: it draws the synthetic split (as
``benchmarks/default_584k.py``: seed 1, 8,573 identities per 584,013 faces), takes 2,000 random
rows (the sample of :func:`clusterg.knn.sampled_recall`) and their exact 80 neighbours, trains the
lists as :func:`clusterg.knn.ivf_gemm.ivf_gemm_knn` does (the same sample of ``train_per_list * nlist``
rows, :func:`clusterg.knn.ivf_gemm.train_centroids`) and counts, per ``nprobe``, the neighbours
whose list is probed, split into neighbours of the query's own identity and of other ones::

    python benchmarks/ivf_gemm_recall_tail.py -o docs/benchmarks/ivf_gemm_recall_tail_1000k.json

``--check`` also runs :func:`clusterg.knn.ivf_gemm.ivf_gemm_knn` with one pass (``expand=0``: no second
pass, whose lists this script does not model) and records its sampled recall@80 next to the one read
off the lists (they agree up to ties at the 80th place).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

N, IDS, SEED, DIM, K, SAMPLE = 1_000_000, 8_573, 1, 256, 80, 2000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--n", type=int, default=N)
    ap.add_argument("--nprobe", default="16,24,32,48,64,96", help="comma-separated probe counts")
    ap.add_argument("--train-per-list", default="32,8", help="comma-separated k-means sample sizes per list")
    ap.add_argument("--check", action="store_true", help="also run ivf_gemm_knn with one pass (expand=0)")
    args = ap.parse_args(argv)
    import faiss

    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import sampled_recall
    from clusterg.knn.ivf_gemm import default_list_size, ivf_gemm_knn, train_centroids, training_rows
    from clusterg.knn.search import normalize_rows
    set_quiet(True)
    nprobes = [int(v) for v in args.nprobe.split(",")]
    tpls = [int(v) for v in args.train_per_list.split(",")]
    n, n_ids = args.n, max(2, round(IDS * args.n / 584_013))
    command = "python benchmarks/ivf_gemm_recall_tail.py" + (f" --n {n}" if n != N else "") + \
        (" --check" if args.check else "") + f" -o {args.output}"
    x, y = synth_ms1m(n, dim=DIM, n_ids=n_ids, seed=SEED)
    x = normalize_rows(x)
    nlist = max(1, int(round(n / default_list_size(n, K))))
    rows = np.sort(np.random.default_rng(0).choice(n, min(n, SAMPLE), replace=False))
    _, exact = faiss.knn(np.ascontiguousarray(x[rows]), x, K, metric=faiss.METRIC_INNER_PRODUCT)
    same = y[exact] == y[rows][:, None]
    sizes = np.bincount(y)
    out = {"command": command, "n": n, "dim": DIM, "identities": n_ids, "seed": SEED, "k": K, "sample": len(rows),
           "nlist": nlist, "median_identity_size_of_sampled_rows": float(np.median(sizes[y[rows]])),
           "share_of_neighbours_from_own_identity": round(float(same.mean()), 4), "runs": []}
    need = np.unique(np.concatenate([exact.ravel(), rows]))
    for tpl in tpls:
        pick = training_rows(n, nlist, tpl, seed=0)  # the rows ivf_gemm_knn trains on
        t = time.perf_counter()
        cent = train_centroids(x[pick], nlist, 0, 10)
        t_km = time.perf_counter() - t
        _, own = faiss.knn(np.ascontiguousarray(x[need]), cent, 1, metric=faiss.METRIC_INNER_PRODUCT)
        list_of = np.empty(n, dtype=np.int64)
        list_of[need] = own[:, 0]
        _, probes = faiss.knn(np.ascontiguousarray(x[rows]), cent, max(nprobes), metric=faiss.METRIC_INNER_PRODUCT)
        nb_list = list_of[exact]
        run = {"train_per_list": tpl, "kmeans_s": round(t_km, 1), "by_nprobe": {}}
        for p in nprobes:
            hit = (nb_list[:, :, None] == probes[:, None, :p]).any(axis=2)
            run["by_nprobe"][str(p)] = {"recall": round(float(hit.mean()), 4),
                                        "recall_own_identity": round(float(hit[same].mean()), 4),
                                        "recall_other_identities": round(float(hit[~same].mean()), 4)}
        out["runs"].append(run)
        print(json.dumps(run), flush=True)
    if args.check:
        t = time.perf_counter()
        nb, _ = ivf_gemm_knn(x, K, normalize=False, expand=0)
        out["check"] = {"expand": 0, "ivf_gemm_knn_s": round(time.perf_counter() - t, 1),
                        "sampled_recall_at_80": round(sampled_recall(x, nb, n_sample=SAMPLE, normalize=False), 4)}
    out["threads"] = os.cpu_count()
    with atomic_open(args.output, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
