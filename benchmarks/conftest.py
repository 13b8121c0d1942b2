"""Shared fixtures for the pytest-benchmark suite in ``benchmarks/``.

Sizes come from environment variables so CI runs the whole suite in seconds,
while a developer can scale it up::

    pytest benchmarks --benchmark-disable             # every case once, small, untimed (what CI runs)
    CLUSTERG_BENCH_N=50000 pytest benchmarks/bench_pipeline.py --benchmark-columns=median,rounds

* ``CLUSTERG_BENCH_N``   faces in the synthetic set (default 3000)
* ``CLUSTERG_BENCH_D``   dimension (default 128: the packaged GCN-V weights are for 128-d)
* ``CLUSTERG_BENCH_K``   neighbours per face, self included (default 20)
* ``CLUSTERG_DATA``      folder of the real data sets (default ``../shared/data``; see the root ``conftest.py``)

Files named ``bench_*.py`` are collected (``python_files`` in ``pyproject.toml``), so the plain
``python -m pytest`` runs them too; ``.ci/run`` sets ``PYTEST_ADDOPTS=--benchmark-disable`` there, which
runs each case's function once and checks its result without timing it. The floors on results
and the speed ratios of ``bench_knn.py`` are checked either way.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

BENCH_N = int(os.environ.get("CLUSTERG_BENCH_N", "3000"))
BENCH_D = int(os.environ.get("CLUSTERG_BENCH_D", "128"))
BENCH_K = int(os.environ.get("CLUSTERG_BENCH_K", "20"))


@pytest.fixture(scope="session")
def synth_set() -> tuple[np.ndarray, np.ndarray]:
    """MS1M-like synthetic faces: ``x`` float32 (BENCH_N, BENCH_D), ``y`` int64 (BENCH_N,)."""
    from clusterg.data.synth import synth_ms1m
    # ~15 faces per identity at small N so every method has real clusters to find
    return synth_ms1m(BENCH_N, dim=BENCH_D, n_ids=max(2, BENCH_N // 15), seed=0)


@pytest.fixture(scope="session")
def synth_knn(synth_set) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN ``(nbrs, sims)`` of :func:`synth_set`, k = min(BENCH_K, N)."""
    from clusterg.knn import knn_search
    x, _ = synth_set
    return knn_search(x, min(BENCH_K, len(x)), quiet=True)


@pytest.fixture(scope="session")
def celeba_dev(shared_set) -> tuple[np.ndarray, np.ndarray]:
    """The real CelebA ``dev`` split (10,567 dlib faces, 128-d); skips when the data is absent."""
    return shared_set("celeba", "dev")
