"""Where and when the cyclic garbage collector runs (models/gc_policy.py, app/gc_timer.py).

The test process runs pinned, as the window does (tests/conftest.py): the tests of the
automatic collector's behaviour turn it back on for their own duration (``unpinned``)."""
from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

from clipscape.models import gc_policy


@pytest.fixture
def unpinned(monkeypatch):
    """The automatic collector on, as in a process without a window (the headless commands).
    Earlier tests' garbage is collected here first, so that a thread they left running cannot
    collect their widgets meanwhile."""
    monkeypatch.setattr(gc_policy, "_pinned", False)
    gc.collect()
    gc.enable()
    yield
    gc.disable()


def test_a_paused_block_holds_the_automatic_collector_off_and_restores_it(unpinned):
    with gc_policy.paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a caller that paused it itself keeps it paused
    with gc_policy.paused_gc():
        pass
    assert not gc.isenabled()


@contextlib.contextmanager
def paused_on_another_thread():
    """A paused_gc block held by a worker (as the index job's) for as long as this block runs."""
    inside, leave = threading.Event(), threading.Event()

    def reader():
        with gc_policy.paused_gc():
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=reader)
    worker.start()
    try:
        assert inside.wait(10)
        yield
    finally:
        leave.set()
        worker.join()


def test_overlapping_paused_blocks_turn_the_collector_back_on_when_the_last_one_ends(unpinned):
    with paused_on_another_thread():
        with gc_policy.paused_gc():
            pass
        assert not gc.isenabled()      # the worker's block is still running
    assert gc.isenabled()


def test_a_paused_block_freezes_what_a_big_block_made_and_not_what_a_small_one_did(unpinned, monkeypatch):
    """Leaving many new objects, the block freezes them (else the first allocation after it would
    start a collection walking all of them while every thread waits); a small block does not."""
    monkeypatch.setattr(gc_policy, "FREEZE_YOUNG", 5_000)
    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        with gc_policy.paused_gc():
            small = [[i] for i in range(100)]
        assert gc.isenabled() and gc.get_freeze_count() <= frozen   # (frozen objects freed meanwhile lower it)
        with gc_policy.paused_gc():
            big = [[i] for i in range(20_000)]
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + 19_000
        del big[:]   # frozen objects are still freed by their reference counts
    finally:
        gc.unfreeze()
    assert small


def test_pinned_a_paused_block_still_freezes_but_never_turns_the_collector_on(monkeypatch):
    monkeypatch.setattr(gc_policy, "FREEZE_YOUNG", 5_000)
    assert gc_policy.is_pinned() and not gc.isenabled()
    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        with gc_policy.paused_gc():
            big = [[i] for i in range(20_000)]
        assert not gc.isenabled() and gc.get_freeze_count() >= frozen + 19_000
    finally:
        gc.unfreeze()
    assert big


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_collect_due_collects_young_garbage_once_the_threshold_is_passed():
    old = gc.get_threshold()
    gc.set_threshold(10 ** 9, *old[1:])
    try:
        assert gc_policy.collect_due() is None      # the young generation is below its threshold
    finally:
        gc.set_threshold(*old)
    gc.collect()
    garbage = _Cycle()
    dead = weakref.ref(garbage)
    del garbage
    young = [[] for _ in range(2 * gc.get_threshold()[0])]  # alive: past the young generation's threshold
    assert gc_policy.collect_due() is not None
    assert dead() is None and young


def test_collect_due_waits_while_any_thread_is_in_a_paused_block():
    with paused_on_another_thread():
        young = [[] for _ in range(2 * gc.get_threshold()[0])]
        assert gc_policy.collect_due() is None
    assert gc_policy.collect_due() is not None and young


