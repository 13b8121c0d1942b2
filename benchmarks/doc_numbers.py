"""The numbers the hand-written documentation quotes, measured and written to one results file.

    python benchmarks/doc_numbers.py                      # every section, a few minutes on 2 cores
    python benchmarks/doc_numbers.py --only metrics,hac   # some sections (the others are kept)

writes ``docs/benchmarks/doc_numbers.json`` (merged section by section, written atomically).
``tests/test_doc_numbers.py`` checks the text of ``README.md`` and ``docs/`` against this file:
each quoted number is rendered from it by a template in :data:`CLAIMS`, and any time in seconds
or milliseconds in the hand-written pages must be one of those (or a setting, or generated from
another results file).

Sections (all on the real sets in ``$CLUSTERG_DATA`` or ``../shared/data`` except ``metrics``):

* ``training``: what the packaged checkpoints record about their own training (``meta``: wall time,
  training faces, steps) and their file sizes; written by ``clusterg train ...`` when they were made.
* ``pipelines``: GCN-V, GCN-V + E and Ada-NETS (packaged weights) on CelebA dev and celeba6k: pairwise /
  BCubed F and wall seconds of ``fit`` (exact kNN included), with the exact 80-NN search time beside
  them, so a time can be read as a multiple of the kNN search.
* ``baselines``: the best knn-cc (exact 20-NN, threshold grid step 0.0025) and Infomap (50-NN, grid
  step 0.01) thresholds, chosen with the labels (oracles), on the same sets.
* ``structure_space``: Ada-NETS' structure space and AND costs.
* ``metrics``: median times of the metrics on MS1M-like synthetic labels, and the reference-style
  ``intersect1d`` loop (``benchmarks/bench_metrics.py``'s ``bcubed_naive``).
* ``hac``: the kNN-graph average-linkage HAC against scikit-learn's full HAC.
* ``ada_ablation``: the Ada-NETS ablation table (packaged AND and encoder, each stage's linkage at the
  threshold chosen on held-aside identities, and the best over a grid).

Times are wall-clock seconds on whatever machine runs this (``machine`` records cores and the
load average at the start); on a shared machine they are loose, which is how the docs quote them.
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

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "benchmarks" / "doc_numbers.json"
COMMAND = "python benchmarks/doc_numbers.py"
SETS = {"celeba-dev": ("celeba", "dev"), "celeba6k": ("celeba6k", "all")}

def _row(label: str, section: str, key: str) -> tuple[str, str]:
    """A row of the measured-results table of ``docs/gcn_ve.rst``: pairwise / BCubed F on dev, then celeba6k."""
    cells = ["{%s[%s][%s][pairwise]:.3f} / {%s[%s][%s][bcubed]:.3f}" % (section, s, key, section, s, key)
             for s in SETS]
    return "docs/gcn_ve.rst", f"{label:<60}" + "    ".join(cells)


#: the Ada-NETS ablation of docs/ada_nets.rst: (key, label, threshold, kind); the thresholds are the
#: settings chosen on the held-aside training identities when the ablation was made
ADA_ROWS = [
    ("knn-cc", "kNN + connected components (k = 20)", 0.965, "cc"),
    ("ss80-cc", "\\+ structure space, k = 80 (paper), cc on s'", 0.825, "cc"),
    ("ss20-cc", "\\+ structure space, k = 20, cc on s'", 0.625, "cc"),
    ("and-cc", "\\+ AND (adaptive graph), cc on s'", 0.400, "cc"),
    ("gcn-and-cc", "\\+ GCN on the AND graph, cc (Ada-NETS)", 0.900, "cc"),
    ("gcn-knn5-cc", "GCN on the 5-NN graph, cc", 0.910, "cc"),
    ("gcn-knn5-infomap", "GCN on the 5-NN graph, Infomap", 0.895, "infomap"),
    ("gcn-and-infomap", "GCN on the AND graph, Infomap", 0.895, "infomap"),
    ("infomap-k20", "Infomap, k = 20 (plain)", 0.950, "infomap"),
    ("infomap-k50", "Infomap, k = 50 (plain)", 0.950, "infomap"),
]


def _ada_row(key: str, label: str, thr: float) -> tuple[str, str]:
    """A row of the Ada-NETS results table: dev Fp / Fb / Fp*, then celeba6k's."""
    cell = "{ada_ablation[%s][%s][%s]:.3f}"
    dev, six = (("%s   %s   %s" % (cell % (s, key, "pairwise"), cell % (s, key, "bcubed"),
                                    cell % (s, key, "oracle_pairwise"))) for s in SETS)
    return "docs/ada_nets.rst", f"{label:<44}  {thr:.3f}  {dev}    {six}"



def _pipe_row(label: str, key: str, thr: str) -> tuple[str, str]:
    """A packaged model's row of the Ada-NETS results table (its own thresholds, no oracle)."""
    cell = "{pipelines[%s][%s][%s]:.3f}"
    dev, six = ("%s   %s   -      " % (cell % (s, key, "pairwise"), cell % (s, key, "bcubed")) for s in SETS)
    return "docs/ada_nets.rst", f"{label:<44}  {thr:<5}  {dev}  {six}".rstrip()

