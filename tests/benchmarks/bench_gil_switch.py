"""Benchmark: why the window sets a short GIL switch interval (app/main_window.py, SWITCH_INTERVAL_S).

Usage: python tests/benchmarks/bench_gil_switch.py

A worker thread decodes a million snapshot paths over and over (models/snapshot.py, the first
thing a reopen does, in steps of a few ms), while the main thread runs "paints": 200 calls that
let the GIL go and come back into Python, as a paint of the map does between Qt and pyqtgraph.
Each return waits until the worker hands the GIL over: up to the switch interval. Prints the
slowest paint and the time for 20 of them, at Python's default 5 ms and at the window's.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from clipscape.app.main_window import SWITCH_INTERVAL_S
from clipscape.models import snapshot


def main() -> None:
    paths = [f"/photos/{i // 1000:04d}/img_{i:07d}.jpg" for i in range(1_000_000)]
    encoded = snapshot._encode_paths(paths)
    del paths
    for interval in (0.005, SWITCH_INTERVAL_S):
        sys.setswitchinterval(interval)
        stop = threading.Event()
        worker = threading.Thread(target=lambda: [snapshot._decode_paths(encoded) for _ in iter(stop.is_set, True)])
        worker.start()
        time.sleep(0.3)
        slowest, started = 0.0, time.perf_counter()
        for _ in range(20):
            paint = time.perf_counter()
            for _ in range(200):
                os.stat("/")            # lets the GIL go, as a call into Qt does
            slowest = max(slowest, time.perf_counter() - paint)
        print(f"switch interval {interval * 1000:.1f} ms: slowest paint {slowest * 1000:.0f} ms, "
              f"20 paints {time.perf_counter() - started:.2f} s", flush=True)
        stop.set()
        worker.join()


if __name__ == "__main__":
    main()
