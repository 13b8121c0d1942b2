"""Feature/label file I/O and the MS1M folder layout."""
import json
import os
import stat

import numpy as np
import pytest

from clusterg._validate import ClustergError
from clusterg.data import (MS1MDataset, load_features, read_bin, read_meta, sidecar_path, write_bin,
                           write_meta)


def _feats(n=50, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _folder_files(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- .bin

def test_bin_round_trip_with_sidecar(tmp_path):
    x = _feats()
    path = write_bin(tmp_path / "f.bin", x)
    assert path.stat().st_size == x.size * 4
    assert json.loads(sidecar_path(path).read_text()) == {"dim": 8, "n": 50, "dtype": "float32"}
    y = read_bin(path)  # D from the sidecar
    assert isinstance(y, np.memmap) and y.dtype == np.float32 and y.shape == (50, 8)
    assert np.array_equal(y, x)
    assert not y.flags.writeable
    z = read_bin(path, dim=8, mmap=False)
    assert not isinstance(z, np.memmap) and np.array_equal(z, x)
    # the file is raw little-endian float32, no header
    assert np.array_equal(np.fromfile(path, dtype="<f4").reshape(50, 8), x)
    assert _folder_files(tmp_path) == ["f.bin", "f.bin.json"]  # no temp files left


def test_bin_accepts_float64_and_torch(tmp_path):
    x = _feats().astype(np.float64)
    write_bin(tmp_path / "a.bin", x)
    assert np.allclose(read_bin(tmp_path / "a.bin"), x, atol=1e-6)
    import torch
    write_bin(tmp_path / "t.bin", torch.from_numpy(_feats(seed=1)))
    assert np.array_equal(read_bin(tmp_path / "t.bin"), _feats(seed=1))


def test_bin_without_dim_or_sidecar(tmp_path):
    p = tmp_path / "raw.bin"
    _feats().tofile(p)
    with pytest.raises(ClustergError, match="--dim"):
        read_bin(p)
    assert read_bin(p, dim=8).shape == (50, 8)
    assert read_bin(p, dim=4).shape == (100, 4)  # any D dividing the size is readable


def test_bin_wrong_dim_or_truncated(tmp_path):
    p = tmp_path / "raw.bin"
    _feats().tofile(p)
    with pytest.raises(ClustergError, match="truncated or wrong --dim"):
        read_bin(p, dim=7)
    with open(p, "ab") as f:  # one float too many
        f.write(b"\0\0\0\0")
    with pytest.raises(ClustergError, match="truncated or wrong --dim"):
        read_bin(p, dim=8)


def test_bin_truncated_against_sidecar(tmp_path):
    p = write_bin(tmp_path / "f.bin", _feats())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 8 * 4])  # drop one whole row: size still divides
    with pytest.raises(ClustergError, match="sidecar"):
        read_bin(p)
    p.write_bytes(data[:-3])
    with pytest.raises(ClustergError, match="truncated"):
        read_bin(p)


def test_bin_empty_missing_and_bad_dim(tmp_path):
    p = tmp_path / "empty.bin"
    p.write_bytes(b"")
    with pytest.raises(ClustergError, match="empty"):
        read_bin(p, dim=4)
    with pytest.raises(ClustergError, match="not found"):
        read_bin(tmp_path / "nope.bin", dim=4)
    _feats().tofile(tmp_path / "r.bin")
    for bad in (0, -3, 2.5, "8", True):
        with pytest.raises(ClustergError, match="dim"):
            read_bin(tmp_path / "r.bin", dim=bad)


def test_bad_sidecar(tmp_path):
    p = tmp_path / "r.bin"
    _feats().tofile(p)
    sidecar_path(p).write_text("{not json")
    with pytest.raises(ClustergError, match="sidecar"):
        read_bin(p)
    sidecar_path(p).write_text(json.dumps({"dim": 8, "dtype": "float16"}))
    with pytest.raises(ClustergError, match="float16"):
        read_bin(p)


