"""Ada-NETS clustering: structure space -> AND -> adaptive graph -> GCN embeddings -> linkage."""
from __future__ import annotations

import logging
import os

import numpy as np
import torch

from .._validate import ClustergError, check_threshold
from ..knn import knn_search
from ..models.ada_nets import MODEL_NAME, link, models_from_checkpoint, refine
from ..models.checkpoint import load_checkpoint, packaged_weights
from ._common import features_and_knn
from ._threshold import is_auto, resolve_threshold
from .base import BaseClusterer

__all__ = ["AdaNetsClusterer", "PACKAGED_WEIGHTS"]

logger = logging.getLogger("clusterg.cluster.ada_nets")
PACKAGED_WEIGHTS = {128: "ada_nets_dlib128.pt"}


#: Input-space similarity floor for the packaged weights, by feature dimension (see ``raw_min_sim``).
_PACKAGED_RAW_MIN_SIM = {128: 0.89}


class AdaNetsClusterer(BaseClusterer):
    """Ada-NETS (Wang et al., ICLR 2022) with a choice of final linkage.

    Pipeline: cosine kNN (``k`` neighbours, self included) -> structure space ->
    AND predicts each node's neighbour count -> adaptive graph -> two-layer GCN
    encoder -> kNN on the refined embeddings (``k_final`` neighbours) ->
    ``linkage='cc'``: edges with similarity > ``threshold``, connected components
    (the paper; by default the cut is never below the refined embeddings' own), or
    ``linkage='infomap'``: Infomap on edges with similarity > ``min_sim`` weighted by similarity. By default the checkpoint's linkage (chosen on
    held-aside training identities) is used; with Infomap the final graph has 80
    neighbours and its edge cut is chosen from the refined embeddings themselves
    (:func:`clusterg.linkage.auto_threshold`, ``"embedding-infomap"`` rule), so large
    identities (hundreds of faces) are not shattered by a graph sized for small ones.

    Args:
        checkpoint: path of a checkpoint from ``clusterg train ada-nets``; None uses
            the packaged weights (128-d dlib face embeddings only).
        k: neighbours of the input kNN and structure space (default 80).
        threshold: edge threshold on refined cosine similarity (for Infomap too
            unless ``min_sim`` is given); None or ``"auto"`` chooses it from the data (both
            linkages; for ``cc``, None takes the higher of that cut and the checkpoint's);
            ``"checkpoint"`` uses the value chosen at training time on held-aside identities (the
            paper-faithful fixed cut), which chains larger sets: a cut tuned on 1,600 held-aside
            faces merges 20,000 of the same kind into one giant cluster (``docs/ada_nets.rst``).
        linkage: 'cc', 'infomap' or None (the checkpoint's choice).
        min_sim: Infomap edge threshold; None = ``threshold``'s rule. ``"checkpoint"``
            uses the value chosen at training time (the paper-faithful fixed cut).
        k_final: neighbours of the final graph on the refined embeddings; None = 80 for
            Infomap (clamped to N), the checkpoint's value (20) for ``cc``.
        graph: GCN input graph, 'and' (adaptive) or 'knn'; None = checkpoint's choice.
        knn_method, device: kNN search backend (see :func:`clusterg.knn.knn_search`).
        seed: seeds Infomap.
        engine: ``"local"`` (default) or ``"ray"``: run the kNN searches (the input kNN and the final
            kNN on the refined embeddings; the encoder and the Infomap linkage stay on this machine) on
            Ray (:mod:`clusterg.distributed`, ``pip install "clusterg[ray]"``); labels are identical with
            exact kNN.
        address: Ray cluster address for ``engine="ray"`` (None: a local Ray; ``"HOST:PORT"``; ``"auto"``).
        shards: row shards for ``engine="ray"`` (default: the cluster's CPUs).
        raw_min_sim: edges of the final graph whose cosine similarity between the *input*
            features is below it are cut, a guard against the encoder merging points that
            are far apart in the input space (e.g. a handful of unrelated vectors, whose
            kNN graph is complete). None = the checkpoint's ``raw_min_sim``, or for the
            packaged dlib-128 weights 0.89, below every same-identity 20-NN pair of the
            CelebA ``train`` split they were trained on (lowest 0.896); a checkpoint
            without it has no guard.

    After ``fit``: ``labels_`` (int64 (N,)), ``embeddings_`` (float32 (N, d)),
    ``k_hat_`` (int64 (N,) or None), ``linkage_`` (the linkage used), ``k_final_``,
    ``threshold_`` (the edge cut used), ``final_graph_`` (``(nbrs, sims)`` of the final graph, with
    edges cut by ``raw_min_sim`` at similarity -1).
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, k: int = 80, threshold: float | None = None,
                 linkage: str | None = None, min_sim: float | None = None, graph: str | None = None,
                 knn_method: str = "auto", device: str = "cpu", seed: int = 0, raw_min_sim: float | None = None,
                 k_final: int | None = None, engine: str = "local", address: str | None = None,
                 shards: int | None = None):
        self.engine = engine
        self.address = address
        self.shards = shards
        self.raw_min_sim = raw_min_sim
        self.k_final = k_final
        self.checkpoint = checkpoint
        self.k = k
        self.threshold = threshold
        self.linkage = linkage
        self.min_sim = min_sim
        self.graph = graph
        self.knn_method = knn_method
        self.device = device
        self.seed = seed

    def _load(self, dim: int):
        path = self.checkpoint
        if path is None:
            name = PACKAGED_WEIGHTS.get(dim)
            path = packaged_weights(name) if name else None
            if path is None:
                raise ClustergError(f"no packaged Ada-NETS weights for {dim}-d features; train a checkpoint with "
                                    f"'clusterg train ada-nets FEATURES --labels L -o ckpt.pt' and pass it")
        blob = load_checkpoint(path, model=MODEL_NAME, in_dim=dim)
        return models_from_checkpoint(blob)

    def fit(self, X, y=None, knn=None) -> "AdaNetsClusterer":
        if self.linkage not in (None, "cc", "infomap"):
            raise ClustergError(f"linkage must be 'cc', 'infomap' or None, got {self.linkage!r}")
        if self.graph not in (None, "and", "knn"):
            raise ClustergError(f"graph must be 'and', 'knn' or None, got {self.graph!r}")
        from ._common import ray_engine
        eng = ray_engine(self.engine, self.address, self.shards)
        x, nbrs, sims = features_and_knn(X, self.k, knn, self.knn_method, self.device, self.seed, engine=eng)
        n = len(x)
        and_model, gcn, cfg = self._load(x.shape[1])
        if self.checkpoint is None and not getattr(self, "_domain_checked", False):  # auto checked already
            from ..models.domain import warn_if_outside
            warn_if_outside(x, "ada-nets", self.seed)
        if self.graph is not None:
            cfg["graph"] = self.graph
        linkage = cfg.get("linkage", "cc") if self.linkage is None else self.linkage
        if linkage == "infomap":
            # without min_sim, a given threshold (e.g. --threshold on the command line) is Infomap's edge cut
            thr = self.min_sim if self.min_sim is not None else (
                self.threshold if self.threshold is not None else "auto")
            default_kf = 80
        else:
            # the cut chosen on held-aside training identities does not carry to a larger set: connected
            # components chain more as N grows (docs/ada_nets.rst), so without one given the cut is the
            # higher of it and the one chosen from the refined embeddings
            thr = "auto" if self.threshold is None else self.threshold
            default_kf = int(cfg["k_final"])
        if isinstance(thr, str) and thr.strip().lower() == "checkpoint":
            thr = cfg["min_sim"] if linkage == "infomap" else cfg["threshold"]
        kf_req = default_kf if self.k_final is None else self.k_final
        if isinstance(kf_req, bool) or not isinstance(kf_req, (int, np.integer)) or kf_req < 2:
            raise ClustergError(f"k_final must be an integer >= 2, got {kf_req!r}")
        if not is_auto(thr):
            thr = check_threshold(thr, "min_sim" if linkage == "infomap" and self.min_sim is not None
                                  else "threshold")
        if n == 1:
            self.labels_ = np.zeros(1, dtype=np.int64)
            self.embeddings_, self.k_hat_ = None, None
            return self
        with torch.inference_mode():
            z, extras = refine(x, nbrs, sims, and_model, gcn, cfg)
        kf = min(int(kf_req), n)
        if eng is not None:
            from ..distributed.knn import ray_knn_search
            nb, si = ray_knn_search(z, kf, method=self.knn_method, device=self.device, seed=self.seed,
                                    normalize=False, engine=eng)
        else:
            nb, si = knn_search(z, kf, method=self.knn_method, device=self.device, seed=self.seed, normalize=False)
        guard = self.raw_min_sim if self.raw_min_sim is not None else cfg.get(
            "raw_min_sim", _PACKAGED_RAW_MIN_SIM.get(x.shape[1]) if self.checkpoint is None else None)
        if guard is not None:
            guard = check_threshold(guard, "raw_min_sim")
            raw = np.einsum("ij,ikj->ik", x, x[nb])  # input-space cosine of each refined-kNN edge
            si = np.where(raw < guard, -1.0, si).astype(np.float32)
        rule = "embedding-infomap" if linkage == "infomap" else "cc"
        thr = resolve_threshold(thr, z, si, rule, f"ada-nets ({linkage})", self.seed)
        if linkage == "cc" and self.threshold is None and float(cfg["threshold"]) > thr:
            logger.info("ada-nets (cc): threshold %.4f, the checkpoint's (above the refined embeddings' %.4f)",
                        float(cfg["threshold"]), thr)
            thr = float(cfg["threshold"])
        self.threshold_ = thr
        self.labels_ = link(nb, si, linkage, thr, seed=self.seed)
        self.linkage_ = linkage
        self.k_final_ = kf
        self.final_graph_ = (nb, si)
        self.embeddings_, self.k_hat_ = z, extras["k_hat"]
        return self
