"""SHA-256 of model weight files, remembered by (path, size, mtime, ctime) so it is computed once.

A local-dir or checkpoint model is identified in the embedding cache by the hash of its weights
(models/encoder.py), and hashing a 600 MB ViT-B-32 file costs about half a second warm and
several seconds cold, on every run. The hash is kept in a small JSON file next to the embedding
cache and reused while the file's size, mtime and ctime are unchanged (a file rewritten in place
with its mtime set back still changes ctime). Any failure to read or write that JSON file only
means hashing again: it never stops a run.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["HASHES_NAME", "cached_sha256", "file_sha256"]

HASHES_NAME = "weights-sha256.json"
MAX_ENTRIES = 64  # a handful of models per user; old entries are dropped beyond this


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (checkpoints can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cached_sha256(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """``file_sha256(path)``, from the record in ``cache_dir`` (default: the embedding cache's) when still valid."""
    if cache_dir is None:
        from clipscape.models.store import default_cache_dir

        cache_dir = default_cache_dir()
    record = Path(cache_dir) / HASHES_NAME
    key = os.path.realpath(path)
    info = os.stat(key)
    stamp = [info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    known = _read(record)
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = file_sha256(key)
    known.pop(key, None)
    known[key] = {"stamp": stamp, "sha256": digest}  # newest last, so trimming drops the oldest
    _write(record, dict(list(known.items())[-MAX_ENTRIES:]))
    return digest


def _read(record: Path) -> dict:
    try:
        with open(record, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(record: Path, data: dict) -> None:
    """Replace ``record`` atomically (two processes at once: the last one wins, nothing is torn)."""
    tmp = None
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=record.parent, prefix=f".{record.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, record)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
