"""Photos in, clusters out: a JSON list of photos gets one ``cluster_id`` per photo.

Input: a JSON list of objects, each with an ``img_path`` (relative to the JSON
file's folder, or absolute); any other keys are kept as they are, in the same
order. Output: the same list with ``cluster_id`` added (0..C-1, or -1 with a
``reason`` when the photo is missing, unreadable or shows no face). With
``all_faces`` every detected face is clustered and listed under ``faces``
(``box`` = left, top, right, bottom in pixels; largest face first), and the
photo's ``cluster_id`` is that of its largest face.

Embeddings are cached in the output's folder (``INPUT.json.embeddings.npz``,
named after the input list, keyed by each photo's absolute path, modification
time and size), so trying another method, threshold or output name does not
run the face model again. Input photos and the input list are never modified.
"""
from __future__ import annotations

import inspect
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._atomic import atomic_open, atomic_path, refuse_same_file
from .._progress import progress
from .._validate import ClustergError, check_features, check_threshold
from .embed import EMBEDDING_DIM, FaceEmbedder, load_image

__all__ = ["cluster_images", "cluster_faces", "read_photo_list", "default_threshold", "export_cluster_folders",
           "EmbeddingCache", "DEFAULT_METHODS", "IMAGE_K", "AUTO_THRESHOLDS"]

logger = logging.getLogger("clusterg.images.pipeline")

#: Methods tried in this order when no method is named; the first that runs is
#: used: ``auto``, the library's default pipeline (:class:`clusterg.cluster.AutoClusterer`:
#: Ada-NETS with its packaged dlib-128 weights for 128-d faces, label-free Infomap
#: otherwise), then knn-cc at :func:`default_threshold` (always runs).
DEFAULT_METHODS: tuple[str, ...] = ("auto", "knn-cc")

#: Neighbours per face (self included) for infomap and knn-cc, as in the threshold fit; clamped to N.
IMAGE_K = 20

# Keys this module writes besides cluster_id (which keeps its place when present): copies
# left in the input by an earlier run are dropped, then written afresh where they apply.
_STALE_KEYS = ("reason", "faces", "confidence", "cluster_quality", "person_name", "merged_from", "corrections",
               "moved_from")


#: Size-adaptive default thresholds ``a + b * log10(N)`` for dlib face embeddings (k=20),
#: per method: ``(a, b)``. See :func:`default_threshold`.
AUTO_THRESHOLDS: dict[str, tuple[float, float]] = {"infomap": (0.90, 0.013), "knn-cc": (0.91, 0.013)}


