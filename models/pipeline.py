"""The ingest pipeline: image files → decoded batches → embeddings, with the device kept busy.

``encoded_batches()`` is what the indexer iterates; it owns the decode pool and decides what
overlaps what. Decoding runs in threads (Pillow releases the GIL inside libjpeg and its
resizes), never in worker processes. The policy depends on where the model runs:

- On an accelerator (CUDA, MPS) ingest is bound by JPEG decoding, which scales with cores, so
  the pool gets every core and decodes a couple of batches ahead. The batches stay uint8 on
  the host (pinned on CUDA) and the encoder copies them without blocking and normalises them
  on the device (see ``Encoder.launch``). ``IN_FLIGHT`` batches are queued on the device at
  once: batch k+1 is launched before batch k's embeddings are fetched, so the device works
  while Python assembles the next batch and the store commits the last one.
- On a CPU the model and the decoders share the same cores, and overlapping them only makes
  them preempt each other (torch's threads wait at every barrier for a thread a decoder took
  the core from), so decoding and the forward pass take turns, each with every core.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np

from clipscape.models.images import ImageLoadError, load_rgb
from clipscape.models.scan import ImageFile, Skipped

if TYPE_CHECKING:
    from clipscape.models.encoder import Encoder, Preparer

IN_FLIGHT = 2
"""Batches queued on an accelerator at once: one computing while the next is copied in."""

Batch = tuple[list[ImageFile], "np.ndarray | None", list[Skipped]]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, else all)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def decode_workers(requested: int | None = None, cores: int | None = None) -> int:
    """How many decode threads to run: ``requested`` if given, else one per core.

    Every core whatever the device: on a CPU because decoding and the forward pass take turns,
    on an accelerator because decoding is then what limits the images per second (up to
    issue 12 an accelerator got at most 4 threads, which left most of a workstation idle).
    """
    if requested:
        return requested
    return max(1, cores or available_cores())


def in_flight(device: str) -> int:
    """Batches to keep queued on ``device``: 1 (synchronous) on a CPU, ``IN_FLIGHT`` elsewhere."""
    return 1 if device == "cpu" else IN_FLIGHT


def encoded_batches(todo: Sequence[ImageFile], encoder: "Encoder", batch_size: int,
                    workers: int | None = None, depth: int | None = None) -> Iterator[Batch]:
    """Yield (files, embeddings, skipped) per batch of ``todo``, in order.

    ``embeddings`` is a len(files)×D float32 array of unit rows, or None when every file of the
    batch failed to decode (those are in ``skipped`` with a reason). ``depth`` is how many
    batches are launched before the oldest is fetched (default: ``in_flight(encoder.device)``).
    Closing the iterator stops the decoders; launched but unyielded batches are dropped.
    """
    depth = depth or in_flight(encoder.device)
    batches = decoded_batches(todo, encoder, batch_size, workers)
    queued: deque = deque()
    try:
        for files, tensors, problems in batches:
            queued.append((files, _start(encoder, tensors, depth), problems))
            while len(queued) >= depth:
                yield _finish(encoder, *queued.popleft())
        while queued:
            yield _finish(encoder, *queued.popleft())
    finally:
        batches.close()


def _start(encoder: "Encoder", tensors: list, depth: int):
    """Hand one batch to the encoder: encoded at once when depth is 1, else only launched.

    The synchronous path goes through ``encode_images`` (the encoder's one public entry, which
    callers may wrap); launching is the same steps minus the final wait.
    """
    if not tensors:
        return None
    batch = encoder.host_batch(tensors)
    return encoder.encode_images(batch) if depth == 1 else encoder.launch(batch)


def _finish(encoder: "Encoder", files: list[ImageFile], started, problems: list[Skipped]) -> Batch:
    if started is not None and not isinstance(started, np.ndarray):
        started = encoder.collect(started)
    return files, started, problems


def decoded_batches(todo: Sequence[ImageFile], encoder: "Encoder", batch_size: int,
                    workers: int | None = None) -> Iterator[tuple[list[ImageFile], list, list[Skipped]]]:
    """Yield (files, prepared tensors, skipped) per batch, decoding in a thread pool.

    On an accelerator the pool decodes a couple of batches ahead of the one being assembled, so
    it never waits for the device; on a CPU it decodes one batch while the caller waits, then
    waits itself while the caller runs the forward pass (see the module docstring).
    """
    if not todo:
        return
    overlap = encoder.device != "cpu"
    workers = decode_workers(workers)
    lookahead = batch_size * 2 + 2 * workers if overlap else batch_size
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clipscape-decode")
    pending: deque[tuple[ImageFile, Future]] = deque()
    ahead = iter(todo)
    try:
        _fill(pending, ahead, pool, encoder, lookahead)
        while pending:
            files, tensors, problems = [], [], []
            while pending and len(files) + len(problems) < batch_size:
                file, future = pending.popleft()
                try:
                    tensors.append(future.result())
                    files.append(file)
                except ImageLoadError as e:
                    problems.append(Skipped(file.path, str(e)))
                if overlap:
                    _fill(pending, ahead, pool, encoder, lookahead)
            yield files, tensors, problems      # the caller runs the forward pass here
            _fill(pending, ahead, pool, encoder, lookahead)
    finally:  # on cancel, drop queued decodes and wait only for the few already running
        pool.shutdown(wait=True, cancel_futures=True)


def _fill(pending: deque, ahead: Iterable[ImageFile], pool: ThreadPoolExecutor, encoder: "Encoder",
          n: int) -> None:
    while len(pending) < n:
        file = next(ahead, None)
        if file is None:
            return
        pending.append((file, pool.submit(decode, file.path, encoder)))


def decode(path: str | bytes, encoder: "Encoder | Preparer"):
    """File (path or bytes) → the tensor ``encoder.prepare`` makes; any failure becomes ImageLoadError.

    ``encoder`` may be the model-free ``Preparer`` (the Ray decode tasks pass one).
    """
    image = load_rgb(path, min_side=encoder.input_size)
    try:
        return encoder.prepare(image)
    except Exception as e:  # a transform failing on an odd size is a property of the file, not a crash
        raise ImageLoadError(f"could not preprocess image: {e}") from e
