"""The map's mouse: hover, click, and box/lasso drags, from an event filter on the plot's viewport.

Hit testing is vectorised numpy over the point coordinates (pyqtgraph's per-point hit tests
are what make a big scatter plot crawl). In Box/Lasso mode left-button events are consumed
here, so the ViewBox never pans; the wheel (zoom) still reaches it.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem

TOOLS = ("pan", "box", "lasso")
HOVER_RADIUS_PX = 8.0
CLICK_SLOP_PX = 4
LASSO_STEP_PX = 3.0
HOVER_THROTTLE_MS = 16


class PlotMouse(QObject):
    """Turns mouse events on ``view``'s plot into ``view.hover(row)``, ``view.click(row)``,
    ``view.select_rect(...)`` and ``view.select_polygon(...)``."""

    def __init__(self, view) -> None:
        super().__init__(view)
        self._view = view
        self._plot = view.plot_widget()
        self._box = self._plot.getPlotItem().getViewBox()
        self.tool = "pan"
        self.hover_pos: QPointF | None = None
        self._left_down = False
        self._press_pos: QPointF | None = None
        self._drag_kind: str | None = None
        self._drag_add = False
        self._drag_start = QPointF()
        self._lasso: list[tuple[float, float]] = []
        self._lasso_last_px = QPointF()
        self._lasso_path = QPainterPath()
        pen = QPen(QColor(40, 40, 40), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.rect_item, self.path_item = QGraphicsRectItem(), QGraphicsPathItem()
        for shape in (self.rect_item, self.path_item):
            shape.setPen(pen)
            shape.setBrush(QBrush(QColor(31, 119, 180, 40)))
            shape.setZValue(20)
            shape.hide()
            self._box.addItem(shape, ignoreBounds=True)
        self._timer = QTimer(self, singleShot=True, interval=HOVER_THROTTLE_MS)
        self._timer.timeout.connect(self._update_hover)
        self._box.sigRangeChanged.connect(self._on_range_changed)
        self._viewport = viewport = self._plot.viewport()
        viewport.setMouseTracking(True)
        viewport.installEventFilter(self)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"tool must be one of {TOOLS}, got {tool!r}")
        self.cancel_drag()
        self.tool = tool
        viewport = self._plot.viewport()
        viewport.unsetCursor() if tool == "pan" else viewport.setCursor(Qt.CursorShape.CrossCursor)

    def to_data(self, pos: QPointF) -> QPointF:
        """Viewport pixel → data coordinates."""
        return self._box.mapSceneToView(self._plot.mapToScene(pos.toPoint()))

    def row_at(self, pos: QPointF, coords: np.ndarray, visible: np.ndarray) -> int:
        """The visible point nearest to viewport position ``pos`` within HOVER_RADIUS_PX, or -1."""
        if not len(coords):
            return -1
        p = self.to_data(pos)
        sx, sy = self._box.viewPixelSize()
        if not (sx > 0 and sy > 0):
            return -1
        dx, dy = (coords[:, 0] - p.x()) / sx, (coords[:, 1] - p.y()) / sy
        near = np.flatnonzero(visible & (np.abs(dx) <= HOVER_RADIUS_PX) & (np.abs(dy) <= HOVER_RADIUS_PX))
        if not near.size:
            return -1
        d2 = dx[near] ** 2 + dy[near] ** 2
        best = int(np.argmin(d2))
        return int(near[best]) if d2[best] <= HOVER_RADIUS_PX ** 2 else -1

    # --- events -------------------------------------------------------------------------------
    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if obj is not self._viewport:   # not self._plot.viewport(): the plot may be being deleted
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseMove:
            return self._move(event)
        if kind == QEvent.Type.MouseButtonPress:
            return self._press(event)
        if kind == QEvent.Type.MouseButtonRelease:
            return self._release(event)
        if kind == QEvent.Type.Leave:
            self.hover_pos = None
            self._timer.stop()
            self._view.hover(-1)
        return False

    def _press(self, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self._left_down = True
        pos = event.position()
        if self.tool == "pan":
            self._press_pos = QPointF(pos)
            return False
        self._view.hover(-1)
        self._drag_kind = self.tool
        self._drag_add = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        start = self._drag_start = self.to_data(pos)
        if self.tool == "box":
            self.rect_item.setRect(QRectF(start, start))
            self.rect_item.show()
        else:
            self._lasso = [(start.x(), start.y())]
            self._lasso_last_px = QPointF(pos)
            self._lasso_path = QPainterPath(start)
            self.path_item.setPath(self._lasso_path)
            self.path_item.show()
        return True

    def _move(self, event) -> bool:
        pos = event.position()
        if self._drag_kind is not None:
            p = self.to_data(pos)
            if self._drag_kind == "box":
                self.rect_item.setRect(QRectF(self._drag_start, p).normalized())
            else:
                d = pos - self._lasso_last_px
                if abs(d.x()) + abs(d.y()) >= LASSO_STEP_PX:
                    self._lasso.append((p.x(), p.y()))
                    self._lasso_last_px = QPointF(pos)
                    self._lasso_path.lineTo(p)
                    closed = QPainterPath(self._lasso_path)
                    closed.closeSubpath()
                    self.path_item.setPath(closed)
            return True
        if self._press_pos is not None:
            d = pos - self._press_pos
            if abs(d.x()) + abs(d.y()) > CLICK_SLOP_PX:
                self._press_pos = None  # a pan drag, not a click
        self.hover_pos = QPointF(pos)
        if not self._left_down and not self._timer.isActive():
            self._timer.start()
        return False

    def _release(self, event) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self._left_down = False
        pos = event.position()
        if self._drag_kind is not None:
            add = self._drag_add or bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            end, kind, start = self.to_data(pos), self._drag_kind, self._drag_start
            lasso = self._lasso + [(end.x(), end.y())]
            self.cancel_drag()
            if kind == "box":
                self._view.select_rect(start.x(), start.y(), end.x(), end.y(), add=add)
            else:
                self._view.select_polygon(lasso, add=add)
            return True
        if self._press_pos is not None:
            d = pos - self._press_pos
            self._press_pos = None
            if abs(d.x()) + abs(d.y()) <= CLICK_SLOP_PX:
                self._view.click(pos)
        return False

    def cancel_drag(self) -> None:
        self._drag_kind = None
        self.rect_item.hide()
        self.path_item.hide()
        self._lasso = []

    def _update_hover(self) -> None:
        if self.hover_pos is not None and not self._left_down:
            self._view.hover_at(self.hover_pos)

    def _on_range_changed(self, *args) -> None:
        if self.hover_pos is not None and not self._timer.isActive():
            self._timer.start()
