"""Photo libraries: persistent state, incremental assignment, corrections, same-photo cannot-link, confidence."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from clusterg._validate import ClustergError
from clusterg.library import ClusterState, labelling_errors
from clusterg.metrics import pairwise

REPO = Path(__file__).resolve().parents[1]


def _split(n: int, frac: float, seed: int = 0):
    perm = np.random.default_rng(seed).permutation(n)
    m = max(1, int(round(frac * n)))
    return np.sort(perm[m:]), perm[:m]


def _incremental_f(x, y, frac, threshold, **kw):
    base, add = _split(len(x), frac)
    st = ClusterState.build(x[base], method="infomap", threshold=threshold, k=20, **kw)
    before = st.labels.copy()
    res = st.add(x[add])
    after = st.labels
    # existing ids never change, except through a reported merge or a reported re-run
    mapped = before.copy()
    for m in res.merged:
        mapped[np.isin(mapped, m["ids"])] = m["into"]
    changed = np.flatnonzero(after[:len(base)] != mapped)
    if res.rebuilt and not kw.get("keep_ids"):
        assert np.array_equal(changed, res.moved)
    else:
        assert len(changed) == 0 and len(res.moved) == 0
    return pairwise(np.concatenate([y[base], y[add]]), after)[2], res


# ----------------------------------------------------------------------------- incremental vs batch, real faces


@pytest.fixture(scope="module")
def batch_run(shared_set):
    """``batch_run(name, split) -> (x, y, state)``: one infomap batch run (threshold 0.95, k=20) per set."""
    runs = {}

    def get(name, split):
        if (name, split) not in runs:
            x, y = shared_set(name, split)
            runs[name, split] = (x, y, ClusterState.build(x, method="infomap", threshold=0.95, k=20))
        return runs[name, split]

    return get


@pytest.mark.parametrize("name,split", [("celeba", "dev"), ("celeba6k", "all"), ("pins14", "all")])
def test_incremental_stays_near_a_batch_rerun(batch_run, name, split):
    """Infomap (threshold 0.95, k=20): a library built from the rest, then 1 %, 10 %, 50 % of the faces
    added in one call: within 0.02 pairwise F of a batch run on all faces. At 50 % (one face per library
    face, above ``REBUILD_FROM``) the call re-clusters every face and reports the faces it moved."""
    from clusterg.library import REBUILD_FROM
    x, y, full = batch_run(name, split)
    f_batch = pairwise(y, full.labels)[2]
    for frac in (0.01, 0.1, 0.5):
        f_inc, res = _incremental_f(x, y, frac, 0.95)
        assert f_inc >= f_batch - 0.02, (name, frac, f_inc, f_batch)
        m = max(1, int(round(frac * len(x))))
        assert len(res.faces) == m
        assert res.rebuilt == (m >= REBUILD_FROM * (len(x) - m))


@pytest.mark.parametrize("name,split", [("celeba", "dev"), ("celeba6k", "all"), ("pins14", "all")])
def test_keep_ids_large_batch_moves_no_face_and_stays_near_batch(batch_run, name, split):
    """keep_ids at +50 %: a batch run places the new faces, no existing face changes id but through a
    reported merge (checked in _incremental_f), and the result stays within 0.02 of the batch run."""
    x, y, full = batch_run(name, split)
    f_inc, res = _incremental_f(x, y, 0.5, 0.95, keep_ids=True)
    assert res.rebuilt and len(res.moved) == 0
    assert f_inc >= pairwise(y, full.labels)[2] - 0.02, (name, f_inc)


def test_library_doc_table_matches_its_results_file():
    """The quality table of docs/library.rst is the one benchmarks/library_incremental.py wrote."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import library_incremental as li
    res = json.loads((REPO / "docs" / "benchmarks" / "library_incremental.json").read_text())
    assert res["command"] == li.COMMAND
    from clusterg.library import REBUILD_FROM
    assert res["rebuild_from"] == REBUILD_FROM
    doc = (REPO / "docs" / "library.rst").read_text()
    for name, row in res["sets"].items():
        cells = [f"{row['batch_f']:.3f}"] + [f"{row['fracs'][str(fr)][mode]['f']:.3f}"
                                              for fr in li.FRACS for mode in ("default", "votes")]
        line = next((ln for ln in doc.splitlines() if ln.startswith(name + " ") and ln.split()[1][:1].isdigit()),
                    None)
        assert line is not None, f"no row for {name} in docs/library.rst"
        assert line.split()[1:] == cells, (name, line, cells)
        for fr in li.FRACS:
            assert row["fracs"][str(fr)]["default"]["f"] >= row["batch_f"] - 0.02, (name, fr)
    assert all(r["fracs"][fr]["keep-ids"]["moved"] == 0 for r in res["sets"].values() for fr in r["fracs"])
    half = res["sets"]["celeba-dev"]["fracs"]["0.5"]["votes"]
    assert (f"scores {half['library_f']:.3f} on its\nown faces against {half['full_on_library_f']:.3f}" in doc)
    j = {name: f"{r['fracs']['0.5']['joint']['f']:.3f}" for name, r in res["sets"].items()}
    assert (f"gives at +50 % celeba dev {j['celeba-dev']}, celeba6k\n{j['celeba6k']} and pins14 {j['pins14']};"
            in doc)


