"""Sparse k-reciprocal Jaccard distance against a dense implementation written from the definition."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from clusterg import ClustergError
from clusterg.data.synth import synth_ms1m
from clusterg.transforms.k_reciprocal import KReciprocal, k_reciprocal_jaccard, k_reciprocal_weights


def dense_knn(x):
    """Full cosine ranking of every row (self first, ties by id), from a dense similarity matrix."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(s, np.inf)
    return np.argsort(-s, axis=1, kind="stable")


def dense_jaccard(x, rank, k1, k2, lam=0.0):
    """Zhong et al. (CVPR'17) re-ranking as SpCL's compute_jaccard_distance uses it, on dense N x N arrays."""
    n = len(x)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
    cos = x @ x.T
    dist = 2.0 - 2.0 * cos

    def reciprocal(i, k):
        forward = rank[i, :k + 1]
        return np.array([j for j in forward if i in rank[j, :k + 1]], dtype=np.int64)

    r_full = [reciprocal(i, k1) for i in range(n)]
    r_half = [reciprocal(i, int(np.around(k1 / 2))) for i in range(n)]
    v = np.zeros((n, n))
    for i in range(n):
        expansion = list(r_full[i])
        for c in r_full[i]:
            cand = r_half[c]
            if len(np.intersect1d(cand, r_full[i])) > 2 / 3 * len(cand):
                expansion.extend(cand)
        idx = np.unique(expansion)
        w = np.exp(-dist[i, idx])
        v[i, idx] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jac = np.empty((n, n))
    for i in range(n):
        support = np.flatnonzero(v[i])
        m = np.minimum(v[i, support][None, :], v[:, support]).sum(axis=1)
        jac[i] = 1.0 - m / (2.0 - m)
    jac[jac < 0] = 0.0
    if lam > 0:
        return (1 - lam) * jac + lam * (1.0 - cos), jac
    return jac, jac