def test_write_bin_rejects_bad_arrays(tmp_path):
    x = _feats()
    x[3, 2] = np.nan
    for bad in (x, np.zeros((0, 4), np.float32), np.zeros(5, np.float32)):
        with pytest.raises(ClustergError):
            write_bin(tmp_path / "bad.bin", bad)
    assert _folder_files(tmp_path) == []  # nothing left behind, not even a temp file


def test_atomic_write_into_missing_folder(tmp_path):
    target = tmp_path / "missing" / "f.bin"
    with pytest.raises(ClustergError, match="does not exist"):
        write_bin(target, _feats())
    with pytest.raises(ClustergError, match="does not exist"):
        write_meta(tmp_path / "missing" / "l.meta", [0, 1])
    assert not (tmp_path / "missing").exists()
    assert _folder_files(tmp_path) == []


def test_failed_overwrite_keeps_old_file(tmp_path):
    p = write_bin(tmp_path / "f.bin", _feats())
    before = p.read_bytes()
    bad = _feats(seed=2)
    bad[-1, 0] = np.inf  # fails in the last chunk, after writing started
    with pytest.raises(ClustergError):
        write_bin(p, bad)
    assert p.read_bytes() == before
    assert _folder_files(tmp_path) == ["f.bin", "f.bin.json"]


# ---------------------------------------------------------------- .meta

def test_meta_round_trip(tmp_path):
    y = np.array([3, 0, -1, 12, 3, 10 ** 12], dtype=np.int64)
    p = write_meta(tmp_path / "l.meta", y)
    assert p.read_text() == "3\n0\n-1\n12\n3\n1000000000000\n"
    got = read_meta(p)
    assert got.dtype == np.int64 and np.array_equal(got, y)
    assert np.array_equal(read_meta(write_meta(tmp_path / "f.meta", y.astype(float))), y)


def test_meta_whitespace_and_trailing_blank_lines(tmp_path):
    p = tmp_path / "l.meta"
    p.write_text("1\r\n 2 \n3\n\n\n")
    assert read_meta(p).tolist() == [1, 2, 3]


@pytest.mark.parametrize("text,line", [("1\n2\nx\n4\n", 3), ("1\n\n2\n", 2), ("1\n2.5\n", 2), ("1 2\n", 1)])
def test_meta_bad_line_named(tmp_path, text, line):
    p = tmp_path / "l.meta"
    p.write_text(text)
    with pytest.raises(ClustergError, match=f"line {line} "):
        read_meta(p)


def test_meta_empty_binary_missing(tmp_path):
    (tmp_path / "e.meta").write_text("\n\n")
    with pytest.raises(ClustergError, match="empty"):
        read_meta(tmp_path / "e.meta")
    (tmp_path / "b.meta").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ClustergError):
        read_meta(tmp_path / "b.meta")
    with pytest.raises(ClustergError, match="not found"):
        read_meta(tmp_path / "none.meta")
    with pytest.raises(ClustergError):
        write_meta(tmp_path / "x.meta", [0.5, 1])
    with pytest.raises(ClustergError):
        write_meta(tmp_path / "x.meta", [])
    assert not (tmp_path / "x.meta").exists()


# ---------------------------------------------------------------- load_features

def test_load_features_dispatch(tmp_path):
    x = _feats()
    write_bin(tmp_path / "f.bin", x)
    np.save(tmp_path / "f.npy", x)
    np.save(tmp_path / "f64.npy", x.astype(np.float64))
    np.savez(tmp_path / "f.npz", features=x, labels=np.arange(50))
    np.savez(tmp_path / "only.npz", whatever=x)
    for name in ("f.bin", "f.npy", "f64.npy", "f.npz", "only.npz"):
        got = load_features(tmp_path / name)
        assert got.dtype == np.float32 and got.shape == (50, 8), name
        assert np.allclose(got, x), name
    assert isinstance(load_features(tmp_path / "f.npy"), np.memmap)
    assert isinstance(load_features(tmp_path / "f.bin"), np.memmap)


