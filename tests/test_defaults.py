"""Defaults that hold on every regime: label-free thresholds and the ``auto`` pipeline (docs/defaults.rst).

The reference each default is held to is computed here, with the labels (an oracle): the same
method, or plain Infomap, at its best threshold on a grid. Nothing here is tuned on these sets;
the rules were fitted on CelebA ``train`` identities and synthetic sets (see the docs).
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterg.cluster import make_clusterer
from clusterg.cluster.infomap import infomap_labels
from clusterg.knn import knn_search
from clusterg.linkage.auto_threshold import auto_threshold, similarity_scale, warn_if_degenerate_threshold
from clusterg.metrics import evaluate

REPO = Path(__file__).resolve().parents[1]

# (folder, split, dim) of the real sets
SETS = {"celeba-dev": ("celeba", "dev"), "celeba6k": ("celeba6k", "all"), "pins14": ("pins14", "all"),
        "orl": ("orl", "all"), "yale": ("yale", "all"), "umist": ("umist", "all"),
        "tweet89": ("tweet89", "all", 384)}


def _fp(y, lab) -> float:
    return evaluate(y, lab)["pairwise_fscore"]


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _infomap_at(nb, s, k, t):
    n = len(nb)
    rows = np.repeat(np.arange(n), k)
    c, w = nb[:, :k].ravel(), s[:, :k].ravel()
    keep = (c != rows) & (w > t)
    return infomap_labels(n, rows[keep], c[keep], w[keep])


def _best_infomap(knn, y, grid, ks=(10, 20, 50, 80)):
    nb, s = knn
    return max(_fp(y, _infomap_at(nb, s, min(k, nb.shape[1]), t)) for k in ks for t in grid)


# ----------------------------------------------------------------------------- the rule itself


def _two_scale(n_ids=40, per=12, dim=32, spread=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    x = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(n_ids * per, dim))
    return _unit(x), np.repeat(np.arange(n_ids), per)


def test_auto_threshold_lies_between_the_two_similarity_modes():
    x, y = _two_scale()
    nb, s = knn_search(x, 20, normalize=False)
    m_far, m_near = similarity_scale(x, s)
    for rule in ("infomap", "cc", "hac", "embedding-infomap"):
        t = auto_threshold(x, s, rule=rule)
        assert m_far < t.threshold < m_near, (rule, t)
    # and it separates the identities of this easy set
    lab = make_clusterer("infomap").fit_predict(x)
    assert _fp(y, lab) > 0.95


def test_auto_threshold_is_scale_free_and_deterministic():
    x, _ = _two_scale(seed=1)
    nb, s = knn_search(x, 20, normalize=False)
    a = auto_threshold(x, s, "infomap", seed=3)
    b = auto_threshold(x, s, "infomap", seed=3)
    assert a == b
    # a tighter embedding (same structure, similarities squeezed towards 1) moves the cut with it
    xt = _unit(np.hstack([x, np.full((len(x), 1), 3.0)]))
    nbt, st = knn_search(xt, 20, normalize=False)
    at = auto_threshold(xt, st, "infomap", seed=3)
    assert at.threshold > a.threshold + 0.2
    lab = make_clusterer("infomap").fit_predict(xt)
    lab0 = make_clusterer("infomap").fit_predict(x)
    assert _fp(lab0, lab) > 0.95


def test_auto_threshold_rejects_unknown_rule():
    from clusterg._validate import ClustergError
    x, _ = _two_scale(n_ids=3, per=3)
    with pytest.raises(ClustergError, match="unknown threshold rule"):
        auto_threshold(x, np.ones((len(x), 2), np.float32), rule="nope")


def test_fixed_threshold_that_keeps_every_edge_warns_with_the_range(caplog):
    x, _ = _two_scale()
    nb, s = knn_search(x, 20, normalize=False)
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        warn_if_degenerate_threshold(s, -0.99, "knn-cc")
    assert "keeps 100.0% of the kNN edges" in caplog.text and "nearly one cluster" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        warn_if_degenerate_threshold(s, float(np.percentile(s[:, 1:], 50)), "knn-cc")
    assert caplog.text == ""


# ----------------------------------------------------------------------------- real sets


@pytest.fixture(scope="module")
def real(shared_set):
    """``real(name) -> (x, y, (nbrs, sims))``: a real set and its exact 80-NN (computed once per module)."""
    cache = {}

    def get(name):
        if name not in cache:
            x, y = shared_set(*SETS[name])  # (folder, split[, dim])
            cache[name] = (x, y, knn_search(_unit(x), min(80, len(x)), normalize=False))
        return cache[name]
    return get


def test_old_fixed_default_collapsed_and_now_warns(real, caplog):
    """knn-cc's old default (0.7, an MS1M value) merged every dlib face into one cluster without a word."""
    x, y, _ = real("celeba6k")
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        lab = make_clusterer("knn-cc", threshold=0.7).fit_predict(x)
    assert lab.max() == 0
    assert "nearly one cluster" in caplog.text
    lab = make_clusterer("knn-cc").fit_predict(x)  # the label-free default
    assert lab.max() > 100 and _fp(y, lab) > 0.6


