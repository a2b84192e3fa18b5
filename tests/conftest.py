"""Shared fixtures: the bundled demo model, shapes-world folders, an isolated cache per test."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest_plugins = ["gui_support"]   # the real window's `settings` and `window` fixtures


@pytest.fixture(autouse=True)
def _collect_on_the_main_thread():
    """This process is a Qt application too: as in the window (app/gc_timer.py), cyclic garbage is
    collected on the main thread only, here between tests, so that no decode or encode worker of a
    later test ever destroys an earlier test's widgets (that aborted CI with a segfault)."""
    from clipscape.models import gc_policy

    gc_policy.pin()
    yield
    gc_policy.collect_due()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own embedding cache, and no test can reach the model hub."""
    monkeypatch.setenv("CLIPSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.clipscape-test.invalid")


@pytest.fixture(scope="session")
def demo_encoder():
    from clipscape.models.encoder import ModelSpec, load_encoder

    return load_encoder(ModelSpec.parse("demo"), device="cpu")


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory):
    """A small folder of shapes-world JPEGs: [(path, scene)], two of each colour × shape."""
    from clipscape.models.shapes_world import write_folder

    folder = tmp_path_factory.mktemp("shapes")
    return folder, write_folder(folder, 48, seed=7, size=160)


@pytest.fixture
def folder(tmp_path, shapes_folder):
    """A writable copy of the shapes folder (its 48 JPEGs) for a test to add to, change or delete from."""
    import shutil

    src, _ = shapes_folder
    dst = tmp_path / "photos"
    shutil.copytree(src, dst)
    return dst


def index_folder(folder, encoder, cache_dir, **kwargs):
    """Run the indexer to the end; return (collection, last progress)."""
    from clipscape.models.indexer import index, run
    from clipscape.models.store import EmbeddingStore

    seen = []
    with EmbeddingStore(cache_dir) as store:
        collection = run(index(folder, encoder, store, **kwargs), seen.append)
    return collection, seen[-1]


def run_unprivileged(argv, **kwargs):
    """subprocess.run(argv) without the power to ignore file permissions.

    As root (CI is), the command runs under ``capsh`` with CAP_DAC_OVERRIDE and friends dropped,
    so a folder with mode 0 or 0o555 stops it as it stops a user; otherwise it runs as it is.
    """
    import shlex
    import shutil
    import subprocess

    if os.geteuid() != 0:
        return subprocess.run(argv, **kwargs)
    capsh = shutil.which("capsh")
    if capsh is None:
        pytest.skip("running as root without capsh: cannot drop the power to ignore permissions")
    drop = "cap_dac_override,cap_dac_read_search,cap_fowner"
    return subprocess.run([capsh, f"--drop={drop}", "--", "-c", shlex.join(map(str, argv))], **kwargs)
