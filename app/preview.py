"""The preview panel: one image large, with its path, class, score and two actions.

The image comes from a ``ThumbnailCache`` of large (512 px) thumbnails, loaded off the GUI
thread like the gallery's; until it arrives the panel says "Loading…", and an unreadable file
shows the cache's reason instead.  The panel is meant for a dock next to the gallery and map.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QFileInfo, QProcess, QRectF, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from clipscape.app.thumbnails import ThumbnailCache

PREVIEW_SIZE = 512


def reveal_in_file_manager(path: str) -> None:
    """Show ``path`` in the platform's file manager (selected where the platform can).

    macOS: Finder with the file selected; Windows: Explorer with the file selected; elsewhere
    the parent folder opens in the desktop's default file manager (there is no portable way
    to select a file).  Runs detached, so the GUI never waits for it.
    """
    if sys.platform == "darwin":
        QProcess.startDetached("open", ["-R", path])
    elif sys.platform == "win32":
        # Explorer wants backslashes (what QDir.toNativeSeparators gives on Windows).
        QProcess.startDetached("explorer", ["/select,", path.replace("/", "\\")])
    else:
        QDesktopServices.openUrl(QUrl.fromLocalFile(QFileInfo(path).absolutePath()))


class _ImageView(QWidget):
    """Paints a pixmap scaled to fit (aspect kept, never enlarged past 2×), or a message."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._message = ""
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pixmap: QPixmap | None, message: str = "") -> None:
        self._pixmap, self._message = pixmap, message
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def message(self) -> str:
        return self._message

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        if self._pixmap is not None and not self._pixmap.isNull():
            size = self._pixmap.size().toSizeF()
            bounds = self.rect().toRectF()
            scale = min(bounds.width() / size.width(), bounds.height() / size.height(), 2.0)
            width, height = size.width() * scale, size.height() * scale
            target = QRectF(bounds.center().x() - width / 2, bounds.center().y() - height / 2,
                            width, height)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, self._pixmap, self._pixmap.rect().toRectF())
        if self._message:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._message)
        painter.end()


class PreviewPanel(QWidget):
    """Details of one image: large picture, path, class and score, "Find similar", "Open".

    ``findSimilar(row)`` asks the window to search for images like collection row ``row``.
    Without a ``thumbnails`` cache the panel makes its own (512 px, 64 images); like any
    cache it is shut down on ``aboutToQuit``, or call ``panel.thumbnails.shutdown()``.
    """

    findSimilar = Signal(int)

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        if thumbnails is None:  # its own cache: large images, few of them
            thumbnails = ThumbnailCache(size=PREVIEW_SIZE, capacity=64, parent=self)
        self._thumbnails = thumbnails
        self._row = -1
        self._path = ""

        self._image = _ImageView(self)
        self._path_label = QLabel(self)
        self._path_label.setTextFormat(Qt.TextFormat.PlainText)
        self._path_label.setWordWrap(True)
        self._path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                 | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self._class_label = QLabel(self)
        self._score_label = QLabel(self)
        self._similar_button = QPushButton("Find similar", self)
        self._similar_button.setObjectName("findSimilar")
        self._similar_button.setToolTip("Rank the collection by similarity to this image")
        self._reveal_button = QPushButton("Open in file manager", self)
        self._reveal_button.setToolTip("Show this file in the system file manager")

        buttons = QHBoxLayout()
        buttons.addWidget(self._similar_button)
        buttons.addWidget(self._reveal_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self._image, 1)
        layout.addWidget(self._path_label)
        layout.addWidget(self._class_label)
        layout.addWidget(self._score_label)
        layout.addLayout(buttons)

        self._thumbnails.ready.connect(self._on_thumbnail_ready)
        self._similar_button.clicked.connect(self._on_find_similar)
        self._reveal_button.clicked.connect(self._on_reveal)
        self.clear()

    @property
    def thumbnails(self) -> ThumbnailCache:
        """The cache the large image comes from."""
        return self._thumbnails

    def show_image(self, row: int, path: str, label: str | None = None,
                   probability: float | None = None, score: float | None = None) -> None:
        """Show collection row ``row`` (file ``path``) with whatever class and score are known."""
        self._row, self._path = int(row), str(path)
        self._path_label.setText(self._path)
        if label is not None:
            detail = f" ({probability:.2f})" if probability is not None else ""
            self._class_label.setText(f"class: {label}{detail}")
        self._class_label.setVisible(label is not None)
        if score is not None:
            self._score_label.setText(f"score: {score:.3f}")
        self._score_label.setVisible(score is not None)
        self._similar_button.setEnabled(True)
        self._reveal_button.setEnabled(True)
        self._show_pixmap()

    def current_row(self) -> int:
        """The collection row shown, or -1."""
        return self._row

    def current_path(self) -> str:
        """The path shown, or ""."""
        return self._path

    def status_text(self) -> str:
        """What the image area says instead of a picture: "Loading…", a load error, or ""."""
        return self._image.message()

    def shutdown(self) -> None:
        """Stop the image loads and wait for running ones (call when the window closes)."""
        self._thumbnails.shutdown()

    def clear(self) -> None:
        """Show nothing; the buttons are disabled."""
        self._row, self._path = -1, ""
        self._image.set_pixmap(None, "No image selected")
        self._path_label.clear()
        self._class_label.hide()
        self._score_label.hide()
        self._similar_button.setEnabled(False)
        self._reveal_button.setEnabled(False)

    def _show_pixmap(self) -> None:
        pixmap = self._thumbnails.get(self._path)
        if pixmap is None:
            self._image.set_pixmap(None, "Loading…")
            return
        error = self._thumbnails.error(self._path)
        if error:  # the reason says more than the cache's "!" placeholder
            self._image.set_pixmap(None, f"Cannot show this image:\n{error}")
        else:
            self._image.set_pixmap(pixmap)

    @Slot(str)
    def _on_thumbnail_ready(self, path: str) -> None:
        if self._row >= 0 and path == self._path:
            self._show_pixmap()

    @Slot()
    def _on_find_similar(self) -> None:
        if self._row >= 0:
            self.findSimilar.emit(self._row)

    @Slot()
    def _on_reveal(self) -> None:
        if self._path:
            reveal_in_file_manager(self._path)
