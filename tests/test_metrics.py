"""Metrics against naive implementations written straight from the definitions."""
from collections import Counter, defaultdict
from itertools import permutations

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from clusterg._validate import ClustergError
from clusterg.metrics import bcubed, contingency, evaluate, nmi, pairwise, singletonize

KEYS = {"pairwise_precision", "pairwise_recall", "pairwise_fscore", "bcubed_precision", "bcubed_recall",
        "bcubed_fscore", "nmi", "n", "n_clusters"}


# ---------------------------------------------------------------- naive references

def naive_singletonize(pred):
    out, nxt = [], max([p for p in pred if p >= 0], default=-1) + 1
    for p in pred:
        if p < 0:
            out.append(nxt)
            nxt += 1
        else:
            out.append(p)
    return out


def naive_pairwise(gt, pred):
    """Loop over all ordered pairs i != j."""
    tp = same_pred = same_gt = 0
    for i, j in permutations(range(len(gt)), 2):
        sp, sg = pred[i] == pred[j], gt[i] == gt[j]
        same_pred += sp
        same_gt += sg
        tp += sp and sg
    p = tp / same_pred if same_pred else 1.0
    r = tp / same_gt if same_gt else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def naive_bcubed(gt, pred):
    """Item-wise BCubed with dicts of member sets."""
    by_gt, by_pred = defaultdict(set), defaultdict(set)
    for i, (g, p) in enumerate(zip(gt, pred)):
        by_gt[g].add(i)
        by_pred[p].add(i)
    pre = rec = 0.0
    for i, (g, p) in enumerate(zip(gt, pred)):
        both = len(by_gt[g] & by_pred[p])
        pre += both / len(by_pred[p])
        rec += both / len(by_gt[g])
    p, r = pre / len(gt), rec / len(gt)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def random_labels(rng, n, with_negatives=True):
    k_gt = int(rng.integers(1, max(2, n // 2) + 1))
    k_pred = int(rng.integers(1, n + 1))
    gt = rng.integers(0, k_gt, n) * int(rng.choice([1, 7, 1000]))  # also non-contiguous ids
    pred = rng.integers(0, k_pred, n)
    if with_negatives:
        pred[rng.random(n) < rng.random()] = -1
    return gt, pred


# ---------------------------------------------------------------- agreement with the definitions

@pytest.mark.parametrize("seed", range(60))
def test_random_labelings_match_naive(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    gt, pred = random_labels(rng, n)
    ref_pred = naive_singletonize(pred.tolist())
    assert singletonize(pred).tolist() == ref_pred
    np.testing.assert_allclose(pairwise(gt, pred), naive_pairwise(gt.tolist(), ref_pred), rtol=1e-12)
    np.testing.assert_allclose(bcubed(gt, pred), naive_bcubed(gt.tolist(), ref_pred), rtol=1e-12)
    # without singletonising, -1 is an ordinary cluster id
    np.testing.assert_allclose(pairwise(gt, pred, singleton_negatives=False),
                               naive_pairwise(gt.tolist(), pred.tolist()), rtol=1e-12)
    np.testing.assert_allclose(bcubed(gt, pred, singleton_negatives=False),
                               naive_bcubed(gt.tolist(), pred.tolist()), rtol=1e-12)
    assert nmi(gt, pred) == pytest.approx(normalized_mutual_info_score(gt, ref_pred), abs=1e-12)


def test_medium_size_matches_naive_bcubed_and_sklearn():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 300, 5000)
    pred = np.where(rng.random(5000) < 0.8, gt, rng.integers(0, 400, 5000))
    pred[rng.random(5000) < 0.05] = -1
    ref = naive_singletonize(pred.tolist())
    res = evaluate(gt, pred)
    np.testing.assert_allclose([res["bcubed_precision"], res["bcubed_recall"], res["bcubed_fscore"]],
                               naive_bcubed(gt.tolist(), ref), rtol=1e-12)
    assert res["nmi"] == pytest.approx(normalized_mutual_info_score(gt, ref), abs=1e-12)
    assert res["n_clusters"] == len(set(ref))
    # pairwise from pair counts of the contingency table computed with a Counter
    cells = Counter(zip(gt.tolist(), ref))
    tk = sum(c * (c - 1) for c in cells.values())
    pk = sum(c * (c - 1) for c in Counter(ref).values())
    qk = sum(c * (c - 1) for c in Counter(gt.tolist()).values())
    assert res["pairwise_precision"] == pytest.approx(tk / pk, rel=1e-12)
    assert res["pairwise_recall"] == pytest.approx(tk / qk, rel=1e-12)


@pytest.mark.parametrize("method", ["arithmetic", "geometric", "min", "max"])
def test_nmi_average_methods_match_sklearn(method):
    rng = np.random.default_rng(3)
    for _ in range(10):
        gt, pred = random_labels(rng, int(rng.integers(2, 200)), with_negatives=False)
        assert nmi(gt, pred, average_method=method) == pytest.approx(
            normalized_mutual_info_score(gt, pred, average_method=method), abs=1e-12)


def test_nmi_symmetric_and_special_cases():
    rng = np.random.default_rng(4)
    gt, pred = random_labels(rng, 100, with_negatives=False)
    assert nmi(gt, pred) == pytest.approx(nmi(pred, gt), abs=1e-12)
    # sklearn conventions: both single-cluster -> 1.0; zero mutual information -> 0.0
    assert nmi([0, 0, 0], [5, 5, 5]) == 1.0 == normalized_mutual_info_score([0, 0, 0], [5, 5, 5])
    assert nmi([0, 0, 0, 0], [0, 1, 2, 3]) == 0.0 == normalized_mutual_info_score([0, 0, 0, 0], [0, 1, 2, 3])
    with pytest.raises(ClustergError, match="average_method"):
        nmi([0, 1], [0, 1], average_method="mean")


# ---------------------------------------------------------------- the reference toy example

def test_toy_example_reference_convention():
    gt = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, -1, 1, -1, -1]
    assert singletonize(pred).tolist() == [0, 0, 2, 1, 3, 4]
    res = evaluate(gt, pred)
    assert res["pairwise_fscore"] == pytest.approx(0.40, abs=5e-3)
    assert res["bcubed_fscore"] == pytest.approx(0.759, abs=5e-4)
    assert res["pairwise_precision"] == 1.0  # every predicted pair is correct
    assert res["n"] == 6 and res["n_clusters"] == 5
    raw = evaluate(gt, pred, singleton_negatives=False)
    assert raw["pairwise_fscore"] == pytest.approx(0.25, abs=5e-3)
    assert raw["bcubed_fscore"] == pytest.approx(0.638, abs=5e-4)
    assert raw["n_clusters"] == 3


def test_evaluate_types_and_consistency():
    rng = np.random.default_rng(5)
    gt, pred = random_labels(rng, 300)
    res = evaluate(gt, pred)
    assert set(res) == KEYS
    for k in KEYS - {"n", "n_clusters"}:
        assert type(res[k]) is float and 0.0 <= res[k] <= 1.0
    assert type(res["n"]) is int and type(res["n_clusters"]) is int
    assert (res["pairwise_precision"], res["pairwise_recall"], res["pairwise_fscore"]) == pairwise(gt, pred)
    assert (res["bcubed_precision"], res["bcubed_recall"], res["bcubed_fscore"]) == bcubed(gt, pred)
    assert res["nmi"] == nmi(gt, pred)


def test_perfect_and_permuted_labels():
    gt = np.repeat(np.arange(20), 5)
    perm = np.random.default_rng(6).permutation(20)
    res = evaluate(gt, perm[gt] + 100)  # same partition, other ids
    for k in KEYS - {"n", "n_clusters"}:
        assert res[k] == pytest.approx(1.0)
    assert res["n_clusters"] == 20


def test_input_types_accepted():
    gt = [0, 0, 1, 1]
    want = pairwise(gt, [0, 0, 0, 1])
    assert pairwise(np.array(gt, dtype=np.float32), np.array([0.0, 0.0, 0.0, 1.0])) == want
    assert pairwise(tuple(gt), np.array([0, 0, 0, 1], dtype=np.int8)) == want
    torch = pytest.importorskip("torch")
    assert pairwise(torch.tensor(gt), torch.tensor([0, 0, 0, 1])) == want


def test_huge_and_sparse_label_values():
    rng = np.random.default_rng(7)
    gt, pred = random_labels(rng, 200)
    want = evaluate(gt, pred)
    big = np.int64(2) ** 62
    got = evaluate(gt * 10 ** 9 + 12345, np.where(pred >= 0, pred + big, -1))
    assert got == pytest.approx(want, rel=1e-12)
    # negatives next to the largest int64 id still get fresh ids
    p = singletonize([np.iinfo(np.int64).max, -1, -1])
    assert len(set(p.tolist())) == 3


def test_singletonize_does_not_modify_input():
    pred = np.array([3, -1, -5, 3, -1])
    before = pred.copy()
    out = singletonize(pred)
    assert np.array_equal(pred, before)
    assert out.tolist() == [3, 4, 5, 3, 6] and out.dtype == np.int64
    assert singletonize([-1, -1]).tolist() == [0, 1]


def test_contingency_cells():
    t = contingency([0, 0, 1, 1, 1], [5, 6, 6, 6, -1])
    cells = {(int(r), int(c)): int(v) for r, c, v in zip(t.rows, t.cols, t.counts)}
    assert sum(cells.values()) == 5 and t.n == 5
    assert sorted(t.class_sizes.tolist()) == [2, 3]
    assert sorted(t.cluster_sizes.tolist()) == [1, 1, 3]


# ---------------------------------------------------------------- degenerate cases: never NaN

def test_single_item():
    assert pairwise([0], [0]) == (1.0, 1.0, 1.0)
    assert bcubed([4], [-1]) == (1.0, 1.0, 1.0)
    assert evaluate([0], [7])["nmi"] == 1.0


def test_all_singletons_predicted():
    gt = [0, 0, 1, 1]
    p, r, f = pairwise(gt, [-1, -1, -1, -1])  # no predicted pair
    assert (p, r, f) == (1.0, 0.0, 0.0)
    bp, br, bf = bcubed(gt, [-1, -1, -1, -1])
    assert bp == 1.0 and br == pytest.approx(0.5) and bf == pytest.approx(2 / 3)


def test_all_singletons_ground_truth():
    p, r, f = pairwise([0, 1, 2, 3], [0, 0, 1, 1])  # no true pair
    assert (p, r, f) == (0.0, 1.0, 0.0)
    assert pairwise([0, 1, 2], [0, 1, 2]) == (1.0, 1.0, 1.0)
    res = evaluate([0, 1, 2, 3], [0, 0, 0, 0])
    assert not any(np.isnan(v) for v in res.values())


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("gt,pred,match", [
    ([0, 1, 2], [0, 1], "equal length"),
    ([], [], "empty"),
    ([0, -1, 2], [0, 1, 2], "gt: ground-truth labels must be >= 0"),
    ([[0, 1]], [[0, 1]], "1-D"),
    ([0, 1], [0.5, 1.0], "whole numbers"),
    ([0, np.nan], [0, 1], "NaN"),
    ([0, 1], [0, np.inf], "NaN or inf"),
    (["a", "b"], [0, 1], "integer labels"),
    ([0, 1], [None, 1], "integer labels"),
])
def test_bad_inputs(gt, pred, match):
    for f in (pairwise, bcubed, nmi, evaluate):
        with pytest.raises(ClustergError, match=match):
            f(gt, pred)


def test_bad_input_is_value_error():
    with pytest.raises(ValueError):
        evaluate([0, 1], [0])
