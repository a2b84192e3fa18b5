"""Benchmark: the window on a big cached library (issue 10) — open, reopen, freezes, memory.

Usage: QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_scale_window.py [--sizes 10000,100000,1000000]
       [--work /tmp/clipscape-bench-scale]

Uses the libraries tests/benchmarks/bench_scale.py builds (N cached images, nothing to encode;
built here if missing). For each N, two runs of the real window (offscreen, demo model), each
in its own process so that its peak memory is its own:
- first open: the folder's snapshot removed (models/snapshot.py), so the index reads the
  store as before the snapshot existed; times open → first map (PCA) and → collection checked;
- reopen: with the snapshot the first open wrote and a saved map (the PCA coordinates, saved
  as the last map so that no UMAP starts and competes for the two cores while we measure); times
  open → map on screen, open → the folder checked (scan + match, nothing changed), then a
  caption typed → map recoloured (the search bar's 150 ms debounce included).
Both report the longest GUI-thread stop (a 5 ms QTimer's gaps beyond 5 ms) from open until
the folder is checked and the window settled, and the process's peak RSS with what the process
held before opening (Qt, torch, the model) for comparison. The model is loaded before the clock
starts. Also lists the cyclic garbage collections, on the GUI thread and on the others, with
the longest. Prints one line per run and a JSON line at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK_MS = 5
CAPTION = "a red circle"
SETTLE_S = 2.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "clipscape-bench-scale")
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "CACHE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_scale import build

    from clipscape.models.encoder import ModelSpec, load_encoder

    encoder = load_encoder(ModelSpec.parse("demo"), device="cpu")
    results = {}
    for n in (int(s) for s in args.sizes.split(",")):
        root, cache = args.work / f"photos-{n}", args.work / f"cache-{n}"
        build(root, cache, n, encoder)
        _forget_snapshot(encoder, root, cache)
        first = run_child(root, cache, "first")
        _save_pca_map(encoder, root, cache)
        reopen = run_child(root, cache, "reopen")
        results[n] = {"first": first, "reopen": reopen}
        for mode, r in (("first open", first), ("reopen", reopen)):
            extra = f"   caption → recoloured {r['caption_ms']:.0f} ms" if "caption_ms" in r else ""
            (gui, gui_ms, _), (work, work_ms, _) = r["collections"]["gui"], r["collections"]["workers"]
            extra += f"   collections: GUI thread {gui} (longest {gui_ms:.0f} ms), workers {work} ({work_ms:.0f} ms)"
            print(f"N={n:>8,} {mode:<10} map {r['map_s']:6.2f} s   checked {r['checked_s']:6.2f} s   "
                  f"longest GUI stop {r['stall_ms']:5.0f} ms   peak RSS {r['peak_mb']:6.0f} MB "
                  f"(before opening {r['base_mb']:.0f} MB){extra}", flush=True)
    print(json.dumps(results))


def _forget_snapshot(encoder, root: Path, cache: Path) -> None:
    from clipscape.models import snapshot as snapshots

    snapshots.remove(cache, snapshots.snapshot_key(encoder.key, [str(root)]))


def _save_pca_map(encoder, root: Path, cache: Path) -> None:
    from clipscape.models import snapshot as snapshots
    from clipscape.models.projection import pca_2d

    key = snapshots.snapshot_key(encoder.key, [str(root)])
    snap = snapshots.load(cache, key, encoder.dim)
    assert snap is not None, "the first open wrote no snapshot"
    assert snapshots.save_map(cache, key, snap.token, pca_2d(snap.embeddings), "umap")


def run_child(root: Path, cache: Path, mode: str) -> dict:
    env = dict(os.environ, CLIPSCAPE_CACHE_DIR=str(cache), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, __file__, "--child", str(root), str(cache), mode], env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rss_mb(peak: bool) -> float:
    if peak:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _watch_collections():
    """Every cyclic garbage collection from now on: which thread ran it, its generation, how long.
    Returns a function giving, for the GUI thread and for the others, [count, longest ms, total
    ms] and the collections over 20 ms as (thread, seconds after ``t0``, generation, ms)."""
    import gc
    import threading

    gui, seen = threading.get_ident(), []
    began: dict[int, float] = {}

    def on_collect(phase, info):
        now, me = time.perf_counter(), threading.get_ident()
        if phase == "start":
            began[me] = now
        elif me in began:
            start = began.pop(me)
            seen.append((me == gui, start, info["generation"], (now - start) * 1000))

    gc.callbacks.append(on_collect)

    def report(t0: float) -> dict:
        gc.callbacks.remove(on_collect)
        out = {}
        for name, on_gui in (("gui", True), ("workers", False)):
            ms = [c[3] for c in seen if c[0] == on_gui]
            out[name] = [len(ms), round(max(ms, default=0.0), 1), round(sum(ms), 1)]
        out["over_20ms"] = [("gui" if on_gui else "worker", round(start - t0, 3), gen, round(ms))
                            for on_gui, start, gen, ms in seen if ms > 20]
        return out

    return report


def child(root: Path, cache: Path, mode: str) -> None:
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from clipscape.app.main_window import MainWindow

    settings = QSettings(str(cache / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings, model=("demo", None), device="cpu")
    s = window.session
    window.show()
    QTest.qWaitForWindowExposed(window)

    def wait(predicate, timeout_s=1800.0) -> None:
        end = time.perf_counter() + timeout_s
        while not predicate():
            if time.perf_counter() > end:
                raise TimeoutError
            app.processEvents(QEventLoop.AllEvents, 5)
            time.sleep(0.001)

    wait(lambda: s.encoder is not None)
    base_mb = _rss_mb(peak=False)
    gaps: list[float] = []
    stalls: list[tuple[float, float]] = []   # (seconds after open when it began, ms) of stops over 50 ms
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(max(0.0, (now - last[0]) * 1000 - TICK_MS))
        if gaps[-1] > 50:
            stalls.append((round(last[0] - t0, 3), round(gaps[-1])))
        last[0] = now

    collections = _watch_collections()
    timer = QTimer(timerType=Qt.PreciseTimer, interval=TICK_MS)
    timer.timeout.connect(tick)
    marks: dict[str, float] = {}
    s.coordsChanged.connect(lambda: s.coords is not None and marks.setdefault("map", time.perf_counter()))
    timer.start()
    t0 = last[0] = time.perf_counter()
    window.open_paths([str(root)])
    wait(lambda: "map" in marks)
    wait(lambda: s.collection is not None and not s.jobs.is_running("index") and not s.jobs.is_running("carry"))
    checked = time.perf_counter()
    end = checked + SETTLE_S
    wait(lambda: time.perf_counter() > end)
    result = {"images": len(s.collection), "map_s": marks["map"] - t0, "checked_s": checked - t0,
              "map_kind": s.map_kind, "base_mb": base_mb}
    if mode == "reopen":
        recoloured = []
        s.queryChanged.connect(lambda: s.scores is not None and recoloured.append(time.perf_counter()))
        start = time.perf_counter()
        window.search_bar.caption.setText(CAPTION)
        window.search_bar.caption.textEdited.emit(CAPTION)
        wait(lambda: bool(recoloured))
        result["caption_ms"] = (recoloured[0] - start) * 1000
        end = time.perf_counter() + SETTLE_S
        wait(lambda: time.perf_counter() > end)
    timer.stop()
    result["stall_ms"] = max(gaps) if gaps else 0.0
    result["stalls"] = stalls
    result["peak_mb"] = _rss_mb(peak=True)
    result["collections"] = collections(t0)
    for name in s.jobs.running():
        s.jobs.cancel(name)
    print(json.dumps(result), flush=True)
    window.close()


if __name__ == "__main__":
    main()
