"""Tree deduction (GCN-V / GCN-E linkage) on hand-made graphs."""
import numpy as np
import pytest

from clusterg._validate import ClustergError
from clusterg.linkage.tree_deduction import (candidate_sets, ignore_mask, nearest_higher, parents_to_labels,
                                             tree_deduction)

# Two groups {0, 1, 2} and {3, 4}; node 5 hangs off node 4 by a weak edge.
NBRS = np.array([[0, 1, 2],
                 [1, 0, 2],
                 [2, 1, 0],
                 [3, 4, 2],
                 [4, 3, 5],
                 [5, 4, 3]])
SIMS = np.array([[1.0, 0.9, 0.8],
                 [1.0, 0.9, 0.85],
                 [1.0, 0.85, 0.8],
                 [1.0, 0.95, 0.3],
                 [1.0, 0.95, 0.4],
                 [1.0, 0.4, 0.2]], dtype=np.float32)
CONF = np.array([0.9, 0.5, 0.1, 0.2, 0.8, 0.0])


def test_nearest_higher_by_hand():
    parent, psim = nearest_higher(NBRS, SIMS, CONF)
    # 0 and 4 are peaks; 1 -> 0; 2 -> 1 (nearest with higher conf); 3 -> 4; 5 -> 4
    assert parent.tolist() == [-1, 0, 1, 4, -1, 4]
    np.testing.assert_allclose(psim[[1, 2, 3, 5]], [0.9, 0.85, 0.95, 0.4])
    assert np.isneginf(psim[[0, 4]]).all()


def test_tree_deduction_cuts_weak_links():
    lab = tree_deduction(NBRS, SIMS, CONF, tau=0.5)
    assert lab.tolist() == [0, 0, 0, 1, 1, 2]  # 5's link (0.4) is cut
    lab = tree_deduction(NBRS, SIMS, CONF, tau=0.3)
    assert lab.tolist() == [0, 0, 0, 1, 1, 1]
    lab = tree_deduction(NBRS, SIMS, CONF, tau=0.99)
    assert len(np.unique(lab)) == 6


def test_row_order_does_not_matter():
    rng = np.random.default_rng(0)
    perm = np.array([rng.permutation(3) for _ in range(len(NBRS))])
    n2 = np.take_along_axis(NBRS, perm, 1)
    s2 = np.take_along_axis(SIMS, perm, 1)
    np.testing.assert_array_equal(tree_deduction(n2, s2, CONF, 0.5), tree_deduction(NBRS, SIMS, CONF, 0.5))


def test_parent_override_and_equal_confidence():
    # override: 2 links to 0 instead of 1 (both higher); cut 5
    parent = np.array([-1, 0, 0, 4, -1, -1])
    psim = np.array([-np.inf, 0.9, 0.8, 0.95, -np.inf, -np.inf])
    assert tree_deduction(NBRS, SIMS, CONF, 0.5, parent, psim).tolist() == [0, 0, 0, 1, 1, 2]
    # equal confidences: nobody is strictly higher, everyone is a peak
    lab = tree_deduction(NBRS, SIMS, np.ones(6), 0.0)
    assert lab.tolist() == list(range(6))


def test_candidate_sets_order_and_mask():
    cand, mask = candidate_sets(NBRS, SIMS, CONF)
    assert mask.sum(axis=1).tolist() == [0, 1, 2, 1, 0, 2]
    # node 2's candidates, nearest first: 1 (0.85) then 0 (0.8)
    assert cand[2][mask[2]].tolist() == [1, 0]
    assert cand[5][mask[5]].tolist() == [4, 3]


def test_ignore_mask():
    m = ignore_mask(CONF, 0.5)
    assert m.sum() == 3 and set(np.flatnonzero(m)) == {2, 3, 5}
    assert ignore_mask(CONF, 0.0).sum() == 0
    assert ignore_mask(CONF, 1.0).all()
    with pytest.raises(ClustergError):
        ignore_mask(CONF, 1.5)


def test_small_inputs():
    # one node
    assert tree_deduction(np.array([[0]]), np.array([[1.0]], np.float32), np.array([0.3]), 0.5).tolist() == [0]
    # k = N: every row holds everyone
    n = 4
    nbrs = np.array([[i] + [j for j in range(n) if j != i] for i in range(n)])
    sims = np.tile(np.array([1.0, 0.9, 0.8, 0.7], np.float32), (n, 1))
    # parents 0 -> 1 (0.9), 1 -> 2 (0.8), 2 -> 3 (0.7); tau 0.75 cuts the last link only
    lab = tree_deduction(nbrs, sims, np.array([0.1, 0.2, 0.3, 0.4]), 0.75)
    assert lab.tolist() == [0, 0, 0, 1]
    # -1 pads are skipped
    nbrs2 = np.array([[0, 1, -1], [1, 0, -1]])
    sims2 = np.array([[1.0, 0.9, 0.0], [1.0, 0.9, 0.0]], np.float32)
    assert tree_deduction(nbrs2, sims2, np.array([0.0, 1.0]), 0.5).tolist() == [0, 0]


def test_link_at_exactly_tau_is_cut():
    """A parent link survives only when its similarity is strictly above tau (values exact in binary)."""
    nbrs = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    sims = np.array([[1.0, 0.75, 0.25], [1.0, 0.75, 0.5], [1.0, 0.5, 0.25]], np.float32)
    conf = np.array([1.0, 0.5, 0.0])  # parents: 1 -> 0 at 0.75, 2 -> 1 at 0.5
    assert tree_deduction(nbrs, sims, conf, tau=0.5).tolist() == [0, 0, 1]
    assert tree_deduction(nbrs, sims, conf, tau=0.4375).tolist() == [0, 0, 0]
    assert tree_deduction(nbrs, sims, conf, tau=0.75).tolist() == [0, 1, 2]
    assert parents_to_labels(np.array([-1, 0, 1]), np.array([-np.inf, 0.25, 0.5]), 0.25).tolist() == [0, 1, 1]


def test_bad_input():
    with pytest.raises(ClustergError):
        tree_deduction(NBRS, SIMS, CONF[:3], 0.5)
    with pytest.raises(ClustergError):
        tree_deduction(NBRS, SIMS, np.where(CONF > 0.5, np.nan, CONF), 0.5)
    with pytest.raises(ClustergError):
        tree_deduction(NBRS + 10, SIMS, CONF, 0.5)
    with pytest.raises(ClustergError):
        tree_deduction(NBRS, SIMS[:, :2], CONF, 0.5)
    with pytest.raises(ClustergError):
        tree_deduction(NBRS, SIMS, CONF, 2.0)
    with pytest.raises(ClustergError):
        parents_to_labels(np.array([0, 1]), np.array([0.5]), 0.1)
