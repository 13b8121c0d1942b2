"""Photos -> face embeddings -> clusters (needs the faces extra; real photos from ../shared/data)."""
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterg._validate import ClustergError

dlib = pytest.importorskip("dlib", reason='the faces extra is not installed (pip install "clusterg[faces]")')
PIL_Image = pytest.importorskip("PIL.Image")

from clusterg.images import (AUTO_THRESHOLDS, EMBEDDING_DIM, FaceEmbedder, cluster_faces, cluster_images,  # noqa: E402
                             default_threshold, embed_images, export_cluster_folders, face_model_dir, load_image,
                             read_photo_list)
from clusterg.images import embed as embed_mod  # noqa: E402
from clusterg.metrics import pairwise  # noqa: E402


@pytest.fixture(scope="module")
def face_images(shared_data):
    root = shared_data / "face-images"
    if not (root / "input.json").is_file():
        pytest.skip(f"{root}/input.json not present")
    items = json.loads((root / "input.json").read_text())
    truth = json.loads((root / "identities.json").read_text())
    return root, items, truth


@pytest.fixture(scope="module")
def embedder():
    return FaceEmbedder()


def _noise_png(path: Path, seed: int = 0, size=(120, 90)) -> Path:
    rng = np.random.default_rng(seed)
    PIL_Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _truncated_jpeg(src: Path, path: Path) -> Path:
    data = src.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _photos_by_person(items, truth, per_person: int, people: int):
    """``people`` identities x ``per_person`` photos (small files first, to keep tests fast)."""
    by = {}
    for it in items:
        by.setdefault(truth[it["img_path"]], []).append(it["img_path"])
    chosen = sorted(by)[:people]
    return [(p, ident) for ident in chosen for p in sorted(by[ident])[:per_person]]


# ----------------------------------------------------------------------------- models and images


