"""Reopening a folder in the window (app/session_folders.py): the last collection and map come
from the folder's snapshot at once, the index checks the folder meanwhile, and what changed is
applied without a reset (selection, preview and query stay; unchanged images keep their place)."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from clipscape.app import tasks
from clipscape.models.search import score_bins
from clipscape.models import indexer
from clipscape.models import snapshot as snapshots
from clipscape.models.shapes_world import write_folder
from gui_support import TIMEOUT, make_window, wait_collection, wait_for_umap, wait_idle

from conftest import index_folder


@pytest.fixture
def gate(monkeypatch):
    """Hold the folder's scan back while the test keeps the gate closed (``gate.clear()``), as a slow
    scan of a big folder would; it starts open, so an index the test runs itself goes straight through."""
    event = threading.Event()
    event.set()
    real = indexer.iter_scan

    def held(*args, **kwargs):
        event.wait(60)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(indexer, "iter_scan", held)
    return event


def _ready_window(qtbot, settings):
    """A new window (as after a restart) with its model loaded, and its session."""
    window = make_window(qtbot, settings)
    qtbot.waitUntil(lambda: window.session.encoder is not None, timeout=TIMEOUT)
    return window, window.session


def _first_visit(qtbot, settings, folder):
    window, s = _ready_window(qtbot, settings)
    window.open_paths([folder])
    wait_for_umap(qtbot, window)
    wait_idle(qtbot, window, but=())          # the map is saved by its own job
    return window, s.collection, s.coords.copy()


def test_a_reopened_folder_shows_its_last_map_before_the_check_and_keeps_it(qtbot, settings, folder, gate,
                                                                              monkeypatch):
    monkeypatch.setattr(tasks, "SHOWN_WAIT_S", 600)   # the check only starts once the window says it showed the snapshot
    gate.set()
    window, first, coords = _first_visit(qtbot, settings, folder)
    s = window.session
    s.set_caption("a red circle")
    qtbot.waitUntil(lambda: s.scores is not None, timeout=TIMEOUT)
    projections = []
    monkeypatch.setattr(tasks, "project", lambda *a, **k: projections.append(a) or iter(()))
    gate.clear()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: s.collection is not None and s.coords is not None, timeout=TIMEOUT)
    assert s.jobs.is_running("index"), "shown while the folder is still being checked"
    assert s.collection.paths == first.paths and s.map_kind == "umap"
    np.testing.assert_array_equal(s.coords, coords)
    assert window.map.point_count() == len(first)
    assert "as last opened" in s.status
    shown = s.collection
    gate.set()
    wait_collection(qtbot, window)
    wait_idle(qtbot, window, but=())
    assert s.collection is shown and not projections       # nothing changed: nothing recomputed
    np.testing.assert_array_equal(s.coords, coords)
    assert s.scores is not None and s.query.text == "a red circle"
    window.close()


def test_changes_made_while_away_are_applied_without_a_reset(qtbot, settings, folder, gate, tmp_path,
                                                             monkeypatch, demo_encoder):
    gate.set()
    window, first, coords = _first_visit(qtbot, settings, folder)
    s = window.session
    files = sorted(folder.glob("*.jpg"))
    selected = [first.index_of(f) for f in files[:6]]
    s.set_selection(np.array(selected))
    s.set_preview(first.index_of(files[3]))
    s.add_classes("circle, square")
    wait_idle(qtbot, window, but=())
    window.close()

    files[0].unlink()                                     # deleted while the app was closed
    write_folder(folder / "new", 3, seed=21)              # and new photos
    window, s = _ready_window(qtbot, settings)
    projections = []
    monkeypatch.setattr(tasks, "project", lambda *a, **k: projections.append(a) or iter(()))
    gate.clear()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: s.collection is not None and s.coords is not None, timeout=TIMEOUT)
    assert s.collection.paths == first.paths               # the last collection first …
    s.set_selection(np.array(selected))
    s.set_preview(first.index_of(files[3]))
    s.add_classes("circle, square")
    gate.set()                                            # … then the check finds the changes
    qtbot.waitUntil(lambda: len(s.collection) == len(first) + 2, timeout=TIMEOUT)
    wait_idle(qtbot, window, but=())
    fresh, _ = index_folder(folder, demo_encoder, s.cache_dir, use_snapshot=False, prune=False)
    assert s.collection.paths == fresh.paths
    np.testing.assert_array_equal(s.collection.embeddings, fresh.embeddings)
    assert [s.collection.paths[r] for r in s.selection] == [str(f) for f in files[1:6]]
    assert s.collection.paths[s.previewed] == str(files[3])
    assert s.classification is not None and len(s.classification.best) == len(fresh)
    assert not projections, "the map was carried over, not computed again"
    for path in first.paths[1:]:                           # the images still there kept their place
        np.testing.assert_array_equal(s.coords[s.collection.index_of(path)], coords[first.index_of(path)])
    new_rows = [s.collection.index_of(p) for p in s.collection.paths if "/new/" in p]
    assert len(new_rows) == 3 and np.isfinite(s.coords[new_rows]).all()
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    assert ((s.coords[new_rows] >= lo) & (s.coords[new_rows] <= hi)).all()   # placed among the others
    assert window.map.point_count() == len(fresh)
    window.close()

    window = make_window(qtbot, settings)                  # and the carried-over map is the one kept
    s = window.session
    qtbot.waitUntil(lambda: s.encoder is not None, timeout=TIMEOUT)
    gate.clear()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: s.collection is not None and s.coords is not None, timeout=TIMEOUT)
    assert s.collection.paths == fresh.paths and s.map_kind == "umap"
    gate.set()
    wait_collection(qtbot, window)
    window.close()


def test_a_first_open_of_a_cached_folder_shows_a_sample_map_while_the_rest_is_read(qtbot, settings, folder, gate,
                                                                                   demo_encoder, monkeypatch):
    index_folder(folder, demo_encoder, None, use_snapshot=False)     # cached by an earlier version
    monkeypatch.setattr(tasks, "SAMPLE_ROWS", 16)
    window, s = _ready_window(qtbot, settings)
    gate.clear()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: s.collection is not None and s.coords is not None, timeout=TIMEOUT)
    assert s.jobs.is_running("index") and "a sample" in s.status
    assert 10 <= len(s.collection) <= 24 and s.map_kind == "pca" and window.map.point_count() == len(s.collection)
    assert set(s.collection.paths) <= {str(p) for p in folder.glob("*.jpg")}
    gate.set()
    qtbot.waitUntil(lambda: s.collection is not None and len(s.collection) == 48, timeout=TIMEOUT)
    wait_collection(qtbot, window)
    key = snapshots.snapshot_key(demo_encoder.key, [str(folder)])
    assert snapshots.load(s.cache_dir or os.environ["CLIPSCAPE_CACHE_DIR"], key, demo_encoder.dim) is not None
    window.close()


def test_a_big_collection_gets_the_best_rows_first_then_the_whole_order(monkeypatch):
    monkeypatch.setattr(tasks, "RANK_HEAD_FROM", 10)
    monkeypatch.setattr(tasks, "RANK_HEAD", 5)
    scores = np.random.default_rng(1).random(50).astype(np.float32)
    job = tasks._head_first(scores)
    first, head, bins, span = next(job)
    assert span == (float(scores.min()), float(scores.max()))
    assert first is scores and sorted(head.tolist()) == list(range(50))
    assert head[:5].tolist() == np.argsort(-scores)[:5].tolist()
    # the map's colour bins come with the scores, made in the worker, as the map would make them
    np.testing.assert_array_equal(bins, score_bins(scores, float(scores.min()), float(scores.max())))
    with pytest.raises(StopIteration) as done:
        next(job)
    assert done.value.value[1].tolist() == np.argsort(-scores, kind="stable").tolist()
    assert done.value.value[2] is bins


def test_a_big_collection_leaves_the_objects_alive_then_to_gc_freeze(qtbot, tmp_path, monkeypatch):
    import gc

    from clipscape.app import session_folders
    from gui_support import make_session

    monkeypatch.setattr(session_folders, "FREEZE_ROWS", 20)
    gc.unfreeze()
    try:
        make_session(tmp_path, coords=np.zeros((10, 2)))          # small: nothing frozen
        assert gc.get_freeze_count() == 0
        make_session(tmp_path, coords=np.zeros((25, 2)))          # big: every object alive now is frozen
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_scan_waits_until_the_window_has_shown_the_snapshot(tmp_path, demo_encoder, monkeypatch):
    """index_folder yields the snapshot, then holds the scan back until the window sets
    ``shown`` (so that showing 1M rows and scanning do not fight over the GIL), and gives up
    waiting after SHOWN_WAIT_S."""
    folder = tmp_path / "photos"
    write_folder(folder, n=6, seed=3, size=64)
    cache = tmp_path / "cache"
    index_folder(str(folder), demo_encoder, cache)             # leaves the folder's snapshot
    scans = []
    real = indexer.iter_scan
    monkeypatch.setattr(indexer, "iter_scan", lambda *a, **k: scans.append(1) or real(*a, **k))

    class Job:
        def check(self):
            pass

    def drive(wait_s):
        monkeypatch.setattr(tasks, "SHOWN_WAIT_S", wait_s)
        gen = tasks.index_folder(Job(), [str(folder)], demo_encoder, str(cache), 8)
        last = next(gen)
        assert isinstance(last, tasks.LastOpened) and len(last.collection) == 6
        step = threading.Thread(target=lambda: next(gen))
        step.start()
        return gen, last, step

    gen, last, step = drive(30.0)
    step.join(0.5)
    assert step.is_alive() and not scans                     # held back
    last.shown.set()
    step.join(30)
    assert not step.is_alive() and scans
    gen.close()
    scans.clear()
    gen, last, step = drive(0.2)                             # nobody sets it: the scan starts anyway
    step.join(30)
    assert not step.is_alive() and scans
    gen.close()


def test_the_model_job_runs_the_text_tower_once_so_the_first_caption_does_not(monkeypatch):
    """A process's first forward pass sets torch up; the model job pays it in its worker."""
    from clipscape.models import encoder as encoder_module

    calls = []
    real = encoder_module.Encoder.encode_texts
    monkeypatch.setattr(encoder_module.Encoder, "encode_texts", lambda self, texts, *a, **k: calls.append(list(texts)) or real(self, texts, *a, **k))

    class Job:
        def check(self):
            pass

        def report(self, value, force=False):
            pass

    encoder = tasks.load_model(Job(), "demo", None, "cpu")
    assert calls == [["a photo"]] and encoder.encode_texts(["a red circle"]).shape[0] == 1
