"""Where ivf-gemm's recall goes above 4,096 lists: flat vs two-level k-means, exact vs HNSW probes.

Above :data:`clusterg.knn.ivf_gemm.FLAT_KMEANS_MAX` lists (4,096 when this was measured; 32,768 now),
ivf-gemm trains its lists by two-level k-means and finds each row's ``nprobe`` lists through an
HNSW index over the centroids. This script builds the same synthetic MS1M-like set (``synth_ms1m``,
seed 1, 256-d, N / 68 identities) several times in one process, each time with one of:

* ``flat-exact``: one-level k-means and exact probe search (FLAT_KMEANS_MAX raised above the list count);
* ``two-level-exact``: two-level k-means, exact probe search;
* ``two-level-hnsw``: two-level k-means, HNSW probes at ``HNSW_EF_SEARCH`` (what ivf-gemm does above FLAT_KMEANS_MAX lists);
* ``two-level-hnsw-ef256``: the same with HNSW's search depth efSearch at 256;

and records the time and recall@80 on 1,000 sampled rows against exact search::

    python benchmarks/knn_two_level.py --n 1000000 -o docs/benchmarks/knn_two_level_1m.json   # ~12 min on 2 cores
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

VARIANTS = ("flat-exact", "two-level-exact", "two-level-hnsw", "two-level-hnsw-ef256")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    import faiss
    import numpy as np

    import clusterg.knn.ivf_gemm as ivf
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import sampled_recall
    set_quiet(True)
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"--variants: unknown {bad}; choose from {', '.join(VARIANTS)}")
    x, _ = synth_ms1m(args.n, dim=256, n_ids=max(2, round(args.n / 68)), seed=1)
    nlist = round(args.n / ivf.default_list_size(args.n, 80))
    out = {"command": f"python benchmarks/knn_two_level.py --n {args.n} -o {args.output}", "n": args.n, "dim": 256,
           "k": 80, "nlist": nlist, "nprobe": 32, "threads": os.cpu_count(), "runs": []}
    flat_max, assigner, ef = ivf.FLAT_KMEANS_MAX, ivf._assigner, ivf.HNSW_EF_SEARCH

    def exact_assigner(c):
        index = faiss.IndexFlatIP(c.shape[1])
        index.add(c)
        return index
    for v in variants:
        ivf.FLAT_KMEANS_MAX = 2 * nlist if v == "flat-exact" else min(flat_max, nlist - 1)
        ivf._assigner = exact_assigner if v.endswith("exact") else assigner
        ivf.HNSW_EF_SEARCH = 256 if v.endswith("ef256") else ef
        try:
            t = time.perf_counter()
            nbrs, _ = ivf.ivf_gemm_knn(x, 80, expand=0, quiet=True)  # the one-pass scan these runs measured
            sec = time.perf_counter() - t
        finally:
            ivf.FLAT_KMEANS_MAX, ivf._assigner, ivf.HNSW_EF_SEARCH = flat_max, assigner, ef
        run = {"variant": v, "hnsw_ef_search": None if v.endswith("exact") else 256 if v.endswith("ef256") else ef,
               "seconds": round(sec, 1), "recall_at_80_sample_1000": round(sampled_recall(x, nbrs, 1000), 4)}
        out["runs"].append(run)
        print(json.dumps(run), flush=True)
        del nbrs
    with atomic_open(args.output, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
