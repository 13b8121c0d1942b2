"""The MS1M-like synthetic generator: determinism, layout, shape of the data, calibration."""
import hashlib

import numpy as np
import pytest

from clusterg._validate import ClustergError
from clusterg.data import MS1MDataset, read_bin, read_meta, sidecar_path
from clusterg.data.synth import (FACES_PER_ID, MS1M_SPLITS, SynthSpec, default_n_ids, iter_synth, synth_ms1m,
                                 write_synth)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_shapes_dtypes_unit_norm_and_labels():
    x, y = synth_ms1m(3000, dim=64, seed=3)
    assert x.shape == (3000, 64) and x.dtype == np.float32
    assert y.shape == (3000,) and y.dtype == np.int64
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(x).all()
    c = default_n_ids(3000)
    assert c == round(3000 / FACES_PER_ID)
    # labels 0..C-1, every identity present, grouped in file order
    assert np.array_equal(np.unique(y), np.arange(c))
    assert (np.diff(y) >= 0).all()


def test_same_seed_same_data_other_seed_other_data():
    a = synth_ms1m(2000, dim=32, seed=7)
    b = synth_ms1m(2000, dim=32, seed=7)
    c = synth_ms1m(2000, dim=32, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0][: len(c[0])], c[0])


def test_identity_sizes_are_long_tailed_and_ids_scale_with_n():
    _, y = synth_ms1m(60_000, dim=16, seed=0)
    sizes = np.bincount(y)
    assert len(sizes) == default_n_ids(60_000)
    assert abs(sizes.mean() - FACES_PER_ID) < 1.0
    med = np.median(sizes)
    # right-skewed: the largest identities are many times the median, the mean exceeds the median
    assert sizes.max() > 4 * med and sizes.mean() > med
    assert sizes.min() >= 1
    # more faces -> more identities at the same faces-per-identity (MS1M's larger parts)
    assert default_n_ids(MS1M_SPLITS["part9_test"][0]) > 8 * default_n_ids(MS1M_SPLITS["part1_test"][0])
    assert abs(default_n_ids(584_013) - 8_573) < 50


def test_cone_geometry_same_identity_closer_than_different():
    x, y = synth_ms1m(4000, dim=128, seed=1)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(y), 20_000), rng.integers(0, len(y), 20_000)
    keep = a != b
    s = np.einsum("ij,ij->i", x[a[keep]], x[b[keep]])
    same = y[a[keep]] == y[b[keep]]
    diff_mean = s[~same].mean()
    # narrow cone: different identities are still similar, as for dlib faces (~0.83)
    assert 0.7 < diff_mean < 0.92
    # same-identity pairs are much closer: all pairs of the first 30 identities
    ss = []
    for i in range(30):
        f = x[y == i]
        g = f @ f.T
        ss.append(g[np.triu_indices(len(f), 1)])
    ss = np.concatenate(ss)
    assert ss.mean() > diff_mean + 0.05


def test_hard_pairs_make_identities_closer():
    plan_easy = synth_ms1m(3000, dim=64, seed=2, hard_frac=0.0)
    plan_hard = synth_ms1m(3000, dim=64, seed=2, hard_frac=1.0, hard_rho=0.95)

    def centroid_nn(x, y):
        c = np.zeros((y.max() + 1, x.shape[1]))
        np.add.at(c, y, x)
        c /= np.linalg.norm(c, axis=1, keepdims=True)
        s = c @ c.T
        np.fill_diagonal(s, -1)
        return np.median(s.max(axis=1))

    assert centroid_nn(*plan_hard) > centroid_nn(*plan_easy) + 0.01


def test_streaming_equals_in_memory_for_any_chunk(tmp_path):
    n, d = 5000, 24
    x, y = synth_ms1m(n, dim=d, seed=5)
    out1 = write_synth(tmp_path / "a", n, dim=d, seed=5, split="part1_test", chunk=613)
    out2 = write_synth(tmp_path / "b", n, dim=d, seed=5, split="part1_test", chunk=10**6)
    f1, f2 = out1 / "features" / "part1_test.bin", out2 / "features" / "part1_test.bin"
    m1, m2 = out1 / "labels" / "part1_test.meta", out2 / "labels" / "part1_test.meta"
    assert _digest(f1) == _digest(f2) and _digest(m1) == _digest(m2)
    assert np.array_equal(np.fromfile(f1, dtype="<f4").reshape(n, d), x)
    assert np.array_equal(read_meta(m1), y)
    # blocks hold whole identities and respect the chunk size unless one identity is bigger
    blocks = list(iter_synth(n, dim=d, seed=5, chunk=613))
    assert sum(len(b[0]) for b in blocks) == n
    for bx, by in blocks[:-1]:
        assert len(bx) >= 613 and len(bx) - np.bincount(by)[by[-1]] < 613


