"""The map, drawn from the session: colour modes, legend, dimming, selection by API and by real
mouse drags, hover card, click to preview."""
from __future__ import annotations

import numpy as np
import pytest
from gui_support import classify, grid, make_session, score
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QPolygonF
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel

from clipscape.app.map import MapView
from clipscape.app.map.colours import DIM_ALPHA
from clipscape.app.map.scatter import FastScatter
from clipscape.app.palette import PLAIN_COLOUR, UNKNOWN_COLOUR, class_colours, score_colours, score_lut, slot_colour
from clipscape.app.thumbnails import ThumbnailCache
from clipscape.models.geometry import points_in_polygon

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def rgba(colour) -> list[int]:
    return list(colour.getRgb())


@pytest.fixture
def session(qtbot, tmp_path):
    s = make_session(tmp_path)
    yield s
    s.shutdown()


@pytest.fixture
def view(qtbot, session):
    cache = ThumbnailCache(size=64)
    widget = MapView(session, cache)
    qtbot.addWidget(widget)
    widget.resize(640, 480)
    yield widget
    cache.shutdown()


@pytest.fixture
def shown(view, qtbot, session):
    """A visible map of the 5×5 grid, zoomed to fit after it got its final size."""
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    return view


def to_viewport(view: MapView, x: float, y: float) -> QPoint:
    """Data coordinates → pixel in the plot's viewport (where mouse events go)."""
    plot = view.plot_widget()
    return plot.mapFromScene(plot.getViewBox().mapViewToScene(QPointF(x, y)))


def drag(viewport, points: list[QPoint], modifier=NOMOD) -> None:
    QTest.mousePress(viewport, LEFT, modifier, points[0])
    for p in points[1:]:
        QTest.mouseMove(viewport, p)
    QTest.mouseRelease(viewport, LEFT, modifier, points[-1])


# --------------------------------------------------------------------------- palette
def test_class_colours_distinct_and_never_grey():
    colours = class_colours(25)
    names = [c.name() for c in colours]
    assert len(set(names[:18])) == 18 and names[18] == names[0]  # cycles
    assert UNKNOWN_COLOUR.name() not in names and PLAIN_COLOUR.isValid()
    assert all(abs(c.red() - c.green()) + abs(c.green() - c.blue()) > 20 for c in colours)
    assert slot_colour(None).name() == UNKNOWN_COLOUR.name() and slot_colour(2).name() == names[2]


def test_score_colours_maps_range_onto_viridis():
    lut = score_lut()
    out = score_colours(np.array([0.0, 10.0, 5.0, -3.0, 99.0, np.nan]), 0.0, 10.0)
    assert out.dtype == np.uint8 and out.shape == (6, 4)
    assert out[0].tolist() == lut[0].tolist() == out[3].tolist()   # low end, and clipped
    assert out[1].tolist() == lut[255].tolist() == out[4].tolist()  # high end, and clipped
    assert out[2].tolist() in (lut[127].tolist(), lut[128].tolist())
    assert out[5].tolist() == rgba(UNKNOWN_COLOUR)
    assert (score_colours(np.ones(3), 1.0, 1.0) == lut[128]).all()


# --------------------------------------------------------------------------- drawing from the session
def test_points_follow_the_collection_and_its_coordinates(view, session):
    assert view.point_count() == 25
    np.testing.assert_array_equal(view.coords(), grid())
    assert (view.point_colours() == rgba(PLAIN_COLOUR)).all() and view.visible_mask().all()
    session._on_coords(grid() * 2, "umap")           # UMAP replaces PCA in place
    np.testing.assert_array_equal(view.coords(), grid() * 2)
    session._take_collection(None)                     # another folder is on its way
    assert view.point_count() == 0 and view.status_text() == "0 points"