def test_library_doc_timing_table_matches_its_results_file():
    """The time-per-face table of docs/library.rst is rendered from benchmarks/bench_incremental.py's JSON."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import library_incremental as li
    bench = json.loads(li.TIMING_FILE.read_text())
    assert li.timing_table(bench) in (REPO / "docs" / "library.rst").read_text()
    assert [n for n, _, _ in li.timing_rows(bench)][:2] == [10_000, 100_000]


def test_a_large_batch_is_a_rerun_that_keeps_ids_and_corrections(people):
    x, y = people
    first = y < 6
    st = _build(x[first])
    named = int(st.labels[0])
    st.name(named, "Ada")
    ones = np.flatnonzero(y[first] == 1)
    bo = st.split(ones[:6].tolist(), to="Bo")
    ids_before = st.labels.copy()
    res = st.add(x[~first])  # as many faces as the library holds: a re-run
    assert res.rebuilt and len(res.moved) == 0  # well separated people, corrections replayed: nobody moves
    assert st.names[bo] == "Bo" and set(st.labels[ones[:6]].tolist()) == {bo}
    assert np.array_equal(st.labels[:first.sum()], ids_before) and st.names[named] == "Ada"
    want = np.r_[y[first], y[~first]].copy()
    want[ones[:6]] = 99  # the split is kept: Bo is a person of her own
    assert len(res.new_clusters) == 6 and pairwise(want, st.labels)[2] == 1.0
    small = _build(x[first], rebuild_from=None)
    res2 = small.add(x[~first])
    assert not res2.rebuilt and pairwise(np.r_[y[first], y[~first]], small.labels)[2] == 1.0
    with pytest.raises(ClustergError, match="rebuild_from"):
        _build(x[first], rebuild_from=0)


def test_confidence_flags_errors(batch_run):
    """The 20 % least confident faces hold at least twice the error rate of the rest (celeba dev, pins14)."""
    for name, split in (("celeba", "dev"), ("pins14", "all")):
        x, y, st = batch_run(name, split)
        conf = st.confidence
        assert conf.min() >= 0 and conf.max() <= 1
        err = labelling_errors(y, st.labels)
        order = np.argsort(conf, kind="stable")
        low, rest = order[:len(x) // 5], order[len(x) // 5:]
        assert err[low].mean() >= 2 * err[rest].mean(), (name, err[low].mean(), err[rest].mean())
        q = st.quality()
        assert set(q) == set(np.unique(st.labels).tolist()) and all(0 <= v <= 1 for v in q.values())


def test_labelling_errors_definition():
    gt = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([5, 5, 6, 5, 7, 8])
    # identity 0's majority cluster is 5, cluster 5's majority identity is 0: face 2 split off, face 3
    # merged in; identity 1 ties between clusters 5 and 7 (lower id wins), so face 4 is split off too
    assert labelling_errors(gt, pred).tolist() == [False, False, True, True, True, False]


# ----------------------------------------------------------------------------- synthetic blobs: exact behaviour


@pytest.fixture
def people():
    """12 well separated people x 12 faces in 32-d."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(12, 32))
    y = np.repeat(np.arange(12), 12)
    x = centres[y] + 0.12 * rng.normal(size=(len(y), 32))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def _build(x, **kw):
    kw.setdefault("threshold", 0.8)
    return ClusterState.build(x, method="knn-cc", k=10, **kw)


