"""Pseudo-labels (outliers -1, reliabilities, presets) and ``clusterg pseudo-labels``."""
import json
import logging

import numpy as np
import pytest

from clusterg import ClustergError
from clusterg.cli.main import main
from clusterg.cluster.pseudo_labels import PSEUDO_LABEL_PRESETS, pseudo_labels
from clusterg.data.io import read_meta
from clusterg.data.synth import synth_ms1m
from clusterg.metrics import pairwise


@pytest.fixture(scope="module")
def synth():
    return synth_ms1m(1500, dim=32, n_ids=150, seed=5)


def test_cli_spcl_faces_on_celeba_dev_precise_and_repeatable(shared_data, tmp_path, capsys):
    feats = shared_data / "celeba" / "features" / "dev.bin"
    gt = read_meta(shared_data / "celeba" / "labels" / "dev.meta")
    outs = []
    for run in range(2):
        out = tmp_path / f"run{run}.meta"
        rc = main(["-q", "pseudo-labels", str(feats), "--dim", "128", "--preset", "spcl-faces", "-o", str(out),
                   "--json", "--reliability", str(tmp_path / f"rel{run}.npz")])
        assert rc == 0
        info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        outs.append(read_meta(out))
    a, b = outs
    assert (a == b).all(), "two runs gave different labels"
    assert info["n_clusters"] == a.max() + 1 and info["n_outliers"] == int((a < 0).sum())
    kept = a >= 0
    prec = pairwise(gt[kept], a[kept])[0]
    assert prec >= 0.95, f"non-outlier pairwise precision {prec:.4f}"
    assert 0.5 < kept.mean() < 0.95 and a.max() + 1 > 500  # not a degenerate labelling
    with np.load(tmp_path / "rel0.npz", allow_pickle=False) as z:
        assert (z["labels"] == a).all()
        assert z["cluster_reliability"].shape == (a.max() + 1,)
        # reliable samples are purer than the rest of the clustered ones
        rel = z["reliable"] & kept
        assert pairwise(gt[rel], a[rel])[0] >= prec


def test_reliabilities(synth):
    x, y = synth
    r = pseudo_labels(x, preset="spcl", eps=0.5, quiet=True)
    n = len(x)
    assert r.labels.shape == (n,) and r.labels.min() >= -1
    out = r.labels < 0
    assert 0 < r.n_outliers < n and r.n_clusters > 20
    for a in (r.sample_reliability, r.independence, r.compactness):
        assert a.shape == (n,) and a.min() >= 0 and a.max() <= 1
        assert (a[out] == 0).all()
    assert np.allclose(r.sample_reliability, np.minimum(r.independence, r.compactness))
    assert r.cluster_reliability.shape == (r.n_clusters,)
    for c in range(0, r.n_clusters, 7):
        assert r.cluster_reliability[c] == pytest.approx(r.independence[r.labels == c].max())
    assert not r.reliable[out].any() and 0 < r.reliable.sum() <= (~out).sum()
    # numbering: clusters in order of their first member
    firsts = [np.flatnonzero(r.labels == c)[0] for c in range(r.n_clusters)]
    assert firsts == sorted(firsts)
    s = r.summary()
    assert s["n_clusters"] == r.n_clusters and s["n_outliers"] == r.n_outliers


def test_deterministic_and_delta_zero(synth):
    x, _ = synth
    a = pseudo_labels(x, eps=0.5, quiet=True)
    b = pseudo_labels(x.copy(), eps=0.5, quiet=True)
    assert (a.labels == b.labels).all() and (a.sample_reliability == b.sample_reliability).all()
    c = pseudo_labels(x, eps=0.5, delta=0.0, quiet=True)
    assert (c.labels == a.labels).all()
    assert (c.sample_reliability[c.labels >= 0] == 1).all()


