"""Exact nearest neighbours by cosine: the Parquet export's neighbour column and UMAP's graph.

Similarities come NEIGHBOR_BLOCK at a time from one matrix product (``embeddings[block] @
embeddings.T``), never as an N × N matrix; each row's best k are then picked by a small numba
kernel (``_best_k_rows``) that keeps a row's k best in one pass. np.argpartition did that job 10×
slower than the matrix product (40,000 × 64-d: 22 s of selection beside 2 s of products); the
kernel is compiled once per installation (``cache=True``, no function arguments).

For UMAP this replaces umap-learn's own search (pynndescent's NN-descent): its kernels take the
metric as a function argument, which numba cannot cache, so every process that mapped more
than 4,096 points compiled them again, 25-30 s on a 2-core laptop, before the first map of
every start of the app. Exact neighbours of the 40,000-point UMAP sample take 3-5 s here.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

NEIGHBOR_BLOCK = 1 << 23
"""Similarities computed at once (rows × N): 32 MB of float32, whatever the collection's size."""


def nearest_neighbors(embeddings: np.ndarray, k: int, start: int = 0, stop: int | None = None,
                      inverse_norms: np.ndarray | None = None,
                      progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, distances) of the `k` nearest rows by cosine of rows start..stop-1, nearest first.

    Each row leaves itself out, so there are min(k, N - 1) a row; ties go to the lower id.
    Distances are 1 - cosine (float32). ``progress(rows done, rows)`` is called before each
    block; what it raises stops the search (that is how a caller cancels).
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    n = len(emb)
    stop = n if stop is None else stop
    k = min(int(k), max(0, n - 1))
    if inverse_norms is None:
        inverse_norms = unit_scale(emb)
    ids = np.empty((stop - start, k), np.int64)
    distances = np.empty((stop - start, k), np.float32)
    if k == 0:
        return ids, distances
    best_k = _kernel()
    block = max(1, NEIGHBOR_BLOCK // max(1, n))
    for a in range(start, stop, block):
        if progress is not None:
            progress(a - start, stop - start)
        b = min(a + block, stop)
        sims = emb[a:b] @ emb.T            # a row's own norm does not change its order: scaled after
        sims[np.arange(b - a), np.arange(a, b)] = -np.inf  # not its own neighbour
        top = np.sort(best_k(sims, inverse_norms, k), axis=1)             # by id, for ties
        top_sims = np.take_along_axis(sims, top, axis=1) * inverse_norms[top] * inverse_norms[a:b, None]
        order = np.argsort(-top_sims, axis=1, kind="stable")
        ids[a - start:b - start] = np.take_along_axis(top, order, axis=1)
        distances[a - start:b - start] = 1.0 - np.take_along_axis(top_sims, order, axis=1)
    if progress is not None:
        progress(stop - start, stop - start)
    return ids, distances


def unit_scale(emb: np.ndarray) -> np.ndarray:
    """1 / |row| (0 for a zero row, whose cosine with anything is then 0)."""
    norms = np.linalg.norm(emb, axis=1)
    with np.errstate(divide="ignore"):
        return np.where(norms > 0, 1.0 / norms, 0.0).astype(np.float32)


def _best_k_rows(sims, scale, k):
    """Each row's k largest ``sims * scale`` (scale per column), by column, in no order; of equal
    values the lower column wins (a value replaces the kept minimum only if larger, and of equal
    minima the higher column goes)."""
    rows, cols = sims.shape
    out = np.empty((rows, k), np.int64)
    for r in prange(rows):
        row = sims[r]
        kept = np.empty(k, np.float32)
        where = np.empty(k, np.int64)
        for t in range(k):
            v = row[t] * scale[t]
            kept[t] = v if v == v else -np.inf    # a zero row's own -inf times 0 is NaN: never kept
            where[t] = t
        low = _lowest(kept, where, k)
        floor = kept[low]
        for c in range(k, cols):
            v = row[c] * scale[c]
            if v > floor:
                kept[low] = v
                where[low] = c
                low = _lowest(kept, where, k)
                floor = kept[low]
        out[r] = where
    return out


def _lowest(kept, where, k):
    """The slot of the smallest kept value (of equal ones, the one with the higher column)."""
    low = 0
    for t in range(1, k):
        if kept[t] < kept[low] or (kept[t] == kept[low] and where[t] > where[low]):
            low = t
    return low


prange = range      # numba.prange once compiled (_kernel)
_compiled = None


def _kernel():
    """_best_k_rows compiled by numba (imported here, not when this module is)."""
    global _compiled
    if _compiled is None:
        import numba

        globals()["prange"] = numba.prange
        globals()["_lowest"] = numba.njit(cache=True, nogil=True)(_lowest)
        _compiled = numba.njit(cache=True, parallel=True, nogil=True)(_best_k_rows)
    return _compiled
