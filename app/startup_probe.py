"""``clipscape FOLDER --exit-after-map [SECONDS]``: a hidden switch for tests and benchmarks of a real start.

It watches the real window, started the ordinary way (the frozen bundle, or the venv's console
script), and prints one JSON line to stdout: when the window was first exposed on screen, when
the UMAP map of the opened folder was shown, how many points it has. Then it waits SECONDS
(default 0: time for a screenshot) and closes the window the ordinary way, and the process
exits 0; if no UMAP map comes within TIMEOUT_S it prints ``"ok": false`` with the status line
and exits 1. Times are ``time.time()`` epochs, so the caller subtracts its own start time.
"""
from __future__ import annotations

import json
import sys
import time

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

POLL_MS = 20
TIMEOUT_S = 300.0


class StartupProbe(QObject):
    """Polls the window (exposed? a UMAP map?) on the GUI thread; reports once, then closes it."""

    def __init__(self, app: QApplication, window, linger_s: float = 0.0, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(window)
        self.app, self.window, self.linger_s = app, window, linger_s
        self.started = time.time()
        self.deadline = self.started + timeout_s
        self.result: dict = {"probe_started": self.started, "window": None, "map": None}
        self.errors: list[str] = []
        window.session.errorRaised.connect(lambda title, text: self.errors.append(f"{title}: {text}"))
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    def _poll(self) -> None:
        now, w, s = time.time(), self.window, self.window.session
        handle = w.windowHandle()
        if self.result["window"] is None and w.isVisible() and handle is not None and handle.isExposed():
            self.result["window"] = now
        if s.map_kind == "umap" and s.coords is not None and s.collection is not None:
            self._report(True, now)
        elif now > self.deadline:
            self._report(False, None)

    def _report(self, ok: bool, map_at: float | None) -> None:
        self._timer.stop()
        s = self.window.session
        self.result.update({
            "ok": ok, "map": map_at, "map_kind": s.map_kind,
            "points": 0 if s.coords is None else int(len(s.coords)),
            "images": 0 if s.collection is None else len(s.collection),
            "model": list(s.model_choice), "device": getattr(s.encoder, "device", None),
            "title": self.window.windowTitle(), "icon": not self.window.windowIcon().isNull(),
            "status": s.status, "errors": self.errors, "frozen": bool(getattr(sys, "frozen", False)),
        })
        if sys.stdout is not None:
            print(json.dumps(self.result), flush=True)
        QTimer.singleShot(int(self.linger_s * 1000), lambda: self._finish(0 if ok else 1))

    def _finish(self, code: int) -> None:
        self.window.close()
        self.app.exit(code)


def watch(app: QApplication, window, linger_s: float = 0.0) -> StartupProbe:
    """Start watching ``window`` (call before ``app.exec()``)."""
    return StartupProbe(app, window, linger_s)
