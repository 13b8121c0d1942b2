"""Face embeddings from photos with dlib's ResNet model (128-d).

The models come from the PyPI packages of the ``faces`` extra
(``pip install "clusterg[faces]"``): ``dlib-bin`` runs them and
``face_recognition_models`` ships the weight files. Nothing is downloaded at
run time.

Per photo: the frontal-face HOG detector finds faces, the 5-point landmark
model aligns each one, and ``compute_face_descriptor`` turns the aligned
150x150 chip into a 128-d vector. These are the same steps that produced the
CelebA, ORL, Yale and UMIST features the defaults were chosen on, so
thresholds carry over.

Large photos are searched on a down-scaled copy (``max_side``) for speed; the
landmarks and the descriptor are computed on the full-resolution image.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._progress import progress
from .._validate import ClustergError

__all__ = ["FaceRecord", "FaceEmbedder", "embed_images", "face_model_dir", "load_image", "EMBEDDING_DIM"]

logger = logging.getLogger("clusterg.images.embed")

#: Length of a dlib face descriptor.
EMBEDDING_DIM = 128

_INSTALL_HINT = 'install the faces extra: pip install "clusterg[faces]"'
_MODEL_FILES = {
    "landmarks": "shape_predictor_5_face_landmarks.dat",
    "encoder": "dlib_face_recognition_resnet_model_v1.dat",
}


@dataclass
class FaceRecord:
    """One face found in one photo, or one photo where no face could be used.

    Attributes:
        path: the photo's path as given.
        index: position of the photo in the input sequence.
        face: face number inside the photo (0 is the largest), or -1 when
            there is no usable face.
        box: ``(left, top, right, bottom)`` in pixels of the (EXIF-rotated)
            photo, or ``None``.
        embedding: float32 array of shape ``(128,)``, or ``None`` with a
            ``reason``.
        reason: why there is no embedding (missing file, unreadable image,
            no face found), else ``None``.
    """

    path: str
    index: int
    face: int = -1
    box: tuple[int, int, int, int] | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when the record carries an embedding."""
        return self.embedding is not None


def _import_dlib():
    try:
        import dlib  # noqa: F401
    except ImportError:
        raise ClustergError(f"face embedding needs dlib, which is not installed; {_INSTALL_HINT}") from None
    return dlib


