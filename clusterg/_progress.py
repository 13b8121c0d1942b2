"""Progress bars (tqdm) that the whole library can silence at once."""
from __future__ import annotations

import logging
import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_QUIET = os.environ.get("CLUSTERG_QUIET", "") not in ("", "0")

logger = logging.getLogger("clusterg")
logger.addHandler(logging.NullHandler())


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) every clusterg progress bar."""
    global _QUIET
    _QUIET = bool(quiet)


def is_quiet() -> bool:
    return _QUIET


def progress(it: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             disable: bool | None = None, **kw) -> tqdm:
    """A tqdm bar, hidden when quiet or when ``disable`` is True."""
    return tqdm(it, total=total, desc=desc, disable=_QUIET if disable is None else disable,
                leave=False, dynamic_ncols=True, **kw)
