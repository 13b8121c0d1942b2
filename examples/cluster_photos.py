"""Cluster a folder of photos by person, then score the result if the true identities are known.

    python examples/cluster_photos.py                      # the 48 test photos in ../shared/data
    python examples/cluster_photos.py --small              # 12 of them (2 per person, 6 people)
    python examples/cluster_photos.py --input photos.json --out-dir runs/photos

The input is a JSON list ``[{"img_path": ...}, ...]``; with ``--truth`` (a JSON object
mapping each ``img_path`` to an identity) the pairwise and BCubed F are printed.
Writes ``clusters.json``, the embedding cache and a ``review/`` folder with one
sub-folder of links per cluster into ``--out-dir`` (a temporary folder by default;
a rerun into the same folder reuses the cached embeddings).

Needs ``pip install "clusterg[faces]"``. Exits with status 77 (skipped) when the
default photos or the faces extra are missing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SKIPPED = 77
REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    root = Path(os.environ["CLUSTERG_DATA"]) if os.environ.get("CLUSTERG_DATA") else REPO.parent / "shared" / "data"
    return root / "face-images"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, default=None, help="JSON list of photos (default: the shared test photos)")
    ap.add_argument("--truth", type=Path, default=None, help="JSON {img_path: identity} to score against")
    ap.add_argument("--small", action="store_true", help="only 2 photos of each of 6 people (a few seconds)")
    ap.add_argument("--method", default=None, help="clustering method (default: infomap, else knn-cc)")
    ap.add_argument("--all-faces", action="store_true", help="cluster every face, not only the largest")
    ap.add_argument("--out-dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    args = ap.parse_args(argv)

    try:
        import dlib  # noqa: F401
    except ImportError:
        print('skipped: the faces extra is not installed (pip install "clusterg[faces]")')
        return SKIPPED
    from clusterg import set_quiet
    from clusterg.images import cluster_images
    from clusterg.metrics import evaluate

    inp, truth_path = args.input, args.truth
    if inp is None:
        inp = default_data() / "input.json"
        truth_path = truth_path or default_data() / "identities.json"
        if not inp.is_file():
            print(f"skipped: {inp} not found (set CLUSTERG_DATA or pass --input)")
            return SKIPPED
    truth = json.loads(truth_path.read_text()) if truth_path and truth_path.is_file() else None

    tmp = None
    out_dir = args.out_dir
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="clusterg-photos-")
        out_dir = Path(tmp.name)
    out_dir.mkdir(parents=True, exist_ok=True)

    if args.small:  # 2 photos of each of the first 6 people, paths made absolute, listed beside the output
        items = json.loads(inp.read_text())
        groups: dict = {}
        for i, it in enumerate(items):
            ident = truth.get(it["img_path"], f"#{i}") if truth else f"#{i}"
            if ident in groups or len(groups) < 6:
                groups.setdefault(ident, [])
                if len(groups[ident]) < 2:
                    groups[ident].append(dict(it, img_path=str((inp.parent / it["img_path"]).resolve()),
                                              key=it["img_path"]))
        inp = out_dir / "small_input.json"
        inp.write_text(json.dumps([it for g in groups.values() for it in g], indent=1))

    review = out_dir / "review"
    if review.exists() and any(review.iterdir()):
        print(f"{review} exists from an earlier run; not exporting folders again")
        review = None
    set_quiet(False)
    t0 = time.perf_counter()
    out = cluster_images(inp, out_dir / "clusters.json", method=args.method, all_faces=args.all_faces,
                         export_folders=review)
    elapsed = time.perf_counter() - t0
    ok = [o for o in out if o["cluster_id"] >= 0]
    print(f"{len(out)} photos -> {len({o['cluster_id'] for o in ok})} clusters "
          f"({len(out) - len(ok)} without a usable face) in {elapsed:.1f} s")
    for o in out:
        if o["cluster_id"] < 0:
            print(f"  {o['img_path']}: {o['reason']}")
    if truth is not None and ok:
        keys = [o.get("key", o["img_path"]) for o in ok]
        scored = [(truth[k], o["cluster_id"]) for k, o in zip(keys, ok) if k in truth]
        if scored:
            m = evaluate([s[0] for s in scored], [s[1] for s in scored])
            print(f"pairwise F {m['pairwise_fscore']:.3f} (P {m['pairwise_precision']:.3f}, "
                  f"R {m['pairwise_recall']:.3f}); BCubed F {m['bcubed_fscore']:.3f}; "
                  f"{m['n_clusters']} clusters for {len({s[0] for s in scored})} people")
    print(f"wrote {out_dir / 'clusters.json'}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
