"""The map's legend: one row per class (or cluster) with its colour and count; untick to hide.

It floats over the plot's top-right corner, as wide as its longest label and as tall as its
rows (up to the plot's height), so the map keeps its width whatever the colour mode.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem

from clipscape.app.palette import slot_colour, swatch

MAX_WIDTH = 260


class Legend(QListWidget):
    """Draws ``session.legend()``; ticking a row calls ``session.set_label_hidden``."""

    def __init__(self, session, parent=None) -> None:
        super().__init__(parent)
        self._session = session
        self.setObjectName("legend")
        self.setToolTip("Untick a label to hide its images on the map and in the gallery")
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # a translucent white card over the plot; a palette, not a style sheet, so the check
        # boxes keep the style's own drawing (a style sheet turns them into black squares)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Base, QColor(255, 255, 255, 225))
        self.setPalette(palette)
        self.itemChanged.connect(self._on_item_changed)
        self.hide()

    def refresh(self) -> None:
        """Rebuild the rows from the session's legend (hidden when the mode has none)."""
        entries = self._session.legend()
        self.blockSignals(True)
        self.clear()
        for e in entries:
            item = QListWidgetItem(swatch(slot_colour(e.slot)), f"{e.label} ({e.count:,})")
            item.setData(Qt.ItemDataRole.UserRole, e.label)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if e.hidden else Qt.CheckState.Checked)
            self.addItem(item)
        self.blockSignals(False)
        self.setVisible(bool(entries))
        self.adjustSize()

    def entries(self) -> list[tuple[str, str, bool]]:
        """(label, shown text, ticked) per row, as drawn."""
        return [(self.item(i).data(Qt.ItemDataRole.UserRole), self.item(i).text(),
                 self.item(i).checkState() == Qt.CheckState.Checked) for i in range(self.count())]

    def sizeHint(self) -> QSize:
        rows = self.count()
        width = max((self.fontMetrics().horizontalAdvance(self.item(i).text()) for i in range(rows)), default=60)
        height = sum(self.sizeHintForRow(i) for i in range(rows)) + 2 * self.frameWidth() + 4
        return QSize(min(MAX_WIDTH, width + 60), height)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self._session.set_label_hidden(item.data(Qt.ItemDataRole.UserRole),
                                       item.checkState() != Qt.CheckState.Checked)
