"""The package's layers import only downwards (issue: one home per figure).

models -> data -> train -> runs -> analysis -> plots -> experiments -> CLI and notebooks:
each layer imports only from the layers the table below allows it. A new import that
reaches up (plots importing train, the CLI importing runs, ...) fails here, so the layering
cannot drift again. Imports inside functions count too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "resnetlab"

#: layer -> the layers it may import (besides itself). Leaf helpers: paper (the papers'
#: numbers), counting (parameters and FLOPs), paths (where the course lives).
ALLOWED: dict[str, set[str]] = {
    "paper": set(),
    "paths": set(),
    "models": set(),
    "counting": {"models"},
    "data": set(),
    "testing": {"data"},
    "train": {"models", "data"},
    "runs": {"models", "data", "train"},
    "analysis": {"models", "data", "train", "runs", "paper", "counting"},
    "plots": {"models", "analysis", "paper"},
    "experiments": {"models", "runs", "analysis", "plots", "paper", "counting", "paths"},
    "tools": {"models", "data", "train", "runs", "testing", "paths"},
    "cli": {"experiments", "tools"},
    "notebook": {"experiments", "plots", "paths"},
    "__main__": {"cli"},
    "__init__": set(),
}


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[tuple[str, int]]:
    """(layer, line) of every resnetlab module that ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = path.relative_to(PACKAGE.parent).with_suffix("").parts  # ("resnetlab", "runs", "config")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level])  # level 1: the enclosing package
                target = base + (node.module.split(".") if node.module else [])
                if not node.module:  # from . import plots
                    for alias in node.names:
                        found.add((".".join(target + [alias.name]), node.lineno))
                    continue
                found.add((".".join(target), node.lineno))
            elif node.module and node.module.startswith("resnetlab"):
                found.add((node.module, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("resnetlab"):
                    found.add((alias.name, node.lineno))
    out = set()
    for name, line in found:
        parts = name.split(".")
        if parts[0] == "resnetlab" and len(parts) > 1:
            out.add((parts[1], line))
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_reach_down(path):
    layer = _layer(path)
    assert layer in ALLOWED, f"{path}: layer {layer!r} is not in the layering table; add it on purpose"
    bad = sorted((dep, line) for dep, line in _imported_layers(path) if dep != layer and dep not in ALLOWED[layer])
    assert not bad, f"{path.relative_to(PACKAGE)} ({layer}) reaches up or sideways: " + ", ".join(
        f"{dep} (line {line})" for dep, line in bad)


def test_the_checker_sees_relative_and_lazy_imports(tmp_path, monkeypatch):
    """A test that could not fail would guard nothing: the parser finds every form."""
    pkg = tmp_path / "resnetlab"
    (pkg / "plots").mkdir(parents=True)
    (pkg / "plots" / "__init__.py").write_text("from .style import x\nfrom .. import models\n")
    (pkg / "plots" / "bad.py").write_text("import resnetlab.runs\ndef f():\n    from ..train import train\n"
                                          "    from . import style\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    assert {d for d, _ in _imported_layers(pkg / "plots" / "__init__.py")} == {"plots", "models"}
    assert {d for d, _ in _imported_layers(pkg / "plots" / "bad.py")} == {"runs", "train", "plots"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    """One job per module: under about 400 lines."""
    assert len(path.read_text().splitlines()) <= 400, f"{path.relative_to(PACKAGE)} has grown past 400 lines"