#: (page, text): each text, formatted with the results file (``{section[key]...}``), must appear
#: verbatim in the page; ``tests/test_doc_numbers.py`` checks them.
CLAIMS: list[tuple[str, str]] = [
    ("docs/ada_nets.rst", "every same-identity 20-NN pair of the training split, whose lowest is "
                          "{train_graph[min_same_identity_20nn_sim]:.3f}) is cut."),
    # what the packaged checkpoints record about their training (clusterg/weights/*.pt, meta)
    ("docs/gcn_ve.rst", "Fp {training[gcn-v][val_pass2_fp]:.3f} there). {training[gcn-v][size_mb]:.1f} MB."),
    ("docs/defaults.rst", "(held-aside pairwise F {training[ada-nets][holdout_tuning][knn5][f_infomap]:.3f} against "
                          "{training[ada-nets][holdout_tuning][and][f_infomap]:.3f} for AND's graph)"),
    ("docs/gcn_ve.rst", "``tau=0.9456``. {training[gcn-e][size_mb]:.1f} MB"),
    ("docs/gcn_ve.rst", "GCN-V alone (its stored ``tau_0``)" + " " * 42 +
                        "{training[gcn-v][val_pass1_fp]:.3f} / {training[gcn-v][val_pass1_fb]:.3f}"),
    ("docs/gcn_ve.rst", "shipped GCN-E (cut ``p_min=0.1`` + rescue ``p_high=0.95``, ``beta=0.015``)  " +
                        "**{training[gcn-e][val_fp]:.3f} / {training[gcn-e][val_fb]:.3f}**"),
    ("docs/gcn_ve.rst", "training GCN-V {training[gcn-v][train_time_s]:.0f} s ({training[gcn-v][n_train]:,} faces"),
    ("docs/gcn_ve.rst", "GCN-E {training[gcn-e][train_time_s]:.0f} s for {training[gcn-e][epochs]} epochs of "
                        "{training[gcn-e][n_centers]:,} candidate sets"),
    ("docs/ada_nets.rst", "``clusterg/weights/ada_nets_dlib128.pt`` ({training[ada-nets][size_mb]:.1f} MB, float16)"),
    ("docs/ada_nets.rst", "(Infomap: {training[ada-nets][holdout_knn5_f_infomap]:.3f} pairwise F there, against "
                          "{training[ada-nets][holdout_knn5_f_cc]:.3f} for connected components)"),
    ("docs/ada_nets.rst", "Training took {training[ada-nets][seconds]:.0f} s"),
    ("docs/ada_nets.rst", "AND stopped by its {training[ada-nets][and_time_limit]:.0f} s bound after "
                          "{training[ada-nets][and_steps]} steps; GCN {training[ada-nets][gcn_steps]} steps in "
                          "{training[ada-nets][gcn_seconds]:.0f} s"),
    # clustering times, packaged weights, exact kNN included
    ("docs/gcn_ve.rst", "GCN-V {pipelines[celeba-dev][gcn-v][seconds]:.1f} s, GCN-V + E "
                        "{pipelines[celeba-dev][gcn-ve][seconds]:.0f} s, the exact 80-NN search alone "
                        "{pipelines[celeba-dev][knn80_seconds]:.1f} s"),
    ("docs/ada_nets.rst", "the whole ``AdaNetsClusterer`` {pipelines[celeba-dev][ada-nets][seconds]:.1f} s on "
                          "dev and {pipelines[celeba6k][ada-nets][seconds]:.1f} s on celeba6k"),
    # packaged models and oracle baselines on CelebA dev and celeba6k
    _row("knn-cc, exact 20-NN, threshold best for pairwise F", "baselines", "knn-cc-pairwise"),
    _row("knn-cc, exact 20-NN, threshold best for BCubed F", "baselines", "knn-cc-bcubed"),
    _row("Infomap, 50-NN, threshold best for pairwise F", "baselines", "infomap-pairwise"),
    _row("GCN-V (shipped)", "pipelines", "gcn-v"),
    _row("GCN-V + GCN-E (shipped)", "pipelines", "gcn-ve"),
    ("docs/gcn_ve.rst", "knn-cc thresholds: dev {baselines[celeba-dev][knn-cc-pairwise][threshold]:.4f} (pairwise) / "
                        "{baselines[celeba-dev][knn-cc-bcubed][threshold]:.4f} (BCubed), celeba6k "
                        "{baselines[celeba6k][knn-cc-pairwise][threshold]:.4f} / "
                        "{baselines[celeba6k][knn-cc-bcubed][threshold]:.4f}"),
    ("docs/gcn_ve.rst", "Infomap thresholds {baselines[celeba-dev][infomap-pairwise][threshold]:.2f} on dev and "
                        "{baselines[celeba6k][infomap-pairwise][threshold]:.2f} on celeba6k"),
    # Ada-NETS: the packaged checkpoint's held-aside choices, and the ablation (``ada_ablation``)
    ("docs/ada_nets.rst", "held-aside pairwise F with Infomap "
                          "{training[ada-nets][holdout_tuning][and][f_infomap]:.3f} on the AND graph, "
                          "{training[ada-nets][holdout_tuning][knn3][f_infomap]:.3f} / "
                          "{training[ada-nets][holdout_tuning][knn5][f_infomap]:.3f} / "
                          "{training[ada-nets][holdout_tuning][knn10][f_infomap]:.3f} on the 3 / 5 / 10-NN graphs"),
    ("docs/ada_nets.rst", "mean absolute error of {training[ada-nets][and_mae_holdout]:.2f} on the held-aside "
                          "identities (a constant: {training[ada-nets][and_mae_const]:.2f})"),
    *[_ada_row(key, label, thr) for key, label, thr, _ in ADA_ROWS],
    _pipe_row("Ada-NETS default (``AdaNetsClusterer()``)", "ada-nets", "auto"),
    _pipe_row("GCN-V (shipped ``gcn_v_dlib128.pt``)", "gcn-v", "auto"),
    _pipe_row("GCN-V + GCN-E (shipped ``gcn_e_dlib128.pt``)", "gcn-ve", "auto"),
    # structure space and AND
    ("docs/ada_nets.rst", "{structure_space[train_k80_seconds]:.0f} s for 41,796 nodes with k = 80"),
    ("docs/ada_nets.rst", "structure space {structure_space[dev_k20_seconds]:.1f} s for 10,567 faces at k = 20, "
                          "{structure_space[train_k80_seconds]:.0f} s for 41,796 faces at k = 80, "
                          "AND {structure_space[and_dev_seconds]:.1f} s"),
    # metrics
    ("docs/metrics.rst", "100,000       {metrics[100K][bcubed]:<10}{metrics[100K][pairwise]:<10}"
                         "{metrics[100K][nmi]:<10}{metrics[100K][evaluate]}"),
    ("docs/metrics.rst", "1,000,000     {metrics[1M][bcubed]:<10}{metrics[1M][pairwise]:<10}"
                         "{metrics[1M][nmi]:<10}{metrics[1M][evaluate]}"),
    ("docs/metrics.rst", "5,210,000     {metrics[5.21M][bcubed]:<10}{metrics[5.21M][pairwise]:<10}"
                         "{metrics[5.21M][nmi]:<10}{metrics[5.21M][evaluate]}"),
    ("docs/metrics.rst", "evaluation takes {metrics[naive_100000]} at 100,000 items, about "
                         "{metrics[naive_ratio_100000]:.0f} times"),
    # HAC: scikit-learn's full average linkage against the kNN-graph one
    ("docs/baselines.rst", "celeba6k (6,061)      0.93   {hac[celeba6k@0.93][full_f]:.4f}               "
                           "{hac[celeba6k@0.93][knn_f]:.4f}              {hac[celeba6k@0.93][full_s]:.1f} s / "
                           "{hac[celeba6k@0.93][knn_s]:.1f} s"),
    ("docs/baselines.rst", "CelebA dev (10,567)   0.93   {hac[celeba-dev@0.93][full_f]:.4f}               "
                           "{hac[celeba-dev@0.93][knn_f]:.4f}              {hac[celeba-dev@0.93][full_s]:.1f} s / "
                           "{hac[celeba-dev@0.93][knn_s]:.1f} s"),
    ("docs/baselines.rst", "CelebA dev (10,567)   0.94   {hac[celeba-dev@0.94][full_f]:.4f}               "
                           "{hac[celeba-dev@0.94][knn_f]:.4f}              {hac[celeba-dev@0.94][full_s]:.1f} s / "
                           "{hac[celeba-dev@0.94][knn_s]:.1f} s"),
]


def _lost(tuning: dict, q: str, frac: str) -> str:
    """Pairwise F lost by the joint run (no re-run) against the batch run, a ``library_incremental`` tuning cell."""
    return f"{tuning[q]['batch_f'] - tuning[q]['fracs'][frac]['joint']['f']:.3f}"


