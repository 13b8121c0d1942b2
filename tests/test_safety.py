"""Security and data safety: checkpoints that cannot run code, outputs that never replace an input,
checks before work, scale-robust norms, clean interruption, thread-independent kNN.

Each test names the failure it guards; the command-line ones call :func:`clusterg.cli.main.main`
in-process (fast) except where a signal or a second process is the point.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from clusterg import ClustergError
from clusterg.cli.main import main

REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- helpers
def run(argv, capsys=None) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err if capsys is not None else ""
    return rc, err


@pytest.fixture
def feats(tmp_path):
    """60 unit vectors in 128-d (6 groups) as .npy, and their labels as .meta."""
    rng = np.random.default_rng(0)
    c = rng.normal(size=(6, 128))
    y = np.repeat(np.arange(6), 10)
    x = c[y] + 0.05 * rng.normal(size=(60, 128))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    f = tmp_path / "x.npy"
    np.save(f, x.astype(np.float32))
    lab = tmp_path / "y.meta"
    lab.write_text("\n".join(map(str, y)) + "\n")
    return f, lab, x.astype(np.float32), y


class _Payload:
    """Unpickling this runs ``touch MARKER``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    blob = {"format": "clusterg-checkpoint", "format_version": 1, "model": "gcn-v", "in_dim": 128,
            "config": {"k": 10}, "state_dict": {}, "x": _Payload(marker)}
    path = tmp_path / f"evil_{kind}.pt"
    if kind == "zip":
        torch.save(blob, path)
    else:  # a legacy plain pickle
        with open(path, "wb") as f:
            pickle.dump(blob, f)
    assert not marker.exists()
    return path, marker


def _photos(tmp_path: Path, n: int = 3) -> Path:
    """An images input JSON listing ``n`` small files (not real photos: the run must stop before reading them)."""
    for i in range(n):
        (tmp_path / f"p{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes([i]) * 64)
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps([{"img_path": f"p{i}.jpg"} for i in range(n)]))
    return inp


# ----------------------------------------------------------------------------- 1. checkpoints
ENTRY_POINTS = {
    "cluster-gcn-v": lambda f, lab, ck, out, inp: ["cluster", f, "--method", "gcn-v", "--checkpoint", ck, "-o", out],
    "cluster-gcn-ve": lambda f, lab, ck, out, inp: ["cluster", f, "--method", "gcn-ve", "--checkpoint", ck, "-o", out],
    "cluster-ada-nets": lambda f, lab, ck, out, inp: ["cluster", f, "--method", "ada-nets", "--checkpoint", ck,
                                                      "-o", out],
    "train-gcn-v-resume": lambda f, lab, ck, out, inp: ["train", "gcn-v", f, "--labels", lab, "-o", out,
                                                        "--resume", ck, "--epochs", "1"],
    "train-gcn-e-gcn-v": lambda f, lab, ck, out, inp: ["train", "gcn-e", f, "--labels", lab, "-o", out,
                                                       "--gcn-v", ck, "--epochs", "1"],
    "images-checkpoint": lambda f, lab, ck, out, inp: ["images", inp, "-o", out, "--method", "gcn-v",
                                                       "--checkpoint", ck, "--no-cache"],
}


