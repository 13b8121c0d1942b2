"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or a bad input never leaves a partial output file behind, and an input
file is never overwritten by accident (callers check :func:`refuse_same_file`).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ._validate import ClustergError

__all__ = ["atomic_path", "atomic_open", "refuse_same_file"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    ``suffix`` keeps an extension some writers insist on (``np.savez`` adds ``.npz``).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ClustergError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise ClustergError(f"output folder is not writable: {folder}")
    if path.is_dir():
        raise ClustergError(f"output path is a folder: {path}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=(suffix or ".tmp"), dir=folder)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give the output the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open()`` for writing that only replaces ``path`` when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def refuse_same_file(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """Raise if ``out`` names one of the input files: inputs are never overwritten."""
    out = Path(out)
    for p in inputs:
        if p is None:
            continue
        p = Path(p)
        if p.exists() and out.exists() and os.path.samefile(out, p):
            raise ClustergError(f"output {out} is an input file; refusing to overwrite it")
