"""Every method at its default against the same method at its best threshold, on every regime.

The regime sweep of ``docs/defaults.rst``: the real shared sets (CelebA dev, celeba6k, pins14,
ORL, Yale, UMIST, tweet89) and synthetic sets from :func:`clusterg.data.synth_ms1m` with median
identity sizes of about 5, 50 and 500. For each set and method it records the pairwise F at the
method's default (no threshold given: label-free) and at its best threshold chosen with the labels
(an oracle, for comparison only), plus the best plain Infomap over k in {10, 20, 50, 80}.

Run (writes the JSON the docs table and ``tests/test_defaults.py`` are checked against)::

    python benchmarks/regimes.py -o docs/benchmarks/regimes.json [--sets dev,pins14,...]
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

from clusterg._atomic import atomic_open  # noqa: E402
from clusterg.metrics import evaluate  # noqa: E402

REAL = {"celeba-dev": ("celeba", "dev", 128), "celeba6k": ("celeba6k", "all", 128), "pins14": ("pins14", "all", 128),
        "orl": ("orl", "all", 128), "yale": ("yale", "all", 128), "umist": ("umist", "all", 128),
        "tweet89": ("tweet89", "all", 384)}
SYNTH = {"synth-med5": 5, "synth-med50": 50, "synth-med500": 500}
FACE_GRID = np.round(np.arange(0.86, 0.9951, 0.005), 3)


def _grid(x, sims):
    """Thresholds to search for the oracle: the span of the data's kNN similarities."""
    lo, hi = np.percentile(sims[:, 1:], [1, 99.9])
    return np.unique(np.round(np.linspace(max(lo - 0.05, -1), min(hi, 0.999), 96), 4))


