"""Decide GCN-V's and GCN-V + GCN-E's default cut and rejoin on training identities and synthetic sets only.

The packaged checkpoints carry a tau chosen on CelebA identities of at most 30 faces. The candidate
replacement is :func:`clusterg.cluster._threshold.parent_cut_by_agreement`: on compact embeddings
of 20 to 20,000 points, the cut whose clusters agree best (pairwise F) with the silhouette-cut
Infomap clustering of the same kNN graph, as knn-cc's cut is chosen. For each tune set (those of
``fit_silhouette_tol.py``: the CelebA ``train`` identities the packaged weights held aside, ORL-,
Yale- and UMIST-shaped subsets of them, synthetic sets of median identity size 5, 50 and 500) both
clusterers run with ``threshold="checkpoint"`` and with the search, and the parent links are
re-cut on a fine grid for the best F (labels used: the oracle the regret is measured against).
The search becomes the default only if its mean regret is lower for both models.

Then the rejoin (``clusterg.cluster.gcn_v.GCN_REJOIN_MIN_SIZE``): trees of at least ``min_size``
points whose majority lies in one module of that same Infomap reference are joined
(:func:`clusterg.linkage.rejoin_by_reference`); the trees stop at local confidence peaks, and on
identities of hundreds of faces GCN-V leaves many pieces. ``min_size`` is chosen among
:data:`MIN_SIZES` and "no rejoin" by the mean regret over both models, averaged with its neighbours
in the candidate list (the principle of the other fits). The tune sets are those of
``fit_rejoin.py``: the sets above plus 16 synthetic sets with identities of 100 to 1000 faces.
No shared dev or test set is read.

Run (about 15 minutes on 2 cores)::

    python benchmarks/fit_parent_cut.py -o docs/benchmarks/parent_cut.json
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

FINE = np.round(np.arange(0.5, 0.995, 0.005), 3)
MIN_SIZES = (2, 5, 10, 20, 50, 100, 200)


def fit_set(x, y) -> dict:
    from clusterg.cluster import GCNVClusterer, GCNVEClusterer
    from clusterg.cluster._common import features_and_knn
    from clusterg.cluster._threshold import infomap_reference
    from clusterg.cluster.gcn_v import GCN_REJOIN_MIN_SIZE
    from clusterg.linkage.rejoin import rejoin_by_reference
    from clusterg.linkage.tree_deduction import parents_to_labels
    from clusterg.metrics import pairwise
    f = lambda lab: float(pairwise(y, lab)[2])  # noqa: E731
    out = {"n": int(len(x)), "identities": int(len(np.unique(y)))}
    # the packaged models' 20-NN graph, and the reference their default cut agrees with
    xn, nb, s = features_and_knn(x, min(20, len(x)), None, "auto", "cpu", 0)
    ref = infomap_reference(xn, nb, s)
    for name, cls in (("gcn-v", GCNVClusterer), ("gcn-ve", GCNVEClusterer)):
        ck = cls(threshold="checkpoint").fit(xn, knn=(nb, s))
        auto = cls().fit(xn, knn=(nb, s))
        par, ps = auto.parent_all_, auto.psim_all_  # the same links: only the cut differs
        assert np.array_equal(par, ck.parent_all_)
        cut = parents_to_labels(par, ps, auto.threshold_)
        rejoined = {str(m): f(rejoin_by_reference(cut, ref, m)[0]) for m in MIN_SIZES}
        assert f(auto.labels_) == (rejoined[str(GCN_REJOIN_MIN_SIZE)] if GCN_REJOIN_MIN_SIZE else f(cut))
        out[name] = {"checkpoint": {"threshold": ck.threshold_, "F": f(ck.labels_)},
                     "agreement": {"threshold": auto.threshold_, "F": f(cut)}, "rejoin": rejoined,
                     "best_F": max(f(parents_to_labels(par, ps, t)) for t in FINE)}
        out[name]["best_F"] = max(out[name]["best_F"], out[name]["checkpoint"]["F"], out[name]["agreement"]["F"],
                                  *rejoined.values())
    return out


def main(argv=None) -> int:
    from fit_rejoin import tune_sets
    from fit_silhouette_tol import fit_cli, robust_pick, write_fit
    args = fit_cli(__doc__, argv)
    t0 = time.perf_counter()
    sets = {name: fit_set(x, y) for name, (x, y) in tune_sets(Path(args.data)).items()}
    regret = {m: {c: float(np.mean([r[m]["best_F"] - r[m][c]["F"] for r in sets.values()]))
                  for c in ("checkpoint", "agreement")} for m in ("gcn-v", "gcn-ve")}
    # the rejoin: "no rejoin" is the last candidate (the largest min_size, in effect)
    cands = [str(m) for m in MIN_SIZES] + ["none"]
    rj = {c: float(np.mean([r[m]["best_F"] - (r[m]["agreement"]["F"] if c == "none" else r[m]["rejoin"][c])
                            for r in sets.values() for m in ("gcn-v", "gcn-ve")])) for c in cands}
    order = {c: i for i, c in enumerate(cands)}
    pick, robust = robust_pick({order[c]: v for c, v in rj.items()})
    out = {"command": "python benchmarks/fit_parent_cut.py -o " + args.output,
           "seconds": round(time.perf_counter() - t0, 1), "mean_regret": regret,
           "default": "agreement" if all(r["agreement"] < r["checkpoint"] for r in regret.values()) else "checkpoint",
           "rejoin_mean_regret": rj, "rejoin_robust_regret": {c: robust[order[c]] for c in cands},
           "rejoin_min_size": None if cands[pick] == "none" else int(cands[pick]), "sets": sets}
    write_fit(args.output, out, ("default", "mean_regret", "rejoin_min_size", "rejoin_mean_regret"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
