"""Tests for models.projection: PCA and UMAP maps of unit embeddings, scaled into [-1, 1].

UMAP fits cost seconds each (the first one also compiles numba code), so the UMAP tests share a
few fits through module-scoped fixtures.
"""
from __future__ import annotations

import numpy as np
import pytest

from clipscape.models.projection import (
    LAYOUT_REPORTS, UMAP_MIN_POINTS, normalise, pca_2d, project, umap_2d, umap_epochs,
)

DIM = 64
SIZES = (0, 1, 2, 3, 4, 5, 6, 12, 40)


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def three_clusters(per_cluster: int = 20, spread: float = 0.15, seed: int = 1):
    """Unit vectors around three random (nearly orthogonal) directions; (vectors, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(3), per_cluster)
    x = centres[labels] + spread * rng.standard_normal((len(labels), DIM)) / np.sqrt(DIM)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def assert_valid_map(coords: np.ndarray, n: int) -> None:
    assert coords.shape == (n, 2)
    assert coords.dtype == np.float32
    assert np.isfinite(coords).all()
    assert np.all(np.abs(coords) <= 1.0)
    if n >= 2:  # distinct points: scaled so the farthest coordinate is exactly ±1, centred
        assert np.abs(coords).max() == pytest.approx(1.0)
        np.testing.assert_allclose(coords.mean(axis=0), 0.0, atol=1e-6)
        assert len({tuple(c) for c in coords.round(4)}) == n, "distinct inputs collapsed together"


def assert_clusters_apart(coords: np.ndarray, labels: np.ndarray) -> None:
    """Every point is nearer its own cluster's centroid than any other cluster's."""
    centroids = np.stack([coords[labels == k].mean(axis=0) for k in range(3)])
    distances = np.linalg.norm(coords[:, None, :] - centroids[None], axis=2)
    nearest = distances.argmin(axis=1)
    assert (nearest == labels).all(), f"{(nearest != labels).sum()} points nearer another cluster"


# --- PCA --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", SIZES)
def test_pca_any_size(n):
    coords = pca_2d(unit_vectors(n))
    assert_valid_map(coords, n)
    if n == 1:
        np.testing.assert_array_equal(coords, [[0.0, 0.0]])


def test_pca_matches_the_leading_components_up_to_sign_and_scale():
    x = unit_vectors(40).astype(np.float64)
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    coords = pca_2d(x).astype(np.float64)
    for axis in range(2):  # same direction, possibly flipped, one common scale
        r = np.corrcoef(coords[:, axis], expected[:, axis])[0, 1]
        assert abs(r) == pytest.approx(1.0, abs=1e-5)
    ratio = np.abs(coords).max() / np.abs(expected).max()
    np.testing.assert_allclose(np.abs(coords), np.abs(expected) * ratio, atol=1e-5)


def test_pca_is_deterministic_and_handles_identical_points():
    x = unit_vectors(12)
    np.testing.assert_array_equal(pca_2d(x), pca_2d(x.copy()))
    same = np.repeat(x[:1], 5, axis=0)
    np.testing.assert_array_equal(pca_2d(same), np.zeros((5, 2), np.float32))


def test_pca_keeps_clusters_apart():
    x, labels = three_clusters()
    coords = pca_2d(x)
    assert_valid_map(coords, len(x))
    assert_clusters_apart(coords, labels)


def test_normalise_centres_and_scales():
    coords = normalise(np.array([[2.0, 10.0], [3.0, 14.0], [4.0, 12.0]]))
    np.testing.assert_allclose(coords, [[-0.5, -1.0], [0.0, 1.0], [0.5, 0.0]])
    assert normalise(np.zeros((0, 2))).shape == (0, 2)


# --- UMAP -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def umap_maps():
    """UMAP of every size in SIZES, fitted once for the module: {n: (input, coords)}."""
    maps = {}
    for n in SIZES:
        x = unit_vectors(n, seed=n)
        maps[n] = (x, umap_2d(x, seed=0))
    return maps


@pytest.mark.parametrize("n", SIZES)
def test_umap_any_size(n, umap_maps):
    x, coords = umap_maps[n]
    assert_valid_map(coords, n)
    if n < UMAP_MIN_POINTS:  # too few points for a neighbour graph: the PCA map
        np.testing.assert_array_equal(coords, pca_2d(x))
    else:  # a real UMAP fit, not the PCA fallback
        assert not np.allclose(coords, pca_2d(x), atol=1e-2)


def test_umap_same_seed_same_map(umap_maps):
    x, coords = umap_maps[40]
    np.testing.assert_array_equal(umap_2d(x, seed=0), coords)
    assert not np.allclose(umap_2d(x, seed=1), coords, atol=1e-3)  # the seed matters


def test_umap_keeps_clusters_apart():
    x, labels = three_clusters()
    coords = umap_2d(x, seed=0)
    assert_valid_map(coords, len(x))
    assert_clusters_apart(coords, labels)


# --- UMAP progress and cancelling ----------------------------------------------------------------

class Cancelled(Exception):
    """What a GUI's progress callback raises to stop a run."""


