"""The window's background jobs: thin adapters from models/ functions to a Job (app/workers.py).

Each function runs in a worker thread and gets the Job as its first argument, to report
progress and to notice Cancel. They read the arguments they are given and touch nothing else:
the window copies what a job needs when it starts it and applies the result when it returns.
"""
from __future__ import annotations

import atexit
import dataclasses
import threading
import time
from typing import Any, Sequence

import numpy as np

from clipscape.app.workers import Job
from clipscape.models.collection import Collection
from clipscape.models.indexer import IndexProgress
from clipscape.models.umap_process import UmapProcess


@dataclasses.dataclass(frozen=True)
class Download:
    """Bytes of model weights downloaded so far (total 0 when unknown)."""

    done: int
    total: int


@dataclasses.dataclass(frozen=True)
class MapProgress:
    """UMAP's progress: stage "neighbours", "layout" (epochs done of total) or "placing" (the points
    beyond the fitted sample, models/projection.py)."""

    stage: str
    done: int
    total: int

    @property
    def text(self) -> str:
        """The status line for it."""
        if self.stage == "neighbours":
            return f"Map: finding neighbours, {100 * self.done // self.total} %" if self.done else "Map: finding neighbours…"
        if self.stage == "placing":
            return f"Map: placing the other images among the fitted ones, {self.done} of {self.total}"
        return f"Map: UMAP layout, epoch {self.done} of {self.total}"


