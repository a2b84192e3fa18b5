"""The map's level of detail: a decimated sample zoomed out, every point in view zoomed in, images
at close zoom; selection, hover, click, box and lasso still pick from every point, the same rows
as a brute-force numpy reference at each level."""
from __future__ import annotations

import os

import numpy as np
import pytest
from gui_support import classify, make_session
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from clipscape.app.map import MapView
from clipscape.app.map.detail import MARGIN_SHARE
from clipscape.app.map.mouse import HOVER_RADIUS_PX
from clipscape.app.palette import slot_colour
from clipscape.app.thumbnails import ThumbnailCache
from clipscape.models.level_of_detail import DrawOrder, Rect
from clipscape.resources import DEMO_IMAGES

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
N = 40_000
BUDGET, SELECTED_BUDGET = 3000, 1500   # small budgets, so 40k points are "too many"


def clustered(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points in 6 Gaussian clusters of different sizes and spreads, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-6, -4], [5, -5], [0, 0], [6, 5], [-5, 5], [1, 8]], float)
    weights = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
    spread = np.array([1.2, 0.8, 0.5, 1.0, 0.3, 0.6])
    which = rng.choice(6, size=n, p=weights)
    xy = centres[which] + rng.normal(size=(n, 2)) * spread[which, None]
    return xy.astype(np.float32), which


# --------------------------------------------------------------------------- the pick itself (no Qt)
def test_a_pick_is_the_views_eligible_points_in_priority_order_up_to_the_budget():
    xy, _ = clustered(20_000)
    order = DrawOrder(xy)
    rng = np.random.default_rng(4)
    eligible_rows = rng.random(len(xy)) < 0.7
    eligible = order.permuted(eligible_rows)
    np.testing.assert_array_equal(order.permuted(eligible_rows), order.marked(np.flatnonzero(eligible_rows)))
    view = Rect(-8, -7, 2, 1)
    region = view.expanded(0.2)
    inside = ((xy[:, 0] >= view.x0) & (xy[:, 0] <= view.x1) & (xy[:, 1] >= view.y0) & (xy[:, 1] <= view.y1))
    in_region = ((xy[:, 0] >= region.x0) & (xy[:, 0] <= region.x1)
                 & (xy[:, 1] >= region.y0) & (xy[:, 1] <= region.y1))
    by_priority = order.order[eligible]                      # eligible rows, priority order
    want_view = by_priority[inside[by_priority]]
    assert len(want_view) > 2000
    pick = order.pick(eligible, view, region, budget=500, margin_cap=10_000)
    np.testing.assert_array_equal(pick.view_rows, want_view[:500])   # the first 500 of the view
    assert pick.in_view == 500 and not pick.complete_view
    assert eligible_rows[pick.rows].all() and in_region[pick.rows].all()
    # the margin is drawn at the view's density: every eligible region row up to the last one taken
    last = np.flatnonzero(order.order == pick.rows[-1])[0]
    head = order.order[:last + 1]
    np.testing.assert_array_equal(pick.rows, head[eligible_rows[head] & in_region[head]])
    # a budget above the view's count: all of the view, exactly counted
    whole = order.pick(eligible, view, region, budget=10 ** 9, margin_cap=10 ** 9)
    assert whole.complete_view and whole.complete_region and whole.in_view == len(want_view)
    assert set(whole.rows) == set(np.flatnonzero(eligible_rows & in_region))
    # a margin cap: the view keeps every point, the margin its first 100 in priority order
    capped = order.pick(eligible, view, region, budget=10 ** 9, margin_cap=100)
    assert set(capped.view_rows) == set(want_view) and len(capped.rows) == len(want_view) + 100
    margin = by_priority[in_region[by_priority] & ~inside[by_priority]]
    assert set(capped.rows) - set(want_view) == set(margin[:100])
    assert capped.complete_view and not capped.complete_region


