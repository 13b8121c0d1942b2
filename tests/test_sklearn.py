"""The clusterers are scikit-learn estimators: check_estimator, clone, Pipeline, GridSearchCV, predict."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from sklearn.utils.estimator_checks import parametrize_with_checks

from clusterg import ClustergError
from clusterg.cluster import (CLUSTERERS, AdaNetsClusterer, FaissKMeans, GCNVClusterer, GCNVEClusterer,
                              InfomapClusterer, KNNConnectedComponents, KNNDBSCAN, KNNHAC, get_clusterer_class,
                              make_clusterer)
from clusterg.metrics import pairwise

#: checks of scikit-learn's suite that cannot apply to clusterers on cosine similarity, with the reason
#: (the same list is in docs/api.rst)
EXPECTED_FAILED = {
    "check_estimators_dtypes": "its integer inputs contain all-zero rows, which have no direction and so no "
                               "cosine similarity; clusterg rejects zero vectors instead of guessing",
}

NON_LEARNED = [KNNConnectedComponents(), InfomapClusterer(), FaissKMeans(n_clusters=3), KNNDBSCAN(), KNNHAC()]


@parametrize_with_checks(NON_LEARNED, expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_check_estimator(estimator, check):
    check(estimator)


def test_expected_failures_really_fail():
    """The listed exception is real: the same zero rows are refused with a clear message."""
    x = np.ones((5, 3), np.float32)
    x[2] = 0
    for est in NON_LEARNED:
        with pytest.raises(ClustergError, match="zero vector"):
            clone(est).fit(x)


def test_every_estimator_importable_and_registered():
    for name, path in CLUSTERERS.items():
        cls = get_clusterer_class(name)
        assert cls.__name__ == path.split(":")[1]
    assert {AdaNetsClusterer, GCNVClusterer, GCNVEClusterer} <= {get_clusterer_class(n) for n in CLUSTERERS}


def test_make_clusterer_rejects_parameters_the_method_does_not_take():
    with pytest.raises(ClustergError, match=r"'knn-cc' does not take n_clusters \(--n-clusters\)"):
        make_clusterer("knn-cc", n_clusters=5)
    with pytest.raises(ClustergError, match="'kmeans' does not take threshold"):
        make_clusterer("kmeans", n_clusters=3, threshold=0.5)
    assert make_clusterer("knn-cc", k=5, n_clusters=None).k == 5  # None = the method's default


def _small(shared_set, n_ids: int = 40):
    """The first ``n_ids`` identities of celeba6k (real 128-d dlib faces, raw norms)."""
    x, y = shared_set("celeba6k", "all")
    keep = y < n_ids
    return np.ascontiguousarray(x[keep]), y[keep]


def _f_score(est, X, y):
    """Transductive score for GridSearchCV: cluster the scored fold itself, pairwise F against y."""
    return pairwise(y, clone(est).fit_predict(X))[2]


LEARNED = ("gcn-v", "gcn-ve", "ada-nets")
ALL = {"knn-cc": dict(threshold=0.95), "infomap": dict(threshold=0.94), "kmeans": dict(n_clusters=40),
       "dbscan": dict(threshold=0.95), "hac": dict(threshold=0.93), "gcn-v": {}, "gcn-ve": {}, "ada-nets": {}}
GRID = {"knn-cc": [0.94, 0.96], "infomap": [0.93, 0.95], "kmeans": None, "dbscan": [0.94, 0.96],
        "hac": [0.92, 0.94], "gcn-v": [None, 0.8], "gcn-ve": [None, 0.8], "ada-nets": [None, 0.8]}


@pytest.mark.parametrize("name", list(ALL))
def test_clone_pipeline_gridsearch_on_real_faces(shared_set, name):
    # the learned methods cost seconds a fit (and a grid search makes ten): fewer identities for them
    x, y = _small(shared_set, n_ids=10 if name in LEARNED else 40)
    est = make_clusterer(name, **ALL[name])
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params()
    direct = est.fit_predict(Normalizer().fit_transform(x))
    assert est.n_features_in_ == 128 and len(direct) == len(x)
    assert pairwise(y, direct)[2] > 0.5
    # the pipeline hands the estimator the Normalizer's output: the same clusters as calling it directly
    piped = make_pipeline(Normalizer(), clone(est)).fit_predict(x)
    assert (piped == direct).all()
    grid = {"n_clusters": [30, 40]} if GRID[name] is None else {"threshold": GRID[name]}
    search = GridSearchCV(clone(est), grid, scoring=_f_score, cv=2, refit=name not in LEARNED).fit(x, y)
    assert set(search.best_params_) == set(grid)
    if name not in LEARNED:
        assert search.best_estimator_.labels_.shape == (len(x),)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_score_ == pytest.approx(search.cv_results_["mean_test_score"].max())


def test_kmeans_predict_is_the_nearest_centroid(blobs):
    x, _ = blobs
    km = FaissKMeans(n_clusters=10).fit(x)
    fitted = km.labels_.copy()
    assert (km.predict(x) == fitted).all()  # the fitted points go back to their own cluster
    rng = np.random.default_rng(1)
    new = x[:40] + 0.01 * rng.normal(size=(40, x.shape[1])).astype(np.float32)
    pred = km.predict(new)
    sims = (new / np.linalg.norm(new, axis=1, keepdims=True)) @ km.cluster_centers_.T
    assert (pred == sims.argmax(1)).all()
    assert (km.labels_ == fitted).all()
    with pytest.raises(ClustergError, match="expecting 32 features"):
        km.predict(x[:, :5])


def test_knn_cc_predict_keeps_the_fit(shared_set):
    x, y = shared_set("celeba6k", "all")
    rng = np.random.default_rng(0)
    held = rng.random(len(x)) < 0.1
    est = KNNConnectedComponents(k=20, threshold=0.95).fit(x[~held])
    fitted = est.labels_.copy()
    pred = est.predict(x[held])
    assert (est.labels_ == fitted).all()
    assert pred.dtype == np.int64 and pred.min() >= -1 and pred.max() < fitted.max() + 1
    # a predicted cluster is that of the most similar fitted face, when it is above the threshold
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn[held] @ xn[~held].T
    best = s.argmax(1)
    expect = np.where(s.max(1) > 0.95, fitted[best], -1)
    assert (pred == expect).all()
    # most held-out faces land with their own identity
    yf = y[~held]
    assigned = pred >= 0
    assert assigned.mean() > 0.5
    same = [(yf[fitted == c] == t).mean() for c, t in zip(pred[assigned], y[held][assigned])]
    assert np.mean(same) > 0.8
    # subsets give the same answer point by point
    assert (est.predict(x[held][::3]) == pred[::3]).all()
