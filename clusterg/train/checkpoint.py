"""Checkpoint files for clusterg's learned models.

A checkpoint is a ``torch.save`` dict::

    {"format": "clusterg-checkpoint", "format_version": 1,
     "model": "gcn-v" | "gcn-e" | "and" | "ada-gcn" | ...,
     "in_dim": int,            # feature dimension the model expects
     "config": {...},          # hyperparameters needed to rebuild the module (k, hidden dims, ...)
     "state_dict": {...},      # module weights
     "train_state": {...} | None,  # optimiser/scheduler/step, for resuming
     "meta": {...}}            # free text: data trained on, scores, time

:func:`load_checkpoint` turns every way a file can be wrong (missing, truncated,
not a checkpoint, another model, another feature dim, newer format) into a
one-line :class:`~clusterg._validate.ClustergError`.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .._atomic import atomic_path
from .._validate import ClustergError

FORMAT = "clusterg-checkpoint"
FORMAT_VERSION = 1

__all__ = ["save_checkpoint", "load_checkpoint", "FORMAT_VERSION"]


def save_checkpoint(path: str | os.PathLike, model: str, in_dim: int, config: dict[str, Any],
                    state_dict: dict[str, torch.Tensor], train_state: dict[str, Any] | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temp file + rename) and return its path."""
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": str(model), "in_dim": int(in_dim),
            "config": dict(config), "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
            "train_state": train_state, "meta": dict(meta or {})}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, model: str | None = None, in_dim: int | None = None) -> dict[str, Any]:
    """Read and check a checkpoint.

    Args:
        path: file written by :func:`save_checkpoint`.
        model: expected model name; a different one raises.
        in_dim: feature dimension of the data it will run on; a different one raises.
    """
    path = Path(path)
    if not path.is_file():
        raise ClustergError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
        blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError, AttributeError,
            ImportError, IndexError, KeyError) as e:
        raise ClustergError(f"checkpoint {path} is truncated or not a clusterg checkpoint ({type(e).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ClustergError(f"{path} is not a clusterg checkpoint")
    if int(blob.get("format_version", 0)) > FORMAT_VERSION:
        raise ClustergError(f"checkpoint {path} has format version {blob['format_version']}; "
                            f"this clusterg reads up to {FORMAT_VERSION}: upgrade clusterg")
    if model is not None and blob.get("model") != model:
        raise ClustergError(f"checkpoint {path} holds a {blob.get('model')!r} model, expected {model!r}")
    if in_dim is not None and int(blob.get("in_dim", -1)) != int(in_dim):
        raise ClustergError(f"checkpoint {path} was trained on {blob.get('in_dim')}-d features but the data is "
                            f"{in_dim}-d; train a checkpoint for this feature dimension (clusterg train ...)")
    return blob


def packaged_weights(name: str) -> Path | None:
    """Path of a checkpoint shipped in ``clusterg/weights`` (``None`` if not shipped)."""
    p = Path(__file__).resolve().parent.parent / "weights" / name
    return p if p.is_file() else None
