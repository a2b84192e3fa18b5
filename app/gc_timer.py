"""Python's cyclic garbage collector, run on the GUI thread only (models/gc_policy.py says why).

``install(app)`` pins the collector and starts a timer, owned by the QApplication, that runs
the collections that are due. The window installs it; a second call changes nothing.
"""
from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QTimer

from clipscape.models import gc_policy

INTERVAL_MS = 500    # garbage made by workers waits at most this long; a due check costs microseconds
TIMER_NAME = "clipscape-gc"


def install(app: QCoreApplication) -> QTimer:
    """The application's collection timer (made and started on the first call)."""
    timer = app.findChild(QTimer, TIMER_NAME)
    if timer is None:
        gc_policy.pin()
        timer = QTimer(app)
        timer.setObjectName(TIMER_NAME)
        timer.setInterval(INTERVAL_MS)
        timer.timeout.connect(gc_policy.collect_due)
        timer.start()
    return timer
