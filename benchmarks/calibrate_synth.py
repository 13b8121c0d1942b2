"""Compare the synthetic generator with real CelebA ``dev`` faces (dlib, 128-d).

Draws synthetic sets with CelebA dev's exact identity sizes (10,567 faces,
1,431 identities) at D=128 for a few seeds and measures, on both the real and
the synthetic faces: the nearest-neighbour identity rate (leave one out,
cosine), the same/different-identity cosine similarity distributions, and the
best pairwise F of kNN + connected components (k=20) and of Infomap (k=50)
over a threshold sweep. Writes ``calibration.md`` / ``.csv`` / ``.json`` (a table) and
``synth_calibration.png`` (histograms) to ``--out`` (default docs/benchmarks)::

    python benchmarks/calibrate_synth.py            # about a minute on 2 cores
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def pair_sims(x: np.ndarray, y: np.ndarray, n_diff: int = 300_000, seed: int = 0):
    """All same-identity cosine similarities and a random sample of different-identity ones."""
    order = np.argsort(y, kind="stable")
    ys = y[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ys)) + 1, len(y)]
    same = []
    for s, e in zip(starts[:-1], starts[1:]):
        if e - s > 1:
            f = x[order[s:e]]
            g = f @ f.T
            same.append(g[np.triu_indices(e - s, 1)])
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(y), n_diff), rng.integers(0, len(y), n_diff)
    keep = y[a] != y[b]
    diff = np.einsum("ij,ij->i", x[a[keep]], x[b[keep]])
    return np.concatenate(same), diff


def measure(x: np.ndarray, y: np.ndarray) -> dict:
    from clusterg.cluster import make_clusterer
    from clusterg.knn import knn_search
    from clusterg.metrics import pairwise
    nbrs, sims = knn_search(x, 50, quiet=True)
    same, diff = pair_sims(x, y)
    out = {"nn_rate": float((y[nbrs[:, 1]] == y).mean()),
           "same_mean": float(same.mean()), "same_std": float(same.std()),
           "diff_mean": float(diff.mean()), "diff_std": float(diff.std()),
           "diff_p999": float(np.percentile(diff, 99.9))}
    for name, k, grid in (("knn-cc", 20, np.arange(0.93, 0.99, 0.0025)),
                          ("infomap", 50, np.arange(0.92, 0.98, 0.005))):
        best = (0.0, None)
        for t in grid:
            lab = make_clusterer(name, k=k, threshold=float(t)).fit(x, knn=(nbrs[:, :k], sims[:, :k])).labels_
            f = float(np.nan_to_num(pairwise(y, lab)[2]))
            if f > best[0]:
                best = (f, round(float(t), 4))
        out[f"{name}_f"], out[f"{name}_t"] = best
    return out, same, diff


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks"))
    p.add_argument("--data", default=None, help="real data root (default ../shared/data or $CLUSTERG_DATA)")
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    args = p.parse_args(argv)
    import os

    from clusterg import set_quiet
    from clusterg.data.io import read_bin, read_meta
    from clusterg.data.synth import SynthSpec, synth_ms1m
    set_quiet(True)
    root = Path(args.data or os.environ.get("CLUSTERG_DATA") or REPO.parent / "shared" / "data")
    if not (root / "celeba" / "features" / "dev.bin").is_file():
        print("CelebA dev not found under", root, file=sys.stderr)
        return 1
    xr = np.ascontiguousarray(read_bin(root / "celeba" / "features" / "dev.bin", dim=128), dtype=np.float32)
    yr = read_meta(root / "celeba" / "labels" / "dev.meta")
    rows = []
    real, same_r, diff_r = measure(xr, yr)
    rows.append(("CelebA dev (real)", real))
    sizes = np.bincount(yr)
    synth_hist = None
    for seed in args.seeds:
        xs, ys = synth_ms1m(len(yr), dim=128, seed=seed, sizes=sizes)
        m, same_s, diff_s = measure(xs, ys)
        rows.append((f"synthetic, seed {seed}", m))
        if synth_hist is None:
            synth_hist = (same_s, diff_s)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cols = [("nn_rate", "NN identity rate"), ("same_mean", "same cos mean"), ("same_std", "same cos std"),
            ("diff_mean", "diff cos mean"), ("diff_std", "diff cos std"), ("diff_p999", "diff cos 99.9%"),
            ("knn-cc_f", "knn-cc best Fp (k=20)"), ("knn-cc_t", "at t"), ("infomap_f", "Infomap best Fp (k=50)"),
            ("infomap_t", "at t")]
    lines = ["| set | " + " | ".join(c[1] for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.3f}" if c.endswith(("_f", "rate", "mean", "std", "p999"))
                                                  else f"{m[c]}" for c, _ in cols) + " |")
    spec = SynthSpec()
    text = ("Measured by `python benchmarks/calibrate_synth.py`: 10,567 faces with CelebA dev's identity sizes "
            "(1,431 identities), D=128, exact kNN, best thresholds from a sweep with the labels.\n\n"
            + "\n".join(lines) + "\n\nGenerator defaults: "
            + ", ".join(f"`{k}={v}`" for k, v in spec.__dict__.items()) + "\n")
    from clusterg._atomic import atomic_open
    with atomic_open(out / "calibration.md") as f:
        f.write(text)
    with atomic_open(out / "calibration.csv") as f:  # for docs/synthetic.rst (csv-table)
        f.write(",".join(["set"] + [f'"{c[1]}"' for c in cols]) + "\n")
        for name, m in rows:
            f.write(",".join([f'"{name}"'] + [f"{m[c]:.3f}" if c.endswith(("_f", "rate", "mean", "std", "p999"))
                                             else f"{m[c]}" for c, _ in cols]) + "\n")
    with atomic_open(out / "calibration.json") as f:
        json.dump({name: m for name, m in rows}, f, indent=1)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0.6, 1.0, 121)
    ax.hist(same_r, bins, density=True, histtype="step", color="C0", lw=1.5, label="real, same identity")
    ax.hist(diff_r, bins, density=True, histtype="step", color="C1", lw=1.5, label="real, different")
    ax.hist(synth_hist[0], bins, density=True, histtype="step", color="C0", ls="--", label="synthetic, same")
    ax.hist(synth_hist[1], bins, density=True, histtype="step", color="C1", ls="--", label="synthetic, different")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.set_title("CelebA dev (dlib, 128-d) vs synthetic (seed %d), same identity sizes" % args.seeds[0])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_open(out / "synth_calibration.png", "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
