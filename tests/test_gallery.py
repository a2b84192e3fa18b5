"""Thumbnail cache, gallery and preview panel: behaviour a user would notice if it broke.

The cache must decode off the GUI thread, load what was asked for last first, cache and evict
in LRU order and turn unreadable files into a placeholder with a reason.  The gallery must show
the rows it is given in that order, with score and class, dim the ones under the threshold,
filter by class, report activation, and stay lazy with 100k rows.  The preview must show the
facts it is given and wire its two buttons.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QProcess, Qt, QThread, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtTest import QTest

from clipscape.app import preview as preview_module
from clipscape.app import thumbnails as thumbnails_module
from clipscape.app.gallery import ALL_CLASSES, Gallery
from clipscape.app.preview import PreviewPanel, reveal_in_file_manager
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
    cache.get("busy-1")
    cache.get("busy-2")
    qtbot.waitUntil(lambda: len(loads.started) == 2, timeout=WAIT_MS)
    for name in ("old", "middle", "new"):
        cache.get(name)
    cache.get("dropped")
    cache.cancel_pending()  # drops all four queued loads ...
    assert not cache.is_pending("old")
    for name in ("old", "middle", "new"):  # ... and lets them be asked for again
        assert cache.get(name) is None
    with qtbot.waitSignals([cache.ready] * 5, timeout=WAIT_MS):
        loads.gate.set()
    assert loads.started[2:] == ["new", "middle", "old"]
    assert "dropped" not in loads.started


# --- Gallery ---------------------------------------------------------------------------------

@pytest.fixture
def gallery(qtbot, make_cache):
    widget = Gallery(make_cache())
    qtbot.addWidget(widget)
    widget.resize(760, 520)
    return widget


def item_texts(widget: Gallery) -> list[str]:
    model = widget.model
    return [model.data(model.index(i), Qt.ItemDataRole.DisplayRole)
            for i in range(model.rowCount())]


def shows_name(shown: str, name: str) -> bool:
    """True if ``shown`` is ``name`` or ``name`` elided in the middle ("0000_red…ed.jpg")."""
    if shown == name:
        return True
    head, sep, tail = shown.partition("…")
    return bool(sep) and name.startswith(head) and name.endswith(tail) and len(head) >= 4


def test_gallery_shows_rows_in_the_given_order_with_score_and_class(gallery, images):
    paths, scenes = images
    gallery.set_collection(paths)
    assert gallery.rows() == list(range(12))
    assert gallery.title() == "All 12 images"
    assert shows_name(item_texts(gallery)[0], Path(paths[0]).name)  # no scores: name alone

    scores = np.linspace(0.1, 0.5, 12)
    labels = [scene.shape for scene in scenes]
    gallery.show_rows([7, 2, 11], scores, labels, title="red circle")
    assert gallery.rows() == [7, 2, 11]
    assert gallery.title() == "red circle"
    model = gallery.model
    assert model.data(model.index(0), Qt.ItemDataRole.UserRole) == 7
    name, details = item_texts(gallery)[0].split("\n")
    assert shows_name(name, Path(paths[7]).name)
    assert details == f"{scores[7]:.3f} · {labels[7]}"
    tooltip = model.data(model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert paths[7] in tooltip and f"{scores[7]:.3f}" in tooltip

    gallery.show_rows([3, 4], scores=None, labels=labels)
    assert item_texts(gallery)[0].split("\n")[1] == labels[3]  # class without a score

    long_name = "x" * 200 + ".jpg"
    gallery.set_collection([f"/photos/{long_name}"])
    shown = item_texts(gallery)[0]
    assert shown != long_name and shows_name(shown, long_name)


def test_gallery_dims_items_below_the_threshold(qtbot, gallery, images):
    paths, _ = images
    gallery.set_collection(paths)
    scores = np.linspace(0.0, 0.55, 12)  # rows 0..4 score below 0.25
    gallery.show_rows(np.argsort(-scores), scores, threshold=0.25)
    dimmed = [row for row in range(12) if gallery.is_dimmed(row)]
    assert dimmed == [0, 1, 2, 3, 4]

    model = gallery.model
    low, high = model.index(gallery.rows().index(0)), model.index(gallery.rows().index(11))
    brush = model.data(low, Qt.ItemDataRole.ForegroundRole)
    assert brush is not None and brush.color().lightness() > 90  # grey, not the black default
    assert model.data(high, Qt.ItemDataRole.ForegroundRole) is None

    thumbnails = load(qtbot, gallery._thumbnails, paths[0])
    faded = model.data(low, Qt.ItemDataRole.DecorationRole)
    assert faded.cacheKey() != thumbnails.cacheKey()
    assert faded.toImage().pixelColor(5, 5).alpha() < 128  # drawn see-through
    assert model.data(low, Qt.ItemDataRole.DecorationRole).cacheKey() == faded.cacheKey()

    gallery.show_rows(range(12), scores)  # no threshold: nothing is dimmed
    assert not any(gallery.is_dimmed(row) for row in range(12))


def test_gallery_class_filter(qtbot, gallery, images):
    paths, _ = images
    labels = ["circle", "square", "star"] * 4
    gallery.set_collection(paths)
    gallery.show_rows(list(range(11, -1, -1)), labels=labels, title="by name")
    gallery.set_classes(["circle", "square", "star"])
    assert gallery.class_filter() is None

    with qtbot.waitSignal(gallery.filterChanged, timeout=WAIT_MS) as blocker:
        gallery.set_class_filter("square")
    assert blocker.args == ["square"]
    assert gallery.rows() == [10, 7, 4, 1]  # the order given, only squares
    assert gallery._title_label.text() == "by name · 4 of 12 shown"

    gallery.set_classes(["square", "triangle"])  # still offered: the choice stays
    assert gallery.class_filter() == "square" and len(gallery.rows()) == 4
    with qtbot.waitSignal(gallery.filterChanged, timeout=WAIT_MS) as blocker:
        gallery.set_classes(["triangle"])  # gone: back to all classes
    assert blocker.args == [None]
    assert gallery.class_filter() is None and len(gallery.rows()) == 12

    gallery.set_class_filter("circle")
    gallery.show_rows([0, 1, 2, 3], labels=labels)  # the filter applies to new listings too
    assert gallery.rows() == [0, 3]
    combo = gallery._filter_box
    assert combo.itemText(0) == ALL_CLASSES
    combo.setCurrentIndex(0)  # the user picks "All classes"
    assert gallery.class_filter() is None and gallery.rows() == [0, 1, 2, 3]


def test_gallery_double_click_and_enter_activate_the_collection_row(qtbot, gallery, images):
    paths, _ = images
    gallery.set_collection(paths)
    gallery.show_rows([5, 9, 1])
    gallery.show()
    qtbot.waitExposed(gallery)
    view = gallery.view
    center = view.visualRect(gallery.model.index(1)).center()

    with qtbot.waitSignal(gallery.currentChanged, timeout=WAIT_MS) as current:
        QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         center)
    assert current.args == [9]
    with qtbot.waitSignal(gallery.activated, timeout=WAIT_MS) as blocker:
        QTest.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier, center)
    assert blocker.args == [9]
    assert gallery.current_row() == 9

    assert gallery.select_row(1)
    with qtbot.waitSignal(gallery.activated, timeout=WAIT_MS) as blocker:
        QTest.keyClick(view, Qt.Key.Key_Return)
    assert blocker.args == [1]


def test_gallery_repaints_items_as_their_thumbnails_arrive(qtbot, gallery, images):
    paths, _ = images
    gallery.set_collection(paths)
    gallery.show()
    qtbot.waitExposed(gallery)
    cache = gallery._thumbnails
    # Painting asked the cache for the visible items; each arrival updates its item.
    with qtbot.waitSignal(gallery.model.dataChanged, timeout=WAIT_MS) as blocker:
        pass
    index = blocker.args[0]
    path = paths[index.data(Qt.ItemDataRole.UserRole)]
    decoration = gallery.model.data(index, Qt.ItemDataRole.DecorationRole)
    assert decoration.cacheKey() == cache.get(path).cacheKey()


def test_gallery_with_100k_rows_is_lazy(qtbot, gallery, monkeypatch):
    requested = []

    def failing_load(path, min_side=None):
        requested.append(path)
        raise ImageLoadError("not on disk")

    monkeypatch.setattr(thumbnails_module, "load_rgb", failing_load)
    count = 100_000
    paths = [f"/nowhere/img_{i:06d}.jpg" for i in range(count)]
    rng = np.random.default_rng(0)
    scores = rng.random(count)
    labels = rng.choice(["circle", "square"], count).tolist()
    gallery.show()
    qtbot.waitExposed(gallery)

    start = time.perf_counter()
    gallery.set_collection(paths)
    gallery.show_rows(np.argsort(-scores), scores, labels, threshold=0.5, title="ranked")
    gallery.set_classes(["circle", "square"])
    gallery.set_class_filter("circle")
    gallery.view.verticalScrollBar().setValue(gallery.view.verticalScrollBar().maximum() // 2)
    qtbot.wait(200)
    elapsed = time.perf_counter() - start

    shown = gallery.rows()
    assert len(shown) == labels.count("circle")
    assert all(labels[row] == "circle" for row in shown[:1000])
    assert all(scores[a] >= scores[b] for a, b in zip(shown[:1000], shown[1:1000]))
    assert elapsed < 5
    assert 0 < len(set(requested)) < 300  # only items that were painted asked for thumbnails


# --- PreviewPanel ----------------------------------------------------------------------------

@pytest.fixture
def panel(qtbot, make_cache):
    widget = PreviewPanel(make_cache(size=128, capacity=8))
    qtbot.addWidget(widget)
    return widget


def test_preview_shows_the_facts_and_the_image(qtbot, panel, images, tmp_path):
    paths, _ = images
    assert panel.current_row() == -1
    assert not panel._similar_button.isEnabled()

    panel.show_image(4, paths[4], label="circle", probability=0.934, score=0.3124)
    assert panel.current_row() == 4
    assert panel._path_label.text() == paths[4]
    assert panel._class_label.text() == "class: circle (0.93)"
    assert panel._score_label.text() == "score: 0.312"
    qtbot.waitUntil(lambda: panel.status_text() == "", timeout=WAIT_MS)  # image arrived

    panel.show_image(5, paths[5])
    assert panel._class_label.isHidden() and panel._score_label.isHidden()

    broken = tmp_path / "x.jpg"
    broken.write_bytes(b"\x00junk" * 20)
    panel.show_image(6, str(broken))
    qtbot.waitUntil(lambda: "cannot identify" in panel.status_text(), timeout=WAIT_MS)

    panel.clear()
    assert panel.current_row() == -1 and panel._path_label.text() == ""


def test_preview_buttons_find_similar_and_reveal(qtbot, panel, images, monkeypatch):
    paths, _ = images
    opened = []
    monkeypatch.setattr(preview_module.sys, "platform", "linux")
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(opened.append))
    panel.show_image(3, paths[3], score=0.2)

    with qtbot.waitSignal(panel.findSimilar, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(panel._similar_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [3]

    qtbot.mouseClick(panel._reveal_button, Qt.MouseButton.LeftButton)
    assert opened == [QUrl.fromLocalFile(str(Path(paths[3]).parent))]


@pytest.mark.parametrize("platform, program, arguments", [
    ("darwin", "open", ["-R", "/photos/a.jpg"]),
    ("win32", "explorer", ["/select,", "/photos/a.jpg".replace("/", "\\")]),
])
def test_reveal_selects_the_file_on_macos_and_windows(monkeypatch, platform, program, arguments):
    started = []
    monkeypatch.setattr(preview_module.sys, "platform", platform)
    monkeypatch.setattr(QProcess, "startDetached",
                        staticmethod(lambda *args: started.append(args) or True))
    reveal_in_file_manager("/photos/a.jpg")
    assert started == [(program, arguments)]


def test_preview_makes_its_own_large_image_cache(qtbot):
    widget = PreviewPanel()
    qtbot.addWidget(widget)
    try:
        assert widget.thumbnails.size == 512
        assert widget.thumbnails.parent() is widget
    finally:
        widget.shutdown()
