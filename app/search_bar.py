"""The bar above the map: caption search, the "similar to" chip, score threshold, colour mode."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QLineEdit,
                               QToolButton, QWidget)

DEBOUNCE_MS = 150  # long enough to skip most keystrokes of a word, short enough to feel live

COLOUR_MODES = (("class", "Zero-shot class"), ("score", "Search score"), ("cluster", "Cluster"),
                ("none", "Nothing"))


class SearchBar(QWidget):
    """Typing ranks images by caption (debounced); an image query shows as a removable chip."""

    queryChanged = Signal(str)          # the caption after the user paused typing ("" = cleared)
    similarCleared = Signal()           # the user removed the "similar to" query
    thresholdChanged = Signal(object)   # float, or None when dimming is off
    colourModeChanged = Signal(str)     # one of COLOUR_MODES' keys

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.caption = QLineEdit(placeholderText="Search by caption, e.g. \"a red circle\"", clearButtonEnabled=True)
        self.caption.setObjectName("caption")
        self.similar = QLabel()
        self.similar_clear = QToolButton(text="✕", toolTip="Stop ranking by this image")
        self.threshold = QDoubleSpinBox(minimum=-1.0, maximum=1.0, singleStep=0.01, decimals=2, value=-1.0)
        self.threshold.setSpecialValueText("off")
        self.threshold.setToolTip("Dim images whose score is below this value")
        self.colour = QComboBox()
        for key, text in COLOUR_MODES:
            self.colour.addItem(text, key)
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._layout()
        self.show_similar(None)
        self.caption.textEdited.connect(lambda _t: self._debounce.start())
        self.caption.returnPressed.connect(self._emit_query)
        self._debounce.timeout.connect(self._emit_query)
        self.similar_clear.clicked.connect(self._clear_similar)
        self.threshold.valueChanged.connect(lambda _v: self.thresholdChanged.emit(self.score_threshold()))
        self.colour.currentIndexChanged.connect(lambda _i: self.colourModeChanged.emit(self.colour_mode()))

    def _layout(self) -> None:
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 4, 4, 4)
        row.addWidget(self.caption, 3)
        row.addWidget(self.similar)
        row.addWidget(self.similar_clear)
        row.addWidget(QLabel("Dim below"))
        row.addWidget(self.threshold)
        row.addWidget(QLabel("Colour by"))
        row.addWidget(self.colour)

    def _emit_query(self) -> None:
        self._debounce.stop()
        self.queryChanged.emit(self.caption.text().strip())

    def _clear_similar(self) -> None:
        self.show_similar(None)
        self.similarCleared.emit()

    def text(self) -> str:
        return self.caption.text().strip()

    def set_text(self, text: str) -> None:
        """Set the caption as if typed and run the query now (no debounce)."""
        self.caption.setText(text)
        self._emit_query()

    def show_similar(self, name: str | None) -> None:
        """Show the "similar to NAME" chip, or hide it (None)."""
        self.similar.setText(f"Similar to <b>{name}</b>" if name else "")
        self.similar.setTextFormat(Qt.RichText)
        self.similar.setVisible(bool(name))
        self.similar_clear.setVisible(bool(name))

    def score_threshold(self) -> float | None:
        value = self.threshold.value()
        return None if value <= self.threshold.minimum() else value

    def set_score_threshold(self, value: float | None) -> None:
        self.threshold.setValue(self.threshold.minimum() if value is None else value)

    def colour_mode(self) -> str:
        return self.colour.currentData()

    def set_colour_mode(self, mode: str, notify: bool = True) -> None:
        """Switch the colour mode; colourModeChanged is emitted only if it changed and ``notify``."""
        blocked = self.colour.blockSignals(not notify)
        self.colour.setCurrentIndex(self.colour.findData(mode))
        self.colour.blockSignals(blocked)
