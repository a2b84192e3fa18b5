"""The model picker: a catalogue open_clip can load, settings that survive a restart, the dialogs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QComboBox, QDialog, QLabel, QPushButton, QTableWidget

from clipscape.app.model_choice import DEFAULT, DEMO, describe
from clipscape.app.model_picker import CATALOGUE, ModelChoice, ModelPicker, ModelUnavailableDialog
from clipscape.app.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def test_catalogue_entries_are_open_clip_pretrained_models_with_offline_tokenizers():
    import open_clip

    known = set(open_clip.list_pretrained())
    assert 5 <= len(CATALOGUE) <= 7
    assert CATALOGUE[0].choice == DEFAULT
    assert len({entry.choice for entry in CATALOGUE}) == len(CATALOGUE)
    for entry in CATALOGUE:
        assert isinstance(entry, ModelChoice)
        assert (entry.model, entry.pretrained) in known, entry
        # a Hugging Face tokenizer would need the network (or its cache) before the first search
        assert not open_clip.get_model_config(entry.model)["text_cfg"].get("hf_tokenizer_name"), entry
        assert entry.speed in ("fast", "medium", "slow")
        assert entry.download_mb > 0 and entry.licence and entry.title
        assert entry.imagenet_top1 is None or 0 < entry.imagenet_top1 < 100


def test_catalogue_figures_are_ordered_sensibly():
    by_choice = {entry.choice: entry for entry in CATALOGUE}
    b32 = by_choice[DEFAULT]
    h14 = by_choice[("ViT-H-14", "laion2b_s32b_b79k")]
    assert b32.download_mb == 605  # the README's figure for the default model
    assert h14.download_mb > by_choice[("ViT-L-14", "laion2b_s32b_b82k")].download_mb > b32.download_mb
    assert h14.imagenet_top1 > b32.imagenet_top1 and h14.speed == "slow" and b32.speed == "fast"


def test_gui_modules_do_not_import_torch_or_open_clip():
    code = ("import sys, clipscape.app.main_window; "
            "bad = [m for m in ('torch', 'open_clip', 'umap') if m in sys.modules]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr


def test_settings_round_trip(tmp_path):
    path = str(tmp_path / "clipscape.ini")

    def fresh() -> Settings:
        return Settings(QSettings(path, QSettings.Format.IniFormat))

    assert fresh().model_choice(DEFAULT) == DEFAULT and not fresh().has_model_choice()
    for choice in [("ViT-L-14", "laion2b_s32b_b82k"), DEMO, ("local-dir:/models/mine", None),
                   ("ViT-B-32", "/weights/ft.safetensors")]:
        settings = fresh()
        settings.set_model_choice(choice)
        settings.store.sync()
        assert fresh().model_choice(DEFAULT) == choice


def test_describe():
    assert describe(*DEMO) == "Demo model (bundled, offline)"
    assert describe("ViT-B-32", "laion2b_s34b_b79k") == "ViT-B-32 · laion2b_s34b_b79k"
    assert describe("local-dir:/path/to/model", None) == "Local model: /path/to/model"
    assert describe("ViT-B-32", "/some/dir/checkpoint.safetensors") == "ViT-B-32 + checkpoint.safetensors"
    assert describe("ViT-B-32", "checkpoint.pt") == "ViT-B-32 + checkpoint.pt"


def _picker(qtbot, current):
    picker = ModelPicker(current)
    qtbot.addWidget(picker)
    return picker


def _selected_row(picker):
    rows = picker.findChild(QTableWidget, "catalogue").selectionModel().selectedRows()
    return [index.row() for index in rows]


def test_picker_lists_demo_first_then_catalogue_read_only(qtbot):
    picker = _picker(qtbot, DEFAULT)
    table = picker.findChild(QTableWidget, "catalogue")
    assert picker.windowTitle() == "Choose a model"
    assert table.rowCount() == 1 + len(CATALOGUE)
    assert [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())] == [
        "Model", "Weights", "Download", "Speed on CPU", "ImageNet zero-shot", "Licence"]
    assert table.item(0, 0).text() == "Demo model (bundled, works offline)"
    assert table.item(1, 1).text() == "laion2b_s34b_b79k" and table.item(1, 2).text() == "605 MB"
    assert table.editTriggers() == QTableWidget.EditTrigger.NoEditTriggers
    assert table.selectionMode() == QTableWidget.SelectionMode.SingleSelection


def test_picker_preselects_current_and_returns_clicked_row(qtbot):
    current = ("ViT-B-16", "laion2b_s34b_b88k")
    picker = _picker(qtbot, current)
    row = 1 + [entry.choice for entry in CATALOGUE].index(current)
    assert _selected_row(picker) == [row]
    assert picker.choice() == current

    table = picker.findChild(QTableWidget, "catalogue")
    picker.show()
    qtbot.waitExposed(picker)
    target = 1 + [entry.choice for entry in CATALOGUE].index(("ViT-L-14", "laion2b_s32b_b82k"))
    table.scrollToItem(table.item(target, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton,
                     pos=table.visualItemRect(table.item(target, 0)).center())
    assert picker.choice() == ("ViT-L-14", "laion2b_s32b_b82k")


def test_picker_demo_choice(qtbot):
    picker = _picker(qtbot, DEFAULT)
    picker.findChild(QTableWidget, "catalogue").selectRow(0)
    assert picker.choice() == DEMO
    assert _picker(qtbot, DEMO).choice() == DEMO and _selected_row(_picker(qtbot, DEMO)) == [0]


def test_picker_local_folder(qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "my model"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text("{}")
    picker = _picker(qtbot, DEFAULT)
    monkeypatch.setattr(picker, "_ask_folder", lambda: str(folder))
    monkeypatch.setattr(picker, "_warn", lambda *a: pytest.fail(f"unexpected warning {a}"))
    qtbot.mouseClick(picker.findChild(QPushButton, "localFolder"), Qt.MouseButton.LeftButton)
    assert picker.choice() == (f"local-dir:{folder}", None)
    assert _selected_row(picker) == []
    assert str(folder) in picker.findChild(QLabel, "otherChoice").text()


def test_picker_refuses_folder_without_config(qtbot, tmp_path, monkeypatch):
    warnings = []
    picker = _picker(qtbot, DEFAULT)
    monkeypatch.setattr(picker, "_ask_folder", lambda: str(tmp_path))
    monkeypatch.setattr(picker, "_warn", lambda title, text: warnings.append(text))
    qtbot.mouseClick(picker.findChild(QPushButton, "localFolder"), Qt.MouseButton.LeftButton)
    assert picker.choice() == DEFAULT
    assert len(warnings) == 1 and "open_clip_config.json" in warnings[0]


def test_picker_cancelled_folder_dialog_keeps_choice(qtbot, monkeypatch):
    picker = _picker(qtbot, DEMO)
    monkeypatch.setattr(picker, "_ask_folder", lambda: "")
    qtbot.mouseClick(picker.findChild(QPushButton, "localFolder"), Qt.MouseButton.LeftButton)
    assert picker.choice() == DEMO


def test_picker_checkpoint_file(qtbot, tmp_path, monkeypatch):
    weights = tmp_path / "finetuned.safetensors"
    weights.write_bytes(b"")
    picker = _picker(qtbot, DEFAULT)
    arch = picker.findChild(QComboBox, "checkpointArch")
    assert [arch.itemText(i) for i in range(arch.count())] == list(dict.fromkeys(e.model for e in CATALOGUE))
    arch.setCurrentText("ViT-B-16")
    monkeypatch.setattr(picker, "_ask_file", lambda: str(weights))
    qtbot.mouseClick(picker.findChild(QPushButton, "checkpointFile"), Qt.MouseButton.LeftButton)
    assert picker.choice() == ("ViT-B-16", str(weights))
    assert "ViT-B-16 + finetuned.safetensors" in picker.findChild(QLabel, "otherChoice").text()


def test_picker_shows_a_current_checkpoint_choice(qtbot):
    picker = _picker(qtbot, ("ViT-L-14", "/w/ft.pt"))
    assert _selected_row(picker) == []
    assert picker.choice() == ("ViT-L-14", "/w/ft.pt")
    assert "ViT-L-14 + ft.pt" in picker.findChild(QLabel, "otherChoice").text()
    assert picker.findChild(QComboBox, "checkpointArch").currentText() == "ViT-L-14"
    picker.findChild(QTableWidget, "catalogue").selectRow(1)  # then a row replaces it
    assert picker.choice() == DEFAULT and picker.findChild(QLabel, "otherChoice").isHidden()


@pytest.mark.parametrize("button, expected, code", [("useDemo", "demo", QDialog.DialogCode.Accepted),
                                                     ("chooseLocal", "local", QDialog.DialogCode.Accepted),
                                                     ("cancel", None, QDialog.DialogCode.Rejected)])
def test_unavailable_dialog_buttons(qtbot, button, expected, code):
    message = "model ViT-B-32/laion2b_s34b_b79k is not downloaded yet and cannot be fetched"
    dialog = ModelUnavailableDialog(message)
    qtbot.addWidget(dialog)
    error = dialog.findChild(QLabel, "errorMessage")
    assert error.text() == message and error.wordWrap()
    assert error.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert any("use the bundled demo model" in label.text() for label in dialog.findChildren(QLabel))
    dialog.show()
    with qtbot.waitSignal(dialog.finished):
        qtbot.mouseClick(dialog.findChild(QPushButton, button), Qt.MouseButton.LeftButton)
    assert dialog.result_choice() == expected
    assert dialog.result() == code