def test_new_faces_join_their_people_and_unknown_people_get_new_ids(people):
    x, y = people
    old = y < 10
    st = _build(x[old])
    assert pairwise(y[old], st.labels)[2] == 1.0
    ids_before = st.labels.copy()
    res = st.add(x[~old][::2])  # faces of two unseen people
    assert np.array_equal(st.labels[:old.sum()], ids_before)
    assert len(res.new_clusters) == 2 and set(res.labels.tolist()) == set(res.new_clusters)
    assert min(res.new_clusters) >= ids_before.max() + 1
    res2 = st.add(x[~old][1::2])  # more faces of them join the new ids
    assert set(res2.labels.tolist()) == set(res.new_clusters) and not res2.new_clusters
    assert pairwise(np.r_[y[old], y[~old][::2], y[~old][1::2]], st.labels)[2] == 1.0
    empty = st.add(np.zeros((0, 32), np.float32))
    assert len(empty.faces) == 0 and len(st) == len(y)


def test_a_bridge_merges_two_halves_and_says_so(people):
    x, y = people
    a = np.flatnonzero(y == 0)
    # person 0 split by hand into two clusters, everyone else exact
    lab = y.copy()
    lab[a[:6]] = 100
    st = ClusterState.from_labels(x, lab, threshold=0.8, k=10)
    c1, c2 = int(st.labels[a[0]]), int(st.labels[a[6]])
    assert c1 != c2
    rng = np.random.default_rng(5)
    newf = x[a].mean(axis=0) + 0.05 * rng.normal(size=(8, 32))
    res = st.add(newf)
    assert res.merged == [{"into": min(c1, c2), "ids": sorted([c1, c2])}]
    assert len(set(st.labels[a].tolist())) == 1
    # a cannot-link between the halves forbids it; the new faces join one of them
    st2 = ClusterState.from_labels(x, lab, threshold=0.8, k=10)
    st2.cannot_link(c1, c2)
    res2 = st2.add(newf)
    assert res2.merged == [] and set(res2.labels.tolist()) <= {c1, c2}
    assert st2.corrections[-1]["op"] == "cannot-link"


def test_corrections_round_trip_and_survive_incremental_runs(people, tmp_path):
    x, y = people
    lab = y.copy()
    lab[y == 1] = 0  # look-alikes merged: persons 0 and 1 in one cluster
    first = np.r_[np.flatnonzero(y == 0)[:8], np.flatnonzero(y == 1)[:8], np.flatnonzero(y >= 2)]
    rest = np.setdiff1d(np.arange(len(y)), first)
    st = ClusterState.from_labels(x[first], lab[first], threshold=0.8, k=10, method="knn-cc")
    joint = int(st.labels[0])
    ones = np.flatnonzero(y[first] == 1)
    anna = st.split(ones.tolist(), to="Anna")
    assert st.names[anna] == "Anna" and anna != joint
    twos = np.flatnonzero(y[first] == 2)
    st.name(int(st.labels[twos[0]]), "Ben")
    stray = int(np.flatnonzero(y[first] == 3)[0])
    three = int(st.labels[stray])
    moved_to = st.not_this_person(stray)
    assert moved_to != three
    st.save(tmp_path / "s")
    st = ClusterState.load(tmp_path / "s")
    assert [c["op"] for c in st.corrections] == ["split", "name", "not-this-person"]
    assert st.names[anna] == "Anna" and st.cluster("Ben") == int(st.labels[twos[0]])
    # new faces of the split and named people go where the corrections put them
    res = st.add(x[rest])
    for i, f in enumerate(rest):
        want = {0: joint, 1: anna}.get(int(y[f]))
        if want is not None:
            assert res.labels[i] == want, (y[f], res.labels[i])
    assert int(st.labels[stray]) != three  # the cannot-link holds
    assert res.merged == []  # Anna never merges back into person 0
    st.save(tmp_path / "s")
    st = ClusterState.load(tmp_path / "s")
    assert st.names[anna] == "Anna" and int(st.labels[stray]) != three
    # a full re-run keeps the corrections
    kept = st.rebuild()
    assert kept and all(k == v for k, v in kept.items())
    assert st.names.get(int(st.labels[ones[0]])) == "Anna"
    assert len(set(st.labels[ones].tolist())) == 1 and st.labels[ones[0]] != st.labels[0]
    assert st.names.get(int(st.labels[twos[0]])) == "Ben" and int(st.labels[stray]) != three
    anna, joint = int(st.labels[ones[0]]), int(st.labels[0])
    # user merge, kept on disk
    into = st.merge([joint, anna])
    st.save(tmp_path / "s")
    back = ClusterState.load(tmp_path / "s")
    assert back.merges[-1] == {"into": into, "ids": sorted([joint, anna]), "by": "user"}
    assert len(set(back.labels[np.r_[np.flatnonzero(y[first] <= 1)]].tolist())) == 1
    with pytest.raises(ClustergError, match="does not exist"):
        back.cluster(max(joint, anna))
    with pytest.raises(ClustergError, match="at least two"):
        back.merge([into])