def load_set(name: str, data: Path):
    if name in SYNTH:
        from clusterg.data.synth import synth_ms1m
        n = 6000
        return synth_ms1m(n, dim=128, n_ids=n // SYNTH[name], seed=100 + SYNTH[name])
    folder, split, dim = REAL[name]
    from clusterg.data import MS1MDataset
    ds = MS1MDataset(data / folder, split, dim=dim)
    return np.asarray(ds.x, dtype=np.float32), np.asarray(ds.y)


def fscore(y, lab) -> float:
    return float(evaluate(y, lab)["pairwise_fscore"])


def best_over(y, fn, grid):
    lg = logging.getLogger("clusterg.linkage")
    level = lg.level
    lg.setLevel(logging.ERROR)  # the oracle sweep tries degenerate cuts on purpose
    try:
        # coarse grid, then a fine one around the best coarse value
        grid = np.asarray(grid, dtype=np.float64)
        coarse = grid[:: max(1, len(grid) // 24)]
        scores = [(fscore(y, fn(t)), float(t)) for t in coarse]
        t_best = max(scores)[1]
        step = float(np.min(np.diff(coarse))) if len(coarse) > 1 else 0.0
        fine = np.round(np.linspace(t_best - step, t_best + step, 9), 4)
        scores += [(fscore(y, fn(t)), float(t)) for t in fine if grid.min() <= t <= grid.max()]
    finally:
        lg.setLevel(level)
    f, t = max(scores)
    return {"F": f, "threshold": t}


ORACLE_K = (10, 20, 50, 80)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """float32 rows normalised in float64: the features every oracle here is scored on."""
    return (x / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)).astype(np.float32)


def best_infomap(xn: np.ndarray, y: np.ndarray, knn=None) -> dict:
    """The best plain Infomap over k in :data:`ORACLE_K` and the cut, both chosen with the labels (the
    issue's reference): ``{"F", "threshold", "k"}``. ``xn``: L2-normalised rows; ``knn``: its 80-NN graph."""
    from clusterg.cluster import InfomapClusterer
    from clusterg.knn import knn_search
    k80 = min(80, len(xn))
    nb, s = knn if knn is not None else knn_search(xn, k80, normalize=False)
    grid = _grid(xn, s)
    best = {"F": -1.0}
    for k in ORACLE_K:
        r = best_over(y, lambda t, k=k: InfomapClusterer(k=min(k, k80), threshold=float(t)).fit(
            xn, knn=(nb, s)).labels_, grid)
        if r["F"] > best["F"]:
            best = dict(r, k=k)
    return best


def run_set(name: str, x: np.ndarray, y: np.ndarray, methods: list[str], old: dict | None = None) -> dict:
    from clusterg.cluster import make_clusterer
    from clusterg.cluster.hac import average_linkage_knn
    from clusterg.cluster import InfomapClusterer
    from clusterg.knn import knn_search
    from clusterg.linkage import connected_components, threshold_edges
    from clusterg.linkage.tree_deduction import parents_to_labels

    xn = unit_rows(x)
    k80 = min(80, len(x))
    nb, s = knn_search(xn, k80, normalize=False)
    grid = _grid(xn, s)
    out: dict = {"n": int(len(x)), "dim": int(x.shape[1]), "identities": int(len(np.unique(y))),
                 "median_identity_size": float(np.median(np.unique(y, return_counts=True)[1])), "methods": {}}

    def im(k, t):
        return InfomapClusterer(k=min(k, k80), threshold=float(t)).fit(xn, knn=(nb, s)).labels_

    if old is not None and "best_infomap" in old:  # a rerun of some methods keeps the oracle and the others
        out["best_infomap"] = old["best_infomap"]
        out["methods"] = dict(old.get("methods", {}))
    else:
        out["best_infomap"] = best_infomap(xn, y, (nb, s))

    for m in methods:
        t0 = time.perf_counter()
        try:
            est = make_clusterer(m)
            lab = est.fit_predict(x, knn=(nb, s) if m not in ("gcn-v", "gcn-ve", "auto", "ada-nets") else None)
        except Exception as e:  # a method that does not apply (no weights for this dim): recorded, not fatal
            out["methods"][m] = {"error": f"{type(e).__name__}: {e}"}
            continue
        res = {"default_F": fscore(y, lab), "default_threshold": getattr(est, "threshold_", None),
               "n_clusters": int(lab.max() + 1), "seconds": round(time.perf_counter() - t0, 2)}
        if m == "auto":
            res["ran"] = est.method_
            res["rejoined"] = int(est.rejoined_)  # Ada-NETS clusters joined by clusterg.linkage.rejoin
            if est.domain_ is not None:  # the packaged weights' domain test (clusterg.models.domain)
                res["domain"] = {"statistic": est.domain_.statistic, "threshold": est.domain_.threshold,
                                 "inside": est.domain_.inside}
        # the same method at its best threshold (labels used: oracle)
        if m == "knn-cc":
            res["best"] = best_over(y, lambda t: connected_components(len(x), *threshold_edges(nb[:, :20], s[:, :20], t)), grid)
        elif m == "infomap":  # at the k its default chose (k="auto": 20 compact, 80 spread)
            res["best"] = best_over(y, lambda t: im(est.k_, t), grid)
            res["k"] = int(est.k_)
        elif m == "dbscan":
            res["best"] = best_over(y, lambda t: make_clusterer("dbscan", threshold=float(t)).fit_predict(xn, knn=(nb, s)), grid)
        elif m == "hac":
            res["best"] = best_over(y, lambda t: average_linkage_knn(xn, nb[:, :20], float(t), quiet=True), grid)
        elif m in ("gcn-v", "gcn-ve"):  # re-cut, then the default's rejoin against the same reference
            from clusterg.cluster.gcn_v import _rejoin
            par, psim, ref = est.parent_all_, est.psim_all_, est.reference_
            res["best"] = best_over(y, lambda t: _rejoin(parents_to_labels(par, psim, t), ref, m)[0],
                                    np.round(np.arange(0.5, 0.995, 0.01), 3))
            res["rejoined"] = int(est.rejoined_)
        elif m in ("ada-nets", "auto") and getattr(est, "method_", m) == "ada-nets":
            a = est.estimator_ if m == "auto" else est
            from clusterg.models.ada_nets import link
            zn, zs = a.final_graph_
            res["best"] = best_over(y, lambda t: link(zn, zs, a.linkage_, t), np.round(np.arange(0.3, 0.995, 0.01), 3))
        elif m == "auto":
            res["best"] = best_over(y, lambda t: im(est.estimator_.k_, t), grid)
            res["k"] = int(est.estimator_.k_)
        out["methods"][m] = res
        logging.getLogger("regimes").info("%s %s: default F %.4f, best %.4f", name, m, res["default_F"],
                                          res.get("best", {}).get("F", float("nan")))
    return out


ORDER = ["auto", "ada-nets", "gcn-ve", "gcn-v", "infomap", "hac", "dbscan", "knn-cc"]


def render_table(results: dict) -> str:
    """The reStructuredText table of ``docs/defaults.rst``: default / best-threshold pairwise F per set."""
    sets = list(results["sets"])
    head = ["method"] + sets
    rows = []
    bi = ["best Infomap (oracle k, t)"]
    for name in sets:
        b = results["sets"][name]["best_infomap"]
        bi.append(f"{b['F']:.3f} (k={b['k']}, {b['threshold']:.3f})")
    rows.append(bi)
    for m in ORDER:
        row = [f"``{m}``"]
        for name in sets:
            r = results["sets"][name]["methods"].get(m)
            if r is None or "error" in r:
                row.append("n/a")
            else:
                best = r.get("best", {}).get("F")
                row.append(f"{r['default_F']:.3f} / {best:.3f}" if best is not None else f"{r['default_F']:.3f}")
        rows.append(row)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    line = "  ".join("=" * w for w in widths)
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line, fmt(head), line] + [fmt(r) for r in rows] + [line]) + "\n"


