"""Turn folders of images into a Collection of embeddings, encoding only what the cache lacks.

``index()`` is a generator: it yields an IndexProgress after the scan and after every batch, and
returns the Collection when done (``collection = yield from index(...)``, or see ``run()``).
Stopping the iteration cancels the job; every finished batch is already committed to the store, so
the next run picks up where this one stopped.

Decoding, batching and the forward pass are models.pipeline's: on a GPU decoding runs on every
core ahead of the device and batches are in flight while the store commits; on a CPU decode and
forward take turns, each using every core.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Generator, Iterable, Sequence, TypeVar

import numpy as np

from clipscape.models import snapshot as snapshots
from clipscape.models.collection import Collection, drop, same_paths  # Collection re-exported: app/ imports it from here
from clipscape.models.encoder import Encoder
from clipscape.models.fingerprint import fingerprints
from clipscape.models.gc_policy import paused_gc
from clipscape.models.pipeline import encoded_batches
from clipscape.models.scan import LINK_OUT, ImageFile, Skipped, iter_scan
from clipscape.models.store import EmbeddingStore

__all__ = ["Collection", "IndexProgress", "Kept", "cached", "forget_empty", "index", "run"]

T = TypeVar("T")
FINGERPRINT_CHUNK = 1024  # new files fingerprinted (and looked up) at a time, so encoding starts at once


@dataclass(frozen=True)
class Kept:
    """Cached embeddings under ``path`` that were kept although the scan did not find their files."""

    path: str
    rows: int
    reason: str  # "unreadable": the scan could not read it; "empty": the folder came back empty;
    #              "link out": a folder link out of the scanned folders, not followed


@dataclass
class IndexProgress:
    """Where an index run stands; ``stage`` is "reopen" (the snapshot read, before the scan; only
    with ``use_snapshot``), "scan", "encode" or "done"."""

    stage: str
    total: int = 0          # images found
    done: int = 0           # images handled so far (reused + embedded + skipped while encoding)
    embedded: int = 0
    reused: int = 0         # from the cache, including the recognised
    recognised: int = 0     # new paths whose content the cache knew (moved, renamed, copied)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    kept: list[Kept] = field(default_factory=list)  # cached rows the scan could not prove gone
    last: Collection | None = None  # stage "reopen": the folders' last collection (their snapshot), if any

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def index(paths: str | os.PathLike | Sequence[str | os.PathLike], encoder: Encoder, store: EmbeddingStore,
          *, batch_size: int = 32, decode_workers: int | None = None, include_hidden: bool = False,
          follow_links_out: bool = False, prune: bool = True, prune_missing: bool = False,
          use_snapshot: bool = True) -> Generator[IndexProgress, None, Collection]:
    """Scan ``paths``, embed new or changed images, drop deleted ones from the cache; return the Collection.

    With ``prune`` (the default) the cache forgets the files the scan proved gone, and only
    those: nothing at or under a path the scan reported as unreadable, and nothing of a root
    folder that came back empty while the cache holds rows for it (an unmounted drive, an
    unplugged disk) unless ``prune_missing``. What was kept is listed in ``progress.kept``.
    ``prune=False`` deletes nothing (read-only commands). A folder link out of ``paths`` is
    followed only with ``follow_links_out`` (see models/scan.py); its cached rows are kept.

    With ``use_snapshot`` the files whose path, size and mtime equal the last result's for the
    same folders and model (models/snapshot.py) take their embeddings from that snapshot, and
    only the others are looked up in the store; the result is saved as the new snapshot when it
    differs. The returned collection is the same either way (tests/test_snapshot.py).
    """
    start = time.perf_counter()
    roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    roots = [os.path.abspath(os.fspath(p)) for p in roots]
    key = snapshots.snapshot_key(encoder.key, roots, include_hidden=include_hidden, follow_links_out=follow_links_out)
    if use_snapshot:   # first, so that a window can show the last collection while the scan runs
        snap = snapshots.load(store.cache_dir, key, encoder.dim)
        last = Collection(snap.paths, snap.embeddings, encoder.key, snap.token) if snap and snap.paths else None
        yield IndexProgress("reopen", last=last)
        del last
    else:
        snap = None
    files, skipped = [], []  # iter_scan raises FileNotFoundError for a missing root
    with paused_gc():
        for item in iter_scan(roots, include_hidden=include_hidden, follow_links_out=follow_links_out):
            (files if isinstance(item, ImageFile) else skipped).append(item)
    progress = IndexProgress("scan", total=len(files), skipped=skipped)
    yield progress

    model_id = store.model_id(encoder.key, encoder.identity, encoder.dim)
    with paused_gc():
        match = snapshots.match(snap, files)
        rest = files if snap is None else [files[i] for i in np.flatnonzero(match.rows < 0)]
        whole = snap is None or 4 * len(rest) > len(files)   # read every row under the roots
        unseen: list[bytes] | None = [] if whole and len(rest) == len(files) else None
        cached, todo = store.partition(model_id, rest, under=roots if whole else None, unseen=unseen)
        drop(cached)   # only ``todo`` is needed; freed in steps (see drop)
    progress.stage, progress.reused = "encode", len(files) - len(todo)
    progress.done = progress.reused
    encode = _Encoding(encoder, store, model_id, batch_size, decode_workers, progress, start)
    scan_skipped = list(skipped)
    yield from encode(todo)
    # after encoding: a moved file finds its embedding under its old path first. Not needed when
    # the last pruned result's files are all still there: the store then holds no row to drop.
    pruned = prune and snap is not None and snap.pruned and match.covered
    if prune and not pruned:
        progress.kept = _prune(store, model_id, roots, files, scan_skipped, prune_missing, unseen)
        pruned = not progress.kept

    good = (np.ones(len(files), bool) if not encode.failed else
            np.fromiter((f.path not in encode.failed for f in files), bool, len(files)))
    paths = [f.path for f in files] if good.all() else [f.path for f, ok in zip(files, good) if ok]
    drop(files)   # the scanned tuples and their numbers (~130 MB at 1M), before the vectors are read
    with paused_gc():
        found, embeddings = _load(store, model_id, paths, match.rows[good], snap, roots)
    if len(found) < len(paths):  # another process deleted rows after partition: encode those again
        missing = [paths[i] for i in np.setdiff1d(np.arange(len(paths)), found)]
        vanished = _restat(missing)  # those whose files are gone drop out, as the other process decided
        progress.total -= len(missing) - len(vanished)
        progress.reused -= len(missing)
        progress.done -= len(missing)
        yield from encode(vanished)
        with paused_gc():
            found, embeddings = _load(store, model_id, paths, np.full(len(paths), -1, np.int64), None, roots)
    if len(found) < len(paths):
        paths = [paths[i] for i in found]
    token = snap.token if snap is not None else ""
    unchanged = (snap is not None and embeddings is snap.embeddings and (snap.pruned or not pruned)
                 and same_paths(paths, snap.paths))
    if unchanged:   # the snapshot's list, which a window shows already: the scan's is freed here
        scanned, paths = paths, snap.paths
        drop(scanned)
    if use_snapshot and not unchanged:
        stamps = match.stamps[good][found]
        try:
            token = snapshots.save(store.cache_dir, key, paths, stamps, embeddings, pruned)
        except OSError:  # a full disk or a read-only cache folder: the store is still the truth
            token = ""
    collection = Collection(paths, embeddings, encoder.key, token)
    progress.stage, progress.seconds = "done", time.perf_counter() - start
    yield progress
    return collection


def _load(store: EmbeddingStore, model_id: int, paths: list[str], rows: np.ndarray,
          snap: snapshots.Snapshot | None, roots: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``paths`` that have an embedding, those embeddings): from the snapshot where
    ``rows`` names its row, else from the store. The snapshot's own array when it is all of it."""
    need = np.flatnonzero(rows < 0)
    if snap is not None and not need.size:
        if len(rows) == len(snap.paths) and np.array_equal(rows, np.arange(len(rows))):
            return np.arange(len(rows)), snap.embeddings
        return np.arange(len(rows)), snap.embeddings[rows]
    asked = paths if len(need) == len(paths) else [paths[i] for i in need]
    under = roots if 4 * len(need) > len(paths) else None
    hit, vectors = store.load_found(model_id, asked, under=under)
    if len(need) == len(paths):
        return np.asarray(hit, np.int64), vectors
    have = rows >= 0
    embeddings = np.empty((len(paths), snap.embeddings.shape[1]), np.float32)
    embeddings[have] = snap.embeddings[rows[have]]
    embeddings[need[hit]] = vectors
    have[need[hit]] = True
    found = np.flatnonzero(have)
    return found, embeddings if len(found) == len(paths) else embeddings[found]


