"""The images of a folder as the model sees them: paths and one unit-length embedding per path.

Its own module so that what only reads a collection (search, zero-shot, export, the window)
imports it without importing the encode job (models/indexer.py pulls in the decoder pool and
the scan); ``from clipscape.models.indexer import Collection`` keeps working as a re-export.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Collection", "PathTable", "all_rows", "drop", "path_rows", "row_map", "same_paths"]

CHUNK = 25_000   # paths per step of the bulk helpers below (a few ms each)
SHARDS = 64      # dictionaries a PathTable spreads its keys over


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
    if same_paths(old.paths, new.paths):
        return np.arange(len(old), dtype=np.int64)
    where = path_rows(new.paths)
    rows = np.fromiter((where.get(p, -1) for p in old.paths), np.int64, len(old))
    where.clear()
    return rows


class PathTable:
    """A dictionary of many keys (paths) kept as SHARDS dictionaries, chosen by the key's hash.

    A plain dict grows by doubling, and each growth re-inserts every entry in one C call that
    holds the GIL: at 700k entries that is 30 ms alone and 120 ms beside the window's other
    threads, a stop of the GUI thread while a million-image folder opens. Here a growth moves
    1/64 of the entries. Lookups cost one hash more (bytes and str cache their hash)."""

    __slots__ = ("_shards",)

    def __init__(self, pairs=()) -> None:
        self._shards: list[dict] = [{} for _ in range(SHARDS)]
        self.update(pairs)

    def update(self, pairs) -> None:
        shards, mask = self._shards, SHARDS - 1
        for key, value in pairs:
            shards[hash(key) & mask][key] = value

    def get(self, key, default=None):
        return self._shards[hash(key) & (SHARDS - 1)].get(key, default)

    def pop(self, key, default=None):
        return self._shards[hash(key) & (SHARDS - 1)].pop(key, default)

    def __contains__(self, key) -> bool:
        return key in self._shards[hash(key) & (SHARDS - 1)]

    def __len__(self) -> int:
        return sum(map(len, self._shards))

    def __iter__(self):
        for shard in self._shards:
            yield from shard

    def items(self):
        for shard in self._shards:
            yield from shard.items()

    def clear(self) -> None:
        """Empty it a shard at a time: freeing a million keys at once holds the GIL ~50 ms."""
        for shard in self._shards:
            shard.clear()


def path_rows(paths: list[str]) -> PathTable:
    """{path: row} as a PathTable, built ``CHUNK`` paths per step (the interpreter can hand the
    GIL over between steps, and no step re-inserts a million entries)."""
    where = PathTable()
    for start in range(0, len(paths), CHUNK):
        where.update(zip(paths[start:start + CHUNK], range(start, start + CHUNK)))
    return where


def same_paths(a: list[str], b: list[str]) -> bool:
    """``a == b``, compared ``CHUNK`` paths per step (one 1M-path comparison held the GIL ~0.1 s)."""
    if a is b:
        return True
    return len(a) == len(b) and all(a[i:i + CHUNK] == b[i:i + CHUNK] for i in range(0, len(a), CHUNK))


def drop(items: list) -> None:
    """Empty a big list ``CHUNK`` items per step, from its end.

    Freeing a list of 1M scanned files (or paths) in one go is one C call: it held the GIL for
    ~0.2 s at the end of a reopen's index, and the window stopped for as long."""
    while items:
        del items[-CHUNK:]


@lru_cache(maxsize=2)
def all_rows(n: int) -> np.ndarray:
    """0..n-1 (read-only, shared): the rows of a collection listed in their own order.

    8 MB at 1M, whose first writing costs ~25 ms on a small VM (fresh pages); the window's jobs
    call this in their worker for the collection they hand over, so the views find it made."""
    rows = np.arange(n, dtype=np.intp)
    rows.flags.writeable = False
    return rows
