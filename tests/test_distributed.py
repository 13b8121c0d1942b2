"""``engine="ray"`` (clusterg.distributed): identical kNN lists and labels to the single-node run, faults, addresses.

Runs on a local Ray with 2 CPUs (``ray.init(num_cpus=2)``), as CI does. The sets: CelebA ``dev`` (10,567 dlib
faces, from the shared data) and a synthetic MS1M-like set of 6,000 faces; the same equality at 200K synthetic
faces is run by ``python benchmarks/bench_distributed.py --equality 200000`` (result in
``docs/benchmarks/distributed.json``), too long for a unit test.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason='ray is not installed (pip install "clusterg[ray]")')

from clusterg import ClustergError  # noqa: E402
from clusterg.cluster import make_clusterer  # noqa: E402
from clusterg.data.synth import synth_ms1m  # noqa: E402
from clusterg.knn import knn_recall, knn_search  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SYNTH_N = 6000
SHARDS = (1, 2, 4)


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def sets(shared_set):
    x_dev, _ = shared_set("celeba", "dev")
    x_syn, _ = synth_ms1m(SYNTH_N, dim=128, seed=3)
    dup = np.concatenate([x_syn, x_syn[:40]])  # exact duplicates: ties at rank k, settled by id
    return {"celeba-dev": x_dev, "synth": x_syn, "synth-duplicates": dup}


_single: dict = {}


def _labels_local(sets, name, method):
    key = (name, method)
    if key not in _single:
        _single[key] = make_clusterer(method).fit_predict(sets[name])
    return _single[key]


@pytest.mark.parametrize("name", ["celeba-dev", "synth-duplicates"])
def test_flat_knn_identical_to_single_node(local_ray, sets, name):
    from clusterg.distributed import ray_knn_search
    x = sets[name]
    nb0, s0 = knn_search(x, 20)
    for s in SHARDS:
        nb, sm = ray_knn_search(x, 20, shards=s)
        assert np.array_equal(nb, nb0), f"{s} shards: neighbour ids differ"
        assert np.array_equal(sm, s0), f"{s} shards: similarities differ"
        assert (nb[:, 0] == np.arange(len(x))).all()


@pytest.mark.parametrize("method", ["knn-cc", "gcn-v", "gcn-ve", "auto"])
@pytest.mark.parametrize("name", ["celeba-dev", "synth"])
def test_labels_identical_to_single_node(local_ray, sets, name, method):
    x = sets[name]
    ref = _labels_local(sets, name, method)
    assert 1 < ref.max() + 1 < len(x)  # a real clustering, not a degenerate one
    for s in SHARDS:
        est = make_clusterer(method, engine="ray", shards=s)
        lab = est.fit_predict(x)
        assert np.array_equal(lab, ref), f"{method} on {name} with {s} shards differs from the single-node labels"
    if method == "auto":
        # 128-d faces: the Ada-NETS pipeline, its kNN stages on Ray; synthetic features lie outside the packaged
        # weights' domain: Infomap, its kNN on Ray
        assert est.method_ == ("ada-nets" if name == "celeba-dev" else "infomap")


@pytest.mark.parametrize("name", ["celeba-dev", "synth-duplicates"])
def test_gcn_v_confidences_bit_identical(local_ray, sets, name):
    # exact duplicates have tied confidences: a rounding difference anywhere would move a parent link
    from clusterg.cluster import GCNVClusterer
    x = sets[name]
    ref = GCNVClusterer().fit(x)
    for s in (2, 4):
        dist = GCNVClusterer(engine="ray", shards=s).fit(x)
        assert np.array_equal(dist.confidence_, ref.confidence_), f"{s} shards"
        assert np.array_equal(dist.parent_all_, ref.parent_all_) and np.array_equal(dist.labels_, ref.labels_)


def test_approximate_knn_has_the_same_recall(local_ray, sets):
    from clusterg.distributed import ray_knn_search
    x = sets["synth"]
    exact = knn_search(x, 20)
    single = knn_recall(knn_search(x, 20, method="ivf")[0], exact[0])
    for s in (2, 4):
        rec = knn_recall(ray_knn_search(x, 20, method="ivf", shards=s)[0], exact[0])
        assert rec >= single - 0.01, f"IVF recall with {s} shards {rec:.4f} vs one index {single:.4f}"


def test_a_killed_actor_is_retried_and_the_result_is_unchanged(local_ray, sets):
    from clusterg.distributed import ray_knn_search
    x = sets["synth"]
    ref = knn_search(x, 20)
    killed = []

    def kill_one(q, actors):
        if q == 0:  # after the first query shard: the next searches meet a dead worker
            pid = ray.get(actors[1].pid.remote())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    nb, sm = ray_knn_search(x, 20, shards=4, callback=kill_one)
    assert killed
    assert np.array_equal(nb, ref[0]) and np.array_equal(sm, ref[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_fast_with_a_clear_message(tmp_path):
    from clusterg.distributed import get_engine
    addr = f"127.0.0.1:{_free_port()}"
    t0 = time.perf_counter()
    with pytest.raises(ClustergError, match="cannot reach a Ray cluster"):
        get_engine(addr)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ClustergError, match="expected 'HOST:PORT'"):
        get_engine("no-port-here")
    x, _ = synth_ms1m(200, dim=32, seed=0)
    np.save(tmp_path / "x.npy", x)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "clusterg", "cluster", str(tmp_path / "x.npy"), "--method", "knn-cc",
                          "--engine", "ray", "--address", addr, "-o", str(tmp_path / "p.meta")],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 2 and "clusterg: error:" in res.stderr and "cannot reach a Ray cluster" in res.stderr
    assert time.perf_counter() - t0 < 30  # the probe takes 3 s; the rest is the interpreter starting
    assert not (tmp_path / "p.meta").exists()


def test_cli_engine_ray_on_a_running_cluster(local_ray, tmp_path):
    x, _ = synth_ms1m(1500, dim=64, seed=1)
    np.save(tmp_path / "x.npy", x)
    base = [sys.executable, "-m", "clusterg", "--json", "cluster", str(tmp_path / "x.npy"), "--method", "knn-cc"]
    loc = subprocess.run(base + ["-o", str(tmp_path / "a.meta")], capture_output=True, text=True, timeout=300,
                         cwd=REPO)
    assert loc.returncode == 0, loc.stderr
    addr = ray.get_runtime_context().gcs_address
    dist = subprocess.run(base + ["--engine", "ray", "--address", addr, "--shards", "2",
                                  "-o", str(tmp_path / "b.meta")], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert dist.returncode == 0, dist.stderr
    assert json.loads(dist.stdout)["params"]["engine"] == "ray"
    assert (tmp_path / "a.meta").read_text() == (tmp_path / "b.meta").read_text()
    bad = subprocess.run(base + ["--shards", "2", "-o", str(tmp_path / "c.meta")], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert bad.returncode == 2 and "--engine ray" in bad.stderr


def test_single_node_runs_never_import_ray():
    code = ("import sys, numpy as np\n"
            "import clusterg, clusterg.distributed\n"
            "from clusterg.cluster import KNNConnectedComponents\n"
            "x = np.random.default_rng(0).normal(size=(60, 8)).astype('float32')\n"
            "KNNConnectedComponents(k=5, threshold=0.5).fit(x)\n"
            "print('ray' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
    with pytest.raises(ClustergError, match="engine"):
        make_clusterer("knn-cc", engine="spark").fit(np.eye(4, dtype=np.float32) + 0.1)


def test_scale_out_tables_are_rendered_from_the_results_files():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_distributed
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    res = REPO / "docs" / "benchmarks"
    eq = res / "distributed_equality_200k.json"
    auto = res / "distributed_auto_200k.json"
    big = res / "distributed_584k.json"
    text = bench_distributed.render(json.loads((res / "distributed.json").read_text()),
                                    json.loads(eq.read_text()) if eq.is_file() else None,
                                    json.loads(auto.read_text()) if auto.is_file() else None,
                                    json.loads(big.read_text()) if big.is_file() else None)
    assert (res / "distributed.rst.inc").read_text() == text, \
        "run: python benchmarks/bench_distributed.py --render docs/benchmarks/distributed.rst.inc"
    assert ".. include:: benchmarks/distributed.rst.inc" in (REPO / "docs" / "scale-out.rst").read_text()
    if big.is_file():  # MS1M part1's size with IVF per shard: every worker count ran, recall held
        b = json.loads(big.read_text())
        assert b["n"] == 584_000 and sorted(r["workers"] for r in b["ray"]) == [1, 2, 4]
        assert all(r["recall_at_k"] >= b["single_node"]["recall_at_k"] - 0.01 for r in b["ray"])
        one = next(r for r in b["ray"] if r["workers"] == 1)
        assert one["knn_identical"] and one["labels_identical"]  # one shard: the single node's own index
    if auto.is_file():  # the default pipeline at 200K: identical labels with 1, 2 and 4 shards
        a = json.loads(auto.read_text())
        assert a["n"] == 200_000 and all(a["shards"][s]["identical"] for s in ("1", "2", "4"))
