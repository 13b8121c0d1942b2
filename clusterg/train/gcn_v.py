"""Train GCN-V (vertex confidence) on labelled features; ``clusterg train gcn-v``.

The graph layer's neighbourhood mean ``Â x`` of the (fixed) input features is
computed once with a sparse product over the whole kNN graph; the remaining
network is per-node, so training draws mini-batches of nodes from the full
graph (exactly the full-graph model, at a fraction of the memory).

With ``val_fraction > 0`` the identities are split: the model trains on the
rest and the linkage thresholds (``tau_0`` on the input kNN, ``tau`` on the
GCN-V feature kNN, and which pass to use) are chosen on the held-aside
identities, then stored in the checkpoint's config so the clusterers use them
by default. Inference (:func:`~clusterg.models.gcn_v.load_gcn_v`,
:func:`~clusterg.models.gcn_v.predict_gcn_v`, ...) lives in :mod:`clusterg.models.gcn_v`.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._progress import progress, set_quiet
from .._validate import ClustergError, check_features, check_k, check_labels
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..models.gcn_v import (_build_model, _knn, gcn_features, gcn_v_graph,  # noqa: F401 (re-exported)
                            load_gcn_v, predict_gcn_v)
from ..nn.gcn_v import GCNV, confidence_targets

__all__ = ["train_gcn_v", "export_weights", "split_by_identity", "tune_tau", "train_summary", "add_cli", "DEFAULTS"]

log = logging.getLogger("clusterg.train.gcn_v")

#: Paper defaults (learn-to-cluster ``cfg_train_gcnv_ms1m.py``) except the optimiser:
#: node mini-batches with Adam instead of 80k full-graph SGD steps (CPU budget).
DEFAULTS: dict[str, Any] = {"k": 80, "hidden": 512, "th_sim": 0.0, "epochs": 20, "lr": 1e-3, "weight_decay": 1e-5,
                            "batch_size": 2048, "val_fraction": 0.2, "tau_0": 0.65, "tau": 0.8, "passes": 2}


def split_by_identity(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of the rows whose identity falls in a random ``fraction`` of identities."""
    ids = np.unique(labels)
    n_val = int(round(len(ids) * fraction))
    if fraction > 0 and (n_val < 1 or n_val >= len(ids)):
        raise ClustergError(f"val_fraction={fraction} leaves no identities on one side ({len(ids)} identities)")
    rng = np.random.default_rng(seed)
    return np.isin(labels, rng.choice(ids, n_val, replace=False))


def tune_tau(nbrs, sims, conf, labels, parent=None, parent_sim=None, grid: int = 150,
             criterion: str = "mean") -> tuple[float, float, float]:
    """Best ``tau`` for tree deduction on labelled data.

    The grid is the quantiles of the parent-edge similarities. ``criterion`` ``"mean"``
    (default) maximises the mean of pairwise and BCubed F, ``"pairwise"`` pairwise F
    (BCubed F breaks ties). Returns ``(tau, Fp, Fb)``.
    """
    from ..linkage.tree_deduction import nearest_higher, parents_to_labels
    from ..metrics import bcubed, pairwise
    if criterion not in ("mean", "pairwise"):
        raise ClustergError(f"criterion must be 'mean' or 'pairwise', got {criterion!r}")
    if parent is None:
        parent, parent_sim = nearest_higher(nbrs, sims, conf)
    ps = parent_sim[(parent >= 0) & np.isfinite(parent_sim)]
    if len(ps) == 0:
        return 0.0, float("nan"), float("nan")
    cand = np.unique(np.clip(np.quantile(ps, np.linspace(0.02, 0.98, grid)), -1.0, 1.0))
    best_key, best = None, (float(cand[0]), float("nan"), float("nan"))
    for tau in cand:
        pred = parents_to_labels(parent, parent_sim, float(tau))
        fp, fb = pairwise(labels, pred)[2], bcubed(labels, pred)[2]
        fp = 0.0 if math.isnan(fp) else fp
        key = ((fp + fb) / 2, fp) if criterion == "mean" else (fp, fb)
        if best_key is None or key > best_key:
            best_key, best = key, (float(tau), fp, fb)
    return best


