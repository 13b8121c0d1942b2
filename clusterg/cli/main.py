"""The ``clusterg`` command line.

Sub-commands: ``knn``, ``cluster``, ``eval``, ``demo``, plus those registered by
optional modules (``train``, ``images``, ``synth``). Bad input ends with
one line ``clusterg: error: ...`` and exit status 2; outputs are written atomically.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .._atomic import refuse_same_file
from .._progress import is_quiet, set_quiet
from .._validate import ClustergError

logger = logging.getLogger("clusterg.cli")

PLUGINS = ["clusterg.cli.cmd_train", "clusterg.cli.cmd_images", "clusterg.cli.cmd_synth"]


def _features(args) -> np.ndarray:
    from ..data.io import load_features
    return load_features(args.features, dim=args.dim)


def add_feature_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("features", help="features: .bin (raw float32, with --dim or a .json sidecar), .npy or .npz")
    p.add_argument("--dim", type=int, default=None, help="feature dimension of a .bin file")


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or info logs")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")


def cmd_knn(args) -> int:
    from ..knn import knn_search, save_knn
    out = Path(args.output)
    refuse_same_file(out, args.features)
    x = _features(args)
    t0 = time.perf_counter()
    nbrs, sims = knn_search(x, args.k, method=args.method, device=args.device, nprobe=args.nprobe, nlist=args.nlist)
    save_knn(out, nbrs, sims)
    logger.info("kNN of %d points (k=%d, %s) in %.1f s -> %s", len(x), args.k, args.method,
                time.perf_counter() - t0, out)
    return 0


def _metrics_line(m: dict) -> str:
    return (f"pairwise P {m['pairwise_precision']:.4f} R {m['pairwise_recall']:.4f} F {m['pairwise_fscore']:.4f} | "
            f"BCubed P {m['bcubed_precision']:.4f} R {m['bcubed_recall']:.4f} F {m['bcubed_fscore']:.4f} | "
            f"NMI {m['nmi']:.4f} | n {m['n']} clusters {m['n_clusters']}")


def cmd_cluster(args) -> int:
    from ..cluster import make_clusterer
    from ..data.io import read_meta, write_meta
    from ..knn import load_knn
    from ..metrics import evaluate
    refuse_same_file(args.output, args.features, args.knn, args.labels)
    x = _features(args)
    gt = read_meta(args.labels) if args.labels else None
    if gt is not None and len(gt) != len(x):
        raise ClustergError(f"labels {args.labels} have {len(gt)} entries but there are {len(x)} features")
    knn = load_knn(args.knn, n=len(x)) if args.knn else None
    params = dict(k=args.k, threshold=args.threshold, checkpoint=args.checkpoint, seed=args.seed,
                  knn_method=args.knn_method, n_clusters=args.n_clusters, device=args.device)
    model = make_clusterer(args.method, **{k: v for k, v in params.items() if v is not None})
    t0 = time.perf_counter()
    labels = model.fit_predict(x, knn=knn)
    elapsed = time.perf_counter() - t0
    write_meta(args.output, labels)
    result = {"method": args.method, "n": int(len(labels)), "n_clusters": int(labels.max() + 1) if len(labels) else 0,
              "seconds": round(elapsed, 3), "output": str(args.output)}
    if gt is not None:
        result.update(evaluate(gt, labels))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.method}: {result['n']} points -> {result['n_clusters']} clusters in {elapsed:.1f} s; "
              f"wrote {args.output}")
        if gt is not None:
            print(_metrics_line(result))
    return 0


def cmd_eval(args) -> int:
    from ..data.io import read_meta
    from ..metrics import evaluate
    gt, pred = read_meta(args.gt), read_meta(args.pred)
    if len(gt) != len(pred):
        raise ClustergError(f"gt {args.gt} has {len(gt)} labels but pred {args.pred} has {len(pred)}")
    m = evaluate(gt, pred)
    print(json.dumps(m) if args.json else _metrics_line(m))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(n=args.n, seed=args.seed, json_out=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clusterg", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"clusterg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("knn", help="build a kNN graph file (learn-to-cluster faiss_k_<k>.npz layout)")
    add_feature_args(p)
    p.add_argument("--k", type=int, default=80, help="neighbours per point, self included (default 80)")
    p.add_argument("--method", choices=["flat", "ivf", "hnsw"], default="flat", help="exact or approximate")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~4 sqrt(N))")
    p.add_argument("--nprobe", type=int, default=None, help="IVF lists visited per query (default 32)")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    add_common_args(p)
    p.set_defaults(func=cmd_knn)

    from ..cluster import CLUSTERERS
    p = sub.add_parser("cluster", help="cluster features and write one label a line")
    add_feature_args(p)
    p.add_argument("--method", default="knn-cc", help=f"one of: {', '.join(CLUSTERERS)} (default knn-cc)")
    p.add_argument("--k", type=int, default=None, help="neighbours per point, self included (method default)")
    p.add_argument("--threshold", type=float, default=None, help="similarity threshold (method default)")
    p.add_argument("--n-clusters", type=int, default=None, help="clusters, for kmeans")
    p.add_argument("--checkpoint", default=None, help="trained weights for learned methods")
    p.add_argument("--knn", default=None, help="precomputed kNN .npz for these features")
    p.add_argument("--knn-method", choices=["flat", "ivf", "hnsw"], default=None)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--labels", default=None, help="ground-truth .meta: report the metrics too")
    p.add_argument("-o", "--output", required=True, help="output .meta (one cluster id a line)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_common_args(p)
    p.set_defaults(func=cmd_cluster)

    p = sub.add_parser("eval", help="score a clustering against ground truth (pairwise, BCubed, NMI)")
    p.add_argument("--gt", required=True, help="ground-truth .meta")
    p.add_argument("--pred", required=True, help="predicted .meta (-1 = singleton)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_common_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("demo", help="cluster a built-in synthetic face-like set and print the scores")
    p.add_argument("--n", type=int, default=10000, help="points in the demo set (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    add_common_args(p)
    p.set_defaults(func=cmd_demo)

    for mod in PLUGINS:
        try:
            importlib.import_module(mod).register(sub)
        except ImportError as e:  # an optional part that is not installed
            logger.debug("sub-command module %s not available: %s", mod, e)
        except Exception as e:  # a broken optional part must not take the other commands down with it
            logging.getLogger("clusterg").warning("sub-command module %s failed to load: %s: %s", mod,
                                                  type(e).__name__, e)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False) or is_quiet()  # --quiet, or CLUSTERG_QUIET=1 in the environment
    set_quiet(quiet)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="clusterg: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its "Loading faiss with AVX2 support" lines
    try:
        return int(args.func(args) or 0)
    except ClustergError as e:
        print(f"clusterg: error: {e}", file=sys.stderr)
        return 2
    except (OSError, MemoryError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"clusterg: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clusterg: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an unexpected failure: one line unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"clusterg: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
