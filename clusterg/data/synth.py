"""MS1M-like synthetic face embeddings, for tests and for benchmarks at MS1M scale.

The MS1M clustering test parts used by learn-to-cluster (``part1_test`` ...
``part9_test``: 584,013 to 5,210,000 faces of 256-d, about 68 faces per
identity) are not redistributable. :func:`synth_ms1m` draws a set with the same
*shape* and a face-like *difficulty*: unit vectors inside a narrow cone,
long-tailed identity sizes, identities crowded in a low-rank centre space,
identity spread varying per identity and per face, a few hard pairs of
look-alike identities, and some faces pulled towards another identity.

Model. ``g`` is a global unit direction; ``U`` an orthonormal basis orthogonal
to it; ``lb`` and ``lw`` power-law spectra (``k**-between_decay`` on the first
``ceil(between_rank_frac * D)`` axes, ``k**-within_decay`` on the first
``ceil(rank_frac * D)``) scaled to total variances ``between`` and ``within``::

    identity centre    c_i = U diag(sqrt(lb)) z_i                z_i ~ N(0, I)
    face of i          x   = normalise(g + c + s_i f U diag(sqrt(lw)) e)   e ~ N(0, I)

where ``c = c_i`` except for a share ``mix_frac`` of faces, for which
``c = (1 - a) c_i + a c_j`` towards a random identity ``j`` (``a ~ U(0,
mix_weight)``); ``s_i`` (per identity, ``spread_sigma``) and ``f`` (per face,
``face_sigma``) are log-normal factors. A share ``hard_frac`` of identities copy
an earlier partner: ``z_i = hard_rho z_p + sqrt(1 - hard_rho**2) z_new``.

The defaults were calibrated at D=128 against the real CelebA ``dev`` split
(dlib embeddings): nearest-neighbour identity rate, same/different-identity
cosine histograms and the best pairwise F of kNN + connected components and of
Infomap. ``benchmarks/calibrate_synth.py`` measures both sets; the numbers are
in ``docs/synthetic.rst``.

Determinism: each identity draws its faces from its own random stream seeded by
``(seed, identity)`` and is computed alone, the same way whether the set is
built in memory or streamed, so :func:`write_synth` writes exactly the bytes of
:func:`synth_ms1m` for the same arguments, whatever ``chunk`` is. Faces are
stored grouped by identity (labels ``0..C-1`` in file order), like the MS1M
``.meta`` files.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np

from .._atomic import atomic_path
from .._progress import progress
from .._validate import ClustergError, check_int

__all__ = ["synth_ms1m", "write_synth", "iter_synth", "SynthSpec", "default_n_ids", "MS1M_SPLITS",
           "FACES_PER_ID"]

logger = logging.getLogger("clusterg.data.synth")

#: Faces per identity in the learn-to-cluster MS1M test parts (584,013 / 8,573 = 68.1).
FACES_PER_ID = 68.0

#: MS1M test parts: name -> (faces, identities). part1 is from learn-to-cluster's
#: DATASET.md; the identity counts of the larger parts are approximate (~68 faces each).
MS1M_SPLITS: dict[str, tuple[int, int]] = {
    "part1_test": (584_013, 8_573),
    "part3_test": (1_740_301, 25_725),
    "part5_test": (2_890_517, 42_897),
    "part7_test": (4_046_365, 60_108),
    "part9_test": (5_210_000, 77_738),
}

# Independent random streams: sizes, basis, centres, and one per identity's faces.
_SALT_SIZES, _SALT_BASIS, _SALT_CENTRES, _SALT_FACES = 1, 2, 3, 4


def default_n_ids(n: int) -> int:
    """Identity count for ``n`` faces: about 68 faces per identity, as in MS1M."""
    return max(1, int(round(n / FACES_PER_ID)))


@dataclass(frozen=True)
class SynthSpec:
    """Knobs of the generator (defaults calibrated on CelebA ``dev`` at D=128).

    Attributes:
        between: total variance of identity centres around ``g`` (a unit vector).
        within: total variance of faces around their centre (before ``s_i f``).
        between_decay: power-law exponent of the centre spectrum.
        within_decay: power-law exponent of the within-identity spectrum.
        between_rank_frac: share of D carrying identity centres; a low-rank centre space
            crowds identities together, as in real face embeddings.
        rank_frac: share of D carrying within-identity variation.
        spread_sigma: log-normal std of the per-identity spread ``s_i``.
        face_sigma: log-normal std of the per-face factor ``f`` (poor photos lie far out).
        size_sigma: log-normal std of identity popularity (the long tail of sizes).
        hard_frac: share of identities that copy an earlier partner's centre.
        hard_rho: correlation of a hard identity's centre with its partner's.
        mix_frac: share of faces pulled towards a random other identity (look-alike photos:
            the bridges that chain single-linkage clusters together).
        mix_weight: largest pull ``a`` of such a face (``a ~ U(0, mix_weight)``).
    """

    between: float = 0.135
    within: float = 0.064
    between_decay: float = 0.3
    within_decay: float = 0.4
    between_rank_frac: float = 0.25
    rank_frac: float = 0.6
    spread_sigma: float = 0.15
    face_sigma: float = 0.15
    size_sigma: float = 0.9
    hard_frac: float = 0.03
    hard_rho: float = 0.75
    mix_frac: float = 0.06
    mix_weight: float = 0.4

    def validate(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(v):
                raise ClustergError(f"{f.name}: expected a finite number, got {v!r}")
        for name in ("between", "within"):
            if getattr(self, name) <= 0:
                raise ClustergError(f"{name}: must be > 0, got {getattr(self, name)!r}")
        for name in ("between_decay", "within_decay", "spread_sigma", "face_sigma", "size_sigma"):
            if getattr(self, name) < 0:
                raise ClustergError(f"{name}: must be >= 0, got {getattr(self, name)!r}")
        for name in ("rank_frac", "between_rank_frac"):
            if not 0 < getattr(self, name) <= 1:
                raise ClustergError(f"{name}: must lie in (0, 1], got {getattr(self, name)!r}")
        for name in ("hard_frac", "mix_frac", "mix_weight"):
            if not 0 <= getattr(self, name) <= 1:
                raise ClustergError(f"{name}: must lie in [0, 1], got {getattr(self, name)!r}")
        if not 0 <= self.hard_rho < 1:
            raise ClustergError(f"hard_rho: must lie in [0, 1), got {self.hard_rho!r}")


def _make_spec(spec: SynthSpec | None, knobs: dict) -> SynthSpec:
    if spec is not None and not isinstance(spec, SynthSpec):
        raise ClustergError(f"spec: expected a SynthSpec, got {type(spec).__name__}")
    spec = spec or SynthSpec()
    if knobs:
        known = {f.name for f in fields(SynthSpec)}
        bad = sorted(set(knobs) - known)
        if bad:
            raise ClustergError(f"unknown generator option(s): {', '.join(bad)}")
        spec = SynthSpec(**{**asdict(spec), **knobs})
    spec.validate()
    return spec


class _Plan:
    """What all identities share: sizes, basis, spectra, centres (O(C * D) memory)."""

    def __init__(self, n, dim, n_ids, seed, spec: SynthSpec, sizes=None):
        self.n = check_int(n, "n", 2)
        self.dim = check_int(dim, "dim", 2)
        self.seed = check_int(seed, "seed", 0)
        self.spec = spec
        if sizes is not None:
            sizes = np.asarray(sizes)
            if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
                raise ClustergError("sizes: expected a non-empty 1-D integer array of identity sizes")
            if (sizes < 1).any():
                raise ClustergError("sizes: every identity needs at least one face")
            if int(sizes.sum()) != self.n:
                raise ClustergError(f"sizes: add up to {int(sizes.sum())} faces but n={self.n}")
            if n_ids is not None and check_int(n_ids, "n_ids", 1) != sizes.size:
                raise ClustergError(f"n_ids={n_ids} disagrees with len(sizes)={sizes.size}")
            n_ids = sizes.size
        n_ids = default_n_ids(self.n) if n_ids is None else check_int(n_ids, "n_ids", 1)
        if n_ids > self.n:
            raise ClustergError(f"n_ids={n_ids} is larger than the number of faces n={self.n}")
        self.n_ids = n_ids
        r = min(self.dim - 1, max(1, math.ceil(spec.rank_frac * self.dim)))
        rb = min(self.dim - 1, max(1, math.ceil(spec.between_rank_frac * self.dim)))
        r_all = max(r, rb)

        # Identity sizes: one face each, the rest spread by long-tailed popularity.
        rng = np.random.default_rng([self.seed, _SALT_SIZES])
        w = rng.lognormal(0.0, spec.size_sigma, size=n_ids)
        extra = rng.multinomial(self.n - n_ids, w / w.sum())
        self.sizes = (extra + 1).astype(np.int64) if sizes is None else sizes.astype(np.int64)

        # g (first column) and the basis U orthogonal to it; sign-fixed QR is unique.
        rng = np.random.default_rng([self.seed, _SALT_BASIS])
        q, rr = np.linalg.qr(rng.standard_normal((self.dim, r_all + 1)))
        q = q * np.where(np.diag(rr) < 0, -1.0, 1.0)
        self.g = q[:, 0].copy()
        k = np.arange(1, r_all + 1, dtype=np.float64)
        lb = np.where(k <= rb, k ** -spec.between_decay, 0.0)
        lw = np.where(k <= r, k ** -spec.within_decay, 0.0)
        # Rows are scaled basis vectors: an offset is coords @ B.
        self.Bb = np.sqrt(lb * spec.between / lb.sum())[:rb, None] * q[:, 1:rb + 1].T  # (rb, D)
        self.Bw = np.sqrt(lw * spec.within / lw.sum())[:r, None] * q[:, 1:r + 1].T  # (r, D)
        self.rank = r

        # Centre coordinates with hard pairs (chains allowed), and per-identity spread.
        rng = np.random.default_rng([self.seed, _SALT_CENTRES])
        z = rng.standard_normal((n_ids, rb))
        hard = rng.random(n_ids) < spec.hard_frac
        hard[0] = False
        partner = np.floor(rng.random(n_ids) * np.arange(n_ids)).astype(np.int64)
        mix = math.sqrt(1.0 - spec.hard_rho ** 2)
        for i in np.flatnonzero(hard):
            z[i] = spec.hard_rho * z[partner[i]] + mix * z[i]
        self.centres = z @ self.Bb  # (C, D) float64: 5.21M faces -> 77K x 256 x 8 B = 160 MB
        self.hard = hard
        self.partner = np.where(hard, partner, -1)
        self.spread = rng.lognormal(0.0, spec.spread_sigma, size=n_ids)

    def identity_faces(self, i: int) -> np.ndarray:
        """Faces of identity ``i``: float32 (sizes[i], D), unit rows."""
        spec = self.spec
        rng = np.random.default_rng([self.seed, _SALT_FACES, i])
        m = int(self.sizes[i])
        e = rng.standard_normal((m, self.rank))
        scale = self.spread[i] * np.exp(spec.face_sigma * rng.standard_normal(m))
        pulled = rng.random(m) < spec.mix_frac
        other = rng.integers(0, self.n_ids, size=m)
        a = rng.random(m) * spec.mix_weight
        v = (scale[:, None] * e) @ self.Bw
        v += self.g + self.centres[i]
        sel = np.flatnonzero(pulled & (other != i))
        if sel.size:
            v[sel] += a[sel, None] * (self.centres[other[sel]] - self.centres[i])
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.astype(np.float32)


def iter_synth(n: int, dim: int = 256, n_ids: int | None = None, seed: int = 0,
               chunk: int = 200_000, sizes=None, spec: SynthSpec | None = None,
               desc: str = "synth", **knobs) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x float32 (B, D), y int64 (B,))`` blocks in file order.

    Blocks hold whole identities and about ``chunk`` faces (more only when one
    identity alone is larger). Arguments as in :func:`synth_ms1m`.
    """
    chunk = check_int(chunk, "chunk", 1)
    with _single_thread_blas():
        plan = _Plan(n, dim, n_ids, seed, _make_spec(spec, knobs), sizes)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    held = 0
    bar = progress(total=plan.n, desc=desc, unit="face")
    # Per-identity products are tiny: multi-threaded BLAS only adds overhead (20-50x
    # slower on a busy 2-core machine) and single-threaded runs are bit-stable.
    limit = _single_thread_blas()
    try:
        limit.__enter__()
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
        limit.__exit__(None, None, None)
        bar.close()


