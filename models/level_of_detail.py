"""Which of a million map points to draw: every point has a fixed random priority, and a view
draws the points inside it (plus a margin) in priority order, up to a budget.

Taking points in one fixed random order means a zoomed-out map of 1M points shows a uniform
random sample of them (so the density's shape, the clusters and their colours stay right),
zooming in shows the same points plus the next ones in the order (nothing jumps), and once a
view holds fewer points than the budget it shows every one of them. Pure numpy, no Qt: the map
(``app/map/detail.py``) asks for a ``Pick`` whenever its view moved far enough.

Cost on a 2-core laptop at 1M points: building a ``DrawOrder`` is ~20 ms (a permutation and
two gathers); a ``pick`` scans the permuted coordinates in contiguous chunks and
stops as soon as the view has its budget, so a zoomed-out pick reads one chunk (~0.5 ms) and a
close-zoom pick (which has to look at every point to find the few in view) a few vectorised
passes over 1M floats (1-3 ms).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PRIORITY_SEED = 0
CHUNK = 1 << 17
KEPT_ORDERS = 3   # draw orders remembered by ``draw_order`` (the map's, and one or two on their way to it)


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle in data coordinates, edges included."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def expanded(self, fraction: float) -> Rect:
        """This rectangle grown by ``fraction`` of its width / height on every side."""
        dx, dy = self.width * fraction, self.height * fraction
        return Rect(self.x0 - dx, self.y0 - dy, self.x1 + dx, self.y1 + dy)

    def contains(self, other: Rect) -> bool:
        return (self.x0 <= other.x0 and self.y0 <= other.y0
                and self.x1 >= other.x1 and self.y1 >= other.y1)


@dataclass(frozen=True)
class Pick:
    """What to draw of one layer: ``rows`` (priority order) and what the view holds.

    - ``rows``: the eligible rows inside ``region`` that come first in priority order, as many
      as keep the view's share at ``budget``, and of those outside the view (the margin's) at
      most ``margin_cap``, the first in priority order (so a dense cluster just outside a
      sparse view does not flood the margin);
    - ``in_view``: how many eligible rows lie inside ``view``; exact when ``complete_view``,
      else a lower bound (the scan stopped once the view had its budget);
    - ``view_rows``: the drawn rows inside ``view``;
    - ``complete_view``: every eligible row in the view is drawn; ``complete_region``: every
      eligible row in the whole region is drawn (a pan inside it needs no new pick).
    """

    rows: np.ndarray
    view_rows: np.ndarray
    in_view: int
    complete_view: bool
    complete_region: bool
    view: Rect
    region: Rect


class DrawOrder:
    """The points of one layout (N×2) in a fixed random priority order."""

    def __init__(self, coords: np.ndarray, seed: int = PRIORITY_SEED) -> None:
        coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
        n = len(coords)
        self.n = n
        self.order = _permutation(n, seed)   # priority position -> row (read-only, shared)
        # contiguous permuted columns: each chunk of a pick is a slice, not a gather
        self.x = np.take(np.ascontiguousarray(coords[:, 0]), self.order)
        self.y = np.take(np.ascontiguousarray(coords[:, 1]), self.order)
        # every / no point, in priority order (the same either way): read-only, shared by the
        # masks that are all True or all False, the usual case, so none is made per change
        self.none = np.zeros(n, dtype=bool)
        self.every = np.ones(n, dtype=bool)
        self.none.flags.writeable = self.every.flags.writeable = False

    def permuted(self, mask: np.ndarray, all_true: bool = False) -> np.ndarray:
        """A per-row bool mask rearranged into priority order (``all_true``: the caller knows
        it is all True, and gets ``every``)."""
        return self.every if all_true else np.take(np.asarray(mask, dtype=bool), self.order)

    def marked(self, rows: np.ndarray) -> np.ndarray:
        """A bool mask in priority order, True at ``rows``' positions (``none`` for no rows)."""
        if not len(rows):
            return self.none
        mask = np.zeros(self.n, dtype=bool)
        mask[np.asarray(rows, dtype=np.intp)] = True
        return np.take(mask, self.order)

    def pick(self, eligible: np.ndarray, view: Rect, region: Rect, budget: int,
             margin_cap: int | None = None) -> Pick:
        """The rows of ``eligible`` (a bool mask in priority order) to draw for ``view``, with
        ``region`` (a rectangle around it) as the margin; see ``Pick``."""
        budget = max(1, int(budget))
        margin_cap = budget if margin_cap is None else max(0, int(margin_cap))
        parts, view_parts = [], []
        in_view = in_margin = 0
        complete_view = complete_region = True
        for start in range(0, self.n, CHUNK):
            stop = min(self.n, start + CHUNK)
            x, y, ok = self.x[start:stop], self.y[start:stop], eligible[start:stop]
            inside_view = ok & _inside(x, y, view)
            if in_margin < margin_cap:
                taken = np.flatnonzero(ok & _inside(x, y, region) | inside_view)
            else:
                taken, complete_region = np.flatnonzero(inside_view), False
            flags = inside_view[taken]
            outside = np.flatnonzero(~flags)          # the margin's points among them
            room = margin_cap - in_margin
            if len(outside) > room:                  # the margin is full: keep its first ones
                keep = np.ones(len(taken), bool)
                keep[outside[room:]] = False
                taken, flags, complete_region = taken[keep], flags[keep], False
            count = int(np.count_nonzero(flags))
            if in_view + count >= budget:
                # stop at the view's budget-th point (with the margin's points before it)
                last = int(np.flatnonzero(flags)[budget - in_view - 1])
                taken, flags = taken[:last + 1], flags[:last + 1]
                parts.append(taken + start)
                view_parts.append(taken[flags] + start)
                in_view, complete_view, complete_region = budget, False, False
                break
            in_view += count
            in_margin += len(taken) - count
            parts.append(taken + start)
            view_parts.append(taken[flags] + start)
        positions = np.concatenate(parts) if parts else np.zeros(0, np.intp)
        view_positions = np.concatenate(view_parts) if view_parts else np.zeros(0, np.intp)
        return Pick(self.order[positions], self.order[view_positions], in_view,
                    complete_view, complete_region, view, region)


