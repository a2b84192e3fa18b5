"""UMAP in a child process, for callers (the desktop window) whose other threads must stay smooth.

In a thread, UMAP's first run holds the GIL for 150–500 ms at a time while numba compiles its
loops (measured: 10–20 s of compiling on this 2-core machine), which freezes a GUI thread for
as long. A child process has its own GIL; it is started once and kept, so the compiling happens
once per session (``warm_up`` right after start does it before the user needs a map). Cancel
stops the run at the child's next epoch and keeps the child warm; a child that does not stop
within ABORT_WAIT_S (busy finding neighbours) is killed, and a fresh one starts on the next run.

The child is started with the "spawn" method (no fork of a process that has threads) and runs
``projection.umap_2d``, so results are identical to calling it in-process.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any, Callable

import numpy as np

from clipscape.models.projection import Progress, umap_2d

POLL_S = 0.05
ABORT_WAIT_S = 2.0  # a cancelled run gets this long to stop at an epoch before the child is killed


class UmapProcessError(RuntimeError):
    """The UMAP child failed or died; the message says why."""


class UmapProcess:
    """One long-lived UMAP child process; ``run`` blocks the calling (worker) thread, not the GIL."""

    def __init__(self) -> None:
        self._lock = threading.RLock()    # one run (and one start) at a time
        self._proc: Any = None
        self._conn: Any = None
        self._cancel: Any = None

    def start(self, warm_up: bool = True) -> None:
        """Start the child if it is not running (cheap: the child imports UMAP on its own time)."""
        with self._lock:
            self._start(warm_up)

    def _start(self, warm_up: bool) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._cancel = ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(child, self._cancel), name="clipscape-umap", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if warm_up:
            self._conn.send(("warm-up", None, None))

    def run(self, embeddings: np.ndarray, seed: int | None = 0, progress: Progress | None = None,
            check: Callable[[], None] | None = None) -> np.ndarray:
        """``umap_2d(embeddings, seed)`` in the child.

        An exception raised by ``progress`` or by ``check`` (called every POLL_S, also while UMAP
        is busy finding neighbours and reports nothing) kills the run and propagates.
        """
        with self._lock:
            self._start(warm_up=False)
            data = np.ascontiguousarray(embeddings, dtype=np.float32)
            self._conn.send(("umap", data.shape, seed))
            _send_array(self._conn, data)
            try:
                return self._receive(progress, check)
            except UmapProcessError:  # the run failed, or the child died; a live child is fine
                if not self.running:
                    self._kill()
                raise
            except BaseException:     # cancelled by progress/check
                self._abort()
                raise

    def _abort(self) -> None:
        """Stop the run in the child at its next epoch and keep the (warm) child; kill it if it is slow to stop."""
        if not self.running:
            return self._kill()
        self._cancel.set()
        deadline = time.monotonic() + ABORT_WAIT_S
        try:
            while time.monotonic() < deadline:
                if self._conn.poll(POLL_S) and self._conn.recv()[0] in ("cancelled", "result", "error"):
                    self._cancel.clear()
                    return None
        except (EOFError, OSError):
            pass
        self._kill()

    def _receive(self, progress: Progress | None, check: Callable[[], None] | None) -> np.ndarray:
        while True:
            if check is not None:
                check()
            if not self._conn.poll(POLL_S):
                if not self._proc.is_alive():
                    raise UmapProcessError(f"the UMAP process died (exit code {self._proc.exitcode})")
                continue
            try:
                kind, *payload = self._conn.recv()
            except (EOFError, OSError) as e:
                raise UmapProcessError(f"the UMAP process died ({e})") from e
            if kind == "progress" and progress is not None:
                progress(*payload)
            elif kind == "result":
                return payload[0]
            elif kind == "error":
                raise UmapProcessError(payload[0])

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = self._cancel = None  # dropping the Event frees its semaphore

    def close(self) -> None:
        """Stop the child: closing the pipe ends its loop; killed if it is busy with a run."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(1.0)
        self._kill()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()


class _Cancelled(Exception):
    pass


PAYLOAD_CHUNK = 1 << 22   # bytes of the embeddings per pipe message


def _send_array(conn, data: np.ndarray) -> None:
    """Send a float32 array's bytes as raw messages of PAYLOAD_CHUNK bytes.

    Pickled whole, 1M×64 embeddings were one 0.34 s C call holding the GIL (the window stopped for
    as long); raw chunks are written by os.write, which lets the GIL go."""
    view = memoryview(data.reshape(-1).view(np.uint8))
    for start in range(0, len(view), PAYLOAD_CHUNK):
        conn.send_bytes(view[start:start + PAYLOAD_CHUNK])


def _receive_array(conn, shape: tuple[int, ...]) -> np.ndarray:
    """The array ``_send_array`` sent, read into place."""
    data = np.empty(shape, np.float32)
    view, start = memoryview(data.reshape(-1).view(np.uint8)), 0
    while start < len(view):
        start += conn.recv_bytes_into(view[start:])
    return data


def _serve(conn, cancel) -> None:
    """The child's loop: answer ("warm-up", None, None) and ("umap", shape, seed) requests (the
    embeddings follow the latter as raw chunks, see _send_array) until the pipe closes.

    ``cancel`` (an Event the parent sets) stops a run at its next progress report.
    """
    def report(stage: str, done: int, total: int) -> None:
        if cancel.is_set():
            raise _Cancelled
        conn.send(("progress", stage, done, total))

    while True:
        try:
            kind, shape, seed = conn.recv()
            embeddings = _receive_array(conn, shape) if kind == "umap" else None
        except (EOFError, OSError):
            return
        try:
            if kind == "warm-up":
                rng = np.random.default_rng(0)
                umap_2d(rng.normal(size=(64, 8)).astype(np.float32), seed=0)  # the spectral-start path
                continue
            conn.send(("result", umap_2d(embeddings, seed=seed, progress=report)))
        except _Cancelled:
            conn.send(("cancelled",))
        except Exception as e:  # noqa: BLE001 - the parent turns this into a message
            conn.send(("error", f"{type(e).__name__}: {e}"))
