"""The gallery: thumbnails of the rows the session lists, in rank order, with a class filter.

``GalleryModel`` is a lazy list model over *collection rows*: it keeps only the array of rows
``session.gallery_rows()`` gave (the selection or everything, ranked by the query, without
hidden labels, filtered by class) and builds an item's text, tooltip and thumbnail request
when the view asks for that item, i.e. when it is painted. With ``uniformItemSizes`` and a
fixed grid the view never asks for the data of rows it does not show.

The view still lays every row out, in C++, and asks the model for each row's index twice
while doing so (``QAbstractListModel.index`` calls ``rowCount``). A Python ``rowCount`` made
that ~2 µs a row on the GUI thread (3.8 s of layout after a new collection of 1M images), so
the model is a one-column ``QStandardItemModel`` that never makes an item: its row count and
index stay in C++ (a null item pointer a row, 8 bytes, set for 1M rows in one block: 8 ms cold,
where a ``QStringListModel``'s empty strings took 60-170 ms of the GUI thread), and only ``data``
and ``flags`` are Python, asked for the items painted or touched.

Thumbnails come from a ``ThumbnailCache`` of the gallery's own (a cache shared with another
view would lose that view's queued loads, which the gallery cancels whenever it scrolls).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QModelIndex, QSignalBlocker, QSize, Qt, Slot
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter, QPalette, QPixmap, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QLabel, QListView, QSlider,
                               QStyle, QStyledItemDelegate, QStyleOptionViewItem, QVBoxLayout, QWidget)

from clipscape.app.settings import THUMBNAIL_SIZES
from clipscape.app.thumbnails import ThumbnailCache
from clipscape.models.display import printable, printable_name

ALL_CLASSES = "All classes"
TEXT_LINES = 2          # name, then "score · class"
SPACING = 8
_FADED_OPACITY = 0.3
_FADED_CACHE_LIMIT = 2000
_LAYOUT_BATCH = 20_000   # rows the view lays out per event-loop pass (~3 ms of C++ a batch)


class GalleryModel(QStandardItemModel):
    """The session's gallery rows; each item is one image (no QStandardItem is made: see the
    module docstring for why the base class is a QStandardItemModel all the same).

    Roles: DisplayRole "name\\nscore · class", DecorationRole the thumbnail (a translucent square
    while it loads; faded when dimmed), ToolTipRole the full path plus score, class and any load
    error, ForegroundRole a grey brush when dimmed, UserRole the collection row.
    """

    def __init__(self, session, thumbnails: ThumbnailCache, parent=None):
        super().__init__(0, 1, parent)
        self._session, self._thumbnails = session, thumbnails
        self._shown = np.zeros(0, dtype=np.intp)
        self._dimmed: np.ndarray | None = None
        self._metrics: QFontMetrics | None = None
        self._text_width = 100
        self._dim_brush = QBrush(QColor(128, 128, 128))
        self._loading: QPixmap | None = None
        self._faded: dict[str, tuple[int, QPixmap]] = {}
        # path -> (row, position) of the painted items whose thumbnail is loading: the position is
        # kept so that a thumbnail's arrival finds its item without a search of every row shown
        self._waiting: dict[str, tuple[int, int]] = {}
        thumbnails.ready.connect(self._on_thumbnail_ready)

    def refresh(self) -> bool:
        """Take the session's rows again (numpy, no Python loop over them); False when they are
        the rows shown already (only the dimming is taken then: the view repaints what changed)."""
        s = self._session
        shown, self._dimmed = s.gallery_rows(), s.dimmed()
        if shown is self._shown or (shown.shape == self._shown.shape and np.array_equal(shown, self._shown)):
            self._shown = shown
            return False
        self.beginResetModel()
        self._shown = shown
        self._waiting.clear()
        with QSignalBlocker(self):   # inside the reset: no insert/remove signals for the view
            self.setRowCount(int(shown.size))   # C++: one block of null item pointers (8 ms for 1M, cold)
        self.endResetModel()
        return True

    def count(self) -> int:
        """How many rows are listed."""
        return int(self._shown.size)

    def forget_pixmaps(self) -> None:
        self._faded.clear()
        self._loading = None

    def rows(self) -> np.ndarray:
        """The collection rows shown, in display order."""
        return self._shown.copy()

    def row_at(self, position: int) -> int:
        return int(self._shown[position])

    def position_of(self, row: int) -> int:
        """The item position of collection row ``row``, or -1 when it is not shown (one vectorised
        search, ~1 ms at 1M, when the preview changes; no N-row position table to keep up)."""
        if row < 0:
            return -1
        found = np.flatnonzero(self._shown == row)
        return int(found[0]) if len(found) else -1

    def is_dimmed(self, row: int) -> bool:
        return self._dimmed is not None and bool(self._dimmed[row])

    def set_text_metrics(self, metrics: QFontMetrics, width: int) -> None:
        self._metrics, self._text_width = metrics, width

    def set_dim_brush(self, brush: QBrush) -> None:
        self._dim_brush = brush

    # --- model overrides: data and flags (rowCount and index stay in C++) --------------------
    def flags(self, index) -> Qt.ItemFlag:
        """Selectable and enabled, never editable, dragged or dropped on. Only asked for the
        items painted or touched."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < self._shown.size:
            return None
        row = int(self._shown[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display_text(row)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(row, index.row())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._dim_brush if self.is_dimmed(row) else None
        if role == Qt.ItemDataRole.UserRole:
            return row
        return None

    def details(self, row: int) -> list[str]:
        """What is known of a row: its score, then its class."""
        s, parts = self._session, []
        if s.scores is not None:
            parts.append(f"{s.scores[row]:.3f}")
        if s.classification is not None:
            parts.append(s.classification.label(row))
        return parts

    def _display_text(self, row: int) -> str:
        name = printable_name(self._session.collection.paths[row])
        if self._metrics is not None:
            name = self._metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, self._text_width)
        details = " · ".join(self.details(row))
        return f"{name}\n{details}" if details else name

    def _tooltip(self, row: int) -> str:
        s = self._session
        path = s.collection.paths[row]
        lines = [printable(path)]
        if s.scores is not None:
            lines.append(f"score: {s.scores[row]:.3f}")
        described = s.describe_class(row)
        if described is not None:
            lines.append(f"class: {described}")
        error = self._thumbnails.error(path)
        if error:
            lines.append(f"could not load: {error}")
        return "\n".join(lines)

    def _decoration(self, row: int, position: int) -> QPixmap:
        path = self._session.collection.paths[row]
        pixmap = self._thumbnails.get(path)
        if pixmap is None:
            self._waiting[path] = (row, position)
            return self._loading_pixmap()
        return self._faded_pixmap(path, pixmap) if self.is_dimmed(row) else pixmap

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

    @Slot(object)
    def _on_thumbnail_ready(self, path: str) -> None:
        """Repaint the one item whose thumbnail arrived, if it is shown."""
        row, position = self._waiting.pop(path, (-1, -1))
        if not (0 <= position < self._shown.size and self._shown[position] == row):
            position = self.position_of(row)   # (the rows were replaced since it was painted)
        if position >= 0:
            index = self.index(position, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ToolTipRole])


