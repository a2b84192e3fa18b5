"""Ray pipeline vs local encoder on the same camera-sized photos, and opening a 1M-row Parquet dataset.

Usage: python tests/benchmarks/bench_ray.py [--photos 200] [--model demo] [--rows 1000000] [--repeat 3] [--skip-window]

1. ``clipscape encode PHOTOS`` (local engine, fresh cache) and ``clipscape encode PHOTOS --engine
   ray --out FRESH`` (Ray started here), whole process each, alternated ``--repeat`` times: the
   median run's wall seconds and images/s.
2. A Clipscape dataset of ``--rows`` rows × 64 dims (clustered unit vectors, 25k-row shards) is
   written once, then ``open_embeddings`` is timed (median of 3) and, in a child process, the
   window: drop → collection shown → first map, with the longest GUI-thread stall (5 ms timer).
Prints one JSON object. The photos and the dataset stay in /tmp/clipscape-bench-ray for reruns.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.gettempdir()) / "clipscape-bench-ray"
HERE = Path(__file__).resolve().parent
CLIPSCAPE = [sys.executable, "-m", "clipscape.app.launch"]
TICK_MS = 5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-window", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine (the median is printed)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return window_child(Path(a.child))
    photos = ensure_photos(a.photos)
    out = {"photos": a.photos, "model": a.model, "cores": os.cpu_count()}
    runs = {"local": [], "ray": []}
    for _ in range(a.repeat):   # alternated, so both see the same machine
        runs["local"].append(encode(photos, a.model, []))
        runs["ray"].append(encode(photos, a.model, ["--engine", "ray", "--out", str(WORK / "ray-out")]))
    for engine, results in runs.items():
        out[engine] = sorted(results, key=lambda r: r["wall_s"])[len(results) // 2]   # the median run
        out[engine]["walls_s"] = [r["wall_s"] for r in results]
    out["ray_vs_local"] = round(out["local"]["wall_s"] / out["ray"]["wall_s"], 2)
    dataset = ensure_dataset(a.rows)
    out["open_embeddings_s"] = median_of(3, lambda: open_once(dataset))
    if not a.skip_window:
        out["window"] = json.loads(subprocess.run([sys.executable, __file__, "--child", str(dataset)], check=True,
                                                  capture_output=True, text=True).stdout.strip().splitlines()[-1])
    print(json.dumps(out))


def ensure_photos(n: int) -> Path:
    folder = WORK / f"photos-{n}"
    if not folder.is_dir() or len(list(folder.rglob("*.jpg"))) < n:   # make_photos.py writes album sub-folders
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, str(HERE / "make_photos.py"), str(folder), str(n)], check=True)
    return folder


def encode(photos: Path, model: str, extra: list[str]) -> dict:
    """One whole `clipscape encode` process with nothing cached: wall seconds, images/s."""
    cache = WORK / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(WORK / "ray-out", ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([*CLIPSCAPE, "encode", str(photos), "--model", model, "--json", "--quiet", *extra],
                          env=dict(os.environ, CLIPSCAPE_CACHE_DIR=str(cache)), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    result = json.loads(done.stdout)
    return {"wall_s": round(wall, 2), "images_per_second_whole_process": round(result["embedded"] / wall, 2),
            "images_per_second_reported": result["images_per_second"], "embedded": result["embedded"]}


def ensure_dataset(rows: int) -> Path:
    """A Clipscape dataset of ``rows`` clustered unit vectors (64-d, the demo model's), in 25k-row shards."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clipscape.models.encoder import ModelSpec, load_encoder
    from clipscape.models.parquet_schema import ROW_GROUP_ROWS, ModelRecord, vectors_to_arrow

    root = WORK / f"dataset-{rows}"
    if (root / "embeddings").is_dir():
        return root
    record = ModelRecord.of_encoder(load_encoder(ModelSpec.parse("demo"), device="cpu"))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, record.dim)).astype(np.float32)
    (root / "embeddings").mkdir(parents=True)
    for start in range(0, rows, ROW_GROUP_ROWS):
        n = min(ROW_GROUP_ROWS, rows - start)
        v = centres[rng.integers(0, 50, n)] + 0.3 * rng.normal(size=(n, record.dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        paths = [f"/photos/{(start + i) // 1000:04d}/{start + i:07d}.jpg" for i in range(n)]
        table = pa.table({"path": paths, "size": pa.array(np.full(n, 1000), pa.int64()),
                          "mtime_ns": pa.array(np.full(n, 1), pa.int64()), "embedding": vectors_to_arrow(v)})
        pq.write_table(table.replace_schema_metadata(record.metadata()),
                       root / "embeddings" / f"part-{start // ROW_GROUP_ROWS:05d}.parquet")
    return root


def open_once(dataset: Path) -> float:
    from clipscape.models.datasets import open_embeddings

    start = time.perf_counter()
    open_embeddings(dataset)
    return time.perf_counter() - start


def median_of(n: int, f) -> float:
    return round(statistics.median(f() for _ in range(n)), 2)


def window_child(dataset: Path) -> None:
    """Drop the dataset on a window: seconds to the collection and to the first map; longest stall."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from clipscape.app.main_window import MainWindow

    settings = QSettings(str(WORK / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings, model=("demo", None), device="cpu")
    session = window.session
    window.show()
    QTest.qWaitForWindowExposed(window)
    worst = [0.0]
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        worst[0] = max(worst[0], (now - last[0]) * 1000 - TICK_MS)
        last[0] = now

    def wait(predicate, timeout_s=600.0) -> None:
        end = time.perf_counter() + timeout_s
        while not predicate():
            if time.perf_counter() > end:
                raise TimeoutError
            app.processEvents(QEventLoop.AllEvents, 5)
            time.sleep(0.001)

    wait(lambda: session.encoder is not None)
    timer = QTimer(timerType=Qt.PreciseTimer, interval=TICK_MS)
    timer.timeout.connect(tick)
    last[0] = time.perf_counter()   # stalls count from here, not from before the model loaded
    timer.start()
    start = time.perf_counter()
    window.open_paths([str(dataset)])
    wait(lambda: session.collection is not None and len(session.collection) > 0)
    shown = time.perf_counter() - start
    wait(lambda: session.coords is not None)
    first_map = time.perf_counter() - start
    timer.stop()
    print(json.dumps({"rows": len(session.collection), "collection_s": round(shown, 2),
                      "first_map_s": round(first_map, 2), "map_kind": session.map_kind,
                      "longest_gui_stall_ms": round(worst[0], 1)}))
    session.jobs.cancel("project")
    window.close()


if __name__ == "__main__":
    main()
