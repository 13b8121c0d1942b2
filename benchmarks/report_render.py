"""Render ``results.json`` (written by ``run_report.py``) as ``report.md`` plus PNG plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np

ORDER = ["knn-cc", "infomap", "dbscan", "hac", "kmeans", "gcn-v", "gcn-ve", "ada-nets",
         "sklearn-dbscan", "sklearn-hac", "faiss-kmeans"]


def _f(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        if np.isnan(v):
            return "nan"
        return f"{v:.{nd}f}"
    return str(v)


def _secs(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def _rate(v):
    if v is None:
        return "-"
    return f"{v / 1000:.1f}K" if v >= 1000 else f"{v:.0f}"


def _sorted_runs(runs: list[dict]) -> list[dict]:
    return sorted(runs, key=lambda r: ORDER.index(r["method"]) if r["method"] in ORDER else 99)


def _dataset_order(data: dict) -> list[str]:
    ds = data.get("datasets", {})
    real = [k for k in ds if ds[k].get("kind") == "real"]
    other = sorted((k for k in ds if ds[k].get("kind") != "real"), key=lambda k: ds[k]["n"])
    return real + other


def _earlier_graph(data: dict, key: str, r: dict) -> bool:
    """True when run ``r`` clustered another (earlier) kNN graph of ``key`` than the kNN stage table shows."""
    kr = data.get("knn", {}).get(key)
    if not kr or r.get("peer") or r.get("knn_seconds") is None or kr.get("seconds") is None:
        return False  # peers build no kNN graph
    if r.get("knn_method") == "flat" and kr.get("method") == "flat":
        return False  # exact either time: the same graph (recall 1), only timed in another run
    if r.get("knn_recall_at_k") is not None:
        return r["knn_recall_at_k"] != kr.get("recall_at_k") or abs(r["knn_seconds"] - kr["seconds"]) > 1e-3
    return abs(r["knn_seconds"] - kr["seconds"]) > 1e-3


EARLIER_GRAPH_NOTE = ("† clustered on an earlier kNN graph of this set than the one in the kNN stage table: the "
                      "kNN time shown is that graph's; its recall is not in results.json.")


def _table(data: dict, keys: list[str], real: bool) -> list[str]:
    head = ["set", "N", "D", "ids", "method", "threshold (how)", "pairwise P / R / F", "BCubed F", "NMI"]
    if real:
        head.append("Fp at CelebA-dev t")
    head += ["clusters", "kNN s", "fit s", "faces/s", "peak RSS GiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    runs = data["runs"]
    flagged = False
    for key in keys:
        d = data["datasets"][key]
        rs = _sorted_runs([r for k, r in runs.items() if k.split("|")[0] == key])
        for r in rs:
            name = r["method"] + (" (peer)" if r.get("peer") else "")
            if "error" in r:
                row = [key, str(d["n"]), str(d["d"]), str(d["ids"]), name, "-", f"failed: {r['error'][:80]}", "-",
                       "-"] + (["-"] if real else []) + ["-"] * 5
                lines.append("| " + " | ".join(row) + " |")
                continue
            thr = r.get("threshold")
            how = r.get("tuned", "-")
            thr_s = f"{thr:.4g} ({how})" if isinstance(thr, (int, float)) else how
            row = [key, str(d["n"]), str(d["d"]), str(d["ids"]), name, thr_s,
                   f"{_f(r.get('pairwise_precision'))} / {_f(r.get('pairwise_recall'))} / "
                   f"**{_f(r.get('pairwise_fscore'))}**",
                   _f(r.get("bcubed_fscore")), _f(r.get("nmi"))]
            if real:
                row.append(_f(r.get("dev_pairwise_f")) + (f" (t={r['dev_threshold']:.4g})"
                                                          if r.get("dev_threshold") is not None else ""))
            earlier = _earlier_graph(data, key, r)
            flagged = flagged or earlier
            row += [str(r.get("n_clusters", "-")), _secs(r.get("knn_seconds")) + (" †" if earlier else ""),
                    _secs(r.get("fit_seconds")), _rate(r.get("faces_per_s")), _f(r.get("peak_rss_gib"), 2)]
            lines.append("| " + " | ".join(row) + " |")
    if flagged:
        lines += ["", EARLIER_GRAPH_NOTE]
    return lines


def _knn_table(data: dict) -> list[str]:
    lines = ["| set | N | D | method | k | nlist / nprobe | seconds | queries/s | recall@k (sample) | peak RSS GiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    items = sorted(data.get("knn", {}).items(), key=lambda kv: kv[1].get("n", 0))
    for key, r in items:
        ivf = f"{r.get('nlist')} / {r.get('nprobe')}" if r.get("method") in ("ivf", "ivf-hnsw") else "-"
        rec = r.get("recall_at_k")
        rec_s = "exact" if r.get("method") == "flat" else (
            f"{rec:.4f} ({r.get('recall_sample')} q)" if rec is not None else "-")
        if "knn_cc_pairwise_f_ivf" in r and "knn_cc_pairwise_f_exact" in r:
            rec_s += (f"; knn-cc Fp {r['knn_cc_pairwise_f_ivf']:.4f} on this graph vs "
                      f"{r['knn_cc_pairwise_f_exact']:.4f} on exact")
        secs = _secs(r.get("seconds"))
        if r.get("stage_seconds"):
            secs += " (" + ", ".join(f"{a} {_secs(b)}" for a, b in r["stage_seconds"].items()) + ")"
        lines.append(f"| {key} | {r.get('n')} | {r.get('d')} | {r.get('method')} | {r.get('k')} | {ivf} | "
                     f"{secs} | {_rate(r['n'] / max(r['seconds'], 1e-9))} | {rec_s} | "
                     f"{_f(r.get('peak_rss_gib'), 2)} |")
    return lines


def _bench_knn_summary(data: dict) -> list[str]:
    info = data.get("extra", {}).get("bench_knn")
    if not info:
        return []
    return [f"- exact kNN, clusterg `knn_search` vs raw faiss `IndexFlatIP` on the same data and threads "
            f"(`benchmarks/bench_knn.py`, N={info.get('n')}, D={info.get('d')}, k={info.get('k')}): clusterg "
            f"{info['clusterg_s']:.2f} s, faiss {info['faiss_s']:.2f} s, **ratio {info['ratio']:.3f}** "
            f"(goal <= 1.05)."]


def _plots(data: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    sweeps = data.get("sweeps", {})
    # 1. F vs threshold on CelebA dev
    # dbscan with min_samples=1 keeps the same edges as knn-cc: its curve would hide under knn-cc's
    curves = [(m, sweeps.get(f"celeba-dev|{m}")) for m in ("knn-cc", "infomap", "hac", "sklearn-hac")]
    curves = [(m, s) for m, s in curves if s]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for m, s in curves:
            line, = ax.plot(s["threshold"], s["pairwise_f"], "-", label=f"{m} pairwise F")
            ax.plot(s["threshold"], s["bcubed_f"], "--", color=line.get_color(), label=f"{m} BCubed F")
        ax.set_xlabel("cosine similarity threshold")
        ax.set_ylabel("F-score")
        ax.set_title("CelebA dev (10,567 real dlib faces): F vs threshold", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        lo = min(min(s["threshold"]) for _, s in curves)
        ax.set_xlim(max(lo, 0.85), 1.0)
        fig.tight_layout()
        fig.savefig(out / "f_vs_threshold.png", dpi=110)
        plt.close(fig)
        made.append("f_vs_threshold.png")
    # 2. time vs N (log-log)
    runs = [r for r in data["runs"].values() if "error" not in r and not r.get("peer")]
    ds = data.get("datasets", {})
    series = {}
    for key, r in data.get("knn", {}).items():
        if key.split(" (")[0] in ds or key.startswith("synth-tune"):
            series.setdefault(f"kNN {r['method']} (D={r['d']})", []).append((r["n"], r["seconds"]))
    for r in runs:
        if r["method"] in ("knn-cc", "infomap", "gcn-v", "gcn-ve") and r["dataset"] in ds:
            series.setdefault(f"{r['method']} fit", []).append((ds[r["dataset"]]["n"], r["fit_seconds"]))
    flat = [(r["n"], r["seconds"], r["d"]) for r in data.get("knn", {}).values() if r.get("method") == "flat"]
    if series:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, pts in sorted(series.items()):
            pts = sorted(pts)
            ax.plot([p[0] for p in pts], [max(p[1], 1e-3) for p in pts], "o-", label=name, ms=4)
        xs = np.array([1e3, 6e6])
        if flat:
            n0, t0, d0 = max(flat)
            ax.plot(xs, t0 * (xs / n0) ** 2, ":", color="gray", label=f"N^2 through exact kNN at {n0:,} (D={d0})")
        ax.plot(xs, 1e-2 * xs / 1e4, "-.", color="lightgray", label="N (linear)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(1e-3, 1e5)
        ax.set_xlabel("faces N")
        ax.set_ylabel("wall seconds")
        ax.set_title("Time per stage vs N (this machine)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "time_vs_n.png", dpi=110)
        plt.close(fig)
        made.append("time_vs_n.png")
    # 3. cluster-size histograms vs ground truth
    hist = data.get("hist", {})
    panels = []
    for key in _dataset_order(data):
        hs = {m: hist.get(f"{key}|{m}") for m in ("knn-cc", "infomap", "gcn-v", "gcn-ve")}
        hs = {m: h for m, h in hs.items() if h}
        if hs and key in ("celeba-dev",) or (hs and ds[key].get("kind") == "synthetic"):
            panels.append((key, ds[key]["gt_hist"], hs))
    panels = panels[:3]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
        for ax, (key, gt, hs) in zip(axes[0], panels):
            nb = max(len(gt), *(len(h) for h in hs.values()))
            last = max([i for i, v in enumerate(gt) if v] + [i for h in hs.values() for i, v in enumerate(h) if v]) + 1
            nb = min(nb, last)
            w = 0.8 / (1 + len(hs))
            bins = np.arange(nb)
            ax.bar(bins - 0.4 + w / 2, (gt + [0] * nb)[:nb], w, label="ground truth", color="black")
            for j, (m, h) in enumerate(hs.items()):
                ax.bar(bins - 0.4 + w * (j + 1.5), (h + [0] * nb)[:nb], w, label=m)
            ax.set_xticks(bins)
            ax.set_xticklabels([f"{2**b}-{2**(b + 1) - 1}" if b else "1" for b in bins], rotation=45, fontsize=7)
            ax.set_yscale("log")
            ax.set_xlabel("cluster size")
            ax.set_ylabel("clusters")
            ax.set_title(key, fontsize=9)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "cluster_sizes.png", dpi=110)
        plt.close(fig)
        made.append("cluster_sizes.png")
    return made


def write_report(data: dict, out: Path) -> Path:
    from clusterg._atomic import atomic_open
    out.mkdir(parents=True, exist_ok=True)
    mach = data.get("machine", {})
    ds = data.get("datasets", {})
    keys = _dataset_order(data)
    real = [k for k in keys if ds[k].get("kind") == "real"]
    other = [k for k in keys if ds[k].get("kind") != "real"]
    L = ["# clusterg benchmark report", "",
         "Generated by `python benchmarks/run_report.py` from `results.json` in this folder; every number "
         "below was measured on the machine described here, in one process per part. Each set's kNN graph is "
         "built once (`kNN s`) and handed to every method; `fit s` is the method's `fit` on that graph alone. "
         "A `clusterg cluster` command also reads the features, builds its own graph and loads the checkpoint, "
         "so its wall time is larger than `fit s`. Rerunning a part replaces only its own rows.", "",
         "## Machine", "",
         f"- CPU: {mach.get('cpu')} ({mach.get('cores')} cores visible; faiss/torch threads: "
         f"{mach.get('torch_threads')}), RAM {mach.get('ram_gib')} GiB, GPU: "
         f"{'yes' if mach.get('cuda') else 'none'}",
         f"- {mach.get('platform')}, Python {mach.get('python')}",
         "- versions: " + ", ".join(f"{k} {mach.get(k)}" for k in
                                    ("clusterg", "numpy", "scipy", "faiss", "torch", "torch_geometric",
                                     "sklearn", "infomap") if mach.get(k)),
         f"- last run: {mach.get('last_run_utc')}. The cores were shared with other jobs while measuring, "
         "so times are upper bounds.", ""]
    goals = _bench_knn_summary(data)
    extra = data.get("extra", {})
    for key, v in sorted(extra.items()):
        if key.startswith("bcubed_seconds|"):
            n = int(key.split("|")[1])
            if n >= 1_000_000:
                goals.append(f"- BCubed F on {n:,} labels (noisy prediction, ~N/20 clusters): **{v:.2f} s** "
                             f"(goal < 2 s at 5.21M).")
    for key in other:
        for m in ("gcn-ve", "gcn-v"):
            r = data["runs"].get(f"{key}|{m}")
            if r and "error" not in r and ds[key]["n"] >= 500_000:
                goal = " (goal < 600 s for GCN-V+E at 584K)" if m == "gcn-ve" else ""
                recall = ("an earlier graph, recall not recorded" if _earlier_graph(data, key, r)
                          else f"recall@k {data['knn'][key].get('recall_at_k')}")
                goals.append(f"- {key} end to end with {m} ({r.get('knn_method')} kNN, {recall}): kNN "
                             f"{_secs(r['knn_seconds'])} s + {m} {_secs(r['fit_seconds'])} s = "
                             f"**{_secs(r['total_seconds'])} s**{goal}.")
    for key in other:
        r = data["runs"].get(f"{key}|knn-cc")
        if r and "error" not in r and ds[key]["n"] >= 1_000_000:
            kr = data["knn"].get(key, {})
            goals.append(f"- {key}: kNN ({kr.get('method')}, nlist {kr.get('nlist')}, nprobe {kr.get('nprobe')}, "
                         f"recall@{kr.get('k')} {kr.get('recall_at_k')} on {kr.get('recall_sample')} queries) "
                         f"{_secs(r['knn_seconds'])} s + knn-cc {_secs(r['fit_seconds'])} s = "
                         f"**{_secs(r['total_seconds'])} s**, peak RSS **{r['peak_rss_gib']:.1f} GiB** "
                         f"(machine: {mach.get('ram_gib')} GiB); pairwise F {r['pairwise_fscore']:.3f}.")
    for key, v in sorted(extra.items()):
        if key.startswith("synth_write|") and int(key.split("|")[1]) >= 500_000:
            _, n, d = key.split("|")
            goals.append(f"- generating the synthetic {int(n):,} x {d} set (streamed to disk): {_secs(v['seconds'])} s, "
                         f"peak RSS {v['peak_rss_gib']:.2f} GiB.")
    if goals:
        L += ["## Goals and headline numbers", ""] + goals + [""]
    if real:
        L += ["## Real data sets (../shared/data)", "",
              "kNN: exact (faiss flat, cosine); k = 20 (knn-cc, dbscan, hac), 50 (infomap), checkpoint's k "
              "for learned methods. `labels (best)` marks a threshold chosen with the labels of that set "
              "(the protocol of the data README's baseline: an upper bound); the `Fp at CelebA-dev t` "
              "column applies the threshold that is best on CelebA dev instead (label-free for the other "
              "dlib sets). k-means is given the true number of identities. Peers run in the same process.", ""]
        L += _table(data, real, real=True) + [""]
    if other:
        L += ["## Synthetic and MS1M sets", "",
              "Synthetic sets come from `clusterg.data.synth` (MS1M-like; see docs/synthetic.rst), seed 0, "
              "features memory-mapped from disk. Thresholds come from a separate 100K synthetic set "
              "(seed 1), so nothing is tuned on the evaluated labels.", ""]
        L += _table(data, other, real=False) + [""]
    if data.get("knn"):
        L += ["## kNN stage", "", "recall@k: share of the exact k neighbours (faiss flat) found, on a random "
              "sample of queries.", ""] + _knn_table(data) + [""]
    made = _plots(data, out)
    if made:
        L += ["## Plots", ""]
        captions = {"f_vs_threshold.png": "F-score vs similarity threshold on CelebA dev",
                    "time_vs_n.png": "Wall time per stage vs N (log-log)",
                    "cluster_sizes.png": "Cluster-size histograms vs ground truth"}
        L += [f"![{captions[m]}]({m})" + "\n" for m in made]
    notes = out / "notes.md"
    if notes.is_file():
        L += ["## Analysis", "", notes.read_text().strip(), ""]
    path = out / "report.md"
    with atomic_open(path) as f:
        f.write("\n".join(L) + "\n")
    # the same report for Sphinx (docs/benchmarks.rst includes it; .inc so it is no page of its own)
    with atomic_open(out / "report.rst.inc") as f:
        f.write(md_to_rst(L, image_prefix="/benchmarks/"))
    return path


def _inline(text: str) -> str:
    """Markdown inline code `x` -> reST ``x``; bold stays; bare * and | are escaped in cells."""
    import re
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def md_to_rst(lines: list[str], image_prefix: str = "") -> str:
    """The small Markdown subset this report uses (headings, bullets, tables, images) as reST."""
    import re
    out: list[str] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("# "):
            t = ln[2:].strip()
            out += [t, "=" * len(t), ""]
        elif ln.startswith("## "):
            t = ln[3:].strip()
            out += [t, "-" * len(t), ""]
        elif ln.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            rows = [[c.strip() for c in r.strip().strip("|").split("|")] for r in block
                    if not re.fullmatch(r"\|(\s*-+\s*\|)+", r.strip())]
            out += [".. list-table::", "   :header-rows: 1", ""]
            for r in rows:
                for j, c in enumerate(r):
                    cell = _inline(c) or "\\"
                    out.append(("   * - " if j == 0 else "     - ") + cell)
            out.append("")
            continue
        elif ln.startswith("!["):
            m = re.match(r"!\[(.*)\]\((.*)\)", ln)
            if m:
                out += [f".. figure:: {image_prefix}{m.group(2)}", "   :width: 90%", "", f"   {m.group(1)}", ""]
        else:
            out.append(_inline(ln))
        i += 1
    return "\n".join(out) + "\n"
