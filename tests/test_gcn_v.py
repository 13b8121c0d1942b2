"""GCN-V: graph transform, layer, model, confidence targets, training, checkpoints, clusterer."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GraphConv

from clusterg._validate import ClustergError
from clusterg.knn import knn_search
from clusterg.metrics import evaluate
from clusterg.nn.gcn_v import GCNV, confidence_targets
from clusterg.nn.graph_conv import GCNVConv
from clusterg.transforms.gcn_graph import GCNGraph, adjacency_to_edges, adjacency_to_torch, build_adjacency


def _dense(a):
    return np.asarray(a.todense())


def test_build_adjacency_by_hand():
    # 3 nodes; 0-1 sim 0.8 one way only, 1-2 sim 0.5 / 0.6 asymmetric, a negative sim dropped by th_sim
    nbrs = np.array([[0, 1, 2], [1, 2, 0], [2, 1, 0]])
    sims = np.array([[1.0, 0.8, -0.1], [1.0, 0.5, 0.2], [1.0, 0.6, -0.2]], np.float32)
    a = _dense(build_adjacency(nbrs, sims, th_sim=0.0))
    raw = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.6], [0.0, 0.6, 1.0]])  # max-symmetrised + I
    np.testing.assert_allclose(a, raw / raw.sum(1, keepdims=True), rtol=1e-6)
    # th_sim above 0.7 keeps only the 0-1 edge
    a = _dense(build_adjacency(nbrs, sims, th_sim=0.7))
    np.testing.assert_allclose(a[2], [0, 0, 1])
    np.testing.assert_allclose(a[0], [1 / 1.8, 0.8 / 1.8, 0], rtol=1e-6)


def test_gcn_graph_transform(blobs):
    x, _ = blobs
    data = GCNGraph(k=10)(Data(x=torch.from_numpy(x)))
    n = len(x)
    ei, w = data.edge_index, data.edge_weight
    assert ei.shape[0] == 2 and ei.shape[1] == w.shape[0]
    row_sums = torch.zeros(n).index_add_(0, ei[1], w)  # sum over sources j of Â[i, j]
    np.testing.assert_allclose(row_sums.numpy(), 1.0, rtol=1e-5)
    assert ((ei[0] == ei[1]).sum() == n)  # exactly one self loop each
    # symmetric pattern: j->i exists iff i->j exists
    pairs = set(map(tuple, ei.t().tolist()))
    assert all((b, a) in pairs for a, b in pairs)
    assert data.knn_nbrs.shape == (n, 10)
    assert "k=10" in repr(GCNGraph(k=10))


def test_gcn_graph_small_input_clamps_k(caplog):
    x = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    data = GCNGraph(k=80)(Data(x=torch.from_numpy(x)))
    assert data.knn_nbrs.shape == (5, 5)
    assert "k=80" in caplog.text
    with pytest.raises(ClustergError):
        GCNGraph()(Data(x=torch.zeros(4, 3)))


def test_layer_matches_formula_and_pyg_graphconv(blobs):
    x, _ = blobs
    nbrs, sims = knn_search(x, 8)
    a = build_adjacency(nbrs, sims)
    ei, w = adjacency_to_edges(a)
    xt = torch.from_numpy(x)
    conv = GCNVConv(32, 16)
    out_edges = conv(xt, ei, w)
    out_sparse = conv(xt, adjacency_to_torch(a))
    expected = torch.relu(conv.lin(torch.cat([xt, torch.from_numpy(_dense(a)).float() @ xt], 1)))
    torch.testing.assert_close(out_edges, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out_sparse, expected, rtol=1e-4, atol=1e-5)
    # PyG GraphConv with aggr="add", lin_root = W[:, :D], lin_rel = W[:, D:]
    gc = GraphConv(32, 16, aggr="add")
    with torch.no_grad():
        gc.lin_root.weight.copy_(conv.lin.weight[:, :32])
        gc.lin_rel.weight.copy_(conv.lin.weight[:, 32:])
        gc.lin_rel.bias.copy_(conv.lin.bias)
    torch.testing.assert_close(torch.relu(gc(xt, ei, w)), expected, rtol=1e-4, atol=1e-5)
    assert conv.lin.weight.shape == (16, 64)
    assert float(conv.lin.bias.detach().abs().sum()) == 0.0  # bias starts at 0


def test_gcnv_shapes_and_gradients(blobs):
    x, _ = blobs
    nbrs, sims = knn_search(x, 8)
    ei, w = adjacency_to_edges(build_adjacency(nbrs, sims))
    model = GCNV(32, hidden=24)
    conf, h = model(torch.from_numpy(x), ei, w)
    assert conf.shape == (300,) and h.shape == (300, 24)
    assert (h >= 0).all()  # ReLU features
    conf.pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert float(model.conv.lin.weight.grad.abs().sum()) > 0
    with pytest.raises(ClustergError):
        model(torch.zeros(5, 31), ei, w)


def test_confidence_targets_by_hand():
    nbrs = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
    sims = np.array([[1.0, 0.9, 0.5], [1.0, 0.9, 0.4], [1.0, 0.5, 0.4]], np.float32)
    y = np.array([7, 7, 3])
    raw = np.array([1 + 0.9 - 0.5, 1 + 0.9 - 0.4, 1 - 0.5 - 0.4])
    np.testing.assert_allclose(confidence_targets(nbrs, sims, y), raw / raw.max(), rtol=1e-6)
    # negative sums dominate: the scale is max |c| (values stay in [-1, 1]); -1 pads contribute nothing
    # even when their similarity slot holds a non-zero value
    nb2 = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 0, 1], [3, 2, -1, -1]])
    s2 = np.array([[1.0, 0.5, 0.9, 0.9], [1.0, 0.5, 0.2, 0.1], [1.0, 0.95, 0.9, 0.9], [1.0, 0.95, 0.8, 0.7]],
                  np.float32)
    raw2 = np.array([1 + 0.5 - 0.9 - 0.9, 1 + 0.5 - 0.2 - 0.1, 1 - 0.95 - 0.9 - 0.9, 1 - 0.95])
    c2 = confidence_targets(nb2, s2, [0, 0, 1, 2])
    np.testing.assert_allclose(c2, raw2 / 1.75, rtol=1e-5, atol=1e-7)
    assert c2.min() == pytest.approx(-1.0) and np.abs(c2).max() <= 1.0
    with pytest.raises(ClustergError):
        confidence_targets(nbrs, sims, y[:2])
    with pytest.raises(ClustergError):
        confidence_targets(nbrs, sims[:, :2], y)


def _tiny_train(tmp_path, blobs, name="v.pt", **kw):
    from clusterg.train.gcn_v import train_gcn_v
    x, y = blobs
    params = dict(k=10, hidden=16, epochs=2, batch_size=128, val_fraction=0.2, out=tmp_path / name)
    params.update(kw)
    return train_gcn_v(x, y, **params)


def test_train_checkpoint_round_trip_and_errors(tmp_path, blobs):
    from clusterg.train.gcn_v import load_gcn_v
    x, y = blobs
    blob = _tiny_train(tmp_path, blobs)
    path = tmp_path / "v.pt"
    model, config, saved = load_gcn_v(path, in_dim=32)
    for key, value in blob["state_dict"].items():
        torch.testing.assert_close(model.state_dict()[key], value.float())
    assert config["k"] == 10 and config["hidden"] == 16 and saved["in_dim"] == 32
    assert 0 < config["tau_0"] <= 1 and config["passes"] in (1, 2)
    assert saved["train_state"]["epoch"] == 2
    with pytest.raises(ClustergError, match="32-d"):
        load_gcn_v(path, in_dim=64)
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ClustergError, match="truncated"):
        load_gcn_v(bad)
    from clusterg.train.gcn_e import load_gcn_ve
    with pytest.raises(ClustergError, match="gcn-v"):
        load_gcn_ve(path)
    with pytest.raises(ClustergError):
        _tiny_train(tmp_path, (x, y[:-1]), name="x.pt")


def test_resume_continues_identically(tmp_path, blobs):
    full = _tiny_train(tmp_path, blobs, name="full.pt", epochs=3, val_fraction=0.0)
    part = _tiny_train(tmp_path, blobs, name="part.pt", epochs=3, val_fraction=0.0, time_limit=0)
    assert part["train_state"]["epoch"] == 1  # stopped early, resumable
    resumed = _tiny_train(tmp_path, blobs, name="resumed.pt", epochs=3, val_fraction=0.0,
                          resume=tmp_path / "part.pt")
    assert resumed["train_state"]["epoch"] == 3
    for key, value in full["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value)


def test_half_storage_is_small_and_loads(tmp_path, blobs):
    from clusterg.train.gcn_v import load_gcn_v
    _tiny_train(tmp_path, blobs, name="h.pt", half=True, hidden=64)
    _tiny_train(tmp_path, blobs, name="f.pt", half=False, hidden=64)
    from clusterg.train.gcn_v import export_weights
    export_weights(tmp_path / "f.pt", tmp_path / "h_export.pt", half=True)
    assert (tmp_path / "h_export.pt").stat().st_size < 0.6 * (tmp_path / "f.pt").stat().st_size
    assert (tmp_path / "h.pt").stat().st_size < (tmp_path / "f.pt").stat().st_size
    model, config, _ = load_gcn_v(tmp_path / "h.pt")
    assert config["dtype"] == "float16"
    assert load_gcn_v(tmp_path / "h_export.pt")[2]["train_state"] is None
    assert next(model.parameters()).dtype == torch.float32


def test_clusterer_on_faces(tmp_path, faces):
    from clusterg.cluster import make_clusterer
    x, y = faces
    _tiny_train(tmp_path, faces, epochs=20, batch_size=64)
    est = make_clusterer("gcn-v", checkpoint=tmp_path / "v.pt", k=10)
    lab = est.fit_predict(x)
    assert lab.dtype == np.int64 and lab.shape == (400,) and lab.min() == 0
    assert evaluate(y, lab)["pairwise_fscore"] > 0.9
    assert est.confidence_.shape == (400,)
    # tiny inputs: one point, a handful of points (k clamped)
    assert est.fit(x[:1]).labels_.tolist() == [0]
    assert len(est.fit(x[:6]).labels_) == 6
    with pytest.raises(ClustergError):
        est.fit(x[:, :16])  # the checkpoint is 32-d


def test_no_weights_for_other_dims():
    from clusterg.cluster.gcn_v import GCNVClusterer, GCNVEClusterer
    x = np.random.default_rng(0).normal(size=(20, 64)).astype(np.float32)
    with pytest.raises(ClustergError, match="clusterg train gcn-v"):
        GCNVClusterer().fit(x)
    with pytest.raises(ClustergError, match="clusterg train gcn-e"):
        GCNVEClusterer().fit(x)


def test_shipped_gcn_v_beats_knn_cc_on_dev(shared_set):
    """The packaged dlib-128 GCN-V beats the best-threshold 20-NN connected components on celeba dev."""
    from clusterg.cluster import make_clusterer
    from clusterg.train.checkpoint import packaged_weights
    if packaged_weights("gcn_v_dlib128.pt") is None:
        pytest.fail("clusterg/weights/gcn_v_dlib128.pt is missing")
    x, y = shared_set("celeba", "dev")
    nbrs, sims = knn_search(x, 80)
    best_fp = best_fb = 0.0
    for t in np.arange(0.93, 0.975, 0.0025):  # oracle threshold for the baseline
        e = evaluate(y, make_clusterer("knn-cc", k=20, threshold=float(t)).fit_predict(x, knn=(nbrs, sims)))
        best_fp, best_fb = max(best_fp, e["pairwise_fscore"]), max(best_fb, e["bcubed_fscore"])
    e = evaluate(y, make_clusterer("gcn-v").fit_predict(x, knn=(nbrs, sims)))
    # thresholds of the baseline chosen per metric on dev itself; ours come from the checkpoint
    assert e["pairwise_fscore"] > best_fp + 0.05
    assert e["bcubed_fscore"] > best_fb


def test_default_cut_agrees_with_infomap_and_checkpoint_cut_is_reachable(caplog, monkeypatch):
    """The default tau is chosen by agreement with the Infomap reference (logged); ``"checkpoint"`` keeps
    the packaged tau; above SELECT_MAX_N points the checkpoint's tau is used; bad strings fail clearly."""
    import logging

    from clusterg.cluster import GCNVClusterer, GCNVEClusterer
    from clusterg.cluster._threshold import infomap_reference
    from clusterg.cluster.gcn_v import GCN_REJOIN_MIN_SIZE
    from clusterg.data.synth import synth_ms1m
    from clusterg.linkage.rejoin import rejoin_by_reference
    from clusterg.linkage import threshold_search
    from clusterg.linkage.threshold_search import pairwise_agreement
    from clusterg.linkage.tree_deduction import parents_to_labels
    x, _ = synth_ms1m(1500, dim=128, n_ids=60, seed=11)  # identities of ~25 faces: the packaged tau splits them
    ck = GCNVClusterer(threshold="checkpoint").fit(x)
    with caplog.at_level(logging.INFO, logger="clusterg"):
        est = GCNVClusterer().fit(x)
    assert "gcn-v: threshold" in caplog.text and "chosen by agreement" in caplog.text
    assert np.array_equal(est.parent_all_, ck.parent_all_) and est.threshold_ != ck.threshold_
    cut = parents_to_labels(est.parent_all_, est.psim_all_, est.threshold_)
    xn = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    nb, s = knn_search(xn, 20, normalize=False, quiet=True)
    ref = infomap_reference(xn, nb, s)
    assert pairwise_agreement(ref, cut) > pairwise_agreement(ref, ck.labels_)
    # then the trees the reference holds together are joined
    assert np.array_equal(est.labels_, rejoin_by_reference(cut, ref, GCN_REJOIN_MIN_SIZE)[0])
    assert ck.rejoined_ == 0
    ve = GCNVEClusterer(threshold="checkpoint").fit(x)
    assert ve.threshold_ == pytest.approx(ve._config_e["tau"])
    monkeypatch.setattr(threshold_search, "SELECT_MAX_N", 1000)
    assert GCNVClusterer().fit(x).threshold_ == ck.threshold_
    with pytest.raises(ClustergError, match="'auto' or 'checkpoint'"):
        GCNVClusterer(threshold="ckpt").fit(x)


