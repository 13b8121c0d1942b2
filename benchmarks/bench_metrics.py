"""Speed of the clustering metrics on MS1M-sized label arrays.

Run (sizes are comma-separated item counts; the default keeps CI to seconds)::

    pytest benchmarks/bench_metrics.py
    CLUSTERG_BENCH_SIZES=1000000,5210000 pytest benchmarks/bench_metrics.py   # part1 .. part9 scale

Smoke run without timing (what CI does)::

    pytest benchmarks/bench_metrics.py --benchmark-disable

Labels imitate MS1M splits: about 67 faces per identity with a long tail, and a
prediction that splits some identities, mixes some faces and leaves 3% unassigned (-1).
``bcubed_naive`` is the per-(class, cluster) ``intersect1d`` loop used by the
reference evaluation code, timed only at 100K items as the peer for ``bcubed``.
"""
from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import pytest

from clusterg.metrics import bcubed, evaluate, nmi, pairwise, singletonize

SIZES = [int(s) for s in os.environ.get("CLUSTERG_BENCH_SIZES", "100000").split(",") if s.strip()]
NAIVE_SIZE = 100_000


def ms1m_like_labels(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(gt, pred) int64 (n,): long-tailed identities, an imperfect clustering with -1s."""
    rng = np.random.default_rng(seed)
    n_ids = max(1, n // 67)
    weights = rng.lognormal(mean=0.0, sigma=0.8, size=n_ids)
    gt = rng.choice(n_ids, size=n, p=weights / weights.sum())
    pred = gt.copy()
    split = rng.random(n_ids) < 0.15  # some identities come out as two clusters
    half = split[gt] & (rng.random(n) < 0.5)
    pred[half] = n_ids + gt[half]
    noise = rng.random(n) < 0.05  # some faces land in a wrong cluster
    pred[noise] = rng.integers(0, 2 * n_ids, int(noise.sum()))
    pred[rng.random(n) < 0.03] = -1  # unassigned
    return gt, pred


def bcubed_naive(gt: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """The reference style: for every class, intersect with every predicted cluster it meets."""
    pred = singletonize(pred)
    members_gt, members_pred = defaultdict(list), defaultdict(list)
    for i, (g, p) in enumerate(zip(gt.tolist(), pred.tolist())):
        members_gt[g].append(i)
        members_pred[p].append(i)
    members_gt = {k: np.array(v) for k, v in members_gt.items()}
    members_pred = {k: np.array(v) for k, v in members_pred.items()}
    pre = rec = 0.0
    for g, g_idx in members_gt.items():
        for p in np.unique(pred[g_idx]):
            both = np.intersect1d(g_idx, members_pred[p]).size
            pre += both * both / members_pred[p].size
            rec += both * both / g_idx.size
    p_avg, r_avg = pre / len(gt), rec / len(gt)
    return p_avg, r_avg, 2 * p_avg * r_avg / (p_avg + r_avg)


_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def labels(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n not in _cache:
        _cache[n] = ms1m_like_labels(n)
    return _cache[n]


_ref_cache: dict[int, dict] = {}


def reference(n: int) -> dict:
    """The scores of ``labels(n)`` by scikit-learn's pair counts and NMI (``-1`` made singletons first), and
    BCubed by the reference-style loop at ``NAIVE_SIZE`` items at most (it is the slow peer)."""
    if n not in _ref_cache:
        _ref_cache[n] = _reference(*labels(n))
    return _ref_cache[n]


def _reference(gt: np.ndarray, pred: np.ndarray) -> dict:
    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.metrics.cluster import pair_confusion_matrix
    p = singletonize(pred)
    c = pair_confusion_matrix(gt, p).astype(np.float64)  # [[TN, FP], [FN, TP]] over ordered pairs
    prec, rec = c[1, 1] / (c[1, 1] + c[0, 1]), c[1, 1] / (c[1, 1] + c[1, 0])
    ref = {"pairwise": (prec, rec, 2 * prec * rec / (prec + rec)),
           "nmi": normalized_mutual_info_score(gt, p, average_method="arithmetic")}
    if len(gt) <= NAIVE_SIZE:
        ref["bcubed"] = bcubed_naive(gt, pred)
    return ref


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("fn", [bcubed, pairwise, nmi, evaluate], ids=lambda f: f.__name__)
def test_metric_speed(benchmark, fn, n):
    gt, pred = labels(n)
    benchmark.group = f"metrics-{n}"
    benchmark.extra_info["n"] = n
    out = benchmark(fn, gt, pred)
    ref = reference(n)
    if fn is evaluate:
        got = {"pairwise": (out["pairwise_precision"], out["pairwise_recall"], out["pairwise_fscore"]),
               "bcubed": (out["bcubed_precision"], out["bcubed_recall"], out["bcubed_fscore"]), "nmi": out["nmi"]}
    else:
        got = {fn.__name__: out}
    for key, value in got.items():
        if key in ref:
            np.testing.assert_allclose(value, ref[key], rtol=1e-9, err_msg=f"{fn.__name__}: {key}")
    assert 0.3 < np.atleast_1d(out["pairwise_fscore"] if fn is evaluate else out)[-1] < 0.99  # a real case


def test_bcubed_naive_peer(benchmark):
    gt, pred = labels(NAIVE_SIZE)
    benchmark.group = f"metrics-{NAIVE_SIZE}"
    benchmark.extra_info["n"] = NAIVE_SIZE
    out = benchmark.pedantic(bcubed_naive, args=(gt, pred), rounds=1, iterations=1)
    np.testing.assert_allclose(out, bcubed(gt, pred), rtol=1e-10)
