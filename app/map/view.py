"""The 2-D map of the collection, drawn from the session: one dot per image, coloured by class,
cluster or score, dimmed below the threshold; hover, click, box and lasso selection.

What is drawn is a level of detail (``detail.py``): a random sample of the points when they are
too many to tell apart, only those in view when zoomed in, their images at close zoom
(``thumbs_layer.py``). Hover, click, box and lasso work on every point all the same.

The view keeps no state of its own beyond what it has drawn: it redraws from the session when
the session says something changed, and a click or a drag changes the session (preview,
selection), which then tells every view, this one included.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from clipscape.app.map.colours import indexed_colours, with_faded
from clipscape.app.map.detail import LevelOfDetail
from clipscape.app.map.legend import Legend
from clipscape.app.map.mouse import TOOLS, PlotMouse
from clipscape.app.map.overlays import ColourBar, HoverCard
from clipscape.app.map.scatter import BrushCache, FastScatter
from clipscape.app.map.thumbs_layer import ThumbLayer
from clipscape.app.palette import PLAIN_COLOUR, score_table
from clipscape.models.display import printable_name
from clipscape.models.geometry import points_in_polygon, points_in_rect

POINT_SIZE = 7
TOP_K_SIZE = 13
SELECTED_SIZE = 9
HOVER_SIZE = 14
OVERLAY_MARGIN = 8
THUMBS_Z = 16   # images above the dots, rings and selection (they draw their own frames), below a drag's shape
NO_SCORES_HINT = "Colour by score: type a caption above, or use Find similar on an image"


class MapView(QWidget):
    """The map; see the module docstring. ``thumbnails`` fills the hover card and the close-zoom images."""

    def __init__(self, session, thumbnails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session, self._thumbnails = session, thumbnails
        self._coords = np.empty((0, 2), np.float32)
        self._bounds: QRectF | None = None
        self._table = np.empty((0, 4), np.uint8)   # the distinct colours drawn (K×4 RGBA) …
        self._index = np.empty(0, np.intp)          # … and each point's row in that table
        self._palette: list[QBrush] = []            # the table's brushes
        self._visible = np.empty(0, bool)
        self._hovered = -1
        self._hover_pos = QPoint(0, 0)   # where the card goes (this widget's coordinates)
        self._brushes = BrushCache()
        self._warmed = False   # the score colours are in the point layers' symbol atlases
        self._build()
        self.mouse = PlotMouse(self)
        s = session
        for signal in (s.collectionChanged, s.coordsChanged):
            signal.connect(self._redraw_points)
        for signal in (s.colourModeChanged, s.classificationChanged, s.clustersChanged, s.queryChanged,
                       s.dimThresholdChanged, s.hiddenChanged, s.classesChanged):
            signal.connect(self._recolour)
        s.selectionChanged.connect(self._draw_selection)
        thumbnails.ready.connect(self._on_thumbnail)
        thumbnails.ready.connect(self._thumbs.on_ready)
        self._redraw_points()

    # --- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        toolbar = QHBoxLayout()
        toolbar.setContentsMargins(0, 0, 0, 0)
        group = QButtonGroup(self)
        self._tool_buttons: dict[str, QToolButton] = {}
        for name, tip in (("pan", "Drag to pan, wheel to zoom, click a point to preview it"),
                          ("box", "Drag a rectangle to select (Shift adds)"),
                          ("lasso", "Draw around points to select (Shift adds)")):
            button = QToolButton(self, text=name.capitalize(), toolTip=tip, checkable=True)
            group.addButton(button)
            self._tool_buttons[name] = button
            toolbar.addWidget(button)
        self._tool_buttons["pan"].setChecked(True)
        for name, button in self._tool_buttons.items():
            button.toggled.connect(lambda on, n=name: on and self.set_tool(n))
        clear = QToolButton(self, text="Clear selection", toolTip="Select nothing (Esc)")
        clear.clicked.connect(self._session.clear_selection)
        fit = QToolButton(self, text="Fit", toolTip="Zoom to show every point")
        fit.clicked.connect(self.fit)
        self._status = QLabel(self)
        self._status.setObjectName("mapStatus")
        for w in (clear, fit):
            toolbar.addWidget(w)
        toolbar.addStretch(1)
        toolbar.addWidget(self._status)

        self._plot = pg.PlotWidget(self, background="w")
        item = self._plot.getPlotItem()
        for axis in ("left", "bottom"):
            item.hideAxis(axis)
        item.hideButtons()
        item.setMenuEnabled(False)
        self._box = item.getViewBox()
        self._box.setAspectLocked(True)
        self._box.disableAutoRange()
        self._scatter = FastScatter(pen=None, size=POINT_SIZE, brush=QBrush(PLAIN_COLOUR))
        self._top_item = pg.ScatterPlotItem(size=TOP_K_SIZE, pen=pg.mkPen("#d62728", width=2))
        # selected points are redrawn in their own colour with a dark rim, so that even a
        # selection of most of the map stays readable (rings alone merge into a black blob)
        self._sel_item = FastScatter(size=SELECTED_SIZE, pen=pg.mkPen("#202020", width=1.5))
        self._hover_item = pg.ScatterPlotItem(size=HOVER_SIZE, brush=None, pen=pg.mkPen("#ff7f0e", width=2.5))
        self._plot.addItem(self._scatter)
        self._thumbs = ThumbLayer(self._thumbnails)
        for z, overlay in ((5, self._top_item), (10, self._sel_item), (15, self._hover_item), (THUMBS_Z, self._thumbs)):
            overlay.setZValue(z)
            self._box.addItem(overlay, ignoreBounds=True)
        self.detail = LevelOfDetail(self._box, self._scatter, self._sel_item, self._thumbs, self)

        self.legend = Legend(self._session, self._plot)
        self.colour_bar = ColourBar(self._plot)
        self.colour_bar.hide()
        self._hint = QLabel(self._plot)
        self._hint.setObjectName("mapHint")
        self._hint.setWordWrap(True)
        self._hint.setStyleSheet("#mapHint { background: rgba(255, 255, 230, 235); border: 1px solid #cc9;"
                                 " border-radius: 4px; padding: 4px 8px; }")
        self._hint.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(toolbar)
        layout.addWidget(self._plot, 1)
        self._card = HoverCard(self)

    def plot_widget(self) -> pg.PlotWidget:
        """The pyqtgraph PlotWidget (for exporting an image of the map, and for tests)."""
        return self._plot

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._place_overlays()

    def _place_overlays(self) -> None:
        """Legend and colour bar in the plot's top-right corner, the hint along its top."""
        w, h, m = self._plot.width(), self._plot.height(), OVERLAY_MARGIN
        for overlay in (self.legend, self.colour_bar):
            hint = overlay.sizeHint()
            size = (min(hint.width(), w // 2), min(max(hint.height(), 40), h - 2 * m))
            overlay.setGeometry(w - size[0] - m, m, *size)
        self._hint.setGeometry(m, m, max(100, min(w - 2 * m, 460)), self._hint.heightForWidth(460) + 8)

    # --- drawing --------------------------------------------------------------------------------
    def _redraw_points(self) -> None:
        """New coordinates (or a new collection): place every point, fit the view."""
        coords = self._session.coords
        self._coords = np.empty((0, 2), np.float32) if coords is None else np.ascontiguousarray(coords, np.float32)
        self.hover(-1)
        s, n = self._session, len(self._coords)
        self._bounds = _bounds(self._coords)
        self.detail.set_points(self._coords, s.collection.paths if s.collection is not None and len(s.collection) == n else [])
        self._fit()
        self._recolour()
        if n and not self._warmed:   # once per window: the score colours' symbols, in idle passes
            self._warmed = True
            palette = self._brushes.brushes(with_faded(score_table()))
            for item in (self._scatter, self._sel_item):
                item.warm_atlas(palette)

    def _recolour(self) -> None:
        """Colours, hidden points, top-k rings, legend, colour bar and hint from the session."""
        s = self._session
        if len(self._coords) != (len(s.collection) if s.collection is not None else 0):
            self._coords = np.empty((0, 2), np.float32)   # coordinates of another collection: none yet
            self._bounds = None
            self.detail.set_points(self._coords, [])
        if len(self._coords):
            self._table, self._index = indexed_colours(s)
            self._palette = self._brushes.brushes(self._table)
            self._visible = s.visible()
        else:
            self._table, self._index, self._palette = np.empty((0, 4), np.uint8), np.empty(0, np.intp), []
            self._visible = np.empty(0, bool)
        self.detail.set_colours(self._table, self._palette, self._index, self._visible)
        if self._hovered >= 0 and not (self._hovered < len(self._visible) and self._visible[self._hovered]):
            self.hover(-1)
        self._draw_top()
        self._draw_selection(refresh=False)
        self.detail.refresh()
        self.legend.refresh()
        scored = s.colour_mode == "score" and s.scores is not None
        self.colour_bar.setVisible(scored)
        if scored:
            lo, hi = s.score_range()
            self.colour_bar.set_range(lo, hi, s.dim_threshold)
        self._hint.setText(NO_SCORES_HINT if s.colour_mode == "score" and s.query is None else "")
        self._hint.setVisible(bool(self._hint.text()) and len(self._coords) > 0)
        self._place_overlays()
        self.refresh_hover()

    def _draw_top(self) -> None:
        rows = self._session.top_rows() if self._session.colour_mode == "score" and len(self._coords) else []
        self.detail.set_top(rows)
        if not len(rows):
            self._top_item.clear()
            return
        colours = self._table[self._index[rows]]
        colours[:, 3] = 255
        palette, index = self._brushes.indexed(colours)
        self._top_item.setData(x=self._coords[rows, 0], y=self._coords[rows, 1], data=rows,
                               brush=[palette[i] for i in index])

    def _draw_selection(self, refresh: bool = True) -> None:
        rows = self._session.selection if len(self._coords) else np.zeros(0, np.int64)
        self.detail.set_selection(rows, refresh)
        n, k = len(self._coords), len(rows)
        hidden = int(n - self._visible.sum()) if n else 0
        self._status.setText(f"{n:,} points" + (f" · {hidden:,} hidden" if hidden else "")
                             + (f" · {k:,} selected" if k else ""))

    def fit(self) -> None:
        """Zoom to show every point (all of them, not only those drawn), and draw for that view."""
        self._fit()
        self.detail.refresh()

    def _fit(self) -> None:
        if self._bounds is not None:
            self._box.setRange(self._bounds, padding=None)

    # --- what is drawn (for tests and the README screenshot) --------------------------------------
    def point_count(self) -> int:
        return len(self._coords)

    def coords(self) -> np.ndarray:
        return self._coords.copy()

    def point_colours(self) -> np.ndarray:
        """The N×4 RGBA drawn for each point now (dimming included)."""
        return self._table[self._index]

    def visible_mask(self) -> np.ndarray:
        return self._visible.copy()

    def top_rows(self) -> np.ndarray:
        """Rows ringed as best-scoring, as drawn."""
        data = self._top_item.data["data"] if len(self._top_item.data) else []
        return np.asarray(list(data), dtype=np.intp)

    def status_text(self) -> str:
        return self._status.text()

    def hint_text(self) -> str:
        return self._hint.text() if not self._hint.isHidden() else ""

    def hover_text(self) -> str:
        return self._card.text.text() if not self._card.isHidden() else ""

    # --- interaction (PlotMouse calls these) ------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        """What a left-drag does: "pan" the view, draw a "box", or draw a "lasso"."""
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
        self.mouse.set_tool(tool)
        if not self._tool_buttons[tool].isChecked():
            self._tool_buttons[tool].setChecked(True)

    def tool(self) -> str:
        return self.mouse.tool

    def select_rect(self, x0: float, y0: float, x1: float, y1: float, add: bool = False) -> None:
        """Select the visible points inside the rectangle (data coordinates, edges included)."""
        inside = self._visible & points_in_rect(self._coords, x0, y0, x1, y1)
        self._session.set_selection(np.flatnonzero(inside), add=add)

    def select_polygon(self, points: list[tuple[float, float]], add: bool = False) -> None:
        """Select the visible points inside the polygon (data coordinates, even-odd rule)."""
        inside = self._visible & points_in_polygon(self._coords, np.asarray(points, np.float64))
        self._session.set_selection(np.flatnonzero(inside), add=add)

    def row_at(self, pos: QPointF) -> int:
        """The row under viewport position ``pos``: the image drawn on top there (close zoom),
        else the nearest visible point within the hover radius, else -1."""
        p, (sx, sy) = self.mouse.to_data(pos), self._box.viewPixelSize()
        row = self._thumbs.row_at(p.x(), p.y(), sx, sy) if sx > 0 and sy > 0 else -1
        return row if row >= 0 else self.mouse.row_at(pos, self._coords, self._visible)

    def click(self, pos: QPointF) -> None:
        row = self.row_at(pos)
        if row >= 0:
            self._session.set_preview(row)

    def hover_at(self, pos: QPointF) -> None:
        self.hover(self.row_at(pos), pos)

    def hovered_row(self) -> int:
        return self._hovered

    def hover(self, row: int, pos: QPointF | None = None) -> None:
        """Ring point ``row`` and show its card near ``pos`` (viewport coordinates); -1 hides them."""
        self._hovered = row
        self._thumbs.set_hovered(row)
        if row < 0:
            self._hover_item.clear()
            self._card.hide()
            return
        self._hover_item.setData(x=self._coords[row:row + 1, 0], y=self._coords[row:row + 1, 1])
        if pos is not None:
            self._hover_pos = self._plot.viewport().mapTo(self, QPoint(int(pos.x()), int(pos.y())))
        self._fill_card(row)

    def refresh_hover(self) -> None:
        if self._hovered >= 0 and self._card.isVisible():
            self._fill_card(self._hovered)

    def _fill_card(self, row: int) -> None:
        """Fill the card and place it by the cursor again (a thumbnail arriving makes it bigger)."""
        self._card.set_content(self._thumbnails.get(self._session.collection.paths[row]), self.describe_row(row))
        self._card.place_near(self._hover_pos)

    def describe_row(self, row: int) -> str:
        """The hover card's text for ``row``: name, class (or best guess), score."""
        s = self._session
        lines = [printable_name(s.collection.paths[row])]
        described = s.describe_class(row)
        if described is not None:
            lines.append(f"class: {described}")
        if s.scores is not None:
            lines.append(f"score: {s.scores[row]:.3f}")
        return "\n".join(lines)

    def _on_thumbnail(self, path) -> None:
        c = self._session.collection
        if c is not None and 0 <= self._hovered < len(c) and c.paths[self._hovered] == path:
            self.refresh_hover()



def _bounds(coords: np.ndarray) -> QRectF | None:
    """The rectangle holding every finite point, None when there is none (a column's min and
    max, ~2 ms at 1M; the masked pass only when a coordinate is not finite)."""
    if not len(coords):
        return None
    x, y = coords[:, 0], coords[:, 1]
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    if not np.isfinite([x0, x1, y0, y1]).all():
        finite = np.isfinite(x) & np.isfinite(y)
        if not finite.any():
            return None
        x, y = x[finite], y[finite]
        x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    return QRectF(x0, y0, x1 - x0, y1 - y0)