def test_same_photo_faces_are_kept_apart_unless_merged(people):
    x, y = people
    # "photos" of two faces of person 0 each (a mirror selfie): groups pair them
    groups = np.full(len(y), -1)
    a = np.flatnonzero(y == 0)
    groups[a[0]] = groups[a[1]] = 7
    st = _build(x, groups=groups)
    assert st.labels[a[0]] != st.labels[a[1]]
    off = _build(x, groups=groups, same_photo=False)
    assert off.labels[a[0]] == off.labels[a[1]]
    # incremental: two new faces of one photo never share a cluster
    b = np.flatnonzero(y == 4)
    st2 = _build(x[y != 4])
    res = st2.add(x[b[:2]], groups=[3, 3])
    assert res.labels[0] != res.labels[1]
    st2.merge([int(res.labels[0]), int(res.labels[1])])
    assert len(set(st2.labels[-2:].tolist())) == 1


def test_state_format_and_refusals(people, tmp_path):
    x, y = people
    st = _build(x, model="dlib-test", keys=[f"f{i}" for i in range(len(x))])
    st.save(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "state.json").read_text())
    assert meta["format"] == "clusterg-state" and meta["version"] == 1 and meta["dim"] == 32
    data = tmp_path / "s" / meta["data"]
    assert sorted(p.name for p in data.iterdir()) == ["confidence.npy", "embeddings.npy", "groups.npy", "keys.npy",
                                                     "labels.npy"]
    for p in data.iterdir():
        np.load(p, allow_pickle=False)  # plain arrays, no pickles
    back = ClusterState.load(tmp_path / "s", model="dlib-test", dim=32)
    assert np.array_equal(back.labels, st.labels) and back.keys() == st.keys()
    assert np.allclose(back.embeddings, st.embeddings) and np.allclose(back.confidence, st.confidence)
    with pytest.raises(ClustergError, match="another model"):
        ClusterState.load(tmp_path / "s", model="other")
    with pytest.raises(ClustergError, match="32-d"):
        ClusterState.load(tmp_path / "s", dim=128)
    with pytest.raises(ClustergError, match="dimension"):
        back.add(np.ones((1, 16), np.float32), keys=["z"])
    with pytest.raises(ClustergError, match="already in the state"):
        back.add(x[:1], keys=["f3"])
    with pytest.raises(ClustergError, match="no clustering state"):
        ClusterState.load(tmp_path / "none")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    with pytest.raises(ClustergError, match="other files"):
        st.save(tmp_path / "junk")
    meta["version"] = 99
    (tmp_path / "s" / "state.json").write_text(json.dumps(meta))
    with pytest.raises(ClustergError, match="version 99"):
        ClusterState.load(tmp_path / "s")


