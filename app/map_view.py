"""The 2-D map of the image collection: one dot per image, coloured by class, cluster or score.

One pyqtgraph ScatterPlotItem holds every point (pen=None, one cached QBrush per distinct colour,
``data`` = row index), because per-point items, pens and hover masks are what make a scatter plot
crawl past ~100k points. Small overlay items draw the selection, the top-scoring points and the
hovered point on top. Hovering, clicking and box/lasso selection are done here with vectorised
numpy on the point coordinates, from an event filter on the plot's viewport, rather than by
pyqtgraph's per-point hit testing.

The widget only displays: coordinates, classes, clusters and scores are computed in ``models/``
and handed in as arrays.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush, QColor, QIcon, QLinearGradient, QPainter, QPainterPath, QPen, QPixmap,
)
from PySide6.QtWidgets import (
    QButtonGroup, QFrame, QGraphicsPathItem, QGraphicsRectItem, QHBoxLayout, QLabel,
    QListWidget, QListWidgetItem, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from clipscape.app.palette import PLAIN_COLOUR, UNKNOWN_COLOUR, class_colours, score_colours, score_lut

TOOLS = ("pan", "box", "lasso")
POINT_SIZE = 7
TOP_K_SIZE = 13
SELECTED_SIZE = 9
HOVER_SIZE = 14
HOVER_RADIUS_PX = 8.0
CLICK_SLOP_PX = 4
LASSO_STEP_PX = 3.0
DIM_ALPHA = 40
HOVER_THROTTLE_MS = 16
CARD_OFFSET = 16
CARD_MAX_PIXMAP = 192

UNKNOWN_LABEL = "unknown"
UNCLUSTERED_LABEL = "unclustered"

HoverProvider = Callable[[int], "tuple[QPixmap | None, str]"]


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Return a bool mask of the ``points`` (N×2) inside ``polygon`` (M×2), even-odd rule.

    A ray-crossing test in numpy, because QPainterPath.contains called once per point is far
    too slow for 100k points. Points inside the polygon's bounding box are sorted by y once, so
    each edge only visits the points in its own y-band (a free-hand lasso has hundreds of
    edges). Points exactly on an edge may fall either way.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(pts), dtype=bool)
    if len(pts) == 0 or len(poly) < 3:
        return inside
    (xmin, ymin), (xmax, ymax) = poly.min(axis=0), poly.max(axis=0)
    cand = np.flatnonzero((pts[:, 0] >= xmin) & (pts[:, 0] <= xmax)
                          & (pts[:, 1] >= ymin) & (pts[:, 1] <= ymax))
    order = cand[np.argsort(pts[cand, 1], kind="stable")]
    xs, ys = pts[order, 0], pts[order, 1]
    odd = np.zeros(len(order), dtype=bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        if yi != yj:
            # the edge crosses the horizontal ray of every point with y in [min, max)
            a, b = np.searchsorted(ys, (min(yi, yj), max(yi, yj)), side="left")
            if b > a:
                x_cross = xi + (ys[a:b] - yi) * (xj - xi) / (yj - yi)
                odd[a:b] ^= xs[a:b] < x_cross
        xj, yj = xi, yi
    inside[order] = odd
    return inside


class _BrushCache:
    """One QBrush per distinct RGBA, reused forever.

    pyqtgraph keys its symbol atlas on the brush object's identity, so handing it the same
    QBrush for the same colour is what keeps recolouring cheap.
    """

    def __init__(self) -> None:
        self._brushes: dict[int, QBrush] = {}

    def brush(self, key: int) -> QBrush:
        """The brush for a packed 0xRRGGBBAA colour."""
        brush = self._brushes.get(key)
        if brush is None:
            r, g, b, a = (key >> 24) & 255, (key >> 16) & 255, (key >> 8) & 255, key & 255
            brush = QBrush(QColor(r, g, b, a))
            self._brushes[key] = brush
        return brush

    def indexed(self, rgba: np.ndarray) -> tuple[list[QBrush], np.ndarray]:
        """Split N×4 uint8 colours into (distinct brushes, per-point index into them)."""
        c = np.asarray(rgba, dtype=np.uint32).reshape(-1, 4)
        keys = (c[:, 0] << 24) | (c[:, 1] << 16) | (c[:, 2] << 8) | c[:, 3]
        uniq, inverse = np.unique(keys, return_inverse=True)
        return [self.brush(int(k)) for k in uniq], inverse.reshape(-1)


class _FastScatter(pg.ScatterPlotItem):
    """A ScatterPlotItem that can place, recolour or hide 100k points in well under a second.

    pyqtgraph's public ``setData`` / ``setBrush(list)`` / ``setPointsVisible`` look every point
    up in the symbol atlas in a Python loop (0.3-0.8 s per call for 100k points on a small
    machine). With few distinct brushes we look each brush up once and fill the per-point record
    fields with numpy. That touches pyqtgraph internals (``data``, ``fragmentAtlas``), so the fast
    path is only taken when they look as expected, and anything else falls back to the public,
    slower calls.
    """

    fast_path = True  # tests switch this off to check the public-API fallback draws the same

    def _can_go_fast(self) -> bool:
        data = getattr(self, "data", None)
        names = getattr(getattr(data, "dtype", None), "names", None) or ()
        return (self.fast_path and hasattr(self, "fragmentAtlas")
                and {"x", "y", "size", "visible", "data", "brush", "sourceRect", "item",
                     "hovered"} <= set(names)
                and bool(self.opts.get("pxMode")) and bool(self.opts.get("useCache"))
                and not self.opts.get("hoverable"))

    def _atlas_rects(self, palette: list[QBrush]) -> np.ndarray:
        """Atlas source rectangles for the default symbol/size/pen with each brush."""
        styles = [(self.opts["symbol"], self.opts["size"], self.opts["pen"], b) for b in palette]
        rects = self.fragmentAtlas[styles]
        return np.array([tuple(r) for r in rects], dtype=self.data.dtype["sourceRect"])

    def _changed(self) -> None:
        update_sizes = getattr(self, "_updateMaxSpotSizes", None)
        if update_sizes is not None:
            update_sizes()
        self.bounds = [None, None]
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.invalidate()

    def set_points(self, xy: np.ndarray, palette: list[QBrush], index: np.ndarray,
                   visible: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        """Replace all points: positions ``xy`` (N×2), point i drawn with ``palette[index[i]]``,
        shown where ``visible`` (default all), carrying ``rows[i]`` as data (default i)."""
        n = len(xy)
        rows = np.arange(n) if rows is None else np.asarray(rows)
        index = np.asarray(index, dtype=np.intp).reshape(-1)
        visible = np.ones(n, dtype=bool) if visible is None else np.asarray(visible, bool)
        if len(index) != n or len(visible) != n:
            raise ValueError("xy, index and visible differ in length")
        table = np.empty(len(palette), dtype=object)
        table[:] = palette
        if self._can_go_fast():
            try:
                rect_table = self._atlas_rects(palette)
                data = np.empty(n, dtype=self.data.dtype)  # object fields start as None
            except (AttributeError, KeyError, TypeError, ValueError):
                pass
            else:
                data["x"], data["y"] = xy[:, 0], xy[:, 1]
                data["size"] = -1
                data["hovered"] = False
                data["visible"] = visible
                data["data"] = rows
                data["brush"] = table[index]
                data["sourceRect"] = rect_table[index]
                self.data["item"][...] = None
                self.data = data
                self._changed()
                self.sigPlotChanged.emit(self)
                return
        self.setData(x=xy[:, 0], y=xy[:, 1], data=rows, brush=table[index].tolist())
        self.setPointsVisible(visible)

    def set_indexed_brushes(self, palette: list[QBrush], index: np.ndarray) -> None:
        """Give point i the brush ``palette[index[i]]``."""
        index = np.asarray(index, dtype=np.intp).reshape(-1)
        if len(index) != len(self.data):
            raise ValueError(f"{len(index)} brushes for {len(self.data)} points")
        table = np.empty(len(palette), dtype=object)
        table[:] = palette
        if self._can_go_fast():
            try:
                rect_table = self._atlas_rects(palette)
            except (AttributeError, KeyError, TypeError, ValueError):
                pass
            else:
                self.data["brush"] = table[index]
                self.data["sourceRect"] = rect_table[index]
                self._changed()
                return
        self.setBrush(table[index].tolist())

    def set_visibility(self, visible: np.ndarray) -> None:
        """Show point i only where ``visible[i]``."""
        visible = np.asarray(visible, dtype=bool).reshape(-1)
        if len(visible) != len(self.data):
            raise ValueError(f"{len(visible)} flags for {len(self.data)} points")
        if self._can_go_fast():
            self.data["visible"] = visible
            self.invalidate()
        else:
            self.setPointsVisible(visible)


class _Gradient(QWidget):
    """The vertical viridis strip of the colour bar (high at the top), with a threshold tick."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(18, 80)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setFixedWidth(22)
        self._tick: float | None = None  # threshold position in [0, 1], None for no tick

    def set_tick(self, fraction: float | None) -> None:
        """Mark the threshold at ``fraction`` of the range (None hides the mark)."""
        self._tick = None if fraction is None else float(np.clip(fraction, 0.0, 1.0))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 0, -1, -1)
        grad = QLinearGradient(0, rect.bottom(), 0, rect.top())
        lut = score_lut()
        for i in range(0, 256, 17):
            grad.setColorAt(i / 255, QColor(*lut[i]))
        grad.setColorAt(1.0, QColor(*lut[255]))
        painter.fillRect(rect, grad)
        painter.setPen(QColor(90, 90, 90))
        painter.drawRect(rect)
        if self._tick is not None:
            y = rect.bottom() - self._tick * rect.height()
            painter.setPen(QPen(QColor(214, 39, 40), 2))
            painter.drawLine(QPointF(rect.left() - 2, y), QPointF(rect.right() + 2, y))
        painter.end()


