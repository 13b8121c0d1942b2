"""Loading the packaged (or a trained) checkpoint of a module: ``Module.from_pretrained(...)``."""
from __future__ import annotations

import os
from typing import Any

from .._validate import ClustergError

#: packaged weights by model, for 128-d dlib face embeddings
PACKAGED = {"gcn-v": "gcn_v_dlib128.pt", "gcn-e": "gcn_e_dlib128.pt", "ada-nets": "ada_nets_dlib128.pt"}


def load_blob(model: str, checkpoint: str | os.PathLike | None) -> dict[str, Any]:
    """The checked checkpoint dict of ``model`` (``checkpoint`` or the packaged weights)."""
    from ..models.checkpoint import load_checkpoint, packaged_weights
    if checkpoint is None:
        path = packaged_weights(PACKAGED[model])
        if path is None:
            raise ClustergError(f"the packaged {model} weights ({PACKAGED[model]}) are missing from this installation")
        checkpoint = path
    return load_checkpoint(checkpoint, model=model)


def load_state(module, state: dict, prefix: str, what: str):
    """``module`` with the ``prefix``-ed entries of ``state`` loaded, in eval mode."""
    try:
        module.load_state_dict({k[len(prefix):]: v.float() for k, v in state.items() if k.startswith(prefix)})
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise ClustergError(f"checkpoint weights do not fit {what} ({type(e).__name__})") from None
    return module.eval()
