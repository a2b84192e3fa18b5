"""Benchmark: a big cached library (issue 10) — the core's reopen path beside bare baselines.

Usage: python tests/benchmarks/bench_scale.py [--sizes 10000,100000] [--work /tmp/clipscape-bench-scale]
       [--repeat 3]

For each N it builds, once (kept in --work), N cached images without encoding anything: a few
hundred small distinct shapes-world JPEGs copied into sub-folders of at most 1,000, and the
embedding store pre-filled with clustered unit vectors (the demo model's 64-d) keyed by each
file's path, size and mtime, exactly as an encode would have left it. Then, medians of
--repeat, each figure beside the baseline it should be compared with:
- scan: models.scan.scan vs a bare os.scandir + stat walk;
- cache read: store.partition + store.load of every file vs a bare ``SELECT path, vector``;
- reopen: indexer.index(prune=False) end to end — what every command and every window open does
  first — reading the store's rows ("store only", as before the snapshot) and reading the last
  result's snapshot (models/snapshot.py; the store is asked only about files that changed);
- caption search: models.search.cosine top 10 vs a bare ``emb @ q`` + argpartition;
- ``clipscape search`` whole process, the caption already cached (no torch import).
The window's figures of the issue (first map, frame times, freezes, memory) are not measured
here yet.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DISTINCT = 300      # distinct small JPEGs, copied round-robin
PER_FOLDER = 1000
CAPTION = "a red circle"


def build(root: Path, cache: Path, n: int, encoder) -> None:
    """N cached images under ``root`` and their rows in ``cache`` (skipped if already there)."""
    from clipscape.models.scan import scan
    from clipscape.models.shapes_world import write_folder
    from clipscape.models.store import EmbeddingStore

    done = root / ".complete"
    if done.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    seeds = root.parent / "distinct"
    if not seeds.is_dir():
        write_folder(seeds, DISTINCT, seed=11, size=64)
    sources = sorted(seeds.iterdir())
    started = time.perf_counter()
    for i in range(n):
        folder = root / f"{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True)
        shutil.copyfile(sources[i % len(sources)], folder / f"img_{i:07d}.jpg")
    files = scan(root).files
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, encoder.dim)).astype(np.float32)
    with EmbeddingStore(cache) as store:
        model = store.model_id(encoder.key, encoder.identity, encoder.dim)
        for start in range(0, len(files), 10_000):
            chunk = files[start:start + 10_000]
            vectors = centres[rng.integers(0, len(centres), len(chunk))] + rng.normal(
                scale=0.3, size=(len(chunk), encoder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.add_batch(model, chunk, vectors)
    done.write_text("")
    print(f"built {n} cached images in {time.perf_counter() - started:.0f} s", flush=True)


def median_seconds(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def bare_walk(root: Path) -> int:
    count, stack = 0, [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir():
                    stack.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count


def bare_select(cache: Path) -> np.ndarray:
    con = sqlite3.connect(cache / "embeddings.sqlite")
    rows = con.execute("SELECT path, vector FROM embeddings").fetchall()
    con.close()
    return np.frombuffer(b"".join(v for _, v in rows), np.float32)


def measure(n: int, root: Path, cache: Path, encoder, repeat: int) -> list[tuple[str, float, str, float]]:
    from clipscape.models.indexer import index, run
    from clipscape.models.scan import scan
    from clipscape.models.search import search
    from clipscape.models.store import EmbeddingStore
    from clipscape.models.zeroshot import CachedTextEncoder

    files = scan(root).files
    rows = []
    rows.append(("scan", median_seconds(lambda: scan(root), repeat), "bare scandir+stat", median_seconds(
        lambda: bare_walk(root), repeat)))

    def cache_read():
        with EmbeddingStore(cache) as store:
            model = store.model_id(encoder.key, encoder.identity, encoder.dim)
            cached, _ = store.partition(model, files, under=[str(root)])  # as index() reads them
            store.load_found(model, [f.path for f in cached], under=[str(root)])

    rows.append(("partition + load", median_seconds(cache_read, repeat), "bare SELECT",
                 median_seconds(lambda: bare_select(cache), repeat)))

    def reopen(use_snapshot=True):
        with EmbeddingStore(cache) as store:
            return run(index(root, encoder, store, prune=False, use_snapshot=use_snapshot))

    rows.append(("index() reopen, store only", median_seconds(lambda: reopen(False), repeat), "scan + bare SELECT",
                 rows[0][3] + rows[1][3]))
    collection = reopen()   # writes the snapshot if there is none
    rows.append(("index() reopen, snapshot", median_seconds(reopen, repeat), "scan + bare SELECT",
                 rows[0][3] + rows[1][3]))
    with EmbeddingStore(cache) as store:
        texts = CachedTextEncoder(encoder, store)
        query = texts.encode_texts([CAPTION])[0]
        rows.append(("search() top 10", median_seconds(lambda: search(collection, texts, CAPTION, 10), repeat),
                     "emb @ q + argpartition", median_seconds(
                         lambda: np.argpartition(-(collection.embeddings @ query), 10)[:10], repeat)))
    argv = [sys.executable, "-m", "clipscape.app.launch", "search", str(root), CAPTION, "--model", "demo",
            "--cache-dir", str(cache), "--quiet", "--top", "10"]
    subprocess.run(argv, check=True, capture_output=True)  # the caption's embedding is cached now
    rows.append(("clipscape search (process)", median_seconds(
        lambda: subprocess.run(argv, check=True, capture_output=True), repeat), "python -c pass", median_seconds(
        lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "clipscape-bench-scale")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from clipscape.models.encoder import ModelSpec, load_encoder

    encoder = load_encoder(ModelSpec.parse("demo"), device="cpu")
    for n in (int(s) for s in args.sizes.split(",")):
        root, cache = args.work / f"photos-{n}", args.work / f"cache-{n}"
        build(root, cache, n, encoder)
        print(f"\nN = {n}")
        for name, seconds, baseline, base_seconds in measure(n, root, cache, encoder, args.repeat):
            print(f"  {name:<28} {seconds:8.3f} s   {baseline:<24} {base_seconds:8.3f} s   "
                  f"x{seconds / max(base_seconds, 1e-9):.1f}", flush=True)


if __name__ == "__main__":
    main()
