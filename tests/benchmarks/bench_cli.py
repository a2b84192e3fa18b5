"""Benchmark: whole-process start-up of the ``clipscape`` command line (issue 8, item 7).

Usage: python tests/benchmarks/bench_cli.py [--work /tmp/clipscape-bench-cli] [--repeat 3] [--images 100]
       [--baseline DIR]

Each case runs ``python -m clipscape.app.launch`` (what the ``clipscape`` console script runs) in
a fresh process, as a shell would, and reports the median wall-clock seconds of --repeat runs.
With --baseline DIR (a folder holding app/, models/ and resources/ of another commit, e.g. from
``git archive main app models resources | tar -x -C DIR``) every case runs alternately with that
code and with this checkout, so both columns see the same machine load: on a machine shared with
other work, figures from different moments differ by far more than the code does. The cases:
- ``--help`` and ``--version``: argument parsing alone (no torch);
- offline hub model: ``encode F --model ViT-B-32`` with an empty Hugging Face cache and an
  unreachable HF_ENDPOINT, i.e. the time until the one-line "cannot be fetched" error;
- cached search: ``search F CAPTION`` on a folder of --images shapes-world images that
  are all already in the cache, for a caption searched before and for a new one each run, with a random-weight ViT-B-32 as a ``local-dir:`` model (a
  600 MB safetensors file, like a real checkpoint; ../shared/bench/make_random_model.py) and
  with the bundled demo model;
- the import profile: seconds to import torch and open_clip in a fresh process.
The model, the folder and the warm cache are made once and kept in --work between runs.
"""
from __future__ import annotations

import argparse
import itertools
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


def timed(argv: list[str], env: dict[str, str] | None = None, expect: int | None = 0,
          code: Path | None = None) -> tuple[float, str]:
    """(seconds, stderr) of one run of the command line (of the code in ``code``, else this checkout)."""
    env = dict(os.environ if env is None else env)
    if code is not None:
        env["PYTHONPATH"] = str(_package_dir(code))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "clipscape.app.launch", *argv], capture_output=True, text=True,
                          env=env, check=False)
    seconds = time.perf_counter() - started
    if expect is not None and proc.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return seconds, proc.stderr


def _package_dir(code: Path) -> Path:
    """A folder whose clipscape/{app,models,resources} link to ``code``'s folders (first on PYTHONPATH)."""
    pkg = code / ".bench-pythonpath"
    (pkg / "clipscape").mkdir(parents=True, exist_ok=True)
    for name in ("app", "models", "resources"):
        link = pkg / "clipscape" / name
        if not link.is_symlink():
            link.symlink_to(code / name)
    return pkg


class Cases:
    """Runs each case --repeat times per code version, alternating, and keeps the medians."""

    def __init__(self, repeat: int, baseline: Path | None):
        self.repeat, self.versions = repeat, ({"before": baseline, "after": None} if baseline else {"now": None})
        self.figures: dict[str, dict[str, float]] = {}

    def run(self, name: str, argv, **kwargs) -> None:
        """Time ``argv`` (a list, or a function making a new one for each run)."""
        runs: dict[str, list[float]] = {v: [] for v in self.versions}
        for _ in range(self.repeat):
            for version, code in self.versions.items():
                runs[version].append(timed(argv() if callable(argv) else argv, code=code, **kwargs)[0])
        self.figures[name] = {v: statistics.median(r) for v, r in runs.items()}


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
    parser.add_argument("--baseline", type=Path, default=None,
                        help="app/, models/, resources/ of the code to compare with")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    folder, model = ensure_inputs(args.work, args.images)
    cache = args.work / "cache"
    cases = Cases(args.repeat, args.baseline.resolve() if args.baseline else None)
    fresh = itertools.count(int(time.time()))  # captions no run has seen

    cases.run("--help", ["--help"])
    cases.run("search --help", ["search", "--help"])
    cases.run("--version (2 = unknown option)", ["--version"], expect=None)

    hub_cache = args.work / "empty-hf-cache"
    hub_cache.mkdir(exist_ok=True)
    offline = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy")}
    offline.update(HF_HUB_CACHE=str(hub_cache), HF_HOME=str(args.work / "empty-hf-home"),
                   HF_ENDPOINT="https://hub.clipscape-bench.invalid")
    cases.run("offline hub model error", ["encode", str(folder), "--model", "ViT-B-32", "--quiet",
                                          "--cache-dir", str(cache)], env=offline, expect=1)

    for label, spec in (("random ViT-B-32 local-dir", f"local-dir:{model}"), ("demo model", "demo")):
        common = [str(folder), "--model", spec, "--quiet", "--cache-dir", str(cache), "--device", "cpu"]
        search = ["search", *common[:1], "a red circle", *common[1:]]
        for code in cases.versions.values():
            timed(["encode", *common], code=code)  # warm the embedding cache (and any hash cache)
            timed(search, code=code)  # and the caption's embedding, where the code caches it
        cases.run(f"search, cached folder, caption seen before, {label}", search)
        cases.run(f"search, cached folder, new caption, {label}",
                  lambda: ["search", *common[:1], f"a photo of thing {next(fresh)}", *common[1:]])

    versions = list(cases.versions)
    width = max(map(len, cases.figures))
    print(f"{'':<{width}}  " + "  ".join(f"{v:>8}" for v in versions))
    for name, by_version in cases.figures.items():
        print(f"{name:<{width}}  " + "  ".join(f"{by_version[v]:7.2f}s" for v in versions))
    for module in ("torch", "open_clip"):
        print(f"import {module} (fresh process): {import_seconds(module, args.repeat):.2f} s")
    print(json.dumps({k: {v: round(x, 3) for v, x in d.items()} for k, d in cases.figures.items()}))


if __name__ == "__main__":
    main()
