"""Choosing the CLIP model: a catalogue of hub models, the bundled demo, a local folder or a checkpoint.

A choice is the pair ``(model, pretrained)`` of app/model_choice.py.

The catalogue is static data on purpose: listing models through open_clip would import torch
(about two seconds) on the GUI thread. tests/test_model_picker.py checks every entry against
``open_clip.list_pretrained()``. Figures come from open_clip's docs/openclip_results.csv (ImageNet-1k
zero-shot top-1, parameter counts) and Apple's MobileCLIP model card; the download size is the
fp32 weights (4 bytes a parameter). Speed bands were measured on a 2-core CPU, image tower alone,
batch 8, random weights: ViT-B-32 ≈ 3–5 images/s, ViT-B-16 ≈ 1–1.4, MobileCLIP-S2 ≈ 0.8–3 (its
convolutions vary most with machine load), ViT-L-14 ≈ 0.5, ViT-H-14 ≈ 0.1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QHBoxLayout, QHeaderView, QLabel, QMessageBox, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from clipscape.app.model_choice import DEFAULT, DEMO, Choice, describe, is_checkpoint_path
from clipscape.models.encoder import LOCAL_DIR

CHECKPOINT_FILTER = "Checkpoints (*.safetensors *.pt *.pth *.bin);;All files (*)"
LOCAL_CONFIG = "open_clip_config.json"


@dataclass(frozen=True)
class ModelChoice:
    """One catalogue row: what to pass to the encoder, and what a user needs to decide."""

    model: str
    pretrained: str | None
    title: str
    download_mb: int          # fp32 weights, MB (10^6 bytes)
    speed: str                # "fast", "medium" or "slow" on a CPU
    imagenet_top1: float | None  # ImageNet-1k zero-shot top-1, percent
    licence: str
    note: str = ""

    @property
    def choice(self) -> Choice:
        return (self.model, self.pretrained)


_LAION_NOTE = ("LAION's model card releases it under MIT, as a research output "
               "(deployed use is out of scope in the card).")

CATALOGUE: tuple[ModelChoice, ...] = (
    ModelChoice("ViT-B-32", "laion2b_s34b_b79k", "ViT-B/32, LAION-2B (default)", 605, "fast", 66.6, "MIT",
                "The default: quick on a CPU, good for browsing and search. " + _LAION_NOTE),
    ModelChoice("ViT-B-32", "openai", "ViT-B/32, OpenAI", 605, "fast", 63.3, "MIT",
                "OpenAI's original CLIP weights (MIT, from the openai/CLIP repository); "
                "its model card scopes it to research use."),
    ModelChoice("MobileCLIP-S2", "datacompdr", "MobileCLIP-S2, Apple", 397, "medium", 74.4,
                "Apple sample code licence",
                "Accurate for its size, but its convolutional image tower was no faster than "
                "ViT-B-32 on a CPU here. Weights under Apple's permissive sample code licence "
                "(apple-ascl: use, modify, redistribute; keep Apple's notice), not MIT."),
    ModelChoice("ViT-B-16", "laion2b_s34b_b88k", "ViT-B/16, LAION-2B", 598, "medium", 70.2, "MIT",
                "Finer detail than ViT-B/32, about 3–4× slower on a CPU. " + _LAION_NOTE),
    ModelChoice("ViT-L-14", "laion2b_s32b_b82k", "ViT-L/14, LAION-2B", 1710, "slow", 75.3, "MIT",
                "About 10× slower than ViT-B/32 on a CPU; wants a GPU for large folders. " + _LAION_NOTE),
    ModelChoice("ViT-H-14", "laion2b_s32b_b79k", "ViT-H/14, LAION-2B", 3944, "slow", 78.0, "MIT",
                "The most accurate here and about 50× slower than ViT-B/32 on a CPU; "
                "needs a GPU in practice. " + _LAION_NOTE),
)

DEMO_TITLE = "Demo model (bundled, works offline)"
COLUMNS = ("Model", "Weights", "Download", "Speed on CPU", "ImageNet zero-shot", "Licence")


def _download_text(mb: int) -> str:
    return f"{mb / 1000:.1f} GB" if mb >= 1000 else f"{mb} MB"


class ModelPicker(QDialog):
    """Pick the model: the demo or a catalogue row, or a local model folder, or architecture + checkpoint.

    ``choice()`` is the row selected last, or the folder / checkpoint picked last; a current choice
    that is not a table row (a folder, a checkpoint, a hub model not in the catalogue) is kept, and
    named in a line under the table, until the user picks something else.
    """

    def __init__(self, current: Choice = DEFAULT, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Choose a model")
        self._choice: Choice = (current[0], current[1] or None)
        self._rows: list[Choice] = [DEMO] + [entry.choice for entry in CATALOGUE]

        self._table = self._build_table()
        self._other = QLabel()
        self._other.setObjectName("otherChoice")
        self._other.setWordWrap(True)
        self._other.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        folder_button = QPushButton("Local model folder…")
        folder_button.setObjectName("localFolder")
        folder_button.setToolTip(f"A folder with {LOCAL_CONFIG} and open_clip_model.safetensors")
        folder_button.clicked.connect(self._on_folder)
        self._arch = QComboBox()
        self._arch.setObjectName("checkpointArch")
        self._arch.setToolTip("The architecture the checkpoint file was trained with")
        self._arch.addItems(list(dict.fromkeys(entry.model for entry in CATALOGUE)))
        file_button = QPushButton("Checkpoint file…")
        file_button.setObjectName("checkpointFile")
        file_button.setToolTip("Weights for the architecture on the left (.safetensors, .pt, .pth, .bin)")
        file_button.clicked.connect(self._on_file)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        disk = QHBoxLayout()
        disk.addWidget(folder_button)
        disk.addStretch(1)
        disk.addWidget(QLabel("Architecture:"))
        disk.addWidget(self._arch)
        disk.addWidget(file_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self._table)
        layout.addWidget(self._other)
        layout.addLayout(disk)
        layout.addWidget(buttons)

        self._show_choice()
        self._table.itemSelectionChanged.connect(self._on_row_selected)
        self._table.doubleClicked.connect(self.accept)
        self.resize(max(760, self.sizeHint().width()), 380)

    def choice(self) -> Choice:
        """The (model, pretrained) pair to load."""
        return self._choice

    def _build_table(self) -> QTableWidget:
        table = QTableWidget(len(self._rows), len(COLUMNS))
        table.setObjectName("catalogue")
        table.setHorizontalHeaderLabels(COLUMNS)
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        demo_cells = (DEMO_TITLE, "shapes world (toy)", "bundled", "fast", "—", "MIT")
        demo_note = "A tiny model that only knows the bundled shapes world: for trying Clipscape offline."
        self._fill_row(table, 0, demo_cells, demo_note)
        for row, entry in enumerate(CATALOGUE, start=1):
            top1 = f"{entry.imagenet_top1:.1f} %" if entry.imagenet_top1 is not None else "—"
            cells = (entry.title, entry.pretrained or "", _download_text(entry.download_mb), entry.speed,
                     top1, entry.licence)
            self._fill_row(table, row, cells, entry.note)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return table

    def _fill_row(self, table: QTableWidget, row: int, cells: tuple[str, ...], note: str) -> None:
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(note)
            if column in (2, 4):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(row, column, item)

    def _show_choice(self) -> None:
        """Select the choice's row, or name it under the table when it has none."""
        if self._choice in self._rows:
            self._table.selectRow(self._rows.index(self._choice))
            self._table.scrollToItem(self._table.item(self._rows.index(self._choice), 0))
            self._other.hide()
            return
        self._table.clearSelection()
        self._other.setText(f"Selected: {describe(*self._choice)}")
        self._other.show()
        model, pretrained = self._choice
        if is_checkpoint_path(pretrained):
            if self._arch.findText(model) < 0:
                self._arch.addItem(model)
            self._arch.setCurrentText(model)

    def _set_choice(self, choice: Choice) -> None:
        self._choice = choice
        self._table.blockSignals(True)
        self._show_choice()
        self._table.blockSignals(False)

    def _on_row_selected(self) -> None:
        rows = self._table.selectionModel().selectedRows()
        if rows:  # an empty selection (clicked off the rows) keeps the choice
            self._set_choice(self._rows[rows[0].row()])

    def _on_folder(self) -> None:
        folder = self._ask_folder()
        if not folder:
            return
        if not (Path(folder) / LOCAL_CONFIG).is_file():
            self._warn("Not a model folder",
                       f"{folder} has no {LOCAL_CONFIG}, so it is not an open_clip model folder.\n\n"
                       f"A model folder holds {LOCAL_CONFIG} and open_clip_model.safetensors "
                       "(the layout open_clip's push_to_hf_hub writes).")
            return
        self._set_choice((LOCAL_DIR + folder, None))

    def _on_file(self) -> None:
        path = self._ask_file()
        if path:
            self._set_choice((self._arch.currentText(), path))

    # Overridable so tests (and callers with their own dialogs) need no native file dialog.
    def _ask_folder(self) -> str:
        """A folder the user picked, or "" when cancelled."""
        return QFileDialog.getExistingDirectory(self, "Choose a local model folder")

    def _ask_file(self) -> str:
        """A checkpoint file the user picked, or "" when cancelled."""
        path, _ = QFileDialog.getOpenFileName(self, "Choose a checkpoint file", "", CHECKPOINT_FILTER)
        return path

    def _warn(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)


