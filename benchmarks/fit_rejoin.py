"""Fit the default pipeline's rejoin rule (:mod:`clusterg.linkage.rejoin`) on tune sets only.

``auto`` runs Ada-NETS and, on the same 80-NN graph, Infomap with its silhouette-chosen cut. Ada-NETS
can split an identity of several hundred faces into a few large pieces that Infomap keeps whole;
:func:`~clusterg.linkage.rejoin_by_reference` joins clusters of at least ``min_size`` points
whose majority lies in one Infomap module. ``min_size`` is chosen here, as the value with the lowest
mean regret (best F over the candidates minus F at the value) averaged with its neighbours in the
candidate list. With the rejoined Ada-NETS, the ``AUTO_MARGIN`` choice between it and Infomap is
scored again over the same margins as ``fit_silhouette_tol.py``.

Tune sets: those of ``fit_silhouette_tol.py`` (held-aside CelebA ``train`` identities, ORL-, Yale-
and UMIST-shaped subsets of them, synthetic medians 5 / 50 / 500), plus synthetic 6,000 x 128 sets
with median identity sizes 100, 200, 500 and 1000, four seeds each (seeds ``1000 + 10 * median + s``;
the regime sweep uses ``100 + median``). No shared dev or test set is read.

Run (about 5 minutes on 2 cores)::

    python benchmarks/fit_rejoin.py -o docs/benchmarks/rejoin_fit.json
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

MIN_SIZES = (2, 5, 10, 20, 50, 100, 200)
LARGE_MEDIANS = (100, 200, 500, 1000)


def tune_sets(data: Path) -> dict:
    from fit_silhouette_tol import tune_sets as base_sets

    from clusterg.data.synth import synth_ms1m
    out = dict(base_sets(data))
    for med in LARGE_MEDIANS:
        for s in range(4):
            out[f"synth-med{med}-s{s}"] = synth_ms1m(6000, dim=128, n_ids=6000 // med, seed=1000 + 10 * med + s)
    return out


def score_set(x, y) -> dict:
    """F of Ada-NETS, of the silhouette-cut Infomap, and of the rejoined Ada-NETS at every ``min_size``,
    run as ``auto`` runs them (one 80-NN graph, Infomap on its first 20 neighbours)."""
    from clusterg.cluster import AdaNetsClusterer, InfomapClusterer
    from clusterg.cluster._common import features_and_knn
    from clusterg.linkage.rejoin import rejoin_by_reference
    from clusterg.linkage.threshold_search import SilhouetteScorer
    from clusterg.metrics import pairwise
    xn, nb, sm = features_and_knn(x, min(80, len(x)), None, "auto", "cpu", 0)
    ada = AdaNetsClusterer(seed=0).fit(xn, knn=(nb, sm)).labels_
    im = InfomapClusterer(seed=0).fit(xn, knn=(nb, sm)).labels_
    score = SilhouetteScorer(xn, seed=0)
    f = lambda lab: float(pairwise(y, lab)[2])  # noqa: E731
    res = {"n": len(y), "identities": int(len(np.unique(y))), "ada_F": f(ada), "infomap_F": f(im),
           "infomap_silhouette": score(im), "rejoin": {}}
    for m in MIN_SIZES:
        lab, joins = rejoin_by_reference(ada, im, m)
        res["rejoin"][str(m)] = {"F": f(lab), "joins": joins, "silhouette": score(lab)}
    return res


def main(argv=None) -> int:
    from fit_silhouette_tol import fit_cli, margin_regrets, robust_pick, write_fit
    args = fit_cli(__doc__, argv)
    t0 = time.perf_counter()
    per = {}
    for name, (x, y) in tune_sets(Path(args.data)).items():
        per[name] = score_set(x, y)
        print(name, json.dumps({"ada": round(per[name]["ada_F"], 4), "infomap": round(per[name]["infomap_F"], 4),
                                **{m: round(v["F"], 4) for m, v in per[name]["rejoin"].items()}}), flush=True)
    regret = {}
    for m in MIN_SIZES:
        regret[m] = float(np.mean([max(v["F"] for v in r["rejoin"].values()) - r["rejoin"][str(m)]["F"]
                                   for r in per.values()]))
    min_size, robust = robust_pick(regret)
    key = str(min_size)
    margin_regret = margin_regrets([(r["rejoin"][key]["F"], r["rejoin"][key]["silhouette"], r["infomap_F"],
                                     r["infomap_silhouette"]) for r in per.values()])
    margin, margin_robust = robust_pick(margin_regret)
    out = {"command": "python benchmarks/fit_rejoin.py -o " + args.output,
           "seconds": round(time.perf_counter() - t0, 1),
           "min_size": min_size, "min_size_mean_regret": {str(k): v for k, v in regret.items()},
           "min_size_robust_regret": {str(k): v for k, v in robust.items()},
           "auto_margin": margin, "margin_mean_regret": {str(k): v for k, v in margin_regret.items()},
           "margin_robust_regret": {str(k): v for k, v in margin_robust.items()},
           "sets": per}
    write_fit(args.output, out, ("min_size", "min_size_mean_regret", "auto_margin", "margin_mean_regret"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