#: numbers quoted from the other results files of ``docs/benchmarks/`` (written by their own documented
#: commands): (page, results file, template); a template is formatted with the file's JSON, or is a
#: function of it for differences; ``tests/test_doc_numbers.py`` checks each like :data:`CLAIMS`.
FILE_CLAIMS: list[tuple[str, str, object]] = [
    ("docs/defaults.rst", "spread_fit.json",
     "(mean regret {fits[infomap20][mean_regret]:.3f} and {fits[infomap80][mean_regret]:.3f})"),
    ("docs/library.rst", "library_incremental.json",
     "scores {sets[celeba-dev][fracs][0.5][joint][library_f]:.3f} on its\n"
     "own faces against {sets[celeba-dev][fracs][0.5][joint][full_on_library_f]:.3f} for the full batch run"),
    ("docs/library.rst", "library_incremental.json",
     "gives at +50 % celeba dev {sets[celeba-dev][fracs][0.5][joint][f]:.3f}, celeba6k\n"
     "{sets[celeba6k][fracs][0.5][joint][f]:.3f} and pins14 {sets[pins14][fracs][0.5][joint][f]:.3f}"),
    ("docs/library.rst", "library_incremental.json",
     "quarters at 50 %:\n{tuning[train-q0][fracs][0.5][votes][f]:.3f} to {tuning[train-q0][fracs][0.5][joint][f]:.3f} "
     "and {tuning[train-q1][fracs][0.5][votes][f]:.3f} to {tuning[train-q1][fracs][0.5][joint][f]:.3f})"),
    ("docs/library.rst", "library_incremental.json",
     lambda j: (f"(0.25 new faces per library face) lost {_lost(j['tuning'], 'train-q0', '0.2')} on the first, "
                f"and 50 % lost {float(_lost(j['tuning'], 'train-q0', '0.5')):.2f}\n"
                f"and {_lost(j['tuning'], 'train-q1', '0.5')}")),
    ("docs/library.rst", "library_incremental.json",
     lambda j: "the faces stayed within %.3f of the batch F" % max(
         q["batch_f"] - q["fracs"][f]["joint"]["f"] for q in j["tuning"].values() for f in ("0.01", "0.1"))),
    ("docs/library.rst", "library_incremental.json",
     lambda j: "sets (by at most %.4f pairwise F)" % max(
         abs(t["fracs"][f]["joint"]["f"] - t["fracs"][f]["votes"]["f"]) for t in j["sets"].values()
         for f in ("0.01", "0.1"))),
    ("README.md", "regimes.json",
     lambda j: "where the default is %.3f short of the best Infomap - 0.03" % (
         j["sets"]["tweet89"]["best_infomap"]["F"] - 0.03 - j["sets"]["tweet89"]["methods"]["auto"]["default_F"])),
    ("docs/defaults.rst", "silhouette_tol.json",
     "it prefers Ada-NETS at {sets[synth-med500][auto][ada_F]:.3f} over Infomap's {sets[synth-med500][auto][infomap_F]:.3f}"),
    ("docs/defaults.rst", "silhouette_tol.json",
     "(mean regret {tol_mean_regret[0.02]:.3f} against {tol_mean_regret[0.04]:.3f} at 0.04)"),
    ("docs/defaults.rst", "cut_search_cost.json",
     "(search {sets[celeba-dev][infomap][search_s]:.2f} s for infomap against {sets[celeba-dev][infomap][single_s]:.2f} s "
     "for one run at the cut it chose; {sets[celeba-dev][knn-cc][search_s]:.2f} s for knn-cc, "
     "{sets[celeba-dev][hac][search_s]:.2f} s for hac;"),
    ("docs/defaults.rst", "cut_search_cost.json",
     "auto {sets[celeba-dev][auto_vs_ada_nets][auto_s]:.2f} s against {sets[celeba-dev][auto_vs_ada_nets][ada_nets_s]:.2f} s "
     "for Ada-NETS alone),"),
    ("docs/defaults.rst", "infomap_k.json", lambda j: "falls from %.4f with k fixed at 20 to %.4f with {%s}, the" % (
        j["mean_regret"]["20"][str(j["eps"])], j["mean_regret"][",".join(map(str, j["search_k"]))][str(j["eps"])],
        ", ".join(map(str, j["search_k"])))),
    ("docs/defaults.rst", "infomap_k.json", lambda j: "on those sets the 5-NN search scores pairwise F as low as %.3f, so" % (
        min(r["k"]["5"]["F"] for name, r in j["sets"].items() if name.startswith("synth-med") and "-s" in name))),
    ("docs/defaults.rst", "parent_cut.json",
     "mean regret {mean_regret[gcn-v][checkpoint]:.4f} with the checkpoint's tau against "
     "{mean_regret[gcn-v][agreement]:.4f} for\nGCN-V, {mean_regret[gcn-ve][checkpoint]:.4f} against "
     "{mean_regret[gcn-ve][agreement]:.4f} for GCN-V + E."),
    ("docs/defaults.rst", "parent_cut.json", lambda j: "neighbours): %s from 2 to 200, and %.4f without the rejoin; it picks %d." % (
        ", ".join("%.4f" % j["rejoin_mean_regret"][str(m)] for m in (2, 5, 10, 20, 50, 100, 200)),
        j["rejoin_mean_regret"]["none"], j["rejoin_min_size"])),
    ("docs/defaults.rst", "silhouette_spread.json",
     "(mean regret {mean_regret[search]:.3f} against {mean_regret[rule]:.3f} for the rule,"),
    # the output of examples/pyg_model.py --json, as the PyG tutorial shows it
    ("docs/tutorials/pyg.rst", "pyg_example.json", lambda j: "%-28s %10.3f %9.3f %8d" % (
        "kNN + cosine > %.2f" % j["baseline"]["cut"], j["baseline"]["pairwise"], j["baseline"]["bcubed"],
        j["baseline"]["clusters"])),
    ("docs/tutorials/pyg.rst", "pyg_example.json", lambda j: "%-28s %10.3f %9.3f %8d" % (
        "edge scorer, p > %.3f" % j["scorer"]["cut"], j["scorer"]["pairwise"], j["scorer"]["bcubed"],
        j["scorer"]["clusters"])),
    ("docs/synthetic.rst", "calibration.json", lambda j: "real %.3f." % j["CelebA dev (real)"]["nn_rate"]),
    ("docs/synthetic.rst", "calibration.json", lambda j: "the best F spans %.3f (kNN + connected components) and %.3f" % tuple(
        max(v[f] for k, v in j.items() if k.startswith("synthetic")) - min(v[f] for k, v in j.items()
                                                                             if k.startswith("synthetic"))
        for f in ("knn-cc_f", "infomap_f"))),
    # the analysis of the benchmark report (docs/benchmarks/notes.md) quoting the regime sweep
    ("docs/benchmarks/notes.md", "regimes.json",
     "6K synthetic sets, where it scores {sets[synth-med5][methods][ada-nets][default_F]:.3f} / "
     "{sets[synth-med50][methods][ada-nets][default_F]:.3f} / {sets[synth-med500][methods][ada-nets][default_F]:.3f}"
     " pairwise F"),
    ("docs/benchmarks/notes.md", "regimes.json",
     "label-free Infomap on them instead and scores {sets[synth-med500][methods][auto][default_F]:.3f} there"),
    ("docs/benchmarks/notes.md", "knn_gemm_584k.json",
     "took {sizes[0][runs][0][ivf_gemm_s]:.1f} s against faiss IVF's {sizes[0][runs][0][faiss_s]:.1f} s at equal recall"),
    ("docs/benchmarks/notes.md", "knn_gemm_584k.json", "nprobe {sizes[0][runs][0][nprobe]}, recall@80 {sizes[0][runs][0][recall_ivf_gemm]:.3f})"),
    ("docs/benchmarks/notes.md", "knn_gemm_584k_np80.json",
     "at nprobe {sizes[0][runs][0][nprobe]} (recall@80 {sizes[0][runs][0][recall_ivf_gemm]:.4f} for both) it took "
     "{sizes[0][runs][0][ivf_gemm_s]:.1f} s against {sizes[0][runs][0][faiss_s]:.1f} s, a ratio of {sizes[0][runs][0][ratio]:.2f}"),
    # k-reciprocal re-ranking: the 10^6-point run and the join's speed-up (benchmarks/bench_rerank.py)
    ("docs/reid.rst", "rerank_1m.json", "N = {n:,} (dim {dim}, k1 = {k1}, k2 = {k2}, {machine[threads]} thread):"),
    ("docs/reid.rst", "rerank_1m.json",
     "kNN ({knn_method}) {knn_s:.0f} s, weights {weights_s:.0f} s, join {join_s:.0f} s"),
    ("docs/reid.rst", "rerank_1m.json",
     "({join_rows_per_s:,.0f} rows a second), {pairs:,} pairs kept, peak resident memory {peak_rss_gib:.1f} GiB"),
    ("docs/reid.rst", "rerank_speedup.json",
     "{runs[0][default][ratio]:.1f} times faster at N = {runs[0][n]:,} and {runs[1][default][ratio]:.1f} times at "
     "N = {runs[1][n]:,}"),
    ("docs/reid.rst", "rerank_speedup.json", "on the first {runs[1][rows]:,} rows"),
]


