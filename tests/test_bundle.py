"""The frozen bundle, run the way a user's machine runs it: no venv, a clean environment, read-only.

Build it first (``python packaging/build.py``, ~10 minutes); without a bundle at
dist/clipscape (or $CLIPSCAPE_BUNDLE) every test here is skipped, saying so. Each run gets
``env -i`` with a fresh HOME and PATH=/usr/bin:/bin (plus DISPLAY for the window), and sees the
bundle through a read-only bind mount in a private mount namespace (root, or an unprivileged
user namespace; where neither works the folder is made read-only with chmod). Whatever the
mechanism, the bundle's files are compared before and after: it must write nothing inside its
own folder.

- --self-test passes, frozen (the UMAP child is the bundle's executable started again);
- the compiled UMAP code the bundle ships is copied into the fresh HOME's cache and used as it is
  (nothing compiled) where this CPU gets the build's numba target, and found again from another folder;
- the window comes up under Xvfb, opens the demo folder, shows the UMAP map (the startup probe
  reports it), and a screenshot of the screen is not blank;
- the desktop entry, installed with install.sh into the fresh HOME, launched by ``gio launch``
  with a folder as a file manager does, opens a window titled with that folder.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("CLIPSCAPE_BUNDLE", REPO / "dist" / "clipscape")).resolve()
EXE = BUNDLE / "clipscape"
SCREEN = "1280x800x24"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle test (CI runs the others)"),
    pytest.mark.skipif(not EXE.is_file(), reason=f"no bundle at {BUNDLE}: build one with `python packaging/build.py` "
                                                 "(or point CLIPSCAPE_BUNDLE at one)"),
]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    """(a command prefix that shows the bundle read-only at the returned mount point, that mount point)."""
    mount = tmp_path_factory.mktemp("ro") / "clipscape"
    mount.mkdir()
    bind = 'mount --bind "$1" "$2" && mount -o remount,ro,bind "$2" && shift 2 && exec "$@"'
    for unshare in (["unshare", "-m"], ["unshare", "-rm"]) if shutil.which("unshare") else ():
        if unshare == ["unshare", "-m"] and os.geteuid() != 0:
            continue
        prefix = [*unshare, "sh", "-c", bind, "sh", str(BUNDLE), str(mount)]
        probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{mount}/.probe" 2>/dev/null && test -x "{mount}/clipscape"'],
                               capture_output=True)
        if probe.returncode == 0:
            before = snapshot(BUNDLE)
            yield prefix, mount
            assert snapshot(BUNDLE) == before, "the bundle wrote inside its own folder"
            return
    # no mount namespace here: chmod (which root ignores, hence the snapshot check as well)
    subprocess.run(["chmod", "-R", "a-w", str(BUNDLE)], check=True)
    before = snapshot(BUNDLE)
    try:
        yield [], BUNDLE
        assert snapshot(BUNDLE) == before, "the bundle wrote inside its own folder"
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(BUNDLE)], check=True)


def clean_env(home: Path, **extra: str) -> list[str]:
    home.mkdir(parents=True, exist_ok=True)
    return ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", *(f"{k}={v}" for k, v in extra.items())]


def written_under(home: Path) -> set[str]:
    """The top two levels of what a run wrote into HOME (.cache/numba, .config/Clipscape, …)."""
    return {"/".join(p.relative_to(home).parts[:2]) for p in home.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def xvfb():
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed")
    for number in range(140, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.1)
    wm = None
    if shutil.which("openbox"):   # a window manager draws title bars, with the window icon
        wm = subprocess.Popen(["openbox"], env={"DISPLAY": f":{number}", "HOME": "/tmp"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield f":{number}"
    for process in (wm, server):
        if process is not None:
            process.terminate()
            process.wait(10)


def test_frozen_self_test_passes_in_a_clean_environment(read_only, tmp_path):
    prefix, mount = read_only
    home = tmp_path / "home"

    def self_test(cwd: Path) -> dict:
        cwd.mkdir(exist_ok=True)
        proc = subprocess.run([*prefix, *clean_env(home), str(mount / "clipscape"), "--self-test"],
                              capture_output=True, text=True, timeout=900, cwd=cwd)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    report = self_test(tmp_path / "here")
    assert report["self_test"] == "passed" and report["frozen"] is True
    assert report["checks"]["project"]["umap_in_child_process"]
    assert report["executable"] == str(mount / "clipscape")
    assert written_under(home) <= {".cache/clipscape"}, written_under(home)   # numba's cache, in the user's folder
    user_cache = home / ".cache" / "clipscape" / "numba"
    cache = index_files(user_cache)
    assert cache, "numba cached nothing"
    shipped = index_files(BUNDLE / "_internal" / "numba_cache")
    if shipped:   # the bundle's compiled UMAP code was copied into the fresh HOME's cache on the first start
        assert list(user_cache.glob(".seeded-*")) and set(shipped) <= set(cache)
        if same_numba_target_as_the_build():   # and used as it is: numba compiled nothing, wrote no index
            assert {name: cache[name] for name in shipped} == shipped
    # started again from another folder, UMAP's compiled code is found again, not compiled anew
    again = self_test(tmp_path / "elsewhere")
    assert again["self_test"] == "passed"
    assert index_files(user_cache) == cache
    print(f"frozen self-test: {report['seconds']:.1f} s (UMAP {report['stage_seconds']['project']:.1f} s), "
          f"again from another folder {again['seconds']:.1f} s (UMAP {again['stage_seconds']['project']:.1f} s)")
    if not shipped:
        assert again["stage_seconds"]["project"] < report["stage_seconds"]["project"]


def index_files(cache: Path) -> dict[str, bytes]:
    """numba's index files under ``cache`` (relative name → content): an index changes when numba compiles."""
    return {str(p.relative_to(cache)): p.read_bytes() for p in sorted(cache.rglob("*.nbi"))}