def train_gcn_v(features, labels, *, k: int = DEFAULTS["k"], hidden: int = DEFAULTS["hidden"],
                epochs: int = DEFAULTS["epochs"], lr: float = DEFAULTS["lr"],
                weight_decay: float = DEFAULTS["weight_decay"], batch_size: int = DEFAULTS["batch_size"],
                th_sim: float = DEFAULTS["th_sim"], val_fraction: float = DEFAULTS["val_fraction"], seed: int = 0,
                out: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
                half: bool = False, knn_method: str = "flat", meta: dict | None = None,
                threads: int | None = 2, time_limit: float | None = None) -> dict:
    """Train GCN-V and return the checkpoint dict (also written to ``out`` after every epoch).

    Args:
        features: (N, D) float; rows are L2-normalised here.
        labels: (N,) int identities.
        k: kNN size, self included (paper 80). hidden: width (paper 512).
        epochs: passes over the nodes; batch_size: nodes per step (0 = the whole graph per step).
        val_fraction: identities held aside to choose tau_0 / tau / passes (0 keeps the paper's values).
        resume: checkpoint written by an earlier run; training continues from its epoch.
        half: store weights as float16 (smaller files; inference runs in float32).
        threads: torch CPU threads (None leaves torch's setting).
        time_limit: seconds; after the epoch that crosses it, save a resumable checkpoint and
            return early (``config["epochs"]`` stays the planned total; resume to finish).
    """
    if threads:
        torch.set_num_threads(int(threads))
    x = check_features(features, min_n=4, normalize=True)
    y = check_labels(labels, n=x.shape[0])
    if isinstance(epochs, bool) or int(epochs) < 0:
        raise ClustergError(f"epochs must be >= 0, got {epochs}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ClustergError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    config = dict(DEFAULTS, k=int(k), hidden=int(hidden), epochs=int(epochs), lr=float(lr),
                  weight_decay=float(weight_decay), batch_size=int(batch_size), th_sim=float(th_sim),
                  val_fraction=float(val_fraction), seed=int(seed), knn_method=knn_method)
    train_state = None
    if resume is not None:
        blob = load_checkpoint(resume, model="gcn-v", in_dim=x.shape[1])
        train_state = blob.get("train_state")
        if not train_state:
            raise ClustergError(f"checkpoint {resume} holds no training state to resume from")
        for key in ("k", "hidden", "th_sim", "val_fraction", "seed", "lr", "batch_size", "weight_decay"):
            config[key] = blob["config"][key]  # the run continues with its own settings
        config["epochs"] = max(int(epochs), int(train_state["epoch"]))
    torch.manual_seed(config["seed"])

    val = split_by_identity(y, config["val_fraction"], config["seed"]) if config["val_fraction"] > 0 else \
        np.zeros(len(y), dtype=bool)
    xtr, ytr = x[~val], y[~val]
    ktr = check_k(config["k"], len(xtr), clamp=True, min_k=2)
    if ktr != config["k"]:
        log.warning("k=%d is larger than the %d training points; using k=%d", config["k"], len(xtr), ktr)
    t0 = time.time()
    nbrs, sims, agg = gcn_v_graph(xtr, ktr, config["th_sim"], knn_method=knn_method, seed=config["seed"])
    target = torch.from_numpy(confidence_targets(nbrs, sims, ytr))
    xt = torch.from_numpy(xtr)

    model = _build_model(x.shape[1], config)
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    n = len(xtr)
    bs = n if config["batch_size"] <= 0 else min(config["batch_size"], n)
    steps_per_epoch = math.ceil(n / bs)
    total = max(1, config["epochs"] * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    start, elapsed = 0, 0.0
    losses: list[float] = []  # mean training MSE of each epoch, kept in the checkpoint's meta
    gen = torch.Generator().manual_seed(config["seed"])
    if train_state is not None:
        model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
        opt.load_state_dict(train_state["optimizer"])
        sched.load_state_dict(train_state["scheduler"])
        gen.set_state(train_state["generator"])
        start, elapsed = int(train_state["epoch"]), float(train_state.get("elapsed_s", 0.0))
        losses = [float(v) for v in blob.get("meta", {}).get("losses", [])][:start]

    def snapshot(epoch: int, final_meta: dict | None = None) -> dict:
        state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
        ts = {"epoch": epoch, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
              "generator": gen.get_state(), "elapsed_s": elapsed + time.time() - t0}
        m = dict(meta or {}, n_train=int(n), n_val=int(val.sum()), train_time_s=round(ts["elapsed_s"], 1),
                 losses=list(losses))
        m.update(final_meta or {})
        blob = {"format": "clusterg-checkpoint", "model": "gcn-v", "in_dim": int(x.shape[1]),
                "config": dict(config, dtype="float16" if half else "float32"), "state_dict": state,
                "train_state": ts, "meta": m}
        if out is not None:
            save_checkpoint(out, "gcn-v", blob["in_dim"], blob["config"], state, ts, m)
        return blob

    model.train()
    for epoch in progress(range(start, config["epochs"]), total=config["epochs"] - start, desc="gcn-v epochs"):
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for s in range(0, n, bs):
            b = perm[s:s + bs]
            conf, _ = model(xt[b], x_agg=agg[b])
            loss = torch.nn.functional.mse_loss(conf, target[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item() * len(b)
        losses.append(round(tot / n, 6))
        log.info("gcn-v epoch %d/%d: mse %.5f", epoch + 1, config["epochs"], tot / n)
        if epoch + 1 < config["epochs"]:
            if time_limit is not None and time.time() - t0 >= time_limit:
                log.warning("gcn-v: time limit reached after epoch %d of %d; resume to finish",
                            epoch + 1, config["epochs"])
                return snapshot(epoch + 1)
            if out is not None:
                snapshot(epoch + 1)

    final: dict[str, Any] = {}
    if val.any():
        final = _tune_on_val(model, x[val], y[val], config)
        config.update({key: final[key] for key in ("tau_0", "tau", "passes")})
    return snapshot(config["epochs"], final)


def _tune_on_val(model: GCNV, xv: np.ndarray, yv: np.ndarray, config: dict) -> dict:
    """Choose tau_0 (pass 1), tau (pass 2) and the pass on held-aside identities."""
    from ..linkage.tree_deduction import nearest_higher
    kv = check_k(config["k"], len(xv), clamp=True, min_k=2)
    nbrs, sims, agg = gcn_v_graph(xv, kv, config["th_sim"])
    conf, hidden = predict_gcn_v(model, xv, agg)
    tau_0, fp1, fb1 = tune_tau(nbrs, sims, conf, yv)
    n2, s2 = _knn(gcn_features(hidden), kv)
    tau, fp2, fb2 = tune_tau(n2, s2, conf, yv, *nearest_higher(n2, s2, conf))
    passes = 2 if fp2 + fb2 > fp1 + fb1 else 1
    log.info("gcn-v validation: pass 1 tau_0=%.4f Fp %.4f Fb %.4f; pass 2 tau=%.4f Fp %.4f Fb %.4f",
             tau_0, fp1, fb1, tau, fp2, fb2)
    return {"tau_0": tau_0, "tau": tau, "passes": passes, "val_pass1_fp": fp1, "val_pass1_fb": fb1,
            "val_pass2_fp": fp2, "val_pass2_fb": fb2}


def _load_xy(args) -> tuple[np.ndarray, np.ndarray]:
    from ..data.io import load_features, read_meta
    x = load_features(args.features, dim=args.dim)
    y = read_meta(args.labels)
    return np.asarray(x), y


def _cli_train(args) -> int:
    from ..cli.cmd_train import print_result
    if args.quiet:
        set_quiet(True)
    from .._atomic import refuse_same_file
    refuse_same_file(args.output, args.features, args.labels)
    x, y = _load_xy(args)
    blob = train_gcn_v(x, y, k=args.k, hidden=args.hidden, epochs=args.epochs, lr=args.lr,
                       batch_size=args.batch_size, val_fraction=args.val_fraction, seed=args.seed,
                       out=args.output, resume=args.resume, half=args.half, time_limit=args.time_limit,
                       meta={"trained_on": str(Path(args.features).name)})
    c = blob["config"]
    print_result(args, train_summary(blob, args.output),
                 f"wrote {args.output}: stopped at epoch {blob['train_state']['epoch']} of {c['epochs']} "
                 f"(time limit); continue with --resume {args.output}" if blob["train_state"]["epoch"] < c["epochs"]
                 else f"wrote {args.output}: gcn-v k={c['k']} hidden={c['hidden']} tau_0={c['tau_0']:.4f} "
                      f"tau={c['tau']:.4f} passes={c['passes']} ({blob['meta']['train_time_s']} s)")
    return 0


def train_summary(blob: dict, output) -> dict:
    """What ``clusterg train gcn-v|gcn-e --json`` prints: model, checkpoint, epochs done / planned,
    per-epoch losses, seconds, whether it finished, and the linkage settings stored in the config."""
    c, m = blob["config"], blob.get("meta", {})
    done = int(blob["train_state"]["epoch"])
    keys = ("k", "hidden", "dims", "feature", "tau_0", "tau", "passes", "rule", "ignore_ratio", "alpha", "p_min",
            "p_high", "beta")
    return {"model": blob["model"], "checkpoint": str(output), "epochs": done, "epochs_planned": int(c["epochs"]),
            "finished": done >= int(c["epochs"]), "losses": list(m.get("losses", [])),
            "seconds": m.get("train_time_s"), "config": {key: c[key] for key in keys if key in c}}


def add_common_args(p: argparse.ArgumentParser, val: bool = True) -> None:
    p.add_argument("features", help="features: .bin (with --dim), .npy or .npz")
    p.add_argument("--labels", required=True, help="labels: .meta (one int a line), .npy or .txt")
    p.add_argument("-o", "--output", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--dim", type=int, default=None, help="feature dimension of a .bin file")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    if val:
        p.add_argument("--val-fraction", type=float, default=DEFAULTS["val_fraction"],
                       help="identities held aside to choose the linkage thresholds (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", default=None, help="continue a run from its checkpoint")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds: stop after the epoch that crosses it, leaving a resumable checkpoint")
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_cli(subparsers) -> None:
    """Add ``gcn-v`` under ``clusterg train``."""
    p = subparsers.add_parser("gcn-v", help="train GCN-V (vertex confidence, CVPR'20)")
    add_common_args(p)
    p.add_argument("--k", type=int, default=DEFAULTS["k"], help="kNN size, self included (default 80)")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"], help="hidden width (default 512)")
    p.set_defaults(func=lambda a: _cli_train(_fill(a, DEFAULTS["epochs"])))


def _fill(args, epochs: int):
    if args.epochs is None:
        args.epochs = epochs
    return args


def export_weights(src, dst, half: bool = True) -> Path:
    """Copy a finished checkpoint without its training state (optionally float16) for shipping."""
    from .._atomic import refuse_same_file
    blob = load_checkpoint(src)
    refuse_same_file(dst, src)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
    config = dict(blob["config"], dtype="float16" if half else "float32")
    return save_checkpoint(dst, blob["model"], blob["in_dim"], config, state, None, blob.get("meta"))
