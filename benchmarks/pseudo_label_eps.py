"""Choose the DBSCAN ``eps`` of the ``spcl-faces`` pseudo-label preset on held-aside training identities.

The sweep runs SpCL's pipeline (k-reciprocal Jaccard, k1 30, k2 6, min_samples 4) at several
``eps`` on the CelebA ``train`` identities the packaged weights held aside for tuning
(``split_identities(labels, 0.2, seed=0)``), picks the largest ``eps`` whose inlier pairwise
precision there is at least 0.95 (label noise is what hurts the training that consumes pseudo-labels;
the best pairwise F, outliers as singletons, is recorded too), and only then scores CelebA ``dev``
(never used to choose)::

    python benchmarks/pseudo_label_eps.py -o docs/benchmarks/pseudo_label_eps.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EPS = (0.3, 0.4, 0.5, 0.6, 0.7)
MIN_PRECISION = 0.95


def score(x, y, eps):
    from clusterg.cluster.pseudo_labels import pseudo_labels
    from clusterg.metrics import evaluate
    r = pseudo_labels(x, preset="spcl", eps=eps, delta=0.0, quiet=True)
    lab = r.labels.copy()
    out = lab < 0
    lab[out] = lab.max() + 1 + np.arange(out.sum())  # outliers as singletons
    inl = ~out
    prec = float(evaluate(y[inl], r.labels[inl])["pairwise_precision"]) if inl.sum() > 1 else float("nan")
    sizes = np.bincount(r.labels[inl]) if inl.any() else np.zeros(1, int)
    return {"eps": eps, "clusters": r.n_clusters, "outliers": r.n_outliers, "largest": int(sizes.max()),
            "precision_inliers": prec, "pairwise_F": float(evaluate(y, lab)["pairwise_fscore"])}


def render_table(res: dict) -> str:
    """The reStructuredText table of docs/reid.rst (tune and check sets side by side)."""
    head = ("eps", "tune: clusters", "outliers", "largest", "precision", "pairwise F",
            "dev: precision", "pairwise F")
    rows = [(f"{t['eps']:.1f}", f"{t['clusters']:,}", f"{t['outliers']:,}", str(t['largest']),
             f"{t['precision_inliers']:.3f}", f"{t['pairwise_F']:.3f}", f"{c['precision_inliers']:.3f}",
             f"{c['pairwise_F']:.3f}") for t, c in zip(res["tune"], res["check"])]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    rule = "  ".join("=" * w for w in widths)
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, line(head), rule, *(line(r) for r in rows), rule]) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--render", metavar="RST", help="only write the docs table of an existing --output JSON")
    ap.add_argument("--data", default=os.environ.get("CLUSTERG_DATA", str(REPO.parent / "shared" / "data")))
    args = ap.parse_args(argv)
    from clusterg._atomic import atomic_open
    from clusterg._progress import set_quiet
    from clusterg.data import MS1MDataset
    from clusterg.train.ada_nets import split_identities
    set_quiet(True)
    if args.render:
        with atomic_open(args.render, "w") as f:
            f.write(render_table(json.loads(Path(args.output).read_text())))
        return 0
    tr = MS1MDataset(Path(args.data) / "celeba", "train", dim=128)
    x, y = np.asarray(tr.x, dtype=np.float32), np.asarray(tr.y)
    held = split_identities(y, 0.2, seed=0)
    held = held if held.dtype == bool else np.isin(np.arange(len(y)), held)
    tune = [score(x[held], y[held], e) for e in EPS]
    best = max(r["eps"] for r in tune if r["precision_inliers"] >= MIN_PRECISION)
    best_f = max(tune, key=lambda r: r["pairwise_F"])["eps"]
    dv = MS1MDataset(Path(args.data) / "celeba", "dev", dim=128)
    check = [score(np.asarray(dv.x, dtype=np.float32), np.asarray(dv.y), e) for e in EPS]
    res = {"command": "python benchmarks/pseudo_label_eps.py -o " + args.output, "chosen_eps": best,
           "rule": f"largest eps with inlier pairwise precision >= {MIN_PRECISION} on the tune set",
           "best_F_eps": best_f, "tune_set": f"CelebA train, held-aside identities ({int(held.sum())} faces)", "tune": tune,
           "check_set": "CelebA dev (scored after the choice)", "check": check}
    with atomic_open(args.output, "w") as f:
        f.write(json.dumps(res, indent=1) + "\n")
    print(json.dumps({"chosen_eps": best, "tune": tune, "check": check}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
