"""Decide GCN-V's and GCN-V + GCN-E's default cut on training identities and synthetic sets only.

The packaged checkpoints carry a tau chosen on CelebA identities of at most 30 faces. The candidate
replacement is :func:`clusterg.cluster._threshold.parent_cut_by_agreement`: on compact embeddings
of 20 to 20,000 points, the cut whose clusters agree best (pairwise F) with the silhouette-cut
Infomap clustering of the same kNN graph, as knn-cc's cut is chosen. For each tune set (those of
``fit_silhouette_tol.py``: the CelebA ``train`` identities the packaged weights held aside, ORL-,
Yale- and UMIST-shaped subsets of them, synthetic sets of median identity size 5, 50 and 500) both
clusterers run with ``threshold="checkpoint"`` and with the search, and the parent links are
re-cut on a fine grid for the best F (labels used: the oracle the regret is measured against).
The search becomes the default only if its mean regret is lower for both models. No shared dev or
test set is read.

Run (about 5 minutes on 2 cores)::

    python benchmarks/fit_parent_cut.py -o docs/benchmarks/parent_cut.json
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

FINE = np.round(np.arange(0.5, 0.995, 0.005), 3)


def fit_set(x, y) -> dict:
    from clusterg.cluster import GCNVClusterer, GCNVEClusterer
    from clusterg.linkage.tree_deduction import parents_to_labels
    from clusterg.metrics import pairwise
    f = lambda lab: float(pairwise(y, lab)[2])  # noqa: E731
    out = {"n": int(len(x)), "identities": int(len(np.unique(y)))}
    for name, cls in (("gcn-v", GCNVClusterer), ("gcn-ve", GCNVEClusterer)):
        ck = cls(threshold="checkpoint").fit(x)
        auto = cls().fit(x)
        par, ps = auto.parent_all_, auto.psim_all_  # the same links: only the cut differs
        assert np.array_equal(par, ck.parent_all_)
        out[name] = {"checkpoint": {"threshold": ck.threshold_, "F": f(ck.labels_)},
                     "agreement": {"threshold": auto.threshold_, "F": f(auto.labels_)},
                     "best_F": max(f(parents_to_labels(par, ps, t)) for t in FINE)}
        out[name]["best_F"] = max(out[name]["best_F"], out[name]["checkpoint"]["F"], out[name]["agreement"]["F"])
    return out


def main(argv=None) -> int:
    from fit_silhouette_tol import tune_sets
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--data", default=os.environ.get("CLUSTERG_DATA", str(REPO.parent / "shared" / "data")))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("clusterg").setLevel(logging.ERROR)
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    set_quiet(True)
    t0 = time.perf_counter()
    sets = {name: fit_set(x, y) for name, (x, y) in tune_sets(Path(args.data)).items()}
    regret = {m: {c: float(np.mean([r[m]["best_F"] - r[m][c]["F"] for r in sets.values()]))
                  for c in ("checkpoint", "agreement")} for m in ("gcn-v", "gcn-ve")}
    out = {"command": "python benchmarks/fit_parent_cut.py -o " + args.output,
           "seconds": round(time.perf_counter() - t0, 1), "mean_regret": regret,
           "default": "agreement" if all(r["agreement"] < r["checkpoint"] for r in regret.values()) else "checkpoint",
           "sets": sets}
    with atomic_open(args.output, "w") as fh:
        fh.write(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: out[k] for k in ("default", "mean_regret")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
