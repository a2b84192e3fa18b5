"""The bar above the map: caption search, the "similar to" chip, dimming, and the colour mode.

Typing sets the session's caption after a short pause; every control shows the session's state
and follows its signals, so a query started elsewhere (Find similar) shows here too.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QSignalBlocker, QTimer
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit, QSizePolicy,
                               QToolButton, QWidget)

from clipscape.models.display import printable_name

DEBOUNCE_MS = 150  # long enough to skip most keystrokes of a word, short enough to feel live
DIM_STEP = 0.01
COLOUR_MODES = (("class", "Zero-shot class"), ("score", "Search score"), ("cluster", "Cluster"),
                ("none", "Nothing"))


class SearchBar(QWidget):
    """Caption box (debounced), image-query chip, "Dim below" and "Colour by"; see the module doc."""

    def __init__(self, session, parent=None) -> None:
        super().__init__(parent)
        self._session = session
        self.caption = QLineEdit(placeholderText="Search by caption, e.g. \"a red circle\"", clearButtonEnabled=True)
        self.caption.setObjectName("caption")
        self.similar = QLabel()
        self.similar.setObjectName("similar")
        self.similar_clear = QToolButton(text="✕", toolTip="Stop ranking by this image")
        self.threshold = QDoubleSpinBox(decimals=2, singleStep=DIM_STEP)
        self.threshold.setObjectName("dimThreshold")
        self.threshold.setSpecialValueText("off")
        self.threshold.setToolTip("Dim the images whose score is below this value, on the map and in the gallery")
        self.threshold.setKeyboardTracking(False)
        self.threshold.setRange(-1.0, 1.0)   # the widest texts, for the size below; narrowed to the scores
        self.threshold.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.threshold.setMinimumWidth(self.threshold.sizeHint().width()
                                       + self.threshold.fontMetrics().horizontalAdvance("0"))
        self.colour = QComboBox()
        self.colour.setObjectName("colourMode")
        for key, text in COLOUR_MODES:
            self.colour.addItem(text, key)
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 4, 4, 4)
        for widget, stretch in ((self.caption, 1), (self.similar, 0), (self.similar_clear, 0),
                                (QLabel("Dim below"), 0), (self.threshold, 0), (QLabel("Colour by"), 0),
                                (self.colour, 0)):
            row.addWidget(widget, stretch)

        self.caption.textEdited.connect(lambda _t: self._debounce.start())
        self.caption.returnPressed.connect(self._send_caption)
        self._debounce.timeout.connect(self._send_caption)
        self.similar_clear.clicked.connect(session.clear_query)
        self.threshold.valueChanged.connect(self._on_threshold)
        self.colour.currentIndexChanged.connect(lambda _i: session.set_colour_mode(self.colour.currentData()))
        session.queryChanged.connect(self._show_query)
        session.dimThresholdChanged.connect(self._show_threshold)
        session.colourModeChanged.connect(self._show_colour_mode)
        self._show_query()
        self._show_colour_mode()

    def _send_caption(self) -> None:
        self._debounce.stop()
        self._session.set_caption(self.caption.text())

    def type_caption(self, text: str) -> None:
        """Set the caption as if typed and send it now (no pause)."""
        self.caption.setText(text)
        self._send_caption()

    def _show_query(self) -> None:
        q = self._session.query
        if not self._debounce.isActive():   # never overwrite what the user is typing
            wanted = q.text if q is not None and q.kind == "text" else ""
            if self.caption.text().strip() != wanted:
                self.caption.setText(wanted)
        image = q is not None and q.kind == "image"
        self.similar.setText(f"Similar to {printable_name(q.text)}" if image else "")
        self.similar.setVisible(image)
        self.similar_clear.setVisible(image)
        self._show_threshold()

    def _show_threshold(self) -> None:
        """The spin box spans the current scores, one step below the lowest meaning "off"."""
        s = self._session
        value = s.dim_threshold
        with QSignalBlocker(self.threshold):
            if s.scores is not None and len(s.scores):
                lo = math.floor(float(s.scores.min()) / DIM_STEP) * DIM_STEP
                hi = math.ceil(float(s.scores.max()) / DIM_STEP) * DIM_STEP
                if value is not None:
                    lo, hi = min(lo, value), max(hi, value)
                self.threshold.setRange(round(lo - DIM_STEP, 2), round(hi, 2))
            self.threshold.setValue(self.threshold.minimum() if value is None else value)
        self.threshold.setEnabled(s.scores is not None or value is not None)

    def _on_threshold(self, value: float) -> None:
        off = value <= self.threshold.minimum()
        self._session.set_dim_threshold(None if off else round(value, 2))

    def _show_colour_mode(self) -> None:
        with QSignalBlocker(self.colour):
            self.colour.setCurrentIndex(self.colour.findData(self._session.colour_mode))
