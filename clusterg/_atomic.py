"""Atomic file output and the output-path guard.

* :func:`atomic_path` writes to a temporary file beside the target, then renames it, so a
  crash or a bad input never leaves a partial output behind. Temporary files are named
  ``.<name>.clusterg-<pid>-<random>.tmp``: one left by a killed run (its pid no longer
  alive) is removed by the next write to the same output, and :func:`cleanup_temp_files`
  removes this process's own on SIGTERM / exit.
* :func:`guard_output` is the one check every command runs on each output path before any
  work: the path must not be an input of the run (symlinks and hard links resolved), must be
  absent or a regular file (never a device, FIFO, socket or folder), and its folder must exist
  and be writable.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from ._validate import ClustergError

__all__ = ["atomic_path", "atomic_open", "refuse_same_file", "guard_output", "guard_output_folder",
           "cleanup_temp_files", "remove_stale_temp_files"]

_TMP_TAG = "clusterg"
_LIVE: set[Path] = set()  # temporary files this process has open, for cleanup on SIGTERM / exit


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_temp_files(path: str | os.PathLike) -> int:
    """Delete temporary files of ``path`` left by runs that were killed (their pid is gone).

    Only names made by :func:`atomic_path` (``.<name>.clusterg-<pid>-...``) are touched;
    returns how many were removed.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    pat = re.compile(r"^\." + re.escape(path.name) + r"\." + _TMP_TAG + r"-(\d+)-")
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        m = pat.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            p = folder / name
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed += 1
    return removed


def cleanup_temp_files() -> None:
    """Remove the temporary files this process is still writing (SIGTERM handler, exit)."""
    for p in list(_LIVE):
        with contextlib.suppress(OSError):
            p.unlink()
        _LIVE.discard(p)


atexit.register(cleanup_temp_files)


def _check_target(path: Path, folder_ok: bool = False) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ClustergError(f"output {path}: cannot be inspected ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        if folder_ok:
            return
        raise ClustergError(f"output path is a folder: {path}")
    if not stat.S_ISREG(st.st_mode):
        raise ClustergError(f"output {path} exists and is not a regular file (a device, FIFO or socket); "
                            f"refusing to replace it")


def _check_folder(folder: Path, create: bool = False) -> None:
    if create:  # the nearest existing ancestor must be a writable folder
        probe = folder
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        folder = probe
    if not folder.is_dir():
        raise ClustergError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ClustergError(f"output folder is not writable: {folder}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    ``suffix`` keeps an extension some writers insist on (``np.savez`` adds ``.npz``).
    Refuses a target that exists and is not a regular file (``/dev/null``, a FIFO).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    _check_folder(folder)
    _check_target(path)
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_TMP_TAG}-{os.getpid()}-", suffix=(suffix or ".tmp"),
                               dir=folder)
    os.close(fd)
    tmp = Path(tmp)
    _LIVE.add(tmp)
    try:
        yield tmp
        _check_target(path)  # it may have changed while we wrote
        # mkstemp makes the file private (0600); give the output the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    finally:
        _LIVE.discard(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open()`` for writing that only replaces ``path`` when the block succeeds."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # same device and inode: symlinks and hard links alike
    except OSError:
        return False


def guard_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                 what: str = "output") -> Path:
    """Check an output path before any work; raise :class:`ClustergError` if it is unsafe.

    Refuses: a path that is (after resolving symlinks and hard links) one of ``inputs``;
    an existing path that is not a regular file (folder, device such as ``/dev/null``,
    FIFO, socket); a missing or unwritable folder. Returns ``Path(out)``.
    """
    out = Path(out)
    _check_target(out)
    for p in inputs:
        if p is None:
            continue
        p = Path(p)
        if _same(out, p) or (os.path.abspath(out) == os.path.abspath(p)):
            raise ClustergError(f"{what} {out} is an input of this run ({p}); refusing to overwrite it")
    _check_folder(out.parent if str(out.parent) else Path("."))
    return out


def guard_output_folder(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (),
                        what: str = "output folder") -> Path:
    """:func:`guard_output` for an output *folder* (created if missing): it must be a folder or
    absent, and its nearest existing ancestor a writable folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ClustergError(f"{what} {out} exists and is not a folder")
    _check_folder(out, create=True)
    return out


def refuse_same_file(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """Raise if ``out`` names one of the input files: inputs are never overwritten."""
    out = Path(out)
    for p in inputs:
        if p is None:
            continue
        p = Path(p)
        if _same(out, p):
            raise ClustergError(f"output {out} is an input file; refusing to overwrite it")