def test_classes_colour_points_and_legend_counts_and_hiding(view, session, qtbot):
    best = np.full(25, -1)
    best[:10], best[10:13] = 0, 2  # 10 × "cat", 0 × "dog", 3 × "owl", 12 unknown
    classify(session, ["cat", "dog", "owl"], best)
    assert [(label, text) for label, text, _ in view.legend.entries()] == [
        ("cat", "cat (10)"), ("dog", "dog (0)"), ("owl", "owl (3)"), ("unknown", "unknown (12)")]
    colours = view.point_colours()
    assert colours[0].tolist() == rgba(slot_colour(0)) and colours[11].tolist() == rgba(slot_colour(2))
    assert colours[20].tolist() == rgba(UNKNOWN_COLOUR)

    view.legend.item(0).setCheckState(Qt.CheckState.Unchecked)  # as a user's click does
    assert session.hidden == {"cat"}
    assert not view.visible_mask()[:10].any() and view.visible_mask()[10:].all()
    assert view.status_text() == "25 points · 10 hidden"
    view.select_rect(-1, -1, 1, 1)
    np.testing.assert_array_equal(session.selection, np.arange(10, 25))


def test_a_class_named_unknown_keeps_its_own_legend_row(view, session):
    best = np.full(25, -1)
    best[:5] = 0   # 5 × the class "unknown", 20 below the threshold
    classify(session, ["unknown", "cat"], best)
    assert [text for _label, text, _ in view.legend.entries()] == ["unknown (5)", "cat (0)", "(unknown) (20)"]
    view.legend.item(2).setCheckState(Qt.CheckState.Unchecked)
    assert session.hidden == {"(unknown)"} and view.visible_mask().sum() == 5
    session.set_class_filter("unknown")
    assert session.gallery_rows().tolist() == [0, 1, 2, 3, 4]


def test_a_class_keeps_its_colour_when_another_is_removed(view, session):
    classify(session, ["cat", "dog", "owl"], np.arange(25) % 3)
    owl = view.point_colours()[2].tolist()
    session.remove_classes(["dog"])
    assert session.class_list.slot("owl") == 2
    best = np.where(np.arange(25) % 3 == 2, 1, 0)   # "owl" is now class 1 of 2
    classify(session, ["cat", "owl"], best)
    assert view.point_colours()[2].tolist() == owl
    assert [e.slot for e in session.legend()] == [0, 2]


def test_clusters_legend_names_and_unclustered(view, session):
    session.set_colour_mode("cluster")
    session._on_clusters(np.array([0] * 5 + [2] * 5 + [-1] * 15))
    assert [text for _, text, _ in view.legend.entries()] == ["cluster 1 (5)", "cluster 3 (5)", "unclustered (15)"]
    assert view.point_colours()[7].tolist() == rgba(class_colours(3)[2])
    session.set_label_hidden("unclustered", True)
    assert view.visible_mask().sum() == 10
    session.set_colour_mode("none")
    assert not view.legend.isVisibleTo(view) and view.visible_mask().all()


def test_scores_top_k_colour_bar_and_dimming_in_every_mode(view, session):
    scores = np.linspace(-1.0, 1.0, 25, dtype=np.float32)[::-1].copy()  # row 0 best
    score(session, scores)
    np.testing.assert_array_equal(view.top_rows(), np.arange(10))
    np.testing.assert_array_equal(view.point_colours()[:, :3], score_colours(scores, -1.0, 1.0)[:, :3])
    assert view.findChild(QLabel, "colourBarMax").text() == "1"
    assert view.findChild(QLabel, "colourBarMin").text() == "-1"
    assert view.colour_bar.isVisibleTo(view) and not view.legend.isVisibleTo(view)
    session.set_dim_threshold(0.5)
    below = scores < 0.5
    assert (view.point_colours()[below, 3] == DIM_ALPHA).all() and (view.point_colours()[~below, 3] == 255).all()
    classify(session, ["a", "b"], np.arange(25) % 2)      # colour by class: still dimmed
    assert session.colour_mode == "class"
    assert (view.point_colours()[below, 3] == DIM_ALPHA).all() and (view.point_colours()[~below, 3] == 255).all()
    session.set_dim_threshold(None)
    assert (view.point_colours()[:, 3] == 255).all()