def _rejoin_range(j: dict, key: str) -> str:
    """Range of pairwise F over rejoin_fit.json's large-identity synthetic sets: Ada-NETS alone, or rejoined."""
    v = [r["ada_F"] if key == "ada" else r["rejoin"][str(j["min_size"])]["F"]
         for name, r in j["sets"].items() if "-s" in name]
    return f"{min(v):.3f} to {max(v):.3f}"


def _rejoin_claims() -> list[tuple[str, str, object]]:
    loss = lambda j: max(r["ada_F"] - r["rejoin"]["5"]["F"] for name, r in j["sets"].items()  # noqa: E731
                         if name.startswith(("held-orl", "held-yale")))
    return [
        ("docs/defaults.rst", "rejoin_fit.json",
         lambda j: f"There Ada-NETS alone scores\npairwise F {_rejoin_range(j, 'ada')}; rejoined, "
                   f"{_rejoin_range(j, 'rejoin')}."),
        ("docs/defaults.rst", "rejoin_fit.json",
         lambda j: f"(up to {loss(j):.3f} pairwise F lost at a minimum size of 5)"),
        ("docs/defaults.rst", "rejoin_fit.json",
         lambda j: "the mean regret is\n" + ", ".join(f"{v:.4f}" for _, v in sorted(j["min_size_mean_regret"].items(), key=lambda kv: int(kv[0])))
                   + " from 2 to 200"),
        ("docs/defaults.rst", "rejoin_fit.json",
         "``AUTO_MARGIN`` fit still picks {auto_margin}."),
    ]


def _keep_ids_claim(j: dict) -> str:
    """docs/library.rst: keep_ids against the re-run at +50 %, from library_incremental.json."""
    cell = lambda name, mode: f"{j['sets'][name]['fracs']['0.5'][mode]['f']:.3f}"  # noqa: E731
    return (f"at +50 % celeba dev {cell('celeba-dev', 'keep-ids')} against {cell('celeba-dev', 'default')} for\n"
            f"the re-run, celeba6k {cell('celeba6k', 'keep-ids')} against {cell('celeba6k', 'default')} and pins14 "
            f"{cell('pins14', 'keep-ids')} against {cell('pins14', 'default')}")


def _regimes_before(j: dict) -> str:
    """docs/benchmarks/regimes_notes.rst.inc: the defaults before the cut search (regimes.json at commit 5699bb3)."""
    f = lambda name, m: f"{j['sets'][name]['methods'][m]['default_F']:.3f}"  # noqa: E731
    return (f"(ORL {f('orl', 'infomap')} and Yale {f('yale', 'infomap')} before), ``hac`` on ORL and Yale\n"
            f"  ({f('orl', 'hac')} / {f('yale', 'hac')} before), and ``knn-cc`` / ``dbscan`` everywhere (CelebA dev "
            f"{f('celeba-dev', 'knn-cc')}, pins14 {f('pins14', 'knn-cc')},\n  Yale {f('yale', 'knn-cc')}, UMIST "
            f"{f('umist', 'knn-cc')} before: ``regimes.json`` at commit 5699bb3)")


def _regimes_before_k(j: dict) -> str:
    """docs/benchmarks/regimes_notes.rst.inc: UMIST and pins14 before Infomap's k search and GCN-V's
    agreement cut and rejoin (regimes.json at commit 48422ce)."""
    f = lambda s, m: f"{j['sets'][s]['methods'][m]['default_F']:.3f}"  # noqa: E731
    return (f"there; at 20 the silhouette peaked at a cut that split the sweeps, {f('umist', 'infomap')} before), "
            f"``gcn-v``\n  with its cut chosen by agreement with Infomap instead of the checkpoint's tau "
            f"({f('umist', 'gcn-v')} before),\n  and ``gcn-ve`` with that cut and the rejoin ({f('umist', 'gcn-ve')} "
            f"before; the earlier figures: ``regimes.json``\n  at commit 48422ce). On pins14 the rejoin takes GCN-V "
            f"and GCN-V + E from {f('pins14', 'gcn-v')} and {f('pins14', 'gcn-ve')} at the")


FILE_CLAIMS += [
    ("docs/benchmarks/regimes_notes.rst.inc", "regimes_5699bb3.json", _regimes_before),
    ("docs/benchmarks/regimes_notes.rst.inc", "regimes_48422ce.json", _regimes_before_k),
    ("docs/benchmarks/regimes_notes.rst.inc", "regimes.json",
     "checkpoint's cut to {sets[pins14][methods][gcn-v][default_F]:.3f} and {sets[pins14][methods][gcn-ve][default_F]:.3f}."),
    ("docs/benchmarks/regimes_notes.rst.inc", "regimes.json", lambda j: "there): %.3f short of the best plain Infomap - 0.03" % (
        j["sets"]["tweet89"]["best_infomap"]["F"] - 0.03 - j["sets"]["tweet89"]["methods"]["auto"]["default_F"])),
    ("docs/benchmarks/regimes_notes.rst.inc", "regimes.json",
     "(pins14: {sets[pins14][methods][knn-cc][default_F]:.3f} against {sets[pins14][methods][knn-cc][best][F]:.3f})"),
]
def _yale_gap(j: dict) -> str:
    """docs/benchmarks/regimes_notes.rst.inc: how far the default is from the oracle - 0.01 on Yale."""
    y = j["sets"]["yale"]
    a = y["methods"]["auto"]
    return ("and it is %.3f short of the best plain Infomap - 0.01 (%.3f, %d clusters for %d people)"
            % (y["best_infomap"]["F"] - 0.01 - a["default_F"], a["default_F"], a["n_clusters"], y["identities"]))


def _float_path_before(j: dict) -> str:
    """docs/benchmarks/regimes_notes.rst.inc: ORL and UMIST before the float64 normalisation (commit 82c597c)."""
    f = lambda s: j["sets"][s]["methods"]["auto"]["default_F"]  # noqa: E731
    return "(ORL %.3f, UMIST %.3f before: ``regimes.json`` at commit 82c597c)" % (f("orl"), f("umist"))


