"""The preview panel: the session's previewed image large, with its path, class, score and actions.

It follows the session: another class list, threshold or query updates the facts shown at
once. The image comes from a ``ThumbnailCache`` of large (512 px) thumbnails, loaded off the GUI
thread like the gallery's; until it arrives the panel says "Loading…", and an unreadable file
shows the cache's reason instead.
"""

from __future__ import annotations

import os
import sys
import urllib.parse

from PySide6.QtCore import QProcess, QRectF, QSize, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from clipscape.app.thumbnails import ThumbnailCache
from clipscape.models.datasets import is_remote
from clipscape.models.display import printable

PREVIEW_SIZE = 512


def reveal_in_file_manager(path: str) -> bool:
    """Show ``path`` in the platform's file manager (selected where the platform can); False if none started.

    macOS: Finder with the file selected; Windows: Explorer with the file selected; elsewhere
    the parent folder opens in the desktop's default file manager (there is no portable way
    to select a file).  Runs detached, so the GUI never waits for it.
    """
    if sys.platform == "darwin":
        return bool(QProcess.startDetached("open", ["-R", path])[0])
    if sys.platform == "win32":
        # Explorer wants backslashes (what QDir.toNativeSeparators gives on Windows).
        return bool(QProcess.startDetached("explorer", ["/select,", path.replace("/", "\\")])[0])
    return QDesktopServices.openUrl(folder_url(path))


def folder_url(path: str) -> QUrl:
    """file:// URL of the folder holding ``path``, percent-encoded from its bytes (any name works)."""
    folder = os.fsencode(os.path.dirname(os.path.abspath(path)))
    return QUrl.fromEncoded(b"file://" + urllib.parse.quote_from_bytes(folder).encode("ascii"))


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
    """Details of the previewed image: picture, path, class and score, "Find similar", "Open"."""

    def __init__(self, session, thumbnails: ThumbnailCache | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._session = session
        if thumbnails is None:  # its own cache: large images, few of them
            thumbnails = ThumbnailCache(size=PREVIEW_SIZE, capacity=64, parent=self)
        self._thumbnails = thumbnails
        self._path = ""
        self._image = _ImageView(self)
        self._path_label = QLabel(self)
        self._path_label.setObjectName("previewPath")
        self._path_label.setTextFormat(Qt.TextFormat.PlainText)
        self._path_label.setWordWrap(True)
        self._path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                                 | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self._class_label = QLabel(self)
        self._class_label.setObjectName("previewClass")
        self._score_label = QLabel(self)
        self._score_label.setObjectName("previewScore")
        self._note = QLabel(self)
        self._note.setObjectName("previewNote")
        self._note.setWordWrap(True)
        self._similar_button = QPushButton("Find similar", self)
        self._similar_button.setObjectName("findSimilar")
        self._similar_button.setToolTip("Rank the collection by similarity to this image")
        self._reveal_button = QPushButton("Open in file manager", self)
        self._reveal_button.setObjectName("reveal")
        self._reveal_button.setToolTip("Show this file in the system file manager")

        buttons = QHBoxLayout()
        buttons.addWidget(self._similar_button)
        buttons.addWidget(self._reveal_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self._image, 1)
        for label in (self._path_label, self._class_label, self._score_label, self._note):
            layout.addWidget(label)
        layout.addLayout(buttons)

        self._thumbnails.ready.connect(self._on_thumbnail_ready)
        self._similar_button.clicked.connect(lambda: session.find_similar(session.previewed))
        self._reveal_button.clicked.connect(self._on_reveal)
        for signal in (session.previewChanged, session.collectionChanged, session.classificationChanged,
                       session.queryChanged):
            signal.connect(self.refresh)
        self.refresh()

    @property
    def thumbnails(self) -> ThumbnailCache:
        return self._thumbnails

    def refresh(self) -> None:
        """Show the session's previewed image and what is known of it now."""
        s, row = self._session, self._session.previewed
        self._note.clear()
        if row < 0 or s.collection is None:
            self._path = ""
            self._image.set_pixmap(None, "Click an image on the map or in the gallery")
            for label in (self._path_label, self._class_label, self._score_label):
                label.clear()
                label.hide()
            self._similar_button.setEnabled(False)
            self._reveal_button.setEnabled(False)
            return
        path = s.collection.paths[row]
        self._path_label.setText(printable(path))
        self._path_label.show()
        described = s.describe_class(row)
        self._class_label.setText(f"class: {described}" if described else "")
        self._class_label.setVisible(described is not None)
        score = None if s.scores is None else float(s.scores[row])
        self._score_label.setText("" if score is None else f"score: {score:.3f}")
        self._score_label.setVisible(score is not None)
        self._similar_button.setEnabled(True)
        self._reveal_button.setEnabled(not is_remote(path))   # a URL of embeddings made elsewhere
        if path != self._path:
            self._path = path
            self._show_pixmap()

    def facts(self) -> tuple[str, str, str]:
        """(path, class, score) lines as shown ("" for a line not shown)."""
        return tuple(label.text() if not label.isHidden() else ""
                     for label in (self._path_label, self._class_label, self._score_label))

    def status_text(self) -> str:
        """What the image area says instead of a picture: "Loading…", a load error, or ""."""
        return self._image.message()

    def note(self) -> str:
        return self._note.text()

    def shutdown(self) -> None:
        """Stop the image loads and wait for running ones (call when the window closes)."""
        self._thumbnails.shutdown()

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

    @Slot(object)
    def _on_thumbnail_ready(self, path: str) -> None:
        if self._path and path == self._path:
            self._show_pixmap()

    def _on_reveal(self) -> None:
        if self._path and not reveal_in_file_manager(self._path):
            QGuiApplication.clipboard().setText(self._path)
            self._note.setText("No file manager could be started here. The path is on the clipboard.")
