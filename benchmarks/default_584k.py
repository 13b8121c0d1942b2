"""The default pipeline at MS1M part1 scale on this machine: 584,013 synthetic faces x 256, kNN included.

One process, in order: draw the part1-like synthetic split (8,573 identities, seed 1, as
``benchmarks/ms1m_protocol.py``), build the kNN graph with ``method="auto"`` (the clusterers' default:
ivf-gemm above :data:`clusterg.knn.AUTO_EXACT_MAX` points), measure its recall@80 on 2,000 random rows against exact
search, run :class:`clusterg.cluster.AutoClusterer` at its defaults on that graph, and score it::

    python benchmarks/default_584k.py -o docs/benchmarks/default_584k.json      # about 2-4 min on 2 cores
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

N, IDS, SEED, DIM, K = 584_013, 8_573, 1, 256, 80


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--n", type=int, default=N)
    args = ap.parse_args(argv)
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.cluster import AutoClusterer
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import knn_search, resolve_method, sampled_recall
    from clusterg.metrics import evaluate
    set_quiet(True)
    n_ids = max(2, round(IDS * args.n / N))
    out = {"command": "python benchmarks/default_584k.py -o " + args.output, "n": args.n, "dim": DIM,
           "identities": n_ids, "k": K, "threads": os.cpu_count()}
    t = time.perf_counter()
    x, y = synth_ms1m(args.n, dim=DIM, n_ids=n_ids, seed=SEED)
    out["synth_s"] = round(time.perf_counter() - t, 1)
    out["knn_method"] = resolve_method("auto", args.n)
    t = time.perf_counter()
    knn = knn_search(x, K, method="auto")  # the default of every clusterer
    out["knn_s"] = round(time.perf_counter() - t, 1)
    out["knn_recall_at_80_sample_2000"] = round(sampled_recall(x, knn[0], n_sample=2000), 4)
    t = time.perf_counter()
    est = AutoClusterer().fit(x, knn=knn)
    out["cluster_s"] = round(time.perf_counter() - t, 1)
    out["ran"], out["threshold"] = est.method_, round(float(est.threshold_), 4)
    out["n_clusters"] = int(est.labels_.max() + 1)
    out["total_s_knn_and_cluster"] = round(out["knn_s"] + out["cluster_s"], 1)
    out.update({k: round(float(v), 4) for k, v in evaluate(y, est.labels_).items() if k not in out})
    out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    with atomic_open(args.output, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
