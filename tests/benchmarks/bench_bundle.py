"""Benchmark: launch → window and launch → UMAP map of the demo folder, frozen bundle vs the venv.

Usage: python tests/benchmarks/bench_bundle.py [--bundle dist/clipscape] [--runs 3]

Each run starts `clipscape demo --exit-after-map` the way a user does, in a clean environment
(`env -i`, PATH=/usr/bin:/bin, its own HOME) on its own Xvfb screen, and reads the startup
probe's report (app/startup_probe.py): when the window was first exposed, when the UMAP map was
shown. "cold" runs get a fresh HOME (nothing cached: numba compiles UMAP, the demo photos are
encoded); "warm" runs reuse the HOME of the run before (numba's cache and the embeddings kept).
It also times `--self-test`. Medians are printed; the numbers go into the README.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def start_x(number: int) -> subprocess.Popen:
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        time.sleep(0.05)
    return server


def clean_env(exe: Path, home: Path) -> list[str]:
    """env -i …; a venv's numba would cache next to umap's sources in site-packages (warm for
    every later run), so it gets a cache in HOME, as the bundle has."""
    env = ["env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin"]
    return env if exe.parent.name != "bin" else [*env, f"NUMBA_CACHE_DIR={home}/numba"]


def launch(exe: Path, home: Path, display: str) -> dict:
    env = [*clean_env(exe, home), f"DISPLAY={display}"]
    t0 = time.time()
    proc = subprocess.run([*env, str(exe), "demo", "--exit-after-map"], capture_output=True, text=True, timeout=600)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if not report.get("ok"):
        sys.exit(f"{exe}: no map: {report}\n{proc.stderr[-2000:]}")
    return {"window": report["window"] - t0, "map": report["map"] - t0}


def self_test(exe: Path, home: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([*clean_env(exe, home), str(exe), "--self-test"], check=True,
                   capture_output=True, timeout=900)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=REPO / "dist" / "clipscape")
    ap.add_argument("--venv", type=Path, default=REPO / ".venv")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    targets = {"bundle": args.bundle / "clipscape", "venv": args.venv / "bin" / "clipscape"}
    server = start_x(171)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.runs):
                for name, exe in targets.items():
                    home = Path(tmp) / f"{name}-{run}"
                    cold = launch(exe, home, ":171")
                    warm = launch(exe, home, ":171")
                    r = results.setdefault(name, {})
                    for key, value in (("window cold", cold["window"]), ("map cold", cold["map"]),
                                       ("window warm", warm["window"]), ("map warm", warm["map"])):
                        r.setdefault(key, []).append(value)
                    r.setdefault("self-test (fresh HOME)", []).append(self_test(exe, Path(tmp) / f"st-{name}-{run}"))
                    print(name, run, {k: round(v[-1], 2) for k, v in r.items()}, flush=True)
    finally:
        server.terminate()
    keys = list(next(iter(results.values())))
    print("\n| median of %d runs | %s |" % (args.runs, " | ".join(results)))
    print("| --- |" + " ---: |" * len(results))
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{statistics.median(results[n][key]):.2f} s" for n in results) + " |")


if __name__ == "__main__":
    main()
