"""The package layout keeps its layers: inference code never imports the training code."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "clusterg"
#: layers on the inference path; ``clusterg.train`` may import them, never the reverse
INFERENCE_LAYERS = ["cluster", "nn", "images", "library", "models"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source`` (lazy ones inside functions
    included), with relative imports resolved as if the code were the module ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # ``from .. import train`` imports a sub-module by its name
            out += [(node.lineno, name)] + [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return out


def _imports_train(name: str) -> bool:
    return name == "clusterg.train" or name.startswith("clusterg.train.")


@pytest.mark.parametrize("src, module", [
    ("from ..train.gcn_v import load_gcn_v", "clusterg.cluster.gcn_v"),
    ("from .. import train", "clusterg.cluster.gcn_v"),
    ("import clusterg.train.checkpoint", "clusterg.nn.gcn_v"),
    ("from clusterg.train import load_checkpoint", "clusterg.images.pipeline"),
    ("def f():\n    from ...train import gcn_e", "clusterg.library.sub.mod"),
])
def test_checker_catches_every_spelling_of_a_train_import(src, module):
    assert any(_imports_train(n) for _, n in imported_modules(src, module)), src


def test_checker_resolves_sibling_imports_outside_train():
    names = [n for _, n in imported_modules("from ..models.checkpoint import packaged_weights\n"
                                            "from .base import BaseClusterer\nfrom . import _common",
                                            "clusterg.cluster.gcn_v")]
    assert names == ["clusterg.models.checkpoint", "clusterg.models.checkpoint.packaged_weights",
                     "clusterg.cluster.base", "clusterg.cluster.base.BaseClusterer",
                     "clusterg.cluster", "clusterg.cluster._common"]
    assert not any(_imports_train(n) for n in names + ["clusterg.training", "clusterg.trainer"])


@pytest.mark.parametrize("layer", INFERENCE_LAYERS)
def test_inference_layers_do_not_import_train(layer):
    files = sorted((PKG / layer).rglob("*.py"))
    assert files, f"clusterg/{layer} has no modules"
    bad = [f"{f.relative_to(PKG.parent)}:{line}: {name}" for f in files
           for line, name in imported_modules(f.read_text(encoding="utf-8"), _module_name(f), f.name == "__init__.py")
           if _imports_train(name)]
    assert not bad, "clusterg.train imported on the inference path:\n" + "\n".join(bad)
