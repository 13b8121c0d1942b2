"""GCN-V inference: rebuild the model from a checkpoint, its graph input, confidences and features.

Used by :class:`clusterg.cluster.GCNVClusterer` (and GCN-V + GCN-E) and by the trainers
(:mod:`clusterg.train.gcn_v`, :mod:`clusterg.train.gcn_e`).
"""
from __future__ import annotations

import numpy as np
import torch

from .._progress import is_quiet
from .._validate import ClustergError
from ..nn.gcn_v import GCNV
from ..nn.graph_conv import sparse_adj
from ..transforms.gcn_graph import adjacency_to_edges, build_adjacency
from .checkpoint import load_checkpoint

__all__ = ["load_gcn_v", "gcn_v_graph", "predict_gcn_v", "gcn_features"]


def _knn(x: np.ndarray, k: int, knn_method: str = "flat", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from ..knn import knn_search
    return knn_search(x, k, method=knn_method, seed=seed, quiet=True if is_quiet() else None)


def gcn_v_graph(x: np.ndarray, k: int, th_sim: float = 0.0, knn=None, knn_method: str = "flat", seed: int = 0):
    """kNN lists, normalised adjacency and ``Â x`` for L2-normalised ``x`` (N, D).

    Returns ``(nbrs (N,k), sims (N,k), x_agg torch (N, D))``. The graph is built exactly as
    :class:`~clusterg.transforms.GCNGraph` builds it and aggregated exactly as :class:`~clusterg.nn.GCNV`
    aggregates a dense ``edge_index`` (same edges, same sparse matrix), so the module path
    ``GCNV.from_pretrained()`` + ``graph_transform()`` reproduces the clusterer bit for bit.
    """
    if knn is None:
        nbrs, sims = _knn(x, k, knn_method, seed)
    else:
        nbrs, sims = knn
    edge_index, edge_weight = adjacency_to_edges(build_adjacency(nbrs, sims, th_sim))
    adj = sparse_adj(edge_index, edge_weight, len(x))
    from torch_geometric.utils import spmm
    with torch.no_grad():
        agg = spmm(adj, torch.from_numpy(np.ascontiguousarray(x)), reduce="sum")
    return np.asarray(nbrs), np.asarray(sims), agg


@torch.no_grad()
def predict_gcn_v(model: GCNV, x: np.ndarray, x_agg: torch.Tensor, batch_size: int = 65536):
    """Confidences (N,) numpy and hidden features (N, H) torch, in node chunks."""
    model.eval()
    xt = torch.from_numpy(np.ascontiguousarray(x))
    confs, hs = [], []
    for s in range(0, len(xt), batch_size):
        c, h = model(xt[s:s + batch_size], x_agg=x_agg[s:s + batch_size])
        confs.append(c)
        hs.append(h)
    return torch.cat(confs).numpy(), torch.cat(hs)


def gcn_features(hidden: torch.Tensor) -> np.ndarray:
    """GCN-V hidden features for the second kNN: centred, then L2-normalised (float32).

    Centring spreads the cosine similarities of the post-ReLU features, which
    otherwise all sit near 1.
    """
    h = hidden - hidden.mean(0, keepdim=True)
    h = torch.nn.functional.normalize(h, dim=1)
    # a zero row (all-equal hidden) would break cosine: give it a tiny unique direction
    zero = h.norm(dim=1) == 0
    if zero.any():
        h[zero, 0] = 1.0
    return h.numpy().astype(np.float32)


def _build_model(in_dim: int, config: dict) -> GCNV:
    return GCNV(in_dim, hidden=int(config["hidden"]))


def load_gcn_v(checkpoint, in_dim: int | None = None) -> tuple[GCNV, dict, dict]:
    """``(model in eval mode, config, blob)`` from a GCN-V checkpoint."""
    blob = load_checkpoint(checkpoint, model="gcn-v", in_dim=in_dim)
    config = blob["config"]
    try:
        model = _build_model(int(blob["in_dim"]), config)
        model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise ClustergError(f"checkpoint {checkpoint}: weights do not fit a GCN-V ({type(e).__name__})") from None
    model.eval()
    return model, config, blob
