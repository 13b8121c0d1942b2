"""Train GCN-E (edge connectivity on candidate sets) on top of a trained GCN-V;
``clusterg train gcn-e``.

GCN-E needs GCN-V's confidences (who may be a parent) and, by default, its
features. The GCN-E checkpoint embeds the GCN-V weights it was trained with, so
one file drives ``clusterg cluster --method gcn-ve``. The identities GCN-V held
aside for validation are held aside here too and choose GCN-E's ``tau`` and
``ignore_ratio``. Inference (:func:`~clusterg.models.gcn_e.load_gcn_ve`,
:func:`~clusterg.models.gcn_e.choose_parents`, ...) lives in :mod:`clusterg.models.gcn_e`.
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._progress import progress, set_quiet
from .._validate import ClustergError, check_features, check_k, check_labels, check_threshold
from ..linkage.tree_deduction import candidate_sets, ignore_mask, nearest_higher
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.gcn_e import (_build_e, choose_parents, edge_features, gcn_e_parents,  # noqa: F401 (re-exported)
                            gcn_e_scores, knn_space, load_gcn_ve)
from ..models.gcn_v import _knn, gcn_features, gcn_v_graph, load_gcn_v, predict_gcn_v
from ..nn.gcn_e import GCNE, candidate_batch
from ..nn.gcn_v import GCNV
from ..transforms.gcn_graph import knn_adjacency
from .gcn_v import split_by_identity, tune_tau

__all__ = ["train_gcn_e", "add_cli", "DEFAULTS", "RULE_GRID"]

log = logging.getLogger("clusterg.train.gcn_e")

#: Paper defaults (``cfg_train_gcne_ms1m.py``): k=160 on GCN-V features, layers 512-512-256-256,
#: train ignore_ratio 0.7, test ignore_ratio 0.8, tau 0.8; Adam on batches of candidate sets here.
DEFAULTS: dict[str, Any] = {"k": 160, "dims": [512, 512, 256, 256], "feature": "gcn", "epochs": 4, "lr": 1e-3,
                            "weight_decay": 1e-5, "batch_graphs": 256, "train_ignore_ratio": 0.7,
                            "ignore_ratio": 0.8, "tau": 0.8, "rule": "argmax", "alpha": 0.0,
                            "p_min": 0.0, "p_high": 1.0, "beta": 0.0, "center_dot": False}


def _space(v: GCNV, vcfg: dict, x: np.ndarray, k_v: int, k_e: int, feature: str):
    """GCN-V confidences plus the GCN-E feature space and its kNN for L2-normalised ``x``."""
    nbrs, sims, agg = gcn_v_graph(x, check_k(k_v, len(x), clamp=True, min_k=2), vcfg.get("th_sim", 0.0))
    conf, hidden = predict_gcn_v(v, x, agg)
    feat = edge_features(x, hidden, feature)
    ke = check_k(k_e, len(x), clamp=True, min_k=2)
    if knn_space(feature) == "raw":
        en, es = (nbrs[:, :ke], sims[:, :ke]) if ke <= nbrs.shape[1] else _knn(x, ke)
    else:
        en, es = _knn(feat, ke)
    return conf, feat, en, es


def train_gcn_e(features, labels, gcn_v, *, k: int = DEFAULTS["k"], dims=tuple(DEFAULTS["dims"]),
                feature: str = DEFAULTS["feature"], epochs: int = DEFAULTS["epochs"], lr: float = DEFAULTS["lr"],
                weight_decay: float = DEFAULTS["weight_decay"], batch_graphs: int = DEFAULTS["batch_graphs"],
                train_ignore_ratio: float = DEFAULTS["train_ignore_ratio"], seed: int = 0,
                out: str | os.PathLike | None = None, resume: str | os.PathLike | None = None, half: bool = False,
                meta: dict | None = None, threads: int | None = 2,
                time_limit: float | None = None, center_dot: bool = DEFAULTS["center_dot"]) -> dict:
    """Train GCN-E on candidate sets built from a trained GCN-V and return the checkpoint dict.

    Args:
        features, labels: (N, D) float and (N,) int, the same data GCN-V was trained on
            (its held-aside identities are held aside again).
        gcn_v: GCN-V checkpoint path.
        k: kNN size for the candidate sets (paper 160); feature: ``"gcn"`` (paper), ``"raw"`` or ``"raw+gcn"``.
        dims: widths of the four graph layers (paper 512, 512, 256, 256).
        epochs: passes over the training candidate sets; batch_graphs: candidate sets per step.
        train_ignore_ratio: the lowest-confidence fraction of nodes skipped in training (paper 0.7).
        center_dot: also feed each candidate's dot product with its centre (its similarity)
            to GCN-E (default False, the paper's input).
        time_limit: seconds; after the epoch that crosses it, save a resumable checkpoint and
            return early (resume to finish).
    """
    if threads:
        torch.set_num_threads(int(threads))
    x = check_features(features, min_n=4, normalize=True)
    y = check_labels(labels, n=x.shape[0])
    v, vcfg, vblob = load_gcn_v(gcn_v, in_dim=x.shape[1])
    if feature not in ("raw", "gcn", "raw+gcn"):
        raise ClustergError(f"feature must be 'raw', 'gcn' or 'raw+gcn', got {feature!r}")
    check_threshold(train_ignore_ratio, "train_ignore_ratio", 0.0, 1.0)
    config = dict(DEFAULTS, k=int(k), dims=[int(d) for d in dims], feature=feature, epochs=int(epochs),
                  lr=float(lr), weight_decay=float(weight_decay), batch_graphs=int(batch_graphs),
                  train_ignore_ratio=float(train_ignore_ratio), seed=int(seed),
                  center_dot=bool(center_dot))
    train_state, rblob = None, None
    if resume is not None:
        rblob = load_checkpoint(resume, model="gcn-e", in_dim=x.shape[1])
        train_state = rblob.get("train_state")
        if not train_state:
            raise ClustergError(f"checkpoint {resume} holds no training state to resume from")
        for key in ("k", "dims", "feature", "lr", "weight_decay", "batch_graphs", "train_ignore_ratio", "seed"):
            config[key] = rblob["config"][key]
        config["center_dot"] = bool(rblob["config"].get("center_dot", False))
        config["epochs"] = max(int(epochs), int(train_state["epoch"]))
    torch.manual_seed(config["seed"])
    vf = float(vcfg.get("val_fraction", 0.0))
    val = split_by_identity(y, vf, int(vcfg.get("seed", 0))) if vf > 0 else np.zeros(len(y), dtype=bool)

    t0 = time.time()
    xtr, ytr = x[~val], y[~val]
    conf, feat, nbrs, sims = _space(v, vcfg, xtr, vcfg["k"], config["k"], config["feature"])
    cand, mask = candidate_sets(nbrs, sims, conf)
    adj = knn_adjacency(nbrs, sims)
    centers = np.flatnonzero(~ignore_mask(conf, config["train_ignore_ratio"]) & (mask.sum(axis=1) >= 2))
    if len(centers) == 0:
        raise ClustergError("no node has two or more higher-confidence neighbours: nothing to train GCN-E on")
    ft = torch.from_numpy(np.ascontiguousarray(feat))
    model = _build_e(feat.shape[1] + int(config["center_dot"]), config)
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    steps = math.ceil(len(centers) / config["batch_graphs"])
    total = max(1, config["epochs"] * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(config["seed"])
    start, elapsed = 0, 0.0
    losses: list[float] = []  # mean cross-entropy of each epoch, kept in the checkpoint's meta
    if train_state is not None:
        model.load_state_dict({kk[2:]: t.float() for kk, t in rblob["state_dict"].items() if kk.startswith("e.")})
        opt.load_state_dict(train_state["optimizer"])
        sched.load_state_dict(train_state["scheduler"])
        gen.set_state(train_state["generator"])
        start, elapsed = int(train_state["epoch"]), float(train_state.get("elapsed_s", 0.0))
        losses = [float(v) for v in rblob.get("meta", {}).get("losses", [])][:start]

    def snapshot(epoch: int, final: dict | None = None) -> dict:
        def cast(t):
            return t.half() if half and t.is_floating_point() else t
        state = {f"v.{kk}": cast(t) for kk, t in v.state_dict().items()}
        state.update({f"e.{kk}": cast(t) for kk, t in model.state_dict().items()})
        ts = {"epoch": epoch, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
              "generator": gen.get_state(), "elapsed_s": elapsed + time.time() - t0}
        cfg = dict(config, gcn_v=dict(vcfg), dtype="float16" if half else "float32")
        m = dict(meta or {}, n_centers=int(len(centers)), train_time_s=round(ts["elapsed_s"], 1),
                 gcn_v_train_time_s=vblob.get("meta", {}).get("train_time_s"), losses=list(losses))
        m.update(final or {})
        if out is not None:
            save_checkpoint(out, "gcn-e", int(x.shape[1]), cfg, state, ts, m)
        return {"format": "clusterg-checkpoint", "model": "gcn-e", "in_dim": int(x.shape[1]), "config": cfg,
                "state_dict": state, "train_state": ts, "meta": m}

    model.train()
    for epoch in progress(range(start, config["epochs"]), total=config["epochs"] - start, desc="gcn-e epochs"):
        perm = centers[torch.randperm(len(centers), generator=gen).numpy()]
        tot, cnt = 0.0, 0
        for s in progress(range(0, len(perm), config["batch_graphs"]), total=steps, desc=f"epoch {epoch + 1}"):
            b = candidate_batch(ft, adj, perm[s:s + config["batch_graphs"]], cand, mask, ytr,
                                center_dot=config["center_dot"])
            loss = torch.nn.functional.cross_entropy(model(b.x, b.edge_index, b.edge_weight), b.y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(b.y)
            cnt += len(b.y)
        losses.append(round(tot / max(cnt, 1), 6))
        log.info("gcn-e epoch %d/%d: loss %.5f", epoch + 1, config["epochs"], tot / max(cnt, 1))
        if epoch + 1 < config["epochs"]:
            if time_limit is not None and time.time() - t0 >= time_limit:
                log.warning("gcn-e: time limit reached after epoch %d of %d; resume to finish",
                            epoch + 1, config["epochs"])
                return snapshot(epoch + 1)
            if out is not None:
                snapshot(epoch + 1)

    final: dict[str, Any] = {}
    if val.any():
        final = _tune_on_val(v, vcfg, model, x[val], y[val], config)
        config.update({key: final[key] for key in ("tau", *_RULE_KEYS)})
    return snapshot(config["epochs"], final)


#: The fixed grid of GCN-E decision rules searched on held-aside identities (tau is tuned for each).
RULE_GRID: list[dict[str, Any]] = (
    [{"rule": "argmax", "ignore_ratio": r, "alpha": a} for r in (0.0, 0.5, 0.8) for a in (0.0, 0.01)]
    + [{"rule": "nearest", "alpha": a} for a in (0.0025, 0.005, 0.01, 0.02)]
    + [{"rule": rule, "p_min": pm, "p_high": ph, "beta": bt}
       for rule in ("nearest", "gate") for pm in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
       for ph, bt in [(1.0, 0.0)] + [(ph, bt) for ph in (0.8, 0.9, 0.95) for bt in (0.005, 0.01, 0.015)]])

_RULE_KEYS = {"rule": "nearest", "ignore_ratio": 0.0, "alpha": 0.0, "p_min": 0.0, "p_high": 1.0, "beta": 0.0}


def _gcn_v_baseline(v: GCNV, vcfg: dict, xv: np.ndarray, yv: np.ndarray) -> tuple[float, float]:
    """Pairwise and BCubed F of GCN-V alone, with its own stored settings, on held-aside data."""
    from ..linkage.tree_deduction import parents_to_labels
    from ..metrics import bcubed, pairwise
    nbrs, sims, agg = gcn_v_graph(xv, check_k(vcfg["k"], len(xv), clamp=True, min_k=2), vcfg.get("th_sim", 0.0))
    conf, hidden = predict_gcn_v(v, xv, agg)
    if int(vcfg.get("passes", 1)) == 2:
        nbrs, sims = _knn(gcn_features(hidden), nbrs.shape[1])
        tau = vcfg["tau"]
    else:
        tau = vcfg["tau_0"]
    pred = parents_to_labels(*nearest_higher(nbrs, sims, conf), tau)
    return float(pairwise(yv, pred)[2]), float(bcubed(yv, pred)[2])


def _tune_on_val(v: GCNV, vcfg: dict, model: GCNE, xv: np.ndarray, yv: np.ndarray, config: dict,
                 grid: list[dict] | None = None) -> dict:
    """Choose GCN-E's decision rule and tau on held-aside identities.

    The protocol is fixed in advance: the highest held-aside pairwise F wins, among the
    rules of :data:`RULE_GRID` whose BCubed F is at least GCN-V's (with GCN-V's own
    settings); if none qualifies, the plain GCN-V rule (``nearest``, no adjustment) is kept.
    """
    base_fp, base_fb = _gcn_v_baseline(v, vcfg, xv, yv)
    conf, feat, nbrs, sims = _space(v, vcfg, xv, vcfg["k"], config["k"], config["feature"])
    cand, mask, prob = gcn_e_scores(model, feat, nbrs, sims, conf, desc="val")  # every node once
    log.info("gcn-e validation: GCN-V alone Fp %.4f Fb %.4f", base_fp, base_fb)
    best: dict[str, Any] | None = None
    plain: dict[str, Any] | None = None
    for g in (RULE_GRID if grid is None else grid) + [{"rule": "nearest"}]:
        rule = dict(_RULE_KEYS, **g)
        parent, score = choose_parents(nbrs, sims, conf, cand, mask, prob, rule["ignore_ratio"], rule["rule"],
                                       rule["alpha"], rule["p_min"], rule["p_high"], rule["beta"])
        tau, fp, fb = tune_tau(nbrs, sims, conf, yv, parent, score, criterion="pairwise")
        log.info("gcn-e validation: %s tau %.4f Fp %.4f Fb %.4f", rule, tau, fp, fb)
        cur = dict(rule, tau=tau, val_fp=fp, val_fb=fb)
        if g == {"rule": "nearest"}:
            plain = cur
        elif fb >= base_fb and (best is None or (fp, fb) > (best["val_fp"], best["val_fb"])):
            best = cur
    best = best if best is not None else plain
    best.update(val_gcn_v_fp=base_fp, val_gcn_v_fb=base_fb)
    return best


def _cli_train(args) -> int:
    if args.quiet:
        set_quiet(True)
    from .._atomic import refuse_same_file
    from ..cli.cmd_train import print_result
    from .gcn_v import _load_xy, train_summary
    refuse_same_file(args.output, args.features, args.labels, args.gcn_v)
    x, y = _load_xy(args)
    dims = [int(d) for d in args.dims.split(",")] if args.dims else DEFAULTS["dims"]
    blob = train_gcn_e(x, y, args.gcn_v, k=args.k, dims=dims, feature=args.feature,
                       epochs=DEFAULTS["epochs"] if args.epochs is None else args.epochs, lr=args.lr,
                       batch_graphs=args.batch_size, seed=args.seed, out=args.output, resume=args.resume,
                       half=args.half, time_limit=args.time_limit, center_dot=args.center_dot,
                       train_ignore_ratio=args.train_ignore_ratio,
                       meta={"trained_on": str(Path(args.features).name)})
    c = blob["config"]
    print_result(args, train_summary(blob, args.output),
                 f"wrote {args.output}: stopped at epoch {blob['train_state']['epoch']} of {c['epochs']} "
                 f"(time limit); continue with --resume {args.output}" if blob["train_state"]["epoch"] < c["epochs"]
                 else f"wrote {args.output}: gcn-e k={c['k']} dims={c['dims']} feature={c['feature']} "
                      f"tau={c['tau']:.4f} rule={c['rule']} ignore_ratio={c['ignore_ratio']} alpha={c['alpha']} "
                      f"p_min={c['p_min']} p_high={c['p_high']} beta={c['beta']} ({blob['meta']['train_time_s']} s)")
    return 0


def add_cli(subparsers) -> None:
    """Add ``gcn-e`` under ``clusterg train``."""
    from .gcn_v import add_common_args
    p = subparsers.add_parser("gcn-e", help="train GCN-E (edge connectivity, CVPR'20) on top of a GCN-V checkpoint")
    add_common_args(p, val=False)
    p.set_defaults(batch_size=DEFAULTS["batch_graphs"])
    p.add_argument("--gcn-v", required=True, help="trained GCN-V checkpoint (clusterg train gcn-v)")
    p.add_argument("--k", type=int, default=DEFAULTS["k"], help="kNN size of the candidate sets (default 160)")
    p.add_argument("--dims", default=None, help="graph layer widths, comma separated (default 512,512,256,256)")
    p.add_argument("--feature", choices=["gcn", "raw", "raw+gcn"], default=DEFAULTS["feature"],
                   help="candidate-set node features: GCN-V features (default, the paper), the input, or both "
                        "(raw and raw+gcn take candidates from the input kNN)")
    p.add_argument("--train-ignore-ratio", type=float, default=DEFAULTS["train_ignore_ratio"],
                   help="skip this lowest-confidence fraction of nodes in training (paper 0.7; 0 trains on "
                        "every node, matching inference with ignore_ratio 0)")
    p.add_argument("--center-dot", action="store_true",
                   help="also feed each candidate's similarity to its centre to GCN-E")
    p.set_defaults(func=_cli_train)
