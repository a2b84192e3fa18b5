"""The zero-shot class editor: what each edit does to the session's class list, one undo step per
edit, colours that stay with their names, and the list redrawn from the session."""
from __future__ import annotations

import numpy as np
import pytest
from gui_support import classify, make_session
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemDelegate, QApplication, QCheckBox, QDoubleSpinBox, QLineEdit,
                               QListWidget, QPushButton)

from clipscape.app.class_list import ClassList
from clipscape.app.classes_panel import ClassesPanel


@pytest.fixture
def session(qtbot, tmp_path):
    s = make_session(tmp_path, coords=np.zeros((6, 2)))
    yield s
    s.shutdown()


@pytest.fixture
def panel(qtbot, session):
    widget = ClassesPanel(session)
    qtbot.addWidget(widget)
    return widget


def names(session) -> list[str]:
    return list(session.class_list.names)


def edits(session) -> int:
    """Undo steps so far: one per edit that changed the list."""
    return session.undo_stack.count()


def _list(panel) -> QListWidget:
    return panel.findChild(QListWidget, "classList")


def _button(panel, name) -> QPushButton:
    return panel.findChild(QPushButton, name)


def _select(panel, *wanted):
    lst = _list(panel)
    lst.clearSelection()
    for row in range(lst.count()):
        lst.item(row).setSelected(lst.item(row).data(Qt.ItemDataRole.UserRole) in wanted)


def test_defaults(panel, session):
    assert panel.names() == [] and session.ensemble is True and session.unknown_threshold == 0.0
    spin = panel.findChild(QDoubleSpinBox, "threshold")
    assert (spin.minimum(), spin.maximum(), spin.singleStep()) == (0.0, 1.0, 0.05)
    assert panel.findChild(QCheckBox, "ensemble").isChecked()
    assert panel.findChild(QLineEdit, "addEdit").placeholderText() == "Add classes (comma-separated)…"


def test_class_list_values():
    a = ClassList.of(" cat, dog,, car ,dog")
    assert a.names == ("cat", "dog", "car") and a.slots == (0, 1, 2)
    b = a.remove(["dog"]).add("bird")
    assert b.names == ("cat", "car", "bird") and b.slots == (0, 2, 1)   # bird takes the free slot
    c = b.rename("car", "truck, van, cat")
    assert c.names == ("cat", "truck", "van", "bird") and c.slot("truck") == 2 and c.slot("van") == 3
    assert b.rename("car", "cat") == b and b.rename("car", " , ") == b
    d = c.replaced(["van", "cat", "owl"])
    assert d.names == ("van", "cat", "owl") and (d.slot("van"), d.slot("cat"), d.slot("owl")) == (3, 0, 1)


def test_enter_and_add_button_add_from_the_line_edit(panel, session, qtbot):
    edit = panel.findChild(QLineEdit, "addEdit")
    qtbot.keyClicks(edit, "red, green, red")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert names(session) == panel.names() == ["red", "green"] and edit.text() == "" and edits(session) == 1
    edit.setText("blue")
    qtbot.mouseClick(_button(panel, "addButton"), Qt.MouseButton.LeftButton)
    assert panel.names() == ["red", "green", "blue"] and edits(session) == 2
    edit.setText("red, ")
    qtbot.mouseClick(_button(panel, "addButton"), Qt.MouseButton.LeftButton)
    assert edits(session) == 2   # nothing new: no edit


def test_remove_button_and_delete_key(panel, session, qtbot):
    session.set_classes(["a", "b", "c", "d"])
    remove = _button(panel, "removeButton")
    assert not remove.isEnabled()
    _select(panel, "b", "d")
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert panel.names() == ["a", "c"]
    _select(panel, "a")
    qtbot.keyClick(_list(panel), Qt.Key.Key_Delete)
    assert panel.names() == ["c"]
    _list(panel).clearSelection()
    qtbot.keyClick(_list(panel), Qt.Key.Key_Delete)  # nothing selected: nothing happens
    assert panel.names() == ["c"] and edits(session) == 3


