"""2-D maps of embedding space: PCA at once, UMAP (cosine) as the refined map.

Both return coordinates scaled into [-1, 1] around the origin, so a PCA preview can be replaced
by the UMAP map without the view jumping to a different scale. UMAP is imported lazily (numba
makes ``import umap`` take seconds) and runs one at a time, because numba's threading layer
aborts on concurrent calls.

A UMAP run can report progress through a callback, and the callback cancels the run by raising:
UMAP's epoch loop goes through ``umap.layouts.tqdm``, which is swapped, for the run, for an
iterator that calls the callback between epochs.
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext

import numpy as np

UMAP_MIN_POINTS = 5  # below this a neighbour graph says nothing PCA does not
LAYOUT_REPORTS = 50  # at most this many progress("layout", ...) calls per run
EXACT_NEIGHBOURS_MAX = 4096  # UMAP's own threshold for exact neighbour search (umap_.py)
_umap_lock = threading.Lock()

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage "neighbours" (done 0, or points done of all from 4,096
points on), then "layout" (done = epochs run), then "placing" beyond a fitted sample."""


def normalise(coords: np.ndarray) -> np.ndarray:
    """Centre on the origin and scale so the largest |coordinate| is 1 (float32)."""
    coords = np.asarray(coords, dtype=np.float64)
    if len(coords) == 0:
        return np.zeros((0, 2), np.float32)
    coords = coords - coords.mean(axis=0)
    span = np.abs(coords).max()
    return (coords / span if span > 0 else coords).astype(np.float32)


PCA_FIT_ROWS = 100_000
"""Above this many rows the principal axes come from a random sample of this many (then every row
is projected): a 1M-row map in about a second instead of 8-12 s, axes within sampling noise."""


def pca_2d(embeddings: np.ndarray, fit_rows: int = PCA_FIT_ROWS) -> np.ndarray:
    """The two leading principal components (N×2); fine for any N, including 0 and 1.

    Up to ``fit_rows`` rows this is the exact PCA (SVD of the centred rows, float64). Beyond,
    the mean and axes are fitted on ``fit_rows`` rows drawn with a fixed seed (the leading
    eigenvectors of their scatter matrix) and every row is projected in float32 (no N×D float64
    copy: 512 MB at 1M × 64).
    """
    n = len(embeddings)
    if n < 2:
        return np.zeros((n, 2), np.float32)
    if n <= fit_rows:
        x = np.asarray(embeddings, dtype=np.float64)
        x = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        coords = x @ vt[:2].T
    else:
        sample = np.sort(np.random.default_rng(0).choice(n, fit_rows, replace=False))
        fit = np.asarray(embeddings[sample], dtype=np.float64)
        mean = fit.mean(axis=0)
        fit -= mean
        # the axes from the D × D scatter matrix: an SVD of the sample made U (fit_rows × D) and
        # its workspace beside it, ~150 MB at the top of a first open's memory
        _, vectors = np.linalg.eigh(fit.T @ fit)
        axes = vectors[:, ::-1][:, :2]
        coords = (np.asarray(embeddings, np.float32) @ axes.astype(np.float32)).astype(np.float64) - mean @ axes
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    # fix each axis' sign so reruns on the same data give the same picture
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])
    return normalise(coords * np.where(signs == 0, 1, signs))


def umap_epochs(n: int) -> int:
    """The epoch count UMAP 0.5 picks by itself for N points: 500 up to 10 000, 200 beyond.

    We pass it explicitly so a progress bar knows the total before the fit starts; being the same
    number UMAP would choose, the map is the same as without it.
    """
    return 500 if n <= 10_000 else 200


UMAP_FIT_MAX = 40_000
"""Up to this many points the UMAP is fitted on all of them; beyond, on a sample of this many, and
the rest are placed among their nearest fitted neighbours (``place_rest``): 100k points in well
under a minute on two cores instead of 64-95 s, 1M in minutes instead of over ten."""
PLACE_LANDMARKS = 4_096   # fitted points the rest look for neighbours among (a matrix product each)
PLACE_K = 8                 # neighbours a placed point is put among
PLACE_CHUNK = 8_192         # rows placed per step (progress and cancel between steps)


