"""Benchmark: images/s of `clipscape encode` vs a naive open_clip loop vs the model alone.

Usage: python tests/benchmarks/bench_encode.py [--photos 128] [--work /tmp/clipscape-bench]
       [--batch-size 32] [--workers N] [--repeat 3]

What it compares, on the same camera-sized JPEGs (../shared/bench/make_photos.py, 4032×3024) and
the same ViT-B-32 (random weights from ../shared/bench/make_random_model.py: speed does not
depend on the values):
- clipscape: the real `clipscape encode FOLDER --model local-dir:… --json` command, fresh cache;
  its images/s counts scan, decode, preprocess, forward pass and SQLite commits.
- naive: what a user would write first, one image at a time:
  ``model.encode_image(preprocess(Image.open(p).convert("RGB")).unsqueeze(0))``.
- model only: encode_image on synthetic preprocessed tensors in batches (no decode at all),
  the ceiling for any pipeline on this machine.
Each is run --repeat times and the median is reported (this machine's timings vary by ±5 %).
The photos and the model are made once and kept in --work between runs.
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

REPO = Path(__file__).resolve().parents[2]
SHARED_BENCH = REPO.parent / "shared" / "bench"


def ensure_inputs(work: Path, photos: int) -> tuple[Path, Path]:
    folder, model = work / f"photos-{photos}", work / "vit-b-32-random"
    if not folder.is_dir():
        print(f"making {photos} camera-sized photos in {folder} …", flush=True)
        subprocess.run([sys.executable, str(SHARED_BENCH / "make_photos.py"), str(folder), str(photos)], check=True)
    if not (model / "open_clip_model.safetensors").is_file():
        print(f"writing a random-weight ViT-B-32 to {model} …", flush=True)
        subprocess.run([sys.executable, str(SHARED_BENCH / "make_random_model.py"), "ViT-B-32", str(model)],
                       check=True)
    return folder, model


def bench_clipscape(folder: Path, model: Path, batch_size: int, workers: int | None) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cmd = [sys.executable, "-m", "clipscape.models.cli", "encode", str(folder), "--model", f"local-dir:{model}",
               "--cache-dir", cache, "--batch-size", str(batch_size), "--json", "--quiet", "--device", "cpu"]
        if workers:
            cmd += ["--decode-workers", str(workers)]
        out = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout
    summary = json.loads(out)
    return {"images": summary["embedded"], "seconds": summary["seconds"], "ips": summary["images_per_second"]}


def bench_naive(folder: Path, model_dir: Path) -> dict:
    import open_clip
    import torch
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{model_dir}")
    model.eval()
    paths = sorted(p for p in folder.rglob("*.jpg"))
    start = time.perf_counter()
    with torch.inference_mode():
        for p in paths:
            model.encode_image(preprocess(Image.open(p).convert("RGB")).unsqueeze(0))
    seconds = time.perf_counter() - start
    return {"images": len(paths), "seconds": seconds, "ips": len(paths) / seconds}


def bench_model_only(model_dir: Path, n: int, batch_size: int) -> dict:
    import open_clip
    import torch

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{model_dir}")
    model.eval()
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    batch = torch.randn(batch_size, 3, size, size)
    with torch.inference_mode():
        model.encode_image(batch[:2])  # warm-up
        start = time.perf_counter()
        done = 0
        while done < n:
            k = min(batch_size, n - done)
            model.encode_image(batch[:k])
            done += k
    seconds = time.perf_counter() - start
    return {"images": n, "seconds": seconds, "ips": n / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=int, default=128)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "clipscape-bench")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="decode threads for clipscape (default: its own)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    folder, model = ensure_inputs(a.work, a.photos)
    runs = {
        "clipscape encode": lambda: bench_clipscape(folder, model, a.batch_size, a.workers),
        "naive open_clip loop": lambda: bench_naive(folder, model),
        "model only (synthetic)": lambda: bench_model_only(model, a.photos, a.batch_size),
    }
    results = {}
    for name, bench in runs.items():
        trials = sorted((bench() for _ in range(a.repeat)), key=lambda r: r["ips"])
        results[name] = trials[len(trials) // 2]
        print(f"{name}: " + ", ".join(f"{t['ips']:.2f}" for t in trials) + " images/s", flush=True)
    ours, naive, ceiling = (results[k]["ips"] for k in results)
    print(f"\nViT-B-32 on {os.cpu_count()} CPU cores, {a.photos} photos of 4032×3024, batch {a.batch_size}")
    for name, r in results.items():
        print(f"  {name:24s} {r['ips']:7.2f} images/s  ({r['images']} images in {r['seconds']:.1f} s)")
    print(f"  clipscape / naive      {ours / naive:5.2f}×   (target ≥ 3×)")
    print(f"  clipscape / model only {ours / ceiling:5.0%}    (target ≥ 80 %)")


if __name__ == "__main__":
    main()
