"""Do these features look like the ones a model was trained on? A label-free check for packaged weights.

Learned weights carry no promise outside the distribution they were trained on: the packaged
dlib-128 weights learned from CelebA photos, and on the grey-scale ORL, Yale and UMIST scans their
refined embeddings trail plain Infomap (``docs/benchmarks/regimes.json``). :class:`FeatureDomain`
holds what is needed to tell: the training features' mean and whitening (a Gaussian fit), and a
null distribution of the test statistic measured on random subsets of *held-aside* training
identities (new people, same source), so the test needs no labels and no training data at run time.

Statistic. Rows are L2-normalised and whitened, ``z = (x - mean) @ whiten``, in the subspace where the
training features vary (covariance eigenvalues above :data:`RANK_TOL` of the largest: dlib's
embeddings span about 80 of their 128 dimensions, and in the rest the variance is float rounding); each
row's squared Mahalanobis distance per direction is ``|z|^2 / r`` (about 1 for a training face). The statistic is
one quantile (:attr:`FeatureDomain.quantile`) of those values over at most :data:`MAX_ROWS` rows
(a seeded sample above that). A whole set shifted away from the training photos moves every row;
a few odd faces do not move a low quantile.

Threshold. ``centre + spread / sqrt(n)`` with ``n`` the rows measured: ``centre`` is the null's
median and ``spread`` the 99th percentile of ``(statistic - centre) * sqrt(n)`` over the null
subsets, so about 1 % of in-distribution sets of any size are flagged.
``benchmarks/fit_domain_gate.py`` fits both and writes the packaged file.
"""
from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._atomic import atomic_path
from .._validate import ClustergError, check_features

__all__ = ["FeatureDomain", "DomainCheck", "MAX_ROWS", "RANK_TOL", "PACKAGED_DOMAINS", "packaged_domain",
           "domain_statistic", "warn_if_outside"]

logger = logging.getLogger("clusterg.models.domain")

#: the statistic is measured on at most this many rows (a seeded sample): it costs one
#: ``MAX_ROWS x D x D`` product whatever N is, and the null was measured the same way
MAX_ROWS = 2000

#: whitening keeps the covariance eigen-directions above this share of the largest eigenvalue
RANK_TOL = 1e-6

#: feature dimension -> the domain file shipped next to the packaged weights of that dimension
PACKAGED_DOMAINS = {128: "dlib128_domain.npz"}

_KEYS = ("mean", "whiten", "quantile", "centre", "spread")


class DomainCheck(NamedTuple):
    """Result of :meth:`FeatureDomain.check`: the statistic, the threshold it was held to at ``n`` rows,
    and whether the features lie inside the training distribution (``statistic <= threshold``)."""
    statistic: float
    threshold: float
    n: int
    inside: bool


def _rows(x: np.ndarray, seed: int) -> np.ndarray:
    if len(x) <= MAX_ROWS:
        return x
    pick = np.random.default_rng(seed).choice(len(x), MAX_ROWS, replace=False)
    return x[np.sort(pick)]


