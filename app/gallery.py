"""The gallery: thumbnails of the collection in rank order, with an optional class filter.

``GalleryModel`` is a lazy list model over *collection rows* (indices into the collection's
paths, scores and labels): it stores only numpy arrays of row numbers and builds an item's
text, tooltip and thumbnail request when the view asks for that item, i.e. when it is painted.
With ``uniformItemSizes`` and a fixed grid the view never asks for rows it does not show, so
100k images cost two integer arrays, one path→row dict, and nothing per unseen item.

Thumbnails come from a ``ThumbnailCache``; the model turns its ``ready(path)`` into
``dataChanged`` for that one item.  The gallery cancels the cache's queued loads whenever the
view scrolls or the shown rows change, then repaints, so only what is on screen gets queued
again: give the gallery its own cache (a cache shared with another view would lose that view's
queued loads too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QVBoxLayout,
    QWidget,
)

from clipscape.app.thumbnails import ThumbnailCache

ALL_CLASSES = "All classes"
GRID_SIZE = QSize(176, 200)
_TEXT_MARGIN = 28  # the view pads item text; eliding to less keeps the name on one line
_FADED_OPACITY = 0.3
_FADED_CACHE_LIMIT = 2000


class GalleryModel(QAbstractListModel):
    """Collection rows in display order; each item is one image.

    Roles: DisplayRole "name\\nscore · class", DecorationRole the thumbnail (a translucent
    square while it loads; faded when dimmed), ToolTipRole the full path plus score, class and
    any load error, ForegroundRole a grey brush when dimmed, UserRole the collection row.
    """

    def __init__(self, thumbnails: ThumbnailCache, parent=None):
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._paths: list[str] = []
        self._row_of_path: dict[str, int] = {}
        self._order = np.zeros(0, dtype=np.intp)  # rows shown before the class filter
        self._shown = np.zeros(0, dtype=np.intp)  # rows shown, in order: what the view sees
        self._position = np.zeros(0, dtype=np.intp)  # collection row -> item position or -1
        self._scores: np.ndarray | None = None
        self._labels: np.ndarray | None = None  # object array of str (or None) per row
        self._threshold: float | None = None
        self._class_filter: str | None = None
        self._metrics: QFontMetrics | None = None
        self._text_width = GRID_SIZE.width() - _TEXT_MARGIN
        self._dim_brush = QBrush(QColor(128, 128, 128))
        self._loading: QPixmap | None = None
        self._faded: dict[str, tuple[int, QPixmap]] = {}
        thumbnails.ready.connect(self._on_thumbnail_ready)

    # --- what is shown -------------------------------------------------------------------

    def set_collection(self, paths: Sequence[str]) -> None:
        """A new collection: every path, in path order, no scores, labels or threshold."""
        self._paths = [str(p) for p in paths]
        self._row_of_path = {path: row for row, path in enumerate(self._paths)}
        self._faded.clear()
        self.show(np.arange(len(self._paths)))

    def show(self, order: Sequence[int], scores: np.ndarray | None = None,
             labels: Sequence[str] | None = None, threshold: float | None = None) -> None:
        """Show collection rows ``order`` in that order; scores/labels are per collection row.

        Raises ``ValueError`` for a row outside the collection or per-row data of the wrong
        length (a caller mixing up two collections should fail loudly, not show wrong text).
        """
        count = len(self._paths)
        order = np.asarray(order, dtype=np.intp).reshape(-1)
        if order.size and (order.min() < 0 or order.max() >= count):
            raise ValueError(f"rows must lie in 0..{count - 1}")
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            if scores.shape[0] != count:
                raise ValueError(f"{scores.shape[0]} scores for {count} images")
        label_array = None
        if labels is not None:
            label_array = np.empty(len(labels), dtype=object)
            label_array[:] = list(labels)
            if label_array.shape[0] != count:
                raise ValueError(f"{label_array.shape[0]} labels for {count} images")
        self.beginResetModel()
        self._order, self._scores, self._labels = order, scores, label_array
        self._threshold = None if threshold is None else float(threshold)
        self._apply_filter()
        self.endResetModel()

    def set_class_filter(self, name: str | None) -> None:
        """Keep only rows labelled ``name`` (no labels: nothing matches); ``None`` keeps all."""
        if name == self._class_filter:
            return
        self.beginResetModel()
        self._class_filter = name
        self._apply_filter()
        self.endResetModel()

    def class_filter(self) -> str | None:
        return self._class_filter

    def _apply_filter(self) -> None:
        """Recompute the shown rows and the row→position inverse (numpy, no Python loop)."""
        shown = self._order
        if self._class_filter is not None:
            if self._labels is None:
                shown = shown[:0]
            else:
                shown = shown[self._labels[shown] == self._class_filter]
        self._shown = shown
        self._position = np.full(len(self._paths), -1, dtype=np.intp)
        self._position[shown] = np.arange(shown.size, dtype=np.intp)

    # --- queries -------------------------------------------------------------------------

    def rows(self) -> list[int]:
        """The collection rows shown, in display order (after the class filter)."""
        return self._shown.tolist()

    def collection_size(self) -> int:
        return len(self._paths)

    def unfiltered_count(self) -> int:
        """How many rows ``show`` asked for, before the class filter."""
        return int(self._order.size)

    def row_at(self, position: int) -> int:
        """The collection row of the item at ``position``."""
        return int(self._shown[position])

    def position_of(self, row: int) -> int:
        """The item position of collection row ``row``, or -1 when it is not shown."""
        if 0 <= row < self._position.size:
            return int(self._position[row])
        return -1

    def path(self, row: int) -> str:
        return self._paths[row]

    def is_dimmed(self, row: int) -> bool:
        """True when row ``row`` has a score below the threshold."""
        if self._scores is None or self._threshold is None:
            return False
        return bool(self._scores[row] < self._threshold)

    # --- presentation settings (set by the view) ------------------------------------------

    def set_text_metrics(self, metrics: QFontMetrics, width: int) -> None:
        """Font metrics and width the file name is elided to (the view's font and grid)."""
        self._metrics, self._text_width = metrics, width

    def set_dim_brush(self, brush: QBrush) -> None:
        """The text brush of dimmed items."""
        self._dim_brush = brush

    # --- QAbstractListModel --------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else int(self._shown.size)

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < self._shown.size:
            return None
        row = int(self._shown[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display_text(row)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._dim_brush if self.is_dimmed(row) else None
        if role == Qt.ItemDataRole.UserRole:
            return row
        return None

    def _details(self, row: int) -> list[str]:
        """The known facts about a row: formatted score, then class."""
        parts = []
        if self._scores is not None:
            parts.append(f"{self._scores[row]:.3f}")
        if self._labels is not None and self._labels[row]:
            parts.append(str(self._labels[row]))
        return parts

    def _display_text(self, row: int) -> str:
        name = os.path.basename(self._paths[row]) or self._paths[row]
        if self._metrics is not None:
            name = self._metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, self._text_width)
        details = " · ".join(self._details(row))
        return f"{name}\n{details}" if details else name

    def _tooltip(self, row: int) -> str:
        lines = [self._paths[row]]
        if self._scores is not None:
            lines.append(f"score: {self._scores[row]:.3f}")
        if self._labels is not None and self._labels[row]:
            lines.append(f"class: {self._labels[row]}")
        error = self._thumbnails.error(self._paths[row])
        if error:
            lines.append(f"could not load: {error}")
        return "\n".join(lines)

    def _decoration(self, row: int) -> QPixmap:
        path = self._paths[row]
        pixmap = self._thumbnails.get(path)
        if pixmap is None:
            return self._loading_pixmap()
        if self.is_dimmed(row):
            return self._faded_pixmap(path, pixmap)
        return pixmap

    def _loading_pixmap(self) -> QPixmap:
        """A faint square the size of a thumbnail, shown while the real one loads."""
        if self._loading is None:
            size = self._thumbnails.size
            self._loading = QPixmap(size, size)
            self._loading.fill(QColor(128, 128, 128, 40))
        return self._loading

    def _faded_pixmap(self, path: str, pixmap: QPixmap) -> QPixmap:
        """``pixmap`` drawn at low opacity, cached per path (renewed if the pixmap changed)."""
        cached = self._faded.get(path)
        if cached is not None and cached[0] == pixmap.cacheKey():
            return cached[1]
        faded = QPixmap(pixmap.size())
        faded.fill(Qt.GlobalColor.transparent)
        painter = QPainter(faded)
        painter.setOpacity(_FADED_OPACITY)
        painter.drawPixmap(0, 0, pixmap)
        painter.end()
        if len(self._faded) >= _FADED_CACHE_LIMIT:
            self._faded.clear()
        self._faded[path] = (pixmap.cacheKey(), faded)
        return faded

    @Slot(str)
    def _on_thumbnail_ready(self, path: str) -> None:
        """Repaint the one item whose thumbnail arrived, if it is shown."""
        row = self._row_of_path.get(path)
        if row is None:
            return
        position = self.position_of(row)
        if position >= 0:
            index = self.index(position)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole,
                                                 Qt.ItemDataRole.ToolTipRole])


