"""The command line, end to end, including every bad input of the foundation issue."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterg.cli.main import main
from clusterg.data.io import read_meta, write_bin, write_meta
from clusterg.metrics import evaluate


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def feats(tmp_path, blobs):
    x, y = blobs
    np.save(tmp_path / "x.npy", x)
    write_meta(tmp_path / "y.meta", y)
    return tmp_path / "x.npy", tmp_path / "y.meta", y


def test_eval_json_matches_metrics_and_toy_case(tmp_path, capsys):
    write_meta(tmp_path / "gt.meta", [0, 0, 0, 1, 1, 2])
    write_meta(tmp_path / "pred.meta", [0, 0, -1, 1, -1, -1])
    code, out, _ = run(capsys, "eval", "--gt", tmp_path / "gt.meta", "--pred", tmp_path / "pred.meta", "--json")
    assert code == 0
    m = json.loads(out)
    assert set(m) == {"pairwise_precision", "pairwise_recall", "pairwise_fscore", "bcubed_precision", "bcubed_recall",
                      "bcubed_fscore", "nmi", "n", "n_clusters"}
    assert m["pairwise_fscore"] == pytest.approx(0.40)
    assert m["bcubed_fscore"] == pytest.approx(0.759, abs=5e-4)
    assert m["n"] == 6 and m["n_clusters"] == 5


def test_eval_json_equals_naive_definitions(tmp_path, capsys):
    rng = np.random.default_rng(3)
    for trial in range(5):
        gt, pred = rng.integers(0, 6, 60), rng.integers(-1, 8, 60)
        write_meta(tmp_path / "gt.meta", gt)
        write_meta(tmp_path / "pred.meta", pred)
        code, out, _ = run(capsys, "eval", "--gt", tmp_path / "gt.meta", "--pred", tmp_path / "pred.meta", "--json")
        m = json.loads(out)
        p = pred.copy()
        neg = np.flatnonzero(p < 0)
        p[neg] = 1000 + np.arange(len(neg))
        same_g = gt[:, None] == gt[None, :]
        same_p = p[:, None] == p[None, :]
        off = ~np.eye(len(gt), dtype=bool)
        tp = (same_g & same_p & off).sum()
        prec, rec = tp / (same_p & off).sum(), tp / (same_g & off).sum()
        assert m["pairwise_fscore"] == pytest.approx(2 * prec * rec / (prec + rec))
        bp = np.mean([(same_g[i] & same_p[i]).sum() / same_p[i].sum() for i in range(len(gt))])
        br = np.mean([(same_g[i] & same_p[i]).sum() / same_g[i].sum() for i in range(len(gt))])
        assert m["bcubed_fscore"] == pytest.approx(2 * bp * br / (bp + br))


def test_knn_command_exact_equals_brute_force(shared_data, shared_set, tmp_path, capsys):
    code, _, err = run(capsys, "knn", shared_data / "celeba6k/features/all.bin", "--dim", 128, "--k", 10,
                       "-o", tmp_path / "knn.npz", "-q")
    assert code == 0, err
    data = np.load(tmp_path / "knn.npz")["data"]
    x, _ = shared_set("celeba6k", "all")
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = np.sort(xn @ xn.T, axis=1)[:, ::-1][:, :10]
    np.testing.assert_allclose(1 - data[:, 1, :], s, atol=1e-5)
    assert (data[:, 0, 0] == np.arange(len(x))).all()


def test_cluster_knn_cc_celeba6k_reaches_baseline(shared_data, tmp_path, capsys):
    feats = shared_data / "celeba6k/features/all.bin"
    labels = shared_data / "celeba6k/labels/all.meta"
    best = 0.0
    for t in (0.955, 0.96, 0.965):
        code, out, err = run(capsys, "cluster", feats, "--dim", 128, "--method", "knn-cc", "--threshold", t,
                             "--labels", labels, "-o", tmp_path / "pred.meta", "--json", "-q")
        assert code == 0, err
        best = max(best, json.loads(out)["pairwise_fscore"])
    assert best >= 0.75


GRAPH_OPTS = ["--k", 10, "--threshold", 0.5]


@pytest.mark.parametrize("method,extra", [("knn-cc", GRAPH_OPTS), ("infomap", GRAPH_OPTS), ("dbscan", GRAPH_OPTS),
                                          ("hac", GRAPH_OPTS), ("kmeans", ["--n-clusters", 10])])
def test_cluster_methods_write_meta(feats, tmp_path, capsys, method, extra):
    x, ymeta, y = feats
    code, out, err = run(capsys, "cluster", x, "--method", method, *extra,
                         "--labels", ymeta, "-o", tmp_path / "p.meta", "--json", "-q")
    assert code == 0, err
    res = json.loads(out)
    # the JSON names the parameters the method ran with, the given ones included
    assert res["params"]["k" if method != "kmeans" else "n_clusters"] == 10
    pred = read_meta(tmp_path / "p.meta")
    assert len(pred) == len(y)
    assert res["pairwise_fscore"] == pytest.approx(evaluate(y, pred)["pairwise_fscore"])
    assert res["pairwise_fscore"] > 0.9


def test_knn_default_method_resolves_as_the_clusterers(feats, tmp_path, capsys, monkeypatch):
    import clusterg.knn.search as search
    x, _, _ = feats
    code, out, _ = run(capsys, "knn", x, "--k", 8, "-o", tmp_path / "k.npz", "--json", "-q")
    assert code == 0 and json.loads(out)["method"] == "flat"  # small: exact, as method="auto" in knn_search
    from clusterg.knn import load_knn
    exact, _ = load_knn(tmp_path / "k.npz")
    monkeypatch.setattr(search, "AUTO_EXACT_MAX", 10)  # pretend the set is large
    code, out, _ = run(capsys, "knn", x, "--k", 8, "-o", tmp_path / "k2.npz", "--json", "-q")
    assert code == 0 and json.loads(out)["method"] == "ivf-gemm"
    approx, _ = load_knn(tmp_path / "k2.npz")
    assert approx.shape == exact.shape
    # the approximate graph finds most of the exact neighbours
    hits = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(approx, exact)])
    assert hits > 0.9, hits


def test_cluster_with_precomputed_knn(feats, tmp_path, capsys):
    x, ymeta, y = feats
    assert run(capsys, "knn", x, "--k", 12, "-o", tmp_path / "k.npz", "-q")[0] == 0
    code, out, _ = run(capsys, "cluster", x, "--method", "knn-cc", "--knn", tmp_path / "k.npz", "--k", 10,
                       "--threshold", 0.5, "-o", tmp_path / "p.meta", "-q")
    assert code == 0


# ---- bad input: one line, exit 2, no output file ---------------------------------------------------------------

def bad(capsys, tmp_path, *argv, match):
    out_file = tmp_path / "out.meta"
    code, out, err = run(capsys, *argv, "-o", out_file, "-q")
    assert code == 2, (out, err)
    assert err.startswith("clusterg: error:") and err.count("\n") == 1, err
    assert match in err, err
    assert not out_file.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.meta")]


def test_bad_nan_and_inf(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    x[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    bad(capsys, tmp_path, "cluster", tmp_path / "nan.npy", match="NaN")
    x[3, 1] = np.inf
    np.save(tmp_path / "inf.npy", x)
    bad(capsys, tmp_path, "cluster", tmp_path / "inf.npy", match="inf")


def test_bad_zero_vector(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    x[5] = 0
    np.save(tmp_path / "z.npy", x)
    bad(capsys, tmp_path, "cluster", tmp_path / "z.npy", match="zero vector")


def test_bad_dtype_and_shape(tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    bad(capsys, tmp_path, "cluster", tmp_path / "s.npy", match="dtype")
    np.save(tmp_path / "v.npy", np.ones(10, np.float32))
    bad(capsys, tmp_path, "cluster", tmp_path / "v.npy", match="shape")


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_n(tmp_path, capsys, n):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    np.save(tmp_path / "t.npy", x)
    if n == 0:
        bad(capsys, tmp_path, "cluster", tmp_path / "t.npy", match="empty")
    else:  # one or two points are a valid (trivial) clustering
        code, _, err = run(capsys, "cluster", tmp_path / "t.npy", "-o", tmp_path / "t.meta", "-q")
        assert code == 0, err
        assert len(read_meta(tmp_path / "t.meta")) == n


def test_k_larger_than_n(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    out = tmp_path / "k.npz"
    code, _, err = run(capsys, "knn", tmp_path / "x.npy", "--k", 6, "-o", out, "-q")
    assert code == 2 and "larger than the number of points" in err and not out.exists()


def test_labels_length_mismatch(feats, tmp_path, capsys):
    x, _, _ = feats
    write_meta(tmp_path / "short.meta", [0, 1, 2])
    bad(capsys, tmp_path, "cluster", x, "--labels", tmp_path / "short.meta", match="3 entries")


def test_truncated_bin(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    (tmp_path / "t.bin").write_bytes(x.tobytes()[:-6])
    bad(capsys, tmp_path, "cluster", tmp_path / "t.bin", "--dim", 8, match="truncated")
    (tmp_path / "u.bin").write_bytes(x.tobytes())
    bad(capsys, tmp_path, "cluster", tmp_path / "u.bin", "--dim", 7, match="truncated")
    bad(capsys, tmp_path, "cluster", tmp_path / "u.bin", match="--dim")


def test_corrupt_npz_inputs(feats, tmp_path, capsys):
    x, _, _ = feats
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    bad(capsys, tmp_path, "cluster", tmp_path / "bad.npz", match="bad.npz")
    bad(capsys, tmp_path, "cluster", x, "--knn", tmp_path / "bad.npz", match="bad.npz")


def test_unwritable_output(feats, tmp_path, capsys):
    x, _, _ = feats
    code, _, err = run(capsys, "cluster", x, "-o", tmp_path / "missing" / "p.meta", "-q")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "cluster", x, "-o", _unwritable_folder(tmp_path) / "p.meta", "-q")
    assert code == 2 and "not writable" in err, err


def _unwritable_folder(tmp_path):
    """A folder this process may not write into: a read-only one, or for root (who writes anywhere on
    disk, as in CI) a procfs folder, which refuses new files to everyone."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        return ro
    for cand in ("/proc/sys", "/proc/self", "/proc/1"):
        if os.path.isdir(cand) and not os.access(cand, os.W_OK):
            return Path(cand)
    pytest.fail("running as root and no procfs folder refuses writes (/proc/sys, /proc/self, /proc/1)")


def test_never_overwrites_input(feats, capsys):
    x, ymeta, _ = feats
    before = ymeta.read_bytes()
    code, _, err = run(capsys, "cluster", x, "--labels", ymeta, "-o", ymeta, "-q")
    assert code == 2 and "refusing to overwrite" in err
    assert ymeta.read_bytes() == before


def test_demo_runs_as_a_command():
    env = dict(os.environ, CLUSTERG_QUIET="1")
    r = subprocess.run([sys.executable, "-m", "clusterg", "demo", "--n", "4000", "--json", "-q"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    scores = {m["method"]: m for m in res["results"]}
    assert set(scores) == {"auto", "knn-cc", "infomap"}
    # measured at n=4000: auto 0.995 (label-free), knn-cc 0.864, infomap 0.971 pairwise F (tuned on a twin set)
    assert scores["auto"]["pairwise_fscore"] > 0.97, scores["auto"]
    assert scores["knn-cc"]["pairwise_fscore"] > 0.84, scores["knn-cc"]
    assert scores["infomap"]["pairwise_fscore"] > 0.95, scores["infomap"]
