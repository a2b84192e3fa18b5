"""Benchmark: the map's frame time, hover pick and GUI stops at 10k-1M points (issue 10, level of detail).

Usage: QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_map_frames.py [--n 10000 100000 1000000]
       [--repeat 5] [--lod off] [--json]

For each N: synthetic clustered coordinates (30 Gaussian clusters of different spreads), five
classes, in the window's real MapView (1280×800, offscreen), and, in ms:
- frame full / mid / close: one forced repaint of the plot (``viewport().repaint()``, median of
  --repeat) with every point in view, with a view 1/8 of the map wide on a cluster, and at close
  zoom (~200 points in view; thumbnails shown, their images loaded: real JPEGs, the demo photos
  linked under the points' paths); "+ sel": the same with every other row selected;
- hover: ``MapView.row_at`` (what a mouse move and a click run) at 20 places, median, per zoom;
- zoom steps / pan steps: from full view to close zoom and back by wheel notches (1.35×), and a
  pan across the mid view in 5 % steps, every other row selected, 16 ms apart: the slowest step
  (the view's change and the events it causes: the repaint, the level-of-detail pick when due),
  and the longest stop a 5 ms timer on the GUI thread saw through all of those steps (with the
  longest pause of Python's cyclic garbage collector meanwhile, which can be that stop);
- place: ``Session._on_coords`` with new coordinates (the map taking N points).
The baseline column is a plain pyqtgraph ScatterPlotItem of the same N (pen=None, size 7, one
brush) in a PlotWidget of the same size: frame full / mid / close.
--lod off draws every point (budgets of 10^12, an unbounded margin, no thumbnails), which is what
the map did before the level of detail; run on an older checkout the script measures that as is.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/ helpers when run as a script

SIZE = (1280, 800)
NOTCH = 1.35
TICK_MS = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lod", choices=("on", "off"), default="on")
    ap.add_argument("--json", action="store_true", help="also print one JSON line per N")
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    results = []
    for n in args.n:
        r = measure(app, n, args.repeat, args.lod == "on")
        r["baseline"] = baseline(app, n, args.repeat)
        results.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
    table(results)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, 2)) * 4
    spread = rng.uniform(0.1, 0.8, 30)
    which = rng.integers(0, 30, n)
    return (centres[which] + rng.normal(size=(n, 2)) * spread[which, None]).astype(np.float32)


def views(xy: np.ndarray) -> dict[str, tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) of the full, mid and close views (the view box widens them to its aspect)."""
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    cx, cy = np.median(xy, axis=0)
    out = {"full": (x0, y0, x1, y1)}
    w = (x1 - x0) / 8
    out["mid"] = (cx - w / 2, cy - w / 2 * SIZE[1] / SIZE[0], cx + w / 2, cy + w / 2 * SIZE[1] / SIZE[0])
    aspect = SIZE[1] / SIZE[0]
    while w > 1e-6:   # narrow the view on the same centre until ~200 points are in it
        inside = (np.abs(xy[:, 0] - cx) <= w / 2) & (np.abs(xy[:, 1] - cy) <= w / 2 * aspect)
        if inside.sum() <= 220:
            break
        w /= 1.1
    out["close"] = (cx - w / 2, cy - w / 2 * aspect, cx + w / 2, cy + w / 2 * aspect)
    return {k: tuple(map(float, v)) for k, v in out.items()}


