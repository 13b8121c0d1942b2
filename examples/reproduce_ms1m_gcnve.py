"""Reproduce GCN-V and GCN-V + GCN-E (Yang et al., CVPR 2020) on MS1M.

Trains on ``part0_train`` and clusters ``part1_test`` ... ``part9_test`` in the
learn-to-cluster layout (``<data-root>/features/<split>.bin`` raw float32,
``<data-root>/labels/<split>.meta``), then prints pairwise / BCubed F beside
the published numbers. Splits that are absent are skipped.

    python examples/reproduce_ms1m_gcnve.py --data-root data/ms1m \
        [--config examples/configs/gcnve_ms1m.json] [--work-dir runs/ms1m] [--results results.json]

Checkpoints in ``--work-dir`` are reused (``--retrain`` trains again); an
interrupted training run resumes from its last epoch. ``--small`` runs the whole
pipeline on a tiny synthetic set in the same layout (a smoke test, seconds).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from clusterg import ClustergError, set_quiet
from clusterg._atomic import atomic_open
from clusterg.cluster.gcn_v import GCNVClusterer, GCNVEClusterer
from clusterg.data.io import read_bin, read_meta
from clusterg.knn import knn_search
from clusterg.metrics import evaluate
from clusterg.train.checkpoint import load_checkpoint
from clusterg.train.gcn_e import train_gcn_e
from clusterg.train.gcn_v import train_gcn_v

HERE = Path(__file__).resolve().parent

#: methods.md section 2.1: pairwise F / BCubed F (%) with part0_train as training set.
PAPER = {
    "part1_test": {"gcn-v": (87.14, 85.81), "gcn-ve": (87.93, 86.09)},
    "part3_test": {"gcn-v": (83.49, 82.63), "gcn-ve": (84.04, 82.84)},
    "part5_test": {"gcn-v": (81.51, 81.05), "gcn-ve": (82.10, 81.24)},
    "part7_test": {"gcn-v": (79.97, 79.92), "gcn-ve": (80.45, 80.09)},
    "part9_test": {"gcn-v": (78.77, 79.08), "gcn-ve": (79.30, 79.25)},
}


def load_split(root: Path, split: str, dim: int):
    feats, meta = root / "features" / f"{split}.bin", root / "labels" / f"{split}.meta"
    if not feats.is_file() or not meta.is_file():
        return None
    return np.asarray(read_bin(feats, dim=dim)), read_meta(meta)


def _finished(path: Path, model: str) -> bool:
    if not path.is_file():
        return False
    blob = load_checkpoint(path, model=model)
    ts = blob.get("train_state") or {}
    return int(ts.get("epoch", 0)) >= int(blob["config"]["epochs"])


def train(cfg: dict, root: Path, work: Path, retrain: bool) -> tuple[Path, Path, dict]:
    data = load_split(root, cfg["train_split"], cfg["dim"])
    if data is None:
        raise ClustergError(f"training split {cfg['train_split']} not found under {root}")
    x, y = data
    v_path, e_path = work / "gcn_v.pt", work / "gcn_e.pt"
    times = {}
    if retrain or not _finished(v_path, "gcn-v"):
        resume = v_path if v_path.is_file() and not retrain else None
        t = time.time()
        train_gcn_v(x, y, out=v_path, resume=resume, meta={"trained_on": cfg["train_split"]}, **cfg["gcn_v"])
        times["gcn_v_train_s"] = round(time.time() - t, 1)
    if retrain or not _finished(e_path, "gcn-e"):
        resume = e_path if e_path.is_file() and not retrain and e_path.stat().st_mtime > v_path.stat().st_mtime \
            else None
        t = time.time()
        train_gcn_e(x, y, v_path, out=e_path, resume=resume, meta={"trained_on": cfg["train_split"]},
                    **cfg["gcn_e"])
        times["gcn_e_train_s"] = round(time.time() - t, 1)
    return v_path, e_path, times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, default=None, help="folder with features/ and labels/")
    ap.add_argument("--small", action="store_true",
                    help="run on a tiny synthetic MS1M-layout set with a tiny config (smoke test)")
    ap.add_argument("--config", type=Path, default=HERE / "configs" / "gcnve_ms1m.json")
    ap.add_argument("--work-dir", type=Path, default=Path("runs") / "gcnve_ms1m")
    ap.add_argument("--results", type=Path, default=None, help="write the scores as JSON here")
    ap.add_argument("--retrain", action="store_true", help="train again even if checkpoints exist")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.quiet:
        set_quiet(True)
    if args.small:
        return _small(args)
    if args.data_root is None:
        ap.error("--data-root is required (or --small for the synthetic smoke run)")
    return run(args)


def _small(args) -> int:
    """Tiny synthetic part0_train / part1_test (dim 32) and a CPU-seconds config."""
    from clusterg.data.synth import write_synth
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ms1m"
        write_synth(root, n=600, dim=32, n_ids=60, seed=0, split="part0_train")
        write_synth(root, n=400, dim=32, n_ids=40, seed=1, split="part1_test")
        cfg = json.loads(args.config.read_text())
        cfg.update(dim=32, test_splits=["part1_test"])
        cfg["gcn_v"].update(k=10, hidden=32, epochs=5, batch_size=128)
        cfg["gcn_e"].update(k=10, dims=[16, 16, 16, 16], epochs=1, batch_graphs=64)
        small_cfg = Path(tmp) / "small.json"
        small_cfg.write_text(json.dumps(cfg))
        args.data_root, args.config, args.work_dir = root, small_cfg, Path(tmp) / "run"
        return run(args)


def run(args) -> int:
    cfg = json.loads(args.config.read_text())
    args.work_dir.mkdir(parents=True, exist_ok=True)
    v_path, e_path, times = train(cfg, args.data_root, args.work_dir, args.retrain)

    rows, results = [], {"config": str(args.config), "times": times, "splits": {}}
    for split in cfg["test_splits"]:
        data = load_split(args.data_root, split, cfg["dim"])
        if data is None:
            print(f"{split}: not found under {args.data_root}, skipped")
            continue
        x, y = data
        t = time.time()
        knn = knn_search(x, max(cfg["gcn_v"]["k"], cfg["gcn_e"]["k"]) if cfg["gcn_e"]["feature"] != "gcn"
                         else cfg["gcn_v"]["k"])
        t_knn = time.time() - t
        res = {"n": len(x), "knn_s": round(t_knn, 1)}
        for name, est in (("gcn-v", GCNVClusterer(checkpoint=v_path, **cfg["test"]["gcn_v"])),
                          ("gcn-ve", GCNVEClusterer(checkpoint=e_path, **cfg["test"]["gcn_ve"]))):
            t = time.time()
            lab = est.fit_predict(x, knn=knn)
            ev = evaluate(y, lab)
            res[name] = {"fp": ev["pairwise_fscore"], "fb": ev["bcubed_fscore"], "nmi": ev["nmi"],
                         "time_s": round(time.time() - t + t_knn, 1)}
            paper = PAPER.get(split, {}).get(name, (float("nan"), float("nan")))
            rows.append((split, len(x), name, 100 * ev["pairwise_fscore"], 100 * ev["bcubed_fscore"], *paper,
                         res[name]["time_s"]))
        results["splits"][split] = res

    print(f"\n{'split':<12} {'N':>9} {'method':<7} {'Fp ours':>8} {'Fb ours':>8} {'Fp paper':>9} {'Fb paper':>9} "
          f"{'time s':>7}")
    for split, n, name, fp, fb, pfp, pfb, ts in rows:
        print(f"{split:<12} {n:>9} {name:<7} {fp:>8.2f} {fb:>8.2f} {pfp:>9.2f} {pfb:>9.2f} {ts:>7.1f}")
    if times:
        print("training time: " + ", ".join(f"{k} {v} s" for k, v in times.items()))
    if args.results:
        with atomic_open(args.results) as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ClustergError as e:
        print(f"reproduce_ms1m_gcnve: error: {e}", file=sys.stderr)
        sys.exit(2)
