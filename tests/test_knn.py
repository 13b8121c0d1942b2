import faiss
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from clusterg import ClustergError
from clusterg.knn import cached_knn, knn_recall, knn_search, load_knn, sampled_recall, save_knn, search_knn
from clusterg.transforms import KNNGraph


def brute_force(x, k):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def test_exact_equals_numpy_brute_force_on_celeba6k(shared_set):
    x, _ = shared_set("celeba6k", "all")
    nbrs, sims = knn_search(x, 20)
    ref_nbrs, ref_sims = brute_force(x.astype(np.float64), 20)
    assert nbrs.shape == (len(x), 20) and nbrs.dtype == np.int64 and sims.dtype == np.float32
    assert (nbrs[:, 0] == np.arange(len(x))).all()
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    # ids agree wherever the similarity is not tied with a neighbour's
    gaps = np.diff(ref_sims, axis=1)
    untied = np.ones_like(nbrs, dtype=bool)
    untied[:, 1:] &= np.abs(gaps) > 1e-5
    untied[:, :-1] &= np.abs(gaps) > 1e-5
    assert (nbrs[untied] == ref_nbrs[untied]).mean() > 0.999


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_approximate_methods_high_recall_no_pads(blobs, method):
    x, _ = blobs
    exact, _ = knn_search(x, 10)
    approx, sims = knn_search(x, 10, method=method, nprobe=8)
    assert (approx >= 0).all() and (approx[:, 0] == np.arange(len(x))).all()
    assert knn_recall(approx, exact) > 0.95
    assert (np.diff(sims[:, 1:], axis=1) <= 1e-6).all()


def test_ivf_pads_are_filled_exactly():
    # one IVF list probed with tiny lists: faiss must pad; those rows are redone exactly
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    nbrs, sims = knn_search(x, 50, method="ivf", nlist=10, nprobe=1)
    exact, esims = knn_search(x, 50)
    assert (nbrs >= 0).all()
    assert knn_recall(nbrs, exact) > 0.5


@pytest.mark.parametrize("method", ["flat", "hnsw"])
def test_chunked_equals_unchunked(blobs, method):
    """Candidates are settled chunk by chunk, reading the rows the index stores: same graph at any chunk."""
    x, _ = blobs
    a = knn_search(x, 7, method=method)
    b = knn_search(x, 7, method=method, chunk_size=13)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    q = search_knn(x[:50], x[50:90], 5, method=method, chunk_size=6)
    r = search_knn(x[:50], x[50:90], 5, method=method)
    np.testing.assert_array_equal(q[0], r[0])
    np.testing.assert_array_equal(q[1], r[1])


def test_stored_rows_view_is_the_prepared_rows():
    """The flat / HNSW index's own copy of the rows replaces the prepared copy (no second 5 GB at 5.21M)."""
    from clusterg.knn.search import _stored_rows, build_index, normalize_rows
    x = normalize_rows(np.random.default_rng(2).normal(size=(300, 12)).astype(np.float32))
    for method in ("flat", "hnsw"):
        index = build_index(x, method)
        v = _stored_rows(index, x)
        assert v is not x and not v.flags.owndata
        np.testing.assert_array_equal(v, x)
    index = build_index(x, "ivf", nlist=4)
    assert _stored_rows(index, x) is x  # IVF stores rows list by list: not a view in id order


def test_self_first_with_duplicates():
    x = np.ones((5, 3), np.float32)
    x[3:] = [1, 0, 0]
    nbrs, sims = knn_search(x, 3)
    assert (nbrs[:, 0] == np.arange(5)).all()
    assert np.allclose(sims[:, 0], 1.0)


