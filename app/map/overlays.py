"""What floats over the map's plot: the score colour bar and the hover card."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from clipscape.app.palette import score_lut

CARD_OFFSET = 16
CARD_MAX_PIXMAP = 192


class _Gradient(QWidget):
    """The vertical viridis strip of the colour bar (high at the top), with a threshold tick."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(18, 80)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.setFixedWidth(22)
        self._tick: float | None = None  # threshold position in [0, 1], None for no tick

    def set_tick(self, fraction: float | None) -> None:
        """Mark the threshold at ``fraction`` of the range (None hides the mark)."""
        self._tick = None if fraction is None else float(np.clip(fraction, 0.0, 1.0))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 0, -1, -1)
        grad = QLinearGradient(0, rect.bottom(), 0, rect.top())
        lut = score_lut()
        for i in range(0, 256, 17):
            grad.setColorAt(i / 255, QColor(*lut[i]))
        grad.setColorAt(1.0, QColor(*lut[255]))
        painter.fillRect(rect, grad)
        painter.setPen(QColor(90, 90, 90))
        painter.drawRect(rect)
        if self._tick is not None:
            y = rect.bottom() - self._tick * rect.height()
            painter.setPen(QPen(QColor(214, 39, 40), 2))
            painter.drawLine(QPointF(rect.left() - 2, y), QPointF(rect.right() + 2, y))
        painter.end()


class ColourBar(QWidget):
    """The score scale shown in score mode: max label, viridis strip, min label."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("colourBar")
        self.max_label = QLabel("", self)
        self.max_label.setObjectName("colourBarMax")
        self.min_label = QLabel("", self)
        self.min_label.setObjectName("colourBarMin")
        self.gradient = _Gradient(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.max_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.gradient, 1, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.min_label, 0, Qt.AlignmentFlag.AlignHCenter)
        self._range = (0.0, 0.0)

    def set_range(self, lo: float, hi: float, threshold: float | None) -> None:
        """Show ``lo``..``hi`` and where ``threshold`` falls in it."""
        self._range = (float(lo), float(hi))
        self.max_label.setText(f"{hi:.3g}")
        self.min_label.setText(f"{lo:.3g}")
        self.set_threshold(threshold)

    def set_threshold(self, threshold: float | None) -> None:
        """Move the threshold tick (None removes it)."""
        lo, hi = self._range
        if threshold is None or not hi > lo:
            self.gradient.set_tick(None)
        else:
            self.gradient.set_tick((threshold - lo) / (hi - lo))


class HoverCard(QFrame):
    """A small frameless card with a thumbnail and a caption, floating near the cursor.

    A child of the map (not a tooltip window), so it never steals focus and is clipped to the
    map; it lets mouse events through to the plot underneath.
    """

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("hoverCard")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("#hoverCard { background: palette(base); border: 1px solid #888;"
                           " border-radius: 4px; }")
        self.image = QLabel(self)
        self.image.setObjectName("hoverImage")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel(self)
        self.text.setObjectName("hoverText")
        self.text.setWordWrap(True)
        self.text.setMaximumWidth(CARD_MAX_PIXMAP + 40)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.image)
        layout.addWidget(self.text)
        self.hide()

    def set_content(self, pixmap: QPixmap | None, text: str) -> None:
        """Show ``pixmap`` (scaled down if large; hidden if None or null) above ``text``."""
        if pixmap is None or pixmap.isNull():
            self.image.clear()
            self.image.hide()
        else:
            if pixmap.width() > CARD_MAX_PIXMAP or pixmap.height() > CARD_MAX_PIXMAP:
                pixmap = pixmap.scaled(CARD_MAX_PIXMAP, CARD_MAX_PIXMAP,
                                       Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
            self.image.setPixmap(pixmap)
            self.image.show()
        self.text.setText(text)
        self.text.setVisible(bool(text))
        self.adjustSize()

    def place_near(self, pos: QPoint) -> None:
        """Put the card beside ``pos`` (parent coordinates), flipped to stay inside the parent."""
        parent = self.parentWidget()
        w, h = self.width(), self.height()
        x, y = pos.x() + CARD_OFFSET, pos.y() + CARD_OFFSET
        if x + w > parent.width():
            x = pos.x() - CARD_OFFSET - w
        if y + h > parent.height():
            y = pos.y() - CARD_OFFSET - h
        self.move(max(0, min(x, parent.width() - w)), max(0, min(y, parent.height() - h)))
        self.raise_()
        self.show()
