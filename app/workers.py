"""Run the long jobs of models/ off the GUI thread and bring their results back to it.

A Job is a QThread that runs one function. The function gets the job as its first argument, so
it can report progress (``job.report``, throttled to 20 signals a second) and check for
cancellation (``job.check``); if it returns a generator, every yielded value is delivered as
``progressed`` and cancellation takes effect at the next yield (the generator is closed, so its
``finally`` blocks and context managers run in the worker thread). The job's signals are
emitted from the worker thread and, since the Job object lives on the GUI thread, arrive there
as queued calls: slots connected to them may touch widgets.

Not superqt's thread_worker: it treats a RuntimeError raised by a generator job as "the worker
was deleted" and swallows it (our ModelUnavailable and CacheError are RuntimeErrors), does not
close an aborted generator, and installs a thread-unsafe warnings filter in every worker.
"""
from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any, Callable

from PySide6.QtCore import QThread, Signal

log = logging.getLogger(__name__)

REPORT_INTERVAL_S = 0.05  # ≤ 20 progress signals a second (ARCHITECTURE.md, threading rule 2)


class Cancelled(BaseException):
    """Raised inside a job when the user cancelled it.

    A BaseException so that library code catching Exception (a download's retry loop, for one)
    cannot swallow it.
    """


class Job(QThread):
    """One background job; see the module docstring. Keep a reference until ``done`` fires."""

    progressed = Signal(object)   # a yielded value or a job.report() value
    succeeded = Signal(object)    # the function's return value (the generator's return value)
    failed = Signal(object)       # the exception, when the job raised one
    cancelled = Signal()          # the job stopped because cancel() was called
    done = Signal()               # after exactly one of succeeded / failed / cancelled

    def __init__(self, name: str, fn: Callable[..., Any], *args: Any, parent=None) -> None:
        super().__init__(parent)
        self.name = name
        self._fn, self._args = fn, args
        self._cancel = threading.Event()
        self._last_report = 0.0
        self.setObjectName(f"clipscape-{name}")

    def cancel(self) -> None:
        """Ask the job to stop at its next yield, report() or check(); returns at once."""
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise Cancelled in the worker thread if the user cancelled this job."""
        if self._cancel.is_set():
            raise Cancelled

    def report(self, value: Any, force: bool = False) -> None:
        """Emit ``progressed(value)`` unless one was emitted in the last 50 ms; also checks for cancel."""
        self.check()
        now = time.perf_counter()
        if force or now - self._last_report >= REPORT_INTERVAL_S:
            self._last_report = now
            self.progressed.emit(value)

    def run(self) -> None:  # the worker thread
        try:
            result = self._fn(self, *self._args)
            if inspect.isgenerator(result):
                result = self._drain(result)
            self.check()
        except Cancelled:
            self.cancelled.emit()
        except BaseException as e:  # noqa: BLE001 - every failure must reach the user as a message
            # the one place a job's traceback is logged; the user gets the message (rule 6)
            log.error("job %r failed", self.name, exc_info=(type(e), e, e.__traceback__))
            self.failed.emit(e)
        else:
            self.succeeded.emit(result)
        self.done.emit()

    def _drain(self, gen) -> Any:
        try:
            while True:
                self.check()
                self.progressed.emit(next(gen))
        except StopIteration as stop:
            return stop.value
        finally:
            gen.close()


class JobRunner:
    """The window's background jobs, at most one per name; a new job of a name replaces the old.

    The replaced job is cancelled and its late signals are ignored (``is_current``), so a slow
    old result never overwrites a newer one. ``shutdown`` cancels everything and waits, so no
    thread outlives the window.
    """

    def __init__(self, parent) -> None:
        self._parent = parent
        self._current: dict[str, Job] = {}
        self._running: set[Job] = set()

    def start(self, name: str, fn: Callable[..., Any], *args: Any,
              progressed=None, succeeded=None, failed=None, cancelled=None) -> Job:
        """Start ``fn(job, *args)`` as the current ``name`` job; the slots run only while it is current."""
        self.cancel(name)
        job = Job(name, fn, *args, parent=self._parent)
        for signal, slot in ((job.progressed, progressed), (job.succeeded, succeeded),
                             (job.failed, failed), (job.cancelled, cancelled)):
            if slot is not None:
                signal.connect(self._if_current(job, slot))
        job.done.connect(lambda: self._finished(job))
        self._current[name] = job
        self._running.add(job)
        job.start()
        return job

    def _if_current(self, job: Job, slot: Callable) -> Callable:
        def call(*args):
            if self._current.get(job.name) is job:
                slot(*args)
        return call

    def _finished(self, job: Job) -> None:
        job.wait()
        self._running.discard(job)
        if self._current.get(job.name) is job:
            del self._current[job.name]
        job.deleteLater()

    def is_current(self, job: Job) -> bool:
        return self._current.get(job.name) is job

    def get(self, name: str) -> Job | None:
        return self._current.get(name)

    def is_running(self, name: str) -> bool:
        return name in self._current

    def cancel(self, name: str) -> None:
        """Cancel the current ``name`` job (if any) and forget it; its signals are ignored from now on."""
        job = self._current.pop(name, None)
        if job is not None:
            job.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel every job and wait for their threads; False if one did not stop in time."""
        for job in list(self._running):
            job.cancel()
        self._current.clear()
        ok = all(job.wait(timeout_ms) for job in list(self._running))
        self._running.clear()
        return ok

    def running(self) -> list[str]:
        return sorted(self._current)
