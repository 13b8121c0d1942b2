"""``clusterg demo``: the whole pipeline on built-in data, no files needed.

Two synthetic face-like sets are drawn (:func:`clusterg.data.synth.synth_ms1m`,
128-d, long-tailed identities, hard pairs): thresholds are picked on the first
("tune") and the scores reported on the second ("test"), as a user would with
labelled and unlabelled data.
"""
from __future__ import annotations

import json
import logging
import time

import numpy as np

from ..cluster import make_clusterer
from ..knn import knn_search
from ..metrics import evaluate

METHODS = {"knn-cc": dict(k=20), "infomap": dict(k=50)}
THRESHOLDS = np.round(np.arange(0.60, 0.991, 0.02), 2)


def _best_threshold(name: str, x, y, knn, base: dict) -> float:
    best_t, best_f = None, -1.0
    lg = logging.getLogger("clusterg.linkage")
    level, lg.level = lg.level, logging.ERROR  # the sweep tries degenerate cuts on purpose
    try:
        for t in THRESHOLDS:
            f = evaluate(y, make_clusterer(name, threshold=float(t), **base).fit_predict(x, knn=knn))["pairwise_fscore"]
            if f > best_f:
                best_t, best_f = float(t), f
    finally:
        lg.setLevel(level)
    return best_t


def run_demo(n: int = 10000, seed: int = 0, json_out: bool = False, dim: int = 128) -> int:
    from ..data.synth import synth_ms1m
    t0 = time.perf_counter()
    x_tune, y_tune = synth_ms1m(n, dim=dim, seed=seed + 1000)  # same size: thresholds depend on density
    x_test, y_test = synth_ms1m(n, dim=dim, seed=seed)
    k = max(v["k"] for v in METHODS.values())
    knn_tune = knn_search(x_tune, min(k, len(x_tune)))
    t_knn = time.perf_counter()
    knn_test = knn_search(x_test, min(k, len(x_test)))
    t_knn = time.perf_counter() - t_knn
    rows = []
    # the default pipeline first: no method, no threshold, nothing tuned
    t1 = time.perf_counter()
    auto = make_clusterer("auto")
    m = evaluate(y_test, auto.fit_predict(x_test))
    m.update(method="auto", threshold=float(auto.threshold_), seconds=round(time.perf_counter() - t1, 3))
    rows.append(m)
    for name, base in METHODS.items():
        t = _best_threshold(name, x_tune, y_tune, knn_tune, base)
        t1 = time.perf_counter()
        labels = make_clusterer(name, threshold=t, **base).fit_predict(x_test, knn=knn_test)
        m = evaluate(y_test, labels)
        m.update(method=name, threshold=t, seconds=round(time.perf_counter() - t1, 3))
        rows.append(m)
    if json_out:
        print(json.dumps({"n": len(x_test), "dim": dim, "knn_seconds": round(t_knn, 3), "results": rows}))
        return 0
    print(f"clusterg demo: {len(x_test)} synthetic {dim}-d faces of {len(np.unique(y_test))} identities "
          f"(auto: label-free; the others' thresholds picked on a separate set); exact kNN in {t_knn:.1f} s")
    print(f"{'method':<10}{'threshold':>10}{'pairwise F':>12}{'BCubed F':>10}{'NMI':>8}{'clusters':>10}{'time s':>8}")
    for m in rows:
        print(f"{m['method']:<10}{m['threshold']:>10.2f}{m['pairwise_fscore']:>12.4f}{m['bcubed_fscore']:>10.4f}"
              f"{m['nmi']:>8.4f}{m['n_clusters']:>10d}{m['seconds']:>8.2f}")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0