def _single_thread_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def synth_ms1m(n: int, dim: int = 256, n_ids: int | None = None, seed: int = 0,
               sizes=None, spec: SynthSpec | None = None, **knobs) -> tuple[np.ndarray, np.ndarray]:
    """Draw an MS1M-like face set in memory.

    Args:
        n: number of faces N (>= 2).
        dim: feature dimension D (>= 2). Default 256 as MS1M; dlib embeddings are 128.
        n_ids: number of identities C; default ``round(n / 68)`` as in MS1M.
        seed: random seed (>= 0); the same arguments give identical arrays.
        sizes: optional identity sizes (C,) summing to ``n``; replaces the
            long-tailed draw (e.g. to copy a real set's size histogram).
        spec: a :class:`SynthSpec`; keyword ``knobs`` override its fields.

    Returns:
        ``x`` float32 (N, D) with unit rows, grouped by identity, and ``y`` int64
        (N,) with labels ``0..C-1`` (every identity has at least one face).
    """
    n = check_int(n, "n", 2)
    dim = check_int(dim, "dim", 2)
    x = np.empty((n, dim), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    at = 0
    for xb, yb in iter_synth(n, dim, n_ids, seed, chunk=min(n, 200_000), sizes=sizes,
                             spec=spec, **knobs):
        x[at:at + len(xb)] = xb
        y[at:at + len(yb)] = yb
        at += len(xb)
    return x, y


def write_synth(out_dir: str | os.PathLike, n: int, dim: int = 256, seed: int = 0,
                split: str = "part1_test", chunk: int = 200_000, n_ids: int | None = None,
                sizes=None, spec: SynthSpec | None = None, **knobs) -> Path:
    """Stream an MS1M-like set to ``out_dir`` in the MS1M layout; return ``Path(out_dir)``.

    Writes ``features/<split>.bin`` (raw float32 N x D) with its sidecar
    ``features/<split>.bin.json`` (as :func:`clusterg.data.io.write_bin` does) and
    ``labels/<split>.meta`` (one identity a line). Only about ``chunk`` faces are
    held in memory (5,210,000 x 256 streams in well under 1 GiB); every file
    appears atomically. The same arguments give identical bytes for any ``chunk``.
    """
    spec = _make_spec(spec, knobs)
    if not isinstance(split, str) or not split or split != Path(split).name or split.startswith("."):
        raise ClustergError(f"split: expected a plain file stem such as 'part1_test', got {split!r}")
    chunk = check_int(chunk, "chunk", 1)
    _Plan(n, dim, n_ids, seed, spec, sizes)  # validate before touching the disk
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ClustergError(f"output {out} exists and is not a folder")
    (out / "features").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    feat_path = out / "features" / f"{split}.bin"
    side_path = feat_path.with_name(feat_path.name + ".json")
    meta_path = out / "labels" / f"{split}.meta"
    with atomic_path(feat_path) as tmp_bin, atomic_path(meta_path) as tmp_meta, \
            atomic_path(side_path) as tmp_side:
        with open(tmp_bin, "wb") as fb, open(tmp_meta, "w") as fm:
            for xb, yb in iter_synth(n, dim, n_ids, seed, chunk=chunk, sizes=sizes, spec=spec,
                                     desc=f"synth {split}"):
                fb.write(np.ascontiguousarray(xb, dtype="<f4").tobytes())
                fm.write("\n".join(map(str, yb.tolist())))
                fm.write("\n")
        tmp_side.write_text(json.dumps({"dim": int(dim), "n": int(n), "dtype": "float32"}) + "\n")
    logger.info("wrote %d x %d synthetic faces to %s (split %s)", n, dim, out, split)
    return out
