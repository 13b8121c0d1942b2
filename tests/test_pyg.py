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


def test_gcn_v_from_pretrained_reproduces_the_clusterer_on_celeba6k(shared_set):
    from clusterg.cluster import GCNVClusterer
    from clusterg.linkage.tree_deduction import nearest_higher, parents_to_labels
    x, _ = shared_set("celeba6k", "all")
    est = GCNVClusterer().fit(x)
    model = GCNV.from_pretrained()
    data = model.graph_transform()(Data(x=torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True))))
    with torch.no_grad():
        conf, _ = model(data.x, data.edge_index, data.edge_weight)
    assert np.allclose(conf.numpy(), est.confidence_, atol=1e-5)
    assert model.config["passes"] == 1
    parent, psim = nearest_higher(data.knn_nbrs.numpy(), data.knn_sims.numpy(), conf.numpy())
    labels = parents_to_labels(parent, psim, model.config["tau_0"])
    assert (labels == est.labels_).all()


def test_ada_gcn_from_pretrained_reproduces_the_embeddings_on_celeba6k(shared_set):
    from clusterg.cluster import AdaNetsClusterer
    x, _ = shared_set("celeba6k", "all")
    est = AdaNetsClusterer().fit(x)
    model = AdaGCN.from_pretrained()
    cfg = model.config
    assert cfg["graph"] == "knn"
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    data = GCNGraph(k=cfg["k"])(Data(x=torch.from_numpy(xn)))  # kNN lists, self first
    data.ss_nbrs, data.ss_sims = data.knn_nbrs, torch.ones_like(data.knn_sims)  # plain kNN graph, topology only
    data = AdaptiveGraph(k=cfg["k_graph"])(data)
    with torch.no_grad():
        z = model(data.x, data.edge_index)
    assert np.allclose(z.numpy(), est.embeddings_, atol=1e-4)


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