def test_paste_button_and_ctrl_v(panel, session, qtbot):
    clipboard = QApplication.clipboard()
    clipboard.setText("apple, pear\nplum")
    qtbot.mouseClick(_button(panel, "pasteButton"), Qt.MouseButton.LeftButton)
    assert panel.names() == ["apple", "pear", "plum"]
    clipboard.setText("plum, fig")
    qtbot.keyClick(_list(panel), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert panel.names() == ["apple", "pear", "plum", "fig"] and edits(session) == 2


def test_clear_is_one_undoable_step(panel, session, qtbot):
    session.set_classes(["x", "y", "z"])
    before = session.class_list
    qtbot.mouseClick(_button(panel, "clearButton"), Qt.MouseButton.LeftButton)
    assert panel.names() == [] and not _button(panel, "clearButton").isEnabled()
    qtbot.mouseClick(_button(panel, "undoButton"), Qt.MouseButton.LeftButton)
    assert session.class_list == before and panel.names() == ["x", "y", "z"]
    session.undo_stack.redo()
    assert panel.names() == []


def _rename_in_editor(panel, qtbot, row, new_text):
    """Open the in-place editor as F2 would, type, and commit as Enter would; returns the editor's initial text."""
    lst = _list(panel)
    lst.setCurrentRow(row)
    lst.editItem(lst.item(row))
    editor = lst.indexWidget(lst.indexFromItem(lst.item(row)))
    assert isinstance(editor, QLineEdit)
    initial = editor.text()
    editor.setText(new_text)
    delegate = lst.itemDelegate()
    delegate.commitData.emit(editor)
    delegate.closeEditor.emit(editor, QAbstractItemDelegate.EndEditHint.NoHint)
    qtbot.wait(20)   # the rename is applied once the editor has closed
    return initial


def test_rename_in_place_keeps_the_colour(panel, session, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    session.set_classes(["cat", "dog"])
    assert _rename_in_editor(panel, qtbot, 0, "  kitten ") == "cat"
    assert panel.names() == ["kitten", "dog"] and session.class_list.slot("kitten") == 0
    _list(panel).item(1).setText("puppy, wolf")  # the itemChanged path any editor ends in
    qtbot.waitUntil(lambda: panel.names() == ["kitten", "puppy", "wolf"], timeout=1000)
    assert edits(session) == 3


@pytest.mark.parametrize("bad", ["", "   ", "dog", ","])
def test_empty_or_duplicate_rename_reverts(panel, session, qtbot, bad):
    session.set_classes(["cat", "dog"])
    _list(panel).item(0).setText(bad)
    qtbot.wait(20)
    assert panel.names() == ["cat", "dog"] and panel.texts() == ["cat", "dog"] and edits(session) == 1


def test_counts_and_colours_show_next_to_bare_names(panel, session, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    classify(session, ["cat", "dog"], [0, 0, -1, 0, 0, -1])
    assert panel.texts() == ["cat — 4", "dog — 0"] and panel.unknown_text() == "unknown — 2"
    assert _rename_in_editor(panel, qtbot, 0, "cat") == "cat"  # the editor starts on the bare name
    assert panel.texts() == ["cat — 4", "dog — 0"] and edits(session) == 1
    _rename_in_editor(panel, qtbot, 1, "wolf")
    assert panel.names() == ["cat", "wolf"] and panel.texts() == ["cat", "wolf"]  # counts are for the old list
    icon = _list(panel).item(1).icon().pixmap(12, 12).toImage().pixelColor(6, 6)
    from clipscape.app.palette import slot_colour
    assert icon.name() == slot_colour(1).name()


def test_ensemble_and_threshold_go_to_the_session(panel, session, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    with qtbot.waitSignal(session.classesChanged, timeout=1000):
        qtbot.mouseClick(panel.findChild(QCheckBox, "ensemble"), Qt.MouseButton.LeftButton)
    assert session.ensemble is False
    spin = panel.findChild(QDoubleSpinBox, "threshold")
    spin.stepUp()
    assert session.unknown_threshold == pytest.approx(0.05)
    session.set_unknown_threshold(7)  # clamped to 1.0, and shown
    assert spin.value() == 1.0
    session.set_ensemble(True)
    assert panel.findChild(QCheckBox, "ensemble").isChecked()
