"""Property-based fuzzing (hypothesis) of metrics, linkage, kNN I/O and label/feature loading.

Every test is derandomised (the same examples on every run, so CI is reproducible) and has its
example count in ``settings(max_examples=...)``: 1,200 generated cases in all (metrics 300, linkage 250, kNN I/O 250, labels and features 400), about 20 s on one core.
The properties: results equal a brute-force reference, and bad input of any shape raises
:class:`clusterg.ClustergError` (never another exception, never a silent wrong answer).
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from clusterg import ClustergError  # noqa: E402

FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])

labels = st.lists(st.integers(0, 5), min_size=1, max_size=40)


def _pairs(y):
    n = len(y)
    return {(i, j) for i, j in itertools.permutations(range(n), 2) if y[i] == y[j]}


# ----------------------------------------------------------------------------- metrics (300 examples)
@settings(max_examples=150, **FUZZ)
@given(st.data())
def test_pairwise_and_bcubed_equal_brute_force(data):
    from clusterg.metrics import bcubed, pairwise
    gt = data.draw(labels)
    pred = data.draw(st.lists(st.integers(-1, 5), min_size=len(gt), max_size=len(gt)))
    # -1 = unassigned: each becomes its own cluster
    p2 = [v if v >= 0 else 100 + i for i, v in enumerate(pred)]
    gp, pp = _pairs(gt), _pairs(p2)
    tp = len(gp & pp)
    p, r, f = pairwise(gt, pred)
    assert p == pytest.approx(1.0 if not pp else tp / len(pp))
    assert r == pytest.approx(1.0 if not gp else tp / len(gp))
    assert 0.0 <= f <= 1.0
    n = len(gt)
    bp = np.mean([sum(gt[j] == gt[i] for j in range(n) if p2[j] == p2[i]) / sum(p2[j] == p2[i] for j in range(n))
                  for i in range(n)])
    br = np.mean([sum(p2[j] == p2[i] for j in range(n) if gt[j] == gt[i]) / sum(gt[j] == gt[i] for j in range(n))
                  for i in range(n)])
    assert bcubed(gt, pred)[:2] == pytest.approx((bp, br))


@settings(max_examples=150, **FUZZ)
@given(st.data())
def test_metrics_invariant_to_renaming_and_symmetric(data):
    from clusterg.metrics import evaluate, nmi
    gt = np.array(data.draw(labels))
    pred = np.array(data.draw(st.lists(st.integers(0, 5), min_size=len(gt), max_size=len(gt))))
    perm = np.array(data.draw(st.permutations(range(6))))
    a, b = evaluate(gt, pred), evaluate(perm[gt], perm[pred] + 1000)
    for key in ("pairwise_fscore", "bcubed_fscore", "nmi"):
        assert a[key] == pytest.approx(b[key])
    assert nmi(gt, pred) == pytest.approx(nmi(pred, gt))
    assert a["pairwise_precision"] == pytest.approx(evaluate(pred, gt)["pairwise_recall"])


# ----------------------------------------------------------------------------- linkage (250 examples)
@settings(max_examples=150, **FUZZ)
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))))
def test_connected_components_equal_union_find(case):
    from clusterg.linkage.components import UnionFind, connected_components, relabel
    n, edges = case
    src = [a for a, _ in edges]
    dst = [b for _, b in edges]
    got = connected_components(n, src, dst)
    uf = UnionFind(n)
    uf.union_many(src, dst)
    assert np.array_equal(got, uf.labels())
    assert np.array_equal(got, relabel(got))  # clusters numbered by first member
    for a, b in edges:
        assert got[a] == got[b]


@settings(max_examples=100, **FUZZ)
@given(st.one_of(st.integers(-3, 5), st.floats(allow_nan=True), st.text(max_size=3)),
       st.lists(st.one_of(st.integers(-2 ** 65, 2 ** 65), st.floats(allow_nan=True)), max_size=4),
       st.lists(st.integers(-10, 10), max_size=4))
def test_connected_components_bad_arguments_raise_clusterg_error(n, src, dst):
    from clusterg.linkage.components import connected_components
    try:
        src_a = np.array(src, dtype=object if any(abs(v) >= 2 ** 63 for v in src if isinstance(v, int)) else None)
    except OverflowError:
        src_a = np.array(src, dtype=object)
    try:
        out = connected_components(n, src_a, dst)
    except ClustergError:
        return
    # accepted: then it is a valid labelling of n nodes with every edge inside one cluster
    assert len(out) == n
    for a, b in zip(np.asarray(src_a, dtype=np.int64), dst):
        assert out[a] == out[b]


# ----------------------------------------------------------------------------- kNN I/O (250 examples)
@settings(max_examples=100, **FUZZ)
@given(st.integers(2, 30), st.integers(1, 6), st.integers(0, 10 ** 6))
def test_knn_round_trip(tmp_path_factory, n, k, seed):
    from clusterg.knn import knn_search, load_knn, save_knn
    k = min(k, n)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    if n > 3:
        x[1:3] = x[0]  # duplicates
    nbrs, sims = knn_search(x, k)
    assert np.array_equal(nbrs[:, 0], np.arange(n))
    p = save_knn(tmp_path_factory.mktemp("k") / "k.npz", nbrs, sims)
    nb2, s2 = load_knn(p, n=n)
    assert np.array_equal(nb2, nbrs) and np.allclose(s2, sims, atol=1e-6)


@settings(max_examples=150, **FUZZ)
@given(st.integers(1, 8), st.integers(1, 4), st.sampled_from([np.float32, np.float64]),
       st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 1), st.integers(0, 3),
                          st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 12))),
                max_size=4),
       st.sampled_from(["ok", "2d", "transposed"]))
def test_load_knn_corrupted_files_only_clusterg_error(tmp_path_factory, n, k, dtype, edits, shape):
    from clusterg.knn import load_knn
    k = min(k, n)
    data = np.empty((n, 2, k), dtype=dtype)
    data[:, 0, :] = (np.arange(n)[:, None] + np.arange(k)[None, :]) % n
    data[:, 1, :] = np.linspace(0, 0.5, k)[None, :]
    for row, field, col, value in edits:
        data[row % n, field, col % k] = value
    if shape == "2d":
        data = data.reshape(n, -1)
    elif shape == "transposed":
        data = data.transpose(2, 1, 0)
    p = tmp_path_factory.mktemp("k") / "k.npz"
    np.savez(p, data=data)
    try:
        nbrs, sims = load_knn(p)
    except ClustergError:
        return
    rows = nbrs.shape[0]
    assert (nbrs >= 0).all() and (nbrs < rows).all() and np.isfinite(sims).all()
    assert (sims >= -1.001).all() and (sims <= 1.001).all()
    assert all(len(set(r)) == len(r) for r in nbrs.tolist())


# ----------------------------------------------------------------------------- labels and features (400)
@settings(max_examples=150, **FUZZ)
@given(st.text(alphabet="0123456789-+ \n\t.ex", max_size=60))
def test_read_meta_text_int64_or_clusterg_error(tmp_path_factory, text):
    from clusterg.data.io import read_meta
    p = tmp_path_factory.mktemp("m") / "y.meta"
    p.write_text(text)
    try:
        y = read_meta(p)
    except ClustergError:
        return
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    assert y.dtype == np.int64 and y.tolist() == [int(v) for v in lines]


@settings(max_examples=100, **FUZZ)
@given(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=1, max_size=20))
def test_write_read_meta_round_trip(tmp_path_factory, y):
    from clusterg.data.io import read_meta, write_meta
    p = write_meta(tmp_path_factory.mktemp("m") / "y.meta", np.array(y, dtype=np.int64))
    assert read_meta(p).tolist() == y


@settings(max_examples=100, **FUZZ)
@given(st.binary(max_size=200), st.sampled_from([".bin", ".npy", ".npz"]), st.integers(1, 8))
def test_load_features_random_bytes_only_clusterg_error(tmp_path_factory, raw, ext, dim):
    from clusterg.data.io import load_features
    folder = tmp_path_factory.mktemp("f")
    p = folder / f"x{ext}"
    p.write_bytes(raw)
    try:
        x = load_features(p, dim=dim if ext == ".bin" else None)
    except ClustergError:
        return
    assert x.ndim == 2 and x.dtype == np.float32 and np.isfinite(x).all()
    if ext == ".bin":
        assert x.shape[1] == dim and x.size * 4 == len(raw)


@settings(max_examples=50, **FUZZ)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 5)),
                  elements=st.floats(-2.0 ** 99, 2.0 ** 99, allow_nan=False, width=32)))
def test_write_bin_round_trip(tmp_path_factory, x):
    from clusterg.data.io import read_bin, sidecar_path, write_bin
    p = write_bin(tmp_path_factory.mktemp("b") / "x.bin", x)
    assert json.loads(sidecar_path(p).read_text())["dim"] == x.shape[1]
    assert np.array_equal(np.asarray(read_bin(p)), x)