def test_killed_save_leaves_the_previous_state(people, tmp_path):
    """SIGKILL in the middle of writing the arrays: the old state still loads, unchanged."""
    x, y = people
    st = _build(x[y < 10])
    st.save(tmp_path / "s")
    before = (tmp_path / "s" / "state.json").read_bytes()
    np.save(tmp_path / "new.npy", x[y >= 10])
    marker = tmp_path / "writing"
    script = textwrap.dedent(f"""
        import time, numpy as np
        from pathlib import Path
        import clusterg.library.state as S
        real = S._write_array
        def slow(path, arr):
            real(path, arr)
            if path.name == "labels.npy":
                Path({str(marker)!r}).write_text("x")
                time.sleep(60)
        S._write_array = slow
        st = S.ClusterState.load({str(tmp_path / "s")!r})
        st.add(np.load({str(tmp_path / "new.npy")!r}))
        st.merge(sorted(st.sizes())[:2])
        st.save({str(tmp_path / "s")!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        t0 = time.monotonic()
        while not marker.exists():
            assert proc.poll() is None, "the writer ended early"
            assert time.monotonic() - t0 < 60
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert (tmp_path / "s" / "state.json").read_bytes() == before
    back = ClusterState.load(tmp_path / "s")
    assert len(back) == int((y < 10).sum()) and np.array_equal(back.labels, st.labels) and not back.merges
    back.save(tmp_path / "s")  # the next save clears what the killed run left
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["data-000002", "state.json"]


# ----------------------------------------------------------------------------- the 48 photos


dlib = pytest.importorskip("dlib", reason='the faces extra is not installed (pip install "clusterg[faces]")')


@pytest.fixture(scope="module")
def photo_set(shared_data, tmp_path_factory):
    """The 48 photos, their identities, and an embedding cache made once for this module."""
    root = shared_data / "face-images"
    if not (root / "input.json").is_file():
        pytest.skip(f"{root}/input.json not present")
    items = json.loads((root / "input.json").read_text())
    truth = json.loads((root / "identities.json").read_text())
    work = tmp_path_factory.mktemp("photos")
    from clusterg.images import cluster_images
    inp = work / "all.json"
    inp.write_text(json.dumps([{"img_path": str((root / it["img_path"]).resolve())} for it in items]))
    cache = work / "cache.npz"
    cluster_images(inp, work / "warm.json", cache=cache, quiet=True, method="knn-cc", threshold=0.95)
    return root, items, truth, cache


def _entries(root, items, idx):
    return [{"img_path": str((root / items[i]["img_path"]).resolve())} for i in idx]


@pytest.mark.parametrize("frac", [0.01, 0.1, 0.5])  # 1, 5 and 24 new photos on the 48
def test_photos_incremental_state_and_no_op_rerun(photo_set, tmp_path, monkeypatch, frac):
    from clusterg.images import cluster_images
    from clusterg.images import pipeline as pl
    root, items, truth, cache = photo_set
    n = len(items)
    base, add = _split(n, frac, seed=3)
    (tmp_path / "a.json").write_text(json.dumps(_entries(root, items, base)))
    (tmp_path / "b.json").write_text(json.dumps(_entries(root, items, np.arange(n))))
    kw = dict(method="infomap", cache=cache, quiet=True)
    batch = cluster_images(tmp_path / "b.json", tmp_path / "batch.json", **kw)
    f_batch = pairwise([truth[Path(o["img_path"]).relative_to(root.resolve()).as_posix()] for o in batch],
                       [o["cluster_id"] for o in batch])[2]
    st = tmp_path / "state"
    first = cluster_images(tmp_path / "a.json", tmp_path / "o1.json", state=st, **kw)
    calls = []
    real = pl._embed_photo
    monkeypatch.setattr(pl, "_embed_photo", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    second = cluster_images(tmp_path / "b.json", tmp_path / "o2.json", state=st, method="infomap",
                            cache=False, quiet=True)
    assert len(calls) == len(add)  # only the new photos are embedded (no cache here)
    ids1 = {o["img_path"]: o["cluster_id"] for o in first}
    for o in second:
        if o["img_path"] in ids1:
            assert o["cluster_id"] == ids1[o["img_path"]] or "merged_from" in o
        assert 0 <= o["confidence"] <= 1 and 0 <= o["cluster_quality"] <= 1
    truth_of = [truth[Path(o["img_path"]).relative_to(root.resolve()).as_posix()] for o in second]
    f_inc = pairwise(truth_of, [o["cluster_id"] for o in second])[2]
    # the old photos keep their ids, so the first run's own errors stay (Infomap on 43 or 24 photos
    # is not Infomap on 48): adding photos may cost at most 0.02 against the lower of the two
    f_first = pairwise([truth[Path(o["img_path"]).relative_to(root.resolve()).as_posix()] for o in first],
                       [o["cluster_id"] for o in first])[2]
    assert f_inc >= min(f_batch, f_first) - 0.02, (f_inc, f_batch, f_first)
    saved = (st / "state.json").read_text()
    calls.clear()
    third = cluster_images(tmp_path / "b.json", tmp_path / "o3.json", state=st, method="infomap",
                           cache=False, quiet=True)
    assert calls == [] and third == second
    assert json.loads((st / "state.json").read_text())["n_faces"] == json.loads(saved)["n_faces"]
    # a state from another model is refused
    from clusterg.images import FaceEmbedder
    with pytest.raises(ClustergError, match="another model"):
        cluster_images(tmp_path / "b.json", tmp_path / "o4.json", state=st, embedder=FaceEmbedder(upsample=0),
                       cache=False, quiet=True)


def test_photos_keep_ids_flag_is_kept_in_the_state(photo_set, tmp_path):
    """``clusterg images --state DIR --keep-ids``: the state keeps the setting; a later run without the flag
    adding as many photos as the state holds (a large batch) moves no earlier photo to another id."""
    from clusterg.cli.main import main
    root, items, truth, cache = photo_set
    n = len(items)
    base, _ = _split(n, 0.5, seed=3)
    (tmp_path / "a.json").write_text(json.dumps(_entries(root, items, base)))
    (tmp_path / "b.json").write_text(json.dumps(_entries(root, items, np.arange(n))))
    st = tmp_path / "state"
    common = ["--method", "infomap", "--cache", str(cache), "--quiet"]
    assert main(["images", str(tmp_path / "a.json"), "-o", str(tmp_path / "o1.json"), "--state", str(st),
                 "--keep-ids", *common]) == 0
    assert json.loads((st / "state.json").read_text())["keep_ids"] is True
    assert main(["images", str(tmp_path / "b.json"), "-o", str(tmp_path / "o2.json"), "--state", str(st),
                 *common]) == 0
    first = {o["img_path"]: o["cluster_id"] for o in json.loads((tmp_path / "o1.json").read_text())}
    second = json.loads((tmp_path / "o2.json").read_text())
    assert len(second) == n and json.loads((st / "state.json").read_text())["keep_ids"] is True
    for o in second:
        if o["img_path"] in first:
            assert o["cluster_id"] == first[o["img_path"]] or "merged_from" in o


def test_people_cli_and_contact_sheets(photo_set, tmp_path, capsys):
    from clusterg.cli.main import main
    root, items, truth, cache = photo_set
    by = {}
    for i, it in enumerate(items):
        by.setdefault(truth[it["img_path"]], []).append(i)
    a, b = sorted(by)[:2]
    (tmp_path / "in.json").write_text(json.dumps(_entries(root, items, by[a][:3] + by[b][:3])))
    st = tmp_path / "state"
    args = ["images", str(tmp_path / "in.json"), "-o", str(tmp_path / "o.json"), "--state", str(st),
            "--cache", str(cache), "--method", "knn-cc", "--threshold", "0.95", "--quiet"]
    assert main(args + ["--export-folders", str(tmp_path / "review")]) == 0
    out = json.loads((tmp_path / "o.json").read_text())
    sheets = sorted((tmp_path / "review").glob("cluster_*/_contact_sheet.png"))
    assert len(sheets) == len({o["cluster_id"] for o in out})
    from PIL import Image
    assert Image.open(sheets[0]).size[0] > 0
    ca, cb = out[0]["cluster_id"], out[3]["cluster_id"]
    if ca == cb:  # knn-cc joined them: split b's photos off
        assert main(["people", "split", "--state", str(st), *[o["img_path"] for o in out[3:]], "--to", "B",
                     "--quiet"]) == 0
    assert main(["people", "name", "--state", str(st), str(ca), "Person A", "--quiet"]) == 0
    assert main(["images", *args[1:]]) == 0
    again = json.loads((tmp_path / "o.json").read_text())
    named = [o for o in again if o["cluster_id"] == ca]
    assert named and all(o.get("person_name") == "Person A" for o in named)
    assert all("person_name" not in o for o in again if o["cluster_id"] != ca)
    assert len({o["cluster_id"] for o in again[:3]} & {o["cluster_id"] for o in again[3:]}) == 0
    capsys.readouterr()
    assert main(["people", "show", "--state", str(st), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert any(p["name"] == "Person A" for p in shown["people"]) and shown["corrections"]
    assert main(["people", "merge", "--state", str(st), "999999", str(ca), "--quiet"]) == 2


def test_two_faces_of_one_collage_never_share_a_cluster(photo_set, tmp_path):
    from PIL import Image
    from clusterg.images import cluster_images
    root, items, truth, cache = photo_set
    p = root / items[0]["img_path"]
    im = Image.open(p).convert("RGB")
    canvas = Image.new("RGB", (2 * im.width, im.height))
    canvas.paste(im, (0, 0))
    canvas.paste(im.transpose(Image.FLIP_LEFT_RIGHT), (im.width, 0))  # a mirror: one person twice
    canvas.save(tmp_path / "mirror.jpg", quality=95)
    same = [i for i, it in enumerate(items) if truth[it["img_path"]] == truth[items[0]["img_path"]]][1:4]
    entries = [{"img_path": str(tmp_path / "mirror.jpg")}] + _entries(root, items, same)
    (tmp_path / "in.json").write_text(json.dumps(entries))
    kw = dict(all_faces=True, method="knn-cc", threshold=0.9, quiet=True, cache=tmp_path / "c.npz")
    out = cluster_images(tmp_path / "in.json", tmp_path / "o.json", **kw)
    faces = out[0]["faces"]
    assert len(faces) == 2 and faces[0]["cluster_id"] != faces[1]["cluster_id"]
    off = cluster_images(tmp_path / "in.json", tmp_path / "o2.json", same_photo=False, **kw)
    assert off[0]["faces"][0]["cluster_id"] == off[0]["faces"][1]["cluster_id"]  # a mirror is one person
    st = tmp_path / "state"
    inc = cluster_images(tmp_path / "in.json", tmp_path / "o3.json", state=st, **kw)
    assert inc[0]["faces"][0]["cluster_id"] != inc[0]["faces"][1]["cluster_id"]


def test_output_names_the_earlier_id_of_faces_a_rerun_moved():
    """A face a large-batch re-run moved carries ``moved_from`` (its earlier id) in the output JSON."""
    from clusterg.library.images import PhotoRun, output_extras
    run = PhotoRun(labels=np.array([0, 1, 1]), confidence=np.ones(3, np.float32), quality={0: 1.0, 1: 0.5},
                   names={}, method="infomap", moved_from={2: 4})
    assert output_extras(run, 2)["moved_from"] == 4
    assert "moved_from" not in output_extras(run, 0) and "moved_from" not in output_extras(run, 1)


def test_keep_ids_large_batch_merges_what_the_batch_joins_and_never_splits(people, tmp_path):
    """keep_ids: one batch run places a large batch: two library clusters of one person merge (reported), a library
    cluster the batch run would split keeps its id, and no other existing face changes id."""
    x, y = people
    lib = np.flatnonzero(y < 8)
    lab = np.where(y[lib] == 2, 1, y[lib])  # persons 1 and 2: one library cluster
    lab[np.flatnonzero(y[lib] == 0)[:6]] = 100  # person 0: two library clusters
    st = ClusterState.from_labels(x[lib], lab, threshold=0.8, k=10, method="knn-cc", params={"threshold": 0.8, "k": 10},
                                  keep_ids=True)
    before = st.labels.copy()
    p0 = before[y[lib] == 0]
    assert len(set(p0.tolist())) == 2  # person 0: two library clusters
    assert len(set(before[np.isin(y[lib], [1, 2])].tolist())) == 1  # persons 1 and 2: one library cluster
    res = st.add(x[np.flatnonzero(y >= 8)])  # 48 faces to 96: one batch run places them
    assert res.rebuilt
    assert [sorted(m["ids"]) for m in res.merged] == [sorted(set(p0.tolist()))]
    into = res.merged[0]["into"]
    expect = np.where(np.isin(before, p0), into, before)
    assert np.array_equal(st.labels[:len(lib)], expect)  # only the merge changed existing ids; 1 and 2 stay one
    assert len(res.new_clusters) == 4 and pairwise(y[y >= 8], res.labels)[2] == 1.0
    assert len(res.moved) == 0
    st.save(tmp_path / "s")
    assert ClusterState.load(tmp_path / "s").keep_ids is True
    with pytest.raises(ClustergError, match="keep_ids"):
        ClusterState(4, keep_ids="yes")
