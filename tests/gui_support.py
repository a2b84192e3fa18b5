"""Helpers for GUI tests: a Session fed synthetic results, without a model or jobs.

Views take a Session; these put a Session into a known state through the same methods its jobs'
results go through (``_take_collection``, ``_on_coords``, ``_on_scores``, ``_on_classes``,
``_on_clusters``), so a view test needs no model and no waiting.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings

from clipscape.app.session import Query, Session
from clipscape.app.settings import Settings
from clipscape.models.indexer import Collection
from clipscape.models.zeroshot import Classification


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
