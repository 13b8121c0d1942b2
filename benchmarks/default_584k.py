"""The default pipeline at MS1M part1 scale on this machine: 584,013 synthetic faces x 256, kNN included.

One process, in order: draw the part1-like synthetic split (8,573 identities, seed 1, as
``benchmarks/ms1m_protocol.py``), build the kNN graph with ``method="auto"`` (the clusterers' default:
ivf-gemm above :data:`clusterg.knn.AUTO_EXACT_MAX` points, HNSW above :data:`clusterg.knn.AUTO_GEMM_MAX`), measure its recall@80 on 2,000 random rows against exact
search, run :class:`clusterg.cluster.AutoClusterer` at its defaults on that graph, and score it::

    python benchmarks/default_584k.py -o docs/benchmarks/default_584k.json      # about 2-4 min on 2 cores

``--split`` draws one of ``benchmarks/ms1m_protocol.py``'s synthetic test splits instead (its size,
identities and seed), e.g. the 5.21M part9-like set end to end::

    python benchmarks/default_584k.py --split part9_test -o docs/benchmarks/default_5210k.json

``--expand N`` sets ivf-gemm's second pass (lists a row; ``--expand 0``: the one-pass scan, for a baseline).
``--log`` prints each stage's progress (logging at info level) to stderr.
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
    ap.add_argument("--split", default=None, help="a test split of ms1m_protocol.SPLITS (overrides --n)")
    ap.add_argument("--log", action="store_true", help="log each stage at info level to stderr")
    ap.add_argument("--knn-method", default="auto", help="kNN search method (default auto, as the clusterers)")
    ap.add_argument("--expand", type=int, default=None,
                    help="ivf-gemm's second pass, lists a row (default: ivf-gemm's own, 0: one pass)")
    args = ap.parse_args(argv)
    if args.log:
        import logging
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.cluster import AutoClusterer
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import knn_search, resolve_method, sampled_recall
    from clusterg.metrics import evaluate
    set_quiet(True)
    n_ids, seed = max(2, round(IDS * args.n / N)), SEED
    command = "python benchmarks/default_584k.py -o " + args.output
    if args.split is not None:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from ms1m_protocol import SPLITS
        if args.split not in SPLITS or args.split.endswith("_train"):
            ap.error(f"--split: one of {', '.join(s for s in SPLITS if not s.endswith('_train'))}")
        args.n, n_ids, seed = SPLITS[args.split]
        command = f"python benchmarks/default_584k.py --split {args.split} -o {args.output}"
    elif args.n != N:
        command = f"python benchmarks/default_584k.py --n {args.n} -o {args.output}"
    if args.knn_method != "auto":
        command = command.replace(" -o ", f" --knn-method {args.knn_method} -o ")
    if args.expand is not None:
        command = command.replace(" -o ", f" --expand {args.expand} -o ")
    out = {"command": command, "n": args.n, "dim": DIM, "identities": n_ids, "seed": seed, "k": K,
           "threads": os.cpu_count()}
    t = time.perf_counter()
    x, y = synth_ms1m(args.n, dim=DIM, n_ids=n_ids, seed=seed)
    out["synth_s"] = round(time.perf_counter() - t, 1)
    out["knn_method"] = resolve_method(args.knn_method, args.n)
    if out["knn_method"] == "ivf-gemm":
        from clusterg.knn.ivf_gemm import EXPAND
        out["expand"] = EXPAND if args.expand is None else args.expand
    t = time.perf_counter()
    # "auto": the default of every clusterer
    knn = knn_search(x, K, method=args.knn_method, expand=args.expand)
    out["knn_s"] = round(time.perf_counter() - t, 1)
    out["peak_rss_after_knn_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
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