def test_model_files_found_without_importing_package():
    folder = face_model_dir()
    assert (folder / "shape_predictor_5_face_landmarks.dat").is_file()
    assert (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file()
    assert "face_recognition_models" not in sys.modules  # located, not imported (its __init__ needs pkg_resources)


def test_missing_faces_extra_gives_install_hint(monkeypatch):
    real = embed_mod.importlib.util.find_spec
    monkeypatch.setattr(embed_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(ClustergError, match=r'pip install "clusterg\[faces\]"'):
        face_model_dir()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib now raises ImportError
    with pytest.raises(ClustergError, match=r'pip install "clusterg\[faces\]"'):
        FaceEmbedder().check_installed()


@pytest.mark.parametrize("kwargs", [dict(upsample=-1), dict(upsample=1.5), dict(max_side=10), dict(num_jitters=-2),
                                    dict(padding=2.0), dict(padding="x"), dict(min_size=-1)])
def test_embedder_rejects_bad_settings(kwargs):
    with pytest.raises(ClustergError):
        FaceEmbedder(**kwargs)


def test_load_image_errors(tmp_path):
    with pytest.raises(ClustergError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ClustergError, match="unreadable image"):
        load_image(tmp_path / "text.jpg")
    with pytest.raises(ClustergError, match="not a file"):
        load_image(tmp_path)
    img = load_image(_noise_png(tmp_path / "n.png"))
    assert img.shape == (90, 120, 3) and img.dtype == np.uint8


def test_truncated_jpeg_is_unreadable(tmp_path, face_images):
    root, items, _ = face_images
    bad = _truncated_jpeg(root / items[0]["img_path"], tmp_path / "cut.jpg")
    with pytest.raises(ClustergError, match="unreadable image"):
        load_image(bad)


def test_exif_rotation_is_applied(tmp_path, face_images, embedder):
    root, items, truth = face_images
    (p, _), = _photos_by_person(items, truth, 1, 1)
    upright = PIL_Image.open(root / p).convert("RGB")
    stored = upright.transpose(PIL_Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = PIL_Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored.save(tmp_path / "sideways.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "sideways.jpg")
    assert img.shape == (upright.height, upright.width, 3)
    assert len(embedder.detect(img)) >= 1


def test_grayscale_and_rgba_images_are_read_as_rgb(tmp_path):
    PIL_Image.fromarray(np.full((20, 30), 128, np.uint8)).save(tmp_path / "g.png")
    PIL_Image.fromarray(np.full((20, 30, 4), 200, np.uint8)).save(tmp_path / "a.png")
    for name in ("g.png", "a.png"):
        assert load_image(tmp_path / name).shape == (20, 30, 3)


def test_detect_rejects_bad_arrays(embedder):
    with pytest.raises(ClustergError, match="RGB"):
        embedder.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ClustergError, match="uint8"):
        embedder.detect(np.zeros((10, 10, 3), np.float32))


def test_embed_images_records(tmp_path, face_images, embedder):
    root, items, truth = face_images
    (a, ida), (b, idb) = _photos_by_person(items, truth, 1, 2)
    noise = _noise_png(tmp_path / "noise.png")
    paths = [root / a, noise, tmp_path / "missing.jpg", root / b]
    recs = embed_images(paths, embedder=embedder, quiet=True)
    assert [r.index for r in recs] == [0, 1, 2, 3]
    assert [r.ok for r in recs] == [True, False, False, True]
    assert recs[1].reason == "no face found" and "not found" in recs[2].reason
    for r, p in zip((recs[0], recs[3]), (root / a, root / b)):
        assert r.embedding.shape == (EMBEDDING_DIM,) and r.embedding.dtype == np.float32
        assert np.isfinite(r.embedding).all() and r.face == 0
        w, h = PIL_Image.open(p).size
        left, top, right, bottom = r.box
        assert 0 <= left < right < w and 0 <= top < bottom < h
    # two different people: clearly less similar than a photo with itself
    e0, e3 = recs[0].embedding, recs[3].embedding
    cos = float(e0 @ e3 / np.linalg.norm(e0) / np.linalg.norm(e3))
    assert cos < 0.97
    with pytest.raises(ClustergError, match="single path"):
        embed_images(str(noise))


def test_all_faces_finds_both_faces_of_a_montage(tmp_path, face_images, embedder):
    root, items, truth = face_images
    (a, _), (b, _) = _photos_by_person(items, truth, 1, 2)
    ims = [PIL_Image.open(root / p).convert("RGB") for p in (a, b)]
    h = max(im.height for im in ims)
    ims = [im.resize((round(im.width * h / im.height), h)) for im in ims]
    canvas = PIL_Image.new("RGB", (sum(im.width for im in ims), h))
    canvas.paste(ims[0], (0, 0))
    canvas.paste(ims[1], (ims[0].width, 0))
    canvas.save(tmp_path / "two.jpg", quality=95)
    recs = embed_images([tmp_path / "two.jpg"], all_faces=True, embedder=embedder, quiet=True)
    assert len(recs) == 2 and all(r.ok for r in recs)
    assert [r.face for r in recs] == [0, 1]
    areas = [(r.box[2] - r.box[0]) * (r.box[3] - r.box[1]) for r in recs]
    assert areas[0] >= areas[1]  # largest first
    centres = sorted((r.box[0] + r.box[2]) / 2 for r in recs)
    assert centres[0] < ims[0].width < centres[1]  # one face in each half
    one = embed_images([tmp_path / "two.jpg"], embedder=embedder, quiet=True)
    assert len(one) == 1 and one[0].box == recs[0].box


# ----------------------------------------------------------------------------- clustering functions


def test_default_threshold_grows_with_n():
    for method in AUTO_THRESHOLDS:
        ts = [default_threshold(n, method) for n in (0, 1, 10, 100, 1000, 10**4, 10**6, 10**9)]
        assert all(0.9 <= t <= 0.975 for t in ts)
        assert all(b >= a for a, b in zip(ts, ts[1:])) and ts[-2] > ts[2]
    assert math.isclose(default_threshold(1000, "knn-cc") - default_threshold(1000, "infomap"), 0.01)
    with pytest.raises(ClustergError):
        default_threshold(10, "kmeans")
    with pytest.raises(ClustergError):
        default_threshold(-1)


def test_cluster_faces_small_inputs():
    rng = np.random.default_rng(0)
    labels, _ = cluster_faces(np.zeros((0, 128), np.float32))
    assert labels.shape == (0,)
    labels, _ = cluster_faces(rng.normal(size=(1, 128)))
    assert labels.tolist() == [0]
    # three tight pairs: k is clamped to N and each pair is one cluster
    centres = rng.normal(size=(3, 128))
    x = np.repeat(centres, 2, axis=0) + 0.01 * rng.normal(size=(6, 128))
    for method in ("knn-cc", "infomap", None):
        labels, used = cluster_faces(x, method=method, k=50)
        assert labels.tolist() == [0, 0, 1, 1, 2, 2], (method, used)
    with pytest.raises(ClustergError, match="unknown method"):
        cluster_faces(x, method="nope")
    with pytest.raises(ClustergError):
        cluster_faces(x, threshold=3.0)
    with pytest.raises(ClustergError):
        cluster_faces(np.full((4, 128), np.nan))


# ----------------------------------------------------------------------------- the JSON pipeline


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_empty_list_writes_empty_list(tmp_path):
    inp = _write(tmp_path / "in.json", [])
    out = cluster_images(inp, tmp_path / "out.json", quiet=True)
    assert out == [] and json.loads((tmp_path / "out.json").read_text()) == []


@pytest.mark.parametrize("content, match", [("{not json", "not valid JSON"), ('{"img_path": "a.jpg"}', "JSON list"),
                                            ('["a.jpg"]', "entry 0")])
def test_malformed_input_json(tmp_path, content, match):
    (tmp_path / "in.json").write_text(content)
    with pytest.raises(ClustergError, match=match):
        cluster_images(tmp_path / "in.json", tmp_path / "out.json", quiet=True)
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(ClustergError, match="not found"):
        read_photo_list(tmp_path / "absent.json")


def test_output_never_overwrites_input(tmp_path):
    inp = _write(tmp_path / "in.json", [])
    before = inp.read_bytes()
    with pytest.raises(ClustergError, match="input"):
        cluster_images(inp, inp, quiet=True)
    with pytest.raises(ClustergError, match="input"):
        cluster_images(inp, tmp_path / "." / "in.json", quiet=True)
    with pytest.raises(ClustergError, match="does not exist"):
        cluster_images(inp, tmp_path / "no" / "out.json", quiet=True)
    with pytest.raises(ClustergError, match="unknown method"):
        cluster_images(inp, tmp_path / "out.json", method="nope", quiet=True)
    assert inp.read_bytes() == before
    # nor one of the photos; and a non-empty export folder is refused before any work
    photo = _noise_png(tmp_path / "p.png")
    photo_bytes = photo.read_bytes()
    listed = _write(tmp_path / "list.json", [{"img_path": "p.png"}])
    with pytest.raises(ClustergError, match="input"):
        cluster_images(listed, photo, quiet=True)
    assert photo.read_bytes() == photo_bytes
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ClustergError, match="not empty"):
        cluster_images(listed, tmp_path / "out.json", export_folders=tmp_path / "busy", quiet=True)
    assert not (tmp_path / "out.json").exists()


def test_pipeline_bad_photos_and_kept_keys(tmp_path, face_images, monkeypatch):
    root, items, truth = face_images
    chosen = _photos_by_person(items, truth, 2, 3)
    photos = tmp_path / "photos"
    photos.mkdir()
    entries = []
    for i, (p, ident) in enumerate(chosen):
        shutil.copy(root / p, photos / Path(p).name)
        entries.append({"id": i, "img_path": f"photos/{Path(p).name}", "tags": ["x"], "person": ident})
    _noise_png(photos / "noise.png")
    _truncated_jpeg(root / chosen[0][0], photos / "cut.jpg")
    entries.insert(1, {"img_path": "photos/noise.png", "id": "noise"})
    entries.insert(3, {"img_path": "photos/cut.jpg", "id": "cut"})
    entries.append({"img_path": "photos/missing.jpg", "id": "missing"})
    entries.append({"id": "no path"})
    entries.append({"img_path": str((photos / Path(chosen[-1][0]).name).resolve()), "id": "absolute",
                    "person": chosen[-1][1]})
    inp = _write(tmp_path / "list.json", entries)
    stamp = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in photos.iterdir()}
    in_bytes = inp.read_bytes()

    out = cluster_images(inp, tmp_path / "out.json", quiet=True)
    on_disk = json.loads((tmp_path / "out.json").read_text())
    assert on_disk == out and len(out) == len(entries)
    for e, o in zip(entries, out):
        assert list(o)[: len(e)] == list(e) and all(o[k] == v for k, v in e.items())  # keys kept, same order
        assert isinstance(o["cluster_id"], int)
    by_id = {o["id"]: o for o in out}
    assert by_id["noise"]["cluster_id"] == -1 and by_id["noise"]["reason"] == "no face found"
    assert by_id["cut"]["cluster_id"] == -1 and "unreadable" in by_id["cut"]["reason"]
    assert by_id["missing"]["cluster_id"] == -1 and "not found" in by_id["missing"]["reason"]
    assert by_id["no path"]["cluster_id"] == -1 and "img_path" in by_id["no path"]["reason"]
    good = [o for o in out if "person" in o]
    assert all(o["cluster_id"] >= 0 and "reason" not in o for o in good)
    # the same photo through an absolute path lands with its relative twin
    twin = [o for o in good if o["img_path"].endswith(Path(chosen[-1][0]).name)]
    assert len({o["cluster_id"] for o in twin}) == 1
    # three people, two photos each: ids are 0..C-1 and the grouping is far from random
    ids = sorted({o["cluster_id"] for o in good})
    assert ids == list(range(len(ids)))
    _, _, f = pairwise([o["person"] for o in good], [o["cluster_id"] for o in good])
    assert f >= 0.6
    # inputs untouched
    assert inp.read_bytes() == in_bytes
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in photos.iterdir()} == stamp

    # a rerun with another method reads every embedding from the cache
    cache = tmp_path / "list.json.embeddings.npz"
    assert cache.is_file()

    def no_model(*a, **k):
        raise AssertionError("the face model ran although the cache holds every photo")

    monkeypatch.setattr(FaceEmbedder, "detect", no_model)
    again = cluster_images(inp, tmp_path / "out2.json", method="knn-cc", quiet=True)
    assert [o["cluster_id"] < 0 for o in again] == [o["cluster_id"] < 0 for o in out]
    # a changed photo is embedded again
    os.utime(photos / Path(chosen[0][0]).name, ns=(1, 1))
    with pytest.raises(AssertionError, match="cache holds"):
        cluster_images(inp, tmp_path / "out3.json", quiet=True)
    monkeypatch.undo()
    # a corrupt cache is rebuilt, not fatal
    cache.write_bytes(b"garbage")
    cluster_images(inp, tmp_path / "out4.json", quiet=True)
    assert np.load(cache)["embeddings"].shape == (len(chosen), EMBEDDING_DIM)
    # an output fed back as input: cluster_id keeps its place, stale reasons do not linger
    fed = [dict(o) for o in out]
    fed[0]["reason"] = "stale"
    again = cluster_images(_write(tmp_path / "fed.json", fed), tmp_path / "out5.json", quiet=True)
    assert [list(o) for o in again] == [list(o) for o in out]
    assert [o["cluster_id"] for o in again] == [o["cluster_id"] for o in out]


