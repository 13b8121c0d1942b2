"""Sphinx configuration for the clusterg documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors;
no network access is needed). Besides Sphinx's own extensions the site uses the
furo theme and sphinx-gallery (the ``docs`` extra): every script in ``examples/``
is rendered as a gallery page with its code and a download link. The scripts are
not executed during the build (they need the real data sets or minutes of CPU;
``tests/test_examples.py`` runs each of them); a script named ``plot_*.py`` would
be run and its output and figures shown.

Two pieces of text are filled in at build time, so pages and public names
added later never leave the docs stale or the build broken:

* ``@TOPIC_PAGES@`` in ``index.rst`` becomes the list of every top-level page
  other than index, install and api (metrics, GCN-V/E, Ada-NETS, synthetic
  data, benchmarks, ... in a preferred order, then any other page by name);
* ``@TUTORIAL_PAGES@`` becomes every page in ``tutorials/`` (photos, MS1M,
  training, PyG first);
* ``@API@`` in ``api.rst`` becomes one section per public package (see
  ``API_PACKAGES``) with an autosummary table and the autodoc entries of every
  name in its ``__all__``, plus a section for each non-private sub-module
  whose ``__all__`` holds names its package does not re-export.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # document the checkout, installed or not

import clusterg  # noqa: E402

project = "clusterg"
author = "the clusterg authors"
copyright = "2026, the clusterg authors"
release = clusterg.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",   # run only plot_*.py scripts; the others are shown, not run
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "write_computation_times": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}
autosummary_generate = False  # tables only; the full entries come from automodule in api.rst
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = False  # show default values, not source text (robust to any formatting)
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields, so dataclass fields are not described twice

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path: list[str] = []
exclude_patterns += ["auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
html_theme = "furo"  # long code lines scroll inside their block instead of being clipped
html_title = f"clusterg {release}"
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# Fixed pages (linked from their own toctrees) and the preferred order of the others.
FIXED_PAGES = {"index", "install", "api"}
PREFERRED_ORDER = ["defaults", "knn", "baselines", "metrics", "gcn_ve", "ada_nets", "synthetic", "benchmarks"]
TUTORIAL_ORDER = ["tutorials/photos", "tutorials/ms1m", "tutorials/train", "tutorials/pyg"]


def topic_pages(docs: Path = DOCS) -> list[str]:
    """Docnames of the top-level pages outside the fixed set, preferred ones first.

    Pages in sub-folders are left to the page that owns the folder (``tutorials/`` has
    its own list).
    """
    names = [p.stem for p in sorted(docs.glob("*.rst")) if p.stem not in FIXED_PAGES]
    rank = {n: i for i, n in enumerate(PREFERRED_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def tutorial_pages(docs: Path = DOCS) -> list[str]:
    """Docnames of the pages in ``tutorials/``, the main four first."""
    names = [p.relative_to(docs).with_suffix("").as_posix() for p in sorted((docs / "tutorials").glob("*.rst"))]
    rank = {n: i for i, n in enumerate(TUTORIAL_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


API_PACKAGES = ["clusterg", "clusterg.knn", "clusterg.linkage", "clusterg.metrics", "clusterg.cluster",
                "clusterg.data", "clusterg.transforms", "clusterg.nn", "clusterg.models", "clusterg.train",
                "clusterg.images", "clusterg.library"]
API_SKIP = {"clusterg.cli"}  # documented through ``clusterg --help``


def _public_names(module) -> list[str]:
    return [n for n in getattr(module, "__all__", [])
            if not n.startswith("_") and not inspect.ismodule(getattr(module, n, None))]


def api_sections() -> list[tuple[str, list[str]]]:
    """``(module, public names)`` for every module the API page documents, in page order."""
    out: list[tuple[str, list[str]]] = []
    for pkg in API_PACKAGES:
        mod = importlib.import_module(pkg)
        names = _public_names(mod)
        out.append((pkg, names))
        for info in pkgutil.iter_modules(getattr(mod, "__path__", [])):
            sub = f"{pkg}.{info.name}"
            if info.name.startswith("_") or sub in API_PACKAGES or sub in API_SKIP:
                continue
            extra = [n for n in _public_names(importlib.import_module(sub)) if n not in names]
            if extra:
                out.append((sub, extra))
    return out


def _entries(module: str, names: list[str]) -> list[str]:
    """Per-name autodoc directives, for a module that cannot get a module directive of its own."""
    mod = importlib.import_module(module)
    out = [f".. currentmodule:: {module}", ""]
    for n in names:
        obj = getattr(mod, n, None)
        if inspect.isclass(obj):
            out += [f".. autoclass:: {n}", "   :members:", ""]
        elif callable(obj):
            out += [f".. autofunction:: {n}", ""]
        else:
            out += [f".. autodata:: {n}", ""]
    return out


def api_rst() -> str:
    parts = []
    documented: set[str] = set()
    for module, names in api_sections():
        title = f"``{module}``"
        parts += [title, "-" * len(title), ""]
        mod = importlib.import_module(module)
        # classes and functions go through automodule (methods included); constants through
        # autodata, which finds their value even when re-exported from a sub-module
        code = [n for n in names if callable(getattr(mod, n, None))]
        data = [n for n in names if n not in code]
        if code:  # constants stay out of the table: autosummary would summarise their type's docstring
            parts += [f".. currentmodule:: {module}", "", ".. autosummary::", "   :nosignatures:", ""]
            parts += [f"   {n}" for n in code]
            parts += [""]
        if module in documented:
            # a package re-exports a function under this sub-module's own name (e.g.
            # ``clusterg.linkage.tree_deduction``): a module entry would clash with it
            parts += _entries(module, names)
            continue
        parts += [f".. automodule:: {module}"]
        parts += [f"   :members: {', '.join(code)}", "   :undoc-members:"] if code else ["   :no-members:"]
        parts += [""]
        for n in data:
            parts += [f".. autodata:: {module}.{n}", ""]
        documented.update(f"{module}.{n}" for n in names)
    return "\n".join(parts)


def _data_docstring(app, what, name, obj, options, lines) -> None:
    """A constant has no docstring of its own: autodoc would show its type's (``dict``,
    ``tuple``...). Use the ``#:`` comment where the constant is defined instead, found in
    the sub-modules of the package that re-exports it; otherwise show nothing."""
    if what not in ("data", "attribute") or not lines:
        return
    type_doc = inspect.getdoc(type(obj))
    if not type_doc or "\n".join(lines).strip() != type_doc.strip():
        return
    from sphinx.pycode import ModuleAnalyzer
    module_name, attr = name.rsplit(".", 1)
    found: list[str] = []
    try:
        module = importlib.import_module(module_name)
        candidates = [module_name] + [f"{module_name}.{m.name}"
                                      for m in pkgutil.iter_modules(getattr(module, "__path__", []))]
        for cand in candidates:
            if getattr(importlib.import_module(cand), attr, None) is obj:
                found = list(ModuleAnalyzer.for_module(cand).find_attr_docs().get(("", attr), []))
                if found:
                    break
    except Exception:  # no comment to be found: an empty description beats a wrong one
        found = []
    lines[:] = found


def _gallery_title(docname: str, text: str) -> str:
    """A gallery page gets the first line of its script's docstring as its title (the scripts keep
    plain docstrings, which their ``--help`` prints)."""
    label = f".. _sphx_glr_{docname.replace('/', '_')}.py:"
    head, sep, rest = text.partition(label + "\n")
    if not sep:
        return text
    body = rest.lstrip("\n")
    first, _, body = body.partition("\n")
    if not first.strip() or (body.lstrip("\n").startswith(("===", "---"))):
        return text
    title = first.strip().rstrip(".")
    return f"{head}{label}\n\n{title}\n{'=' * len(title)}\n{body}"


def _fill(app, docname: str, source: list[str]) -> None:
    text = source[0]
    if docname.startswith("auto_examples/") and docname != "auto_examples/index":
        text = _gallery_title(docname, text)
    if "@TOPIC_PAGES@" in text:
        pages = topic_pages(Path(app.srcdir))
        text = text.replace("@TOPIC_PAGES@", "\n   ".join(pages))
    if "@TUTORIAL_PAGES@" in text:
        text = text.replace("@TUTORIAL_PAGES@", "\n   ".join(tutorial_pages(Path(app.srcdir))))

    if re.search(r"^@API@[ \t]*$", text, flags=re.M):
        text = re.sub(r"^@API@[ \t]*$", lambda m: api_rst(), text, count=1, flags=re.M)
    source[0] = text


def _skip_sklearn_plumbing(app, what, name, obj, skip, options):
    """scikit-learn generates ``set_fit_request`` & co. on every estimator; their docstrings point into
    scikit-learn's own docs (glossary, user guide), so they are left to scikit-learn's documentation."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_plumbing)
    app.connect("source-read", _fill)
    app.connect("autodoc-process-docstring", _data_docstring)
    return {"parallel_read_safe": True}
