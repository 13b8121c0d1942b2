"""``clusterg train MODEL ...``: each trainer module adds its own sub-command."""
from __future__ import annotations

import importlib
import logging

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
