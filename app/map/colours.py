"""Every point's colour from the session: by class, cluster or score, dimmed below the threshold.

As a small colour table and a per-point index into it: a table lookup per label, viridis for
scores, a faded copy of the table for the dimmed points. The map hands the table's few brushes
and the index to its scatter item, so no pass over the points has to find their distinct
colours; the legend, the gallery's class badges and the map use the same palette slots, so a
class has one colour.
"""
from __future__ import annotations

import numpy as np

from clipscape.app.palette import PLAIN_COLOUR, score_table, slot_colour
from clipscape.models.search import score_bins

DIM_ALPHA = 40


def indexed_colours(session) -> tuple[np.ndarray, np.ndarray]:
    """(K×4 uint8 colour table, N intp index into it) for the collection's rows as the session's
    colour mode and dimming say; K is small (labels, or 257 score colours, twice when dimming)."""
    n = len(session.collection) if session.collection is not None else 0
    labels, of, slots = session.legend_labels()
    if labels:
        table = np.array([slot_colour(s).getRgb() for s in slots], dtype=np.uint8).reshape(-1, 4)
        index = np.asarray(of, np.intp)
    elif session.colour_mode == "score" and session.scores is not None:
        scores = session.scores
        # the query job computes these with its result (app/tasks.py, score_bins); else here
        table, index = score_table(), session.derive("score_bins", (scores,),
                                                     lambda: score_bins(scores, *session.score_range()))
    else:
        table, index = np.array([PLAIN_COLOUR.getRgb()], np.uint8), np.zeros(n, np.intp)
    dim = session.dimmed()
    if dim is not None:
        index = index + len(table) * dim
        table = with_faded(table)
    return table, index


def with_faded(table: np.ndarray) -> np.ndarray:
    """``table`` and under it its faded copy, the colours of the dimmed points."""
    faded = table.copy()
    faded[:, 3] = np.minimum(faded[:, 3], DIM_ALPHA)
    return np.concatenate([table, faded])


def point_colours(session) -> np.ndarray:
    """N×4 uint8 RGBA for the collection's rows as the session's colour mode and dimming say."""
    table, index = indexed_colours(session)
    return table[index]


