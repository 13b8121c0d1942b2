"""GCN-E inference: rebuild GCN-V + GCN-E from a checkpoint, score candidate sets, choose parents.

Used by :class:`clusterg.cluster.GCNVEClusterer` and by the trainer
(:mod:`clusterg.train.gcn_e`), which writes the checkpoints (they embed their GCN-V).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .._progress import progress
from .._validate import ClustergError, check_threshold
from ..linkage.tree_deduction import candidate_sets, ignore_mask, nearest_higher
from ..nn.gcn_e import GCNE, candidate_batch
from ..nn.gcn_v import GCNV
from ..transforms.gcn_graph import knn_adjacency
from .checkpoint import load_checkpoint
from .gcn_v import _build_model as _build_v
from .gcn_v import gcn_features

__all__ = ["load_gcn_ve", "gcn_e_parents", "gcn_e_scores", "choose_parents", "edge_features", "knn_space",
           "candidate_knn"]


def edge_features(x: np.ndarray, hidden: torch.Tensor, feature: str) -> np.ndarray:
    """GCN-E's node features: ``"raw"`` L2-normalised input, ``"gcn"`` GCN-V features (the
    paper), or ``"raw+gcn"`` both side by side. Candidate sets come from the kNN of the GCN-V
    features for ``"gcn"`` and of the input otherwise (:func:`knn_space`)."""
    if feature == "raw":
        return x
    if feature == "gcn":
        return gcn_features(hidden)
    if feature == "raw+gcn":
        return np.ascontiguousarray(np.concatenate([x, gcn_features(hidden)], axis=1), dtype=np.float32)
    raise ClustergError(f"feature must be 'raw', 'gcn' or 'raw+gcn', got {feature!r}")


def knn_space(feature: str) -> str:
    """Where candidate sets and edge similarities come from: ``"gcn"`` or ``"raw"``."""
    return "gcn" if feature == "gcn" else "raw"


def candidate_knn(x: np.ndarray, feat: np.ndarray, feature: str, k_e: int, nbrs: np.ndarray | None = None,
                  sims: np.ndarray | None = None, knn_method: str = "flat", seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The kNN GCN-E's candidate sets come from: ``(nbrs (N, k_e), sims (N, k_e))``.

    ``feature="gcn"``: the kNN of the GCN-V features ``feat``; otherwise the kNN of the L2-normalised
    input ``x`` (N, D), the first ``k_e`` columns of ``nbrs``/``sims`` (GCN-V's kNN) when they are long
    enough. :class:`~clusterg.cluster.GCNVEClusterer` calls this; so does code that runs
    ``GCNE.from_pretrained(with_gcn_v=True)`` itself, and the two get the same candidates.
    """
    from .gcn_v import _knn
    if isinstance(k_e, bool) or not isinstance(k_e, (int, np.integer)) or k_e < 2:
        raise ClustergError(f"k_e must be an integer >= 2, got {k_e!r}")
    k_e = min(int(k_e), len(x))
    if knn_space(feature) == "raw":
        if nbrs is not None and sims is not None and k_e <= np.shape(nbrs)[1]:
            return np.ascontiguousarray(np.asarray(nbrs)[:, :k_e]), np.ascontiguousarray(np.asarray(sims)[:, :k_e])
        return _knn(np.asarray(x), k_e, knn_method, seed)
    return _knn(feat, k_e, knn_method, seed)


def _e_in_dim(feature: str, in_dim: int, hidden: int, center_dot: bool = False) -> int:
    return {"raw": in_dim, "gcn": hidden, "raw+gcn": in_dim + hidden}[feature] + int(bool(center_dot))


