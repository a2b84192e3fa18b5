"""Benchmark: does `clipscape encode` run at the machine's ceiling on a GPU? (issue 12)

Usage: python tests/benchmarks/bench_gpu.py [--device auto|cuda|cpu] [--photos N] [--unique K]
       [--batch-sizes 64,256] [--workers N] [--work DIR]

One run prints, for each batch size:
- clipscape encode: images/s of the real `clipscape encode FOLDER --json` command on a fresh
  cache (scan, decode, copy to the device, forward pass, SQLite commits), and its peak GPU memory;
- model only: encode_image on synthetic tensors already on the device, in the model's dtype (no
  decode, no copy): the ceiling the device sets, and its peak GPU memory;
- decode ceiling: load_rgb + prepare on every core and nothing else (the ceiling the CPU decode
  pool sets; it does not depend on the batch size);
- clipscape / min(model only, decode ceiling): issue 12 asks for at least 80 %.
Then a forced out-of-memory back-off: on CUDA the process is held to a small share of GPU memory
(torch.cuda.set_per_process_memory_fraction) and one over-large batch is encoded for real; on a
CPU the out-of-memory error is simulated. Either way it prints the batch the encoder backed off
to and the cosine against the same images encoded without it. On CUDA it last prints nvjpeg's
full-size decode rate (torchvision.io.decode_jpeg on the GPU), the figure that decides whether
GPU JPEG decoding is worth building (it is not built: issue 12's note says why).

Inputs, made once and kept in --work: K camera-sized photos (4032×3024, make_photos.py beside
this file, one process per core), hard-linked to N names (the decode cost is per file read, and
the page cache is warmed before timing), and a random-weight ViT-B-32 (make_random_model.py
beside this file: speed does not depend on the weights' values). About 2-3 minutes on a
16-core GPU machine; ``--device cpu`` is a smoke test (24 photos, a minute or two on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GiB = 1 << 30

CHILD = """
import json, sys, torch
from clipscape.models.cli import main
code = main(sys.argv[2:])
cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
json.dump({"allocated": torch.cuda.max_memory_allocated() if cuda else 0,
           "reserved": torch.cuda.max_memory_reserved() if cuda else 0}, open(sys.argv[1], "w"))
sys.exit(code)
"""


def ensure_inputs(work: Path, photos: int, unique: int) -> tuple[Path, Path]:
    """(folder of ``photos`` JPEGs, random ViT-B-32 folder), made with the scripts beside this file."""
    model = work / "vit-b-32-random"
    if not (model / "open_clip_model.safetensors").is_file():
        print(f"writing a random-weight ViT-B-32 to {model} …", flush=True)
        subprocess.run([sys.executable, str(HERE / "make_random_model.py"), "ViT-B-32", str(model)], check=True,
                       stdout=subprocess.DEVNULL)
    source = work / f"unique-{unique}"
    if not source.is_dir():
        print(f"making {unique} camera-sized photos in {source} …", flush=True)
        parts = min(unique, os.cpu_count() or 1)
        share = [unique // parts + (i < unique % parts) for i in range(parts)]
        procs = [subprocess.Popen([sys.executable, str(HERE / "make_photos.py"), str(source / f"part{i}"), str(n),
                                   "--seed", str(i)]) for i, n in enumerate(share)]
        if any(p.wait() for p in procs):
            sys.exit("make_photos.py failed")
    folder = work / f"photos-{photos}-of-{unique}"
    if not folder.is_dir():
        originals = sorted(source.rglob("*.jpg"))
        staging = work / f".staging-{os.getpid()}"
        for i in range(photos):
            target = staging / f"album{i % 16}" / f"IMG_{i:06d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(originals[i % len(originals)], target)
        staging.rename(folder)
    return folder, model


def warm_page_cache(paths: list[Path]) -> None:
    for p in paths:
        p.read_bytes()


def decode_ceiling(paths: list[Path], encoder, workers: int) -> dict:
    """Images/s of decode + prepare alone, on ``workers`` threads (the CPU pool's ceiling)."""
    from clipscape.models.pipeline import decode

    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        for _ in pool.map(lambda p: decode(str(p), encoder), paths):
            pass
        seconds = time.perf_counter() - start
    return {"ips": len(paths) / seconds, "seconds": seconds}


def model_only(encoder, n: int, batch_size: int) -> dict:
    """Images/s of the forward pass alone on synthetic tensors already on the device."""
    import torch

    size = encoder.input_size
    batch = torch.randn(batch_size, 3, size, size, device=encoder.device).to(encoder.dtype)
    cuda = encoder.device == "cuda"
    with torch.inference_mode():
        encoder.model.encode_image(batch)       # warm-up: kernels chosen, memory pooled
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start, done = time.perf_counter(), 0
        while done < n:
            encoder.model.encode_image(batch).float().norm()
            done += batch_size
        if cuda:
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"ips": done / seconds, "seconds": seconds, **_memory(cuda)}


