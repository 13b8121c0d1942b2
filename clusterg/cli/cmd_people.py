"""``clusterg people``: look at and correct the people (clusters) of a clustering state.

Every correction is stored in the state folder (atomically) and kept by later
``clusterg images --state DIR`` runs::

    clusterg people show --state DIR
    clusterg people merge --state DIR 3 7          # one person
    clusterg people split --state DIR photo.jpg --to Anna
    clusterg people not-this-person --state DIR photo.jpg#1
    clusterg people name --state DIR 3 "Grandma"
    clusterg people rebuild --state DIR            # full re-run, corrections replayed
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._validate import ClustergError

__all__ = ["register", "cmd_people"]


def _face_ref(st, ref: str):
    """A face by key, by photo path (its largest face, or ``path#j``) or by index."""
    if st.has_key(ref):
        return ref
    path, _, j = ref.rpartition("#") if "#" in ref else (ref, "", "0")
    if path:
        key = f"{Path(path).expanduser().resolve()}#{j or 0}"
        if st.has_key(key):
            return key
    if ref.isdigit():
        return int(ref)
    raise ClustergError(f"no face {ref!r} in the state (give a face key, a photo path or a face index)")


def _show(st, as_json: bool) -> None:
    sizes, quality = st.sizes(), st.quality()
    people = [{"id": c, "name": st.names.get(c), "faces": sizes[c], "quality": round(quality[c], 4)}
              for c in sorted(sizes)]
    if as_json:
        print(json.dumps({"faces": len(st), "clusters": len(people), "method": st.method,
                          "threshold": st.threshold, "people": people, "corrections": st.corrections,
                          "merges": st.merges}))
        return
    print(f"{len(st)} faces in {len(people)} clusters (method {st.method or '?'}, threshold {st.threshold:.4f})")
    for p in people:
        print(f"  {p['id']:6d}  {p['faces']:5d} faces  quality {p['quality']:.3f}"
              + (f"  {p['name']}" if p["name"] else ""))
    for c in st.corrections:
        print(f"  correction: {c['op']} " + ", ".join(f"{k}={v}" for k, v in c.items()
                                                      if k in ("ids", "into", "to", "name", "face", "cluster")))
    for m in st.merges:
        print(f"  merged {m['ids']} into {m['into']} ({m['by']})")


def cmd_people(args: argparse.Namespace) -> int:
    from ..library import ClusterState
    st = ClusterState.load(args.state)
    if args.action == "show":
        _show(st, getattr(args, "json", False))
        return 0
    if args.action == "merge":
        res = {"into": st.merge(args.clusters, into=args.into)}
    elif args.action == "split":
        res = {"to": st.split([_face_ref(st, f) for f in args.faces], to=args.to)}
    elif args.action == "not-this-person":
        res = {"now_in": st.not_this_person(_face_ref(st, args.face), cluster=args.cluster)}
    elif args.action == "name":
        res = {"cluster": st.name(args.cluster, args.name or None)}
    elif args.action == "rebuild":
        kept = st.rebuild()
        res = {"clusters": st.n_clusters, "ids_kept": len(kept)}
    else:  # pragma: no cover - argparse restricts the choices
        raise ClustergError(f"unknown action {args.action!r}")
    st.save(args.state)
    if getattr(args, "json", False):
        print(json.dumps(res))
    elif not getattr(args, "quiet", False):
        print(f"{args.action}: " + ", ".join(f"{k} {v}" for k, v in res.items()) + f"; saved {args.state}")
    return 0


def register(subparsers) -> None:
    """Add the ``people`` sub-command to the ``clusterg`` parser."""
    from .main import add_common_args
    p = subparsers.add_parser("people", help="show and correct the people of a clustering state (--state DIR)",
                              description=__doc__.splitlines()[0])
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True

    def common(q):
        q.add_argument("--state", metavar="DIR", required=True, help="the state folder of 'clusterg images --state'")
        q.add_argument("--json", action="store_true", help="print the result as JSON")
        add_common_args(q)
        q.set_defaults(func=cmd_people)

    common(acts.add_parser("show", help="list the clusters with size, quality and name, and the corrections"))
    q = acts.add_parser("merge", help="make two or more clusters one person")
    q.add_argument("clusters", nargs="+", help="cluster ids or names")
    q.add_argument("--into", default=None, help="the id to keep (default the smallest)")
    common(q)
    q = acts.add_parser("split", help="move faces out to a new person, a named one or a cluster id")
    q.add_argument("faces", nargs="+", help="face keys, photo paths (path#j for face j) or face indices")
    q.add_argument("--to", default=None, help="a new person's name, an existing name or a cluster id")
    common(q)
    q = acts.add_parser("not-this-person", help="this face is not that person: move it out, never back")
    q.add_argument("face", help="face key, photo path (path#j) or face index")
    q.add_argument("--cluster", default=None, help="the cluster it is not (default: its current one)")
    common(q)
    common(acts.add_parser("rebuild", help="re-cluster every face in one batch, keeping ids where clusters "
                                           "persist and replaying the corrections"))
    q = acts.add_parser("name", help="name a person (an empty name removes it)")
    q.add_argument("cluster", help="cluster id or current name")
    q.add_argument("name", help="the name")
    common(q)
