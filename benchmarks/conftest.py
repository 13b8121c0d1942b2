"""Shared fixtures for the pytest-benchmark suite in ``benchmarks/``.

Sizes come from environment variables so CI runs the whole suite in seconds,
while a developer can scale it up::

    pytest benchmarks --benchmark-disable             # CI: every case once, small
    CLUSTERG_BENCH_N=50000 pytest benchmarks/bench_pipeline.py --benchmark-columns=median,rounds

* ``CLUSTERG_BENCH_N``   faces in the synthetic set (default 3000)
* ``CLUSTERG_BENCH_D``   dimension (default 128: the packaged GCN-V weights are for 128-d)
* ``CLUSTERG_BENCH_K``   neighbours per face, self included (default 20)
* ``CLUSTERG_DATA``      folder of the real data sets (default ``../shared/data``)

Files named ``bench_*.py`` are collected (``python_files`` in ``pyproject.toml``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from clusterg._progress import set_quiet

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

BENCH_N = int(os.environ.get("CLUSTERG_BENCH_N", "3000"))
BENCH_D = int(os.environ.get("CLUSTERG_BENCH_D", "128"))
BENCH_K = int(os.environ.get("CLUSTERG_BENCH_K", "20"))


def shared_data_root() -> Path | None:
    env = os.environ.get("CLUSTERG_DATA")
    root = Path(env) if env else (REPO.parent / "shared" / "data")
    return root if root.is_dir() else None


@pytest.fixture(autouse=True, scope="session")
def _quiet():
    set_quiet(True)
    yield


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
def celeba_dev() -> tuple[np.ndarray, np.ndarray]:
    """The real CelebA ``dev`` split (10,567 dlib faces, 128-d); skips when the data is absent."""
    root = shared_data_root()
    if root is None or not (root / "celeba" / "features" / "dev.bin").is_file():
        pytest.skip("real data not found: ../shared/data/celeba is absent and CLUSTERG_DATA is unset")
    from clusterg.data.io import read_bin, read_meta
    x = np.asarray(read_bin(root / "celeba" / "features" / "dev.bin", dim=128), dtype=np.float32)
    return x, read_meta(root / "celeba" / "labels" / "dev.meta")


def load_set(root: Path, name: str, split: str, dim: int = 128):
    """``(x, y)`` of ``root/name`` split ``split``; skips when absent.

    Same helper as in ``tests/conftest.py``: test modules import it with
    ``from conftest import load_set``, and when ``tests`` and ``benchmarks`` run in one
    session this module may be the ``conftest`` they get.
    """
    from clusterg.data.io import read_bin, read_meta
    feats = root / name / "features" / f"{split}.bin"
    labels = root / name / "labels" / f"{split}.meta"
    if not feats.is_file():
        pytest.skip(f"{feats} not present")
    return np.asarray(read_bin(feats, dim=dim)), read_meta(labels)
