"""Incremental assignment against a batch re-run: the quality table of ``docs/library.rst``.

For each real set a library is built from the faces left after holding out 1 %, 10 % or 50 %
of them (seeded permutation, as ``tests/test_library.py``), the held-out faces are added in one
:meth:`~clusterg.library.ClusterState.add`, and the pairwise F of all labels is compared with a
batch run of the same method (Infomap, threshold 0.95, ``k=20``) on all faces. Four modes:

* ``default``: the state's defaults (votes inside a joint run on the new faces and their kNN;
  a re-run of every face when one call adds at least ``REBUILD_FROM`` faces per library face);
* ``keep-ids``: as ``default``, but such a batch is placed by one batch run over every face and
  existing ids change only through reported merges (``keep_ids=True``);
* ``joint``: the joint run, never a re-run (``rebuild_from=None``);
* ``votes``: votes alone (``joint=False, rebuild_from=None``; the assignment before the joint run).

``moved`` counts the existing faces whose id changed other than through a reported merge.

The ``tuning`` section holds the runs on the CelebA ``train`` split that chose ``REBUILD_FROM``
(four identity-disjoint quarters of it, identities ``y % 4``, each about the size of dev; the
first two are used): ``joint``, ``votes``, and ``placed`` (every call placed as ``keep-ids``
places a large batch, whatever its size). Run (writes the JSON the docs table and
``tests/test_library.py`` are checked against; about 4 minutes on 2 cores)::

    python benchmarks/library_incremental.py -o docs/benchmarks/library_incremental.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clusterg._atomic import atomic_open  # noqa: E402

COMMAND = "python benchmarks/library_incremental.py -o docs/benchmarks/library_incremental.json"
SETS = {"celeba-dev": ("celeba", "dev"), "celeba6k": ("celeba6k", "all"), "pins14": ("pins14", "all")}
FRACS = (0.01, 0.1, 0.5)
TUNE_FRACS = (0.01, 0.1, 0.2, 0.3, 0.5)
MODES = {"default": {}, "keep-ids": {"keep_ids": True}, "joint": {"rebuild_from": None},
         "votes": {"joint": False, "rebuild_from": None}}
#: tuning only: every call placed by one batch run over every face, whatever its size
PLACED = {"rebuild_from": 1e-9, "keep_ids": True}
METHOD = {"method": "infomap", "threshold": 0.95, "k": 20}


def split(n: int, frac: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(library rows, added rows)``: ``round(frac n)`` rows (at least 1) held out by a seeded permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    m = max(1, int(round(frac * n)))
    return np.sort(perm[m:]), perm[:m]


def _data_root() -> Path:
    env = os.environ.get("CLUSTERG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _load(name: str, split_name: str):
    from clusterg.data import MS1MDataset
    ds = MS1MDataset(_data_root() / name, split_name, dim=128)
    return np.asarray(ds.x), np.asarray(ds.y)


def incremental(x, y, frac: float, full=None, **mode) -> dict:
    """Build a library without ``frac`` of the faces, add them in one call; scores and what happened.

    ``library_f``: the library's own clustering on its faces; ``full_on_library_f``: the batch
    run on all faces (labels ``full``, when given) restricted to the library's faces.
    """
    from clusterg.library import ClusterState
    from clusterg.metrics import pairwise
    base, add = split(len(x), frac)
    st = ClusterState.build(x[base], **METHOD, **mode)
    extra = {"library_f": round(float(pairwise(y[base], st.labels)[2]), 4)}
    if full is not None:
        extra["full_on_library_f"] = round(float(pairwise(y[base], full[base])[2]), 4)
    before = st.labels.copy()
    t = time.perf_counter()
    res = st.add(x[add])
    p, r, f = pairwise(np.concatenate([y[base], y[add]]), st.labels)
    for m in res.merged:  # ids an existing face may change to: only through a reported merge
        before[np.isin(before, m["ids"])] = m["into"]
    return {"f": round(float(f), 4), "precision": round(float(p), 4), "recall": round(float(r), 4),
            "added": int(len(add)), "library": int(len(base)), "merges": len(res.merged),
            "rebuilt": bool(res.rebuilt), "moved": int((st.labels[:len(base)] != before).sum()),
            "add_s": round(time.perf_counter() - t, 2), **extra}


def batch(x, y) -> tuple[float, np.ndarray]:
    """Pairwise F and labels of the batch run on all faces."""
    from clusterg.library import ClusterState
    from clusterg.metrics import pairwise
    labels = ClusterState.build(x, **METHOD).labels
    return round(float(pairwise(y, labels)[2]), 4), labels


def run(sets=tuple(SETS), tune: bool = True) -> dict:
    from clusterg.library import REBUILD_FROM
    out: dict = {"command": COMMAND, "method": METHOD, "rebuild_from": REBUILD_FROM,
                 "protocol": "library = all faces but frac of them (seeded permutation, seed 0); the held-out "
                             "faces added in one call; pairwise F of all labels", "sets": {}, "tuning": {}}
    for name in sets:
        x, y = _load(*SETS[name])
        f, full = batch(x, y)
        row = {"n": int(len(x)), "batch_f": f, "fracs": {}}
        for frac in FRACS:
            row["fracs"][str(frac)] = {mode: incremental(x, y, frac, full, **kw) for mode, kw in MODES.items()}
        out["sets"][name] = row
        print(name, row["batch_f"], {f: {m: v["f"] for m, v in r.items()} for f, r in row["fracs"].items()},
              flush=True)
    if tune:
        xt, yt = _load("celeba", "train")
        for q in (0, 1):
            keep = yt % 4 == q
            x, y = xt[keep], yt[keep]
            f, full = batch(x, y)
            row = {"n": int(len(x)), "batch_f": f, "fracs": {}}
            for frac in TUNE_FRACS:
                row["fracs"][str(frac)] = {mode: incremental(x, y, frac, full, **MODES[mode])
                                           for mode in ("joint", "votes")}
                row["fracs"][str(frac)]["placed"] = incremental(x, y, frac, full, **PLACED)
            out["tuning"][f"train-q{q}"] = row
            print(f"train-q{q}", row["batch_f"],
                  {f: {m: v["f"] for m, v in r.items()} for f, r in row["fracs"].items()}, flush=True)
    return out


TIMING_FILE = REPO / "docs" / "benchmarks" / "incremental_timing.json"


def timing_rows(bench_json: dict) -> list[tuple[int, float | None, float | None]]:
    """``(N, ms/face flat, ms/face hnsw)`` from the pytest-benchmark JSON of ``bench_incremental.py -k ratio``."""
    info = next(b["extra_info"] for b in bench_json["benchmarks"] if b["name"] == "test_per_face_cost_ratio")
    by: dict[int, dict[str, float]] = {}
    for key, ms in info.items():
        if not key.endswith("_ms_per_face"):
            continue
        kind, n, *_ = key.split("_")
        by.setdefault(int(n), {})[kind] = float(ms)
    return [(n, by[n].get("flat"), by[n].get("hnsw")) for n in sorted(by)]


def timing_table(bench_json: dict) -> str:
    """The RST table of ``docs/library.rst``: milliseconds per added face (and the ratio to the smallest N)."""
    rows = timing_rows(bench_json)
    base = {i: next((r[i] for r in rows if r[i] is not None), None) for i in (1, 2)}

    def cell(i, v):
        return "(not run)" if v is None else f"{v:.2f} (x{v / base[i]:.2f})"

    line = "=========  ====================  ===================="
    out = [line, "faces N    exact, ms per face    HNSW, ms per face", line]
    out += [f"{n:<9,}  {cell(1, f):<20}  {cell(2, h)}".rstrip() for n, f, h in rows]
    return "\n".join(out + [line])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=str(REPO / "docs" / "benchmarks" / "library_incremental.json"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--no-tuning", action="store_true", help="skip the CelebA train runs")
    args = ap.parse_args(argv)
    from clusterg._progress import set_quiet
    set_quiet(True)
    res = run([s for s in args.sets.split(",") if s], tune=not args.no_tuning)
    with atomic_open(args.output, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print("wrote", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
