"""Checkpoint files: kept here for existing imports; the code lives in :mod:`clusterg.models.checkpoint`.

``python -m clusterg.train.checkpoint --trust OLD.pt NEW.pt`` converts a trusted legacy file
(see :func:`clusterg.models.checkpoint.convert_trusted_checkpoint`).
"""
from __future__ import annotations

import sys

from ..models.checkpoint import *  # noqa: F401,F403
from ..models.checkpoint import (FORMAT, FORMAT_VERSION, convert_trusted_checkpoint, load_checkpoint, main,  # noqa: F401
                                 packaged_weights, save_checkpoint)

if __name__ == "__main__":
    sys.exit(main())
