"""packaging/: the desktop entry, the user-level installer, and what the bundle may leave out.

These need no bundle; tests/test_bundle.py checks a built one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from configparser import ConfigParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGING = REPO / "packaging"
sys.path.insert(0, str(PACKAGING))
import excludes  # noqa: E402


def desktop_entry(path: Path) -> dict[str, str]:
    parser = ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return dict(parser["Desktop Entry"])


def test_desktop_entry_opens_folders_with_the_icon():
    entry = desktop_entry(PACKAGING / "clipscape.desktop")
    assert entry["Exec"].endswith(" %F")          # several folders/files, as paths
    assert "inode/directory" in entry["MimeType"].split(";")
    assert entry["Icon"] == "clipscape" and entry["Type"] == "Application" and entry["Terminal"] == "false"


def test_desktop_entry_validates():
    validate = shutil.which("desktop-file-validate")
    if validate is None:
        pytest.skip("desktop-file-validate is not installed (apt-get install desktop-file-utils)")
    proc = subprocess.run([validate, str(PACKAGING / "clipscape.desktop")], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


@pytest.fixture
def fake_bundle(tmp_path) -> Path:
    """A bundle folder as packaging/build.py lays it out on Linux, with a stand-in executable."""
    bundle = tmp_path / "unpacked" / "clipscape"
    (bundle / "share").mkdir(parents=True)
    (bundle / "_internal").mkdir()
    exe = bundle / "clipscape"
    exe.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/../../ran-with\"\n")
    exe.chmod(0o755)
    shutil.copy(PACKAGING / "install-linux-bundle.sh", bundle / "install.sh")
    shutil.copy(PACKAGING / "clipscape.desktop", bundle / "share")
    shutil.copy(REPO / "resources" / "clipscape.svg", bundle / "share")
    (bundle / "share" / "clipscape-256.png").write_bytes(b"png")
    return bundle


def run_installer(bundle: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["/bin/sh", str(bundle / "install.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_install_into_xdg_folders_and_uninstall(fake_bundle, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = run_installer(fake_bundle, home)
    assert proc.returncode == 0, proc.stderr
    data = home / ".local" / "share"
    app = data / "clipscape" / "app"
    entry_path = data / "applications" / "clipscape.desktop"
    assert (app / "clipscape").is_file() and (app / "install.sh").is_file()
    assert os.readlink(home / ".local" / "bin" / "clipscape") == str(app / "clipscape")
    entry = desktop_entry(entry_path)
    assert entry["Exec"] == f'"{app / "clipscape"}" %F'
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "clipscape.svg").is_file()
    assert (data / "icons" / "hicolor" / "256x256" / "apps" / "clipscape.png").is_file()
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry_path)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    # the installed entry runs the installed copy with the folder, as a file manager would
    exec_line = entry["Exec"].replace("%F", "'/photos/my trip'")
    subprocess.run(["/bin/sh", "-c", exec_line], check=True, timeout=30)
    assert (tmp_path / "home" / ".local" / "share" / "ran-with").read_text().strip() == "/photos/my trip"

    proc = run_installer(app, home, "uninstall")
    assert proc.returncode == 0, proc.stderr
    assert not app.exists() and not entry_path.exists() and not (home / ".local" / "bin" / "clipscape").exists()
    assert not (data / "icons" / "hicolor" / "scalable" / "apps" / "clipscape.svg").exists()
    assert fake_bundle.is_dir(), "uninstall removes the installed copy, not the folder it came from"


def test_install_here_runs_the_bundle_where_it_is(fake_bundle, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    assert run_installer(fake_bundle, home, "--here").returncode == 0
    entry = desktop_entry(home / ".local" / "share" / "applications" / "clipscape.desktop")
    assert entry["Exec"] == f'"{fake_bundle / "clipscape"}" %F'
    assert not (home / ".local" / "share" / "clipscape" / "app").exists()


def test_installer_refuses_to_run_outside_a_bundle(tmp_path):
    script = tmp_path / "install.sh"
    shutil.copy(PACKAGING / "install-linux-bundle.sh", script)
    proc = subprocess.run(["/bin/sh", str(script)], env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "bundle folder" in proc.stderr


def test_exclusions_are_never_imported_by_the_app(tmp_path):
    """What packaging/excludes.py leaves out of the bundle is not loaded by encode, classify, search,
    UMAP or the window's modules (torch probes for triton and does without it; sklearn imports
    pandas where it is installed, as it is in the test venv for Ray Data, inside a try that does
    without it, which is what the bundle has)."""
    modules = sorted({m for e in excludes.EXCLUSIONS for m in e.modules} - {"triton", "pandas"})
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from clipscape.models.encoder import ModelSpec, load_encoder
        from clipscape.models.zeroshot import zero_shot
        from clipscape.models.projection import umap_2d
        from clipscape.models.search import text_scores
        import clipscape.app.main_window, clipscape.app.welcome, clipscape.models.selftest
        enc = load_encoder(ModelSpec.parse("demo"), device="cpu")
        emb = np.random.default_rng(0).normal(size=(40, enc.dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        zero_shot(emb, enc, ["circle", "star"], ensemble=False)
        umap_2d(emb)
        loaded = [m for m in {modules!r} if m in sys.modules]
        print("LOADED", loaded)
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "LOADED []"


def test_exclusions_apply_per_platform():
    names = {e.name for e in excludes.active("linux")}
    assert "CUDA libraries torch never loads" in names and "triton" in names
    assert "CUDA libraries torch never loads" not in {e.name for e in excludes.active("darwin")}
    assert excludes.active("linux", disabled=True) == []
    for e in excludes.EXCLUSIONS:
        assert e.why and (e.modules or e.files)


# --- numba in the bundle (packaging/clipscape_frozen_numba.py): no bundle needed ------------------
import clipscape_frozen_numba as frozen_numba  # noqa: E402


def test_numba_target_is_x86_64_v3_only_where_the_cpu_has_all_of_it():
    v3 = {name: True for name in frozen_numba.X86_64_V3}
    env: dict[str, str] = {}
    assert frozen_numba.choose_target(env, {**v3, "avx512f": True}) == "x86-64-v3"
    assert env == {"NUMBA_CPU_NAME": "x86-64-v3", "NUMBA_CPU_FEATURES": ""}
    env = {}
    assert frozen_numba.choose_target(env, {**v3, "avx2": False}) is None and env == {}   # an older CPU: native
    env = {"NUMBA_CPU_NAME": "generic"}                                                    # the user's choice wins
    assert frozen_numba.choose_target(env, v3) is None and env == {"NUMBA_CPU_NAME": "generic"}


def test_the_shipped_numba_cache_is_copied_once_per_build(tmp_path):
    shipped, user = tmp_path / "numba_cache", tmp_path / "user"
    (shipped / "umap").mkdir(parents=True)
    (shipped / "umap" / "umap_.f-1.py311.nbi").write_bytes(b"index")
    (shipped / "umap" / "umap_.f-1.py311.1.nbc").write_bytes(b"code")
    assert frozen_numba.seed_user_cache(str(shipped), str(user)) == 0        # no BUILD: nothing shipped
    (shipped / "BUILD").write_text("0.1.0-a\n")
    (user / "umap").mkdir(parents=True)
    (user / "umap" / "umap_.f-1.py311.nbi").write_bytes(b"an older build's index")
    assert frozen_numba.seed_user_cache(str(shipped), str(user)) == 2
    assert (user / "umap" / "umap_.f-1.py311.nbi").read_bytes() == b"index"
    assert (user / ".seeded-0.1.0-a").is_file() and not list(user.rglob("*.tmp"))
    (user / "umap" / "umap_.f-1.py311.nbi").write_bytes(b"compiled here since")
    assert frozen_numba.seed_user_cache(str(shipped), str(user)) == 0        # once per build
    assert (user / "umap" / "umap_.f-1.py311.nbi").read_bytes() == b"compiled here since"
    (shipped / "BUILD").write_text("0.1.0-b\n")                               # a new build seeds again
    assert frozen_numba.seed_user_cache(str(shipped), str(user)) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert frozen_numba.seed_user_cache(str(shipped), str(blocker / "numba")) == 0   # unwritable: no error


def test_the_numba_hook_is_installed_in_the_umap_child_too(monkeypatch, tmp_path):
    """The spawned UMAP child inherits the window's NUMBA_CACHE_LOCATOR_CLASSES (ours): the hook goes in
    there as well (where numba is imported); a user's own numba settings turn it off."""
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    parent = {"CLIPSCAPE_NUMBA_CACHE": str(tmp_path)}
    assert frozen_numba.install(parent)
    child = dict(parent)
    assert frozen_numba.install(child) and child == parent
    assert sum(isinstance(f, frozen_numba._FirstImport) for f in sys.meta_path) == 2
    assert not frozen_numba.install({"NUMBA_CACHE_DIR": str(tmp_path)})
    assert not frozen_numba.install({"NUMBA_CACHE_LOCATOR_CLASSES": "InTreeCacheLocator"})
