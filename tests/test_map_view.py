"""The map widget: colour modes, legend, selection by API and by real mouse drags, hover, click."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPixmap, QPolygonF
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFrame, QLabel, QListWidget

from clipscape.app.map_view import MapView, _FastScatter, points_in_polygon
from clipscape.app.palette import (
    PLAIN_COLOUR, UNKNOWN_COLOUR, class_colours, score_colours, score_lut,
)

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def grid(n: int = 5, step: float = 0.4) -> np.ndarray:
    """n×n points, row = iy * n + ix, centred on 0."""
    ix, iy = np.meshgrid(np.arange(n), np.arange(n))
    return (np.stack([ix.ravel(), iy.ravel()], axis=1) - (n - 1) / 2).astype(np.float32) * step


def rgba(colour: QColor) -> list[int]:
    return list(colour.getRgb())


@pytest.fixture
def view(qtbot):
    widget = MapView()
    qtbot.addWidget(widget)
    widget.resize(640, 480)
    return widget


@pytest.fixture
def shown(view, qtbot):
    """A visible map of a 5×5 grid, zoomed to fit after it got its final size."""
    view.show()
    qtbot.waitExposed(view)
    view.set_coords(grid())
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
    assert len(colours) == 25
    assert len(set(names[:18])) == 18
    assert names[18] == names[0]  # cycles
    assert UNKNOWN_COLOUR.name() not in names and PLAIN_COLOUR.isValid()
    assert all(abs(c.red() - c.green()) + abs(c.green() - c.blue()) > 20 for c in colours)


def test_score_colours_maps_range_onto_viridis():
    lut = score_lut()
    out = score_colours(np.array([0.0, 10.0, 5.0, -3.0, 99.0, np.nan]), 0.0, 10.0)
    assert out.dtype == np.uint8 and out.shape == (6, 4)
    assert out[0].tolist() == lut[0].tolist() == out[3].tolist()   # low end, and clipped
    assert out[1].tolist() == lut[255].tolist() == out[4].tolist()  # high end, and clipped
    assert out[2].tolist() in (lut[127].tolist(), lut[128].tolist())
    assert out[5].tolist() == rgba(UNKNOWN_COLOUR)
    assert lut[0][2] > lut[0][1] and lut[255][0] > 200  # dark purple → yellow
    flat = score_colours(np.ones(3), 1.0, 1.0)
    assert (flat == lut[128]).all()


# --------------------------------------------------------------------------- data
def test_point_count_coords_and_clear(view, qtbot):
    xy = grid()
    view.set_coords(xy)
    assert view.point_count() == 25
    np.testing.assert_array_equal(view.coords(), xy)
    assert (view.point_colours() == rgba(PLAIN_COLOUR)).all()
    assert view.visible_mask().all()
    view.select_in_rect(-1, -1, 1, 1)
    with qtbot.waitSignal(view.selectionChanged) as blocker:
        view.clear()
    assert view.point_count() == 0 and blocker.args[0].size == 0
    with pytest.raises(ValueError):
        view.set_coords(np.zeros((3, 3)))


def test_set_coords_same_count_keeps_colours_hidden_and_selection(view, qtbot):
    view.set_coords(grid())
    best = np.arange(25) % 3
    view.show_classes(best, ["a", "b", "c"])
    view.set_label_visible("c", False)
    view.select_in_rect(-1, -1, 1, 1)
    colours, selected = view.point_colours(), view.selection()

    with qtbot.assertNotEmitted(view.selectionChanged):
        view.set_coords(grid() * 2, reset_view=False)  # "UMAP replaces PCA"
    np.testing.assert_array_equal(view.coords(), grid() * 2)
    np.testing.assert_array_equal(view.point_colours(), colours)
    np.testing.assert_array_equal(view.selection(), selected)
    assert view.hidden_labels() == {"c"} and view.visible_mask().sum() == 25 - 8

    with qtbot.waitSignal(view.selectionChanged) as blocker:
        view.set_coords(grid(4))  # a different collection starts over
    assert blocker.args[0].size == 0 and view.selection().size == 0
    assert (view.point_colours() == rgba(PLAIN_COLOUR)).all()
    assert view.legend_entries() == [] and view.visible_mask().all()


# --------------------------------------------------------------------------- classes
def test_show_classes_legend_counts_colours_and_hiding(view, qtbot):
    view.set_coords(grid())
    best = np.full(25, -1)
    best[:10], best[10:13] = 0, 2  # 10 × "cat", 0 × "dog", 3 × "owl", 12 unknown
    view.show_classes(best, ["cat", "dog", "owl"])
    palette = class_colours(3)
    entries = view.legend_entries()
    assert [(e[0], e[1], e[3]) for e in entries] == [
        ("cat", 10, True), ("dog", 0, True), ("owl", 3, True), ("unknown", 12, True)]
    assert [e[2].name() for e in entries] == [c.name() for c in palette] + [UNKNOWN_COLOUR.name()]
    assert view.point_colours()[0].tolist() == rgba(palette[0])
    assert view.point_colours()[11].tolist() == rgba(palette[2])
    assert view.point_colours()[20].tolist() == rgba(UNKNOWN_COLOUR)

    legend = view.findChild(QListWidget, "legend")
    assert legend.isVisibleTo(view) and legend.count() == 4
    assert legend.item(0).text() == "cat (10)"

    with qtbot.waitSignal(view.labelVisibilityChanged) as blocker:
        legend.item(0).setCheckState(Qt.CheckState.Unchecked)  # as a user click would
    assert blocker.args == ["cat", False]
    assert view.hidden_labels() == {"cat"}
    assert not view.visible_mask()[:10].any() and view.visible_mask()[10:].all()
    view.select_in_rect(-1, -1, 1, 1)
    np.testing.assert_array_equal(view.selection(), np.arange(10, 25))

    view.show_classes(best, ["cat", "owl", "dog"], counts={"cat": 99})  # "cat" stays hidden
    assert view.legend_entries()[0][:2] == ("cat", 99)
    assert view.hidden_labels() == {"cat"}
    assert legend.item(0).checkState() == Qt.CheckState.Unchecked
    view.show_classes(np.zeros(25, dtype=int), ["dog"])  # no "cat" any more: forgotten
    assert view.hidden_labels() == set() and [e[0] for e in view.legend_entries()] == ["dog"]
    view.show_classes(best, ["cat", "dog", "owl"])
    assert view.hidden_labels() == set() and view.visible_mask().all()


def test_hiding_a_label_drops_its_points_from_the_selection(view, qtbot):
    view.set_coords(grid())
    view.show_classes(np.arange(25) % 2, ["even", "odd"])
    view.select_in_rect(-1, -1, 1, 1)
    with qtbot.waitSignal(view.selectionChanged) as blocker:
        view.set_label_visible("odd", False)
    np.testing.assert_array_equal(blocker.args[0], np.arange(0, 25, 2))
    with qtbot.assertNotEmitted(view.labelVisibilityChanged):
        view.set_label_visible("odd", False)  # no change, no signal
    with pytest.raises(KeyError):
        view.set_label_visible("nope", True)


def test_show_clusters_names_and_unclustered(view):
    view.set_coords(grid())
    ids = np.array([0] * 5 + [2] * 5 + [-1] * 15)
    view.show_clusters(ids)
    entries = view.legend_entries()
    assert [(e[0], e[1]) for e in entries] == [
        ("cluster 1", 5), ("cluster 3", 5), ("unclustered", 15)]
    assert entries[1][2].name() == class_colours(3)[2].name()
    assert view.point_colours()[7].tolist() == rgba(class_colours(3)[2])
    view.set_label_visible("unclustered", False)
    assert view.visible_mask().sum() == 10
    view.show_plain()
    assert view.legend_entries() == [] and view.visible_mask().all()
    assert not view.findChild(QListWidget, "legend").isVisibleTo(view)


# --------------------------------------------------------------------------- scores
def test_show_scores_top_k_threshold_and_colour_bar(view):
    view.set_coords(grid())
    scores = np.linspace(-1.0, 1.0, 25)[::-1].copy()  # row 0 best
    view.show_scores(scores, top_k=3, threshold=0.5)
    np.testing.assert_array_equal(view.top_rows(), [0, 1, 2])
    colours = view.point_colours()
    expected = score_colours(scores, -1.0, 1.0)
    np.testing.assert_array_equal(colours[:, :3], expected[:, :3])
    below = scores < 0.5
    assert (colours[below, 3] == 40).all() and (colours[~below, 3] == 255).all()

    view.set_threshold(None)
    assert (view.point_colours()[:, 3] == 255).all()
    view.set_threshold(0.0)
    assert (view.point_colours()[:, 3] == np.where(scores < 0.0, 40, 255)).all()

    assert view.findChild(QLabel, "colourBarMax").text() == "1"
    assert view.findChild(QLabel, "colourBarMin").text() == "-1"
    assert view.findChild(QLabel, "colourBarMax").parentWidget().isVisibleTo(view)
    assert not view.findChild(QListWidget, "legend").isVisibleTo(view)
    view.show_scores(scores, top_k=0)
    assert view.top_rows().size == 0 and (view.point_colours()[:, 3] == 255).all()
    with pytest.raises(ValueError):
        view.show_scores(scores[:3])


# --------------------------------------------------------------------------- selection API
def test_select_in_rect_exact_rows_and_add(view, qtbot):
    view.set_coords(grid())  # x, y in {-0.8, -0.4, 0, 0.4, 0.8}
    with qtbot.waitSignal(view.selectionChanged) as blocker:
        view.select_in_rect(0.5, 0.5, -0.5, -0.1)  # corners in any order
    np.testing.assert_array_equal(blocker.args[0], [11, 12, 13, 16, 17, 18])
    view.select_in_rect(-0.9, -0.9, -0.7, -0.7, add=True)
    np.testing.assert_array_equal(view.selection(), [0, 11, 12, 13, 16, 17, 18])
    assert view.selection().dtype == np.int64
    with qtbot.waitSignal(view.selectionChanged) as blocker:
        view.clear_selection()
    assert blocker.args[0].size == 0 and view.selection().size == 0


def test_select_in_polygon_l_shape(view):
    view.set_coords(grid(step=1.0))  # integer grid -2..2
    l_shape = [(-2.5, -2.5), (2.5, -2.5), (2.5, -0.5), (-0.5, -0.5), (-0.5, 2.5), (-2.5, 2.5)]
    view.select_in_polygon(l_shape)
    expected = [r for r in range(25) if r // 5 <= 1 or r % 5 <= 1]
    np.testing.assert_array_equal(view.selection(), expected)
    view.select_in_polygon([(0, 0), (1, 1)])  # not a polygon: selects nothing
    assert view.selection().size == 0


def test_points_in_polygon_matches_qt_even_odd():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1.2, 1.2, (3000, 2))
    angles = np.sort(rng.uniform(0, 4 * np.pi, 40))  # winds twice: self-intersecting
    radius = rng.uniform(0.3, 1.0, 40)
    poly = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    qpoly = QPolygonF([QPointF(x, y) for x, y in poly])
    expected = [qpoly.containsPoint(QPointF(x, y), Qt.FillRule.OddEvenFill) for x, y in pts]
    np.testing.assert_array_equal(points_in_polygon(pts, poly), expected)


# --------------------------------------------------------------------------- mouse
def test_box_drag_selects_points_and_does_not_pan(shown, qtbot):
    viewport = shown.plot_widget().viewport()
    range_before = shown.plot_widget().getViewBox().viewRange()
    shown.set_tool("box")
    assert shown.tool() == "box"
    a, b = to_viewport(shown, -0.5, -0.1), to_viewport(shown, 0.5, 0.5)
    with qtbot.waitSignal(shown.selectionChanged) as blocker:
        drag(viewport, [a, (a + b) / 2, b])
    np.testing.assert_array_equal(blocker.args[0], [11, 12, 13, 16, 17, 18])
    assert shown.plot_widget().getViewBox().viewRange() == range_before

    c, d = to_viewport(shown, -0.9, -0.9), to_viewport(shown, -0.7, -0.7)
    drag(viewport, [c, d], modifier=SHIFT)  # Shift adds
    np.testing.assert_array_equal(shown.selection(), [0, 11, 12, 13, 16, 17, 18])


def test_lasso_drag_selects_points_inside_the_path(shown, qtbot):
    viewport = shown.plot_widget().viewport()
    shown.set_tool("lasso")
    # a triangle whose long side x + y = -0.6 passes 0.2 beyond (0,-0.8), (-0.4,-0.4), (-0.8,0)
    corners = [(-1.0, -1.0), (0.4, -1.0), (-1.0, 0.4)]
    path = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        path += [to_viewport(shown, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
                 for t in np.linspace(0, 1, 8, endpoint=False)]
    with qtbot.waitSignal(shown.selectionChanged) as blocker:
        drag(viewport, path)
    np.testing.assert_array_equal(blocker.args[0], [0, 1, 2, 5, 6, 10])


def test_pan_drag_moves_the_view_without_selecting(shown, qtbot):
    viewport = shown.plot_widget().viewport()
    vb = shown.plot_widget().getViewBox()
    x_before = vb.viewRange()[0]
    a = to_viewport(shown, 0.0, 0.0)
    with qtbot.assertNotEmitted(shown.selectionChanged), \
            qtbot.assertNotEmitted(shown.pointClicked):
        drag(viewport, [a, a + QPoint(20, 0), a + QPoint(60, 0), a + QPoint(100, 0)])
    assert vb.viewRange()[0][0] < x_before[0] - 0.1  # content moved right = view moved left


def test_hover_shows_provider_card_and_click_emits_row(shown, qtbot):
    viewport = shown.plot_widget().viewport()
    calls = []
    thumb = QPixmap(32, 24)
    thumb.fill(QColor("red"))

    def provider(row):
        calls.append(row)
        return thumb, f"image {row} v{len(calls)}"

    shown.set_hover_provider(provider)
    card = shown.findChild(QFrame, "hoverCard")
    target = to_viewport(shown, 0.4, -0.4) + QPoint(3, -2)  # row 8, a few pixels off
    with qtbot.waitSignal(shown.pointHovered, check_params_cb=lambda row: row == 8):
        QTest.mouseMove(viewport, target)
    assert shown.hovered_row() == 8 and calls == [8]
    assert card.isVisible() and card.findChild(QLabel, "hoverText").text() == "image 8 v1"
    assert card.findChild(QLabel, "hoverImage").pixmap().size() == thumb.size()
    assert shown.rect().contains(card.geometry())

    shown.refresh_hover()  # e.g. the thumbnail finished loading
    assert calls == [8, 8] and card.findChild(QLabel, "hoverText").text() == "image 8 v2"

    with qtbot.waitSignal(shown.pointClicked) as blocker:
        QTest.mouseClick(viewport, LEFT, NOMOD, target)
    assert blocker.args == [8]

    empty = to_viewport(shown, 0.6, -0.6)  # halfway between points: nothing within 8 px
    with qtbot.waitSignal(shown.pointHovered, check_params_cb=lambda row: row == -1):
        QTest.mouseMove(viewport, empty)
    assert shown.hovered_row() == -1 and not card.isVisible()
    with qtbot.assertNotEmitted(shown.pointClicked):
        QTest.mouseClick(viewport, LEFT, NOMOD, empty)


def test_hidden_points_cannot_be_hovered(shown, qtbot):
    viewport = shown.plot_widget().viewport()
    shown.show_classes(np.arange(25) % 2, ["even", "odd"])
    shown.set_label_visible("odd", False)
    with qtbot.assertNotEmitted(shown.pointHovered, wait=150):
        QTest.mouseMove(viewport, to_viewport(shown, -0.4, -0.8))  # row 1, odd
    assert shown.hovered_row() == -1
    with qtbot.waitSignal(shown.pointHovered, check_params_cb=lambda row: row == 2):
        QTest.mouseMove(viewport, to_viewport(shown, 0.0, -0.8))  # row 2, even


# --------------------------------------------------------------------------- drawing
def _pixel(view: MapView, x: float, y: float) -> list[int]:
    image = view.plot_widget().viewport().grab().toImage()
    p = to_viewport(view, x, y)
    return list(image.pixelColor(p).getRgb())


def _render_state(view: MapView) -> list[list[int]]:
    view.set_coords(grid(), reset_view=True)
    view.show_classes(np.arange(25) % 3, ["a", "b", "c"])
    view.set_label_visible("b", False)
    view.set_coords(grid(), reset_view=False)  # same N: "b" stays hidden on screen too
    xy = grid()
    return [_pixel(view, float(x), float(y)) for x, y in xy[:6]]


def test_points_are_drawn_in_their_colours_fast_and_fallback_alike(shown, monkeypatch):
    fast = _render_state(shown)
    a, c = rgba(class_colours(3)[0]), rgba(class_colours(3)[2])
    background = [255, 255, 255, 255]
    assert fast == [a, background, c, a, background, c]  # row 1 and 4 are hidden "b"
    monkeypatch.setattr(_FastScatter, "fast_path", False)
    shown.show_plain()
    assert _pixel(shown, 0.0, 0.0) == rgba(PLAIN_COLOUR)
    assert _render_state(shown) == fast


def test_twenty_thousand_points_set_and_recolour(view):
    rng = np.random.default_rng(0)
    n = 20_000
    xy = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    view.set_coords(xy)
    best = rng.integers(-1, 12, n)
    view.show_classes(best, [f"c{i}" for i in range(12)])
    table = np.array([c.getRgb() for c in class_colours(12)] + [UNKNOWN_COLOUR.getRgb()])
    np.testing.assert_array_equal(view.point_colours(), table[np.where(best < 0, 12, best)])
    view.set_label_visible("c3", False)
    assert view.visible_mask().sum() == n - (best == 3).sum()
    view.show_scores(rng.normal(size=n), top_k=50, threshold=0.0)
    assert len(view.top_rows()) == 50
    view.set_coords(xy[::-1].copy())  # same N: layout replaced, colours kept
    assert len(np.unique(view.point_colours(), axis=0)) > 100
    view.select_in_polygon([(-1, -1), (1, -1), (0, 1)])
    assert 0 < view.selection().size < n
