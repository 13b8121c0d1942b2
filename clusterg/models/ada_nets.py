"""Ada-NETS inference: rebuild AND + the GCN encoder from a checkpoint, refine embeddings, link.

Used by :class:`clusterg.cluster.AdaNetsClusterer` and by the trainer
(:mod:`clusterg.train.ada_nets`), which writes the checkpoints these functions read.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from .._validate import ClustergError, check_features
from ..nn.ada_gcn import AdaGCN
from ..nn.and_module import AND, and_inputs  # noqa: F401 (re-exported)
from ..transforms.adaptive_graph import adaptive_adjacency
from ..transforms.structure_space import structure_space

__all__ = ["MODEL_NAME", "DEFAULT_CONFIG", "mean_adjacency", "embed", "predict_k", "refine", "link",
           "models_from_checkpoint"]

#: the ``model`` entry of an Ada-NETS checkpoint
MODEL_NAME = "ada-nets"


def mean_adjacency(nbrs: np.ndarray, k_hat) -> sp.csr_matrix:
    """Unweighted mean-aggregation matrix (the 'gcn' aggregator) of a kNN-list graph.

    Row i averages node i and its neighbours in the symmetrised graph that keeps
    positions ``< k_hat[i]`` of each list (k_hat: int (N,) or a scalar).
    Shape (N, N), rows sum to 1.
    """
    ones = np.ones(np.shape(nbrs), dtype=np.float32)
    a = adaptive_adjacency(nbrs, ones, k_hat, self_loops=False, normalize=False)
    a.data[:] = 1.0
    a = (a + sp.identity(a.shape[0], dtype=np.float32, format="csr")).tocsr()
    a.data[:] = 1.0
    rs = np.asarray(a.sum(axis=1)).ravel()
    out = (sp.diags((1.0 / rs).astype(np.float32)) @ a).tocsr().astype(np.float32)
    out.sort_indices()
    return out


@torch.no_grad()
def embed(model: AdaGCN, x: np.ndarray, adj: sp.csr_matrix, chunk_size: int = 65536) -> np.ndarray:
    """Refined embeddings ``float32 (N, out_dim)`` of ``x`` (N, D) on a mean adjacency ``adj``.

    Runs :meth:`AdaGCN.encode` on ``adj`` stored as :func:`~clusterg.nn.graph_conv.sparse_adj` stores it,
    the code ``AdaGCN.forward(x, edge_index)`` runs: on the same graph the two give identical bits.
    """
    x = check_features(x, allow_zero=True)
    if x.shape[1] != model.in_dim:
        raise ClustergError(f"features are {x.shape[1]}-d but the encoder expects {model.in_dim}-d")
    if adj.shape != (len(x), len(x)):
        raise ClustergError(f"adj: expected shape ({len(x)}, {len(x)}), got {adj.shape}")
    from ..nn.graph_conv import sparse_adj
    from ..transforms.gcn_graph import adjacency_to_edges
    model.eval()
    edge_index, edge_weight = adjacency_to_edges(adj)
    adj_t = sparse_adj(edge_index, edge_weight, len(x))
    return model.encode(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), adj_t,
                        chunk_size).numpy().astype(np.float32)


@torch.no_grad()
def predict_k(model: AND, x: np.ndarray, ss_nbrs: np.ndarray, ss_sims: np.ndarray, ss_cos: np.ndarray,
              batch_size: int = 2048) -> np.ndarray:
    """Predicted neighbour counts ``k_hat`` int64 (N,) in 1..K (``round(pred * K)``): :meth:`AND.predict_k`."""
    return model.predict_k(x, ss_nbrs, ss_sims, ss_cos, batch_size=batch_size)


#: Ada-NETS settings; a checkpoint's ``config`` overrides them (:func:`models_from_checkpoint`).
DEFAULT_CONFIG: dict[str, Any] = {
    "k": 80, "lam": 0.3, "beta": 0.5, "and_arch": "lstm", "and_hidden": 128, "gcn_hidden": 512, "gcn_out": 512,
    "graph": "and", "k_graph": 5, "k_final": 20, "threshold": 0.9, "min_sim": 0.9, "linkage": "cc",
}


def refine(x: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, and_model: AND | None, gcn: AdaGCN,
           config: dict[str, Any], quiet: bool | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Ada-NETS embeddings of ``x`` (N, D) given its kNN (self first).

    Structure space (``config['k']``, ``config['lam']``), then the graph the GCN
    runs on: ``graph='and'`` keeps each node's first ``k_hat`` structure-space
    neighbours (k_hat from AND), ``graph='knn'`` the first ``k_graph`` plain kNN.
    Returns ``(z float32 (N, out_dim), extras)`` with extras ``k_hat`` (or None).
    """
    k = min(int(config["k"]), nbrs.shape[1])
    extras: dict[str, Any] = {"k_hat": None}
    if config.get("graph", "and") == "and":
        if and_model is None:
            raise ClustergError("the 'and' graph needs an AND model")
        if k < 2:
            k_hat = np.ones(len(x), dtype=np.int64)
            ss_nbrs = nbrs[:, :1]
        else:
            ss_nbrs, ss_sims, ss_cos = structure_space(nbrs, sims, k=k, lam=float(config["lam"]),
                                                       return_cosine=True, quiet=quiet)
            if k < and_model.k:  # tiny inputs: pad the list with its last entry
                pad = and_model.k - k
                ss_nbrs_p = np.concatenate([ss_nbrs, np.repeat(ss_nbrs[:, -1:], pad, 1)], 1)
                ss_sims_p = np.concatenate([ss_sims, np.repeat(ss_sims[:, -1:], pad, 1)], 1)
                ss_cos_p = np.concatenate([ss_cos, np.repeat(ss_cos[:, -1:], pad, 1)], 1)
                k_hat = np.minimum(predict_k(and_model, x, ss_nbrs_p, ss_sims_p, ss_cos_p), k)
            else:
                k_hat = predict_k(and_model, x, ss_nbrs[:, :and_model.k], ss_sims[:, :and_model.k],
                                  ss_cos[:, :and_model.k])
        extras["k_hat"] = k_hat
        adj = mean_adjacency(ss_nbrs, k_hat)
    else:
        adj = mean_adjacency(nbrs, min(int(config["k_graph"]), nbrs.shape[1]))
    return embed(gcn, x, adj), extras


