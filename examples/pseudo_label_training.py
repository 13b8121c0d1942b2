"""Train on unlabeled embeddings with pseudo-labels recomputed every epoch (SpCL / Cluster-Contrast style).

    python examples/pseudo_label_training.py              # CelebA dev faces from ../shared/data
    python examples/pseudo_label_training.py --small      # 300 identities, a few seconds (what CI runs)
    python examples/pseudo_label_training.py --synthetic  # MS1M-like synthetic faces, no data needed

The loop of unsupervised re-identification, with face embeddings standing in for
re-ID images: the inputs are the embeddings plus a fixed per-image
nuisance (``--noise``, mixed in by a random rotation: a weak backbone whose features hold
pose/light/camera variation besides identity), and a small PyTorch head (a linear map to
D dimensions, random orthogonal start) embeds them; every epoch

1. the current embeddings are clustered into pseudo-labels with
   :func:`clusterg.cluster.pseudo_labels.pseudo_labels` (DBSCAN on the k-reciprocal
   Jaccard distance; outliers -1 are left out of the loss);
2. a cluster memory holds the normalised mean embedding of each pseudo-class and the
   head is trained with Cluster-Contrast's loss (cross-entropy of the similarities to the
   memory, temperature 0.05, momentum updates of the memory).

The labels are used only to print the pairwise F-score of each epoch's pseudo-labels
(outliers as singletons), which rises as the head learns which directions separate the
pseudo-identities.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def shared_data() -> Path:
    return Path(os.environ["CLUSTERG_DATA"]) if os.environ.get("CLUSTERG_DATA") else REPO.parent / "shared" / "data"


def load(args):
    """(x float32 (N, D), y int64 (N,), description)."""
    root = shared_data() / "celeba"
    if not args.synthetic and (root / "features" / "dev.bin").is_file():
        from clusterg.data import MS1MDataset
        ds = MS1MDataset(root, "dev", dim=128)
        x, y = np.asarray(ds.x, dtype=np.float32), np.asarray(ds.y)
        if args.ids:
            keep = np.isin(y, np.unique(y)[:args.ids])
            x, y = x[keep], y[keep]
        return x, y, f"CelebA dev (dlib), {len(np.unique(y))} identities"
    from clusterg.data.synth import synth_ms1m
    n = 8 * (args.ids or 1200)
    x, y = synth_ms1m(n, dim=64, n_ids=args.ids or 1200, seed=args.seed)
    return x, y, f"synthetic MS1M-like faces, {len(np.unique(y))} identities"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="300 identities, 4 epochs (a few seconds)")
    ap.add_argument("--synthetic", action="store_true", help="synthetic faces even when the real set is there")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default 6, 4 with --small)")
    ap.add_argument("--ids", type=int, default=None, help="identities used (default all; 300 with --small)")
    ap.add_argument("--preset", default="spcl-faces", help="pseudo-label preset (default spcl-faces)")
    ap.add_argument("--noise", type=float, default=None,
                    help="norm of the nuisance part of the inputs (default 0.4 on CelebA, 0.2 on synthetic faces; "
                         "0 = the clean embeddings)")
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default 3e-3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.small:
        args.ids = args.ids or 300
        args.epochs = args.epochs or 4
    args.epochs = args.epochs or 6

    import torch
    import torch.nn.functional as F

    from clusterg.cluster.pseudo_labels import pseudo_labels
    from clusterg.metrics import pairwise

    torch.manual_seed(args.seed)
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    x, y, what = load(args)
    n, d = x.shape
    if args.noise is None:
        args.noise = 0.2 if what.startswith("synthetic") else 0.4
    print(f"{what}: {n} embeddings of dimension {d}; labels used only to score the pseudo-labels")
    # A weak "backbone": the embeddings plus a fixed per-image nuisance of norm --noise in as many extra
    # dimensions, all mixed by a random rotation (pose, light, camera: variation that is not identity).
    rng = np.random.default_rng(args.seed)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    nuis = rng.normal(size=(n, d))
    nuis *= args.noise / np.linalg.norm(nuis, axis=1, keepdims=True)
    rot, _ = np.linalg.qr(rng.normal(size=(2 * d, 2 * d)))
    xin = (np.hstack([xn, nuis]) @ rot).astype(np.float32)
    head = torch.nn.Linear(2 * d, d, bias=False)  # the model trained on the pseudo-labels
    torch.nn.init.orthogonal_(head.weight)
    opt = torch.optim.Adam(head.parameters(), lr=args.lr)
    xt = torch.from_numpy(xin)
    scores = []
    t0 = time.perf_counter()
    for epoch in range(args.epochs + 1):
        with torch.no_grad():
            z = F.normalize(head(xt), dim=1)
        res = pseudo_labels(z.numpy(), preset=args.preset, delta=0.0, quiet=True)
        f = pairwise(y, res.labels)[2]
        scores.append(f)
        print(f"epoch {epoch}: {res.n_clusters} pseudo-classes, {res.n_outliers} outliers, "
              f"pseudo-label pairwise F {f:.4f}")
        if epoch == args.epochs:
            break
        lab = torch.from_numpy(res.labels)
        inl = torch.nonzero(lab >= 0).ravel()
        if len(inl) == 0:
            print("no pseudo-classes this epoch; nothing to train on")
            continue
        c = int(lab.max()) + 1
        memory = torch.zeros(c, d).index_add_(0, lab[inl], z[inl])
        memory = F.normalize(memory, dim=1)
        order = inl[torch.from_numpy(rng.permutation(len(inl)))]
        for s in range(0, len(order), 256):
            b = order[s:s + 256]
            zb = F.normalize(head(xt[b]), dim=1)
            loss = F.cross_entropy(zb @ memory.T / 0.05, lab[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # momentum update of the cluster memory (Cluster-Contrast, m = 0.2)
                memory[lab[b]] = F.normalize(0.2 * memory[lab[b]] + 0.8 * zb.detach(), dim=1)
    rose = scores[-1] > scores[0]
    print(f"pseudo-label F: {' -> '.join(f'{s:.4f}' for s in scores)} "
          f"({'rose' if rose else 'did NOT rise'} by {scores[-1] - scores[0]:+.4f}) in {time.perf_counter() - t0:.1f} s")
    return 0 if rose else 1


if __name__ == "__main__":
    sys.exit(main())