@pytest.mark.parametrize("name", ["pins14", "celeba6k", "celeba-dev"])
def test_default_pipeline_reaches_best_infomap(real, name):
    """No method, no threshold: at least the best plain Infomap (k and threshold chosen with the labels) - 0.01."""
    x, y, knn = real(name)
    est = make_clusterer("auto")
    f = _fp(y, est.fit_predict(x, knn=knn))
    assert est.method_ == "ada-nets"
    ks = (10, 20) if len(x) > 5000 else (10, 20, 50, 80)
    grid = np.round(np.arange(0.93, 0.9601, 0.005), 3) if len(x) > 5000 else np.round(np.arange(0.86, 0.99, 0.005), 3)
    best = _best_infomap(knn, y, grid, ks)
    assert f >= best - 0.01, (name, f, best)
    if name == "celeba-dev":
        assert f > best and f >= 0.892  # beats Infomap's oracle, and today's Ada-NETS default


@pytest.mark.parametrize("name", ["orl", "umist", "yale"])
def test_default_pipeline_falls_back_on_the_studio_sets(real, name):
    """ORL, UMIST and Yale (grey-scale studio scans) lie outside the packaged weights' training distribution:
    ``auto`` says so (``domain_``) and runs Infomap (``DOMAIN_FALLBACK``), which does better than Ada-NETS on the
    packaged weights there; ``domain_fallback=False`` runs Ada-NETS all the same (then weighs it against Infomap's
    silhouette). Features as a user passes them (no kNN)."""
    x, y, _ = real(name)
    est = make_clusterer("auto").fit(x)
    assert est.method_ == "infomap" and not est.domain_.inside and est.domain_.statistic > est.domain_.threshold
    assert not hasattr(est, "silhouettes_")  # Ada-NETS did not run
    kept = make_clusterer("auto", domain_fallback=False).fit(x)
    assert not kept.domain_.inside and set(kept.silhouettes_) == {"ada-nets", "infomap"}
    assert _fp(y, est.labels_) > _fp(y, make_clusterer("ada-nets").fit_predict(x)), name


_YALE_GAP = pytest.mark.xfail(strict=True, reason="known gap (docs/defaults.rst): on Yale the label-free Infomap "
                                                  "the default falls back to walks to a cut that splits two "
                                                  "people (17 clusters for 15), 0.002 short of the oracle - 0.01")


@pytest.mark.parametrize("name", ["orl", "umist", pytest.param("yale", marks=_YALE_GAP)])
def test_default_pipeline_on_the_studio_sets(real, name):
    """The fallback's label-free Infomap against plain Infomap at its oracle k and cut - 0.01. UMIST holds by a
    narrow margin: its oracle window is one cut step wide (``docs/defaults.rst``)."""
    x, y, knn = real(name)
    f = _fp(y, make_clusterer("auto").fit_predict(x))  # as ``clusterg cluster`` runs it: its own kNN
    best = _best_infomap(knn, y, np.round(np.arange(0.86, 0.99, 0.005), 3))
    assert f >= best - 0.01, (name, f, best)


