"""The ten inconsistencies a new user hit in the window (issue "One state, many views"), one test each.

Each drives the real window (offscreen, demo model) the way the user did and checks that the
views agree with one another and with what the user just did.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication, QPushButton

from clipscape.app.model_choice import DEFAULT, describe
from clipscape.app.model_picker import ModelUnavailableDialog
from clipscape.resources import DEMO_IMAGES
from gui_support import TIMEOUT, photo_folder, wait_collection, wait_for_umap

UNDECODABLE = os.fsdecode(b"caf\xe9 \xff.jpg")   # not valid UTF-8


def open_folder(qtbot, window, folder) -> None:
    """Open ``folder`` and wait for its collection and the map's points (the PCA map comes after)."""
    window.open_paths([folder])
    wait_collection(qtbot, window)
    s = window.session
    qtbot.waitUntil(lambda: s.coords is not None and window.map.point_count() == len(s.collection), timeout=TIMEOUT)


def wait_classes(qtbot, window, ensemble: bool = True) -> None:
    """Until the classification answers the session's current classes and options."""
    s = window.session
    qtbot.waitUntil(lambda: s.classified_with == (s.class_list.names, ensemble and s.ensemble, s.unknown_threshold)
                    and not s.jobs.is_running("classes"), timeout=TIMEOUT)


def wait_scores(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.session.scores is not None, timeout=TIMEOUT)


def test_1_a_failing_model_switch_keeps_the_model_and_the_collection(qtbot, window, tmp_path):
    s = window.session
    open_folder(qtbot, window, photo_folder(tmp_path))
    wait_for_umap(qtbot, window)   # so the map's own status line cannot come after the failure's
    collection, encoder, rows = s.collection, s.encoder, window.gallery.rows()
    s.load_model(DEFAULT)   # a hub model: this machine cannot download it
    # while it loads, the open map and gallery stay
    assert s.collection is collection and window.map.point_count() == len(collection)
    assert window.gallery.rows() == rows
    qtbot.waitUntil(lambda: isinstance(window.dialog, ModelUnavailableDialog), timeout=TIMEOUT)
    assert s.encoder is encoder and s.collection is collection and window.gallery.rows() == rows
    assert window.status_bar.text.text().endswith(f"Still using {describe(*s.model_choice)}.")
    window.dialog.reject()   # Cancel
    assert s.collection is collection and window.map.point_count() == len(collection)
    assert window.status_bar.model.text() == describe(*s.model_choice) != "No model"
    assert s.model_choice == ("demo", None)


def test_2_preview_follows_class_edits_thresholds_and_queries(qtbot, window, tmp_path):
    s = window.session
    open_folder(qtbot, window, photo_folder(tmp_path))
    s.set_classes(["circle", "square"])
    wait_classes(qtbot, window)
    row = 3
    s.set_preview(row)
    assert window.preview.facts()[1] == f"class: {s.describe_class(row)}"
    s.set_unknown_threshold(0.99)
    wait_classes(qtbot, window)
    assert window.preview.facts()[1].startswith("class: unknown (best guess: ")
    s.clear_classes()
    assert window.preview.facts()[1] == ""
    window.search_bar.type_caption("a red circle")
    wait_scores(qtbot, window)
    caption_score = f"score: {s.scores[row]:.3f}"
    assert window.preview.facts()[2] == caption_score
    s.find_similar(row)
    assert window.preview.facts()[2] == ""   # never the caption's score beside the new ranking
    wait_scores(qtbot, window)
    assert window.preview.facts()[2] == f"score: {s.scores[row]:.3f}" == "score: 1.000"
    assert window.gallery.model.details(row)[0] == "1.000"


def test_3_dim_below_greys_the_map_in_class_mode_and_its_spin_box_is_usable(qtbot, window, tmp_path):
    s = window.session
    open_folder(qtbot, window, photo_folder(tmp_path))
    s.set_classes(["circle", "square"])
    wait_classes(qtbot, window)
    window.search_bar.type_caption("a red circle")
    wait_scores(qtbot, window)
    spin = window.search_bar.threshold
    assert spin.text() == "off" and s.dim_threshold is None
    spin.stepBy(1)   # one click up is already among the scores
    assert s.dim_threshold is not None and s.dim_threshold <= float(s.scores.min()) + 0.011
    assert spin.lineEdit().width() >= spin.fontMetrics().horizontalAdvance(spin.text())
    spin.setValue(float(np.median(s.scores)))
    s.set_colour_mode("class")
    low = s.scores < s.dim_threshold
    assert low.any() and (~low).any()
    alpha = window.map.point_colours()[:, 3]
    assert (alpha[low] < 255).all() and (alpha[~low] == 255).all()
    assert [r for r in window.gallery.rows() if window.gallery.is_dimmed(r)] == [
        r for r in window.gallery.rows() if low[r]]


