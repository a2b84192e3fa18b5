"""The first run: the welcome dialog (offscreen), what it remembers, and the launcher around it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QPushButton

from clipscape.app import welcome
from clipscape.app.model_choice import DEFAULT, DEMO
from clipscape.app.settings import Settings
from clipscape.models import hub_cache
from clipscape.resources import DEMO_IMAGES


def never(*_args):
    raise AssertionError("the welcome dialog must not be shown")


@pytest.fixture
def fresh(tmp_path) -> Settings:
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


def click_when_shown(qtbot, name: str | None) -> list:
    """Click button ``name`` of the welcome dialog once it is up (None: close it); returns what was seen."""
    seen = []

    def act():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, welcome.WelcomeDialog):
            QTimer.singleShot(20, act)
            return
        seen.append({b.objectName(): b.text() for b in dialog.findChildren(QPushButton)})
        if name is None:
            dialog.reject()
        else:
            qtbot.mouseClick(dialog.findChild(QPushButton, name), Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, act)
    return seen


def test_hard_coded_default_model_matches_open_clip_and_the_catalogue():
    import open_clip

    from clipscape.app.model_picker import CATALOGUE
    from clipscape.models.weights import _candidates

    cfg = open_clip.get_pretrained_cfg(hub_cache.DEFAULT_MODEL, hub_cache.DEFAULT_PRETRAINED)
    repo, names = _candidates(cfg["hf_hub"])
    assert repo == hub_cache.DEFAULT_HF_REPO and tuple(names) == hub_cache.DEFAULT_WEIGHT_FILES
    assert (hub_cache.DEFAULT_MODEL, hub_cache.DEFAULT_PRETRAINED) == DEFAULT == CATALOGUE[0].choice
    assert hub_cache.DEFAULT_DOWNLOAD_MB == CATALOGUE[0].download_mb


def test_default_model_cached_looks_where_the_weights_resolver_looks(tmp_path):
    assert not hub_cache.default_model_cached(str(tmp_path))
    folder = tmp_path / ("models--" + hub_cache.DEFAULT_HF_REPO.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123abcd")
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    assert hub_cache.default_model_cached(str(tmp_path))
    from clipscape.models.weights import resolve

    assert resolve(hub_cache.DEFAULT_MODEL, hub_cache.DEFAULT_PRETRAINED, cache_dir=str(tmp_path)) == \
        snapshot / "open_clip_model.safetensors"


def test_welcome_offers_the_default_download_and_the_demo_and_remembers_the_demo(qtbot, fresh):
    seen = click_when_shown(qtbot, "useDemo")
    model, paths, demo = welcome.first_run(fresh, None, [], False, is_cached=lambda: False)
    assert seen and "605 MB" in seen[0]["useDefault"] and "demo" in seen[0]["useDemo"].lower()
    assert (model, paths, demo) == (DEMO, [str(DEMO_IMAGES)], True)   # no folder given: the demo photos
    assert fresh.has_model_choice() and fresh.model_choice(DEFAULT) == DEMO
    # asked once: the next start goes straight to the window
    assert welcome.first_run(fresh, None, [], False, ask=never, is_cached=lambda: False) == (None, [], False)


def test_welcome_default_is_remembered_and_the_folder_given_is_kept(qtbot, fresh):
    click_when_shown(qtbot, "useDefault")
    assert welcome.first_run(fresh, None, ["/photos"], False, is_cached=lambda: False) == (None, ["/photos"], False)
    assert fresh.model_choice(DEMO) == DEFAULT


def test_closing_the_welcome_decides_nothing_and_downloads_nothing(qtbot, fresh):
    click_when_shown(qtbot, None)
    assert welcome.first_run(fresh, None, [], False, is_cached=lambda: False) == (DEMO, [], False)
    assert not fresh.has_model_choice()
    assert welcome.needs_welcome(fresh, lambda: False)


def test_no_welcome_when_a_model_is_given_chosen_or_cached(fresh):
    assert welcome.first_run(fresh, ("ViT-B-16", "x"), [], False, ask=never, is_cached=lambda: False)[0] == ("ViT-B-16", "x")
    assert welcome.first_run(fresh, None, [], False, ask=never, is_cached=lambda: True) == (None, [], False)
    assert not fresh.has_model_choice()   # a cached default needs no answer
    fresh.set_model_choice(("ViT-L-14", "laion2b_s32b_b82k"))
    assert welcome.first_run(fresh, None, [], False, ask=never, is_cached=lambda: False) == (None, [], False)


def test_a_broken_cache_lookup_still_asks(fresh):
    def broken():
        raise OSError("permission denied")

    assert welcome.needs_welcome(fresh, broken)


# --- the launcher: first run, then the window; folders from argv and from QFileOpenEvent -------

@pytest.fixture
def user_settings(tmp_path):
    """QSettings("Clipscape", "Clipscape") (what the launcher uses) in a temporary folder."""
    fmt, scope = QSettings.Format.NativeFormat, QSettings.Scope.UserScope
    QSettings.setPath(fmt, scope, str(tmp_path / "config"))
    yield QSettings("Clipscape", "Clipscape")
    QSettings.setPath(fmt, scope, os.environ.get("XDG_CONFIG_HOME", str(Path.home() / ".config")))


def launch(monkeypatch, argv):
    """app/launch.main(argv) up to the event loop; returns the window it opened."""
    from clipscape.app import launch as launcher

    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    before = set(QApplication.topLevelWidgets())
    assert launcher.main(argv) == 0
    (window,) = [w for w in QApplication.topLevelWidgets() if w not in before and hasattr(w, "session")]
    return window


def test_first_launch_asks_before_the_window_loads_anything(qtbot, monkeypatch, user_settings):
    monkeypatch.setattr(hub_cache, "default_model_cached", lambda cache_dir=None: False)
    monkeypatch.setattr(welcome, "default_model_cached", lambda cache_dir=None: False)
    click_when_shown(qtbot, "useDemo")
    window = launch(monkeypatch, [])
    try:
        assert (window.session.loading_choice or window.session.model_choice) == DEMO
        assert window.session.roots == [str(DEMO_IMAGES)] and window.session.class_list.names
        assert Settings(user_settings).model_choice(DEFAULT) == DEMO
    finally:
        window.close()


def test_a_folder_dragged_onto_the_exe_arrives_as_argv_and_opens(qtbot, monkeypatch, user_settings, tmp_path):
    """Windows (a folder dropped on Clipscape.exe) and Linux (a desktop entry's %F) pass argv."""
    Settings(user_settings).set_model_choice(DEMO)
    folder = tmp_path / "My Photos (2024)"
    folder.mkdir()
    window = launch(monkeypatch, [str(folder)])
    try:
        assert window.session.roots == [str(folder)] and "My Photos (2024)" in window.windowTitle()
    finally:
        window.close()


def test_the_launched_window_opens_a_folder_from_a_file_open_event(qtbot, monkeypatch, user_settings):
    """macOS: a folder dropped on the Dock icon is a QFileOpenEvent sent to the application."""
    from PySide6.QtGui import QFileOpenEvent

    from clipscape.app.file_open import GATHER_MS

    Settings(user_settings).set_model_choice(DEMO)
    window = launch(monkeypatch, [])
    try:
        assert window.session.roots == []
        QApplication.sendEvent(QApplication.instance(), QFileOpenEvent(str(DEMO_IMAGES)))
        qtbot.waitUntil(lambda: window.session.roots == [str(DEMO_IMAGES)], timeout=GATHER_MS + 2000)
        assert window.pages.currentIndex() == 1 and "demo_images" in window.windowTitle()
    finally:
        window.close()