def test_score_colours_come_from_the_bins_the_query_job_made(view, session):
    """The job hands over each score's colour bin with its result (app/tasks.py): the map uses
    them, and works them out itself only when none came (gui_support.score sends none)."""
    from clipscape.app.session import Query

    scores = np.linspace(-1.0, 1.0, 25, dtype=np.float32)
    session._set_query(Query("text", "made elsewhere"))
    bins = np.full(25, 255, np.intp)                   # every image in the top colour, on purpose
    session._on_scores(session.query, (scores, np.argsort(-scores), bins, (-0.5, 0.5)))
    assert (view.point_colours()[:, :3] == score_lut()[255, :3]).all()
    assert session.score_range() == (-0.5, 0.5)        # the colour bar's ends came with them too
    score(session, scores.copy(), "made here")         # no bins: the map makes them from the scores
    np.testing.assert_array_equal(view.point_colours()[:, :3], score_colours(scores, -1.0, 1.0)[:, :3])


def test_the_score_colours_are_drawn_into_the_atlas_before_the_first_caption(qtbot, view, session):
    """In idle passes after the first map, so that the first caption (and the first dimming)
    draws no symbol on the GUI thread."""
    from clipscape.app.map.colours import with_faded
    from clipscape.app.palette import score_table

    colours = len({id(b) for b in view._brushes.brushes(with_faded(score_table()))})   # ~2 × 257
    qtbot.waitUntil(lambda: min(len(view._scatter.fragmentAtlas), len(view._sel_item.fragmentAtlas)) >= colours,
                    timeout=10_000)
    before = [len(view._scatter.fragmentAtlas), len(view._sel_item.fragmentAtlas)]
    score(session, np.linspace(-1.0, 1.0, 25, dtype=np.float32))
    session.set_dim_threshold(0.0)
    session.set_selection([1, 2, 3])
    view.plot_widget().grab()
    # (the top-k rings are their own small item: ten symbols at most)
    assert [len(view._scatter.fragmentAtlas), len(view._sel_item.fragmentAtlas)] == before


def test_score_colours_without_a_query_explain_themselves(view, session):
    session.set_colour_mode("score")
    assert "type a caption" in view.hint_text()
    assert (view.point_colours() == rgba(PLAIN_COLOUR)).all()
    score(session, np.linspace(0, 1, 25))
    assert view.hint_text() == ""


