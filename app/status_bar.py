"""The status bar: what the session is doing, its progress and Cancel, skipped files, the model.

Everything shown comes from the session; the two buttons that open something (the skipped
files, the model picker) ask the window through signals, since dialogs and panels are its job.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from clipscape.app.model_choice import describe


class StatusBar(QStatusBar):
    """Status text, a progress bar with Cancel while a job runs, "N skipped", and the model in use."""

    skippedRequested = Signal()
    modelRequested = Signal()

    def __init__(self, session, parent=None) -> None:
        super().__init__(parent)
        self._session = session
        self.text = QLabel()
        self.text.setObjectName("statusText")
        self.progress = QProgressBar(maximumWidth=220, textVisible=True)
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("cancel")
        self.skipped = QPushButton("")
        self.skipped.setObjectName("skipped")
        self.skipped.setFlat(True)
        self.model = QPushButton("")
        self.model.setObjectName("model")
        self.model.setFlat(True)
        self.model.setToolTip("The model in use; click to choose another")
        self.addWidget(self.text, 1)
        for w in (self.progress, self.cancel, self.skipped, self.model):
            self.addPermanentWidget(w)
        self.cancel.clicked.connect(session.cancel_busy)
        self.skipped.clicked.connect(self.skippedRequested)
        self.model.clicked.connect(self.modelRequested)
        session.statusChanged.connect(self._show_status)
        session.skippedChanged.connect(self._show_skipped)
        session.modelChanged.connect(self._show_model)
        for refresh in (self._show_status, self._show_skipped, self._show_model):
            refresh()

    def _show_status(self) -> None:
        s = self._session
        self.text.setText(s.status)
        self.progress.setVisible(s.busy is not None)
        self.cancel.setVisible(s.busy is not None)
        if s.progress is None:
            self.progress.setRange(0, 0)   # busy, no measure yet
        else:
            done, total = s.progress
            self.progress.setRange(0, max(1, int(total)))
            self.progress.setValue(int(done))

    def _show_skipped(self) -> None:
        n = len(self._session.skipped)
        self.skipped.setText(f"{n} skipped")
        self.skipped.setVisible(n > 0)

    def _show_model(self) -> None:
        s = self._session
        text = describe(*s.model_choice) if s.encoder is not None else "No model"
        if s.loading_choice is not None:
            text = f"Loading {describe(*s.loading_choice)}…"
        self.model.setText(text)