@pytest.mark.parametrize("kind", ["zip", "legacy"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_malicious_checkpoint_runs_no_code(tmp_path, feats, capsys, entry, kind):
    f, lab, _, _ = feats
    ck, marker = _evil(tmp_path, kind)
    out = tmp_path / ("out.json" if entry.startswith("images") else "out.bin")
    rc, err = run(ENTRY_POINTS[entry](f, lab, ck, out, _photos(tmp_path)), capsys)
    assert not marker.exists(), f"{entry}: the checkpoint's payload ran"
    assert rc == 2, err
    assert "--trust" in err and "clusterg: error" in err  # says how to convert a trusted file
    assert not out.exists()


def test_legacy_pickle_refused_then_converted_when_trusted(tmp_path):
    from clusterg.train.checkpoint import convert_trusted_checkpoint, load_checkpoint
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    blob = {"format": "clusterg-checkpoint", "format_version": 1, "model": "gcn-v", "in_dim": 3,
            "config": {"k": np.int64(10), "tau": np.float64(0.5)}, "state_dict": {"w": torch.from_numpy(w)},
            "train_state": None, "meta": {"note": "old"}}
    old = tmp_path / "old.pt"
    torch.save(blob, old)  # numpy scalars in config: not weights_only-loadable as it is
    with pytest.raises(ClustergError, match="--trust"):
        load_checkpoint(old)
    plain = tmp_path / "plain.pkl"
    with open(plain, "wb") as fh:
        pickle.dump(blob, fh)
    with pytest.raises(ClustergError, match="torch.save"):  # the converter never unpickles freely
        convert_trusted_checkpoint(plain, tmp_path / "never.pt")
    new = convert_trusted_checkpoint(old, tmp_path / "new.pt")
    got = load_checkpoint(new, model="gcn-v", in_dim=3)
    assert torch.equal(got["state_dict"]["w"], torch.from_numpy(w))
    assert got["config"] == {"k": 10, "tau": 0.5} and type(got["config"]["k"]) is int
    torch.load(new, weights_only=True)  # the converted file is weights_only-safe


def test_shipped_weights_are_weights_only_safe():
    from clusterg.train.checkpoint import load_checkpoint
    files = sorted((REPO / "clusterg" / "weights").glob("*.pt"))
    assert len(files) == 3
    for p in files:
        raw = torch.load(p, weights_only=True, map_location="cpu")
        blob = load_checkpoint(p)
        assert raw["model"] == blob["model"] and set(raw["state_dict"]) == set(blob["state_dict"])


def test_checkpoint_code_never_uses_weights_only_false():
    for p in (REPO / "clusterg").rglob("*.py"):
        text = p.read_text().replace(" ", "")
        hits = [i for i in range(len(text)) if text.startswith("weights_only=False", i)]
        assert not hits, f"{p} unpickles with weights_only=False"
        assert "pickle.load(" not in text and "pickle.loads(" not in text, p
        assert "allow_pickle=True" not in text, p


def test_save_checkpoint_numpy_values_round_trip(tmp_path):
    from clusterg.train.checkpoint import load_checkpoint, save_checkpoint
    p = save_checkpoint(tmp_path / "c.pt", "gcn-v", 4, {"tau": np.float32(0.25), "dims": (np.int64(3), 2)},
                        {"w": torch.ones(2)}, {"epoch": 1, "rng": np.arange(3)}, {"score": np.float64(0.9)})
    torch.load(p, weights_only=True)
    blob = load_checkpoint(p)
    assert blob["config"]["tau"] == 0.25 and blob["config"]["dims"] == (3, 2)
    with pytest.raises(ClustergError, match="cannot be stored"):
        save_checkpoint(tmp_path / "d.pt", "gcn-v", 4, {"f": object()}, {})


# ----------------------------------------------------------------------------- 2. output guard
def test_output_over_sidecar_refused(tmp_path, capsys):
    from clusterg.data.io import write_bin
    x = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    b = write_bin(tmp_path / "s.bin", x)
    side = tmp_path / "s.bin.json"
    before = side.read_bytes()
    for argv in (["cluster", b, "-o", side], ["knn", b, "--k", "3", "-o", side],
                 ["train", "gcn-v", b, "--labels", tmp_path / "y.meta", "-o", side]):
        if argv[0] == "train":
            (tmp_path / "y.meta").write_text("\n".join(str(i // 3) for i in range(30)) + "\n")
        rc, err = run(argv, capsys)
        assert rc == 2 and "input" in err, (argv, err)
        assert side.read_bytes() == before


def test_output_hard_link_and_symlink_to_input_refused(tmp_path, feats, capsys):
    f, lab, _, _ = feats
    before = f.read_bytes()
    hard = tmp_path / "hard.meta"
    os.link(f, hard)
    soft = tmp_path / "soft.meta"
    soft.symlink_to(lab)
    for out in (hard, soft):
        rc, err = run(["cluster", f, "--labels", lab, "-o", out], capsys)
        assert rc == 2 and "input" in err, err
    assert f.read_bytes() == before and soft.is_symlink() and lab.read_text().startswith("0\n")


def test_output_fifo_refused(tmp_path, feats, capsys):
    f = feats[0]
    fifo = tmp_path / "fifo.meta"
    os.mkfifo(fifo)
    rc, err = run(["cluster", f, "-o", fifo], capsys)
    assert rc == 2 and "not a regular file" in err
    assert fifo.is_fifo()


def test_output_dev_null_refused(feats, capsys):
    import stat
    f = feats[0]
    rc, err = run(["cluster", f, "-o", "/dev/null"], capsys)
    assert rc == 2 and "not a regular file" in err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_images_cache_over_a_photo_refused(tmp_path, capsys):
    inp = _photos(tmp_path)
    victim = tmp_path / "p1.jpg"
    before = victim.read_bytes()
    rc, err = run(["images", inp, "-o", tmp_path / "out.json", "--cache", victim], capsys)
    assert rc == 2 and "input" in err, err
    assert victim.read_bytes() == before
    rc, err = run(["images", inp, "-o", tmp_path / "p0.jpg"], capsys)  # nor the output
    assert rc == 2 and (tmp_path / "p0.jpg").read_bytes().startswith(b"\xff\xd8\xff")


def test_output_folder_checked_before_any_work(tmp_path, feats, capsys, monkeypatch):
    import clusterg.data.io as dio
    import clusterg.train.gcn_v as tg

    def boom(*a, **k):
        raise AssertionError("work started before the output folder was checked")

    monkeypatch.setattr(dio, "load_features", boom)
    monkeypatch.setattr(tg, "train_gcn_v", boom)
    f, lab, _, _ = feats
    for argv in (["cluster", f, "-o", tmp_path / "missing" / "o.meta"],
                 ["knn", f, "-o", tmp_path / "missing" / "o.npz"],
                 ["train", "gcn-v", f, "--labels", lab, "-o", tmp_path / "missing" / "o.pt"],
                 ["images", _photos(tmp_path), "-o", tmp_path / "missing" / "o.json"]):
        rc, err = run(argv, capsys)
        assert rc == 2 and "does not exist" in err, (argv, err)
    rc, err = run(["cluster", f, "-o", "/proc/self/o.meta"], capsys)  # not writable, even for root
    assert rc == 2 and "clusterg: error" in err


def test_guard_output_api(tmp_path):
    from clusterg._atomic import guard_output
    a = tmp_path / "a"
    a.write_text("x")
    guard_output(tmp_path / "b", [a])
    with pytest.raises(ClustergError, match="input"):
        guard_output(a, [a])
    with pytest.raises(ClustergError, match="folder"):
        guard_output(tmp_path, [])


# ----------------------------------------------------------------------------- 3. scale
@pytest.mark.parametrize("scale", [1e37, 1e-22])
def test_extreme_scales_cluster_like_unscaled(tmp_path, feats, capsys, scale):
    from clusterg.knn import knn_search
    _, _, x, y = feats
    xs = (x.astype(np.float64) * scale).astype(np.float32)
    assert np.isfinite(xs).all() and (np.abs(xs).max(axis=1) > 0).all()
    n0, _ = knn_search(x, 5)
    n1, s1 = knn_search(xs, 5)
    assert np.array_equal(n0, n1) and s1[:, 1].min() > 0.5
    np.save(tmp_path / "xs.npy", xs)
    for method in ("knn-cc", "kmeans", "hac"):
        extra = ["--n-clusters", "6"] if method == "kmeans" else []
        rc, err = run(["cluster", tmp_path / "xs.npy", "--method", method, *extra, "-o", tmp_path / "o.meta"],
                      capsys)
        assert rc == 0, (method, err)
        got = np.loadtxt(tmp_path / "o.meta", dtype=int)
        assert len(np.unique(got)) == 6, (method, len(np.unique(got)))


def test_float32_range_warned_or_refused(caplog):
    from clusterg._validate import check_features
    x = np.ones((4, 3))
    with pytest.raises(ClustergError, match="float32"):
        check_features(x * 1e300)
    with caplog.at_level("WARNING", logger="clusterg"):
        check_features((x * 1e-40).astype(np.float32), normalize=True)
    assert any("small" in r.getMessage() for r in caplog.records)


def test_dim_contradicting_the_sidecar_refused(tmp_path):
    from clusterg.data.io import read_bin, write_bin
    p = write_bin(tmp_path / "s.bin", np.ones((8, 4), np.float32))
    with pytest.raises(ClustergError, match="sidecar"):
        read_bin(p, dim=2)  # 8 x 4 floats also read as 16 x 2: only the sidecar can tell
    (tmp_path / "s.bin.json").unlink()
    assert read_bin(p, dim=2).shape == (16, 2)  # documented limit: indistinguishable without it


# ----------------------------------------------------------------------------- 4. checks before work
def test_negative_ground_truth_refused_before_clustering(tmp_path, feats, capsys, monkeypatch):
    f, lab, _, y = feats
    bad = tmp_path / "bad.meta"
    bad.write_text("\n".join(map(str, [-1] + list(y[1:]))) + "\n")
    out = tmp_path / "o.meta"
    rc, err = run(["cluster", f, "--labels", bad, "-o", out], capsys)
    assert rc == 2 and ">= 0" in err
    assert not out.exists()


# ----------------------------------------------------------------------------- 5. bad input is exit 2
def test_bad_inputs_exit_2_not_internal_error(tmp_path, feats, capsys):
    f, lab, _, _ = feats
    big = tmp_path / "big.meta"
    big.write_text("99999999999999999999\n" + "0\n" * 59)
    junk_knn = tmp_path / "k.npy"
    np.save(junk_knn, np.arange(10))
    noconfig = tmp_path / "noconfig.pt"
    torch.save({"format": "clusterg-checkpoint", "model": "gcn-v", "in_dim": 128}, noconfig)
    pickled = tmp_path / "lab.npy"
    np.save(pickled, np.array([{"a": 1}] * 60, dtype=object), allow_pickle=True)
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY\x01\x00garbage")
    out = tmp_path / "o.meta"
    cases = [["cluster", f, "--labels", big, "-o", out],
             ["cluster", f, "--knn", junk_knn, "-o", out],
             ["cluster", f, "--method", "gcn-v", "--checkpoint", noconfig, "-o", out],
             ["train", "gcn-v", f, "--labels", lab, "--lr", "nan", "-o", tmp_path / "c.pt"],
             ["cluster", f, "--labels", pickled, "-o", out],
             ["cluster", f, "--labels", corrupt, "-o", out],
             ["train", "ada-nets", f, "--labels", pickled, "-o", tmp_path / "c.pt"],
             ["knn", f, "--nprobe", "0", "--method", "ivf", "-o", tmp_path / "k.npz"]]
    for argv in cases:
        rc, err = run(argv, capsys)
        assert rc == 2 and "clusterg: error" in err and "internal error" not in err, (argv, err)
        assert not out.exists()
    np.save(tmp_path / "huge.npy", np.load(f) * np.float32(1e37))
    rc, err = run(["cluster", tmp_path / "huge.npy", "--method", "hac", "-o", out], capsys)
    assert rc == 0, err


# ----------------------------------------------------------------------------- 6. signals and temp files
def _tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file() and ".tmp" in p.name]


def _wait_for_tmp(folder: Path, proc: subprocess.Popen, limit: float = 60.0) -> None:
    t0 = time.monotonic()
    while not _tmp_files(folder):
        if proc.poll() is not None or time.monotonic() - t0 > limit:
            proc.kill()
            pytest.fail(f"synth never wrote a temporary file: {proc.communicate()}")
        time.sleep(0.05)


def _synth(out: Path, n: int) -> list[str]:
    return [sys.executable, "-m", "clusterg", "synth", "--n", str(n), "--dim", "64", "--chunk", "20000",
            "-o", str(out), "-q"]


def test_sigterm_removes_temp_files_and_sigkill_leftovers_go_next_run(tmp_path):
    out = tmp_path / "syn"
    env = dict(os.environ, CLUSTERG_QUIET="1")
    proc = subprocess.Popen(_synth(out, 3_000_000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _wait_for_tmp(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert _tmp_files(out) == [] and b"Traceback" not in err

    proc = subprocess.Popen(_synth(out, 3_000_000), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _wait_for_tmp(out, proc)
    proc.kill()  # SIGKILL: nothing can clean up...
    proc.communicate(timeout=60)
    left = _tmp_files(out)
    assert left and all(f"-{proc.pid}-" in p.name for p in left)  # ...but the files carry the writer's pid
    r = subprocess.run(_synth(out, 500), capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _tmp_files(out) == []  # the next run on the same output removed them


def test_stale_temp_file_of_dead_pid_removed(tmp_path, feats, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "o.meta"
    stale = tmp_path / f".o.meta.clusterg-{dead.pid}-abc.tmp"
    stale.write_bytes(b"x" * 100)
    alive = tmp_path / f".o.meta.clusterg-{os.getppid()}-abc.tmp"  # a live writer's file stays
    alive.write_bytes(b"y")
    rc, _ = run(["cluster", feats[0], "-o", out], capsys)
    assert rc == 0 and out.exists()
    assert not stale.exists() and alive.exists()


def test_sigint_while_starting_prints_no_traceback(tmp_path, feats):
    env = dict(os.environ, CLUSTERG_QUIET="1")
    t0 = time.monotonic()  # the interpreter and ``import clusterg`` (numpy) come before any handler can exist
    subprocess.run([sys.executable, "-c", "import clusterg.cli.main"], check=True, env=env)
    t_import = time.monotonic() - t0
    for delay in (t_import + 0.3, t_import + 1.0):  # while the sub-commands load, or just after
        proc = subprocess.Popen([sys.executable, "-m", "clusterg", "cluster", str(feats[0]), "-o",
                                 str(tmp_path / "o.meta")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err.decode()[-500:]
        assert proc.returncode in (0, 130, -signal.SIGINT), err


# ----------------------------------------------------------------------------- 7. threads
def test_knn_and_labels_equal_at_1_and_2_threads(shared_set):
    import faiss

    from clusterg.cluster import make_clusterer
    from clusterg.knn import knn_search
    x, _ = shared_set("celeba", "dev")
    before = faiss.omp_get_max_threads()
    try:
        res = {}
        for t in (1, 2):
            faiss.omp_set_num_threads(t)
            res[t] = knn_search(x, 40)
    finally:
        faiss.omp_set_num_threads(before)
    (n1, s1), (n2, s2) = res[1], res[2]
    assert np.array_equal(n1, n2) and np.array_equal(s1, s2)
    for method, th in (("knn-cc", 0.93), ("infomap", 0.92)):
        try:
            la = make_clusterer(method, k=40, threshold=th).fit_predict(x, knn=(n1, s1))
        except ClustergError as e:  # infomap not installed
            if method == "infomap":
                pytest.skip(str(e))
            raise
        lb = make_clusterer(method, k=40, threshold=th).fit_predict(x, knn=(n2, s2))
        assert np.array_equal(la, lb), method


def test_ties_broken_by_id():
    from clusterg.knn import knn_search, search_knn
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    x[5:30] = x[5]  # 25 identical rows, k=4: which 3 make the list is decided by id
    nbrs, sims = knn_search(x, 4)
    for i in range(5, 30):
        others = [j for j in range(5, 30) if j != i][:3]
        assert nbrs[i].tolist() == [i] + others
    q, _ = search_knn(x, x[5:6], 3)
    assert q[0].tolist() == [5, 6, 7]


# ----------------------------------------------------------------------------- issue: > k duplicates
@pytest.mark.parametrize("method", ["flat", "ivf", "hnsw"])
def test_more_than_k_duplicates_keep_self_in_column_0(method):
    from clusterg.knn import knn_search
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    x[10:16] = x[10]  # 6 duplicates, k=3
    x[50:70] = x[50]  # 20 duplicates
    nbrs, sims = knn_search(x, 3, method=method, nlist=4 if method == "ivf" else None)
    assert np.array_equal(nbrs[:, 0], np.arange(200))
    assert all(len(set(r)) == 3 for r in nbrs.tolist())
    for i in list(range(10, 16)) + list(range(50, 70)):
        group = range(10, 16) if i < 16 else range(50, 70)
        assert set(nbrs[i]) <= set(group) and np.allclose(sims[i], 1.0, atol=1e-6)


# ----------------------------------------------------------------------------- 8. kNN file checks
def _knn_file(tmp_path, nbrs, sims, name="k.npz"):
    data = np.stack([np.asarray(nbrs, np.float32), 1.0 - np.asarray(sims, np.float32)], axis=1)
    p = tmp_path / name
    np.savez(p, data=data)
    return p


def test_implausible_knn_files_refused(tmp_path, feats, capsys):
    from clusterg.knn import knn_search, load_knn
    f, _, x, _ = feats
    nbrs, sims = knn_search(x, 5)
    load_knn(_knn_file(tmp_path, nbrs, sims, "ok.npz"), n=60)
    bad = {}
    s = sims.copy()
    s[3, 2] = 6.0
    bad["sim 6"] = (nbrs, s)
    s = sims.copy()
    s[3, 4] = -4.0
    bad["sim -4"] = (nbrs, s)
    bad["self not first"] = (np.roll(nbrs, 1, axis=1), np.roll(sims, 1, axis=1))
    z = np.zeros_like(nbrs)
    z[:, 0] = np.arange(60)
    bad["every neighbour 0"] = (z, sims)
    bad["unsorted"] = (np.concatenate([nbrs[:, :1], nbrs[:, 1:][:, ::-1]], 1),
                       np.concatenate([sims[:, :1], sims[:, 1:][:, ::-1]], 1))
    for what, (nb, sm) in bad.items():
        p = _knn_file(tmp_path, nb, sm)
        with pytest.raises(ClustergError):
            load_knn(p, n=60)
        rc, err = run(["cluster", f, "--knn", p, "-o", tmp_path / "o.meta"], capsys)
        assert rc == 2, (what, err)


# ----------------------------------------------------------------------------- 9. API arguments
def test_connected_components_and_check_labels_arguments():
    from clusterg._validate import check_labels
    from clusterg.linkage.components import connected_components
    from clusterg.metrics import evaluate
    with pytest.raises(ClustergError):
        connected_components(0, [0, 5], [3, -1])
    with pytest.raises(ClustergError):
        connected_components(3, [0.5], [1])
    with pytest.raises(ClustergError):
        connected_components(3, np.array([2 ** 63 + 1], np.uint64), [1])
    assert connected_components(3, [0], [2]).tolist() == [0, 1, 0]
    with pytest.raises(ClustergError, match="int64"):
        check_labels(np.array([2 ** 63, 1], dtype=np.uint64))
    with pytest.raises(ClustergError):
        evaluate(np.array([0, 0, 1], np.uint64), np.array([2 ** 63, 2 ** 63 + 1, 5], np.uint64))


# ----------------------------------------------------------------------------- 10. shared --cache
def test_images_runs_sharing_a_cache_lose_nothing(tmp_path, monkeypatch):
    pipeline = pytest.importorskip("clusterg.images.pipeline")
    from clusterg.images import FaceEmbedder

    calls = []

    def fake_embed(p, embedder, all_faces):
        calls.append(p)
        time.sleep(0.15)  # both runs are embedding at the same time
        v = np.zeros((1, pipeline.EMBEDDING_DIM), np.float32)
        v[0, hash(p.name) % pipeline.EMBEDDING_DIM] = 1.0
        return pipeline._Faces(np.zeros((1, 4), np.int64), v, "", True)

    monkeypatch.setattr(pipeline, "_embed_photo", fake_embed)
    monkeypatch.setattr(FaceEmbedder, "check_installed", lambda self: None)
    for i in range(6):
        (tmp_path / f"p{i}.jpg").write_bytes(bytes([i]) * 50)
    for name, idx in (("a.json", range(0, 3)), ("b.json", range(3, 6))):
        (tmp_path / name).write_text(json.dumps([{"img_path": f"p{i}.jpg"} for i in idx]))
    cache = tmp_path / "shared.npz"
    rcs = {}

    def go(name):
        rcs[name] = main(["images", str(tmp_path / name), "-o", str(tmp_path / f"{name}.out"),
                          "--cache", str(cache), "--method", "knn-cc", "-q"])

    threads = [threading.Thread(target=go, args=(n,)) for n in ("a.json", "b.json")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert rcs == {"a.json": 0, "b.json": 0}
    with np.load(cache) as z:
        keys = {Path(k).name for k in z["keys"].tolist()}
    assert keys == {f"p{i}.jpg" for i in range(6)}


# ----------------------------------------------------------------------------- 11. option consistency
def test_knn_output_folder_and_knn_cc_options(tmp_path, feats, capsys):
    f = feats[0]
    rc, err = run(["knn", f, "--k", "3", "-o", tmp_path / "new" / "k.npz"], capsys)
    assert rc == 2 and "does not exist" in err and not (tmp_path / "new").exists()  # as `cluster` does
    rc, err = run(["cluster", f, "--method", "knn-cc", "--checkpoint", tmp_path / "nope.pt",
                   "-o", tmp_path / "o.meta"], capsys)
    assert rc == 2 and "not found" in err
    rc, err = run(["cluster", f, "--method", "knn-cc", "--n-clusters", "0", "-o", tmp_path / "o.meta"], capsys)
    assert rc == 2
    ck = tmp_path / "real.pt"
    from clusterg.train.checkpoint import save_checkpoint
    save_checkpoint(ck, "gcn-v", 128, {"k": 5}, {"w": torch.ones(1)})
    rc, err = run(["cluster", f, "--method", "knn-cc", "--checkpoint", ck, "-o", tmp_path / "o.meta"], capsys)
    assert rc == 2 and "checkpoint" in err  # an option that does not apply is an error, not ignored
    assert not (tmp_path / "o.meta").exists()


# ----------------------------------------------------------------------------- 13. docs
def test_reliability_page_lists_checks_and_limits():
    page = REPO / "docs" / "reliability.rst"
    text = page.read_text()  # docs/conf.py puts every top-level page in the index's toctree
    for needle in ("weights_only", "--dim", "FIFO", "thread", "SIGTERM", "hypothesis"):
        assert needle in text, needle
    assert "indistinguishable" in text
