"""Helpers for GUI tests: the real window with the demo model, and a Session fed synthetic results.

The window helpers open it offscreen and wait for its jobs; import the ``settings`` and
``window`` fixtures into a test module to use them.

Views take a Session; these put a Session into a known state through the same methods its jobs'
results go through (``_take_collection``, ``_on_coords``, ``_on_scores``, ``_on_classes``,
``_on_clusters``), so a view test needs no model and no waiting.
"""
from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from clipscape.app.main_window import MainWindow
from clipscape.app.session import Query, Session
from clipscape.app.settings import Settings
from clipscape.models.collection import Collection
from clipscape.models.zeroshot import Classification
from clipscape.resources import DEMO_IMAGES


def grid(n: int = 5, step: float = 0.4) -> np.ndarray:
    """n×n points, row = iy * n + ix, centred on 0."""
    ix, iy = np.meshgrid(np.arange(n), np.arange(n))
    return (np.stack([ix.ravel(), iy.ravel()], axis=1) - (n - 1) / 2).astype(np.float32) * step


def make_session(tmp_path, paths=None, coords=None, dim: int = 8, seed: int = 0) -> Session:
    """A Session showing ``paths`` (default 25 made-up names) at ``coords`` (default a 5×5 grid)."""
    coords = grid() if coords is None else np.asarray(coords, np.float32)
    paths = [f"/photos/img_{i:03d}.jpg" for i in range(len(coords))] if paths is None else list(paths)
    settings = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    session = Session(settings, ("demo", None), device="cpu")
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(len(paths), dim)).astype(np.float32)
    session._take_collection(Collection(paths, emb / np.linalg.norm(emb, axis=1, keepdims=True)))
    session._on_coords(coords, "umap")
    return session


def classify(session: Session, names, best, probabilities=None, ensemble: bool = True) -> None:
    """Give the session these classes and this classification (``best`` -1 = unknown)."""
    session.set_classes(list(names))
    best = np.asarray(best, np.int64)
    if probabilities is None:
        probabilities = np.full((len(best), len(names)), 0.1 / max(1, len(names) - 1), np.float32)
        probabilities[np.arange(len(best)), np.maximum(best, 0)] = np.where(best >= 0, 0.9, 0.4)
    c = Classification(list(names), np.asarray(probabilities, np.float32), best)
    session._on_classes((tuple(names), ensemble, session.unknown_threshold), (c, {}), final=True)


def score(session: Session, scores, caption: str = "a query") -> None:
    """Rank the session by a caption whose scores are ``scores``."""
    session._set_query(Query("text", caption))
    scores = np.asarray(scores, np.float32)
    session._on_scores(session.query, (scores, np.argsort(-scores, kind="stable")))


# --- the real window ---------------------------------------------------------------------------

TIMEOUT = 120_000  # ms; the first UMAP in a process compiles numba code


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def make_window(qtbot, settings, model=("demo", None), **kwargs) -> MainWindow:
    window = MainWindow(settings=settings, model=model, device="cpu", **kwargs)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def slow_window(qtbot, settings, batch_size: int, seconds_per_batch: float) -> MainWindow:
    """A window whose model takes ``seconds_per_batch`` per batch, so a test can act mid-encode."""
    window = make_window(qtbot, settings, batch_size=batch_size)
    qtbot.waitUntil(lambda: window.session.encoder is not None, timeout=TIMEOUT)
    encoder = window.session.encoder
    encode = encoder.encode_images

    def slow_encode(batch):
        threading.Event().wait(seconds_per_batch)
        return encode(batch)

    slow_encode.__wrapped__ = encode
    encoder.encode_images = slow_encode
    return window


@pytest.fixture
def window(qtbot, settings):
    w = make_window(qtbot, settings)
    qtbot.waitUntil(lambda: w.session.encoder is not None, timeout=TIMEOUT)
    yield w
    w.close()


def drop(window: MainWindow, *paths) -> None:
    """Drag the paths over the window and drop them, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)


def wait_collection(qtbot, window) -> None:
    """Until the folder's final collection is shown (encoding over)."""
    s = window.session
    qtbot.waitUntil(lambda: s.collection is not None and not s.jobs.is_running("index")
                    and not s.jobs.is_running("model"), timeout=TIMEOUT)


def wait_idle(qtbot, window, but=("project",)) -> None:
    """Until no job runs (the UMAP map may go on unless ``but`` is empty)."""
    qtbot.waitUntil(lambda: not set(window.session.jobs.running()) - set(but), timeout=TIMEOUT)


def wait_for_umap(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.session.map_kind == "umap", timeout=TIMEOUT)


def photo_folder(tmp_path, n: int = 12, extra=()) -> str:
    """A folder of the first ``n`` demo photos plus ``extra`` (name, bytes or PIL image) files."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted(DEMO_IMAGES.iterdir())[:n]:
        shutil.copy(path, folder / path.name)
    for name, content in extra:
        target = os.path.join(os.fsencode(folder), os.fsencode(name))
        if isinstance(content, bytes):
            with open(target, "wb") as f:
                f.write(content)
        else:
            content.save(os.fsdecode(target), "JPEG")
    return str(folder)
