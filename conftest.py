"""Fixtures shared by ``tests/`` and ``benchmarks/``: where the real data sets are, and quiet progress bars."""
import os
from pathlib import Path

import numpy as np
import pytest

from clusterg._progress import set_quiet

REPO = Path(__file__).resolve().parent


def shared_data_root() -> Path | None:
    """``$CLUSTERG_DATA`` or ``../shared/data`` beside the repository, if it exists."""
    env = os.environ.get("CLUSTERG_DATA")
    root = Path(env) if env else (REPO.parent / "shared" / "data")
    return root if root.is_dir() else None


@pytest.fixture(autouse=True, scope="session")
def _quiet():
    set_quiet(True)
    yield


@pytest.fixture(scope="session")
def shared_data_dir() -> Path | None:
    """The real data folder, or None when absent (for code that runs either way)."""
    return shared_data_root()


@pytest.fixture(scope="session")
def shared_data(shared_data_dir) -> Path:
    """The real data sets in ../shared/data (or $CLUSTERG_DATA); skips when absent."""
    if shared_data_dir is None:
        pytest.skip("real data not found: ../shared/data is absent and CLUSTERG_DATA is unset")
    return shared_data_dir


@pytest.fixture(scope="session")
def shared_set(shared_data):
    """``shared_set(name, split, dim=128) -> (x, y)``: one real set in the MS1M layout; skips when absent."""
    from clusterg.data import MS1MDataset

    def load(name: str, split: str, dim: int = 128):
        if not (shared_data / name / "features" / f"{split}.bin").is_file():
            pytest.skip(f"{name}/{split} not present in {shared_data}")
        ds = MS1MDataset(shared_data / name, split, dim=dim)
        return np.asarray(ds.x), ds.y

    return load
