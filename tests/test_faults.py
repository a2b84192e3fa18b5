"""Fault injection (issue 8): ``clipscape encode`` killed with SIGKILL at ten random moments.

Each kill lands anywhere in a real encode (model loading, scanning, mid-batch, mid-commit); the
cache it leaves must be intact and hold only whole, correct batches, and a rerun must keep every
one of them and end with the cache a clean run makes. Disk-full at a random batch, followed by
a rerun, is ``tests/test_cli.py::test_disk_full_at_a_random_batch_is_one_line_and_a_rerun_completes``.

The encodes run in processes forked from one server that imported torch and open_clip once, so
ten kills cost seconds, not ten interpreter start-ups; the server runs no torch operation before
it forks (a forked copy of a torch thread pool would hang).
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clipscape.models.shapes_world import write_folder
from clipscape.models.store import DB_NAME

REPO = Path(__file__).resolve().parents[1]
BATCH = 4
IMAGES = 32
KILLS = 10

SERVER = r"""
import json, os, sys, time
import open_clip, torch  # imported once; every encode below is a fork of this process
import clipscape.models.store as store
from clipscape.models.cli import main

add_batch = store.EmbeddingStore.add_batch
def slowed(self, *args, **kwargs):  # a batch takes a while, as on a real model, so kills land mid-run
    add_batch(self, *args, **kwargs)
    time.sleep(0.05)
store.EmbeddingStore.add_batch = slowed

for line in sys.stdin:
    argv = json.loads(line)
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os._exit(main(argv))
    print(pid, flush=True)
    sys.stdin.readline()  # reaped only when the test says so: a pid it kills is never reused
    print(os.waitpid(pid, 0)[1], flush=True)
"""


class EncodeServer:
    """Forks ``clipscape encode`` runs on request; the test may SIGKILL them."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=REPO)

    def start(self, argv: list[str]) -> int:
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def reap(self) -> int:
        """The wait status of the last run (after it ended or was killed)."""
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def run(self, argv: list[str]) -> tuple[int, float]:
        """(exit status, seconds) of one run to its end."""
        started = time.monotonic()
        pid = self.start(argv)
        while not _ended(pid):
            time.sleep(0.01)
        return os.waitstatus_to_exitcode(self.reap()), time.monotonic() - started

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _ended(pid: int) -> bool:
    """Whether the forked run has exited (it stays a zombie until reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _rows(cache: Path) -> dict[bytes, np.ndarray]:
    """path → vector of every embedding row, after checking the database is intact."""
    if not (cache / DB_NAME).exists():
        return {}
    with sqlite3.connect(cache / DB_NAME) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        if con.execute("select 1 from sqlite_master where name = 'embeddings'").fetchone() is None:
            return {}  # killed before the schema's transaction committed: nothing was, and a rerun creates it
        rows = con.execute("select path, vector from embeddings").fetchall()
    assert len(rows) == len({p for p, _ in rows}), "a path is cached twice"
    return {bytes(p): np.frombuffer(v, np.float32) for p, v in rows}


def _same(rows: dict, reference: dict) -> None:
    assert rows.keys() <= reference.keys()
    for path, vector in rows.items():
        np.testing.assert_allclose(vector, reference[path], atol=1e-5, err_msg=os.fsdecode(path))


@pytest.mark.skipif(not hasattr(os, "fork") or not os.path.isdir("/proc"), reason="forks and reads /proc")
def test_kill_9_at_ten_random_moments_then_rerun_keeps_every_committed_row(tmp_path):
    folder = tmp_path / "photos"
    write_folder(folder, IMAGES, seed=3, size=96)

    def encode(cache: Path) -> list[str]:
        return ["encode", str(folder), "--model", "demo", "--device", "cpu", "--batch-size", str(BATCH),
                "--cache-dir", str(cache), "--quiet"]

    server = EncodeServer()
    try:
        assert server.run(encode(tmp_path / "warm-up"))[0] == 0  # first-run costs (lazy imports) out of the timing
        code, clean_seconds = server.run(encode(tmp_path / "clean"))
        assert code == 0
        reference = _rows(tmp_path / "clean")
        assert len(reference) == IMAGES
        rng = random.Random()
        landed = []
        for trial in range(KILLS):
            cache = tmp_path / f"killed-{trial}"
            pid = server.start(encode(cache))
            time.sleep(rng.uniform(0, clean_seconds))
            os.kill(pid, signal.SIGKILL)
            status = server.reap()
            rows = _rows(cache)  # intact, no duplicate, every vector right
            _same(rows, reference)
            assert len(rows) % BATCH == 0, f"trial {trial}: a batch was partly committed"
            landed.append(len(rows) if os.WIFSIGNALED(status) else "done")
            code, _ = server.run(encode(cache))  # the rerun
            assert code == 0
            final = _rows(cache)
            assert rows.keys() <= final.keys()  # every committed row kept …
            assert all(np.array_equal(final[p], v) for p, v in rows.items())  # … as it was, not re-encoded
            _same(final, reference)
            assert final.keys() == reference.keys()  # the cache a clean run makes
        # the kills landed at different stages, not all before the first batch or after the last
        print("clean run", round(clean_seconds, 2), "s; rows left by each kill:", landed)
        assert len(set(landed)) > 1, landed
    finally:
        server.close()