def _default_and_best(x, y, knn, method):
    """Pairwise F of ``method`` at its default, and at its best threshold on a grid (labels used)."""
    from clusterg.linkage import connected_components, threshold_edges
    from clusterg.linkage.tree_deduction import parents_to_labels
    est = make_clusterer(method)
    f = _fp(y, est.fit_predict(x, knn=knn))
    if method == "ada-nets":  # re-cut the same final graph
        from clusterg.models.ada_nets import link
        nb, si = est.final_graph_
        best = max(_fp(y, link(nb, si, est.linkage_, t)) for t in np.round(np.arange(0.3, 0.995, 0.01), 3))
    elif method in ("gcn-v", "gcn-ve"):  # re-cut the same trees, then the default's rejoin
        from clusterg.cluster.gcn_v import _rejoin
        best = max(_fp(y, _rejoin(parents_to_labels(est.parent_all_, est.psim_all_, t), est.reference_, method)[0])
                   for t in np.round(np.arange(0.5, 0.995, 0.01), 3))
    elif method == "knn-cc":
        nb, si = knn[0][:, :20], knn[1][:, :20]
        best = max(_fp(y, connected_components(len(x), *threshold_edges(nb, si, t)))
                   for t in np.round(np.arange(0.86, 0.995, 0.002), 3))
    else:
        best = max(_fp(y, make_clusterer(method, threshold=float(t)).fit_predict(x, knn=knn))
                   for t in np.round(np.arange(0.86, 0.99, 0.005), 3))
    return f, best


@pytest.mark.parametrize("name,method", [(n, m) for n, ms in {
    "pins14": ("infomap", "hac", "knn-cc", "gcn-v", "gcn-ve", "ada-nets"),
    "yale": ("infomap", "hac", "knn-cc", "gcn-v", "gcn-ve", "ada-nets"),
    "orl": ("infomap", "hac", "knn-cc", "gcn-v", "gcn-ve", "ada-nets"),
    "umist": ("infomap", "hac", "knn-cc", "dbscan", "gcn-v", "gcn-ve", "ada-nets")}.items() for m in ms])
def test_method_default_within_005_of_its_best_threshold(real, name, method):
    x, y, knn = real(name)
    f, best = _default_and_best(x, y, knn, method)
    assert f >= best - 0.05, (name, method, f, best)


def test_text_embeddings_default_reaches_best_infomap(real):
    """384-d sentence embeddings, no weights for them: label-free Infomap within 0.03 of its oracle over k and cut.

    The constants it uses for such spread embeddings were fitted on synthetic sets only
    (benchmarks/fit_spread_rules.py); with the face-fitted constants alone it scored 0.48 here.
    """
    x, y, knn = real("tweet89")
    est = make_clusterer("auto")
    f = _fp(y, est.fit_predict(x, knn=knn))
    assert est.method_ == "infomap" and est.estimator_.k_ == 80
    best = _best_infomap(knn, y, np.round(np.arange(0.25, 0.601, 0.025), 3))
    assert f >= best - 0.03, (f, best)
    # average-linkage HAC at its default: within 0.05 of its own best cut
    from clusterg.cluster.hac import average_linkage_knn
    xn = _unit(x)
    f_hac = _fp(y, make_clusterer("hac").fit_predict(x, knn=knn))
    best_hac = max(_fp(y, average_linkage_knn(xn, knn[0][:, :20], float(t), quiet=True))
                   for t in np.round(np.arange(0.2, 0.5, 0.02), 3))
    assert f_hac >= best_hac - 0.05, (f_hac, best_hac)


def test_geometry_picks_constants_and_k():
    """Compact (dlib-like) synthetic faces keep the compact constants and search k over SEARCH_K (20 with a
    given threshold); spread 384-d sets take the spread ones and k=80."""
    from clusterg.cluster import InfomapClusterer
    from clusterg.cluster.infomap import SEARCH_K
    from clusterg.data.synth import synth_ms1m
    from clusterg.linkage.auto_threshold import RULES, SPREAD_RULES, geometry_weight
    compact, _ = synth_ms1m(1500, dim=128, n_ids=150, seed=3)
    spread, _ = synth_ms1m(1500, dim=384, n_ids=150, seed=3, between=11.5, within=8.0)
    for x, w_expected, k_expected in ((compact, 0.0, 20), (spread, 1.0, 80)):
        nb, s = knn_search(x, 80, quiet=True)
        assert geometry_weight(*similarity_scale(x, s)) == w_expected
        a = auto_threshold(x, s, "infomap")
        assert a.spread == w_expected
        rule = SPREAD_RULES["infomap"] if w_expected else RULES["infomap"]
        assert a.threshold == pytest.approx(a.m_far + (rule[0] - rule[1] * a.share) * (a.m_near - a.m_far), abs=1e-6)
        est = InfomapClusterer().fit(x, knn=(nb, s))
        assert est.k_ in (SEARCH_K if k_expected == 20 else (k_expected,))
        assert InfomapClusterer(threshold=float(a.threshold)).fit(x, knn=(nb, s)).k_ == k_expected
    assert InfomapClusterer(k=20).fit(spread).k_ == 20  # a given k is kept
    with pytest.raises(Exception, match="k: expected an integer or 'auto'"):
        InfomapClusterer(k="many").fit(spread)


