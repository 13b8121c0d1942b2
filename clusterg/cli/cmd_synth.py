"""``clusterg synth``: write an MS1M-like synthetic face set in the MS1M layout.

Example (the 5.21M benchmark part, streamed in 200K-face chunks)::

    clusterg synth --n 5210000 --dim 256 --seed 0 -o /tmp/ms1m_synth --split part9_test
"""
from __future__ import annotations

import argparse
import json
import logging
import time

from .._validate import ClustergError

logger = logging.getLogger("clusterg.cli")


def cmd_synth(args) -> int:
    from ..data.synth import write_synth
    if args.n is None or args.n < 2:
        raise ClustergError(f"--n: need at least 2 faces, got {args.n}")
    t0 = time.perf_counter()
    out = write_synth(args.output, n=args.n, dim=args.dim, seed=args.seed, split=args.split,
                      chunk=args.chunk, n_ids=args.n_ids)
    elapsed = time.perf_counter() - t0
    feats = out / "features" / f"{args.split}.bin"
    meta = out / "labels" / f"{args.split}.meta"
    if args.json:
        print(json.dumps({"n": args.n, "dim": args.dim, "seed": args.seed, "split": args.split,
                          "features": str(feats), "labels": str(meta), "seconds": round(elapsed, 3)}))
    elif not args.quiet:
        print(f"wrote {args.n} x {args.dim} synthetic faces in {elapsed:.1f} s: {feats} and {meta}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth", help="write an MS1M-like synthetic face set (features/<split>.bin + labels/<split>.meta)",
        description="Draw long-tailed identities of unit vectors in a narrow cone (see docs/synthetic.rst) "
                    "and stream them to DIR in the MS1M layout. The same arguments give identical files.")
    p.add_argument("--n", type=int, required=True, help="number of faces (e.g. 584013, 5210000)")
    p.add_argument("--dim", type=int, default=256, help="feature dimension (default 256, as MS1M)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-ids", type=int, default=None, help="identities (default round(n / 68), as MS1M)")
    p.add_argument("--split", default="part1_test", help="file stem of the split (default part1_test)")
    p.add_argument("--chunk", type=int, default=200_000, help="faces held in memory at once (default 200000)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or messages")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    p.set_defaults(func=cmd_synth)
    return p
