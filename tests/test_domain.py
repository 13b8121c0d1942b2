"""The packaged weights' feature-domain test (clusterg.models.domain) and how ``auto`` uses it."""
from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

from clusterg._validate import ClustergError
from clusterg.models.domain import MAX_ROWS, FeatureDomain, packaged_domain

REPO = Path(__file__).resolve().parents[1]
GATE = json.loads((REPO / "docs" / "benchmarks" / "domain_gate.json").read_text())


def _toy(seed=0, n=3000, d=16, shift=0.0):
    rng = np.random.default_rng(seed)
    base = np.zeros(d)
    base[0] = 4.0
    x = base + rng.normal(size=(n, d)) * np.linspace(1.0, 0.2, d)
    x[:, 1] += shift
    return x


def test_fit_flags_a_shifted_set_and_not_new_draws():
    train = _toy(0)
    nulls = [_toy(s, n=int(n)) for s, n in zip(range(1, 101), np.linspace(100, 800, 100))]
    dom = FeatureDomain.fit(train, nulls, 0.25)
    assert dom.whiten.shape == (16, 16)
    assert np.mean([dom.check(s).inside for s in nulls]) >= 0.97
    assert np.mean([dom.check(_toy(s, n=300)).inside for s in range(200, 260)]) >= 0.9  # new draws
    assert not dom.check(_toy(98, n=300, shift=3.0)).inside
    assert dom.threshold(100) > dom.threshold(1000) > dom.centre


def test_statistic_is_capped_seeded_and_validated():
    train = _toy(0)
    dom = FeatureDomain.fit(train, [_toy(1, n=200), _toy(2, n=400)], 0.5)
    big = _toy(3, n=MAX_ROWS + 500)
    s1, n1 = dom.statistic(big, seed=0)
    assert n1 == MAX_ROWS and dom.statistic(big, seed=0) == (s1, n1)
    with pytest.raises(ClustergError, match="16-d"):
        dom.statistic(np.ones((10, 8)))
    with pytest.raises(ClustergError, match="NaN"):
        dom.statistic(np.full((10, 16), np.nan))
    with pytest.raises(ClustergError, match="n must be"):
        dom.threshold(0)
    with pytest.raises(ClustergError, match="quantile"):
        FeatureDomain(dom.mean, dom.whiten, 1.5, dom.centre, dom.spread)


def test_save_load_round_trip_and_refuses_pickles(tmp_path):
    dom = FeatureDomain.fit(_toy(0), [_toy(1, n=200)], 0.25)
    p = dom.save(tmp_path / "d.npz")
    back = FeatureDomain.load(p)
    assert np.array_equal(back.whiten, dom.whiten) and back.centre == dom.centre and back.spread == dom.spread
    bad = tmp_path / "evil.npz"
    np.savez(bad, mean=np.array([object()], dtype=object), whiten=dom.whiten, quantile=0.25, centre=1.0, spread=1.0)
    with pytest.raises(ClustergError, match="cannot read"):
        FeatureDomain.load(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(pickle.dumps({"mean": 1}))
    with pytest.raises(ClustergError, match="cannot read"):
        FeatureDomain.load(junk)
    with pytest.raises(ClustergError, match="not a file"):
        FeatureDomain.load(tmp_path)


def test_packaged_domain_matches_its_fit():
    dom = packaged_domain(128)
    assert dom is not None and packaged_domain(64) is None
    assert dom.quantile == GATE["quantile"] and dom.centre == pytest.approx(GATE["centre"])
    assert dom.spread == pytest.approx(GATE["spread"])
    # the fit's rule: the candidate quantile with the tightest null relative to its centre
    rel = {float(k): v for k, v in GATE["relative_spread"].items()}
    assert dom.quantile == min(rel, key=rel.get)
    assert GATE["null"]["flagged"] <= 0.02
    # every held-aside CelebA tune set lies inside, every synthetic one outside
    for name, r in GATE["sets"].items():
        assert r["inside"] == name.startswith(("train-held", "held-")), name


@pytest.mark.parametrize("name,split,inside", [("celeba", "dev", True), ("celeba6k", "all", True),
                                               ("pins14", "all", True), ("orl", "all", False),
                                               ("yale", "all", False), ("umist", "all", False)])
def test_real_sets_inside_or_outside(shared_set, name, split, inside):
    """Colour web photos (CelebA, Pins) lie inside; the grey-scale ORL, Yale and UMIST scans outside."""
    x, _ = shared_set(name, split)
    chk = packaged_domain(128).check(x)
    assert chk.inside is inside, chk


def test_auto_reports_outside_and_falls_back_when_asked(shared_set, caplog):
    from clusterg.cluster import AdaNetsClusterer, AutoClusterer
    from clusterg.cluster.auto import DOMAIN_FALLBACK
    assert DOMAIN_FALLBACK == GATE["fallback"]  # the fitted decision, tied to its results file
    x, _ = shared_set("yale", "all")
    with caplog.at_level(logging.INFO, logger="clusterg"):
        est = AutoClusterer(domain_fallback=True).fit(x)
    assert est.method_ == "infomap" and not est.domain_.inside
    assert "outside the packaged weights' training distribution" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        est = AutoClusterer(domain_fallback=False).fit(x)
    assert est.method_ == "ada-nets" and not est.domain_.inside
    assert caplog.text.count("outside the packaged weights' training distribution") == 1  # said once, by auto
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        AdaNetsClusterer().fit(x)
    assert "outside the packaged weights' training distribution" in caplog.text
    with pytest.raises(ClustergError, match="domain_fallback"):
        AutoClusterer(domain_fallback="no").fit(x)


def test_no_warning_inside(shared_set, caplog):
    from clusterg.cluster import AutoClusterer
    x, _ = shared_set("pins14", "all")
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        est = AutoClusterer().fit(x)
    assert est.domain_.inside and "training distribution" not in caplog.text


def test_cli_reports_the_domain_test(shared_data, tmp_path):
    import subprocess
    import sys
    d = shared_data / "yale"
    cmd = [sys.executable, "-m", "clusterg", "cluster", str(d / "features" / "all.bin"), "--dim", "128",
           "-o", str(tmp_path / "y.meta"), "--json", "-q", "--domain-fallback", "on"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["ran"] == "infomap" and res["domain"]["inside"] is False
    assert res["domain"]["statistic"] > res["domain"]["threshold"]
    bad = subprocess.run(cmd[:-2] + ["--method", "infomap", "--domain-fallback", "on"], capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert bad.returncode == 2 and "--domain-fallback applies to --method auto only" in bad.stderr
