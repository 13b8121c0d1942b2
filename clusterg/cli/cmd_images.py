"""``clusterg images``: cluster the faces in a JSON list of photos."""
from __future__ import annotations

import argparse

from .._validate import ClustergError

__all__ = ["register", "cmd_images"]


def cmd_images(args: argparse.Namespace) -> int:
    from ..images import FaceEmbedder, cluster_images
    if args.copy and not args.export_folders:
        raise ClustergError("--copy only applies with --export-folders DIR")
    embedder = FaceEmbedder(upsample=args.upsample, max_side=args.max_side or None, num_jitters=args.jitters)
    out = cluster_images(args.input, args.output, method=args.method, threshold=args.threshold, k=args.k,
                         all_faces=args.all_faces, export_folders=args.export_folders, copy=args.copy,
                         cache=False if args.no_cache else (args.cache or True), embedder=embedder, seed=args.seed,
                         checkpoint=args.checkpoint, quiet=args.quiet)
    n_ok = sum(1 for o in out if o["cluster_id"] >= 0)
    n_clusters = len({o["cluster_id"] for o in out if o["cluster_id"] >= 0})
    if not args.quiet:
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
                   help="clustering method, e.g. infomap, knn-cc, gcn-v (default: infomap when installed, "
                        "else knn-cc)")
    p.add_argument("--checkpoint", default=None, help="trained weights for a learned method (e.g. gcn-v)")
    p.add_argument("--threshold", type=float, default=None,
                   help="similarity threshold (default: infomap 0.90 + 0.013 log10(N), knn-cc 0.91 + 0.013 "
                        "log10(N) for N faces; other methods their own)")
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
    p.add_argument("--seed", type=int, default=0)
    add_common_args(p)
    p.set_defaults(func=cmd_images)
