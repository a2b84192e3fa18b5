"""Benchmark: whole-process start-up of the ``clipscape`` command line (issue 8, item 7).

Usage: python tests/benchmarks/bench_cli.py [--work /tmp/clipscape-bench-cli] [--repeat 3] [--images 100]

Each case runs the installed console script (``clipscape`` next to this interpreter) as a shell
would, and reports the median wall-clock seconds of --repeat runs (this machine's timings vary by
±5-10 %: it has two cores shared with other work):
- ``--help`` and ``--version``: argument parsing alone (no torch);
- offline hub model: ``encode F --model ViT-B-32`` with an empty Hugging Face cache and an
  unreachable HF_ENDPOINT, i.e. the time until the one-line "cannot be fetched" error;
- cached search: ``search F "a red circle"`` on a folder of --images shapes-world images that
  are all already in the cache, with a random-weight ViT-B-32 as a ``local-dir:`` model (a
  600 MB safetensors file, like a real checkpoint; ../shared/bench/make_random_model.py) and
  with the bundled demo model;
- the import profile: seconds to import torch, open_clip and huggingface_hub in a fresh process.
The model, the folder and the warm cache are made once and kept in --work between runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_BENCH = REPO.parent / "shared" / "bench"
SCRIPT = Path(sys.executable).with_name("clipscape")


def timed(argv: list[str], env: dict[str, str] | None = None, expect: int | None = 0) -> tuple[float, str]:
    """(seconds, stderr) of one run of the console script; checks its exit status."""
    started = time.perf_counter()
    proc = subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if expect is not None and proc.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return seconds, proc.stderr


def median(argv: list[str], repeat: int, **kwargs) -> float:
    return statistics.median(timed(argv, **kwargs)[0] for _ in range(repeat))


def ensure_inputs(work: Path, images: int) -> tuple[Path, Path]:
    """(folder of shapes-world images, random ViT-B-32 local-dir model), made once."""
    folder, model = work / f"shapes-{images}", work / "vit-b-32-random"
    if not folder.is_dir():
        from clipscape.models.shapes_world import write_folder

        write_folder(folder, images, seed=1, size=224)
    if not (model / "open_clip_model.safetensors").is_file():
        print(f"writing a random-weight ViT-B-32 to {model} …", flush=True)
        subprocess.run([sys.executable, str(SHARED_BENCH / "make_random_model.py"), "ViT-B-32", str(model)],
                       check=True)
    return folder, model


def import_seconds(module: str, repeat: int) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(repeat)]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "clipscape-bench-cli")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    folder, model = ensure_inputs(args.work, args.images)
    cache = args.work / "cache"
    figures: dict[str, float] = {}

    figures["--help"] = median(["--help"], args.repeat)
    figures["search --help"] = median(["search", "--help"], args.repeat)
    version = timed(["--version"], expect=None)
    figures["--version"] = median(["--version"], args.repeat, expect=None) if "unrecognized" not in version[1] \
        else float("nan")

    hub_cache = args.work / "empty-hf-cache"
    hub_cache.mkdir(exist_ok=True)
    offline = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy")}
    offline.update(HF_HUB_CACHE=str(hub_cache), HF_HOME=str(args.work / "empty-hf-home"),
                   HF_ENDPOINT="https://hub.clipscape-bench.invalid")
    figures["offline hub model error"] = median(["encode", str(folder), "--model", "ViT-B-32", "--quiet",
                                                 "--cache-dir", str(cache)], args.repeat, env=offline, expect=1)

    for label, spec in (("random ViT-B-32 local-dir", f"local-dir:{model}"), ("demo model", "demo")):
        common = [str(folder), "--model", spec, "--quiet", "--cache-dir", str(cache), "--device", "cpu"]
        timed(["encode", *common])  # warm the embedding cache (and any hash cache)
        figures[f"search, cached folder, {label}"] = median(["search", *common[:1], "a red circle", *common[1:]],
                                                            args.repeat)
    for module in ("torch", "open_clip", "huggingface_hub"):
        figures[f"import {module}"] = import_seconds(module, args.repeat)

    width = max(map(len, figures))
    for name, seconds in figures.items():
        print(f"{name:<{width}}  {seconds:6.2f} s")
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