def measure(app, n: int, repeat: int, lod: bool) -> dict:
    from PySide6.QtCore import QPointF, Qt, QTimer

    from gui_support import classify, make_session
    from clipscape.app.map.view import MapView
    from clipscape.app.thumbnails import ThumbnailCache
    from clipscape.resources import DEMO_IMAGES

    xy = clustered(n)
    tmp = tempfile.mkdtemp(prefix="bench-map-")
    paths = [os.path.join(tmp, f"img_{i:07d}.jpg") for i in range(n)]
    session = make_session(Path(tmp), paths=paths, coords=xy, dim=4)
    classify(session, ["a", "b", "c", "d", "e"], np.random.default_rng(1).integers(-1, 5, n))
    view = MapView(session, ThumbnailCache(size=160, capacity=256))
    view.resize(*SIZE)
    view.show()
    detail = getattr(view, "detail", None)
    if detail is not None and not lod:
        detail.budget = detail.selected_budget = 10 ** 12
        detail.margin, detail.thumb_max = 1e6, -1
    plot, box = view.plot_widget(), view.plot_widget().getViewBox()
    app.processEvents()
    v = views(xy)
    photos = sorted(DEMO_IMAGES.glob("*.jpg"))
    x0, y0, x1, y1 = v["close"]
    near = np.flatnonzero((xy[:, 0] >= 2 * x0 - x1) & (xy[:, 0] <= 2 * x1 - x0)
                          & (xy[:, 1] >= 2 * y0 - y1) & (xy[:, 1] <= 2 * y1 - y0))
    for k, row in enumerate(near):   # real images for the rows around the close view
        os.symlink(photos[k % len(photos)], paths[row])

    def settle(ms: float = 60) -> None:
        end = time.perf_counter() + ms / 1000
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    def go(name: str) -> None:
        a, b, c, d = v[name]
        box.setRange(xRange=(a, c), yRange=(b, d), padding=0)
        settle()
        if detail is not None:
            detail.refresh()

    def frames() -> float:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            plot.viewport().repaint()
            times.append((time.perf_counter() - t) * 1000)
        return round(statistics.median(times), 1)

    def hover() -> float:
        rng = np.random.default_rng(2)
        rect = plot.viewport().rect()
        times = []
        for _ in range(20):
            pos = QPointF(rng.uniform(0, rect.width()), rng.uniform(0, rect.height()))
            t = time.perf_counter()
            view.row_at(pos) if hasattr(view, "row_at") else view.mouse.row_at(pos, view._coords, view._visible)
            times.append((time.perf_counter() - t) * 1000)
        return round(statistics.median(times), 2)

    out: dict = {"n": n, "lod": lod and detail is not None}
    settle(200)
    for name in ("full", "mid", "close"):
        go(name)
        if name == "close" and detail is not None and lod:
            end = time.perf_counter() + 30
            while time.perf_counter() < end and (not len(detail.thumbs.rows())
                                                 or len(detail.thumbs.shown_rows()) < len(detail.thumbs.rows())):
                settle(20)
            out["thumbnails"] = int(len(detail.thumbs.shown_rows()))
        out[f"frame_{name}"] = frames()
        out[f"hover_{name}"] = hover()
        if detail is not None:
            out[f"drawn_{name}"] = int(len(detail.drawn_rows()))
    session.set_selection(np.arange(0, n, 2))
    settle()
    for name in ("full", "mid", "close"):
        go(name)
        out[f"frame_{name}_sel"] = frames()

    # interaction: wheel notches from full view to close zoom and back, then a pan, with a selection
    gaps, last = [0.0], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000 - TICK_MS)
        last[0] = now

    timer = QTimer(timerType=Qt.TimerType.PreciseTimer, interval=TICK_MS)
    timer.timeout.connect(tick)
    collections, started = [0.0], [0.0]

    def collected(phase: str, _info: dict) -> None:   # the cyclic GC's pauses, which no map code makes
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            collections.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(collected)
    go("full")
    a, b, c, d = v["close"]
    centre = QPointF((a + c) / 2, (b + d) / 2)
    steps = int(np.ceil(np.log((v["full"][2] - v["full"][0]) / (c - a)) / np.log(NOTCH)))
    last[0] = time.perf_counter()
    timer.start()

    def step(change) -> float:
        """One input event's worth: the change, then the events it causes (the repaint, and
        the level-of-detail pick when its throttle is due)."""
        t = time.perf_counter()
        change()
        app.processEvents()
        ms = (time.perf_counter() - t) * 1000
        settle(16)
        return ms

    zoom = [step(lambda: box.scaleBy(s=(1 / NOTCH, 1 / NOTCH), center=centre)) for _ in range(steps)]
    zoom += [step(lambda: box.scaleBy(s=(NOTCH, NOTCH), center=centre)) for _ in range(steps)]
    go("mid")
    last[0] = time.perf_counter()
    (mx0, mx1), _ = box.viewRange()
    pan = [step(lambda: box.translateBy(x=(mx1 - mx0) * 0.05)) for _ in range(40)]
    timer.stop()
    gc.callbacks.remove(collected)
    out["gc_pause_max"] = round(max(collections), 1)
    out["zoom_step_max"] = round(max(zoom), 1)
    out["zoom_step_median"] = round(statistics.median(zoom), 1)
    out["pan_step_max"] = round(max(pan), 1)
    out["gui_stop_max"] = round(max(gaps), 1)

    t = time.perf_counter()
    session._on_coords(xy[::-1].copy(), "umap")
    out["place"] = round((time.perf_counter() - t) * 1000, 1)
    view.close()
    session.shutdown()
    return out


