"""Choose the label-free cut search's constants on training identities and synthetic sets only.

The constants of :mod:`clusterg.linkage.threshold_search` and of the default pipeline:

1. ``SILHOUETTE_TOL``: Infomap (k=20) is run over the threshold grid of each tune set and the cut
   :func:`~clusterg.linkage.threshold_search.select_threshold` picks is scored for every candidate
   tolerance; the tolerance kept minimises the mean regret (best F over the grid minus F at the
   pick), averaged over the tolerance and its neighbours in the candidate list (robust to the
   exact value, the principle ``fit_spread_rules.py`` uses).
2. With that tolerance, the knn-cc and HAC cuts chosen by agreement with the Infomap clustering,
   and their regret (recorded; nothing is fitted there).
3. ``AUTO_MARGIN`` of :class:`~clusterg.cluster.AutoClusterer`: the default runs Ada-NETS and the
   silhouette-cut Infomap and keeps Ada-NETS unless Infomap's silhouette is higher by more than
   the margin (relative). The margin kept minimises the mean regret of that choice (the better of
   the two F minus the F of the one chosen), averaged over the margin and its neighbours.

Tune sets: the CelebA ``train`` identities the packaged weights held aside (all of them, and three
each of ORL-, Yale- and UMIST-shaped subsets: 40 x 10, 15 x 11 and 20 x 19-30 faces), and
synthetic 128-d sets of median identity size 5, 50 and 500. No shared dev or test set is read.

Run (about 15 minutes on 2 cores; writes the JSON that ``tests/test_defaults.py`` ties the
constants to)::

    python benchmarks/fit_silhouette_tol.py -o docs/benchmarks/silhouette_tol.json
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

TOLS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1)
MARGINS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)


def _subset(x, y, n_ids, per, rng, at_least):
    ids, cnt = np.unique(y, return_counts=True)
    pick = rng.choice(ids[cnt >= at_least], n_ids, replace=False)
    rows = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == i), min(per, int((y == i).sum())), replace=False)
                                   for i in pick]))
    return x[rows], y[rows]


def tune_sets(data: Path) -> dict:
    from clusterg.data import MS1MDataset
    from clusterg.data.synth import synth_ms1m
    from clusterg.train.ada_nets import split_identities
    tr = MS1MDataset(data / "celeba", "train", dim=128)
    x, y = np.asarray(tr.x, dtype=np.float32), np.asarray(tr.y)
    held = split_identities(y, 0.2, seed=0)
    held = held if held.dtype == bool else np.isin(np.arange(len(y)), held)
    xh, yh = x[held], y[held]
    out = {"train-held": (xh, yh)}
    for s in range(3):
        rng = np.random.default_rng(10 + s)
        out[f"held-orl{s}"] = _subset(xh, yh, 40, 10, rng, 10)
        out[f"held-yale{s}"] = _subset(xh, yh, 15, 11, rng, 11)
        out[f"held-umist{s}"] = _subset(xh, yh, 20, 30, rng, 19)
    for med in (5, 50, 500):
        out[f"synth-med{med}"] = synth_ms1m(6000, dim=128, n_ids=6000 // med, seed=900 + med)
    return out


def _memo(fn):
    cache: dict = {}

    def at(t):
        key = round(float(t), 6)
        if key not in cache:
            cache[key] = np.asarray(fn(key))
        return cache[key]
    return at


def fit_set(x, y) -> dict:
    from clusterg.cluster import InfomapClusterer
    from clusterg.knn import knn_search
    from clusterg.linkage.threshold_search import SilhouetteScorer, select_threshold, threshold_grid
    from clusterg.metrics import pairwise

    xn = (x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)
    n = len(xn)
    nb, s = knn_search(xn, min(80, n), normalize=False, quiet=True)
    grid = threshold_grid(s, 20)
    scorer = SilhouetteScorer(xn)
    f = lambda lab: float(pairwise(y, lab)[2])  # noqa: E731
    im = _memo(lambda t: InfomapClusterer(k=min(20, n), threshold=t).fit(xn, knn=(nb, s)).labels_)
    res: dict = {"n": n, "identities": int(len(np.unique(y))), "infomap": {}}
    best_im = max(f(im(t)) for t in grid)
    res["infomap"]["best_F_grid"] = best_im
    picks = {}
    for tol in TOLS:
        ch = select_threshold(scorer, im, grid, tol=tol)
        picks[tol] = ch
        res["infomap"][f"tol={tol}"] = {"threshold": ch.cut, "F": f(im(ch.cut))}
    res["infomap"]["best_F"] = max(best_im, *(v["F"] for k, v in res["infomap"].items() if k.startswith("tol=")))
    res["_picks"] = picks
    res["_im"] = im
    res["_ctx"] = (xn, nb, s, grid, scorer, f)
    return res


def finish_set(res: dict, y, tol: float) -> dict:
    from clusterg.cluster import AdaNetsClusterer
    from clusterg.cluster.hac import average_linkage_knn
    from clusterg.linkage import connected_components, threshold_edges
    from clusterg.linkage.threshold_search import select_by_agreement, threshold_grid
    xn, nb, s, grid, scorer, f = res.pop("_ctx")
    im = res.pop("_im")
    picks = res.pop("_picks")
    n = len(xn)
    ref = im(picks[tol].cut)
    fams = {"knn-cc": lambda t: connected_components(n, *threshold_edges(nb[:, :20], s[:, :20], t)),
            "hac": lambda t: average_linkage_knn(xn, nb[:, :20], float(t), quiet=True)}
    from clusterg.linkage.auto_threshold import similarity_scale
    m_far = similarity_scale(xn, s)[0]
    for name, fn in fams.items():
        fn = _memo(fn)
        # as the clusterers search: average linkage over a grid reaching down to the random-pair median
        ch = select_by_agreement(ref, fn, threshold_grid(s, 20, low=m_far if name == "hac" else None))
        res[name] = {"threshold": ch.cut, "F": f(fn(ch.cut)),
                     "best_F": max(f(fn(t)) for t, _ in ch.tried)}
    ada = AdaNetsClusterer(seed=0).fit(xn)
    res["auto"] = {"ada_F": f(ada.labels_), "ada_silhouette": scorer(ada.labels_),
                   "infomap_F": f(ref), "infomap_silhouette": scorer(ref)}
    return res


def robust_pick(values: dict) -> float:
    keys = sorted(values)
    score = {k: float(np.mean([values[keys[j]] for j in range(max(0, i - 1), min(len(keys), i + 2))]))
             for i, k in enumerate(keys)}
    return min(keys, key=lambda k: (score[k], k)), score


def margin_regrets(cases, margins=MARGINS) -> dict:
    """Mean regret of AutoClusterer's choice at each margin: ``cases`` are ``(ada_F, ada_silhouette,
    infomap_F, infomap_silhouette)`` per tune set; Infomap is kept when its silhouette is higher by more
    than the margin (relative), and the regret is the better F minus the F kept."""
    out = {}
    for m in margins:
        regs = [max(fa, fi) - (fi if si > sa + m * abs(sa) else fa) for fa, sa, fi, si in cases]
        out[m] = float(np.mean(regs))
    return out


def fit_cli(doc: str, argv=None, extra: dict | None = None) -> argparse.Namespace:
    """The fit scripts' command line (``-o/--output``, ``--data``, and ``extra``: flag -> ``add_argument``
    keywords), with clusterg's logs and progress quiet."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--data", default=os.environ.get("CLUSTERG_DATA", str(REPO.parent / "shared" / "data")))
    for flag, kw in (extra or {}).items():
        ap.add_argument(flag, **kw)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("clusterg").setLevel(logging.ERROR)
    from clusterg._progress import set_quiet
    set_quiet(True)
    return args


