"""What went wrong with the embedding cache, said in one line that names the file and the fix.

SQLite reports a read-only folder, a full disk or a foreign file as ``sqlite3.OperationalError``
with texts such as "unable to open database file" or "no such table: models", which tell a user
neither which file nor what to do. ``cache_error`` turns any of them into a ``CacheError``; the
store raises nothing else for a cache it cannot use. It never deletes or moves the file: it is
only a cache, but the user (or another Clipscape process holding it open) decides.
"""
from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from clipscape.models.display import printable

__all__ = ["CacheError", "cache_error", "damaged", "folder_error", "is_corruption", "translated"]

M = TypeVar("M", bound=Callable[..., Any])

# SQLite's primary result codes (the sqlite3 module only exports them from Python 3.11 on).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
ELSEWHERE = "or point --cache-dir (CLIPSCAPE_CACHE_DIR) at another folder"


class CacheError(RuntimeError):
    """The embedding cache cannot be used: unwritable, full, damaged, foreign or from a newer Clipscape.

    The message is one line naming the file and what to do; rows already committed are kept.
    """


def cache_error(exc: sqlite3.Error, path: Path) -> CacheError:
    """The CacheError for an error SQLite raised while using the cache file ``path``."""
    where, folder = printable(path), printable(path.parent)
    code = _code(exc)
    if is_corruption(exc):
        return damaged(path, str(exc))
    if code == _FULL:
        return CacheError(f"the disk holding the embedding cache {where} is full; every batch committed so "
                          "far is kept: free some space and run again to resume")
    if code in (_READONLY, _CANTOPEN):
        return CacheError(f"cannot write the embedding cache {where} ({exc}): make {folder} and the "
                          f"file writable, {ELSEWHERE}")
    if code in (_BUSY, _LOCKED):
        return CacheError(f"the embedding cache {where} stayed locked by another Clipscape process; "
                          "wait for it to finish, then run again")
    if code == _IOERR:
        return CacheError(f"cannot read or write the embedding cache {where} ({exc}): check the disk, "
                          f"{ELSEWHERE}")
    text = str(exc).lower()
    if "no such table" in text or "no such column" in text or "already exists" in text:
        return damaged(path, str(exc))
    return CacheError(f"the embedding cache {where} cannot be used ({exc}); {ELSEWHERE}")


def translated(method: M) -> M:
    """Decorate a store method: the sqlite3 errors it raises become CacheError for ``self.path``.

    ProgrammingError (a closed store, a bad statement: a bug, not a property of the file) is let
    through as it is.
    """
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as exc:  # OperationalError and the rest describe the file or disk
            raise cache_error(exc, self.path) from exc
    return wrapper  # type: ignore[return-value]


def damaged(path: Path, detail: str) -> CacheError:
    """The message for a file that is not (or no longer) a Clipscape cache."""
    where = printable(path)
    return CacheError(
        f"the embedding cache {where} is damaged or not a Clipscape cache ({detail}); it only holds "
        f"recomputable data: close Clipscape, delete it and any {path.name}-wal / {path.name}-shm next "
        f"to it, and run again ({ELSEWHERE} to keep it)")


def folder_error(exc: OSError, folder: Path) -> CacheError:
    """The CacheError for a cache folder that cannot be created or is not a folder."""
    reason = (exc.strerror or str(exc)).lower()
    return CacheError(f"cannot use {printable(folder)} as the embedding cache folder ({reason}); "
                      f"make it a writable folder, {ELSEWHERE}")


def is_corruption(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file is not a database or is malformed (not e.g. 'locked')."""
    code = _code(exc)
    if code is not None:
        return code in (_CORRUPT, _NOTADB)
    message = str(exc).lower()
    return "not a database" in message or "malformed" in message


def _code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``exc`` (Python >= 3.11), or one read from its text."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    text = str(exc).lower()
    for needle, guessed in (("disk is full", _FULL), ("readonly", _READONLY), ("unable to open", _CANTOPEN),
                            ("locked", _BUSY), ("disk i/o", _IOERR)):
        if needle in text:
            return guessed
    return None