def baseline(app, n: int, repeat: int) -> dict:
    """A plain ScatterPlotItem of the same points: frame full / mid / close."""
    import pyqtgraph as pg

    xy = clustered(n)
    widget = pg.PlotWidget(background="w")
    widget.resize(*SIZE)
    item = pg.ScatterPlotItem(x=xy[:, 0], y=xy[:, 1], pen=None, size=7, brush=pg.mkBrush(31, 119, 180))
    widget.addItem(item)
    widget.getViewBox().setAspectLocked(True)
    widget.show()
    app.processEvents()
    out = {}
    for name, (a, b, c, d) in views(xy).items():
        widget.getViewBox().setRange(xRange=(a, c), yRange=(b, d), padding=0)
        app.processEvents()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            widget.viewport().repaint()
            times.append((time.perf_counter() - t) * 1000)
        out[f"frame_{name}"] = round(statistics.median(times), 1)
    widget.close()
    return out


ROWS = [("frame full", "frame_full"), ("frame mid (1/8 wide)", "frame_mid"),
        ("frame close (thumbnails)", "frame_close"), ("frame full + sel", "frame_full_sel"),
        ("frame mid + sel", "frame_mid_sel"), ("frame close + sel", "frame_close_sel"),
        ("hover full", "hover_full"), ("hover mid", "hover_mid"), ("hover close", "hover_close"),
        ("zoom step, slowest", "zoom_step_max"), ("zoom step, median", "zoom_step_median"),
        ("pan step, slowest", "pan_step_max"), ("longest GUI stop (5 ms timer)", "gui_stop_max"),
        ("longest GC pause in that time", "gc_pause_max"),
        ("place N points (_on_coords)", "place"), ("points drawn, full", "drawn_full"),
        ("points drawn, mid", "drawn_mid"), ("points drawn, close", "drawn_close"),
        ("thumbnails shown, close", "thumbnails")]


def table(results: list[dict]) -> None:
    drawn = "level of detail" if any(r["lod"] for r in results) else "every point drawn"
    head = f"{'ms, ' + drawn:<32}" + "".join(f"{r['n']:>12,}" for r in results)
    print(head)
    print("-" * len(head))
    for label, key in ROWS:
        if any(key in r for r in results):
            print(f"{label:<32}" + "".join(f"{r.get(key, '-'):>12}" for r in results))
    for key in ("frame_full", "frame_mid", "frame_close"):
        print(f"{'baseline ScatterPlotItem ' + key[6:]:<32}"
              + "".join(f"{r['baseline'][key]:>12}" for r in results))


if __name__ == "__main__":
    main()
