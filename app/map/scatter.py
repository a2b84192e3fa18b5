"""The map's point layer: one pyqtgraph ScatterPlotItem that can place and recolour 100k points fast.

One item holds every point (pen=None, one cached QBrush per distinct colour, ``data`` = row
index), because per-point items, pens and hover masks are what make a scatter plot crawl past
~100k points.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor


class BrushCache:
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


class FastScatter(pg.ScatterPlotItem):
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
