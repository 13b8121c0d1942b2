"""NetVLAD codebooks: sample local descriptors, k-means them with faiss, store them with h5py.

This is pytorch-NetVlad's ``--mode cluster`` as a library call and a command
(``clusterg codebook``): draw ``n_descriptors`` local descriptors, ``per_image`` from each
of ``ceil(n_descriptors / per_image)`` images chosen at random (50,000 = 100 x 500 by
default), run ``faiss.Kmeans(D, k, niter=100)`` on them and write an HDF5 file with the
datasets ``descriptors`` (float32 (M, D), the sample) and ``centroids`` (float32 (k, D)),
the layout NetVLAD's ``init_params`` reads (``centroids/<arch>_<dataset>_64_desc_cen.hdf5``).

The file also carries the NetVLAD soft-assignment initialisation as the attribute
``alpha``: with the centroids L2-normalised to ``c_hat``, and for every sampled descriptor
the largest and second largest dot products ``s1 >= s2`` with ``c_hat``,
``alpha = -ln(0.01) / mean(s1 - s2)`` (so the nearest centroid gets about 100 times the
weight of the second at an average descriptor), plus ``k``, ``niter`` and ``seed``.

Descriptors are L2-normalised one by one first (``normalize=True``), as pytorch-NetVlad's
cluster mode does (an ``L2Norm`` layer after the encoder).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._validate import ClustergError, check_features

__all__ = ["Codebook", "sample_descriptors", "netvlad_alpha", "build_codebook", "write_codebook",
           "read_codebook"]

logger = logging.getLogger("clusterg.codebook")


@dataclass
class Codebook:
    """A NetVLAD codebook.

    Attributes:
        centroids: float32 (k, D) k-means centres.
        descriptors: float32 (M, D) the sampled descriptors they were trained on.
        alpha: NetVLAD's soft-assignment initialisation (see the module docstring).
        niter: k-means iterations. seed: the random seed of sampling and k-means.
    """

    centroids: np.ndarray
    descriptors: np.ndarray
    alpha: float
    niter: int = 100
    seed: int = 0

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])


def _pos_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 1:
        raise ClustergError(f"{name}: expected an integer >= 1, got {v!r}")
    return int(v)


def sample_descriptors(descriptors, n_descriptors: int = 50_000, per_image: int = 100, image_ids=None,
                       seed: int = 0) -> np.ndarray:
    """Draw local descriptors the way pytorch-NetVlad's cluster mode does.

    Args:
        descriptors: float (I, L, D) (I images of L local descriptors each) or (M, D); with
            (M, D), ``image_ids`` (M,) groups the rows by image, and without it every row is
            its own image (plain sampling of rows).
        n_descriptors: descriptors to draw (default 50,000).
        per_image: descriptors drawn from each chosen image, without replacement (default 100;
            an image with fewer gives all of its own).
        seed: random seed; the same arguments give the same sample.

    Returns:
        float32 (M', D) with ``M' = min(n_descriptors, available)``, images in the order drawn.
    """
    n_descriptors = _pos_int(n_descriptors, "n_descriptors")
    per_image = _pos_int(per_image, "per_image")
    rng = np.random.default_rng(seed)
    x = descriptors
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 3:
        if image_ids is not None:
            raise ClustergError("image_ids: only for (M, D) descriptors; (I, L, D) already groups them by image")
        n_img, n_loc, d = x.shape
        if n_img == 0 or n_loc == 0 or d == 0:
            raise ClustergError(f"descriptors: empty array of shape {x.shape}")
        groups = None
    elif x.ndim == 2:
        if image_ids is None:
            per_image = 1
            groups = [np.arange(x.shape[0])]
            n_img = x.shape[0]
        else:
            from ._validate import check_labels
            ids = check_labels(image_ids, "image_ids", n=x.shape[0])
            order = np.argsort(ids, kind="stable")
            _, starts = np.unique(ids[order], return_index=True)
            groups = np.split(order, starts[1:])
            n_img = len(groups)
    else:
        raise ClustergError(f"descriptors: expected shape (I, L, D) or (M, D), got {x.shape}")
    n_want_img = min(n_img, math.ceil(n_descriptors / per_image))
    chosen = rng.choice(n_img, n_want_img, replace=False)
    if x.ndim == 2 and image_ids is None:
        out = np.asarray(x[chosen])
    else:
        rows = []
        for im in chosen:
            if x.ndim == 3:
                take = rng.choice(x.shape[1], min(per_image, x.shape[1]), replace=False)
                rows.append(np.asarray(x[im][take]))
            else:
                g = groups[im]
                rows.append(np.asarray(x[g[rng.choice(len(g), min(per_image, len(g)), replace=False)]]))
        out = np.concatenate(rows)[:n_descriptors]
    out = check_features(out, name="descriptors", allow_zero=True)
    if len(out) < n_descriptors:
        logger.info("codebook: only %d descriptors available (asked for %d)", len(out), n_descriptors)
    return out


def netvlad_alpha(centroids, descriptors) -> float:
    """NetVLAD's ``alpha``: ``-ln(0.01) / mean(s1 - s2)`` over the descriptors (see the module docstring)."""
    c = check_features(centroids, name="centroids", min_n=2, normalize=True)
    x = check_features(descriptors, name="descriptors", allow_zero=True)
    if c.shape[1] != x.shape[1]:
        raise ClustergError(f"centroids have dimension {c.shape[1]} but descriptors {x.shape[1]}")
    gaps = []
    for s in range(0, len(x), 65536):
        dots = x[s:s + 65536].astype(np.float64) @ c.T.astype(np.float64)
        top2 = -np.partition(-dots, 1, axis=1)[:, :2]
        gaps.append(top2[:, 0] - top2[:, 1])
    gap = float(np.mean(np.concatenate(gaps)))
    if gap <= 0:
        raise ClustergError("descriptors sit at equal distance from their two nearest centroids; alpha is undefined")
    return float(-np.log(0.01) / gap)


def build_codebook(descriptors, k: int = 64, n_descriptors: int = 50_000, per_image: int = 100, image_ids=None,
                   niter: int = 100, seed: int = 0, normalize: bool = True, device: str = "cpu") -> Codebook:
    """Sample descriptors, run faiss k-means and compute NetVLAD's alpha.

    Args:
        descriptors, n_descriptors, per_image, image_ids, seed: as :func:`sample_descriptors`.
        k: clusters (default 64, NetVLAD's).
        niter: k-means iterations (default 100).
        normalize: L2-normalise each descriptor first (default True).
        device: ``"cpu"``, ``"cuda"`` (faiss-gpu k-means) or ``"auto"``.

    Returns:
        :class:`Codebook`.
    """
    import faiss

    from .knn.search import _use_gpu
    k = _pos_int(k, "k")
    niter = _pos_int(niter, "niter")
    sample = sample_descriptors(descriptors, n_descriptors, per_image, image_ids, seed)
    if normalize:
        sample = check_features(sample, name="descriptors", normalize=True)
    if len(sample) < k:
        raise ClustergError(f"k={k} clusters need at least {k} descriptors; the sample has {len(sample)}")
    km = faiss.Kmeans(sample.shape[1], k, niter=niter, seed=int(seed), verbose=False, gpu=_use_gpu(device))
    km.train(np.ascontiguousarray(sample))
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    return Codebook(centroids=centroids, descriptors=sample, alpha=netvlad_alpha(centroids, sample), niter=niter,
                    seed=int(seed))


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ClustergError('codebook files need h5py: pip install "clusterg[codebook]"') from None
    return h5py


def write_codebook(path: str | os.PathLike, codebook: Codebook) -> Path:
    """Write ``codebook`` as HDF5 (datasets ``descriptors``, ``centroids``; attributes ``alpha``, ``k``,
    ``niter``, ``seed``), atomically. Returns ``Path(path)``."""
    from ._atomic import atomic_path
    h5py = _h5py()
    path = Path(path)
    with atomic_path(path, suffix=".hdf5") as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("descriptors", data=np.asarray(codebook.descriptors, np.float32))
            h5.create_dataset("centroids", data=np.asarray(codebook.centroids, np.float32))
            h5.attrs["alpha"] = float(codebook.alpha)
            h5.attrs["k"] = int(codebook.k)
            h5.attrs["niter"] = int(codebook.niter)
            h5.attrs["seed"] = int(codebook.seed)
    return path


def read_codebook(path: str | os.PathLike) -> Codebook:
    """Read a codebook file (also one written by pytorch-NetVlad: alpha is recomputed when absent)."""
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise ClustergError(f"codebook file not found: {path}")
    try:
        with h5py.File(path, "r") as h5:
            if "centroids" not in h5 or "descriptors" not in h5:
                raise ClustergError(f"{path}: needs the datasets 'centroids' and 'descriptors' (has: "
                                    f"{', '.join(h5.keys()) or 'none'})")
            c = np.asarray(h5["centroids"][...], np.float32)
            x = np.asarray(h5["descriptors"][...], np.float32)
            alpha = float(h5.attrs["alpha"]) if "alpha" in h5.attrs else netvlad_alpha(c, x)
            niter = int(h5.attrs.get("niter", 100))
            seed = int(h5.attrs.get("seed", 0))
    except OSError as e:
        raise ClustergError(f"{path}: not a readable HDF5 file ({e})") from None
    return Codebook(centroids=c, descriptors=x, alpha=alpha, niter=niter, seed=seed)
