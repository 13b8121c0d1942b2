"""What a new user meets first: the core install, the extras, the package metadata, a fast command line."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _py(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO)


def test_core_dependencies_cover_every_cluster_method():
    deps = " ".join(PYPROJECT["project"]["dependencies"])
    assert "infomap" in deps  # clusterg demo, --method infomap and ada-nets' Infomap linkage need it
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not any("infomap" in d for d in extras["faces"])
    for pkg in ("furo", "sphinx-gallery"):
        assert any(d.startswith(pkg) for d in extras["docs"]) and any(d.startswith(pkg) for d in extras["test"])


def test_metadata_license_and_package_data():
    meta = PYPROJECT["project"]
    assert meta["authors"] and meta["license"] == "Apache-2.0"  # project URLs wait for a public home
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["clusterg"]:
        assert list((REPO / "clusterg").glob(pattern)), f"package-data {pattern!r} matches nothing"


def test_version_and_help_import_neither_torch_nor_sklearn():
    code = ("import sys, contextlib, io\n"
            "from clusterg.cli.main import main\n"
            "for argv in (['--version'], ['--help'], ['cluster', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n"
            "            main(argv)\n"
            "        except SystemExit:\n"
            "            pass\n"
            "print(sorted(m for m in ('torch', 'torch_geometric', 'sklearn', 'faiss') if m in sys.modules))")
    res = _py(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", res.stdout


def test_images_without_the_faces_extra_fails_at_once_with_the_hint(tmp_path):
    photos = tmp_path / "photos.json"
    photos.write_text(json.dumps([{"img_path": "a.jpg"}]))
    code = ("import sys; sys.modules['dlib'] = None  # as if dlib-bin were not installed\n"
            "from clusterg.cli.main import main\n"
            "rc = main(sys.argv[1:])\n"
            "print('torch' in sys.modules)\n"
            "sys.exit(rc)")
    res = _py(code, "images", str(photos), "-o", str(tmp_path / "out.json"))
    assert res.returncode == 2, res.stderr
    assert 'pip install "clusterg[faces]"' in res.stderr and "dlib" in res.stderr
    assert res.stdout.strip() == "False"  # failed before loading the heavy modules
    assert not (tmp_path / "out.json").exists()


def test_global_options_before_and_after_the_sub_command(tmp_path):
    import numpy as np
    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(size=(5, 16)), 8, axis=0) + 0.2 * rng.normal(size=(40, 16))
    np.save(tmp_path / "x.npy", x.astype(np.float32))
    for argv in (["-q", "--json", "cluster"], ["cluster", "-q", "--json"], ["--json", "cluster", "--quiet"]):
        res = subprocess.run([sys.executable, "-m", "clusterg", *argv, str(tmp_path / "x.npy"), "--method", "knn-cc",
                              "--k", "5", "--threshold", "0.9", "-o", str(tmp_path / "p.meta")],
                             capture_output=True, text=True, timeout=300, cwd=REPO)
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        assert out["n_clusters"] == 5 and out["params"]["k"] == 5 and out["params"]["threshold"] == 0.9
        assert "it/s" not in res.stderr and "wrote" not in res.stderr  # quiet: no progress bars, no info lines
    res = subprocess.run([sys.executable, "-m", "clusterg", "cluster", str(tmp_path / "x.npy"), "--method", "knn-cc",
                          "--n-clusters", "5", "-o", str(tmp_path / "q.meta")], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert res.returncode == 2 and "'knn-cc' does not take n_clusters (--n-clusters)" in res.stderr
    assert not (tmp_path / "q.meta").exists()


def test_help_is_plain_text():
    for argv in ([], ["cluster"], ["images"], ["knn"]):
        res = subprocess.run([sys.executable, "-m", "clusterg", *argv, "--help"], capture_output=True, text=True,
                             timeout=120, cwd=REPO)
        assert res.returncode == 0 and "usage: clusterg" in res.stdout
        assert "``" not in res.stdout and ":class:" not in res.stdout and ":func:" not in res.stdout


def test_linkage_flag_reaches_ada_nets(shared_set, tmp_path):
    import numpy as np
    x, y = shared_set("celeba6k", "all")
    np.save(tmp_path / "x.npy", np.ascontiguousarray(x[y < 10]))
    res = subprocess.run([sys.executable, "-m", "clusterg", "--json", "-q", "cluster", str(tmp_path / "x.npy"),
                          "--method", "ada-nets", "--linkage", "cc", "-o", str(tmp_path / "p.meta")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["params"]["linkage"] == "cc"
    bad = subprocess.run([sys.executable, "-m", "clusterg", "cluster", str(tmp_path / "x.npy"), "--method", "ada-nets",
                          "--linkage", "ward", "-o", str(tmp_path / "q.meta")], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert bad.returncode == 2 and "linkage" in bad.stderr
