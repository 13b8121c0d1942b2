"""Feature and label files (MS1M layout: raw float32 ``.bin`` + ``.meta``), ``.npy``/``.npz`` loading,
and data set folders."""
from .dataset import MS1MDataset
from .io import load_features, read_bin, read_meta, sidecar_path, write_bin, write_meta

__all__ = ["MS1MDataset", "load_features", "read_bin", "read_meta", "sidecar_path", "write_bin", "write_meta"]
