"""Does the silhouette cut search carry to spread embeddings? Checked on the spread fit's tune sets only.

The 16 synthetic 384-d sets of ``fit_spread_rules.py`` (four difficulty variants x median identity
sizes 5, 12, 50, 300): plain Infomap (k=80) at the spread rule's cut, at the silhouette search's
cut, and at the best cut of the search grid (labels used). The mean and largest regret of each
decide whether spread embeddings use the search (they do not: see the JSON)::

    python benchmarks/silhouette_spread_check.py -o docs/benchmarks/silhouette_spread.json
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    logging.getLogger("clusterg").setLevel(logging.ERROR)
    from fit_silhouette_tol import _memo
    from fit_spread_rules import MEDIANS, VARIANTS
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.cluster import InfomapClusterer
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import knn_search
    from clusterg.linkage.auto_threshold import auto_threshold
    from clusterg.linkage.threshold_search import SilhouetteScorer, select_threshold, threshold_grid
    from clusterg.metrics import pairwise
    set_quiet(True)
    n, sets = 3000, {}
    for vi, (b, w, sig) in enumerate(VARIANTS):
        for med in MEDIANS:
            x, y = synth_ms1m(n, dim=384, n_ids=max(2, n // med), seed=300 + 10 * vi + med, between=b, within=w,
                              face_sigma=sig, spread_sigma=sig)
            xn = (x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)
            nb, s = knn_search(xn, 80, normalize=False, quiet=True)
            im = _memo(lambda t: InfomapClusterer(k=80, threshold=t).fit(xn, knn=(nb, s)).labels_)
            grid = threshold_grid(s)
            rule = auto_threshold(xn, s, "infomap").threshold
            ch = select_threshold(SilhouetteScorer(xn), im, grid)
            sets[f"spread-B{b}-W{w}-F{sig}-med{med}"] = {
                "best_F_grid": float(max(pairwise(y, im(t))[2] for t in grid)),
                "rule_F": float(pairwise(y, im(rule))[2]),
                "search_F": float(pairwise(y, im(ch.cut))[2]) if ch else None}
    reg = {k: [v["best_F_grid"] - v[k + "_F"] for v in sets.values() if v[k + "_F"] is not None] for k in ("rule", "search")}
    out = {"command": "python benchmarks/silhouette_spread_check.py -o " + args.output, "sets": sets,
           "mean_regret": {k: float(np.mean(v)) for k, v in reg.items()},
           "max_regret": {k: float(np.max(v)) for k, v in reg.items()}}
    with atomic_open(args.output, "w") as fh:
        fh.write(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("mean_regret", "max_regret")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
