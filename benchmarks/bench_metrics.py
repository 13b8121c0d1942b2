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


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("fn", [bcubed, pairwise, nmi, evaluate], ids=lambda f: f.__name__)
def test_metric_speed(benchmark, fn, n):
    gt, pred = labels(n)
    benchmark.group = f"metrics-{n}"
    benchmark.extra_info["n"] = n
    out = benchmark(fn, gt, pred)
    values = out.values() if isinstance(out, dict) else np.atleast_1d(out)
    assert all(np.isfinite(v) for v in values)


def test_bcubed_naive_peer(benchmark):
    gt, pred = labels(NAIVE_SIZE)
    benchmark.group = f"metrics-{NAIVE_SIZE}"
    benchmark.extra_info["n"] = NAIVE_SIZE
    out = benchmark.pedantic(bcubed_naive, args=(gt, pred), rounds=1, iterations=1)
    np.testing.assert_allclose(out, bcubed(gt, pred), rtol=1e-10)