FILE_CLAIMS += [
    ("docs/benchmarks/regimes_notes.rst.inc", "regimes.json", _yale_gap),
    ("docs/benchmarks/regimes_notes.rst.inc", "regimes_82c597c.json", _float_path_before),
    ("README.md", "regimes.json", lambda j: "(Yale against the best plain Infomap, %.3f short of its F - 0.01;" % (
        j["sets"]["yale"]["best_infomap"]["F"] - 0.01 - j["sets"]["yale"]["methods"]["auto"]["default_F"])),
]


def _weighting_claim(j: dict) -> str:
    """docs/defaults.rst: the margin weightings against plain similarity weights (infomap_weighting.json)."""
    t, c = j["tune_summary"], j["check_summary"]
    return ("by less on average (mean regret %.4f for ``margin2``, %.4f for ``margin``, %.4f for ``similarity``)\n"
            "but by more at worst (%.3f and %.3f against %.3f); on the shared check sets they trail by more on\n"
            "average too (%.4f and %.4f against %.4f)" % (
                t["margin2"]["mean_regret"], t["margin"]["mean_regret"], t["similarity"]["mean_regret"],
                t["margin2"]["worst_regret"], t["margin"]["worst_regret"], t["similarity"]["worst_regret"],
                c["margin2"]["mean_regret"], c["margin"]["mean_regret"], c["similarity"]["mean_regret"]))


FILE_CLAIMS.append(("docs/defaults.rst", "infomap_weighting.json", _weighting_claim))


def _notes_knn_5m(j: dict) -> str:
    """docs/benchmarks/notes.md: the 5.21M kNN stage of results.json."""
    r = j["knn"]["synth-5.21M-d256"]
    st = r["stage_seconds"]
    return (f"{r['seconds']:.0f} s (train {st['train']:.0f} s, add {st['add']:.0f} s, search {st['search']:.0f} s) at "
            f"recall@20 {r['recall_at_k']:.4f}")


def _notes_stages_100k(j: dict) -> str:
    """docs/benchmarks/notes.md: fit times of the clustering stages at 100K in results.json."""
    run = lambda d, m: j["runs"][f"synth-100K-{d}|{m}"]["fit_seconds"]  # noqa: E731
    im = sorted((run("d256", "infomap"), run("d128", "infomap")))
    return (f"Infomap {im[0]:.1f}-{im[1]:.1f} s at 100K, GCN-V {run('d128', 'gcn-v'):.1f} s, GCN-V + GCN-E "
            f"{run('d128', 'gcn-ve'):.0f} s at 100K")


FILE_CLAIMS += [("docs/benchmarks/notes.md", "results.json", _notes_knn_5m),
                ("docs/benchmarks/notes.md", "results.json", _notes_stages_100k)]
FILE_CLAIMS += _rejoin_claims()
FILE_CLAIMS.append(("docs/library.rst", "library_incremental.json", _keep_ids_claim))


def _mixture_claim(j: dict) -> str:
    """docs/defaults.rst: the identity-size augmentation run of benchmarks/train_ada_mixture.py."""
    big = [r["ada_F"] for name, r in j["sets"]["mixture"].items() if name.startswith(("synth-med500", "synth-med1000"))]
    return (f"{j['train_faces']:,} training faces. On the tune sets of the rejoin fit the default pipeline\n"
            f"scored a mean pairwise F of {j['mean_auto_F']['mixture']:.4f} with those weights against "
            f"{j['mean_auto_F']['packaged']:.4f} with the\npackaged ones, and {j['train_held_auto_F']['mixture']:.3f} "
            f"against {j['train_held_auto_F']['packaged']:.3f} on the held-aside CelebA identities; "
            f"Ada-NETS alone\nstill split large identities (synthetic median 500 and 1000 sets: {min(big):.3f} to "
            f"{max(big):.3f} with the\nmixture)")


FILE_CLAIMS.append(("docs/defaults.rst", "ada_mixture.json", _mixture_claim))


def _domain_claim(j: dict) -> str:
    """docs/defaults.rst: the fallback decision of benchmarks/fit_domain_gate.py."""
    def gap(name, m):
        r = j["sets"][name]
        return r["best_infomap"]["F"] - r[f"F_{m}"]
    flagged = j["flagged_tune_sets"]
    miss = j["misses"]["no_fallback"]
    names = {"synth-med5": "synthetic median 5", "synth-med50": "median 50"}
    missed = ", ".join(f"{names.get(n, n)}: {gap(n, 'no_fallback'):.3f}" for n in miss)
    words = {0: "no", 1: "one", 2: "two", 3: "three"}
    r = j["sets"]["synth-med5"]
    return ("better of the two variants is lower. With the fallback %s flagged tune set is more than %s\n"
            "below it (largest gap %.4f); without it %s are (%s).\nSo ``DOMAIN_FALLBACK`` is %s.\n\n"
            "The rule changed once, and after the real sets had been scored: the first fit decided on the mean\n"
            "regret alone, where Ada-NETS wins (%.4f against %.4f for the fallback, which gains on small\n"
            "identities, synthetic median 5 %.3f against %.3f, and loses a little on every large-identity\n"
            "set; the fallback's largest regret is the lower of the two, %.4f against %.4f)" % (
                words.get(len(j["misses"]["fallback"]), len(j["misses"]["fallback"])), j["bound"],
                max(gap(n, "fallback") for n in flagged), words.get(len(miss), len(miss)), missed, j["fallback"],
                j["mean_regret"]["no_fallback"], j["mean_regret"]["fallback"], r["F_fallback"], r["F_no_fallback"],
                j["max_regret"]["fallback"], j["max_regret"]["no_fallback"]))


FILE_CLAIMS.append(("docs/defaults.rst", "domain_gate.json", _domain_claim))


def render_file_claim(template, data: dict) -> str:
    """One :data:`FILE_CLAIMS` text, its numbers taken from ``data`` (that claim's parsed results file)."""
    return template(data) if callable(template) else template.format(**data)


def render(template: str, results: dict) -> str:
    """One claim's text, its numbers taken from ``results`` (the parsed results file)."""
    return template.format(**results)


