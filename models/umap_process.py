"""UMAP in a child process, for callers (the desktop window) whose other threads must stay smooth.

In a thread, UMAP's first run holds the GIL for 150–500 ms at a time while numba compiles its
loops (measured: 10–20 s of compiling on this 2-core machine), which freezes a GUI thread for
as long. A child process has its own GIL; it is started once and kept, so the compiling happens
once per session (``warm_up`` right after start does it before the user needs a map), and
cancelling a run is instant: the child is killed and a fresh one starts on the next request.

The child is started with the "spawn" method (no fork of a process that has threads) and runs
``projection.umap_2d``, so results are identical to calling it in-process.
"""
from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import numpy as np

from models.projection import Progress, umap_2d

POLL_S = 0.05


class UmapProcessError(RuntimeError):
    """The UMAP child failed or died; the message says why."""


class UmapProcess:
    """One long-lived UMAP child process; ``run`` blocks the calling (worker) thread, not the GIL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()     # one run at a time through the pipe
        self._proc: Any = None
        self._conn: Any = None

    def start(self, warm_up: bool = True) -> None:
        """Start the child if it is not running (cheap: the child imports UMAP on its own time)."""
        if self._proc is not None and self._proc.is_alive():
            return
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), name="clipscape-umap", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if warm_up:
            self._conn.send(("warm-up", None, None))

    def run(self, embeddings: np.ndarray, seed: int | None = 0, progress: Progress | None = None) -> np.ndarray:
        """``umap_2d(embeddings, seed)`` in the child; an exception raised by ``progress`` kills the run."""
        with self._lock:
            self.start(warm_up=False)
            self._conn.send(("umap", np.ascontiguousarray(embeddings, dtype=np.float32), seed))
            try:
                return self._receive(progress)
            except BaseException:
                self._kill()
                raise

    def _receive(self, progress: Progress | None) -> np.ndarray:
        while True:
            if not self._conn.poll(POLL_S):
                if not self._proc.is_alive():
                    raise UmapProcessError(f"the UMAP process died (exit code {self._proc.exitcode})")
                continue
            kind, *payload = self._conn.recv()
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
        self._proc = self._conn = None

    def close(self) -> None:
        """Stop the child: closing the pipe ends its loop; killed if it is busy with a run."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(1.0)
        self._kill()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()


def _serve(conn) -> None:
    """The child's loop: answer ("warm-up" | "umap", embeddings, seed) requests until the pipe closes."""
    while True:
        try:
            kind, embeddings, seed = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if kind == "warm-up":
                rng = np.random.default_rng(0)
                umap_2d(rng.normal(size=(32, 8)).astype(np.float32), seed=0)
                continue
            report = lambda stage, done, total: conn.send(("progress", stage, done, total))  # noqa: E731
            conn.send(("result", umap_2d(embeddings, seed=seed, progress=report)))
        except Exception as e:  # noqa: BLE001 - the parent turns this into a message
            conn.send(("error", f"{type(e).__name__}: {e}"))