@pytest.mark.parametrize("method", ["flat", "ivf", "hnsw", "ivf-gemm"])
def test_self_first_with_more_than_k_duplicates(method):
    # 6 identical rows, k = 3: ties by id put rows 10-12 ahead of rows 13-15 in their own lists, so
    # "self fell off the list" must put each row back in column 0 (in place of the farthest entry)
    x = np.random.default_rng(0).normal(size=(400, 8)).astype(np.float32)
    x[10:16] = x[10]
    nbrs, sims = knn_search(x, 3, method=method, quiet=True)
    assert (nbrs[:, 0] == np.arange(400)).all()
    assert nbrs[10:16].tolist() == [[10, 11, 12], [11, 10, 12], [12, 10, 11],
                                    [13, 10, 11], [14, 10, 11], [15, 10, 11]]
    np.testing.assert_allclose(sims[10:16], 1.0, atol=1e-6)


def test_k_bounds():
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert knn_search(x, 5)[0].shape == (5, 5)
    with pytest.raises(ClustergError, match="larger than the number of points"):
        knn_search(x, 6)
    with pytest.raises(ClustergError, match=">= 1"):
        knn_search(x, 0)
    nbrs, sims = knn_search(x[:1], 1)
    assert nbrs.tolist() == [[0]]


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((0, 4), np.float32), "at least 1"),
    (np.array([[1.0, np.nan], [1, 2]], np.float32), "NaN"),
    (np.array([[1.0, 0], [0, 0]], np.float32), "zero vector"),
    (np.ones(5, np.float32), "shape"),
    (np.array([["a", "b"]]), "dtype"),
])
def test_bad_features(bad, msg):
    with pytest.raises(ClustergError, match=msg):
        knn_search(bad, 1)


def test_npz_round_trip_layout(tmp_path, blobs):
    x, _ = blobs
    nbrs, sims = knn_search(x, 5)
    path = save_knn(tmp_path / "knns" / "part" / "faiss_k_5.npz", nbrs, sims)
    data = np.load(path)["data"]
    assert data.shape == (len(x), 2, 5)
    np.testing.assert_array_equal(data[:, 0, :].astype(np.int64), nbrs)
    np.testing.assert_allclose(data[:, 1, :], 1 - sims, atol=1e-7)
    n2, s2 = load_knn(path, n=len(x))
    np.testing.assert_array_equal(n2, nbrs)
    np.testing.assert_allclose(s2, sims, atol=1e-6)
    assert [p.name for p in tmp_path.rglob("*")].count("faiss_k_5.npz") == 1
    assert not [p for p in tmp_path.rglob(".*")]  # no temp files left


def test_corrupt_npz(tmp_path):
    bad = tmp_path / "k.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(ClustergError, match="not a readable"):
        load_knn(bad)
    np.savez(tmp_path / "w.npz", data=np.zeros((3, 3, 2)))
    with pytest.raises(ClustergError, match=r"\(N, 2, k\)"):
        load_knn(tmp_path / "w.npz")
    np.savez(tmp_path / "r.npz", data=np.full((3, 2, 2), 7.0))
    with pytest.raises(ClustergError, match="must lie in"):
        load_knn(tmp_path / "r.npz")
    with pytest.raises(ClustergError, match="rows"):
        nbrs, sims = knn_search(np.eye(4, dtype=np.float32), 2)
        save_knn(tmp_path / "ok.npz", nbrs, sims)
        load_knn(tmp_path / "ok.npz", n=5)


def test_cache_reuses_and_rebuilds(tmp_path, blobs, monkeypatch):
    x, _ = blobs
    path = tmp_path / "faiss_k_8.npz"
    a = cached_knn(x, 8, path)
    assert path.is_file()
    import clusterg.knn.cache as cache
    monkeypatch.setattr(cache, "knn_search", lambda *a, **k: (_ for _ in ()).throw(AssertionError("searched")))
    b = cached_knn(x, 5, path)  # fewer columns: sliced from the cache
    np.testing.assert_array_equal(b[0], a[0][:, :5])
    monkeypatch.undo()
    c = cached_knn(x[:100], 5, path)  # other data: rebuilt
    assert c[0].shape == (100, 5)


