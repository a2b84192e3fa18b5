"""When, and on which thread, Python's cyclic garbage collector runs.

Two needs meet here:

- A big library makes millions of short-lived, acyclic objects (scanned files, cache rows); each
  collection while they are alive walks all of them with every thread stopped. ``paused_gc()``
  holds collections off for such a block.
- A Qt application must collect on its GUI thread only. The automatic collector runs on whichever
  thread happens to allocate past its threshold: a decode or encode worker then destroys widgets
  and timers caught in reference cycles from the wrong thread ("Timers cannot be stopped from
  another thread", then "pure virtual method called" and an abort, or a segfault). The window
  therefore turns the automatic collector off (``pin()``) and calls ``collect_due()`` from a
  timer on its GUI thread: the same generations at the same thresholds, on the right thread.
  pyqtgraph's and calibre's ``GarbageCollector`` do the same; this one also keeps CPython's rule
  that a full collection waits until the old generation has grown by a quarter (else a big
  collection would be walked every 70k allocations), and holds off while a block is paused.

No Qt here: the window's timer is app/gc_timer.py.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

FREEZE_YOUNG = 100_000    # a paused_gc block leaving more new objects than this freezes them (see there)
FULL_GROWTH = 0.25        # CPython's rule: a full collection once the old generation grew by this share

_lock = threading.Lock()
_paused = 0               # paused_gc blocks running now, on any thread
_was_enabled = False      # the automatic collector was on when the first of them began
_pinned = False
_old_after_full = 0       # objects in the oldest generation after the last full collection


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a big library's millions of short-lived, acyclic objects
    (scanned files, cache rows) are made: each full collection walks all of them and stops every
    thread (the window's too). At 1M cached images that was 4 s of an 18 s reopen.

    When the block leaves more than ``FREEZE_YOUNG`` new objects alive, they are moved out of
    the collector's reach (``gc.freeze``) before it resumes: else the next young-generation
    collection walks all of them at once (0.35 s at 1M files, every thread waiting), and the next
    generation's walks them again later. They are still freed by their reference counts; what
    freezing costs is that a reference cycle among them would never be collected, and scanned
    files and cache rows form none. A collector that was off before the block stays off; blocks
may overlap on several threads, and it comes back on when the last of them ends."""
    global _paused, _was_enabled
    with _lock:
        if not _paused:
            _was_enabled = gc.isenabled()
        _paused += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if gc.get_count()[0] > FREEZE_YOUNG:
                gc.freeze()
            if not _paused and _was_enabled and not _pinned:   # the last block on any thread
                gc.enable()


def pin() -> None:
    """Turn the automatic collector off for good: from now on collections happen only where
    ``collect_due()`` is called (the GUI thread's timer). Idempotent."""
    global _pinned, _old_after_full
    with _lock:
        if not _pinned:
            _pinned = True
            gc.disable()
            _old_after_full = len(gc.get_objects(2))


def is_pinned() -> bool:
    """``pin()`` was called: collections happen only where ``collect_due()`` is called."""
    return _pinned


def is_paused() -> bool:
    """A paused_gc block is running (collections are held off until it ends)."""
    return _paused > 0


def collect_due() -> int | None:
    """Run the collection the automatic collector would have run by now, on the calling thread:
    the oldest generation that is due (the oldest only once it has grown by ``FULL_GROWTH``
    since its last collection). Returns the generation collected, or None (nothing due, or a
    ``paused_gc`` block is running)."""
    global _old_after_full
    if _paused:
        return None
    (t0, t1, t2), (c0, c1, c2) = gc.get_threshold(), gc.get_count()
    if c0 <= t0:
        return None
    generation = 0
    if c1 > t1:
        generation = 1
        if c2 > t2 and len(gc.get_objects(2)) - _old_after_full > FULL_GROWTH * _old_after_full:
            generation = 2
    gc.collect(generation)
    if generation == 2:
        _old_after_full = len(gc.get_objects(2))
    return generation
