"""Build the one-folder Clipscape bundle for this platform: the one command.

    python packaging/build.py [--no-excludes] [--no-archive] [--dist DIR]

Run it with the Python of an environment where Clipscape and PyInstaller are installed
(``pip install -e . pyinstaller==6.22.0``); the torch in that environment is the torch in the
bundle (see packaging/README.md for CUDA, CPU-only and MPS builds). It

1. stages app/, models/, resources/ as the package ``clipscape`` (what ``pip install`` makes),
   leaving out the README screenshots and the scripts that generate the demo data;
2. renders the icon (packaging/make_icons.py);
3. runs PyInstaller on packaging/clipscape.spec;
4. on Linux, runs the frozen ``--self-test`` once to fill ``_internal/numba_cache`` with UMAP's
   compiled code (the first start of every user is then spared numba's compiling; see
   packaging/clipscape_frozen_numba.py), puts the desktop entry, icons and installer beside the
   executable and packs ``dist/clipscape-VERSION-linux-ARCH.tar.gz``; on macOS the result is ``dist/Clipscape.app``
   (zipped to ``dist/Clipscape-VERSION-macos-ARCH.zip``); on Windows ``dist/clipscape/``
   (zipped likewise);
5. prints, and writes to ``DIST/build-report.json``, the build time and the bundle's size.

``--no-excludes`` builds the baseline (nothing of packaging/excludes.py left out) into
``dist-baseline/``, which packaging/measure_excludes.py compares against.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYINSTALLER = "6.22.0"
LEAVE_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", "screenshot*.png", "make_*.py", "train.py")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-excludes", action="store_true", help="the baseline: leave nothing out (into dist-baseline/)")
    ap.add_argument("--no-archive", action="store_true", help="skip the .tar.gz / .zip")
    ap.add_argument("--dist", type=Path, default=None, help="output folder (default dist/ or dist-baseline/)")
    ap.add_argument("--no-numba-cache", action="store_true", help="ship no compiled UMAP code (Linux)")
    args = ap.parse_args(argv)
    _require_pyinstaller()
    started = time.perf_counter()
    tag = "baseline" if args.no_excludes else "bundle"
    dist = (args.dist or REPO / ("dist-baseline" if args.no_excludes else "dist")).resolve()
    work = REPO / "build" / f"pyinstaller-{tag}"
    stage = REPO / "build" / "bundle-src"
    icons = REPO / "build" / "icons"
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)

    stage_sources(stage)
    subprocess.run([sys.executable, str(HERE / "make_icons.py"), str(icons)], check=True)
    env = dict(os.environ, CLIPSCAPE_BUNDLE_SRC=str(stage), CLIPSCAPE_BUNDLE_ICONS=str(icons),
               CLIPSCAPE_VERSION=version, CLIPSCAPE_NO_EXCLUDES="1" if args.no_excludes else "0")
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--workpath", str(work), "--distpath", str(dist), str(HERE / "clipscape.spec")],
                   check=True, env=env, cwd=REPO)
    folder = dist / ("Clipscape.app" if sys.platform == "darwin" else "clipscape")
    numba_cache = None
    if sys.platform.startswith("linux"):
        if not args.no_numba_cache:
            numba_cache = ship_numba_cache(folder, version)
        add_desktop_files(folder, icons)
    frozen_s = time.perf_counter() - started
    archive = None if args.no_archive else make_archive(dist, folder, version)
    report = {"bundle": str(folder), "platform": f"{sys.platform}-{platform.machine()}",
              "torch": _torch_version(), "excludes": not args.no_excludes,
              "numba_cache": numba_cache, "build_seconds": round(frozen_s, 1), "bytes": tree_bytes(folder), "files": tree_files(folder),
              "archive": str(archive) if archive else None,
              "archive_bytes": archive.stat().st_size if archive else None,
              "archive_seconds": round(time.perf_counter() - started - frozen_s, 1) if archive else None}
    (dist / "build-report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"bundle: {folder} — {report['bytes'] / 1e9:.2f} GB in {report['files']} files, "
          f"built in {frozen_s / 60:.1f} min" + (f"; archive {archive.name} {archive.stat().st_size / 1e9:.2f} GB"
                                                 if archive else ""))
    return 0


def _require_pyinstaller() -> None:
    try:
        import PyInstaller
    except ImportError:
        sys.exit(f"PyInstaller is not installed here: {sys.executable} -m pip install pyinstaller=={PYINSTALLER}")
    if PyInstaller.__version__ != PYINSTALLER:
        print(f"warning: PyInstaller {PyInstaller.__version__}; the spec is tested with {PYINSTALLER}", file=sys.stderr)


def _torch_version() -> str:
    import torch

    return torch.__version__


def stage_sources(stage: Path) -> None:
    """app/, models/, resources/ laid out as the installed package clipscape.{app,models,resources}."""
    if stage.exists():
        shutil.rmtree(stage)
    for name in ("app", "models", "resources"):
        shutil.copytree(REPO / name, stage / "clipscape" / name, ignore=LEAVE_OUT)


def add_desktop_files(folder: Path, icons: Path) -> None:
    """What the installer needs, inside the bundle folder (so the .tar.gz is all a user needs)."""
    share = folder / "share"
    share.mkdir(exist_ok=True)
    shutil.copy(HERE / "clipscape.desktop", share / "clipscape.desktop")
    shutil.copy(REPO / "resources" / "clipscape.svg", share / "clipscape.svg")
    for png in sorted(icons.glob("clipscape-*.png")):
        shutil.copy(png, share / png.name)
    shutil.copy(HERE / "install-linux-bundle.sh", folder / "install.sh")
    (folder / "install.sh").chmod(0o755)


def ship_numba_cache(folder: Path, version: str) -> dict:
    """Run the frozen --self-test (in a clean environment and a throw-away HOME) with numba's cache in
    ``_internal/numba_cache``: the bundle then ships UMAP's compiled code, which the runtime hook
    copies into a user's cache on the first start (packaging/clipscape_frozen_numba.py).

    The code is compiled for the target the runtime hook picks on this machine (x86-64-v3 on any
    x86-64 CPU that has it), so it serves every machine that gets the same target. Only the UMAP
    child compiles anything, and the self-test runs it as the window does (same types, the exact-
    neighbour path of collections up to 4,096 images).
    """
    import tempfile
    import uuid

    cache = folder / "_internal" / "numba_cache"
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clipscape-numba-") as home:
        env = {"HOME": home, "PATH": "/usr/bin:/bin", "CLIPSCAPE_NUMBA_CACHE": str(cache)}
        proc = subprocess.run([str(folder / "clipscape"), "--self-test"], env=env, cwd=home,
                              capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"the frozen --self-test failed while filling the numba cache:\n{proc.stdout}{proc.stderr[-4000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    if not any(p.suffix == ".nbi" for p in files):
        sys.exit("the frozen --self-test cached no numba code: is the runtime hook's cache locator in place?")
    (cache / "BUILD").write_text(f"{version}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}\n")
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "target": _numba_target(), "self_test": report.get("self_test"), "seconds": round(time.perf_counter() - started, 1)}


def _numba_target() -> str:
    """The code generation target the runtime hook picks on this machine (as the frozen app does)."""
    import llvmlite.binding as ll

    sys.path.insert(0, str(HERE))
    from clipscape_frozen_numba import choose_target

    return choose_target({}, ll.get_host_cpu_features()) or f"native ({ll.get_host_cpu_name()})"


def make_archive(dist: Path, folder: Path, version: str) -> Path:
    arch = platform.machine().lower().replace("amd64", "x86_64")
    if sys.platform.startswith("linux"):
        target = dist / f"clipscape-{version}-linux-{arch}.tar.gz"
        with tarfile.open(target, "w:gz", compresslevel=6) as tar:
            tar.add(folder, arcname="clipscape")
        return target
    system = "macos" if sys.platform == "darwin" else "windows"
    base = dist / f"Clipscape-{version}-{system}-{arch}"
    if sys.platform == "darwin":   # ditto keeps the .app's symlinks and extended attributes
        subprocess.run(["ditto", "-c", "-k", "--keepParent", str(folder), f"{base}.zip"], check=True)
        return Path(f"{base}.zip")
    return Path(shutil.make_archive(str(base), "zip", root_dir=folder.parent, base_dir=folder.name))


def tree_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def tree_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


if __name__ == "__main__":
    sys.exit(main())
