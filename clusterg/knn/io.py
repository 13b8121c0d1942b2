"""kNN files in learn-to-cluster's layout: ``knns/<split>/faiss_k_<k>.npz``.

The npz holds one array ``data`` of shape ``(N, 2, k)``: ``[:, 0, :]`` the
neighbour ids (stored as floats, exact up to 2**24 ids in float32, float64 above),
``[:, 1, :]`` the cosine distances ``1 - sim``; self first.
"""
from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from .._validate import ClustergError

logger = logging.getLogger("clusterg.knn")

__all__ = ["save_knn", "load_knn", "knn_path", "check_knn"]


def knn_path(root: str | os.PathLike, split: str, k: int) -> Path:
    """``root/knns/<split>/faiss_k_<k>.npz`` (root is an MS1M-layout folder)."""
    return Path(root) / "knns" / split / f"faiss_k_{int(k)}.npz"


_SIM_EPS = 1e-3  # cosine similarities stored as float32 distances: a little past +-1 is rounding
_SORT_EPS = 1e-5


def check_knn(nbrs, sims, n: int | None = None, name: str = "knn",
              allow_pad: bool = False, strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validate a ``(nbrs, sims)`` pair; returns int64 / float32 arrays.

    ``allow_pad`` accepts ``-1`` ids (faiss's padding) for consumers that skip them.
    ``strict`` (used for files, see :func:`load_knn`) also requires what a cosine kNN of
    the points themselves must satisfy: similarities in ``[-1 - 1e-3, 1 + 1e-3]``; column 0
    the point itself (or a duplicate of it, similarity >= 0.9999); columns 1.. sorted by
    descending similarity (tolerance 1e-5); no id listed twice in a row.
    """
    nbrs, sims = np.asarray(nbrs), np.asarray(sims)
    if nbrs.ndim != 2 or nbrs.shape != sims.shape:
        raise ClustergError(f"{name}: expected nbrs and sims of equal shape (N, k), got {nbrs.shape} and {sims.shape}")
    if n is not None and nbrs.shape[0] != n:
        raise ClustergError(f"{name}: has {nbrs.shape[0]} rows but there are {n} points")
    if np.issubdtype(nbrs.dtype, np.floating):
        if not np.isfinite(nbrs).all() or (nbrs != np.round(nbrs)).any():
            raise ClustergError(f"{name}: neighbour ids are not whole numbers")
        if nbrs.size and np.abs(nbrs).max() >= 2.0 ** 62:
            raise ClustergError(f"{name}: neighbour id {np.abs(nbrs).max():.3g} is far out of range")
    elif not np.issubdtype(nbrs.dtype, np.integer):
        raise ClustergError(f"{name}: neighbour ids have dtype {nbrs.dtype}")
    nbrs = nbrs.astype(np.int64, copy=False)
    rows = nbrs.shape[0]
    lo = -1 if allow_pad else 0
    if nbrs.size and (nbrs.min() < lo or nbrs.max() >= rows):
        raise ClustergError(f"{name}: neighbour ids must lie in [0, {rows}){' (or -1 for padding)' if allow_pad else ''};"
                            f" found {int(nbrs.min())}..{int(nbrs.max())}")
    if not (np.issubdtype(sims.dtype, np.floating) or np.issubdtype(sims.dtype, np.integer)):
        raise ClustergError(f"{name}: similarities have dtype {sims.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: refused below
        sims = sims.astype(np.float32, copy=False)
    if not np.isfinite(sims).all():
        raise ClustergError(f"{name}: similarities contain NaN or inf")
    if strict and nbrs.size:
        _check_plausible(nbrs, sims, name)
    return nbrs, sims


def _check_plausible(nbrs: np.ndarray, sims: np.ndarray, name: str) -> None:
    lo, hi = float(sims.min()), float(sims.max())
    if lo < -1 - _SIM_EPS or hi > 1 + _SIM_EPS:
        raise ClustergError(f"{name}: cosine similarities must lie in [-1, 1]; found {lo:.4g}..{hi:.4g} "
                            f"(a file of raw inner products or of other data?)")
    rows = np.arange(nbrs.shape[0])
    off = np.flatnonzero((nbrs[:, 0] != rows) & (sims[:, 0] < 1 - 1e-4))
    if len(off):
        r = int(off[0])
        raise ClustergError(f"{name}: column 0 must be the point itself; row {r} starts with {int(nbrs[r, 0])} "
                            f"({len(off)} such rows): not a kNN of these points in learn-to-cluster's layout")
    if nbrs.shape[1] > 2:
        d = np.diff(sims[:, 1:], axis=1)
        bad = np.flatnonzero((d > _SORT_EPS).any(axis=1))
        if len(bad):
            raise ClustergError(f"{name}: row {int(bad[0])} is not sorted by descending similarity "
                                f"({len(bad)} such rows)")
    if nbrs.shape[1] > 1:
        srt = np.sort(nbrs, axis=1)
        rep = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        bad = np.flatnonzero(rep.any(axis=1))
        if len(bad):
            r = int(bad[0])
            raise ClustergError(f"{name}: row {r} lists a neighbour twice ({len(bad)} such rows): "
                                f"not a valid kNN file")


def save_knn(path: str | os.PathLike, nbrs: np.ndarray, sims: np.ndarray, compress: bool = False) -> Path:
    """Write ``(nbrs, sims)`` as ``(N, 2, k)`` array ``data`` (ids, 1 - sim); atomic."""
    nbrs, sims = check_knn(nbrs, sims, allow_pad=True)
    dtype = np.float32 if nbrs.shape[0] <= 2 ** 24 else np.float64
    data = np.empty((nbrs.shape[0], 2, nbrs.shape[1]), dtype=dtype)
    data[:, 0, :] = nbrs
    data[:, 1, :] = 1.0 - sims
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # the MS1M layout's knns/<split>/ (the CLI refuses a new folder)
    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compress else np.savez)(tmp, data=data)
    return path


def load_knn(path: str | os.PathLike, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a kNN npz (learn-to-cluster layout); ``n`` checks the number of rows.

    The file is checked as :func:`check_knn` with ``strict=True`` (ranges, self first,
    sorted rows, no repeated neighbour). An ``.npy`` holding the ``(N, 2, k)`` array is
    read too; pickles never are.
    """
    path = Path(path)
    if not path.exists():
        raise ClustergError(f"kNN file not found: {path}")
    if not path.is_file():
        raise ClustergError(f"kNN path is not a regular file: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        if isinstance(z, np.ndarray):
            data = z
        else:
            with z:
                key = "data" if "data" in z.files else (z.files[0] if len(z.files) == 1 else None)
                if key is None:
                    raise ClustergError(f"{path}: expected an array named 'data', found {z.files}")
                data = z[key]
    except ClustergError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as e:
        raise ClustergError(f"{path}: not a readable kNN npz file ({type(e).__name__})") from None
    if data.dtype == object or not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise ClustergError(f"{path}: expected a numeric array, got dtype {data.dtype}")
    if data.ndim != 3 or data.shape[1] != 2:
        raise ClustergError(f"{path}: expected an array of shape (N, 2, k), got {data.shape}")
    return check_knn(data[:, 0, :], 1.0 - data[:, 1, :], n=n, name=str(path), strict=True)