def umap_2d(embeddings: np.ndarray, seed: int | None = 0, n_neighbors: int = 15,
            min_dist: float = 0.1, progress: Progress | None = None, fit_max: int = UMAP_FIT_MAX) -> np.ndarray:
    """UMAP with the cosine metric (N×2); falls back to PCA below UMAP_MIN_POINTS images.

    With few images the neighbour count shrinks to N-1, and the spectral start (which needs more
    points than neighbours) gives way to a PCA start. ``seed`` makes the map reproducible (UMAP is
    then single-threaded); None lets it use all cores.

    ``progress`` (see Progress) is called once the run holds the UMAP lock, then about every 2% of
    the layout epochs, last with done == total; the PCA fallback does not call it. Whatever it
    raises stops the run at the next epoch and propagates unchanged: that is how a caller cancels.
    From EXACT_NEIGHBOURS_MAX points on the neighbour search reports ("neighbours", points done,
    points) as it goes and is cancelled the same way; the spectral start cannot be interrupted.

    Below EXACT_NEIGHBOURS_MAX points UMAP finds neighbours exactly from all pairwise distances,
    which umap 0.5.12 computes with one Python call per pair (~10 s at 2,000 points); we give it
    the cosine distance matrix from one matrix product instead (same neighbours; 2–3× faster
    overall, measured at 1,000 and 2,000 points). Above it we give it each point's exact
    neighbours (_neighbour_graph), where UMAP would run its approximate search.
    """
    n = len(embeddings)
    if n < UMAP_MIN_POINTS:
        return pca_2d(embeddings)
    if n > fit_max:  # fit a sample, place the rest (see UMAP_FIT_MAX)
        fitted_rows = np.sort(np.random.default_rng(0 if seed is None else seed).choice(n, fit_max, replace=False))
        fitted = umap_2d(embeddings[fitted_rows], seed=seed, n_neighbors=n_neighbors, min_dist=min_dist,
                         progress=progress, fit_max=fit_max)
        return place_rest(embeddings, fitted_rows, fitted, progress=progress)
    from clipscape.models.numba_cache import import_umap

    umap = import_umap()  # seconds to import, and its code compiled once per installation

    # precomputed distances only cost UMAP.inverse_transform, which we never call
    warnings.filterwarnings("ignore", message="using precomputed metric", category=UserWarning)

    k = max(2, min(n_neighbors, n - 1))
    init = "spectral" if n > k + 2 and n >= 16 else pca_2d(embeddings).astype(np.float64)
    x = np.asarray(embeddings, np.float32)
    small = n < EXACT_NEIGHBOURS_MAX
    reducer = umap.UMAP(n_components=2, n_neighbors=k, min_dist=min_dist,
                        metric="precomputed" if small else "cosine",
                        random_state=seed, init=init, n_jobs=1 if seed is not None else -1,
                        n_epochs=umap_epochs(n))
    if small:
        from sklearn.metrics.pairwise import cosine_distances  # noqa: PLC0415 - loaded by umap already

        x = cosine_distances(x)  # float32 in, float32 out; clipped to [0, 2], 0 on the diagonal
    graph = None if small else (lambda: _neighbour_graph(x, k, progress))
    return normalise(_fit_one_at_a_time(reducer, x, progress, graph))


def _neighbour_graph(x: np.ndarray, k: int, progress: Progress | None):
    """UMAP's precomputed_knn: each point's exact k nearest by cosine, itself first at distance 0
    (as UMAP's own search returns them), from models/neighbors.py rather than umap-learn's
    pynndescent, whose kernels numba compiles anew in every process (25-30 s here) because they
    take the metric as an argument. Reports ("neighbours", rows done, rows)."""
    from clipscape.models.neighbors import nearest_neighbors

    warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]", category=UserWarning)  # no transform
    report = None if progress is None else (lambda done, total: progress("neighbours", done, total))
    ids, distances = nearest_neighbors(x, k - 1, progress=report)
    n = len(x)
    ids = np.hstack((np.arange(n, dtype=np.int64)[:, None], ids))
    distances = np.hstack((np.zeros((n, 1), np.float32), np.maximum(distances, 0.0)))
    return ids, distances, None


