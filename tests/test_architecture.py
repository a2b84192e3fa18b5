"""The layering rule: ``models/`` never imports Qt (or the ``app`` GUI package).

Three independent checks: a static scan of every import statement, the modules actually loaded
when every models module is imported, and the import-linter contract in pyproject.toml.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
FORBIDDEN = frozenset({"PySide6", "PySide2", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy",
                       "shiboken6", "app"})
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def forbidden_imports(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path`` whose top-level package is in FORBIDDEN.

    Catches ``import X.Y``, ``from X import y``, relative imports that climb to the top level
    (``from .. import app``), and ``importlib.import_module("X")`` / ``__import__("X")`` with a
    literal name, wherever they appear (functions, try blocks, TYPE_CHECKING blocks).
    """
    package = list(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module]
            elif package[:max(0, len(package) - node.level + 1)]:
                names = []  # relative to a package in the repo (models.x), not a top-level name
            else:  # the dots climb to the top level: "from .. import app", "from ..app import x"
                names = [node.module] if node.module else [alias.name for alias in node.names]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _call_name(node.func) in
              ("import_module", "__import__")):
            names = [node.args[0].value]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in FORBIDDEN]
    return sorted(found, key=lambda item: item[0])  # by line; same-line names keep their order


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def models_files() -> list[Path]:
    return sorted(p for p in MODELS.rglob("*.py") if "__pycache__" not in p.parts)


# --- 1: static scan ---------------------------------------------------------------------------

def test_models_has_no_qt_import_statements():
    files = models_files()
    assert {"cli.py", "encoder.py", "search.py", "projection.py"} <= {p.name for p in files}
    problems = [f"{p.relative_to(REPO)}:{line}: imports {name}"
                for p in files for line, name in forbidden_imports(p)]
    assert not problems, "models/ must not import Qt or app:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("from PySide6 import QtCore", [(1, "PySide6")]),
    ("import os\nimport PyQt5.QtWidgets as w", [(2, "PyQt5.QtWidgets")]),
    ("def f():\n    try:\n        import pyqtgraph\n    except ImportError:\n        pass", [(3, "pyqtgraph")]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from superqt.utils import x", [(3, "superqt.utils")]),
    ("from app.main_window import MainWindow", [(1, "app.main_window")]),
    ("from .. import app", [(1, "app")]),
    ("import importlib\nqt = importlib.import_module('qtpy')", [(2, "qtpy")]),
    ("shiboken = __import__('shiboken6')", [(1, "shiboken6")]),
    ("import PySide2, PyQt6", [(1, "PySide2"), (1, "PyQt6")]),
    # allowed: similar-looking names, a module called app inside models, plain deps
    ("import numpy as np\nfrom models.store import EmbeddingStore", []),
    ("from . import app\nfrom .app import thing", []),
    ("import application\nimport qtconsole_like\nimport PySide6x", []),
    ("s = 'from PySide6 import QtCore'  # only a string", []),
])
def test_scanner_catches_violations(tmp_path, source, expected):
    bad = tmp_path / "models" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(textwrap.dedent(source) + "\n")
    assert forbidden_imports(bad, root=tmp_path) == expected


# --- 2: what importing every module really loads ------------------------------------------------

def test_importing_every_models_module_loads_no_qt():
    script = textwrap.dedent(f"""
        import importlib, json, pkgutil, sys
        import models
        names = sorted(m.name for m in pkgutil.walk_packages(models.__path__, "models."))
        for name in names:
            importlib.import_module(name)
        forbidden = {sorted(FORBIDDEN)!r}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
        print(json.dumps({{"imported": names, "forbidden_loaded": loaded}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {f"models.{p.stem}" for p in models_files() if p.stem != "__init__" and p.parent == MODELS}
    assert expected <= set(report["imported"]), "some models modules were not imported"
    assert report["forbidden_loaded"] == [], f"importing models/ loaded {report['forbidden_loaded']}"


# --- 3: the import-linter contract -------------------------------------------------------------

def lint_imports(cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.skip(f"import-linter is not installed ({LINT_IMPORTS} missing)")
    env = dict(os.environ)
    if env_path is not None:
        env["PYTHONPATH"] = str(env_path)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_import_linter_contract_is_kept():
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "models/ never imports Qt or the GUI KEPT" in proc.stdout
    assert "0 broken" in proc.stdout


def test_import_linter_contract_catches_a_violation(tmp_path):
    """The same contract on a copy of the code with one Qt import added must fail."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("models", "app"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    (tmp_path / "models" / "_sneaky.py").write_text("from PySide6 import QtCore\n")
    proc = lint_imports(tmp_path, env_path=tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "BROKEN" in proc.stdout and "models._sneaky -> PySide6" in proc.stdout
