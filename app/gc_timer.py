"""Python's cyclic garbage collector, run on the GUI thread only (models/gc_policy.py says why).

``install(app)`` pins the collector and starts a timer, owned by the QApplication, that runs
the collections that are due. The window installs it; a second call changes nothing.

The timer ticks fast while collections keep coming due (a worker loading a model makes tens of
thousands of objects a second: at one tick in 500 ms each young collection walked 30-90k of
them, a 25-90 ms stop of the window; at 40 ms a tick walks a twelfth of that) and slowly when
nothing is due, so an idle window wakes four times a second.
"""
from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QTimer

from clipscape.models import gc_policy

BUSY_MS = 40         # between ticks while collections are due (or a paused block runs)
IDLE_MS = 250        # between ticks once nothing was due; a due check costs microseconds
TIMER_NAME = "clipscape-gc"


def install(app: QCoreApplication) -> QTimer:
    """The application's collection timer (made and started on the first call)."""
    timer = app.findChild(QTimer, TIMER_NAME)
    if timer is None:
        gc_policy.pin()
        timer = QTimer(app)
        timer.setObjectName(TIMER_NAME)
        timer.setInterval(IDLE_MS)
        timer.timeout.connect(lambda: _tick(timer))
        timer.start()
    return timer


def _tick(timer: QTimer) -> None:
    busy = gc_policy.collect_due() is not None or gc_policy.is_paused()
    timer.setInterval(BUSY_MS if busy else IDLE_MS)
