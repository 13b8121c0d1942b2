"""Checks the command line runs before any work: input files exist, outputs are safe, numbers make sense.

:func:`check_args` is called by :func:`clusterg.cli.main.main` for every sub-command, so a
bad path or option fails in the first second with ``clusterg: error: ...`` (exit 2), not
after minutes of kNN search, embedding or training, and never after an output was written.
"""
from __future__ import annotations

import argparse
import math
import signal
from pathlib import Path

from .._atomic import guard_output, guard_output_folder
from .._validate import ClustergError

__all__ = ["check_args", "install_signal_handlers", "Terminated", "INPUT_ARGS"]

#: argparse destinations that name input files, and how the error calls them
INPUT_ARGS = {"features": "features", "labels": "labels", "knn": "kNN", "checkpoint": "checkpoint",
              "resume": "checkpoint to resume", "gcn_v": "GCN-V checkpoint", "input": "input", "gt": "labels",
              "pred": "labels"}
#: inputs an output may equal: resuming a training run into its own checkpoint is how runs continue
_MAY_BE_OUTPUT = {"resume"}
#: integer options that must be >= 1 when given
_POSITIVE_INT = ("k", "dim", "nprobe", "nlist", "n_clusters", "epochs", "batch_size", "hidden", "chunk", "n_ids",
                 "k_train", "and_epochs", "gcn_steps", "threads")
#: float options that must be > 0 when given
_POSITIVE_FLOAT = ("lr", "time_limit", "and_time", "gcn_time")


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that ``finally`` blocks remove temporary files."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised through a subprocess
    raise Terminated()


def install_signal_handlers() -> None:
    """SIGTERM unwinds like Ctrl-C (temporary outputs removed) instead of killing the process outright."""
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (main() called from a worker thread)
        pass


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_args(args: argparse.Namespace) -> None:
    """Validate paths and numbers of a parsed command line; raise :class:`ClustergError`."""
    values = vars(args)
    for dest, v in values.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ClustergError(f"{_flag(dest)}: must be a finite number, got {v}")
    for dest in _POSITIVE_INT:
        v = values.get(dest)
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            raise ClustergError(f"{_flag(dest)}: must be >= 1, got {v}")
    for dest in _POSITIVE_FLOAT:
        v = values.get(dest)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0:
            raise ClustergError(f"{_flag(dest)}: must be > 0, got {v}")

    inputs: list[Path] = []
    for dest, what in INPUT_ARGS.items():
        v = values.get(dest)
        if not isinstance(v, str):
            continue
        p = Path(v)
        if not p.exists():
            raise ClustergError(f"{what} file not found: {p}")
        if p.is_dir():
            raise ClustergError(f"{what} path is a folder, not a file: {p}")
        if dest not in _MAY_BE_OUTPUT:
            inputs.append(p)
            if dest == "features":
                from ..data.io import sidecar_path
                inputs.append(sidecar_path(p))

    for dest in ("labels", "gt", "pred"):  # a pickled or corrupt .npy label file fails now, in every command
        v = values.get(dest)
        if isinstance(v, str) and v.lower().endswith(".npy"):
            from ..data.io import read_meta
            read_meta(v)
    for dest in ("checkpoint", "resume", "gcn_v"):  # a bad checkpoint fails now, not after the kNN / embedding
        v = values.get(dest)
        if isinstance(v, str):
            from ..models.checkpoint import load_checkpoint
            load_checkpoint(v)  # weights_only: checks the format without running anything from the file

    out = values.get("output")
    if isinstance(out, str):
        if values.get("command") == "synth":
            guard_output_folder(out)
        else:
            guard_output(out, inputs)
    cache = values.get("cache")
    if isinstance(cache, str) and not values.get("no_cache"):
        guard_output(cache, inputs + ([Path(out)] if isinstance(out, str) else []), what="cache")
    export = values.get("export_folders")
    if isinstance(export, str):
        guard_output_folder(export, what="export folder")
