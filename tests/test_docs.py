"""The Sphinx documentation builds with warnings as errors and covers the public API."""
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

pytest.importorskip("sphinx", reason="sphinx is not installed (pip install \"clusterg[docs]\")")


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    doctrees = tmp_path_factory.mktemp("doctrees")
    res = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          "-d", str(doctrees), str(DOCS), str(out)], capture_output=True, text=True, timeout=900,
                         cwd=REPO)
    assert res.returncode == 0, f"sphinx-build -W failed:\n{res.stderr[-6000:]}"
    return out


def test_docs_build_without_warnings(html):
    for page in ["index", "install", "api", "tutorials/photos", "tutorials/ms1m", "tutorials/train",
                 "tutorials/pyg"]:
        assert (html / f"{page}.html").is_file(), page


def test_every_top_level_page_is_reachable(html):
    index = (html / "index.html").read_text(encoding="utf-8")
    for rst in DOCS.glob("*.rst"):
        if rst.stem != "index":
            assert f'href="{rst.stem}.html' in index, f"{rst.name} is not linked from the index"


def test_every_public_name_is_documented(html):
    sys.path.insert(0, str(DOCS))
    try:
        conf = importlib.import_module("conf")
        sections = conf.api_sections()
    finally:
        sys.path.remove(str(DOCS))
    api = (html / "api.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([\w.]+)"', api))
    missing = [f"{mod}.{name}" for mod, names in sections for name in names if f"{mod}.{name}" not in anchors]
    assert not missing, f"public names without an API entry: {missing}"
    for pkg in ("clusterg.knn", "clusterg.cluster", "clusterg.metrics", "clusterg.images"):
        assert pkg in dict(sections)


def test_no_stub_files_written_into_the_sources(html):
    assert not list(DOCS.glob("**/generated/*.rst")), "autosummary must not write stub files into docs/"
