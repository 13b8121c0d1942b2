"""The report runner end to end at toy size: kNN, sweeps, methods, peers, results.json, report, plots.

Runs in a few seconds so CI keeps ``benchmarks/run_report.py`` and ``report_render.py``
working; the real measurements are made by running ``run_report.py`` itself.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run_report as rr  # noqa: E402
from report_render import md_to_rst, write_report  # noqa: E402


@pytest.fixture
def toy():
    from clusterg.data.synth import synth_ms1m
    return synth_ms1m(600, dim=32, n_ids=40, seed=0)


def test_runner_writes_results_and_report(benchmark, tmp_path, toy):
    x, y = toy
    store = rr.Store(tmp_path / "results.json")
    store.data["machine"] = rr.machine_info()

    def run():
        rr.run_dataset(store, "toy", x, y, methods=["knn-cc", "infomap"],
                       peers=["sklearn-dbscan", "sklearn-hac", "faiss-kmeans"], k_max=20, knn_method="flat",
                       device="cpu", nlist=None, nprobe=None, recall_sample=0, thresholds=None, sweep_grid=True,
                       kind="real")

    benchmark.pedantic(run, rounds=1, iterations=1)
    data = json.loads((tmp_path / "results.json").read_text())
    # pairwise F measured on this toy set: knn-cc 0.500, infomap 0.782, DBSCAN 0.500 (= knn-cc at its
    # best threshold), HAC 0.724, k-means 0.352; floors 0.02 below
    floors = {"knn-cc": 0.48, "infomap": 0.76, "sklearn-dbscan": 0.48, "sklearn-hac": 0.70, "faiss-kmeans": 0.33}
    for m, f_min in floors.items():
        r = data["runs"][f"toy|{m}"]
        assert "error" not in r, r
        assert r["pairwise_fscore"] > f_min, (m, r["pairwise_fscore"])
        assert r["fit_seconds"] >= 0 and r["peak_rss_gib"] > 0
    # the sweep keeps its best threshold and the run used it
    sw = data["sweeps"]["toy|knn-cc"]
    assert data["runs"]["toy|knn-cc"]["threshold"] == sw["best"]
    assert max(sw["pairwise_f"]) == pytest.approx(data["runs"]["toy|knn-cc"]["pairwise_fscore"], abs=1e-3)
    # exact search is recorded as recall 1 and timed
    assert data["knn"]["toy"]["recall_at_k"] == 1.0 and data["knn"]["toy"]["seconds"] > 0
    path = write_report(data, tmp_path)
    text = path.read_text()
    assert "| toy | 600 | 32 | 40 | knn-cc |" in text and "sklearn-hac (peer)" in text
    assert (tmp_path / "time_vs_n.png").stat().st_size > 1000
    rst = (tmp_path / "report.rst.inc").read_text()
    assert ".. list-table::" in rst and "``" in rst


def test_ivf_hnsw_knn_shape_and_recall(benchmark, toy):
    x, _ = toy
    nbrs, sims, stages = benchmark.pedantic(rr.knn_ivf_hnsw, args=(x, 10, 16, 4), rounds=1, iterations=1)
    assert nbrs.shape == (600, 10) and (nbrs[:, 0] == np.arange(600)).all()
    assert (np.diff(sims, axis=1) <= 1e-6).all() and set(stages) == {"train", "add", "search"}
    from clusterg.knn import knn_recall, knn_search
    assert knn_recall(nbrs, knn_search(x, 10, quiet=True)[0]) > 0.7


def test_md_to_rst_tables_and_images():
    rst = md_to_rst(["# T", "", "| a | b |", "|---|---|", "| `x` | **2** |", "", "![cap](p.png)"], "/bench/")
    assert "T\n=" in rst and "   * - a\n     - b" in rst and "``x``" in rst
    assert ".. figure:: /bench/p.png" in rst


def test_runs_on_an_earlier_knn_graph_are_marked():
    from report_render import _earlier_graph
    data = {"knn": {"s": {"method": "ivf", "seconds": 60.9, "recall_at_k": 0.873}}}
    assert _earlier_graph(data, "s", {"knn_method": "ivf", "knn_seconds": 250.6})  # old run, no recall stored
    assert not _earlier_graph(data, "s", {"knn_method": "ivf", "knn_seconds": 60.9})
    assert _earlier_graph(data, "s", {"knn_method": "ivf", "knn_seconds": 60.9, "knn_recall_at_k": 0.883})
    assert not _earlier_graph(data, "s", {"knn_method": "ivf", "knn_seconds": 60.9, "knn_recall_at_k": 0.873})
    exact = {"knn": {"s": {"method": "flat", "seconds": 0.26, "recall_at_k": 1.0}}}
    assert not _earlier_graph(exact, "s", {"knn_method": "flat", "knn_seconds": 2.02})  # the same exact graph
    assert not _earlier_graph(data, "s", {"peer": True, "knn_seconds": 0.0})
