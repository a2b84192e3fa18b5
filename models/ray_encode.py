"""``clipscape encode SOURCE --engine ray --out DATASET``: the local encoder's work as a Ray Data pipeline.

For collections one laptop cannot encode: Clipscape grows no cluster code of its own, it runs
on the engine such users have. The pipeline is

    file listing (driver) → read + decode + preprocess (Ray tasks) → an actor pool holding the
    model (``--workers`` actors, ``--gpus-per-worker`` each) → Parquet shards (written by tasks)

and every step is the local encoder's own code, not a copy: ``images.load_rgb`` decodes (from
bytes where the file is on a remote file system), ``Encoder.preparer`` resizes and crops as the
model was trained, ``load_encoder`` builds the model and ``Encoder.encode_images`` runs it. So a
Ray embedding equals the local one for the same file (a test holds them to cosine ≥ 0.999).

What it writes (models/datasets.py reads it, the window opens it): ``DATASET/embeddings/`` shards
of path, size, mtime_ns and ``embedding`` (fixed-size list of float32), the model recorded in
each file's schema metadata; ``DATASET/skipped/`` the files that could not be read, with the
reason. A broken image is a row there, never a failed job. Each shard is written to a temporary
name and renamed, so a killed run leaves only whole shards, and a re-run encodes only the files
(path, size, mtime) the dataset does not hold yet. SOURCE and DATASET are local folders or any
URI pyarrow's file systems read (``s3://``, ``gs://``, ``hdfs://``).

Ray is an optional extra (``pip install 'clipscape[ray]'``), imported only here.
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from clipscape.models.datasets import EMBEDDINGS_DIR, SKIPPED_DIR, DatasetError, dataset_keys, is_remote
from clipscape.models.parquet_schema import (
    EMBEDDING,
    MTIME,
    PATH,
    REASON,
    ROW_GROUP_ROWS,
    SIZE,
    ModelRecord,
    vectors_to_arrow,
)
from clipscape.models.scan import ImageFile, Skipped

__all__ = ["RayProgress", "RayUnavailable", "encode_with_ray"]

log = logging.getLogger(__name__)

CPU_THREADS_PER_ACTOR = 4
"""Without GPUs: one model replica per this many CPUs (each decodes and runs with that many threads;
two replicas on a 2-core laptop ran 1.6x slower than one with both cores)."""

LIST_BLOCK_ROWS = 256
"""Files per block of the listing at most; fewer where that gives every actor several blocks."""


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be joined; ``str(e)`` says what to do."""


@dataclass(frozen=True)
class RayProgress:
    """How far the pipeline is: files encoded or skipped of those to do, and what was already held."""

    done: int
    total: int
    embedded: int
    skipped: list[Skipped]
    already: int                 # files the dataset held before this run
    stage: str = "encode"        # "list", "encode", "done"


def encode_with_ray(source: str, out: str, spec, *, address: str | None = None, workers: int | None = None,
                    gpus_per_worker: float = 0.0, batch_size: int = 32, cache_dir: str | None = None,
                    include_hidden: bool = False, device: str = "auto") -> Iterator[RayProgress]:
    """Encode every image under ``source`` into the Parquet dataset ``out``, yielding progress per shard.

    ``address`` joins a running cluster ("auto", "ray://head:10001"); without it Ray starts on
    this machine with its cores. Closing the generator stops the pipeline; written shards stay.
    """
    ray = _import_ray()
    from clipscape.models.encoder import load_encoder

    # The driver builds the model once: its identity is the dataset's, its preprocessing the
    # decode tasks'. Workers build their own copy (on their node, with its GPU).
    encoder = load_encoder(spec, device="cpu", cache_dir=cache_dir)
    record = ModelRecord.of_encoder(encoder)
    in_fs, in_root = _filesystem(source)
    out_fs, out_root = _filesystem(out)
    held, held_record = dataset_keys(out_root, out_fs)
    if held_record is not None and held_record.key != record.key:
        raise DatasetError(f"{out} holds embeddings of {held_record.label()}, not of {record.label()}: "
                           "write to another --out")
    yield RayProgress(0, 0, 0, [], len(held), stage="list")
    files, scan_skipped = _list(source, in_fs, in_root, include_hidden)
    todo = [f for f in files if (f.path, f.size, f.mtime_ns) not in held]
    scan_skipped = [s for s in scan_skipped if (s.path, -1, -1) not in held]   # written by an earlier run
    done, embedded, skipped = 0, 0, list(scan_skipped)
    if scan_skipped:
        _write_skipped(out_fs, out_root, scan_skipped, record)
    yield RayProgress(0, len(todo), 0, list(skipped), len(held))
    if not todo:  # nothing new: no need to start Ray at all
        yield RayProgress(0, 0, 0, list(skipped), len(held), stage="done")
        return
    started_here = not ray.is_initialized()
    if started_here:
        _init(ray, address)
    try:
        dataset = _pipeline(ray, todo, in_fs, encoder.preparer, spec, record, out, cache_dir, device,
                            workers, gpus_per_worker, batch_size)
        for shard in dataset.iter_rows():
            done += shard["rows"] + shard["skipped"]
            embedded += shard["rows"]
            skipped += [Skipped(p, r) for p, r in json.loads(shard["skipped_json"])]
            yield RayProgress(done, len(todo), embedded, list(skipped), len(held))
        yield RayProgress(done, len(todo), embedded, list(skipped), len(held), stage="done")
    finally:
        if started_here:
            ray.shutdown()


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray: pip install 'clipscape[ray]'") from None
    return ray


