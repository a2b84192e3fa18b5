"""QFileOpenEvent → the window (macOS Dock drops, Open With), and the startup probe used by the bundle test."""
from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import QEvent, QObject, QUrl
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication

from clipscape.app import file_open, startup_probe
from clipscape.models.indexer import Collection
from clipscape.resources import DEMO_IMAGES

from gui_support import grid, make_window


class Target(QObject):
    def __init__(self):
        super().__init__()
        self.opened: list[list[str]] = []

    def open_paths(self, paths):
        self.opened.append(list(paths))
        return True


def send(path_or_url) -> bool:
    event = QFileOpenEvent(path_or_url)
    QApplication.sendEvent(QApplication.instance(), event)
    return event


def test_file_open_events_are_gathered_into_one_open(qtbot):
    target = Target()
    filt = file_open.install(QApplication.instance(), target)
    try:
        send("/Volumes/Photos/2023")
        send(QUrl.fromLocalFile("/Volumes/Photos/2024"))
        send("/Volumes/Photos/2023")      # the same item twice opens once
        assert target.opened == []        # gathered for GATHER_MS
        qtbot.waitUntil(lambda: bool(target.opened), timeout=file_open.GATHER_MS + 2000)
        assert target.opened == [["/Volumes/Photos/2023", "/Volumes/Photos/2024"]]
    finally:
        QApplication.instance().removeEventFilter(filt)


def test_other_events_pass_through(qtbot):
    target = Target()
    filt = file_open.FileOpenFilter(target)
    assert not filt.eventFilter(QApplication.instance(), QEvent(QEvent.Type.User))
    assert filt.eventFilter(QApplication.instance(), QFileOpenEvent("/a"))
    filt.flush()
    assert target.opened == [["/a"]]


def test_without_the_filter_the_window_ignores_file_open(qtbot, settings):
    """What macOS users got before: a folder dropped on the Dock icon did nothing."""
    window = make_window(qtbot, settings)
    send(str(DEMO_IMAGES))
    qtbot.wait(file_open.GATHER_MS + 100)
    assert window.session.roots == []
    file_open.install(QApplication.instance(), window)
    send(str(DEMO_IMAGES))
    qtbot.waitUntil(lambda: window.session.roots == [str(DEMO_IMAGES)], timeout=file_open.GATHER_MS + 2000)
    window.close()


def test_startup_probe_reports_window_and_umap_map_then_closes(qtbot, settings, capsys, monkeypatch):
    window = make_window(qtbot, settings)
    exits = []
    monkeypatch.setattr(QApplication.instance(), "exit", lambda code=0: exits.append(code))
    probe = startup_probe.StartupProbe(QApplication.instance(), window)
    qtbot.waitUntil(lambda: probe.result["window"] is not None, timeout=10_000)
    assert probe.result["map"] is None and not exits    # up, no map yet
    s = window.session
    s._take_collection(Collection([f"/p/{i}.jpg" for i in range(25)], np.eye(25, 8, dtype=np.float32)))
    s._on_coords(grid(), "pca")
    qtbot.wait(3 * startup_probe.POLL_MS)
    assert probe.result["map"] is None                    # a PCA preview is not the UMAP map
    s._on_coords(grid(), "umap")
    qtbot.waitUntil(lambda: exits == [0], timeout=5000)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] and report["map_kind"] == "umap" and report["points"] == 25 and report["icon"]
    assert report["probe_started"] <= report["window"] <= report["map"]
    assert not window.isVisible()


def test_startup_probe_gives_up_with_exit_1(qtbot, settings, capsys, monkeypatch):
    window = make_window(qtbot, settings)
    exits = []
    monkeypatch.setattr(QApplication.instance(), "exit", lambda code=0: exits.append(code))
    startup_probe.StartupProbe(QApplication.instance(), window, timeout_s=0.0)
    qtbot.waitUntil(lambda: exits == [1], timeout=5000)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ok"] is False