def clipscape_encode(folder: Path, model: Path, device: str, batch_size: int, workers: int | None) -> dict:
    """The real command on a fresh cache; its own images/s and its peak GPU memory."""
    with tempfile.TemporaryDirectory() as tmp:
        memory = Path(tmp) / "memory.json"
        cmd = [sys.executable, "-c", CHILD, str(memory), "encode", str(folder), "--model", f"local-dir:{model}",
               "--cache-dir", str(Path(tmp) / "cache"), "--batch-size", str(batch_size), "--json", "--quiet",
               "--device", device]
        if workers:
            cmd += ["--decode-workers", str(workers)]
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"clipscape encode failed:\n{done.stderr}")
        summary, peak = json.loads(done.stdout), json.loads(memory.read_text())
    return {"ips": summary["images_per_second"], "seconds": summary["seconds"], "images": summary["embedded"],
            "allocated": peak["allocated"], "reserved": peak["reserved"]}


def forced_out_of_memory(encoder, paths: list[Path], batch_size: int) -> str:
    """Encode one over-large batch with too little memory; say what the back-off did."""
    import numpy as np
    import torch

    from clipscape.models.pipeline import decode

    images = [decode(str(p), encoder) for p in paths[:64]]
    batch = encoder.host_batch([images[i % len(images)] for i in range(batch_size)])
    encoder.max_batch = 64
    expected = encoder.encode_images(batch)
    encoder.max_batch = None
    if encoder.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        allowed = torch.cuda.memory_reserved() + GiB          # the model plus one GiB to work in
        torch.cuda.set_per_process_memory_fraction(allowed / torch.cuda.get_device_properties(0).total_memory)
        how = f"real, GPU memory held to {allowed / GiB:.2f} GiB"
        restore = lambda: torch.cuda.set_per_process_memory_fraction(1.0)  # noqa: E731
    else:
        real = encoder.model.encode_image

        def picky(x, *a, **k):
            if len(x) > 8:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return real(x, *a, **k)

        encoder.model.encode_image = picky
        how = "simulated above 8 images (no GPU)"
        restore = lambda: delattr(encoder.model, "encode_image")  # noqa: E731
    try:
        start = time.perf_counter()
        got = encoder.encode_images(batch)
        seconds = time.perf_counter() - start
    finally:
        restore()
    backed_off, encoder.max_batch = encoder.max_batch, None
    cosine = float(np.sum(got * expected, axis=1).min())
    return (f"batch {batch_size} -> went on at {backed_off} ({how}); {batch_size / seconds:.0f} images/s "
            f"including the failed tries; min cosine vs unforced {cosine:.5f}")


