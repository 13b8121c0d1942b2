"""The clusterg command line.

Sub-commands: knn, cluster, eval, demo, plus those registered by optional
modules (train, images, synth). Bad input ends with one line
"clusterg: error: ..." and exit status 2; outputs are written atomically.
Only the modules a sub-command needs are imported (torch and PyTorch Geometric
load for the learned methods alone), so --help and --version are immediate.
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

PLUGINS = ["clusterg.cli.cmd_train", "clusterg.cli.cmd_images", "clusterg.cli.cmd_synth", "clusterg.cli.cmd_people",
           "clusterg.cli.cmd_pseudo", "clusterg.cli.cmd_codebook"]


def _features(args) -> np.ndarray:
    from ..data.io import load_features
    return load_features(args.features, dim=args.dim)


def add_feature_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("features", help="features: .bin (raw float32, with --dim or a .json sidecar), .npy or .npz")
    p.add_argument("--dim", type=int, default=None, help="feature dimension of a .bin file")


#: options every sub-command takes, also before the sub-command (clusterg -q cluster ...)
GLOBAL_OPTIONS = {"quiet": (("-q", "--quiet"), "no progress bars or info logs"),
                  "json": (("--json",), "print one JSON object with the result"),
                  "debug": (("--debug",), "show the full traceback of an unexpected error")}


def add_common_args(p: argparse.ArgumentParser) -> None:
    """Add the global options to a sub-command's parser (given there or before the sub-command)."""
    for dest, (flags, help_) in GLOBAL_OPTIONS.items():
        if not any(f in p._option_string_actions for f in flags):
            p.add_argument(*flags, dest=dest, action="store_true", default=argparse.SUPPRESS, help=help_)