def _init(ray, address: str | None) -> None:
    """Join the cluster at ``address``, or start Ray here; quiet, no dashboard."""
    from ray.data import DataContext

    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.ERROR, "configure_logging": True}
    try:
        ray.init(address=address, **kwargs) if address else ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayUnavailable(f"cannot {'join the Ray cluster at ' + address if address else 'start Ray'}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    logging.getLogger("ray.data").setLevel(logging.ERROR)   # an INFO line per dataset, a note on progress bars
    context = DataContext.get_current()
    context.enable_progress_bars = False   # ours is on stderr; Ray's would interleave with it
    context.print_on_execution_start = False


def _pipeline(ray, todo: list[ImageFile], in_fs, preparer, spec, record: ModelRecord, out: str,
              cache_dir, device: str, workers: int | None, gpus_per_worker: float, batch_size: int):
    """The lazy Ray Dataset: listing → decode tasks → model actors → shard-writing tasks."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus_per_worker:  # decode tasks on the CPUs feed actors on the GPUs
        actors = workers or max(1, int(gpus // gpus_per_worker))
        threads, actor_cpus, decode_cpus = 1, 1.0, 1.0   # threads: the decode task's, one per CPU
    else:
        # On CPUs alone, decoding and the model share the cores: every actor gets a share of them
        # (less a little for the shard writers) and decodes its own batches (Ray fuses the decode
        # step into the actor when both ask for the same resources), as the local encoder takes turns.
        actors = workers or max(1, cpus // CPU_THREADS_PER_ACTOR)
        threads = max(1, cpus // actors)
        actor_cpus = decode_cpus = max(0.25, (cpus - 0.5) / actors)
    rows = max(1, min(LIST_BLOCK_ROWS, -(-len(todo) // (4 * actors))))   # every actor gets blocks
    blocks = [pa.table({PATH: [f.path for f in todo[i:i + rows]],
                        SIZE: pa.array([f.size for f in todo[i:i + rows]], pa.int64()),
                        MTIME: pa.array([f.mtime_ns for f in todo[i:i + rows]], pa.int64())})
              for i in range(0, len(todo), rows)]
    shard_rows = min(ROW_GROUP_ROWS, max(batch_size, len(todo) // (4 * actors)))
    remote = None if isinstance(in_fs, pafs.LocalFileSystem) else in_fs   # pyarrow file systems pickle
    return (ray.data.from_arrow(blocks)
            .map_batches(_decode_batch, fn_kwargs={"preparer": preparer, "fs": remote, "threads": threads},
                         batch_size=batch_size, batch_format="numpy", num_cpus=decode_cpus)
            .map_batches(_EncodeActor, fn_constructor_kwargs={
                             "spec": spec, "key": record.key, "cache_dir": cache_dir, "threads": threads,
                             "device": "cuda" if gpus_per_worker else ("cpu" if device == "auto" else device)},
                         batch_size=batch_size, batch_format="numpy",
                         compute=ray.data.ActorPoolStrategy(size=actors),
                         num_gpus=gpus_per_worker or None, num_cpus=actor_cpus)
            .map_batches(_write_shard, fn_kwargs={"out": out, "record": record},
                         batch_size=shard_rows, batch_format="numpy", num_cpus=0.25))


# --- the stages (they run in Ray workers) ---------------------------------------------------------

def _decode_batch(batch: dict[str, np.ndarray], preparer, fs, threads: int = 1) -> dict[str, Any]:
    """Read, decode and preprocess one batch of files: uint8 pixels, or a reason per failed file.

    ``fs`` is the remote pyarrow FileSystem the files are on (None: local paths, read directly).
    ``threads`` decode at once (Pillow releases the GIL in libjpeg and its resizes, as in the
    local decode pool).
    """
    from concurrent.futures import ThreadPoolExecutor

    from clipscape.models.images import ImageLoadError
    from clipscape.models.pipeline import decode

    side = preparer.input_size

    def one(path: str) -> tuple[np.ndarray, str]:
        try:
            return decode(_read(fs, path) if fs is not None else path, preparer).numpy(), ""
        except ImageLoadError as e:
            return np.zeros((3, side, side), np.uint8), str(e)
        except OSError as e:
            return np.zeros((3, side, side), np.uint8), f"cannot read file: {(e.strerror or str(e)).lower()}"

    paths = [str(p) for p in batch[PATH]]
    if threads > 1:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clipscape-decode") as pool:
            done = list(pool.map(one, paths))
    else:
        done = [one(p) for p in paths]
    return {PATH: batch[PATH], SIZE: batch[SIZE], MTIME: batch[MTIME],
            "pixels": np.stack([d[0] for d in done]), REASON: np.array([d[1] for d in done], dtype=object)}


def _read(fs, path: str) -> bytes:
    with fs.open_input_file(_fs_path(path)) as f:
        return f.readall()


class _EncodeActor:
    """One model replica: built once per actor by ``load_encoder``, run by ``encode_images``."""

    def __init__(self, spec, key: str, cache_dir: str | None, threads: int, device: str):
        import torch

        from clipscape.models.encoder import load_encoder

        torch.set_num_threads(threads)
        self.encoder = load_encoder(spec, device=device, cache_dir=cache_dir)
        if self.encoder.key != key:  # another version of the weights on this node: never mix them
            raise RuntimeError(f"the model on this worker is not the driver's ({self.encoder.key} != {key})")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        ok = np.array([not r for r in batch[REASON]], bool)
        vectors = np.zeros((len(ok), self.encoder.dim), np.float32)
        if ok.any():  # the decode tasks' uint8 batch, as the local pipeline's host_batch makes it
            vectors[ok] = self.encoder.encode_images(torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok])))
        return {PATH: batch[PATH], SIZE: batch[SIZE], MTIME: batch[MTIME], EMBEDDING: vectors,
                REASON: batch[REASON]}


def _write_shard(batch: dict[str, np.ndarray], out: str, record: ModelRecord) -> dict[str, np.ndarray]:
    """Write one shard of embeddings (and one of skipped files) under ``out``; return what it held."""
    import pyarrow as pa

    fs, root = _filesystem(out)
    reasons = [str(r) for r in batch[REASON]]
    ok = np.array([not r for r in reasons], bool)
    paths = [str(p) for p in batch[PATH]]
    if ok.any():
        table = pa.table({PATH: pa.array([p for p, good in zip(paths, ok) if good], pa.string()),
                          SIZE: pa.array(batch[SIZE][ok], pa.int64()), MTIME: pa.array(batch[MTIME][ok], pa.int64()),
                          EMBEDDING: vectors_to_arrow(np.asarray(batch[EMBEDDING][ok], np.float32))})
        _atomic_parquet(fs, f"{root}/{EMBEDDINGS_DIR}", table.replace_schema_metadata(record.metadata()))
    bad = np.flatnonzero(~ok)
    skipped = [Skipped(paths[i], reasons[i]) for i in bad]
    if skipped:
        _write_skipped(fs, root, skipped, record, sizes=[int(batch[SIZE][i]) for i in bad],
                       mtimes=[int(batch[MTIME][i]) for i in bad])
    return {"rows": np.array([int(ok.sum())]), "skipped": np.array([len(skipped)]),
            "skipped_json": np.array([json.dumps([[s.path, s.reason] for s in skipped])], dtype=object)}


def _write_skipped(fs, root: str, skipped: list[Skipped], record: ModelRecord,
                   sizes: list | None = None, mtimes: list | None = None) -> None:
    import pyarrow as pa

    n = len(skipped)
    table = pa.table({PATH: [s.path for s in skipped], SIZE: pa.array(sizes or [-1] * n, pa.int64()),
                      MTIME: pa.array(mtimes or [-1] * n, pa.int64()), REASON: [s.reason for s in skipped]})
    _atomic_parquet(fs, f"{root}/{SKIPPED_DIR}", table.replace_schema_metadata(record.metadata()))


def _atomic_parquet(fs, folder: str, table) -> None:
    """Write ``table`` as a new shard in ``folder``: a hidden temporary name, then a rename."""
    import pyarrow.parquet as pq

    fs.create_dir(folder, recursive=True)
    name = f"part-{uuid.uuid4().hex}.parquet"
    temp = f"{folder}/.{name}.tmp"
    pq.write_table(table, temp, filesystem=fs, row_group_size=ROW_GROUP_ROWS)
    fs.move(temp, f"{folder}/{name}")


# --- file systems ---------------------------------------------------------------------------------

def _filesystem(location: str):
    """(pyarrow FileSystem, path within it) for a local folder or a URI such as s3://bucket/photos."""
    import pyarrow.fs as pafs

    if _is_uri(location):
        fs, path = pafs.FileSystem.from_uri(location)
        return fs, path.rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))


def _is_uri(location: str) -> bool:
    return is_remote(location) and not os.path.exists(location)


def _fs_path(path: str) -> str:
    return path.split("://", 1)[1] if "://" in path else path


def _list(source: str, fs, root: str, include_hidden: bool) -> tuple[list[ImageFile], list[Skipped]]:
    """The image files under ``source``: the local scan itself for a folder, pyarrow's listing for a URI."""
    import pyarrow.fs as pafs

    from clipscape.models.scan import IMAGE_EXTENSIONS, scan

    if isinstance(fs, pafs.LocalFileSystem):
        found = scan(root, include_hidden=include_hidden)
        return found.files, found.skipped
    scheme = source.split("://", 1)[0]
    files = []
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        name = info.base_name
        if info.type != pafs.FileType.File or (not include_hidden and name.startswith(".")):
            continue
        if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
            files.append(ImageFile(f"{scheme}://{info.path}", info.size or 0, int(info.mtime_ns or 0)))
    return sorted(files, key=lambda f: f.path), []
