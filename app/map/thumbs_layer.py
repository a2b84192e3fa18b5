"""The map's close-zoom layer: each point's image, a fixed size on screen, in place of its dot.

One graphics item paints every thumbnail in device coordinates (like pyqtgraph's ``pxMode``):
the points are mapped through the painter's transform once, then the transform is reset and
each pixmap is drawn unscaled, centred on its point, framed in its point's colour (dark and
thicker when selected, red for the best-scoring, orange for the hovered one, drawn on top).
Thumbnails are scaled once to the on-screen size and kept here, so a frame draws ready pixmaps;
the layer only ever holds a few hundred rows (``detail.THUMB_MAX`` in view), so a Python loop
per thumbnail is fine.

Images come from the map's ``ThumbnailCache``: a missing one is asked for (it loads off the GUI
thread) and the point stays a dot until the cache's ``ready`` reaches ``on_ready``; a file that
cannot be read (or is not on this machine) stays a dot.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPen, QPixmap

THUMB_PX = 56          # the longest side of a thumbnail on screen, whatever the zoom
FRAME_PX = 2.0
MARK_FRAME_PX = 3.0
SELECTED_FRAME = QColor(32, 32, 32)
TOP_FRAME = QColor(214, 39, 40)
HOVER_FRAME = QColor(255, 127, 14)
SCALED_CAPACITY = 3000


class ThumbLayer(pg.GraphicsObject):
    """Thumbnails of a few rows at their points; see the module docstring."""

    def __init__(self, thumbnails, size: int = THUMB_PX) -> None:
        super().__init__()
        self._thumbnails, self._size = thumbnails, int(size)
        self._scaled: OrderedDict[str, QPixmap] = OrderedDict()   # path -> pixmap at screen size
        self._pens: dict[tuple[int, float], QPen] = {}
        self._hovered = -1
        self.clear()

    # --- what is shown ----------------------------------------------------------------------
    def clear(self) -> None:
        """Show nothing (the map is zoomed out)."""
        self.set_rows(np.zeros(0, np.intp), np.zeros((0, 2), np.float32), [], np.zeros((0, 4), np.uint8))

    def forget(self) -> None:
        """Drop every scaled thumbnail (another collection: the same path may be another image)."""
        self._scaled.clear()
        self.clear()

    def set_rows(self, rows: np.ndarray, xy: np.ndarray, paths: list[str], colours: np.ndarray,
                 selected: np.ndarray | None = None, top: np.ndarray | None = None) -> None:
        """Show the thumbnails of ``rows`` (drawn in this order, later on top) at ``xy`` (data
        coordinates), framed in ``colours`` (RGBA; alpha below 255 draws the image faded).
        ``selected`` flags each row, ``top`` lists best-scoring rows. Images not here yet are
        asked for when their row is first painted on screen (so a margin row loads only once
        a pan brings it in), and the cache loads the latest request first."""
        self.prepareGeometryChange()
        n = len(rows)
        self._rows = np.asarray(rows, np.intp).reshape(-1)
        self._row_list = self._rows.tolist()
        self._pens_of_rows: list[QPen] | None = None
        self._xy = np.asarray(xy, np.float64).reshape(-1, 2)
        self._paths = list(paths)
        self._colours = np.asarray(colours, np.uint8).reshape(-1, 4)
        self._selected = np.zeros(n, bool) if selected is None else np.asarray(selected, bool)
        self._top = np.isin(self._rows, np.zeros(0, np.intp) if top is None else np.asarray(top))
        self._slot: dict[str, list[int]] = {}
        for i, path in enumerate(self._paths):
            self._slot.setdefault(path, []).append(i)
        self._pixmaps: list[QPixmap | None] = [None] * n
        self._half = np.zeros((n, 2))       # each image's half width and height on screen (0: none)
        self._asked = np.zeros(n, bool)     # the cache was asked (or the image is here)
        for i, path in enumerate(self._paths):
            scaled = self._scaled.get(path)
            if scaled is not None:
                self._scaled.move_to_end(path)
                self._put(i, scaled)
        self._bounds = _bounds(self._xy)
        self.update()

    def cancel_loads(self) -> None:
        """Drop the image loads not started yet (the map zoomed out: nobody waits for them)."""
        self._thumbnails.cancel_pending()

    def set_top(self, top: np.ndarray) -> None:
        self._top = np.isin(self._rows, np.asarray(top, np.intp))
        self._pens_of_rows = None
        self.update()

    def set_hovered(self, row: int) -> None:
        if row != self._hovered:
            self._hovered = row
            self.update()

    def on_ready(self, path) -> None:
        """The cache has ``path``'s thumbnail now: draw it if it is one of ours."""
        slots = [i for i in self._slot.get(path, ()) if self._pixmaps[i] is None]
        if slots:
            pixmap = self._fetch(path)
            if pixmap is not None:
                for i in slots:
                    self._put(i, pixmap)
                self.update()

    def _put(self, i: int, pixmap: QPixmap) -> None:
        ratio = pixmap.devicePixelRatio() or 1.0
        self._pixmaps[i] = pixmap
        self._half[i] = (pixmap.width() / ratio / 2 + FRAME_PX, pixmap.height() / ratio / 2 + FRAME_PX)
        self._asked[i] = True

    def _ask(self, i: int) -> None:
        self._asked[i] = True
        pixmap = self._fetch(self._paths[i])
        if pixmap is not None:
            self._put(i, pixmap)

    def _fetch(self, path: str) -> QPixmap | None:
        """The screen-size image of ``path``, or None (a load is queued: ``on_ready`` follows)."""
        scaled = self._scaled.get(path)
        if scaled is not None:
            self._scaled.move_to_end(path)
            return scaled
        pixmap = self._thumbnails.get(path)
        if pixmap is None or pixmap.isNull() or self._thumbnails.error(path) is not None:
            return None   # loading, or unreadable / elsewhere: the dot says more than a grey square
        # scaled once, and as 32-bit pixels: the cache's 24-bit ones draw ~6× slower
        image = pixmap.toImage().convertToFormat(QImage.Format.Format_RGB32)
        if image.width() > self._size or image.height() > self._size:
            image = image.scaled(self._size, self._size, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        pixmap = QPixmap.fromImage(image)
        self._scaled[path] = pixmap
        while len(self._scaled) > SCALED_CAPACITY:
            self._scaled.popitem(last=False)
        return pixmap

    # --- what tests and the mouse ask ---------------------------------------------------------
    def rows(self) -> np.ndarray:
        """The rows this layer stands for (with or without their image yet)."""
        return self._rows.copy()

    def shown_rows(self) -> np.ndarray:
        """The rows drawn as an image now (when on screen)."""
        return self._rows[self._half[:, 0] > 0]

    def pixmap(self, row: int) -> QPixmap | None:
        """The image drawn for ``row``, None when it is a dot."""
        hits = np.flatnonzero(self._rows == row)
        return self._pixmaps[int(hits[-1])] if hits.size else None

    def row_at(self, x: float, y: float, sx: float, sy: float) -> int:
        """The row whose image is drawn on top at data point (x, y), with ``sx``, ``sy`` data
        units per pixel; -1 when no image is there."""
        if not len(self._rows):
            return -1
        half = self._half
        hit = ((np.abs(self._xy[:, 0] - x) <= half[:, 0] * sx) & (np.abs(self._xy[:, 1] - y) <= half[:, 1] * sy)
               & (half[:, 0] > 0))
        if self._hovered >= 0 and bool(np.any(hit & (self._rows == self._hovered))):
            return self._hovered   # drawn last, so on top
        hits = np.flatnonzero(hit)
        return int(self._rows[hits[-1]]) if hits.size else -1

    # --- painting -------------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        if self._bounds is None:
            return QRectF()
        x0, y0, x1, y1 = self._bounds
        px, py = self.pixelVectors()
        pad = self._size / 2 + MARK_FRAME_PX + 1
        dx = pad * (px.length() if px is not None else 0.0)
        dy = pad * (py.length() if py is not None else 0.0)
        return QRectF(x0 - dx, y0 - dy, x1 - x0 + 2 * dx, y1 - y0 + 2 * dy)

    def viewTransformChanged(self) -> None:  # noqa: N802 (pyqtgraph hook)
        self.prepareGeometryChange()   # the padding is in pixels: the bounds change with the zoom
        super().viewTransformChanged()

    def paint(self, painter, option, widget=None) -> None:
        if not len(self._rows):
            return
        t = painter.transform()
        xs = t.m11() * self._xy[:, 0] + t.m21() * self._xy[:, 1] + t.dx()
        ys = t.m12() * self._xy[:, 0] + t.m22() * self._xy[:, 1] + t.dy()
        device = painter.device()
        w, h = (device.width(), device.height()) if device is not None else (1 << 20, 1 << 20)
        m = self._size
        on_screen = (xs >= -m) & (xs <= w + m) & (ys >= -m) & (ys <= h + m)
        for i in np.flatnonzero(on_screen & ~self._asked):
            self._ask(int(i))
        shown = np.flatnonzero(on_screen & (self._half[:, 0] > 0))
        if not shown.size:
            return
        hovered = shown[self._rows[shown] == self._hovered]
        shown = np.concatenate([shown[self._rows[shown] != self._hovered], hovered])   # hovered on top
        size = 2 * (self._half[shown] - FRAME_PX)
        lefts = np.round(xs[shown] - size[:, 0] / 2).astype(int).tolist()
        tops = np.round(ys[shown] - size[:, 1] / 2).astype(int).tolist()
        alphas = self._colours[shown, 3].tolist()
        pens, hover_pen = self._frame_pens(), self._pen(HOVER_FRAME, MARK_FRAME_PX)
        hovered_row = self._hovered
        painter.resetTransform()
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for k, i in enumerate(shown.tolist()):
            x, y, (pw, ph) = lefts[k], tops[k], size[k].tolist()
            if alphas[k] < 255:
                painter.setOpacity(max(0.25, alphas[k] / 255))
                painter.drawPixmap(x, y, self._pixmaps[i])
                painter.setOpacity(1.0)
            else:
                painter.drawPixmap(x, y, self._pixmaps[i])
            pen = hover_pen if self._row_list[i] == hovered_row else pens[i]
            grow = pen.widthF() / 2
            painter.setPen(pen)
            painter.drawRect(QRectF(x - grow, y - grow, pw + 2 * grow, ph + 2 * grow))

    def _frame_pens(self) -> list[QPen]:
        """Each row's frame but the hovered one's: selected, best-scoring, else its colour."""
        if self._pens_of_rows is None:
            pens = []
            for i, (r, g, b, _) in enumerate(self._colours.tolist()):
                if self._selected[i]:
                    pens.append(self._pen(SELECTED_FRAME, MARK_FRAME_PX))
                elif self._top[i]:
                    pens.append(self._pen(TOP_FRAME, MARK_FRAME_PX))
                else:
                    pens.append(self._pen(QColor(r, g, b), FRAME_PX))
            self._pens_of_rows = pens
        return self._pens_of_rows

    def _pen(self, colour: QColor, width: float) -> QPen:
        key = (colour.rgba(), width)
        pen = self._pens.get(key)
        if pen is None:
            pen = self._pens[key] = QPen(colour, width)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        return pen


def _bounds(xy: np.ndarray) -> tuple[float, float, float, float] | None:
    if not len(xy):
        return None
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)

