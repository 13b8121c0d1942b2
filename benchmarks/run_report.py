"""Run the clusterg benchmark suite and write ``docs/benchmarks/report.md`` with its plots.

One command, several parts; each part merges its measurements into
``<out>/results.json`` and rewrites the report from everything measured so far,
so the large parts can run one at a time (each under a time limit)::

    python benchmarks/run_report.py --real                         # the real sets in ../shared/data
    python benchmarks/run_report.py --synth 100000                 # synthetic 100K (exact kNN)
    python benchmarks/run_report.py --synth 584013 --knn-method ivf
    python benchmarks/run_report.py --synth 5210000 --dim 256 --knn-method ivf --methods knn-cc
    python benchmarks/run_report.py --ms1m-root /data/ms1m --ms1m-parts part1_test   # real MS1M, if you have it
    python benchmarks/run_report.py --report-only                  # re-render report.md and the PNGs

Options that matter: ``--work-dir`` (synthetic sets are generated there once and
reused; default ``$TMPDIR/clusterg-bench``, never inside the repository),
``--device cuda`` (faiss-gpu and CUDA torch, when present), ``--k``,
``--nlist``/``--nprobe`` for IVF, ``--threads``. MS1M parts are looked up under
``--ms1m-root`` or ``$CLUSTERG_MS1M_ROOT`` in the MS1M layout
(``features/part1_test.bin`` 256-d, ``labels/part1_test.meta``).

Per run it records pairwise / BCubed F, NMI, wall time per stage (kNN, fit =
model + linkage, and the stage timings a clusterer exposes in ``timings_``),
peak resident memory per stage (sampled from ``/proc/self/status``), and faces/s.
Thresholds: on the real sets the best of a sweep chosen **with the labels** (the
protocol of the data README's baseline) next to the threshold found on CelebA
``dev`` (label-free for the other dlib sets); on synthetic sets they are tuned
on a separate 100K synthetic set drawn with another seed; learned methods use
their checkpoint's values.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import logging
import math
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks"
log = logging.getLogger("clusterg.bench")

# name -> (folder, split, dim): the real sets of ../shared/data (see its README)
REAL_SETS = {
    "celeba-dev": ("celeba", "dev", 128),
    "celeba6k": ("celeba6k", "all", 128),
    "orl": ("orl", "all", 128),
    "yale": ("yale", "all", 128),
    "umist": ("umist", "all", 128),
    "tweet89": ("tweet89", "all", 384),
}
DLIB_SETS = {"celeba-dev", "celeba6k", "orl", "yale", "umist"}
BASELINES = ["knn-cc", "infomap", "dbscan", "hac", "kmeans"]
LEARNED = ["gcn-v", "gcn-ve", "ada-nets"]
THRESHOLDED = {"knn-cc", "infomap", "dbscan", "hac"}
# neighbours per method (self included): 20 as the data README's baseline, 50 for Infomap as
# the plain-Infomap face baseline; learned methods take their checkpoint's k.
K_OF = {"knn-cc": 20, "dbscan": 20, "hac": 20, "infomap": 50}
K_LEARNED = 80
PEERS = ["sklearn-dbscan", "sklearn-hac", "faiss-kmeans"]
PEER_MAX_N = 12_000  # scikit-learn peers build the full N x N cosine matrix
TUNE_N, TUNE_SEED, EVAL_SEED = 100_000, 1, 0


# ------------------------------------------------------------------------------ measuring

class PeakRSS:
    """Context manager sampling this process's resident memory; ``peak`` in bytes."""

    def __init__(self, every: float = 0.02):
        self.every = every
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def current() -> int:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            self._stop.wait(self.every)

    def __enter__(self):
        _release_memory()  # so the peak reflects this stage, not what earlier stages left to the allocator
        self.peak = self.current()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.current())
        return False


def _release_memory() -> None:
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def gib(b: float) -> float:
    return round(b / 2**30, 3)


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count()}
    try:
        cpu = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        info["cpu"] = cpu[0] if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    try:
        mem = [ln for ln in open("/proc/meminfo") if ln.startswith("MemTotal")][0]
        info["ram_gib"] = round(int(mem.split()[1]) / 2**20, 1)
    except (OSError, IndexError):
        info["ram_gib"] = None
    for mod in ["clusterg", "numpy", "scipy", "faiss", "torch", "torch_geometric", "sklearn", "infomap"]:
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except ImportError:
            info[mod] = None
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = bool(torch.cuda.is_available())
    except ImportError:
        pass
    return info