# --------------------------------------------------------------------------- selection
def test_select_rect_and_polygon_rows(view, session):
    view.select_rect(0.5, 0.5, -0.5, -0.1)  # corners in any order
    np.testing.assert_array_equal(session.selection, [11, 12, 13, 16, 17, 18])
    view.select_rect(-0.9, -0.9, -0.7, -0.7, add=True)
    np.testing.assert_array_equal(session.selection, [0, 11, 12, 13, 16, 17, 18])
    assert view.status_text() == "25 points · 7 selected"
    session._on_coords(grid(step=1.0), "umap")  # integer grid -2..2
    l_shape = [(-2.5, -2.5), (2.5, -2.5), (2.5, -0.5), (-0.5, -0.5), (-0.5, 2.5), (-2.5, 2.5)]
    view.select_polygon(l_shape)
    np.testing.assert_array_equal(session.selection, [r for r in range(25) if r // 5 <= 1 or r % 5 <= 1])
    view.select_polygon([(0, 0), (1, 1)])  # not a polygon: selects nothing
    assert session.selection.size == 0


def test_points_in_polygon_matches_qt_even_odd():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1.2, 1.2, (3000, 2))
    angles = np.sort(rng.uniform(0, 4 * np.pi, 40))  # winds twice: self-intersecting
    radius = rng.uniform(0.3, 1.0, 40)
    poly = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    qpoly = QPolygonF([QPointF(x, y) for x, y in poly])
    expected = [qpoly.containsPoint(QPointF(x, y), Qt.FillRule.OddEvenFill) for x, y in pts]
    np.testing.assert_array_equal(points_in_polygon(pts, poly), expected)


def test_box_drag_selects_points_and_does_not_pan(shown, session):
    viewport = shown.plot_widget().viewport()
    range_before = shown.plot_widget().getViewBox().viewRange()
    shown.set_tool("box")
    a, b = to_viewport(shown, -0.5, -0.1), to_viewport(shown, 0.5, 0.5)
    drag(viewport, [a, (a + b) / 2, b])
    np.testing.assert_array_equal(session.selection, [11, 12, 13, 16, 17, 18])
    assert shown.plot_widget().getViewBox().viewRange() == range_before
    c, d = to_viewport(shown, -0.9, -0.9), to_viewport(shown, -0.7, -0.7)
    drag(viewport, [c, d], modifier=SHIFT)  # Shift adds
    np.testing.assert_array_equal(session.selection, [0, 11, 12, 13, 16, 17, 18])


def test_lasso_drag_selects_points_inside_the_path(shown, session):
    viewport = shown.plot_widget().viewport()
    shown.set_tool("lasso")
    # a triangle whose long side x + y = -0.6 passes 0.2 beyond (0,-0.8), (-0.4,-0.4), (-0.8,0)
    corners = [(-1.0, -1.0), (0.4, -1.0), (-1.0, 0.4)]
    path = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        path += [to_viewport(shown, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
                 for t in np.linspace(0, 1, 8, endpoint=False)]
    drag(viewport, path)
    np.testing.assert_array_equal(session.selection, [0, 1, 2, 5, 6, 10])


def test_pan_drag_moves_the_view_without_selecting_or_previewing(shown, session):
    viewport = shown.plot_widget().viewport()
    vb = shown.plot_widget().getViewBox()
    x_before = vb.viewRange()[0]
    a = to_viewport(shown, 0.0, 0.0)
    drag(viewport, [a, a + QPoint(20, 0), a + QPoint(60, 0), a + QPoint(100, 0)])
    assert vb.viewRange()[0][0] < x_before[0] - 0.1  # content moved right = view moved left
    assert session.selection.size == 0 and session.previewed == -1


def test_hover_card_tells_the_session_and_click_previews(shown, session, qtbot):
    viewport = shown.plot_widget().viewport()
    score(session, np.linspace(0, 1, 25))
    best = np.zeros(25, int)
    best[8] = -1
    classify(session, ["cat"], best)
    target = to_viewport(shown, 0.4, -0.4) + QPoint(3, -2)  # row 8, a few pixels off
    QTest.mouseMove(viewport, target)
    qtbot.waitUntil(lambda: shown.hovered_row() == 8, timeout=2000)
    assert shown.hover_text() == "img_008.jpg\nclass: unknown (best guess: cat, 0.40)\nscore: 0.333"
    assert shown.rect().contains(shown.findChild(QLabel, "hoverText").parentWidget().geometry())
    QTest.mouseClick(viewport, LEFT, NOMOD, target)
    assert session.previewed == 8
    empty = to_viewport(shown, 0.6, -0.6)  # halfway between points: nothing within 8 px
    QTest.mouseMove(viewport, empty)
    qtbot.waitUntil(lambda: shown.hovered_row() == -1, timeout=2000)
    assert shown.hover_text() == ""
    session.set_preview(-1)
    QTest.mouseClick(viewport, LEFT, NOMOD, empty)
    assert session.previewed == -1
    # the map found the rows itself: pyqtgraph made no SpotItem per point (3.5 s at 1M points)
    assert all(item is None for item in shown.plot_widget().getPlotItem().listDataItems()[0].data["item"])


def test_hidden_points_cannot_be_hovered(shown, session, qtbot):
    viewport = shown.plot_widget().viewport()
    classify(session, ["even", "odd"], np.arange(25) % 2)
    session.set_label_hidden("odd", True)
    QTest.mouseMove(viewport, to_viewport(shown, -0.4, -0.8))  # row 1, odd
    qtbot.wait(100)
    assert shown.hovered_row() == -1
    QTest.mouseMove(viewport, to_viewport(shown, 0.0, -0.8))  # row 2, even
    qtbot.waitUntil(lambda: shown.hovered_row() == 2, timeout=2000)


def _pixel(view: MapView, x: float, y: float) -> list[int]:
    image = view.plot_widget().viewport().grab().toImage()
    return list(image.pixelColor(to_viewport(view, x, y)).getRgb())


def _render_state(view: MapView, session) -> list[list[int]]:
    classify(session, ["a", "b", "c"], np.arange(25) % 3)
    session.set_label_hidden("b", True)
    session._on_coords(grid(), "umap")  # new layout, same images: "b" stays hidden on screen too
    return [_pixel(view, float(x), float(y)) for x, y in grid()[:6]]


def test_points_are_drawn_in_their_colours_fast_and_fallback_alike(shown, session, monkeypatch):
    fast = _render_state(shown, session)
    a, c = rgba(slot_colour(0)), rgba(slot_colour(2))
    background = [255, 255, 255, 255]
    assert fast == [a, background, c, a, background, c]  # rows 1 and 4 are hidden "b"
    monkeypatch.setattr(FastScatter, "fast_path", False)
    session.set_colour_mode("none")
    assert _pixel(shown, 0.0, 0.0) == rgba(PLAIN_COLOUR)
    session.set_colour_mode("class")
    assert _render_state(shown, session) == fast


def test_twenty_thousand_points_set_recolour_and_select(qtbot, tmp_path):
    rng = np.random.default_rng(0)
    n = 20_000
    xy = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    session = make_session(tmp_path, coords=xy)
    cache = ThumbnailCache(size=64)
    view = MapView(session, cache)
    qtbot.addWidget(view)
    best = rng.integers(-1, 12, n)
    classify(session, [f"c{i}" for i in range(12)], best)
    table = np.array([slot_colour(i).getRgb() for i in range(12)] + [UNKNOWN_COLOUR.getRgb()])
    np.testing.assert_array_equal(view.point_colours(), table[np.where(best < 0, 12, best)])
    session.set_label_hidden("c3", True)
    assert view.visible_mask().sum() == n - (best == 3).sum()
    score(session, rng.normal(size=n))
    assert len(view.top_rows()) == 10
    view.select_polygon([(-1, -1), (1, -1), (0, 1)])
    assert 0 < session.selection.size < n
    session.shutdown()
    cache.shutdown()


# --------------------------------------------------------------------------- whole-collection work, done with numpy
def test_the_fast_path_draws_without_pyqtgraph_per_point_calls(shown, session, monkeypatch):
    """Placing, recolouring, dimming and selecting take the fast path (none of pyqtgraph's
    per-point setData/setBrush), and what is drawn is the table-and-index colours."""
    def refused(*_args, **_kwargs):
        raise AssertionError("the public per-point path was taken")

    monkeypatch.setattr(FastScatter, "setData", refused)
    monkeypatch.setattr(FastScatter, "setBrush", refused)
    session._on_coords(grid() * 2, "umap")                     # same N: the records are reused
    classify(session, ["a", "b", "c"], np.arange(25) % 3)
    score(session, np.linspace(0, 1, 25))
    session.set_dim_threshold(0.5)
    session.set_selection(np.arange(5, 20))
    assert (shown.point_colours()[:12, 3] == DIM_ALPHA).all() and (shown.point_colours()[13:, 3] == 255).all()
    lut = score_lut()
    for row in (24, 18):   # a point, and a selected one (drawn again, its own colour, a dark rim)
        assert _pixel(shown, *map(float, (grid() * 2)[row])) == lut[round(row / 24 * 255)].tolist()


def test_indexed_colours_match_the_colours_point_by_point(view, session):
    """The map's colour table and index give every point the colour the palette says, in every
    mode, dimmed, with NaN scores."""
    from clipscape.app.map.colours import indexed_colours

    scores = np.linspace(-1.0, 1.0, 25)
    scores[3] = np.nan
    score(session, scores)
    session.set_dim_threshold(0.0)
    scores = session.scores   # float32, as a query job gives them
    expected = score_colours(scores, float(np.nanmin(scores)), float(np.nanmax(scores)))
    expected[scores < 0.0, 3] = np.minimum(expected[scores < 0.0, 3], DIM_ALPHA)
    table, index = indexed_colours(session)
    assert len(table) <= 2 * 257 and index.shape == (25,)
    np.testing.assert_array_equal(table[index], expected)
    np.testing.assert_array_equal(view.point_colours(), expected)
    classify(session, ["a", "b"], np.where(np.arange(25) % 5 == 0, -1, np.arange(25) % 2))
    table, index = indexed_colours(session)
    assert len(table) == 6    # a, b, unknown, and each faded
    np.testing.assert_array_equal(view.point_colours(), table[index])


def test_selection_is_sorted_unique_visible_rows_however_given(view, session):
    rng = np.random.default_rng(1)
    classify(session, ["a", "b"], np.arange(25) % 2)
    session.set_label_hidden("b", True)                      # odd rows hidden
    rows = rng.integers(0, 25, 40)                            # unsorted, repeated
    session.set_selection(rows)
    expected = np.unique(rows)[np.unique(rows) % 2 == 0]
    assert session.selection.dtype == np.int64
    np.testing.assert_array_equal(session.selection, expected)
    session.set_selection([24, 0, 0], add=True)
    np.testing.assert_array_equal(session.selection, np.union1d(expected, [0, 24]))
    session.set_selection(np.array([], np.int64), add=True)  # adding nothing changes nothing
    np.testing.assert_array_equal(session.selection, np.union1d(expected, [0, 24]))
    for bad in ([25], [-1], [3, 30]):
        with pytest.raises(IndexError):
            session.set_selection(bad)


def test_top_rows_are_the_full_ranks_first_visible_rows(tmp_path):
    """The top-k reads only the rank's head, yet equals filtering the whole stable rank, also
    when the best-scoring thousands are hidden."""
    n = 5000
    session = make_session(tmp_path, coords=np.random.default_rng(0).normal(size=(n, 2)))
    scores = np.round(np.random.default_rng(2).normal(size=n), 2)   # many ties: the stable order counts
    score(session, scores)
    rank = np.argsort(-scores.astype(np.float32), kind="stable")
    best = np.where(np.isin(np.arange(n), rank[:3000]), 0, 1)       # the 3000 best are class "a"
    classify(session, ["a", "b"], best)
    for hidden in ((), ("a",), ("b",)):
        for label in ("a", "b"):
            session.set_label_hidden(label, label in hidden)
        visible = session.visible()
        for k in (1, 10, 200):
            np.testing.assert_array_equal(session.top_rows(k), rank[visible[rank]][:k])
    session.set_label_hidden("a", True)
    session.set_label_hidden("b", True)
    assert session.top_rows().size == 0
    session.shutdown()


def test_a_recolour_with_the_same_brushes_still_draws_moved_points(shown, session):
    """The map skips rewriting brushes only when nothing changed: the same two classes with
    other members (same palette, another index) are redrawn, and so are new coordinates."""
    classify(session, ["a", "b"], np.arange(25) % 2)
    assert _pixel(shown, *map(float, grid()[0])) == rgba(slot_colour(0))
    classify(session, ["a", "b"], (np.arange(25) + 1) % 2)
    assert _pixel(shown, *map(float, grid()[0])) == rgba(slot_colour(1))
    session.set_colour_mode("class")             # nothing changes: nothing to redo, still right
    assert _pixel(shown, *map(float, grid()[1])) == rgba(slot_colour(0))
    session._on_coords(grid()[::-1].copy(), "umap")   # row 0 is now where row 24 was
    assert _pixel(shown, *map(float, grid()[24])) == rgba(slot_colour(1))