def test_search_knn_new_points(blobs):
    x, _ = blobs
    nbrs, sims = search_knn(x[:200], x[200:], 3)
    assert nbrs.shape == (100, 3) and nbrs.max() < 200
    empty = search_knn(x, np.zeros((0, x.shape[1]), np.float32), 3)
    assert empty[0].shape == (0, 3)
    with pytest.raises(ClustergError, match="dimension"):
        search_knn(x, x[:, :5], 3)


def test_recall_functions(blobs):
    x, _ = blobs
    nbrs, _ = knn_search(x, 10)
    assert knn_recall(nbrs, nbrs) == 1.0
    assert sampled_recall(x, nbrs, n_sample=50) == 1.0
    shuffled = nbrs.copy()
    shuffled[:, 5:] = (shuffled[:, 5:] + 1) % len(x)
    assert knn_recall(shuffled, nbrs) < 0.8


def test_knn_graph_transform(blobs):
    x, _ = blobs
    data = KNNGraph(k=6)(Data(x=torch.from_numpy(x)))  # k counts the node itself: 5 edges each
    assert data.edge_index.shape == (2, len(x) * 5)
    nbrs, sims = knn_search(x, 6)
    # every node receives edges from exactly its 5 nearest neighbours
    dst = data.edge_index[1].numpy()
    assert (np.bincount(dst, minlength=len(x)) == 5).all()
    got = set(zip(data.edge_index[0].tolist(), dst.tolist()))
    want = {(int(j), i) for i in range(len(x)) for j in nbrs[i, 1:]}
    assert got == want
    sym = KNNGraph(k=6, symmetric=True, loop=True, threshold=0.5)(Data(x=torch.from_numpy(x)))
    ei = sym.edge_index
    pairs = set(zip(ei[0].tolist(), ei[1].tolist()))
    assert all((b, a) in pairs for a, b in pairs)
    assert all((i, i) in pairs for i in range(len(x)))
    assert (sym.edge_weight > 0.5).all()
    assert "KNNGraph(k=5" in repr(KNNGraph(k=5))


def test_knn_graph_tiny_graphs():
    one = KNNGraph(k=10)(Data(x=torch.randn(1, 4)))
    assert one.edge_index.shape == (2, 0)
    three = KNNGraph(k=10)(Data(x=torch.randn(3, 4)))
    assert three.edge_index.shape == (2, 6)


def test_ivf_padded_rows_equal_exact_rows():
    """Rows faiss pads with -1 (one probed list shorter than k) come back exactly as the flat search has them,
    for the self-kNN and for new queries."""
    from clusterg.knn.search import build_index, normalize_rows
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    q = rng.normal(size=(100, 8)).astype(np.float32)
    index = build_index(normalize_rows(x), "ivf", nlist=10, seed=0, quiet=True)
    index.nprobe = 1
    padded = (index.search(normalize_rows(x), 50)[1] < 0).any(axis=1)
    padded_q = (index.search(normalize_rows(q), 50)[1] < 0).any(axis=1)
    assert padded.sum() > 100 and padded_q.sum() > 20  # the case under test really happens
    nbrs, sims = knn_search(x, 50, method="ivf", nlist=10, nprobe=1, seed=0)
    exact, esims = knn_search(x, 50)
    np.testing.assert_array_equal(nbrs[padded], exact[padded])
    np.testing.assert_allclose(sims[padded], esims[padded], atol=1e-6)
    nq, sq = search_knn(x, q, 50, method="ivf", nlist=10, nprobe=1, seed=0)
    eq, esq = search_knn(x, q, 50)
    np.testing.assert_array_equal(nq[padded_q], eq[padded_q])
    np.testing.assert_allclose(sq[padded_q], esq[padded_q], atol=1e-6)


