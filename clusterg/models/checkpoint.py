"""Checkpoint files for clusterg's learned models.

A checkpoint is a ``torch.save`` dict that holds only tensors and plain data (dicts, lists,
tuples, str, int, float, bool, None), so it is read with ``torch.load(weights_only=True)``,
which cannot run code::

    {"format": "clusterg-checkpoint", "format_version": 1,
     "model": "gcn-v" | "gcn-e" | "and" | "ada-gcn" | ...,
     "in_dim": int,            # feature dimension the model expects
     "config": {...},          # hyperparameters needed to rebuild the module (k, hidden dims, ...)
     "state_dict": {...},      # module weights
     "train_state": {...} | None,  # optimiser/scheduler/step, for resuming
     "meta": {...}}            # free text: data trained on, scores, time

:func:`load_checkpoint` turns every way a file can be wrong (missing, truncated,
not a checkpoint, a pickle with Python objects, missing fields, another model, another
feature dim, newer format) into a one-line :class:`~clusterg._validate.ClustergError`.

A file from an older clusterg (or any other tool) that holds Python objects is refused. If
you trust where it came from, convert it once::

    python -m clusterg.train.checkpoint --trust OLD.pt NEW.pt

The conversion never unpickles freely either: it reads the old file with torch's weights-only
unpickler, allowing numpy arrays and scalars besides tensors and plain values, so a file holding
anything else (code included) is refused, not run.
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._atomic import atomic_path
from .._validate import ClustergError

FORMAT = "clusterg-checkpoint"
FORMAT_VERSION = 1

__all__ = ["save_checkpoint", "load_checkpoint", "convert_trusted_checkpoint", "FORMAT_VERSION"]

_CONVERT_HINT = ("if you trust where the file came from, convert it once with "
                 "`python -m clusterg.train.checkpoint --trust {path} NEW.pt` (it reads tensors, numpy arrays "
                 "and plain values only)")


def _numpy_globals() -> list:
    """What numpy arrays and scalars unpickle through: the only globals the converter allows."""
    core = getattr(np, "_core", None) or np.core
    dtypes = {type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                          np.uint32, np.uint64, np.float16, np.float32, np.float64)}
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *sorted(dtypes, key=str)]


def _plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` with numpy values turned into tensors / Python numbers; raises on anything else.

    What comes back is what ``torch.load(weights_only=True)`` reads: tensors, dicts with
    str/int keys, lists, tuples, str, int, float, bool, None.
    """
    if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass but pickles as numpy
        return obj.item()
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    for base in (bool, int, float, str):  # subclasses (IntEnum, ...) become the plain type
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise ClustergError(f"{where}: object arrays cannot be stored in a checkpoint")
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise ClustergError(f"{where}: key {k!r} is not a str or int")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        vals = [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return tuple(vals) if isinstance(obj, tuple) else vals
    raise ClustergError(f"{where}: a {type(obj).__name__} cannot be stored in a checkpoint "
                        f"(only tensors and plain data)")


def save_checkpoint(path: str | os.PathLike, model: str, in_dim: int, config: dict[str, Any],
                    state_dict: dict[str, torch.Tensor], train_state: dict[str, Any] | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temp file + rename) and return its path."""
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": str(model), "in_dim": int(in_dim),
            "config": _plain(dict(config), "config"),
            "state_dict": {str(k): v.detach().cpu() for k, v in state_dict.items()},
            "train_state": _plain(train_state, "train_state"), "meta": _plain(dict(meta or {}), "meta")}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def _check_blob(blob: Any, path: Path) -> dict[str, Any]:
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ClustergError(f"{path} is not a clusterg checkpoint")
    try:
        version = int(blob.get("format_version", 0))
    except (TypeError, ValueError):
        raise ClustergError(f"checkpoint {path}: format_version is not an integer") from None
    if version > FORMAT_VERSION:
        raise ClustergError(f"checkpoint {path} has format version {blob['format_version']}; "
                            f"this clusterg reads up to {FORMAT_VERSION}: upgrade clusterg")
    kinds = {"model": str, "in_dim": int, "config": dict, "state_dict": dict}
    for key, kind in kinds.items():
        if key not in blob:
            raise ClustergError(f"checkpoint {path} has no {key!r} entry: not a complete clusterg checkpoint")
        if not isinstance(blob[key], kind) or isinstance(blob[key], bool):
            raise ClustergError(f"checkpoint {path}: {key!r} is a {type(blob[key]).__name__}, "
                                f"expected {kind.__name__}")
    if blob["in_dim"] < 1:
        raise ClustergError(f"checkpoint {path}: in_dim must be >= 1, got {blob['in_dim']}")
    for k, v in blob["state_dict"].items():
        if not isinstance(v, torch.Tensor):
            raise ClustergError(f"checkpoint {path}: state_dict[{k!r}] is not a tensor")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ClustergError(f"checkpoint {path}: weights {k!r} contain NaN or inf")
    if blob.get("train_state") is not None and not isinstance(blob["train_state"], dict):
        raise ClustergError(f"checkpoint {path}: 'train_state' is not a dict")
    if not isinstance(blob.get("meta", {}), dict):
        raise ClustergError(f"checkpoint {path}: 'meta' is not a dict")
    blob.setdefault("train_state", None)
    blob.setdefault("meta", {})
    return blob


def load_checkpoint(path: str | os.PathLike, model: str | None = None, in_dim: int | None = None) -> dict[str, Any]:
    """Read and check a checkpoint.

    Args:
        path: file written by :func:`save_checkpoint`.
        model: expected model name; a different one raises.
        in_dim: feature dimension of the data it will run on; a different one raises.
    """
    path = Path(path)
    if not path.exists():
        raise ClustergError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise ClustergError(f"checkpoint {path} is not a regular file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ClustergError(f"checkpoint {path}: cannot be read ({e.strerror})") from None
    if not raw.startswith(b"PK\x03\x04"):
        # not torch's zip layout: a legacy plain pickle (torch < 1.6 or pickle.dump), or junk
        raise ClustergError(f"checkpoint {path} is not in torch's zip format (a legacy pickle or not a checkpoint); "
                            f"clusterg refuses pickles because loading one can run code; "
                            + _CONVERT_HINT.format(path=path))
    try:
        # weights_only: only tensors and plain containers are rebuilt, no code from the file runs
        blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if "weights only" in str(e).lower() or "weights_only" in str(e).lower() or "unsupported" in str(e).lower():
            raise ClustergError(f"checkpoint {path} holds Python objects other than tensors and plain data, so "
                                f"it was not loaded (loading it could run code); "
                                + _CONVERT_HINT.format(path=path)) from None
        raise ClustergError(f"checkpoint {path} is truncated or not a clusterg checkpoint ({first[:80]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError,
            ImportError, IndexError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ClustergError(f"checkpoint {path} is truncated or not a clusterg checkpoint ({type(e).__name__})") from None
    blob = _check_blob(blob, path)
    if model is not None and blob.get("model") != model:
        raise ClustergError(f"checkpoint {path} holds a {blob.get('model')!r} model, expected {model!r}")
    if in_dim is not None and int(blob.get("in_dim", -1)) != int(in_dim):
        raise ClustergError(f"checkpoint {path} was trained on {blob.get('in_dim')}-d features but the data is "
                            f"{in_dim}-d; train a checkpoint for this feature dimension (clusterg train ...)")
    return blob


def convert_trusted_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rewrite a *trusted* legacy checkpoint (a pickle with Python objects) in the safe format.

    ``src`` (a ``torch.save`` file) is read with torch's weights-only unpickler, which besides
    tensors and plain values allows only numpy arrays and scalars: nothing in the file can run. Numpy arrays and scalars
    become tensors / numbers; a file holding any other object raises :class:`ClustergError`.
    """
    from .._atomic import guard_output
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ClustergError(f"checkpoint not found: {src}")
    guard_output(dst, [src])
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            blob = torch.load(src, map_location="cpu", weights_only=True)  # torch's zip or legacy format
    except Exception as e:  # anything a broken or disallowed pickle can raise
        raise ClustergError(f"{src}: cannot be read as tensors, numpy arrays and plain values "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); a plain pickle.dump "
                            f"file must be re-saved with torch.save by code you trust") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ClustergError(f"{src} is not a clusterg checkpoint")
    blob = _check_blob(dict(_plain({k: v for k, v in blob.items() if k != "state_dict"}, "checkpoint"),
                            state_dict={str(k): torch.as_tensor(v) for k, v in dict(blob.get("state_dict", {})).items()}),
                       src)
    return save_checkpoint(dst, blob["model"], blob["in_dim"], blob["config"], blob["state_dict"],
                           blob["train_state"], blob["meta"])


def main(argv: list[str] | None = None) -> int:
    """``python -m clusterg.train.checkpoint --trust OLD.pt NEW.pt``: convert a trusted legacy file."""
    ap = argparse.ArgumentParser(prog="python -m clusterg.train.checkpoint",
                                 description="Rewrite a trusted legacy clusterg checkpoint (a pickle) as one that "
                                             "torch.load(weights_only=True) reads. Loading the old file runs its "
                                             "code: only convert files you trust.")
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--trust", action="store_true", required=True,
                    help="confirm that SRC comes from a trusted source (required)")
    args = ap.parse_args(argv)
    try:
        out = convert_trusted_checkpoint(args.src, args.dst)
        load_checkpoint(out)
    except ClustergError as e:
        print(f"clusterg: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def packaged_weights(name: str) -> Path | None:
    """Path of a checkpoint shipped in ``clusterg/weights`` (``None`` if not shipped)."""
    p = Path(__file__).resolve().parent.parent / "weights" / name
    return p if p.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
