"""2-D maps of embedding space: PCA at once, UMAP (cosine) as the refined map.

Both return coordinates scaled into [-1, 1] around the origin, so a PCA preview can be replaced
by the UMAP map without the view jumping to a different scale. UMAP is imported lazily (numba
makes ``import umap`` take seconds) and runs one at a time, because numba's threading layer
aborts on concurrent calls.
"""
from __future__ import annotations

import threading

import numpy as np

UMAP_MIN_POINTS = 5  # below this a neighbour graph says nothing PCA does not
_umap_lock = threading.Lock()


def normalise(coords: np.ndarray) -> np.ndarray:
    """Centre on the origin and scale so the largest |coordinate| is 1 (float32)."""
    coords = np.asarray(coords, dtype=np.float64)
    if len(coords) == 0:
        return np.zeros((0, 2), np.float32)
    coords = coords - coords.mean(axis=0)
    span = np.abs(coords).max()
    return (coords / span if span > 0 else coords).astype(np.float32)


def pca_2d(embeddings: np.ndarray) -> np.ndarray:
    """The two leading principal components (N×2); fine for any N, including 0 and 1."""
    x = np.asarray(embeddings, dtype=np.float64)
    if len(x) < 2:
        return np.zeros((len(x), 2), np.float32)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    coords = x @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    # fix each axis' sign so reruns on the same data give the same picture
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])
    return normalise(coords * np.where(signs == 0, 1, signs))


def umap_2d(embeddings: np.ndarray, seed: int | None = 0, n_neighbors: int = 15,
            min_dist: float = 0.1) -> np.ndarray:
    """UMAP with the cosine metric (N×2); falls back to PCA below UMAP_MIN_POINTS images.

    With few images the neighbour count shrinks to N-1, and the spectral start (which needs more
    points than neighbours) gives way to a PCA start. ``seed`` makes the map reproducible (UMAP is
    then single-threaded); None lets it use all cores.
    """
    n = len(embeddings)
    if n < UMAP_MIN_POINTS:
        return pca_2d(embeddings)
    import umap  # noqa: PLC0415 - seconds to import; keep it off the start-up path

    k = max(2, min(n_neighbors, n - 1))
    init = "spectral" if n > k + 2 and n >= 16 else pca_2d(embeddings).astype(np.float64)
    reducer = umap.UMAP(n_components=2, n_neighbors=k, min_dist=min_dist, metric="cosine",
                        random_state=seed, init=init, n_jobs=1 if seed is not None else -1)
    with _umap_lock:
        coords = reducer.fit_transform(np.asarray(embeddings, dtype=np.float32))
    return normalise(coords)


def project(embeddings: np.ndarray, method: str = "umap", seed: int | None = 0) -> np.ndarray | None:
    """Coordinates by ``method`` ("umap", "pca" or "none" → None)."""
    if method == "umap":
        return umap_2d(embeddings, seed=seed)
    if method == "pca":
        return pca_2d(embeddings)
    if method == "none":
        return None
    raise ValueError(f"unknown projection {method!r} (umap, pca or none)")
