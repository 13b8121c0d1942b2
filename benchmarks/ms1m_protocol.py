"""The MS1M clustering protocol in one command: train on part0, cluster part1/3/5/7/9, one table.

On real MS1M (learn-to-cluster layout: ``<root>/features/<split>.bin`` float32 N x 256,
``<root>/labels/<split>.meta``)::

    python benchmarks/ms1m_protocol.py --data-root data/ms1m --work runs/ms1m \\
        --out docs/benchmarks/ms1m_protocol.md

Without ``--data-root`` it first draws the synthetic stand-in with ``clusterg synth`` into
``<work>/data``: a part0-like training split (576,494 faces, 8,573 identities, its own seed)
and part1/3/5/7/9-like test splits (584,013 / 1.74M / 2.89M / 4.05M / 5.21M faces, 8,573 /
25,725 / 42,897 / 60,108 / 77,738 identities, other seeds). Then, each step a fresh
``clusterg`` process (so its time and peak RSS are its own):

1. ``clusterg train gcn-v``, ``gcn-e`` and ``ada-nets`` on part0 (bounded by ``--time-limit``
   seconds each; checkpoints in ``<work>/ckpt`` are reused unless ``--retrain``);
2. per test split, ``clusterg knn`` once (k=80, ``--knn-method``, default ``auto``: ivf-gemm above
   200,000 faces, HNSW above 6,291,456), learn-to-cluster's ``faiss_k_80.npz`` layout, timed as its own stage;
3. ``clusterg cluster --knn`` that file with every method of ``--methods``, scored against the
   split's labels; a run that fails (out of memory, time limit ``--run-limit``) is listed with
   its reason, and larger splits of that method are skipped;
4. a Markdown table in the published layout (pairwise / BCubed F per split, one row a
   method) plus the time and peak RSS of every stage (kNN, each clustering) and NMI, and the
   JSON of every run. Splits left out with ``--splits`` are listed as not run.

``--small`` runs the whole protocol on tiny splits (seconds to minutes): a smoke test.
Full size needs hours on 2 CPU cores; see ``docs/benchmarks/knn_gemm.md`` for what was run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: split -> (faces, identities, seed of the synthetic stand-in)
SPLITS = {
    "part0_train": (576_494, 8_573, 100),
    "part1_test": (584_013, 8_573, 1),
    "part3_test": (1_740_000, 25_725, 3),
    "part5_test": (2_890_000, 42_897, 5),
    "part7_test": (4_050_000, 60_108, 7),
    "part9_test": (5_210_000, 77_738, 9),
}
SMALL = {"part0_train": (3_000, 45, 100), "part1_test": (3_000, 45, 1), "part3_test": (6_000, 90, 3)}
METHODS = ["infomap", "gcn-v", "gcn-ve", "ada-nets", "auto"]
CKPT = {"gcn-v": "gcn_v.pt", "gcn-ve": "gcn_e.pt", "ada-nets": "ada_nets.pt"}


def _run(cmd: list[str], limit: float | None, log) -> dict:
    """Run ``cmd``; wall time, peak RSS (GiB, from wait4), exit status, last JSON line of stdout."""
    import tempfile
    log("$ " + " ".join(cmd))
    t = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True)
        timed_out = False
        while True:  # wait4 gives this child's own peak RSS
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if limit is not None and time.perf_counter() - t > limit and not timed_out:
                proc.kill()
                timed_out = True
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        rss = ru.ru_maxrss / 2**20
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    result = None
    for line in reversed(out.strip().splitlines()):
        try:
            result = json.loads(line)
            break
        except json.JSONDecodeError:
            continue
    return dict(cmd=cmd, rc=proc.returncode, timed_out=timed_out, seconds=wall, peak_rss_gib=rss, result=result,
                stderr_tail=err[-2000:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="MS1M protocol: train on part0, cluster part1..part9, one table")
    p.add_argument("--data-root", default=None, help="real MS1M folder; default: synthetic stand-in in WORK/data")
    p.add_argument("--work", default="runs/ms1m_protocol", help="working folder (data, checkpoints, predictions)")
    p.add_argument("--splits", default=",".join(s for s in SPLITS if s != "part0_train"))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--time-limit", type=float, default=3600, help="training seconds per model (default 3600)")
    p.add_argument("--run-limit", type=float, default=4 * 3600, help="seconds per clustering run")
    p.add_argument("--knn-method", default="auto",
                   help="kNN stage method (default auto: exact up to 200,000 faces, ivf-gemm up to 6,291,456, hnsw above)")
    p.add_argument("--gcn-e-epochs", type=int, default=None,
                   help="GCN-E training epochs (default: clusterg train's, the paper's 4)")
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--small", action="store_true", help="tiny splits: a smoke test of the whole protocol")
    p.add_argument("--out", default=None, help="Markdown table (JSON beside it)")
    a = p.parse_args(argv)
    py = [sys.executable, "-m", "clusterg"]
    work = Path(a.work)
    (work / "ckpt").mkdir(parents=True, exist_ok=True)
    (work / "pred").mkdir(parents=True, exist_ok=True)
    (work / "knn").mkdir(parents=True, exist_ok=True)
    splits_spec = SMALL if a.small else SPLITS
    splits = [s for s in a.splits.split(",") if s in splits_spec]
    methods = [m for m in a.methods.split(",") if m]
    if a.small:
        a.time_limit, a.run_limit = min(a.time_limit, 60), min(a.run_limit, 600)

    def log(msg):
        print(msg, flush=True)

    root = Path(a.data_root) if a.data_root else work / "data"
    report = dict(data_root=str(root), synthetic=a.data_root is None, small=a.small, train={}, knn={}, runs=[],
                  not_run=[s for s in splits_spec if s != "part0_train" and s not in splits])
    if a.data_root is None:
        for split in ["part0_train", *splits]:
            n, ids, seed = splits_spec[split]
            if not (root / "features" / f"{split}.bin").is_file():
                r = _run([*py, "synth", "--n", str(n), "--n-ids", str(ids), "--seed", str(seed), "--dim", "256",
                          "--split", split, "-o", str(root), "--json", "-q"], None, log)
                if r["rc"] != 0:
                    log(r["stderr_tail"])
                    return 1
    feats = lambda s: str(root / "features" / f"{s}.bin")  # noqa: E731
    meta = lambda s: str(root / "labels" / f"{s}.meta")  # noqa: E731
    ck = {m: work / "ckpt" / f for m, f in CKPT.items()}
    tl = str(int(a.time_limit))
    small_train = ["--epochs", "1"] if a.small else []
    jobs = [("gcn-v", ["train", "gcn-v", feats("part0_train"), "--labels", meta("part0_train"), "--dim", "256",
                       "--time-limit", tl, *small_train, "-o", str(ck["gcn-v"])]),
            ("gcn-ve", ["train", "gcn-e", feats("part0_train"), "--labels", meta("part0_train"), "--dim", "256",
                        "--gcn-v", str(ck["gcn-v"]), "--time-limit", tl, *small_train,
                        *(["--epochs", str(a.gcn_e_epochs)] if a.gcn_e_epochs and not a.small else []),
                        "-o", str(ck["gcn-ve"])]),
            ("ada-nets", ["train", "ada-nets", feats("part0_train"), "--labels", meta("part0_train"), "--dim", "256",
                          "--and-time", str(int(a.time_limit) // 2), "--gcn-time", str(int(a.time_limit) // 2),
                          "-o", str(ck["ada-nets"])])]
    for name, args in jobs:
        if name not in methods and not (name == "gcn-v" and "gcn-ve" in methods):
            continue
        if ck[name].is_file() and not a.retrain:
            report["train"][name] = dict(reused=str(ck[name]))
            continue
        r = _run([*py, *args, "--json"], None, log)
        report["train"][name] = r
        log(f"train {name}: rc {r['rc']} in {r['seconds']:.0f} s, peak RSS {r['peak_rss_gib']:.1f} GiB")
    failed: dict[str, str] = {}
    for split in splits:
        knn_file = work / "knn" / f"{split}.faiss_k_80.npz"
        if not knn_file.is_file():  # one kNN graph per split, shared by every method (its own stage)
            r = _run([*py, "knn", feats(split), "--dim", "256", "--k", "80", "--method", a.knn_method,
                      "-o", str(knn_file), "--json", "-q"], a.run_limit, log)
            report["knn"][split] = r
            log(f"{split} knn: rc {r['rc']} {r['seconds']:.0f} s {r['peak_rss_gib']:.1f} GiB")
            if r["rc"] != 0:
                for m in methods:
                    report["runs"].append(dict(split=split, method=m, skipped=f"the kNN stage failed (exit {r['rc']})"))
                continue
        else:
            report["knn"][split] = dict(reused=str(knn_file))
        for m in methods:
            if m in failed:
                report["runs"].append(dict(split=split, method=m, skipped=f"a smaller split failed: {failed[m]}"))
                continue
            args = [*py, "cluster", feats(split), "--dim", "256", "--method", m, "--labels", meta(split),
                    "--knn", str(knn_file), "--knn-method", a.knn_method,
                    "-o", str(work / "pred" / f"{split}.{m}.txt"), "--json", "-q"]
            if m in ck:
                args[4:4] = ["--checkpoint", str(ck[m])]
            r = _run(args, a.run_limit, log)
            r.update(split=split, method=m)
            report["runs"].append(r)
            if r["rc"] != 0:
                failed[m] = "time limit" if r["timed_out"] else f"exit {r['rc']}: {r['stderr_tail'][-200:]}"
            log(f"{split} {m}: rc {r['rc']} {r['seconds']:.0f} s {r['peak_rss_gib']:.1f} GiB {r['result']}")
    md = _table(report, splits, methods)
    print(md)
    if a.out:
        from clusterg._atomic import atomic_open
        with atomic_open(a.out, "w") as f:
            f.write(md)
        # the machine's own paths (interpreter, working folder) stay out of the published record
        text = json.dumps(report, indent=1, default=str)
        text = text.replace(json.dumps(sys.executable)[1:-1], "python").replace(json.dumps(str(work))[1:-1], "WORK")
        with atomic_open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            f.write(text)
    return 0


def _score(r: dict, key: str):
    res = r.get("result") or {}
    for k in (f"{key}_fscore", key, f"{key}_f", f"f_{key}"):
        if k in res:
            return res[k]
    return (res.get("metrics") or {}).get(key)


def _table(report: dict, splits: list[str], methods: list[str]) -> str:
    kind = "synthetic stand-in (clusterg synth)" if report["synthetic"] else "real data"
    lines = [f"# MS1M protocol ({kind}{', small smoke test' if report['small'] else ''})", "",
             "Pairwise F / BCubed F (%) per test split; training on part0_train.", "",
             "| Method | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    by = {(r["split"], r["method"]): r for r in report["runs"]}
    for m in methods:
        cells = []
        for s in splits:
            r = by.get((s, m), {})
            fp, fb = _score(r, "pairwise"), _score(r, "bcubed")
            if fp is None or fb is None:
                cells.append("skipped" if r.get("skipped") else ("failed" if r else "-"))
            else:
                scale = 100 if max(fp, fb) <= 1 else 1
                cells.append(f"{fp * scale:.2f} / {fb * scale:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if report.get("not_run"):
        lines += ["", "Not run: " + ", ".join(report["not_run"]) + " (left out with --splits)."]
    lines += ["", "kNN stage (k=80, one graph per split, shared by every method):", "",
              "| split | rc | seconds | peak RSS GiB |", "|---|---:|---:|---:|"]
    for s, r in report.get("knn", {}).items():
        lines.append(f"| {s} | reused | | |" if "reused" in r else
                     f"| {s} | {r['rc']} | {r['seconds']:.0f} | {r['peak_rss_gib']:.1f} |")
    lines += ["", "Clustering stage (given the kNN graph):", "",
              "| split | method | rc | seconds | peak RSS GiB | NMI |", "|---|---|---:|---:|---:|---:|"]
    for r in report["runs"]:
        if r.get("skipped"):
            lines.append(f"| {r['split']} | {r['method']} | skipped: {r['skipped']} | | | |")
            continue
        nmi = _score(r, "nmi")
        lines.append(f"| {r['split']} | {r['method']} | {r['rc']} | {r['seconds']:.0f} | {r['peak_rss_gib']:.1f} | "
                     f"{'' if nmi is None else f'{nmi:.4f}'} |")
    lines += ["", "Training:", ""]
    for name, r in report["train"].items():
        lines.append(f"- {name}: " + (f"reused {r['reused']}" if "reused" in r else
                                      f"rc {r['rc']}, {r['seconds']:.0f} s, peak RSS {r['peak_rss_gib']:.1f} GiB"))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
