"""``clusterg pseudo-labels``: pseudo-labels for a training epoch (outliers -1, reliabilities).

Example (SpCL's defaults; on dlib face features use ``--preset spcl-faces``)::

    clusterg pseudo-labels train.bin --dim 128 --preset spcl -o labels.meta --reliability rel.npz --json
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

__all__ = ["register", "cmd_pseudo_labels"]

logger = logging.getLogger("clusterg.cli")

_PRESETS = ("spcl", "spcl-faces", "cluster-contrast", "cluster-contrast-infomap")  # names only; the values live
# in clusterg.cluster.pseudo_labels (kept out of this module so --help stays light)


def cmd_pseudo_labels(args) -> int:
    import numpy as np

    from .._atomic import atomic_path, refuse_same_file
    from .._validate import ClustergError
    from ..cluster.pseudo_labels import pseudo_labels
    from ..data.io import load_features, read_meta, write_meta
    refuse_same_file(args.output, args.features, args.labels)
    if args.reliability:
        refuse_same_file(args.reliability, args.features, args.labels, args.output)
        if Path(args.reliability).resolve() == Path(args.output).resolve():
            raise ClustergError("--reliability and -o name the same file")
    x = load_features(args.features, dim=args.dim)
    gt = read_meta(args.labels) if args.labels else None
    if gt is not None and len(gt) != len(x):
        raise ClustergError(f"labels {args.labels} have {len(gt)} entries but there are {len(x)} features")
    t0 = time.perf_counter()
    res = pseudo_labels(x, method=args.method, preset=args.preset, k1=args.k1, k2=args.k2, eps=args.eps,
                        min_samples=args.min_samples, k=args.k, min_sim=args.min_sim, min_size=args.min_size,
                        delta=args.delta, seed=args.seed, device=args.device)
    elapsed = time.perf_counter() - t0
    write_meta(args.output, res.labels)
    if args.reliability:
        with atomic_path(args.reliability, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, labels=res.labels, sample_reliability=res.sample_reliability,
                         cluster_reliability=res.cluster_reliability, independence=res.independence,
                         compactness=res.compactness, reliable=res.reliable)
    out = {**res.summary(), "params": res.params, "preset": args.preset, "seconds": round(elapsed, 3),
           "output": str(args.output)}
    if gt is not None:
        from ..metrics import pairwise
        kept = res.labels >= 0
        p, r, f = pairwise(gt, res.labels)
        out.update({"pairwise_precision": p, "pairwise_recall": r, "pairwise_fscore": f})
        if kept.any():
            out["inlier_pairwise_precision"] = pairwise(gt[kept], res.labels[kept])[0]
    if getattr(args, "json", False):
        print(json.dumps(out))
    else:
        print(f"pseudo-labels ({res.params['method']}): {out['n']} points -> {out['n_clusters']} clusters, "
              f"{out['n_outliers']} outliers, {out['n_reliable']} reliable, in {elapsed:.1f} s; wrote {args.output}")
        if gt is not None:
            print(f"pairwise P {out['pairwise_precision']:.4f} R {out['pairwise_recall']:.4f} "
                  f"F {out['pairwise_fscore']:.4f} | precision without outliers "
                  f"{out.get('inlier_pairwise_precision', float('nan')):.4f}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "pseudo-labels", help="pseudo-labels for training on unlabeled data (re-ID / faces): outliers -1",
        description="Cluster features into pseudo-labels (DBSCAN on the k-reciprocal Jaccard distance, or "
                    "Infomap on the kNN graph) and write one label a line, -1 for outliers. The same input gives "
                    "the same labels.")
    p.add_argument("features", help="features: .bin (raw float32, with --dim or a .json sidecar), .npy or .npz")
    p.add_argument("--dim", type=int, default=None, help="feature dimension of a .bin file")
    p.add_argument("-o", "--output", required=True, help="output .meta (one label a line, -1 = outlier)")
    p.add_argument("--method", choices=["dbscan-jaccard", "infomap"], default=None,
                   help="clustering (default dbscan-jaccard, or the preset's)")
    p.add_argument("--preset", choices=_PRESETS, default=None,
                   help="named defaults: spcl / cluster-contrast (k1 30, k2 6, eps 0.6, min_samples 4), "
                        "spcl-faces (eps 0.4, for dlib face features), cluster-contrast-infomap "
                        "(k 15, min_sim 0.5, clusters <= 4 outliers)")
    p.add_argument("--k1", type=int, default=None, help="k-reciprocal size (default 30)")
    p.add_argument("--k2", type=int, default=None, help="query-expansion size (default 6)")
    p.add_argument("--eps", type=float, default=None, help="DBSCAN radius on the Jaccard distance (default 0.6)")
    p.add_argument("--min-samples", type=int, default=None, help="DBSCAN core size, self included (default 4)")
    p.add_argument("--k", type=int, default=None, help="Infomap kNN size, self included (default 15)")
    p.add_argument("--min-sim", type=float, default=None, help="Infomap edge threshold (default 0.5)")
    p.add_argument("--min-size", type=int, default=None, help="Infomap: smaller clusters are outliers (default 5)")
    p.add_argument("--delta", type=float, default=0.02, help="offset of the tight/loose runs for reliability")
    p.add_argument("--reliability", default=None, metavar="NPZ",
                   help="also write labels, sample/cluster reliability, independence, compactness, reliable")
    p.add_argument("--labels", default=None, help="ground-truth .meta: report pairwise scores too")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="kNN search device")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_pseudo_labels)
    return p
