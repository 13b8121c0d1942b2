"""Infomap's link weights under the label-free cut search: cosine similarity against the margin above the cut.

``InfomapClusterer(weighting=...)``: ``"similarity"`` (the default: the plain Infomap baseline),
``"margin"`` (``(s - cut) / (1 - cut)``) or ``"margin2"`` (its square). Each is run at its defaults
(``k`` and cut chosen label-free) on the tune sets of ``fit_silhouette_tol.py`` (held-aside CelebA
``train`` identities, ORL-, Yale- and UMIST-shaped subsets of them, synthetic sets) and, reported
apart and not used for the choice, on the shared check sets. The reference is plain Infomap at its
best ``k`` in {10, 20} and cut on the search grid, chosen with the labels::

    python benchmarks/infomap_weighting.py -o docs/benchmarks/infomap_weighting.json   # ~6 min on 2 cores
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

WEIGHTINGS = ("similarity", "margin", "margin2")
CHECK = ("orl", "yale", "umist", "pins14", "celeba6k", "tweet89")


def score_set(x, y) -> dict:
    from regimes import fscore, unit_rows

    from clusterg.cluster import InfomapClusterer
    from clusterg.knn import knn_search
    from clusterg.linkage.threshold_search import threshold_grid
    xn = unit_rows(x)
    nb, s = knn_search(xn, min(80, len(x)), normalize=False, quiet=True)
    grid = threshold_grid(s, 20)
    oracle = max(fscore(y, InfomapClusterer(k=k, threshold=float(t)).fit(xn, knn=(nb, s)).labels_)
                 for k in (10, 20) for t in grid)
    row = {"n": int(len(x)), "oracle_F": oracle}
    for w in WEIGHTINGS:
        t0 = time.perf_counter()
        est = InfomapClusterer(weighting=w).fit(xn, knn=(nb, s))
        row[w] = {"F": fscore(y, est.labels_), "k": int(est.k_), "threshold": float(est.threshold_),
                  "seconds": round(time.perf_counter() - t0, 2)}
    return row


def summary(rows: dict) -> dict:
    return {w: {"mean_regret": float(np.mean([r["oracle_F"] - r[w]["F"] for r in rows.values()])),
                "worst_regret": float(max(r["oracle_F"] - r[w]["F"] for r in rows.values()))} for w in WEIGHTINGS}


def main(argv=None) -> int:
    from fit_silhouette_tol import fit_cli, tune_sets, write_fit
    from regimes import load_set
    args = fit_cli(__doc__, argv)
    data = Path(args.data)
    t0 = time.perf_counter()
    tune = {name: score_set(x, y) for name, (x, y) in tune_sets(data).items()}
    check = {name: score_set(*load_set(name, data)) for name in CHECK}
    out = {"command": "python benchmarks/infomap_weighting.py -o " + args.output,
           "seconds": round(time.perf_counter() - t0, 1), "tune_sets": tune, "tune_summary": summary(tune),
           "check_sets": check, "check_summary": summary(check)}
    write_fit(args.output, out, ("tune_summary", "check_summary"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
