"""Thumbnail cache, gallery and preview panel: behaviour a user would notice if it broke.

The cache must decode off the GUI thread, load what was asked for last first, cache and evict
in LRU order and turn unreadable files into a placeholder with a reason.  The gallery must list
the session's rows in rank order, with score and class, dim the ones under the threshold,
filter by class, preview on a click, and stay lazy with 100k rows.  The preview must show what
the session says of the previewed image and wire its two buttons.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from gui_support import classify, make_session, score
from PySide6.QtCore import QProcess, QSettings, Qt, QThread
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QStyle

from clipscape.app import preview as preview_module
from clipscape.app import thumbnails as thumbnails_module
from clipscape.app.gallery import ALL_CLASSES, Gallery, GalleryModel
from clipscape.app.preview import PreviewPanel, folder_url, reveal_in_file_manager
from clipscape.app.settings import Settings
from clipscape.app.thumbnails import ThumbnailCache
from clipscape.models.images import ImageLoadError
from clipscape.models.shapes_world import write_folder

WAIT_MS = 5000


@pytest.fixture
def images(tmp_path):
    """12 shapes-world JPEGs (160 px): ([path str], [scene])."""
    scenes = write_folder(tmp_path, 12, seed=1, size=160)
    return [str(path) for path, _ in scenes], [scene for _, scene in scenes]


@pytest.fixture
def make_cache():
    """Build ThumbnailCaches that are shut down after the test (no pool thread outlives it)."""
    caches = []

    def make(**kwargs) -> ThumbnailCache:
        caches.append(ThumbnailCache(**kwargs))
        return caches[-1]

    yield make
    for cache in caches:
        cache.shutdown()


def load(qtbot, cache: ThumbnailCache, path: str):
    """Request ``path`` and wait until the cache has it; return the pixmap."""
    if cache.get(path) is None:
        with qtbot.waitSignal(cache.ready, timeout=WAIT_MS,
                              check_params_cb=lambda ready_path: ready_path == path):
            pass
    pixmap = cache.get(path)
    assert pixmap is not None
    return pixmap


# --- ThumbnailCache ------------------------------------------------------------------------

def test_cache_decodes_off_the_gui_thread_once_and_reuses_the_pixmap(qtbot, images, make_cache,
                                                                      monkeypatch):
    paths, _ = images
    real_load = thumbnails_module.load_rgb
    calls = []

    def recording_load(path, min_side=None):
        calls.append((path, min_side, QThread.currentThread()))
        return real_load(path, min_side=min_side)

    monkeypatch.setattr(thumbnails_module, "load_rgb", recording_load)
    cache = make_cache(size=64)
    assert cache.get(paths[0]) is None
    assert cache.get(paths[0]) is None  # still pending: must not queue a second load
    with qtbot.waitSignal(cache.ready, timeout=WAIT_MS) as blocker:
        pass
    assert blocker.args == [paths[0]]

    pixmap = cache.get(paths[0])
    assert pixmap is not None and not pixmap.isNull()
    assert max(pixmap.width(), pixmap.height()) == 64  # 160 px source shrunk to the size
    assert cache.error(paths[0]) is None
    assert len(calls) == 1
    path, min_side, thread = calls[0]
    assert (path, min_side) == (paths[0], 64)
    assert thread is not QThread.currentThread()  # decoded on a pool thread, not the GUI's
    again = cache.get(paths[0])
    assert again.cacheKey() == pixmap.cacheKey()  # the same cached pixmap, no reload
    assert len(calls) == 1


def test_cache_turns_an_unreadable_file_into_a_placeholder_with_the_reason(qtbot, tmp_path,
                                                                            make_cache):
    broken = tmp_path / "x.jpg"
    broken.write_bytes(b"this is not a jpeg at all" * 10)
    cache = make_cache(size=48)
    pixmap = load(qtbot, cache, str(broken))
    assert "cannot identify" in cache.error(str(broken))
    assert (pixmap.width(), pixmap.height()) == (48, 48)
    corner = pixmap.toImage().pixelColor(1, 1)
    assert corner.red() == corner.green() == corner.blue()  # the grey placeholder
    assert pixmap.toImage().pixelColor(24, 24) != corner  # with a "!" drawn in the middle


def test_cache_evicts_the_least_recently_used(qtbot, images, make_cache):
    paths, _ = images
    cache = make_cache(size=32, capacity=2)
    load(qtbot, cache, paths[0])
    load(qtbot, cache, paths[1])
    cache.get(paths[0])  # touch: paths[1] is now the least recently used
    load(qtbot, cache, paths[2])
    assert cache.count() == 2
    assert paths[0] in cache and paths[2] in cache
    assert paths[1] not in cache
    cache.clear()
    assert cache.count() == 0 and cache.get(paths[0]) is None


class _GatedLoads:
    """A fake ``load_rgb`` whose first two calls block both pool threads until released."""

    def __init__(self):
        self.started = []
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, path, min_side=None):
        with self._lock:
            self.started.append(path)
            blocking = len(self.started) <= 2
        if blocking and not self.gate.wait(WAIT_MS / 1000):
            raise ImageLoadError("test gate never opened")
        return Image.new("RGB", (8, 8), (200, 10, 10))


def test_cache_loads_the_most_recent_request_first_and_can_cancel(qtbot, make_cache,
                                                                  monkeypatch):
    loads = _GatedLoads()
    monkeypatch.setattr(thumbnails_module, "load_rgb", loads)
    cache = make_cache(size=16)
    # one pool thread: with two, which thread records its start first is a race (seen in CI under load)
    cache._pool.setMaxThreadCount(1)
    cache.get("busy")
    qtbot.waitUntil(lambda: len(loads.started) == 1, timeout=WAIT_MS)
    for name in ("old", "middle", "new"):
        cache.get(name)
    cache.get("dropped")
    cache.cancel_pending()  # drops all four queued loads ...
    assert not cache.is_pending("old")
    for name in ("old", "middle", "new"):  # ... and lets them be asked for again
        assert cache.get(name) is None
    with qtbot.waitSignals([cache.ready] * 4, timeout=WAIT_MS):
        loads.gate.set()
    assert loads.started[1:] == ["new", "middle", "old"]
    assert "dropped" not in loads.started


# --- Gallery ---------------------------------------------------------------------------------

@pytest.fixture
def session(qtbot, tmp_path, images):
    paths, _ = images
    s = make_session(tmp_path, paths=paths, coords=np.zeros((len(paths), 2)))
    yield s
    s.shutdown()


@pytest.fixture
def gallery(qtbot, make_cache, session, tmp_path):
    widget = Gallery(session, make_cache(size=96), Settings(QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(widget)
    widget.resize(760, 520)
    return widget


def item_texts(widget: Gallery) -> list[str]:
    model = widget.model
    return [model.data(model.index(i, 0), Qt.ItemDataRole.DisplayRole) for i in range(model.rowCount())]


def shows_name(shown: str, name: str) -> bool:
    """True if ``shown`` is ``name`` or ``name`` elided in the middle ("0000_red…ed.jpg")."""
    if shown == name:
        return True
    head, sep, tail = shown.partition("…")
    return bool(sep) and name.startswith(head) and name.endswith(tail) and len(head) >= 4


def test_gallery_lists_the_session_rows_ranked_with_score_and_class(gallery, session, images):
    paths, scenes = images
    assert gallery.rows() == list(range(12)) and gallery.title() == "12 images"
    assert shows_name(item_texts(gallery)[0], Path(paths[0]).name)  # no scores: name alone

    scores = np.linspace(0.1, 0.5, 12, dtype=np.float32)
    score(session, scores, "red circle")
    assert gallery.rows() == list(range(11, -1, -1))
    assert gallery.title() == "12 images, ranked by “red circle”"
    classify(session, ["circle", "square", "triangle", "star"],
             [["circle", "square", "triangle", "star"].index(s.shape) for s in scenes])
    model = gallery.model
    assert model.data(model.index(0, 0), Qt.ItemDataRole.UserRole) == 11
    name, details = item_texts(gallery)[0].split("\n")
    assert shows_name(name, Path(paths[11]).name)
    assert details == f"{scores[11]:.3f} · {scenes[11].shape}"
    tooltip = model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    assert paths[11] in tooltip and f"{scores[11]:.3f}" in tooltip

    session.set_selection([3, 7, 9])
    assert gallery.rows() == [9, 7, 3] and gallery.title().startswith("3 selected, ranked by")
    session.clear_query()
    assert gallery.rows() == [3, 7, 9] and item_texts(gallery)[0].split("\n")[1] == scenes[3].shape


def test_gallery_shows_long_and_undecodable_names_in_full_escape(qtbot, make_cache, tmp_path):
    long_name = "x" * 200 + ".jpg"
    odd = os.fsdecode(b"/photos/caf\xe9.jpg")
    s = make_session(tmp_path, paths=[f"/photos/{long_name}", odd], coords=np.zeros((2, 2)))
    widget = Gallery(s, make_cache(size=96), Settings(QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(widget)
    shown = item_texts(widget)
    assert shown[0] != long_name and shows_name(shown[0], long_name)
    assert shown[1] == "caf\\xe9.jpg"   # the byte is shown, not dropped
    s.shutdown()


def test_gallery_dims_items_below_the_threshold(qtbot, gallery, session, images):
    paths, _ = images
    scores = np.linspace(0.0, 0.55, 12, dtype=np.float32)  # rows 0..4 score below 0.25
    score(session, scores)
    session.set_dim_threshold(0.25)
    assert [row for row in range(12) if gallery.is_dimmed(row)] == [0, 1, 2, 3, 4]
    model = gallery.model
    low, high = model.index(gallery.rows().index(0), 0), model.index(gallery.rows().index(11), 0)
    brush = model.data(low, Qt.ItemDataRole.ForegroundRole)
    assert brush is not None and brush.color().lightness() > 90  # grey, not the black default
    assert model.data(high, Qt.ItemDataRole.ForegroundRole) is None
    thumbnail = load(qtbot, gallery._thumbnails, paths[0])
    faded = model.data(low, Qt.ItemDataRole.DecorationRole)
    assert faded.cacheKey() != thumbnail.cacheKey()
    assert faded.toImage().pixelColor(5, 5).alpha() < 128  # drawn see-through
    session.set_dim_threshold(None)
    assert not any(gallery.is_dimmed(row) for row in range(12))


def test_a_change_that_moves_no_row_repaints_in_place(qtbot, gallery, session):
    """Dimming (or a second signal of one change) leaves the listed rows as they were: no reset,
    the scroll position and the current item stay; a change of rows resets and goes to the top."""
    score(session, np.linspace(0.0, 1.0, 12, dtype=np.float32))
    resets = []
    gallery.model.modelReset.connect(lambda: resets.append(1))
    gallery.resize(200, 150)   # a few items a screen: room to scroll
    gallery.show()
    qtbot.waitExposed(gallery)
    qtbot.waitUntil(lambda: gallery.view.verticalScrollBar().maximum() > 0, timeout=WAIT_MS)
    gallery.view.verticalScrollBar().setValue(gallery.view.verticalScrollBar().maximum())
    session.set_dim_threshold(0.5)
    session.set_preview(3)
    session.selectionChanged.emit()            # as a collection change sends it with others
    assert resets == [] and gallery.view.verticalScrollBar().value() > 0
    assert gallery.view.currentIndex().row() == gallery.rows().index(3) and gallery.is_dimmed(0)
    session.set_selection([1, 2])
    assert resets == [1] and gallery.rows() == [2, 1] and gallery.view.verticalScrollBar().value() == 0


def test_gallery_class_filter_and_hidden_classes(qtbot, gallery, session):
    classify(session, ["circle", "square", "star"], np.arange(12) % 3)
    combo = gallery.findChild(type(gallery._filter_box), "classFilter")
    assert [combo.itemText(i) for i in range(combo.count())] == [ALL_CLASSES, "circle", "square", "star"]
    combo.setCurrentIndex(2)   # the user picks "square"
    assert session.class_filter == "square"
    assert gallery.rows() == [1, 4, 7, 10] and gallery.title() == "12 images · 4 shown"
    combo.setCurrentIndex(0)
    assert session.class_filter is None and len(gallery.rows()) == 12
    session.set_label_hidden("star", True)   # unticked in the legend: gone from the gallery too
    assert gallery.rows() == [0, 1, 3, 4, 6, 7, 9, 10]
    session.set_class_filter("circle")
    session.remove_classes(["circle"])        # the filtered class is gone: back to all classes
    assert session.class_filter is None and combo.currentIndex() == 0


def test_gallery_click_and_enter_preview_the_collection_row(qtbot, gallery, session):
    session.set_selection([1, 5, 9])
    gallery.show()
    qtbot.waitExposed(gallery)
    view = gallery.view
    center = view.visualRect(gallery.model.index(1, 0)).center()
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, center)
    assert session.previewed == 5
    QTest.keyClick(view, Qt.Key.Key_Right)
    assert session.previewed == 9
    session.set_preview(-1)
    view.setCurrentIndex(gallery.model.index(0, 0))
    QTest.keyClick(view, Qt.Key.Key_Return)
    assert session.previewed == 1


def test_gallery_thumbnail_size_control_fills_the_width(qtbot, gallery, session):
    gallery.show()
    qtbot.waitExposed(gallery)
    slider = gallery.findChild(type(gallery._size_slider), "thumbnailSize")
    for size in (64, 160, 256):
        slider.setValue(size)
        assert gallery._thumbnails.size == size and gallery.view.iconSize().width() == size
        grid = gallery.view.gridSize().width()
        width = gallery.view.viewport().width()
        assert grid >= size
        view, model = gallery.view, gallery.model

        def first_row() -> int:   # items laid out in the first row, once the new grid is laid out
            tops = [view.visualRect(model.index(i, 0)).top() for i in range(model.rowCount())]
            return tops.count(tops[0])

        # the items do fill those columns (a scroll bar's room may stay free)
        bar = view.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        qtbot.waitUntil(lambda: 0 <= width - first_row() * grid < grid + bar, timeout=WAIT_MS)
    assert gallery._settings.thumbnail_size() == 256


def test_gallery_columns_follow_the_viewport_when_a_scroll_bar_comes(qtbot, gallery):
    """The widget keeps its size while the scroll bar takes width from the viewport: the grid follows."""
    gallery.resize(420, 500)
    gallery.show()
    qtbot.waitExposed(gallery)
    view = gallery.view
    view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    qtbot.waitUntil(lambda: view.viewport().width() >= 410)
    view.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
    qtbot.waitUntil(lambda: view.viewport().width() < 410)
    width, grid = view.viewport().width(), view.gridSize().width()
    columns = width // grid
    assert columns >= 2 and width - columns * grid <= columns


def test_gallery_repaints_items_as_their_thumbnails_arrive(qtbot, gallery, images):
    paths, _ = images
    gallery.show()
    qtbot.waitExposed(gallery)
    with qtbot.waitSignal(gallery.model.dataChanged, timeout=WAIT_MS) as blocker:
        pass
    index = blocker.args[0]
    decoration = gallery.model.data(index, Qt.ItemDataRole.DecorationRole)
    assert decoration.cacheKey() == gallery._thumbnails.get(paths[index.data(Qt.ItemDataRole.UserRole)]).cacheKey()


def test_an_arriving_thumbnail_finds_its_item_where_it_was_painted_without_a_search(qtbot, gallery, monkeypatch):
    """At 1M rows a search of every row shown per arriving thumbnail cost the GUI thread ~3 ms each."""
    model = gallery.model
    searched = []
    real = model.position_of
    monkeypatch.setattr(model, "position_of", lambda row: searched.append(row) or real(row))
    changed = []
    model.dataChanged.connect(lambda first, last, roles: changed.append(first.row()))
    shown = model.rows()
    paths = gallery._session.collection.paths
    model.data(model.index(3, 0), Qt.ItemDataRole.DecorationRole)   # painted while loading
    model._on_thumbnail_ready(paths[shown[3]])       # (called here before the real arrival is delivered)
    assert changed == [3] and searched == []
    model.data(model.index(5, 0), Qt.ItemDataRole.DecorationRole)
    model._shown = shown[::-1].copy()                # the rows moved since it was painted
    model._on_thumbnail_ready(paths[shown[5]])
    assert changed == [3, len(shown) - 6] and searched == [shown[5]]


def test_gallery_with_100k_rows_is_lazy(qtbot, make_cache, monkeypatch, tmp_path):
    requested = []

    def failing_load(path, min_side=None):
        requested.append(path)
        raise ImageLoadError("not on disk")

    monkeypatch.setattr(thumbnails_module, "load_rgb", failing_load)
    count = 100_000
    paths = [f"/nowhere/img_{i:06d}.jpg" for i in range(count)]
    session = make_session(tmp_path, paths=paths, coords=np.zeros((count, 2)), dim=4)
    gallery = Gallery(session, make_cache(size=96), Settings(QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(gallery)
    gallery.show()
    qtbot.waitExposed(gallery)
    rng = np.random.default_rng(0)
    scores = rng.random(count).astype(np.float32)
    best = rng.integers(0, 2, count)
    start = time.perf_counter()
    score(session, scores)
    classify(session, ["circle", "square"], best)
    session.set_dim_threshold(0.5)
    session.set_class_filter("circle")
    gallery.view.verticalScrollBar().setValue(gallery.view.verticalScrollBar().maximum() // 2)
    qtbot.wait(200)
    elapsed = time.perf_counter() - start
    shown = gallery.rows()
    assert len(shown) == (best == 0).sum() and all(best[r] == 0 for r in shown[:1000])
    assert all(scores[a] >= scores[b] for a, b in zip(shown[:1000], shown[1:1000]))
    assert elapsed < 5
    assert 0 < len(set(requested)) < 300  # only items that were painted asked for thumbnails
    session.shutdown()


def test_gallery_lays_out_100k_rows_without_asking_the_model_per_row(qtbot, make_cache, monkeypatch, tmp_path):
    """The view lays every row out, but in C++: the Python model is asked only for the items
    painted, however many rows there are, and the last row can still be scrolled to."""
    calls = {"data": 0, "flags": 0}
    data, flags = GalleryModel.data, GalleryModel.flags

    def counted_data(self, index, role=Qt.ItemDataRole.DisplayRole):
        calls["data"] += 1
        return data(self, index, role)

    def counted_flags(self, index):
        calls["flags"] += 1
        return flags(self, index)

    monkeypatch.setattr(GalleryModel, "data", counted_data)
    monkeypatch.setattr(GalleryModel, "flags", counted_flags)
    def failing_load(path, min_side=None):
        raise ImageLoadError("not on disk")

    monkeypatch.setattr(thumbnails_module, "load_rgb", failing_load)
    # rowCount and index in Python would be called twice a row while laying out (2 µs each)
    assert "rowCount" not in GalleryModel.__dict__ and "index" not in GalleryModel.__dict__
    count = 100_000
    session = make_session(tmp_path, paths=[f"/nowhere/img_{i:06d}.jpg" for i in range(count)],
                           coords=np.zeros((count, 2)), dim=4)
    gallery = Gallery(session, make_cache(size=96), Settings(QSettings(str(tmp_path / "g.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(gallery)
    gallery.resize(760, 520)
    gallery.show()
    qtbot.waitExposed(gallery)
    view, model = gallery.view, gallery.model

    def laid_out(rows: int) -> bool:   # the last row has its place in the grid
        return model.rowCount() == rows and view.visualRect(model.index(rows - 1, 0)).isValid()

    for change, rows in ((lambda: score(session, np.random.default_rng(0).random(count).astype(np.float32)), count),
                         (lambda: session.set_selection(np.arange(0, count, 2)), count // 2),
                         (session.clear_selection, count)):
        calls.update(data=0, flags=0)
        change()
        qtbot.waitUntil(lambda rows=rows: laid_out(rows), timeout=WAIT_MS)
        qtbot.wait(50)
        assert 0 < calls["data"] < 5000 and calls["flags"] < 5000, calls
    last = model.index(count - 1, 0)
    view.scrollTo(last)
    qtbot.waitUntil(lambda: view.viewport().rect().intersects(view.visualRect(last)), timeout=WAIT_MS)
    assert model.data(last, Qt.ItemDataRole.UserRole) == model.row_at(count - 1)
    session.shutdown()


# --- PreviewPanel ----------------------------------------------------------------------------

@pytest.fixture
def panel(qtbot, make_cache, session):
    widget = PreviewPanel(session, make_cache(size=128, capacity=8))
    qtbot.addWidget(widget)
    return widget


def test_preview_follows_the_session(qtbot, panel, session, images, tmp_path):
    paths, scenes = images
    assert panel.facts() == ("", "", "") and not panel._similar_button.isEnabled()
    session.set_preview(4)
    assert panel.facts() == (paths[4], "", "")
    qtbot.waitUntil(lambda: panel.status_text() == "", timeout=WAIT_MS)  # image arrived
    classify(session, ["circle", "square"], np.arange(12) % 2)
    assert panel.facts()[1] == "class: circle (0.90)"
    score(session, np.linspace(0, 1, 12, dtype=np.float32))
    assert panel.facts()[2] == f"score: {np.linspace(0, 1, 12, dtype=np.float32)[4]:.3f}"
    session.clear_classes()
    assert panel.facts()[1] == ""
    session.set_preview(-1)
    assert panel.facts() == ("", "", "")


def test_preview_of_an_unreadable_file_says_why(qtbot, make_cache, tmp_path):
    broken = tmp_path / "x.jpg"
    broken.write_bytes(b"\x00junk" * 20)
    s = make_session(tmp_path, paths=[str(broken)], coords=np.zeros((1, 2)))
    widget = PreviewPanel(s, make_cache(size=128, capacity=8))
    qtbot.addWidget(widget)
    s.set_preview(0)
    qtbot.waitUntil(lambda: "cannot identify" in widget.status_text(), timeout=WAIT_MS)
    s.shutdown()


def test_preview_buttons_find_similar_and_reveal(qtbot, panel, session, images, monkeypatch):
    paths, _ = images
    opened = []
    monkeypatch.setattr(preview_module.sys, "platform", "linux")
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    session.set_preview(3)
    qtbot.mouseClick(panel._similar_button, Qt.MouseButton.LeftButton)
    assert session.query.kind == "image" and session.query.row == 3 and session.colour_mode == "score"
    qtbot.mouseClick(panel._reveal_button, Qt.MouseButton.LeftButton)
    assert [u.toLocalFile() for u in opened] == [str(Path(paths[3]).parent)]
    assert panel.note() == ""


def test_reveal_that_cannot_start_says_so_and_copies_the_path(qtbot, panel, session, images, monkeypatch):
    paths, _ = images
    monkeypatch.setattr(preview_module.sys, "platform", "linux")
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: False))
    session.set_preview(2)
    qtbot.mouseClick(panel._reveal_button, Qt.MouseButton.LeftButton)
    assert "No file manager" in panel.note() and QGuiApplication.clipboard().text() == paths[2]


def test_folder_url_keeps_every_byte_of_a_name():
    url = folder_url(os.fsdecode(b"/photos/caf\xe9/a.jpg"))
    assert url.toEncoded().data() == b"file:///photos/caf%E9"


@pytest.mark.parametrize("platform, program, arguments", [
    ("darwin", "open", ["-R", "/photos/a.jpg"]),
    ("win32", "explorer", ["/select,", "/photos/a.jpg".replace("/", "\\")]),
])
def test_reveal_selects_the_file_on_macos_and_windows(monkeypatch, platform, program, arguments):
    started = []
    monkeypatch.setattr(preview_module.sys, "platform", platform)
    monkeypatch.setattr(QProcess, "startDetached", staticmethod(lambda *args: started.append(args) or (True, 1)))
    assert reveal_in_file_manager("/photos/a.jpg")
    assert started == [(program, arguments)]


def test_preview_makes_its_own_large_image_cache(qtbot, session):
    widget = PreviewPanel(session)
    qtbot.addWidget(widget)
    try:
        assert widget.thumbnails.size == 512 and widget.thumbnails.parent() is widget
    finally:
        widget.shutdown()