class ModelUnavailableDialog(QDialog):
    """Offered when a model's weights cannot be had (offline and not cached, bad file): the way on.

    ``result_choice()`` is "demo", "local" (the caller then opens a ModelPicker or folder dialog)
    or None for Cancel.
    """

    EXPLANATION = ("Clipscape could not get this model's weights. With no network, use the bundled "
                   "demo model or a model folder you already have.")

    def __init__(self, message: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Model not available")
        self._result: str | None = None

        explanation = QLabel(self.EXPLANATION)
        explanation.setWordWrap(True)
        error = QLabel(message)
        error.setObjectName("errorMessage")
        error.setWordWrap(True)
        error.setTextFormat(Qt.TextFormat.PlainText)
        error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        use_demo = QPushButton("Use the demo model")
        use_demo.setObjectName("useDemo")
        use_demo.clicked.connect(lambda: self._finish("demo"))
        choose_local = QPushButton("Choose a local model…")
        choose_local.setObjectName("chooseLocal")
        choose_local.clicked.connect(lambda: self._finish("local"))
        cancel = QPushButton("Cancel")
        cancel.setObjectName("cancel")
        cancel.clicked.connect(self.reject)
        use_demo.setDefault(True)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (use_demo, choose_local, cancel):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addWidget(error)
        layout.addLayout(buttons)
        self.setMinimumWidth(460)

    def result_choice(self) -> str | None:
        """"demo", "local", or None when cancelled (or closed)."""
        return self._result

    def _finish(self, result: str) -> None:
        self._result = result
        self.accept()
