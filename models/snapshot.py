"""The last collection of a folder, kept as contiguous arrays so that reopening it is one read.

The store (models/store.py) is the truth: one SQLite row per image, keyed by path, size and
mtime. Rebuilding a collection from it means a Python tuple, dict entry and bytes object per
row (6.5 s of a 13.5 s ``clipscape search`` at 1M images). A snapshot is what ``index()``
returned the last time for the same folders and model: the paths, each file's (size,
mtime_ns) and the N×D embeddings in scan order, plus, in a file beside it, the map the window
last showed. It is keyed like the store's rows, so it can never give a file the embedding of
other bytes: a file whose size or mtime differs from its snapshot stamp is looked up in the
store as before. It is a cache of a cache: deleting it loses nothing but time.

Files live in ``<cache dir>/snapshots/``: ``<key>.npz`` (uncompressed numpy arrays; numpy, not
a pickle, so a tampered file cannot run code) and ``<key>.map.npz``. Both are written to a
temporary name and renamed, so a killed run leaves the old snapshot or the new one, never half.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from clipscape.models.collection import CHUNK, path_rows, same_paths

__all__ = ["Match", "Snapshot", "load", "load_map", "match", "remove", "save", "save_map", "snapshot_key"]

FORMAT = 1
FOLDER = "snapshots"
KEEP = 8      # snapshots kept, the most recently used (each is as big as its embeddings)
_SEP = "\0"   # cannot occur in a path on any OS we run on
DECODE_BYTES = 1 << 20   # the paths' bytes decoded per step


@dataclass
class Snapshot:
    """One folder set's last collection: ``paths`` in scan order, ``stamps`` N×2 int64 (size,
    mtime_ns), ``embeddings`` N×D float32, ``token`` naming this version (the map file names the
    token it belongs to), ``pruned`` whether the store held no other rows under the roots then."""

    paths: list[str]
    stamps: np.ndarray
    embeddings: np.ndarray
    token: str
    pruned: bool


@dataclass
class Match:
    """What a scan has in common with a snapshot: ``rows[i]`` is the snapshot row of file i when
    its path, size and mtime are the same (else -1), ``stamps`` the files' N×2 (size, mtime_ns),
    ``covered`` whether every snapshot path was found again (no file deleted or moved away)."""

    rows: np.ndarray
    stamps: np.ndarray
    covered: bool


def match(snapshot: Snapshot | None, files: Sequence) -> Match:
    """Match scanned files (``ImageFile``: path, size, mtime_ns) against ``snapshot`` (None: nothing matches).

    Vectorised but for one pass over the files: when the scan found the snapshot's paths in the
    same order (the usual reopen) no dictionary of paths is built at all.
    """
    n = len(files)
    stamps = np.fromiter((v for f in files for v in (f[1], f[2])), np.int64, 2 * n).reshape(n, 2)
    if snapshot is None:
        return Match(np.full(n, -1, np.int64), stamps, False)
    paths = [f[0] for f in files]
    if same_paths(paths, snapshot.paths):
        rows = np.arange(n, dtype=np.int64)
    else:
        where = path_rows(snapshot.paths)
        rows = np.fromiter((where.get(p, -1) for p in paths), np.int64, n)
        where.clear()
    covered = int(np.count_nonzero(rows >= 0)) == len(snapshot.paths)
    known = np.flatnonzero(rows >= 0)
    same = (snapshot.stamps[rows[known]] == stamps[known]).all(axis=1)
    rows[known[~same]] = -1
    return Match(rows, stamps, covered)


def snapshot_key(model_key: str, roots: Sequence[str], include_hidden: bool = False,
                 follow_links_out: bool = False) -> str:
    """The file name of the snapshot of these folders (absolute) seen by this model with these scan options."""
    text = json.dumps({"model": model_key, "roots": sorted(roots), "include_hidden": bool(include_hidden),
                       "follow_links_out": bool(follow_links_out)}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _file(cache_dir: str | os.PathLike, key: str, suffix: str = "") -> Path:
    return Path(cache_dir) / FOLDER / f"{key}{suffix}.npz"


def load(cache_dir: str | os.PathLike, key: str, dim: int) -> Snapshot | None:
    """The snapshot under ``key`` with ``dim``-wide vectors, or None (none, another format, damaged)."""
    try:
        with np.load(_file(cache_dir, key), allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT:
                return None
            paths = _decode_paths(data["paths"])
            stamps = np.asarray(data["stamps"], dtype=np.int64)
            embeddings = np.asarray(data["embeddings"], dtype=np.float32)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    n = len(paths)
    if stamps.shape != (n, 2) or embeddings.shape != (n, dim):
        return None
    try:
        os.utime(_file(cache_dir, key))   # most recently used: the last that _trim deletes
    except OSError:
        pass
    return Snapshot(paths, stamps, embeddings, str(meta.get("token", "")), bool(meta.get("pruned")))


def save(cache_dir: str | os.PathLike, key: str, paths: Sequence[str], stamps: np.ndarray,
         embeddings: np.ndarray, pruned: bool) -> str:
    """Write the snapshot under ``key`` (replacing any) and return its new token.

    The old map file stays: it names the old token, so ``load_map`` no longer gives it out for
    the new rows, while the window can still carry its coordinates over (see app/session_reopen.py).
    """
    token = secrets.token_hex(8)
    meta = json.dumps({"format": FORMAT, "token": token, "pruned": bool(pruned)}).encode()
    _write(_file(cache_dir, key), meta=np.frombuffer(meta, np.uint8), paths=_encode_paths(paths),
           stamps=np.asarray(stamps, np.int64).reshape(-1, 2),
           embeddings=np.ascontiguousarray(embeddings, np.float32))
    _trim(Path(cache_dir) / FOLDER)
    return token


def _trim(folder: Path) -> None:
    """Delete all but the KEEP most recently used snapshots (and their maps)."""
    try:
        found = [(p.stat().st_mtime_ns, p) for p in folder.glob("*.npz") if not p.name.endswith(".map.npz")]
    except OSError:
        return
    for _, old in sorted(found, reverse=True)[KEEP:]:
        remove(folder.parent, old.name[:-len(".npz")])


def load_map(cache_dir: str | os.PathLike, key: str, token: str) -> tuple[np.ndarray, str] | None:
    """(N×2 float32 coordinates, their kind: "pca" or "umap") saved for snapshot ``token``, or None."""
    try:
        with np.load(_file(cache_dir, key, ".map"), allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            coords = np.asarray(data["coords"], dtype=np.float32)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    if meta.get("token") != token or coords.ndim != 2 or coords.shape[1] != 2:
        return None
    return coords, str(meta.get("kind", ""))


def save_map(cache_dir: str | os.PathLike, key: str, token: str, coords: np.ndarray, kind: str) -> bool:
    """Keep the map shown for snapshot ``token``; False (nothing written) when that is not the
    snapshot on disk any more (another run replaced it: those coordinates are of other rows)."""
    snapshot = _file(cache_dir, key)
    try:
        with np.load(snapshot, allow_pickle=False) as data:
            current = json.loads(bytes(data["meta"]).decode()).get("token")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return False
    if current != token:
        return False
    meta = json.dumps({"format": FORMAT, "token": token, "kind": kind}).encode()
    _write(_file(cache_dir, key, ".map"), meta=np.frombuffer(meta, np.uint8),
           coords=np.ascontiguousarray(coords, np.float32))
    return True


def remove(cache_dir: str | os.PathLike, key: str) -> None:
    """Forget the snapshot and its map (missing files are fine)."""
    for suffix in ("", ".map"):
        try:
            os.unlink(_file(cache_dir, key, suffix))
        except FileNotFoundError:
            pass


def _write(target: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file beside ``target``, then rename over it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _encode_paths(paths: Sequence[str]) -> np.ndarray:
    """The paths as one UTF-8 byte array, NUL-separated; surrogatepass keeps any str (an
    undecodable file name's surrogate escapes included) exactly.

    Encoded ``CHUNK`` paths at a time: one join + encode of 1M paths is a single C call that
    holds the GIL for ~0.1 s (the window's GUI thread waits for it); chunks let it in between."""
    parts = [_SEP.join(paths[i:i + CHUNK]).encode("utf-8", "surrogatepass") for i in range(0, len(paths), CHUNK)]
    return np.frombuffer(_SEP.encode().join(parts), dtype=np.uint8)


def _decode_paths(array: np.ndarray) -> list[str]:
    """What ``_encode_paths`` made, decoded a megabyte at a time (split at a NUL byte, which
    UTF-8 uses for nothing else) for the same reason: in one call, 1M paths held the GIL 0.3-1.6 s.
    No copy of the whole array is made either (its 40 MB of fresh pages cost ~0.1 s, GIL held)."""
    paths: list[str] = []
    start, n = 0, len(array)
    while start <= n and n:
        end = _separator_after(array, start + DECODE_BYTES)
        paths.extend(array[start:end].tobytes().decode("utf-8", "surrogatepass").split(_SEP))
        start = end + 1
    return paths


def _separator_after(array: np.ndarray, start: int) -> int:
    """The position of the first NUL byte at or after ``start``, or ``len(array)``."""
    step = 1 << 14
    while start < len(array):
        found = np.flatnonzero(array[start:start + step] == 0)
        if len(found):
            return start + int(found[0])
        start += step
    return len(array)