class Gallery(QWidget):
    """A title, a class filter and a grid of thumbnails in rank order.

    Signals carry collection rows: ``activated`` (double-click or Enter on an item),
    ``currentChanged`` (the keyboard/mouse current item moved to a shown row; not emitted when
    the current item is cleared) and ``filterChanged`` (class name or ``None`` for all).
    """

    activated = Signal(int)
    currentChanged = Signal(int)
    filterChanged = Signal(object)

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None):
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._title = ""
        self._model = GalleryModel(thumbnails, self)

        self._title_label = QLabel(self)
        self._title_label.setTextFormat(Qt.TextFormat.PlainText)
        self._filter_box = QComboBox(self)
        self._filter_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._filter_box.setToolTip("Show only images of one class")
        self._filter_box.addItem(ALL_CLASSES)  # item 0; class items hold their name as data

        self._view = QListView(self)
        self._setup_view()

        header = QHBoxLayout()
        header.setContentsMargins(6, 4, 4, 0)
        header.addWidget(self._title_label, 1)
        header.addWidget(self._filter_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self._view, 1)

        self._filter_box.currentIndexChanged.connect(self._on_filter_index)
        self._view.activated.connect(self._on_activated)
        self._view.selectionModel().currentChanged.connect(self._on_current_changed)
        self._view.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self._update_title()

    def _setup_view(self) -> None:
        """An icon grid that lays out uniformly and never lets items be moved or edited."""
        view = self._view
        view.setModel(self._model)
        view.setViewMode(QListView.ViewMode.IconMode)
        view.setMovement(QListView.Movement.Static)
        view.setFlow(QListView.Flow.LeftToRight)
        view.setWrapping(True)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setUniformItemSizes(True)
        view.setLayoutMode(QListView.LayoutMode.Batched)
        view.setBatchSize(500)
        view.setGridSize(GRID_SIZE)
        size = self._thumbnails.size
        view.setIconSize(QSize(size, size))
        view.setWordWrap(True)
        view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setDragEnabled(False)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.verticalScrollBar().setSingleStep(GRID_SIZE.height() // 4)
        self._model.set_text_metrics(QFontMetrics(view.font()),
                                     GRID_SIZE.width() - _TEXT_MARGIN)
        self._model.set_dim_brush(QBrush(view.palette().color(
            QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)))

    # --- public API ----------------------------------------------------------------------

    @property
    def view(self) -> QListView:
        """The list view (for tests and for placing context menus)."""
        return self._view

    @property
    def model(self) -> GalleryModel:
        return self._model

    def set_collection(self, paths: list[str]) -> None:
        """A new collection: show every image in path order, without scores."""
        self._thumbnails.cancel_pending()
        self._model.set_collection(paths)
        self._title = f"All {len(paths)} images" if len(paths) != 1 else "1 image"
        self._update_title()

    def show_rows(self, order: Sequence[int], scores: np.ndarray | None = None,
                  labels: Sequence[str] | None = None, threshold: float | None = None,
                  title: str = "") -> None:
        """Show collection rows ``order`` in that order (e.g. best search match first).

        ``scores`` and ``labels`` are per collection row (length N) or ``None``; items scoring
        below ``threshold`` are dimmed.  The class filter stays as it is.  The view scrolls
        back to the top.
        """
        self._thumbnails.cancel_pending()
        self._model.show(order, scores, labels, threshold)
        self._title = title
        self._update_title()
        self._view.scrollToTop()

    def set_classes(self, names: list[str]) -> None:
        """Offer ``names`` in the class filter; keep the current choice if it is still there."""
        current = self.class_filter()
        self._filter_box.blockSignals(True)
        try:
            self._filter_box.clear()
            self._filter_box.addItem(ALL_CLASSES)
            for name in names:
                self._filter_box.addItem(name, name)
            position = self._filter_box.findData(current) if current is not None else 0
            self._filter_box.setCurrentIndex(max(position, 0))
        finally:
            self._filter_box.blockSignals(False)
        self._on_filter_index(self._filter_box.currentIndex())

    def set_class_filter(self, name: str | None) -> None:
        """Show only images labelled ``name`` (``None``: all).  Unknown names are added."""
        if name is None:
            self._filter_box.setCurrentIndex(0)
            return
        position = self._filter_box.findData(name)
        if position < 0:
            self._filter_box.addItem(name, name)
            position = self._filter_box.count() - 1
        self._filter_box.setCurrentIndex(position)

    def class_filter(self) -> str | None:
        """The class shown, or ``None`` for all classes."""
        return self._model.class_filter()

    def rows(self) -> list[int]:
        """The collection rows displayed, in order (after the class filter)."""
        return self._model.rows()

    def is_dimmed(self, row: int) -> bool:
        """True when collection row ``row`` scores below the threshold."""
        return self._model.is_dimmed(row)

    def title(self) -> str:
        """The title of the current listing (the header adds a count when a filter is on)."""
        return self._title

    def current_row(self) -> int:
        """The collection row of the current item, or -1."""
        index = self._view.currentIndex()
        return self._model.row_at(index.row()) if index.isValid() else -1

    def select_row(self, row: int) -> bool:
        """Make collection row ``row`` current and scroll to it; False if it is not shown."""
        position = self._model.position_of(row)
        if position < 0:
            return False
        index = self._model.index(position)
        self._view.setCurrentIndex(index)
        self._view.scrollTo(index)
        return True

    # --- slots ---------------------------------------------------------------------------

    def _update_title(self) -> None:
        """The header: the title (or the image count without one), plus what the filter kept."""
        shown, total = self._model.rowCount(), self._model.unfiltered_count()
        text = self._title or f"{total} image{'' if total == 1 else 's'}"
        if self._model.class_filter() is not None:
            text += f" · {shown} of {total} shown"
        self._title_label.setText(text)

    @Slot(int)
    def _on_filter_index(self, position: int) -> None:
        name = self._filter_box.itemData(position) if position > 0 else None
        if name == self._model.class_filter():
            return
        self._thumbnails.cancel_pending()
        self._model.set_class_filter(name)
        self._update_title()
        self.filterChanged.emit(name)

    @Slot(QModelIndex)
    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self.activated.emit(self._model.row_at(index.row()))

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.currentChanged.emit(self._model.row_at(current.row()))

    @Slot(int)
    def _on_scrolled(self, _value: int) -> None:
        """Drop thumbnail loads for items scrolled past; repainting re-requests visible ones."""
        self._thumbnails.cancel_pending()
        self._view.viewport().update()