class _TileDelegate(QStyledItemDelegate):
    """Draws an item as IconMode would: the image centred above its (wrapped, centred) caption,
    within the grid cell; the cell is its size hint, so every row has the same, known size."""

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:  # noqa: N802 (Qt override)
        super().initStyleOption(option, index)
        option.decorationPosition = QStyleOptionViewItem.Position.Top
        option.decorationAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        option.displayAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        option.features |= QStyleOptionViewItem.ViewItemFeature.WrapText

    def sizeHint(self, option: QStyleOptionViewItem, index) -> QSize:  # noqa: N802 (Qt override)
        view = self.parent()
        grid = view.gridSize() if isinstance(view, QListView) else QSize()
        return grid if grid.isValid() else super().sizeHint(option, index)


class Gallery(QWidget):
    """A title, a class filter, a thumbnail-size slider and a grid of thumbnails in rank order.

    A click (or the arrow keys) previews an image; so do double-click and Enter.
    """

    def __init__(self, session, thumbnails: ThumbnailCache, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self._session, self._thumbnails, self._settings = session, thumbnails, settings
        self._model = GalleryModel(session, thumbnails, self)
        self._title_label = QLabel(self)
        self._title_label.setObjectName("galleryTitle")
        self._title_label.setTextFormat(Qt.TextFormat.PlainText)
        self._filter_box = QComboBox(self)
        self._filter_box.setObjectName("classFilter")
        self._filter_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._filter_box.setToolTip("Show only images of one class")
        self._size_slider = QSlider(Qt.Orientation.Horizontal, self)
        self._size_slider.setObjectName("thumbnailSize")
        self._size_slider.setRange(*THUMBNAIL_SIZES)
        self._size_slider.setSingleStep(16)
        self._size_slider.setPageStep(32)
        self._size_slider.setValue(thumbnails.size)
        self._size_slider.setFixedWidth(90)
        self._size_slider.setToolTip("Thumbnail size")
        self._view = QListView(self)
        self._setup_view()

        header = QHBoxLayout()
        header.setContentsMargins(6, 4, 4, 0)
        header.addWidget(self._title_label, 1)
        header.addWidget(self._filter_box)
        header.addWidget(self._size_slider)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self._view, 1)

        self._filter_box.currentIndexChanged.connect(self._on_filter_index)
        self._size_slider.valueChanged.connect(self._on_size)
        self._view.activated.connect(self._on_index)
        self._view.clicked.connect(self._on_index)
        self._view.selectionModel().currentChanged.connect(lambda current, _old: self._on_index(current))
        self._view.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        s = session
        for signal in (s.collectionChanged, s.queryChanged, s.classificationChanged, s.hiddenChanged,
                       s.selectionChanged, s.classFilterChanged, s.dimThresholdChanged, s.colourModeChanged,
                       s.clustersChanged):
            signal.connect(self.refresh)
        s.classesChanged.connect(self._fill_filter)
        s.classificationChanged.connect(self._fill_filter)
        s.classFilterChanged.connect(self._fill_filter)
        s.previewChanged.connect(self._show_previewed)
        self._fill_filter()
        self.refresh()

    def _setup_view(self) -> None:
        """A grid of tiles (image above its caption) that lays out uniformly and never lets items
        be moved or edited.

        It is a list view in ListMode, wrapping left to right in grid cells, with a delegate that
        puts the image above the text, rather than IconMode: IconMode indexes every item in a
        BSP tree at the end of its layout, one 70-110 ms pass at 1M rows (531 ms of layout in
        all), where ListMode lays 1M rows out in 50 ms, no pass over 3 ms."""
        view = self._view
        view.setModel(self._model)
        view.setItemDelegate(_TileDelegate(view))
        view.setViewMode(QListView.ViewMode.ListMode)
        view.setMovement(QListView.Movement.Static)
        view.setFlow(QListView.Flow.LeftToRight)
        view.setWrapping(True)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setUniformItemSizes(True)
        view.setLayoutMode(QListView.LayoutMode.Batched)   # 1M rows in passes of a few ms
        view.setBatchSize(_LAYOUT_BATCH)
        view.setWordWrap(True)
        view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setDragEnabled(False)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self._model.set_dim_brush(QBrush(view.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)))
        self._layout_grid()
        view.viewport().installEventFilter(self)

    def _layout_grid(self) -> None:
        """Cells of the thumbnail size plus two text lines, widened so the columns fill the width."""
        size = self._thumbnails.size
        metrics = QFontMetrics(self._view.font())
        cell = size + SPACING * 2
        # ListMode lays a row out in the viewport less the room of a scroll bar not shown yet, and
        # wraps a row that would fill that width exactly: the columns fill what is left
        bar = self._view.verticalScrollBar()
        reserve = 0 if bar.isVisible() else self._view.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        width = max(1, self._view.viewport().width() - reserve - 2)
        columns = max(1, width // cell)
        cell_w = max(cell, width // columns)
        self._view.setIconSize(QSize(size, size))
        self._view.setGridSize(QSize(cell_w, size + SPACING + metrics.lineSpacing() * TEXT_LINES + SPACING))
        self._view.verticalScrollBar().setSingleStep(max(8, size // 4))
        self._model.set_text_metrics(metrics, size)   # Qt wraps an icon-mode caption at the icon width

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        """Lay the grid out again whenever the viewport's width changes: a window resize, the
        side column's splitter, or the scroll bar coming and going (the widget's own size does
        not change then)."""
        if watched is self._view.viewport() and event.type() == QEvent.Type.Resize \
                and event.size().width() != event.oldSize().width():
            self._layout_grid()
        return False

    # --- what is shown (also for tests) -----------------------------------------------------------
    @property
    def view(self) -> QListView:
        return self._view

    @property
    def model(self) -> GalleryModel:
        return self._model

    def rows(self) -> list[int]:
        """The collection rows shown, in order, as a Python list: for tests (a list of N), never
        called by the window itself."""
        return self._model.rows().tolist()

    def is_dimmed(self, row: int) -> bool:
        return self._model.is_dimmed(row)

    def title(self) -> str:
        return self._title_label.text()

    def refresh(self) -> None:
        """Show the session's rows from the top; when they are the rows shown already (a change
        that did not move any, or the second signal of one change) only repaint them in place."""
        if self._model.refresh():
            self._thumbnails.cancel_pending()
            self._view.scrollToTop()
        else:
            self._view.viewport().update()   # scores, classes or dimming of the same rows
        self._title_label.setText(self._title())
        self._show_previewed()

    def _title(self) -> str:
        s = self._session
        if s.collection is None:
            return ""
        n, shown = len(s.collection), self._model.count()
        parts = [f"{len(s.selection):,} selected" if len(s.selection) else f"{n:,} images"]
        q = s.query
        if q is not None and s.scores is not None:
            parts.append(f"ranked by “{q.text}”" if q.kind == "text" else f"ranked by similarity to {printable_name(q.text)}")
        elif q is not None:
            parts.append("ranking…")
        text = ", ".join(parts)
        listed = len(s.selection) or n
        return text + (f" · {shown:,} shown" if shown != listed else "")

    def _fill_filter(self) -> None:
        """"All classes", the class names, and "unknown" when some image is; the session's choice current."""
        s = self._session
        names = list(s.class_list.names)
        if s.classification is not None and (s.classification.best < 0).any():
            names.append(s.classification.unknown_label)
        with QSignalBlocker(self._filter_box):
            self._filter_box.clear()
            self._filter_box.addItem(ALL_CLASSES)
            for name in names:
                self._filter_box.addItem(name, name)
            position = self._filter_box.findData(s.class_filter) if s.class_filter is not None else 0
            self._filter_box.setCurrentIndex(max(position, 0))
        self._filter_box.setEnabled(bool(names))

    def _show_previewed(self) -> None:
        """Make the previewed image the current item, if it is listed."""
        position = self._model.position_of(self._session.previewed)
        if position >= 0 and self._view.currentIndex().row() != position:
            with QSignalBlocker(self._view.selectionModel()):
                self._view.setCurrentIndex(self._model.index(position, 0))

    # --- slots ---------------------------------------------------------------------------
    def _on_filter_index(self, position: int) -> None:
        self._session.set_class_filter(self._filter_box.itemData(position) if position > 0 else None)

    def _on_index(self, index: QModelIndex) -> None:
        if index.isValid():
            self._session.set_preview(self._model.row_at(index.row()))

    def _on_size(self, size: int) -> None:
        self._thumbnails.set_size(size)
        self._settings.set_thumbnail_size(size)
        self._model.forget_pixmaps()
        self._layout_grid()
        self._view.viewport().update()

    def _on_scrolled(self, _value: int) -> None:
        """Drop thumbnail loads for items scrolled past; repainting re-requests visible ones."""
        self._thumbnails.cancel_pending()
        self._view.viewport().update()