# --------------------------------------------------------------------------- the map
def test_a_draw_order_is_made_once_per_coordinate_array_and_the_job_makes_it():
    """draw_order keeps the order of each coordinate array (the map's costs ~60 ms at 1M), so the
    job that made the coordinates builds it in its worker and the map, on the GUI thread, finds it."""
    from clipscape.app import tasks
    from clipscape.models.level_of_detail import KEPT_ORDERS, draw_order

    xy, _ = clustered(1_000)
    coords = tasks.for_the_map(xy.astype(np.float64))       # as the map holds them, order made
    assert coords.dtype == np.float32 and coords.flags.c_contiguous
    order = draw_order(coords)
    assert draw_order(coords) is order and draw_order(coords.copy()) is not order
    np.testing.assert_array_equal(order.x, coords[order.order, 0])
    others = [np.zeros((3, 2), np.float32) for _ in range(KEPT_ORDERS)]
    for other in others:
        draw_order(other)
    assert draw_order(coords) is not order                   # pushed out by newer arrays, made again
    assert not order.none.any() and order.every.all() and not order.none.flags.writeable
    assert order.marked(np.zeros(0, np.intp)) is order.none and order.permuted(None, all_true=True) is order.every


def test_the_map_takes_the_order_its_coordinates_came_with(big):
    view, session, _ = big
    from clipscape.models.level_of_detail import draw_order

    assert view.detail._order is draw_order(session.coords)


def _shown_map(qtbot, session, which, size, budgets=None):
    """A shown, fitted MapView of ``session`` (with these point budgets, if given); shut down after."""
    cache = ThumbnailCache(size=64)
    view = MapView(session, cache)
    qtbot.addWidget(view)
    if budgets is not None:
        view.detail.budget, view.detail.selected_budget = budgets
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    yield view, session, which
    session.shutdown()
    cache.shutdown()


@pytest.fixture
def big(qtbot, tmp_path):
    xy, which = clustered(N)
    session = make_session(tmp_path, coords=xy, dim=4)
    yield from _shown_map(qtbot, session, which, (640, 480), budgets=(BUDGET, SELECTED_BUDGET))


def view_rect(view: MapView) -> Rect:
    (x0, x1), (y0, y1) = view.plot_widget().getViewBox().viewRange()
    return Rect(x0, y0, x1, y1)


def inside(xy: np.ndarray, r: Rect) -> np.ndarray:
    return (xy[:, 0] >= r.x0) & (xy[:, 0] <= r.x1) & (xy[:, 1] >= r.y0) & (xy[:, 1] <= r.y1)


def zoom(qtbot, view: MapView, cx: float, cy: float, width: float) -> None:
    """Show ``width`` data units around (cx, cy) and wait for the pick of that view."""
    box = view.plot_widget().getViewBox()
    box.setRange(xRange=(cx - width / 2, cx + width / 2), yRange=(cy - width / 2, cy + width / 2), padding=0)
    qtbot.waitUntil(lambda: view.detail.picked_view() == view_rect(view), timeout=2000)


def drawn(view: MapView) -> np.ndarray:
    """The plain layer's rows, checked against what its scatter item really holds."""
    rows = view.detail.drawn_rows()
    item = view.plot_widget().getPlotItem().listDataItems()[0]
    np.testing.assert_array_equal(np.stack([item.data["x"], item.data["y"]], axis=1), view.coords()[rows])
    assert item.data["visible"].all()
    return rows


def drawn_in_view(view: MapView) -> set[int]:
    rows = np.concatenate([drawn(view), view.detail.drawn_selected_rows()])
    return set(rows[inside(view.coords()[rows], view_rect(view))].tolist())


def to_viewport(view: MapView, x: float, y: float) -> QPoint:
    plot = view.plot_widget()
    return plot.mapFromScene(plot.getViewBox().mapViewToScene(QPointF(x, y)))


def nearest_reference(view: MapView, pixel: QPoint) -> int:
    """Brute force: the visible point nearest to ``pixel`` within the hover radius, or -1."""
    box = view.plot_widget().getViewBox()
    p = view.mouse.to_data(QPointF(pixel))
    sx, sy = box.viewPixelSize()
    xy, visible = view.coords().astype(np.float64), view.visible_mask()
    d2 = ((xy[:, 0] - p.x()) / sx) ** 2 + ((xy[:, 1] - p.y()) / sy) ** 2
    d2[~visible] = np.inf
    best = int(np.argmin(d2))
    return best if d2[best] <= HOVER_RADIUS_PX ** 2 else -1


