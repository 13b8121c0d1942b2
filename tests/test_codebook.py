"""NetVLAD codebooks: sampling, faiss k-means, the pytorch-NetVlad HDF5 layout and alpha."""
import json

import numpy as np
import pytest

from clusterg import ClustergError
from clusterg.cli.main import main
from clusterg.codebook import (Codebook, build_codebook, netvlad_alpha, read_codebook, sample_descriptors,
                               write_codebook)

h5py = pytest.importorskip("h5py", reason='h5py is not installed (pip install "clusterg[codebook]")')


def _local(n_img=60, n_loc=40, d=32, seed=0):
    """Local descriptors of images: 16 visual words with noise, (I, L, D)."""
    rng = np.random.default_rng(seed)
    words = rng.normal(size=(16, d))
    idx = rng.integers(0, 16, (n_img, n_loc))
    return (words[idx] + 0.1 * rng.normal(size=(n_img, n_loc, d))).astype(np.float32)


def test_sampling_follows_per_image_rule():
    x = _local()
    s = sample_descriptors(x, n_descriptors=500, per_image=25, seed=1)
    assert s.shape == (500, 32)
    # every sampled row comes from x, 25 distinct rows from each of 20 images
    flat = x.reshape(-1, 32)
    pos = np.array([np.flatnonzero((flat == r).all(axis=1))[0] for r in s])
    imgs = pos // 40
    assert len(np.unique(imgs)) == 20 and all((imgs == i).sum() == 25 for i in np.unique(imgs))
    assert len(np.unique(pos)) == 500
    assert (sample_descriptors(x, 500, 25, seed=1) == s).all()
    # (M, D) rows grouped by image ids give the same kind of sample
    ids = np.repeat(np.arange(60), 40)
    s2 = sample_descriptors(flat, 300, 30, image_ids=ids, seed=0)
    assert s2.shape == (300, 32)
    assert sample_descriptors(flat, 10**6, 5).shape == (2400, 32)  # all that there is


def test_codebook_file_layout_and_alpha(tmp_path):
    x = _local(d=48)
    cb = build_codebook(x, k=64, n_descriptors=2000, per_image=40, niter=20, seed=0)
    path = write_codebook(tmp_path / "vgg16_toy_64_desc_cen.hdf5", cb)
    with h5py.File(path, "r") as h5:
        assert h5["centroids"].shape == (64, 48) and h5["centroids"].dtype == np.float32
        assert h5["descriptors"].shape == (2000, 48)
        desc = h5["descriptors"][...]
        cen = h5["centroids"][...]
        alpha = float(h5.attrs["alpha"])
    assert np.allclose(np.linalg.norm(desc, axis=1), 1, atol=1e-5)  # L2-normalised as the cluster mode does
    # alpha from its definition, computed here independently
    c = cen / np.linalg.norm(cen, axis=1, keepdims=True)
    dots = np.sort(desc.astype(np.float64) @ c.T.astype(np.float64), axis=1)[:, ::-1]
    assert alpha == pytest.approx(-np.log(0.01) / np.mean(dots[:, 0] - dots[:, 1]), rel=1e-6)
    back = read_codebook(path)
    assert (back.centroids == cb.centroids).all() and back.alpha == pytest.approx(cb.alpha)
    # k-means actually fitted: every descriptor is near some centroid, closer than to the mean
    assert dots[:, 0].mean() > 0.9


def test_deterministic():
    x = _local()
    a = build_codebook(x, k=8, n_descriptors=800, per_image=20, niter=10, seed=3)
    b = build_codebook(x, k=8, n_descriptors=800, per_image=20, niter=10, seed=3)
    assert np.array_equal(a.centroids, b.centroids)


def test_cli_codebook(tmp_path, capsys):
    np.save(tmp_path / "desc.npy", _local(n_img=30, n_loc=50, d=16))
    out = tmp_path / "cb.hdf5"
    rc = main(["codebook", str(tmp_path / "desc.npy"), "-k", "64", "--n-descriptors", "1000", "--per-image", "50",
               "--niter", "5", "-o", str(out), "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["k"] == 64 and info["n_descriptors"] == 1000 and info["alpha"] > 0
    with h5py.File(out, "r") as h5:
        assert h5["centroids"].shape == (64, 16) and "descriptors" in h5
    assert main(["codebook", str(tmp_path / "desc.npy"), "-k", "5000", "-o", str(tmp_path / "bad.hdf5")]) == 2
    assert "need at least" in capsys.readouterr().err
    assert not (tmp_path / "bad.hdf5").exists()


def test_real_face_descriptors(shared_set, tmp_path):
    x, _ = shared_set("celeba", "dev")
    cb = build_codebook(np.asarray(x), k=64, n_descriptors=5000, niter=10, seed=0)
    assert cb.centroids.shape == (64, 128) and len(cb.descriptors) == 5000 and cb.alpha > 0


def test_gpu_when_asked():
    from clusterg.knn import gpu_available
    if gpu_available():
        cb = build_codebook(_local(), k=8, n_descriptors=800, niter=5, device="cuda")
        assert cb.centroids.shape == (8, 32)
    else:
        with pytest.raises(ClustergError, match="cuda"):
            build_codebook(_local(), k=8, n_descriptors=800, niter=5, device="cuda")


def test_bad_input(tmp_path):
    with pytest.raises(ClustergError, match="shape"):
        sample_descriptors(np.zeros(5, np.float32))
    with pytest.raises(ClustergError, match="per_image"):
        sample_descriptors(_local(), per_image=0)
    with pytest.raises(ClustergError, match="dimension"):
        netvlad_alpha(np.eye(4, dtype=np.float32), np.ones((3, 5), np.float32))
    with pytest.raises(ClustergError, match="not found"):
        read_codebook(tmp_path / "missing.hdf5")
    (tmp_path / "junk.hdf5").write_text("not hdf5")
    with pytest.raises(ClustergError, match="HDF5"):
        read_codebook(tmp_path / "junk.hdf5")
    with h5py.File(tmp_path / "other.hdf5", "w") as h5:
        h5.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ClustergError, match="centroids"):
        read_codebook(tmp_path / "other.hdf5")
    assert isinstance(build_codebook(_local(), k=4, n_descriptors=100, niter=2), Codebook)
