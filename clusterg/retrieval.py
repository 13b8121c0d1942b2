"""Retrieval metrics beside the clustering ones: Recall@N, CMC and mAP, ranked with faiss.

* :func:`recall_at_n` (place recognition, NetVLAD's evaluation): the share of queries
  with at least one positive among their top N gallery entries.
* :func:`cmc_map` (person re-identification): CMC top-k and mean average precision with
  the re-ID protocol: for each query, gallery entries with the same identity **and** the
  same camera are removed before ranking (they are the same tracklet, too easy). Queries
  left without any positive are skipped (as in the Market-1501 evaluation code) and
  counted in ``n_valid_queries``.

Ranking: exact faiss search (``IndexFlatIP`` on L2-normalised rows for ``metric="cosine"``,
``IndexFlatL2`` for ``"l2"``), queries in chunks so memory stays at ``chunk x gallery``.
Ties in the score are broken by gallery id (lower first), so results are deterministic.
Average precision is the mean, over the query's positives, of the precision at each
positive's rank (scikit-learn's ``average_precision_score`` on the ranked list).
"""
from __future__ import annotations

import numpy as np

from ._validate import ClustergError, check_features, check_labels

__all__ = ["rank_gallery", "recall_at_n", "cmc_map"]


def _features(q, g, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric not in ("cosine", "l2"):
        raise ClustergError(f"metric: expected 'cosine' or 'l2', got {metric!r}")
    qq = check_features(q, name="query", normalize=metric == "cosine", allow_zero=metric == "l2")
    gg = check_features(g, name="gallery", normalize=metric == "cosine", allow_zero=metric == "l2")
    if qq.shape[1] != gg.shape[1]:
        raise ClustergError(f"query has dimension {qq.shape[1]} but gallery has {gg.shape[1]}")
    return qq, gg


def rank_gallery(query, gallery, k: int | None = None, metric: str = "cosine", chunk_size: int | None = None,
                 device: str = "cpu"):
    """Top-k gallery entries of each query, best first, ties by gallery id.

    Args:
        query: (Q, D) features. gallery: (G, D) features.
        k: entries per query (default G: the full ranking), 1 <= k <= G.
        metric: ``"cosine"`` (L2-normalised inner product, default) or ``"l2"`` (Euclidean).
        chunk_size: queries per faiss call (default: about 2e7 / G).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (faiss-gpu).

    Returns:
        ``(ids, scores)``: int64 (Q, k) gallery ids and float32 (Q, k) scores (similarity
        for cosine, negated squared distance for l2: larger is better in both).
    """
    import faiss

    from .knn.search import _use_gpu
    qq, gg = _features(query, gallery, metric)
    n_g = gg.shape[0]
    k = n_g if k is None else int(k)
    if not 1 <= k <= n_g:
        raise ClustergError(f"k={k} must lie in [1, {n_g}] (the gallery size)")
    index = faiss.IndexFlatIP(gg.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(gg.shape[1])
    if _use_gpu(device):
        res = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(res, 0, index)
    index.add(gg)
    chunk = int(chunk_size or max(1, 20_000_000 // max(k, 1)))
    ids = np.empty((qq.shape[0], k), np.int64)
    scores = np.empty((qq.shape[0], k), np.float32)
    for s in range(0, qq.shape[0], chunk):
        d, i = index.search(qq[s:s + chunk], k)
        if metric == "l2":
            d = -d
        order = np.lexsort((i, -d), axis=-1)  # by score, exact ties by gallery id
        ids[s:s + len(d)] = np.take_along_axis(i, order, axis=1)
        scores[s:s + len(d)] = np.take_along_axis(d, order, axis=1)
    return ids, scores


def recall_at_n(query, gallery, query_labels=None, gallery_labels=None, positives=None,
                ns=(1, 5, 10, 20), metric: str = "cosine", device: str = "cpu") -> dict[int, float]:
    """Recall@N: the share of queries with a positive among their first N gallery entries.

    Positives are either gallery entries with the query's label (``query_labels`` (Q,),
    ``gallery_labels`` (G,)) or given per query (``positives``: Q sequences of gallery ids,
    as NetVLAD's geographic ground truth). Every query counts (one without positives
    scores 0).

    Returns:
        ``{N: recall}`` for each N in ``ns`` (each clamped to the gallery size).
    """
    qq, gg = _features(query, gallery, metric)
    n_q, n_g = qq.shape[0], gg.shape[0]
    ns = [int(v) for v in ns]
    if not ns or min(ns) < 1:
        raise ClustergError(f"ns: expected positive integers, got {ns}")
    top = min(max(ns), n_g)
    ids, _ = rank_gallery(qq, gg, k=top, metric=metric, device=device)
    if positives is not None:
        if query_labels is not None or gallery_labels is not None:
            raise ClustergError("give either positives or query_labels/gallery_labels, not both")
        if len(positives) != n_q:
            raise ClustergError(f"positives: has {len(positives)} entries but there are {n_q} queries")
        hit = np.zeros((n_q, top), bool)
        for qi, pos in enumerate(positives):
            pos = np.asarray(pos, dtype=np.int64).ravel()
            if len(pos) and (pos.min() < 0 or pos.max() >= n_g):
                raise ClustergError(f"positives[{qi}]: gallery ids must lie in [0, {n_g - 1}]")
            hit[qi] = np.isin(ids[qi], pos)
    else:
        if query_labels is None or gallery_labels is None:
            raise ClustergError("recall_at_n needs query_labels and gallery_labels, or positives")
        ql = check_labels(query_labels, "query_labels", n=n_q)
        gl = check_labels(gallery_labels, "gallery_labels", n=n_g)
        hit = gl[ids] == ql[:, None]
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), top)
    return {v: float((first < min(v, n_g)).mean()) if n_q else 0.0 for v in ns}


def cmc_map(query, gallery, query_ids, gallery_ids, query_cams=None, gallery_cams=None,
            topk=(1, 5, 10), metric: str = "cosine", device: str = "cpu") -> dict:
    """CMC top-k and mAP with the re-identification protocol.

    Args:
        query, gallery: (Q, D) and (G, D) features.
        query_ids, gallery_ids: identities (Q,), (G,).
        query_cams, gallery_cams: camera ids; gallery entries with the query's identity and
            camera are excluded. Without cameras nothing is excluded (give the query set as
            gallery only with cameras, or every query finds itself).
        topk: CMC ranks to report (1-based).

    Returns:
        ``{"mAP": float, "cmc": {k: float}, "n_valid_queries": int}``; queries without any
        positive left are skipped (mAP and CMC are 0 when none is valid).
    """
    qq, gg = _features(query, gallery, metric)
    n_q, n_g = qq.shape[0], gg.shape[0]
    qi = check_labels(query_ids, "query_ids", n=n_q)
    gi = check_labels(gallery_ids, "gallery_ids", n=n_g)
    if (query_cams is None) != (gallery_cams is None):
        raise ClustergError("give both query_cams and gallery_cams, or neither")
    qc = check_labels(query_cams, "query_cams", n=n_q) if query_cams is not None else None
    gc = check_labels(gallery_cams, "gallery_cams", n=n_g) if gallery_cams is not None else None
    topk = [int(v) for v in topk]
    if not topk or min(topk) < 1:
        raise ClustergError(f"topk: expected positive integers, got {topk}")
    hits = np.zeros(max(topk), np.int64)
    aps = []
    chunk = max(1, 20_000_000 // max(n_g, 1))
    for s in range(0, n_q, chunk):
        e = min(n_q, s + chunk)
        ids, _ = rank_gallery(qq[s:e], gg, metric=metric, device=device)
        match = gi[ids] == qi[s:e, None]
        valid = ~(match & (gc[ids] == qc[s:e, None])) if qc is not None else np.ones_like(match)
        for r in range(e - s):
            m = match[r][valid[r]]
            npos = int(m.sum())
            if npos == 0:
                continue
            pos_rank = np.flatnonzero(m)  # 0-based ranks of the positives among the valid entries
            aps.append(float(np.mean(np.arange(1, npos + 1) / (pos_rank + 1))))
            if pos_rank[0] < len(hits):
                hits[pos_rank[0]:] += 1
    nv = len(aps)
    cmc = {v: (float(hits[v - 1] / nv) if nv else 0.0) for v in topk}
    return {"mAP": float(np.mean(aps)) if nv else 0.0, "cmc": cmc, "n_valid_queries": nv}
