"""The zero-shot class list editor: the names images are sorted into, and how they are scored.

Names are edited in place; the window listens to ``changed`` and reclassifies. Each item keeps
its bare class name in Qt.UserRole and shows "name — 12" once counts are known, so classes()
and in-place editing always see the bare name whatever the display says.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Mapping

from PySide6.QtCore import QEvent, QModelIndex, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QPushButton, QStyledItemDelegate,
                               QVBoxLayout, QWidget)

from clipscape.models.zeroshot import SINGLE_TEMPLATE, UNKNOWN, parse_classes

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
    """Edit the zero-shot classes, the prompt ensemble switch and the "unknown" threshold.

    ``changed`` fires once after each user edit (add, remove, rename, paste, clear, ensemble,
    threshold). The setters fire it only when they change something, so restoring saved state
    that matches what is shown stays quiet. set_counts never fires it: counts are output.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._counts: dict[str, int] = {}
        self._updating = False

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
        self._list.setToolTip("Double-click or F2 to rename; Delete removes; Ctrl+V pastes names")
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
        self._clear.clicked.connect(self._on_clear)

        self._unknown = QLabel()
        self._unknown.setObjectName("unknownCount")
        self._unknown.hide()

        self._ensemble = QCheckBox("Prompt ensemble (80 templates)")
        self._ensemble.setObjectName("ensemble")
        self._ensemble.setChecked(True)
        self._ensemble.setToolTip("Average each class over the CLIP paper's 80 prompts (more accurate). "
                                  f"Off: the single prompt “{SINGLE_TEMPLATE.format('…')}”")
        self._ensemble.toggled.connect(lambda _on: self.changed.emit())

        self._threshold = QDoubleSpinBox()
        self._threshold.setObjectName("threshold")
        self._threshold.setRange(0.0, 1.0)
        self._threshold.setSingleStep(0.05)
        self._threshold.setDecimals(2)
        self._threshold.setSpecialValueText("off")
        self._threshold.setKeyboardTracking(False)  # one change per typed value, not per keystroke
        self._threshold.setToolTip("An image whose best class has a lower probability is labelled "
                                   f"“{UNKNOWN}”")
        self._threshold.valueChanged.connect(lambda _value: self.changed.emit())
        threshold_label = QLabel("Unknown below")
        threshold_label.setBuddy(self._threshold)

        add_row = QHBoxLayout()
        add_row.addWidget(self._edit, 1)
        add_row.addWidget(add)
        button_row = QHBoxLayout()
        for button in (self._remove, paste, self._clear):
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
        self._update_buttons()

    # --- state ---------------------------------------------------------------------------
    def classes(self) -> list[str]:
        """The class names, bare (no counts), in list order."""
        return [self._list.item(row).data(NAME_ROLE) for row in range(self._list.count())]

    def set_classes(self, names: Iterable[str]) -> None:
        """Replace the list (names stripped, empties and repeats dropped); ``changed`` only if it differs."""
        names = list(dict.fromkeys(name.strip() for name in names if name and name.strip()))
        if names == self.classes():
            return
        with self._quiet():
            self._list.clear()
            for name in names:
                self._list.addItem(self._new_item(name))
        self._edited()

    def add_classes(self, text: str) -> list[str]:
        """Add the comma- or line-separated names in ``text`` that are not listed yet; returns them."""
        present = set(self.classes())
        new = [name for name in parse_classes(text) if name not in present]
        if not new:
            return []
        with self._quiet():
            for name in new:
                self._list.addItem(self._new_item(name))
        self._list.scrollToItem(self._list.item(self._list.count() - 1))
        self._edited()
        return new

    def ensemble(self) -> bool:
        """True: average the 80 prompt templates; False: the single "a photo of a {}." prompt."""
        return self._ensemble.isChecked()

    def set_ensemble(self, on: bool) -> None:
        self._ensemble.setChecked(bool(on))

    def threshold(self) -> float:
        """Probability below which an image's class is "unknown" (0: never)."""
        return float(self._threshold.value())

    def set_threshold(self, value: float) -> None:
        self._threshold.setValue(min(1.0, max(0.0, float(value))))

    def set_counts(self, counts: Mapping[str, int]) -> None:
        """Show images per class next to the names ({} clears); an "unknown" entry gets its own line."""
        self._counts = {str(name): int(n) for name, n in counts.items()}
        with self._quiet():
            for row in range(self._list.count()):
                item = self._list.item(row)
                item.setText(self._display(item.data(NAME_ROLE)))
        unknown = self._counts.get(UNKNOWN)
        show = unknown is not None and UNKNOWN not in self.classes()
        self._unknown.setText(f"{UNKNOWN}{COUNT_SEPARATOR}{unknown}" if show else "")
        self._unknown.setVisible(show)

    # --- user actions --------------------------------------------------------------------
    def _on_add(self) -> None:
        self.add_classes(self._edit.text())
        self._edit.clear()

    def _on_paste(self) -> None:
        self.add_classes(QGuiApplication.clipboard().text())

    def _on_remove(self) -> None:
        rows = sorted((self._list.row(item) for item in self._list.selectedItems()), reverse=True)
        if not rows:
            return
        with self._quiet():
            for row in rows:
                self._list.takeItem(row)
        self._edited()

    def _on_clear(self) -> None:
        if self._list.count():
            with self._quiet():
                self._list.clear()
            self._edited()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        """A rename: empty or an existing name reverts; "a, b" renames to a and adds b after it."""
        if self._updating:
            return
        old = item.data(NAME_ROLE)
        row = self._list.row(item)
        others = {name for i, name in enumerate(self.classes()) if i != row}
        names = parse_classes(item.text())
        if not names or names[0] in others:
            with self._quiet():
                item.setText(self._display(old))
            return
        new, extra = names[0], [name for name in names[1:] if name not in others]
        with self._quiet():
            item.setData(NAME_ROLE, new)
            item.setText(self._display(new))
            for offset, name in enumerate(extra, start=1):
                self._list.insertItem(row + offset, self._new_item(name))
        if new != old or extra:
            self._edited()

    # --- helpers -------------------------------------------------------------------------
    def _new_item(self, name: str) -> QListWidgetItem:
        item = QListWidgetItem(self._display(name))
        item.setData(NAME_ROLE, name)
        item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsEnabled)
        return item

    def _display(self, name: str) -> str:
        count = self._counts.get(name)
        return name if count is None else f"{name}{COUNT_SEPARATOR}{count}"

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Our own item changes are not renames."""
        self._updating = True
        try:
            yield
        finally:
            self._updating = False

    def _edited(self) -> None:
        self._update_buttons()
        self.changed.emit()

    def _update_buttons(self) -> None:
        self._remove.setEnabled(bool(self._list.selectedItems()))
        self._clear.setEnabled(self._list.count() > 0)