def _data_root() -> Path:
    env = os.environ.get("CLUSTERG_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "data"
    if not root.is_dir():
        sys.exit(f"doc_numbers: real data not found at {root} (set CLUSTERG_DATA)")
    return root


def _load(name: str):
    from clusterg.data import MS1MDataset
    folder, split = SETS[name]
    ds = MS1MDataset(_data_root() / folder, split, dim=128)
    return np.asarray(ds.x), np.asarray(ds.y)


def _timed(fn, *a, **kw):
    t = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t


def _scores(y, pred) -> dict:
    from clusterg.metrics import bcubed, pairwise
    return {"pairwise": float(pairwise(y, pred)[2]), "bcubed": float(bcubed(y, pred)[2])}


def training() -> dict:
    from clusterg.models.checkpoint import load_checkpoint
    w = REPO / "clusterg" / "weights"
    v = load_checkpoint(w / "gcn_v_dlib128.pt")
    e = load_checkpoint(w / "gcn_e_dlib128.pt")
    a = load_checkpoint(w / "ada_nets_dlib128.pt")
    mb = {name: round((w / f).stat().st_size / 1e6, 2) for name, f in
          (("gcn-v", "gcn_v_dlib128.pt"), ("gcn-e", "gcn_e_dlib128.pt"), ("ada-nets", "ada_nets_dlib128.pt"))}
    am = a["meta"]
    return {"source": "the packaged checkpoints' meta (clusterg/weights/*.pt), written by clusterg train",
            "gcn-v": {"train_time_s": v["meta"]["train_time_s"], "n_train": v["meta"]["n_train"],
                      "n_val": v["meta"]["n_val"], "size_mb": mb["gcn-v"], "hardware": v["meta"].get("hardware"),
                      "val_pass1_fp": v["meta"]["val_pass1_fp"], "val_pass1_fb": v["meta"]["val_pass1_fb"],
                      "val_pass2_fp": v["meta"]["val_pass2_fp"]},
            "gcn-e": {"train_time_s": e["meta"]["train_time_s"], "n_centers": e["meta"]["n_centers"],
                      "epochs": e["config"]["epochs"], "size_mb": mb["gcn-e"],
                      "val_fp": e["meta"]["val_fp"], "val_fb": e["meta"]["val_fb"]},
            "ada-nets": {"seconds": am["seconds"], "and_steps": am["and"]["steps"],
                         "and_seconds": am["and"]["seconds"],
                         "and_time_limit": 60.0, "gcn_steps": am["gcn"]["steps"],
                         "gcn_seconds": am["gcn"]["seconds"], "size_mb": mb["ada-nets"],
                         "holdout_knn5_f_infomap": am["holdout_tuning"]["knn5"]["f_infomap"],
                         "holdout_knn5_f_cc": am["holdout_tuning"]["knn5"]["f_cc"],
                         "holdout_tuning": am["holdout_tuning"], "and_mae_holdout": am["and"]["mae_holdout"],
                         "and_mae_const": am["and"]["mae_const"]}}


def pipelines() -> dict:
    from clusterg.cluster import AdaNetsClusterer, GCNVClusterer, GCNVEClusterer
    from clusterg.knn import knn_search
    out = {}
    for name in SETS:
        x, y = _load(name)
        _, t_knn = _timed(knn_search, x, 80)
        row = {"n": int(len(x)), "knn80_seconds": round(t_knn, 2)}
        for method, est in (("gcn-v", GCNVClusterer()), ("gcn-ve", GCNVEClusterer()),
                            ("ada-nets", AdaNetsClusterer())):
            _, t = _timed(est.fit, x)
            row[method] = dict(_scores(y, est.labels_), seconds=round(t, 2))
        out[name] = row
    return out


def baselines() -> dict:
    from clusterg.cluster import InfomapClusterer, KNNConnectedComponents
    from clusterg.knn import knn_search
    out = {}
    for name in SETS:
        x, y = _load(name)
        knn20, knn50 = knn_search(x, 20), knn_search(x, 50)
        cc = []
        for t in np.round(np.arange(0.90, 0.99 + 1e-9, 0.0025), 4):
            cc.append(dict(_scores(y, KNNConnectedComponents(k=20, threshold=float(t)).fit(x, knn=knn20).labels_),
                           threshold=float(t)))
        im = []
        for t in np.round(np.arange(0.88, 0.97 + 1e-9, 0.01), 2):
            im.append(dict(_scores(y, InfomapClusterer(k=50, threshold=float(t)).fit(x, knn=knn50).labels_),
                           threshold=float(t)))
        out[name] = {"knn-cc-pairwise": max(cc, key=lambda r: (r["pairwise"], r["bcubed"])),
                     "knn-cc-bcubed": max(cc, key=lambda r: (r["bcubed"], r["pairwise"])),
                     "infomap-pairwise": max(im, key=lambda r: (r["pairwise"], r["bcubed"])),
                     "infomap-bcubed": max(im, key=lambda r: (r["bcubed"], r["pairwise"]))}
    return out


def structure_space_costs() -> dict:
    from clusterg.data import MS1MDataset
    from clusterg.knn import knn_search
    from clusterg.models.ada_nets import predict_k
    from clusterg.nn import AND
    from clusterg.transforms.structure_space import structure_space
    x, _ = _load("celeba-dev")
    nb, si = knn_search(x, 80)
    (ss_nb, ss_si, ss_cos), t20 = _timed(structure_space, nb, si, k=20, lam=0.3, return_cosine=True, quiet=True)
    model = AND.from_pretrained()
    _, t_and = _timed(predict_k, model, x, ss_nb, ss_si, ss_cos)
    xt = np.asarray(MS1MDataset(_data_root() / "celeba", "train", dim=128).x)
    nb, si = knn_search(xt, 80)
    _, t80 = _timed(structure_space, nb, si, k=80, lam=0.3, return_cosine=True, quiet=True)
    return {"dev_k20_seconds": round(t20, 2), "and_dev_seconds": round(t_and, 2),
            "train_k80_seconds": round(t80, 1), "train_n": int(len(xt))}


def _fmt_time(s: float) -> str:
    """How the metrics table prints a time: ms below 0.1 s (2 significant digits), else s."""
    if s < 0.1:
        ms = s * 1e3
        return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"
    return f"{s:.2f} s"


def metrics() -> dict:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_metrics import bcubed_naive, ms1m_like_labels
    from clusterg.metrics import bcubed, evaluate, nmi, pairwise
    out: dict = {"labels": "bench_metrics.ms1m_like_labels (67 faces per identity on average, 3 % unassigned)",
                 "repeats": 5}
    for n, key in ((100_000, "100K"), (1_000_000, "1M"), (5_210_000, "5.21M")):
        gt, pred = ms1m_like_labels(n)
        row = {}
        for name, fn in (("bcubed", bcubed), ("pairwise", pairwise), ("nmi", nmi), ("evaluate", evaluate)):
            fn(gt, pred)  # warm
            sec = float(np.median([_timed(fn, gt, pred)[1] for _ in range(5)]))
            row[name], row[name + "_s"] = _fmt_time(sec), sec
        out[key] = row
    gt, pred = ms1m_like_labels(100_000)
    _, t_naive = _timed(bcubed_naive, gt, pred)
    out["naive_100000"] = _fmt_time(t_naive)
    out["naive_100000_s"] = t_naive
    out["naive_ratio_100000"] = t_naive / out["100K"]["bcubed_s"]
    return out


def hac() -> dict:
    from sklearn.cluster import AgglomerativeClustering
    from clusterg.cluster import KNNHAC
    from clusterg.metrics import pairwise
    out = {}
    for name, t in (("celeba6k", 0.93), ("celeba-dev", 0.93), ("celeba-dev", 0.94)):
        x, y = _load(name)
        full, t_full = _timed(AgglomerativeClustering(n_clusters=None, linkage="average", metric="cosine",
                                                      distance_threshold=1.0 - t).fit_predict, x)
        ours, t_knn = _timed(KNNHAC(k=20, threshold=t, linkage="average").fit_predict, x)
        out[f"{name}@{t}"] = {"full_f": float(pairwise(y, full)[2]), "knn_f": float(pairwise(y, ours)[2]),
                              "full_s": round(t_full, 2), "knn_s": round(t_knn, 2)}
    return out



def ada_ablation() -> dict:
    """Each row of the Ada-NETS ablation (packaged AND and encoder, no training) on dev and celeba6k:
    pairwise / BCubed F at the row's threshold and the best pairwise F over a threshold grid (oracle)."""
    from clusterg.knn import knn_search
    from clusterg.linkage import connected_components
    from clusterg.cluster.infomap import infomap_labels
    from clusterg.metrics import pairwise
    from clusterg.models.ada_nets import refine
    from clusterg.nn import AND, AdaGCN
    from clusterg.transforms.structure_space import structure_space
    and_model, gcn = AND.from_pretrained(), AdaGCN.from_pretrained()
    cfg = dict(gcn.config)
    out = {}
    for name in SETS:
        x, y = _load(name)
        from clusterg._validate import check_features
        x = check_features(x, normalize=True)
        n = len(x)
        nb, si = knn_search(x, 80, normalize=False)
        ss80 = structure_space(nb, si, k=80, lam=0.3, quiet=True)[:2]
        ss20 = structure_space(nb, si, k=20, lam=0.3, return_cosine=True, quiet=True)
        k_hat = and_model.predict_k(x, *ss20)
        keep = np.arange(20)[None, :] < k_hat[:, None]
        z_and, _ = refine(x, nb, si, and_model, gcn, dict(cfg, graph="and"))
        z_knn, _ = refine(x, nb, si, and_model, gcn, dict(cfg, graph="knn", k_graph=5))
        graphs = {"knn-cc": (nb[:, :20], si[:, :20], None), "ss80-cc": (*ss80, None), "ss20-cc": (*ss20[:2], None),
                  "and-cc": (ss20[0], ss20[1], keep), "infomap-k20": (nb[:, :20], si[:, :20], None),
                  "infomap-k50": (nb[:, :50], si[:, :50], None)}
        for key, z in (("gcn-and", z_and), ("gcn-knn5", z_knn)):
            zn, zs = knn_search(z, 20, normalize=False)
            graphs[key + "-cc"] = graphs[key + "-infomap"] = (zn, zs, None)
        rows = {}
        for key, _, thr, kind in ADA_ROWS:
            g_nb, g_si, mask = graphs[key]
            src = np.repeat(np.arange(n), g_nb.shape[1])
            dst, w = g_nb.ravel(), g_si.ravel()
            base = (dst != src) & (True if mask is None else mask.ravel())

            def labels(t):
                e = base & (w > t)
                if kind == "cc":
                    return connected_components(n, src[e], dst[e])
                return infomap_labels(n, src[e], dst[e], w[e], seed=0)
            r = _scores(y, labels(thr))
            grid = np.round(np.arange(0.30, 0.99, 0.005), 3) if kind == "cc" else np.round(np.arange(0.85, 0.975, 0.005), 3)
            r["oracle_pairwise"] = max(float(pairwise(y, labels(float(t)))[2]) for t in grid)
            rows[key] = r
        out[name] = rows
    return out


def train_graph() -> dict:
    """The lowest raw cosine of a same-identity pair among the 20-NN of the CelebA training split
    (what the Ada-NETS input-space guard ``raw_min_sim`` stays under)."""
    from clusterg.data import MS1MDataset
    from clusterg.knn import knn_search
    ds = MS1MDataset(_data_root() / "celeba", "train", dim=128)
    x, y = np.asarray(ds.x, dtype=np.float32), np.asarray(ds.y)
    nb, s = knn_search(x, 20, quiet=True)
    same = (y[nb[:, 1:]] == y[:, None]) & (nb[:, 1:] >= 0)
    return {"n": int(len(x)), "min_same_identity_20nn_sim": float(s[:, 1:][same].min())}


SECTIONS = {"training": training, "pipelines": pipelines, "baselines": baselines,
            "structure_space": structure_space_costs, "metrics": metrics, "hac": hac, "ada_ablation": ada_ablation,
            "train_graph": train_graph}


def _bench_json(name: str) -> dict:
    """One results file of docs/benchmarks."""
    return json.loads((REPO / "docs" / "benchmarks" / name).read_text())


#: the default pipeline's runs above one-level ivf-gemm (docs/benchmarks/knn_gemm.md, the "auto" switch):
#: (N label, ivf-gemm file, hnsw file)
AUTO_SWITCH_RUNS = [("200K", "default_200k_gemm.json", "default_200k_hnsw.json"),
                    ("584K", "default_584k.json", "default_584k_hnsw.json"),
                    ("1M", "default_1000k.json", "default_1000k_hnsw.json"),
                    ("5.21M", "default_5210k.json", "default_5210k_hnsw.json")]


def auto_switch_table(runs=None) -> str:
    """An ivf-gemm / HNSW table of docs/benchmarks/knn_gemm.md, rendered from the default_*.json runs
    (``runs``: rows of (N label, results file, ...); default :data:`AUTO_SWITCH_RUNS`)."""
    rows = ["| N | method | kNN s | recall@80 | cluster s | pairwise F | BCubed F | peak RSS GiB |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for label, *names in (AUTO_SWITCH_RUNS if runs is None else runs):
        for name in names:
            r = _bench_json(name)
            rows.append(f"| {label} | {r['knn_method']} | {r['knn_s']:.1f} | {r['knn_recall_at_80_sample_2000']:.3f} | "
                        f"{r['cluster_s']:.1f} | {r['pairwise_fscore']:.3f} | {r['bcubed_fscore']:.3f} | "
                        f"{r['peak_rss_gib']:.2f} |")
    return "\n".join(rows)


FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "default_5210k_hnsw.json", lambda j: auto_switch_table()))
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "default_5210k_hnsw.json", lambda j: (
    f"the recall ({j['knn_recall_at_80_sample_2000']:.3f}) is below 0.90, and kNN plus clustering took "
    f"{j['total_s_knn_and_cluster']:,.1f} s, {j['total_s_knn_and_cluster'] / 60:.1f} min\n"
    f"(the synthetic draw, {j['synth_s']:.1f} s, not counted)")))


