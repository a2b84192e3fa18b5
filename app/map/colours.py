"""Every point's colour from the session: by class, cluster or score, dimmed below the threshold.

One vectorised pass over the rows (a table lookup per label, viridis for scores); the legend,
the gallery's class badges and the map use the same palette slots, so a class has one colour.
"""
from __future__ import annotations

import numpy as np

from clipscape.app.palette import PLAIN_COLOUR, score_colours, slot_colour

DIM_ALPHA = 40


def point_colours(session) -> np.ndarray:
    """N×4 uint8 RGBA for the collection's rows as the session's colour mode and dimming say."""
    n = len(session.collection) if session.collection is not None else 0
    labels, of, slots = session.legend_labels()
    if labels:
        table = np.array([slot_colour(s).getRgb() for s in slots], dtype=np.uint8).reshape(-1, 4)
        colours = table[of]
    elif session.colour_mode == "score" and session.scores is not None:
        lo, hi = score_range(session.scores)
        colours = score_colours(session.scores, lo, hi)
    else:
        colours = np.tile(np.array(PLAIN_COLOUR.getRgb(), np.uint8), (n, 1))
    dim = session.dimmed()
    if dim is not None:
        colours[dim, 3] = np.minimum(colours[dim, 3], DIM_ALPHA)
    return colours


def score_range(scores: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite scores, (0, 0) when there are none."""
    finite = np.isfinite(scores)
    return (float(scores[finite].min()), float(scores[finite].max())) if finite.any() else (0.0, 0.0)
