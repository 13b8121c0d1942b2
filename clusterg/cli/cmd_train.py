"""``clusterg train MODEL ...``: each trainer module adds its own sub-command."""
from __future__ import annotations

import importlib
import json
import logging
import math

logger = logging.getLogger("clusterg.cli")

TRAINERS = ["clusterg.train.gcn_v", "clusterg.train.gcn_e", "clusterg.train.ada_nets"]


def register(subparsers, load: bool = True) -> None:
    """Add ``train``; its trainers (which import torch) are loaded only with ``load``, i.e. when
    ``train`` is the command being run, so that other commands and ``--help`` start at once."""
    p = subparsers.add_parser("train", help="train a learned clustering model on labelled features")
    sub = p.add_subparsers(dest="model", metavar="MODEL")
    sub.required = True
    if not load:
        return
    for mod in TRAINERS:
        try:
            m = importlib.import_module(mod)
        except ImportError as e:
            logger.debug("trainer %s not available: %s", mod, e)
            continue
        try:
            m.add_cli(sub)
        except Exception as e:  # one broken trainer must not hide the others
            logger.warning("trainer %s failed to load: %s: %s", mod, type(e).__name__, e)


def _plain(v):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None, tuples to lists."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy / torch scalars
        try:
            v = v.item()
        except (ValueError, TypeError):
            return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def print_result(args, summary: dict, text: str) -> None:
    """End a ``clusterg train`` run: with ``--json`` one JSON object on stdout (``summary``:
    model, checkpoint, epochs, losses, seconds, ...), else the line ``text``; logs stay on stderr."""
    if getattr(args, "json", False):
        print(json.dumps(_plain(summary), sort_keys=True))
    else:
        print(text)
