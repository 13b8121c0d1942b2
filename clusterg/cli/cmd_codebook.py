"""``clusterg codebook``: a NetVLAD codebook (pytorch-NetVlad's cluster mode).

Example::

    clusterg codebook local_desc.npy -k 64 -o centroids/vgg16_pitts30k_64_desc_cen.hdf5
"""
from __future__ import annotations

import argparse
import json
import time

__all__ = ["register", "cmd_codebook"]


def _load(args):
    import numpy as np

    from .._validate import ClustergError
    from ..data.io import load_features, read_meta
    path = str(args.descriptors)
    if path.lower().endswith(".npy"):
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise ClustergError(f"descriptors file not found: {path}") from None
        except Exception as e:  # broken or pickled files
            raise ClustergError(f"{path}: not a readable .npy file ({type(e).__name__}: {e})") from None
        if x.ndim not in (2, 3):
            raise ClustergError(f"{path}: expected shape (I, L, D) or (M, D), got {x.shape}")
    else:
        x = load_features(path, dim=args.dim)
    ids = read_meta(args.image_ids) if args.image_ids else None
    return x, ids


def cmd_codebook(args) -> int:
    from .._atomic import refuse_same_file
    from ..codebook import build_codebook, write_codebook
    refuse_same_file(args.output, args.descriptors, args.image_ids)
    x, ids = _load(args)
    t0 = time.perf_counter()
    cb = build_codebook(x, k=args.k, n_descriptors=args.n_descriptors, per_image=args.per_image, image_ids=ids,
                        niter=args.niter, seed=args.seed, normalize=not args.no_normalize, device=args.device)
    write_codebook(args.output, cb)
    elapsed = time.perf_counter() - t0
    out = {"k": cb.k, "dim": int(cb.centroids.shape[1]), "n_descriptors": int(len(cb.descriptors)),
           "alpha": cb.alpha, "seconds": round(elapsed, 3), "output": str(args.output)}
    if getattr(args, "json", False):
        print(json.dumps(out))
    else:
        print(f"codebook: {cb.k} centroids of dimension {out['dim']} from {out['n_descriptors']} descriptors, "
              f"alpha {cb.alpha:.2f}, in {elapsed:.1f} s; wrote {args.output}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "codebook", help="NetVLAD codebook: sample descriptors, faiss k-means, HDF5 (pytorch-NetVlad layout)",
        description="Sample local descriptors (per image), cluster them with faiss k-means and write an HDF5 "
                    "file with the datasets 'descriptors' and 'centroids' and the NetVLAD alpha as an attribute.")
    p.add_argument("descriptors", help=".npy (I, L, D) per image, or (M, D) features (.npy/.npz/.bin with --dim)")
    p.add_argument("--dim", type=int, default=None, help="feature dimension of a .bin file")
    p.add_argument("--image-ids", default=None, help=".meta: the image of each (M, D) row (for --per-image)")
    p.add_argument("-k", "--k", type=int, default=64, help="clusters (default 64)")
    p.add_argument("--n-descriptors", type=int, default=50_000, help="descriptors sampled (default 50000)")
    p.add_argument("--per-image", type=int, default=100, help="descriptors per sampled image (default 100)")
    p.add_argument("--niter", type=int, default=100, help="k-means iterations (default 100)")
    p.add_argument("--no-normalize", action="store_true", help="do not L2-normalise the descriptors")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="k-means on the GPU with cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, help="output .hdf5")
    p.set_defaults(func=cmd_codebook)
    return p
