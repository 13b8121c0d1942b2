"""Ada-NETS: AND, GCN encoder, pair loss, training, checkpoints and the clusterer."""
import numpy as np
import pytest
import torch

from clusterg._validate import ClustergError
from clusterg.nn.ada_gcn import AdaGCN, mean_aggregate, pair_loss
from clusterg.nn.and_module import AND, and_loss
from clusterg.train.ada_nets import embed, mean_adjacency, train_ada_nets
from clusterg.transforms.adaptive_graph import adaptive_graph


def _knn(x, k):
    s = x @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(s, order, 1).astype(np.float32)


def test_adagcn_shapes_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(50, 16)
    nbrs, sims = _knn(torch.nn.functional.normalize(x, dim=1).numpy(), 6)
    ei, _ = adaptive_graph(nbrs, sims, 6)
    model = AdaGCN(16, hidden=32, out_dim=24)
    z = model(x, ei)
    assert z.shape == (50, 24)
    np.testing.assert_allclose(z.norm(dim=1).detach().numpy(), 1.0, atol=1e-5)
    y = torch.arange(50) % 5
    loss = pair_loss(z, y)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    with pytest.raises(ClustergError):
        model(torch.randn(50, 8), ei)
    with pytest.raises(ClustergError):
        model(x, torch.tensor([[0, 1], [2, 99]]))


