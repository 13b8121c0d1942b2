"""MS1M-like synthetic face embeddings, for tests and for benchmarks at MS1M scale.

The real MS1M clustering splits (learn-to-cluster ``part1_test`` ... ``part9_test``:
584,013 to 5,210,000 faces of 256-d, about 68 faces per identity) cannot be
shipped. :func:`synth_ms1m` draws a set with the same *shape* and a similar
*difficulty*: points on the unit sphere inside a narrow cone, long-tailed
identity sizes, identity spread that varies, and a share of identities whose
centres nearly coincide with another identity's (hard pairs).

Model (all offsets live in a rank-``r`` subspace orthogonal to a global
direction ``g``; ``r = ceil(rank_frac * dim)``)::

    centre offset  b_i = t_i U diag(sqrt(lb)) z_i      z_i ~ N(0, I_r)
    face           x   = normalise(g + b_i + s_i * U diag(sqrt(lw)) e)   e ~ N(0, I_r)

``lb`` and ``lw`` are power-law spectra (``k^-between_decay``,
``k^-within_decay``) scaled to the traces ``between`` and ``within``; ``t_i`` is a per-identity
log-normal factor (``centre_sigma``); ``s_i`` is
a per-identity log-normal scale (``spread_sigma``) times a per-face log-normal
factor (``face_sigma``). For a hard pair, identity
``i`` copies a partner ``p``: ``z_i = hard_rho * z_p + sqrt(1 - hard_rho^2) * z_new``.
The defaults were calibrated at D=128 against the real CelebA ``dev`` split (dlib
embeddings): nearest-neighbour identity rate, same/different-identity cosine
histograms and the best pairwise F of kNN + connected components and of Infomap;
see ``docs/synthetic.rst`` and ``benchmarks/calibrate_synth.py``.

Determinism: every identity draws its faces from its own random stream
(seeded by ``(seed, identity)``) and is computed row block by row block the
same way whether it is generated in memory or streamed, so :func:`write_synth`
writes exactly the bytes of :func:`synth_ms1m` for the same arguments, for any
``chunk``. Faces are stored grouped by identity (labels ``0..C-1`` in file
order), as in the MS1M ``.meta`` files.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .._atomic import atomic_path
from .._progress import progress
from .._validate import ClustergError

__all__ = ["synth_ms1m", "write_synth", "iter_synth", "SynthSpec", "default_n_ids", "MS1M_SPLITS"]

logger = logging.getLogger("clusterg.data.synth")

#: Faces per identity in the learn-to-cluster MS1M test parts (584,013 / 8,573 = 68.1).
FACES_PER_ID = 68.0

#: MS1M test parts: name -> (faces, identities). part1 from DATASET.md; the larger
#: identity counts are approximate (about 68 faces per identity throughout).
MS1M_SPLITS: dict[str, tuple[int, int]] = {
    "part1_test": (584_013, 8_573),
    "part3_test": (1_740_301, 25_725),
    "part5_test": (2_890_517, 42_897),
    "part7_test": (4_046_365, 60_108),
    "part9_test": (5_210_000, 77_738),
}

_SALT_SIZES, _SALT_BASIS, _SALT_CENTRES, _SALT_FACES = 1, 2, 3, 4


def default_n_ids(n: int) -> int:
    """Identity count for ``n`` faces: about 68 faces per identity, as in MS1M."""
    return max(1, int(round(n / FACES_PER_ID)))


@dataclass(frozen=True)
class SynthSpec:
    """Knobs of the generator (defaults calibrated on CelebA ``dev`` at D=128).

    between: total variance of identity centres around the global direction.
    within: total variance of faces around their identity centre (before ``s_i``).
    between_decay / within_decay: power-law exponents of the two spectra.
    rank_frac: share of the D dimensions that carry variance.
    centre_sigma: log-normal std of a per-identity factor ``t_i`` on the centre
        offset (typical faces crowd near ``g``, unusual ones lie far out).
    spread_sigma: log-normal std of the per-identity spread ``s_i``.
    face_sigma: log-normal std of a per-face factor on the spread (blurred, badly
        cropped faces lie far from their centre).
    mix_frac: share of faces drawn towards another, random identity (look-alike
        photos: the bridges that chain single-linkage clusters together).
    mix_weight: such a face's centre is ``(1-a) c_i + a c_j`` with ``a ~ U(0, mix_weight)``.
    size_sigma: log-normal std of identity popularity (the long tail of sizes).
    hard_frac: share of identities that copy a partner's centre (hard pairs).
    hard_rho: correlation of a hard identity's centre with its partner's.
    """

    between: float = 0.165
    within: float = 0.056
    between_decay: float = 1.0
    within_decay: float = 0.4
    rank_frac: float = 0.6
    centre_sigma: float = 0.3
    spread_sigma: float = 0.15
    face_sigma: float = 0.25
    mix_frac: float = 0.05
    mix_weight: float = 0.5
    size_sigma: float = 0.9
    hard_frac: float = 0.1
    hard_rho: float = 0.8

    def validate(self) -> None:
        for name in ("between", "within"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ClustergError(f"{name}: must be a positive number, got {v!r}")
        for name in ("between_decay", "within_decay", "centre_sigma", "spread_sigma", "face_sigma", "size_sigma"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ClustergError(f"{name}: must be >= 0, got {v!r}")
        if not (0 < self.rank_frac <= 1):
            raise ClustergError(f"rank_frac: must lie in (0, 1], got {self.rank_frac!r}")
        if not (0 <= self.mix_frac <= 1) or not (0 <= self.mix_weight <= 1):
            raise ClustergError(f"mix_frac and mix_weight: must lie in [0, 1], got {self.mix_frac!r}, {self.mix_weight!r}")
        if not (0 <= self.hard_frac <= 1):
            raise ClustergError(f"hard_frac: must lie in [0, 1], got {self.hard_frac!r}")
        if not (0 <= self.hard_rho < 1):
            raise ClustergError(f"hard_rho: must lie in [0, 1), got {self.hard_rho!r}")


def _check_int(v, name: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ClustergError(f"{name}: expected an integer, got {v!r}")
    v = int(v)
    if v < lo:
        raise ClustergError(f"{name}: must be >= {lo}, got {v}")
    return v


class _Plan:
    """Everything shared by all identities: sizes, basis, spectra, centres (small)."""

    def __init__(self, n: int, dim: int, n_ids: int | None, seed: int, spec: SynthSpec):
        self.n = _check_int(n, "n", 2)
        self.dim = _check_int(dim, "dim", 2)
        self.seed = _check_int(seed, "seed", 0)
        n_ids = default_n_ids(self.n) if n_ids is None else _check_int(n_ids, "n_ids", 1)
        if n_ids > self.n:
            raise ClustergError(f"n_ids={n_ids} is larger than the number of faces n={self.n}")
        self.n_ids = n_ids
        spec.validate()
        self.spec = spec
        r = min(self.dim - 1, max(1, math.ceil(spec.rank_frac * self.dim)))
        self.rank = r

        # Identity sizes: one face each, the rest spread by long-tailed popularity.
        rng = np.random.default_rng([self.seed, _SALT_SIZES])
        w = rng.lognormal(0.0, spec.size_sigma, size=n_ids)
        extra = rng.multinomial(self.n - n_ids, w / w.sum())
        self.sizes = (extra + 1).astype(np.int64)

        # Global direction g (first column) and an orthonormal basis U orthogonal to it.
        rng = np.random.default_rng([self.seed, _SALT_BASIS])
        q, rr = np.linalg.qr(rng.standard_normal((self.dim, r + 1)))
        q *= np.sign(np.diag(rr))  # unique QR: deterministic across LAPACK builds
        self.g = q[:, 0].copy()
        k = np.arange(1, r + 1, dtype=np.float64)
        lb = k ** -spec.between_decay
        lw = k ** -spec.within_decay
        # Basis scaled by the square-rooted spectra: offsets are z @ Bb, e @ Bw.
        self.Bb = (np.sqrt(lb * spec.between / lb.sum())[:, None] * q[:, 1:].T)  # (r, D)
        self.Bw = (np.sqrt(lw * spec.within / lw.sum())[:, None] * q[:, 1:].T)  # (r, D)

        # Centre coordinates z (n_ids, r) with hard pairs, and per-identity spread.
        rng = np.random.default_rng([self.seed, _SALT_CENTRES])
        z = rng.standard_normal((n_ids, r)).astype(np.float32)
        hard = rng.random(n_ids) < spec.hard_frac
        hard[0] = False
        partner = np.floor(rng.random(n_ids) * np.arange(n_ids)).astype(np.int64)
        rho = np.float32(spec.hard_rho)
        mix = np.float32(math.sqrt(1.0 - spec.hard_rho ** 2))
        # In identity order so a partner may itself be hard (chains of look-alikes).
        for i in np.flatnonzero(hard):
            z[i] = rho * z[partner[i]] + mix * z[i]
        self.z = z
        self.hard = hard
        self.spread = rng.lognormal(0.0, spec.spread_sigma, size=n_ids)
        self.z *= rng.lognormal(0.0, spec.centre_sigma, size=n_ids).astype(np.float32)[:, None]

    def identity_faces(self, i: int) -> np.ndarray:
        """Faces of identity ``i``: float32 (sizes[i], D), unit rows."""
        rng = np.random.default_rng([self.seed, _SALT_FACES, i])
        m = int(self.sizes[i])
        zc = np.repeat(self.z[i][None, :].astype(np.float64), m, axis=0)
        e = rng.standard_normal((m, self.rank))
        scale = self.spread[i] * np.exp(self.spec.face_sigma * rng.standard_normal(m))
        mixed = rng.random(m) < self.spec.mix_frac
        other = rng.integers(0, self.n_ids, size=m)
        a = rng.random(m) * self.spec.mix_weight
        if self.n_ids > 1 and mixed.any():
            sel = mixed & (other != i)
            zc[sel] = (1 - a[sel, None]) * zc[sel] + a[sel, None] * self.z[other[sel]]
        v = self.g[None, :] + zc @ self.Bb + (scale[:, None] * e) @ self.Bw
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.astype(np.float32)


def iter_synth(n: int, dim: int = 256, n_ids: int | None = None, seed: int = 0,
               chunk: int = 200_000, spec: SynthSpec | None = None,
               desc: str = "synth") -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x, y)`` blocks of about ``chunk`` faces (whole identities) in file order."""
    chunk = _check_int(chunk, "chunk", 1)
    plan = _Plan(n, dim, n_ids, seed, spec or SynthSpec())
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    held = 0
    bar = progress(total=plan.n, desc=desc, unit="face")
    try:
        for i in range(plan.n_ids):
            f = plan.identity_faces(i)
            xs.append(f)
            ys.append(np.full(len(f), i, dtype=np.int64))
            held += len(f)
            if held >= chunk:
                bar.update(held)
                yield np.concatenate(xs), np.concatenate(ys)
                xs, ys, held = [], [], 0
        if held:
            bar.update(held)
            yield np.concatenate(xs), np.concatenate(ys)
    finally:
        bar.close()


