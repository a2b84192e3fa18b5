"""The zero-shot class list editor: the names images are sorted into, and how they are scored.

Every edit goes to the session (add, remove, rename, paste, clear — each undoable with Ctrl+Z),
and the list is redrawn from the session's class list and classification: each item keeps its
bare class name in Qt.UserRole, shows "name — 12" once counts are known and the colour the map
gives the class, so in-place editing always sees the bare name whatever the display says.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QPushButton, QStyledItemDelegate,
                               QVBoxLayout, QWidget)

from clipscape.app.palette import slot_colour, swatch
from clipscape.models.zeroshot import SINGLE_TEMPLATE, UNKNOWN

NAME_ROLE = Qt.ItemDataRole.UserRole
COUNT_SEPARATOR = " — "
_REMOVE_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)  # Backspace: the Mac's delete key


class _ClassList(QListWidget):
    """A list that turns Delete and Paste into requests while no item is being edited.

    It also claims those keys ahead of window-wide shortcuts (an Edit ▸ Paste action elsewhere
    would otherwise take Ctrl+V from it).
    """

    removeRequested = Signal()
    pasteRequested = Signal()

    def _request_for(self, event: QKeyEvent) -> Signal | None:
        if self.state() == QAbstractItemView.State.EditingState:
            return None
        if event.matches(QKeySequence.StandardKey.Paste):
            return self.pasteRequested
        if event.key() in _REMOVE_KEYS and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return self.removeRequested
        return None

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and self._request_for(event) is not None:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        request = self._request_for(event)
        if request is None:
            super().keyPressEvent(event)
        else:
            request.emit()


class _BareNameDelegate(QStyledItemDelegate):
    """Opens the in-place editor on the bare name, not on the "name — 12" display text."""

    def setEditorData(self, editor: QWidget, index: QModelIndex) -> None:
        if isinstance(editor, QLineEdit):
            editor.setText(index.data(NAME_ROLE) or "")
        else:
            super().setEditorData(editor, index)


class ClassesPanel(QWidget):
    """Edit the zero-shot classes, the prompt ensemble switch and the "unknown" threshold."""

    def __init__(self, session, parent: QWidget | None = None):
        super().__init__(parent)
        self._session = session
        self._edit = QLineEdit()
        self._edit.setObjectName("addEdit")
        self._edit.setPlaceholderText("Add classes (comma-separated)…")
        self._edit.setClearButtonEnabled(True)
        self._edit.returnPressed.connect(self._on_add)
        add = QPushButton("Add")
        add.setObjectName("addButton")
        add.clicked.connect(self._on_add)

        self._list = _ClassList()
        self._list.setObjectName("classList")
        self._list.setAccessibleName("Zero-shot classes")
        self._list.setToolTip("Double-click or F2 to rename; Delete removes; Ctrl+V pastes names; Ctrl+Z undoes")
        self._list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self._list.setItemDelegate(_BareNameDelegate(self._list))
        self._list.itemChanged.connect(self._on_item_changed)
        self._list.itemSelectionChanged.connect(self._update_buttons)
        self._list.removeRequested.connect(self._on_remove)
        self._list.pasteRequested.connect(self._on_paste)

        self._remove = QPushButton("Remove")
        self._remove.setObjectName("removeButton")
        self._remove.clicked.connect(self._on_remove)
        paste = QPushButton("Paste")
        paste.setObjectName("pasteButton")
        paste.setToolTip("Add the class names on the clipboard (separated by commas or new lines)")
        paste.clicked.connect(self._on_paste)
        self._clear = QPushButton("Clear")
        self._clear.setObjectName("clearButton")
        self._clear.setToolTip("Remove every class (Ctrl+Z brings them back)")
        self._clear.clicked.connect(session.clear_classes)
        self._undo = QPushButton("Undo")
        self._undo.setObjectName("undoButton")
        self._undo.clicked.connect(session.undo_stack.undo)
        session.undo_stack.canUndoChanged.connect(self._undo.setEnabled)
        session.undo_stack.undoTextChanged.connect(self._on_undo_text)
        self._undo.setEnabled(False)

        self._unknown = QLabel()
        self._unknown.setObjectName("unknownCount")
        self._unknown.hide()

        self._ensemble = QCheckBox("Prompt ensemble (80 templates)")
        self._ensemble.setObjectName("ensemble")
        self._ensemble.setToolTip("Average each class over the CLIP paper's 80 prompts (more accurate). "
                                  f"Off: the single prompt “{SINGLE_TEMPLATE.format('…')}”")
        self._ensemble.toggled.connect(session.set_ensemble)

        self._threshold = QDoubleSpinBox()
        self._threshold.setObjectName("threshold")
        self._threshold.setRange(0.0, 1.0)
        self._threshold.setSingleStep(0.05)
        self._threshold.setDecimals(2)
        self._threshold.setSpecialValueText("off")
        self._threshold.setKeyboardTracking(False)  # one change per typed value, not per keystroke
        self._threshold.setToolTip("An image whose best class has a lower probability is labelled "
                                   f"“{UNKNOWN}” (its best guess is still shown)")
        self._threshold.valueChanged.connect(session.set_unknown_threshold)
        threshold_label = QLabel("Unknown below")
        threshold_label.setBuddy(self._threshold)

        add_row = QHBoxLayout()
        add_row.addWidget(self._edit, 1)
        add_row.addWidget(add)
        button_row = QHBoxLayout()
        for button in (self._remove, paste, self._clear, self._undo):
            button_row.addWidget(button)
        button_row.addStretch(1)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(threshold_label)
        threshold_row.addWidget(self._threshold)
        threshold_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(add_row)
        layout.addWidget(self._list, 1)
        layout.addLayout(button_row)
        layout.addWidget(self._unknown)
        layout.addWidget(self._ensemble)
        layout.addLayout(threshold_row)
        session.classesChanged.connect(self._redraw)
        session.classificationChanged.connect(self._redraw)
        self._redraw()

    # --- what is shown -------------------------------------------------------------------
    def names(self) -> list[str]:
        """The class names as listed, bare (no counts)."""
        return [self._list.item(row).data(NAME_ROLE) for row in range(self._list.count())]

    def texts(self) -> list[str]:
        """The rows' texts as shown ("name — 12" once classified)."""
        return [self._list.item(row).text() for row in range(self._list.count())]

    def unknown_text(self) -> str:
        return self._unknown.text() if not self._unknown.isHidden() else ""

    def _counts(self) -> dict[str, int]:
        c = self._session.classification
        return c.counts() if c is not None and list(c.classes) == list(self._session.class_list.names) else {}

    def _redraw(self) -> None:
        """The list, counts, colours and options from the session; the selection is kept by name."""
        s, counts = self._session, self._counts()
        selected = {item.data(NAME_ROLE) for item in self._list.selectedItems()}
        with QSignalBlocker(self._list):
            self._list.clear()
            for name, slot in zip(s.class_list.names, s.class_list.slots):
                count = counts.get(name)
                item = QListWidgetItem(swatch(slot_colour(slot)),
                                       name if count is None else f"{name}{COUNT_SEPARATOR}{count}")
                item.setData(NAME_ROLE, name)
                item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsEnabled)
                self._list.addItem(item)
                item.setSelected(name in selected)
        label = s.classification.unknown_label if s.classification is not None else s.unknown_label()
        unknown = counts.get(label)
        self._unknown.setText(f"{label}{COUNT_SEPARATOR}{unknown}" if unknown else "")
        self._unknown.setVisible(bool(unknown))
        with QSignalBlocker(self._ensemble):
            self._ensemble.setChecked(s.ensemble)
        with QSignalBlocker(self._threshold):
            self._threshold.setValue(s.unknown_threshold)
        self._update_buttons()

    # --- user actions --------------------------------------------------------------------
    def _on_add(self) -> None:
        self._session.add_classes(self._edit.text())
        self._edit.clear()

    def _on_paste(self) -> None:
        self._session.add_classes(QGuiApplication.clipboard().text())

    def _on_remove(self) -> None:
        names = [item.data(NAME_ROLE) for item in self._list.selectedItems()]
        if names:
            self._session.remove_classes(names)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        """A rename in place, applied once the editor has closed (the redraw replaces the items)."""
        old, text = item.data(NAME_ROLE), item.text()
        QTimer.singleShot(0, lambda: self._rename(old, text))

    def _rename(self, old: str, text: str) -> None:
        before = self._session.class_list
        self._session.rename_class(old, text)   # the session decides: an empty or taken name is no rename
        if self._session.class_list == before:
            self._redraw()   # show the bare name (and count) again

    def _on_undo_text(self, text: str) -> None:
        self._undo.setToolTip(f"Undo {text} (Ctrl+Z)" if text else "Nothing to undo")

    def _update_buttons(self) -> None:
        self._remove.setEnabled(bool(self._list.selectedItems()))
        self._clear.setEnabled(self._list.count() > 0)
