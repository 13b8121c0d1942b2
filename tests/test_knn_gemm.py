"""The list-major IVF builder (``method="ivf-gemm"``) against exact search on real faces."""
import faiss
import numpy as np
import pytest

import clusterg.knn.ivf_gemm as ivf_gemm
from clusterg import ClustergError
from clusterg.knn import knn_recall, knn_search, sampled_recall
from clusterg.knn.ivf_gemm import ivf_gemm_knn


@pytest.fixture(scope="module")
def dev(shared_data):
    from clusterg.data import MS1MDataset
    path = shared_data / "celeba" / "features" / "dev.bin"
    if not path.is_file():
        pytest.skip("celeba/dev not present")
    return np.ascontiguousarray(MS1MDataset(shared_data / "celeba", "dev", dim=128).x, dtype=np.float32)


def _exact(x, k, rows=None):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    q = xn if rows is None else xn[rows]
    return faiss.knn(np.ascontiguousarray(q), np.ascontiguousarray(xn), k, metric=faiss.METRIC_INNER_PRODUCT)


def test_probing_every_list_is_exact(dev):
    """With nprobe = nlist every pair is scored: the result is the exact kNN (same scores, ties aside)."""
    k = 30
    nbrs, sims = ivf_gemm_knn(dev, k, list_size=256, nprobe=10_000, quiet=True)
    d, i = _exact(dev, k)
    np.testing.assert_allclose(sims[:, 1:], d[:, 1:], atol=2e-6)
    assert knn_recall(nbrs, i) > 0.999
    assert (nbrs[:, 0] == np.arange(len(dev))).all()


def test_recall_celeba_dev(dev):
    """Default settings (lists of 192, 32 probes): recall@80 well above 0.95 on the 10,567 dev faces."""
    nbrs, sims = knn_search(dev, 80, method="ivf-gemm", quiet=True)
    rows = np.arange(0, len(dev), 5)
    _, exact = _exact(dev, 80, rows)
    r = knn_recall(nbrs[rows], exact)
    assert r >= 0.97, r
    assert nbrs.shape == (len(dev), 80) and nbrs.dtype == np.int64 and sims.dtype == np.float32
    assert (nbrs >= 0).all() and (nbrs[:, 0] == np.arange(len(dev))).all()
    assert (np.diff(sims[:, 1:], axis=1) <= 0).all()
    assert (nbrs != np.arange(len(dev))[:, None])[:, 1:].all()  # self only once


def test_recall_celeba_train_matches_ivfflat(shared_set):
    """41,796 train faces, no expansion: the recall of faiss IndexIVFFlat with as many lists and probes (same scan)."""
    x, _ = shared_set("celeba", "train")
    nbrs, _ = ivf_gemm_knn(x, 80, nprobe=16, expand=0, quiet=True)  # one pass: IndexIVFFlat's scan
    r = sampled_recall(x, nbrs, n_sample=1500, seed=1)
    xn = np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True))
    nlist = round(len(x) / 192)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(128), 128, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10
    index.train(xn[::4])
    index.add(xn)
    index.nprobe = 16
    rows = np.sort(np.random.default_rng(1).choice(len(x), 1500, replace=False))
    _, ivf = index.search(xn[rows], 80)
    _, exact = _exact(x, 80, rows)
    r_ivf = knn_recall(ivf, exact)
    assert r >= 0.8, r
    assert abs(r - r_ivf) < 0.03, (r, r_ivf)


def test_expansion_finds_what_the_probes_missed(shared_set):
    """The second pass (lists of the neighbours' neighbours) lifts recall@80 on the 41,796 train faces above
    doubling nprobe (measured 0.842 -> 0.973 at 16 probes with the default 32 more lists; 32 probes
    alone: 0.945), with no neighbour twice."""
    x, _ = shared_set("celeba", "train")
    one, _ = ivf_gemm_knn(x, 80, nprobe=16, expand=0, quiet=True)
    two, sims = ivf_gemm_knn(x, 80, nprobe=16, quiet=True)  # default expansion
    wide, _ = ivf_gemm_knn(x, 80, nprobe=32, expand=0, quiet=True)
    r1, r2, rw = (sampled_recall(x, nb, n_sample=1500, seed=1) for nb in (one, two, wide))
    assert r2 > r1 + 0.05 and r2 > rw + 0.01, (r1, r2, rw)
    srt = np.sort(two, axis=1)
    assert (srt[:, 1:] != srt[:, :-1]).all()
    assert (two[:, 0] == np.arange(len(x))).all() and (np.diff(sims[:, 1:], axis=1) <= 0).all()
    # nothing the first pass found is lost: the second pass only adds candidates
    kth = sims[:, -1]
    _, first_sims = ivf_gemm_knn(x, 80, nprobe=16, expand=0, quiet=True)
    assert (first_sims[:, -1] <= kth + 1e-6).all()


