"""Training Ada-NETS (AND + GCN encoder) from Python or ``clusterg train ada-nets``.

Pipeline on labelled training features (identities disjoint from the data it
will later cluster):

1. kNN (cosine, self first) and the structure space (:mod:`clusterg.transforms.structure_space`);
2. ``k*`` from the labels (:func:`clusterg.nn.quality.neighbour_quality`) and the
   AND regressor trained on it (:func:`train_and`);
3. the GCN encoder trained with the pair loss on seed neighbourhoods of the
   plain kNN graph (:func:`train_encoder`), as in the paper;
4. thresholds for the final linkage chosen on a held-aside part of the
   training identities (:func:`train_ada_nets`), stored in the checkpoint.

Everything is bounded by ``time_limit`` seconds per stage and uses at most
``threads`` CPU threads. Inference (:func:`~clusterg.models.ada_nets.refine`,
:func:`~clusterg.models.ada_nets.link`, ...) lives in :mod:`clusterg.models.ada_nets`.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._progress import progress
from .._validate import ClustergError, check_features, check_labels
from ..models.ada_nets import (DEFAULT_CONFIG, MODEL_NAME, embed, link,  # noqa: F401 (re-exported)
                               mean_adjacency, models_from_checkpoint, predict_k, refine)
from ..models.checkpoint import save_checkpoint
from ..nn.ada_gcn import AdaGCN, pair_loss
from ..nn.and_module import AND, and_inputs, and_loss
from ..nn.quality import neighbour_quality
from ..transforms.structure_space import structure_space

__all__ = ["train_and", "train_encoder", "train_ada_nets", "tune_thresholds", "split_identities", "add_cli"]

logger = logging.getLogger("clusterg.train.ada_nets")


def _check_train_inputs(x, labels, nbrs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = check_features(x, min_n=2)
    y = check_labels(labels, n=len(x))
    nbrs = np.asarray(nbrs)
    if nbrs.ndim != 2 or nbrs.shape[0] != len(x) or nbrs.shape[1] < 2:
        raise ClustergError(f"nbrs: expected shape ({len(x)}, K) with K >= 2, got {tuple(nbrs.shape)}")
    if not np.issubdtype(nbrs.dtype, np.integer) or nbrs.min() < 0 or nbrs.max() >= len(x):
        raise ClustergError(f"nbrs: expected integer ids in [0, {len(x) - 1}]")
    return x, y, nbrs.astype(np.int64, copy=False)


class _TimedCosine:
    """Learning-rate schedule on training progress ``p = max(step / total, elapsed / time_limit)``:
    linear warm-up over the first 5 %, then cosine decay to 0, so a run stopped by its time
    bound still ends with a small learning rate."""

    def __init__(self, opt: torch.optim.Optimizer, total: int, time_limit: float, warmup: float = 0.05):
        self.opt, self.total, self.time_limit, self.warmup = opt, max(1, int(total)), float(time_limit), warmup
        self.base = [g["lr"] for g in opt.param_groups]
        self.t0, self.step_num = time.time(), 0
        self._apply(0.0)

    def progress(self) -> float:
        by_time = (time.time() - self.t0) / self.time_limit if self.time_limit > 0 else 0.0
        return min(1.0, max(self.step_num / self.total, by_time))

    def _apply(self, p: float) -> None:
        if p < self.warmup:
            f = max(p / self.warmup, 1.0 / (self.total * self.warmup + 1))
        else:
            f = 0.5 * (1.0 + np.cos(np.pi * (p - self.warmup) / (1.0 - self.warmup)))
        for g, b in zip(self.opt.param_groups, self.base):
            g["lr"] = b * f

    def step(self) -> None:
        self.step_num += 1
        self._apply(self.progress())


# --------------------------------------------------------------------------- AND
def train_and(x: np.ndarray, ss_nbrs: np.ndarray, ss_sims: np.ndarray, ss_cos: np.ndarray, k_star: np.ndarray,
              arch: str = "lstm", hidden: int = 128, epochs: int = 3, batch_size: int = 256, lr: float = 1e-3,
              seed: int = 0, time_limit: float = 300.0, val_frac: float = 0.1,
              quiet: bool | None = None) -> tuple[AND, dict[str, Any]]:
    """Train the AND regressor of ``k*`` (see :class:`clusterg.nn.and_module.AND`).

    Args:
        x: float32 (N, D) L2-normalised features.
        ss_nbrs, ss_sims, ss_cos: (N, K) structure-space lists (ids, structure
            similarities, cosine similarities), row i starting with i.
        k_star: int (N,) targets in 1..K.
        arch: 'lstm' (the paper's Bi-LSTM over neighbour features) or 'mlp'
            (a small MLP over the similarity profile).
        time_limit: seconds; training stops after it.
        val_frac: nodes held out to report the MAE.

    Returns:
        ``(model, info)`` with info keys ``mae``, ``mae_const`` (MAE of the best
        constant), ``steps``, ``seconds``.
    """
    x, k_star, ss_nbrs = _check_train_inputs(x, k_star, ss_nbrs)
    if ss_sims.shape != ss_nbrs.shape or ss_cos.shape != ss_nbrs.shape:
        raise ClustergError("ss_sims and ss_cos must have the shape of ss_nbrs")
    if k_star.min() < 1 or k_star.max() > ss_nbrs.shape[1]:
        raise ClustergError(f"k_star must lie in 1..{ss_nbrs.shape[1]}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n, kk = ss_nbrs.shape
    model = AND(in_dim=x.shape[1], k=kk, arch=arch, hidden=hidden)
    perm = rng.permutation(n)
    n_val = max(1, int(round(n * val_frac)))
    val, tr = perm[:n_val], perm[n_val:]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    total = max(1, epochs * int(np.ceil(len(tr) / batch_size)))
    sched = _TimedCosine(opt, total, time_limit)
    xt = torch.from_numpy(x)
    target = torch.from_numpy(k_star.astype(np.float32) / kk)
    t0, step = time.time(), 0
    bar = progress(total=total, desc="train AND", disable=quiet)
    model.train()
    done = False
    epoch_losses: list[float] = []  # mean training loss of each (possibly cut short) epoch
    for _ in range(epochs):
        order = rng.permutation(tr)
        tot, cnt = 0.0, 0
        for s in range(0, len(order), batch_size):
            b = order[s:s + batch_size]
            inp = and_inputs(xt, ss_nbrs[b], ss_sims[b], ss_cos[b], arch)
            loss = and_loss(model(*inp), target[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            tot, cnt = tot + float(loss.detach()) * len(b), cnt + len(b)
            bar.update(1)
            if time.time() - t0 > time_limit:
                done = True
                break
        if cnt:
            epoch_losses.append(round(tot / cnt, 6))
        if done:
            break
    bar.close()
    pred = predict_k(model, x, ss_nbrs[val], ss_sims[val], ss_cos[val])
    mae = float(np.abs(pred - k_star[val]).mean())
    const = float(np.median(k_star[tr]))
    info = {"mae": mae, "mae_const": float(np.abs(const - k_star[val]).mean()), "steps": step,
            "seconds": time.time() - t0, "arch": arch, "epochs": len(epoch_losses), "losses": epoch_losses}
    logger.info("AND: val MAE %.2f (constant %.2f), %d steps, %.0fs", mae, info["mae_const"], step, info["seconds"])
    return model, info


# --------------------------------------------------------------------------- GCN encoder
def train_encoder(x: np.ndarray, labels: np.ndarray, nbrs: np.ndarray, k_train: int = 80, batch_nbrs: int = 128,
                  seeds_per_step: int = 8, fanout: int = 10, hidden: int = 512, out_dim: int = 512,
                  steps: int = 1500, lr: float = 1e-3, optimizer: str = "adam", pos_margin: float = 0.9,
                  neg_margin: float = 1.0,
                  neg_mode: str = "max", seed: int = 0, time_limit: float = 300.0, quiet: bool | None = None
                  ) -> tuple[AdaGCN, dict[str, Any]]:
    """Train the GCN encoder with the pair loss on seed neighbourhoods.

    Each step draws ``seeds_per_step`` seed nodes; a seed's batch is the seed
    plus ``batch_nbrs`` random members of its kNN list (the paper: 128 of 256).
    The first layer uses the exact mean over each node's neighbours in the
    symmetrised ``k_train``-NN graph (precomputed: there are no parameters before
    its linear map); the second samples ``fanout`` of the ``k_train`` list (plus self).

    Args:
        x: float32 (N, D) L2-normalised features; labels: int (N,).
        nbrs: int (N, K) kNN ids, self first, K >= max(k_train, batch_nbrs + 1).
        steps: optimiser steps; ``optimizer`` 'adam' (AdamW, default) or 'sgd'
            (momentum 0.9, the paper's), wd 1e-5, warm-up + cosine LR over
            ``max(step / steps, elapsed / time_limit)``.
        pos_margin, neg_margin, neg_mode: see :func:`clusterg.nn.ada_gcn.pair_loss`.
        time_limit: seconds; training stops after it.

    Returns:
        ``(model, info)``.
    """
    x, labels, nbrs = _check_train_inputs(x, labels, nbrs)
    if optimizer not in ("adam", "sgd"):
        raise ClustergError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if int(k_train) < 2 or int(seeds_per_step) < 1 or int(fanout) < 1:
        raise ClustergError("k_train must be >= 2, seeds_per_step and fanout >= 1")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n, kk = nbrs.shape
    seeds_per_step = min(int(seeds_per_step), n)
    k_train = min(int(k_train), kk)
    batch_nbrs = min(int(batch_nbrs), kk - 1)
    fanout = min(int(fanout), k_train - 1)
    model = AdaGCN(x.shape[1], hidden=hidden, out_dim=out_dim)
    xt = torch.from_numpy(x)
    adj = mean_adjacency(nbrs, k_train)
    agg_x = torch.from_numpy(np.asarray(adj @ x, dtype=np.float32))
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-5)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = _TimedCosine(opt, max(int(steps), 1), time_limit)
    y = torch.from_numpy(labels)
    t0 = time.time()
    losses = []
    model.train()
    bar = progress(range(steps), total=steps, desc="train GCN", disable=quiet)
    done = 0
    for _ in bar:
        seeds = rng.choice(n, size=seeds_per_step, replace=False)
        cols = np.stack([rng.choice(np.arange(1, kk), size=batch_nbrs, replace=False) for _ in seeds])
        members = np.concatenate([seeds[:, None], nbrs[seeds[:, None], cols]], axis=1)  # (S, 1 + B)
        groups = np.repeat(np.arange(len(seeds)), members.shape[1])
        dst = members.ravel()
        # second-layer neighbours: self + `fanout` sampled from the k_train list
        pick = rng.integers(1, k_train, size=(len(dst), fanout))
        src_nodes = np.concatenate([dst[:, None], nbrs[dst[:, None], pick]], axis=1)
        uniq, inv = np.unique(src_nodes, return_inverse=True)
        inv = inv.reshape(src_nodes.shape)
        h1 = model.layer1(agg_x[torch.from_numpy(uniq)])
        edge_index = torch.from_numpy(np.stack([inv.ravel(), np.repeat(np.arange(len(dst)), inv.shape[1])]))
        h1_dst = h1[torch.from_numpy(inv[:, 0])]
        z = model.layer2_and_head((h1, h1_dst), edge_index, size=(len(uniq), len(dst)))
        loss = pair_loss(z, y[torch.from_numpy(dst)], pos_margin, neg_margin, torch.from_numpy(groups), neg_mode)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        done += 1
        if time.time() - t0 > time_limit:
            break
    bar.close()
    del xt
    info = {"steps": done, "seconds": time.time() - t0, "loss_first": float(np.mean(losses[:20])),
            "loss_last": float(np.mean(losses[-20:]))}
    logger.info("GCN: %d steps, loss %.3f -> %.3f, %.0fs", done, info["loss_first"], info["loss_last"],
                info["seconds"])
    return model, info


# --------------------------------------------------------------------------- the whole pipeline
def split_identities(labels: np.ndarray, holdout: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of the nodes whose identity is held aside (a ``holdout`` fraction of identities)."""
    rng = np.random.default_rng(seed)
    ids = np.unique(labels)
    n_hold = int(round(len(ids) * holdout))
    if holdout > 0 and (n_hold < 1 or n_hold >= len(ids)):
        raise ClustergError(f"holdout={holdout} leaves no identities on one side ({len(ids)} identities)")
    hold = rng.choice(ids, size=n_hold, replace=False)
    return np.isin(labels, hold)


def _pairwise_f(gt: np.ndarray, pred: np.ndarray) -> float:
    from ..metrics import pairwise
    f = pairwise(gt, pred)[2]
    return 0.0 if not np.isfinite(f) else float(f)


def tune_thresholds(z: np.ndarray, labels: np.ndarray, k_final: int, seed: int = 0) -> dict[str, Any]:
    """Best cc threshold and Infomap min-sim (pairwise F) on labelled refined embeddings."""
    from ..knn import knn_search
    nb, si = knn_search(z, min(k_final, len(z)), normalize=False)
    grid = np.round(np.concatenate([np.arange(0.30, 0.90, 0.05), np.arange(0.90, 0.995, 0.01)]), 3)
    cc = [(_pairwise_f(labels, link(nb, si, "cc", t)), float(t)) for t in grid]
    im = [(_pairwise_f(labels, link(nb, si, "infomap", t, seed)), float(t)) for t in grid]
    (f_cc, t_cc), (f_im, t_im) = max(cc), max(im)
    return {"threshold": t_cc, "f_cc": f_cc, "min_sim": t_im, "f_infomap": f_im}


def train_ada_nets(features, labels, out: str | Path | None = None, *, k: int = 20, lam: float = 0.3,
                   beta: float = 0.5, and_arch: str = "mlp", and_epochs: int = 20, and_time: float = 60.0,
                   gcn_steps: int = 600, gcn_time: float = 360.0, k_train: int = 10, seeds_per_step: int = 4,
                   neg_mode: str = "all", neg_margin: float = -0.5, holdout: float | np.ndarray = 0.2, seed: int = 0,
                   graphs: tuple = (("and", 0), ("knn", 3), ("knn", 5), ("knn", 10)),
                   threads: int = 2, half: bool = True, quiet: bool | None = None) -> dict[str, Any]:
    """Train AND and the GCN encoder, pick graph and thresholds on held-aside identities.

    Args:
        features: float (N, D) training features (L2-normalised here).
        labels: int (N,) identities.
        out: checkpoint path (written atomically); None to only return it.
        k, lam, beta: structure-space size (20; the paper's 80 suits identities with
            about 70 faces, see the documentation), cosine weight and F-beta of k*.
        and_arch, and_epochs, and_time: AND design, epochs and time bound (s).
        gcn_steps, gcn_time, k_train, seeds_per_step, neg_mode, neg_margin: encoder training
            (see :func:`train_encoder`).
        holdout: fraction of identities held aside to choose the GCN's input graph
            and the linkage thresholds (0 keeps the defaults), or a boolean ``(N,)`` mask of
            the rows to hold aside (e.g. the held-aside identities of an earlier run, when
            other training data is added).
        graphs: candidate GCN input graphs tried on the held-aside identities:
            ('and', 0) the adaptive graph from AND, ('knn', m) the first m kNN.
        threads: torch/faiss threads.
        half: store weights as float16 (half the file size).

    Returns:
        the checkpoint dict (see :mod:`clusterg.train.checkpoint`).
    """
    from ..knn import knn_search
    from ..knn.search import set_num_threads
    t_start = time.time()
    x = check_features(features, min_n=4, normalize=True)
    y = check_labels(labels, n=len(x))
    if isinstance(holdout, np.ndarray):
        if holdout.dtype != bool or holdout.shape != (len(y),):
            raise ClustergError(f"holdout: a mask must be a boolean array of shape ({len(y)},), got "
                                f"{holdout.dtype} {holdout.shape}")
        if holdout.all():
            raise ClustergError("holdout: the mask holds every row aside; nothing is left to train on")
        if holdout.any() and np.isin(y[holdout], y[~holdout]).any():
            raise ClustergError("holdout: the mask splits an identity between training and held-aside rows")
        hold = holdout.copy()
    else:
        if not 0.0 <= float(holdout) < 1.0:
            raise ClustergError(f"holdout must lie in [0, 1), got {holdout}")
        hold = split_identities(y, holdout, seed) if holdout > 0 else np.zeros(len(y), bool)
    torch.set_num_threads(int(threads))
    set_num_threads(int(threads))
    xt, yt = x[~hold], y[~hold]
    n = len(xt)
    kk = min(max(int(k), 2 * k_train, 129), n)
    nbrs, sims = knn_search(xt, kk, normalize=False, quiet=quiet)
    k_ss = min(int(k), kk)
    ss_nbrs, ss_sims, ss_cos = structure_space(nbrs, sims, k=k_ss, lam=lam, return_cosine=True, quiet=quiet)
    _, k_star = neighbour_quality(ss_nbrs, yt, beta=beta)
    and_model, and_info = train_and(xt, ss_nbrs, ss_sims, ss_cos, k_star, arch=and_arch, epochs=and_epochs,
                                    time_limit=and_time, seed=seed, quiet=quiet)
    gcn, gcn_info = train_encoder(xt, yt, nbrs, k_train=k_train, steps=gcn_steps, time_limit=gcn_time,
                                  seeds_per_step=seeds_per_step, neg_mode=neg_mode, neg_margin=neg_margin,
                                  seed=seed, quiet=quiet)
    config = dict(DEFAULT_CONFIG, k=k_ss, lam=float(lam), beta=float(beta), and_arch=and_arch,
                  and_hidden=and_model.hidden, gcn_hidden=gcn.hidden, gcn_out=gcn.out_dim)
    tuning: dict[str, Any] = {}
    if hold.any():
        xh, yh = x[hold], y[hold]
        nbh, sih = knn_search(xh, min(k_ss, len(xh)), normalize=False, quiet=quiet)
        best = None
        for graph, k_graph in graphs:
            cfg = dict(config, graph=graph, k_graph=k_graph)
            z, _ = refine(xh, nbh, sih, and_model, gcn, cfg, quiet=quiet)
            res = tune_thresholds(z, yh, config["k_final"], seed=seed)
            name = graph if graph == "and" else f"knn{k_graph}"
            tuning[name] = res
            logger.info("held-aside %s: cc F %.4f at %.2f, infomap F %.4f at %.2f", name, res["f_cc"],
                        res["threshold"], res["f_infomap"], res["min_sim"])
            score = max(res["f_cc"], res["f_infomap"])
            if best is None or score > best[0]:
                best = (score, graph, k_graph, res)
        _, graph, k_graph, res = best
        config.update(graph=graph, k_graph=k_graph, threshold=res["threshold"], min_sim=res["min_sim"],
                      linkage="infomap" if res["f_infomap"] > res["f_cc"] else "cc")
        ss_h = structure_space(nbh, sih, k=min(k_ss, nbh.shape[1]), lam=lam, return_cosine=True, quiet=quiet)
        _, ks_h = neighbour_quality(ss_h[0], yh, beta=beta)
        if ss_h[0].shape[1] == and_model.k:
            kh = predict_k(and_model, xh, *ss_h)
            and_info["mae_holdout"] = float(np.abs(kh - ks_h).mean())
    state = {f"and.{key}": v for key, v in and_model.state_dict().items()}
    state.update({f"gcn.{key}": v for key, v in gcn.state_dict().items()})
    if half:
        state = {key: (v.half() if v.is_floating_point() else v) for key, v in state.items()}
    meta = {"trained_on": {"n": int(len(x)), "n_train": int(n), "n_holdout": int(hold.sum()),
                           "identities": int(len(np.unique(y)))},
            "and": and_info, "gcn": gcn_info, "holdout_tuning": tuning,
            "seconds": time.time() - t_start, "train_params": {
                "and_epochs": and_epochs, "gcn_steps": gcn_steps, "k_train": k_train,
                "seeds_per_step": seeds_per_step, "neg_mode": neg_mode, "neg_margin": neg_margin,
                "holdout": holdout if not isinstance(holdout, np.ndarray) else "mask", "seed": seed}}
    blob = {"model": MODEL_NAME, "in_dim": int(x.shape[1]), "config": config, "state_dict": state, "meta": meta}
    if out is not None:
        save_checkpoint(out, MODEL_NAME, int(x.shape[1]), config, state, None, meta)
    logger.info("Ada-NETS trained in %.0fs: graph=%s threshold=%.3f min_sim=%.3f", meta["seconds"],
                config["graph"], config["threshold"], config["min_sim"])
    return blob


# --------------------------------------------------------------------------- CLI
def add_cli(subparsers) -> None:
    """Add ``ada-nets`` to ``clusterg train``."""
    p = subparsers.add_parser("ada-nets", help="train Ada-NETS (AND + GCN encoder) on labelled features",
                              description="Train Ada-NETS on labelled features; thresholds are chosen on a "
                                          "held-aside part of the training identities.")
    p.add_argument("features", help="features file (.bin with --dim, .npy, .npz)")
    p.add_argument("--labels", required=True, help="labels file (.meta: one integer a line, or .npy)")
    p.add_argument("-o", "--output", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--dim", type=int, default=None, help="feature dimension of a raw .bin file")
    p.add_argument("--k", type=int, default=20,
                   help="structure-space neighbours (default 20; the paper used 80 for MS1M)")
    p.add_argument("--lam", type=float, default=0.3, help="cosine weight in the structure similarity (0.3)")
    p.add_argument("--and-arch", choices=["lstm", "mlp"], default="mlp",
                   help="AND design: mlp (similarity profile, default) or lstm (the paper's Bi-LSTM, slow on CPU)")
    p.add_argument("--and-epochs", type=int, default=20)
    p.add_argument("--and-time", type=float, default=60.0, help="time bound for AND, seconds")
    p.add_argument("--k-train", type=int, default=10,
                   help="kNN size of the GCN training graph (default 10; the paper used 256)")
    p.add_argument("--gcn-steps", type=int, default=600)
    p.add_argument("--gcn-time", type=float, default=360.0, help="time bound for the GCN, seconds")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of identities held aside for tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=_cli_main)


def _cli_main(args) -> int:
    from .._atomic import refuse_same_file
    from .._progress import is_quiet
    from ..cli.cmd_train import print_result
    from ..data.io import load_features, read_meta
    refuse_same_file(args.output, args.features, args.labels)
    x = load_features(args.features, dim=args.dim)
    lab = Path(args.labels)
    y = np.load(lab) if lab.suffix == ".npy" else read_meta(lab)
    blob = train_ada_nets(x, y, args.output, k=args.k, lam=args.lam, and_arch=args.and_arch,
                          and_epochs=args.and_epochs, and_time=args.and_time, gcn_steps=args.gcn_steps,
                          gcn_time=args.gcn_time, k_train=args.k_train, holdout=args.holdout, seed=args.seed,
                          threads=args.threads, quiet=bool(getattr(args, "quiet", False)) or is_quiet())
    cfg, meta = blob["config"], blob["meta"]
    summary = {"model": MODEL_NAME, "checkpoint": str(args.output), "epochs": meta["and"].get("epochs"),
               "losses": {"and": meta["and"].get("losses", []),
                          "gcn": {"first": meta["gcn"].get("loss_first"), "last": meta["gcn"].get("loss_last")}},
               "gcn_steps": meta["gcn"].get("steps"), "seconds": round(float(meta["seconds"]), 1),
               "config": {key: cfg.get(key) for key in ("k", "graph", "k_graph", "linkage", "threshold", "min_sim")}}
    print_result(args, summary, f"wrote {args.output}: graph={cfg['graph']} linkage={cfg['linkage']} "
                                f"threshold={cfg['threshold']:.3f} min_sim={cfg['min_sim']:.3f} "
                                f"({meta['seconds']:.0f}s)")
    return 0