def _sets(n=2000, real=None):
    if real is not None:
        x, _ = real
        return np.array(x[:n], dtype=np.float32)
    x, _ = synth_ms1m(n, dim=64, n_ids=n // 8, seed=3)
    return x


@pytest.fixture(scope="module")
def synth2000():
    x = _sets()
    rank = dense_knn(x)
    return x, rank, dense_jaccard(x, rank, 30, 6)[0]


def _check_kept(g, dense, tol=1e-5):
    coo = g.tocoo()
    diff = np.abs(coo.data.astype(np.float64) - dense[coo.row, coo.col])
    assert diff.max() <= tol, f"max abs diff {diff.max():.2e} on {len(diff)} kept pairs"
    return coo


def test_equal_to_dense_on_every_kept_pair_n2000(synth2000):
    x, rank, dense = synth2000
    n = len(x)
    sims = np.take_along_axis(x @ x.T, rank[:, :31], axis=1)
    g = k_reciprocal_jaccard(x, k1=30, k2=6, knn=(rank[:, :31], sims), max_neighbors=n, quiet=True)
    coo = _check_kept(g, dense)
    kept = np.zeros((n, n), bool)
    kept[coo.row, coo.col] = True
    # every pair that shares any weight (d_J < 1) is kept, and no other
    assert (kept == (dense < 1.0 - 1e-9)).all()
    assert np.allclose(np.diag(dense), 0.0) and kept.diagonal().all()
    assert 10 < len(coo.data) / n < n / 2  # a real neighbourhood, not all pairs


def test_default_cut_keeps_the_closest_pairs(synth2000):
    x, rank, dense = synth2000
    g = k_reciprocal_jaccard(x, k1=30, k2=6, quiet=True)  # faiss kNN, default max_neighbors = k1 + 1
    coo = _check_kept(g, dense)
    counts = np.diff(g.indptr)
    assert counts.max() <= 31 and counts.min() >= 1
    for i in range(0, len(x), 97):  # the kept distances are the row's smallest ones
        kept = np.sort(g.data[g.indptr[i]:g.indptr[i + 1]])
        best = np.sort(dense[i])[:len(kept)]
        assert np.abs(kept - best).max() <= 1e-5


def test_max_distance_and_lambda(synth2000):
    x, rank, dense = synth2000
    blended, jac = dense_jaccard(x, rank, 30, 6, lam=0.3)
    g = k_reciprocal_jaccard(x, k1=30, k2=6, lam=0.3, max_distance=0.6, max_neighbors=len(x), quiet=True)
    coo = _check_kept(g, blended)
    assert (jac[coo.row, coo.col] < 0.6 + 1e-6).all()
    assert int((jac < 0.6 - 1e-6).sum()) <= len(coo.data) <= int((jac < 0.6 + 1e-6).sum())
    assert len(coo.data) < 0.5 * int((jac < 1 - 1e-9).sum())  # the cut removes most pairs


@pytest.mark.parametrize("k1,k2", [(5, 1), (7, 3), (20, 6)])
def test_other_parameters_equal_dense(k1, k2):
    x, _ = synth_ms1m(600, dim=32, n_ids=60, seed=k1)
    rank = dense_knn(x)
    dense, _ = dense_jaccard(x, rank, k1, k2)
    sims = np.take_along_axis(x @ x.T, rank[:, :k1 + 1], axis=1)
    g = k_reciprocal_jaccard(x, k1=k1, k2=k2, knn=(rank[:, :k1 + 1], sims), max_neighbors=600, quiet=True)
    _check_kept(g, dense)
    assert g.nnz == int((dense < 1.0 - 1e-9).sum())


def test_real_faces_equal_dense(shared_set):
    x, _ = shared_set("celeba", "dev")
    x = np.array(x[:1000], dtype=np.float32)
    rank = dense_knn(x)
    dense, _ = dense_jaccard(x, rank, 30, 6)
    sims = np.take_along_axis(x @ x.T, rank[:, :31], axis=1)
    g = k_reciprocal_jaccard(x, k1=30, k2=6, knn=(rank[:, :31], sims), max_neighbors=1000, quiet=True)
    _check_kept(g, dense)
    assert g.nnz == int((dense < 1.0 - 1e-9).sum())


def test_weights_rows_sum_to_one():
    x, _ = synth_ms1m(300, dim=16, n_ids=30, seed=1)
    v, nbrs = k_reciprocal_weights(x, k1=10, k2=3)
    assert nbrs.shape == (300, 11)
    assert np.allclose(np.asarray(v.sum(axis=1)).ravel(), 1.0)


def test_deterministic_and_symmetric():
    x, _ = synth_ms1m(500, dim=32, n_ids=50, seed=2)
    a = k_reciprocal_jaccard(x, k1=10, k2=3, max_neighbors=500, quiet=True)
    b = k_reciprocal_jaccard(x, k1=10, k2=3, max_neighbors=500, quiet=True)
    assert (a.indptr == b.indptr).all() and (a.indices == b.indices).all() and (a.data == b.data).all()
    assert abs(a - a.T).max() < 1e-6


def test_chunks_do_not_change_the_result_and_stats():
    x, _ = synth_ms1m(700, dim=32, n_ids=70, seed=5)
    stats = {}
    a = k_reciprocal_jaccard(x, k1=12, k2=4, quiet=True, stats=stats)
    for kw in (dict(chunk_size=7), dict(chunk_size=700), dict(chunk_size=1)):
        b = k_reciprocal_jaccard(x, k1=12, k2=4, quiet=True, **kw)
        assert (a.indptr == b.indptr).all() and (a.indices == b.indices).all() and (a.data == b.data).all()
    assert {"weights_s", "join_s", "assemble_s", "weights_nnz"} <= set(stats) and stats["join_s"] >= 0
    counts = np.diff(a.indptr)
    assert counts.max() == 13 and a.nnz == int(counts.sum())
    # within each row, kept distances ascend; equal distances come in id order
    for i in range(0, 700, 53):
        d, j = a.data[a.indptr[i]:a.indptr[i + 1]], a.indices[a.indptr[i]:a.indptr[i + 1]]
        assert np.all(np.diff(j) > 0)  # CSR columns sorted
        o = np.lexsort((j, d))
        assert np.all(np.diff(d[o]) >= 0)


def test_ties_broken_by_id():
    x, _ = synth_ms1m(300, dim=16, n_ids=30, seed=6)
    x = np.concatenate([x, x[:1], x[:1], x[:1]])  # three exact copies of point 0: rows 300-302
    g = k_reciprocal_jaccard(x, k1=10, k2=1, max_neighbors=2, quiet=True)
    # the copies share point 0's neighbourhood, so 0, 300, 301, 302 are at distance 0 from each
    # other: each of these rows keeps the two smallest ids among them
    for i in (0, 300, 301, 302):
        row = g.indices[g.indptr[i]:g.indptr[i + 1]]
        assert list(row) == [0, 300], (i, list(row), g.data[g.indptr[i]:g.indptr[i + 1]])


def test_transform_writes_graph():
    x, _ = synth_ms1m(400, dim=32, n_ids=40, seed=4)
    t = KReciprocal(k1=10, k2=3)
    assert "KReciprocal(k1=10" in repr(t)
    data = t(Data(x=torch.from_numpy(x)))
    g = k_reciprocal_jaccard(x, k1=10, k2=3, quiet=True).tocoo()
    assert data.jaccard_edge_index.shape == (2, g.nnz)
    assert torch.equal(data.jaccard_edge_index[0], torch.from_numpy(g.row.astype(np.int64)))
    assert torch.allclose(data.jaccard_dist, torch.from_numpy(g.data))


@pytest.mark.parametrize("kw,msg", [(dict(k1=0), "k1"), (dict(k2=40, k1=30), "k2"), (dict(lam=2.0), "lam"),
                                    (dict(max_distance=0.0), "max_distance"), (dict(max_neighbors=0), "max_neighbors"),
                                    (dict(k1=2.5), "k1"), (dict(stats=[]), "stats")])
def test_bad_input(kw, msg):
    x, _ = synth_ms1m(100, dim=8, n_ids=10, seed=0)
    with pytest.raises(ClustergError, match=msg):
        k_reciprocal_jaccard(x, **kw)


def test_bad_features_and_knn():
    with pytest.raises(ClustergError, match="NaN"):
        k_reciprocal_jaccard(np.full((10, 4), np.nan, np.float32), k1=3)
    x, _ = synth_ms1m(100, dim=8, n_ids=10, seed=0)
    nb = np.tile(np.arange(5), (100, 1))
    with pytest.raises(ClustergError, match="k1=30 needs 31"):
        k_reciprocal_jaccard(x, knn=(nb, np.ones((100, 5), np.float32)))
