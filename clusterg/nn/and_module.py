"""AND, Ada-NETS' adaptive neighbour discovery: predict ``k*`` for every node.

Input is a node's structure-space neighbour list (self first, length K). Two
designs are provided:

* ``arch='lstm'`` (the paper's): the sequence of neighbour features (B, K, D)
  goes through a one-layer Bi-LSTM (D -> D per direction), a linear map back to
  D, a residual ``(out + x) / sqrt(2)``, L2 norm, mean over the sequence, L2
  norm, a two-layer MLP (D -> 2D -> D, PReLU, dropout) with a residual
  ``/ sqrt(2)`` and a final ``Linear(D, 1)``.
* ``arch='mlp'``: an MLP over the similarity profile only: the K structure
  similarities and the K cosine similarities of the list (B, 2K). Much cheaper
  on a CPU (no recurrence); compared in the documentation.

Output is ``k* / K`` (a float per node); the loss is the paper's Huber loss
(delta 1) on the relative error ``pred / target - 1``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validate import ClustergError

__all__ = ["AND", "and_loss", "and_inputs"]


class AND(nn.Module):
    """k* regressor.

    Args:
        in_dim: feature dimension D (used by ``arch='lstm'``).
        k: list length K (the prediction is scaled by K).
        arch: 'lstm' or 'mlp'.
        hidden: MLP width for ``arch='mlp'`` (the LSTM uses D as in the paper).
        dropout: dropout of the MLP layers (paper: 0.5 for the LSTM model).

    ``forward(seq)``: for 'lstm' a float (B, K, D) tensor of neighbour features;
    for 'mlp' a float (B, 2K) similarity profile. Returns float (B,) = k*/K.
    """

    def __init__(self, in_dim: int, k: int = 80, arch: str = "lstm", hidden: int = 128, dropout: float | None = None):
        super().__init__()
        if arch not in ("lstm", "mlp"):
            raise ClustergError(f"AND: arch must be 'lstm' or 'mlp', got {arch!r}")
        if in_dim < 1 or k < 1 or hidden < 1:
            raise ClustergError(f"AND: in_dim, k and hidden must be positive, got {in_dim}, {k}, {hidden}")
        self.in_dim, self.k, self.arch, self.hidden = int(in_dim), int(k), arch, int(hidden)
        if arch == "lstm":
            d = self.in_dim
            p = 0.5 if dropout is None else dropout
            self.lstm = nn.LSTM(d, d, num_layers=1, batch_first=True, bidirectional=True)
            self.out_proj = nn.Linear(2 * d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.PReLU(2 * d), nn.Dropout(p),
                                     nn.Linear(2 * d, d), nn.PReLU(d), nn.Dropout(p))
            self.reg = nn.Linear(d, 1)
        else:
            p = 0.1 if dropout is None else dropout
            self.net = nn.Sequential(nn.Linear(2 * self.k, hidden), nn.PReLU(hidden), nn.Dropout(p),
                                     nn.Linear(hidden, hidden), nn.PReLU(hidden), nn.Dropout(p),
                                     nn.Linear(hidden, 1))

    @classmethod
    def from_pretrained(cls, checkpoint=None) -> "AND":
        """The packaged Ada-NETS AND (128-d dlib faces), or the one in a ``clusterg train ada-nets`` checkpoint.

        ``model.config`` holds the pipeline's settings (``k``: the structure-space list size the
        model reads, ``lam``, ``and_arch``, ``graph``: whether the packaged pipeline uses AND at all).
        """
        from ._pretrained import load_blob, load_state
        blob = load_blob("ada-nets", checkpoint)
        cfg = dict(blob["config"])
        model = cls(int(blob["in_dim"]), k=int(cfg.get("k", 80)), arch=cfg.get("and_arch", "lstm"),
                    hidden=int(cfg.get("and_hidden", 128)))
        model = load_state(model, blob["state_dict"], "and.", "an AND model")
        model.config = cfg
        return model

    def forward(self, seq: Tensor) -> Tensor:
        if self.arch == "lstm":
            if seq.dim() != 3 or seq.shape[2] != self.in_dim:
                raise ClustergError(f"AND(lstm): expected input (B, K, {self.in_dim}), got {tuple(seq.shape)}")
            out, _ = self.lstm(seq)
            h = (self.out_proj(out) + seq) / math.sqrt(2.0)
            h = F.normalize(F.normalize(h, dim=2).mean(dim=1), dim=1)
            h = (self.mlp(h) + h) / math.sqrt(2.0)
            return self.reg(h).squeeze(1)
        if seq.dim() != 2 or seq.shape[1] != 2 * self.k:
            raise ClustergError(f"AND(mlp): expected input (B, {2 * self.k}), got {tuple(seq.shape)}")
        return self.net(seq).squeeze(1)

    @torch.no_grad()
    def predict_k(self, x, ss_nbrs, ss_sims, ss_cos, batch_size: int = 2048) -> np.ndarray:
        """Predicted neighbour counts ``k_hat`` int64 (N,) in 1..K (``round(forward * K)``), in eval mode.

        Args:
            x: float (N, D) features (numpy or torch). ss_nbrs, ss_sims, ss_cos: (N, K) structure-space
                lists, similarities and cosines (numpy or torch, e.g. from
                :class:`~clusterg.transforms.StructureSpace`); ``K`` must be this model's ``k``.
            batch_size: lists per forward pass (default 2048).

        The one implementation of AND inference: :class:`~clusterg.cluster.AdaNetsClusterer` calls it too,
        so the module and the clusterer give the same ``k_hat``.
        """
        def arr(a):
            return a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)
        ss_nbrs, ss_sims, ss_cos = arr(ss_nbrs), arr(ss_sims), arr(ss_cos)
        if ss_nbrs.ndim != 2 or ss_nbrs.shape[1] != self.k or ss_sims.shape != ss_nbrs.shape \
                or ss_cos.shape != ss_nbrs.shape:
            raise ClustergError(f"AND.predict_k: expected (N, {self.k}) lists, similarities and cosines, got "
                                f"{ss_nbrs.shape}, {ss_sims.shape}, {ss_cos.shape}")
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ClustergError(f"AND.predict_k: batch_size must be a positive integer, got {batch_size!r}")
        self.eval()
        xt = x.detach().cpu().float() if isinstance(x, Tensor) else \
            torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        bs = int(batch_size)
        out = [self(*and_inputs(xt, ss_nbrs[s:s + bs], ss_sims[s:s + bs], ss_cos[s:s + bs], self.arch))
               for s in range(0, len(ss_nbrs), bs)]
        pred = torch.cat(out).numpy() if out else np.zeros(0, np.float32)
        return np.clip(np.round(pred * self.k), 1, self.k).astype(np.int64)

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, in_dim={self.in_dim}, k={self.k}"


def and_inputs(x: Tensor, nbrs: np.ndarray, sims: np.ndarray, cos: np.ndarray, arch: str) -> tuple[Tensor]:
    """Model input for a batch of structure-space lists (B, K): features or similarity profile."""
    if arch == "lstm":
        return (x[torch.from_numpy(np.ascontiguousarray(nbrs))],)
    prof = np.concatenate([sims, cos], axis=1).astype(np.float32)
    return (torch.from_numpy(prof),)


def and_loss(pred: Tensor, target: Tensor, delta: float = 1.0) -> Tensor:
    """Huber loss (``delta``) on the relative error ``pred / target - 1`` (targets > 0)."""
    if pred.shape != target.shape:
        raise ClustergError(f"and_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    rel = pred / target.clamp(min=1e-6) - 1.0
    return F.huber_loss(rel, torch.zeros_like(rel), delta=delta)
