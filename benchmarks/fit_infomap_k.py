"""Choose the k values Infomap's label-free search tries (``clusterg.cluster.infomap.SEARCH_K``) on
training identities and synthetic sets only.

For each tune set (those of ``fit_rejoin.py``: CelebA ``train`` identities the packaged
weights held aside, ORL-, Yale- and UMIST-shaped subsets of them, synthetic sets of median identity
size 5, 50 and 500, and 16 synthetic sets with identities of hundreds of faces; a first fit without
those 16 kept k = 5, which splits such identities: see ``docs/defaults.rst``) and each k in
:data:`KS`, the silhouette cut search of :func:`clusterg.linkage.threshold_search.select_threshold`
runs on the k-NN graph, giving the silhouette peak and the F at the chosen cut. A candidate set of k values is scored by the mean
regret of the rule "keep the k whose silhouette peak is within a relative ``eps`` of the highest,
the largest such k" (the best F over every k and cut minus the F kept). The set kept minimises the
mean regret; ``eps`` is picked robustly (averaged with its neighbours), as the other fits do.
No shared dev or test set is read.

Run (about 20 minutes on 2 cores; ``--reuse FILE`` takes the per-set results of an earlier run for the
sets it holds, which this deterministic computation would reproduce)::

    python benchmarks/fit_infomap_k.py -o docs/benchmarks/infomap_k.json
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

KS = (5, 10, 20, 40)
CANDIDATES = ((20,), (10, 20), (5, 10, 20), (10, 20, 40), (5, 10, 20, 40))
EPS = (0.0, 0.005, 0.01, 0.02, 0.03)


def fit_set(x, y) -> dict:
    from fit_silhouette_tol import _memo
    from clusterg.cluster import InfomapClusterer
    from clusterg.knn import knn_search
    from clusterg.linkage.threshold_search import SilhouetteScorer, select_threshold, threshold_grid
    from clusterg.metrics import pairwise
    xn = (x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)
    n = len(xn)
    nb, s = knn_search(xn, min(80, n), normalize=False, quiet=True)
    grid = threshold_grid(s, 20)  # the clusterer's grid: the 20-NN similarities, whatever k the graph uses
    scorer = SilhouetteScorer(xn)
    out = {"n": n, "identities": int(len(np.unique(y))), "k": {}}
    for k in KS:
        im = _memo(lambda t, k=k: InfomapClusterer(k=min(k, n), threshold=t).fit(xn, knn=(nb, s)).labels_)
        ch = select_threshold(scorer, im, grid)
        f = lambda t: float(pairwise(y, im(t))[2])  # noqa: E731
        out["k"][str(k)] = {"peak": ch.peak, "threshold": ch.cut, "F": f(ch.cut),
                            "best_F": max(f(t) for t, _ in ch.tried)}
    return out


def rule_regret(sets: dict, ks: tuple, eps: float) -> float:
    regs = []
    for r in sets.values():
        top = max(r["k"][str(k)]["peak"] for k in ks)
        kept = max(k for k in ks if r["k"][str(k)]["peak"] >= top - eps * abs(top))
        best = max(max(v["best_F"], v["F"]) for v in r["k"].values())
        regs.append(best - r["k"][str(kept)]["F"])
    return float(np.mean(regs))


def main(argv=None) -> int:
    import json

    from fit_rejoin import tune_sets
    from fit_silhouette_tol import fit_cli, robust_pick, write_fit
    args = fit_cli(__doc__, argv, {"--reuse": dict(default=None)})
    old = json.loads(Path(args.reuse).read_text())["sets"] if args.reuse else {}
    t0 = time.perf_counter()
    sets = {}
    for name, (x, y) in tune_sets(Path(args.data)).items():
        sets[name] = old[name] if name in old and set(old[name]["k"]) == {str(k) for k in KS} else fit_set(x, y)
        print(name, {k: round(v["F"], 4) for k, v in sets[name]["k"].items()}, flush=True)
    table = {",".join(map(str, ks)): {str(e): rule_regret(sets, ks, e) for e in EPS} for ks in CANDIDATES}
    robust = {c: robust_pick({float(e): v for e, v in row.items()}) for c, row in table.items()}
    best = min(robust, key=lambda c: (robust[c][1][robust[c][0]], len(c)))
    out = {"command": "python benchmarks/fit_infomap_k.py -o " + args.output
           + (f" --reuse {args.reuse}" if args.reuse else ""),
           "seconds": round(time.perf_counter() - t0, 1), "search_k": [int(k) for k in best.split(",")],
           "eps": robust[best][0], "mean_regret": table,
           "robust_regret": {c: {str(e): v for e, v in r[1].items()} for c, r in robust.items()}, "sets": sets}
    write_fit(args.output, out, ("search_k", "eps", "mean_regret"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
