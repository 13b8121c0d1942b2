"""Structure space (k-reciprocal sets, Jaccard re-ranking), neighbour quality and the adaptive graph."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from clusterg._validate import ClustergError
from clusterg.nn.quality import neighbour_quality
from clusterg.transforms.adaptive_graph import AdaptiveGraph, adaptive_adjacency, adaptive_graph
from clusterg.transforms.structure_space import (StructureSpace, expanded_reciprocal_sets, jaccard_on_lists,
                                                 reciprocal_sets, structure_space)


def _sets(m):
    m = m.tocsr()
    return [set(m.indices[m.indptr[i]:m.indptr[i + 1]].tolist()) for i in range(m.shape[0])]


def _brute_force(nbrs, sims, k, lam):
    """Direct set-based transcription of the definitions, for comparison."""
    n = len(nbrs)

    def rec(kk):
        top = [set(nbrs[i, :kk].tolist()) for i in range(n)]
        return [{j for j in top[i] if i in top[j]} for i in range(n)]

    r, rh = rec(k), rec(k // 2)
    rstar = []
    for i in range(n):
        s = set(r[i])
        for j in r[i]:
            if len(rh[j] & r[i]) >= 2 / 3 * len(rh[j]):
                s |= rh[j]
        rstar.append(s)
    out = np.zeros((n, k))
    for i in range(n):
        for c, j in enumerate(nbrs[i, :k]):
            out[i, c] = (1 - lam) * len(rstar[i] & rstar[j]) / len(rstar[i] | rstar[j]) + lam * sims[i, c]
    return out, rstar


def _knn(x, k):
    s = x @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(s, order, 1).astype(np.float32)


def test_reciprocal_sets_hand_made():
    # 0 <-> 1 mutual; 2 lists 0 but 0 does not list 2; 3 and 4 mutual
    nbrs = np.array([[0, 1], [1, 0], [2, 0], [3, 4], [4, 3]])
    r = _sets(reciprocal_sets(nbrs, 2))
    assert r == [{0, 1}, {0, 1}, {2}, {3, 4}, {3, 4}]


def test_expansion_rule_hand_made():
    # k = 4, k//2 = 2. R_4(0) = {0, 1, 2}; R_2(1) = {1, 3} overlaps R_4(0) in 1 of 2 (< 2/3): not added.
    # R_2(2) = {2, 0}: fully inside R_4(0): added (nothing new). Node 5 checks the positive case.
    nbrs = np.array([
        [0, 1, 2, 4],
        [1, 3, 0, 2],
        [2, 0, 1, 3],
        [3, 1, 2, 4],
        [4, 3, 5, 2],
        [5, 4, 3, 0],
    ])
    r = _sets(reciprocal_sets(nbrs, 4))
    rh = _sets(reciprocal_sets(nbrs, 2))
    rs = _sets(expanded_reciprocal_sets(nbrs, 4))
    assert r[0] == {0, 1, 2}
    assert rh[1] == {1, 3}
    assert 3 not in rs[0]
    for i in range(len(nbrs)):
        expect = set(r[i])
        for j in r[i]:
            if len(rh[j] & r[i]) >= 2 / 3 * len(rh[j]):
                expect |= rh[j]
        assert rs[i] == expect


def test_expansion_adds_a_half_set():
    # R_4(0) = {0, 1, 2}; R_2(1) = {1, 2, 5}? k//2 = 2 lists: 1:[1,5] 5:[5,1] -> R_2(1) = {1, 5};
    # |{1,5} & R_4(0)| = 1 < 4/3 -> not added. With 1:[1,2], 2:[2,1]: R_2(1) = {1,2} added (no change).
    # Positive case with a new member: R_4(0) = {0,1,2,3}, R_2(3) = {3, 4}? 1 of 2 -> no.
    # Use k = 6 (half 3): R_6(0) = {0,1,2,3}, R_3(1) = {1,2,4}: 2 of 3 >= 2 -> adds 4.
    nbrs = np.array([
        [0, 1, 2, 3, 6, 7],
        [1, 2, 4, 0, 3, 5],
        [2, 1, 4, 0, 3, 5],
        [3, 0, 1, 2, 6, 7],
        [4, 1, 2, 5, 6, 7],
        [5, 6, 7, 4, 0, 1],
        [6, 7, 5, 4, 0, 1],
        [7, 6, 5, 4, 0, 1],
    ])
    r = _sets(reciprocal_sets(nbrs, 6))
    rh = _sets(reciprocal_sets(nbrs, 3))
    rs = _sets(expanded_reciprocal_sets(nbrs, 6))
    assert {0, 1, 2, 3} <= r[0] and 4 not in r[0]
    assert rh[1] == {1, 2, 4}
    assert 4 in rs[0]


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_structure_space_matches_brute_force(lam):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    nbrs, sims = _knn(x, 30)
    k = 16
    ref, _ = _brute_force(nbrs, sims, k, lam)
    nb, ss, cs = structure_space(nbrs, sims, k=k, lam=lam, return_cosine=True, chunk_size=37)
    assert nb.shape == ss.shape == cs.shape == (120, k)
    # same multiset of neighbours per row, values equal after sorting
    assert (np.sort(nb, 1) == np.sort(nbrs[:, :k], 1)).all()
    np.testing.assert_allclose(ss, -np.sort(-ref, axis=1), atol=1e-5)
    assert (np.diff(ss, axis=1) <= 1e-7).all()
    assert (nb[:, 0] == np.arange(120)).all()  # Jaccard(self) = 1 keeps self first
    # the cosine column follows the new order
    pos = np.argsort(nbrs[:, :k], 1)
    lookup = np.take_along_axis(sims[:, :k], pos, 1)
    srt = np.sort(nbrs[:, :k], 1)
    idx = np.array([np.searchsorted(srt[i], nb[i]) for i in range(120)])
    np.testing.assert_allclose(cs, np.take_along_axis(lookup, idx, 1), atol=1e-6)


def test_lam_one_keeps_cosine_order():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    nbrs, sims = _knn(x, 12)
    nb, ss = structure_space(nbrs, sims, k=12, lam=1.0)
    np.testing.assert_array_equal(nb, nbrs)
    np.testing.assert_allclose(ss, sims, atol=1e-6)


def test_jaccard_on_lists_hand_made():
    import scipy.sparse as sp
    sets = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]], dtype=np.float32))
    nbrs = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 3], [3, 0, 2]])
    j = jaccard_on_lists(sets, nbrs, chunk_size=2)
    np.testing.assert_allclose(j[0], [1.0, 2 / 3, 0.0])
    np.testing.assert_allclose(j[1], [1.0, 2 / 3, 1 / 4])
    np.testing.assert_allclose(j[2], [1.0, 1 / 4, 0.0])
    np.testing.assert_allclose(j[3], [0.0, 0.0, 0.0])  # empty set: defined as 0


def test_structure_space_bad_input(caplog):
    nbrs = np.array([[0, 1], [1, 0], [2, 1]])
    sims = np.ones((3, 2), np.float32)
    with pytest.raises(ClustergError, match="shape"):
        structure_space(nbrs, sims[:, :1])
    with pytest.raises(ClustergError, match="-1 padding"):
        structure_space(np.array([[0, -1], [1, 0], [2, 1]]), sims)
    with pytest.raises(ClustergError, match="NaN"):
        structure_space(nbrs, np.full((3, 2), np.nan, np.float32))
    with pytest.raises(ClustergError, match="lam"):
        structure_space(nbrs, sims, k=2, lam=1.5)
    with pytest.raises(ClustergError, match="at least 2"):
        structure_space(nbrs[:1], sims[:1])
    with pytest.raises(ClustergError, match="integer"):
        structure_space(nbrs.astype(float), sims)
    nb, ss = structure_space(nbrs, sims, k=80)  # clamped to K with a warning
    nb2, ss2 = structure_space(nbrs, sims, k=2)
    np.testing.assert_array_equal(nb, nb2)
    np.testing.assert_array_equal(ss, ss2)
    assert "k=80" in caplog.text


def test_structure_space_transform(blobs):
    x, y = blobs
    nbrs, sims = _knn(x, 40)
    data = Data(x=torch.from_numpy(x), knn_nbrs=torch.from_numpy(nbrs), knn_sims=torch.from_numpy(sims))
    t = StructureSpace(k=20)
    data = t(data)
    assert data.ss_nbrs.shape == (300, 20) and data.ss_sims.dtype == torch.float32
    assert "k=20" in repr(t)
    # the transform is the function on the stored lists
    nb, ss, cs = structure_space(nbrs, sims, k=20, lam=t.lam, return_cosine=True)
    np.testing.assert_array_equal(data.ss_nbrs.numpy(), nb)
    np.testing.assert_allclose(data.ss_sims.numpy(), ss, atol=1e-6)
    np.testing.assert_allclose(data.ss_cos.numpy(), cs, atol=1e-6)
    # on well-separated blobs the top of the re-ranked list is the same identity
    assert (y[data.ss_nbrs[:, :10].numpy()] == y[:, None]).mean() > 0.95
    data = AdaptiveGraph(k=5)(data)
    ei, ew = data.edge_index.numpy(), data.edge_weight.numpy()
    dense = np.zeros((300, 300), np.float32)
    dense[ei[1], ei[0]] = ew  # edge j -> i carries A[i, j]
    np.testing.assert_allclose(dense, adaptive_adjacency(nb, ss, 5).toarray(), atol=1e-6)
    assert (y[ei[0]] == y[ei[1]]).mean() > 0.95  # the 5 structure-space neighbours stay inside an identity


def test_neighbour_quality_hand_made():
    y = np.array([0, 0, 0, 1, 1])
    # node 0 list: self, same, other, same, other; class size 3
    nbrs = np.array([[0, 1, 3, 2, 4], [1, 0, 2, 3, 4], [2, 3, 4, 0, 1], [3, 4, 0, 1, 2], [4, 0, 1, 2, 3]])
    q, ks = neighbour_quality(nbrs, y, beta=0.5)
    assert q.shape == (5, 5) and ks.shape == (5,)

    def f(p, r, b=0.5):
        return (1 + b * b) * p * r / (b * b * p + r)
    np.testing.assert_allclose(q[0], [f(1, 1 / 3), f(1, 2 / 3), f(2 / 3, 2 / 3), f(3 / 4, 1), f(3 / 5, 1)],
                               rtol=1e-5)
    assert ks[0] == 2  # F_0.5 favours the 2-element pure prefix over 4 elements at 3/4 precision
    assert ks[1] == 3  # self, same, same: perfect
    assert ks[3] == 2
    assert ks[4] == 1  # next neighbours are all other people


def test_neighbour_quality_forces_self_positive():
    y = np.array([0, 1, 1])
    nbrs = np.array([[1, 2, 0], [1, 2, 0], [2, 1, 0]])  # row 0 does not start with itself
    q, ks = neighbour_quality(nbrs, y)
    assert q[0, 0] == pytest.approx(1.0)  # position 1 counts as a hit (self forced positive)
    assert ks[0] == 1
    with pytest.raises(ClustergError):
        neighbour_quality(nbrs, y[:2])
    with pytest.raises(ClustergError):
        neighbour_quality(nbrs, y, beta=0)


def test_adaptive_graph_rules():
    nbrs = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]])
    sims = np.array([[1.0, 0.8, 0.5], [1.0, 0.6, 0.7], [1.0, 0.4, 0.9]], np.float32)
    a = adaptive_adjacency(nbrs, sims, np.array([2, 1, 3]), normalize=False).toarray()
    # kept: 0->1 (0.8), 2->0 (0.4), 2->1 (0.9); symmetric max; identity added
    expect = np.array([[1, 0.8, 0.4], [0.8, 1, 0.9], [0.4, 0.9, 1]], np.float32)
    np.testing.assert_allclose(a, expect, atol=1e-6)
    an = adaptive_adjacency(nbrs, sims, np.array([2, 1, 3])).toarray()
    np.testing.assert_allclose(an.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(an, expect / expect.sum(1, keepdims=True), atol=1e-6)
    # k_hat = 1 keeps self only
    np.testing.assert_allclose(adaptive_adjacency(nbrs, sims, 1).toarray(), np.eye(3), atol=1e-6)
    ei, ew = adaptive_graph(nbrs, sims, 3)
    dense = torch.zeros(3, 3)
    dense[ei[1], ei[0]] = ew  # edge j -> i carries A[i, j]
    np.testing.assert_allclose(dense.numpy(), adaptive_adjacency(nbrs, sims, 3).toarray(), atol=1e-6)
    with pytest.raises(ClustergError, match="k_hat"):
        adaptive_adjacency(nbrs, sims, np.array([1, 2]))
    with pytest.raises(ClustergError):
        adaptive_adjacency(nbrs, sims[:, :2], 2)