@pytest.fixture
def epochs_run(monkeypatch):
    """A list that grows by one for every layout epoch UMAP actually computes."""
    import umap.layouts

    run = []
    one_epoch = umap.layouts._get_optimize_layout_euclidean_single_epoch_fn(False)

    def counted(*args):
        run.append(None)
        return one_epoch(*args)

    monkeypatch.setattr(umap.layouts, "_get_optimize_layout_euclidean_single_epoch_fn",
                        lambda parallel=False: counted)
    return run


def test_umap_epochs_match_umaps_own_choice():
    assert (umap_epochs(5), umap_epochs(10_000), umap_epochs(10_001)) == (500, 500, 200)


def test_umap_progress_reports_every_stage_and_leaves_the_map_unchanged(umap_maps, epochs_run):
    x, coords = umap_maps[40]
    calls = []
    result = project(x, "umap", seed=0, progress=lambda *call: calls.append(call))
    np.testing.assert_array_equal(result, coords)  # same seeded map as without a callback
    total = umap_epochs(len(x))
    assert len(epochs_run) == total
    assert calls[0] == ("neighbours", 0, total)
    layout = calls[1:]
    assert {stage for stage, _, _ in layout} == {"layout"}
    assert {t for _, _, t in layout} == {total}
    done = [d for _, d, _ in layout]
    assert done[0] == 0 and done[-1] == total and done == sorted(set(done))
    assert len(layout) <= LAYOUT_REPORTS


def test_umap_progress_raising_cancels_the_run_and_the_next_run_works(umap_maps, epochs_run):
    import numba
    import umap.layouts

    x, coords = umap_maps[40]
    progress_bar, threads = umap.layouts.tqdm, numba.get_num_threads()
    calls = []

    def cancel_at_epoch_10(stage, done, total):
        calls.append(done)
        if done >= 10:
            raise Cancelled

    with pytest.raises(Cancelled):
        umap_2d(x, seed=0, progress=cancel_at_epoch_10)
    assert calls[-1] >= 10 and len([d for d in calls if d >= 10]) == 1  # not called again
    assert len(epochs_run) <= calls[-1] + 1, "epochs went on after the callback raised"
    assert umap.layouts.tqdm is progress_bar and numba.get_num_threads() == threads
    epochs_run.clear()
    np.testing.assert_array_equal(umap_2d(x, seed=0), coords)
    assert len(epochs_run) == umap_epochs(len(x))


def test_umap_progress_raising_before_the_layout_skips_the_fit(epochs_run):
    def cancel(stage, done, total):
        raise Cancelled(stage)

    with pytest.raises(Cancelled, match="neighbours"):
        umap_2d(unit_vectors(40), seed=0, progress=cancel)
    assert epochs_run == []