def test_cli_cluster_with_precomputed_knn_equals_plain_run(tmp_path, capsys):
    """`clusterg cluster --knn FILE` (a file with more columns than --k) writes the same labels as the run that
    searches its own kNN; the case is one where 24 neighbours would change the clusters."""
    from clusterg.cli.main import main
    from clusterg.cluster import make_clusterer
    from clusterg.data.io import read_meta
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 128))
    y = np.repeat(np.arange(20), 15)
    x = centres[y] + 0.9 * rng.normal(size=(300, 128))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for k in (10, 24):
        assert main(["knn", str(tmp_path / "x.npy"), "--k", str(k), "-o", str(tmp_path / f"k{k}.npz"), "-q"]) == 0
    knn24 = load_knn(tmp_path / "k24.npz")
    wide = make_clusterer("knn-cc", k=24, threshold=0.35).fit_predict(x, knn=knn24)
    for method, threshold in (("knn-cc", "0.35"), ("infomap", "0.3")):
        common = ["--method", method, "--k", "10", "--threshold", threshold, "-q"]
        assert main(["cluster", str(tmp_path / "x.npy"), *common, "-o", str(tmp_path / "plain.meta")]) == 0
        plain = read_meta(tmp_path / "plain.meta")
        assert 5 < plain.max() + 1 < 100
        if method == "knn-cc":
            assert not np.array_equal(plain, wide)  # all 24 columns would give other clusters
        for k in (10, 24):
            out = tmp_path / f"pre{k}.meta"
            assert main(["cluster", str(tmp_path / "x.npy"), *common, "--knn", str(tmp_path / f"k{k}.npz"),
                         "-o", str(out)]) == 0
            np.testing.assert_array_equal(read_meta(out), plain, err_msg=f"{method} with --knn k{k}.npz")
    capsys.readouterr()


def test_auto_method_is_exact_up_to_its_size_then_ivf_gemm_then_hnsw(monkeypatch, caplog):
    """``method="auto"`` (the clusterers' default): flat search up to AUTO_EXACT_MAX points, ivf-gemm up to
    AUTO_GEMM_MAX, HNSW above."""
    import logging

    from clusterg.cluster import KNNConnectedComponents
    from clusterg.data.synth import synth_ms1m
    from clusterg.knn import search as search_mod
    x, _ = synth_ms1m(3000, dim=32, n_ids=150, seed=4)
    exact = knn_search(x, 10, method="flat", quiet=True)
    auto = knn_search(x, 10, method="auto", quiet=True)
    assert np.array_equal(exact[0], auto[0]) and np.array_equal(exact[1], auto[1])
    monkeypatch.setattr(search_mod, "AUTO_EXACT_MAX", 1000)
    with caplog.at_level(logging.INFO, logger="clusterg.knn"):
        approx = knn_search(x, 10, method="auto", quiet=True)
    assert "ivf-gemm" in caplog.text
    from clusterg.knn.ivf_gemm import ivf_gemm_knn
    ref = ivf_gemm_knn(x, 10, quiet=True)
    assert np.array_equal(approx[0], ref[0])
    assert (approx[0] == exact[0]).mean() > 0.9  # approximate, but close
    assert KNNConnectedComponents().knn_method == "auto"
    # above the one-level ivf-gemm size, HNSW
    monkeypatch.setattr(search_mod, "AUTO_GEMM_MAX", 2000)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="clusterg.knn"):
        big = knn_search(x, 10, method="auto", quiet=True)
    assert "hnsw" in caplog.text
    ref = knn_search(x, 10, method="hnsw", quiet=True)
    assert np.array_equal(big[0], ref[0]) and np.array_equal(big[1], ref[1])
    assert (big[0] == exact[0]).mean() > 0.9


