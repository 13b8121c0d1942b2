"""The label-free cut search (clusterg.linkage.threshold_search): silhouette and agreement."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clusterg._validate import ClustergError
from clusterg.knn import knn_search
from clusterg.linkage import connected_components, threshold_edges
from clusterg.linkage.threshold_search import (SILHOUETTE_TOL, SilhouetteScorer, select_by_agreement, select_threshold,
                                               threshold_grid)

REPO = Path(__file__).resolve().parents[1]


def _blobs(n_ids=6, per=15, dim=16, spread=0.25, seed=0):
    rng = np.random.default_rng(seed)
    x = np.repeat(rng.normal(size=(n_ids, dim)), per, axis=0) + spread * rng.normal(size=(n_ids * per, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(n_ids), per)


def test_silhouette_equals_scikit_learn():
    from sklearn.metrics import silhouette_score
    x, y = _blobs()
    lab = y.copy()
    lab[:3] = [7, 8, 9]  # three singletons (silhouette 0 by convention in both)
    lab = np.unique(lab, return_inverse=True)[1]
    ours = SilhouetteScorer(x)(lab)
    ref = silhouette_score(x.astype(np.float64), lab, metric="cosine")
    assert ours == pytest.approx(ref, abs=1e-6)
    assert SilhouetteScorer(x)(np.zeros(len(x), dtype=np.int64)) == -1.0  # one cluster: undefined


def test_sampled_silhouette_is_close_and_seeded():
    x, y = _blobs(n_ids=30, per=100, spread=0.6)
    full = SilhouetteScorer(x, sample=len(x))(y)
    a, b = SilhouetteScorer(x, sample=500, seed=1)(y), SilhouetteScorer(x, sample=500, seed=1)(y)
    assert a == b
    assert a == pytest.approx(full, abs=0.02)


def test_select_threshold_finds_the_blobs():
    x, y = _blobs(spread=0.3)
    nb, s = knn_search(x, 20, quiet=True)
    grid = threshold_grid(s)
    labels_at = lambda t: connected_components(len(x), *threshold_edges(nb, s, t))  # noqa: E731
    ch = select_threshold(SilhouetteScorer(x), labels_at, grid)
    lab = labels_at(ch.cut)
    assert lab.max() + 1 == 6 and (np.unique(lab * 10 + y).size == 6)  # the blobs exactly
    assert ch.score >= ch.peak - SILHOUETTE_TOL * abs(ch.peak)
    assert ch.cut >= ch.peak_cut  # the finest clustering within tolerance


def test_select_threshold_skips_one_giant_cluster():
    x, _ = _blobs()
    n = len(x)
    # every cut gives one cluster with 90 % of the points: nothing usable
    giant = lambda t: np.r_[np.zeros(int(0.9 * n), dtype=np.int64), np.arange(1, n - int(0.9 * n) + 1)]  # noqa: E731
    assert select_threshold(SilhouetteScorer(x), giant, np.array([0.1, 0.2])) is None


def test_select_by_agreement_recovers_the_reference_cut():
    x, y = _blobs(n_ids=10, per=8, spread=0.5)
    nb, s = knn_search(x, 10, quiet=True)
    labels_at = lambda t: connected_components(len(x), *threshold_edges(nb, s, t))  # noqa: E731
    grid = threshold_grid(s, 10)
    ref = labels_at(float(grid[9]))
    ch = select_by_agreement(ref, labels_at, grid)
    assert ch.criterion == "agreement" and ch.score == pytest.approx(1.0)
    assert (labels_at(ch.cut) == ref).all()
    assert ch.cut <= grid[9]  # ties go to the lower threshold


def test_validation():
    x, _ = _blobs()
    with pytest.raises(ClustergError, match="N >= 2"):
        SilhouetteScorer(x[:1])
    with pytest.raises(ClustergError, match="shape"):
        SilhouetteScorer(x)(np.zeros(3, dtype=np.int64))
    with pytest.raises(ClustergError, match="increasing"):
        select_threshold(SilhouetteScorer(x), lambda t: np.zeros(len(x), dtype=np.int64), np.array([0.5, 0.4]))
    with pytest.raises(ClustergError, match="tol"):
        select_threshold(SilhouetteScorer(x), lambda t: np.zeros(len(x), dtype=np.int64), np.array([0.5]), tol=1.5)


def test_constants_match_their_fit():
    """SILHOUETTE_TOL and AUTO_MARGIN are what benchmarks/fit_silhouette_tol.py chose on tune sets only."""
    from clusterg.cluster.auto import AUTO_MARGIN
    fit = json.loads((REPO / "docs" / "benchmarks" / "silhouette_tol.json").read_text())
    assert SILHOUETTE_TOL == fit["silhouette_tol"]
    assert AUTO_MARGIN == fit["auto_margin"]
    assert not any(name in fit["tune_sets"] for name in ("orl", "yale", "umist", "pins14", "celeba6k", "celeba-dev"))


def test_infomap_k_search_matches_its_fit():
    """SEARCH_K and SEARCH_K_TOL are what benchmarks/fit_infomap_k.py chose on the same tune sets."""
    from clusterg.cluster.infomap import SEARCH_K, SEARCH_K_TOL
    fit = json.loads((REPO / "docs" / "benchmarks" / "infomap_k.json").read_text())
    assert list(SEARCH_K) == fit["search_k"] and SEARCH_K_TOL == fit["eps"]
    assert not any(name in fit["sets"] for name in ("orl", "yale", "umist", "pins14", "celeba6k", "celeba-dev"))
    # the search must beat the fixed k=20 it replaced on the tune sets
    chosen = ",".join(map(str, SEARCH_K))
    assert fit["mean_regret"][chosen][str(SEARCH_K_TOL)] < fit["mean_regret"]["20"][str(SEARCH_K_TOL)]


def test_infomap_default_keeps_identities_of_hundreds_whole():
    """A tune set of the k fit (12 identities of 126 to 1,234 faces): the first fit's k=5 search shattered it
    (pairwise F 0.653, 157 clusters); the k searched now keep it whole."""
    from clusterg.cluster import InfomapClusterer
    from clusterg.data.synth import synth_ms1m
    from clusterg.metrics import pairwise
    x, y = synth_ms1m(6000, dim=128, n_ids=12, seed=6002)
    est = InfomapClusterer().fit(x)
    assert est.k_ >= 10 and pairwise(y, est.labels_)[2] > 0.97, (est.k_, est.labels_.max() + 1)


def test_infomap_k_search_picks_the_highest_peak(caplog):
    """k is chosen with the cut: the k of SEARCH_K whose silhouette peak is highest, logged; small
    identities (synthetic, median 5) take fewer than 20 neighbours."""
    import logging

    from clusterg.cluster import InfomapClusterer
    from clusterg.cluster.infomap import SEARCH_K, SEARCH_K_TOL
    from clusterg.data.synth import synth_ms1m
    from clusterg.linkage.threshold_search import threshold_grid
    x, y = synth_ms1m(1200, dim=128, n_ids=240, seed=5)
    nb, s = knn_search(x, 80, quiet=True)
    with caplog.at_level(logging.INFO, logger="clusterg"):
        est = InfomapClusterer().fit(x, knn=(nb, s))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    peaks = {}
    for k in SEARCH_K:
        peaks[k] = select_threshold(SilhouetteScorer(xn), lambda t, k=k: InfomapClusterer(k=k, threshold=t).fit(
            xn, knn=(nb, s)).labels_, threshold_grid(s)).peak
    top = max(peaks.values())
    assert est.k_ == max(k for k in SEARCH_K if peaks[k] >= top - SEARCH_K_TOL * abs(top)) and est.k_ < 20, peaks
    assert f"k={est.k_} neighbours (silhouette peak" in caplog.text


def test_default_cut_is_deterministic_and_logged(caplog):
    import logging

    from clusterg.cluster import InfomapClusterer
    from clusterg.data.synth import synth_ms1m
    x, _ = synth_ms1m(600, dim=128, n_ids=40, seed=3)  # compact, dlib-like geometry: the search applies
    with caplog.at_level(logging.INFO, logger="clusterg"):
        a = InfomapClusterer().fit(x)
    b = InfomapClusterer().fit(x)
    assert a.threshold_ == b.threshold_ and (a.labels_ == b.labels_).all()
    assert "chosen by silhouette" in caplog.text
    caplog.clear()
    spread, _ = _blobs(n_ids=8, per=12, spread=0.45)  # spread geometry: the similarity-scale rule, as fitted
    with caplog.at_level(logging.INFO, logger="clusterg"):
        InfomapClusterer().fit(spread)
    assert "chosen by silhouette" not in caplog.text and "spread geometry" in caplog.text