def test_spread_constants_match_their_fit():
    """SPREAD_RULES are the values benchmarks/fit_spread_rules.py wrote to docs/benchmarks/spread_fit.json."""
    from clusterg.linkage.auto_threshold import SPREAD_RULES
    fits = json.loads((REPO / "docs" / "benchmarks" / "spread_fit.json").read_text())["fits"]
    for rule, fam in (("infomap", "infomap80"), ("hac", "hac20"), ("cc", "cc20")):
        a, b, c, _ = SPREAD_RULES[rule]
        assert (a, b, c) == pytest.approx((fits[fam]["a"], fits[fam]["b"], fits[fam]["c"])), rule


@pytest.mark.parametrize("n_ids,seed,grid", [(120, 150, (0.88, 0.9401, 0.006)), (1200, 205, (0.92, 0.9561, 0.004))],
                         ids=["median-50", "median-5"])
def test_default_pipeline_on_synthetic_sets(n_ids, seed, grid):
    """The synthetic regimes of median identity size ~50 and ~5 (docs/defaults.rst): within 0.02 of the Infomap
    oracle. The domain test flags synthetic features, so the default runs Infomap there; at median 5 the
    packaged Ada-NETS weights would not reach the bound."""
    from clusterg.data.synth import synth_ms1m
    x, y = synth_ms1m(6000, dim=128, n_ids=n_ids, seed=seed)
    knn = knn_search(_unit(x), 80, normalize=False)
    est = make_clusterer("auto")
    f = _fp(y, est.fit_predict(x, knn=knn))
    assert est.method_ == "infomap" and not est.domain_.inside
    best = _best_infomap(knn, y, np.round(np.arange(*grid), 3), ks=(10, 20))
    assert f >= best - 0.02, (f, best)
    if n_ids == 1200:
        f_ada = _fp(y, make_clusterer("auto", domain_fallback=False).fit_predict(x, knn=knn))
        assert f_ada < best - 0.02 < f, (f_ada, f, best)


def test_default_pipeline_rejoins_identities_of_hundreds():
    """Synthetic median identity size ~500 (the regime sweep's set): where Ada-NETS alone splits an identity
    of about 1,200 faces in large pieces, the default rejoins them; either way it reaches the Infomap
    oracle - 0.02.

    Whether Ada-NETS splits here depends on the machine: on the CPU of earlier CI runs it did (and the rejoin
    lifted F by more than 0.05); on an AVX-512 CPU with faiss 1.15.1 (2026-12-07) Ada-NETS alone scored
    0.999 with 13 clusters, leaving nothing to rejoin. The rejoin itself is pinned in tests/test_rejoin.py."""
    from clusterg.data.synth import synth_ms1m
    x, y = synth_ms1m(6000, dim=128, n_ids=12, seed=600)
    knn = knn_search(_unit(x), 80, normalize=False)
    est = make_clusterer("auto", domain_fallback=False)  # synthetic features: Ada-NETS only when asked
    f = _fp(y, est.fit_predict(x, knn=knn))
    assert est.method_ == "ada-nets"
    f_ada = _fp(y, est.estimator_.labels_)  # Ada-NETS' own clustering, before the rejoin
    best = _best_infomap(knn, y, np.round(np.arange(0.88, 0.9401, 0.006), 3), ks=(10, 20))
    assert f >= best - 0.02, (f, f_ada, best)
    if f_ada < best - 0.02:  # Ada-NETS split people: the rejoin must have joined them
        assert est.rejoined_ >= 1 and f > f_ada + 0.05, (f, f_ada, best, est.rejoined_)
    else:
        assert f >= f_ada - 0.005, (f, f_ada)  # nothing to rejoin: the rejoin does no harm
    f_default = _fp(y, make_clusterer("auto").fit_predict(x, knn=knn))  # the default: Infomap (outside the domain)
    assert f_default >= best - 0.02, (f_default, best)


