"""``clipscape --self-test``: prove, headless and offline, that this install (or frozen bundle) works.

It runs the same core the window and the command line run, on the bundled demo photos with the
bundled demo model, into a temporary cache that is removed afterwards:

- encode   index the 96 demo photos (decode pool, model, SQLite store), then index them again:
           all 96 must come back from the cache;
- classify zero-shot shapes (80-prompt ensemble) and colours, scored against the truth in each
           photo's file name (``0000_red_circle_on_checkered.jpg``);
- search   the 24 captions "a {colour} {shape}": precision of the top 4 (each pair has 4 photos);
- similar  the nearest neighbour of every photo has its colour;
- project  PCA, and UMAP in the spawned child process the window uses (models.umap_process): the
           map must keep each photo's 5 nearest neighbours (trustworthiness, which a PCA map does
           not reach) and put photos of one colour together;
- export   the CSV with map, classes and scores, read back: rows, columns, values.

The thresholds are the known answers with a margin: on this machine's CPU the demo model scores
well above each (see the ``value`` of every check in the report).

One JSON line goes to stdout (``{"self_test": "passed", ...}``); the exit status is 0 when every
check passed, 1 otherwise (``failed`` names the checks, and stderr says why), 2 for bad arguments.
Nothing here imports Qt, so it runs with no display.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PROG = "clipscape --self-test"
SHAPES = ("circle", "square", "triangle", "star")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
DEMO_PHOTOS = 96                   # 4 of each colour × shape
DEMO_DIM = 64
UMAP_TIMEOUT_S = 600.0             # the child compiles UMAP's numba code first (10–20 s here)

# Known answers (measured values are in the report; these leave a margin for other CPUs and fp16 on CUDA).
MIN_SHAPE_ACCURACY = 0.90
MIN_COLOUR_ACCURACY = 0.95
MIN_PRECISION_AT_4 = 0.80
MIN_NEIGHBOUR_COLOUR = 0.90
MIN_MAP_TRUST = 0.90               # UMAP's trustworthiness (5 neighbours); PCA's is 0.83, a random layout's 0.49
MIN_MAP_COLOUR = 0.45              # share of 5 nearest map neighbours of the same colour; random: 0.15


@dataclass
class Report:
    """The checks run so far: name → {"ok": bool, ...figures}, in order."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, name: str, ok: bool, **figures: Any) -> bool:
        self.checks[name] = {"ok": bool(ok), **figures}
        return bool(ok)

    @property
    def failed(self) -> list[str]:
        return [name for name, c in self.checks.items() if not c["ok"]]


def truth(path: str) -> tuple[str, str]:
    """(colour, shape) from a demo photo's name: ``0000_red_circle_on_checkered.jpg`` → (red, circle)."""
    parts = Path(path).stem.split("_")
    return parts[1], parts[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Check this Clipscape install end to end, offline.")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where the demo model runs (default auto: CUDA, then Apple MPS, then CPU)")
    parser.add_argument("--images", default=None, help=argparse.SUPPRESS)  # tests: a smaller copy of the demo set
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="work in DIR (cache, CSV) and keep it, instead of a removed temporary folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run every check; print one JSON line; 0 if all passed."""
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    report = Report()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="clipscape-selftest-"))
    work.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {}
    error = None
    saved_cache = os.environ.get("CLIPSCAPE_CACHE_DIR")
    # every cache (embeddings, the weights-hash record) goes to the temporary folder: the
    # self-test must leave nothing in the user's folders
    os.environ["CLIPSCAPE_CACHE_DIR"] = str(work / "cache")
    try:
        run_checks(report, work, args.device, Path(args.images) if args.images else None, info)
    except Exception as e:  # noqa: BLE001 - a check that crashed is a failed check, named
        error = f"{type(e).__name__}: {e}"
        step = info.get("step", "setup")
        report.check(step, False, error=error)
        traceback.print_exc(file=sys.stderr)
    finally:
        if saved_cache is None:
            os.environ.pop("CLIPSCAPE_CACHE_DIR", None)
        else:
            os.environ["CLIPSCAPE_CACHE_DIR"] = saved_cache
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    failed = report.failed
    out = {"self_test": "failed" if failed else "passed", "failed": failed,
           "seconds": round(time.perf_counter() - started, 2), **info, "checks": report.checks}
    out.pop("step", None)
    for name in failed:
        print(f"{PROG}: check failed: {name}: {json.dumps(report.checks[name])}", file=sys.stderr)
    if sys.stdout is not None:  # a windowed Windows exe has no stdout
        print(json.dumps(out), flush=True)
    return 1 if failed else 0