def test_sparse_embedding_matches_message_passing():
    """The chunked scipy path used for inference equals the PyG SAGEConv forward."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    nbrs, _ = _knn(x, 5)
    adj = mean_adjacency(nbrs, 5)
    coo = adj.tocoo()
    ei = torch.from_numpy(np.stack([coo.col, coo.row]).astype(np.int64))
    model = AdaGCN(8, hidden=16, out_dim=16).eval()
    with torch.no_grad():
        z_mp = model(torch.from_numpy(x), ei).numpy()
    z_sp = embed(model, x, adj, chunk_size=7)
    np.testing.assert_allclose(z_mp, z_sp, atol=1e-5)
    np.testing.assert_allclose(mean_aggregate(torch.from_numpy(x), ei).numpy(), adj @ x, atol=1e-6)


def test_pair_loss_values():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    # positives identical (s=1 > 0.9): 0; hardest negative s=0: relu(1 + 0) = 1
    assert float(pair_loss(z, y)) == pytest.approx(1.0)
    assert float(pair_loss(z, y, neg_margin=0.0)) == pytest.approx(0.0)
    zb = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), dim=1)
    # positives orthogonal: relu(0.9 - 0) = 0.9; negatives: max s = 0 (pair 1-2) -> 1
    assert float(pair_loss(zb, y)) == pytest.approx(1.9)
    # 'all' averages over every negative pair: s = 0, -1 (each twice) -> mean relu(1 + s) = 0.5
    assert float(pair_loss(zb, y, neg_mode="all")) == pytest.approx(0.9 + 0.5)
    # groups: pairs only inside a group
    g = torch.tensor([0, 0, 1])
    assert float(pair_loss(z, y, groups=g)) == pytest.approx(0.0)
    with pytest.raises(ClustergError):
        pair_loss(z, y[:2])
    with pytest.raises(ClustergError):
        pair_loss(z, y, neg_mode="bad")


@pytest.mark.parametrize("arch", ["lstm", "mlp"])
def test_and_shapes_and_gradients(arch):
    torch.manual_seed(0)
    model = AND(in_dim=12, k=10, arch=arch)
    inp = torch.randn(7, 10, 12) if arch == "lstm" else torch.rand(7, 20)
    out = model(inp)
    assert out.shape == (7,)
    target = torch.full((7,), 0.3)
    loss = and_loss(out, target)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert float(and_loss(target.clone(), target)) == pytest.approx(0.0)
    # Huber on relative error: 2x the target is a relative error of 1 -> 0.5 * 1^2
    assert float(and_loss(2 * target, target)) == pytest.approx(0.5)
    with pytest.raises(ClustergError):
        model(torch.randn(7, 3))
    with pytest.raises(ClustergError):
        AND(12, arch="gru")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    rng = np.random.default_rng(0)
    c = rng.normal(size=(30, 16))
    y = np.repeat(np.arange(30), 8)
    x = (c[y] + 0.35 * rng.normal(size=(240, 16))).astype(np.float32)
    path = tmp_path_factory.mktemp("ada") / "tiny.pt"
    blob = train_ada_nets(x, y, path, k=20, and_epochs=2, gcn_steps=20, k_train=10, threads=1, quiet=True)
    return path, blob


def test_training_writes_a_usable_checkpoint(tiny_ckpt):
    from clusterg.cluster.ada_nets import AdaNetsClusterer
    from clusterg.metrics import pairwise
    path, blob = tiny_ckpt
    assert blob["in_dim"] == 16 and blob["config"]["graph"] in ("and", "knn")
    assert "mae" in blob["meta"]["and"] and blob["meta"]["gcn"]["steps"] == 20
    rng = np.random.default_rng(5)  # new identities, same kind of data
    c = rng.normal(size=(20, 16))
    y = np.repeat(np.arange(20), 8)
    x = (c[y] + 0.35 * rng.normal(size=(160, 16))).astype(np.float32)
    for linkage in ("cc", "infomap"):
        m = AdaNetsClusterer(checkpoint=path, k=20, linkage=linkage).fit(x)
        assert m.labels_.shape == (160,) and m.labels_.dtype == np.int64
        assert m.labels_.min() == 0 and len(np.unique(m.labels_)) == m.labels_.max() + 1
        assert pairwise(y, m.labels_)[2] > 0.5
    default = AdaNetsClusterer(checkpoint=path, k=20).fit(x)
    assert default.linkage_ == blob["config"]["linkage"]  # chosen on held-aside identities
    # tiny inputs: k clamped, still labels for every point
    assert AdaNetsClusterer(checkpoint=path, k=20).fit(x[:3]).labels_.shape == (3,)
    assert AdaNetsClusterer(checkpoint=path, k=20).fit(x[:1]).labels_.tolist() == [0]


def test_checkpoint_rules(tiny_ckpt, tmp_path):
    from clusterg.cluster.ada_nets import AdaNetsClusterer
    path, _ = tiny_ckpt
    x = np.random.default_rng(1).normal(size=(30, 8)).astype(np.float32)
    with pytest.raises(ClustergError, match="16-d"):
        AdaNetsClusterer(checkpoint=path, k=10).fit(x)
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(path.read_bytes()[:2000])
    x16 = np.random.default_rng(1).normal(size=(30, 16)).astype(np.float32)
    with pytest.raises(ClustergError, match="truncated"):
        AdaNetsClusterer(checkpoint=bad, k=10).fit(x16)
    with pytest.raises(ClustergError, match="train"):
        AdaNetsClusterer(k=10).fit(x)  # no packaged weights for 8-d
    with pytest.raises(ClustergError, match="linkage"):
        AdaNetsClusterer(checkpoint=path, linkage="louvain").fit(x16)
    from clusterg.train.checkpoint import save_checkpoint
    other = tmp_path / "other.pt"
    save_checkpoint(other, "gcn-v", 16, {}, {})
    with pytest.raises(ClustergError, match="ada-nets"):
        AdaNetsClusterer(checkpoint=other, k=10).fit(x16)


def test_training_validates_input():
    x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    with pytest.raises(ClustergError):
        train_ada_nets(x, np.zeros(19, int))
    with pytest.raises(ClustergError):
        train_ada_nets(x, np.arange(20) % 4, holdout=1.5)
    y = np.arange(20) % 4
    with pytest.raises(ClustergError, match="splits an identity"):
        train_ada_nets(x, y, holdout=np.arange(20) < 3)  # identity 0 on both sides
    with pytest.raises(ClustergError, match="boolean array of shape"):
        train_ada_nets(x, y, holdout=np.zeros(19, bool))
    with pytest.raises(ClustergError, match="every row"):
        train_ada_nets(x, y, holdout=np.ones(20, bool))


def test_training_holds_aside_the_rows_a_mask_names():
    """An explicit held-aside mask (e.g. the identities an earlier run held aside, when data is added)."""
    rng = np.random.default_rng(2)
    c = rng.normal(size=(30, 16))
    y = np.repeat(np.arange(30), 8)
    x = (c[y] + 0.35 * rng.normal(size=(240, 16))).astype(np.float32)
    mask = y >= 24
    blob = train_ada_nets(x, y, None, k=20, and_epochs=1, gcn_steps=5, k_train=10, threads=1, quiet=True,
                          holdout=mask)
    assert blob["meta"]["trained_on"]["n_holdout"] == int(mask.sum()) == 48
    assert blob["meta"]["train_params"]["holdout"] == "mask"


def test_shipped_weights_beat_knn_cc_on_dev(shared_set):
    """The packaged checkpoint (trained on celeba train) clusters the disjoint dev split better than
    the best-threshold kNN + connected-components baseline."""
    from clusterg.cluster.ada_nets import AdaNetsClusterer
    from clusterg.knn import knn_search
    from clusterg.linkage import connected_components, threshold_edges
    from clusterg.metrics import pairwise
    from clusterg.train.checkpoint import packaged_weights
    if packaged_weights("ada_nets_dlib128.pt") is None:
        pytest.fail("clusterg/weights/ada_nets_dlib128.pt is missing")
    x, y = shared_set("celeba", "dev")
    nbrs, sims = knn_search(x, 80)
    base = max(pairwise(y, connected_components(len(x), *threshold_edges(nbrs[:, :20], sims[:, :20], t)))[2]
               for t in np.arange(0.90, 0.99, 0.005))
    labels = AdaNetsClusterer().fit(x, knn=(nbrs, sims)).labels_
    f = pairwise(y, labels)[2]
    assert f > base + 0.02, (f, base)


def test_raw_similarity_guard_keeps_unrelated_points_apart():
    # six points, three far-apart tight pairs: the 5-NN graph is complete, so without the
    # input-space guard the encoder's mean aggregation blends everything into one cluster
    from clusterg.cluster.ada_nets import AdaNetsClusterer
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 128))
    x = (np.repeat(centres, 2, axis=0) + 0.01 * rng.normal(size=(6, 128))).astype(np.float32)
    guarded = AdaNetsClusterer().fit_predict(x)
    assert guarded.tolist() == [0, 0, 1, 1, 2, 2]
    unguarded = AdaNetsClusterer(raw_min_sim=-1.0, min_sim="checkpoint").fit_predict(x)
    assert len(set(unguarded.tolist())) < 3


def test_cut_chosen_on_held_aside_faces_is_not_the_default(tmp_path, caplog):
    """The cc cut tuned on a trained model's held-aside identities (1,600 faces here) chains a set of 20,000
    of the same kind into one giant cluster: it was pairwise F 0.003 on the 584K protocol split. Without a
    threshold the clusterer cuts at the higher of it and the cut read off the refined embeddings;
    ``"checkpoint"`` keeps the stored one."""
    import logging

    from clusterg.cluster.ada_nets import AdaNetsClusterer
    from clusterg.data.synth import synth_ms1m
    from clusterg.metrics import pairwise
    x, y = synth_ms1m(8000, dim=256, n_ids=119, seed=100)
    path = tmp_path / "synth.pt"
    blob = train_ada_nets(x, y, path, threads=2, quiet=True)
    xt, yt = synth_ms1m(20000, dim=256, n_ids=294, seed=1)  # new identities, a larger set
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        fixed = AdaNetsClusterer(checkpoint=path, linkage="cc", threshold="checkpoint").fit(xt)
    assert fixed.threshold_ == pytest.approx(blob["config"]["threshold"])
    assert pairwise(yt, fixed.labels_)[2] < 0.5 and "nearly one cluster" in caplog.text  # it keeps every edge
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clusterg"):
        default = AdaNetsClusterer(checkpoint=path, linkage="cc").fit(xt)
    assert default.threshold_ > blob["config"]["threshold"]
    assert pairwise(yt, default.labels_)[2] > 0.95 and "WARNING" not in caplog.text