def test_ms1m_layout_is_readable_by_io(tmp_path):
    out = write_synth(tmp_path / "ms1m", 1500, dim=32, seed=0, split="part3_test")
    feats = out / "features" / "part3_test.bin"
    assert sidecar_path(feats).is_file()
    x = read_bin(feats)  # D from the sidecar
    assert x.shape == (1500, 32)
    assert read_meta(out / "labels" / "part3_test.meta").shape == (1500,)
    ds = MS1MDataset(out, "part3_test")
    assert len(ds) == 1500 and ds.dim == 32
    assert ds.num_classes == default_n_ids(1500)
    # no temporary files are left behind
    assert sorted(p.name for p in (out / "features").iterdir()) == ["part3_test.bin", "part3_test.bin.json"]


def test_explicit_sizes_and_knobs():
    sizes = np.array([5, 1, 3, 11])
    x, y = synth_ms1m(20, dim=8, sizes=sizes, within=0.01)
    assert np.array_equal(np.bincount(y), sizes)
    # a smaller within-identity variance gives tighter identities
    x2, _ = synth_ms1m(20, dim=8, sizes=sizes, within=0.2)
    first = slice(0, 5)
    assert (x[first] @ x[first].T).min() > (x2[first] @ x2[first].T).min()


@pytest.mark.parametrize("kwargs, msg", [
    (dict(n=1), "n"),
    (dict(n=10, dim=1), "dim"),
    (dict(n=10, n_ids=11), "n_ids"),
    (dict(n=10, n_ids=0), "n_ids"),
    (dict(n=10, seed=-1), "seed"),
    (dict(n=10.5), "n"),
    (dict(n=10, sizes=[5, 4]), "sizes"),
    (dict(n=10, sizes=[10, 0]), "sizes"),
    (dict(n=10, wobble=1.0), "wobble"),
    (dict(n=10, hard_rho=1.0), "hard_rho"),
    (dict(n=10, within=float("nan")), "within"),
    (dict(n=10, spec="no"), "spec"),
])
def test_bad_arguments_raise(kwargs, msg):
    with pytest.raises(ClustergError, match=msg):
        synth_ms1m(**kwargs)


def test_write_refuses_bad_split_and_file_as_folder(tmp_path):
    with pytest.raises(ClustergError, match="split"):
        write_synth(tmp_path, 100, dim=8, split="../escape")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ClustergError, match="not a folder"):
        write_synth(f, 100, dim=8)
    with pytest.raises(ClustergError, match="chunk"):
        write_synth(tmp_path / "o", 100, dim=8, chunk=0)
    assert not (tmp_path / "o").exists()


def test_cli_synth_writes_the_layout(tmp_path, capsys):
    from clusterg.cli.main import main
    rc = main(["synth", "--n", "900", "--dim", "16", "--seed", "4", "-o", str(tmp_path / "s"),
               "--split", "dev", "--quiet"])
    assert rc == 0
    x = read_bin(tmp_path / "s" / "features" / "dev.bin")
    ref, yref = synth_ms1m(900, dim=16, seed=4)
    assert np.array_equal(np.asarray(x), ref)
    assert np.array_equal(read_meta(tmp_path / "s" / "labels" / "dev.meta"), yref)
    assert main(["synth", "--n", "1", "-o", str(tmp_path / "t"), "--quiet"]) == 2
    assert "error" in capsys.readouterr().err


def _nn_rate_and_means(x, y):
    s = x @ x.T
    np.fill_diagonal(s, -2)
    nn = (y[s.argmax(axis=1)] == y).mean()
    iu = np.triu_indices(len(y), 1)
    same = (y[:, None] == y[None, :])[iu]
    v = s[iu]
    return nn, v[same].mean(), v[~same].mean()


def test_calibrated_against_real_celeba_dev(shared_set):
    """At D=128 with CelebA dev's identity sizes, the synthetic set looks like the real one."""
    xr, yr = shared_set("celeba", "dev")
    # a 4,000-face subset of whole identities keeps this test fast
    keep = yr < np.searchsorted(np.cumsum(np.bincount(yr)), 4000)
    xr, yr = np.ascontiguousarray(xr[keep]), yr[keep]
    xs, ys = synth_ms1m(len(yr), dim=128, seed=0, sizes=np.bincount(yr))
    nn_r, same_r, diff_r = _nn_rate_and_means(xr, yr)
    nn_s, same_s, diff_s = _nn_rate_and_means(xs, ys)
    assert abs(nn_s - nn_r) < 0.07
    assert abs(same_s - same_r) < 0.02
    assert abs(diff_s - diff_r) < 0.02