def test_pipeline_all_faces_and_export(tmp_path, face_images):
    root, items, truth = face_images
    chosen = _photos_by_person(items, truth, 2, 2)
    entries = [{"img_path": str((root / p).resolve())} for p, _ in chosen]
    entries.append({"img_path": str(_noise_png(tmp_path / "noise.png"))})
    inp = _write(tmp_path / "in.json", entries)
    out = cluster_images(inp, tmp_path / "out.json", all_faces=True, export_folders=tmp_path / "review",
                         quiet=True)
    for o in out[:-1]:
        assert o["faces"] and o["faces"][0]["cluster_id"] == o["cluster_id"]
        for face in o["faces"]:
            assert len(face["box"]) == 4 and face["cluster_id"] >= 0
    assert out[-1]["cluster_id"] == -1 and "faces" not in out[-1]
    review = tmp_path / "review"
    links = sorted(review.rglob("*"))
    files = [p for p in links if p.is_symlink()]
    assert len(files) >= len(out)  # every photo at least once (a photo with 2 faces may show twice)
    assert (review / "unclustered" / "noise.png").is_symlink()
    for o in out[:-1]:
        folder = review / f"cluster_{o['cluster_id']:04d}"
        assert (folder / Path(o["img_path"]).name).resolve() == Path(o["img_path"]).resolve()
    with pytest.raises(ClustergError, match="not empty"):
        export_cluster_folders(out, tmp_path, review)
    n = export_cluster_folders(out, tmp_path, tmp_path / "copies", copy=True)
    copies = [p for p in (tmp_path / "copies").rglob("*") if p.is_file()]
    assert n == len(copies) and not any(p.is_symlink() for p in copies)


