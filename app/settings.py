"""What the window remembers between sessions: one place for every setting's key and default.

A thin typed layer over QSettings, so no other module spells a key or a default. Values are
stored as plain strings and numbers (INI files cannot hold None or nested lists), and a value
that does not parse falls back to its default instead of breaking the window.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QSettings

Choice = tuple[str, "str | None"]

MODEL_NAME = "model/name"
MODEL_PRETRAINED = "model/pretrained"
RECENT = "recent/folders"            # JSON lists of paths, newest first
BATCH_SIZE = "encode/batch_size"
THUMBNAIL_SIZE = "gallery/thumbnail_size"
EXPORT_FOLDER = "export/folder"

RECENT_MAX = 10
DEFAULT_BATCH_SIZE = 32
DEFAULT_THUMBNAIL_SIZE = 128
THUMBNAIL_SIZES = (64, 256)          # the gallery's size slider range, pixels


class Settings:
    """The window's settings, read and written through typed accessors."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else QSettings("Clipscape", "Clipscape")

    # --- the model --------------------------------------------------------------------------
    def model_choice(self, default: Choice) -> Choice:
        """The model chosen last, or ``default``; demo and local folders never carry a tag."""
        from clipscape.models.encoder import DEMO, LOCAL_DIR

        name = self.store.value(MODEL_NAME, "", type=str).strip()
        if not name:
            return default
        if name == DEMO or name.startswith(LOCAL_DIR):
            return (name, None)
        pretrained = self.store.value(MODEL_PRETRAINED, "", type=str).strip()
        return (name, pretrained or None)

    def has_model_choice(self) -> bool:
        return bool(self.store.value(MODEL_NAME, "", type=str).strip())

    def set_model_choice(self, choice: Choice) -> None:
        model, pretrained = choice
        self.store.setValue(MODEL_NAME, model)
        self.store.setValue(MODEL_PRETRAINED, pretrained or "")

    # --- recent folders ---------------------------------------------------------------------
    def recent(self) -> list[list[str]]:
        """Folder sets opened before, newest first; each is the list of paths opened together."""
        value = self.store.value(RECENT, [])
        entries = value if isinstance(value, list) else [value]
        out = []
        for entry in entries:
            try:
                paths = json.loads(entry)
            except (TypeError, ValueError):
                continue
            if isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths):
                out.append(paths)
        return out

    def add_recent(self, roots: list[str]) -> None:
        # surrogateescape'd names (not UTF-8 on disk) survive JSON's \udcxx escapes
        key = json.dumps(list(roots))
        entries = [key] + [json.dumps(e) for e in self.recent() if e != list(roots)]
        self.store.setValue(RECENT, entries[:RECENT_MAX])

    # --- numbers and folders ----------------------------------------------------------------
    def batch_size(self) -> int:
        return _positive(self.store.value(BATCH_SIZE, DEFAULT_BATCH_SIZE), DEFAULT_BATCH_SIZE)

    def thumbnail_size(self) -> int:
        lo, hi = THUMBNAIL_SIZES
        return min(hi, max(lo, _positive(self.store.value(THUMBNAIL_SIZE, DEFAULT_THUMBNAIL_SIZE),
                                          DEFAULT_THUMBNAIL_SIZE)))

    def set_thumbnail_size(self, size: int) -> None:
        self.store.setValue(THUMBNAIL_SIZE, int(size))

    def export_folder(self) -> str:
        """Where the export dialog opens: the folder of the last export, else the home folder."""
        folder = self.store.value(EXPORT_FOLDER, "", type=str)
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    def set_export_folder(self, folder: str) -> None:
        self.store.setValue(EXPORT_FOLDER, folder)


def _positive(value, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