def load_model(job: Job, model: str, pretrained: str | None, device: str = "auto"):
    """The Encoder for a model choice; downloads hub weights with progress (Cancel stops the download)."""
    from tqdm import tqdm

    from clipscape.models.encoder import ModelSpec, load_encoder

    class _Progress(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = _Discard()
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            job.report(Download(int(self.n), int(self.total or 0)))
            return shown

    encoder = load_encoder(ModelSpec.parse(model, pretrained), device=device, tqdm_class=_Progress)
    job.check()
    _warm_text_tower(encoder)
    import numpy.ma  # noqa: F401 - np.unique and np.isin import it on first use (20-40 ms): here, not in a view
    return encoder


def _warm_text_tower(encoder) -> None:
    """One caption through the text tower, here in the worker: a process's first forward pass
    sets torch up (~100 ms on this machine's CPU for the demo model), and the user's first
    caption would otherwise wait for it. Best effort: a model that cannot encode text says so later."""
    try:
        encoder.encode_texts(["a photo"])
    except Exception:  # noqa: BLE001 - the real caption reports any failure
        pass


class _Discard:
    """A text stream that drops what tqdm writes: the window shows the progress instead."""

    def write(self, _text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def index_folder(job: Job, roots: Sequence[str], encoder, cache_dir: str | None, batch_size: int):
    """Encode what the cache lacks, yielding IndexProgress snapshots; returns the Collection."""
    from clipscape.models.indexer import index
    from clipscape.models.store import EmbeddingStore

    with EmbeddingStore(cache_dir) as store:
        gen = index(list(roots), encoder, store, batch_size=batch_size)
        try:
            while True:
                progress = next(gen)
                if progress.stage == "reopen":
                    last = LastOpened(for_the_views(progress.last),
                                      _saved_map(store.cache_dir, roots, encoder, progress.last))
                    yield last
                    if last.collection is not None:
                        _wait_until_shown(job, last)
                    continue
                yield dataclasses.replace(progress, skipped=list(progress.skipped))
        except StopIteration as stop:
            return for_the_views(stop.value)
        finally:
            gen.close()


def for_the_views(collection: Collection | None) -> Collection | None:
    """``collection``, with what the views derive from its size alone made here in the worker
    (models.collection.all_rows: the gallery's rows in their own order)."""
    from clipscape.models.collection import all_rows

    if collection is not None:
        all_rows(len(collection))
    return collection


def _saved_map(cache_dir, roots: Sequence[str], encoder, collection: Collection | None):
    from clipscape.models import snapshot as snapshots

    if collection is None:
        return None
    saved = snapshots.load_map(cache_dir, snapshots.snapshot_key(encoder.key, list(roots)), collection.snapshot)
    return (for_the_map(saved[0]), saved[1]) if saved is not None and len(saved[0]) == len(collection) else None


def for_the_map(coords: np.ndarray) -> np.ndarray:
    """``coords`` as the map holds them (float32, contiguous), with the map's draw order made
    here in the worker (models.level_of_detail.draw_order: ~60 ms at 1M kept off the GUI thread)."""
    from clipscape.models.level_of_detail import draw_order

    coords = np.ascontiguousarray(coords, np.float32)
    draw_order(coords)
    return coords


def cached_collection(job: Job, roots: Sequence[str], encoder, cache_dir: str | None) -> Collection:
    """What an interrupted encode left in the cache, as a Collection to explore."""
    from clipscape.models.indexer import cached
    from clipscape.models.store import EmbeddingStore

    with EmbeddingStore(cache_dir) as store:
        return cached(list(roots), encoder, store)


@dataclasses.dataclass(frozen=True)
class LastOpened:
    """What the index job yields first: the folders' collection and map as last opened with this
    model (models/snapshot.py), each None when there is none; the window shows them while it
    checks, and sets ``shown`` once they are on screen (see _wait_until_shown)."""

    collection: Collection | None
    saved_map: tuple[np.ndarray, str] | None
    shown: threading.Event = dataclasses.field(default_factory=threading.Event, compare=False, repr=False)


SHOWN_WAIT_S = 5.0


def _wait_until_shown(job: Job, last: LastOpened) -> None:
    """The scan starts once the window has shown the snapshot (at most SHOWN_WAIT_S later).

    Showing 1M rows costs the GUI thread ~0.1 s of numpy and Qt calls, and the scan is Python
    that competes for the GIL and the cores: run side by side, that 0.1 s became a 0.7-1.1 s
    stop of the window. One after the other, the map is on screen sooner and the scan later
    by the same 0.1 s."""
    deadline = time.monotonic() + SHOWN_WAIT_S
    while not last.shown.wait(0.05) and time.monotonic() < deadline:
        job.check()


def sample_map(job: Job, roots: Sequence[str], encoder, cache_dir: str | None):
    """(Collection, PCA map) of a sample of the cache's rows under ``roots``, or None: the first
    open of a big cached folder shows it while the whole collection is read."""
    from clipscape.models.projection import pca_2d
    from clipscape.models.store import EmbeddingStore

    with EmbeddingStore(cache_dir) as store:
        model = store.model_id(encoder.key, encoder.identity, encoder.dim)
        paths, embeddings = store.sample_under(model, list(roots), SAMPLE_ROWS)
    job.check()
    return (for_the_views(Collection(paths, embeddings, encoder.key)), for_the_map(pca_2d(embeddings))) if paths else None


SAMPLE_ROWS = 20_000


def save_map(job: Job, roots: Sequence[str], encoder, cache_dir: str | None, token: str,
             coords: np.ndarray, kind: str) -> bool:
    """Keep the map of snapshot ``token`` for the next open (False: the snapshot changed meanwhile)."""
    from clipscape.models import snapshot as snapshots
    from clipscape.models.store import default_cache_dir

    folder = cache_dir if cache_dir is not None else default_cache_dir()
    return snapshots.save_map(folder, snapshots.snapshot_key(encoder.key, list(roots)), token, coords, kind)


def carry_over(job: Job, old: Collection, new: Collection, coords: np.ndarray | None):
    """(row in ``new`` of each ``old`` row or -1, ``new``'s map or None): the images still there
    and unchanged keep their place on the map, the others are placed among them as UMAP's
    extra points are (models/projection.place_rest)."""
    from clipscape.models.collection import row_map
    from clipscape.models.projection import place_rest

    new_of_old = row_map(old, new)
    for_the_views(new)
    if coords is None or len(coords) != len(old):
        return new_of_old, None
    kept = np.flatnonzero(new_of_old >= 0)
    same = ~np.any(old.embeddings[kept] != new.embeddings[new_of_old[kept]], axis=1)   # changed files move
    kept = kept[same]
    job.check()
    if not len(kept):
        return new_of_old, None
    return new_of_old, for_the_map(place_rest(new.embeddings, new_of_old[kept], coords[kept]))


def open_embeddings(job: Job, source: str):
    """The embeddings at ``source`` (models/datasets.py): a Parquet dataset, table or clip-retrieval output."""
    from clipscape.models.datasets import open_embeddings

    return open_embeddings(source)


def forget_empty(job: Job, roots: Sequence[str], encoder, cache_dir: str | None) -> int:
    """Forget the cached rows of these roots that a new scan, too, finds gone; return how many."""
    from clipscape.models.indexer import forget_empty
    from clipscape.models.store import EmbeddingStore

    with EmbeddingStore(cache_dir) as store:
        return sum(forget_empty(root, encoder, store) for root in roots)


_umap_server: UmapProcess | None = None


def umap_server() -> UmapProcess:
    """The process-wide UMAP child (models/umap_process.py), started and warmed up on first use."""
    global _umap_server
    if _umap_server is None:
        _umap_server = UmapProcess()
        _umap_server.start()
        atexit.register(_umap_server.close)
    return _umap_server


def preview_map(job: Job, roots: Sequence[str], encoder, cache_dir: str | None):
    """(Collection, PCA map) of what an encode still running has finished so far."""
    from clipscape.models.projection import pca_2d

    collection = cached_collection(job, roots, encoder, cache_dir)
    job.check()
    return for_the_views(collection), for_the_map(pca_2d(collection.embeddings))


def project(job: Job, embeddings: np.ndarray, seed: int = 0):
    """Yield the PCA map at once, then UMAP's (in the child process, reporting MapProgress)."""
    from clipscape.models.projection import pca_2d

    yield ("pca", for_the_map(pca_2d(embeddings)))
    return for_the_map(umap_server().run(embeddings, seed=seed, check=job.check,
                       progress=lambda stage, done, total: job.report(MapProgress(stage, done, total))))


def caption_scores(job: Job, encoder, collection: Collection, caption: str):
    """(every image's cosine similarity to ``caption``, the rows best first, the map's colour bins of the
    scores, their (lowest, highest)); see _head_first."""
    from clipscape.models.search import text_scores

    return (yield from _head_first(text_scores(collection, encoder, caption)))


def image_scores(job: Job, collection: Collection, row: int):
    """(every image's cosine similarity to image ``row``, the rows best first, the colour bins, the
    scores' (lowest, highest)); see _head_first."""
    from clipscape.models.search import cosine_scores

    return (yield from _head_first(cosine_scores(collection.embeddings, collection.embeddings[row])))


RANK_HEAD = 2_000         # rows ranked first on a big collection, while the full sort runs
RANK_HEAD_FROM = 100_000  # collections at least this big get the head first


def _head_first(scores: np.ndarray):
    """On a big collection, first yield (scores, a rank whose first RANK_HEAD rows are the best in
    order, models.search.head_ranked, 3 ms at 1M), so the map and the gallery's first screen show
    the result at once; then return the full rank (0.2-0.35 s more at 1M while the window runs).
    The scores' colour bins and range come with both."""
    from clipscape.models.search import head_ranked, score_bins, score_range

    span = score_range(scores)            # the colour bar's ends, and the colours'
    bins = score_bins(scores, *span)      # the map's colours, made here, not on the GUI thread
    bins.flags.writeable = False
    if len(scores) >= RANK_HEAD_FROM:
        yield scores, head_ranked(scores, RANK_HEAD), bins, span
    return (*_ranked(scores), bins, span)


def _ranked(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The full order is sorted here, in the worker, so the GUI thread never sorts N scores.

    Full, not a top-k (models.search.best_first): the gallery lists every image in this order
    (scrolling reaches the last), and the map's top-k reads just the head of it. 0.13 s at 1M
    on 2 cores, off the GUI thread."""
    return scores, np.argsort(-scores, kind="stable")


def classify(job: Job, encoder, embeddings: np.ndarray, classes: Sequence[str], ensemble: bool,
             threshold: float, known: dict[tuple[str, bool], np.ndarray], cache_dir: str | None = None):
    """Classify with what is quick first, then refine; returns (Classification, new class vectors).

    Class vectors are keyed by (name, ensemble) and only unseen names are encoded. Prompt
    embeddings are kept in the embedding cache, so a class name costs its prompts once per model.
    When the ensemble has prompts to encode, it first yields (Classification, vectors) from the
    single template (a handful of text passes, well under a second), then encodes the 80 templates
    (seconds a class on a CPU for a large model) and returns the refined result.
    """
    from clipscape.models.store import EmbeddingStore
    from clipscape.models.zeroshot import CachedTextEncoder, class_embeddings, class_prompts, classify as classify_with

    fresh: dict[tuple[str, bool], np.ndarray] = {}
    with EmbeddingStore(cache_dir) as store:
        texts = CachedTextEncoder(encoder, store)

        def result(with_ensemble: bool):
            keys = [(c, with_ensemble) for c in classes]
            missing = [k for k in keys if k not in known and k not in fresh]
            if missing:
                vectors = class_embeddings(texts, [c for c, _ in missing], with_ensemble, check=job.check)
                fresh.update(zip(missing, vectors))
            table = np.stack([fresh[k] if k in fresh else known[k] for k in keys])
            return classify_with(embeddings, table, encoder.logit_scale, list(classes), threshold)

        unseen = [c for c in classes if (c, True) not in known]
        prompts = [p for c in unseen for p in class_prompts(c, True)]
        if ensemble and len(store.text_vectors(texts.model_id, prompts)) < len(set(prompts)):
            yield result(with_ensemble=False), dict(fresh)
        return result(with_ensemble=ensemble), fresh


def clusters(job: Job, embeddings: np.ndarray) -> np.ndarray:
    """Cluster ids for colouring the map by cluster."""
    from clipscape.models.clusters import cluster

    return cluster(embeddings)


def export_csv(job: Job, path: str, collection: Collection, rows: np.ndarray, coords, classification,
               scores) -> int:
    """Write the core's CSV for these rows, with map, class and score columns when known.

    Cancel leaves any existing file untouched. Returns the rows written. The rows are picked out
    here (100k × 512 floats is a 200 MB copy), not on the GUI thread.
    """
    from clipscape.models.export import write_csv

    write_csv(path, **_export_columns(collection, rows, coords, classification, scores),
              progress=lambda done, total: job.report((done, total)))
    return len(rows)


def export_parquet(job: Job, path: str, collection: Collection, rows: np.ndarray, coords, classification,
                   scores, model=None, thumbnails: bool = True, neighbors: int = 0) -> int:
    """Write the core's Parquet file for these rows, as export_csv does the CSV, with the model
    record and (by default) thumbnails, so it opens with its images in Embedding Atlas."""
    from clipscape.models.export_parquet import write_parquet

    write_parquet(path, **_export_columns(collection, rows, coords, classification, scores), model=model,
                  thumbnails=thumbnails, neighbors=neighbors, progress=lambda done, total: job.report((done, total)))
    return len(rows)


def _export_columns(collection: Collection, rows: np.ndarray, coords, classification, scores) -> dict[str, Any]:
    """The export's arguments for these rows: paths, embeddings, coords, classes, probabilities, scores."""
    def pick(values):
        return None if values is None else values[rows]

    return {"paths": [collection.paths[i] for i in rows], "embeddings": collection.embeddings[rows],
            "coords": pick(coords),
            "classes": None if classification is None else [classification.labels[i] for i in rows],
            "probabilities": None if classification is None else classification.confidence[rows],
            "scores": pick(scores)}


def index_summary(progress: IndexProgress) -> str:
    """Status-bar text for an encode in progress: count, images/s and time left."""
    if progress.stage == "scan":
        return f"Found {progress.total} images"
    text = f"Encoding {progress.done}/{progress.total}"
    rate = progress.images_per_second
    if rate > 0:
        left = (progress.total - progress.done) / rate
        text += f" · {rate:.1f} img/s · {_duration(left)} left"
    return text


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"