def synth_ms1m(n: int, dim: int = 256, n_ids: int | None = None, seed: int = 0,
               spec: SynthSpec | None = None, **knobs) -> tuple[np.ndarray, np.ndarray]:
    """Draw an MS1M-like set in memory.

    Args:
        n: number of faces N (>= 2).
        dim: feature dimension D (>= 2; MS1M uses 256, dlib 128).
        n_ids: number of identities C; default ``round(n / 68)`` as in MS1M.
        seed: random seed; the same arguments give identical arrays.
        spec: a :class:`SynthSpec`; keyword ``knobs`` override single fields of it.

    Returns:
        ``x`` float32 (N, D) with unit rows, grouped by identity, and
        ``y`` int64 (N,) identity labels ``0..C-1`` (every identity non-empty).
    """
    spec = _spec(spec, knobs)
    plan_n = _check_int(n, "n", 2)
    x = np.empty((plan_n, _check_int(dim, "dim", 2)), dtype=np.float32)
    y = np.empty(plan_n, dtype=np.int64)
    at = 0
    for xb, yb in iter_synth(n, dim, n_ids, seed, chunk=max(1, min(plan_n, 200_000)), spec=spec):
        x[at:at + len(xb)] = xb
        y[at:at + len(yb)] = yb
        at += len(xb)
    return x, y


