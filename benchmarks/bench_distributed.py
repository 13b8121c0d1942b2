"""The Ray engine on one machine: time per stage and memory with 1, 2 and 4 workers, against the single-node run.

As a script (writes the results file docs/scale-out.rst reads)::

    python benchmarks/bench_distributed.py -o docs/benchmarks/distributed.json            # N = 20000 (default)
    python benchmarks/bench_distributed.py --n 584000 --knn-method ivf -o docs/benchmarks/distributed_584k.json
    python benchmarks/bench_distributed.py --equality 200000 -o /tmp/eq200k.json        # labels vs single node
    python benchmarks/bench_distributed.py --equality-auto 200000 -o docs/benchmarks/distributed_auto_200k.json

For each worker count ``w`` a fresh local Ray is started with ``num_cpus=w`` and ``w`` shards. Stages:
``knn`` (exact flat kNN, k = 20: ``put`` the shards in the object store, build the ``index`` actors,
``search`` every query shard against every index shard), ``gcn_v`` (GCN-V confidences per node shard with its
halo) and ``linkage`` (per-shard thresholded edges, global union-find). Memory: the object store's share
of the features (bytes put) and the largest resident set of an index actor (psutil, sampled after every
query shard). Per-worker rates (query-index pairs a second, GCN-V nodes a second) are what
docs/scale-out.rst scales from. ``--equality N`` instead checks that knn-cc and gcn-v labels on a
synthetic set of N faces are identical to the single-node ones with 1, 2 and 4 shards;
``--equality-auto N`` does the same for the default pipeline (``auto``: Ada-NETS, both kNN stages on Ray).

Under pytest (``bench_*.py`` is collected) one tiny case runs with 2 workers and checks equality.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

N = int(os.environ.get("CLUSTERG_BENCH_DIST_N", "20000"))
K = 20


def _rss(pids) -> int:
    try:
        import psutil
        return max(psutil.Process(p).memory_info().rss for p in pids)
    except Exception:
        return -1


def _recall(x: np.ndarray, nbrs: np.ndarray, sample: int = 2000, seed: int = 0) -> float:
    """recall@K of ``nbrs`` on a fixed-seed sample of rows against their exact K-NN (float64 products)."""
    rows = np.sort(np.random.default_rng(seed).choice(len(x), min(sample, len(x)), replace=False))
    xs = x.astype(np.float64)
    hit = 0
    for a in range(0, len(rows), 250):
        r = rows[a:a + 250]
        sims = xs[r] @ xs.T
        top = np.argpartition(-sims, K - 1, axis=1)[:, :K]
        hit += sum(len(np.intersect1d(top[i], nbrs[q])) for i, q in enumerate(r))
    return hit / (len(rows) * K)


def run_workers(x: np.ndarray, workers: int, method: str = "flat") -> dict:
    import ray

    from clusterg.distributed.engine import get_engine
    from clusterg.distributed.gcn_v import ray_gcn_v_confidence
    from clusterg.distributed.knn import ray_knn_search
    from clusterg.distributed.linkage import ray_threshold_components
    from clusterg.models.checkpoint import packaged_weights
    from clusterg.models.gcn_v import load_gcn_v
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        eng = get_engine(shards=workers)
        model, cfg, _ = load_gcn_v(packaged_weights("gcn_v_dlib128.pt"), in_dim=x.shape[1])
        t0 = time.perf_counter()  # warm-up on 2000 rows: starts the worker processes and their imports
        wn, ws = ray_knn_search(x[:2000], K, method=method, engine=eng, quiet=True)
        ray_gcn_v_confidence(model, x[:2000], wn, ws, cfg.get("th_sim", 0.0), engine=eng)
        ray_threshold_components(wn, ws, 0.9, engine=eng)
        warm_s = time.perf_counter() - t0
        st: dict = {}
        rss = []

        def sample(q, actors):
            rss.append(_rss(ray.get([a.pid.remote() for a in actors])))

        t0 = time.perf_counter()
        nbrs, sims = ray_knn_search(x, K, method=method, engine=eng, stats=st, callback=sample, quiet=True)
        knn_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        conf, _ = ray_gcn_v_confidence(model, x, nbrs, sims, cfg.get("th_sim", 0.0), engine=eng)
        gcn_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lab = ray_threshold_components(nbrs, sims, 0.9, engine=eng)
        link_s = time.perf_counter() - t0
    finally:
        ray.shutdown()
    n = len(x)
    return {"workers": workers, "shards": workers, "warmup_s": warm_s, "knn_total_s": knn_s, "knn_put_s": st["put_s"],
            "knn_index_s": st["index_s"], "knn_search_s": st["search_s"], "gcn_v_s": gcn_s, "linkage_s": link_s,
            "object_store_bytes": st["object_store_bytes"], "max_actor_rss_bytes": max(rss) if rss else -1,
            "pairs_per_s_per_worker": n * n / st["search_s"] / workers if method == "flat" else None,
            "queries_per_s_per_worker": n / st["search_s"] / workers,
            "gcn_v_nodes_per_s_per_worker": n / gcn_s / workers, "linkage_edges_per_s": n * K / link_s,
            "_labels": lab, "_nbrs": nbrs, "_conf": conf}


def single_node(x: np.ndarray, method: str = "flat") -> dict:
    from clusterg.knn import knn_search
    from clusterg.linkage import connected_components, threshold_edges
    from clusterg.models.checkpoint import packaged_weights
    from clusterg.models.gcn_v import gcn_v_graph, load_gcn_v, predict_gcn_v
    t0 = time.perf_counter()
    nbrs, sims = knn_search(x, K, method=method, quiet=True)
    knn_s = time.perf_counter() - t0
    model, cfg, _ = load_gcn_v(packaged_weights("gcn_v_dlib128.pt"), in_dim=x.shape[1])
    t0 = time.perf_counter()
    conf, _ = predict_gcn_v(model, x, gcn_v_graph(x, K, cfg.get("th_sim", 0.0), knn=(nbrs, sims))[2])
    gcn_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lab = connected_components(len(x), *threshold_edges(nbrs, sims, 0.9))
    return {"knn_s": knn_s, "gcn_v_s": gcn_s, "linkage_s": time.perf_counter() - t0, "_labels": lab, "_nbrs": nbrs,
            "_conf": conf}


def plan(res: dict, n: float = 1e8, d: int = 256, k: int = 80, cores: int = 32, link_gbps: float = 10.0) -> dict:
    """The 10^8 x 256-d plan of docs/scale-out.rst, from the measured per-worker rates of ``res``.

    Assumptions (stated in the doc): exact search costs ``D`` per pair, so the 128-d pair rate halves at
    256-d; GCN-V's rate scales as 128 / D; one index shard per machine using its ``cores`` (the rate of the
    1-worker run times ``cores``); the network moves ``link_gbps`` Gbit/s into each machine.
    """
    one = next(r for r in res["ray"] if r["workers"] == 1)
    pair_rate = one["pairs_per_s_per_worker"] * 128 / d
    node_rate = one["gcn_v_nodes_per_s_per_worker"] * 128 / d
    bw = link_gbps * 1e9 / 8
    rows = []
    for m in (16, 64, 256):
        kc = k + 8
        knn_compute = n * n / (pair_rate * cores * m)
        query_in = n * d * 4  # every machine receives every query shard once
        cand_out = n * kc * 12  # each machine returns kc (id, sim) per query row
        halo_in = min(n, n / m * k) * d * 4  # upper bound: every neighbour on another machine
        rows.append({
            "machines": m, "shards": m, "threads_per_shard": cores,
            "features_per_machine_gb": n * d * 4 / m / 1e9,
            "index_shard_gb": n * d * 4 / m / 1e9,
            "driver_knn_gb": n * k * 12 / 1e9,
            "knn_compute_h": knn_compute / 3600,
            "knn_network_in_per_machine_gb": query_in / 1e9,
            "knn_network_out_per_machine_gb": cand_out / 1e9,
            "knn_network_h": (query_in + cand_out) / bw / 3600,
            "reverse_edges_per_machine_gb": n / m * k * 12 / 1e9,
            "gcn_v_halo_in_per_machine_gb_max": halo_in / 1e9,
            "gcn_v_compute_h": n / (node_rate * cores * m) / 3600,
            "linkage_driver_gb": n * 8 / 1e9 + n * 16 / 1e9,
        })
    return {"n": n, "dim": d, "k": k, "cores_per_machine": cores, "link_gbps": link_gbps,
            "pair_rate_per_core_at_dim": pair_rate, "gcn_v_nodes_per_s_per_core_at_dim": node_rate, "rows": rows}


def bench(n: int, workers=(1, 2, 4), method: str = "flat") -> dict:
    """Single node and Ray with each worker count; ``method`` is the kNN search (``flat``: exact, so kNN
    lists and labels must be identical; ``ivf``/``hnsw``: per-shard indexes, compared by recall@K on a
    2,000-row sample, as the issue asks of approximate search)."""
    from clusterg._validate import check_features
    from clusterg.data.synth import synth_ms1m
    x = check_features(synth_ms1m(n, dim=128, seed=0)[0], normalize=True)
    base = single_node(x, method)
    if method != "flat":
        base["recall_at_k"] = _recall(x, base["_nbrs"])
    print(json.dumps({k: v for k, v in base.items() if not k.startswith("_")}), flush=True)
    runs = []
    for w in workers:
        r = run_workers(x, w, method)
        if method != "flat":
            r["recall_at_k"] = _recall(x, r["_nbrs"])
        r["knn_identical"] = bool(np.array_equal(r.pop("_nbrs"), base["_nbrs"]))
        r["labels_identical"] = bool(np.array_equal(r.pop("_labels"), base["_labels"]))
        r["gcn_v_max_abs_diff"] = float(np.abs(r.pop("_conf") - base["_conf"]).max())
        runs.append(r)
        print(json.dumps(r), flush=True)
    for key in ("_labels", "_nbrs", "_conf"):
        base.pop(key)
    res = {"n": n, "dim": 128, "k": K, "knn_method": method, "data": "synth_ms1m(n, dim=128, seed=0)",
           "single_node": base, "ray": runs}
    if method == "flat" and any(r["workers"] == 1 for r in runs):
        res["plan_1e8x256"] = plan(res)
    return res


def equality(n: int) -> dict:
    """Labels of knn-cc and gcn-v with ``engine="ray"`` (1, 2, 4 shards) against the single-node run.

    The kNN graph (k = 20, what both methods use by default) is searched once per shard count with
    :func:`~clusterg.distributed.ray_knn_search` and compared with :func:`~clusterg.knn.knn_search`; the
    estimators then get that graph (``knn=``) and run their inference and linkage on Ray.
    """
    import ray

    from clusterg.cluster import make_clusterer
    from clusterg.data.synth import synth_ms1m
    from clusterg.distributed import ray_knn_search
    from clusterg.knn import knn_search
    x = synth_ms1m(n, dim=128, seed=0)[0]
    out = {"n": n, "k": K, "data": "synth_ms1m(n, dim=128, seed=0)", "knn": {}, "methods": {}}
    t0 = time.perf_counter()
    ref_knn = knn_search(x, K, quiet=True)
    out["knn"]["single_node_s"] = time.perf_counter() - t0
    ref = {}
    for method in ("knn-cc", "gcn-v"):
        t0 = time.perf_counter()
        ref[method] = make_clusterer(method).fit_predict(x, knn=ref_knn)
        out["methods"][method] = {"single_node_s": time.perf_counter() - t0,
                                  "clusters": int(ref[method].max() + 1)}
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        for s in (1, 2, 4):
            t0 = time.perf_counter()
            knn = ray_knn_search(x, K, shards=s, quiet=True)
            out["knn"][f"shards_{s}"] = {"identical": bool(np.array_equal(knn[0], ref_knn[0])
                                                           and np.array_equal(knn[1], ref_knn[1])),
                                         "s": time.perf_counter() - t0}
            for method in ("knn-cc", "gcn-v"):
                t0 = time.perf_counter()
                lab = make_clusterer(method, engine="ray", shards=s).fit_predict(x, knn=knn)
                out["methods"][method][f"shards_{s}"] = {"identical": bool(np.array_equal(lab, ref[method])),
                                                         "s": time.perf_counter() - t0}
            print(json.dumps(out), flush=True)
    finally:
        ray.shutdown()
    return out


def equality_auto(n: int) -> dict:
    """Labels of the default pipeline with ``engine="ray"`` (1, 2, 4 shards) against the single-node run.

    Nothing is passed in: each run searches its own exact 80-NN graph (single node: faiss flat; Ray: the
    sharded exact search) and the kNN graph of Ada-NETS' refined embeddings the same way.
    """
    import ray

    from clusterg.cluster import AutoClusterer
    from clusterg.data.synth import synth_ms1m
    x = synth_ms1m(n, dim=128, seed=0)[0]
    out = {"n": n, "data": "synth_ms1m(n, dim=128, seed=0)", "method": "auto", "shards": {}}
    t0 = time.perf_counter()
    ref = AutoClusterer().fit(x)
    out.update(single_node_s=time.perf_counter() - t0, ran=ref.method_, clusters=int(ref.labels_.max() + 1))
    print(json.dumps(out), flush=True)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        for s in (1, 2, 4):
            t0 = time.perf_counter()
            est = AutoClusterer(engine="ray", shards=s).fit(x)
            out["shards"][str(s)] = {"identical": bool(np.array_equal(est.labels_, ref.labels_)),
                                     "ran": est.method_, "s": time.perf_counter() - t0}
            print(json.dumps(out), flush=True)
    finally:
        ray.shutdown()
    return out


RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def _table(header, rows) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append(f"   * - {row[0]}")
        out += [f"     - {c}" if c != "" else "     -" for c in row[1:]]
    return out + [""]


def render_large(big: dict) -> list[str]:
    """The 584K table of docs/scale-out.rst (approximate kNN per shard; recall@K on a sample)."""
    sn = big["single_node"]
    lines = [f"At N = {big['n']:,} (MS1M part1's size; ``{big['data']}``, k = {big['k']}, kNN method "
             f"``{big['knn_method']}``, one IVF index per shard), by ``{big['command']}``:", ""]
    rows = [["single node", f"{sn['knn_s']:.1f} (total)", f"{sn['recall_at_k']:.4f}", f"{sn['gcn_v_s']:.1f}",
             f"{sn['linkage_s']:.2f}", "", ""]]
    for r in big["ray"]:
        rows.append([f"Ray, {r['workers']} worker{'s' if r['workers'] > 1 else ''}",
                     f"{r['knn_put_s']:.2f} / {r['knn_index_s']:.1f} / {r['knn_search_s']:.1f}",
                     f"{r['recall_at_k']:.4f}", f"{r['gcn_v_s']:.1f}", f"{r['linkage_s']:.2f}",
                     f"{r['object_store_bytes'] / 1e6:.0f} MB", f"{r['max_actor_rss_bytes'] / 1e6:.0f} MB"])
    lines += _table(["run", "kNN put / index / search (s)", "recall@%d (2,000 rows)" % big["k"], "GCN-V (s)",
                     "linkage (s)", "object store", "largest actor RSS"], rows)
    return lines


def render(dist: dict, eq: dict | None, eq_auto: dict | None = None, big: dict | None = None) -> str:
    """The measured and planned tables of docs/scale-out.rst, from the two results files."""
    sn = dist["single_node"]
    lines = [f".. written by `python benchmarks/bench_distributed.py --render docs/benchmarks/distributed.rst.inc` "
             f"from distributed.json and distributed_equality_200k.json; do not edit", "",
             f"Measured by ``{dist['command']}`` on {dist['machine']['cpus']} CPU cores, Ray "
             f"{dist['machine'].get('ray', '?')}, ``{dist['data']}`` with N = {dist['n']:,}, k = {dist['k']}:", ""]
    rows = [["single node", f"{sn['knn_s']:.2f} (total)", f"{sn['gcn_v_s']:.2f}", f"{sn['linkage_s']:.3f}", "", "",
             ""]]
    for r in dist["ray"]:
        same = ", ".join(w for w, ok in (("kNN lists", r["knn_identical"]), ("labels", r["labels_identical"]),
                                         ("confidences", r["gcn_v_max_abs_diff"] == 0.0)) if ok) or "none"
        rows.append([f"Ray, {r['workers']} worker{'s' if r['workers'] > 1 else ''}",
                     f"{r['knn_put_s']:.3f} / {r['knn_index_s']:.2f} / {r['knn_search_s']:.2f}",
                     f"{r['gcn_v_s']:.2f}", f"{r['linkage_s']:.3f}", f"{r['max_actor_rss_bytes'] / 1e6:.0f} MB",
                     f"{r['pairs_per_s_per_worker']:.2g}", same])
    lines += _table(["run", "kNN put / index / search (s)", "GCN-V (s)", "linkage (s)", "largest actor RSS",
                     "pairs / s / worker", "identical to single node"], rows)
    one = next(r for r in dist["ray"] if r["workers"] == 1)
    lines += [f"The object store held {one['object_store_bytes'] / 1e6:.2f} MB of features in every run. One worker "
              f"(one core) searched {one['pairs_per_s_per_worker']:.2g} query-index pairs a second at 128-d and ran "
              f"GCN-V on {one['gcn_v_nodes_per_s_per_worker']:.2g} nodes a second: the rates the plan scales.", ""]
    if big:
        lines += render_large(big)
    p = dist.get("plan_1e8x256")
    if p:
        lines += [f"Plan for N = {p['n']:.0e}, D = {p['dim']}, k = {p['k']}: {p['cores_per_machine']} cores a machine, "
                  f"{p['link_gbps']:g} Gbit/s into each, {p['pair_rate_per_core_at_dim']:.3g} pairs and "
                  f"{p['gcn_v_nodes_per_s_per_core_at_dim']:.3g} GCN-V nodes a second a core at {p['dim']}-d:", ""]
        rs = p["rows"]
        lines += _table(["machines"] + [str(r["machines"]) for r in rs], [
            ["shards; features and index a machine"] + [f"{r['shards']}; {r['index_shard_gb']:.3g} GB" for r in rs],
            ["exact kNN compute"] + [f"{r['knn_compute_h']:.3g} h" for r in rs],
            ["kNN network a machine (queries in / candidates out)"]
            + [f"{r['knn_network_in_per_machine_gb']:.4g} / {r['knn_network_out_per_machine_gb']:.4g} GB" for r in rs],
            ["kNN network time"] + [f"{r['knn_network_h']:.2g} h" for r in rs],
            ["GCN-V reverse edges / halo in a machine (upper bound)"]
            + [f"{r['reverse_edges_per_machine_gb']:.3g} / {r['gcn_v_halo_in_per_machine_gb_max']:.4g} GB" for r in rs],
            ["GCN-V compute"] + [f"{r['gcn_v_compute_h'] * 3600:.3g} s" for r in rs],
            ["driver: kNN lists / linkage"] + [f"{r['driver_knn_gb']:.3g} / {r['linkage_driver_gb']:.3g} GB"
                                               for r in rs]])
    if eq:
        lines += [f"Equality at N = {eq['n']:,} (``{eq['data']}``, k = {eq['k']}), by ``{eq['command']}`` on "
                  f"{eq['machine']['cpus']} shared CPU cores (the times record the run; other jobs shared the "
                  f"cores, so they are no speed-up measurement):", ""]
        rows = [["kNN lists (flat)", f"{eq['knn']['single_node_s']:.0f} s"]
                + [("identical" if eq["knn"][f"shards_{s}"]["identical"] else "DIFFERENT")
                   + f" ({eq['knn'][f'shards_{s}']['s']:.0f} s)" if f"shards_{s}" in eq["knn"] else "not run"
                   for s in (1, 2, 4)]]
        for m, r in eq["methods"].items():
            rows.append([f"``{m}`` labels ({r['clusters']:,} clusters)", f"{r['single_node_s']:.1f} s"]
                        + [("identical" if r[f"shards_{s}"]["identical"] else "DIFFERENT")
                           + f" ({r[f'shards_{s}']['s']:.1f} s)" if f"shards_{s}" in r else "not run"
                           for s in (1, 2, 4)])
        if eq_auto and eq_auto["n"] == eq["n"]:
            rows.append([f"``auto`` labels ({eq_auto['clusters']:,} clusters; {eq_auto['ran']}, both kNN stages "
                         f"searched by each run)", f"{eq_auto['single_node_s']:.0f} s"]
                        + [("identical" if eq_auto["shards"][str(s)]["identical"] else "DIFFERENT")
                           + f" ({eq_auto['shards'][str(s)]['s']:.0f} s)" if str(s) in eq_auto["shards"] else "not run"
                           for s in (1, 2, 4)])
        lines += _table(["stage", "single node", "1 shard", "2 shards", "4 shards"], rows)
    return "\n".join(lines)


def test_distributed_tiny_two_workers():
    import pytest
    pytest.importorskip("ray", reason='ray is not installed (pip install "clusterg[ray]")')
    import ray
    if ray.is_initialized():
        pytest.skip("not applicable: a Ray session is already running in this process")
    res = bench(3000, workers=(2,))
    r = res["ray"][0]
    assert r["knn_identical"] and r["labels_identical"] and r["gcn_v_max_abs_diff"] == 0.0
    assert r["pairs_per_s_per_worker"] > 0 and r["object_store_bytes"] == 3000 * 128 * 4


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", help="results .json")
    ap.add_argument("--render", metavar="RST", help="write the tables of docs/scale-out.rst from the results files")
    ap.add_argument("--n", type=int, default=N, help=f"faces (default $CLUSTERG_BENCH_DIST_N or {N})")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--knn-method", default="flat", choices=("flat", "ivf", "hnsw"),
                    help="kNN search (flat: exact, labels compared; ivf/hnsw: recall@K compared)")
    ap.add_argument("--equality", type=int, default=None, metavar="N", help="check labels at N faces instead")
    ap.add_argument("--equality-auto", type=int, default=None, metavar="N",
                    help="check the default pipeline's labels at N faces instead")
    args = ap.parse_args(argv)
    if args.render:
        eq_file = RESULTS / "distributed_equality_200k.json"
        auto_file = RESULTS / "distributed_auto_200k.json"
        big_file = RESULTS / "distributed_584k.json"
        text = render(json.loads((RESULTS / "distributed.json").read_text()),
                      json.loads(eq_file.read_text()) if eq_file.is_file() else None,
                      json.loads(auto_file.read_text()) if auto_file.is_file() else None,
                      json.loads(big_file.read_text()) if big_file.is_file() else None)
        from clusterg._atomic import atomic_open
        with atomic_open(args.render, "w") as fh:
            fh.write(text)
        return 0
    if not args.output:
        ap.error("-o/--output is required")
    from clusterg import set_quiet
    set_quiet(True)
    if args.equality_auto:
        res = equality_auto(args.equality_auto)
    elif args.equality:
        res = equality(args.equality)
    else:
        res = bench(args.n, tuple(int(w) for w in args.workers.split(",")), args.knn_method)
    res["command"] = "python benchmarks/bench_distributed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        import ray
        res["machine"]["ray"] = ray.__version__
    except ImportError:
        pass
    from clusterg._atomic import atomic_path
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
