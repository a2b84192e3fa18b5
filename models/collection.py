"""The images of a folder as the model sees them: paths and one unit-length embedding per path.

Its own module so that what only reads a collection (search, zero-shot, export, the window)
imports it without importing the encode job (models/indexer.py pulls in the decoder pool and
the scan); ``from clipscape.models.indexer import Collection`` keeps working as a re-export.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Collection", "row_map"]


@dataclass
class Collection:
    """The images of one folder (or several) as the model sees them: paths + unit-length embeddings."""

    paths: list[str]
    embeddings: np.ndarray  # N×D float32, rows L2-normalised
    model_key: str = ""
    snapshot: str = ""      # the token of the snapshot these rows were saved as (models/snapshot.py), "" if none

    def __len__(self) -> int:
        return len(self.paths)

    def index_of(self, path: str | os.PathLike) -> int:
        """Row of ``path`` (absolute or as given); ValueError if it is not in the collection."""
        given = os.fspath(path)
        for target in (given, os.path.abspath(given)):  # as given first: a dataset's row may be a URL
            try:
                return self.paths.index(target)
            except ValueError:
                pass
        raise ValueError(f"{path} is not among the indexed images")


def row_map(old: Collection, new: Collection) -> np.ndarray:
    """For each row of ``old``, the row of the same path in ``new``, or -1 where it is gone."""
    if old.paths == new.paths:
        return np.arange(len(old), dtype=np.int64)
    where = dict(zip(new.paths, range(len(new))))
    return np.fromiter((where.get(p, -1) for p in old.paths), np.int64, len(old))
