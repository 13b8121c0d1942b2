"""Input checks shared by every public function.

All failures raise :class:`ClustergError` (a ``ValueError``) with a one-line
message that names the argument and the problem, so the CLI can print it as is.
"""
from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger("clusterg")

_F32_MAX = float(np.finfo(np.float32).max)
_F32_TINY = float(np.finfo(np.float32).tiny)
_SAFE_NORM = (1e-15, 1e15)  # row norms whose float32 sum of squares neither underflows nor overflows

__all__ = ["ClustergError", "check_features", "check_labels", "check_k", "check_same_length", "check_int"]


class ClustergError(ValueError):
    """Bad input or a file that cannot be used; the message is one line for users."""


ROW_BLOCK = 1 << 16  # rows read at once by checks and statistics over (N, D) or (N, k) arrays


def check_features(x, name: str = "features", min_n: int = 1, normalize: bool = False,
                   allow_zero: bool = False) -> np.ndarray:
    """Validate an (N, D) float matrix and return it as C-contiguous float32.

    Rejects: wrong rank, non-numeric dtype, N < ``min_n``, D == 0, NaN/inf, and
    (unless ``allow_zero``) all-zero rows, which have no direction for cosine
    similarity. With ``normalize`` the rows are L2-normalised in float64 and rounded to float32 (a
    copy), so scaling the features by 1e37 or 1e-22 gives the same directions and normalised input
    comes back unchanged. Values beyond
    float32's range (from float64 input) raise; values below ~1e-31 log a warning (few
    significant digits left in float32). Torch tensors are accepted and converted.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch here
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as e:  # ragged lists and the like
            raise ClustergError(f"{name}: cannot be read as an array ({e})") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ClustergError(f"{name}: expected a float array, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ClustergError(f"{name}: expected shape (N, D), got shape {tuple(x.shape)}")
    n, d = x.shape
    if d == 0:
        raise ClustergError(f"{name}: feature dimension D is 0")
    if n < min_n:
        raise ClustergError(f"{name}: need at least {min_n} points, got N={n}")
    if n == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    for s in range(0, n, ROW_BLOCK):  # in blocks: a whole (N, D) mask is a quarter of float32 X
        finite = np.isfinite(x[s:s + ROW_BLOCK]).all(axis=1)
        if not finite.all():
            raise ClustergError(f"{name}: contains NaN or inf (first bad row {s + int(np.flatnonzero(~finite)[0])})")
    if x.dtype != np.float32:
        big = float(np.abs(x).max())
        if big > _F32_MAX:
            raise ClustergError(f"{name}: values up to {big:.3g} exceed float32's range ({_F32_MAX:.3g}); "
                                f"rescale the features (cosine similarity does not depend on scale)")
    x = np.ascontiguousarray(x, dtype=np.float32)
    with np.errstate(over="ignore", under="ignore"):  # per block of rows: the same values, no (N, D) temporary
        norms = np.concatenate([np.linalg.norm(x[s:s + ROW_BLOCK], axis=1) for s in range(0, n, ROW_BLOCK)])
    # float32 sums of squares overflow above ~1e19 and underflow below ~1e-19: redo those rows in float64
    odd = ~((norms >= _SAFE_NORM[0]) & (norms <= _SAFE_NORM[1]))
    if odd.any():
        rows = np.flatnonzero(odd)
        n64 = np.linalg.norm(x[rows].astype(np.float64), axis=1)
        tiny = (n64 > 0) & (np.abs(x[rows]).max(axis=1) < _F32_TINY * 2 ** 23)
        if tiny.any():
            logger.warning("%s: %d rows have values so small (< 1e-31) that float32 keeps few significant "
                           "digits; rescale the features", name, int(tiny.sum()))
        extreme = int((n64 > 0).sum())
        if not normalize and extreme:
            logger.warning("%s: %d rows have norms outside [1e-15, 1e15]; float32 products of such rows "
                           "overflow or underflow: normalise or rescale the features", name, extreme)
    else:
        rows, n64 = None, None
    zero = norms == 0
    if rows is not None:
        zero[rows] = n64 == 0
    if not allow_zero and zero.any():
        bad = int(np.flatnonzero(zero)[0])
        raise ClustergError(f"{name}: row {bad} is a zero vector, which has no cosine similarity")
    if normalize:
        # norms and division in float64 (then rounded once to float32), per block of rows: scale-robust
        # (no float32 overflow or underflow), and rows already of unit length come back unchanged, so
        # X and its normalised copy give the same kNN graph and the same clusters
        out = np.empty_like(x)
        for s in range(0, n, ROW_BLOCK):
            b = x[s:s + ROW_BLOCK].astype(np.float64)
            out[s:s + ROW_BLOCK] = b / np.maximum(np.linalg.norm(b, axis=1), 1e-300)[:, None]
        x = out
    return x


def check_labels(y, name: str = "labels", n: int | None = None, allow_negative: bool = True) -> np.ndarray:
    """Validate a 1-D integer labelling and return it as int64.

    Float arrays are accepted only when every value is a finite whole number.
    ``n`` checks the length against the number of features.
    """
    if hasattr(y, "detach") and hasattr(y, "cpu"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        raise ClustergError(f"{name}: expected a 1-D array, got shape {tuple(y.shape)}")
    if y.dtype == object or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
                                 or y.dtype == bool):
        raise ClustergError(f"{name}: expected integer labels, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all():
            raise ClustergError(f"{name}: contains NaN or inf")
        if (y != np.round(y)).any():
            raise ClustergError(f"{name}: labels must be whole numbers")
    if np.issubdtype(y.dtype, np.unsignedinteger) and len(y) and int(y.max()) > np.iinfo(np.int64).max:
        raise ClustergError(f"{name}: label {int(y.max())} does not fit in int64")
    if np.issubdtype(y.dtype, np.floating) and len(y) and float(np.abs(y).max()) >= 2.0 ** 63:
        raise ClustergError(f"{name}: label {float(np.abs(y).max()):.3g} does not fit in int64")
    y = y.astype(np.int64)
    if n is not None and len(y) != n:
        raise ClustergError(f"{name}: has {len(y)} entries but there are {n} points")
    if not allow_negative and len(y) and y.min() < 0:
        raise ClustergError(f"{name}: negative label {int(y.min())}")
    return y


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str = "gt", name_b: str = "pred") -> None:
    if len(a) != len(b):
        raise ClustergError(f"{name_a} has {len(a)} entries but {name_b} has {len(b)}")


def check_k(k, n: int, name: str = "k", clamp: bool = False, min_k: int = 1) -> int:
    """Validate a neighbour count ``k`` (self included) against N points.

    ``k > n`` raises, or with ``clamp`` returns ``n`` (callers log a warning).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ClustergError(f"{name}: expected an integer, got {k!r}")
    k = int(k)
    if k < min_k:
        raise ClustergError(f"{name}: must be >= {min_k}, got {k}")
    if k > n:
        if clamp:
            return n
        raise ClustergError(f"{name}={k} is larger than the number of points N={n}; use k <= N")
    return k


def check_threshold(t, name: str = "threshold", lo: float = -1.0, hi: float = 1.0) -> float:
    try:
        t = float(t)
    except (TypeError, ValueError):
        raise ClustergError(f"{name}: expected a number, got {t!r}") from None
    if not np.isfinite(t) or t < lo or t > hi:
        raise ClustergError(f"{name}: must lie in [{lo}, {hi}], got {t}")
    return t


def check_int(v, name: str, lo: int) -> int:
    """``v`` as an int >= ``lo`` (bools and non-integers are errors)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ClustergError(f"{name}: expected an integer, got {v!r}")
    v = int(v)
    if v < lo:
        raise ClustergError(f"{name}: must be >= {lo}, got {v}")
    return v
