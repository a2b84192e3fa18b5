"""Benchmark: the UMAP map as a fresh start of the app pays for it, and how the points beyond the
fitted sample are placed (issue 10).

Usage: python tests/benchmarks/bench_umap.py [--sizes 10000,100000,1000000] [--placement 100000]

1. For each N, a fresh Python process does what the window's UMAP child does after a start of
   the app: import umap and warm it up (models/umap_process.py), then map N clustered 64-d unit
   vectors (projection.umap_2d: up to 40,000 fitted, the rest placed). numba's compiled code is
   whatever this installation has cached (run it twice: the first run after an install or an
   upgrade of umap-learn or numba compiles and caches).
2. Placement at equal footing: UMAP fitted on a 40,000-point sample of --placement points, the
   others placed by projection.place_rest (nearest fitted neighbours) and by umap-learn's
   ``transform`` (which needs the fit's pynndescent index; timed twice, its first call compiles).
   The points are 20 clusters of 10 sub-clusters each (UMAP lays the 200 sub-clusters out as
   islands); quality is the share of placed points that land nearest their own sub-cluster's
   centre on the map (the mean of its fitted points) among all 200.

Prints one line per figure; seconds are wall clock on this machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

CLUSTERS, SUB, DIM, FIT = 20, 10, 64, 40_000


def clustered(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    labels = rng.integers(0, CLUSTERS, n)
    x = centres[labels] + rng.normal(scale=0.3, size=(n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, labels


def child(n: int) -> dict:
    """In a fresh process: the UMAP child's warm-up, then the map of n points."""
    started = time.perf_counter()
    from clipscape.models.projection import umap_2d

    rng = np.random.default_rng(0)
    umap_2d(rng.normal(size=(64, 8)).astype(np.float32), seed=0)      # umap_process's warm-up
    warm = time.perf_counter()
    x, _ = clustered(n)
    made = time.perf_counter()
    umap_2d(x, seed=0)
    return {"warm_up_s": warm - started, "map_s": time.perf_counter() - made}


def hierarchical(n: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors in CLUSTERS clusters of SUB sub-clusters; (vectors, sub-cluster labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, 1, DIM)) + 0.6 * rng.normal(size=(CLUSTERS, SUB, DIM))
    labels = rng.integers(0, CLUSTERS * SUB, n)
    x = (centres.reshape(-1, DIM)[labels] + 0.25 * rng.normal(size=(n, DIM))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, labels


def nearest_own(xy_rest, labels_rest, xy_fit, labels_fit, groups: int) -> float:
    """Share of placed points nearest (on the map) the centre of their own group's fitted points."""
    centre = np.array([xy_fit[labels_fit == g].mean(axis=0) for g in range(groups)])
    nearest = ((xy_rest[:, None, :] - centre[None]) ** 2).sum(axis=-1).argmin(axis=1)
    return float((nearest == labels_rest).mean())


def placement(n: int) -> None:
    import umap

    from clipscape.models.projection import normalise, place_rest, umap_2d

    x, sub = hierarchical(n)
    fitted = np.sort(np.random.default_rng(0).choice(n, FIT, replace=False))
    rest = np.setdiff1d(np.arange(n), fitted)
    ours = umap_2d(x[fitted], seed=0)
    started = time.perf_counter()
    placed = place_rest(x, fitted, ours)[rest]
    results = [("nearest-neighbour placement (place_rest)", ours, placed, [time.perf_counter() - started])]
    reducer = umap.UMAP(n_components=2, n_neighbors=15, metric="cosine", random_state=0, n_jobs=1)
    theirs = reducer.fit_transform(x[fitted])          # pynndescent's index, kept for transform
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        transformed = reducer.transform(x[rest])
        seconds.append(time.perf_counter() - started)
    both = normalise(np.vstack((theirs, transformed)))  # one scale for the fitted and the placed
    results.append(("umap-learn transform (first call, again)", both[:FIT], both[FIT:], seconds))
    for name, fit_xy, rest_xy, times in results:
        print(json.dumps({"placing": name, "points": len(rest), "seconds": [round(t, 1) for t in times],
                          "own_sub_cluster": round(nearest_own(rest_xy, sub[rest], fit_xy, sub[fitted],
                                                               CLUSTERS * SUB), 4)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--placement", type=int, default=100_000, help="points for the placement comparison (0: skip)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    for n in [int(s) for s in args.sizes.split(",") if s]:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], check=True, capture_output=True, text=True)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps({"points": n, "process_start_to_map_s": round(time.perf_counter() - started, 1),
                          **{k: round(v, 1) for k, v in figures.items()}}), flush=True)
    if args.placement:
        placement(args.placement)


if __name__ == "__main__":
    main()