# ------------------------------------------------------------------------------ results store

class Store:
    """``results.json``: runs keyed by dataset|method, plus sweeps, kNN stages and size histograms."""

    def __init__(self, path: Path):
        self.path = path
        self.data = {"runs": {}, "sweeps": {}, "knn": {}, "hist": {}, "tuned": {}, "datasets": {}, "extra": {}}
        if path.is_file():
            self.data.update(json.loads(path.read_text()))

    def save(self):
        from clusterg._atomic import atomic_open
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.path) as f:
            json.dump(self.data, f, indent=1, sort_keys=True, default=_jsonable)


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ------------------------------------------------------------------------------ datasets

def shared_data_root(arg: str | None) -> Path | None:
    env = arg or os.environ.get("CLUSTERG_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    return root if root.is_dir() else None


def load_split(root: Path, split: str, dim: int | None):
    from clusterg.data.io import read_bin, read_meta
    x = read_bin(root / "features" / f"{split}.bin", dim=dim)
    y = read_meta(root / "labels" / f"{split}.meta")
    if len(y) != len(x):
        raise SystemExit(f"{root}: {len(x)} features but {len(y)} labels for split {split}")
    return x, y


def synth_path(work: Path, n: int, dim: int, seed: int) -> Path:
    return work / f"synth_n{n}_d{dim}_s{seed}"


def ensure_synth(work: Path, n: int, dim: int, seed: int, store: Store) -> Path:
    """Generate (once) an MS1M-like synthetic set under ``work`` and return its folder."""
    from clusterg.data.synth import write_synth
    folder = synth_path(work, n, dim, seed)
    if not (folder / "labels" / "part.meta").is_file():
        log.info("generating synthetic %d x %d (seed %d) in %s", n, dim, seed, folder)
        with PeakRSS() as m:
            write_synth(folder, n, dim=dim, seed=seed, split="part")
        store.data["extra"][f"synth_write|{n}|{dim}"] = {"seconds": round(m.seconds, 2), "peak_rss_gib": gib(m.peak)}
    return folder


# ------------------------------------------------------------------------------ stages

def knn_ivf_hnsw(x, k: int, nlist: int, nprobe: int = 1, train_per_list: int = 20, ef: int = 32,
                 chunk: int = 262_144, seed: int = 0):
    """Approximate kNN for millions of rows on a few cores: IVF-Flat with an HNSW coarse quantizer.

    With a flat quantizer, assigning N rows to ``nlist`` centroids costs N * nlist * D twice
    (add and search) and training k-means on 256 rows per list costs 256 * nlist^2 * D per
    iteration: at 5.21M x 256 that dominates. Here k-means trains on ``train_per_list`` rows per
    list, the centroids go into an HNSW graph (assignment ~ log nlist), and rows are added and
    searched in chunks straight from the (memory-mapped, unit-norm) input, so no normalised copy
    of the whole matrix is made. Returns (nbrs, sims, stage seconds).
    """
    import faiss
    from clusterg.knn.search import _self_first
    n, d = x.shape
    st = {}
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, min(n, train_per_list * nlist), replace=False))
    sample = np.ascontiguousarray(x[rows], dtype=np.float32)
    sample /= np.linalg.norm(sample, axis=1, keepdims=True)
    km = faiss.Kmeans(d, nlist, niter=10, seed=seed + 1, spherical=True, max_points_per_centroid=train_per_list)
    km.train(sample)
    del sample
    quant = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    quant.add(km.centroids)
    quant.hnsw.efSearch = ef
    index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
    st["train"] = time.perf_counter() - t
    t = time.perf_counter()

    def block(s):
        b = np.ascontiguousarray(x[s:s + chunk], dtype=np.float32)
        return b / np.linalg.norm(b, axis=1, keepdims=True)

    for s in range(0, n, chunk):
        index.add(block(s))
    st["add"] = time.perf_counter() - t
    index.nprobe = nprobe
    t = time.perf_counter()
    nbrs = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for s in range(0, n, chunk):
        q = block(s)
        dd, ii = index.search(q, k)
        bad = np.flatnonzero((ii < 0).any(axis=1))
        if len(bad):  # a list with fewer than k rows: search those queries in more lists
            index.nprobe = max(nprobe * 8, 8)
            dd[bad], ii[bad] = index.search(np.ascontiguousarray(q[bad]), k)
            index.nprobe = nprobe
        nbrs[s:s + len(q)], sims[s:s + len(q)] = ii, dd
        done = s + len(q)
        el = time.perf_counter() - t
        log.info("ivf-hnsw search %d / %d rows, %.0f q/s, ETA %.0f s", done, n, done / el, (n - done) * el / done)
    st["search"] = time.perf_counter() - t
    pads = nbrs < 0  # still unfilled (tiny lists): point at self with similarity -1, i.e. no edge
    if pads.any():
        r, c = np.nonzero(pads)
        nbrs[r, c], sims[r, c] = r, -1.0
        order = np.argsort(-sims, axis=1, kind="stable")
        nbrs[:] = np.take_along_axis(nbrs, order, axis=1)
        sims[:] = np.take_along_axis(sims, order, axis=1)
    _self_first(nbrs, sims, np.ones(n, dtype=np.float32))
    return nbrs, sims, {a: round(b, 2) for a, b in st.items()}


