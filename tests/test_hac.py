"""Average-linkage HAC on the kNN graph against scikit-learn's full average-linkage HAC."""
import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering

from clusterg.cluster import KNNHAC
from clusterg.cluster.hac import average_linkage_knn
from clusterg.metrics import pairwise


def test_linkage_uses_every_pair_not_only_knn_edges():
    # a and b are each other's 1-NN (sim 0.95); c's only kNN edge is to b (0.93), but c is far from a
    # (0.80): the true average linkage of {a, b} and c is (0.93 + 0.80) / 2 = 0.865, below 0.9
    g = np.array([[1.0, 0.95, 0.80], [0.95, 1.0, 0.93], [0.80, 0.93, 1.0]])
    w, v = np.linalg.eigh(g)
    x = (v * np.sqrt(np.clip(w, 0, None))).astype(np.float32)  # rows with exactly these dot products
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    nbrs = np.array([[0, 1], [1, 0], [2, 1]])
    assert average_linkage_knn(x, nbrs, 0.9).tolist() == [0, 0, 1]
    assert average_linkage_knn(x, nbrs, 0.86).tolist() == [0, 0, 0]
    assert average_linkage_knn(x, nbrs, 0.96).tolist() == [0, 1, 2]


def _sklearn_full(x, t):
    return AgglomerativeClustering(n_clusters=None, linkage="average", metric="cosine",
                                   distance_threshold=1.0 - t).fit_predict(x)


@pytest.mark.parametrize("t", [0.93, 0.94])
def test_matches_full_average_linkage_on_celeba6k(shared_set, t):
    x, y = shared_set("celeba6k", "all")
    ours = KNNHAC(k=20, threshold=t, linkage="average").fit_predict(x)
    full = _sklearn_full(x, t)
    f_ours, f_full = pairwise(y, ours)[2], pairwise(y, full)[2]
    assert abs(f_ours - f_full) < 0.01, (f_ours, f_full)
    assert f_ours > 0.8  # and it is a good clustering, not two equally bad ones
    assert pairwise(full, ours)[2] > 0.98  # nearly the same partition, not only the same score


@pytest.mark.slow
def test_matches_full_average_linkage_on_celeba_dev(shared_set):
    x, y = shared_set("celeba", "dev")
    ours = KNNHAC(k=20, threshold=0.93).fit_predict(x)
    f_ours, f_full = pairwise(y, ours)[2], pairwise(y, _sklearn_full(x, 0.93))[2]
    assert abs(f_ours - f_full) < 0.01, (f_ours, f_full)
