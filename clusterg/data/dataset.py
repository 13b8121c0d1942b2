"""A data set folder in the MS1M clustering layout (learn-to-cluster)::

    root/
      features/<split>.bin           raw float32 N x D (D given, or from <split>.bin.json)
      labels/<split>.meta            optional: one identity a line
      knns/<split>/faiss_k_<k>.npz   optional: precomputed kNN (ids, cosine distances)
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .._validate import ClustergError
from .io import read_bin, read_meta

__all__ = ["MS1MDataset"]

_KNN_RE = re.compile(r"^faiss_k_(\d+)\.npz$")


class MS1MDataset:
    """Features (memory-mapped), labels and kNN files of one split.

    Parameters
    ----------
    root : folder holding ``features/``, ``labels/`` and ``knns/``.
    split : split name, e.g. ``"part1_test"`` (file stem under ``features/``).
    dim : feature dimension D; default None reads the ``.bin.json`` sidecar.
    labels : default True loads ``labels/<split>.meta`` when it exists (``y`` stays
        None otherwise); False never reads labels.

    Attributes
    ----------
    x : read-only float32 memmap of shape (N, D).
    y : int64 array of shape (N,), or None.
    """

    def __init__(self, root: str | os.PathLike, split: str, dim: int | None = None, labels: bool = True):
        self.root = Path(root)
        self.split = str(split)
        if not self.root.is_dir():
            raise ClustergError(f"data set folder not found: {self.root}")
        feat = self.root / "features" / f"{self.split}.bin"
        if not feat.is_file():
            have = self.splits(self.root)
            raise ClustergError(f"{self.root}: no split {self.split!r} (no {feat.relative_to(self.root)}); "
                                f"available: {', '.join(have) or 'none'}")
        self.features_path = feat
        self.labels_path = self.root / "labels" / f"{self.split}.meta"
        self.x = read_bin(feat, dim=dim, mmap=True)
        self.y: np.ndarray | None = None
        if labels and self.labels_path.is_file():
            y = read_meta(self.labels_path)
            if len(y) != len(self.x):
                raise ClustergError(f"{self.labels_path}: has {len(y)} labels but {feat.name} has "
                                    f"{len(self.x)} feature rows (wrong --dim or mismatched files?)")
            self.y = y

    @staticmethod
    def splits(root: str | os.PathLike) -> list[str]:
        """Names of the splits with a ``features/<split>.bin`` under ``root``, sorted."""
        folder = Path(root) / "features"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.bin") if p.is_file())

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_classes(self) -> int | None:
        """Number of distinct identities, or None without labels."""
        return None if self.y is None else int(np.unique(self.y).size)

    def knn_path(self, k: int) -> Path:
        """Where the split's ``faiss_k_<k>.npz`` kNN file lives (it may not exist)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ClustergError(f"k must be a positive integer, got {k!r}")
        return self.root / "knns" / self.split / f"faiss_k_{int(k)}.npz"

    def knn_ks(self) -> list[int]:
        """The k values of the kNN files present for this split, ascending."""
        folder = self.root / "knns" / self.split
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _KNN_RE.match(p.name)))

    def load_knn(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Load the precomputed kNN: (nbrs int64 (N, k), sims float32 (N, k))."""
        path = self.knn_path(k)
        if not path.is_file():
            raise ClustergError(f"no precomputed kNN for k={k}: {path} (present: {self.knn_ks() or 'none'})")
        from ..knn import load_knn  # lazy: faiss is not needed to read features

        nbrs, sims = load_knn(path)
        if len(nbrs) != len(self):
            raise ClustergError(f"{path}: has {len(nbrs)} rows but the split has {len(self)} points")
        return nbrs, sims

    def to_data(self):
        """A ``torch_geometric.data.Data`` with ``x`` float32 (N, D) and ``y`` int64 (N,) or None.

        The features are copied into memory (torch cannot share a read-only memmap).
        """
        import torch
        from torch_geometric.data import Data

        x = torch.from_numpy(np.array(self.x, dtype=np.float32, copy=True))
        y = None if self.y is None else torch.from_numpy(self.y.astype(np.int64, copy=True))
        return Data(x=x, y=y, num_nodes=len(self))

    def __repr__(self) -> str:
        lab = "no labels" if self.y is None else f"{self.num_classes} identities"
        return f"MS1MDataset(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, dim={self.dim}, {lab})"