def test_from_4096_points_umap_gets_exact_neighbours_found_with_progress_and_cancel(monkeypatch, epochs_run):
    """Past EXACT_NEIGHBOURS_MAX (lowered here) the graph is models/neighbors.py's exact one, found
    with progress and cancellable; umap-learn's own search (pynndescent, compiled per process) never runs."""
    import umap.umap_

    from clipscape.models import projection

    class NoSearch:
        def __init__(self, *args, **kwargs):
            raise AssertionError("pynndescent ran")

    monkeypatch.setattr(projection, "EXACT_NEIGHBOURS_MAX", 50)
    monkeypatch.setattr(umap.umap_, "NNDescent", NoSearch)
    monkeypatch.setattr("clipscape.models.neighbors.NEIGHBOR_BLOCK", 40 * 120)   # 40 rows a block
    x, labels = three_clusters(per_cluster=40)
    calls = []
    coords = umap_2d(x, seed=0, progress=lambda *call: calls.append(call))
    assert_valid_map(coords, len(x))
    assert_clusters_apart(coords, labels)
    assert calls[:4] == [("neighbours", done, 120) for done in (0, 40, 80, 120)] and calls[4][0] == "layout"
    np.testing.assert_array_equal(umap_2d(x, seed=0), coords)

    def cancel(stage, done, total):
        if done:
            raise Cancelled(stage)

    with pytest.raises(Cancelled, match="neighbours"):
        umap_2d(x, seed=0, progress=cancel)
    assert len(epochs_run) == 2 * umap_epochs(len(x))                      # the two maps above only


def test_pca_fallback_does_not_report_progress():
    calls = []
    umap_2d(unit_vectors(UMAP_MIN_POINTS - 1), progress=lambda *call: calls.append(call))
    assert calls == []


# --- project() --------------------------------------------------------------------------------

def test_project_dispatches_by_method(umap_maps):
    x, umap_coords = umap_maps[12]
    assert project(x, "none") is None
    np.testing.assert_array_equal(project(x, "pca"), pca_2d(x))
    np.testing.assert_array_equal(project(x, "umap", seed=0), umap_coords)
    with pytest.raises(ValueError, match="tsne"):
        project(x, "tsne")


def test_pca_of_many_rows_fits_on_a_sample_and_matches_the_exact_map():
    """Beyond fit_rows the axes come from a sample (a 1M-row map in ~2 s, not ~10 s); the map is
    the exact PCA's within sampling noise, deterministic, and below fit_rows it is the exact one."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(8, 16))
    x = (centres[rng.integers(0, 8, 6000)] + 0.3 * rng.normal(size=(6000, 16))).astype(np.float32)
    exact = pca_2d(x, fit_rows=10_000)
    sampled = pca_2d(x, fit_rows=1000)
    assert sampled.shape == (6000, 2) and sampled.dtype == np.float32
    for axis in range(2):
        assert np.corrcoef(exact[:, axis], sampled[:, axis])[0, 1] > 0.99
    np.testing.assert_array_equal(sampled, pca_2d(x, fit_rows=1000))
    np.testing.assert_array_equal(pca_2d(x[:900], fit_rows=1000), pca_2d(x[:900], fit_rows=900))


def test_beyond_fit_max_umap_fits_a_sample_and_places_the_rest_among_their_neighbours():
    """A map of many points: the fitted sample's coordinates are its own UMAP's, every other point
    lands in its cluster (nearer its own cluster's centre on the map than any other's), progress
    reports the placing, and raising from it cancels."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 32))
    labels = rng.integers(0, 6, 3000)
    x = (centres[labels] + 0.35 * rng.normal(size=(3000, 32))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    calls = []
    coords = umap_2d(x, seed=0, fit_max=1000, progress=lambda *call: calls.append(call))
    assert coords.shape == (3000, 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    fitted = np.sort(np.random.default_rng(0).choice(3000, 1000, replace=False))
    np.testing.assert_array_equal(coords[fitted], umap_2d(x[fitted], seed=0))
    centre = np.array([coords[labels == i].mean(axis=0) for i in range(6)])
    nearest = ((coords[:, None, :] - centre[None]) ** 2).sum(axis=-1).argmin(axis=1)
    assert (nearest == labels).mean() > 0.97
    placing = [c for c in calls if c[0] == "placing"]
    assert placing[0] == ("placing", 0, 2000) and placing[-1] == ("placing", 2000, 2000)

    def cancel(stage, done, total):
        if stage == "placing":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        umap_2d(x, seed=0, fit_max=1000, progress=cancel)