def test_4_the_skipped_files_leave_the_gallery_its_size_and_captions(qtbot, window, tmp_path):
    landscape = Image.new("RGB", (320, 180), (200, 40, 40))
    folder = photo_folder(tmp_path, extra=[("wide.jpg", landscape), ("broken.jpg", b"not a jpeg")])
    open_folder(qtbot, window, folder)
    gallery = window.gallery.view
    qtbot.waitUntil(lambda: not window.session.jobs.running(), timeout=TIMEOUT)
    QApplication.processEvents()
    # the width can lose a scroll bar's breadth as the gallery lays out; the rest must not move
    grid, icon, viewport = gallery.gridSize(), gallery.iconSize(), gallery.viewport().height()
    qtbot.mouseClick(window.status_bar.skipped, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.skipped
    assert [os.path.basename(p) for p, _ in window.skipped.entries()] == ["broken.jpg"]
    window.tabs.setCurrentWidget(window.gallery)
    QApplication.processEvents()
    assert (gallery.iconSize(), gallery.viewport().height()) == (icon, viewport)
    assert grid.height() == gallery.gridSize().height()
    assert abs(grid.width() - gallery.gridSize().width()) <= gallery.verticalScrollBar().sizeHint().width()
    assert grid.height() >= icon.height() + 2 * gallery.fontMetrics().lineSpacing()   # room for the caption
    row = window.session.collection.paths.index(os.path.join(folder, "wide.jpg"))
    cache = window.gallery.model._thumbnails
    qtbot.waitUntil(lambda: cache.get(os.path.join(folder, "wide.jpg")) is not None, timeout=TIMEOUT)
    pixmap = window.gallery.model.data(window.gallery.model.index(window.gallery.model.position_of(row), 0),
                                       Qt.ItemDataRole.DecorationRole)
    assert pixmap.width() == icon.width() and pixmap.height() < pixmap.width()   # landscape, not squashed


def test_5_a_name_that_is_not_utf8_gets_its_thumbnail_preview_and_escaped_name(qtbot, window, tmp_path):
    picture = Image.open(sorted(DEMO_IMAGES.iterdir())[0])
    folder = photo_folder(tmp_path, n=4, extra=[(UNDECODABLE, picture)])
    open_folder(qtbot, window, folder)
    s = window.session
    path = os.path.join(folder, UNDECODABLE)
    row = s.collection.paths.index(path)
    model = window.gallery.model
    index = model.index(model.position_of(row), 0)
    assert model.data(index, Qt.ItemDataRole.DisplayRole).split("\n")[0] == "caf\\xe9 \\xff.jpg"
    qtbot.waitUntil(lambda: model._thumbnails.get(path) is not None, timeout=TIMEOUT)
    assert not model._thumbnails.error(path)
    s.set_preview(row)
    qtbot.waitUntil(lambda: window.preview.status_text() == "", timeout=TIMEOUT)   # not "Loading…" for ever
    assert window.preview.facts()[0].endswith("caf\\xe9 \\xff.jpg")
    window.map.hover(row, QPointF(10, 10))
    assert window.map.hover_text().split("\n")[0] == "caf\\xe9 \\xff.jpg"


def test_6_the_map_is_the_main_canvas_and_the_window_fits_its_screen(qtbot, window, tmp_path):
    free = window.screen().availableGeometry()
    assert window.width() <= free.width() and window.height() <= free.height()
    assert window.width() >= 0.8 * free.width()
    s = window.session
    open_folder(qtbot, window, photo_folder(tmp_path))
    s.set_classes(["circle", "square"])
    wait_classes(qtbot, window)
    QApplication.processEvents()
    width = window.map.width()
    assert width >= 0.55 * window.width()
    for mode in ("score", "cluster", "none", "class"):
        s.set_colour_mode(mode)
        QApplication.processEvents()
        assert window.map.width() == width, mode
    s.set_preview(0)
    QApplication.processEvents()
    assert window.preview.isVisible() and window.preview.height() >= 120 and window.map.width() == width
    view = window.gallery.view
    columns = view.viewport().width() // view.gridSize().width()
    assert columns >= 2 and view.viewport().width() - columns * view.gridSize().width() <= columns


def test_7_an_unticked_class_leaves_the_gallery_and_the_point_count(qtbot, window, tmp_path):
    s = window.session
    open_folder(qtbot, window, photo_folder(tmp_path))
    s.set_classes(["circle", "square"])
    wait_classes(qtbot, window)
    legend = window.map.legend
    item = next(legend.item(i) for i in range(legend.count()) if legend.item(i).data(Qt.ItemDataRole.UserRole) == "square")
    item.setCheckState(Qt.CheckState.Unchecked)   # what a click on its box does
    squares = s.classification.best == 1
    n, hidden = len(s.collection), int(squares.sum())
    assert hidden and not set(window.gallery.rows()) & set(np.flatnonzero(squares).tolist())
    assert len(window.gallery.rows()) == n - hidden
    assert window.map.status_text() == f"{n} points · {hidden} hidden"


def test_8_class_edits_undo_and_redo_and_colours_stay_with_their_names(qtbot, window, tmp_path):
    s = window.session
    s.set_classes(["circle", "square", "star"])
    slots = {name: s.class_list.slot(name) for name in s.class_list.names}
    panel = window.classes
    panel._list.setCurrentRow(1)   # square
    qtbot.mouseClick(panel.findChild(QPushButton, "removeButton"), Qt.MouseButton.LeftButton)
    assert panel.names() == ["circle", "star"]
    assert {n: s.class_list.slot(n) for n in s.class_list.names} == {"circle": slots["circle"], "star": slots["star"]}
    qtbot.mouseClick(panel.findChild(QPushButton, "clearButton"), Qt.MouseButton.LeftButton)
    assert panel.names() == []
    assert window.undo_action.shortcut().matches(Qt.Key.Key_Z | Qt.KeyboardModifier.ControlModifier)
    assert any(k.toString() == "Ctrl+Shift+Z" for k in window.redo_action.shortcuts())
    window.undo_action.trigger()
    assert panel.names() == ["circle", "star"]
    window.undo_action.trigger()
    assert panel.names() == ["circle", "square", "star"]
    assert {n: s.class_list.slot(n) for n in s.class_list.names} == slots
    window.redo_action.trigger()
    window.redo_action.trigger()
    assert panel.names() == []


def test_9_status_and_labels_say_what_is_true(qtbot, window, tmp_path):
    s = window.session
    open_folder(qtbot, window, photo_folder(tmp_path))
    wait_for_umap(qtbot, window)
    s.set_classes(["circle", "square"])
    wait_classes(qtbot, window)
    assert "80-prompt ensemble" in window.status_bar.text.text()
    window.classes.findChild(type(window.classes._ensemble), "ensemble").setChecked(False)
    wait_classes(qtbot, window, ensemble=False)
    assert "80-prompt" not in window.status_bar.text.text() and "single prompt" in window.status_bar.text.text()
    s.set_unknown_threshold(0.99)
    wait_classes(qtbot, window, ensemble=False)
    row = int(np.flatnonzero(s.classification.best < 0)[0])
    window.map.hover(row, QPointF(10, 10))
    guess = s.classification.classes[int(np.argmax(s.classification.probabilities[row]))]
    assert f"class: unknown (best guess: {guess}, " in window.map.hover_text()
    s.set_colour_mode("score")   # no query yet
    assert "type a caption" in window.map.hint_text().lower()
    window.search_bar.type_caption("a red circle")
    wait_scores(qtbot, window)
    assert window.map.hint_text() == ""


def test_10_click_previews_esc_clears_reveal_failure_says_so_export_adds_csv(qtbot, window, tmp_path, monkeypatch):
    from clipscape.app import main_window, preview

    s = window.session
    folder = photo_folder(tmp_path)
    open_folder(qtbot, window, folder)
    view = window.gallery.view
    index = view.model().index(2, 0)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(index).center())
    assert s.previewed == window.gallery.rows()[2] and window.preview.isVisible()

    window.map.select_rect(-1e9, -1e9, 1e9, 1e9)
    assert len(s.selection) == len(s.collection)
    window.activateWindow()
    qtbot.keyClick(window.map, Qt.Key.Key_Escape)
    assert len(s.selection) == 0

    monkeypatch.setattr(preview, "reveal_in_file_manager", lambda path: False)
    qtbot.mouseClick(window.preview.findChild(QPushButton, "reveal"), Qt.MouseButton.LeftButton)
    assert "clipboard" in window.preview.note()
    assert QApplication.clipboard().text() == s.collection.paths[s.previewed]

    asked = []

    def save_dialog(parent, title, start, filters):
        asked.append(start)
        return str(tmp_path / "out" / "mine"), filters

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(main_window.QFileDialog, "getSaveFileName", save_dialog)
    window.export(False)
    qtbot.waitUntil(lambda: (tmp_path / "out" / "mine.csv").exists() and not s.jobs.is_running("export"),
                    timeout=TIMEOUT)
    window.export(False)
    assert not asked[0].startswith(folder) and asked[1] == str(tmp_path / "out" / "clipscape.csv")


def test_gallery_click_outside_any_item_previews_nothing(qtbot, window, tmp_path):
    s = window.session
    open_folder(qtbot, window, photo_folder(tmp_path, n=2))
    view = window.gallery.view
    far = QPoint(view.viewport().width() - 2, view.viewport().height() - 2)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=far)
    assert s.previewed == -1
