"""The first run: which model to use, asked once, before anything is downloaded.

With no model choice saved and the default hub model not in the Hugging Face cache, opening
the window would start a 605 MB download nobody asked for (or, offline, fail). So the first run
asks: the default model (its download size said) or the bundled offline demo model. The answer
is saved as the model choice, so the question never comes back; closing the dialog decides
nothing (this session uses the demo model, nothing is downloaded, and the next start asks again).

Choosing the demo with no folder given also opens the demo photos, with the demo classes.
"""
from __future__ import annotations

from typing import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from clipscape.app.model_choice import DEFAULT, DEMO, Choice
from clipscape.app.settings import Settings
from clipscape.models.hub_cache import DEFAULT_DOWNLOAD_MB, default_model_cached
from clipscape.resources import DEMO_IMAGES, ICON


class WelcomeDialog(QDialog):
    """Two big buttons: the default model (download) or the demo (offline). ``answer()``: "default", "demo" or None."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Welcome to Clipscape")
        self.setWindowIcon(QIcon(str(ICON)))
        self._answer: str | None = None
        intro = QLabel("<b>Clipscape needs a CLIP model to see your images.</b><br>"
                       "Pick one to start with; Model ▸ Choose Model… changes it at any time.")
        intro.setWordWrap(True)
        default = QPushButton(f"Download the default model (ViT-B/32, {DEFAULT_DOWNLOAD_MB} MB)")
        default.setObjectName("useDefault")
        default.setToolTip("Downloaded once into your user cache, then used offline.")
        default_note = QLabel("Good for everyday photos. Downloaded once (internet needed), then works offline.")
        demo = QPushButton("Try the offline demo model")
        demo.setObjectName("useDemo")
        demo_note = QLabel("Bundled and tiny; it only knows coloured shapes. Opens the demo photos. No download.")
        for note in (default_note, demo_note):
            note.setWordWrap(True)
            note.setStyleSheet("color: palette(mid);")
        default.clicked.connect(lambda: self._finish("default"))
        demo.clicked.connect(lambda: self._finish("demo"))
        default.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addSpacing(8)
        for widget in (default, default_note, demo, demo_note):
            layout.addWidget(widget)
        layout.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.setMinimumWidth(480)

    def answer(self) -> str | None:
        return self._answer

    def _finish(self, answer: str) -> None:
        self._answer = answer
        self.accept()


def needs_welcome(settings: Settings, is_cached: Callable[[], bool] = default_model_cached) -> bool:
    """No model choice saved, and the default model would have to be downloaded."""
    if settings.has_model_choice():
        return False
    try:
        return not is_cached()
    except Exception:  # noqa: BLE001 - a broken cache folder is no reason not to start
        return True


def first_run(settings: Settings, model: Choice | None, paths: Sequence[str], demo: bool,
              ask: Callable[[], str | None] | None = None,
              is_cached: Callable[[], bool] = default_model_cached) -> tuple[Choice | None, list[str], bool]:
    """(model, paths, demo) for the window, after asking the first-run question if it is due.

    ``model`` is the model asked for on the command line (None: the saved choice); with one, or
    with a saved choice, or with the default model cached, nothing is asked and the arguments
    come back as they are. ``ask`` shows the dialog and returns its answer (for tests).
    """
    paths = list(paths)
    if model is not None or not needs_welcome(settings, is_cached):
        return model, paths, demo
    answer = (ask or _ask)()
    if answer == "default":
        settings.set_model_choice(DEFAULT)
        return None, paths, demo
    if answer == "demo":
        settings.set_model_choice(DEMO)
        if not paths:
            return DEMO, [str(DEMO_IMAGES)], True
        return None, paths, demo
    return DEMO, paths, demo   # closed: the demo for now, nothing saved, nothing downloaded


def _ask() -> str | None:
    dialog = WelcomeDialog()
    dialog.exec()
    return dialog.answer()
