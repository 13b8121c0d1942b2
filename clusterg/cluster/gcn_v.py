"""GCN-V and GCN-V + GCN-E clusterers (``clusterg cluster --method gcn-v | gcn-ve``).

Yang et al., "Learning to Cluster Faces via Confidence and Connectivity
Estimation", CVPR 2020: GCN-V predicts a confidence per face on the kNN graph;
every face links to the nearest neighbour with a higher confidence (GCN-V); with
GCN-E (GCN-V + GCN-E) the link is checked by GCN-E's same-identity probability
(cut when doubtful, kept slightly below ``threshold`` when GCN-E is sure, or the
paper's rule: the candidate GCN-E scores best). Links scoring at most
``threshold`` are cut and the remaining trees are the clusters.

Without ``checkpoint`` the weights shipped for 128-d dlib face embeddings are
used (``clusterg/weights/gcn_v_dlib128.pt`` and ``gcn_e_dlib128.pt``); other
feature dimensions need a checkpoint from ``clusterg train gcn-v`` / ``gcn-e``.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from .._validate import ClustergError, check_threshold
from ..linkage.tree_deduction import nearest_higher, parents_to_labels
from ..models.checkpoint import packaged_weights
from ._common import features_and_knn, ray_engine
from ._threshold import is_auto, parent_cut_by_agreement
from .base import BaseClusterer

__all__ = ["GCNVClusterer", "GCNVEClusterer", "PACKAGED_GCN_V", "PACKAGED_GCN_E"]

log = logging.getLogger("clusterg.cluster.gcn_v")

PACKAGED_GCN_V = "gcn_v_dlib128.pt"
PACKAGED_GCN_E = "gcn_e_dlib128.pt"
_PACKAGED_DIM = 128


def _resolve(checkpoint, dim: int, name: str, model: str):
    if checkpoint is not None:
        return checkpoint
    if dim == _PACKAGED_DIM:
        p = packaged_weights(name)
        if p is not None:
            return p
        raise ClustergError(f"the packaged {model} weights ({name}) are missing from this installation; "
                            f"pass checkpoint=... (train one with `clusterg train {model}`)")
    raise ClustergError(f"no pretrained {model} weights for {dim}-d features (shipped weights are for 128-d dlib "
                        f"face embeddings); train a checkpoint with `clusterg train {model} FEATURES --labels L "
                        f"-o ckpt.pt` and pass it as checkpoint")


def _trivial(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


#: with the default cut, GCN-V / GCN-V + E clusters of at least this size are joined when one module of
#: the Infomap reference holds the majority of each (:func:`clusterg.linkage.rejoin_by_reference`):
#: the trees stop at local confidence peaks and split an identity of hundreds of faces into many
#: pieces. Fitted on tune sets (``benchmarks/fit_parent_cut.py``; None: no rejoin)
GCN_REJOIN_MIN_SIZE: int | None = 2


def _final_cut(threshold, checkpoint_tau: float, x, nbrs, sims, parent, psim, method: str, seed: int):
    """The final tree-deduction cut and the Infomap reference it was chosen against (or None): a
    number as given; ``"checkpoint"`` the checkpoint's tau; None/``"auto"`` chosen by agreement with
    Infomap where that applies (compact, 20 to 20,000 points), else the checkpoint's tau."""
    if isinstance(threshold, str) and threshold.strip().lower() == "checkpoint":
        return check_threshold(checkpoint_tau, "threshold"), None
    if not is_auto(threshold):
        if isinstance(threshold, str):
            try:
                threshold = float(threshold)
            except ValueError:
                raise ClustergError(f"threshold: expected a number, 'auto' or 'checkpoint', got {threshold!r}") from None
        return check_threshold(threshold, "threshold"), None
    cut, ref = parent_cut_by_agreement(x, nbrs, sims, parent, psim, method, seed, with_reference=True)
    if cut is None:
        log.info("%s: threshold %.4f (the checkpoint's)", method, checkpoint_tau)
        return check_threshold(checkpoint_tau, "threshold"), None
    return cut, ref


def _rejoin(labels: np.ndarray, reference, method: str) -> tuple[np.ndarray, int]:
    """GCN_REJOIN_MIN_SIZE's rejoin of ``labels`` where the default cut ran (``reference`` not None)."""
    if reference is None or GCN_REJOIN_MIN_SIZE is None:
        return labels, 0
    from ..linkage.rejoin import rejoin_by_reference
    out, joins = rejoin_by_reference(labels, reference, GCN_REJOIN_MIN_SIZE)
    if joins:
        log.info("%s: joined %d tree(s) of >= %d points into the Infomap module holding most of each "
                 "(%d -> %d clusters)", method, joins, GCN_REJOIN_MIN_SIZE, int(labels.max()) + 1, int(out.max()) + 1)
    return out, joins


