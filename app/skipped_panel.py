"""The files an encode skipped, each with the reason, so nothing is dropped silently."""
from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from clipscape.models.display import printable


class SkippedPanel(QTableWidget):
    """Two columns, file and reason, for the session's skipped files; sortable; full path in the tooltip."""

    def __init__(self, session, parent=None) -> None:
        super().__init__(0, 2, parent)
        self._session = session
        self.setHorizontalHeaderLabels(["File", "Reason"])
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().hide()
        session.skippedChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        skipped = self._session.skipped
        self.setSortingEnabled(False)
        self.setRowCount(len(skipped))
        for row, s in enumerate(skipped):
            name = QTableWidgetItem(printable(s.path))
            name.setToolTip(printable(s.path))
            reason = QTableWidgetItem(s.reason)
            reason.setToolTip(s.reason)
            self.setItem(row, 0, name)
            self.setItem(row, 1, reason)
        self.resizeColumnToContents(0)
        self.setSortingEnabled(True)

    def entries(self) -> list[tuple[str, str]]:
        return [(self.item(r, 0).text(), self.item(r, 1).text()) for r in range(self.rowCount())]