def test_cli_default_is_auto_and_names_what_ran(shared_data, tmp_path):
    d = shared_data / "pins14"
    out = subprocess.run([sys.executable, "-m", "clusterg", "cluster", str(d / "features" / "all.bin"), "--dim", "128",
                          "--labels", str(d / "labels" / "all.meta"), "-o", str(tmp_path / "p.meta"), "--json", "-q"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["method"] == "auto" and res["ran"] == "ada-nets"
    assert isinstance(res["params"]["threshold"], float)
    assert res["pairwise_fscore"] > 0.98 and 12 <= res["n_clusters"] <= 20


def test_docs_table_matches_the_results_file():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from regimes import render_table
    results = json.loads((REPO / "docs" / "benchmarks" / "regimes.json").read_text())
    table = (REPO / "docs" / "benchmarks" / "regimes_table.rst.inc").read_text()
    assert render_table(results) == table


def test_readme_table_matches_the_results_file():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from regimes import render_markdown
    results = json.loads((REPO / "docs" / "benchmarks" / "regimes.json").read_text())
    md = (REPO / "README.md").read_text()
    start = md.index("\n", md.index("<!-- regimes-table")) + 1
    assert md[start:md.index("<!-- /regimes-table -->")] == render_markdown(results)


def test_identity_size_augmentation_decision_matches_the_shipped_weights():
    """benchmarks/train_ada_mixture.py's rule, recomputed from its results file, and the weights that ship."""
    from clusterg.models.checkpoint import load_checkpoint, packaged_weights
    j = json.loads((REPO / "docs" / "benchmarks" / "ada_mixture.json").read_text())
    mean = {k: float(np.mean([r["auto_F"] for r in v.values()])) for k, v in j["sets"].items()}
    assert mean == pytest.approx(j["mean_auto_F"])
    held = {k: v["train-held"]["auto_F"] for k, v in j["sets"].items()}
    ship = mean["mixture"] > mean["packaged"] and held["mixture"] >= held["packaged"] - 0.005
    assert ship == j["ship"]
    assert not any(k.startswith(("celeba-dev", "celeba6k", "pins14", "orl", "yale", "umist", "tweet"))
                   for k in j["sets"]["mixture"]), "tune sets only"
    meta = load_checkpoint(packaged_weights("ada_nets_dlib128.pt"))["meta"]
    # CelebA train alone (41,796 faces) unless the mixture was shipped
    assert (meta["trained_on"]["n"] == 41_796) == (not j["ship"])


def test_giant_cluster_is_reported_once(caplog):
    """A clustering whose largest cluster holds most of 1,000+ points is reported by the outermost fit only."""
    from clusterg.cluster.base import GIANT_MIN_N, warn_if_giant
    lab = np.r_[np.zeros(700, np.int64), np.arange(1, 301)]
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        warn_if_giant(lab, "x")
    assert "largest cluster holds 700 of the 1000 points (70%)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        warn_if_giant(lab[: GIANT_MIN_N - 1], "x")  # too few points to judge
        warn_if_giant(np.r_[np.zeros(500, np.int64), np.arange(1, 501)], "x")  # half is not most
    assert caplog.text == ""
    from clusterg.cluster.base import BaseClusterer

    class Outer(BaseClusterer):  # a clusterer that runs another, as ``auto`` does
        def fit(self, X, y=None, knn=None):
            self.labels_ = make_clusterer("knn-cc", threshold=-0.99).fit(X).labels_
            return self

    x, _ = _two_scale(n_ids=100)  # 1,200 points
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        assert Outer().fit(x).labels_.max() == 0  # every edge kept: one cluster
    assert caplog.text.count("largest cluster holds 1200 of the 1200 points") == 1
    assert "Outer" in caplog.text
