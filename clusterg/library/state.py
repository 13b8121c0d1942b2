"""A clustering that lives on: new faces join it without re-clustering, corrections stick.

:class:`ClusterState` holds the (L2-normalised) embeddings, a faiss index over
them, stable cluster ids, per-face confidence, the user's corrections and the
settings and model that made it. It is saved to a folder (format below) and
loaded again by later runs.

Incremental assignment (:meth:`ClusterState.add`): each new face queries the
index for its ``k`` nearest faces; the state's batch method (its threshold and
``k``) clusters the new faces jointly with those neighbours (at most
``M (k + 1)`` faces; skipped above :data:`JOINT_MAX` or without a method).
Edges above the state's ``threshold`` (the edge threshold of the batch run; for
a method without one, the cut that best separates the batch clusters' kNN
edges) to neighbours in the new face's cluster of that joint run vote for
clusters with their similarity; a new face joins the cluster with the largest
vote that no cannot-link forbids (same photo, not-this-person). Votes spread
through new faces in rounds, so a new face linked only to other new faces joins
where they went. New faces linked to no cluster get new ids, one per cluster of
the joint run. Two clusters merge only
when at least ``merge_support`` (4) new faces each link both strongly (at
least ``merge_links`` (3) edges into each, the weaker vote at least
``merge_ratio`` (0.8) of the stronger) and nothing forbids it (a cannot-link,
a same-photo pair, a not-this-person); the result lists the merged ids.
Existing ids never change otherwise, except when one call adds at least
``rebuild_from`` (:data:`REBUILD_FROM`, 0.2) new faces per library face: then
every face is re-clustered (:meth:`ClusterState.rebuild`) and the result says
so (``rebuilt``, ``moved``). With ``keep_ids=True`` such a batch is placed by
one batch run over every face instead, and existing ids still change only
through reported merges: each new face joins the old cluster its batch cluster
holds most of (where most of that old cluster went too), old clusters the batch
run puts together merge, and an old cluster it splits stays whole (at a cost in
quality measured in
``docs/library.rst``). The work per added face below that ratio is one
index query (and insertion), the joint run on ``M (k + 1)`` faces and ``O(k)``
local steps, about independent of the library size with an HNSW index, which
``index="auto"`` picks from 200,000 faces on (an exact index costs ``O(N)`` a
query).

On-disk format, version 1 (folder ``DIR``)::

    DIR/state.json          written last, atomically: names the current data folder
    DIR/data-NNNNNN/        one generation of arrays (numpy .npy, no pickles)
        embeddings.npy      float32 (N, D), L2-normalised rows
        labels.npy          int64 (N,), cluster id of each face (>= 0)
        groups.npy          int64 (N,), photo of each face (-1: none); same-photo cannot-link
        confidence.npy      float32 (N,), see :func:`~clusterg.library.face_confidence`
        keys.npy            unicode (N,), face keys (absent: the keys are "0".."N-1")
        index.faiss         the faiss index (HNSW only; an exact index is rebuilt on load)

``state.json`` holds ``format`` ("clusterg-state"), ``version`` (1), ``model``
(the embedder's settings string), ``dim``, ``method`` and ``params`` of the
batch run, ``threshold``, ``k``, ``same_photo``, ``index``, ``next_id``,
``names`` ({id: name}), ``cannot_link`` (pairs of cluster ids that may not
merge), ``not_this_person`` ([face key, cluster id] pairs), ``corrections``
(the user's corrections in order, each naming faces by key so a full re-run
can replay them), ``merges`` (every merge, automatic or asked for), ``extra``
(free JSON for callers, e.g. the photo table of ``clusterg images``) and
``files`` (byte size of every array file, checked on load). A save writes a new
data folder, then replaces ``state.json``; a run killed at any point leaves the
previous state readable and unchanged. A state whose model or dimension
differs from the caller's is refused.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._atomic import atomic_open
from .._validate import ClustergError, check_features, check_int, check_threshold
from .confidence import DEFAULT_TAU, _edge_weight, face_confidence

__all__ = ["ClusterState", "AddResult", "STATE_FORMAT", "STATE_VERSION", "HNSW_FROM", "REBUILD_FROM", "JOINT_MAX"]

logger = logging.getLogger("clusterg.library")

STATE_FORMAT = "clusterg-state"
STATE_VERSION = 1
#: ``index="auto"`` uses an exact index below this many faces and HNSW from here on.
HNSW_FROM = 200_000
#: :meth:`ClusterState.add` re-clusters every face when one call adds at least this many faces per
#: library face (chosen on the CelebA ``train`` split; see docs/library.rst).
REBUILD_FROM = 0.2
#: the joint run of :meth:`ClusterState.add` is skipped (votes only) when the new faces and their
#: kNN exceed this many faces (its own kNN is exact: quadratic in that number).
JOINT_MAX = 50_000
_SAMPLE = 50  # member faces recorded with a correction to find its cluster again after a full re-run


@dataclass
class AddResult:
    """What :meth:`ClusterState.add` did.

    Attributes:
        faces: int64 ``(M,)`` indices the new faces got in the state.
        labels: int64 ``(M,)`` cluster id of each new face (after merges).
        confidence: float32 ``(M,)``.
        new_clusters: ids made for new faces that joined no existing cluster.
        merged: one ``{"into": a, "ids": [a, b, ...]}`` per merge this call made.
        rebuilt: True when the batch was large enough (``rebuild_from``) to re-cluster every
            face instead (:meth:`ClusterState.rebuild`: ids kept where clusters persist), or, with
            ``keep_ids``, to be placed by one batch run over every face (ids change only through
            ``merged``).
        moved: int64 indices of existing faces whose cluster id changed in that re-run
            (empty otherwise: without a re-run, or with ``keep_ids``, existing faces change id
            only through ``merged``).
        moved_from: int64 ids those faces had before the re-run, aligned with ``moved``.
    """

    faces: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    new_clusters: list[int] = field(default_factory=list)
    merged: list[dict] = field(default_factory=list)
    rebuilt: bool = False
    moved: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    moved_from: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _write_array(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fit_edge_threshold(nbrs: np.ndarray, sims: np.ndarray, labels: np.ndarray) -> float:
    """The similarity that best separates kNN edges inside clusters from edges between them.

    For a method without an edge threshold of its own: the cut ``t`` minimising
    (same-cluster edges at or below ``t``) + (cross-cluster edges above ``t``).
    """
    rows = np.repeat(np.arange(len(nbrs)), nbrs.shape[1])
    cols, s = nbrs.ravel(), sims.ravel().astype(np.float64)
    keep = (cols >= 0) & (cols != rows)
    same = labels[rows[keep]] == labels[cols[keep]]
    s = s[keep]
    if len(s) == 0 or same.all() or not same.any():
        return float(np.clip(np.median(s) if len(s) else 0.9, -1.0, 1.0))
    order = np.argsort(-s, kind="stable")
    s, same = s[order], same[order]
    # cutting after position i: edges 0..i are "above"; cost = cross above + same below
    cross_above = np.cumsum(~same)
    same_below = same.sum() - np.cumsum(same)
    i = int(np.argmin(cross_above + same_below))
    nxt = s[i + 1] if i + 1 < len(s) else s[i] - 1e-3
    return float(np.clip((s[i] + nxt) / 2, -1.0, 1.0))


class ClusterState:
    """Embeddings, index, stable cluster ids, confidence and corrections of one face library.

    Make one with :meth:`build` (cluster faces in one batch), :meth:`from_labels`
    (adopt an existing clustering) or :meth:`load`; grow it with :meth:`add`;
    correct it with :meth:`merge`, :meth:`split`, :meth:`not_this_person` and
    :meth:`name`; write it with :meth:`save`. See the module docstring for the
    assignment rule and the file format.

    Attributes:
        dim: feature dimension D.
        model: settings string of the embedding model (a state of another model is refused).
        method, params: the batch method and its parameters.
        threshold: edge threshold used for assignment (that of the batch run).
        k: neighbours queried per new face (self excluded).
        same_photo: keep faces of one photo in different clusters (unless the user merges them).
        names: ``{cluster id: name}``.
        corrections: the user's corrections, in order.
        merges: every merge so far (``{"into", "ids", "by"}``; ``by`` is "user" or "auto").
        extra: free JSON data kept with the state.
        joint: cluster new faces jointly with their kNN by the batch method (default True).
        rebuild_from: re-cluster every face when one :meth:`add` brings at least this many new
            faces per library face (default :data:`REBUILD_FROM`; ``None``: never).
        keep_ids: for such a batch, never move an existing face: one batch run over every face
            places the new faces and merges the old clusters it joins (default False).
    """

    def __init__(self, dim: int, *, model: str = "", method: str = "", params: dict | None = None,
                 threshold: float = 0.95, k: int = 20, same_photo: bool = True, index: str = "auto",
                 merge_links: int = 3, merge_ratio: float = 0.8, merge_support: int = 4,
                 tau: float = DEFAULT_TAU, joint: bool = True, rebuild_from: float | None = REBUILD_FROM,
                 keep_ids: bool = False) -> None:
        self.dim = check_int(dim, "dim", 1)
        if not isinstance(model, str):
            raise ClustergError(f"model: expected a string, got {type(model).__name__}")
        self.model = model
        self.method = str(method)
        self.params = dict(params or {})
        self.threshold = check_threshold(threshold)
        self.k = check_int(k, "k", 1)
        self.same_photo = bool(same_photo)
        if index not in ("auto", "flat", "hnsw"):
            raise ClustergError(f"index: expected 'auto', 'flat' or 'hnsw', got {index!r}")
        self.index_kind = index
        self.merge_links = check_int(merge_links, "merge_links", 1)
        self.merge_ratio = check_threshold(merge_ratio, "merge_ratio", 0.0, 1.0)
        self.merge_support = check_int(merge_support, "merge_support", 1)
        self.tau = float(tau)
        self.joint = bool(joint)
        if rebuild_from is not None:
            if isinstance(rebuild_from, bool) or not isinstance(rebuild_from, (int, float, np.floating)) \
                    or not np.isfinite(rebuild_from) or rebuild_from <= 0:
                raise ClustergError(f"rebuild_from: expected a number > 0 or None, got {rebuild_from!r}")
            rebuild_from = float(rebuild_from)
        self.rebuild_from = rebuild_from
        if not isinstance(keep_ids, (bool, np.bool_)):
            raise ClustergError(f"keep_ids: expected True or False, got {keep_ids!r}")
        self.keep_ids = bool(keep_ids)
        self.names: dict[int, str] = {}
        self.corrections: list[dict] = []
        self.merges: list[dict] = []
        self.extra: dict[str, Any] = {}
        self.n = 0
        self._x = np.zeros((0, self.dim), np.float32)
        self._raw = np.zeros(0, np.int64)
        self._group = np.zeros(0, np.int64)
        self._conf = np.zeros(0, np.float32)
        self._keys: list[str] | None = None
        self._key_index: dict[str, int] | None = None
        self._alias: dict[int, int] = {}
        self._csize = np.zeros(0, np.int64)
        self._cconf = np.zeros(0, np.float64)
        self.next_id = 0
        self._cgroups: dict[int, dict[int, int]] = {}  # cluster -> {photo group: faces of it inside}
        self._group_faces: dict[int, list[int]] = {}
        self._cl_pairs: set[tuple[int, int]] = set()
        self._ntp: dict[int, set[int]] = {}  # face -> clusters it may not join
        self._index = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(cls, x, *, method: str | None = None, threshold: float | None = None, k: int | None = None,
              seed: int = 0, checkpoint: str | os.PathLike | None = None, groups=None,
              keys: Sequence[str] | None = None, model: str = "", same_photo: bool = True,
              index: str = "auto", **kw) -> "ClusterState":
        """Cluster ``x`` (float ``(N, D)``) in one batch and keep the result as a state.

        ``method``, ``threshold``, ``k``, ``seed`` and ``checkpoint`` are those of
        :func:`clusterg.images.cluster_faces` (``None``: its defaults). The
        state's edge threshold is ``threshold``, else the method's own, else
        one fitted to the batch labels (:func:`fit_edge_threshold`). ``groups``
        (int ``(N,)``, -1 = none) names each face's photo: with ``same_photo``
        faces of one photo end in different clusters. ``keys`` are unique face
        names (default "0".."N-1"). ``kw`` go to :class:`ClusterState`.
        """
        from ..images.pipeline import IMAGE_K, _method_params, cluster_faces
        xs = check_features(x, name="embeddings", min_n=0, normalize=True)
        n = len(xs)
        labels, used = cluster_faces(xs, method=method, threshold=threshold, k=k, seed=seed, checkpoint=checkpoint)
        params: dict[str, Any] = {}
        try:
            params = _method_params(used, max(n, 2), threshold, seed, k, checkpoint) if used != "none" else {}
        except (ClustergError, ImportError, TypeError):  # a method without these parameters
            params = {}
        kk = k if k is not None else IMAGE_K
        t = threshold if threshold is not None else params.get("threshold")
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)):
            t = None  # e.g. a method that picks its threshold itself: fitted to its labels below
        return cls.from_labels(xs, labels, threshold=t, k=kk, groups=groups, keys=keys, model=model,
                               method=used, params={p: v for p, v in params.items() if _jsonable(v)},
                               same_photo=same_photo, index=index, seed=seed, checkpoint=checkpoint, **kw)

    @classmethod
    def from_labels(cls, x, labels, *, threshold: float | None = None, k: int = 20, groups=None,
                    keys: Sequence[str] | None = None, model: str = "", method: str = "", params: dict | None = None,
                    same_photo: bool = True, index: str = "auto", seed: int = 0,
                    checkpoint: str | os.PathLike | None = None, score: bool = True, **kw) -> "ClusterState":
        """A state from an existing clustering: ``x`` float ``(N, D)``, ``labels`` int ``(N,)``.

        Cluster ids become 0..C-1 in order of first appearance. ``threshold``
        ``None`` fits one to the labels. ``score=False`` skips the kNN of all
        faces (no confidence: every face gets 1; needs a ``threshold``; the
        same-photo step still runs when ``groups`` pair faces). Other
        arguments as in :meth:`build`.
        """
        from ..knn import knn_search
        from ..linkage import relabel
        from .._validate import check_labels
        xs = check_features(x, name="embeddings", min_n=0, normalize=True)
        n, d = xs.shape
        lab = relabel(check_labels(labels, n=n)) if n else np.zeros(0, np.int64)
        k = check_int(k, "k", 1)
        nbrs = sims = None
        g0 = None if groups is None else np.asarray(groups)
        need = score or threshold is None or (same_photo and g0 is not None and len(g0) and
                                              len(np.unique(g0[g0 >= 0])) < int((g0 >= 0).sum()))
        if n > 1 and need:
            nbrs, sims = knn_search(xs, min(k + 1, n), normalize=False, seed=seed,
                                    method="hnsw" if (index == "hnsw" or (index == "auto" and n >= HNSW_FROM))
                                    else "flat")
        if threshold is None:
            threshold = fit_edge_threshold(nbrs, sims, lab) if nbrs is not None else 0.95
        st = cls(d, model=model, method=method, params=params, threshold=threshold, k=k, same_photo=same_photo,
                 index=index, **kw)
        st._checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        st._seed = int(seed)
        g = st._check_groups(groups, n)
        st._keys = st._check_new_keys(keys, n, existing=None)
        if st._keys is not None:
            st._key_index = {key: i for i, key in enumerate(st._keys)}
        st._append(xs, g, lab)
        st.next_id = int(lab.max()) + 1 if n else 0
        st._grow_clusters(st.next_id)
        np.add.at(st._csize, lab, 1)
        st._rebuild_groups()
        if nbrs is not None and st.same_photo and (g >= 0).any():
            st._separate_same_photo(nbrs, sims)
        if nbrs is not None and score:
            st._conf[:n] = face_confidence(nbrs, sims, st._raw[:n], st.threshold, tau=st.tau)
        else:
            st._conf[:n] = 1.0
        np.add.at(st._cconf, st._raw[:n], st._conf[:n].astype(np.float64))
        st._make_index()
        return st

    # ------------------------------------------------------------------ small helpers

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (f"ClusterState(n={self.n}, clusters={self.n_clusters}, dim={self.dim}, method={self.method!r}, "
                f"threshold={self.threshold:.4f}, k={self.k})")

    @property
    def n_clusters(self) -> int:
        """Number of live clusters."""
        return int((self._csize > 0).sum())

    @property
    def embeddings(self) -> np.ndarray:
        """float32 ``(N, D)`` L2-normalised rows (a view)."""
        return self._x[:self.n]

    @property
    def labels(self) -> np.ndarray:
        """int64 ``(N,)`` stable cluster id of every face."""
        return self._resolve_array(self._raw[:self.n])

    @property
    def confidence(self) -> np.ndarray:
        """float32 ``(N,)`` in [0, 1]: share of each face's soft kNN edge mass inside its cluster.

        Computed when a face is placed (build, add, correction); a face's
        value is not revised when later faces arrive (:meth:`refresh_confidence` does that).
        """
        return self._conf[:self.n].copy()

    @property
    def groups(self) -> np.ndarray:
        """int64 ``(N,)`` photo of each face (-1: none)."""
        return self._group[:self.n].copy()

    def quality(self) -> dict[int, float]:
        """``{cluster id: mean confidence of its faces}``."""
        ids = np.flatnonzero(self._csize > 0)
        return {int(c): float(self._cconf[c] / self._csize[c]) for c in ids}

    def sizes(self) -> dict[int, int]:
        """``{cluster id: number of faces}``."""
        ids = np.flatnonzero(self._csize > 0)
        return {int(c): int(self._csize[c]) for c in ids}

    def key(self, i: int) -> str:
        """The key of face ``i``."""
        return self._keys[i] if self._keys is not None else str(i)

    def keys(self) -> list[str]:
        """Every face's key, in face order."""
        return list(self._keys) if self._keys is not None else [str(i) for i in range(self.n)]

    def has_key(self, key: str) -> bool:
        """True when a face with this key is in the state."""
        if self._key_index is not None:
            return key in self._key_index
        return key.isdigit() and int(key) < self.n

    def face(self, ref: int | str) -> int:
        """Index of a face given by index or key."""
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            if not 0 <= int(ref) < self.n:
                raise ClustergError(f"face {ref} does not exist (the state has {self.n} faces)")
            return int(ref)
        if isinstance(ref, str):
            if self._key_index is not None:
                if ref in self._key_index:
                    return self._key_index[ref]
            elif ref.isdigit() and int(ref) < self.n:
                return int(ref)
            raise ClustergError(f"no face with key {ref!r} in the state")
        raise ClustergError(f"face: expected an index or a key, got {ref!r}")

    def cluster(self, ref: int | str) -> int:
        """A live cluster id given by id or by name."""
        if isinstance(ref, str) and not ref.lstrip("-").isdigit():
            hits = [c for c, nm in self.names.items() if nm == ref and self._alive(c)]
            if not hits:
                raise ClustergError(f"no person named {ref!r}")
            return min(hits)
        try:
            c = int(ref)
        except (TypeError, ValueError):
            raise ClustergError(f"cluster: expected an id or a name, got {ref!r}") from None
        if not self._alive(c):
            raise ClustergError(f"cluster {c} does not exist" + (f" (merged into {self._resolve(c)})"
                                                                 if c in self._alias else ""))
        return c

    def members(self, cluster: int | str) -> np.ndarray:
        """Face indices of a cluster (O(N))."""
        c = self.cluster(cluster)
        return np.flatnonzero(self.labels == c)

    def _alive(self, c: int) -> bool:
        return 0 <= c < len(self._csize) and self._csize[c] > 0 and c not in self._alias

    def _resolve(self, c: int) -> int:
        root = c
        while root in self._alias:
            root = self._alias[root]
        while c in self._alias and self._alias[c] != root:
            self._alias[c], c = root, self._alias[c]
        return root

    def _resolve_array(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.int64)
        if not self._alias or raw.size == 0:
            return raw.copy()
        if raw.size * 8 < self.next_id:  # a few faces (an add): resolve their distinct ids only
            u, inv = np.unique(raw, return_inverse=True)
            return np.asarray([self._resolve(int(c)) if c >= 0 else int(c) for c in u], np.int64)[inv.ravel()]
        mapping = np.arange(max(self.next_id, int(raw.max()) + 1), dtype=np.int64)
        for a in list(self._alias):
            mapping[a] = self._resolve(a)
        out = raw.copy()
        ok = raw >= 0
        out[ok] = mapping[raw[ok]]
        return out

    def _label(self, i: int) -> int:
        r = int(self._raw[i])
        return self._resolve(r) if r >= 0 and self._alias else r

    def _check_groups(self, groups, m: int) -> np.ndarray:
        if groups is None:
            return np.full(m, -1, dtype=np.int64)
        from .._validate import check_labels
        return check_labels(groups, name="groups", n=m)

    def _check_new_keys(self, keys, m: int, existing) -> list[str] | None:
        if keys is None:
            return None
        keys = list(keys)
        if len(keys) != m or not all(isinstance(s, str) and s for s in keys):
            raise ClustergError(f"keys: expected {m} non-empty strings")
        if len(set(keys)) != m:
            raise ClustergError("keys: every face needs its own key; found duplicates")
        if existing is not None:
            dup = [s for s in keys if s in existing]
            if dup:
                raise ClustergError(f"keys: {len(dup)} faces are already in the state (first {dup[0]!r})")
        return keys

    def _grow(self, need: int) -> None:
        cap = len(self._raw)
        if need <= cap:
            return
        new = max(need, 2 * cap, 16)
        x = np.zeros((new, self.dim), np.float32)
        x[:self.n] = self._x[:self.n]
        self._x = x
        for name, fill, dt in (("_raw", -1, np.int64), ("_group", -1, np.int64), ("_conf", 0, np.float32)):
            a = np.full(new, fill, dtype=dt)
            a[:self.n] = getattr(self, name)[:self.n]
            setattr(self, name, a)

    def _grow_clusters(self, need: int) -> None:
        cap = len(self._csize)
        if need <= cap:
            return
        new = max(need, 2 * cap, 16)
        self._csize = np.concatenate([self._csize, np.zeros(new - cap, np.int64)])
        self._cconf = np.concatenate([self._cconf, np.zeros(new - cap, np.float64)])

    def _append(self, xs: np.ndarray, groups: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
        m = len(xs)
        self._grow(self.n + m)
        ids = np.arange(self.n, self.n + m)
        self._x[ids] = xs
        self._group[ids] = groups
        self._raw[ids] = -1 if raw is None else raw
        self.n += m
        return ids

    def _new_id(self) -> int:
        c = self.next_id
        self.next_id += 1
        self._grow_clusters(self.next_id)
        return c

    def _rebuild_groups(self) -> None:
        self._cgroups, self._group_faces = {}, {}
        g = self._group[:self.n]
        lab = self.labels
        for i in np.flatnonzero(g >= 0).tolist():
            self._group_faces.setdefault(int(g[i]), []).append(i)
            if lab[i] >= 0:
                d = self._cgroups.setdefault(int(lab[i]), {})
                d[int(g[i])] = d.get(int(g[i]), 0) + 1

    # ------------------------------------------------------------------ placing faces

    def _set_label(self, i: int, c: int, conf: float | None = None) -> None:
        """Move face ``i`` (raw label or -1) to live cluster ``c``, keeping sizes and photo groups in step."""
        old = self._label(i)
        g = int(self._group[i])
        if old >= 0:
            self._csize[old] -= 1
            self._cconf[old] -= float(self._conf[i])
            if g >= 0:
                d = self._cgroups.get(old, {})
                d[g] = d.get(g, 1) - 1
                if d.get(g) == 0:
                    del d[g]
        self._raw[i] = c
        if conf is not None:
            self._conf[i] = conf
        self._csize[c] += 1
        self._cconf[c] += float(self._conf[i])
        if g >= 0:
            d = self._cgroups.setdefault(c, {})
            d[g] = d.get(g, 0) + 1

    def _set_conf(self, i: int, conf: float) -> None:
        c = self._label(i)
        if c >= 0:
            self._cconf[c] += float(conf) - float(self._conf[i])
        self._conf[i] = conf

    def _forbidden(self, i: int) -> set[int]:
        """Clusters face ``i`` may not join: not-this-person, and (same_photo) those holding its photo's faces."""
        out = {self._resolve(c) for c in self._ntp.get(i, ())}
        g = int(self._group[i])
        if self.same_photo and g >= 0:
            for j in self._group_faces.get(g, ()):
                if j != i:
                    c = self._label(j)
                    if c >= 0:
                        out.add(c)
        return out

    def _votes(self, nb: np.ndarray, sm: np.ndarray) -> dict[int, list[float]]:
        """``{cluster: [similarity sum, edge count]}`` over neighbours above the threshold that have a cluster."""
        votes: dict[int, list[float]] = {}
        for j, s in zip(nb.tolist(), sm.tolist()):
            if j < 0 or s <= self.threshold:
                continue
            c = self._label(j)
            if c < 0:
                continue
            v = votes.setdefault(c, [0.0, 0])
            v[0] += s
            v[1] += 1
        return votes

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n)
        if k < 1 or len(q) == 0:
            return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
        if self._index is None:
            self._make_index()
        sims, nbrs = self._index.search(np.ascontiguousarray(q, dtype=np.float32), k)
        return nbrs.astype(np.int64), sims.astype(np.float32)

    def _kind(self) -> str:
        if self.index_kind == "auto":
            return "hnsw" if self.n >= HNSW_FROM else "flat"
        return self.index_kind

    def _make_index(self) -> None:
        import faiss
        kind = self._kind()
        self.index_kind = kind if self.index_kind == "auto" and self.n >= HNSW_FROM else self.index_kind
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        else:
            index = faiss.IndexFlatIP(self.dim)
        for s in range(0, self.n, 65536):
            index.add(np.ascontiguousarray(self._x[s:min(self.n, s + 65536)]))
        self._index = index
        self._tune_index()

    def _tune_index(self) -> None:
        if hasattr(self._index, "hnsw"):
            self._index.hnsw.efSearch = max(2 * (self.k + 1), 64)

    def _nbrs_of(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """kNN of existing faces (self dropped as -1)."""
        nb, sm = self._search(self._x[faces], self.k + 1)
        nb[nb == np.asarray(faces)[:, None]] = -1
        return nb, sm

    def _place(self, i: int, nb: np.ndarray, sm: np.ndarray, forbid: set[int] | None = None) -> int:
        """Put face ``i`` in the best allowed cluster of its votes, else a new one; returns the id."""
        forbid = self._forbidden(i) | (forbid or set())
        votes = {c: v for c, v in self._votes(nb, sm).items() if c not in forbid}
        c = max(votes, key=lambda c: (votes[c][0], -c)) if votes else self._new_id()
        self._set_label(i, c)
        return c

    def _confidence_of(self, faces: np.ndarray, nb: np.ndarray, sm: np.ndarray) -> np.ndarray:
        valid = nb >= 0
        lab = self._resolve_array(self._raw[np.where(valid, nb, 0)].ravel()).reshape(nb.shape)
        own = self._resolve_array(self._raw[np.asarray(faces)])
        w = _edge_weight(sm, self.threshold, self.tau) * valid
        inside = (w * (lab == own[:, None])).sum(axis=1)
        return ((1.0 + inside) / (1.0 + w.sum(axis=1))).astype(np.float32)

    def _separate_same_photo(self, nbrs: np.ndarray, sims: np.ndarray) -> int:
        """Batch step: in every cluster keep one face per photo (the best linked); re-place the others."""
        moved = []
        for g, faces in sorted(self._group_faces.items()):
            if len(faces) < 2:
                continue
            by: dict[int, list[int]] = {}
            for i in faces:
                by.setdefault(self._label(i), []).append(i)
            for c, fs in sorted(by.items()):
                if len(fs) < 2:
                    continue
                strength = [sum(s for j, s in zip(nbrs[i].tolist(), sims[i].tolist())
                                if j != i and s > self.threshold and self._label(j) == c) for i in fs]
                keep = fs[int(np.argmax(strength))]
                moved.extend(i for i in fs if i != keep)
        for i in sorted(moved):
            self._place(i, nbrs[i], sims[i], forbid={self._label(i)})
        if moved:
            logger.info("same-photo cannot-link: moved %d faces out of clusters holding another face of their photo",
                        len(moved))
        return len(moved)

    # ------------------------------------------------------------------ incremental assignment

    def add(self, x, *, keys: Sequence[str] | None = None, groups=None, max_rounds: int = 50) -> AddResult:
        """Assign new faces (float ``(M, D)``) without re-clustering; see the module docstring.

        ``keys``: unique names of the new faces (required when the state has
        keys; default the next indices). ``groups``: photo of each new face
        (-1 = none; same values as earlier calls mean the same photo). When
        ``M >= rebuild_from * N`` (N: faces already in the state) every face is
        re-clustered instead (with ``keep_ids``: placed by one batch run, existing
        ids kept but for merges) and the result has ``rebuilt=True``.
        """
        xs = check_features(x, name="embeddings", min_n=0, normalize=True)
        if xs.shape[1] != self.dim:
            raise ClustergError(f"embeddings have dimension {xs.shape[1]} but the state holds {self.dim}-d faces")
        m = len(xs)
        g = self._check_groups(groups, m)
        if self._keys is not None and keys is None:
            raise ClustergError("keys: this state names its faces; give a key for every new face")
        newkeys = self._check_new_keys(keys, m, existing=self._key_index if self._keys is not None else None)
        if newkeys is not None and self._keys is None:
            if self.n:
                raise ClustergError("keys: this state has no face keys; add faces without keys")
            self._keys, self._key_index = [], {}
        if m == 0:
            e = np.zeros(0, np.int64)
            return AddResult(e, e.copy(), np.zeros(0, np.float32))
        start = self.n
        if self._index is None:
            self._make_index()
        ids = self._append(xs, g)
        if newkeys is not None:
            for j, s in enumerate(newkeys):
                self._keys.append(s)
                self._key_index[s] = start + j
        for j in np.flatnonzero(g >= 0).tolist():
            self._group_faces.setdefault(int(g[j]), []).append(start + j)
        self._index.add(xs)
        nb, sm = self._nbrs_of(ids)
        if (self.rebuild_from is not None and start > 0 and m >= self.rebuild_from * start
                and self._method_runs()):
            return self._add_by_rebuild(ids, start)
        local = self._joint_labels(ids, nb, start) if self.joint else None
        vnb = nb
        if local is not None:  # votes only inside the new face's cluster of the joint run
            loc_new, loc_of = local
            same = np.asarray([[loc_of.get(int(f), -2) == loc_new[j] for f in row] for j, row in
                               enumerate(nb.tolist())], dtype=bool).reshape(nb.shape)
            vnb = np.where(same, nb, -1)

        # votes spread in rounds: strongest first, so same-photo faces compete fairly
        todo = list(range(m))
        for _ in range(int(max_rounds)):
            cands = []
            for j in todo:
                forbid = self._forbidden(start + j)
                votes = {c: v for c, v in self._votes(vnb[j], sm[j]).items() if c not in forbid}
                if votes:
                    c = max(votes, key=lambda c: (votes[c][0], -c))
                    cands.append((-votes[c][0], j, c))
            if not cands:
                break
            cands.sort()
            placed = set()
            for _, j, c in cands:
                if c in self._forbidden(start + j):
                    continue  # a face of the same photo took this cluster in this round
                self._set_label(start + j, c)
                placed.add(j)
            todo = [j for j in todo if j not in placed]
            if not placed or not todo:
                break

        new_clusters: list[int] = []
        if todo:
            new_clusters = self._cluster_leftovers(ids[todo], nb[todo], sm[todo],
                                                   local=None if local is None else local[0][todo])

        merged = self._auto_merge(ids, nb, sm)
        conf = self._confidence_of(ids, nb, sm)
        for j, i in enumerate(ids.tolist()):
            self._set_conf(i, float(conf[j]))
        new_clusters = sorted({self._resolve(c) for c in new_clusters})
        labels = self._resolve_array(self._raw[ids])
        if merged:
            logger.info("merged clusters: %s", "; ".join(f"{m_['ids']} -> {m_['into']}" for m_ in merged))
        return AddResult(ids, labels, conf, new_clusters, merged)

    def _method_runs(self) -> bool:
        """True when the state names a batch method that can cluster faces."""
        if not self.method or self.method == "none":
            return False
        try:
            from ..cluster import get_clusterer_class
            get_clusterer_class(self.method)
        except (ClustergError, ImportError):
            return False
        return True

    def _local_cluster(self, x: np.ndarray) -> np.ndarray | None:
        """Cluster a few faces with the state's method, threshold and k (``None`` when it cannot run)."""
        if len(x) <= 1 or not self._method_runs():
            return None if len(x) > 1 else np.zeros(len(x), np.int64)
        try:
            from ..images.pipeline import cluster_faces
            from ..cluster import get_clusterer_class
            accepts = set(get_clusterer_class(self.method)._param_names())
            k = self.params.get("k", self.k)
            labels, _ = cluster_faces(x, method=self.method,
                                      threshold=self.threshold if "threshold" in accepts else None,
                                      k=min(int(k), len(x)) if "k" in accepts else None,
                                      seed=getattr(self, "_seed", 0), checkpoint=getattr(self, "_checkpoint", None))
            return labels
        except (ClustergError, ImportError, FileNotFoundError, RuntimeError) as e:
            logger.info("method %s could not cluster %d faces (%s)", self.method, len(x), e)
            return None

    def _joint_labels(self, ids: np.ndarray, nb: np.ndarray, start: int):
        """Joint run: the batch method on the new faces and their kNN (existing faces included).

        Returns ``(local label of each new face (M,), {face: local label})`` over the
        union, or ``None`` when the method cannot run. The union holds at most
        ``M (k + 1)`` faces, whatever the library size.
        """
        ex = nb[(nb >= 0) & (nb < start)]
        union = np.union1d(ids, ex)
        if len(union) > JOINT_MAX:
            logger.info("joint run skipped: %d new faces and neighbours > JOINT_MAX=%d", len(union), JOINT_MAX)
            return None
        loc = self._local_cluster(self._x[union])
        if loc is None:
            return None
        loc_of = dict(zip(union.tolist(), loc.tolist()))
        return np.asarray([loc_of[int(f)] for f in ids.tolist()], np.int64), loc_of

    def _add_by_rebuild(self, ids: np.ndarray, start: int) -> "AddResult":
        """A batch of at least ``rebuild_from`` times the library: re-cluster everything (:meth:`rebuild`)."""
        if self.keep_ids:
            return self._add_by_batch_placement(ids, start)
        before = self.labels[:start].copy()
        logger.info("adding %d faces to %d: a batch re-run (rebuild_from=%s)", len(ids), start, self.rebuild_from)
        self.rebuild()
        after = self.labels
        moved = np.flatnonzero(after[:start] != before)
        conf = self._conf[ids].copy()
        new_clusters = sorted(set(after[ids].tolist()) - set(before.tolist()))
        return AddResult(ids, after[ids].copy(), conf, new_clusters, [], rebuilt=True, moved=moved,
                         moved_from=before[moved])

    def _add_by_batch_placement(self, ids: np.ndarray, start: int) -> "AddResult":
        """``keep_ids``: a large batch placed by one batch run over every face, existing ids kept.

        Existing faces keep their ids. Old clusters the batch run puts together (more than half of
        each in one batch cluster) merge, unless a correction or the same-photo rule forbids it, and
        the result lists them; an old cluster the batch run splits stays whole. A new face joins the
        old cluster its batch cluster holds most faces of, if its batch cluster is also the one that
        holds most of that old cluster; otherwise a new id shared with the other new faces of its
        batch cluster.
        """
        before = self.labels[:start].copy()
        logger.info("adding %d faces to %d: placed by one batch run over every face, ids kept (rebuild_from=%s)",
                    len(ids), start, self.rebuild_from)
        from ..linkage.rejoin import majority_groups
        batch = self._batch_labels()
        had = before >= 0  # every existing face has an id; guard anyway
        old_b, before = batch[:start][had], before[had]
        merged: list[dict] = []
        for olds in majority_groups(before, old_b):  # old clusters one batch cluster holds the majority of
            into = self._resolve(olds[0])
            for o in olds[1:]:
                o = self._resolve(o)
                if o == into or self._merge_forbidden(into, o):
                    continue
                into = self._merge_ids([into, o], by="auto")
                merged.append({"into": into, "ids": sorted({into, o})})
        # each batch cluster's old id: the live id most of its existing faces carry (ties: the smaller id), if that
        # batch cluster is also the one holding most of that id's faces. A batch cluster that holds only a minority
        # of an old cluster is another person the library had mixed in: its new faces get a new id rather than
        # growing the mix (chosen on CelebA train quarters: benchmarks/library_incremental.py, "tuning")
        target: dict[int, int] = {}
        live = self.labels[:start][had]
        n_live = int(live.max()) + 1 if len(live) else 1
        pair, count = np.unique(old_b * n_live + live, return_counts=True)
        order = sorted(zip(pair.tolist(), count.tolist()), key=lambda t: (-t[1], t[0]))
        ranked = [divmod(p_, n_live) for p_, _ in order]
        main: dict[int, int] = {}  # each live id's main batch cluster
        for c, o in ranked:
            main.setdefault(o, c)
        for c, o in ranked:
            if main[o] == c:
                target.setdefault(c, o)
        fresh: dict[int, int] = {}
        new_clusters: set[int] = set()
        for i in ids.tolist():
            c = int(batch[i])
            forbid = self._forbidden(i)
            t = target.get(c)
            if t is None or t in forbid:
                t = fresh.get(c)
                if t is None or t in forbid:
                    t = self._new_id()
                    fresh.setdefault(c, t)
                new_clusters.add(t)
            self._set_label(i, t)
        nb, sm = self._nbrs_of(ids)
        conf = self._confidence_of(ids, nb, sm)
        for j, i in enumerate(ids.tolist()):
            self._set_conf(i, float(conf[j]))
        labels = self._resolve_array(self._raw[ids])
        if merged:
            logger.info("merged clusters: %s", "; ".join(f"{m_['ids']} -> {m_['into']}" for m_ in merged))
        return AddResult(ids, labels, conf, sorted({self._resolve(c) for c in new_clusters}), merged, rebuilt=True)

    def _batch_labels(self) -> np.ndarray:
        """Labels of one batch run of the state's method, threshold and k over every face."""
        from ..images.pipeline import cluster_faces
        from ..cluster import get_clusterer_class
        n = self.n
        accepts = set(get_clusterer_class(self.method)._param_names()) if self.method not in ("", "none") else set()
        new, _ = cluster_faces(self.embeddings, method=self.method if accepts else None,
                               threshold=self.threshold if "threshold" in accepts else None,
                               k=min(self.k, n) if "k" in accepts else None, seed=getattr(self, "_seed", 0),
                               checkpoint=getattr(self, "_checkpoint", None))
        return np.asarray(new, np.int64)

    def _cluster_leftovers(self, faces: np.ndarray, nb: np.ndarray, sm: np.ndarray,
                           local: np.ndarray | None = None) -> list[int]:
        """New faces linked to no cluster: cluster them among themselves with the state's method
        (or take ``local``, their labels from the joint run)."""
        from ..linkage import connected_components
        m = len(faces)
        if local is not None:
            local = np.asarray(local, np.int64)
        if local is None and m > 1:
            local = self._local_cluster(self._x[faces])
        if local is None:
            pos = {int(f): j for j, f in enumerate(faces.tolist())}
            src, dst = [], []
            for j in range(m):
                for f, s in zip(nb[j].tolist(), sm[j].tolist()):
                    if s > self.threshold and f in pos:
                        src.append(j)
                        dst.append(pos[f])
            local = connected_components(m, np.asarray(src, np.int64), np.asarray(dst, np.int64))
        made: dict[int, int] = {}
        spill = []
        for j, f in enumerate(faces.tolist()):
            c = made.get(int(local[j]))
            if c is None:
                c = made[int(local[j])] = self._new_id()
            if c in self._forbidden(f):
                spill.append(j)
                continue
            self._set_label(f, c)
        for j in spill:  # a second face of one photo in a new cluster: re-place it
            self._place(int(faces[j]), nb[j], sm[j])
        return list(made.values()) + [self._label(int(faces[j])) for j in spill]

    def _merge_forbidden(self, a: int, b: int) -> bool:
        if (min(a, b), max(a, b)) in {tuple(sorted((self._resolve(p), self._resolve(q)))) for p, q in self._cl_pairs}:
            return True
        if self.same_photo:
            ga, gb = self._cgroups.get(a, {}), self._cgroups.get(b, {})
            if any(g in gb for g in ga):
                return True
        for f, cs in self._ntp.items():
            lab = self._label(f)
            rs = {self._resolve(c) for c in cs}
            if (lab == a and b in rs) or (lab == b and a in rs):
                return True
        return False

    def _auto_merge(self, faces: np.ndarray, nb: np.ndarray, sm: np.ndarray) -> list[dict]:
        proposals: dict[tuple[int, int], int] = {}
        for j, f in enumerate(faces.tolist()):
            a = self._label(f)
            votes = self._votes(nb[j], sm[j])
            top = votes.get(a, [0.0, 0])
            for b, (w, cnt) in votes.items():
                if b == a or cnt < self.merge_links or top[1] < self.merge_links or w < self.merge_ratio * top[0]:
                    continue
                key = (min(a, b), max(a, b))
                proposals[key] = proposals.get(key, 0) + 1
        done: list[dict] = []
        for (a, b), support in sorted(proposals.items(), key=lambda kv: (-kv[1], kv[0])):
            if support < self.merge_support:
                continue
            a, b = self._resolve(a), self._resolve(b)
            if a == b or self._merge_forbidden(a, b):
                continue
            into = self._merge_ids([a, b], by="auto")
            done.append({"into": into, "ids": sorted({a, b})})
        return done

    def _merge_ids(self, ids: list[int], by: str, into: int | None = None, record: bool = True) -> int:
        ids = sorted(set(ids))
        into = ids[0] if into is None else into
        for b in ids:
            if b == into:
                continue
            self._alias[b] = into
            self._csize[into] += self._csize[b]
            self._cconf[into] += self._cconf[b]
            self._csize[b] = 0
            self._cconf[b] = 0.0
            gb = self._cgroups.pop(b, {})
            d = self._cgroups.setdefault(into, {})
            for g, cnt in gb.items():
                d[g] = d.get(g, 0) + cnt
            if b in self.names and into not in self.names:
                self.names[into] = self.names[b]
            self.names.pop(b, None)
        if record:
            self.merges.append({"into": int(into), "ids": [int(c) for c in ids], "by": by})
        return into

    def refresh_confidence(self) -> np.ndarray:
        """Recompute every face's confidence against the current clusters (one kNN query per face)."""
        if self.n == 0:
            return self.confidence
        faces = np.arange(self.n)
        lab = self.labels
        conf = np.empty(self.n, np.float32)
        for s in range(0, self.n, 16384):
            f = faces[s:s + 16384]
            nb, sm = self._nbrs_of(f)
            valid = nb >= 0
            conf[s:s + len(f)] = face_confidence(np.where(valid, nb, -1), sm, lab, self.threshold,
                                                 query_labels=lab[f], tau=self.tau)
        self._conf[:self.n] = conf
        self._cconf[:] = 0
        np.add.at(self._cconf, lab, conf.astype(np.float64))
        return self.confidence

    # ------------------------------------------------------------------ corrections

    def _sample(self, c: int) -> list[str]:
        mem = np.flatnonzero(self.labels == c)
        if len(mem) > _SAMPLE:
            mem = mem[np.linspace(0, len(mem) - 1, _SAMPLE).astype(int)]
        return [self.key(int(i)) for i in mem]

    def merge(self, clusters: Sequence[int | str], into: int | str | None = None) -> int:
        """Make the given clusters one person; returns the id kept (``into``, default the smallest id).

        A user merge overrides the same-photo rule and drops cannot-links between the merged clusters.
        """
        ids = sorted({self.cluster(c) for c in clusters})
        if len(ids) < 2:
            raise ClustergError("merge: name at least two different clusters")
        keep = self.cluster(into) if into is not None else ids[0]
        if keep not in ids:
            raise ClustergError(f"merge: into={keep} is not one of the merged clusters {ids}")
        rec = {"op": "merge", "ids": ids, "into": keep, "faces": {str(c): self._sample(c) for c in ids}}
        self._cl_pairs = {p for p in self._cl_pairs
                          if not (self._resolve(p[0]) in ids and self._resolve(p[1]) in ids)}
        for f in list(self._ntp):
            if self._label(f) in ids:
                self._ntp[f] = {c for c in self._ntp[f] if self._resolve(c) not in ids}
                if not self._ntp[f]:
                    del self._ntp[f]
        self._merge_ids(ids, by="user", into=keep)
        self.corrections.append(rec)
        return keep

    def split(self, faces: Sequence[int | str], to: int | str | None = None) -> int:
        """Move ``faces`` out to a new person (``to=None``), to a name (a new person so named when
        no cluster has it) or to an existing cluster id. The clusters they left may not merge with
        their new cluster later. Returns the id they went to."""
        idx = sorted({self.face(f) for f in faces})
        if not idx:
            raise ClustergError("split: name at least one face")
        origins = sorted({self._label(i) for i in idx})
        if to is None or (isinstance(to, str) and not to.lstrip("-").isdigit()
                          and not any(nm == to and self._alive(c) for c, nm in self.names.items())):
            target = self._new_id()
            if isinstance(to, str):
                self.names[target] = to
        else:
            target = self.cluster(to)
        rec = {"op": "split", "faces": [self.key(i) for i in idx], "to": target,
               "name": self.names.get(target), "origin": {str(c): self._sample(c) for c in origins if c != target}}
        for i in idx:
            self._ntp.get(i, set()).discard(target)
            self._set_label(i, target)
        for c in origins:
            if c != target and self._alive(c):
                self._cl_pairs.add((min(c, target), max(c, target)))
        self._refresh_conf(np.asarray(idx))
        self.corrections.append(rec)
        return target

    def cannot_link(self, a: int | str, b: int | str) -> None:
        """Two clusters are different people: they never merge automatically."""
        a, b = self.cluster(a), self.cluster(b)
        if a == b:
            raise ClustergError("cannot-link: name two different clusters")
        self._cl_pairs.add((min(a, b), max(a, b)))
        self.corrections.append({"op": "cannot-link", "ids": [min(a, b), max(a, b)],
                                 "faces": {str(c): self._sample(c) for c in (a, b)}})

    def not_this_person(self, face: int | str, cluster: int | str | None = None) -> int:
        """Cannot-link ``face`` to ``cluster`` (default: its own): it leaves and never joins it again;
        it goes to its best other cluster, else alone. Returns its new cluster id."""
        i = self.face(face)
        c = self._label(i) if cluster is None else self.cluster(cluster)
        rec = {"op": "not-this-person", "face": self.key(i), "cluster": c, "cluster_faces": self._sample(c)}
        self._ntp.setdefault(i, set()).add(c)
        if self._label(i) == c:
            nb, sm = self._nbrs_of(np.asarray([i]))
            self._place(i, nb[0], sm[0])
            self._refresh_conf(np.asarray([i]))
        self.corrections.append(rec)
        return self._label(i)

    def name(self, cluster: int | str, name: str | None) -> int:
        """Give a cluster a person's name (``None`` removes it); kept in the output. Returns the id."""
        c = self.cluster(cluster)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ClustergError(f"name: expected a non-empty string, got {name!r}")
        if name is None:
            self.names.pop(c, None)
        else:
            self.names[c] = name.strip()
        self.corrections.append({"op": "name", "cluster": c, "name": self.names.get(c), "faces": self._sample(c)})
        return c

    def _refresh_conf(self, faces: np.ndarray) -> None:
        nb, sm = self._nbrs_of(faces)
        conf = self._confidence_of(faces, nb, sm)
        for j, i in enumerate(faces.tolist()):
            self._set_conf(i, float(conf[j]))

    # ------------------------------------------------------------------ full re-run

    def _majority(self, keys: Sequence[str], exclude: int | None = None) -> int | None:
        idx = [self._key_index[k] if self._key_index is not None else int(k) for k in keys
               if self.has_key(k)]
        idx = [i for i in idx if i != exclude]
        if not idx:
            return None
        lab = self.labels[idx]
        vals, counts = np.unique(lab, return_counts=True)
        return int(vals[np.argmax(counts)])

    def rebuild(self) -> dict[int, int]:
        """Re-cluster every face in one batch with the state's method and threshold, then replay the corrections.

        Ids are kept where clusters persist: each new cluster takes the old id
        it shares most faces with (largest overlaps first, each old id once);
        the others get new ids. Same-photo faces are kept apart, and every
        correction is applied again in order (found through the faces it
        names). Returns ``{new cluster id: old id}`` for the ids kept.
        """
        n = self.n
        if n == 0:
            return {}
        old = self.labels
        new = self._batch_labels()
        big = int(old.max()) + 1 if (old >= 0).any() else 1
        had = old >= 0  # faces added just before a re-run have no id yet
        pairs, counts = np.unique(new[had] * big + old[had], return_counts=True)
        order = np.lexsort((pairs, -counts))
        mapping: dict[int, int] = {}
        used: set[int] = set()
        for p in pairs[order].tolist():
            c, o = divmod(int(p), big)
            if c not in mapping and o not in used:
                mapping[c] = o
                used.add(o)
        kept = dict(mapping)
        names: dict[int, str] = {}  # names come back with the corrections that gave them
        self._alias.clear()
        self._csize[:] = 0
        self._cconf[:] = 0
        for c in np.unique(new).tolist():
            if c not in mapping:
                mapping[c] = self._new_id()
        lab = np.asarray([mapping[c] for c in new.tolist()], dtype=np.int64)
        self._raw[:n] = lab
        np.add.at(self._csize, lab, 1)
        self._conf[:n] = 0
        self.names = names
        self._rebuild_groups()
        nb, sm = self._nbrs_of(np.arange(n))
        if self.same_photo and (self._group[:n] >= 0).any():
            self._separate_same_photo(nb, sm)
        # replay the corrections, found through the faces they name
        self._cl_pairs, self._ntp = set(), {}
        for rec in self.corrections:
            op = rec.get("op")
            if op == "merge":
                cs = {self._majority(v) for v in rec.get("faces", {}).values()} - {None}
                if len(cs) > 1:
                    self._merge_ids(sorted(cs), by="user", record=False)
            elif op == "split":
                idx = [self.face(k) for k in rec.get("faces", []) if self.has_key(k)]
                if idx:
                    to = rec.get("to")
                    if not isinstance(to, int) or isinstance(to, bool) or not 0 <= to < self.next_id \
                            or to in self._alias:
                        target = self._new_id()
                    elif not self._alive(to) or 2 * int(np.sum(self.labels[idx] == to)) > len(idx):
                        target = to  # the id the split gave them: free again, or already theirs
                    else:
                        target = self._new_id()
                    if rec.get("name"):
                        hit = [c for c, nm in self.names.items() if nm == rec["name"] and self._alive(c)]
                        target = min(hit) if hit else target
                        self.names.setdefault(target, rec["name"])
                    origins = {self._label(i) for i in idx}
                    for i in idx:
                        self._set_label(i, target)
                    for c in origins:
                        if c != target:
                            self._cl_pairs.add((min(c, target), max(c, target)))
            elif op == "not-this-person" and self.has_key(rec.get("face", "")):
                i = self.face(rec["face"])
                c = self._majority(rec.get("cluster_faces", []), exclude=i)
                if c is not None:
                    self._ntp.setdefault(i, set()).add(c)
                    if self._label(i) == c:
                        self._place(i, nb[i], sm[i])
            elif op == "name":
                c = self._majority(rec.get("faces", []))
                if c is not None:
                    if rec.get("name"):
                        self.names[c] = rec["name"]
                    else:
                        self.names.pop(c, None)
            elif op == "cannot-link":
                cs = [self._majority(v) for v in rec.get("faces", {}).values()]
                if len(cs) == 2 and None not in cs and cs[0] != cs[1]:
                    self._cl_pairs.add((min(cs), max(cs)))
        lab = self.labels
        conf = face_confidence(np.where(nb >= 0, nb, -1), sm, lab, self.threshold, query_labels=lab, tau=self.tau)
        self._conf[:n] = conf
        self._cconf[:] = 0
        np.add.at(self._cconf, lab, conf.astype(np.float64))
        return {mapping[c]: o for c, o in kept.items()}

    # ------------------------------------------------------------------ persistence

    def _meta(self) -> dict:
        return {
            "format": STATE_FORMAT, "version": STATE_VERSION, "model": self.model, "dim": self.dim,
            "method": self.method, "params": self.params, "threshold": self.threshold, "k": self.k,
            "same_photo": self.same_photo, "index": self._kind(), "merge_links": self.merge_links,
            "merge_ratio": self.merge_ratio, "merge_support": self.merge_support, "tau": self.tau,
            "joint": self.joint, "rebuild_from": self.rebuild_from, "keep_ids": self.keep_ids,
            "n_faces": self.n, "next_id": self.next_id,
            "seed": getattr(self, "_seed", 0), "checkpoint": getattr(self, "_checkpoint", None),
            "names": {str(c): nm for c, nm in sorted(self.names.items())},
            "cannot_link": sorted([list(p) for p in {tuple(sorted((self._resolve(a), self._resolve(b))))
                                                     for a, b in self._cl_pairs}]),
            "not_this_person": sorted([[self.key(f), int(self._resolve(c))] for f, cs in self._ntp.items()
                                       for c in cs]),
            "corrections": self.corrections, "merges": self.merges, "extra": self.extra,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the state to folder ``path`` (made if absent); atomic: see the module docstring."""
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise ClustergError(f"state path {root} is a file, not a folder")
        meta_path = root / "state.json"
        gen = 1
        if root.is_dir():
            if meta_path.is_file():
                try:
                    gen = int(json.loads(meta_path.read_text(encoding="utf-8")).get("generation", 0)) + 1
                except (ValueError, AttributeError, OSError):
                    raise ClustergError(f"{meta_path} is not a clusterg state; refusing to overwrite it") from None
            elif any(p for p in root.iterdir() if not p.name.startswith((".data-", "data-"))):
                raise ClustergError(f"state folder {root} holds other files and no state.json; choose a new folder")
        root.mkdir(parents=True, exist_ok=True)
        name = f"data-{gen:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        try:
            n = self.n
            arrays = {"embeddings": self._x[:n], "labels": self.labels, "groups": self._group[:n],
                      "confidence": self._conf[:n]}
            if self._keys is not None:
                arrays["keys"] = np.asarray(self._keys, dtype=str) if n else np.zeros(0, dtype="<U1")
            files = {}
            for key, arr in arrays.items():
                p = tmp / f"{key}.npy"
                _write_array(p, np.ascontiguousarray(arr))
                files[p.name] = p.stat().st_size
            if self._kind() == "hnsw" and self._index is not None:
                import faiss
                p = tmp / "index.faiss"
                faiss.write_index(self._index, str(p))
                files[p.name] = p.stat().st_size
            _fsync_dir(tmp)
            final = root / name
            if final.exists():  # left by a run killed before it wrote state.json
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(root)
        meta = self._meta()
        meta.update(generation=gen, data=name, files=files)
        with atomic_open(meta_path, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(root)
        for p in root.iterdir():
            if p.is_dir() and p.name != name and p.name.startswith(("data-", ".data-")):
                shutil.rmtree(p, ignore_errors=True)
        return root

    @classmethod
    def exists(cls, path: str | os.PathLike) -> bool:
        """True when ``path`` holds a state (its ``state.json``)."""
        return (Path(path) / "state.json").is_file()

    @classmethod
    def load(cls, path: str | os.PathLike, *, model: str | None = None, dim: int | None = None) -> "ClusterState":
        """Read a state folder. ``model`` / ``dim``: refuse a state made by another model or of another dimension."""
        root = Path(path)
        meta_path = root / "state.json"
        if not meta_path.is_file():
            raise ClustergError(f"no clustering state in {root} (state.json missing)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ClustergError(f"{meta_path} is not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != STATE_FORMAT:
            raise ClustergError(f"{meta_path} is not a clusterg state")
        if meta.get("version") != STATE_VERSION:
            raise ClustergError(f"state {root} has format version {meta.get('version')}; this clusterg reads "
                                f"version {STATE_VERSION}")
        if model is not None and meta.get("model") != model:
            raise ClustergError(f"state {root} was made with another model ({meta.get('model')!r}), not "
                                f"{model!r}; use a new --state folder or the same model settings")
        if dim is not None and meta.get("dim") != dim:
            raise ClustergError(f"state {root} holds {meta.get('dim')}-d embeddings, not {dim}-d")
        data = root / str(meta.get("data", ""))
        files = meta.get("files", {})
        try:
            for fname, size in files.items():
                if (data / fname).stat().st_size != size:
                    raise ClustergError(f"state file {data / fname} has the wrong size; the state is damaged")
            arr = {key: np.load(data / f"{key}.npy", allow_pickle=False)
                   for key in ("embeddings", "labels", "groups", "confidence")}
            keys = np.load(data / "keys.npy", allow_pickle=False) if "keys.npy" in files else None
        except OSError as e:
            raise ClustergError(f"state {root} is incomplete ({e})") from None
        n = int(meta["n_faces"])
        x = arr["embeddings"]
        if (x.shape != (n, int(meta["dim"])) or any(len(arr[key]) != n for key in ("labels", "groups", "confidence"))
                or (keys is not None and len(keys) != n)):
            raise ClustergError(f"state {root} is inconsistent (array lengths differ from n_faces={n})")
        st = cls(int(meta["dim"]), model=meta.get("model", ""), method=meta.get("method", ""),
                 params=meta.get("params"), threshold=meta["threshold"], k=meta["k"],
                 same_photo=meta.get("same_photo", True), index=meta.get("index", "auto"),
                 merge_links=meta.get("merge_links", 3), merge_ratio=meta.get("merge_ratio", 0.8),
                 merge_support=meta.get("merge_support", 4),
                 tau=meta.get("tau", DEFAULT_TAU), joint=meta.get("joint", True),
                 rebuild_from=meta.get("rebuild_from", REBUILD_FROM), keep_ids=meta.get("keep_ids", False))
        st._seed = int(meta.get("seed", 0))
        st._checkpoint = meta.get("checkpoint")
        st._append(x.astype(np.float32), arr["groups"].astype(np.int64), arr["labels"].astype(np.int64))
        st._conf[:n] = arr["confidence"]
        if keys is not None:
            st._keys = [str(s) for s in keys.tolist()]
            st._key_index = {s: i for i, s in enumerate(st._keys)}
        st.next_id = int(meta["next_id"])
        st._grow_clusters(st.next_id)
        lab = st._raw[:n]
        if n and (lab.min() < 0 or lab.max() >= st.next_id):
            raise ClustergError(f"state {root} is inconsistent (cluster ids outside 0..next_id-1)")
        np.add.at(st._csize, lab, 1)
        np.add.at(st._cconf, lab, st._conf[:n].astype(np.float64))
        st.names = {int(c): nm for c, nm in meta.get("names", {}).items()}
        st._cl_pairs = {(int(a), int(b)) for a, b in meta.get("cannot_link", [])}
        for fk, c in meta.get("not_this_person", []):
            st._ntp.setdefault(st.face(fk), set()).add(int(c))
        st.corrections = list(meta.get("corrections", []))
        st.merges = list(meta.get("merges", []))
        st.extra = dict(meta.get("extra", {}))
        st._rebuild_groups()
        if "index.faiss" in files:
            import faiss
            st._index = faiss.read_index(str(data / "index.faiss"))
            if st._index.ntotal != n or st._index.d != st.dim:
                raise ClustergError(f"state {root} is inconsistent (the index holds {st._index.ntotal} faces)")
            st._tune_index()
        return st


def _jsonable(v) -> bool:
    return isinstance(v, (str, int, float, bool)) or v is None
