"""Recall@N, CMC and mAP (faiss ranking) against naive implementations written from the definitions."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from clusterg import ClustergError
from clusterg.retrieval import cmc_map, rank_gallery, recall_at_n


def _norm(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def naive_recall(q, g, ql, gl, ns):
    s = _norm(q) @ _norm(g).T
    out = {}
    for n in ns:
        hits = 0
        for i in range(len(q)):
            top = np.argsort(-s[i], kind="stable")[:n]
            hits += any(gl[j] == ql[i] for j in top)
        out[n] = hits / len(q)
    return out


def naive_cmc_map(q, g, qi, gi, qc, gc, topk):
    s = _norm(q) @ _norm(g).T
    aps, firsts = [], []
    for i in range(len(q)):
        keep = [j for j in range(len(g)) if not (gi[j] == qi[i] and gc[j] == qc[i])]
        order = sorted(keep, key=lambda j: (-s[i, j], j))
        match = np.array([gi[j] == qi[i] for j in order])
        if not match.any():
            continue
        prec, found = [], 0
        for rank, m in enumerate(match, start=1):
            if m:
                found += 1
                prec.append(found / rank)
        aps.append(np.mean(prec))
        # independent cross-check of the AP definition
        assert abs(aps[-1] - average_precision_score(match, -np.arange(len(match)))) < 1e-9
        firsts.append(int(np.argmax(match)) + 1)
    firsts = np.array(firsts)
    return {"mAP": float(np.mean(aps)), "cmc": {k: float((firsts <= k).mean()) for k in topk},
            "n_valid_queries": len(aps)}


def _random(seed=0, nq=60, ng=300, d=16, ids=25):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(ids, d))
    gi = rng.integers(0, ids, ng)
    qi = rng.integers(0, ids, nq)
    g = centers[gi] + 1.2 * rng.normal(size=(ng, d))
    q = centers[qi] + 1.2 * rng.normal(size=(nq, d))
    return q.astype(np.float32), g.astype(np.float32), qi, gi, rng.integers(0, 3, nq), rng.integers(0, 3, ng)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_inputs_equal_naive(seed):
    q, g, qi, gi, qc, gc = _random(seed)
    got = recall_at_n(q, g, qi, gi, ns=(1, 5, 10, 20))
    want = naive_recall(q, g, qi, gi, (1, 5, 10, 20))
    assert got == pytest.approx(want, abs=1e-12)
    assert 0 < got[1] < got[20] <= 1  # the data are neither trivial nor hopeless
    got = cmc_map(q, g, qi, gi, qc, gc, topk=(1, 5, 10))
    want = naive_cmc_map(q, g, qi, gi, qc, gc, (1, 5, 10))
    assert got["n_valid_queries"] == want["n_valid_queries"]
    assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-9)
    assert got["cmc"] == pytest.approx(want["cmc"], abs=1e-12)


def test_real_faces_equal_naive(shared_set):
    x, y = shared_set("celeba", "dev")
    x, y = np.asarray(x[:3000]), y[:3000]
    rng = np.random.default_rng(0)
    cams = rng.integers(0, 6, len(y))
    _, first = np.unique(y, return_index=True)
    qidx = first[:300]
    got = cmc_map(x[qidx], x, y[qidx], y, cams[qidx], cams, topk=(1, 5, 10))
    want = naive_cmc_map(x[qidx], x, y[qidx], y, cams[qidx], cams, (1, 5, 10))
    assert got["n_valid_queries"] == want["n_valid_queries"] > 100
    assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-9)
    assert got["cmc"] == pytest.approx(want["cmc"], abs=1e-12)
    gmask = np.ones(len(y), bool)
    gmask[qidx] = False
    got = recall_at_n(x[qidx], x[gmask], y[qidx], y[gmask], ns=(1, 5, 10, 20))
    assert got == pytest.approx(naive_recall(x[qidx], x[gmask], y[qidx], y[gmask], (1, 5, 10, 20)), abs=1e-12)
    assert got[1] > 0.5  # dlib faces: the nearest other face is mostly the same person


def test_positives_lists_and_l2():
    q, g, qi, gi, _, _ = _random(3)
    pos = [np.flatnonzero(gi == v) for v in qi]
    assert recall_at_n(q, g, positives=pos) == recall_at_n(q, g, qi, gi)
    qn, gn = _norm(q).astype(np.float32), _norm(g).astype(np.float32)
    assert recall_at_n(qn, gn, qi, gi, metric="l2") == pytest.approx(recall_at_n(q, g, qi, gi), abs=1e-12)


def test_rank_gallery_orders_and_breaks_ties_by_id():
    g = np.array([[1, 0], [1, 0], [0, 1], [1, 1]], np.float32)
    ids, scores = rank_gallery(np.array([[1, 0]], np.float32), g)
    assert ids.tolist() == [[0, 1, 3, 2]]
    assert np.all(np.diff(scores[0]) <= 0)


def test_bad_input():
    q, g, qi, gi, qc, gc = _random(0)
    with pytest.raises(ClustergError, match="dimension"):
        recall_at_n(q[:, :4], g, qi, gi)
    with pytest.raises(ClustergError, match="gallery_labels"):
        recall_at_n(q, g, qi, gi[:-1])
    with pytest.raises(ClustergError, match="both"):
        cmc_map(q, g, qi, gi, qc, None)
    with pytest.raises(ClustergError, match="metric"):
        rank_gallery(q, g, metric="hamming")
    with pytest.raises(ClustergError, match="k="):
        rank_gallery(q, g, k=10**6)