def link(nbrs: np.ndarray, sims: np.ndarray, linkage: str, threshold: float, seed: int = 0) -> np.ndarray:
    """Final clusters from a kNN graph of refined embeddings: 'cc' (edges with sim > threshold,
    connected components) or 'infomap' (edges with sim > threshold, weighted by sim)."""
    n = len(nbrs)
    rows = np.repeat(np.arange(n), nbrs.shape[1])
    cols, w = nbrs.ravel(), sims.ravel()
    keep = (cols != rows) & (w > threshold)
    if linkage == "cc":
        from ..linkage import connected_components
        return connected_components(n, rows[keep], cols[keep])
    if linkage == "infomap":
        from ..cluster.infomap import infomap_labels
        return infomap_labels(n, rows[keep], cols[keep], w[keep], seed=seed)
    raise ClustergError(f"linkage must be 'cc' or 'infomap', got {linkage!r}")


def models_from_checkpoint(blob: dict[str, Any]) -> tuple[AND, AdaGCN, dict[str, Any]]:
    """Rebuild (AND, AdaGCN, config) from a loaded checkpoint dict."""
    cfg = dict(DEFAULT_CONFIG, **blob["config"])
    in_dim = int(blob["in_dim"])
    sd = blob["state_dict"]
    try:
        and_model = AND(in_dim, k=int(cfg["k"]), arch=cfg["and_arch"], hidden=int(cfg["and_hidden"]))
        gcn = AdaGCN(in_dim, hidden=int(cfg["gcn_hidden"]), out_dim=int(cfg["gcn_out"]))
        and_model.load_state_dict({key[4:]: v.float() for key, v in sd.items() if key.startswith("and.")})
        gcn.load_state_dict({key[4:]: v.float() for key, v in sd.items() if key.startswith("gcn.")})
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise ClustergError(f"Ada-NETS checkpoint does not match the model ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120]})") from None
    and_model.eval()
    gcn.eval()
    return and_model, gcn, cfg