def nvjpeg_rate(paths: list[Path], n: int) -> str:
    """Full-size GPU JPEG decode images/s (torchvision.io.decode_jpeg on CUDA, batches of 32)."""
    import torch
    from torchvision.io import decode_jpeg, read_file

    data = [read_file(str(p)) for p in paths[:64]]
    decode_jpeg(data[:4], device="cuda")
    torch.cuda.synchronize()
    start, done = time.perf_counter(), 0
    while done < n:
        decode_jpeg([data[(done + i) % len(data)] for i in range(32)], device="cuda")
        done += 32
    torch.cuda.synchronize()
    return f"{done / (time.perf_counter() - start):.0f} images/s (full size, no resize; CPU pool's is above)"


def _memory(cuda: bool) -> dict:
    import torch

    if not cuda:
        return {"allocated": 0, "reserved": 0}
    return {"allocated": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved()}


def _gib(r: dict) -> str:
    return f"{r['allocated'] / GiB:5.2f} GiB peak ({r['reserved'] / GiB:.2f} reserved)" if r["reserved"] else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--photos", type=int, default=None, help="N images to encode (default 4096 on a GPU, 24 on a CPU)")
    ap.add_argument("--unique", type=int, default=None, help="K distinct photos made (default 256, 8 on a CPU)")
    ap.add_argument("--batch-sizes", default="64,256")
    ap.add_argument("--workers", type=int, default=None, help="decode threads for clipscape (default: its own)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "clipscape-bench-gpu")
    a = ap.parse_args()

    import torch

    from clipscape.models.encoder import ModelSpec, load_encoder
    from clipscape.models.pipeline import available_cores, decode_workers

    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    on_gpu = device == "cuda"
    photos = a.photos or (4096 if on_gpu else 24)
    unique = min(photos, a.unique or (256 if on_gpu else 8))
    started = time.perf_counter()
    folder, model_dir = ensure_inputs(a.work, photos, unique)
    paths = sorted(folder.rglob("*.jpg"))
    warm_page_cache(paths)
    encoder = load_encoder(ModelSpec.parse(f"local-dir:{model_dir}"), device=device)
    cores, workers = available_cores(), decode_workers(a.workers)
    name = torch.cuda.get_device_name(0) if on_gpu else "CPU"
    print(f"\nViT-B-32 ({encoder.dtype}) on {name}; {cores} cores, {workers} decode threads; torch {torch.__version__}")
    print(f"{photos} photos of 4032×3024 ({unique} distinct, hard-linked), inputs ready in "
          f"{time.perf_counter() - started:.0f} s\n", flush=True)

    ceiling = decode_ceiling(paths, encoder, cores)
    print(f"decode ceiling ({cores} threads): {ceiling['ips']:8.1f} images/s", flush=True)
    for size in (int(s) for s in a.batch_sizes.split(",")):
        batch = min(size, photos)
        alone = model_only(encoder, photos, batch)
        ours = clipscape_encode(folder, model_dir, device, batch, a.workers)
        bound = min(alone["ips"], ceiling["ips"])
        print(f"batch {batch:4d}: clipscape encode {ours['ips']:8.1f} images/s ({ours['images']} in "
              f"{ours['seconds']:.1f} s), GPU memory {_gib(ours)}")
        print(f"            model only       {alone['ips']:8.1f} images/s, GPU memory {_gib(alone)}")
        print(f"            clipscape / min(model only, decode ceiling) = {ours['ips'] / bound:.0%} "
              f"(target ≥ 80 %; bound by {'decode' if ceiling['ips'] < alone['ips'] else 'the model'})", flush=True)
    print(f"forced out-of-memory: {forced_out_of_memory(encoder, paths, 2048 if on_gpu else min(photos, 32))}",
          flush=True)
    if on_gpu:
        try:
            print(f"nvjpeg decode: {nvjpeg_rate(paths, min(photos, 2048))}")
        except Exception as e:  # an optional figure: never lose the ones above to it
            print(f"nvjpeg decode: not measured ({type(e).__name__}: {e})")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
