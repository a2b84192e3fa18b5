"""Colours for the map: class/cluster colours, the plain and "unknown" colours, a score scale.

Kept apart from the map widget so the legend, the gallery badges and the classes panel all draw
a class in the same colour. Only colour lookup lives here; no statistics.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from clipscape.models.search import score_bins

# matplotlib's tab10, then the lighter half of tab20. The greys of both are left out so that no
# class can be mistaken for UNKNOWN_COLOUR. 18 colours; class_colours cycles beyond that.
_CLASS_HEX = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)

UNKNOWN_COLOUR = QColor(150, 150, 150)
"""Mid grey for points with no class (below every threshold) or no cluster."""

PLAIN_COLOUR = QColor(31, 119, 180)
"""The blue every point has when nothing is being coloured."""

_score_lut: np.ndarray | None = None


def class_colours(n: int) -> list[QColor]:
    """Return ``n`` readable colours for class or cluster ``0..n-1``, cycling after 18.

    The order is fixed so a class keeps its colour while classes are added after it.
    """
    return [QColor(_CLASS_HEX[i % len(_CLASS_HEX)]) for i in range(max(int(n), 0))]


def slot_colour(slot: int | None) -> QColor:
    """The colour of a class or cluster's palette slot; None is the "unknown" grey."""
    return QColor(UNKNOWN_COLOUR) if slot is None else QColor(_CLASS_HEX[slot % len(_CLASS_HEX)])


def score_lut() -> np.ndarray:
    """Return the 256×4 uint8 RGBA viridis table used for scores (low → dark, high → yellow).

    Built once; the colour bar paints its gradient from the same table as the points.
    """
    global _score_lut
    if _score_lut is None:
        cmap = pg.colormap.get("viridis")
        lut = cmap.getLookupTable(0.0, 1.0, nPts=256, alpha=True, mode=pg.ColorMap.BYTE)
        _score_lut = np.ascontiguousarray(lut, dtype=np.uint8)
    return _score_lut


def score_colours(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``values`` linearly from [lo, hi] onto viridis; return an N×4 uint8 RGBA array.

    Values outside the range are clipped; NaN gets UNKNOWN_COLOUR. When ``hi <= lo`` (all scores
    equal) every value gets the middle colour. At most 256 distinct colours come out, which keeps
    the map's brush cache small.
    """
    return score_table()[score_bins(values, lo, hi)]


def score_table() -> np.ndarray:
    """257×4 uint8: the viridis table of ``score_lut`` then UNKNOWN_COLOUR (what NaN scores get)."""
    return np.concatenate([score_lut(), np.array([UNKNOWN_COLOUR.getRgb()], np.uint8)])


def swatch(colour: QColor, size: int = 12) -> QIcon:
    """A square colour-swatch icon for a legend entry."""
    pixmap = QPixmap(size, size)
    pixmap.fill(colour)
    painter = QPainter(pixmap)
    painter.setPen(QColor(60, 60, 60))
    painter.drawRect(0, 0, size - 1, size - 1)
    painter.end()
    return QIcon(pixmap)