class GCNVClusterer(BaseClusterer):
    """GCN-V confidences + tree deduction.

    Args:
        k: kNN size for GCN-V, self included (default: the checkpoint's; clamped to N).
        threshold: similarity a parent link must exceed (the paper's tau). None/``"auto"``
            (default): on compact embeddings of 20 to 20,000 points the cut whose clusters agree
            best with the silhouette-cut Infomap clustering of the same kNN graph
            (:func:`clusterg.cluster._threshold.parent_cut_by_agreement`), elsewhere the
            checkpoint's value chosen on held-aside identities; ``"checkpoint"``: always the
            checkpoint's value (the first release's default).
        tau_0: cut of the first pass on the input kNN when ``passes=2`` (default: checkpoint).
        passes: 1 links on the input kNN; 2 rebuilds the kNN on GCN-V features first, as the
            paper does (default: whichever won on the checkpoint's validation identities).
        checkpoint: GCN-V checkpoint; default the packaged dlib-128 weights for 128-d input.
        knn_method, device, seed: kNN search settings (see :func:`clusterg.knn.knn_search`).
        engine: ``"local"`` (default) or ``"ray"``: run the kNN search, GCN-V inference (per node shard
            with its 1-hop halo) and the linkage on Ray (:mod:`clusterg.distributed`, ``pip install "clusterg[ray]"``); labels are identical with exact kNN.
        address: Ray cluster address for ``engine="ray"`` (None: a local Ray; ``"HOST:PORT"``; ``"auto"``).
        shards: row shards for ``engine="ray"`` (default: the cluster's CPUs).

    Attributes:
        labels_: (N,) int64 cluster ids.
        confidence_: (N,) float32 GCN-V confidences.
        parent_: (N,) int64 parent of each node after the cut, -1 for peaks.
        parent_all_: (N,) every node's candidate parent before the ``threshold`` cut (re-cut with
            :func:`clusterg.linkage.tree_deduction.parents_to_labels`).
        psim_all_: (N,) the similarity of each candidate parent link.
        threshold_: the cut used.
        rejoined_: trees joined after the default cut, those of at least
            :data:`GCN_REJOIN_MIN_SIZE` points whose majority lies in one module of the Infomap
            reference (the trees stop at local confidence peaks inside large identities); 0 with a
            given threshold, where no reference is computed.
        reference_: that Infomap clustering, or None where none was computed.
    """

    def __init__(self, k: int | None = None, threshold: float | str | None = None, tau_0: float | None = None,
                 passes: int | None = None, checkpoint=None, knn_method: str = "auto", device: str = "cpu",
                 seed: int = 0, engine: str = "local", address: str | None = None, shards: int | None = None):
        self.engine = engine
        self.address = address
        self.shards = shards
        self.k = k
        self.threshold = threshold
        self.tau_0 = tau_0
        self.passes = passes
        self.checkpoint = checkpoint
        self.knn_method = knn_method
        self.device = device
        self.seed = seed

    def _load(self, dim: int):
        from ..models.gcn_v import load_gcn_v
        return load_gcn_v(_resolve(self.checkpoint, dim, PACKAGED_GCN_V, "gcn-v"), in_dim=dim)

    def _confidence(self, X, knn):
        """Validated x, GCN-V confidences and hidden features, the kNN used, and the config."""
        from ..models.gcn_v import gcn_v_graph, predict_gcn_v
        x = np.asarray(X) if not hasattr(X, "detach") else X
        dim = int(np.shape(x)[1]) if np.ndim(x) == 2 else -1
        if dim < 1:
            raise ClustergError(f"features: expected shape (N, D), got shape {tuple(np.shape(x))}")
        model, config, _ = self._load(dim)
        k = config["k"] if self.k is None else self.k
        eng = self._engine = ray_engine(getattr(self, "engine", "local"), getattr(self, "address", None),
                                        getattr(self, "shards", None))
        x, nbrs, sims = features_and_knn(X, k, knn, self.knn_method, self.device, self.seed, engine=eng)
        if len(x) < 2:
            return x, None, None, nbrs, sims, config
        if self.checkpoint is None:
            from ..models.domain import warn_if_outside
            warn_if_outside(x, "gcn-v" if type(self) is GCNVClusterer else "gcn-ve", self.seed)
        torch.manual_seed(self.seed)
        if eng is not None:
            from ..distributed.gcn_v import ray_gcn_v_confidence
            passes = config.get("passes", 2) if getattr(self, "passes", None) is None else self.passes
            need_hidden = type(self) is not GCNVClusterer or int(passes) == 2
            conf, hidden = ray_gcn_v_confidence(model, x, nbrs, sims, config.get("th_sim", 0.0), engine=eng,
                                                return_hidden=need_hidden)
            return x, conf, None if hidden is None else torch.from_numpy(hidden), nbrs, sims, config
        nbrs, sims, agg = gcn_v_graph(x, nbrs.shape[1], config.get("th_sim", 0.0), knn=(nbrs, sims))
        conf, hidden = predict_gcn_v(model, x, agg)
        return x, conf, hidden, nbrs, sims, config

    def fit(self, X, y=None, knn=None) -> "GCNVClusterer":
        from ..models.gcn_v import _knn, gcn_features
        x, conf, hidden, nbrs, sims, config = self._confidence(X, knn)
        n = len(x)
        if conf is None:
            self.labels_, self.confidence_, self.parent_ = _trivial(n), np.zeros(n, np.float32), -np.ones(n, np.int64)
            self.rejoined_, self.reference_ = 0, None
            return self
        passes = int(config.get("passes", 2) if self.passes is None else self.passes)
        if passes not in (1, 2):
            raise ClustergError(f"passes must be 1 or 2, got {passes}")
        tau_0 = check_threshold(config["tau_0"] if self.tau_0 is None else self.tau_0, "tau_0")
        eng = self._engine
        if eng is not None:  # per-shard parents and a global union-find on Ray (clusterg.distributed)
            from ..distributed.gcn_v import ray_nearest_higher
            from ..distributed.knn import ray_knn_search
            from ..distributed.linkage import ray_parent_components

            def higher(nb, sm):
                return ray_nearest_higher(nb, sm, conf, engine=eng)

            def link(p, ps, t):
                return ray_parent_components(p, ps, t, engine=eng)

            def knn2(f, k):
                return ray_knn_search(f, k, method=self.knn_method, seed=self.seed, normalize=True, engine=eng)
        else:
            higher, link = (lambda nb, sm: nearest_higher(nb, sm, conf)), parents_to_labels

            def knn2(f, k):
                return _knn(f, k, self.knn_method, self.seed)
        parent, psim = higher(nbrs, sims)
        self.labels_pass1_ = link(parent, psim, tau_0)
        if passes == 2:
            n2, s2 = knn2(gcn_features(hidden), nbrs.shape[1])
            parent, psim = higher(n2, s2)
        tau, ref = _final_cut(self.threshold, config["tau"] if passes == 2 else tau_0, x, nbrs, sims, parent, psim,
                              "gcn-v", self.seed)
        self.labels_, self.rejoined_ = _rejoin(link(parent, psim, tau), ref, "gcn-v")
        self.reference_ = ref
        self.confidence_ = conf.astype(np.float32)
        self.parent_ = np.where(psim > tau, parent, -1).astype(np.int64)
        self.parent_all_, self.psim_all_, self.threshold_ = parent, psim, float(tau)
        return self


class GCNVEClusterer(GCNVClusterer):
    """GCN-V confidences, GCN-E parent choice on candidate sets, tree deduction.

    Args:
        k: kNN size for GCN-V (default: checkpoint's).
        k_e: kNN size of GCN-E's candidate sets (default: checkpoint's; paper 160).
        threshold: similarity a parent link must exceed (tau): None/``"auto"`` (default), a number
            or ``"checkpoint"``, as :class:`GCNVClusterer`.
        ignore_ratio: fraction of lowest-confidence nodes that skip GCN-E and link to their
            nearest higher-confidence neighbour (the paper's 1 - rho; default: checkpoint's).
        rule: ``"argmax"`` (the paper: link to the candidate GCN-E scores highest),
            ``"nearest"`` (keep GCN-V's parent; GCN-E only checks and rescores the link) or
            ``"gate"`` (the nearest candidate GCN-E accepts); default: checkpoint's.
            See :func:`clusterg.models.gcn_e.choose_parents`.
        alpha: edge score = cosine similarity + ``alpha * (p - 0.5)`` with GCN-E's probability
            ``p`` (0 = the paper's similarity cut); default: checkpoint's.
        p_min: links whose GCN-E probability is below ``p_min`` are cut (``"nearest"``) or
            passed over for the next candidate (``"gate"``); default: checkpoint's.
        p_high, beta: links with GCN-E probability ``>= p_high`` get ``beta`` added to their
            score before the ``threshold`` cut; default: checkpoint's.
        checkpoint: GCN-E checkpoint (it embeds the GCN-V weights it was trained with);
            default the packaged dlib-128 weights for 128-d input.
        batch_graphs: candidate sets per GCN-E forward pass (memory vs speed).
        knn_method, device, seed: kNN search settings.
        engine, address, shards: ``engine="ray"`` runs the kNN search and the GCN-V confidences (per
            node shard with its halo) on Ray (:mod:`clusterg.distributed`), as :class:`GCNVClusterer`;
            GCN-E's candidate sets and scores and the tree deduction stay on this machine. The labels
            equal the single-node ones.
    """

    def __init__(self, k: int | None = None, k_e: int | None = None, threshold: float | str | None = None,
                 ignore_ratio: float | None = None, rule: str | None = None, alpha: float | None = None,
                 p_min: float | None = None, p_high: float | None = None, beta: float | None = None,
                 checkpoint=None, batch_graphs: int = 512, knn_method: str = "auto", device: str = "cpu",
                 seed: int = 0, engine: str = "local", address: str | None = None, shards: int | None = None):
        self.engine = engine
        self.address = address
        self.shards = shards
        self.k = k
        self.k_e = k_e
        self.threshold = threshold
        self.ignore_ratio = ignore_ratio
        self.rule = rule
        self.alpha = alpha
        self.p_min = p_min
        self.p_high = p_high
        self.beta = beta
        self.checkpoint = checkpoint
        self.batch_graphs = batch_graphs
        self.knn_method = knn_method
        self.device = device
        self.seed = seed

    def _load(self, dim: int):
        from ..models.gcn_e import load_gcn_ve
        v, e, config, blob = load_gcn_ve(_resolve(self.checkpoint, dim, PACKAGED_GCN_E, "gcn-e"), in_dim=dim)
        self._gcn_e, self._config_e = e, config
        return v, config["gcn_v"], blob

    def fit(self, X, y=None, knn=None) -> "GCNVEClusterer":
        from ..models.gcn_e import candidate_knn, edge_features, gcn_e_parents, knn_space
        if isinstance(self.batch_graphs, bool) or not isinstance(self.batch_graphs, (int, np.integer)) \
                or self.batch_graphs < 1:
            raise ClustergError(f"batch_graphs must be a positive integer, got {self.batch_graphs!r}")
        x, conf, hidden, nbrs, sims, _ = self._confidence(X, knn)
        n = len(x)
        if conf is None:
            self.labels_, self.confidence_, self.parent_ = _trivial(n), np.zeros(n, np.float32), -np.ones(n, np.int64)
            self.rejoined_, self.reference_ = 0, None
            return self
        cfg = self._config_e
        ratio = check_threshold(cfg["ignore_ratio"] if self.ignore_ratio is None else self.ignore_ratio,
                                "ignore_ratio", 0.0, 1.0)
        k_e = cfg["k"] if self.k_e is None else self.k_e
        if isinstance(k_e, bool) or not isinstance(k_e, (int, np.integer)) or k_e < 2:
            raise ClustergError(f"k_e must be an integer >= 2, got {k_e!r}")
        k_e = min(int(k_e), n)
        feat = edge_features(x, hidden, cfg["feature"])
        if knn_space(cfg["feature"]) == "raw" and knn is not None and np.shape(knn[0])[1] >= k_e:
            _, en, es = features_and_knn(x, k_e, knn)
        else:  # the same code as a PyG user's GCNE.from_pretrained(with_gcn_v=True) path
            en, es = candidate_knn(x, feat, cfg["feature"], k_e, nbrs, sims, self.knn_method, self.seed)
        torch.manual_seed(self.seed)
        rule = cfg.get("rule", "argmax") if self.rule is None else self.rule
        alpha = check_threshold(cfg.get("alpha", 0.0) if self.alpha is None else self.alpha, "alpha", 0.0, 1.0)
        extra = {}
        for name, default in (("p_min", 0.0), ("p_high", 1.0), ("beta", 0.0)):
            val = getattr(self, name)
            extra[name] = check_threshold(cfg.get(name, default) if val is None else val, name, 0.0, 1.0)
        parent, psim = gcn_e_parents(self._gcn_e, feat, en, es, conf, ratio, rule=rule, alpha=alpha,
                                     batch_graphs=int(self.batch_graphs), **extra)
        tau, ref = _final_cut(self.threshold, cfg["tau"], x, nbrs, sims, parent, psim, "gcn-ve", self.seed)
        self.labels_, self.rejoined_ = _rejoin(parents_to_labels(parent, psim, tau), ref, "gcn-ve")
        self.reference_ = ref
        self.confidence_ = conf.astype(np.float32)
        self.parent_ = np.where(psim > tau, parent, -1).astype(np.int64)
        self.parent_all_, self.psim_all_, self.threshold_ = parent, psim, float(tau)
        return self
