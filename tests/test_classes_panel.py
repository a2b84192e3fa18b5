"""The zero-shot class editor: what each edit does to classes(), and one ``changed`` per edit."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemDelegate, QApplication, QCheckBox, QDoubleSpinBox, QLabel,
                               QLineEdit, QListWidget, QPushButton)

from clipscape.app.classes_panel import ClassesPanel


class Changes:
    """Counts ``changed`` emissions."""

    def __init__(self, panel):
        self.n = 0
        panel.changed.connect(self._bump)

    def _bump(self):
        self.n += 1


@pytest.fixture
def panel(qtbot):
    widget = ClassesPanel()
    qtbot.addWidget(widget)
    return widget


def _list(panel) -> QListWidget:
    return panel.findChild(QListWidget, "classList")


def _button(panel, name) -> QPushButton:
    return panel.findChild(QPushButton, name)


def _texts(panel):
    lst = _list(panel)
    return [lst.item(row).text() for row in range(lst.count())]


def _select(panel, *names):
    lst = _list(panel)
    lst.clearSelection()
    for row in range(lst.count()):
        lst.item(row).setSelected(lst.item(row).data(Qt.ItemDataRole.UserRole) in names)


def test_defaults(panel):
    assert panel.classes() == []
    assert panel.ensemble() is True
    assert panel.threshold() == 0.0
    spin = panel.findChild(QDoubleSpinBox, "threshold")
    assert (spin.minimum(), spin.maximum(), spin.singleStep()) == (0.0, 1.0, 0.05)
    assert panel.findChild(QCheckBox, "ensemble").text() == "Prompt ensemble (80 templates)"
    assert panel.findChild(QLineEdit, "addEdit").placeholderText() == "Add classes (comma-separated)…"


def test_add_comma_list_once_and_ignore_duplicates(panel):
    changes = Changes(panel)
    assert panel.add_classes(" cat, dog,, car ,dog") == ["cat", "dog", "car"]
    assert panel.classes() == ["cat", "dog", "car"] and changes.n == 1
    assert panel.add_classes("dog\nbird, cat") == ["bird"]
    assert panel.classes() == ["cat", "dog", "car", "bird"] and changes.n == 2
    assert panel.add_classes("cat, dog") == [] and panel.add_classes("  ") == []
    assert changes.n == 2


def test_enter_and_add_button_add_from_the_line_edit(panel, qtbot):
    edit = panel.findChild(QLineEdit, "addEdit")
    changes = Changes(panel)
    qtbot.keyClicks(edit, "red, green")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert panel.classes() == ["red", "green"] and edit.text() == "" and changes.n == 1
    edit.setText("blue")
    qtbot.mouseClick(_button(panel, "addButton"), Qt.MouseButton.LeftButton)
    assert panel.classes() == ["red", "green", "blue"] and changes.n == 2


def test_remove_button_and_delete_key(panel, qtbot):
    panel.set_classes(["a", "b", "c", "d"])
    changes = Changes(panel)
    remove = _button(panel, "removeButton")
    assert not remove.isEnabled()
    _select(panel, "b", "d")
    assert remove.isEnabled()
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert panel.classes() == ["a", "c"] and changes.n == 1
    _select(panel, "a")
    qtbot.keyClick(_list(panel), Qt.Key.Key_Delete)
    assert panel.classes() == ["c"] and changes.n == 2
    _list(panel).clearSelection()
    qtbot.keyClick(_list(panel), Qt.Key.Key_Delete)  # nothing selected: nothing happens
    assert panel.classes() == ["c"] and changes.n == 2


def test_paste_button_and_ctrl_v(panel, qtbot):
    clipboard = QApplication.clipboard()
    changes = Changes(panel)
    clipboard.setText("apple, pear\nplum")
    qtbot.mouseClick(_button(panel, "pasteButton"), Qt.MouseButton.LeftButton)
    assert panel.classes() == ["apple", "pear", "plum"] and changes.n == 1
    clipboard.setText("plum, fig")
    qtbot.keyClick(_list(panel), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert panel.classes() == ["apple", "pear", "plum", "fig"] and changes.n == 2


def test_clear(panel, qtbot):
    panel.set_classes(["x", "y"])
    changes = Changes(panel)
    qtbot.mouseClick(_button(panel, "clearButton"), Qt.MouseButton.LeftButton)
    assert panel.classes() == [] and changes.n == 1
    assert not _button(panel, "clearButton").isEnabled()


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
    return initial


def test_rename_in_place(panel, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_classes(["cat", "dog"])
    changes = Changes(panel)
    assert _rename_in_editor(panel, qtbot, 0, "  kitten ") == "cat"
    assert panel.classes() == ["kitten", "dog"] and changes.n == 1
    _list(panel).item(1).setText("puppy")  # the itemChanged path any editor ends in
    assert panel.classes() == ["kitten", "puppy"] and changes.n == 2


@pytest.mark.parametrize("bad", ["", "   ", "dog", ","])
def test_empty_or_duplicate_rename_reverts(panel, bad):
    panel.set_classes(["cat", "dog"])
    changes = Changes(panel)
    _list(panel).item(0).setText(bad)
    assert panel.classes() == ["cat", "dog"] and _texts(panel) == ["cat", "dog"]
    assert changes.n == 0


def test_rename_to_a_comma_list_adds_the_rest_after_it(panel):
    panel.set_classes(["cat", "dog"])
    changes = Changes(panel)
    _list(panel).item(0).setText("lion, tiger, dog")
    assert panel.classes() == ["lion", "tiger", "dog"] and changes.n == 1


def test_counts_show_next_to_names_but_classes_and_editing_stay_bare(panel, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_classes(["cat", "dog"])
    changes = Changes(panel)
    panel.set_counts({"cat": 12, "dog": 0, "unknown": 3})
    assert _texts(panel) == ["cat — 12", "dog — 0"]
    assert panel.classes() == ["cat", "dog"] and changes.n == 0
    unknown = panel.findChild(QLabel, "unknownCount")
    assert unknown.isVisible() and unknown.text() == "unknown — 3"

    assert _rename_in_editor(panel, qtbot, 0, "cat") == "cat"  # the editor starts on the bare name
    assert panel.classes() == ["cat", "dog"] and _texts(panel) == ["cat — 12", "dog — 0"] and changes.n == 0
    _rename_in_editor(panel, qtbot, 1, "wolf")
    assert panel.classes() == ["cat", "wolf"] and _texts(panel) == ["cat — 12", "wolf"] and changes.n == 1

    panel.set_counts({})
    assert _texts(panel) == ["cat", "wolf"] and unknown.isHidden()


def test_set_classes_emits_only_when_the_list_differs(panel):
    changes = Changes(panel)
    panel.set_classes(["a", " b ", "a", ""])
    assert panel.classes() == ["a", "b"] and changes.n == 1
    panel.set_classes(["a", "b"])
    assert changes.n == 1
    panel.set_classes(["b", "a"])
    assert panel.classes() == ["b", "a"] and changes.n == 2


def test_ensemble_and_threshold(panel, qtbot):
    panel.show()
    qtbot.waitExposed(panel)
    changes = Changes(panel)
    with qtbot.waitSignal(panel.changed, timeout=1000):
        qtbot.mouseClick(panel.findChild(QCheckBox, "ensemble"), Qt.MouseButton.LeftButton)
    assert panel.ensemble() is False and changes.n == 1
    panel.set_ensemble(False)
    assert changes.n == 1
    panel.set_ensemble(True)
    assert panel.ensemble() is True and changes.n == 2

    spin = panel.findChild(QDoubleSpinBox, "threshold")
    spin.stepUp()
    assert panel.threshold() == pytest.approx(0.05) and changes.n == 3
    panel.set_threshold(0.3)
    assert panel.threshold() == pytest.approx(0.3) and changes.n == 4
    panel.set_threshold(0.3)
    panel.set_threshold(7)  # clamped to 1.0
    assert panel.threshold() == 1.0 and changes.n == 5