class _Encoding:
    """Encodes lists of files batch by batch into the store, yielding ``progress`` after each."""

    def __init__(self, encoder: Encoder, store: EmbeddingStore, model_id: int, batch_size: int,
                 decode_workers: int | None, progress: IndexProgress, start: float) -> None:
        self.encoder, self.store, self.model_id = encoder, store, model_id
        self.batch_size, self.decode_workers = batch_size, decode_workers
        self.progress, self.start = progress, start
        self.failed: set[str] = set()  # paths that could not be decoded

    def __call__(self, todo: Sequence[ImageFile]) -> Generator[IndexProgress, None, None]:
        """Encode ``todo``, a chunk at a time: first the files whose content the cache already
        knows under another path (moved, renamed, copied, touched) take that embedding, then the
        rest is encoded with its fingerprints stored for next time."""
        for start in range(0, len(todo), FINGERPRINT_CHUNK):
            yield from self._chunk(todo[start:start + FINGERPRINT_CHUNK])

    def _chunk(self, todo: Sequence[ImageFile]) -> Generator[IndexProgress, None, None]:
        progress = self.progress
        prints = fingerprints(todo, self.decode_workers or 4)
        reused = {f.path for f in self.store.reuse(self.model_id, todo, prints)}
        if reused:
            progress.reused += len(reused)
            progress.recognised += len(reused)
            progress.done += len(reused)
            progress.seconds = time.perf_counter() - self.start
            yield progress
        print_of = {f.path: fp for f, fp in zip(todo, prints)}
        rest = [f for f in todo if f.path not in reused]
        if not rest:
            return  # nothing to encode: the model is not needed (a lazy one is not even built)
        for batch_files, embeddings, problems in encoded_batches(rest, self.encoder, self.batch_size,
                                                                 self.decode_workers):
            if batch_files:
                self.store.add_batch(self.model_id, batch_files, embeddings, [print_of[f.path] for f in batch_files])
            self.failed.update(p.path for p in problems)
            progress.skipped.extend(problems)
            progress.embedded += len(batch_files)
            progress.done += len(batch_files) + len(problems)
            progress.seconds = time.perf_counter() - self.start
            yield progress