def write_fit(path: str, out: dict, summary: tuple[str, ...]) -> None:
    """A fit's results file (atomic, sorted keys), and its chosen values on stdout."""
    from clusterg._atomic import atomic_open
    with atomic_open(path, "w") as fh:
        fh.write(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: out[k] for k in summary}))


def main(argv=None) -> int:
    args = fit_cli(__doc__, argv)
    sets = tune_sets(Path(args.data))
    t0 = time.perf_counter()
    per = {name: fit_set(x, y) for name, (x, y) in sets.items()}
    regret = {tol: float(np.mean([r["infomap"]["best_F"] - r["infomap"][f"tol={tol}"]["F"] for r in per.values()]))
              for tol in TOLS}
    tol, robust = robust_pick(regret)
    for name, (x, y) in sets.items():
        finish_set(per[name], y, tol)
    auto_regret = margin_regrets([(a["ada_F"], a["ada_silhouette"], a["infomap_F"], a["infomap_silhouette"])
                                  for a in (r["auto"] for r in per.values())])
    margin, auto_robust = robust_pick(auto_regret)
    out = {"command": "python benchmarks/fit_silhouette_tol.py -o " + args.output,
           "seconds": round(time.perf_counter() - t0, 1),
           "tune_sets": {k: {"n": v["n"], "identities": v["identities"]} for k, v in per.items()},
           "silhouette_tol": tol, "tol_mean_regret": {str(k): v for k, v in regret.items()},
           "tol_robust_regret": {str(k): v for k, v in robust.items()},
           "auto_margin": margin, "margin_mean_regret": {str(k): v for k, v in auto_regret.items()},
           "margin_robust_regret": {str(k): v for k, v in auto_robust.items()},
           "sets": per}
    write_fit(args.output, out, ("silhouette_tol", "tol_mean_regret", "auto_margin", "margin_mean_regret"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
