"""``clusterg images``: cluster the faces in a JSON list of photos."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

from .._atomic import guard_output
from .._validate import ClustergError

__all__ = ["register", "cmd_images", "photo_paths", "cache_lock"]

logger = logging.getLogger("clusterg.cli")


def photo_paths(input_json: str | os.PathLike) -> list[Path]:
    """The photo files an ``images`` input lists (entries without a usable ``img_path`` skipped)."""
    from ..images.pipeline import _resolve, read_photo_list
    base = Path(input_json).resolve().parent
    return [p for p in (_resolve(e.get("img_path"), base) for e in read_photo_list(input_json)) if p is not None]


@contextlib.contextmanager
def cache_lock(cache: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on ``.<cache>.lock`` for the run, so that runs sharing one cache
    take turns: the second reads the first one's embeddings and writes their union (no run's
    embeddings are lost to a last-writer-wins rename). No-op without ``fcntl`` (Windows)."""
    if cache is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock = cache.with_name(f".{cache.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise ClustergError(f"cache {cache}: cannot create its lock file {lock} ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another run that uses the cache %s", cache)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def require_faces() -> None:
    """Fail at once, with the install hint, when the ``faces`` extra is missing (before any import or work)."""
    import importlib.util

    def absent(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):  # a broken or blocked module counts as missing
            return True
    missing = [m for m in ("dlib", "face_recognition_models", "PIL") if absent(m)]
    if missing:
        raise ClustergError(f"clusterg images needs the faces extra ({', '.join(missing)} not installed): "
                            f'pip install "clusterg[faces]"')


def cmd_images(args: argparse.Namespace) -> int:
    require_faces()
    from ..images import FaceEmbedder, cluster_images
    if args.copy and not args.export_folders:
        raise ClustergError("--copy only applies with --export-folders DIR")
    if args.no_cache and args.cache:
        raise ClustergError("--cache and --no-cache exclude each other")
    inp, out_path = Path(args.input), Path(args.output)
    # every photo is an input too: neither the output nor the cache may replace one (before any embedding)
    inputs = [inp, *photo_paths(inp)] + ([Path(args.checkpoint)] if args.checkpoint else [])
    guard_output(out_path, inputs)
    cache = None
    if not args.no_cache:
        cache = Path(args.cache) if args.cache else out_path.resolve().parent / f"{inp.name}.embeddings.npz"
        guard_output(cache, [*inputs, out_path], what="cache")
    embedder = FaceEmbedder(upsample=args.upsample, max_side=args.max_side or None, num_jitters=args.jitters)
    with cache_lock(cache):
        out = cluster_images(args.input, args.output, method=args.method, threshold=args.threshold, k=args.k,
                             all_faces=args.all_faces, export_folders=args.export_folders, copy=args.copy,
                             cache=False if cache is None else cache, embedder=embedder, seed=args.seed,
                             checkpoint=args.checkpoint, quiet=args.quiet, state=args.state,
                             same_photo=not args.no_same_photo, keep_ids=True if args.keep_ids else None)
    n_ok = sum(1 for o in out if o["cluster_id"] >= 0)
    n_clusters = len({o["cluster_id"] for o in out if o["cluster_id"] >= 0})
    if getattr(args, "json", False):
        import json
        print(json.dumps({"photos": len(out), "with_face": n_ok, "without_face": len(out) - n_ok,
                          "n_clusters": n_clusters, "output": str(args.output)}))
    elif not args.quiet:
        print(f"{len(out)} photos: {n_ok} with a face in {n_clusters} clusters, "
              f"{len(out) - n_ok} without; wrote {args.output}")
    return 0


def register(subparsers) -> None:
    """Add the ``images`` sub-command to the ``clusterg`` parser."""
    from .main import add_common_args
    p = subparsers.add_parser(
        "images", help="cluster the faces in a JSON list of photos ([{\"img_path\": ...}, ...])",
        description="Detect and embed the largest face of every photo (dlib), cluster the faces and write the "
                    "list back with a cluster_id per photo (-1 and a reason when there is no usable face). "
                    "Needs: pip install \"clusterg[faces]\".")
    p.add_argument("input", help="JSON list of objects with img_path (relative to the JSON's folder or absolute)")
    p.add_argument("-o", "--output", required=True, help="output JSON (never the input)")
    p.add_argument("--method", default=None,
                   help="clustering method, e.g. auto, ada-nets, infomap, knn-cc, gcn-v (default: auto, the "
                        "recommended pipeline: Ada-NETS for the 128-d dlib faces, label-free Infomap otherwise)")
    p.add_argument("--checkpoint", default=None, help="trained weights for a learned method (e.g. gcn-v)")
    p.add_argument("--threshold", type=float, default=None,
                   help="similarity threshold (default: chosen from the data for auto; infomap 0.90 + 0.013 "
                        "log10(N), knn-cc 0.91 + 0.013 log10(N) for N faces; other methods their own)")
    p.add_argument("--k", type=int, default=None, help="neighbours per face, self included (clamped to N)")
    p.add_argument("--all-faces", action="store_true",
                   help="cluster every face, listing them under 'faces' with their boxes")
    p.add_argument("--export-folders", metavar="DIR", default=None,
                   help="also make one folder per cluster with links to the photos (DIR must be new or empty)")
    p.add_argument("--copy", action="store_true", help="with --export-folders: copy photos instead of linking")
    p.add_argument("--cache", metavar="NPZ", default=None,
                   help="embedding cache file (default: INPUT.json.embeddings.npz in the output's folder)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write an embedding cache")
    p.add_argument("--upsample", type=int, default=1, help="face detector up-sampling, 0-3 (default 1)")
    p.add_argument("--max-side", type=int, default=1024,
                   help="detect faces on a copy at most this many pixels wide/high (default 1024; 0 = full size)")
    p.add_argument("--jitters", type=int, default=0, help="dlib descriptor jitters (default 0)")
    p.add_argument("--state", metavar="DIR", default=None,
                   help="clustering state folder: made by the first run, then updated; later runs embed and "
                        "assign only photos it does not hold, and keep cluster ids and corrections "
                        "(see 'clusterg people')")
    p.add_argument("--keep-ids", action="store_true",
                   help="with --state: a large batch of new photos never moves an earlier face to another "
                        "cluster id (only reported merges), at some cost in quality (docs/library.rst); "
                        "kept in the state")
    p.add_argument("--no-same-photo", action="store_true",
                   help="with --all-faces: allow two faces of one photo in one cluster (default: kept apart)")
    p.add_argument("--seed", type=int, default=0)
    add_common_args(p)
    p.set_defaults(func=cmd_images)
