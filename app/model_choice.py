"""A model choice, ``(model, pretrained)``, and how the window names it.

A choice is the pair models.encoder.ModelSpec.parse takes: ``("demo", None)``,
``("local-dir:/folder", None)``, an open_clip name + pretrained tag, or an open_clip name + a
checkpoint file path. Kept apart from the model picker dialog, so the session and the status
bar can name a model without importing a dialog.
"""
from __future__ import annotations

import os
from pathlib import Path

from clipscape.models.encoder import CHECKPOINT_SUFFIXES, DEFAULT_MODEL, DEFAULT_PRETRAINED, LOCAL_DIR
from clipscape.models.encoder import DEMO as DEMO_NAME

Choice = tuple[str, "str | None"]

DEMO: Choice = (DEMO_NAME, None)
DEFAULT: Choice = (DEFAULT_MODEL, DEFAULT_PRETRAINED)


def is_checkpoint_path(pretrained: str | None) -> bool:
    """True when ``pretrained`` names a weights file rather than an open_clip tag (as models.encoder decides)."""
    if not pretrained:
        return False
    return (os.path.isfile(pretrained) or "/" in pretrained or os.sep in pretrained
            or pretrained.endswith(CHECKPOINT_SUFFIXES))


def describe(model: str, pretrained: str | None) -> str:
    """A short label for a choice, for the status bar and the picker's "current" line."""
    if model == DEMO_NAME:
        return "Demo model (bundled, offline)"
    if model.startswith(LOCAL_DIR):
        return f"Local model: {model[len(LOCAL_DIR):]}"
    if is_checkpoint_path(pretrained):
        return f"{model} + {Path(pretrained).name}"
    return f"{model} · {pretrained}" if pretrained else model