def knn_stage(x, k: int, method: str, device: str, nlist, nprobe, recall_sample: int):
    from clusterg.knn import knn_search, sampled_recall
    stages = None
    with PeakRSS() as m:
        if method == "ivf-hnsw":
            nlist = nlist or max(1, int(4 * math.sqrt(len(x))))
            nprobe = nprobe or 1
            nbrs, sims, stages = knn_ivf_hnsw(x, k, nlist, nprobe)
        else:
            nbrs, sims = knn_search(x, k, method=method, device=device, nlist=nlist, nprobe=nprobe, seed=0)
    rec = {"method": method, "k": k, "seconds": round(m.seconds, 3), "peak_rss_gib": gib(m.peak),
           "nlist": nlist, "nprobe": nprobe, "device": device}
    if stages:
        rec["stage_seconds"] = stages
    if method != "flat" and recall_sample:
        t = time.perf_counter()
        rec["recall_at_k"] = round(sampled_recall(x, nbrs, n_sample=recall_sample, seed=0), 4)
        rec["recall_sample"] = recall_sample
        rec["recall_seconds"] = round(time.perf_counter() - t, 2)
    elif method == "flat":
        rec["recall_at_k"] = 1.0
    if nlist is None and method == "ivf":
        from clusterg.knn import default_nlist
        rec["nlist"] = default_nlist(len(x))
    if nprobe is None and method == "ivf":
        rec["nprobe"] = 32
    return nbrs, sims, rec


def make_model(name: str, k: int | None, threshold: float | None, n_clusters: int | None, knn_method: str,
               device: str):
    from clusterg.cluster import get_clusterer_class
    cls = get_clusterer_class(name)
    params = dict(k=k, threshold=threshold, n_clusters=n_clusters, knn_method=knn_method, device=device, seed=0)
    if name in LEARNED:
        params.pop("k")
        params.pop("threshold")
    accepted = set(cls._param_names())
    return cls(**{p: v for p, v in params.items() if p in accepted and v is not None})


def fit_stage(name, x, knn, k, threshold, n_clusters, knn_method, device):
    model = make_model(name, k, threshold, n_clusters, knn_method, device)
    with PeakRSS() as m:
        labels = model.fit(x, knn=knn).labels_
    timings = getattr(model, "timings_", None)
    return labels, m, (dict(timings) if isinstance(timings, dict) else None)


def peer_stage(name, x, y, threshold):
    with PeakRSS() as m:
        if name == "sklearn-dbscan":
            from sklearn.cluster import DBSCAN
            labels = DBSCAN(eps=1 - threshold, min_samples=1, metric="cosine").fit_predict(x)
        elif name == "sklearn-hac":
            from sklearn.cluster import AgglomerativeClustering
            labels = AgglomerativeClustering(n_clusters=None, distance_threshold=1 - threshold, metric="cosine",
                                             linkage="average").fit_predict(x)
        elif name == "faiss-kmeans":
            import faiss
            xn = x / np.linalg.norm(x, axis=1, keepdims=True)
            c = int(y.max()) + 1
            km = faiss.Kmeans(x.shape[1], c, niter=20, seed=1, spherical=True, verbose=False)
            km.train(np.ascontiguousarray(xn, dtype=np.float32))
            labels = km.index.search(np.ascontiguousarray(xn, dtype=np.float32), 1)[1].ravel()
        else:
            raise ValueError(name)
    return np.asarray(labels, dtype=np.int64), m