def render_markdown(results: dict, sets=("celeba-dev", "celeba6k", "pins14", "orl", "yale", "umist", "tweet89")) -> str:
    """The README's results table: pairwise F at the default / at the method's best threshold (oracle)."""
    sets = [n for n in sets if n in results["sets"]]
    lines = ["| method | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    lines.append("| best plain Infomap (oracle k and threshold) | " + " | ".join(
        f"{results['sets'][n]['best_infomap']['F']:.3f}" for n in sets) + " |")
    for m in ORDER:
        cells = []
        for n in sets:
            r = results["sets"][n]["methods"].get(m)
            cells.append("n/a" if r is None or "error" in r else
                         f"{r['default_F']:.3f} / {r['best']['F']:.3f}" if "best" in r else f"{r['default_F']:.3f}")
        name = "**auto** (the default)" if m == "auto" else f"`{m}`"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--sets", default="yale,orl,umist,pins14,tweet89,synth-med5,synth-med50,synth-med500,celeba6k,"
                                       "celeba-dev")
    ap.add_argument("--methods", default="auto,knn-cc,infomap,dbscan,hac,gcn-v,gcn-ve,ada-nets")
    ap.add_argument("--render", metavar="RST", default=None,
                    help="only write the docs table of an existing --output JSON to RST")
    ap.add_argument("--readme", metavar="MD", default=None,
                    help="only rewrite the results table between the regimes-table markers of MD")
    ap.add_argument("--data", default=os.environ.get("CLUSTERG_DATA", str(REPO.parent / "shared" / "data")))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    from clusterg._progress import set_quiet
    set_quiet(True)
    results = {"command": "python benchmarks/regimes.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "sets": {}}
    out = Path(args.output)
    if args.readme:
        md = Path(args.readme).read_text()
        start = md.index("<!-- regimes-table")
        start = md.index("\n", start) + 1
        end = md.index("<!-- /regimes-table -->")
        md = md[:start] + render_markdown(json.loads(out.read_text())) + md[end:]
        with atomic_open(args.readme, "w") as f:
            f.write(md)
        return 0
    if args.render:
        with atomic_open(args.render, "w") as f:
            f.write(render_table(json.loads(out.read_text())))
        return 0
    if out.exists():  # a partial rerun keeps the other sets and records both commands
        old = json.loads(out.read_text())
        results["sets"] = old.get("sets", {})
        if old.get("command"):
            results["command"] = f"{old['command']}, then {results['command']}"
    for name in args.sets.split(","):
        x, y = load_set(name, Path(args.data))
        # with --methods naming only some methods, a set already in the file keeps its oracle and other methods
        keep = results["sets"].get(name) if args.methods != ap.get_default("methods") else None
        results["sets"][name] = run_set(name, x, y, args.methods.split(","), old=keep)
        with atomic_open(out, "w") as f:
            f.write(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