def _share_global_options(parser: argparse.ArgumentParser) -> None:
    """Every sub-command (nested ones too) takes the global options; a sub-command leaves a value
    given before it alone (its own defaults are suppressed, so they cannot reset it)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for a in sub._actions:
                    if a.dest in GLOBAL_OPTIONS:
                        a.default = argparse.SUPPRESS
                add_common_args(sub)
                _share_global_options(sub)


def _check_device(args) -> None:
    """``--device cuda`` without faiss-gpu fails before the features are read and the models loaded."""
    if getattr(args, "device", None) == "cuda":
        from ..knn.search import _use_gpu
        _use_gpu("cuda")


def cmd_knn(args) -> int:
    _check_device(args)
    from ..knn import knn_search, save_knn
    out = Path(args.output)
    refuse_same_file(out, args.features)
    x = _features(args)
    t0 = time.perf_counter()
    from ..knn import resolve_method
    method = resolve_method(args.method, len(x), args.device)
    nbrs, sims = knn_search(x, args.k, method=method, device=args.device, nprobe=args.nprobe, nlist=args.nlist)
    save_knn(out, nbrs, sims)
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"n": int(len(x)), "k": int(nbrs.shape[1]), "method": method, "device": args.device,
                          "seconds": round(elapsed, 3), "output": str(out)}))
    logger.info("kNN of %d points (k=%d, %s) in %.1f s -> %s", len(x), args.k, method, elapsed, out)
    return 0


def _metrics_line(m: dict) -> str:
    return (f"pairwise P {m['pairwise_precision']:.4f} R {m['pairwise_recall']:.4f} F {m['pairwise_fscore']:.4f} | "
            f"BCubed P {m['bcubed_precision']:.4f} R {m['bcubed_recall']:.4f} F {m['bcubed_fscore']:.4f} | "
            f"NMI {m['nmi']:.4f} | n {m['n']} clusters {m['n_clusters']}")


def _threshold_arg(text: str):
    """``--threshold``: a number, ``auto`` or (gcn-v, gcn-ve, ada-nets) ``checkpoint``."""
    if text.strip().lower() in ("auto", "checkpoint"):
        return text.strip().lower()
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, 'auto' or 'checkpoint', got {text!r}") from None


def _engine_params(args) -> dict:
    """``--engine ray [--address ADDR] [--shards S]`` as estimator parameters; connects to Ray at once."""
    engine = getattr(args, "engine", "local")
    if engine != "ray":
        if args.address is not None or args.shards is not None:
            raise ClustergError("--address and --shards need --engine ray")
        return {}
    from ..cluster import CLUSTERERS, get_clusterer_class
    if "engine" not in get_clusterer_class(args.method)._param_names():
        takes = [m for m in CLUSTERERS if "engine" in get_clusterer_class(m)._param_names()]
        raise ClustergError(f"--engine ray: method {args.method!r} runs on one machine only; "
                            f"methods that run on Ray: {', '.join(takes)}")
    from ..distributed.engine import get_engine
    get_engine(args.address, args.shards)
    return {"engine": "ray", "address": args.address, "shards": args.shards}


def cmd_cluster(args) -> int:
    from ..cluster import make_clusterer
    from ..data.io import read_meta, write_meta
    from ..knn import load_knn
    from ..metrics import evaluate
    refuse_same_file(args.output, args.features, args.knn, args.labels)
    _check_device(args)
    dist = _engine_params(args)  # an unreachable --address fails here, before the features are read
    x = _features(args)
    gt = read_meta(args.labels) if args.labels else None
    if gt is not None and len(gt) != len(x):
        raise ClustergError(f"labels {args.labels} have {len(gt)} entries but there are {len(x)} features")
    if gt is not None and len(gt) and gt.min() < 0:  # found before the clustering, not after it
        raise ClustergError(f"labels {args.labels}: ground-truth labels must be >= 0, found {int(gt.min())} "
                            f"on line {int(np.argmin(gt)) + 1}")
    knn = load_knn(args.knn, n=len(x)) if args.knn else None
    params = dict(k=args.k, threshold=args.threshold, checkpoint=args.checkpoint, seed=args.seed,
                  knn_method=args.knn_method, n_clusters=args.n_clusters, device=args.device, linkage=args.linkage)
    params.update(dist)
    if args.domain_fallback is not None:
        if args.method != "auto":
            raise ClustergError("--domain-fallback applies to --method auto only")
        params["domain_fallback"] = args.domain_fallback == "on"
    model = make_clusterer(args.method, **{k: v for k, v in params.items() if v is not None})
    t0 = time.perf_counter()
    labels = model.fit_predict(x, knn=knn)
    elapsed = time.perf_counter() - t0
    result = {"method": args.method, "n": int(len(labels)), "n_clusters": int(labels.max() + 1) if len(labels) else 0,
              "seconds": round(elapsed, 3), "output": str(args.output), "params": _used_params(model)}
    if getattr(model, "method_", None):
        result["ran"] = model.method_  # what the auto pipeline chose
    chk = getattr(model, "domain_", None)
    if chk is not None:  # the packaged weights' domain test
        result["domain"] = {"statistic": round(chk.statistic, 4), "threshold": round(chk.threshold, 4),
                            "inside": chk.inside}
    if gt is not None:
        result.update(evaluate(gt, labels))  # scored before writing: a failure leaves no output
    write_meta(args.output, labels)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.method}: {result['n']} points -> {result['n_clusters']} clusters in {elapsed:.1f} s; "
              f"wrote {args.output}")
        if gt is not None:
            print(_metrics_line(result))
    return 0


def _used_params(model) -> dict:
    """Every parameter of the fitted ``model``, defaults resolved where the fit records them (``threshold_`` ...)."""
    out = {}
    for key, value in model.get_params().items():
        fitted = getattr(model, key + "_", None)
        value = fitted if fitted is not None and not callable(fitted) else value
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
    return out


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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``command`` (the sub-command about to run, if known) lets ``train`` load its trainers only
    when it is the one asked for."""
    parser = argparse.ArgumentParser(
        prog="clusterg", description="Cluster large sets of embeddings by learning on kNN graphs (PyG + faiss).",
        epilog="Run 'clusterg COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"clusterg {__version__}")
    for dest, (flags, help_) in GLOBAL_OPTIONS.items():
        parser.add_argument(*flags, dest=dest, action="store_true", default=False, help=help_)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("knn", help="build a kNN graph file (learn-to-cluster faiss_k_<k>.npz layout)")
    add_feature_args(p)
    p.add_argument("--k", type=int, default=80, help="neighbours per point, self included (default 80)")
    p.add_argument("--method", choices=["auto", "flat", "ivf", "hnsw", "ivf-gemm"], default="auto",
                   help="exact or approximate (ivf-gemm: list-major IVF with BLAS, fastest on CPU at large N); "
                        "default auto, as the clusterers: exact up to 200,000 points, ivf-gemm up to 6,291,456, hnsw above")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~4 sqrt(N))")
    p.add_argument("--nprobe", type=int, default=None, help="IVF lists visited per query (default 32)")
    p.add_argument("-o", "--output", required=True, help="output .npz")
    add_common_args(p)
    p.set_defaults(func=cmd_knn)

    from ..cluster import CLUSTERERS
    p = sub.add_parser("cluster", help="cluster features and write one label a line")
    add_feature_args(p)
    p.add_argument("--method", default="auto",
                   help=f"one of: {', '.join(CLUSTERERS)} (default auto: the recommended method for the data, "
                        f"Ada-NETS where packaged weights fit the features, else Infomap; every choice label-free)")
    p.add_argument("--k", type=int, default=None, help="neighbours per point, self included (method default)")
    p.add_argument("--threshold", type=_threshold_arg, default=None,
                   help="similarity threshold, or 'auto' (default: chosen from the data without labels); "
                        "gcn-v, gcn-ve and ada-nets also take 'checkpoint' (the model's own trained cut)")
    p.add_argument("--n-clusters", type=int, default=None, help="clusters, for kmeans")
    p.add_argument("--linkage", default=None,
                   help="final linkage: ada-nets cc | infomap (default: the checkpoint's choice); "
                        "hac average | single | complete (default average)")
    p.add_argument("--checkpoint", default=None, help="trained weights for learned methods")
    p.add_argument("--domain-fallback", choices=["on", "off"], default=None,
                   help="auto: on features unlike the packaged weights' training faces, run Infomap (on; "
                        "the default, fitted on tune sets: docs/defaults.rst) or Ada-NETS all the same with a "
                        "warning (off)")
    p.add_argument("--knn", default=None, help="precomputed kNN .npz for these features")
    p.add_argument("--knn-method", choices=["auto", "flat", "ivf", "hnsw", "ivf-gemm"], default=None,
                   help="kNN search (default auto: exact up to 200,000 points, ivf-gemm up to 6,291,456, hnsw above)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default) or ray: kNN, GCN-V inference and linkage on Ray "
                        '(pip install "clusterg[ray]"; knn-cc, gcn-v, ada-nets, auto)')
    p.add_argument("--address", default=None, help="Ray cluster for --engine ray: HOST:PORT, ray://HOST:PORT "
                                                    "or auto (default: start a local Ray)")
    p.add_argument("--shards", type=int, default=None, help="row shards for --engine ray (default: Ray's CPUs)")
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
            plugin = importlib.import_module(mod)
            if mod == "clusterg.cli.cmd_train":
                plugin.register(sub, load=command == "train")
            else:
                plugin.register(sub)
        except ImportError as e:  # an optional part that is not installed
            logger.debug("sub-command module %s not available: %s", mod, e)
        except Exception as e:  # a broken optional part must not take the other commands down with it
            logging.getLogger("clusterg").warning("sub-command module %s failed to load: %s: %s", mod,
                                                  type(e).__name__, e)
    _share_global_options(parser)
    return parser


def _command(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    from ._safety import Terminated, check_args, install_signal_handlers
    install_signal_handlers()  # SIGTERM unwinds like Ctrl-C: temporary outputs are removed
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(_command(argv))
        args = parser.parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while the modules load: no traceback
        print("clusterg: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("clusterg: terminated", file=sys.stderr)
        return 143
    quiet = getattr(args, "quiet", False) or is_quiet()  # --quiet, or CLUSTERG_QUIET=1 in the environment
    set_quiet(quiet)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="clusterg: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its "Loading faiss with AVX2 support" lines
    try:
        check_args(args)  # paths, outputs and numbers, before any work
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
    except Terminated:
        print("clusterg: terminated", file=sys.stderr)
        return 143
    except Exception as e:  # an unexpected failure: one line unless --debug
        if getattr(args, "debug", False):
            raise
        print(f"clusterg: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
