"""Fixtures of the unit tests; the shared ones (real data, quiet bars) are in the root ``conftest.py``."""
import numpy as np
import pytest


@pytest.fixture
def blobs():
    """Small well-separated clusters on the sphere: (x float32 (300, 32), y int64)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 32))
    y = np.repeat(np.arange(10), 30)
    x = centers[y] + 0.15 * rng.normal(size=(300, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


@pytest.fixture
def faces():
    """40 identities x 10 unit vectors in 32-d (enough identities for the held-aside split)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(40, 32))
    y = np.repeat(np.arange(40), 10)
    x = centers[y] + 0.1 * rng.normal(size=(400, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y