def test_deterministic_and_memmap(dev, shared_data, tmp_path):
    """Same seed, same result; a memory-mapped .bin gives the same graph as the array in RAM."""
    a = ivf_gemm_knn(dev, 20, list_size=100, nprobe=8, quiet=True)
    mm = np.memmap(shared_data / "celeba" / "features" / "dev.bin", dtype="<f4", mode="r").reshape(-1, 128)
    b = ivf_gemm_knn(mm, 20, list_size=100, nprobe=8, quiet=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = ivf_gemm_knn(dev, 20, list_size=100, nprobe=8, seed=3, quiet=True)
    assert not np.array_equal(a[0], c[0])  # the seed is used
    assert knn_recall(c[0], a[0]) > 0.8


def test_ties_broken_by_id():
    """Duplicated points: equal similarities come in ascending id order, self first."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 16)).astype(np.float32)
    x = np.concatenate([base, base, base])  # every point three times
    nbrs, sims = ivf_gemm_knn(x, 3, list_size=50, nprobe=6, quiet=True)
    ids = np.arange(600)
    assert (nbrs[:, 0] == ids).all()
    twins = np.sort(np.stack([(ids + 200) % 600, (ids + 400) % 600], axis=1), axis=1)
    np.testing.assert_array_equal(nbrs[:, 1:], twins)


def test_two_level_kmeans_and_hnsw_probes(dev, monkeypatch):
    """Many lists (two-level k-means, probes found through HNSW) keep the recall."""
    monkeypatch.setattr(ivf_gemm, "FLAT_KMEANS_MAX", 16)
    nbrs, _ = ivf_gemm_knn(dev, 40, list_size=96, nprobe=32, quiet=True)
    rows = np.arange(0, len(dev), 7)
    _, exact = _exact(dev, 40, rows)
    assert knn_recall(nbrs[rows], exact) >= 0.9


def test_out_arrays_and_short_lists(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    nb = np.lib.format.open_memmap(tmp_path / "nbrs.npy", mode="w+", dtype=np.int64, shape=(500, 60))
    sm = np.lib.format.open_memmap(tmp_path / "sims.npy", mode="w+", dtype=np.float32, shape=(500, 60))
    # lists of ~5 rows and 2 probes hold fewer than k=60 candidates: those rows are searched exactly
    got_n, got_s = ivf_gemm_knn(x, 60, list_size=5, nprobe=2, quiet=True, out=(nb, sm))
    assert got_n is nb
    d, i = _exact(x, 60)
    assert knn_recall(np.asarray(nb), i) > 0.999
    with pytest.raises(ClustergError, match="out"):
        ivf_gemm_knn(x, 60, out=(nb[:10], sm), quiet=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(k=0), "k"), (dict(k=10_000), "larger than"), (dict(k=5, nprobe=0), "nprobe"),
    (dict(k=5, list_size="big"), "list_size"), (dict(k=5, query_chunk=0), "query_chunk"),
    (dict(k=5, expand=-1), "expand"), (dict(k=5, expand=1.5), "expand"),
])
def test_bad_arguments(kwargs, match):
    x = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    with pytest.raises(ClustergError, match=match):
        ivf_gemm_knn(x, quiet=True, **kwargs)


def test_bad_features():
    x = np.ones((50, 4), dtype=np.float32)
    x[7] = np.nan
    with pytest.raises(ClustergError, match="NaN"):
        ivf_gemm_knn(x, 5, quiet=True)
    with pytest.raises(ClustergError, match="shape"):
        ivf_gemm_knn(np.ones(10, dtype=np.float32), 5, quiet=True)
    with pytest.raises(ClustergError, match="CPU"):
        knn_search(np.ones((10, 4), dtype=np.float32), 2, method="ivf-gemm", device="cuda")


def test_expansion_with_nothing_to_add():
    """k=1 (no neighbours to vote) and every list probed: the second pass is skipped, results stay exact."""
    x = np.random.default_rng(2).normal(size=(2000, 16)).astype(np.float32)
    nb, _ = ivf_gemm_knn(x, 1, quiet=True)
    assert (nb[:, 0] == np.arange(2000)).all()
    nb, _ = ivf_gemm_knn(x, 10, nlist=4, nprobe=4, quiet=True)
    assert knn_recall(nb, _exact(x, 10)[1]) > 0.999


def test_knn_search_passes_expand_to_ivf_gemm_only():
    """``knn_search(method='ivf-gemm', expand=...)`` is ivf_gemm_knn's second pass; other methods refuse it."""
    x = np.random.default_rng(4).normal(size=(3000, 16)).astype(np.float32)
    for e in (0, 8):
        got = knn_search(x, 20, method="ivf-gemm", nprobe=4, expand=e, quiet=True)
        want = ivf_gemm_knn(x, 20, nprobe=4, expand=e, quiet=True)
        np.testing.assert_array_equal(got[0], want[0])
    assert not np.array_equal(knn_search(x, 20, method="ivf-gemm", nprobe=4, expand=0, quiet=True)[0],
                              knn_search(x, 20, method="ivf-gemm", nprobe=4, quiet=True)[0])
    for method in ("flat", "hnsw", "auto"):  # 'auto' is exact at this size
        with pytest.raises(ClustergError, match="expand is a setting of method='ivf-gemm' only"):
            knn_search(x, 20, method=method, expand=4)
