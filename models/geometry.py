"""Plane geometry on point arrays for the map: which points a lasso or a box encloses.

Pure numpy, so the selection rules are the same for the window, the command line and tests,
and cost one vectorised pass instead of a Python call per point.
"""
from __future__ import annotations

import numpy as np


def points_in_rect(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """A bool mask of the ``points`` (N×2) inside the rectangle (corners in any order, edges included)."""
    pts = np.asarray(points).reshape(-1, 2)
    xlo, xhi = sorted((x0, x1))
    ylo, yhi = sorted((y0, y1))
    return (pts[:, 0] >= xlo) & (pts[:, 0] <= xhi) & (pts[:, 1] >= ylo) & (pts[:, 1] <= yhi)


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