_orders: list[tuple[weakref.ref, DrawOrder]] = []   # most recent last
_orders_lock = threading.Lock()


def draw_order(coords: np.ndarray) -> DrawOrder:
    """The ``DrawOrder`` of this coordinate array, built once per array object.

    Building one takes ~60 ms at 1M points (the permutation and two gathers). The window's jobs
    that make a map call this in their worker thread before handing the coordinates over, so that
    the map's own call, on the GUI thread, finds it made. Keyed on the array's identity (a weak
    reference, no callback), which holds because a map's coordinates are never changed in place.
    """
    with _orders_lock:
        for i, (ref, order) in enumerate(_orders):
            if ref() is coords:
                _orders.append(_orders.pop(i))
                return order
    order = DrawOrder(coords)
    with _orders_lock:
        _orders[:] = [entry for entry in _orders if entry[0]() is not None][-(KEPT_ORDERS - 1):]
        _orders.append((weakref.ref(coords), order))
    return order


@lru_cache(maxsize=2)
def _permutation(n: int, seed: int) -> np.ndarray:
    """The priority order of n points: the same for the same n (UMAP replacing the PCA preview
    keeps every point's priority, and skips ~15 ms at 1M)."""
    order = np.random.default_rng(seed).permutation(n)
    order.flags.writeable = False
    return order


def _inside(x: np.ndarray, y: np.ndarray, r: Rect) -> np.ndarray:
    return (x >= r.x0) & (x <= r.x1) & (y >= r.y0) & (y <= r.y1)
