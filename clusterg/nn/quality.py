"""Candidate-neighbour quality ``Q`` and the best neighbour count ``k*`` (Ada-NETS).

For node ``i`` with (structure-space) neighbour list ``j_1 = i, j_2, ..., j_K``:

* ``P_K = #{c <= K : y_{j_c} = y_i} / K`` (position 1, self, always counts as a
  positive, even when the list does not start with ``i``);
* ``R_K = #{c <= K : y_{j_c} = y_i} / |class(y_i)|``;
* ``Q_K = F_beta(P_K, R_K) = (1 + beta^2) P R / (beta^2 P + R)`` (``beta = 0.5``
  weights precision higher);
* ``k* = argmax_K Q_K``, 1-based (the first maximum).

This is the ground truth that the AND module learns to predict.
"""
from __future__ import annotations

import numpy as np
import torch

from .._validate import ClustergError, check_labels

__all__ = ["neighbour_quality"]


def neighbour_quality(nbrs, labels, beta: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Quality of each prefix of each node's neighbour list.

    Args:
        nbrs: int (N, K) neighbour ids, row i normally starting with i.
        labels: int (N,) identity of every node.
        beta: F-beta weight (default 0.5: precision counts more than recall).

    Returns:
        ``(Q, k_star)``: float32 (N, K) with ``Q[i, K-1] = Q_K`` and int64 (N,)
        ``k_star`` in ``1..K``.
    """
    if isinstance(nbrs, torch.Tensor):
        nbrs = nbrs.detach().cpu().numpy()
    nbrs = np.asarray(nbrs)
    if nbrs.ndim != 2 or nbrs.shape[1] < 1:
        raise ClustergError(f"nbrs: expected shape (N, K) with K >= 1, got {tuple(nbrs.shape)}")
    if not np.issubdtype(nbrs.dtype, np.integer):
        raise ClustergError(f"nbrs: expected integer ids, got dtype {nbrs.dtype}")
    n = nbrs.shape[0]
    if n < 1:
        raise ClustergError("nbrs: need at least 1 row")
    y = check_labels(labels, n=n)
    if nbrs.min() < 0 or nbrs.max() >= n:
        raise ClustergError(f"nbrs: ids must lie in [0, {n - 1}]")
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise ClustergError(f"beta: expected a number, got {beta!r}") from None
    if not np.isfinite(beta) or beta <= 0:
        raise ClustergError(f"beta: must be a positive number, got {beta}")
    same = y[nbrs] == y[:, None]
    same[:, 0] = True  # self is always a positive
    tp = np.cumsum(same, axis=1, dtype=np.float64)
    kk = np.arange(1, nbrs.shape[1] + 1, dtype=np.float64)[None, :]
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    class_size = counts[inv].astype(np.float64)[:, None]
    p = tp / kk
    r = np.minimum(tp / class_size, 1.0)
    b2 = beta * beta
    q = (1 + b2) * p * r / np.maximum(b2 * p + r, 1e-12)
    k_star = np.argmax(q, axis=1).astype(np.int64) + 1
    return q.astype(np.float32), k_star
