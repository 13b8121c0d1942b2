"""PyG conventions: node-index attributes batch correctly, one meaning of k, functional names, from_pretrained."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data, HeteroData
from torch_geometric.data.datapipes import functional_transform  # noqa: F401  (registry below)
from torch.utils.data.datapipes.datapipe import IterDataPipe

from clusterg import ClustergError
from clusterg.knn import knn_search
from clusterg.nn import AND, GCNE, GCNV, AdaGCN
from clusterg.transforms import AdaptiveGraph, GCNGraph, KNNData, KNNGraph, StructureSpace


def _graph(rng, n, d=8):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return Data(x=torch.from_numpy(x))


def test_batching_shifts_neighbour_ids():
    rng = np.random.default_rng(0)
    graphs = [StructureSpace(k=5)(GCNGraph(k=5)(_graph(rng, n))) for n in (12, 9)]
    assert all(isinstance(g, KNNData) for g in graphs)
    batch = Batch.from_data_list(graphs)
    assert batch.knn_nbrs.shape == (21, 5) and batch.ss_nbrs.shape == (21, 5)
    for key in ("knn_nbrs", "ss_nbrs"):
        assert (batch[key][:12] == graphs[0][key]).all()
        assert (batch[key][12:] == graphs[1][key] + 12).all()  # ids of the second graph point at its nodes
        # every row's first entry is the node itself, in the batch too
        assert (batch[key][:, 0] == torch.arange(21)).all()
    # the ids still index the right features after batching
    i = 15
    assert torch.equal(batch.x[batch.knn_nbrs[i]], graphs[1].x[graphs[1].knn_nbrs[i - 12]])
    assert [g.num_nodes for g in batch.to_data_list()] == [12, 9]
    assert (batch.to_data_list()[1].knn_nbrs == graphs[1].knn_nbrs).all()


def test_k_counts_the_node_itself_everywhere():
    rng = np.random.default_rng(1)
    data = _graph(rng, 30)
    k = 6
    knn = KNNGraph(k=k)(data.clone())
    assert (torch.bincount(knn.edge_index[1], minlength=30) == k - 1).all()  # k - 1 others + the node itself
    gcn = GCNGraph(k=k)(data.clone())
    assert gcn.knn_nbrs.shape == (30, k) and (gcn.knn_nbrs[:, 0] == torch.arange(30)).all()
    nbrs, _ = knn_search(data.x.numpy(), k)
    assert set(zip(knn.edge_index[0].tolist(), knn.edge_index[1].tolist())) == \
        {(int(j), i) for i in range(30) for j in nbrs[i, 1:]}
    assert StructureSpace(k=k)(data.clone()).ss_nbrs.shape == (30, k)


def test_functional_names_are_registered():
    for name in ("knn_graph_cos", "gcn_graph", "structure_space", "adaptive_graph"):
        assert name in IterDataPipe.functions, name


def test_hetero_data_gets_a_clear_error():
    h = HeteroData()
    h["face"].x = torch.randn(5, 4)
    for t in (KNNGraph(), GCNGraph()):
        with pytest.raises(ClustergError, match="homogeneous Data"):
            t(h)
    with pytest.raises(ClustergError, match="data.x is missing"):
        KNNGraph()(Data(num_nodes=3))


def test_from_pretrained_modules_and_settings():
    v = GCNV.from_pretrained()
    assert v.config["k"] == 20 and not v.training
    t = v.graph_transform()
    assert isinstance(t, GCNGraph) and t.k == v.config["k"]
    e = GCNE.from_pretrained()
    assert e.in_dim == 128 + v.hidden + 1  # raw + GCN-V features + the centre similarity
    v2, e2 = GCNE.from_pretrained(with_gcn_v=True)
    assert isinstance(v2, GCNV) and v2.config["k"] == e.config["gcn_v"]["k"]
    a, g = AND.from_pretrained(), AdaGCN.from_pretrained()
    assert a.config == g.config and g.in_dim == 128
    with pytest.raises(ClustergError, match="holds a 'gcn-v' model"):
        GCNE.from_pretrained(checkpoint=__import__("clusterg.nn._pretrained", fromlist=["x"]).__file__.replace(
            "nn/_pretrained.py", "weights/gcn_v_dlib128.pt"))


def _raw(shared_set, name="celeba6k"):
    x, _ = shared_set(name, "all")
    return np.array(x)  # raw features (not unit-norm): every path normalises them the same way


def test_gcn_v_from_pretrained_reproduces_the_clusterer_on_celeba6k(shared_set):
    """GCNV.from_pretrained() on its graph_transform() gives the clusterer's confidences, hidden features
    and clusters bit for bit (one graph builder and one sparse product serve both paths)."""
    from clusterg.cluster import GCNVClusterer
    from clusterg.linkage.tree_deduction import nearest_higher, parents_to_labels
    x = _raw(shared_set)
    est = GCNVClusterer(threshold="checkpoint").fit(x)  # the checkpoint tau: the PyG path has no cut search
    model = GCNV.from_pretrained()
    data = model.graph_transform()(Data(x=torch.from_numpy(x)))
    with torch.no_grad():
        conf, _ = model(data.x, data.edge_index, data.edge_weight)
    assert np.array_equal(conf.numpy(), est.confidence_)
    assert model.config["passes"] == 1
    parent, psim = nearest_higher(data.knn_nbrs.numpy(), data.knn_sims.numpy(), conf.numpy())
    assert np.array_equal(parents_to_labels(parent, psim, model.config["tau_0"]), est.labels_)
    assert len(np.unique(est.labels_)) > 100  # a real clustering, not a trivial one


def test_gcn_e_from_pretrained_reproduces_the_clusterer_on_celeba6k(shared_set):
    from clusterg.cluster import GCNVEClusterer
    from clusterg.linkage.tree_deduction import parents_to_labels
    from clusterg.models.gcn_e import candidate_knn, edge_features, gcn_e_parents
    x = _raw(shared_set)
    est = GCNVEClusterer(threshold="checkpoint").fit(x)
    v, e = GCNE.from_pretrained(with_gcn_v=True)
    cfg = e.config
    data = v.graph_transform()(Data(x=torch.from_numpy(x)))
    with torch.no_grad():
        conf, hidden = v(data.x, data.edge_index, data.edge_weight)
    assert np.array_equal(conf.numpy(), est.confidence_)
    feat = edge_features(data.x.numpy(), hidden, cfg["feature"])
    en, es = candidate_knn(data.x.numpy(), feat, cfg["feature"], cfg["k"], data.knn_nbrs.numpy(),
                           data.knn_sims.numpy())
    parent, score = gcn_e_parents(e, feat, en, es, conf.numpy(), cfg["ignore_ratio"], rule=cfg["rule"],
                                  alpha=cfg["alpha"], p_min=cfg["p_min"], p_high=cfg["p_high"], beta=cfg["beta"])
    assert np.array_equal(parent, est.parent_all_) and np.array_equal(score, est.psim_all_)
    assert np.array_equal(parents_to_labels(parent, score, cfg["tau"]), est.labels_)


def test_ada_nets_modules_reproduce_the_clusterer_on_celeba6k(shared_set):
    """AdaGCN.from_pretrained() on the packaged pipeline's graph (the k_graph-NN) and, with graph='and',
    AND.from_pretrained() + AdaptiveGraph give the clusterer's k_hat and embeddings bit for bit."""
    from clusterg.cluster import AdaNetsClusterer
    x = _raw(shared_set)
    gcn, and_model = AdaGCN.from_pretrained(), AND.from_pretrained()
    cfg = gcn.config
    assert cfg["graph"] == "knn"
    est = AdaNetsClusterer().fit(x)
    data = GCNGraph(k=80)(Data(x=torch.from_numpy(x)))  # the clusterer's k=80 lists, self first
    data.ss_nbrs, data.ss_sims = data.knn_nbrs, torch.ones_like(data.knn_sims)  # plain kNN graph, topology only
    data = AdaptiveGraph(k=cfg["k_graph"])(data)
    with torch.no_grad():
        z = gcn(data.x, data.edge_index)
    assert np.array_equal(z.numpy(), est.embeddings_)

    est = AdaNetsClusterer(graph="and").fit(x)
    data = StructureSpace(k=cfg["k"], lam=cfg["lam"])(GCNGraph(k=80)(Data(x=torch.from_numpy(x))))
    data.k_hat = torch.from_numpy(and_model.predict_k(data.x, data.ss_nbrs, data.ss_sims, data.ss_cos))
    assert np.array_equal(data.k_hat.numpy(), est.k_hat_) and len(np.unique(est.k_hat_)) > 1
    data.ss_sims = torch.ones_like(data.ss_sims)  # the encoder reads the topology only
    data = AdaptiveGraph()(data)
    with torch.no_grad():
        z = gcn(data.x, data.edge_index)
    assert np.array_equal(z.numpy(), est.embeddings_)


