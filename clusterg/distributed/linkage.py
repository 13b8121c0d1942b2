"""Linkage on Ray: per-shard edges above a threshold, one global connected-components pass.

Each node shard's task keeps its kNN edges (or tree-deduction parent links) above the threshold and
reduces them to a spanning forest on the nodes they touch (``scipy.sparse.csgraph`` on the shard's
edges; every node then points to the smallest node of its shard-local component), so at most
``n_touched - components`` edges a shard leave the worker. The driver unions the forests with
:func:`clusterg.linkage.connected_components`; labels are numbered by first member as everywhere in
clusterg, so they are identical to the single-node ones.

Bound: the driver holds ``N`` int64 labels and the forests' edges (16 bytes an edge, fewer than ``N``
edges in all after the per-shard reduction, at most ``N k`` before it): one node with 64 GB handles
``N`` up to ~10^9 here. Beyond it a distributed connected-components pass (large-star / small-star
rounds over the forest edges) would replace the last step; it is not implemented.

Infomap stays single-node (its optimisation is global): it fits where the thresholded graph fits one
machine's memory, about 10^7 nodes x 80 edges with the infomap package (docs/scale-out.rst).
"""
from __future__ import annotations

import numpy as np

from .._validate import check_threshold
from ..linkage import connected_components
from .engine import RayEngine, get_engine, shard_bounds

__all__ = ["ray_threshold_components", "ray_parent_components", "spanning_forest"]


def spanning_forest(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``node -> smallest node of its component`` of the graph ``src - dst`` (same components)."""
    if len(src) == 0:
        return src.astype(np.int64), dst.astype(np.int64)
    nodes, inv = np.unique(np.concatenate([src, dst]), return_inverse=True)
    m = len(src)
    lab = connected_components(len(nodes), inv[:m], inv[m:])
    first = np.full(lab.max() + 1, len(nodes), dtype=np.int64)
    np.minimum.at(first, lab, np.arange(len(nodes)))
    root = first[lab]
    keep = root != np.arange(len(nodes))
    return nodes[keep].astype(np.int64), nodes[root[keep]].astype(np.int64)


def _edges_forest(nbrs: np.ndarray, sims: np.ndarray, offset: int, threshold: float):
    rows = np.broadcast_to(np.arange(offset, offset + len(nbrs))[:, None], nbrs.shape)
    keep = (sims > threshold) & (nbrs != rows) & (nbrs >= 0)
    return spanning_forest(rows[keep].astype(np.int64), nbrs[keep].astype(np.int64))


def _parents_forest(parent: np.ndarray, psim: np.ndarray, offset: int, tau: float):
    keep = (parent >= 0) & (psim.astype(np.float64) > tau)
    src = np.flatnonzero(keep) + offset
    return spanning_forest(src.astype(np.int64), parent[keep].astype(np.int64))


def _run(eng: RayEngine, fn, n: int, pieces) -> np.ndarray:
    ray = eng.ray
    task = ray.remote(num_returns=2)(fn)
    outs = [task.remote(*p) for p in pieces]
    parts = ray.get([o for pair in outs for o in pair])
    src = np.concatenate(parts[0::2]) if parts else np.empty(0, np.int64)
    dst = np.concatenate(parts[1::2]) if parts else np.empty(0, np.int64)
    return connected_components(n, src, dst)


def ray_threshold_components(nbrs: np.ndarray, sims: np.ndarray, threshold: float, address: str | None = None,
                             shards: int | None = None, engine: RayEngine | None = None) -> np.ndarray:
    """Connected components of the kNN edges with similarity > ``threshold`` (self pairs dropped), on Ray.

    Equal to ``connected_components(N, *threshold_edges(nbrs, sims, threshold))``. Returns int64 ``(N,)``.
    """
    t = check_threshold(threshold, "threshold")
    eng = engine if engine is not None else get_engine(address, shards)
    n = len(nbrs)
    b = shard_bounds(n, eng.shards)
    return _run(eng, _edges_forest, n, [(eng.ray.put(np.ascontiguousarray(nbrs[lo:hi])),
                                         eng.ray.put(np.ascontiguousarray(sims[lo:hi])), lo, t) for lo, hi in b])


def ray_parent_components(parent: np.ndarray, psim: np.ndarray, tau: float, address: str | None = None,
                          shards: int | None = None, engine: RayEngine | None = None) -> np.ndarray:
    """:func:`clusterg.linkage.tree_deduction.parents_to_labels` on Ray (parent links with sim > ``tau``)."""
    t = check_threshold(tau, "tau")
    eng = engine if engine is not None else get_engine(address, shards)
    n = len(parent)
    b = shard_bounds(n, eng.shards)
    return _run(eng, _parents_forest, n, [(np.ascontiguousarray(parent[lo:hi]), np.ascontiguousarray(psim[lo:hi]),
                                           lo, t) for lo, hi in b])