def test_zoomed_out_a_uniform_sample_within_the_budget_zoomed_in_every_point(big, qtbot):
    view, session, which = big
    xy = view.coords()
    rows = drawn(view)
    assert len(drawn_in_view(view)) == BUDGET                  # everything is in view: the budget
    assert len(rows) <= BUDGET * (1 + MARGIN_SHARE)
    share_drawn = np.bincount(which[rows], minlength=6) / len(rows)
    share_all = np.bincount(which, minlength=6) / len(which)
    assert np.abs(share_drawn - share_all).max() < 0.03        # the density keeps its shape
    # zoomed in on the smallest cluster: fewer points in view than the budget, so all of them
    zoom(qtbot, view, 1, 8, 2.0)
    want = set(np.flatnonzero(inside(xy, view_rect(view))).tolist())
    assert 100 < len(want) < BUDGET and drawn_in_view(view) == want
    # a pan beyond the margin: the throttled pick follows, again every point in view
    view.plot_widget().getViewBox().translateBy(x=1.5)
    qtbot.waitUntil(lambda: view.detail.picked_view() == view_rect(view), timeout=2000)
    want = set(np.flatnonzero(inside(xy, view_rect(view))).tolist())
    assert drawn_in_view(view) == want and len(want) > 0
    view.fit()
    assert len(drawn_in_view(view)) == BUDGET


def test_recolour_and_hidden_classes_show_on_the_drawn_subset(big, qtbot):
    view, session, which = big
    classify(session, ["a", "b", "c"], which % 3)
    rows = drawn(view)
    item = view.plot_widget().getPlotItem().listDataItems()[0]
    colours = np.array([b.color().getRgb() for b in item.data["brush"]])
    np.testing.assert_array_equal(colours, view.point_colours()[rows])
    assert {tuple(c) for c in colours} == {tuple(slot_colour(i).getRgb()) for i in range(3)}
    session.set_label_hidden("b", True)
    rows = drawn(view)
    assert not (which[rows] % 3 == 1).any()
    assert len(drawn_in_view(view)) == BUDGET                  # the budget goes to the shown points
    zoom(qtbot, view, 0, 0, 0.6)
    want = set(np.flatnonzero(inside(view.coords(), view_rect(view)) & (which % 3 != 1)).tolist())
    assert len(want) < BUDGET
    assert drawn_in_view(view) == want and len(want) > 50


def test_selection_is_drawn_decimated_when_huge_and_whole_when_small(big, qtbot):
    view, session, _ = big
    session.set_selection(np.arange(0, N, 2))
    sel, plain = view.detail.drawn_selected_rows(), drawn(view)
    assert (sel % 2 == 0).all() and (plain % 2 == 1).all()     # the plain layer leaves them out
    assert len(set(sel) & drawn_in_view(view)) == SELECTED_BUDGET
    assert len(drawn_in_view(view)) == BUDGET                   # one budget for both layers
    item = view._sel_item
    np.testing.assert_array_equal(np.stack([item.data["x"], item.data["y"]], axis=1), view.coords()[sel])
    few = np.random.default_rng(3).choice(N, 50, replace=False)
    session.set_selection(few)
    np.testing.assert_array_equal(np.sort(view.detail.drawn_selected_rows()), np.sort(few))


LEVELS = {"decimated": ("big", None), "culled": ("big", (6.0, 5.0, 3.0)), "thumbnails": ("photos", (6.0, 5.0, 2.5))}


