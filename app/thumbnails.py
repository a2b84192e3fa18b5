"""In-memory thumbnails, decoded off the GUI thread, delivered by a ``ready`` signal.

Views ask ``ThumbnailCache.get(path)`` while they paint.  A cached thumbnail comes back at
once; otherwise the cache returns ``None`` after queueing one load, and emits ``ready(path)``
when the pixmap is there, so the view repaints that item.  Decoding happens on a private
two-thread ``QThreadPool`` (the GUI thread never waits on disk), and the most recent request
runs first: a view repaints what is on screen *now*, so the items a user scrolled past wait
behind those they are looking at.

Threading: a load runs ``load_rgb`` + Pillow resize + ``QImage`` conversion on a pool thread
and sends the ``QImage`` to the GUI thread through a queued signal.  Only the GUI-thread slot
makes ``QPixmap``s (a ``QPixmap`` is a GUI-thread-only object) and touches the cache.
"""

from __future__ import annotations

from collections import OrderedDict

from PIL import Image
from PySide6.QtCore import (
    QCoreApplication,
    QObject,
    QRunnable,
    QThreadPool,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap

from clipscape.models.datasets import is_remote
from clipscape.models.images import ImageLoadError, load_rgb

_MAX_PRIORITY = 2**31 - 1
_PLACEHOLDER_GREY = QColor(150, 150, 150)
NOT_HERE = "not on this machine (only its embedding is here)"


class _Relay(QObject):
    """Carries finished loads from pool threads to the GUI thread.

    It lives (and dies) on the GUI thread with its cache; the runnables only emit its signal,
    so no QObject is ever created or destroyed on a pool thread.
    """

    # path, image (null on failure), error reason ("" = ok). The path travels as a Python object:
    # a str signal argument becomes a QString, which drops the surrogate-escaped bytes of a file
    # name that is not valid UTF-8, and the thumbnail would never find its item again.
    loaded = Signal(object, QImage, str, int)  # ... and the size it was made for


class _LoadThumbnail(QRunnable):
    """Decode one file into a ``QImage`` thumbnail on a pool thread; never raises."""

    def __init__(self, path: str, size: int, relay: _Relay):
        super().__init__()
        self._path = path
        self._size = size
        self._relay = relay

    def run(self) -> None:
        image, reason = QImage(), ""
        try:
            image = _thumbnail_image(self._path, self._size)
        except ImageLoadError as exc:
            reason = str(exc)
        except Exception as exc:  # a failure must reach the user, never kill the pool thread
            reason = f"cannot make a thumbnail: {exc or type(exc).__name__}"
        try:
            self._relay.loaded.emit(self._path, image, reason, self._size)
        except RuntimeError:  # the cache was deleted while we decoded; nobody is waiting
            pass


def _thumbnail_image(path: str, size: int) -> QImage:
    """Load ``path`` and shrink it to fit ``size``×``size`` as a QImage that owns its pixels."""
    if is_remote(path):  # a row of embeddings made elsewhere (models/datasets.py): a dot, not an error
        raise ImageLoadError(NOT_HERE)
    picture = load_rgb(path, min_side=size)
    picture.thumbnail((size, size), Image.Resampling.BILINEAR)
    width, height = picture.size
    data = picture.tobytes("raw", "RGB")
    # QImage only borrows ``data``; copy() makes an image that owns its bytes before ``data``
    # goes away with this frame.
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ThumbnailCache(QObject):
    """Thumbnails at most ``size`` pixels on a side, the last ``capacity`` used kept in memory.

    ``get`` never blocks: it returns the cached pixmap or ``None`` (and queues a load).
    ``ready(path)`` is emitted on the GUI thread when a thumbnail arrives - also when the file
    could not be read, in which case the cached pixmap is a grey "!" placeholder and
    ``error(path)`` says why.
    """

    ready = Signal(object)  # the path (a Python str, kept exact; see _Relay)

    def __init__(self, size: int = 160, capacity: int = 4000, parent: QObject | None = None):
        super().__init__(parent)
        self._size = int(size)
        self._capacity = max(1, int(capacity))
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()  # LRU order: oldest first
        self._errors: dict[str, str] = {}
        self._pending: set[str] = set()
        self._priority = 0
        self._placeholder: dict[str, QPixmap] = {}   # glyph → the shared placeholder pixmap
        # The pool is created before the relay so that, should the cache be destroyed with
        # loads running, the pool (whose destructor waits for them) goes before the relay.
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._relay = _Relay(self)
        self._relay.loaded.connect(self._on_loaded, Qt.ConnectionType.QueuedConnection)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    @property
    def size(self) -> int:
        """The longest side of a thumbnail, in pixels."""
        return self._size

    def get(self, path: str) -> QPixmap | None:
        """The cached thumbnail of ``path`` (marked most recently used), else ``None``.

        On a miss, queue one load unless one is already pending; each new request gets a
        higher priority than all earlier ones, so what a view is painting now loads first.
        """
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._pending:
            self._pending.add(path)
            self._priority = min(self._priority + 1, _MAX_PRIORITY)
            self._pool.start(_LoadThumbnail(path, self._size, self._relay), self._priority)
        return None

    def error(self, path: str) -> str | None:
        """Why the thumbnail of ``path`` failed to load, or ``None`` (fine, or not tried)."""
        return self._errors.get(path)

    def is_pending(self, path: str) -> bool:
        """True while a load of ``path`` is queued or running."""
        return path in self._pending

    def cancel_pending(self) -> None:
        """Drop the loads that have not started yet and forget them.

        A later ``get`` queues them again.  Loads already running finish and are cached.
        """
        self._pool.clear()
        self._pending.clear()

    def shutdown(self) -> None:
        """Cancel queued loads and wait for running ones, so no pool thread outlives Qt."""
        self.cancel_pending()
        self._pool.waitForDone()

    def clear(self) -> None:
        """Forget every cached thumbnail and error (e.g. after the files changed on disk)."""
        self._pixmaps.clear()
        self._errors.clear()

    def count(self) -> int:
        """How many thumbnails (placeholders included) are cached."""
        return len(self._pixmaps)

    def __contains__(self, path: object) -> bool:
        return path in self._pixmaps

    def set_size(self, size: int) -> None:
        """Make thumbnails ``size`` pixels on a side from now on (cached ones are dropped)."""
        size = int(size)
        if size != self._size:
            self.cancel_pending()
            self._size, self._placeholder = size, {}
            self.clear()

    @Slot(object, QImage, str, int)
    def _on_loaded(self, path: str, image: QImage, reason: str, size: int) -> None:
        """GUI thread: turn a finished load into a cached pixmap and announce it."""
        if size != self._size:  # made before a size change: the view asks again
            return
        self._pending.discard(path)
        if reason or image.isNull():
            self._errors[path] = reason or "cannot make a thumbnail"
            pixmap = self._error_pixmap("↗" if reason == NOT_HERE else "!")
        else:
            self._errors.pop(path, None)
            pixmap = QPixmap.fromImage(image)
        self._pixmaps[path] = pixmap
        self._pixmaps.move_to_end(path)
        while len(self._pixmaps) > self._capacity:
            evicted, _ = self._pixmaps.popitem(last=False)
            self._errors.pop(evicted, None)
        self.ready.emit(path)

    def _error_pixmap(self, glyph: str = "!") -> QPixmap:
        """The shared placeholders: a grey square with a "!" (unreadable file) or "↗" (an image elsewhere)."""
        if glyph not in self._placeholder:
            pixmap = QPixmap(self._size, self._size)
            pixmap.fill(_PLACEHOLDER_GREY)
            painter = QPainter(pixmap)
            font = QFont()
            font.setBold(True)
            font.setPixelSize(max(8, self._size // 2))
            painter.setFont(font)
            painter.setPen(QColor(Qt.GlobalColor.white))
            painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, glyph)
            painter.end()
            self._placeholder[glyph] = pixmap
        return self._placeholder[glyph]