def test_a_full_collection_waits_until_the_old_generation_grew_by_a_quarter(monkeypatch):
    """CPython's own rule, kept: else every 70k allocations would walk a big collection whole."""
    old = gc.get_threshold()
    try:
        gc.set_threshold(10, 1, 1)
        gc.collect()
        monkeypatch.setattr(gc_policy, "_old_after_full", 10 ** 9)   # nowhere near a quarter's growth
        alive = []
        for _ in range(12):   # the oldest generation's count passes its threshold every 4th
            alive += [[] for _ in range(50)]
            assert gc_policy.collect_due() in (0, 1)
        generations = set()
        monkeypatch.setattr(gc_policy, "_old_after_full", 1)          # grown far past it
        for _ in range(12):
            alive += [[] for _ in range(50)]
            generations.add(gc_policy.collect_due())
        assert 2 in generations
        assert 1 < gc_policy._old_after_full <= len(gc.get_objects(2))   # measured again after it
    finally:
        gc.set_threshold(*old)


def test_the_window_installs_one_timer_that_collects_on_the_gui_thread(qtbot, qapp):
    from clipscape.app import gc_timer

    timer = gc_timer.install(qapp)
    assert gc_timer.install(qapp) is timer and timer.isActive() and not gc.isenabled()
    threads = []

    def started(phase, info):
        if phase == "start":
            threads.append(threading.get_ident())

    garbage = _Cycle()
    dead = weakref.ref(garbage)
    del garbage
    gc.callbacks.append(started)
    try:
        worker = threading.Thread(target=lambda: [_Cycle() for _ in range(50_000)])
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: dead() is None, timeout=5 * gc_timer.IDLE_MS)
    finally:
        gc.callbacks.remove(started)
    assert threads and set(threads) == {threading.get_ident()}


def test_the_timer_ticks_fast_while_collections_come_due_and_slowly_once_none_is(qtbot, qapp):
    from clipscape.app import gc_timer

    timer = gc_timer.install(qapp)
    gc.collect()
    qtbot.waitUntil(lambda: timer.interval() == gc_timer.IDLE_MS, timeout=2000)
    alive = []

    def allocate():   # as a worker loading a model does, for a second
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            alive.append([[] for _ in range(2_000)])
            time.sleep(0.005)

    worker = threading.Thread(target=allocate)
    worker.start()
    qtbot.waitUntil(lambda: timer.interval() == gc_timer.BUSY_MS, timeout=2000)
    worker.join()
    qtbot.waitUntil(lambda: timer.interval() == gc_timer.IDLE_MS, timeout=2000)
    assert alive


# A window's widgets and timers caught in reference cycles, dropped; then a worker allocates as a
# decode pool does. Run with "pinned", the collector runs as the window runs it.
SCENARIO = textwrap.dedent("""
    import gc, sys, threading
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    import pyqtgraph as pg

    app = QApplication([])
    if sys.argv[1] == "pinned":
        from clipscape.app import gc_timer
        gc_timer.install(app)
    main = threading.get_ident()
    gc.callbacks.append(lambda phase, info: phase == "start" and threading.get_ident() != main
                        and print("worker-collection", flush=True))
    for _ in range(3):
        plot = pg.PlotWidget()
        plot.plot([1, 2, 3])
        plot.show()
        plot.me = plot
        QTimer(plot).start(1000)
        app.processEvents()
        del plot

    def decode():
        keep = []
        for i in range(300_000):
            keep.append([i])
            if len(keep) > 1000:
                keep.clear()

    QTimer.singleShot(100, lambda: threading.Thread(target=decode).start())
    QTimer.singleShot(2500, app.quit)
    app.exec()
    print("done", flush=True)
""")


def test_no_collection_runs_on_a_worker_thread_in_a_window_process(tmp_path):
    """The crash itself, in a child: without the pin the worker collects the widgets ("Timers
    cannot be stopped from another thread", often an abort); with it, nothing of that."""
    def run(mode):
        return subprocess.run([sys.executable, "-c", SCENARIO, mode], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})

    automatic = run("automatic")
    assert "worker-collection" in automatic.stdout      # the hazard is real in this scenario
    pinned = run("pinned")
    assert pinned.returncode == 0, pinned.stderr
    assert "worker-collection" not in pinned.stdout and "done" in pinned.stdout
    assert "another thread" not in pinned.stderr, pinned.stderr
