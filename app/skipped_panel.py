"""The list of files an encode skipped, each with the reason, so nothing is dropped silently."""
from __future__ import annotations

from typing import Sequence

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from clipscape.models.scan import Skipped


class SkippedPanel(QTableWidget):
    """Two columns: file and reason; sortable; the full path is in the tooltip."""

    def __init__(self, parent=None) -> None:
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["File", "Reason"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.verticalHeader().hide()
        self._paths: list[str] = []

    def set_skipped(self, skipped: Sequence[Skipped]) -> None:
        """Show exactly these entries (replacing what was shown)."""
        if [s.path for s in skipped] == self._paths:
            return
        self.setSortingEnabled(False)
        self.setRowCount(len(skipped))
        for row, s in enumerate(skipped):
            name = QTableWidgetItem(s.path)
            name.setToolTip(s.path)
            reason = QTableWidgetItem(s.reason)
            reason.setToolTip(s.reason)
            self.setItem(row, 0, name)
            self.setItem(row, 1, reason)
        self._paths = [s.path for s in skipped]
        self.resizeColumnToContents(0)
        self.setSortingEnabled(True)

    def entries(self) -> list[tuple[str, str]]:
        return [(self.item(r, 0).text(), self.item(r, 1).text()) for r in range(self.rowCount())]
