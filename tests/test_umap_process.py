"""UMAP in a child process: same map as in-process, progress arrives, cancelling kills and recovers."""
from __future__ import annotations

import numpy as np
import pytest

from clipscape.models.projection import umap_2d
from clipscape.models.umap_process import UmapProcess


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def server():
    """The same process-wide child the window uses, so the suite compiles UMAP's code once."""
    from clipscape.app.tasks import umap_server

    return umap_server()


def points(n=60, seed=1):
    x = np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_same_map_as_in_process_with_progress(server):
    seen = []
    coords = server.run(points(), seed=0, progress=lambda *a: seen.append(a))
    assert np.array_equal(coords, umap_2d(points(), seed=0))
    assert seen[0][0] == "neighbours" and seen[-1][0] == "layout" and seen[-1][1] == seen[-1][2]


def test_the_embeddings_go_over_in_raw_chunks_and_arrive_whole(server, monkeypatch):
    """Sent as many raw messages (not one pickle that holds the GIL): the same map all the same."""
    from clipscape.models import umap_process

    monkeypatch.setattr(umap_process, "PAYLOAD_CHUNK", 1000)   # 60×16 float32: 4 messages, the last short
    assert np.array_equal(server.run(points(), seed=0), umap_2d(points(), seed=0))
    conn_a, conn_b = __import__("multiprocessing").Pipe()
    umap_process._send_array(conn_a, np.zeros((0, 16), np.float32))
    assert umap_process._receive_array(conn_b, (0, 16)).shape == (0, 16)


def test_cancel_at_an_epoch_keeps_the_warm_child(server):
    pid = server._proc.pid
    seen = []

    def progress(stage, done, total):
        seen.append(done)
        if stage == "layout" and done > 0:
            raise Stop

    with pytest.raises(Stop):
        server.run(points(), progress=progress)
    assert server.running and server._proc.pid == pid
    assert np.array_equal(server.run(points(), seed=0), umap_2d(points(), seed=0))


def test_errors_in_the_child_become_exceptions(server):
    from clipscape.models.umap_process import UmapProcessError

    with pytest.raises(UmapProcessError, match="ValueError|Error"):
        server.run(np.zeros(40, np.float32))  # not N×D
    assert server.run(points(), seed=0).shape == (60, 2)


def test_check_cancels_while_the_child_reports_nothing_and_a_killed_child_is_replaced(monkeypatch):
    import clipscape.models.umap_process as umap_process

    # the child starts by importing umap (seconds, reporting nothing): too slow for a short abort wait
    monkeypatch.setattr(umap_process, "ABORT_WAIT_S", 0.05)
    server = UmapProcess()
    calls = []

    def check():
        calls.append(1)
        if len(calls) > 2:
            raise Stop

    try:
        server.start()  # busy importing and warming up: no progress messages come
        with pytest.raises(Stop):
            server.run(points(), check=check)
        assert len(calls) == 3 and not server.running  # still busy after ABORT_WAIT_S: killed
        assert server.run(points(4), seed=0).shape == (4, 2)  # below UMAP_MIN_POINTS: no compiling
        assert server.running
    finally:
        server.close()
    assert not server.running


def test_the_status_line_says_how_far_each_stage_is():
    from clipscape.app.tasks import MapProgress

    assert MapProgress("neighbours", 0, 500).text == "Map: finding neighbours…"
    assert MapProgress("neighbours", 16_000, 40_000).text == "Map: finding neighbours, 40 %"
    assert MapProgress("layout", 20, 200).text == "Map: UMAP layout, epoch 20 of 200"
    assert MapProgress("placing", 5, 60).text == "Map: placing the other images among the fitted ones, 5 of 60"
