"""The map's point layer: one pyqtgraph ScatterPlotItem that can place and recolour 1M points fast.

One item holds every point (pen=None, one cached QBrush per distinct colour), because per-point
items, pens and hover masks are what make a scatter plot crawl past ~100k points. Colours come
as a small table and a per-point index into it (``colours.indexed_colours``), so nothing here
finds the distinct colours of N points or makes a Python object per point.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
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

    def brushes(self, table: np.ndarray) -> list[QBrush]:
        """The brush of each row of a small K×4 uint8 colour table (a Python call per row: K, not N)."""
        return [self.brush(int(k)) for k in _packed_keys(table)]

    def indexed(self, rgba: np.ndarray) -> tuple[list[QBrush], np.ndarray]:
        """Split a few N×4 uint8 colours into (distinct brushes, per-point index into them).

        It sorts N keys: for a handful of points (the top-k rings), not for the whole map.
        """
        uniq, inverse = np.unique(_packed_keys(rgba), return_inverse=True)
        return [self.brush(int(k)) for k in uniq], inverse.reshape(-1)


def _packed_keys(rgba: np.ndarray) -> np.ndarray:
    c = np.asarray(rgba, dtype=np.uint32).reshape(-1, 4)
    return (c[:, 0] << 24) | (c[:, 1] << 16) | (c[:, 2] << 8) | c[:, 3]


class FastScatter(pg.ScatterPlotItem):
    """A ScatterPlotItem that can place, recolour or hide a million points in a fraction of a second.

    pyqtgraph's public ``setData`` / ``setBrush(list)`` / ``setPointsVisible`` look every point
    up in the symbol atlas in a Python loop (0.3-0.8 s per call for 100k points on a small
    machine). With few distinct brushes we look each brush up once and fill the per-point record
    fields with numpy. That touches pyqtgraph internals (``data``, ``fragmentAtlas``), so the fast
    path is only taken when they look as expected, and anything else falls back to the public,
    slower calls.

    Clicks are left to the map (``PlotMouse`` finds the nearest point with numpy): pyqtgraph's
    own ``mouseClickEvent`` calls ``pointsAt``, which makes a SpotItem for every point (3.5 s
    and 1M objects for the cyclic collector to walk ever after, at 1M points).
    """

    fast_path = True  # tests switch this off to check the public-API fallback draws the same
    _own_records = None   # the records set_points made (pyqtgraph's setData makes others)
    _pool = None          # ... as the head of this buffer, reused while the count changes

    def _can_go_fast(self) -> bool:
        data = getattr(self, "data", None)
        names = getattr(getattr(data, "dtype", None), "names", None) or ()
        return (self.fast_path and hasattr(self, "fragmentAtlas")
                and {"x", "y", "size", "visible", "data", "brush", "sourceRect", "item",
                     "hovered"} <= set(names)
                and bool(self.opts.get("pxMode")) and bool(self.opts.get("useCache"))
                and not self.opts.get("hoverable"))

    def _atlas_rects(self, palette: list[QBrush]) -> np.ndarray:
        """Atlas source rectangles (K×4 x, y, w, h) for the default symbol/size/pen with each brush."""
        styles = [(self.opts["symbol"], self.opts["size"], self.opts["pen"], b) for b in palette]
        rects = self.fragmentAtlas[styles]
        return np.array([tuple(r) for r in rects], dtype=_rect_view(self.data[:0]).dtype).reshape(-1, 4)

    def warm_atlas(self, palette: list[QBrush], per_pass: int = 8, interval_ms: int = 15) -> None:
        """Draw these brushes' symbols into the symbol atlas ahead of need, ``per_pass`` brushes an
        event-loop pass (a few ms each): the first caption would otherwise draw the 257 score
        colours (and a dim threshold their 257 faded ones) at once, 30-60 ms of the GUI thread."""
        left = list(palette)

        def step() -> None:
            chunk, left[:] = left[:per_pass], left[per_pass:]
            try:
                self._atlas_rects(chunk)
            except (AttributeError, KeyError, TypeError, ValueError, RuntimeError):
                return   # not the pyqtgraph this was written for, or the item is gone
            if left:
                QTimer.singleShot(interval_ms, step)

        if left:
            QTimer.singleShot(interval_ms, step)

    def _changed(self) -> None:
        update_sizes = getattr(self, "_updateMaxSpotSizes", None)
        if update_sizes is not None:
            update_sizes()
        self.bounds = [None, None]
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.invalidate()

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph override)
        ev.ignore()   # see the class docstring: the map handles clicks

    def set_points(self, xy: np.ndarray, palette: list[QBrush], index: np.ndarray,
                   visible: np.ndarray | None = None) -> None:
        """Replace all points: positions ``xy`` (N×2), point i drawn with ``palette[index[i]]``,
        shown where ``visible`` (default all). Points carry no ``data`` (the view knows its rows)."""
        n = len(xy)
        index = np.asarray(index, dtype=np.intp).reshape(-1)
        visible = np.ones(n, dtype=bool) if visible is None else np.asarray(visible, bool)
        if len(index) != n or len(visible) != n:
            raise ValueError("xy, index and visible differ in length")
        fast = self._can_go_fast()
        # the same N and brushes (UMAP replacing PCA): only the positions and visibility change
        same = fast and len(self.data) == n and self.data is self._own_records and self._drawn_with(palette, index)
        table, self._brushes_drawn = _object_table(palette), None
        if fast:
            try:
                rect_table = self._atlas_rects(palette)
                data = self.data if len(self.data) == n else self._pooled_records(n)
                rects = _rect_view(data)
            except (AttributeError, KeyError, TypeError, ValueError):
                pass
            else:
                # the item defaults, and no SpotItem refers to a record any more; records this
                # method wrote have the defaults already
                for name in ("item",) if data is self._own_records else ("symbol", "pen", "data", "item"):
                    data[name] = None
                data["x"], data["y"] = xy[:, 0], xy[:, 1]
                data["size"] = -1
                data["hovered"] = False
                data["visible"] = visible
                if not same:
                    data["brush"] = table[index]
                    rects[...] = rect_table[index]
                self._own_records = data
                if data is not self.data:
                    self.data["item"][...] = None
                    self.data = data
                self._brushes_drawn = (palette, index)
                self._changed()
                self.sigPlotChanged.emit(self)
                return
        self.setData(x=xy[:, 0], y=xy[:, 1], brush=table[index])
        self.setPointsVisible(visible)

    def _pooled_records(self, n: int) -> np.ndarray:
        """n records, the head of a buffer kept for the next call: the level of detail places a
        subset of a different size at every pick, and zeroing new records costs ~0.2 µs each."""
        pool = self._pool
        if pool is None or pool.dtype != self.data.dtype or len(pool) < n or len(pool) > 4 * max(n, 1 << 16):
            pool = self._pool = _records(n + n // 4, self.data.dtype)
        return pool[:n]

    def set_indexed_brushes(self, palette: list[QBrush], index: np.ndarray) -> None:
        """Give point i the brush ``palette[index[i]]``."""
        index = np.asarray(index, dtype=np.intp).reshape(-1)
        if len(index) != len(self.data):
            raise ValueError(f"{len(index)} brushes for {len(self.data)} points")
        if self._can_go_fast() and self._drawn_with(palette, index):
            return   # a recolour that changes nothing (a caption typed while colouring by class)
        table = _object_table(palette)
        if self._can_go_fast():
            try:
                rect_table = self._atlas_rects(palette)
                rects = _rect_view(self.data)
            except (AttributeError, KeyError, TypeError, ValueError):
                pass
            else:
                self.data["brush"] = table[index]
                rects[...] = rect_table[index]
                self._brushes_drawn = (palette, index)
                self._changed()
                return
        self._brushes_drawn = None
        self.setBrush(table[index])

    def _drawn_with(self, palette: list[QBrush], index: np.ndarray) -> bool:
        """Whether the fast path last drew exactly these brushes (one comparison of N ints)."""
        drawn = getattr(self, "_brushes_drawn", None)
        return (drawn is not None and len(drawn[0]) == len(palette)
                and all(a is b for a, b in zip(drawn[0], palette)) and np.array_equal(drawn[1], index))

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


def _object_table(palette: list[QBrush]) -> np.ndarray:
    table = np.empty(len(palette), dtype=object)
    table[:] = palette
    return table


def _records(n: int, dtype: np.dtype) -> np.ndarray:
    """n of pyqtgraph's point records. np.zeros, not np.empty: numpy fills a structured dtype's
    object fields with None one record and field at a time (0.6 s for 1M records) but zeroes
    memory at once; ``set_points`` then sets every object field with one assignment each."""
    return np.zeros(n, dtype=dtype)


def _rect_view(data: np.ndarray) -> np.ndarray:
    """The records' ``sourceRect`` (x, y, w, h) as an N×4 integer view of the same memory.

    Assigning a K×4 table's rows through it is a plain gather (3× quicker at 1M than assigning
    a structured ``sourceRect`` array); ValueError when the layout is not four equal integers.
    """
    rect, offset = data.dtype.fields["sourceRect"][:2]
    parts = [rect.fields[name] for name in ("x", "y", "w", "h")]
    base = parts[0][0]
    if (base.kind not in "iu" or any(d != base or o != i * base.itemsize for i, (d, o) in enumerate(parts))
            or rect.itemsize != 4 * base.itemsize):
        raise ValueError("unexpected sourceRect layout")
    return np.ndarray((len(data), 4), dtype=base, buffer=data, offset=offset,
                      strides=(data.dtype.itemsize, base.itemsize)) if len(data) else np.empty((0, 4), base)