#: one-level ivf-gemm (up to FLAT_KMEANS_MAX = 32,768 lists) against HNSW above 786,432 points, the
#: measurement behind AUTO_GEMM_MAX = 6,291,456 (docs/benchmarks/knn_gemm.md): (N label, ivf-gemm, hnsw file)
ONE_LEVEL_RUNS = [("1M", "default_1000k_gemm.json", "default_1000k_hnsw.json"),
                  ("1.74M", "default_1740k_gemm.json", "default_1740k.json"),
                  ("2.89M", "default_2890k_gemm.json", "default_2890k.json"),
                  ("5.21M", "default_5210k_gemm.json", "default_5210k_hnsw.json")]
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "default_5210k_gemm.json",
                    lambda j: auto_switch_table(ONE_LEVEL_RUNS)))


#: the default pipeline (kNN "auto" + AutoClusterer) on the protocol's synthetic test splits
#: (docs/benchmarks/knn_gemm.md): (split, results file)
DEFAULT_BY_SPLIT = [("part1_test", "default_584k.json"), ("part3_test", "default_1740k_gemm.json"),
                    ("part5_test", "default_2890k_gemm.json"), ("part9_test", "default_5210k_gemm.json")]


def default_by_split_table() -> str:
    """Pairwise / BCubed F (%) and time per stage of the default on each split, as the published tables."""
    rows = ["| split | N | kNN (auto) | kNN s | recall@80 | cluster s | total min | pairwise F / BCubed F (%) | NMI | "
            "peak RSS GiB |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for split, name in DEFAULT_BY_SPLIT:
        r = _bench_json(name)
        rows.append(f"| {split} | {r['n']:,} | {r['knn_method']} | {r['knn_s']:.1f} | "
                    f"{r['knn_recall_at_80_sample_2000']:.3f} | {r['cluster_s']:.1f} | "
                    f"{r['total_s_knn_and_cluster'] / 60:.1f} | {100 * r['pairwise_fscore']:.2f} / "
                    f"{100 * r['bcubed_fscore']:.2f} | {r['nmi']:.4f} | {r['peak_rss_gib']:.2f} |")
    return "\n".join(rows)


FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "default_2890k_gemm.json", lambda j: default_by_split_table()))


