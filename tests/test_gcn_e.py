"""GCN-E: candidate-set batches, model, parent choice, training, checkpoints, clusterer, MS1M script."""
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clusterg._validate import ClustergError
from clusterg.knn import knn_search
from clusterg.linkage.tree_deduction import candidate_sets, nearest_higher
from clusterg.metrics import evaluate
from clusterg.nn.gcn_e import GCNE, candidate_batch
from clusterg.transforms.gcn_graph import knn_adjacency

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def graph(blobs):
    x, y = blobs
    nbrs, sims = knn_search(x, 12)
    conf = np.random.default_rng(3).random(len(x))
    cand, mask = candidate_sets(nbrs, sims, conf)
    return x, y, nbrs, sims, conf, cand, mask


def test_candidate_batch_matches_per_node_subgraphs(graph):
    x, y, nbrs, sims, conf, cand, mask = graph
    adj = knn_adjacency(nbrs, sims)
    centers = np.flatnonzero(mask.sum(1) >= 2)[:7]
    b = candidate_batch(x, adj, centers, cand, mask, y)
    assert b.num_graphs == 7 and b.x.shape[1] == 32
    dense = torch.zeros(len(b.x), len(b.x))
    dense[b.edge_index[1], b.edge_index[0]] = b.edge_weight
    ptr = b.ptr.tolist()
    for i, c in enumerate(centers):
        g = cand[c][mask[c]]
        lo, hi = ptr[i], ptr[i + 1]
        assert b.node_id[lo:hi].tolist() == g.tolist()
        sub = adj[g][:, g].toarray()
        sub = sub / sub.sum(1, keepdims=True)
        np.testing.assert_allclose(dense[lo:hi, lo:hi].numpy(), sub, rtol=1e-5, atol=1e-6)
        # no edge leaves a subgraph: every entry outside the diagonal block is exactly zero
        assert not dense[lo:hi, :lo].any() and not dense[lo:hi, hi:].any()
        np.testing.assert_allclose(b.x[lo:hi].numpy(), x[g] - x[c], rtol=1e-5, atol=1e-6)
        assert b.y[lo:hi].tolist() == (y[g] == y[c]).astype(int).tolist()
    with pytest.raises(ClustergError):
        candidate_batch(x, adj, np.flatnonzero(mask.sum(1) == 0)[:1], cand, mask)
    # center_dot: one more column, the candidate's dot product with its centre
    bd = candidate_batch(x, adj, centers, cand, mask, y, center_dot=True)
    assert bd.x.shape == (len(b.x), 33)
    torch.testing.assert_close(bd.x[:, :32], b.x)
    c0 = centers[0]
    g0 = cand[c0][mask[c0]]
    np.testing.assert_allclose(bd.x[:ptr[1], 32].numpy(), x[g0] @ x[c0], rtol=1e-5, atol=1e-6)