def same_numba_target_as_the_build() -> bool:
    """Whether this CPU gets the code generation target the bundle's shipped numba code was compiled for
    (build-report.json beside the bundle says which; packaging/clipscape_frozen_numba.py picks it)."""
    try:
        built = json.loads((BUNDLE.parent / "build-report.json").read_text())["numba_cache"]["target"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    import llvmlite.binding as ll

    sys.path.insert(0, str(REPO / "packaging"))
    from clipscape_frozen_numba import choose_target

    return built == (choose_target({}, ll.get_host_cpu_features()) or f"native ({ll.get_host_cpu_name()})")


def screenshot(display: str, target: Path) -> int:
    """Save the screen; return how many colours it has (a blank screen has one)."""
    subprocess.run(["import", "-display", display, "-window", "root", str(target)], check=True, timeout=30)
    out = subprocess.run(["identify", "-format", "%k", str(target)], capture_output=True, text=True, timeout=30)
    return int(out.stdout.strip() or 0)


def test_frozen_window_opens_the_demo_folder_and_shows_the_umap_map(read_only, xvfb, tmp_path):
    prefix, mount = read_only
    home = tmp_path / "home"
    t0 = time.time()
    proc = subprocess.Popen([*prefix, *clean_env(home, DISPLAY=xvfb), str(mount / "clipscape"), "demo",
                             "--exit-after-map", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        line = proc.stdout.readline()           # the probe's report, printed when the UMAP map is shown
        colours = screenshot(xvfb, tmp_path / "frozen-window.png") if line else 0
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert line, err[-4000:]
    report = json.loads(line)
    assert proc.returncode == 0 and report["ok"], (report, err[-4000:])
    assert report["frozen"] and report["map_kind"] == "umap" and report["points"] == report["images"] == 96
    assert report["model"] == ["demo", None] and report["icon"] and "demo_images" in report["title"]
    assert report["errors"] == []
    window_s, map_s = report["window"] - t0, report["map"] - t0
    print(f"frozen: window on screen {window_s:.2f} s, UMAP map of the demo folder {map_s:.1f} s after launch")
    assert window_s < 15 and map_s < 180          # generous: the targets (3 s, 30 s) are measured in the README
    assert colours > 50, "the screenshot is blank"
    shutil.copy(tmp_path / "frozen-window.png", REPO / "build" / "frozen-window.png") if (REPO / "build").is_dir() else None
    assert written_under(home) <= {".cache/clipscape", ".config/Clipscape"}, written_under(home)


def wait_window(display: str, pattern: str, timeout: float = 60) -> tuple[str, int] | None:
    """(window id, pid) of the first window whose name matches ``pattern``, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["xdotool", "search", "--name", pattern], env={"DISPLAY": display},
                               capture_output=True, text=True).stdout.split()
        if found:
            pid = subprocess.run(["xdotool", "getwindowpid", found[0]], env={"DISPLAY": display},
                                 capture_output=True, text=True).stdout.strip()
            return found[0], int(pid or 0)
        time.sleep(0.5)
    return None


def stop(pid: int) -> None:
    """End the app and the children it started (the UMAP child, multiprocessing's resource tracker)."""
    if not pid:
        return
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for p in [pid, *map(int, children)]:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_desktop_entry_launches_the_bundle_with_a_folder(xvfb, tmp_path):
    """install.sh --here into a fresh HOME, then `gio launch ENTRY FOLDER` as a file manager's Open With:
    first the welcome (nothing chosen yet), then, with a model chosen, the window on that folder."""
    for tool in ("gio", "xdotool"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    home = tmp_path / "home"
    env = clean_env(home)
    subprocess.run([*env, "/bin/sh", str(BUNDLE / "install.sh"), "--here"], check=True, capture_output=True)
    entry = home / ".local" / "share" / "applications" / "clipscape.desktop"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout
    folder = tmp_path / "Holiday photos"
    shutil.copytree(BUNDLE / "_internal" / "clipscape" / "resources" / "demo_images", folder)

    def launch() -> None:
        with open(tmp_path / "app.log", "ab") as log:   # the app inherits these: no pipe to wait on
            subprocess.run([*clean_env(home, DISPLAY=xvfb), "gio", "launch", str(entry), str(folder)], check=True,
                           timeout=60, stdout=log, stderr=log)

    launch()
    welcome = wait_window(xvfb, "Welcome to Clipscape")
    assert welcome, "a first run shows the welcome: " + (tmp_path / "app.log").read_text()[-3000:]
    time.sleep(1)
    welcome_colours = screenshot(xvfb, tmp_path / "welcome.png")
    stop(welcome[1])
    time.sleep(1)
    config = home / ".config" / "Clipscape" / "Clipscape.conf"   # a returning user who chose the demo model
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[model]\nname=demo\npretrained=\n")

    launch()
    window = wait_window(xvfb, "Clipscape.*Holiday photos")
    assert window, "no window titled with the folder came up: " + (tmp_path / "app.log").read_text()[-3000:]
    time.sleep(25)   # model, encoding and the map (UMAP compiling in a fresh HOME)
    colours = screenshot(xvfb, tmp_path / "desktop-launch.png")
    stop(window[1])
    assert welcome_colours > 10 and colours > 50
    if (REPO / "build").is_dir():
        for name in ("welcome.png", "desktop-launch.png"):
            shutil.copy(tmp_path / name, REPO / "build" / name)