def place_rest(embeddings: np.ndarray, fitted_rows: np.ndarray, fitted: np.ndarray,
               progress: Progress | None = None, landmarks: int = PLACE_LANDMARKS, k: int = PLACE_K) -> np.ndarray:
    """The map of every row, given the map of ``fitted_rows``: each other row is put at the
    similarity-weighted mean of its ``k`` nearest (cosine) among up to ``landmarks`` fitted rows.

    Nearest-neighbour placement rather than umap-learn's ``transform``: it needs no index kept
    from the fit (the fit runs in a child process and returns coordinates only), it is one matrix
    product per chunk, and a point lands among the images it resembles, which is what the map is
    read for. ``progress("placing", done, total)`` is called per chunk; what it raises cancels.
    """
    n = len(embeddings)
    coords = np.empty((n, 2), np.float32)
    coords[fitted_rows] = fitted
    rest = np.setdiff1d(np.arange(n), fitted_rows, assume_unique=True)
    chosen = np.linspace(0, len(fitted_rows) - 1, min(landmarks, len(fitted_rows))).astype(np.int64)
    anchors = np.asarray(embeddings[fitted_rows[chosen]], np.float32).T.copy()   # D × L
    anchor_xy = np.asarray(fitted, np.float32)[chosen]
    k = min(k, len(chosen))
    for start in range(0, len(rest), PLACE_CHUNK):
        if progress is not None:
            progress("placing", start, len(rest))
        rows = rest[start:start + PLACE_CHUNK]
        sims = np.asarray(embeddings[rows], np.float32) @ anchors
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weights = 1.0 / (1.0 - np.take_along_axis(sims, near, axis=1) + 1e-3)   # 1 / (cosine distance)
        coords[rows] = np.einsum("rk,rkd->rd", weights, anchor_xy[near]) / weights.sum(axis=1, keepdims=True)
    if progress is not None:
        progress("placing", len(rest), len(rest))
    return coords


def _fit_one_at_a_time(reducer, x: np.ndarray, progress: Progress | None, graph=None) -> np.ndarray:
    """``reducer.fit_transform(x)`` under the UMAP lock, reporting to ``progress`` if given; with
    ``graph``, the neighbour graph it makes (under the lock too: its kernel runs on numba's threads)
    is the fit's.

    UMAP sets numba's thread count for the fit and only restores it when the fit succeeds, so it
    is restored here whatever happens.
    """
    import numba  # noqa: PLC0415 - loaded by umap already

    with _umap_lock:
        threads = numba.get_num_threads()
        try:
            if graph is not None:
                reducer.precomputed_knn = graph()
            elif progress is not None:
                progress("neighbours", 0, reducer.n_epochs)
            with _epochs_reported_to(progress) if progress is not None else nullcontext():
                return reducer.fit_transform(x)
        finally:
            numba.set_num_threads(threads)


@contextmanager
def _epochs_reported_to(progress: Progress) -> Iterator[None]:
    """Make UMAP's layout loop call ``progress`` between epochs, for the duration of the block.

    UMAP 0.5 loops ``for n in tqdm(range(n_epochs), **tqdm_kwds)`` with ``tqdm`` looked up in
    ``umap.layouts`` at call time; replacing that name replaces the progress bar. Callers hold
    the UMAP lock, so no other run sees the swap.
    """
    from clipscape.models.numba_cache import import_umap

    import_umap()
    import umap.layouts  # noqa: PLC0415 - imported with umap just above

    original = umap.layouts.tqdm
    umap.layouts.tqdm = lambda epochs, **_: _report_epochs(epochs, progress)
    try:
        yield
    finally:
        umap.layouts.tqdm = original


def _report_epochs(epochs: Iterable[int], progress: Progress) -> Iterator[int]:
    """Yield ``epochs``, calling progress("layout", done, total) at most LAYOUT_REPORTS times."""
    epochs = list(epochs)
    total = len(epochs)
    step = -(-total // (LAYOUT_REPORTS - 1)) or 1  # ceil, leaving one call for the end
    for done, epoch in enumerate(epochs):
        if done % step == 0:
            progress("layout", done, total)
        yield epoch
    progress("layout", total, total)


def project(embeddings: np.ndarray, method: str = "umap", seed: int | None = 0,
            progress: Progress | None = None) -> np.ndarray | None:
    """Coordinates by ``method`` ("umap", "pca" or "none" → None); ``progress`` as for umap_2d."""
    if method == "umap":
        return umap_2d(embeddings, seed=seed, progress=progress)
    if method == "pca":
        return pca_2d(embeddings)
    if method == "none":
        return None
    raise ValueError(f"unknown projection {method!r} (umap, pca or none)")
