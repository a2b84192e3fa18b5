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
from typing import Generator, Sequence, TypeVar

import numpy as np

from clipscape.models.encoder import Encoder
from clipscape.models.pipeline import encoded_batches
from clipscape.models.scan import ImageFile, Skipped, iter_scan
from clipscape.models.store import EmbeddingStore

T = TypeVar("T")


@dataclass
class Collection:
    """The images of one folder (or several) as the model sees them: paths + unit-length embeddings."""

    paths: list[str]
    embeddings: np.ndarray  # N×D float32, rows L2-normalised
    model_key: str = ""

    def __len__(self) -> int:
        return len(self.paths)

    def index_of(self, path: str | os.PathLike) -> int:
        """Row of ``path`` (absolute or as given); ValueError if it is not in the collection."""
        target = os.path.abspath(os.fspath(path))
        try:
            return self.paths.index(target)
        except ValueError:
            raise ValueError(f"{path} is not among the indexed images") from None


@dataclass
class IndexProgress:
    """Where an index run stands; ``stage`` is "scan", "encode" or "done"."""

    stage: str
    total: int = 0          # images found
    done: int = 0           # images handled so far (reused + embedded + skipped while encoding)
    embedded: int = 0
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


def index(paths: str | os.PathLike | Sequence[str | os.PathLike], encoder: Encoder, store: EmbeddingStore,
          *, batch_size: int = 32, decode_workers: int | None = None, include_hidden: bool = False,
          ) -> Generator[IndexProgress, None, Collection]:
    """Scan ``paths``, embed new or changed images, drop deleted ones from the cache; return the Collection."""
    start = time.perf_counter()
    roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    roots = [os.path.abspath(os.fspath(p)) for p in roots]
    files, skipped = [], []  # iter_scan raises FileNotFoundError for a missing root
    for item in iter_scan(roots, include_hidden=include_hidden):
        (files if isinstance(item, ImageFile) else skipped).append(item)
    progress = IndexProgress("scan", total=len(files), skipped=skipped)
    yield progress

    model_id = store.model_id(encoder.key, encoder.identity, encoder.dim)
    keep = {f.path for f in files}
    for root in roots:
        if os.path.isdir(root):
            store.prune(model_id, root, keep)
    cached, todo = store.partition(model_id, files)
    progress.stage, progress.reused, progress.done = "encode", len(cached), len(cached)
    failed: set[str] = set()
    for batch_files, embeddings, problems in encoded_batches(todo, encoder, batch_size, decode_workers):
        if batch_files:
            store.add_batch(model_id, batch_files, embeddings)
        failed.update(p.path for p in problems)
        progress.skipped.extend(problems)
        progress.embedded += len(batch_files)
        progress.done += len(batch_files) + len(problems)
        progress.seconds = time.perf_counter() - start
        yield progress

    good = [f.path for f in files if f.path not in failed]
    collection = Collection(good, store.load(model_id, good), encoder.key)
    progress.stage, progress.seconds = "done", time.perf_counter() - start
    yield progress
    return collection


def cached(paths: str | os.PathLike | Sequence[str | os.PathLike], encoder: Encoder, store: EmbeddingStore,
           *, include_hidden: bool = False) -> Collection:
    """The Collection of the images under ``paths`` that the cache already holds, encoding nothing.

    After a cancelled index() run this is what was finished, so it can be explored at once.
    """
    roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = [f for f in iter_scan([os.path.abspath(os.fspath(p)) for p in roots], include_hidden=include_hidden)
             if isinstance(f, ImageFile)]
    model_id = store.model_id(encoder.key, encoder.identity, encoder.dim)
    done, _ = store.partition(model_id, files)
    good = [f.path for f in done]
    return Collection(good, store.load(model_id, good), encoder.key)


def run(gen: Generator[T, None, "Collection"], on_progress=None):
    """Drive a progress generator to the end, calling ``on_progress(item)``; return its return value."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(item)