def recall_tail_table(name: str = "ivf_gemm_recall_tail_1000k.json") -> str:
    """ivf-gemm's recall@80 by nprobe, split into neighbours of the row's own identity and of others
    (docs/benchmarks/knn_gemm.md, from benchmarks/ivf_gemm_recall_tail.py)."""
    j = _bench_json(name)
    rows = ["| k-means rows a list | k-means s | nprobe | recall@80 | own identity | other identities |",
            "|---:|---:|---:|---:|---:|---:|"]
    for run in j["runs"]:
        for p, r in run["by_nprobe"].items():
            rows.append(f"| {run['train_per_list']} | {run['kmeans_s']:.1f} | {p} | {r['recall']:.3f} | "
                        f"{r['recall_own_identity']:.3f} | {r['recall_other_identities']:.3f} |")
    return "\n".join(rows)


FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "ivf_gemm_recall_tail_1000k.json", lambda j: recall_tail_table()))
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "ivf_gemm_recall_tail_1000k.json", lambda j: (
    f"{100 * j['share_of_neighbours_from_own_identity']:.1f} % of the exact 80 neighbours")))
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "ivf_gemm_recall_tail_1000k.json", lambda j: (
    f"`ivf_gemm_knn` itself in one pass (its defaults before the expansion pass below; "
    f"{j['check']['ivf_gemm_knn_s']:.1f} s) scored recall@80 "
    f"{j['check']['sampled_recall_at_80']:.4f} on the same 2,000 rows")))


def expand_table(name: str = "ivf_gemm_expand_1000k.json") -> str:
    """ivf-gemm's second pass against more probes on the same lists (docs/benchmarks/knn_gemm.md, from
    benchmarks/ivf_gemm_expand.py): time and recall@80 per nprobe / expand, time as a ratio to the first row."""
    j = _bench_json(name)
    base = j["runs"][0]["knn_s_without_kmeans"]
    rows = ["| nprobe | expand | kNN s (k-means apart) | time / first row | recall@80 |", "|---:|---:|---:|---:|---:|"]
    for r in j["runs"]:
        rows.append(f"| {r['nprobe']} | {r['expand']} | {r['knn_s_without_kmeans']:.1f} | "
                    f"{r['knn_s_without_kmeans'] / base:.2f} | {r['recall_at_80']:.3f} |")
    return "\n".join(rows)


FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "ivf_gemm_expand_1000k.json", lambda j: expand_table()))
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "ivf_gemm_expand_1000k.json", lambda j: (
    f"1M split in {j['kmeans_s']:.1f} s, against")))
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "ivf_gemm_expand_1000k.json", lambda j: (
    f"for +{j['runs'][3]['recall_at_80'] - j['runs'][0]['recall_at_80']:.3f} recall@80")))


#: the default pipeline with and without ivf-gemm's expansion pass (docs/benchmarks/knn_gemm.md,
#: "The expansion pass at 200K, 1M and 5.21M"): (N label, expand, results file)
EXPAND_RUNS = [("200K", 0, "default_200k_expand0.json"), ("200K", 32, "default_200k_expand.json"),
               ("5.21M", 0, "default_5210k_gemm.json"), ("5.21M", 32, "default_5210k_expand.json")]


def expand_default_table() -> str:
    """The default pipeline one-pass (expand 0) and with the expansion pass (expand 32), per size."""
    rows = ["| N | expand | kNN s | recall@80 | cluster s | total min | pairwise F | BCubed F | peak RSS GiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, expand, name in EXPAND_RUNS:
        r = _bench_json(name)
        rows.append(f"| {label} | {expand} | {r['knn_s']:.1f} | {r['knn_recall_at_80_sample_2000']:.3f} | "
                    f"{r['cluster_s']:.1f} | {r['total_s_knn_and_cluster'] / 60:.1f} | {r['pairwise_fscore']:.3f} | "
                    f"{r['bcubed_fscore']:.3f} | {r['peak_rss_gib']:.2f} |")
    return "\n".join(rows)


def growth_exponent(small: str, large: str) -> float:
    """log(kNN time ratio) / log(size ratio) between two default_*.json runs."""
    a, b = _bench_json(small), _bench_json(large)
    return float(np.log(b["knn_s"] / a["knn_s"]) / np.log(b["n"] / a["n"]))


FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "default_5210k_expand.json", lambda j: expand_default_table()))
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "default_5210k_expand.json", lambda j: (
    f"kNN plus clustering {j['total_s_knn_and_cluster']:,.1f} s = **{j['total_s_knn_and_cluster'] / 60:.1f} min**, "
    f"peak RSS {j['peak_rss_gib']:.2f} GiB, pairwise / BCubed F {100 * j['pairwise_fscore']:.2f} / "
    f"{100 * j['bcubed_fscore']:.2f}, recall@80 **{j['knn_recall_at_80_sample_2000']:.3f}**")))
FILE_CLAIMS.append(("docs/knn.rst", "default_5210k_expand.json", lambda j: (
    f"the default graph reaches recall@80 {j['knn_recall_at_80_sample_2000']:.3f} there")))
FILE_CLAIMS.append(("docs/benchmarks/knn_gemm.md", "default_5210k_expand.json", lambda j: (
    f"N^{growth_exponent('default_200k_expand.json', 'default_5210k_expand.json'):.2f} with the expansion")))


def _protocol_ada_collapse(j: dict) -> str:
    """The user-trained Ada-NETS run of the part1 protocol at its checkpoint's cc cut (docs/ada_nets.rst)."""
    run = next(r for r in j["runs"] if r.get("method") == "ada-nets")
    thr = j["train"]["ada-nets"]["result"]["config"]["threshold"]
    return f"at its stored {thr:.2f} into one giant cluster (pairwise F {100 * run['result']['pairwise_fscore']:.2f} %"


FILE_CLAIMS.append(("docs/ada_nets.rst", "ms1m_protocol_part1.json", _protocol_ada_collapse))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=str(OUT), help=f"results file (default {OUT.relative_to(REPO)})")
    ap.add_argument("--only", default=None, help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    ap.add_argument("--threads", type=int, default=2, help="torch / faiss threads (default 2)")
    args = ap.parse_args(argv)
    names = list(SECTIONS) if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad:
        ap.error(f"unknown sections {bad}; choose from {list(SECTIONS)}")
    import faiss
    import torch
    from clusterg import set_quiet
    from clusterg._atomic import atomic_open
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    set_quiet(True)
    out = Path(args.output)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results["command"] = COMMAND
    for name in names:
        t0 = time.perf_counter()
        results[name] = SECTIONS[name]()
        print(f"doc_numbers: {name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        results.setdefault("machine", {})[name] = {
            "cores": os.cpu_count(), "threads": args.threads, "load_avg_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
        with atomic_open(out, "w") as f:
            f.write(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