def _restat(paths: Iterable[str]) -> list[ImageFile]:
    """The files among ``paths`` that still exist, with their size and mtime as they are now."""
    files = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue  # deleted since the scan: the other process was right to forget it
        files.append(ImageFile(path, info.st_size, info.st_mtime_ns))
    return files


def _prune(store: EmbeddingStore, model_id: int, roots: Sequence[str], files: Sequence[ImageFile],
           skipped: Sequence[Skipped], prune_missing: bool, unseen: list[bytes] | None = None) -> list[Kept]:
    """Delete the rows of files the scan proved gone under each root folder; return what was kept.

    Every skipped path is spared (an unreadable folder's files were not seen, a file that could
    not be stat'ed still exists). A root with no image found while the cache has rows for it
    is left whole unless ``prune_missing``: one unplugged disk must not cost hours of encoding.
    ``unseen``: the rows under the roots that partition found no scanned file for (then only
    those are candidates, and the rows are not read again).
    """
    keep = {f.path for f in files} if unseen is None else ()
    spare = [s.path for s in skipped]
    why = {s.path: "link out" if s.reason.startswith(LINK_OUT) else "unreadable" for s in skipped}
    kept: list[Kept] = []
    for root in roots:
        if not os.path.isdir(root):
            continue
        inside = root.rstrip(os.sep) + os.sep
        if not prune_missing and not any(f.path.startswith(inside) for f in files):
            rows = store.count_under(model_id, root)
            if rows:
                kept.append(Kept(root, rows, "empty"))
                continue
        for path in spare:
            if path == root or path.startswith(inside):
                rows = store.count_under(model_id, path)
                if rows:
                    kept.append(Kept(path, rows, why[path]))
        store.prune(model_id, root, keep, spare, unseen=unseen)
    return kept


def forget_empty(root: str | os.PathLike, encoder: Encoder, store: EmbeddingStore, *,
                 follow_links_out: bool = False) -> int:
    """Forget the cached rows of a root folder the user confirmed is gone; return how many.

    ``index`` keeps the rows of a root that came back empty (``Kept(reason="empty")``) until
    the user says the images were deleted. The folder is scanned again first, so rows are only
    deleted for files that scan, too, proves gone: a drive mounted again in the meantime loses
    nothing, and an unreadable sub-folder still keeps its rows.
    """
    root = os.path.abspath(os.fspath(root))
    files, skipped = [], []
    try:
        for item in iter_scan([root], follow_links_out=follow_links_out):
            (files if isinstance(item, ImageFile) else skipped).append(item)
    except FileNotFoundError:
        return 0  # not even the folder is there: nothing was proved gone
    model_id = store.model_id(encoder.key, encoder.identity, encoder.dim)
    before = store.count_under(model_id, root)
    _prune(store, model_id, [root], files, skipped, prune_missing=True)
    return before - store.count_under(model_id, root)


def cached(paths: str | os.PathLike | Sequence[str | os.PathLike], encoder: Encoder, store: EmbeddingStore,
           *, include_hidden: bool = False, follow_links_out: bool = False) -> Collection:
    """The Collection of the images under ``paths`` that the cache already holds, encoding nothing.

    After a cancelled index() run this is what was finished, so it can be explored at once.
    """
    roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    roots = [os.path.abspath(os.fspath(p)) for p in roots]
    model_id = store.model_id(encoder.key, encoder.identity, encoder.dim)
    with paused_gc():
        files = [f for f in iter_scan(roots, include_hidden=include_hidden, follow_links_out=follow_links_out)
                 if isinstance(f, ImageFile)]
        done, _ = store.partition(model_id, files, under=roots)
        good = [f.path for f in done]
        # rows another process deleted meanwhile drop out
        found, embeddings = store.load_found(model_id, good, under=roots)
    return Collection([good[i] for i in found], embeddings, encoder.key)


def run(gen: Generator[T, None, "Collection"], on_progress=None):
    """Drive a progress generator to the end, calling ``on_progress(item)``; return its return value."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(item)