def write_synth(out_dir: str | os.PathLike, n: int, dim: int = 256, seed: int = 0,
                split: str = "part1_test", chunk: int = 200_000, n_ids: int | None = None,
                spec: SynthSpec | None = None, **knobs) -> Path:
    """Stream an MS1M-like set to ``out_dir`` in the MS1M layout; return ``out_dir``.

    Writes ``features/<split>.bin`` (raw float32 N x D, with the dimension sidecar
    that :func:`clusterg.data.io.write_bin` writes) and ``labels/<split>.meta`` (one
    identity a line). Holds about ``chunk`` faces in memory at a time, so
    5,210,000 x 256 streams in well under 1 GiB; files appear atomically.
    Same arguments give identical bytes for any ``chunk``.
    """
    spec = _spec(spec, knobs)
    if not isinstance(split, str) or not split or "/" in split or "\\" in split or split.startswith("."):
        raise ClustergError(f"split: expected a plain file stem such as 'part1_test', got {split!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ClustergError(f"output {out} exists and is not a folder")
    _Plan(n, dim, n_ids, seed, spec)  # validate everything before touching the disk
    (out / "features").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    feat_path = out / "features" / f"{split}.bin"
    meta_path = out / "labels" / f"{split}.meta"
    with atomic_path(feat_path) as tmp_bin, atomic_path(meta_path) as tmp_meta:
        with open(tmp_bin, "wb") as fb, open(tmp_meta, "w") as fm:
            for xb, yb in iter_synth(n, dim, n_ids, seed, chunk=chunk, spec=spec,
                                     desc=f"synth {split}"):
                fb.write(np.ascontiguousarray(xb, dtype="<f4").tobytes())
                fm.write("\n".join(map(str, yb.tolist())))
                fm.write("\n")
    _write_sidecar(feat_path, int(n), int(dim))
    logger.info("wrote %d x %d synthetic faces to %s", n, dim, out)
    return out


def _spec(spec: SynthSpec | None, knobs: dict) -> SynthSpec:
    spec = spec or SynthSpec()
    if knobs:
        bad = sorted(set(knobs) - set(SynthSpec.__dataclass_fields__))
        if bad:
            raise ClustergError(f"unknown generator option(s): {', '.join(bad)}")
        spec = SynthSpec(**{**spec.__dict__, **knobs})
    return spec


def _write_sidecar(feat_path: Path, n: int, dim: int) -> None:
    """Write the dimension sidecar next to a ``.bin`` the way ``clusterg.data.io`` does."""
    try:
        from . import io as _io
    except ImportError:  # pragma: no cover - io is part of the package
        return
    writer = getattr(_io, "write_sidecar", None)
    if writer is not None:
        writer(feat_path, n=n, dim=dim)
