"""Reading and writing features and labels in the MS1M clustering layout.

* ``*.bin``: raw little-endian float32, row-major, N x D, no header. D is not stored
  in the file: pass it, or let :func:`write_bin` record it in a sidecar ``<file>.json``
  (``{"dim": D, "n": N, "dtype": "float32"}``).
* ``*.meta``: one integer label a line (``-1`` allowed for unassigned predictions).

Large ``.bin``/``.npy`` files are memory-mapped read-only; validation walks them in
chunks so memory stays bounded. Every writer is atomic (temporary file + rename).
"""
from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_path
from .._validate import ClustergError, check_features, check_labels

__all__ = ["read_bin", "write_bin", "read_meta", "write_meta", "load_features", "sidecar_path"]

logger = logging.getLogger("clusterg.data")

_DTYPE = np.dtype("<f4")
_CHUNK_ELEMS = 1 << 24  # ~64 MB of float32 per validation/write chunk
_NPZ_KEYS = ("x", "features", "feats", "data")


def sidecar_path(path: str | os.PathLike) -> Path:
    """The metadata file written next to a ``.bin``: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _existing_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise ClustergError(f"{what} file not found: {path}")
    if not path.is_file():
        raise ClustergError(f"{what} path is not a file: {path}")
    return path


def _check_dim(dim) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or int(dim) < 1:
        raise ClustergError(f"dim must be a positive integer, got {dim!r}")
    return int(dim)


def _read_sidecar(path: Path) -> dict | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
        dim = _check_dim(meta["dim"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ClustergError(f"{side}: unreadable sidecar ({e}); pass --dim explicitly or delete it") from None
    dtype = meta.get("dtype", "float32")
    if dtype != "float32":
        raise ClustergError(f"{side}: dtype {dtype!r} is not supported (only float32)")
    return {"dim": dim, "n": meta.get("n")}


def read_bin(path: str | os.PathLike, dim: int | None = None, mmap: bool = True) -> np.ndarray:
    """Read a raw float32 ``.bin`` feature file.

    Parameters
    ----------
    path : path to the file (little-endian float32, row-major, no header).
    dim : feature dimension D. Default None reads it from the sidecar ``<path>.json``;
        with neither, a :class:`ClustergError` asks for ``--dim``.
    mmap : default True returns a read-only ``np.memmap`` (nothing is loaded yet);
        False reads the whole file into memory.

    Returns
    -------
    float32 array of shape (N, D). Values are not checked here (see :func:`load_features`).
    """
    path = _existing_file(path, "features")
    side = _read_sidecar(path)
    if dim is None:
        if side is None:
            raise ClustergError(f"{path}: the feature dimension is unknown (no {sidecar_path(path).name}); "
                                f"pass --dim D")
        dim = side["dim"]
    dim = _check_dim(dim)
    if side is not None and side["dim"] != dim:
        raise ClustergError(f"{path}: dim={dim} was given but its sidecar {sidecar_path(path).name} says "
                            f"{side['dim']}; drop --dim or fix the sidecar")
    size = path.stat().st_size
    if size == 0:
        raise ClustergError(f"{path}: file is empty")
    row = _DTYPE.itemsize * dim
    if size % row:
        raise ClustergError(f"{path}: size {size} bytes is not a multiple of 4*D = {row}: "
                            f"truncated or wrong --dim (D={dim})")
    n = size // row
    if side is not None and side.get("n") not in (None, n):
        raise ClustergError(f"{path}: holds {n} rows but its sidecar says {side['n']}: truncated file?")
    if mmap:
        x = np.memmap(path, dtype=_DTYPE, mode="r", shape=(n, dim))
    else:
        x = np.fromfile(path, dtype=_DTYPE).reshape(n, dim)
    if x.dtype != np.float32:  # only on big-endian hosts
        x = x.astype(np.float32)
    return x


def _chunks(n: int, d: int):
    step = max(1, _CHUNK_ELEMS // max(d, 1))
    for s in range(0, n, step):
        yield s, min(n, s + step)


def write_bin(path: str | os.PathLike, x) -> Path:
    """Write an (N, D) array as raw little-endian float32 plus the sidecar ``<path>.json``.

    Both files are written atomically; values must be finite and N, D >= 1.
    Accepts numpy arrays (memmaps included) and torch tensors. Returns ``Path(path)``.
    """
    path = Path(path)
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2:
        raise ClustergError(f"features: expected shape (N, D), got shape {tuple(x.shape)}")
    n, d = x.shape
    if n == 0 or d == 0:
        raise ClustergError(f"features: cannot write an empty array of shape {(n, d)}")
    side = sidecar_path(path)
    with atomic_path(path) as tmp_bin, atomic_path(side) as tmp_side:
        with open(tmp_bin, "wb") as f:
            for s, e in _chunks(n, d):
                # validate chunk by chunk so a 5M x 256 memmap never needs a full copy
                part = check_features(x[s:e], name="features", allow_zero=True)
                f.write(part.astype(_DTYPE, copy=False).tobytes(order="C"))
        tmp_side.write_text(json.dumps({"dim": d, "n": n, "dtype": "float32"}) + "\n")
    return path


def read_meta(path: str | os.PathLike) -> np.ndarray:
    """Read a ``.meta`` label file: one integer a line, trailing blank lines ignored.

    Returns int64 of shape (N,). A line that is not an integer, or one outside int64,
    raises a :class:`ClustergError` naming its (1-based) line number. A ``.npy`` file
    holding a 1-D integer array is read too (never a pickle).
    """
    path = _existing_file(path, "labels")
    if path.suffix.lower() == ".npy":
        try:
            y = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises ValueError/OSError/EOFError for broken or pickled files
            raise ClustergError(f"{path}: not a readable .npy label file ({type(e).__name__}; pickles are "
                                f"refused)") from None
        if not isinstance(y, np.ndarray):
            raise ClustergError(f"{path}: not a .npy label array")
        return check_labels(y, name=str(path))
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ClustergError(f"{path}: not a text label file") from None
    except OSError as e:
        raise ClustergError(f"{path}: cannot be read ({e.strerror})") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ClustergError(f"{path}: no labels (empty file)")
    try:
        return np.array(lines, dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    lim = np.iinfo(np.int64)
    for i, line in enumerate(lines, 1):  # slow path only to name the bad line
        try:
            v = int(line.strip())
        except ValueError:
            raise ClustergError(f"{path}: line {i} is not an integer label: {line.strip()[:40]!r}") from None
        if not lim.min <= v <= lim.max:
            raise ClustergError(f"{path}: line {i}: label {line.strip()[:40]} does not fit in int64")
    return np.array([int(v) for v in lines], dtype=np.int64)


def write_meta(path: str | os.PathLike, labels) -> Path:
    """Write labels (N,) as a ``.meta`` file, one integer a line, atomically. Returns ``Path(path)``."""
    y = check_labels(labels, name="labels")
    if len(y) == 0:
        raise ClustergError("labels: nothing to write (0 labels)")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(map(str, y.tolist())) + "\n")
    return path


def _validate_chunked(x: np.ndarray, name: str) -> None:
    if x.ndim != 2:
        raise ClustergError(f"{name}: expected shape (N, D), got shape {tuple(x.shape)}")
    n, d = x.shape
    if n == 0 or d == 0:
        raise ClustergError(f"{name}: empty feature array of shape {(n, d)}")
    for s, e in _chunks(n, d):
        ok = np.isfinite(x[s:e]).all(axis=1)
        if not ok.all():
            raise ClustergError(f"{name}: contains NaN or inf (first bad row {s + int(np.argmin(ok))})")


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError for broken files
        raise ClustergError(f"{path}: not a readable .npy file ({type(e).__name__}: {e})") from None


def _load_npz(path: Path, key: str | None) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if key is not None:
                if key not in names:
                    raise ClustergError(f"{path}: no array named {key!r} (has: {', '.join(names) or 'none'})")
                return z[key]
            for k in _NPZ_KEYS:
                if k in names:
                    return z[k]
            if len(names) == 1:
                return z[names[0]]
            raise ClustergError(f"{path}: cannot tell which array holds the features "
                                f"(has: {', '.join(names) or 'none'}); pass key=")
    except ClustergError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise ClustergError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def load_features(path: str | os.PathLike, dim: int | None = None, key: str | None = None,
                  validate: bool = True, mmap: bool = True) -> np.ndarray:
    """Load an (N, D) float32 feature matrix from ``.bin``, ``.npy`` or ``.npz``.

    Parameters
    ----------
    path : ``.bin`` (raw float32; ``dim`` or a sidecar needed), ``.npy`` or ``.npz``.
    dim : feature dimension for ``.bin`` files (default: from the sidecar).
    key : array name inside a ``.npz``; default tries ``x``, ``features``, ``feats``,
        ``data``, then the only array.
    validate : default True checks 2-D shape and finite values, chunk by chunk.
    mmap : default True memory-maps ``.bin`` and float32 ``.npy`` files read-only.

    Returns
    -------
    float32 array of shape (N, D) (a read-only memmap when mapped).
    """
    path = _existing_file(path, "features")
    ext = path.suffix.lower()
    if ext == ".bin":
        x = read_bin(path, dim=dim, mmap=mmap)
    elif ext == ".npy":
        x = _load_npy(path, mmap)
    elif ext == ".npz":
        x = _load_npz(path, key)
    else:
        raise ClustergError(f"{path}: unknown feature format {ext or '(no extension)'!r}; "
                            f"use .bin (with --dim), .npy or .npz")
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ClustergError(f"{path}: expected numeric features, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ClustergError(f"{path}: expected features of shape (N, D), got shape {tuple(x.shape)}")
    if dim is not None and ext != ".bin" and x.shape[1] != _check_dim(dim):
        raise ClustergError(f"{path}: features have D={x.shape[1]} but dim={dim} was given")
    if x.dtype != np.float32:
        x = np.asarray(x, dtype=np.float32)  # a copy: only float32 can stay mapped
    if validate:
        _validate_chunked(x, name=str(path))
    logger.debug("loaded %s: %d x %d", path, x.shape[0], x.shape[1])
    return x
