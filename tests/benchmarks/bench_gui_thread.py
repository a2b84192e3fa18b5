"""Benchmark: what the GUI thread spends on whole-collection work at 1M images (issue 10).

Usage: QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_gui_thread.py [--n 1000000]
       [--repeat 3]

Builds a Session of --n synthetic rows (random unit vectors, made-up paths; no model) inside an
offscreen QApplication, with the window's real MapView and Gallery attached and shown, then
times on the GUI thread, median of --repeat, in ms:
- collection: ``_take_collection`` (a new collection reaching every view);
- coords: ``_on_coords`` (the map placing every point), then coords_again: new coordinates for
  the same collection (UMAP replacing the PCA preview);
- ranked_task: the query job's ranking (``tasks._ranked``), which runs in a worker, reported
  apart because it is not GUI-thread time;
- set_query: a caption typed (colour mode "score", scores not yet known);
- scores: ``_on_scores`` with the (scores, rank) result the job returns (map recoloured by
  score, top-k ringed, gallery re-ranked);
- select_half / clear_selection: ``set_selection`` of every other row (a sorted array, as the
  box and lasso give) and back to none;
- classes: ``_on_classes`` with 5 classes (map recoloured by class, legend, gallery, filter);
- click: a left click in the middle of the map in the pan tool (previews the nearest point);
- gc_collect: one full ``gc.collect()`` with all of that alive (what a cyclic collection the
  interpreter starts by itself would stall the GUI thread for).
Paint time is not in those (events are processed between operations, untimed): drawing a
million points is the map's level-of-detail work, a separate step. "settle" is what the event
loop does after a new collection and its map, and after selecting half: busy ms (map paints,
the gallery's QListView laying out every item, in C++, in batches of 20,000) and the longest
slice.
Prints one JSON line (medians, then "max": the slowest of each); --profile adds each operation's cProfile to stderr.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ helpers when run as a script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile each operation (to stderr)")
    args = ap.parse_args()
    print(json.dumps(measure(args.n, args.repeat, args.profile)), flush=True)


def measure(n: int, repeat: int, profile: bool = False) -> dict:
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QSplitter

    from clipscape.app import tasks
    from clipscape.app.gallery import Gallery
    from clipscape.app.map.view import MapView
    from clipscape.app.session import Query, Session
    from clipscape.app.settings import Settings
    from clipscape.app.thumbnails import ThumbnailCache
    from clipscape.models.collection import Collection
    from clipscape.models.zeroshot import Classification

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    paths = [f"/photos/{i // 1000:04d}/img_{i:07d}.jpg" for i in range(n)]
    coords = rng.normal(size=(n, 2)).astype(np.float32)
    scores = (emb @ emb[0]).astype(np.float32)
    names = ["cat", "dog", "car", "tree", "house"]
    probabilities = rng.random((n, len(names)), dtype=np.float32)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    best = np.where(probabilities.max(axis=1) < 0.25, -1, probabilities.argmax(axis=1)).astype(np.int64)
    half = np.arange(0, n, 2, dtype=np.int64)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat))
        session = Session(settings, ("demo", None), device="cpu")
        window = QSplitter()
        map_view = MapView(session, ThumbnailCache(size=160, capacity=256, parent=window))
        window.addWidget(map_view)
        window.addWidget(Gallery(session, ThumbnailCache(size=128, parent=window), settings))
        window.resize(1400, 900)
        window.show()
        app.processEvents()
        times: dict[str, list[float]] = {}

        def timed(name, fn, *args):
            app.processEvents()
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
            t = time.perf_counter()
            result = fn(*args)
            times.setdefault(name, []).append((time.perf_counter() - t) * 1000)
            if profile:
                profiler.disable()
                print(f"--- {name}", file=sys.stderr)
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(8)
            app.processEvents()
            return result

        settled: dict[str, dict] = {}

        def settle(name):
            """Process events until the GUI thread is idle: the busy ms and the longest slice."""
            slices, start, quiet = [], time.perf_counter(), 0
            while quiet < 200 and time.perf_counter() < start + 60:
                t = time.perf_counter()
                app.processEvents()
                slices.append(time.perf_counter() - t)
                quiet = quiet + 1 if slices[-1] < 0.0002 else 0
                time.sleep(0.0005)
            ms = np.array(slices) * 1000
            settled[name] = {"busy_ms": round(float(ms[ms >= 0.2].sum())), "longest_ms": round(float(ms.max()), 1)}

        collection = Collection(paths, emb)
        for i in range(repeat):
            timed("collection", session._take_collection, collection)
            timed("coords", session._on_coords, coords, "pca")
            if i == 0:
                settle("after_collection_and_coords")
            timed("coords_again", session._on_coords, coords[::-1].copy(), "umap")
        for _ in range(repeat):
            result = timed("ranked_task", tasks._ranked, scores)
        query = Query("text", "a query")
        for i in range(repeat):
            session.clear_query()
            timed("set_query", session._set_query, Query("text", f"a query {i}"))
            timed("scores", session._on_scores, session.query, result)
        for _ in range(repeat):
            timed("select_half", session.set_selection, half)
            if "after_select_half" not in settled:
                settle("after_select_half")
            timed("clear_selection", session.clear_selection)
        session.set_classes(names)
        classification = Classification(names, probabilities, best)
        wanted = (tuple(names), True, session.unknown_threshold)
        for _ in range(repeat):
            timed("classes", session._on_classes, wanted, (classification, {}), True)
        plot = map_view.plot_widget()
        centre = plot.viewport().rect().center()
        for _ in range(repeat):
            timed("click", QTest.mouseClick, plot.viewport(), Qt.MouseButton.LeftButton,
                  Qt.KeyboardModifier.NoModifier, centre)
        for _ in range(repeat):
            timed("gc_collect", gc.collect)
        del query
        window.close()
        session.shutdown()
    out = {"n": n, "repeat": repeat}
    out.update({name: round(statistics.median(v), 1) for name, v in times.items()})
    out["max"] = {name: round(max(v), 1) for name, v in times.items()}
    out["settle"] = settled
    return out


if __name__ == "__main__":
    main()
