"""Folders handed to the running app by the desktop rather than on the command line.

macOS gives an app bundle no argv for a folder dropped on its Dock icon or opened with "Open
With ▸ Clipscape" (at launch or later): Qt turns the Apple Event into a ``QFileOpenEvent`` sent
to the QApplication. This filter catches them and opens the paths in the window. Several items
dropped at once arrive as one event each, within a few milliseconds; they are gathered for
GATHER_MS and opened together, as a drop on the window opens them.

Linux (a desktop entry's ``%F``) and Windows (a folder dragged onto Clipscape.exe) pass paths
as arguments instead; app/launch.py opens those.
"""
from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication

GATHER_MS = 150


class Opens(Protocol):
    def open_paths(self, paths: list[str]) -> bool: ...


class FileOpenFilter(QObject):
    """An event filter on the QApplication: QFileOpenEvent paths → ``target.open_paths``."""

    def __init__(self, target: Opens, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.target = target
        self.pending: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(GATHER_MS)
        self._timer.timeout.connect(self.flush)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            path = event.file() or event.url().toLocalFile()
            if path:
                if path not in self.pending:
                    self.pending.append(path)
                self._timer.start()
                return True
        return super().eventFilter(watched, event)

    def flush(self) -> None:
        """Open what has arrived (the timer does this GATHER_MS after the last event)."""
        self._timer.stop()
        paths, self.pending = self.pending, []
        if paths:
            self.target.open_paths(paths)


def install(app: QApplication, target: Opens) -> FileOpenFilter:
    """Route the app's QFileOpenEvents to ``target`` (the filter lives as long as ``target`` if it is a QObject)."""
    file_filter = FileOpenFilter(target, target if isinstance(target, QObject) else app)
    app.installEventFilter(file_filter)
    return file_filter