class _ColourBar(QWidget):
    """The score scale shown in score mode: max label, viridis strip, min label."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("colourBar")
        self.max_label = QLabel("", self)
        self.max_label.setObjectName("colourBarMax")
        self.min_label = QLabel("", self)
        self.min_label.setObjectName("colourBarMin")
        self.gradient = _Gradient(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.max_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.gradient, 1, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.min_label, 0, Qt.AlignmentFlag.AlignHCenter)
        self._range = (0.0, 0.0)

    def set_range(self, lo: float, hi: float, threshold: float | None) -> None:
        """Show ``lo``..``hi`` and where ``threshold`` falls in it."""
        self._range = (float(lo), float(hi))
        self.max_label.setText(f"{hi:.3g}")
        self.min_label.setText(f"{lo:.3g}")
        self.set_threshold(threshold)

    def set_threshold(self, threshold: float | None) -> None:
        """Move the threshold tick (None removes it)."""
        lo, hi = self._range
        if threshold is None or not hi > lo:
            self.gradient.set_tick(None)
        else:
            self.gradient.set_tick((threshold - lo) / (hi - lo))


class _HoverCard(QFrame):
    """A small frameless card with a thumbnail and a caption, floating near the cursor.

    A child of the map (not a tooltip window), so it never steals focus and is clipped to the
    map; it lets mouse events through to the plot underneath.
    """

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("hoverCard")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("#hoverCard { background: palette(base); border: 1px solid #888;"
                           " border-radius: 4px; }")
        self.image = QLabel(self)
        self.image.setObjectName("hoverImage")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel(self)
        self.text.setObjectName("hoverText")
        self.text.setWordWrap(True)
        self.text.setMaximumWidth(CARD_MAX_PIXMAP + 40)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.image)
        layout.addWidget(self.text)
        self.hide()

    def set_content(self, pixmap: QPixmap | None, text: str) -> None:
        """Show ``pixmap`` (scaled down if large; hidden if None or null) above ``text``."""
        if pixmap is None or pixmap.isNull():
            self.image.clear()
            self.image.hide()
        else:
            if pixmap.width() > CARD_MAX_PIXMAP or pixmap.height() > CARD_MAX_PIXMAP:
                pixmap = pixmap.scaled(CARD_MAX_PIXMAP, CARD_MAX_PIXMAP,
                                       Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
            self.image.setPixmap(pixmap)
            self.image.show()
        self.text.setText(text)
        self.text.setVisible(bool(text))
        self.adjustSize()

    def place_near(self, pos: QPoint) -> None:
        """Put the card beside ``pos`` (parent coordinates), flipped to stay inside the parent."""
        parent = self.parentWidget()
        w, h = self.width(), self.height()
        x, y = pos.x() + CARD_OFFSET, pos.y() + CARD_OFFSET
        if x + w > parent.width():
            x = pos.x() - CARD_OFFSET - w
        if y + h > parent.height():
            y = pos.y() - CARD_OFFSET - h
        self.move(max(0, min(x, parent.width() - w)), max(0, min(y, parent.height() - h)))
        self.raise_()
        self.show()


def _swatch(colour: QColor, size: int = 12) -> QIcon:
    """A square colour-swatch icon for a legend entry."""
    pixmap = QPixmap(size, size)
    pixmap.fill(colour)
    painter = QPainter(pixmap)
    painter.setPen(QColor(60, 60, 60))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return QIcon(pixmap)


def _rgba(colour: QColor) -> np.ndarray:
    return np.array(colour.getRgb(), dtype=np.uint8)


class MapView(QWidget):
    """The 2-D map: points coloured plainly, by class, by cluster or by score; hover, click, select.

    Signals: ``pointClicked(row)``, ``pointHovered(row or -1)``,
    ``selectionChanged(np.ndarray of sorted rows)``, ``labelVisibilityChanged(label, visible)``.
    """

    pointClicked = Signal(int)
    pointHovered = Signal(int)
    selectionChanged = Signal(object)
    labelVisibilityChanged = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._coords = np.empty((0, 2), dtype=np.float32)
        self._mode = "plain"
        self._base = np.empty((0, 4), dtype=np.uint8)      # mode colours, before dimming
        self._colours = np.empty((0, 4), dtype=np.uint8)   # what is drawn
        self._visible = np.empty(0, dtype=bool)
        self._selection = np.empty(0, dtype=np.int64)
        # legend (class / cluster modes)
        self._labels: list[str] = []
        self._label_colours: list[QColor] = []
        self._label_counts: list[int] = []
        self._label_of = np.empty(0, dtype=np.intp)
        self._hidden: set[str] = set()   # remembered across show_classes for names still present
        # score mode
        self._scores: np.ndarray | None = None
        self._score_range = (0.0, 0.0)
        self._top_rows = np.empty(0, dtype=np.intp)
        self._threshold: float | None = None
        # interaction
        self._tool = "pan"
        self._hovered = -1
        self._hover_pos: QPointF | None = None
        self._hover_provider: HoverProvider | None = None
        self._left_down = False
        self._press_pos: QPointF | None = None
        self._drag_kind: str | None = None
        self._drag_add = False
        self._drag_start = QPointF()
        self._lasso: list[tuple[float, float]] = []
        self._lasso_last_px = QPointF()
        self._lasso_path = QPainterPath()
        self._brushes = _BrushCache()

        self._build_ui()

    # ----------------------------------------------------------------- construction
    def _build_ui(self) -> None:
        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(0, 0, 0, 0)
        self._tool_group = QButtonGroup(self)
        self._tool_group.setExclusive(True)
        self._tool_buttons: dict[str, QToolButton] = {}
        for name, tip in (("pan", "Drag to pan, wheel to zoom, click a point to open it"),
                          ("box", "Drag a rectangle to select (Shift adds)"),
                          ("lasso", "Draw around points to select (Shift adds)")):
            button = QToolButton(self)
            button.setText(name.capitalize())
            button.setToolTip(tip)
            button.setCheckable(True)
            self._tool_group.addButton(button)
            self._tool_buttons[name] = button
            toolbar.addWidget(button)
        self._tool_buttons["pan"].setChecked(True)
        for name, button in self._tool_buttons.items():
            button.toggled.connect(lambda on, n=name: on and self.set_tool(n))
        self._clear_button = QToolButton(self)
        self._clear_button.setText("Clear selection")
        self._clear_button.clicked.connect(self.clear_selection)
        toolbar.addWidget(self._clear_button)
        self._fit_button = QToolButton(self)
        self._fit_button.setText("Fit")
        self._fit_button.setToolTip("Zoom to show every point")
        self._fit_button.clicked.connect(self._reset_view)
        toolbar.addWidget(self._fit_button)
        toolbar.addStretch(1)
        self._status = QLabel(self)
        toolbar.addWidget(self._status)

        self._plot = pg.PlotWidget(self, background="w")
        item = self._plot.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.hideButtons()
        item.setMenuEnabled(False)
        self._view = item.getViewBox()
        self._view.setAspectLocked(True)
        self._view.disableAutoRange()

        self._scatter = _FastScatter(pen=None, size=POINT_SIZE, brush=QBrush(PLAIN_COLOUR))
        self._scatter.setZValue(0)
        self._top_item = pg.ScatterPlotItem(size=TOP_K_SIZE, pen=pg.mkPen("#d62728", width=2))
        self._top_item.setZValue(5)
        # selected points are redrawn in their own colour with a dark rim, so that even a
        # selection of most of the map stays readable (rings alone merge into a black blob)
        self._sel_item = _FastScatter(size=SELECTED_SIZE, pen=pg.mkPen("#202020", width=1.5))
        self._sel_item.setZValue(10)
        self._hover_item = pg.ScatterPlotItem(size=HOVER_SIZE, brush=None,
                                              pen=pg.mkPen("#ff7f0e", width=2.5))
        self._hover_item.setZValue(15)
        self._plot.addItem(self._scatter)
        for overlay in (self._top_item, self._sel_item, self._hover_item):
            self._view.addItem(overlay, ignoreBounds=True)

        pen = QPen(QColor(40, 40, 40), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        fill = QBrush(QColor(31, 119, 180, 40))
        self._rect_item = QGraphicsRectItem()
        self._path_item = QGraphicsPathItem()
        for shape in (self._rect_item, self._path_item):
            shape.setPen(pen)
            shape.setBrush(fill)
            shape.setZValue(20)
            shape.hide()
            self._view.addItem(shape, ignoreBounds=True)

        self._legend = QListWidget(self)
        self._legend.setObjectName("legend")
        self._legend.setFixedWidth(190)
        self._legend.setToolTip("Untick a label to hide its points")
        self._legend.itemChanged.connect(self._on_legend_item_changed)
        self._legend.hide()
        self._colour_bar = _ColourBar(self)
        self._colour_bar.hide()

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self._plot, 1)
        body.addWidget(self._legend)
        body.addWidget(self._colour_bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(toolbar)
        layout.addLayout(body, 1)

        self._card = _HoverCard(self)
        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(HOVER_THROTTLE_MS)
        self._hover_timer.timeout.connect(self._update_hover)
        self._view.sigRangeChanged.connect(self._on_range_changed)
        self._plot.viewport().setMouseTracking(True)
        self._plot.viewport().installEventFilter(self)
        self._update_status()

    # ----------------------------------------------------------------- data
    def set_coords(self, coords: np.ndarray, reset_view: bool = True) -> None:
        """Place the points (N×2, roughly in [-1, 1]); row i is image i of the collection.

        With the same N as now, colours, hidden labels and the selection are kept, so a UMAP
        layout can replace the PCA preview in place. A different N starts over in plain colours
        with nothing selected. ``reset_view`` zooms to fit all points.
        """
        coords = np.asarray(coords, dtype=np.float32)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"coords must be N×2, got shape {coords.shape}")
        n = len(coords)
        same = n == len(self._coords)
        had_selection = self._selection.size > 0
        self._set_hovered(-1)
        self._coords = np.ascontiguousarray(coords).copy()
        if not same:
            self._selection = np.empty(0, dtype=np.int64)
            self._plain_state(n)
        palette, index = self._brushes.indexed(self._colours)
        self._scatter.set_points(self._coords, palette, index, self._visible)
        self._update_overlays()
        if not same and had_selection:
            self.selectionChanged.emit(self._selection.copy())
        if reset_view:
            self._reset_view()

    def clear(self) -> None:
        """Remove every point (and so the selection, legend and colour bar)."""
        self.set_coords(np.empty((0, 2), dtype=np.float32), reset_view=False)

    def point_count(self) -> int:
        """Number of points on the map."""
        return len(self._coords)

    def coords(self) -> np.ndarray:
        """A copy of the N×2 float32 point positions."""
        return self._coords.copy()

    # ----------------------------------------------------------------- colour modes
    def show_plain(self) -> None:
        """Every point in PLAIN_COLOUR, all visible; no legend or colour bar."""
        self._plain_state(self.point_count())
        self._refresh()

    def _plain_state(self, n: int) -> None:
        """Set the plain-mode state for n points without drawing it."""
        self._mode = "plain"
        self._set_legend([], [], [], np.empty(0, dtype=np.intp), n)
        self._scores = None
        self._top_rows = np.empty(0, dtype=np.intp)
        self._base = np.tile(_rgba(PLAIN_COLOUR), (n, 1))
        self._colours = self._base.copy()
        self._visible = np.ones(n, dtype=bool)

    def show_classes(self, best: np.ndarray, names: list[str],
                     counts: dict[str, int] | None = None) -> None:
        """Colour by class: ``best[i]`` indexes ``names``, or is -1 for "unknown".

        The legend lists ``names`` in order, then "unknown" if any point has no class, each as
        "name (count)"; ``counts`` overrides the counts computed from ``best``. Labels hidden
        before stay hidden if they are still among the names.
        """
        best = self._check_len(np.asarray(best, dtype=np.int64).reshape(-1), "best")
        names = [str(name) for name in names]
        if best.size and (best.max() >= len(names) or best.min() < -1):
            raise ValueError("best holds an index outside names (and not -1)")
        labels, colours = list(names), class_colours(len(names))
        label_of = best.astype(np.intp)
        if (best < 0).any():
            labels.append(UNKNOWN_LABEL)
            colours.append(QColor(UNKNOWN_COLOUR))
            label_of = np.where(best < 0, len(names), label_of)
        computed = np.bincount(label_of, minlength=len(labels))
        counts = counts or {}
        label_counts = [int(counts.get(label, computed[i])) for i, label in enumerate(labels)]
        self._show_labels("classes", labels, colours, label_counts, label_of)

    def show_clusters(self, ids: np.ndarray) -> None:
        """Colour by cluster: id k is "cluster k+1"; -1 (no cluster) is "unclustered", in grey."""
        ids = self._check_len(np.asarray(ids, dtype=np.int64).reshape(-1), "ids")
        present = np.unique(ids[ids >= 0])
        palette = class_colours(int(present.max()) + 1 if present.size else 0)
        labels = [f"cluster {k + 1}" for k in present]
        colours = [palette[k] for k in present]
        label_of = np.searchsorted(present, ids).astype(np.intp)
        if (ids < 0).any():
            label_of[ids < 0] = len(labels)
            labels.append(UNCLUSTERED_LABEL)
            colours.append(QColor(UNKNOWN_COLOUR))
        counts = np.bincount(label_of, minlength=len(labels)) if ids.size else np.zeros(len(labels))
        self._show_labels("clusters", labels, colours, [int(c) for c in counts], label_of)

    def _show_labels(self, mode: str, labels: list[str], colours: list[QColor],
                     counts: list[int], label_of: np.ndarray) -> None:
        self._mode = mode
        self._scores = None
        self._top_rows = np.empty(0, dtype=np.intp)
        self._hidden &= set(labels)
        self._set_legend(labels, colours, counts, label_of, len(label_of))
        table = np.array([c.getRgb() for c in colours], dtype=np.uint8).reshape(-1, 4)
        self._base = table[label_of] if len(label_of) else np.empty((0, 4), np.uint8)
        self._refresh()

    def show_scores(self, scores: np.ndarray, top_k: int = 10,
                    threshold: float | None = None) -> None:
        """Colour by score on viridis over [min, max]; ring the ``top_k`` best; dim below threshold.

        The top points are redrawn larger, outlined and on top of the rest; points scoring under
        ``threshold`` are drawn nearly transparent. The colour bar shows min and max.
        """
        scores = self._check_len(np.asarray(scores, dtype=np.float64).reshape(-1), "scores")
        finite = np.isfinite(scores)
        lo, hi = (float(scores[finite].min()), float(scores[finite].max())) if finite.any() \
            else (0.0, 0.0)
        self._mode = "scores"
        self._set_legend([], [], [], np.empty(0, dtype=np.intp), len(scores))
        self._scores = scores
        self._score_range = (lo, hi)
        self._threshold = None if threshold is None else float(threshold)
        self._base = score_colours(scores, lo, hi)
        k = int(min(max(top_k, 0), finite.sum()))
        order = np.argsort(np.where(finite, -scores, np.inf), kind="stable")
        self._top_rows = order[:k].astype(np.intp)
        self._colour_bar.set_range(lo, hi, self._threshold)
        self._refresh()

    def set_threshold(self, threshold: float | None) -> None:
        """Dim points scoring under ``threshold`` (None: dim none). Only acts in score mode."""
        self._threshold = None if threshold is None else float(threshold)
        if self._mode == "scores":
            self._colour_bar.set_threshold(self._threshold)
            self._push_colours()

    def _check_len(self, values: np.ndarray, what: str) -> np.ndarray:
        if len(values) != self.point_count():
            raise ValueError(f"{what} has {len(values)} entries for {self.point_count()} points")
        return values

    # ----------------------------------------------------------------- legend
    def _set_legend(self, labels: list[str], colours: list[QColor], counts: list[int],
                    label_of: np.ndarray, n: int) -> None:
        self._labels, self._label_colours, self._label_counts = labels, colours, counts
        self._label_of = label_of if len(label_of) == n else np.zeros(n, dtype=np.intp)
        self._legend.blockSignals(True)
        self._legend.clear()
        for label, colour, count in zip(labels, colours, counts):
            item = QListWidgetItem(_swatch(colour), f"{label} ({count})")
            item.setData(Qt.ItemDataRole.UserRole, label)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if label in self._hidden
                               else Qt.CheckState.Checked)
            self._legend.addItem(item)
        self._legend.blockSignals(False)
        self._legend.setVisible(self._mode in ("classes", "clusters"))
        self._colour_bar.setVisible(self._mode == "scores")

    def legend_entries(self) -> list[tuple[str, int, QColor, bool]]:
        """(label, count, colour, visible) per legend row, in legend order; empty if no legend."""
        return [(label, count, QColor(colour), label not in self._hidden)
                for label, colour, count in zip(self._labels, self._label_colours,
                                                self._label_counts)]

    def hidden_labels(self) -> set[str]:
        """Legend labels whose points are currently hidden."""
        return {label for label in self._labels if label in self._hidden}

    def set_label_visible(self, label: str, visible: bool) -> None:
        """Show or hide the points of legend entry ``label`` (KeyError if not in the legend)."""
        if label not in self._labels:
            raise KeyError(label)
        if (label not in self._hidden) == bool(visible):
            return
        if visible:
            self._hidden.discard(label)
        else:
            self._hidden.add(label)
        item = self._legend.item(self._labels.index(label))
        self._legend.blockSignals(True)
        item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
        self._legend.blockSignals(False)
        self._apply_visibility()
        self.labelVisibilityChanged.emit(label, bool(visible))

    def _on_legend_item_changed(self, item: QListWidgetItem) -> None:
        label = item.data(Qt.ItemDataRole.UserRole)
        self.set_label_visible(label, item.checkState() == Qt.CheckState.Checked)

    # ----------------------------------------------------------------- drawing
    def _refresh(self) -> None:
        """Redraw everything after a mode change."""
        self._push_colours(overlays=False)
        self._apply_visibility()

    def _compute_visible(self) -> np.ndarray:
        n = self.point_count()
        hidden = [i for i, label in enumerate(self._labels) if label in self._hidden]
        if not hidden:
            return np.ones(n, dtype=bool)
        return ~np.isin(self._label_of, hidden)

    def _apply_visibility(self) -> None:
        """Hide points of hidden labels; they also leave the selection and the hover."""
        self._visible = self._compute_visible()
        self._scatter.set_visibility(self._visible)
        if self._hovered >= 0 and not self._visible[self._hovered]:
            self._set_hovered(-1)
        if self._selection.size:
            kept = self._selection[self._visible[self._selection]]
            if kept.size != self._selection.size:
                self._selection = kept
                self.selectionChanged.emit(kept.copy())
        self._update_overlays()

    def _push_colours(self, overlays: bool = True) -> None:
        """Apply threshold dimming to the mode colours and hand the brushes to the scatter."""
        colours = self._base.copy()
        if self._mode == "scores" and self._threshold is not None and self._scores is not None:
            dim = self._scores < self._threshold
            colours[dim, 3] = np.minimum(colours[dim, 3], DIM_ALPHA)
        self._colours = colours
        palette, index = self._brushes.indexed(colours)
        self._scatter.set_indexed_brushes(palette, index)
        if overlays:
            self._update_overlays()

    def _update_overlays(self) -> None:
        """Redraw the top-k rings and the selected points from the current state."""
        self._update_top_overlay()
        rows = self._selection
        palette, index = self._brushes.indexed(self._colours[rows])
        self._sel_item.set_points(self._coords[rows], palette, index, rows=rows)
        self._update_status()

    def _update_top_overlay(self) -> None:
        rows = self._top_rows
        if not rows.size:
            self._top_item.clear()
            return
        colours = self._base[rows].copy()
        colours[:, 3] = 255
        palette, index = self._brushes.indexed(colours)
        self._top_item.setData(x=self._coords[rows, 0], y=self._coords[rows, 1], data=rows,
                               brush=[palette[i] for i in index])

    def _update_status(self) -> None:
        n, k = self.point_count(), self._selection.size
        self._status.setText(f"{n:,} points" + (f" · {k:,} selected" if k else ""))

    def plot_widget(self) -> pg.PlotWidget:
        """The pyqtgraph PlotWidget (for exporting an image of the map, and for tests)."""
        return self._plot

    def _reset_view(self) -> None:
        if self.point_count():
            self._view.autoRange(items=[self._scatter])

    def point_colours(self) -> np.ndarray:
        """The N×4 uint8 RGBA drawn for each point now (threshold dimming included)."""
        return self._colours.copy()

    def visible_mask(self) -> np.ndarray:
        """N bools: False for points hidden through the legend."""
        return self._visible.copy()

    def top_rows(self) -> np.ndarray:
        """Rows ringed as best-scoring in score mode, best first (empty otherwise)."""
        return self._top_rows.copy()

    # ----------------------------------------------------------------- selection
    def set_tool(self, tool: str) -> None:
        """Choose what a left-drag does: "pan" the view, draw a "box", or draw a "lasso"."""
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
        self._cancel_drag()
        self._tool = tool
        button = self._tool_buttons[tool]
        if not button.isChecked():
            button.setChecked(True)
        viewport = self._plot.viewport()
        if tool == "pan":
            viewport.unsetCursor()
        else:
            viewport.setCursor(Qt.CursorShape.CrossCursor)

    def tool(self) -> str:
        """The current drag tool: "pan", "box" or "lasso"."""
        return self._tool

    def selection(self) -> np.ndarray:
        """Selected rows, sorted and unique (int64)."""
        return self._selection.copy()

    def clear_selection(self) -> None:
        """Select nothing; emits selectionChanged with an empty array."""
        self._set_selection(np.empty(0, dtype=np.int64), add=False)

    def set_selection(self, rows: np.ndarray) -> None:
        """Select ``rows`` (hidden rows are dropped); emits selectionChanged."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.point_count()):
            raise IndexError("row out of range")
        self._set_selection(rows[self._visible[rows]], add=False)

    def select_in_rect(self, x0: float, y0: float, x1: float, y1: float,
                       add: bool = False) -> None:
        """Select the visible points inside the rectangle (data coordinates, edges included)."""
        xlo, xhi = sorted((x0, x1))
        ylo, yhi = sorted((y0, y1))
        x, y = self._coords[:, 0], self._coords[:, 1]
        inside = self._visible & (x >= xlo) & (x <= xhi) & (y >= ylo) & (y <= yhi)
        self._set_selection(np.flatnonzero(inside), add)

    def select_in_polygon(self, points: list[tuple[float, float]], add: bool = False) -> None:
        """Select the visible points inside the polygon (data coordinates, even-odd rule)."""
        inside = self._visible & points_in_polygon(self._coords, np.asarray(points, np.float64))
        self._set_selection(np.flatnonzero(inside), add)

    def _set_selection(self, rows: np.ndarray, add: bool) -> None:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if add:
            rows = np.union1d(self._selection, rows).astype(np.int64)
        self._selection = rows
        self._update_overlays()
        self.selectionChanged.emit(rows.copy())

    # ----------------------------------------------------------------- hover
    def set_hover_provider(self, provider: HoverProvider | None) -> None:
        """Set ``fn(row) -> (pixmap or None, text)`` that fills the hover card."""
        self._hover_provider = provider
        self.refresh_hover()

    def refresh_hover(self) -> None:
        """Ask the provider again for the hovered point (e.g. its thumbnail just loaded)."""
        if self._hovered >= 0 and self._card.isVisible():
            self._fill_card(self._hovered)

    def hovered_row(self) -> int:
        """The row under the cursor, or -1."""
        return self._hovered

    def _fill_card(self, row: int) -> None:
        if self._hover_provider is None:
            pixmap, text = None, f"#{row}"
        else:
            pixmap, text = self._hover_provider(row)
        self._card.set_content(pixmap, text)
        if self._hover_pos is not None:
            self._card.place_near(self._plot.viewport().mapTo(self, self._hover_pos.toPoint()))

    def _set_hovered(self, row: int) -> None:
        if row == self._hovered:
            if row >= 0 and self._hover_pos is not None:
                self._card.place_near(self._plot.viewport().mapTo(self, self._hover_pos.toPoint()))
            return
        self._hovered = row
        if row >= 0:
            self._hover_item.setData(x=self._coords[row:row + 1, 0],
                                     y=self._coords[row:row + 1, 1])
            self._fill_card(row)
        else:
            self._hover_item.clear()
            self._card.hide()
        self.pointHovered.emit(row)

    def _update_hover(self) -> None:
        if self._hover_pos is None or self._left_down:
            return
        self._set_hovered(self._row_at(self._hover_pos))

    def _on_range_changed(self, *args) -> None:
        if self._hover_pos is not None and not self._hover_timer.isActive():
            self._hover_timer.start()

    def _to_data(self, pos: QPointF) -> QPointF:
        """Viewport pixel → data coordinates."""
        return self._view.mapSceneToView(self._plot.mapToScene(pos.toPoint()))

    def _row_at(self, pos: QPointF) -> int:
        """The visible point nearest to viewport position ``pos`` within HOVER_RADIUS_PX, or -1."""
        if not self.point_count():
            return -1
        p = self._to_data(pos)
        sx, sy = self._view.viewPixelSize()
        if not (sx > 0 and sy > 0):
            return -1
        dx = (self._coords[:, 0] - p.x()) / sx
        dy = (self._coords[:, 1] - p.y()) / sy
        near = np.flatnonzero(self._visible & (np.abs(dx) <= HOVER_RADIUS_PX)
                              & (np.abs(dy) <= HOVER_RADIUS_PX))
        if not near.size:
            return -1
        d2 = dx[near] ** 2 + dy[near] ** 2
        best = int(np.argmin(d2))
        return int(near[best]) if d2[best] <= HOVER_RADIUS_PX ** 2 else -1

    # ----------------------------------------------------------------- mouse
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        """Watch the plot viewport's mouse: hover, click, and box/lasso drags.

        In Box/Lasso mode left-button events are consumed here, so the ViewBox never pans;
        the wheel (zoom) still reaches it.
        """
        if obj is not self._plot.viewport():
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseMove:
            return self._mouse_move(event)
        if kind == QEvent.Type.MouseButtonPress:
            return self._mouse_press(event)
        if kind == QEvent.Type.MouseButtonRelease:
            return self._mouse_release(event)
        if kind == QEvent.Type.Leave:
            self._hover_pos = None
            self._hover_timer.stop()
            self._set_hovered(-1)
        return False

    def _mouse_press(self, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self._left_down = True
        pos = event.position()
        if self._tool == "pan":
            self._press_pos = QPointF(pos)
            return False
        self._set_hovered(-1)
        self._drag_kind = self._tool
        self._drag_add = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        start = self._to_data(pos)
        self._drag_start = start
        if self._tool == "box":
            self._rect_item.setRect(QRectF(start, start))
            self._rect_item.show()
        else:
            self._lasso = [(start.x(), start.y())]
            self._lasso_last_px = QPointF(pos)
            self._lasso_path = QPainterPath(start)
            self._path_item.setPath(self._lasso_path)
            self._path_item.show()
        return True

    def _mouse_move(self, event) -> bool:
        pos = event.position()
        if self._drag_kind is not None:
            p = self._to_data(pos)
            if self._drag_kind == "box":
                self._rect_item.setRect(QRectF(self._drag_start, p).normalized())
            else:
                d = pos - self._lasso_last_px
                if abs(d.x()) + abs(d.y()) >= LASSO_STEP_PX:
                    self._lasso.append((p.x(), p.y()))
                    self._lasso_last_px = QPointF(pos)
                    self._lasso_path.lineTo(p)
                    closed = QPainterPath(self._lasso_path)
                    closed.closeSubpath()
                    self._path_item.setPath(closed)
            return True
        if self._press_pos is not None:
            d = pos - self._press_pos
            if abs(d.x()) + abs(d.y()) > CLICK_SLOP_PX:
                self._press_pos = None  # a pan drag, not a click
        self._hover_pos = QPointF(pos)
        if not self._left_down and not self._hover_timer.isActive():
            self._hover_timer.start()
        return False

    def _mouse_release(self, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self._left_down = False
        pos = event.position()
        if self._drag_kind is not None:
            add = self._drag_add or bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            end = self._to_data(pos)
            kind = self._drag_kind
            lasso = self._lasso + [(end.x(), end.y())]
            self._cancel_drag()
            if kind == "box":
                self.select_in_rect(self._drag_start.x(), self._drag_start.y(), end.x(), end.y(),
                                    add=add)
            else:
                self.select_in_polygon(lasso, add=add)
            return True
        if self._press_pos is not None:
            d = pos - self._press_pos
            self._press_pos = None
            if abs(d.x()) + abs(d.y()) <= CLICK_SLOP_PX:
                row = self._row_at(pos)
                if row >= 0:
                    self.pointClicked.emit(row)
        return False

    def _cancel_drag(self) -> None:
        self._drag_kind = None
        self._rect_item.hide()
        self._path_item.hide()
        self._lasso = []
