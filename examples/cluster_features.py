"""Cluster embeddings you already have, comparing several methods on one kNN graph.

    python examples/cluster_features.py                 # CelebA dlib features from ../shared/data
    python examples/cluster_features.py --small         # 150 + 150 identities (a few seconds)
    python examples/cluster_features.py --synthetic     # MS1M-like synthetic set, no data needed
    python examples/cluster_features.py --features X.npy --labels y.npy

The protocol is the one to follow with your own data: thresholds are chosen on
*labelled* identities (``--tune`` split, or half the identities of the given set)
and then applied, unchanged, to *other* identities, where the scores are reported.
The kNN graph of each set is searched once and shared by every method.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ["CLUSTERG_DATA"]) if os.environ.get("CLUSTERG_DATA") else REPO.parent / "shared" / "data"


def load_sets(args):
    """(tune_x, tune_y, test_x, test_y, description) with disjoint identities."""
    from clusterg.data import load_features, read_meta
    from clusterg.data.synth import synth_ms1m
    rng = np.random.default_rng(args.seed)
    if args.features is not None:
        x = np.asarray(load_features(args.features, dim=args.dim))
        y = np.load(args.labels) if str(args.labels).endswith(".npy") else read_meta(args.labels)
        ids = rng.permutation(np.unique(y))
        half = np.isin(y, ids[: len(ids) // 2])
        return x[half], y[half], x[~half], y[~half], f"{args.features} (half the identities to tune)"
    root = shared_data() / "celeba"
    if not args.synthetic and (root / "features" / "dev.bin").is_file():
        from clusterg.data import read_bin
        xt = np.asarray(read_bin(root / "features" / "train.bin", dim=128))
        yt = read_meta(root / "labels" / "train.meta")
        xd = np.asarray(read_bin(root / "features" / "dev.bin", dim=128))
        yd = read_meta(root / "labels" / "dev.meta")
        if args.small:  # keep 150 identities of each split
            keep_t = np.isin(yt, rng.choice(np.unique(yt), 150, replace=False))
            keep_d = np.isin(yd, rng.choice(np.unique(yd), 150, replace=False))
            xt, yt, xd, yd = xt[keep_t], yt[keep_t], xd[keep_d], yd[keep_d]
        return xt, yt, xd, yd, "CelebA dlib-128: tune on train, test on dev"
    n = 3000 if args.small else 20000
    x, y = synth_ms1m(2 * n, dim=128, seed=args.seed)  # one embedding space, identities split in two
    first = y % 2 == 0
    return x[first], y[first], x[~first], y[~first], f"synthetic MS1M-like set of {2 * n} x 128, identities halved"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, default=None, help=".bin (with --dim), .npy or .npz")
    ap.add_argument("--labels", type=Path, default=None, help=".meta or .npy identities for --features")
    ap.add_argument("--dim", type=int, default=None)
    ap.add_argument("--small", action="store_true", help="small subsets: runs in seconds")
    ap.add_argument("--synthetic", action="store_true", help="use synthetic data even if the real data exist")
    ap.add_argument("--k", type=int, default=20, help="neighbours per point, self included (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if (args.features is None) != (args.labels is None):
        ap.error("--features and --labels go together")

    import clusterg
    from clusterg.cluster import available_methods, make_clusterer
    from clusterg.knn import knn_search
    from clusterg.metrics import evaluate, pairwise
    clusterg.set_quiet(True)

    xt, yt, xd, yd, what = load_sets(args)
    print(f"{what}\n  tune: {len(xt)} points, {len(np.unique(yt))} identities; "
          f"test: {len(xd)} points, {len(np.unique(yd))} identities")
    k = min(args.k, len(xt), len(xd))
    t0 = time.perf_counter()
    knn_t, knn_d = knn_search(xt, k), knn_search(xd, k)
    print(f"  exact kNN (k={k}) of both sets in {time.perf_counter() - t0:.1f} s")

    # Thresholds depend on the set's size (bigger sets chain more), so the tuning set is
    # subsampled to the test set's size when it is larger.
    if len(xt) > len(xd):
        ids = np.random.default_rng(args.seed).permutation(np.unique(yt))
        keep = np.isin(yt, ids[: max(2, int(len(ids) * len(xd) / len(xt)))])
        xt, yt = xt[keep], yt[keep]
        knn_t = knn_search(xt, min(k, len(xt)))

    grid = np.round(np.arange(0.50, 0.995, 0.005), 3)
    methods = [m for m in ("knn-cc", "infomap") if m in available_methods()]
    print(f"\n{'method':10s} {'threshold':>9s} {'pairwise F':>10s} {'BCubed F':>9s} {'NMI':>6s} "
          f"{'clusters':>8s} {'seconds':>7s}")
    for name in methods:
        # coarse-to-fine: scores are flat far from the optimum, so a cheap first pass finds the region
        coarse = grid[::10]
        score = {}
        for t in coarse:
            score[t] = pairwise(yt, make_clusterer(name, k=k, threshold=float(t)).fit(xt, knn=knn_t).labels_)[2]
        best = max(score, key=lambda t: (np.nan_to_num(score[t]), -t))
        for t in grid[(grid > best - 0.05) & (grid < best + 0.05)]:
            if t not in score:
                score[t] = pairwise(yt, make_clusterer(name, k=k, threshold=float(t)).fit(xt, knn=knn_t).labels_)[2]
        best = float(max(score, key=lambda t: (np.nan_to_num(score[t]), -t)))
        t0 = time.perf_counter()
        pred = make_clusterer(name, k=k, threshold=best).fit(xd, knn=knn_d).labels_
        sec = time.perf_counter() - t0
        m = evaluate(yd, pred)
        print(f"{name:10s} {best:9.3f} {m['pairwise_fscore']:10.3f} {m['bcubed_fscore']:9.3f} {m['nmi']:6.3f} "
              f"{m['n_clusters']:8d} {sec:7.2f}")
    if "kmeans" in available_methods():
        t0 = time.perf_counter()
        n_clusters = len(np.unique(yd))  # an oracle count: k-means needs it, the graph methods do not
        pred = make_clusterer("kmeans", n_clusters=n_clusters, seed=args.seed).fit(xd).labels_
        m = evaluate(yd, pred)
        print(f"{'kmeans':10s} {'C=' + str(n_clusters):>9s} {m['pairwise_fscore']:10.3f} {m['bcubed_fscore']:9.3f} "
              f"{m['nmi']:6.3f} {m['n_clusters']:8d} {time.perf_counter() - t0:7.2f}")
    print("\n(k-means is given the true number of clusters; the graph methods find it themselves.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