def default_threshold(n: int, method: str = "infomap") -> float:
    """Default cosine threshold for ``n`` dlib face embeddings (k=20), for ``infomap`` or ``knn-cc``.

    Graph clusterers chain more as the set grows, so the best threshold rises
    with N. Fitted on the CelebA ``train`` split only (dlib embeddings, no
    identity of the ``dev`` split or of the image tests): for random subsets
    of 5 to 1,000 identities (33 to 7,300 faces; knn-cc also the whole split,
    41,796 faces) the threshold with the best pairwise F lies on
    ``a + b * log10(N)`` to within about 0.005, with ``(a, b)`` = (0.90, 0.013)
    for infomap and (0.91, 0.013) for knn-cc. Checked on the ``dev`` split:
    infomap at this threshold scores pairwise F 0.95 (5 to 30 identities),
    0.93 (100), 0.91 (300), 0.88 (1,000). Clipped to [0.90, 0.975].

    Raises :class:`ClustergError` for a method without a fitted default.
    """
    if method not in AUTO_THRESHOLDS:
        raise ClustergError(f"no default threshold for method {method!r}; choose one of {', '.join(AUTO_THRESHOLDS)}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ClustergError(f"n: expected a number of faces >= 0, got {n!r}")
    a, b = AUTO_THRESHOLDS[method]
    return float(min(0.975, max(0.90, a + b * math.log10(max(int(n), 2)))))


# ----------------------------------------------------------------------------- input


def read_photo_list(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and check the input JSON: a list of objects with an ``img_path`` each.

    Raises :class:`ClustergError` for a missing or malformed file. An entry
    without a usable ``img_path`` is kept and later reported with a reason.
    """
    path = Path(path)
    if not path.is_file():
        raise ClustergError(f"input JSON not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ClustergError(f"input {path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    except UnicodeDecodeError:
        raise ClustergError(f"input {path} is not UTF-8 text") from None
    if not isinstance(data, list):
        raise ClustergError(f"input {path}: expected a JSON list of objects with an img_path, "
                            f"got a {type(data).__name__}")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ClustergError(f"input {path}: entry {i} is a {type(item).__name__}, expected an object "
                                f"with an img_path")
    return data


def _resolve(img_path: Any, base: Path) -> Path | None:
    if not isinstance(img_path, str) or not img_path.strip():
        return None
    p = Path(img_path).expanduser()
    return p if p.is_absolute() else base / p


# ----------------------------------------------------------------------------- cache


@dataclass
class _Faces:
    """Detected faces of one photo (largest first) or why there are none."""

    boxes: np.ndarray  # int64 (F, 4)
    embeddings: np.ndarray  # float32 (F, 128)
    reason: str = ""
    complete: bool = True  # every detected face embedded (False: only the largest)


@dataclass
class EmbeddingCache:
    """Face embeddings of photos on disk, valid while a photo's mtime and size are unchanged.

    Stored as one ``.npz`` (no pickles). ``settings`` names the embedder
    configuration; a cache made with other settings is ignored.
    """

    path: Path | None
    settings: str
    entries: dict[str, tuple[int, int, _Faces]] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def load(cls, path: str | os.PathLike | None, settings: str) -> "EmbeddingCache":
        cache = cls(Path(path) if path is not None else None, settings)
        if cache.path is None or not cache.path.is_file():
            return cache
        try:
            with np.load(cache.path, allow_pickle=False) as z:
                if str(z["settings"]) != settings:
                    logger.info("embedding cache %s was made with other settings; ignoring it", cache.path)
                    return cache
                keys, mtimes, sizes = z["keys"], z["mtime_ns"], z["size"]
                offsets, boxes, emb = z["offsets"], z["boxes"], z["embeddings"]
                reasons, complete = z["reasons"], z["complete"]
                if (len(offsets) != len(keys) + 1 or emb.ndim != 2 or emb.shape[1] != EMBEDDING_DIM
                        or len(boxes) != len(emb) or offsets[-1] != len(emb)):
                    raise ValueError("inconsistent arrays")
                for i, key in enumerate(keys):
                    a, b = int(offsets[i]), int(offsets[i + 1])
                    cache.entries[str(key)] = (int(mtimes[i]), int(sizes[i]), _Faces(
                        boxes[a:b].astype(np.int64), emb[a:b].astype(np.float32), str(reasons[i]),
                        bool(complete[i])))
        except Exception as e:  # a cache is disposable: a broken one is rebuilt
            logger.warning("embedding cache %s is unreadable (%s); rebuilding it", cache.path, e)
            cache.entries.clear()
        return cache

    @staticmethod
    def _stat(p: Path) -> tuple[str, int, int] | None:
        try:
            st = p.stat()
        except OSError:
            return None
        return str(p.resolve()), st.st_mtime_ns, st.st_size

    def get(self, p: Path, all_faces: bool) -> _Faces | None:
        st = self._stat(p)
        if st is None or st[0] not in self.entries:
            return None
        mtime, size, faces = self.entries[st[0]]
        if (mtime, size) != st[1:] or (all_faces and not faces.complete):
            return None
        if not all_faces:
            return _Faces(faces.boxes[:1], faces.embeddings[:1], faces.reason, len(faces.boxes) <= 1)
        return faces

    def put(self, p: Path, faces: _Faces) -> None:
        st = self._stat(p)
        if st is None:
            return
        old = self.entries.get(st[0])
        if old is not None and old[:2] == st[1:] and old[2].complete and not faces.complete:
            return  # keep the richer entry
        self.entries[st[0]] = (st[1], st[2], faces)
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        keys = sorted(self.entries)
        faces = [self.entries[k][2] for k in keys]
        counts = np.array([len(f.boxes) for f in faces], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        boxes = (np.concatenate([f.boxes for f in faces]) if faces else np.zeros((0, 4))).astype(np.int64)
        emb = (np.concatenate([f.embeddings for f in faces]) if faces
               else np.zeros((0, EMBEDDING_DIM))).astype(np.float32)
        with atomic_path(self.path, suffix=".npz") as tmp:
            np.savez(tmp, settings=np.array(self.settings), keys=np.array(keys, dtype=str),
                     mtime_ns=np.array([self.entries[k][0] for k in keys], dtype=np.int64),
                     size=np.array([self.entries[k][1] for k in keys], dtype=np.int64),
                     offsets=offsets, boxes=boxes.reshape(-1, 4), embeddings=emb.reshape(-1, EMBEDDING_DIM),
                     reasons=np.array([f.reason for f in faces], dtype=str),
                     complete=np.array([f.complete for f in faces], dtype=bool))
        self.dirty = False


def _embed_photo(p: Path, embedder: FaceEmbedder, all_faces: bool) -> _Faces:
    empty_b, empty_e = np.zeros((0, 4), np.int64), np.zeros((0, EMBEDDING_DIM), np.float32)
    try:
        rgb = load_image(p)
    except ClustergError as e:
        return _Faces(empty_b, empty_e, str(e))
    try:
        boxes = embedder.detect(rgb)
        use = boxes if all_faces else boxes[:1]
        emb = embedder.embed_faces(rgb, use)
    except (RuntimeError, MemoryError) as e:
        return _Faces(empty_b, empty_e, f"face detection failed: {e}")
    if not use:
        return _Faces(empty_b, empty_e, "no face found")
    return _Faces(np.asarray(use, dtype=np.int64).reshape(-1, 4), emb, "", len(use) == len(boxes))


_CACHE_SAVE_EVERY_S = 60.0


def _save_cache(store: EmbeddingCache) -> None:
    try:
        store.save()
    except (OSError, ClustergError) as e:  # a cache is an optimisation: failing to write it is not fatal
        logger.warning("could not write the embedding cache: %s", e)


# ----------------------------------------------------------------------------- clustering


def _method_params(name: str, n: int, threshold: float | None, seed: int, k: int | None,
                   checkpoint: str | os.PathLike | None = None) -> dict:
    from ..cluster import get_clusterer_class
    cls = get_clusterer_class(name)
    accepted = set(cls._param_names())
    params: dict[str, Any] = {}
    if "seed" in accepted:
        params["seed"] = seed
    if checkpoint is not None:
        if "checkpoint" not in accepted:
            raise ClustergError(f"method {name!r} takes no checkpoint")
        params["checkpoint"] = os.fspath(checkpoint)
    if "k" in accepted:
        default_k = inspect.signature(cls.__init__).parameters["k"].default
        want = k if k is not None else (IMAGE_K if name in AUTO_THRESHOLDS else default_k)
        if isinstance(want, (int, np.integer)) and not isinstance(want, bool):
            params["k"] = max(1, min(int(want), n))  # tiny photo sets: k cannot exceed the number of faces
        # else (k=None: e.g. a checkpoint's own k) the method clamps it itself
    if threshold is not None and "threshold" in accepted:
        params["threshold"] = threshold
    elif name in AUTO_THRESHOLDS and "threshold" in accepted:
        params["threshold"] = default_threshold(n, name)
    return params


def cluster_faces(embeddings, method: str | None = None, threshold: float | None = None, k: int | None = None,
                  seed: int = 0, checkpoint: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """Cluster face embeddings; returns ``(labels int64 (N,), method used)``.

    Args:
        embeddings: float array ``(N, D)`` (dlib: D = 128); N may be 0 or 1.
        method: a name from :data:`clusterg.cluster.CLUSTERERS`. ``None`` tries
            :data:`DEFAULT_METHODS` in order and uses the first that runs (a
            learned method also needs weights for D: packaged or a checkpoint).
        threshold: similarity threshold passed to the method; ``None`` keeps
            the method's own default, except for ``infomap`` and ``knn-cc``
            which use :func:`default_threshold` (N, method).
        k: neighbours per face (self included); default :data:`IMAGE_K` for
            ``infomap`` and ``knn-cc``, the method's default otherwise;
            clamped to N.
        seed: random seed passed to the method.
        checkpoint: trained weights for a learned ``method`` (e.g. from
            ``clusterg train gcn-v``); default: the method's packaged weights.

    Labels are 0..C-1, numbered in order of first appearance.
    """
    from ..cluster import make_clusterer
    from ..linkage import relabel
    x = check_features(embeddings, name="embeddings", min_n=0)
    if threshold is not None:
        threshold = check_threshold(threshold)
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ClustergError(f"k: expected an integer >= 1, got {k!r}")
    n = len(x)
    names = [method] if method is not None else list(DEFAULT_METHODS)
    if n <= 1:  # nothing to link; the named method is still checked
        if method is not None:
            from ..cluster import get_clusterer_class
            get_clusterer_class(method)
        return np.zeros(n, dtype=np.int64), names[0] if method is not None else "none"
    last_error: Exception | None = None
    for name in names:
        try:
            params = _method_params(name, n, threshold, seed, k, checkpoint)
            labels = make_clusterer(name, **params).fit(x).labels_
        except (ClustergError, ImportError, FileNotFoundError, RuntimeError) as e:
            if method is not None:
                raise
            logger.info("method %s not used: %s", name, e)
            last_error = e
            continue
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (n,):
            raise ClustergError(f"method {name} returned {labels.shape} labels for {n} faces")
        logger.info("clustered %d faces with %s (%s)", n, name,
                    ", ".join(f"{key}={val:.4f}" if isinstance(val, float) else f"{key}={val}"
                              for key, val in params.items()))
        return relabel(labels), name
    raise ClustergError(f"no clustering method could run: {last_error}")


# ----------------------------------------------------------------------------- export


def export_cluster_folders(entries: Sequence[dict], base: str | os.PathLike, out_dir: str | os.PathLike,
                           copy: bool = False, contact_sheets: bool = True) -> int:
    """One sub-folder per cluster (``cluster_0000`` ...; ``unclustered`` for -1) holding links
    to (or, with ``copy``, copies of) the photos, for a quick visual review.

    ``entries`` is the output of :func:`cluster_images`; ``base`` the folder
    relative ``img_path`` values start from. ``out_dir`` must be absent or
    empty. With ``faces`` lists a photo appears in the folder of every one of
    its faces. With ``contact_sheets`` (Pillow) every cluster folder also gets
    ``_contact_sheet.png``: thumbnails of its faces (cropped to the face box
    when the entry lists ``faces``), most confident first, least confident
    last (:func:`clusterg.library.sheets.contact_sheet`). Returns the number of
    files made (links or copies, and sheets).
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ClustergError(f"export folder {out} exists and is not empty; choose a new one")
    base = Path(base)
    out.mkdir(parents=True, exist_ok=True)
    made = 0
    used: dict[Path, set[str]] = {}
    sheet_items: dict[Path, list] = {}
    for i, e in enumerate(entries):
        src = _resolve(e.get("img_path"), base)
        if src is None or not src.is_file():
            continue
        ids = sorted({f["cluster_id"] for f in e["faces"]}) if e.get("faces") else [e.get("cluster_id", -1)]
        for cid in ids:
            folder = out / ("unclustered" if cid is None or cid < 0 else f"cluster_{int(cid):04d}")
            folder.mkdir(exist_ok=True)
            names = used.setdefault(folder, set())
            name = src.name if src.name not in names else f"{i:06d}_{src.name}"
            names.add(name)
            dst = folder / name
            if copy:
                shutil.copy2(src, dst)
            else:
                try:
                    os.symlink(src.resolve(), dst)
                except OSError as err:  # file systems without symlinks
                    raise ClustergError(f"cannot make a link in {folder} ({err}); use copies instead") from None
            made += 1
            if contact_sheets and cid is not None and cid >= 0:
                faces = [f for f in e.get("faces") or [] if f.get("cluster_id") == cid]
                sheet_items.setdefault(folder, []).extend(
                    [(src, f.get("box"), f.get("confidence", 1.0)) for f in faces]
                    or [(src, None, e.get("confidence", 1.0))])
    if sheet_items:
        from ..library.sheets import SHEET_NAME, contact_sheet
        for folder, items in sheet_items.items():
            if contact_sheet(items, folder / SHEET_NAME):
                made += 1
    return made


# ----------------------------------------------------------------------------- pipeline


def cluster_images(input_json: str | os.PathLike, output_json: str | os.PathLike, *, method: str | None = None,
                   threshold: float | None = None, k: int | None = None, all_faces: bool = False,
                   export_folders: str | os.PathLike | None = None, copy: bool = False,
                   cache: bool | str | os.PathLike = True,
                   embedder: FaceEmbedder | None = None, seed: int = 0,
                   checkpoint: str | os.PathLike | None = None, quiet: bool | None = None,
                   state: str | os.PathLike | None = None, same_photo: bool = True,
                   keep_ids: bool | None = None) -> list[dict[str, Any]]:
    """Cluster the faces of the photos listed in ``input_json``; write ``output_json``.

    Args:
        input_json: JSON list of objects with ``img_path`` (relative to the
            JSON file's folder, or absolute).
        output_json: where the result goes (written atomically; never the input).
        method, threshold, k, seed, checkpoint: see :func:`cluster_faces`.
        all_faces: cluster every detected face, not only the largest per photo;
            each entry then lists ``faces`` with ``box`` and ``cluster_id``.
        export_folders: also make one folder per cluster with links to the photos.
        copy: copy the photos into ``export_folders`` instead of linking.
        cache: ``True`` keeps embeddings in ``INPUT.json.embeddings.npz`` in
            the output's folder and reuses them; a path names another cache
            file; ``False`` neither reads nor writes one.
        embedder: face detector/embedder settings (default :class:`FaceEmbedder`).
        quiet: hide progress bars (None: follow :func:`clusterg.set_quiet`).
        state: a clustering state folder (:class:`clusterg.library.ClusterState`):
            made by the first run, then read and updated by later ones, which
            embed and assign only photos it does not hold yet (cluster ids stay;
            see :doc:`/library`). A state of another model is refused.
        same_photo: with ``all_faces``, keep two faces of one photo in different
            clusters (unless a user merge joined them). Default True.
        keep_ids: with ``state``, a large batch of new photos (``REBUILD_FROM``) never
            moves an earlier face to another id (only reported merges); ``None``
            (default) keeps the state's setting, False for a new state.

    Returns:
        The output entries: every input key kept in order, plus ``cluster_id``
        (int, -1 when the photo has no usable face) and ``reason`` for those;
        ``confidence`` (in [0, 1]) and ``cluster_quality`` of the (largest)
        face; ``person_name`` when the cluster was named, ``merged_from`` (ids this
        run merged into it), ``corrections`` (user corrections naming the face) and
        ``moved_from`` (its earlier id, when a large batch re-clustered the library and
        this face changed cluster; see ``docs/library.rst``).

    Raises:
        ClustergError: malformed input JSON, output equal to the input, the
            ``faces`` extra not installed, or an unknown method.
    """
    t0 = time.perf_counter()
    inp, out = Path(input_json), Path(output_json)
    refuse_same_file(out, inp)
    if out.resolve() == inp.resolve():
        raise ClustergError(f"output {out} is the input file; refusing to overwrite it")
    if out.exists() and out.is_dir():
        raise ClustergError(f"output path is a folder: {out}")
    if not out.resolve().parent.is_dir():
        raise ClustergError(f"output folder does not exist: {out.parent}")
    entries = read_photo_list(inp)
    if method is not None:
        from ..cluster import get_clusterer_class
        get_clusterer_class(method)  # an unknown method fails before any photo is read
    if threshold is not None:
        threshold = check_threshold(threshold)
    embedder = embedder if embedder is not None else FaceEmbedder()
    if not isinstance(embedder, FaceEmbedder):
        raise ClustergError(f"embedder: expected a FaceEmbedder, got {type(embedder).__name__}")
    if export_folders is not None:  # fail before the slow part, not after it
        ex = Path(export_folders)
        if ex.exists() and (not ex.is_dir() or any(ex.iterdir())):
            raise ClustergError(f"export folder {ex} exists and is not empty; choose a new one")
    base = inp.resolve().parent
    paths = [_resolve(e.get("img_path"), base) for e in entries]
    if out.exists():  # the output must not replace one of the photos either
        refuse_same_file(out, *[p for p in paths if p is not None])
    if paths:
        embedder.check_installed()  # a missing faces extra fails once, before the loop
    if cache is True:
        cache_path: Path | None = out.resolve().parent / f"{inp.name}.embeddings.npz"
    elif cache is False or cache is None:
        cache_path = None
    else:
        cache_path = Path(cache)
        refuse_same_file(cache_path, inp, out)
    store = EmbeddingCache.load(cache_path, embedder.settings())
    from ..library.images import cluster_photo_faces, load_photo_state, output_extras, state_faces
    lib = load_photo_state(state, embedder.settings(), all_faces, same_photo, keep_ids)

    results: list[_Faces | None] = []
    seen: dict[Path, _Faces] = {}
    hits = 0
    disable = None if quiet is None else bool(quiet)
    last_save = time.monotonic()
    try:
        for p in progress(paths, total=len(paths), desc="embedding faces", disable=disable):
            if p is None:
                results.append(None)
                continue
            if p in seen:
                results.append(seen[p])
                continue
            got = state_faces(lib, p)
            got = got if got is not None else store.get(p, all_faces) if p.exists() else None
            if got is None:
                got = _embed_photo(p, embedder, all_faces)
                if p.exists():
                    store.put(p, got)
            else:
                hits += 1
            seen[p] = got
            results.append(got)
            if cache_path is not None and store.dirty and time.monotonic() - last_save > _CACHE_SAVE_EVERY_S:
                _save_cache(store)  # a long run that is interrupted keeps most of its work
                last_save = time.monotonic()
    finally:
        if cache_path is not None:
            _save_cache(store)

    # one row per clustered face, in entry order (largest face of a photo first)
    owner: list[tuple[int, int]] = []
    vecs: list[np.ndarray] = []
    for i, r in enumerate(results):
        if r is not None and not r.reason:
            for j in range(len(r.boxes)):
                owner.append((i, j))
                vecs.append(r.embeddings[j])
    x = np.stack(vecs) if vecs else np.zeros((0, EMBEDDING_DIM), np.float32)
    run = cluster_photo_faces(x, owner, results, paths, st=lib, state_dir=state, model=embedder.settings(),
                              all_faces=all_faces, same_photo=same_photo, method=method, threshold=threshold, k=k,
                              seed=seed, checkpoint=checkpoint, keep_ids=keep_ids)
    labels, used = run.labels, run.method

    face_ids: dict[tuple[int, int], int] = {key: int(c) for key, c in zip(owner, labels)}
    face_rows: dict[tuple[int, int], int] = {key: r for r, key in enumerate(owner)}
    output: list[dict[str, Any]] = []
    for i, (e, r) in enumerate(zip(entries, results)):
        o = {key: val for key, val in e.items() if key not in _STALE_KEYS}
        if r is None:
            o["cluster_id"] = -1
            o["reason"] = "entry has no img_path string"
        elif r.reason:
            o["cluster_id"] = -1
            o["reason"] = r.reason
        else:
            o["cluster_id"] = face_ids[(i, 0)]
            o.update(output_extras(run, face_rows[(i, 0)]))
            if all_faces:
                o["faces"] = [{"box": [int(v) for v in r.boxes[j]], "cluster_id": face_ids[(i, j)],
                               **output_extras(run, face_rows[(i, j)])} for j in range(len(r.boxes))]
        output.append(o)

    with atomic_open(out, "w", encoding="utf-8") as f:
        json.dump(output, f, indent=2, ensure_ascii=False)
        f.write("\n")
    n_fail = sum(1 for o in output if o["cluster_id"] < 0)
    n_clusters = len({c for c in labels.tolist()})
    logger.info("%d photos, %d faces -> %d clusters with %s; %d photos without a usable face; "
                "%d embeddings from the cache or state; %.1f s -> %s", len(entries), len(x), n_clusters, used,
                n_fail, hits, time.perf_counter() - t0, out)
    if state is not None:
        logger.info("state %s: %d new faces assigned%s", state, run.new_faces,
                    "".join(f"; merged {m['ids']} into {m['into']}" for m in run.merged))
    if export_folders is not None:
        made = export_cluster_folders(output, base, export_folders, copy=copy)
        logger.info("exported %d %s to %s", made, "copies" if copy else "links", export_folders)
    return output
