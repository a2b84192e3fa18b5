"""UMAP in a child process: same map as in-process, progress arrives, cancelling kills and recovers."""
from __future__ import annotations

import numpy as np
import pytest

from models.projection import umap_2d
from models.umap_process import UmapProcess


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def server():
    """The same process-wide child the window uses, so the suite compiles UMAP's code once."""
    from app.tasks import umap_server

    return umap_server()


def points(n=60, seed=1):
    x = np.random.default_rng(seed).normal(size=(n, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_same_map_as_in_process_with_progress(server):
    seen = []
    coords = server.run(points(), seed=0, progress=lambda *a: seen.append(a))
    assert np.array_equal(coords, umap_2d(points(), seed=0))
    assert seen[0][0] == "neighbours" and seen[-1][0] == "layout" and seen[-1][1] == seen[-1][2]


def test_cancel_kills_the_child_and_the_next_run_works():
    server = UmapProcess()  # its own child: killing the shared one would make others recompile

    def progress(stage, done, total):
        raise Stop

    try:
        with pytest.raises(Stop):
            server.run(points(), progress=progress)
        assert not server.running
        assert server.run(points(4), seed=0).shape == (4, 2)  # below UMAP_MIN_POINTS: no compiling
        assert server.running
    finally:
        server.close()
    assert not server.running


def test_errors_in_the_child_become_exceptions(server):
    from models.umap_process import UmapProcessError

    with pytest.raises(UmapProcessError, match="ValueError|Error"):
        server.run(np.full((40, 4), np.nan, np.float32))
    assert server.run(points(10), seed=0).shape == (10, 2)