def test_pyg_tutorial_pretrained_block_runs():
    """The tutorial's 'pretrained modules, batched' code runs as printed and batches correctly."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "tutorials" / "pyg.rst").read_text()
    section = text.split("Pretrained modules inside your model, batched")[1]
    block = section.split(".. code-block:: python")[1].split("\nThe clusterers run")[0]
    ns: dict = {}
    exec(compile("\n".join(line[3:] for line in block.splitlines()), "pyg.rst", "exec"), ns)
    batch = ns["batch"]
    assert batch.num_graphs == 2 and batch.num_nodes == 1000
    assert ns["score"].shape == (1000,) and ns["p_same"].shape == (5000,) and ns["z"].shape == (1000, 512)
    assert torch.allclose(ns["z"].norm(dim=1), torch.ones(1000), atol=1e-4)
    # the batched confidences equal those of each graph on its own
    with torch.no_grad():
        alone, _ = ns["gcn_v"](*[getattr(batch.to_data_list()[1], a) for a in ("x", "edge_index", "edge_weight")])
    assert torch.allclose(ns["conf"][600:], alone, atol=1e-5)


def test_gcn_e_and_and_from_pretrained_hold_the_clusterers_weights():
    from clusterg.cluster import AdaNetsClusterer, GCNVEClusterer
    est = GCNVEClusterer()
    v_used, _, _ = est._load(128)
    v, e = GCNE.from_pretrained(with_gcn_v=True)
    for mine, theirs in ((e, est._gcn_e), (v, v_used)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    and_used, gcn_used, _ = AdaNetsClusterer()._load(128)
    for mine, theirs in ((AND.from_pretrained(), and_used), (AdaGCN.from_pretrained(), gcn_used)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_module_and_clusterer_paths_agree_bit_for_bit_on_synthetic_faces():
    """Without the real data too: GCNGraph + GCNV equals the clusterer's gcn_v_graph + predict_gcn_v, and
    AdaGCN.forward equals the clusterer's embed on the same mean graph (torch.equal, any edge order)."""
    from clusterg.cluster._common import features_and_knn
    from clusterg.data.synth import synth_ms1m
    from clusterg.models.ada_nets import embed, mean_adjacency
    from clusterg.models.gcn_v import gcn_v_graph, predict_gcn_v
    x, _ = synth_ms1m(700, dim=128, seed=3)
    x = (x * 1.4).astype(np.float32)  # not unit-norm, as raw dlib vectors are
    v = GCNV.from_pretrained()
    data = v.graph_transform()(Data(x=torch.from_numpy(x)))
    assert torch.allclose(data.x.norm(dim=1), torch.ones(len(x)), atol=1e-5)  # normalised as the clusterers do
    xn, nb, si = features_and_knn(x, v.config["k"])
    assert np.array_equal(data.x.numpy(), xn) and np.array_equal(data.knn_nbrs.numpy(), nb)
    _, _, agg = gcn_v_graph(xn, nb.shape[1], v.config["th_sim"], knn=(nb, si))
    conf_c, hid_c = predict_gcn_v(v, xn, agg)
    perm = torch.randperm(data.edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        conf_m, hid_m = v(data.x, data.edge_index[:, perm], data.edge_weight[perm])  # shuffled edges
    assert np.array_equal(conf_m.numpy(), conf_c) and torch.equal(hid_m, hid_c)

    g = AdaGCN.from_pretrained()
    adj = mean_adjacency(nb, 5)
    coo = adj.tocoo()
    ei = torch.from_numpy(np.stack([coo.col, coo.row]).astype(np.int64))
    with torch.no_grad():
        z_m = g(torch.from_numpy(xn), ei[:, torch.randperm(ei.shape[1])])
    assert np.array_equal(z_m.numpy(), embed(g, xn, adj))
    assert not torch.equal(GCNGraph(k=5, normalize=False)(Data(x=torch.from_numpy(x))).x, data.x)
