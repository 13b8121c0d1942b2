"""ivf-gemm's expansion pass against more probes, at 1M synthetic faces x 256, k=80.

One process: draw the synthetic split (as ``benchmarks/default_584k.py``: seed 1, 8,573 identities per
584,013 faces), train the lists once (:func:`clusterg.knn.ivf_gemm.train_centroids` on the sample
:func:`clusterg.knn.ivf_gemm.ivf_gemm_knn` draws), then run :func:`~clusterg.knn.ivf_gemm.ivf_gemm_knn`
on those lists for each ``nprobe:expand`` setting and record its time (probes, scan and expansion; the
shared k-means apart) and recall@80 on 2,000 rows against exact search::

    python benchmarks/ivf_gemm_expand.py -o docs/benchmarks/ivf_gemm_expand_1000k.json     # about 20 min

The settings run in the order given, all on the same lists, so the times are ratios within one process.
"""
from __future__ import annotations

import argparse
import json
import os
import time

N, IDS, SEED, DIM, K, SAMPLE = 1_000_000, 8_573, 1, 256, 80, 2000
SETTINGS = "32:0,64:0,32:16,32:32"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--n", type=int, default=N)
    ap.add_argument("--settings", default=SETTINGS, help=f"comma-separated nprobe:expand pairs (default {SETTINGS})")
    args = ap.parse_args(argv)
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import sampled_recall
    from clusterg.knn.ivf_gemm import EXPAND_DEPTH, default_list_size, ivf_gemm_knn, train_centroids, training_rows
    set_quiet(True)
    settings = []
    for item in args.settings.split(","):
        p, _, e = item.partition(":")
        if not (p.strip().isdigit() and e.strip().isdigit()):
            ap.error(f"--settings: expected nprobe:expand pairs, got {item!r}")
        settings.append((int(p), int(e)))
    n, n_ids = args.n, max(2, round(IDS * args.n / 584_013))
    command = "python benchmarks/ivf_gemm_expand.py" + (f" --n {n}" if n != N else "") + \
        (f" --settings {args.settings}" if args.settings != SETTINGS else "") + f" -o {args.output}"
    x, _ = synth_ms1m(n, dim=DIM, n_ids=n_ids, seed=SEED)  # unit rows
    nlist = max(1, int(round(n / default_list_size(n, K))))
    t = time.perf_counter()
    cent = train_centroids(x[training_rows(n, nlist, 32, seed=0)], nlist, 0, 10)
    out = {"command": command, "n": n, "dim": DIM, "identities": n_ids, "seed": SEED, "k": K, "sample": SAMPLE,
           "nlist": nlist, "expand_depth": EXPAND_DEPTH, "kmeans_s": round(time.perf_counter() - t, 1),
           "threads": os.cpu_count(), "runs": []}
    for p, e in settings:
        t = time.perf_counter()
        nb, _ = ivf_gemm_knn(x, K, centroids=cent, nprobe=p, expand=e, normalize=False)
        run = {"nprobe": p, "expand": e, "knn_s_without_kmeans": round(time.perf_counter() - t, 1),
               "recall_at_80": round(sampled_recall(x, nb, n_sample=SAMPLE, normalize=False), 4)}
        del nb
        out["runs"].append(run)
        print(json.dumps(run), flush=True)
    with atomic_open(args.output, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