def image_reference(view: MapView, pixel: QPoint) -> int | None:
    """Brute force over the images on screen: the row of the one drawn on top at ``pixel`` (the
    hovered one is drawn last), -1 for none, None when an image's edge is within 2 px (a pixel's
    rounding could go either way there)."""
    layer = view.detail.thumbs
    rows = [int(r) for r in layer.shown_rows()]
    hovered = view.hovered_row()
    rows = [r for r in rows if r != hovered] + [r for r in rows if r == hovered]
    found = -1
    for row in rows:
        centre, pixmap = to_viewport(view, *map(float, view.coords()[row])), layer.pixmap(row)
        dx, dy = abs(pixel.x() - centre.x()), abs(pixel.y() - centre.y())
        hw, hh = pixmap.width() / 2 + 2, pixmap.height() / 2 + 2     # the 2 px frame is part of it
        if (abs(dx - hw) <= 2 and dy <= hh + 2) or (abs(dy - hh) <= 2 and dx <= hw + 2):
            return None
        if dx < hw and dy < hh:
            found = row
    return found


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_box_lasso_hover_and_click_pick_every_point_at_each_level(request, qtbot, level):
    fixture, place = LEVELS[level]
    view, session, which = request.getfixturevalue(fixture)
    classify(session, ["a", "b"], np.arange(len(which)) % 2)   # odd rows hidden below
    session.set_label_hidden("b", True)
    if place:
        zoom(qtbot, view, *place)
    xy, visible = view.coords(), view.visible_mask()
    r = view_rect(view)
    viewport = view.plot_widget().viewport()
    drawn_rows = set(drawn(view).tolist())
    if level == "decimated":
        assert len(drawn_rows) < visible.sum() / 4
    if level == "thumbnails":
        shown = set(np.flatnonzero(visible & inside(xy, r)).tolist())
        qtbot.waitUntil(lambda: shown <= set(view.detail.thumbs.shown_rows().tolist()), timeout=10_000)
    else:
        assert not len(view.detail.thumbs.shown_rows())
    # hover and click: on visible points that are (decimated: mostly) not drawn
    candidates = np.flatnonzero(visible & inside(xy, Rect(*(np.array([r.x0, r.y0, r.x1, r.y1])
                                                            + 0.1 * np.array([r.width, r.height, -r.width, -r.height])))))
    not_drawn = [int(c) for c in candidates if c not in drawn_rows]
    targets = (not_drawn if level == "decimated" else [int(c) for c in candidates])[:12]
    assert len(targets) >= 8
    checked = 0
    for row in targets:
        pixel = to_viewport(view, *map(float, xy[row])) + QPoint(2, -1)
        want = image_reference(view, pixel) if level == "thumbnails" else -1
        if want is None:
            continue
        want = want if want >= 0 else nearest_reference(view, pixel)
        assert want >= 0
        checked += 1
        QTest.mouseMove(viewport, pixel)
        qtbot.waitUntil(lambda w=want: view.hovered_row() == w, timeout=2000)
        QTest.mouseClick(viewport, LEFT, NOMOD, pixel)
        assert session.previewed == want
    assert checked >= 5
    # box: a drag over a part of the view selects every visible point inside, drawn or not
    view.set_tool("box")
    a = to_viewport(view, r.x0 + 0.2 * r.width, r.y0 + 0.3 * r.height)
    b = to_viewport(view, r.x0 + 0.7 * r.width, r.y0 + 0.8 * r.height)
    QTest.mousePress(viewport, LEFT, NOMOD, a)
    QTest.mouseMove(viewport, (a + b) / 2)
    QTest.mouseMove(viewport, b)
    QTest.mouseRelease(viewport, LEFT, NOMOD, b)
    pa, pb = view.mouse.to_data(QPointF(a)), view.mouse.to_data(QPointF(b))
    box = Rect(min(pa.x(), pb.x()), min(pa.y(), pb.y()), max(pa.x(), pb.x()), max(pa.y(), pb.y()))
    want = np.flatnonzero(visible & inside(xy, box))
    assert len(want) > 20
    np.testing.assert_array_equal(session.selection, want)
    # lasso: a triangle
    view.set_tool("lasso")
    corners = [(0.1, 0.1), (0.9, 0.2), (0.4, 0.9)]
    pixels = [to_viewport(view, r.x0 + fx * r.width, r.y0 + fy * r.height) for fx, fy in corners]
    path = []
    for p, q in zip(pixels, pixels[1:] + pixels[:1]):
        path += [p + (q - p) * t for t in np.linspace(0, 1, 10, endpoint=False)]
    QTest.mousePress(viewport, LEFT, NOMOD, path[0])
    for p in path[1:]:
        QTest.mouseMove(viewport, p)
    QTest.mouseRelease(viewport, LEFT, NOMOD, path[0])
    polygon = np.array([(p.x(), p.y()) for p in (view.mouse.to_data(QPointF(q)) for q in path + [path[0]])])
    want = np.flatnonzero(visible & _even_odd(xy.astype(np.float64), polygon))
    assert len(want) > 20
    np.testing.assert_array_equal(session.selection, want)


