"""The map's level of detail: which points the scatter items draw, and when images replace dots.

pyqtgraph's ``ScatterPlotItem.paint`` maps every point it holds through the view transform and
draws a pixmap fragment for each one in view, ~0.3 µs a point on a 2-core laptop (260-420 ms a
frame at 1M points). So the point layers hold a subset, picked by ``models.level_of_detail``:
the visible points inside the view and a margin around it (``MARGIN`` of the view on each side,
so a pan shows points before the next pick; at most ``MARGIN_SHARE`` of the budget more), in a
fixed random priority order, up to ``BUDGET`` in the view. Zoomed out, that is a uniform random
sample, so the density, the clusters and their colours look as with every point; zoomed in,
every point in view. The selection overlay gets its own pick (``SELECTED_BUDGET``) over the
selected points, the plain layer leaves them out and has the rest of the budget, so a huge
selection costs no more than a huge plain map and a small one is always drawn whole. When at
most ``THUMB_MAX`` points are in view, ``ThumbLayer`` draws their images.

A pick is redone on the ViewBox's ``sigRangeChanged``: at once when the view zoomed out by more
than ``ZOOM_STEP`` since the last pick (before the frame is painted: the last subset's margin
would come into view), otherwise at most every ``THROTTLE_MS`` and only when the view zoomed in
by ``ZOOM_STEP``, left the margin or, where the margin is not drawn whole, panned by
``PAN_STEP`` of itself. A pick is 1-3 ms of numpy at 1M points, placing the subset (``FastScatter.set_points``
into reused records) 2-8 ms; ``tests/benchmarks/bench_map_frames.py`` has the frame times.

Measured alternatives, at 1M points, 1280×800: a density raster (per-pixel colour sums into an
``ImageItem``) paints in 2 ms, but building it is ~100 ms of ``bincount`` and it would be rebuilt
on every frame of a zoom or pan, and it loses the dots' look (dimming, hidden classes, selection
rims, hover); 30k sampled dots paint in ~10 ms and are only re-picked when the view moved far.
pyqtgraph's own options: ``pxMode`` with ``useCache`` (its symbol atlas) is already the fast
path; without ``pxMode`` 30k points take ~185 ms a frame.

Hover and click keep testing every visible point (``PlotMouse.row_at``, 2-3 ms at 1M), and box
and lasso select over every point, whatever is drawn.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer

from clipscape.models.level_of_detail import DrawOrder, Pick, Rect, draw_order

BUDGET = 25_000            # points drawn in the view at most, selected ones included
SELECTED_BUDGET = 16_000   # selected points drawn in the view at most
MARGIN = 0.2               # of the view's width/height, on each side
MARGIN_SHARE = 0.5         # the margin's points, at most, as a share of the budget
THUMB_MAX = 300            # images instead of dots when at most this many points are in view
THUMB_REGION_MAX = 900     # ... and the margin's images too when the region holds at most this many
THROTTLE_MS = 40
ZOOM_STEP = 1.25
PAN_STEP = 0.1


class LevelOfDetail(QObject):
    """Draws the right subset of the map's points on ``scatter`` (plain), ``selected`` (the
    selection overlay) and ``thumbs`` (a ``ThumbLayer``), following ``box``'s view range."""

    def __init__(self, box, scatter, selected, thumbs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._box, self._scatter, self._sel_item, self.thumbs = box, scatter, selected, thumbs
        # instance copies, so a test or a benchmark can change them (inf budgets: draw everything)
        self.budget, self.selected_budget, self.thumb_max = BUDGET, SELECTED_BUDGET, THUMB_MAX
        self.margin, self.margin_share = MARGIN, MARGIN_SHARE
        self._order = DrawOrder(np.zeros((0, 2), np.float32))
        self._coords = np.zeros((0, 2), np.float32)
        self._paths: list[str] = []
        self._table = np.zeros((0, 4), np.uint8)
        self._palette: list = []
        self._index = np.zeros(0, np.intp)
        self._visible = np.zeros(0, bool)
        self._visible_p = self._selected_p = np.zeros(0, bool)
        self._top = np.zeros(0, np.intp)
        self._main: Pick | None = None
        self._sel: Pick | None = None
        self._drawn = (np.zeros(0, np.intp), np.zeros(0, np.intp))
        self._partial = False
        self.picks = 0   # how many picks were made (tests, benchmarks)
        self._timer = QTimer(self, singleShot=True, interval=THROTTLE_MS)
        self._timer.timeout.connect(self._refresh_if_stale)
        box.sigRangeChanged.connect(self._on_range_changed)

    # --- what the view tells it ---------------------------------------------------------------
    def set_points(self, coords: np.ndarray, paths: list[str]) -> None:
        """New coordinates (all N, float32 N×2) and each row's image path."""
        self._coords, self._paths = coords, paths
        self._order = draw_order(coords)   # made by the job that computed ``coords``, as a rule
        self._selected_p = self._order.none
        self._visible = self._visible_p = self._order.every
        self._index = np.zeros(len(coords), np.intp)
        self._main = self._sel = None
        self._drawn = (None, None)
        self.thumbs.forget()

    def set_colours(self, table: np.ndarray, palette: list, index: np.ndarray, visible: np.ndarray) -> None:
        """Each row's colour (``palette[index]``, RGBA ``table[index]``) and whether it is shown;
        drawn at the next ``refresh``."""
        self._table, self._palette, self._index = table, palette, index
        if visible is not self._visible and (len(visible) != len(self._visible)
                                             or not np.array_equal(visible, self._visible)):
            self._visible = np.asarray(visible, bool)   # the session's (read-only) mask
            every = len(self._visible) == self._order.n and bool(self._visible.all())
            self._visible_p = self._order.permuted(self._visible, all_true=every)

    def set_selection(self, rows: np.ndarray, refresh: bool = True) -> None:
        """The selected rows (the overlay draws them, the plain layer leaves them out)."""
        self._selected_p = self._order.marked(rows)
        if refresh:
            self.refresh()

    def set_top(self, rows: np.ndarray) -> None:
        self._top = np.asarray(rows, np.intp)
        self.thumbs.set_top(self._top)

    # --- picking ----------------------------------------------------------------------------
    def _on_range_changed(self, *_args) -> None:
        """A zoom out past ``ZOOM_STEP`` is picked for at once, before the frame it causes is
        painted (the last subset's margin would come into view, and the next notch's margin
        after it); a zoom in or a pan waits for the throttle (the last subset still has the
        view's points, sparser, and the margin's), so a frame and a pick share no event."""
        if self._main is not None and self._zoomed(self._view(), out_only=True):
            self.refresh()
        elif not self._timer.isActive():
            self._timer.start()

    def _zoomed(self, view: Rect, out_only: bool = False) -> bool:
        last = self._main.view.width
        if not last > 0:
            return False
        ratio = view.width / last
        return ratio > ZOOM_STEP or (not out_only and ratio < 1 / ZOOM_STEP)

    def _view(self) -> Rect:
        (x0, x1), (y0, y1) = self._box.viewRange()
        return Rect(float(x0), float(y0), float(x1), float(y1))

    def _refresh_if_stale(self) -> None:
        if self._main is None or self._stale(self._view()):
            self.refresh()

    def _stale(self, view: Rect) -> bool:
        last = self._main
        if not last.region.contains(view) or self._zoomed(view):
            return True
        moved = max(abs(view.x0 - last.view.x0) / max(view.width, 1e-30),
                    abs(view.y0 - last.view.y0) / max(view.height, 1e-30))
        return self._partial and moved > PAN_STEP

    def refresh(self) -> None:
        """Pick and draw for the current view now."""
        self._timer.stop()
        view = self._view()
        region = view.expanded(self.margin)
        self.picks += 1
        cap = int(self.selected_budget * self.margin_share)
        self._sel = self._order.pick(self._selected_p, view, region, self.selected_budget, cap)
        # one budget for both layers: a frame costs the same with and without a selection
        plain = max(self.budget - self._sel.in_view, self.budget - self.selected_budget)
        cap = int(plain * self.margin_share)
        self._main = self._order.pick(self._visible_p & ~self._selected_p, view, region, plain, cap)
        self._draw()

    def _draw(self) -> None:
        main, sel = self._main.rows, self._sel.rows
        old_main, old_sel = self._drawn
        for item, rows, old in ((self._scatter, main, old_main), (self._sel_item, sel, old_sel)):
            index = np.take(self._index, rows) if len(self._index) else np.zeros(0, np.intp)
            if old is None or not np.array_equal(rows, old):
                item.set_points(np.take(self._coords, rows, axis=0), self._palette, index)
            else:
                item.set_indexed_brushes(self._palette, index)
        self._drawn = (main, sel)
        self._partial = not (self._main.complete_region and self._sel.complete_region)
        self._draw_thumbnails()

    def _draw_thumbnails(self) -> None:
        m, s = self._main, self._sel
        if not (m.complete_view and s.complete_view and m.in_view + s.in_view <= self.thumb_max):
            if len(self.thumbs.rows()):
                self.thumbs.clear()
                self.thumbs.cancel_loads()
            return
        margin = len(m.rows) + len(s.rows) <= THUMB_REGION_MAX
        self._partial = self._partial or not margin
        parts, selected = [], []
        for pick, flag in ((m, False), (s, True)):
            if margin:   # the margin's first (off screen), then the view's, which load first
                off = pick.rows[~np.isin(pick.rows, pick.view_rows)]
                parts.append(off)
                selected.append(np.full(len(off), flag))
        for pick, flag in ((m, False), (s, True)):
            parts.append(pick.view_rows)
            selected.append(np.full(len(pick.view_rows), flag))
        rows = np.concatenate(parts).astype(np.intp)
        colours = self._table[self._index[rows]] if len(self._table) else np.zeros((len(rows), 4), np.uint8)
        self.thumbs.set_rows(rows, self._coords[rows], [self._paths[r] for r in rows], colours,
                             np.concatenate(selected), self._top)

    # --- what is drawn (tests, benchmarks) ----------------------------------------------------
    def drawn_rows(self) -> np.ndarray:
        """The rows the plain layer holds (its view and margin), priority order."""
        return np.zeros(0, np.intp) if self._drawn[0] is None else self._drawn[0].copy()

    def drawn_selected_rows(self) -> np.ndarray:
        return np.zeros(0, np.intp) if self._drawn[1] is None else self._drawn[1].copy()

    def rows_in_view(self) -> np.ndarray:
        """The drawn rows (plain and selected) inside the view as of the last pick."""
        if self._main is None:
            return np.zeros(0, np.intp)
        return np.concatenate([self._main.view_rows, self._sel.view_rows])

    def picked_view(self) -> Rect | None:
        """The view the drawn subset was picked for (None before the first pick)."""
        return None if self._main is None else self._main.view

    def showing_thumbnails(self) -> bool:
        return len(self.thumbs.rows()) > 0