def test_gcne_shapes_and_gradients(graph):
    x, y, nbrs, sims, conf, cand, mask = graph
    b = candidate_batch(x, knn_adjacency(nbrs, sims), np.flatnonzero(mask.sum(1) >= 1)[:20], cand, mask, y)
    model = GCNE(32, dims=(16, 16, 8, 8))
    logits = model(b.x, b.edge_index, b.edge_weight)
    assert logits.shape == (len(b.x), 2)
    torch.nn.functional.cross_entropy(logits, b.y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert len(model.convs) == 4
    with pytest.raises(ClustergError):
        model(b.x[:, :5], b.edge_index, b.edge_weight)


def test_gcn_e_parents(graph):
    from clusterg.train.gcn_e import gcn_e_parents
    x, y, nbrs, sims, conf, cand, mask = graph
    model = GCNE(32, dims=(8, 8, 8, 8))
    # every node ignored: exactly GCN-V's nearest higher-confidence neighbour
    p_all, s_all = gcn_e_parents(model, x, nbrs, sims, conf, ignore_ratio=1.0)
    p_ref, s_ref = nearest_higher(nbrs, sims, conf)
    np.testing.assert_array_equal(p_all, p_ref)
    np.testing.assert_array_equal(s_all, s_ref)
    # GCN-E on everyone: parents stay among the candidates, with their kNN similarity
    parent, psim = gcn_e_parents(model, x, nbrs, sims, conf, ignore_ratio=0.0, batch_graphs=16)
    for i in range(len(x)):
        if parent[i] < 0:
            assert not mask[i].any()
            continue
        assert parent[i] in cand[i][mask[i]] and conf[parent[i]] > conf[i]
        assert psim[i] == sims[i][nbrs[i] == parent[i]][0]
    # constant scores: ties go to the nearest candidate, as in GCN-V
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.head[2].bias.copy_(torch.tensor([0.0, 1.0]))
    parent_tie, _ = gcn_e_parents(model, x, nbrs, sims, conf, ignore_ratio=0.0)
    np.testing.assert_array_equal(parent_tie, p_ref)  # all scores tie: nearest candidate wins


def test_choose_parents_connectivity_check(graph):
    """p_min cuts doubtful links (nearest) or moves on to the next accepted candidate (gate);
    beta raises the score of links GCN-E is sure of."""
    from clusterg.train.gcn_e import choose_parents
    x, y, nbrs, sims, conf, cand, mask = graph
    rng = np.random.default_rng(1)
    prob = np.where(mask, rng.random(mask.shape), np.nan).astype(np.float32)
    p_ref, s_ref = nearest_higher(nbrs, sims, conf)
    p0, s0 = choose_parents(nbrs, sims, conf, cand, mask, prob, 0.0, "nearest")
    np.testing.assert_array_equal(p0, p_ref)
    np.testing.assert_allclose(s0, s_ref)  # no adjustment: plain GCN-V
    p1, s1 = choose_parents(nbrs, sims, conf, cand, mask, prob, 0.0, "nearest", p_min=0.4, p_high=0.8, beta=0.01)
    np.testing.assert_array_equal(p1, p_ref)
    has = mask[:, 0]
    low, high = has & (prob[:, 0] < 0.4), has & (prob[:, 0] >= 0.8)
    assert low.any() and high.any()
    assert np.isneginf(s1[low]).all()
    np.testing.assert_allclose(s1[high], np.minimum(s_ref[high] + 0.01, 1.0), rtol=1e-6)
    mid = has & ~low & ~high
    np.testing.assert_allclose(s1[mid], s_ref[mid])
    # gate: the nearest candidate with p >= p_min, else no parent
    p2, s2 = choose_parents(nbrs, sims, conf, cand, mask, prob, 0.0, "gate", p_min=0.4)
    for i in range(len(x)):
        ok = cand[i][mask[i] & (np.nan_to_num(prob[i], nan=-1) >= 0.4)]
        assert p2[i] == (ok[0] if len(ok) else -1)
        if p2[i] >= 0:
            assert s2[i] == sims[i][nbrs[i] == p2[i]][0]
    assert (p2 != p_ref).any()
    # ignored nodes keep GCN-V's parent whatever GCN-E says
    p3, s3 = choose_parents(nbrs, sims, conf, cand, mask, prob, 1.0, "gate", p_min=0.99, beta=0.5)
    np.testing.assert_array_equal(p3, p_ref)
    np.testing.assert_allclose(s3, s_ref)
    for bad in ({"rule": "best"}, {"rule": "gate", "p_min": 1.5}, {"rule": "nearest", "beta": -0.1}):
        kw = dict(bad)
        with pytest.raises(ClustergError):
            choose_parents(nbrs, sims, conf, cand, mask, prob, 0.0, kw.pop("rule"), **kw)



def test_choose_parents_at_exactly_p_min():
    """A candidate whose GCN-E probability equals p_min is accepted (gate) and its link kept (nearest);
    one just below is refused (values exact in binary)."""
    from clusterg.train.gcn_e import choose_parents
    nbrs = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    sims = np.array([[1.0, 0.75, 0.25], [1.0, 0.75, 0.5], [1.0, 0.5, 0.25]], np.float32)
    conf = np.array([1.0, 0.5, 0.0])
    cand, mask = candidate_sets(nbrs, sims, conf)  # 1: [0]; 2: [1, 0], nearest first
    prob = np.full(mask.shape, np.nan, np.float32)
    prob[1, 0] = 0.5
    prob[2, :2] = [0.25, 0.5]
    parent, score = choose_parents(nbrs, sims, conf, cand, mask, prob, 0.0, "gate", p_min=0.5)
    assert parent.tolist() == [-1, 0, 0]  # 2 passes over 1 (0.25 < 0.5) and takes 0 (0.5 == p_min)
    np.testing.assert_allclose(score[1:], [0.75, 0.25])
    parent, score = choose_parents(nbrs, sims, conf, cand, mask, prob, 0.0, "nearest", p_min=0.5)
    assert parent.tolist() == [-1, 0, 1] and score[1] == 0.75 and np.isneginf(score[2])

def _tiny(tmp_path, blobs, **kw):
    from clusterg.train.gcn_e import train_gcn_e
    from clusterg.train.gcn_v import train_gcn_v
    x, y = blobs
    if not (tmp_path / "v.pt").exists():
        train_gcn_v(x, y, k=10, hidden=16, epochs=20, batch_size=64, out=tmp_path / "v.pt")
    params = dict(k=10, dims=(16, 16, 8, 8), epochs=2, batch_graphs=32, out=tmp_path / "e.pt")
    params.update(kw)
    return train_gcn_e(x, y, tmp_path / "v.pt", **params)


def test_train_round_trip_resume_and_errors(tmp_path, blobs):
    from clusterg.train.gcn_e import load_gcn_ve
    blob = _tiny(tmp_path, blobs, feature="raw")
    v, e, config, saved = load_gcn_ve(tmp_path / "e.pt", in_dim=32)
    for key, value in blob["state_dict"].items():
        mod, name = (v, key[2:]) if key.startswith("v.") else (e, key[2:])
        torch.testing.assert_close(mod.state_dict()[name], value.float())
    assert config["gcn_v"]["hidden"] == 16 and config["feature"] == "raw"
    assert 0.0 <= config["ignore_ratio"] <= 1.0 and -1 <= config["tau"] <= 1
    with pytest.raises(ClustergError, match="32-d"):
        load_gcn_ve(tmp_path / "e.pt", in_dim=128)
    trunc = tmp_path / "t.pt"
    trunc.write_bytes((tmp_path / "e.pt").read_bytes()[:-100])
    with pytest.raises(ClustergError, match="truncated"):
        load_gcn_ve(trunc)
    # resume an interrupted run: same weights as the uninterrupted one
    full = _tiny(tmp_path, blobs, epochs=3, out=tmp_path / "full.pt")
    part = _tiny(tmp_path, blobs, epochs=3, out=tmp_path / "part.pt", time_limit=0)
    assert part["train_state"]["epoch"] == 1
    resumed = _tiny(tmp_path, blobs, epochs=3, out=tmp_path / "res.pt", resume=tmp_path / "part.pt")
    for key, value in full["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value)
    with pytest.raises(ClustergError):
        _tiny(tmp_path, blobs, feature="pixels")
    # similarity as an extra input; the rule chosen on held-aside identities obeys the protocol
    cd = _tiny(tmp_path, blobs, feature="raw", center_dot=True, train_ignore_ratio=0.0, out=tmp_path / "cd.pt")
    _, e_cd, cfg_cd, _ = load_gcn_ve(tmp_path / "cd.pt", in_dim=32)
    assert cfg_cd["center_dot"] and e_cd.in_dim == 33  # raw 32-d features + the similarity
    m = cd["meta"]
    plain = cfg_cd["rule"] == "nearest" and not (cfg_cd["alpha"] or cfg_cd["beta"] or cfg_cd["p_min"])
    assert plain or m["val_fb"] >= m["val_gcn_v_fb"]


def test_gcnve_clusterer_on_faces(tmp_path, faces):
    from clusterg.cluster import make_clusterer
    x, y = faces
    _tiny(tmp_path, faces, feature="gcn", epochs=3)
    est = make_clusterer("gcn-ve", checkpoint=tmp_path / "e.pt")
    lab = est.fit_predict(x)
    assert lab.shape == (400,) and lab.dtype == np.int64 and lab.min() == 0
    assert evaluate(y, lab)["pairwise_fscore"] > 0.9
    assert est.fit(x[:1]).labels_.tolist() == [0]
    assert len(est.fit(x[:5]).labels_) == 5  # k and k_e clamped to N


def test_reproduction_script_on_synthetic_ms1m(tmp_path, capsys):
    from clusterg.data.synth import write_synth
    root = tmp_path / "ms1m"
    write_synth(root, n=400, dim=16, n_ids=40, seed=0, split="part0_train")
    write_synth(root, n=300, dim=16, n_ids=30, seed=1, split="part1_test")
    cfg = tmp_path / "cfg.json"
    cfg.write_text("""{"dim": 16, "train_split": "part0_train", "test_splits": ["part1_test", "part3_test"],
      "gcn_v": {"k": 10, "hidden": 16, "epochs": 2, "batch_size": 128, "val_fraction": 0.0},
      "gcn_e": {"k": 10, "dims": [8, 8, 8, 8], "feature": "gcn", "epochs": 1, "batch_graphs": 32},
      "test": {"gcn_v": {"tau_0": 0.65, "threshold": 0.8, "passes": 2},
               "gcn_ve": {"threshold": 0.8, "ignore_ratio": 0.8}}}""")
    argv = ["reproduce", "--data-root", str(root), "--config", str(cfg), "--work-dir", str(tmp_path / "run"),
            "--results", str(tmp_path / "res.json"), "--quiet"]
    old = sys.argv
    sys.argv = argv
    try:
        with pytest.raises(SystemExit) as ex:
            runpy.run_path(str(REPO / "examples" / "reproduce_ms1m_gcnve.py"), run_name="__main__")
    finally:
        sys.argv = old
    assert ex.value.code == 0
    out = capsys.readouterr().out
    assert "part3_test: not found" in out
    assert "part1_test" in out and "87.14" in out and "87.93" in out  # ours beside the paper's
    import json
    res = json.loads((tmp_path / "res.json").read_text())
    for name in ("gcn-v", "gcn-ve"):
        assert 0.0 <= res["splits"]["part1_test"][name]["fp"] <= 1.0
    assert (tmp_path / "run" / "gcn_v.pt").is_file() and (tmp_path / "run" / "gcn_e.pt").is_file()
    # the paper's config parses and names the five test parts
    paper = json.loads((REPO / "examples" / "configs" / "gcnve_ms1m.json").read_text())
    assert paper["gcn_v"]["k"] == 80 and paper["gcn_e"]["k"] == 160 and len(paper["test_splits"]) == 5


def test_shipped_gcn_ve_on_real_faces(shared_set):
    """Packaged dlib-128 GCN-V + E: beats best-threshold knn-cc on celeba dev, and GCN-V alone on
    both F-scores on celeba dev and on celeba6k (raw dlib vectors, never trained on)."""
    from clusterg.cluster import make_clusterer
    from clusterg.train.checkpoint import packaged_weights
    if packaged_weights("gcn_e_dlib128.pt") is None:
        pytest.fail("clusterg/weights/gcn_e_dlib128.pt is missing")
    x, y = shared_set("celeba", "dev")
    knn = knn_search(x, 80)
    best_fp = best_fb = 0.0
    for t in np.arange(0.93, 0.975, 0.0025):
        e = evaluate(y, make_clusterer("knn-cc", k=20, threshold=float(t)).fit_predict(x, knn=knn))
        best_fp, best_fb = max(best_fp, e["pairwise_fscore"]), max(best_fb, e["bcubed_fscore"])
    ve = evaluate(y, make_clusterer("gcn-ve").fit_predict(x, knn=knn))
    assert ve["pairwise_fscore"] > best_fp + 0.05 and ve["bcubed_fscore"] > best_fb
    v = evaluate(y, make_clusterer("gcn-v").fit_predict(x, knn=knn))
    assert ve["pairwise_fscore"] >= v["pairwise_fscore"] and ve["bcubed_fscore"] >= v["bcubed_fscore"]
    x6, y6 = shared_set("celeba6k", "all")
    knn6 = knn_search(x6, 80)  # rows are L2-normalised inside
    ve6 = evaluate(y6, make_clusterer("gcn-ve").fit_predict(x6, knn=knn6))
    v6 = evaluate(y6, make_clusterer("gcn-v").fit_predict(x6, knn=knn6))
    assert ve6["pairwise_fscore"] >= v6["pairwise_fscore"] and ve6["bcubed_fscore"] >= v6["bcubed_fscore"]


def test_cli_train_and_cluster(tmp_path, faces, capsys):
    from clusterg.cli.main import main
    x, y = faces
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.meta").write_text("\n".join(map(str, y.tolist())) + "\n")
    assert main(["train", "gcn-v", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.meta"), "-o",
                 str(tmp_path / "v.pt"), "--k", "10", "--hidden", "16", "--epochs", "5", "--batch-size", "64",
                 "--quiet"]) == 0
    assert "gcn-v k=10 hidden=16" in capsys.readouterr().out
    assert main(["train", "gcn-e", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.meta"), "-o",
                 str(tmp_path / "e.pt"), "--gcn-v", str(tmp_path / "v.pt"), "--k", "10", "--dims", "8,8,8,8",
                 "--epochs", "1", "--quiet"]) == 0
    assert "gcn-e k=10 dims=[8, 8, 8, 8]" in capsys.readouterr().out
    assert main(["cluster", str(tmp_path / "x.npy"), "--method", "gcn-ve", "--checkpoint", str(tmp_path / "e.pt"),
                 "-o", str(tmp_path / "pred.meta"), "--quiet"]) == 0
    pred = np.loadtxt(tmp_path / "pred.meta", dtype=np.int64)
    assert pred.shape == (400,)
    # wrong-dimension checkpoint, and output over an input, are refused
    np.save(tmp_path / "x16.npy", x[:, :16])
    assert main(["cluster", str(tmp_path / "x16.npy"), "--method", "gcn-v", "--checkpoint", str(tmp_path / "v.pt"),
                 "-o", str(tmp_path / "p2.meta"), "--quiet"]) == 2
    assert "32-d" in capsys.readouterr().err
    assert main(["train", "gcn-v", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.meta"), "-o",
                 str(tmp_path / "y.meta"), "--quiet"]) == 2
    assert "refusing" in capsys.readouterr().err
    assert (tmp_path / "y.meta").read_text().startswith("0\n")  # the input is untouched


def test_packaged_weights_on_a_dozen_faces():
    """The shipped dlib-128 models run on tiny inputs: k and k_e clamp to N, every node may be a peak."""
    from clusterg.cluster.gcn_v import GCNVClusterer, GCNVEClusterer
    rng = np.random.default_rng(5)
    centre = rng.normal(size=128)
    x = (centre + 0.3 * rng.normal(size=(12, 128))).astype(np.float32)  # a narrow cone, like dlib faces
    for est in (GCNVClusterer(), GCNVEClusterer(), GCNVEClusterer(ignore_ratio=1.0), GCNVClusterer(passes=2)):
        lab = est.fit_predict(x)
        assert lab.shape == (12,) and lab.dtype == np.int64 and lab.min() == 0
        assert set(lab.tolist()) == set(range(lab.max() + 1))
    assert GCNVEClusterer().fit_predict(x[:2]).shape == (2,)
    with pytest.raises(ClustergError):
        GCNVEClusterer(ignore_ratio=1.5).fit(x)
    with pytest.raises(ClustergError):
        GCNVClusterer().fit(np.full((12, 128), np.nan, dtype=np.float32))