def _even_odd(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """The plain ray-crossing test, one edge at a time over every point (the reference)."""
    inside_ = np.zeros(len(pts), bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        crosses = (yi > pts[:, 1]) != (yj > pts[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = xi + (pts[:, 1] - yi) * (xj - xi) / (yj - yi)
        inside_ ^= crosses & (pts[:, 0] < x_cross)
        xj, yj = xi, yi
    return inside_


# --------------------------------------------------------------------------- thumbnails at close zoom
@pytest.fixture
def photos(qtbot, tmp_path):
    """3,000 points whose paths are real JPEGs (the demo photos, linked under distinct names)."""
    xy, which = clustered(3000, seed=1)
    demo = sorted(DEMO_IMAGES.glob("*.jpg"))
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i in range(len(xy)):
        path = folder / f"img_{i:05d}.jpg"
        os.symlink(demo[i % len(demo)], path)
        paths.append(str(path))
    session = make_session(tmp_path, paths=paths, coords=xy, dim=4)
    yield from _shown_map(qtbot, session, which, (800, 600))


def test_thumbnails_replace_dots_at_close_zoom_and_go_when_zooming_out(photos, qtbot):
    view, session, which = photos
    layer = view.detail.thumbs
    assert not view.detail.showing_thumbnails()                 # 3,000 in view: dots
    classify(session, ["a", "b"], np.arange(len(which)) % 2)   # odd rows hidden below
    session.set_label_hidden("b", True)
    zoom(qtbot, view, 6, 5, 2.5)
    xy = view.coords()
    in_view = set(np.flatnonzero(inside(xy, view_rect(view)) & view.visible_mask()).tolist())
    assert 20 < len(in_view) <= view.detail.thumb_max
    assert view.detail.showing_thumbnails() and in_view <= set(layer.rows().tolist())
    qtbot.waitUntil(lambda: in_view <= set(layer.shown_rows().tolist()), timeout=10_000)
    for row in in_view:
        pixmap = layer.pixmap(row)
        assert pixmap is not None and not pixmap.isNull() and max(pixmap.width(), pixmap.height()) <= 56
    # the image is on screen: the pixel at a point is the photo's, not the dot's blue
    image = view.plot_widget().viewport().grab().toImage()
    top = int(layer.shown_rows()[-1])                            # drawn last: nothing covers it
    centre = to_viewport(view, *map(float, xy[top]))
    photo = layer.pixmap(top).toImage()
    want = photo.pixelColor(photo.width() // 2, photo.height() // 2).getRgb()
    got = image.pixelColor(centre).getRgb()
    assert max(abs(a - b) for a, b in zip(want, got)) < 40
    # hover and click on an image's corner (beyond the dot's radius) pick its row
    corner = centre + QPoint(photo.width() // 2 - 3, photo.height() // 2 - 3)
    viewport = view.plot_widget().viewport()
    QTest.mouseMove(viewport, corner)
    qtbot.waitUntil(lambda: view.hovered_row() == top, timeout=2000)
    QTest.mouseClick(viewport, LEFT, NOMOD, corner)
    assert session.previewed == top
    # a selection shows on the images; a hidden class has no image
    session.set_selection(sorted(in_view)[:3])
    assert set(sorted(in_view)[:3]) <= set(layer.rows().tolist())
    assert not (layer.rows() % 2 == 1).any()
    view.fit()                                                   # zoomed out: dots again
    assert not view.detail.showing_thumbnails() and len(layer.shown_rows()) == 0