def test_auto_gemm_max_is_the_one_level_ivf_gemm_limit():
    """AUTO_GEMM_MAX is the largest N whose default ivf-gemm lists are one-level k-means (exact probes)."""
    from clusterg.knn import AUTO_GEMM_MAX, resolve_method
    from clusterg.knn.ivf_gemm import FLAT_KMEANS_MAX, default_list_size
    assert AUTO_GEMM_MAX == FLAT_KMEANS_MAX * default_list_size(10**7, 80)
    assert resolve_method("auto", AUTO_GEMM_MAX) == "ivf-gemm"
    assert resolve_method("auto", AUTO_GEMM_MAX + 1) == "hnsw"
    assert resolve_method("auto", AUTO_GEMM_MAX + 1, device="cuda") == "flat"
    # every synthetic MS1M test split (part1 to part9, up to 5.21M) gets one-level lists, where they were
    # measured 1.7x to 2.6x faster than HNSW for a higher pairwise F (docs/benchmarks/knn_gemm.md)
    assert resolve_method("auto", 5_210_000) == "ivf-gemm"
    assert round(5_210_000 / default_list_size(5_210_000, 80)) <= FLAT_KMEANS_MAX
    assert resolve_method("ivf-gemm", 10**7) == "ivf-gemm"


def test_auto_device_with_a_gpu_resolves_to_exact_and_hnsw_stays_on_the_cpu(monkeypatch):
    """device="auto" on a machine with a GPU: "auto" is the GPU's exact search; an HNSW index (no GPU
    version in faiss) is built on the CPU instead of failing in the GPU copy."""
    from clusterg.knn import search as search_mod
    monkeypatch.setattr(search_mod, "gpu_available", lambda: True)
    assert search_mod.resolve_method("auto", 10**7, device="auto") == "flat"
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = search_mod.build_index(x, "hnsw", device="auto", quiet=True)
    assert isinstance(index, faiss.IndexHNSWFlat) and index.ntotal == 300


def test_default_584k_script_small(tmp_path):
    """benchmarks/default_584k.py (the MS1M-part1-size run of the default pipeline) end to end at a small N."""
    import json
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import default_584k
    out = tmp_path / "d.json"
    assert default_584k.main(["-o", str(out), "--n", "4000"]) == 0
    r = json.loads(out.read_text())
    assert r["knn_method"] == "flat" and r["knn_recall_at_80_sample_2000"] == 1.0  # exact below AUTO_EXACT_MAX
    assert r["ran"] == "infomap" and r["pairwise_fscore"] > 0.8 and r["n_clusters"] > 10


def test_streamed_recall_matches_sampled_recall(shared_set):
    from clusterg.knn import streamed_recall
    x, _ = shared_set("celeba", "dev")
    nb, _ = knn_search(x, 30, method="ivf-gemm", nlist=100, nprobe=4, quiet=True)
    a = sampled_recall(x, nb, n_sample=300, seed=2)
    b = streamed_recall(np.asarray(x), nb, n_sample=300, seed=2, block=1000)  # 11 blocks, the last one short
    assert abs(a - b) < 0.005, (a, b)  # ties at the k-th place may go either way
    assert 0.3 < a < 0.99  # a graph that is really approximate


def test_shallow_approximate_graph_warns_with_its_recall(shared_set, monkeypatch, caplog):
    """A large approximate graph gets its recall estimated on sampled rows; a shallow search warns."""
    import logging

    from clusterg.knn import search as search_mod
    x, _ = shared_set("celeba", "dev")
    monkeypatch.setattr(search_mod, "RECALL_CHECK_MIN", 1000)  # the set counts as large
    with caplog.at_level(logging.INFO, logger="clusterg.knn"):
        knn_search(x, 40, method="ivf-gemm", nlist=300, nprobe=1, quiet=True)
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "nprobe" in warned[0].getMessage() and "recall@40" in warned[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="clusterg.knn"):
        knn_search(x, 40, method="ivf-gemm", nlist=300, nprobe=300, quiet=True)  # every list: exact
        knn_search(x, 40, method="hnsw", quiet=True)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert caplog.text.count("recall@40") == 2