def face_model_dir() -> Path:
    """Folder holding the dlib model files of the installed ``face_recognition_models``.

    The package is located without importing it: its ``__init__`` needs
    ``pkg_resources``, which recent environments lack.
    """
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        folder = Path(loc) / "models"
        if all((folder / name).is_file() for name in _MODEL_FILES.values()):
            return folder
    if not locations:
        raise ClustergError(f"face model files not found (package face_recognition_models is missing); "
                            f"{_INSTALL_HINT}")
    raise ClustergError(f"face_recognition_models is installed but lacks {', '.join(_MODEL_FILES.values())} "
                        f"in {locations[0]}/models; reinstall it: "
                        f"pip install --force-reinstall face_recognition_models")


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as a uint8 RGB array of shape ``(H, W, 3)``, EXIF rotation applied.

    Raises :class:`ClustergError` for a missing file or one that is not a
    readable image (truncated, corrupt, unknown format).
    """
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ClustergError(f"reading photos needs Pillow; {_INSTALL_HINT}") from None
    path = Path(path)
    if not path.exists():
        raise ClustergError(f"file not found: {path}")
    if not path.is_file():
        raise ClustergError(f"not a file: {path}")
    try:
        with Image.open(path) as im:
            im.load()  # decode now so truncated files fail here, not later
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # a broken EXIF block: keep the pixels as stored
                pass
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as e:
        raise ClustergError(f"unreadable image {path}: too large ({e})") from None
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... on bad files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ClustergError(f"unreadable image {path}: {msg}") from None
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ClustergError(f"unreadable image {path}: empty image")
    return np.ascontiguousarray(rgb)


class FaceEmbedder:
    """Detect, align and embed faces with dlib (models loaded once, on first use).

    Args:
        upsample: times the detector up-samples the (down-scaled) photo; each
            step finds faces half as large and costs about 4x. Default 1,
            which finds faces down to about 40 px.
        max_side: the detector runs on a copy whose longer side is at most
            this many pixels (default 1024); ``None`` searches the full image.
        num_jitters: dlib descriptor jitters (0 = one pass; 10 is slightly
            more accurate and 10x slower). Default 0.
        padding: crop padding around the aligned face (dlib default 0.25).
        min_size: ignore detections whose box side is smaller than this many
            pixels in the full image (default 0: keep all).
    """

    def __init__(self, upsample: int = 1, max_side: int | None = 1024, num_jitters: int = 0,
                 padding: float = 0.25, min_size: int = 0) -> None:
        if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) or not 0 <= upsample <= 3:
            raise ClustergError(f"upsample: expected an integer in 0..3, got {upsample!r}")
        if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer))
                                     or max_side < 64):
            raise ClustergError(f"max_side: expected None or an integer >= 64, got {max_side!r}")
        if isinstance(num_jitters, bool) or not isinstance(num_jitters, (int, np.integer)) or num_jitters < 0:
            raise ClustergError(f"num_jitters: expected an integer >= 0, got {num_jitters!r}")
        try:
            padding = float(padding)
        except (TypeError, ValueError):
            raise ClustergError(f"padding: expected a number, got {padding!r}") from None
        if not 0.0 <= padding <= 1.0:
            raise ClustergError(f"padding: must lie in [0, 1], got {padding}")
        if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
            raise ClustergError(f"min_size: expected an integer >= 0, got {min_size!r}")
        self.upsample = int(upsample)
        self.max_side = None if max_side is None else int(max_side)
        self.num_jitters = int(num_jitters)
        self.padding = padding
        self.min_size = int(min_size)
        self._models = None
        self._lock = threading.Lock()

    def settings(self) -> str:
        """A string naming every setting that changes the embeddings (cache key)."""
        return (f"dlib-hog-5pt-resnet_v1;upsample={self.upsample};max_side={self.max_side};"
                f"jitters={self.num_jitters};padding={self.padding};min_size={self.min_size}")

    def __repr__(self) -> str:
        return (f"FaceEmbedder(upsample={self.upsample}, max_side={self.max_side}, "
                f"num_jitters={self.num_jitters}, padding={self.padding}, min_size={self.min_size})")

    def check_installed(self) -> None:
        """Raise :class:`ClustergError` with the install hint unless dlib and the model files are present."""
        _import_dlib()
        face_model_dir()

    def _load(self):
        with self._lock:
            if self._models is None:
                dlib = _import_dlib()
                folder = face_model_dir()
                detector = dlib.get_frontal_face_detector()
                landmarks = dlib.shape_predictor(str(folder / _MODEL_FILES["landmarks"]))
                encoder = dlib.face_recognition_model_v1(str(folder / _MODEL_FILES["encoder"]))
                self._models = (dlib, detector, landmarks, encoder)
        return self._models

    def detect(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes ``(left, top, right, bottom)`` in ``rgb``, largest first.

        ``rgb`` is a uint8 array ``(H, W, 3)``. Boxes are clipped to the image.
        """
        rgb = _check_rgb(rgb)
        _, detector, _, _ = self._load()
        h, w = rgb.shape[:2]
        scale = 1.0
        small = rgb
        if self.max_side is not None and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            small = _resize(rgb, max(1, round(w * scale)), max(1, round(h * scale)))
        rects = detector(small, self.upsample)
        boxes = []
        for r in rects:
            left = int(np.clip(round(r.left() / scale), 0, w - 1))
            top = int(np.clip(round(r.top() / scale), 0, h - 1))
            right = int(np.clip(round((r.right() + 1) / scale) - 1, left, w - 1))
            bottom = int(np.clip(round((r.bottom() + 1) / scale) - 1, top, h - 1))
            if min(right - left + 1, bottom - top + 1) < max(self.min_size, 1):
                continue
            boxes.append((left, top, right, bottom))
        # largest first; ties broken by position so the order is deterministic
        boxes.sort(key=lambda b: (-(b[2] - b[0] + 1) * (b[3] - b[1] + 1), b[1], b[0]))
        return boxes

    def embed_faces(self, rgb: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
        """Descriptors for the given boxes: float32 ``(len(boxes), 128)``."""
        rgb = _check_rgb(rgb)
        dlib, _, landmarks, encoder = self._load()
        if len(boxes) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        shapes = dlib.full_object_detections()
        for (left, top, right, bottom) in boxes:
            shapes.append(landmarks(rgb, dlib.rectangle(int(left), int(top), int(right), int(bottom))))
        vecs = encoder.compute_face_descriptor(rgb, shapes, self.num_jitters, self.padding)
        return np.asarray([np.asarray(v, dtype=np.float32) for v in vecs], dtype=np.float32).reshape(
            len(boxes), EMBEDDING_DIM)

    def embed_image(self, rgb: np.ndarray, all_faces: bool = False
                    ) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
        """Detect and embed: ``(boxes, embeddings (F, 128))``, largest face first.

        Without ``all_faces`` only the largest face is embedded (F <= 1).
        """
        boxes = self.detect(rgb)
        if not all_faces:
            boxes = boxes[:1]
        return boxes, self.embed_faces(rgb, boxes)


def _check_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ClustergError(f"image: expected an RGB array of shape (H, W, 3), got shape {tuple(rgb.shape)}")
    if rgb.dtype != np.uint8:
        raise ClustergError(f"image: expected dtype uint8, got {rgb.dtype}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ClustergError("image: empty image")
    return np.ascontiguousarray(rgb)


def _resize(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR), dtype=np.uint8)


def embed_images(paths: Iterable[str | os.PathLike], *, all_faces: bool = False,
                 embedder: FaceEmbedder | None = None, quiet: bool | None = None,
                 desc: str = "embedding faces") -> list[FaceRecord]:
    """Embed the faces in a list of photos.

    Args:
        paths: photo files (JPEG, PNG, ... anything Pillow reads).
        all_faces: one record per detected face (largest first) instead of
            one record per photo for its largest face.
        embedder: a configured :class:`FaceEmbedder` (default settings if None).
        quiet: hide the progress bar (None: follow :func:`clusterg.set_quiet`).

    Returns:
        A list of :class:`FaceRecord`, in input order. A photo that is
        missing, unreadable or has no face yields one record with
        ``embedding=None`` and a ``reason``; the run goes on. Records with an
        embedding carry a float32 vector of shape ``(128,)`` and its ``box``.

    Raises:
        ClustergError: when dlib or the model files are not installed.
    """
    if isinstance(paths, (str, os.PathLike)):
        raise ClustergError("paths: expected a list of image paths, got a single path")
    paths = list(paths)
    embedder = embedder if embedder is not None else FaceEmbedder()
    if not isinstance(embedder, FaceEmbedder):
        raise ClustergError(f"embedder: expected a FaceEmbedder, got {type(embedder).__name__}")
    if paths:
        embedder.check_installed()  # fail early, once, when the faces extra is missing
    records: list[FaceRecord] = []
    disable = None if quiet is None else bool(quiet)
    for i, p in enumerate(progress(paths, total=len(paths), desc=desc, disable=disable)):
        records.extend(embed_one(p, i, embedder, all_faces=all_faces))
    return records


def embed_one(path: str | os.PathLike, index: int, embedder: FaceEmbedder,
              all_faces: bool = False) -> list[FaceRecord]:
    """Records for one photo (see :func:`embed_images`); never raises for a bad photo."""
    name = os.fspath(path)
    try:
        rgb = load_image(path)
    except ClustergError as e:
        return [FaceRecord(path=name, index=index, reason=str(e))]
    try:
        boxes, emb = embedder.embed_image(rgb, all_faces=all_faces)
    except (RuntimeError, MemoryError) as e:  # dlib raises RuntimeError on odd inputs
        return [FaceRecord(path=name, index=index, reason=f"face detection failed: {e}")]
    if not boxes:
        return [FaceRecord(path=name, index=index, reason="no face found")]
    return [FaceRecord(path=name, index=index, face=j, box=tuple(int(v) for v in b), embedding=emb[j])
            for j, b in enumerate(boxes)]