def test_acceptance_48_photos_of_8_people(tmp_path, face_images):
    """Every photo gets a cluster; pairwise F >= 0.9 with the defaults (chosen on CelebA train, not here)."""
    root, items, truth = face_images
    out = cluster_images(root / "input.json", tmp_path / "out.json", quiet=True)
    assert len(out) == len(items) == 48
    assert all(o["cluster_id"] >= 0 for o in out)
    p, r, f = pairwise([truth[o["img_path"]] for o in out], [o["cluster_id"] for o in out])
    assert f >= 0.9, (p, r, f)


def test_cli_images(tmp_path, face_images, capsys):
    from clusterg.cli.main import main
    root, items, truth = face_images
    chosen = _photos_by_person(items, truth, 2, 2)
    inp = _write(tmp_path / "in.json", [{"img_path": str(root / p)} for p, _ in chosen])
    rc = main(["images", str(inp), "-o", str(tmp_path / "out.json"), "--method", "knn-cc", "--threshold", "0.93",
               "--quiet"])
    assert rc == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert len(out) == 4 and all(o["cluster_id"] >= 0 for o in out)
    assert main(["images", str(inp), "-o", str(inp), "--quiet"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["images", str(inp), "-o", str(tmp_path / "o.json"), "--copy", "--quiet"]) == 2


# ----------------------------------------------------------------------------- agreement with the real data sets


def test_embeddings_reproduce_the_dlib_features_of_the_data_set(face_images, shared_data, embedder):
    """The photos are also in celeba6k, embedded by the same dlib pipeline: our vectors must match
    theirs far more closely than two photos of one person ever do (about 0.95)."""
    from clusterg.data.io import read_bin
    feats = shared_data / "celeba6k" / "features" / "all.bin"
    if not feats.is_file():
        pytest.skip(f"{feats} not present")
    ref = np.asarray(read_bin(feats, dim=128))
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    root, items, truth = face_images
    chosen = [p for p, _ in _photos_by_person(items, truth, 1, 4)]
    recs = embed_images([root / p for p in chosen], embedder=embedder, quiet=True)
    x = np.stack([r.embedding for r in recs])
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    best = (x @ ref.T).max(axis=1)
    assert (best > 0.99).all(), best
    again = embed_images([root / chosen[0]], embedder=embedder, quiet=True)[0].embedding
    np.testing.assert_array_equal(again, recs[0].embedding)  # deterministic


def test_default_threshold_is_near_optimal_on_held_out_identities(shared_set):
    """Infomap at default_threshold(N) (fitted on CelebA train) stays close to the best threshold
    of a grid on the dev split's identities, for small and mid-sized collections."""
    import importlib.util

    # faiss first: running infomap after importing the infomap package before faiss crashes
    from clusterg.cluster import make_clusterer
    from clusterg.knn import knn_search
    if importlib.util.find_spec("infomap") is None:
        pytest.skip("the infomap package is not installed")
    x, y = shared_set("celeba", "dev")
    rng = np.random.default_rng(5)
    ids = np.unique(y)
    grid = np.round(np.arange(0.90, 0.976, 0.005), 3)
    for n_ids, reps in ((8, 6), (100, 2)):
        f_default, f_grid = 0.0, np.zeros(len(grid))
        for _ in range(reps):
            sel = np.isin(y, rng.choice(ids, n_ids, replace=False))
            xs, ys = x[sel], y[sel]
            knn = knn_search(xs, min(20, len(xs)))
            t = default_threshold(len(xs), "infomap")
            f_default += pairwise(ys, make_clusterer("infomap", k=20, threshold=t).fit(xs, knn=knn).labels_)[2] / reps
            for i, g in enumerate(grid):
                f_grid[i] += pairwise(ys, make_clusterer("infomap", k=20, threshold=float(g)).fit(
                    xs, knn=knn).labels_)[2] / reps
        assert f_default >= f_grid.max() - 0.03, (n_ids, f_default, f_grid.max())
        assert f_default >= 0.85, (n_ids, f_default)


def test_interrupted_run_keeps_its_cache_and_writes_no_output(tmp_path, monkeypatch):
    for i in range(4):
        _noise_png(tmp_path / f"n{i}.png", seed=i)
    inp = _write(tmp_path / "in.json", [{"img_path": f"n{i}.png"} for i in range(4)])
    real, calls = FaceEmbedder.detect, []

    def detect_then_stop(self, rgb):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, rgb)

    monkeypatch.setattr(FaceEmbedder, "detect", detect_then_stop)
    with pytest.raises(KeyboardInterrupt):
        cluster_images(inp, tmp_path / "out.json", quiet=True)
    assert not (tmp_path / "out.json").exists()
    with np.load(tmp_path / "in.json.embeddings.npz") as z:
        assert len(z["keys"]) == 2 and list(z["reasons"]) == ["no face found"] * 2
    monkeypatch.undo()
    out = cluster_images(inp, tmp_path / "out.json", quiet=True)
    assert [o["reason"] for o in out] == ["no face found"] * 4
