"""The layering rules: ``clipscape.models`` never imports Qt (or the ``clipscape.app`` GUI package),
and everything imports through the one installed package, ``clipscape``.

Independent checks: a static scan of every import statement, the modules actually loaded when
every models module is imported, the import-linter contracts in pyproject.toml, and what a
built wheel installs.
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
QT = frozenset({"PySide6", "PySide2", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "qtpy", "shiboken6"})
GUI_PACKAGE = "clipscape.app"
OLD_TOP_LEVEL = frozenset({"app", "models", "resources"})  # the source folders' names; never import names
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
        found += [(node.lineno, name) for name in names if is_forbidden(name)]
    return sorted(found, key=lambda item: item[0])  # by line; same-line names keep their order


def is_forbidden(name: str) -> bool:
    """A Qt binding, the GUI package, or a bare source-folder name (which only works from a checkout)."""
    top = name.split(".")[0]
    return top in QT or top in OLD_TOP_LEVEL or name == GUI_PACKAGE or name.startswith(GUI_PACKAGE + ".")


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
    ("from clipscape.app.main_window import MainWindow", [(1, "clipscape.app.main_window")]),
    ("import clipscape.app", [(1, "clipscape.app")]),
    ("from models.store import EmbeddingStore", [(1, "models.store")]),
    ("from .. import app", [(1, "app")]),
    ("import importlib\nqt = importlib.import_module('qtpy')", [(2, "qtpy")]),
    ("shiboken = __import__('shiboken6')", [(1, "shiboken6")]),
    ("import PySide2, PyQt6", [(1, "PySide2"), (1, "PyQt6")]),
    # allowed: similar-looking names, a module called app inside models, plain deps
    ("import numpy as np\nfrom clipscape.models.store import EmbeddingStore", []),
    ("from clipscape.resources import DEMO_MODEL\nimport clipscape.application_like", []),
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

def test_importing_every_models_module_loads_no_qt(tmp_path):
    script = textwrap.dedent(f"""
        import importlib, json, pkgutil, sys
        import clipscape.models
        names = sorted(m.name for m in pkgutil.walk_packages(clipscape.models.__path__, "clipscape.models."))
        for name in names:
            importlib.import_module(name)
        qt, gui = {sorted(QT)!r}, {GUI_PACKAGE!r}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in qt or m == gui or m.startswith(gui + "."))
        print(json.dumps({{"imported": names, "forbidden_loaded": loaded}}))
    """)
    # run outside the checkout, so only the installed package can be imported
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {f"clipscape.models.{p.stem}" for p in models_files() if p.stem != "__init__" and p.parent == MODELS}
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
    assert "the window's layers: views know the session, the session knows no view KEPT" in proc.stdout
    assert "the session and its jobs draw nothing KEPT" in proc.stdout
    assert "0 broken" in proc.stdout


def _copy_package(tmp_path) -> Path:
    """The code laid out as the installed package is, with the project's contracts beside it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = tmp_path / "src" / "clipscape"
    for name in ("models", "app", "resources"):
        shutil.copytree(REPO / name, package / name, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return package


def test_import_linter_contract_catches_a_violation(tmp_path):
    """The same contract on a copy of the code with one Qt import added must fail."""
    package = _copy_package(tmp_path)
    (package / "models" / "_sneaky.py").write_text("from PySide6 import QtCore\n")
    proc = lint_imports(tmp_path, env_path=tmp_path / "src")
    assert proc.returncode != 0, proc.stdout
    assert "BROKEN" in proc.stdout and "clipscape.models._sneaky -> PySide6" in proc.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("session", "from clipscape.app import gallery", "views know the session, the session knows no view BROKEN"),
    ("gallery", "from clipscape.app.map import legend", "views know the session, the session knows no view BROKEN"),
    ("tasks", "import pyqtgraph", "the session and its jobs draw nothing BROKEN"),
])
def test_window_layer_contracts_catch_a_violation(tmp_path, module, line, broken):
    """A session that reads a widget, or one view that reads another, breaks the layers."""
    package = _copy_package(tmp_path)
    source = package / "app" / f"{module}.py"
    source.write_text(source.read_text() + f"\n{line}\n")
    proc = lint_imports(tmp_path, env_path=tmp_path / "src")
    assert proc.returncode != 0 and broken in proc.stdout, proc.stdout


def test_modules_stay_small():
    """The window is layout, menus and dialogs; no module in app/ grows into a second window."""
    sizes = {p.relative_to(REPO).as_posix(): len(p.read_text().splitlines()) for p in (REPO / "app").rglob("*.py")}
    assert sizes["app/main_window.py"] <= 350, sizes["app/main_window.py"]
    assert {name: n for name, n in sizes.items() if n > 500} == {}


# --- 4: one installed package --------------------------------------------------------------------

def test_source_files_import_through_the_package():
    """No file imports the source folders by their bare names (that works only from a checkout)."""
    files = [p for folder in ("app", "models", "resources", "tests", "packaging")
             for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts]
    problems = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            problems += [f"{path.relative_to(REPO)}:{node.lineno}: {n}" for n in names
                         if n and n.split(".")[0] in OLD_TOP_LEVEL]
    assert not problems, "import these through clipscape.:\n" + "\n".join(problems)


def test_installed_distribution_has_one_top_level_name():
    from importlib.metadata import packages_distributions

    owned = sorted(name for name, dists in packages_distributions().items() if "clipscape" in dists)
    assert owned == ["clipscape"]


@pytest.mark.slow
def test_wheel_installs_only_the_clipscape_package(tmp_path):
    """What `pip install .` puts in site-packages: one top-level name, with the bundled data."""
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("clipscape-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"clipscape"}
    top_level = [n for n in names if n.endswith("top_level.txt")]
    assert [zipfile.ZipFile(wheel).read(n).decode().split() for n in top_level] in ([], [["clipscape"]])
    for wanted in ("clipscape/app/launch.py", "clipscape/models/cli.py", "clipscape/resources/clipscape.svg",
                   "clipscape/resources/demo_model/open_clip_model.safetensors",
                   "clipscape/resources/demo_images/0000_red_circle_on_checkered.jpg"):
        assert wanted in names