def environment() -> dict[str, Any]:
    """What this run is: frozen or not, versions, platform."""
    import torch

    return {"frozen": bool(getattr(sys, "frozen", False)), "python": platform.python_version(),
            "platform": f"{platform.system()}-{platform.machine()}", "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "executable": sys.executable}


def run_checks(report: Report, work: Path, device: str, images: Path | None, info: dict[str, Any]) -> None:
    """The checks, in order; a check that raises is recorded under ``info["step"]`` by the caller."""
    from clipscape.models.encoder import ModelSpec, load_encoder
    from clipscape.models.indexer import index, run
    from clipscape.models.store import EmbeddingStore
    from clipscape.resources import DEMO_IMAGES

    folder = images or DEMO_IMAGES
    expected = len([p for p in folder.iterdir() if p.suffix.lower() == ".jpg"]) if images else DEMO_PHOTOS
    timer = _Timer(info)

    info["step"] = "load model"
    info.update(environment())
    encoder = load_encoder(ModelSpec.parse("demo"), device=device)
    info["device"] = encoder.device
    timer.lap("load_model")

    info["step"] = "encode"
    cache = work / "cache"
    with EmbeddingStore(cache) as store:
        progress: list = []
        collection = run(index(folder, encoder, store, batch_size=32), progress.append)
        first = progress[-1]
        again: list = []
        reopened = run(index(folder, encoder, store, batch_size=32), again.append)
    report.check("encode", first.embedded == expected and not first.skipped and encoder.dim == DEMO_DIM
                 and again[-1].reused == expected and np.allclose(reopened.embeddings, collection.embeddings),
                 images=len(collection), embedded=first.embedded, skipped=len(first.skipped),
                 reused_on_reopen=again[-1].reused, dim=encoder.dim)
    timer.lap("encode")
    colours = np.array([truth(p)[0] for p in collection.paths])
    shapes = np.array([truth(p)[1] for p in collection.paths])
    emb = collection.embeddings

    info["step"] = "classify"
    from clipscape.models.zeroshot import zero_shot

    by_shape = zero_shot(emb, encoder, list(SHAPES))
    by_colour = zero_shot(emb, encoder, list(COLOURS), ensemble=False)
    shape_acc = float(np.mean(np.array(by_shape.labels) == shapes))
    colour_acc = float(np.mean(np.array(by_colour.labels) == colours))
    report.check("classify", shape_acc >= MIN_SHAPE_ACCURACY and colour_acc >= MIN_COLOUR_ACCURACY,
                 shape_accuracy=round(shape_acc, 4), colour_accuracy=round(colour_acc, 4),
                 min_shape=MIN_SHAPE_ACCURACY, min_colour=MIN_COLOUR_ACCURACY)
    timer.lap("classify")

    info["step"] = "search"
    from clipscape.models.search import search, similar, text_scores

    precisions = []
    for colour in COLOURS:
        for shape in SHAPES:
            hits = search(collection, encoder, f"a {colour} {shape}", top=4)
            precisions.append(np.mean([truth(h.path) == (colour, shape) for h in hits]))
    precision = float(np.mean(precisions))
    nearest = [truth(similar(collection, i, top=1)[0].path)[0] == colours[i] for i in range(len(collection))]
    neighbour = float(np.mean(nearest))
    report.check("search", precision >= MIN_PRECISION_AT_4 and neighbour >= MIN_NEIGHBOUR_COLOUR,
                 precision_at_4=round(precision, 4), similar_same_colour=round(neighbour, 4),
                 min_precision=MIN_PRECISION_AT_4, min_similar=MIN_NEIGHBOUR_COLOUR)
    timer.lap("search")

    info["step"] = "project"
    from clipscape.models.projection import pca_2d
    from clipscape.models.umap_process import UmapProcess

    pca = pca_2d(emb)
    deadline = time.monotonic() + UMAP_TIMEOUT_S
    server = UmapProcess()
    try:
        umap_xy = server.run(emb, seed=0, check=lambda: _before(deadline))
    finally:
        server.close()
    from sklearn.manifold import trustworthiness

    ok = _is_map(pca, len(emb)) and _is_map(umap_xy, len(emb))
    trust = float(trustworthiness(emb, umap_xy, n_neighbors=5, metric="cosine")) if ok else 0.0
    map_colour = _neighbour_agreement(umap_xy, colours, k=5) if ok else 0.0
    report.check("project", ok and trust >= MIN_MAP_TRUST and map_colour >= MIN_MAP_COLOUR,
                 umap_in_child_process=True, umap_trustworthiness=round(trust, 4),
                 pca_trustworthiness=round(float(trustworthiness(emb, pca, n_neighbors=5, metric="cosine")), 4),
                 umap_colour_neighbours=round(map_colour, 4), min_trustworthiness=MIN_MAP_TRUST,
                 min_colour_neighbours=MIN_MAP_COLOUR)
    timer.lap("project")

    info["step"] = "export"
    from clipscape.models.export import write_csv

    scores = text_scores(collection, encoder, "a red circle")
    target = work / "self-test.csv"
    write_csv(target, collection.paths, emb, coords=umap_xy, classes=by_shape.labels,
              probabilities=by_shape.confidence, scores=scores)
    ok, figures = _check_csv(target, collection.paths, emb, umap_xy, by_shape.labels, scores)
    report.check("export", ok, **figures)
    timer.lap("export")
    info.pop("step")


class _Timer:
    def __init__(self, info: dict[str, Any]) -> None:
        self.info, self.last = info, time.perf_counter()
        info["stage_seconds"] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.info["stage_seconds"][name] = round(now - self.last, 2)
        self.last = now


def _before(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"UMAP took longer than {UMAP_TIMEOUT_S:.0f} s")


def _is_map(coords: np.ndarray, n: int) -> bool:
    coords = np.asarray(coords)
    return coords.shape == (n, 2) and bool(np.isfinite(coords).all()) and 0.99 <= float(np.abs(coords).max()) <= 1.0001


def _neighbour_agreement(coords: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean share of each point's k nearest map neighbours that carry its label."""
    d = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    return float(np.mean(labels[nearest] == labels[:, None]))


def _check_csv(path: Path, paths: list[str], emb: np.ndarray, coords: np.ndarray, classes: list[str],
               scores: np.ndarray) -> tuple[bool, dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    want = ["path", "x", "y", "class", "probability", "score"] + [f"e{i}" for i in range(emb.shape[1])]
    col = {name: i for i, name in enumerate(header)}
    ok = header == want and len(body) == len(paths)
    if ok:
        values = np.array([[float(r[col[f"e{i}"]]) for i in range(emb.shape[1])] for r in body])
        xy = np.array([[float(r[col["x"]]), float(r[col["y"]])] for r in body])
        ok = ([r[col["path"]] for r in body] == paths and [r[col["class"]] for r in body] == classes
              and np.allclose(values, emb, atol=1e-5) and np.allclose(xy, coords, atol=1e-5)
              and np.allclose([float(r[col["score"]]) for r in body], scores, atol=1e-5))
    return ok, {"rows": len(body), "columns": len(header), "bytes": os.path.getsize(path)}


if __name__ == "__main__":
    sys.exit(main())