@torch.no_grad()
def gcn_e_scores(model: GCNE, feat: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, conf: np.ndarray,
                 nodes: np.ndarray | None = None, batch_graphs: int = 512, desc: str = "gcn-e",
                 center_dot: bool | None = None):
    """GCN-E's "same identity" probability for every candidate of ``nodes``.

    Returns ``(cand, mask, prob)``, all (N, k): the candidate sets of
    :func:`~clusterg.linkage.tree_deduction.candidate_sets` and, where GCN-E ran,
    ``prob`` in [0, 1] (NaN elsewhere). ``nodes`` defaults to every node with a candidate.
    ``center_dot`` (see :func:`~clusterg.nn.gcn_e.candidate_batch`) defaults to whatever
    the model's input width implies.
    """
    model.eval()
    if center_dot is None:
        center_dot = model.in_dim == np.shape(feat)[1] + 1
    cand, mask = candidate_sets(nbrs, sims, conf)
    prob = np.full(mask.shape, np.nan, dtype=np.float32)
    has = mask.any(axis=1)
    nodes = np.flatnonzero(has) if nodes is None else np.asarray(nodes, dtype=np.int64)[has[nodes]]
    if len(nodes) == 0:
        return cand, mask, prob
    adj = knn_adjacency(nbrs, sims)
    ft = torch.from_numpy(np.ascontiguousarray(feat, dtype=np.float32))
    for s in progress(range(0, len(nodes), batch_graphs), total=math.ceil(len(nodes) / batch_graphs), desc=desc):
        centers = nodes[s:s + batch_graphs]
        b = candidate_batch(ft, adj, centers, cand, mask, center_dot=center_dot)
        p = torch.softmax(model(b.x, b.edge_index, b.edge_weight), dim=1)[:, 1].numpy()
        rows = np.full((len(centers), mask.shape[1]), np.nan, dtype=np.float32)
        rows[mask[centers]] = p  # candidates sit left-aligned in nearest-first order
        prob[centers] = rows
    return cand, mask, prob


