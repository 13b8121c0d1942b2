"""What the label-free cut search costs: each default against the same method at the cut it chose, in one process.

The cut search (:mod:`clusterg.linkage.threshold_search`) runs the method once per candidate cut.
This times, on the same precomputed kNN graph, ``method()`` (threshold ``"auto"``: the search) and
``method(threshold=<the cut it chose>)`` (a single run), and ``auto`` against ``ada-nets`` (the
extra Infomap run and silhouettes), and writes their ratios::

    python benchmarks/cut_search_cost.py -o docs/benchmarks/cut_search_cost.json
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

SETS = {"celeba-dev": ("celeba", "dev"), "pins14": ("pins14", "all"), "orl": ("orl", "all")}


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--data", default=os.environ.get("CLUSTERG_DATA", str(REPO.parent / "shared" / "data")))
    args = ap.parse_args(argv)
    logging.getLogger("clusterg").setLevel(logging.ERROR)
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.cluster import make_clusterer
    from clusterg.data import MS1MDataset
    from clusterg.knn import knn_search
    set_quiet(True)
    out = {"command": "python benchmarks/cut_search_cost.py -o " + args.output, "cores": os.cpu_count(),
           "load_avg_start": list(os.getloadavg()), "sets": {}}
    for name, (folder, split) in SETS.items():
        ds = MS1MDataset(Path(args.data) / folder, split, dim=128)
        x = np.asarray(ds.x, dtype=np.float32)
        knn = knn_search(x, 80, quiet=True)
        row = {"n": int(len(x))}
        for m in ("infomap", "knn-cc", "hac"):
            est, t_auto = _timed(lambda: make_clusterer(m).fit(x, knn=knn))
            _, t_one = _timed(lambda: make_clusterer(m, threshold=float(est.threshold_)).fit(x, knn=knn))
            row[m] = {"search_s": round(t_auto, 2), "single_s": round(t_one, 2), "ratio": round(t_auto / t_one, 1)}
        _, t_ada = _timed(lambda: make_clusterer("ada-nets").fit(x, knn=knn))
        _, t_auto = _timed(lambda: make_clusterer("auto").fit(x, knn=knn))
        row["auto_vs_ada_nets"] = {"auto_s": round(t_auto, 2), "ada_nets_s": round(t_ada, 2),
                                   "ratio": round(t_auto / t_ada, 2)}
        out["sets"][name] = row
        print(name, json.dumps(row), flush=True)
    with atomic_open(args.output, "w") as fh:
        fh.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