def test_rejoin_keeps_large_identities_together_and_matches_its_fit():
    """GCN-V's trees stop at local confidence peaks: on identities of ~300 faces the default joins the
    pieces one Infomap module holds (F up by more than 0.1); GCN_REJOIN_MIN_SIZE and the default cut
    are what benchmarks/fit_parent_cut.py chose on tune sets."""
    import json
    from pathlib import Path

    from clusterg.cluster import GCNVClusterer
    from clusterg.cluster.gcn_v import GCN_REJOIN_MIN_SIZE
    from clusterg.data.synth import synth_ms1m
    from clusterg.linkage.tree_deduction import parents_to_labels
    fit = json.loads((Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "parent_cut.json").read_text())
    assert fit["rejoin_min_size"] == GCN_REJOIN_MIN_SIZE and fit["default"] == "agreement"
    assert not any(name in fit["sets"] for name in ("orl", "yale", "umist", "pins14", "celeba6k", "celeba-dev"))
    x, y = synth_ms1m(3000, dim=128, n_ids=10, seed=21)
    est = GCNVClusterer().fit(x)
    before = parents_to_labels(est.parent_all_, est.psim_all_, est.threshold_)
    assert est.rejoined_ > 0
    f_after, f_before = evaluate(y, est.labels_)["pairwise_fscore"], evaluate(y, before)["pairwise_fscore"]
    assert f_after > f_before + 0.1, (f_before, f_after)