def domain_statistic(x: np.ndarray, mean: np.ndarray, whiten: np.ndarray, quantile: float,
                     seed: int = 0) -> tuple[float, int]:
    """The ``quantile`` of the rows' squared Mahalanobis distances per direction, and the rows measured.

    Args:
        x: (N, D) features (normalised here).
        mean: (D,) training mean of the normalised features.
        whiten: (D, r) whitening matrix of the training features.
        quantile: in (0, 1).
        seed: seeds the sample of :data:`MAX_ROWS` rows when N is larger.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    arr = x if isinstance(x, np.ndarray) else check_features(x)
    if arr.ndim != 2:
        check_features(arr)  # raises its message
    # sample first: at millions of rows a validated, normalised copy of everything would cost gigabytes
    xr = check_features(_rows(arr, seed), normalize=True).astype(np.float64)
    z = (xr - mean) @ whiten
    d2 = np.einsum("ij,ij->i", z, z) / z.shape[1]
    return float(np.quantile(d2, quantile)), len(xr)


@dataclass(frozen=True)
class FeatureDomain:
    """The training distribution of a set of packaged weights, as a label-free test (see module doc).

    Attributes:
        mean: (D,) mean of the L2-normalised training features.
        whiten: (D, r) matrix that whitens them in the r directions they vary in
            (``(x - mean) @ whiten`` has identity covariance).
        quantile: the quantile of per-row distances the statistic takes.
        centre: median of the statistic over random subsets of held-aside training identities.
        spread: 99th percentile of ``(statistic - centre) * sqrt(n)`` over those subsets.
    """
    mean: np.ndarray
    whiten: np.ndarray
    quantile: float
    centre: float
    spread: float

    def __post_init__(self):
        m, w = np.asarray(self.mean), np.asarray(self.whiten)
        if (m.ndim != 1 or w.ndim != 2 or w.shape[0] != m.size or not 1 <= w.shape[1] <= m.size
                or not (np.isfinite(m).all() and np.isfinite(w).all())):
            raise ClustergError(f"feature domain: expected a finite (D,) mean and (D, r) whitening, got "
                                f"{m.shape} and {w.shape}")
        if not 0.0 < float(self.quantile) < 1.0:
            raise ClustergError(f"feature domain: quantile must lie in (0, 1), got {self.quantile}")
        if not (math.isfinite(self.centre) and math.isfinite(self.spread) and self.spread >= 0):
            raise ClustergError(f"feature domain: centre and spread must be finite, spread >= 0 "
                                f"(got {self.centre}, {self.spread})")

    @property
    def dim(self) -> int:
        return int(np.asarray(self.mean).size)

    def statistic(self, x, seed: int = 0) -> tuple[float, int]:
        """The statistic of ``x`` ((N, D) features) and the number of rows it was measured on."""
        try:
            shape = np.shape(x)
        except ValueError:  # ragged input
            shape = ()
        if len(shape) != 2:
            check_features(x)  # raises its message
        if shape[1] != self.dim:
            raise ClustergError(f"feature domain: fitted on {self.dim}-d features, got {shape[1]}-d")
        return domain_statistic(x, self.mean, self.whiten, self.quantile, seed)

    def threshold(self, n: int) -> float:
        """The largest statistic an in-distribution set measured on ``n`` rows reaches (99 % of them)."""
        if int(n) < 1:
            raise ClustergError(f"feature domain: n must be >= 1, got {n}")
        return float(self.centre + self.spread / math.sqrt(int(n)))

    def check(self, x, seed: int = 0) -> DomainCheck:
        """Whether ``x`` lies inside the training distribution (see module doc)."""
        s, n = self.statistic(x, seed)
        t = self.threshold(n)
        return DomainCheck(s, t, n, bool(s <= t))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the domain as a plain ``.npz`` (no pickles), atomically."""
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, mean=np.asarray(self.mean, np.float64), whiten=np.asarray(self.whiten, np.float64),
                     quantile=np.float64(self.quantile), centre=np.float64(self.centre),
                     spread=np.float64(self.spread))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureDomain":
        """Read a file written by :meth:`save`; object arrays (pickles) are refused."""
        path = Path(path)
        if not path.is_file():
            raise ClustergError(f"feature domain: {path} is not a file")
        try:
            with np.load(path, allow_pickle=False) as f:
                missing = [k for k in _KEYS if k not in f.files]
                if missing:
                    raise ClustergError(f"feature domain: {path} lacks {', '.join(missing)}")
                return cls(mean=np.asarray(f["mean"], np.float64), whiten=np.asarray(f["whiten"], np.float64),
                           quantile=float(f["quantile"]), centre=float(f["centre"]), spread=float(f["spread"]))
        except ClustergError:
            raise
        except Exception as e:  # not an npz, pickled content, truncated file
            raise ClustergError(f"feature domain: cannot read {path} ({type(e).__name__}: {e})") from None

    @classmethod
    def fit(cls, train_x, null_sets, quantile: float) -> "FeatureDomain":
        """Fit the Gaussian on ``train_x`` ((N, D) training features) and the null on ``null_sets``
        (feature arrays of held-aside identities, each a plausible input set)."""
        x = check_features(train_x, normalize=True, min_n=2).astype(np.float64)
        mean = x.mean(axis=0)
        cov = np.cov((x - mean).T)
        w, v = np.linalg.eigh(cov)
        keep = w > RANK_TOL * max(float(w.max()), 0.0)
        if not keep.any():
            raise ClustergError("feature domain: the training features do not vary")
        whiten = v[:, keep] / np.sqrt(w[keep])
        if not null_sets:
            raise ClustergError("feature domain: the null needs at least one held-aside set")
        stats = [domain_statistic(s, mean, whiten, quantile) for s in null_sets]
        vals = np.array([s for s, _ in stats])
        centre = float(np.median(vals))
        dev = (vals - centre) * np.sqrt([n for _, n in stats])
        return cls(mean=mean, whiten=whiten, quantile=float(quantile), centre=centre,
                   spread=float(max(np.quantile(dev, 0.99), 0.0)))


def packaged_domain(dim: int) -> FeatureDomain | None:
    """The domain shipped with the packaged weights for ``dim``-d features (``None`` if there is none);
    read once per process (its arrays are read-only)."""
    return _packaged_domain(int(dim))


@functools.lru_cache(maxsize=None)
def _packaged_domain(dim: int) -> FeatureDomain | None:
    from .checkpoint import packaged_weights
    name = PACKAGED_DOMAINS.get(dim)
    path = packaged_weights(name) if name else None
    if path is None:
        return None
    domain = FeatureDomain.load(path)
    for a in (domain.mean, domain.whiten):
        a.setflags(write=False)  # shared by every caller: nobody may change it in place
    return domain


def warn_if_outside(x, who: str, seed: int = 0) -> DomainCheck | None:
    """Log a warning when ``x`` lies outside the training distribution of the packaged weights ``who``
    runs on (their results there carry no promise); the check, or None where no domain is shipped."""
    domain = packaged_domain(int(np.shape(x)[1]))
    if domain is None:
        return None
    chk = domain.check(x, seed=seed)
    if not chk.inside:
        logger.warning("%s: the features lie outside the packaged weights' training distribution (domain "
                       "statistic %.3f > %.3f on %d rows): its results there carry no promise "
                       "(the default pipeline, auto, runs Infomap on such data)",
                       who, chk.statistic, chk.threshold, chk.n)
    return chk
