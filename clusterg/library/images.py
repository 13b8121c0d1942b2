"""The photo side of a :class:`~clusterg.library.ClusterState`: which photos it holds, and clustering
the faces of one ``clusterg images`` run through it (batch the first time, incremental afterwards)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._validate import ClustergError
from .state import ClusterState

__all__: list[str] = []  # plumbing of clusterg.images.cluster_images(state=...); the API is ClusterState

logger = logging.getLogger("clusterg.library")


@dataclass
class PhotoRun:
    """Result of :func:`cluster_photo_faces`: per clustered face row, its id and confidence."""

    labels: np.ndarray
    confidence: np.ndarray
    quality: dict[int, float]
    names: dict[int, str]
    method: str
    merged: list[dict] = field(default_factory=list)
    new_faces: int = 0
    face_notes: dict[int, list[str]] = field(default_factory=dict)  # row -> corrections that name the face
    state: ClusterState | None = None
    moved_from: dict[int, int] = field(default_factory=dict)  # row -> its id before a re-run changed it


def _photos(st: ClusterState) -> dict[str, dict]:
    return st.extra.setdefault("photos", {})


def state_faces(st: ClusterState | None, path: Path):
    """The faces the state already holds for photo ``path`` (a pipeline ``_Faces``), or None when it has none."""
    if st is None:
        return None
    from ..images.pipeline import _Faces
    rec = _photos(st).get(str(Path(path).resolve()))
    if rec is None:
        return None
    idx = np.asarray(rec.get("faces", []), dtype=np.int64)
    boxes = np.asarray(rec.get("boxes", []), dtype=np.int64).reshape(-1, 4)
    return _Faces(boxes, st.embeddings[idx].astype(np.float32).reshape(-1, st.dim), rec.get("reason", ""),
                  bool(rec.get("complete", True)))


def load_photo_state(state_dir, model: str, all_faces: bool, same_photo: bool,
                     keep_ids: bool | None = None) -> ClusterState | None:
    """The state in ``state_dir`` (None when absent), refused when made by another model or face mode."""
    if state_dir is None or not ClusterState.exists(state_dir):
        if state_dir is not None and Path(state_dir).exists() and not Path(state_dir).is_dir():
            raise ClustergError(f"--state {state_dir} is a file, not a folder")
        return None
    st = ClusterState.load(state_dir, model=model)
    if st.extra.get("all_faces", False) != bool(all_faces):
        raise ClustergError(f"state {state_dir} was made {'with' if st.extra.get('all_faces') else 'without'} "
                            f"all_faces (--all-faces); run with the same setting or use a new state folder")
    st.same_photo = bool(same_photo)
    if keep_ids is not None:  # given on this run: kept in the state for later ones
        st.keep_ids = bool(keep_ids)
    return st


def cluster_photo_faces(x: np.ndarray, owner: Sequence[tuple[int, int]], results: Sequence, paths: Sequence,
                        *, st: ClusterState | None, state_dir, model: str, all_faces: bool, same_photo: bool,
                        method: str | None, threshold: float | None, k: int | None, seed: int,
                        checkpoint, keep_ids: bool | None = None) -> PhotoRun:
    """Cluster the face rows ``x`` of one run (``owner[r] = (entry, face)``) with or through a state.

    Without a state (``state_dir`` None) the rows are clustered in one batch,
    faces of one photo kept apart (``same_photo``). With ``state_dir`` and no
    state there yet, the batch result becomes the state; with a state, rows of
    photos it holds keep their ids and only the other rows are assigned
    incrementally. The state is saved (atomically) when ``state_dir`` is set.
    """
    photo_of = {i: str(Path(paths[i]).resolve()) for i, _ in owner}
    keys = [f"{photo_of[i]}#{j}" for i, j in owner]
    first: dict[str, int] = {}
    for r, key in enumerate(keys):  # a photo listed twice (e.g. by two paths) is one photo
        first.setdefault(key, r)
    uniq = np.asarray(sorted(first.values()), dtype=np.int64)
    merged: list[dict] = []
    moved_old: dict[int, int] = {}  # state face -> id before a re-run moved it
    if st is None:
        group_ids: dict[str, int] = {}
        groups = np.asarray([group_ids.setdefault(photo_of[owner[r][0]], len(group_ids)) for r in uniq], np.int64)
        st = ClusterState.build(x[uniq], method=method, threshold=threshold, k=k, seed=seed, checkpoint=checkpoint,
                                groups=groups if all_faces else None, keys=[keys[r] for r in uniq], model=model,
                                same_photo=same_photo, keep_ids=bool(keep_ids))
        st.extra["all_faces"] = bool(all_faces)
        rows = np.asarray([st.face(key) for key in keys], dtype=np.int64)
        new = len(uniq)
        photos = _photos(st)
        for p, g in group_ids.items():
            photos[p] = {"group": g, "faces": [], "boxes": []}
    else:
        photos = _photos(st)
        next_group = 1 + max((int(r.get("group", -1)) for r in photos.values()), default=-1)
        rows = np.full(len(x), -1, dtype=np.int64)
        add_rows = [int(r) for r in uniq if not st.has_key(keys[r])]
        new = len(add_rows)
        if add_rows:
            groups = []
            for r in add_rows:
                p = photo_of[owner[r][0]]
                rec = photos.setdefault(p, {"faces": [], "boxes": []})
                if "group" not in rec:
                    rec["group"] = next_group
                    next_group += 1
                groups.append(rec["group"] if all_faces else -1)
            res = st.add(x[add_rows], keys=[keys[r] for r in add_rows], groups=np.asarray(groups, np.int64))
            merged = res.merged
            moved_old = dict(zip(res.moved.tolist(), res.moved_from.tolist()))
            if res.rebuilt:
                logger.warning(
                    "%d new faces for %d in the state: every face was re-clustered (rebuild_from=%s); "
                    "%d earlier faces changed cluster id", len(add_rows), st.n - len(add_rows), st.rebuild_from,
                    len(res.moved))
        rows = np.asarray([st.face(key) for key in keys], dtype=np.int64)
    # the photo table: faces and boxes of every photo seen, and the reason of those without a face
    for r, (i, j) in enumerate(owner):
        rec = photos.setdefault(photo_of[i], {"faces": [], "boxes": []})
        if int(rows[r]) not in rec["faces"]:
            rec["faces"].append(int(rows[r]))
            rec["boxes"].append([int(v) for v in results[i].boxes[j]])
        rec["complete"] = bool(results[i].complete)
    for i, res in enumerate(results):
        if res is not None and res.reason and paths[i] is not None and Path(paths[i]).is_file():
            photos.setdefault(str(Path(paths[i]).resolve()), {"faces": [], "boxes": [], "reason": res.reason})
    notes: dict[int, list[str]] = {}
    key_row = {key: r for r, key in enumerate(keys)}
    for c in st.corrections:
        touched = c.get("faces") if c["op"] == "split" else [c.get("face")] if c["op"] == "not-this-person" else []
        for key in touched or []:
            if key in key_row:
                notes.setdefault(key_row[key], []).append(
                    f"split to {c['to']}" if c["op"] == "split" else f"not cluster {c['cluster']}")
    if state_dir is not None:
        st.save(state_dir)
    labels = st.labels
    return PhotoRun(labels=labels[rows] if len(rows) else np.zeros(0, np.int64),
                    confidence=st.confidence[rows] if len(rows) else np.zeros(0, np.float32),
                    quality=st.quality(), names=dict(st.names), method=st.method, merged=merged, new_faces=new,
                    face_notes=notes, state=st,
                    moved_from={r: moved_old[int(f)] for r, f in enumerate(rows) if int(f) in moved_old})


def output_extras(run: PhotoRun, row: int) -> dict[str, Any]:
    """Keys a face (or a photo, for its largest face) gets in the output JSON."""
    c = int(run.labels[row])
    out: dict[str, Any] = {"confidence": round(float(run.confidence[row]), 4),
                           "cluster_quality": round(float(run.quality.get(c, 0.0)), 4)}
    if c in run.names:
        out["person_name"] = run.names[c]
    gone = sorted({b for m in run.merged if m["into"] == c for b in m["ids"] if b != c})
    if gone:
        out["merged_from"] = gone
    if row in run.face_notes:
        out["corrections"] = run.face_notes[row]
    if row in run.moved_from:  # a large batch re-clustered every face and this one changed id
        out["moved_from"] = run.moved_from[row]
    return out