def scores(y, labels) -> dict:
    from clusterg.metrics import evaluate
    t = time.perf_counter()
    m = evaluate(y, labels)
    m = {key: (round(float(v), 4) if isinstance(v, float) else v) for key, v in m.items()}
    m["eval_seconds"] = round(time.perf_counter() - t, 3)
    return m


def size_hist(labels) -> list[int]:
    """Counts of cluster sizes in log2 bins [1], [2,3], [4,7], ..."""
    sizes = np.bincount(np.unique(labels, return_inverse=True)[1])
    b = np.floor(np.log2(sizes)).astype(int)
    return np.bincount(b, minlength=14).tolist()


# ------------------------------------------------------------------------------ threshold sweeps

def grid_for(sims_sample: np.ndarray) -> np.ndarray:
    """A threshold grid spanning the neighbour similarities of this embedding."""
    lo, hi = np.percentile(sims_sample, [2, 99.5])
    lo, hi = math.floor(lo * 100) / 100, math.ceil(hi * 100) / 100
    step = 0.005 if hi - lo <= 0.25 else 0.01
    return np.round(np.arange(lo, min(hi, 0.999) + 1e-9, step), 4)


def sweep(name, x, y, knn, k, grid, knn_method, device, max_points: int = 40):
    """Pairwise / BCubed F of a thresholded method over ``grid`` (coarse, then fine near the best)."""
    from clusterg.metrics import bcubed, pairwise
    grid = np.asarray(grid)
    if len(grid) > max_points:
        coarse = grid[:: int(math.ceil(len(grid) / (max_points // 2)))]
    else:
        coarse = grid
    results = {}

    def run(t):
        t = float(round(t, 4))
        if t in results:
            return
        model = make_model(name, k, t, None, knn_method, device)
        lab = model.fit(x, knn=knn).labels_
        p = pairwise(y, lab)
        b = bcubed(y, lab)
        results[t] = (float(np.nan_to_num(p[2])), float(b[2]))

    for t in coarse:
        run(t)
    best = max(results, key=lambda t: results[t][0])
    for t in grid[np.abs(grid - best) <= 3 * (coarse[1] - coarse[0] if len(coarse) > 1 else 0.01)]:
        run(t)
    ts = sorted(results)
    return {"threshold": ts, "pairwise_f": [results[t][0] for t in ts], "bcubed_f": [results[t][1] for t in ts],
            "best": max(ts, key=lambda t: results[t][0])}


# ------------------------------------------------------------------------------ one dataset

def run_dataset(store: Store, key: str, x, y, *, methods, peers, k_max, knn_method, device, nlist, nprobe,
                recall_sample, thresholds: dict | None, sweep_grid: bool, dev_thresholds: dict | None = None,
                kind: str = "real", tag: str = "", also_ivf: bool = False):
    """kNN once, then every method; results go into ``store`` under ``key``."""
    x = np.asarray(x, dtype=np.float32) if not isinstance(x, np.memmap) else x
    n, d = x.shape
    if any(m in LEARNED for m in methods):
        k_max = max(k_max, K_LEARNED)  # one graph for all: Ada-NETS reads 80 neighbours
    k_all = min(k_max, n)
    log.info("%s: N=%d D=%d ids=%d, kNN k=%d (%s)", key, n, d, len(np.unique(y)), k_all, knn_method)
    nbrs, sims, krec = knn_stage(x, k_all, knn_method, device, nlist, nprobe, recall_sample)
    krec.update(n=n, d=d)
    store.data["knn"][key] = krec
    store.data["datasets"][key] = {"n": n, "d": d, "ids": int(len(np.unique(y))), "kind": kind, "tag": tag,
                                   "gt_hist": size_hist(y)}
    store.save()
    log.info("%s: kNN %.1f s, peak RSS %.2f GiB, recall %s", key, krec["seconds"], krec["peak_rss_gib"],
             krec.get("recall_at_k"))
    knn = (nbrs, sims)
    if also_ivf and knn_method == "flat":
        _compare_ivf(store, key, x, y, knn, thresholds, device, nlist, nprobe)
    for name in methods:
        try:
            _run_method(store, key, name, x, y, knn, krec, thresholds, sweep_grid, dev_thresholds, knn_method,
                        device, sims)
        except Exception as e:  # noqa: BLE001 - one failing method must not lose the others' numbers
            log.warning("%s / %s failed: %s: %s", key, name, type(e).__name__, e)
            store.data["runs"][f"{key}|{name}"] = {"dataset": key, "method": name, "error": f"{type(e).__name__}: {e}"}
        store.save()
        gc.collect()
    for name in peers:
        if n > PEER_MAX_N:
            continue
        if name == "sklearn-hac":  # full average linkage differs from kNN-HAC: its own sweep
            sw = sweep_peer_hac(x, y, grid_for(sims[:, 1:].ravel()))
            store.data["sweeps"][f"{key}|{name}"] = sw
            thr = sw["best"]
        elif name == "sklearn-dbscan":  # min_samples=1: same threshold semantics as clusterg's dbscan
            sw = store.data["sweeps"].get(f"{key}|dbscan") or store.data["sweeps"].get(f"{key}|knn-cc")
            thr = sw["best"] if sw else (thresholds or {}).get("dbscan")
            if thr is None:
                continue
        else:
            thr = None
        try:
            labels, m = peer_stage(name, np.asarray(x, dtype=np.float32), y, thr)
        except Exception as e:  # noqa: BLE001
            log.warning("%s / %s failed: %s", key, name, e)
            continue
        rec = {"dataset": key, "method": name, "peer": True, "threshold": thr,
               "tuned": "true C" if name == "faiss-kmeans" else "labels (best)",
               "fit_seconds": round(m.seconds, 3), "knn_seconds": 0.0, "total_seconds": round(m.seconds, 3),
               "peak_rss_gib": gib(m.peak), "faces_per_s": round(n / max(m.seconds, 1e-9), 1)}
        rec.update(scores(y, labels))
        store.data["runs"][f"{key}|{name}"] = rec
        store.data["hist"][f"{key}|{name}"] = size_hist(labels)
        store.save()


def _compare_ivf(store, key, x, y, exact, thresholds, device, nlist, nprobe):
    """IVF kNN on the same set: time, recall@k against the exact graph, knn-cc F on both graphs."""
    from clusterg.knn import knn_recall
    from clusterg.metrics import pairwise
    nb, sb, rec = knn_stage(x, exact[0].shape[1], "ivf", device, nlist, nprobe, 0)
    rec.update(n=len(x), d=x.shape[1], recall_at_k=round(knn_recall(nb, exact[0]), 4), recall_sample=len(x))
    t = (thresholds or {}).get("knn-cc")
    if t is not None:
        k = K_OF["knn-cc"]
        for tag, (a, b) in (("exact", exact), ("ivf", (nb, sb))):
            lab = make_model("knn-cc", k, t, None, "flat", device).fit(x, knn=(a[:, :k], b[:, :k])).labels_
            rec[f"knn_cc_pairwise_f_{tag}"] = round(float(np.nan_to_num(pairwise(y, lab)[2])), 4)
    store.data["knn"][f"{key} (ivf)"] = rec
    store.save()
    log.info("%s: IVF kNN %.1f s, recall@k %.4f (%s)", key, rec["seconds"], rec["recall_at_k"], rec)


def sweep_peer_hac(x, y, grid):
    """scikit-learn average linkage on the full cosine matrix, built once and cut at every threshold."""
    from sklearn.cluster import AgglomerativeClustering
    from clusterg.linkage import UnionFind
    from clusterg.metrics import bcubed, pairwise
    xs = np.asarray(x, dtype=np.float32)
    n = len(xs)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=1 - float(min(grid)), metric="cosine",
                                    linkage="average", compute_full_tree=True).fit(xs)
    children, dist = model.children_, model.distances_
    out = {}
    for t in grid:
        uf = UnionFind(2 * n)
        for i in np.flatnonzero(dist < 1 - float(t)):  # merges are ordered; node n+i is merge i
            a, b = children[i]
            uf.union(a, n + i)
            uf.union(b, n + i)
        lab = np.array([uf.find(i) for i in range(n)])
        out[float(t)] = (float(np.nan_to_num(pairwise(y, lab)[2])), float(bcubed(y, lab)[2]))
    ts = sorted(out)
    return {"threshold": ts, "pairwise_f": [out[t][0] for t in ts], "bcubed_f": [out[t][1] for t in ts],
            "best": max(ts, key=lambda t: out[t][0])}


def _run_method(store, key, name, x, y, knn, krec, thresholds, sweep_grid, dev_thresholds, knn_method, device,
                sims):
    n = len(y)
    k = min(K_OF.get(name, knn[0].shape[1]), knn[0].shape[1]) if name not in LEARNED else None
    kk = (knn[0][:, :k], knn[1][:, :k]) if k else knn
    threshold, tuned = None, "checkpoint" if name in LEARNED else "-"
    if name in THRESHOLDED:
        if sweep_grid:
            sw = sweep(name, x, y, kk, k, grid_for(sims[:, 1:].ravel()), knn_method, device,
                       max_points=16 if name == "hac" else 40)
            store.data["sweeps"][f"{key}|{name}"] = sw
            threshold, tuned = sw["best"], "labels (best)"
        else:
            threshold = (thresholds or {}).get(name)
            if threshold is None:
                raise RuntimeError(f"no tuned threshold for {name}")
            tuned = "tuning set"
    n_clusters = int(y.max()) + 1 if name == "kmeans" else None
    labels, m, timings = fit_stage(name, x, kk, k, threshold, n_clusters, knn_method, device)
    rec = {"dataset": key, "method": name, "k": k, "threshold": threshold, "tuned": tuned,
           "knn_seconds": krec["seconds"], "fit_seconds": round(m.seconds, 3),
           "total_seconds": round(krec["seconds"] + m.seconds, 3),
           "peak_rss_gib": max(krec["peak_rss_gib"], gib(m.peak)),
           "faces_per_s": round(n / max(krec["seconds"] + m.seconds, 1e-9), 1), "knn_method": krec["method"],
           # provenance: the graph this run clustered (a later kNN rerun of the set replaces data["knn"][key])
           "knn_recall_at_k": krec.get("recall_at_k"),
           "measured_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if name == "kmeans":
        rec["tuned"] = "true C"
    if timings:
        rec["stage_seconds"] = {a: round(float(b), 3) for a, b in timings.items()}
    rec.update(scores(y, labels))
    if dev_thresholds and name in dev_thresholds and name in THRESHOLDED:
        from clusterg.metrics import bcubed, pairwise
        lab2 = make_model(name, k, dev_thresholds[name], None, knn_method, device).fit(x, knn=kk).labels_
        rec["dev_threshold"] = dev_thresholds[name]
        rec["dev_pairwise_f"] = round(float(np.nan_to_num(pairwise(y, lab2)[2])), 4)
        rec["dev_bcubed_f"] = round(float(bcubed(y, lab2)[2]), 4)
    store.data["runs"][f"{key}|{name}"] = rec
    store.data["hist"][f"{key}|{name}"] = size_hist(labels)
    log.info("%s / %s: pairwise F %.4f BCubed F %.4f (t=%s) fit %.1f s", key, name, rec["pairwise_fscore"],
             rec["bcubed_fscore"], threshold, m.seconds)


# ------------------------------------------------------------------------------ parts

def available(methods: list[str], dim: int) -> list[str]:
    from clusterg.cluster import CLUSTERERS, get_clusterer_class
    out = []
    for name in methods:
        if name not in CLUSTERERS:
            continue
        try:
            get_clusterer_class(name)
        except Exception as e:  # noqa: BLE001
            log.warning("method %s skipped: %s", name, e)
            continue
        out.append(name)
    return out


def part_real(store: Store, args):
    root = shared_data_root(args.data)
    if root is None:
        log.warning("real data not found (../shared/data or $CLUSTERG_DATA): skipping the real sets")
        return
    dev_thr = None
    for key, (folder, split, dim) in REAL_SETS.items():
        if not (root / folder / "features" / f"{split}.bin").is_file():
            log.warning("%s: not present, skipped", key)
            continue
        x, y = load_split(root / folder, split, dim)
        x = np.ascontiguousarray(x, dtype=np.float32)
        methods = available(args.methods or BASELINES + LEARNED, dim)
        run_dataset(store, key, x, y, methods=methods, peers=args.peers, k_max=max(K_OF.values()),
                    knn_method="flat", device=args.device, nlist=None, nprobe=None, recall_sample=0,
                    thresholds=None, sweep_grid=True, kind="real",
                    dev_thresholds=dev_thr if key in DLIB_SETS and key != "celeba-dev" else None)
        if key == "celeba-dev":
            dev_thr = {m: store.data["sweeps"][f"{key}|{m}"]["best"] for m in THRESHOLDED
                       if f"{key}|{m}" in store.data["sweeps"]}
            store.data["tuned"]["celeba-dev"] = dev_thr
            store.save()


def tuned_thresholds(store: Store, args, dim: int, methods: list[str] | None = None) -> dict:
    """Thresholds from a separate synthetic tuning set (seed TUNE_SEED), swept once per dim and method."""
    key = f"synth-tune-d{dim}"
    out = dict(store.data["tuned"].get(key, {}))
    wanted = [m for m in ("knn-cc", "infomap") if methods is None or m in methods
              or (m == "knn-cc" and "dbscan" in methods)]
    missing = [m for m in wanted if m not in out and m in available([m], dim)]
    if not missing:
        return out
    from clusterg.data.io import read_bin, read_meta
    folder = ensure_synth(Path(args.work_dir), TUNE_N, dim, TUNE_SEED, store)
    x = np.asarray(read_bin(folder / "features" / "part.bin"))
    y = read_meta(folder / "labels" / "part.meta")
    k_all = max(K_OF[m] for m in missing)
    nbrs, sims, krec = knn_stage(x, k_all, "flat", args.device, None, None, 0)
    for name in missing:
        k = K_OF[name]
        sw = sweep(name, x, y, (nbrs[:, :k], sims[:, :k]), k, grid_for(sims[:, 1:].ravel()), "flat", args.device,
                   max_points=40 if name == "knn-cc" else 14)
        store.data["sweeps"][f"{key}|{name}"] = sw
        out[name] = sw["best"]
        log.info("tuning set: %s best threshold %.4f (pairwise F %.4f)", name, sw["best"], max(sw["pairwise_f"]))
    if "knn-cc" in out:
        out["dbscan"] = out["knn-cc"]  # min_samples=1: the same edges-above-threshold rule
    store.data["tuned"][key] = out
    store.data["knn"][key] = dict(krec, n=len(x), d=dim)
    store.save()
    return out


def part_synth(store: Store, args, n: int):
    from clusterg.data.io import read_bin, read_meta
    dim = args.dim
    thr = tuned_thresholds(store, args, dim, args.methods)
    folder = ensure_synth(Path(args.work_dir), n, dim, EVAL_SEED, store)
    store.save()
    x = read_bin(folder / "features" / "part.bin")  # memory-mapped
    y = read_meta(folder / "labels" / "part.meta")
    knn_method = args.knn_method or ("flat" if n <= 200_000 else "ivf")
    # kNN-HAC is left out of synthetic sets (no threshold tuned; ~7 s a fit already at 10K), and
    # Ada-NETS too: its packaged dlib weights do not transfer to synthetic faces (BCubed F 0.26 at 3K)
    default = ["knn-cc", "infomap", "dbscan", "kmeans", "gcn-v", "gcn-ve"] if n <= 150_000 else \
        ["knn-cc", "infomap", "dbscan", "gcn-v", "gcn-ve"]
    methods = available(args.methods or default, dim)
    key = f"synth-{_short(n)}-d{dim}"
    run_dataset(store, key, x, y, methods=methods, peers=[], k_max=max(K_OF[m] for m in methods if m in K_OF)
                if any(m in K_OF for m in methods) else 20, knn_method=knn_method, device=args.device,
                nlist=args.nlist, nprobe=args.nprobe, recall_sample=args.recall_sample, thresholds=thr,
                sweep_grid=False, kind="synthetic", tag=f"seed {EVAL_SEED}", also_ivf=args.also_ivf)
    if args.bcubed_timing:
        from clusterg.metrics import bcubed
        # a noisy prediction with many more clusters than identities: the slow case
        pred = np.random.default_rng(0).integers(0, max(2, n // 20), size=n)
        t = time.perf_counter()
        bcubed(y, pred)
        store.data["extra"][f"bcubed_seconds|{n}"] = round(time.perf_counter() - t, 3)
        log.info("BCubed on %d labels: %.2f s", n, store.data["extra"][f"bcubed_seconds|{n}"])
    store.save()


def part_ms1m(store: Store, args):
    root = Path(args.ms1m_root or os.environ.get("CLUSTERG_MS1M_ROOT", ""))
    if not str(root) or not root.is_dir():
        log.warning("no MS1M root (--ms1m-root or $CLUSTERG_MS1M_ROOT): MS1M parts skipped")
        return
    for part in args.ms1m_parts:
        if not (root / "features" / f"{part}.bin").is_file():
            log.warning("MS1M %s not found under %s", part, root)
            continue
        x, y = load_split(root, part, 256)
        methods = available(args.methods or ["knn-cc", "infomap"] + LEARNED, 256)
        run_dataset(store, f"ms1m-{part}", x, y, methods=methods, peers=[], k_max=50,
                    knn_method=args.knn_method or "ivf", device=args.device, nlist=args.nlist, nprobe=args.nprobe,
                    recall_sample=args.recall_sample, thresholds=tuned_thresholds(store, args, 256, methods),
                    sweep_grid=False, kind="MS1M")


def _short(n: int) -> str:
    for name, (size, _) in {"584K": (584_013, 0), "1.74M": (1_740_301, 0), "2.89M": (2_890_517, 0),
                            "4.05M": (4_046_365, 0), "5.21M": (5_210_000, 0)}.items():
        if n == size:
            return name
    return f"{n // 1000}K" if n % 1000 == 0 and n < 10**6 else str(n)


# ------------------------------------------------------------------------------ report

def render(store: Store, out: Path):
    from report_render import write_report  # noqa: E402  (same folder)
    write_report(store.data, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="report folder (default docs/benchmarks)")
    p.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "clusterg-bench"),
                   help="where synthetic sets are generated (outside the repository)")
    p.add_argument("--data", default=None, help="real data root (default ../shared/data or $CLUSTERG_DATA)")
    p.add_argument("--real", action="store_true", help="run the real sets")
    p.add_argument("--synth", type=int, nargs="*", default=[], help="synthetic sizes, e.g. 100000 584013 5210000")
    p.add_argument("--dim", type=int, default=128, help="synthetic dimension (default 128, dlib-like)")
    p.add_argument("--ms1m-root", default=None, help="MS1M data root (or $CLUSTERG_MS1M_ROOT)")
    p.add_argument("--ms1m-parts", nargs="*", default=[], help="MS1M parts to run, e.g. part1_test")
    p.add_argument("--methods", nargs="*", default=None, help="subset of methods (default: all that apply)")
    p.add_argument("--peers", nargs="*", default=PEERS, help="in-process peers on small sets")
    p.add_argument("--knn-method", choices=["flat", "ivf", "hnsw", "ivf-hnsw"], default=None,
                   help="default: flat up to 200K faces, ivf above; ivf-hnsw for millions of faces")
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~4 sqrt(N))")
    p.add_argument("--nprobe", type=int, default=None, help="IVF lists visited (default 32)")
    p.add_argument("--recall-sample", type=int, default=2000, help="queries for recall@k of approximate kNN")
    p.add_argument("--also-ivf", action="store_true", help="with exact kNN, also time IVF and report its recall")
    p.add_argument("--bcubed-timing", action="store_true", help="also time BCubed on N random predictions")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    p.add_argument("--threads", type=int, default=None, help="faiss and torch threads (default: all cores)")
    p.add_argument("--bench-knn-json", default=None, help="pytest-benchmark JSON of bench_knn.py to include")
    p.add_argument("--report-only", action="store_true", help="only re-render the report from results.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    from clusterg import set_quiet
    set_quiet(True)
    if args.threads:
        import faiss
        import torch
        faiss.omp_set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    work = Path(args.work_dir).resolve()
    if REPO in work.parents or work == REPO:
        raise SystemExit("--work-dir must lie outside the repository (generated data is large)")
    work.mkdir(parents=True, exist_ok=True)
    store = Store(out / "results.json")
    if not args.report_only or "machine" not in store.data:
        store.data["machine"] = machine_info()
        store.data["machine"]["last_run_utc"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.bench_knn_json:  # keep the exact-kNN ratio measured by bench_knn.py with the other results
        blob = json.loads(Path(args.bench_knn_json).read_text())
        for b in blob.get("benchmarks", []):
            if "ratio" in b.get("extra_info", {}):
                store.data["extra"]["bench_knn"] = dict(b["extra_info"], measured=blob.get("datetime"))
        store.save()
    if not args.report_only:
        if args.real:
            part_real(store, args)
        for n in args.synth:
            part_synth(store, args, n)
        if args.ms1m_parts:
            part_ms1m(store, args)
        store.save()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    render(store, out)
    log.info("report written to %s", out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