def choose_parents(nbrs: np.ndarray, sims: np.ndarray, conf: np.ndarray, cand: np.ndarray, mask: np.ndarray,
                   prob: np.ndarray, ignore_ratio: float, rule: str = "argmax", alpha: float = 0.0,
                   p_min: float = 0.0, p_high: float = 1.0, beta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Parents and edge scores from GCN-E probabilities.

    Nodes among the ``ignore_ratio`` lowest-confidence ones keep GCN-V's parent (the
    nearest higher-confidence neighbour) unchanged. For the others, with ``p`` the GCN-E
    probability that a candidate shares the node's identity:

    - ``rule="argmax"`` (the paper): a node with two or more candidates takes the
      candidate GCN-E scores highest (ties: the nearest);
    - ``rule="nearest"``: GCN-V's parent; the link is cut when its ``p < p_min``;
    - ``rule="gate"``: the nearest candidate with ``p >= p_min`` (GCN-E vetoes doubtful
      links and the node tries its next candidate); none left: the node is a peak.

    The edge score is the cosine similarity, plus ``alpha * (p - 0.5)``, plus ``beta`` when
    ``p >= p_high`` (a confident GCN-E lets a link through at a slightly lower similarity).
    ``alpha = beta = p_min = 0`` with ``rule="nearest"`` is plain GCN-V.
    Returns ``(parent (N,), score (N,))``; compare ``score`` with tau.
    """
    if rule not in ("argmax", "nearest", "gate"):
        raise ClustergError(f"rule must be 'argmax', 'nearest' or 'gate', got {rule!r}")
    p_min = check_threshold(p_min, "p_min", 0.0, 1.0)
    p_high = check_threshold(p_high, "p_high", 0.0, 1.0)
    beta = check_threshold(beta, "beta", 0.0, 1.0)
    n = len(conf)
    rows = np.arange(n)
    parent, _ = nearest_higher(nbrs, sims, conf)
    active = ~ignore_mask(conf, ignore_ratio) & mask.any(axis=1)
    scored = mask & np.isfinite(prob)
    p_parent = np.where(active & scored[:, 0], prob[:, 0], np.nan)  # nearest candidate's probability
    if rule == "argmax":
        multi = active & (mask.sum(axis=1) >= 2) & np.isfinite(prob[:, 0])
        pm = np.where(mask, np.nan_to_num(prob, nan=-1.0), -2.0)
        best = np.argmax(pm, axis=1)  # first maximum = nearest on ties
        parent = np.where(multi, cand[rows, best], parent)
        p_parent = np.where(multi, pm[rows, best], p_parent)
    elif rule == "gate":
        ok = scored & (np.nan_to_num(prob, nan=-1.0) >= p_min)
        first = np.argmax(ok, axis=1)
        has = ok.any(axis=1)
        gated = active & scored[:, 0]
        parent = np.where(gated, np.where(has, cand[rows, first], -1), parent)
        p_parent = np.where(gated & has, prob[rows, first], p_parent)
    hit = nbrs == parent[:, None]
    ok = hit.any(axis=1) & (parent >= 0)
    score = np.where(ok, sims[rows, np.argmax(hit, axis=1)], -np.inf).astype(np.float64)
    known = np.isfinite(p_parent)
    if alpha:
        score = score + float(alpha) * np.where(known, p_parent - 0.5, 0.0)
    if beta:
        score = score + beta * (known & (np.nan_to_num(p_parent, nan=-1.0) >= p_high))
    if p_min > 0:
        score = np.where(known & (np.nan_to_num(p_parent, nan=-1.0) < p_min), -np.inf, score)
    return parent, np.where(np.isfinite(score), np.clip(score, -1.0, 1.0), -np.inf)


def gcn_e_parents(model: GCNE, feat: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, conf: np.ndarray,
                  ignore_ratio: float, rule: str = "argmax", alpha: float = 0.0, batch_graphs: int = 512,
                  desc: str = "gcn-e", p_min: float = 0.0, p_high: float = 1.0,
                  beta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Parents chosen with GCN-E (see :func:`choose_parents`); returns ``(parent, score)``.

    ``parent`` (N,) int64 is -1 for peaks; ``score`` (N,) is the edge's cosine similarity in
    the kNN space (plus the GCN-E adjustments), -inf for peaks and cut links.
    """
    check_threshold(ignore_ratio, "ignore_ratio", 0.0, 1.0)
    cand, mask = candidate_sets(nbrs, sims, conf)
    need = ~ignore_mask(conf, ignore_ratio) & mask.any(axis=1)
    if rule == "argmax" and not alpha and not beta and not p_min:
        need &= mask.sum(axis=1) >= 2  # single candidates need no score
    cand, mask, prob = gcn_e_scores(model, feat, nbrs, sims, conf, np.flatnonzero(need), batch_graphs, desc)
    return choose_parents(nbrs, sims, conf, cand, mask, prob, ignore_ratio, rule, alpha, p_min, p_high, beta)


def _build_e(in_dim: int, config: dict) -> GCNE:
    return GCNE(in_dim, dims=config["dims"])


def load_gcn_ve(checkpoint, in_dim: int | None = None) -> tuple[GCNV, GCNE, dict, dict]:
    """``(gcn_v, gcn_e, config, blob)`` from a GCN-E checkpoint (which embeds its GCN-V)."""
    blob = load_checkpoint(checkpoint, model="gcn-e", in_dim=in_dim)
    config = blob["config"]
    try:
        vcfg = config["gcn_v"]
        v = _build_v(int(blob["in_dim"]), vcfg)
        v.load_state_dict({k[2:]: t.float() for k, t in blob["state_dict"].items() if k.startswith("v.")})
        e_in = _e_in_dim(config["feature"], int(blob["in_dim"]), int(vcfg["hidden"]),
                         config.get("center_dot", False))
        e = _build_e(e_in, config)
        e.load_state_dict({k[2:]: t.float() for k, t in blob["state_dict"].items() if k.startswith("e.")})
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ClustergError(f"checkpoint {checkpoint}: weights do not fit GCN-V + GCN-E "
                            f"({type(err).__name__})") from None
    v.eval()
    e.eval()
    return v, e, config, blob
