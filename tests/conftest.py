import os
from pathlib import Path

import numpy as np
import pytest

from clusterg._progress import set_quiet

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    env = os.environ.get("CLUSTERG_DATA")
    root = Path(env) if env else (REPO.parent / "shared" / "data")
    return root if root.is_dir() else None


@pytest.fixture(autouse=True, scope="session")
def _quiet():
    set_quiet(True)
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets in ../shared/data (or $CLUSTERG_DATA); skips when absent."""
    root = shared_data_root()
    if root is None:
        pytest.skip("real data not found: ../shared/data is absent and CLUSTERG_DATA is unset")
    return root


def load_set(root: Path, name: str, split: str, dim: int = 128):
    from clusterg.data.io import read_bin, read_meta
    feats = root / name / "features" / f"{split}.bin"
    labels = root / name / "labels" / f"{split}.meta"
    if not feats.is_file():
        pytest.skip(f"{feats} not present")
    return np.asarray(read_bin(feats, dim=dim)), read_meta(labels)


@pytest.fixture
def blobs():
    """Small well-separated clusters on the sphere: (x float32 (300, 32), y int64)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 32))
    y = np.repeat(np.arange(10), 30)
    x = centers[y] + 0.15 * rng.normal(size=(300, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y
