"""The default pipeline's rejoin rule (clusterg.linkage.rejoin): hand cases and validation."""
import numpy as np
import pytest

from clusterg._validate import ClustergError
from clusterg.linkage.rejoin import REJOIN_MIN_SIZE, rejoin_by_reference


def test_large_pieces_in_one_module_are_joined():
    # one identity of 60 split in three pieces of 20; the reference holds all 60 in one module
    lab = np.repeat([0, 1, 2, 3], [20, 20, 20, 5])
    ref = np.repeat([0, 1], [60, 5])
    out, joins = rejoin_by_reference(lab, ref, 20)
    assert joins == 2
    assert (out[:60] == 0).all() and (out[60:] == 1).all()


def test_small_clusters_are_never_touched():
    lab = np.repeat([0, 1, 2], [19, 19, 30])
    ref = np.zeros(68, dtype=np.int64)  # the reference merges everything
    out, joins = rejoin_by_reference(lab, ref, 20)
    assert joins == 0 and (out == lab).all()
    out, joins = rejoin_by_reference(lab, ref, 19)  # the boundary: size == min_size takes part
    assert joins == 2 and out.max() == 0


def test_majority_means_more_than_half():
    lab = np.repeat([0, 1], [20, 20])
    for in_module_0, joined in ((10, 0), (11, 1)):  # exactly half of cluster 1 is no majority
        ref = np.concatenate([np.zeros(20 + in_module_0, dtype=np.int64), np.ones(20 - in_module_0, dtype=np.int64)])
        out, joins = rejoin_by_reference(lab, ref, 20)
        assert joins == joined and out.max() == 1 - joined


def test_chains_join_transitively_and_ids_follow_first_member():
    # clusters 2 and 0 share module 5, clusters 1 and 3 share module 7: two groups, numbered by first member
    lab = np.repeat([2, 1, 0, 3], 25)
    ref = np.repeat([5, 7, 5, 7], 25)
    out, joins = rejoin_by_reference(lab, ref, 20)
    assert joins == 2
    assert (out == np.repeat([0, 1, 0, 1], 25)).all()
    # the same input with permuted label values gives the same partition
    perm = rejoin_by_reference(np.repeat([9, 4, 7, 0], 25), np.repeat([1, 0, 1, 0], 25), 20)[0]
    assert (perm == out).all()


def test_reference_finer_than_labels_changes_nothing():
    lab = np.repeat([0, 1], [50, 50])
    ref = np.arange(100) // 10
    out, joins = rejoin_by_reference(lab, ref, 2)
    assert joins == 0 and (out == lab).all()


def test_default_min_size_is_the_fitted_value():
    import json
    from pathlib import Path
    fit = json.loads((Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "rejoin_fit.json").read_text())
    assert REJOIN_MIN_SIZE == fit["min_size"]
    assert not any(k.startswith(("celeba-dev", "celeba6k", "pins14", "orl", "yale", "umist", "tweet"))
                   for k in fit["sets"]), "the rejoin rule is fitted on tune sets only"


@pytest.mark.parametrize("lab,ref,match", [
    (np.zeros((2, 2), dtype=int), np.zeros(4, dtype=int), "1-D integer"),
    (np.zeros(4), np.zeros(4, dtype=int), "1-D integer"),
    (np.zeros(4, dtype=int), np.zeros(3, dtype=int), "expected 4"),
    (np.array([0, -1, 0]), np.zeros(3, dtype=int), ">= 0"),
])
def test_bad_input_fails_clearly(lab, ref, match):
    with pytest.raises(ClustergError, match=match):
        rejoin_by_reference(lab, ref)


def test_bad_min_size_fails_clearly():
    with pytest.raises(ClustergError, match="min_size"):
        rejoin_by_reference(np.zeros(3, dtype=int), np.zeros(3, dtype=int), 0)
    assert rejoin_by_reference(np.zeros(0, dtype=int), np.zeros(0, dtype=int)) [1] == 0