def test_eps_trades_precision_for_outliers(synth):
    x, y = synth
    tight = pseudo_labels(x, eps=0.3, delta=0.0, quiet=True)
    loose = pseudo_labels(x, eps=0.7, delta=0.0, quiet=True)
    assert tight.n_outliers > loose.n_outliers
    pt = pairwise(y[tight.labels >= 0], tight.labels[tight.labels >= 0])[0]
    pl = pairwise(y[loose.labels >= 0], loose.labels[loose.labels >= 0])[0]
    assert pt >= pl


def test_infomap_preset_makes_small_clusters_outliers(synth):
    pytest.importorskip("infomap")
    x, y = synth
    r = pseudo_labels(x, preset="cluster-contrast-infomap", min_sim=0.8, quiet=True)
    sizes = np.bincount(r.labels[r.labels >= 0])
    assert sizes.min() >= 5
    assert r.params == {"method": "infomap", "k": 15, "min_sim": 0.8, "min_size": 5, "delta": 0.02}
    assert pairwise(y, r.labels)[2] > 0.3


def test_collapse_is_warned(synth, caplog):
    x, _ = synth
    with caplog.at_level(logging.WARNING, logger="clusterg.cluster.pseudo_labels"):
        r = pseudo_labels(x, eps=0.999, min_samples=2, delta=0.0, k1=30, quiet=True)
    big = np.bincount(r.labels[r.labels >= 0]).max()
    assert big >= len(x) / 2 and "one cluster holds" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clusterg.cluster.pseudo_labels"):
        r = pseudo_labels(x, eps=0.01, min_samples=50, delta=0.0, quiet=True)
    assert r.n_outliers == len(x) and "outliers" in caplog.text


def test_presets_and_bad_input(synth):
    x, _ = synth
    assert PSEUDO_LABEL_PRESETS["spcl"] == {"method": "dbscan-jaccard", "k1": 30, "k2": 6, "eps": 0.6,
                                            "min_samples": 4}
    with pytest.raises(ClustergError, match="unknown preset"):
        pseudo_labels(x, preset="nope")
    with pytest.raises(ClustergError, match="unknown method"):
        pseudo_labels(x, method="kmeans")
    with pytest.raises(ClustergError, match="uses method"):
        pseudo_labels(x, method="infomap", preset="spcl")
    with pytest.raises(ClustergError, match="eps"):
        pseudo_labels(x, eps=0.0)
    with pytest.raises(ClustergError, match="min_samples"):
        pseudo_labels(x, min_samples=0)
    with pytest.raises(ClustergError, match="NaN"):
        pseudo_labels(np.full((5, 3), np.nan))


def test_cli_errors(tmp_path, capsys):
    x, _ = synth_ms1m(200, dim=16, n_ids=20, seed=0)
    np.save(tmp_path / "x.npy", x)
    assert main(["pseudo-labels", str(tmp_path / "x.npy"), "-o", str(tmp_path / "x.npy")]) == 2
    assert "refusing" in capsys.readouterr().err
    assert main(["pseudo-labels", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.meta"), "--eps", "3"]) == 2
    assert "eps" in capsys.readouterr().err
    assert not (tmp_path / "o.meta").exists()
    assert main(["-q", "pseudo-labels", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.meta"), "--k1", "10"]) == 0
    assert len(read_meta(tmp_path / "o.meta")) == 200


def test_spcl_faces_eps_is_the_recorded_choice_and_the_docs_table_matches():
    """spcl-faces' eps is what benchmarks/pseudo_label_eps.py chose on held-aside train identities."""
    import json
    import sys
    from pathlib import Path

    from clusterg.cluster.pseudo_labels import PSEUDO_LABEL_PRESETS
    repo = Path(__file__).resolve().parents[1]
    res = json.loads((repo / "docs" / "benchmarks" / "pseudo_label_eps.json").read_text())
    assert PSEUDO_LABEL_PRESETS["spcl-faces"]["eps"] == res["chosen_eps"]
    assert "train" in res["tune_set"] and "dev" in res["check_set"]
    sys.path.insert(0, str(repo / "benchmarks"))
    from pseudo_label_eps import render_table
    assert (repo / "docs" / "benchmarks" / "pseudo_label_eps_table.rst.inc").read_text() == render_table(res)