def test_load_features_npz_key(tmp_path):
    a, b = _feats(seed=1), _feats(seed=2)
    np.savez(tmp_path / "two.npz", emb=a, other=b)
    with pytest.raises(ClustergError, match="key"):
        load_features(tmp_path / "two.npz")
    assert np.array_equal(load_features(tmp_path / "two.npz", key="other"), b)
    with pytest.raises(ClustergError, match="no array named 'zzz'"):
        load_features(tmp_path / "two.npz", key="zzz")
    np.savez(tmp_path / "x.npz", x=a, features=b)  # 'x' is preferred
    assert np.array_equal(load_features(tmp_path / "x.npz"), a)


def test_load_features_corrupt_files(tmp_path):
    for name, data in (("c.npz", b"PK\x03\x04garbage"), ("c.npy", b"\x93NUMPY garbage"), ("t.npz", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ClustergError, match=name):
            load_features(tmp_path / name)
    np.save(tmp_path / "trunc.npy", _feats())
    raw = (tmp_path / "trunc.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(raw[:-10])
    with pytest.raises(ClustergError, match="trunc.npy"):
        load_features(tmp_path / "trunc.npy")


def test_load_features_validation(tmp_path):
    x = _feats(n=40)
    x[37, 1] = np.inf
    np.save(tmp_path / "inf.npy", x)
    with pytest.raises(ClustergError, match="row 37"):
        load_features(tmp_path / "inf.npy")
    assert load_features(tmp_path / "inf.npy", validate=False).shape == (40, 8)
    np.save(tmp_path / "one.npy", np.zeros(5, np.float32))
    with pytest.raises(ClustergError, match=r"\(N, D\)"):
        load_features(tmp_path / "one.npy")
    np.save(tmp_path / "str.npy", np.array([["a", "b"]]))
    with pytest.raises(ClustergError, match="dtype"):
        load_features(tmp_path / "str.npy")
    np.save(tmp_path / "ok.npy", _feats())
    with pytest.raises(ClustergError, match="D=8"):
        load_features(tmp_path / "ok.npy", dim=16)
    (tmp_path / "f.txt").write_text("1 2\n")
    with pytest.raises(ClustergError, match="unknown feature format"):
        load_features(tmp_path / "f.txt")
    with pytest.raises(ClustergError, match="not found"):
        load_features(tmp_path / "absent.npy")


def test_chunked_validation_reports_global_row(tmp_path, monkeypatch):
    import clusterg.data.io as io
    monkeypatch.setattr(io, "_CHUNK_ELEMS", 64)  # 8 rows of D=8 a chunk
    x = _feats(n=100)
    x[93, 0] = np.nan
    write_bin(tmp_path / "ok.bin", _feats(n=100))
    np.save(tmp_path / "nan.npy", x)
    assert np.array_equal(load_features(tmp_path / "ok.bin"), _feats(n=100))
    with pytest.raises(ClustergError, match="first bad row 93"):
        load_features(tmp_path / "nan.npy")


def test_read_only_input_never_modified(tmp_path):
    p = write_bin(tmp_path / "f.bin", _feats())
    os.chmod(p, stat.S_IRUSR)
    before = p.read_bytes()
    x = load_features(p)
    with pytest.raises(ValueError):
        x[0, 0] = 1.0  # the memmap is read-only
    assert p.read_bytes() == before


# ---------------------------------------------------------------- MS1M layout

def _make_layout(root, n=30, d=4, labels=True, split="part1_test"):
    (root / "features").mkdir(parents=True, exist_ok=True)
    x = _feats(n, d)
    x.tofile(root / "features" / f"{split}.bin")  # as published: no sidecar
    y = np.arange(n) % 5
    if labels:
        (root / "labels").mkdir(exist_ok=True)
        write_meta(root / "labels" / f"{split}.meta", y)
    return x, y


def test_dataset_layout(tmp_path):
    x, y = _make_layout(tmp_path)
    _make_layout(tmp_path, split="part0_train")
    assert MS1MDataset.splits(tmp_path) == ["part0_train", "part1_test"]
    ds = MS1MDataset(tmp_path, "part1_test", dim=4)
    assert len(ds) == 30 and ds.dim == 4 and ds.num_classes == 5
    assert np.array_equal(ds.x, x) and np.array_equal(ds.y, y)
    assert ds.knn_path(80) == tmp_path / "knns" / "part1_test" / "faiss_k_80.npz"
    assert ds.knn_ks() == []
    (tmp_path / "knns" / "part1_test").mkdir(parents=True)
    for k in (80, 10):
        (tmp_path / "knns" / "part1_test" / f"faiss_k_{k}.npz").write_bytes(b"")
    assert ds.knn_ks() == [10, 80]
    with pytest.raises(ClustergError, match="k=5"):
        ds.load_knn(5)
    data = ds.to_data()
    assert data.num_nodes == 30 and data.x.dtype.is_floating_point and data.y.tolist() == y.tolist()
    data.x[0, 0] = 99.0  # an in-memory copy: the file is untouched
    assert np.array_equal(read_bin(ds.features_path, dim=4), x)
    assert "part1_test" in repr(ds)


def test_dataset_without_labels_and_errors(tmp_path):
    _make_layout(tmp_path, labels=False)
    ds = MS1MDataset(tmp_path, "part1_test", dim=4)
    assert ds.y is None and ds.num_classes is None and ds.to_data().y is None
    with pytest.raises(ClustergError, match="available: part1_test"):
        MS1MDataset(tmp_path, "part9_test", dim=4)
    with pytest.raises(ClustergError, match="--dim"):
        MS1MDataset(tmp_path, "part1_test")
    with pytest.raises(ClustergError, match="not found"):
        MS1MDataset(tmp_path / "nowhere", "part1_test", dim=4)
    assert MS1MDataset.splits(tmp_path / "nowhere") == []


def test_dataset_label_count_mismatch(tmp_path):
    _make_layout(tmp_path)
    write_meta(tmp_path / "labels" / "part1_test.meta", np.zeros(29, np.int64))
    with pytest.raises(ClustergError, match="29 labels but part1_test.bin has 30"):
        MS1MDataset(tmp_path, "part1_test", dim=4)
    assert MS1MDataset(tmp_path, "part1_test", dim=4, labels=False).y is None


def test_dataset_knn_round_trip(tmp_path):
    from clusterg import knn
    x, _ = _make_layout(tmp_path)
    ds = MS1MDataset(tmp_path, "part1_test", dim=4)
    nbrs = (np.arange(30)[:, None] + np.arange(3)[None, :]) % 30  # self first, no neighbour twice
    sims = np.tile(np.array([1.0, 0.9, 0.8], np.float32), (30, 1))
    ds.knn_path(3).parent.mkdir(parents=True)
    knn.save_knn(ds.knn_path(3), nbrs, sims)
    got_n, got_s = ds.load_knn(3)
    assert np.array_equal(got_n, nbrs) and np.allclose(got_s, sims, atol=1e-6)


# ---------------------------------------------------------------- real data

def test_real_celeba6k(shared_data):
    root = shared_data / "celeba6k"
    feat = root / "features" / "all.bin"
    if not feat.is_file():
        pytest.skip(f"real data set celeba6k not present: {feat} is missing")
    before = feat.stat()
    x = read_bin(feat, dim=128)
    assert isinstance(x, np.memmap) and x.shape == (6061, 128)
    y = read_meta(root / "labels" / "all.meta")
    assert y.shape == (6061,) and np.unique(y).size == 299 and y.min() >= 0
    ds = MS1MDataset(root, "all", dim=128)
    assert len(ds) == 6061 and ds.num_classes == 299
    xs = load_features(feat, dim=128)  # validated: finite everywhere
    norms = np.linalg.norm(xs, axis=1)
    assert np.all(norms > 0.5) and np.all(norms < 3.0)  # dlib descriptors, not garbage
    after = feat.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_atomic_output_has_ordinary_permissions(tmp_path):
    import os
    import stat

    from clusterg.data.io import write_meta
    write_meta(tmp_path / "p.meta", [0, 1])
    mode = stat.S_IMODE(os.stat(tmp_path / "p.meta").st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask
