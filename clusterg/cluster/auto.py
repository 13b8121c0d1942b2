"""The default pipeline (``clusterg cluster`` with no ``--method``): the recommended method for the data at hand."""
from __future__ import annotations

import logging
import os

import numpy as np

from .._validate import ClustergError
from ..linkage.threshold_search import SELECT_MAX_N
from ._threshold import is_auto
from .base import BaseClusterer

__all__ = ["AutoClusterer"]

logger = logging.getLogger("clusterg.cluster.auto")

#: Infomap replaces Ada-NETS when its silhouette is higher by more than this share (relative); chosen
#: on training identities and synthetic sets (``benchmarks/fit_silhouette_tol.py``)
AUTO_MARGIN = 0.15

#: whether features outside the packaged weights' training distribution run Infomap instead of Ada-NETS;
#: decided on the tune sets by ``benchmarks/fit_domain_gate.py``: of the tune sets the test flags, the
#: fallback leaves none more than 0.02 below the best plain Infomap, Ada-NETS two
DOMAIN_FALLBACK = True


def _has_packaged_ada_nets(dim: int) -> bool:
    from ..models.checkpoint import packaged_weights
    from .ada_nets import PACKAGED_WEIGHTS
    name = PACKAGED_WEIGHTS.get(dim)
    return name is not None and packaged_weights(name) is not None


class AutoClusterer(BaseClusterer):
    """The recommended clustering, every choice label-free and logged at info level.

    - Features with Ada-NETS weights (the packaged dlib-128 face weights, or ``checkpoint``):
      :class:`~clusterg.cluster.AdaNetsClusterer` at its defaults: refined embeddings, an
      80-NN graph on them, Infomap with the edge cut chosen from the embeddings.
      On compact embeddings of 20 to 20,000 points, Infomap with a silhouette-chosen cut also
      runs: Ada-NETS clusters of at least :data:`~clusterg.linkage.rejoin.REJOIN_MIN_SIZE` points
      that one Infomap module holds the majority of are joined (an identity of hundreds of faces
      that Ada-NETS split into large pieces), and Infomap replaces Ada-NETS only when its
      clustering's silhouette is higher by more than
      :data:`AUTO_MARGIN` (relative). The silhouette does not tell the two apart reliably on the
      tune sets, so the fitted margin is wide and the switch is rare (``docs/defaults.rst``).
    - Features the packaged weights were not trained for: before Ada-NETS runs on the packaged
      weights, the features are tested against their training distribution
      (:class:`~clusterg.models.domain.FeatureDomain`: a whitened distance statistic held to the spread it
      has on held-aside training identities). A set outside it (the grey-scale ORL, Yale and UMIST
      scans, synthetic data) runs Infomap as below (``domain_fallback``, default
      :data:`DOMAIN_FALLBACK`, fitted on tune sets); with ``domain_fallback=False`` it runs
      Ada-NETS all the same, with a warning.
    - Any other features (other embedders, text, re-ID): :class:`~clusterg.cluster.InfomapClusterer`
      on the cosine kNN graph, k (20 for compact embeddings such as dlib faces, 80 for spread ones
      such as text or ArcFace) and edge cut chosen from the data
      (:func:`clusterg.linkage.auto_threshold`).

    Args:
        checkpoint: Ada-NETS checkpoint for features the packaged weights do not cover.
        threshold: None/``"auto"`` (default) or a number, passed to the chosen method.
        domain_fallback: features outside the packaged weights' training distribution run Infomap
            (default :data:`DOMAIN_FALLBACK`; the test does not apply to a given ``checkpoint``).
        knn_method, device, seed: kNN search backend and seed.
        engine, address, shards: ``engine="ray"`` runs the chosen method's kNN searches on Ray
            (:mod:`clusterg.distributed`; Ada-NETS: both kNN stages; Infomap, single-node by nature, only its kNN).

    After ``fit``: ``labels_``, ``method_`` (the method that ran: ``"ada-nets"`` or
    ``"infomap"``), ``estimator_`` (the fitted estimator; its own ``labels_`` are those before the
    rejoin), ``threshold_``, ``domain_`` (the :class:`~clusterg.models.domain.DomainCheck`, or None where no test
    ran), ``rejoined_`` (Ada-NETS clusters joined by
    :func:`~clusterg.linkage.rejoin_by_reference`; 0 where it did not run), and, where the two
    were compared, ``silhouettes_`` (``{"ada-nets": s, "infomap": s}``).
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, threshold: float | str | None = None,
                 knn_method: str = "auto", device: str = "cpu", seed: int = 0, engine: str = "local",
                 address: str | None = None, shards: int | None = None,
                 domain_fallback: bool = DOMAIN_FALLBACK):
        self.domain_fallback = domain_fallback
        self.engine = engine
        self.address = address
        self.shards = shards
        self.checkpoint = checkpoint
        self.threshold = threshold
        self.knn_method = knn_method
        self.device = device
        self.seed = seed

    def _choose(self, dim: int) -> str:
        if self.checkpoint is not None:
            if not os.path.isfile(self.checkpoint):
                raise ClustergError(f"checkpoint {self.checkpoint} does not exist")
            return "ada-nets"
        return "ada-nets" if _has_packaged_ada_nets(dim) else "infomap"

    def _in_domain(self, X, dim: int) -> bool:
        """Whether the packaged weights' training distribution holds ``X`` (True where nothing is known)."""
        from ..models.domain import packaged_domain
        if self.checkpoint is not None:
            return True
        domain = packaged_domain(dim)
        if domain is None:
            return True
        self.domain_ = chk = domain.check(X, seed=self.seed)
        if chk.inside:
            logger.info("auto: the features lie inside the packaged weights' training distribution (domain "
                        "statistic %.3f <= %.3f on %d rows)", chk.statistic, chk.threshold, chk.n)
        elif self.domain_fallback:
            logger.info("auto: the features lie outside the packaged weights' training distribution (domain "
                        "statistic %.3f > %.3f on %d rows): running Infomap instead", chk.statistic, chk.threshold,
                        chk.n)
        else:
            logger.warning("auto: the features lie outside the packaged weights' training distribution (domain "
                           "statistic %.3f > %.3f on %d rows); running Ada-NETS all the same (domain_fallback=True "
                           "runs Infomap on such data)", chk.statistic, chk.threshold, chk.n)
        return chk.inside

    def _against_infomap(self, X, ada, knn):
        """Keep Ada-NETS unless silhouette-cut Infomap is clearly more coherent (compact embeddings,
        20 to SELECT_MAX_N points; a relative silhouette margin of AUTO_MARGIN, fitted on tune sets)."""
        from ..linkage.auto_threshold import geometry_weight, similarity_scale
        from ..linkage.rejoin import REJOIN_MIN_SIZE, rejoin_by_reference
        from ..linkage.threshold_search import SilhouetteScorer
        from ._common import features_and_knn
        from .infomap import AUTO_K, InfomapClusterer
        n = len(ada.labels_)
        if not 20 <= n <= SELECT_MAX_N:
            return ada, "ada-nets", ada.labels_
        if knn is None:  # Ada-NETS searched on Ray: the same exact graph here (small), so both engines agree
            from .infomap import RULE_K
            x, nb, sm = features_and_knn(X, min(RULE_K, n), None, self.knn_method, self.device, self.seed)
        else:
            x, nb, sm = features_and_knn(X, int(np.shape(knn[0])[1]), knn)
        if geometry_weight(*similarity_scale(x, sm, seed=self.seed)) >= 0.5:
            return ada, "ada-nets", ada.labels_
        # k=20, the graph AUTO_MARGIN and REJOIN_MIN_SIZE were fitted with (a smaller k's finer clusterings
        # score higher silhouettes on small identities, which the margin does not account for)
        im = InfomapClusterer(k=min(AUTO_K["compact"], int(np.shape(nb)[1])), seed=self.seed).fit(x, knn=(nb, sm))
        # Ada-NETS may split an identity of hundreds of faces into large pieces that Infomap keeps whole
        labels, joins = rejoin_by_reference(ada.labels_, im.labels_, REJOIN_MIN_SIZE)
        self.rejoined_ = joins
        if joins:
            logger.info("auto: joined %d Ada-NETS cluster(s) of >= %d points into the Infomap module holding most "
                        "of each (%d -> %d clusters)", joins, REJOIN_MIN_SIZE, int(ada.labels_.max()) + 1,
                        int(labels.max()) + 1)
        score = SilhouetteScorer(x, seed=self.seed)
        s_ada, s_im = score(labels), score(im.labels_)
        self.silhouettes_ = {"ada-nets": s_ada, "infomap": s_im}
        if s_im > s_ada + AUTO_MARGIN * abs(s_ada):
            logger.info("auto: Infomap's clustering is more coherent than Ada-NETS' (silhouette %.3f vs %.3f, margin "
                        "%.2f): keeping Infomap", s_im, s_ada, AUTO_MARGIN)
            return im, "infomap", im.labels_
        logger.info("auto: keeping Ada-NETS (silhouette %.3f; Infomap %.3f, margin %.2f)", s_ada, s_im, AUTO_MARGIN)
        return ada, "ada-nets", labels

    def fit(self, X, y=None, knn=None) -> "AutoClusterer":
        from .ada_nets import AdaNetsClusterer
        from .infomap import InfomapClusterer
        dim = int(np.shape(X)[1]) if np.ndim(X) == 2 else -1
        if not isinstance(self.domain_fallback, (bool, np.bool_)):
            raise ClustergError(f"domain_fallback must be True or False, got {self.domain_fallback!r}")
        method = self._choose(dim) if dim > 0 else "infomap"
        self.domain_ = None
        outside = method == "ada-nets" and not self._in_domain(X, dim) and bool(self.domain_fallback)
        if outside:
            method = "infomap"
        dist = dict(engine=self.engine, address=self.address, shards=self.shards)
        if method == "ada-nets":
            est = AdaNetsClusterer(checkpoint=self.checkpoint, threshold=self.threshold, knn_method=self.knn_method,
                                   device=self.device, seed=self.seed, **dist)
            est._domain_checked = self.domain_ is not None  # reported above: Ada-NETS need not warn again
            why = "a checkpoint was given" if self.checkpoint is not None else \
                f"packaged Ada-NETS weights exist for {dim}-d features"
        else:
            est = InfomapClusterer(threshold="auto" if self.threshold is None else self.threshold,
                                   knn_method=self.knn_method, device=self.device, seed=self.seed)
            why = ("the features lie outside the packaged weights' training distribution" if outside else
                   f"no learned weights for {dim}-d features" if dim > 0 else "input to be validated")
        logger.info("auto: running %s (%s)", method, why)
        if method == "infomap" and knn is None:
            from ._common import ray_engine
            eng = ray_engine(self.engine, self.address, self.shards)
            if eng is not None:  # Infomap is single-node: only its kNN graph is built on Ray
                from ._common import features_and_knn
                from .infomap import RULE_K
                k_ray = min(RULE_K, int(np.shape(X)[0])) if est.k == "auto" else est.k
                _, nb, sm = features_and_knn(X, k_ray, None, self.knn_method, self.device, self.seed, engine=eng)
                knn = (nb, sm)
        if method == "ada-nets" and knn is None and self.engine in (None, "local") and is_auto(self.threshold):
            from ._common import features_and_knn
            from .infomap import RULE_K
            n_pts = int(np.shape(X)[0])
            if 20 <= n_pts <= SELECT_MAX_N:
                _, nb, sm = features_and_knn(X, min(max(RULE_K, est.k), n_pts), None, self.knn_method, self.device,
                                             self.seed)
                knn = (nb, sm)
        est.fit(X, knn=knn)
        self.rejoined_ = 0
        labels = est.labels_
        if method == "ada-nets" and is_auto(self.threshold):
            est, method, labels = self._against_infomap(X, est, knn)
        self.estimator_ = est
        self.method_ = method
        self.labels_ = labels
        self.threshold_ = getattr(est, "threshold_", None)
        n_c = int(self.labels_.max()) + 1 if len(self.labels_) else 0
        n = len(self.labels_)
        if n >= 50 and (n_c == 1 or n_c == n):
            logger.warning("auto: the result is degenerate (%s) on %d points; the data may hold no cluster "
                           "structure at this scale", "one cluster" if n_c == 1 else "all singletons", n)
        return self
