"""Groups of similar images, for colouring the map by cluster.

k-means on unit-length embeddings (so squared distance is 2 - 2·cosine: it groups by cosine
similarity, as search and the map do). Cluster ids are renumbered by size, biggest first, so the
same data and seed always give the same ids and colours, and the commonest group gets colour 0.
scikit-learn is imported lazily: it takes a second to import and is not needed at start-up.
"""
from __future__ import annotations

import math

import numpy as np

MIN_K, MAX_K = 2, 12  # fewer says nothing; more than a dozen colours cannot be told apart


def default_k(n: int) -> int:
    """A cluster count for n images: round(sqrt(n / 2)) kept within 2..12, and never above n."""
    return min(n, max(MIN_K, min(MAX_K, round(math.sqrt(n / 2)))))


def cluster(embeddings: np.ndarray, k: int | None = None, seed: int = 0) -> np.ndarray:
    """Cluster id (int64, 0 = biggest cluster) for each of the N embeddings.

    ``k`` defaults to default_k(N); it is capped at the number of distinct embeddings (duplicate
    images give fewer clusters, not empty ones), so ids are always 0..m-1 with none skipped.
    ``seed`` makes the result reproducible.
    """
    if k is not None and k < 1:
        raise ValueError(f"need at least one cluster, got k={k}")
    if len(embeddings) < 2:
        return np.zeros(len(embeddings), np.int64)
    x = _unit_rows(embeddings)
    k = _distinct_rows(x, default_k(len(x)) if k is None else k)
    if k == 1:
        return np.zeros(len(x), np.int64)
    from sklearn.cluster import KMeans  # noqa: PLC0415 - slow to import

    return by_size(KMeans(n_clusters=k, n_init="auto", random_state=seed).fit_predict(x))


def by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber ``labels`` 0..m-1 by cluster size, biggest first; ties go to the earliest member."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return np.zeros(0, np.int64)
    ids, first, sizes = np.unique(labels, return_index=True, return_counts=True)
    order = np.lexsort((first, -sizes))  # by size descending, then by first member
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    return rank[np.searchsorted(ids, labels)]


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """The rows of an N×D array scaled to unit length (float32); all-zero rows stay zero."""
    x = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def _distinct_rows(x: np.ndarray, limit: int) -> int:
    """How many distinct rows ``x`` has, counting no further than ``limit``.

    Usually the first ``limit`` rows already differ, so this costs next to nothing.
    """
    seen = set()
    for row in x:
        seen.add(row.tobytes())
        if len(seen) >= limit:
            break
    return len(seen)
