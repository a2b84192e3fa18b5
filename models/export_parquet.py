"""Parquet export of a collection: the CSV export's columns, the embedding as one vector, and
optionally a thumbnail and the nearest neighbours of every image.

Columns, in this order, the optional groups left out when their data is not given (as the CSV
export does, models/export.py):

- ``path`` (string); ``x``, ``y`` (float32, the map); ``class`` (string) and ``probability``
  (float32, null without probabilities); ``score`` (float32);
- ``embedding``: a fixed-size list of D float32 (models/parquet_schema.py), bit for bit the
  vectors given;
- ``image`` (binary, with ``thumbnails``): a JPEG whose longest side is at most
  THUMBNAIL_SIDE px, null for a file that cannot be read;
- ``neighbors`` (with ``neighbors=K``): ``{"ids": list<int64>, "distances": list<float32>}``, the
  K rows of the file nearest by cosine (the row itself left out), nearest first, distance
  1 - cosine. This is Embedding Atlas' format (``--neighbors neighbors``): ids are zero-based
  row numbers of the file.

The schema metadata records the model (parquet_schema.ModelRecord) when one is given. So a file
opens in Embedding Atlas with ``embedding-atlas OUT.parquet --vector embedding --image image
--neighbors neighbors``.

Rows go in row groups of ROW_GROUP_ROWS, into a temp file beside the target that is fsynced and
then renamed onto it (export.atomic_write): a failed or cancelled export leaves an existing file
untouched.

Arrow text must be valid UTF-8, so a path that is not (a Linux file name in another encoding,
which os.fsdecode turns into lone surrogates) is written with its undecodable bytes as ``\\xNN``
escapes: readable, but unlike the CSV export's cells such a path does not name the file.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from clipscape.models import parquet_schema
from clipscape.models.export import Columns, atomic_write
from clipscape.models.neighbors import nearest_neighbors, unit_scale
from clipscape.models.parquet_schema import EMBEDDING, PATH, ModelRecord, vector_type, vectors_to_arrow

__all__ = ["model_record", "thumbnail", "write_parquet"]

ProgressFn = Callable[[int, int], None]

X, Y, CLASS, PROBABILITY, SCORE, IMAGE, NEIGHBORS = "x", "y", "class", "probability", "score", "image", "neighbors"
CHUNK_ROWS = 1000
"""Rows computed (and progress reported) at a time; row groups are ROW_GROUP_ROWS all the same."""
THUMBNAIL_CHUNK_ROWS = 256
"""With thumbnails, a chunk is a few seconds of decoding on 8 threads, so Cancel answers soon."""
THUMBNAIL_SIDE = 256
THUMBNAIL_QUALITY = 85
THUMBNAIL_THREADS = 8


def write_parquet(
    path: str | os.PathLike[str],
    paths: Sequence[str],
    embeddings: np.ndarray,
    *,
    coords: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    probabilities: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    thumbnails: bool = False,
    neighbors: int = 0,
    model: ModelRecord | None = None,
    progress: ProgressFn | None = None,
) -> None:
    """Write one Parquet row per image, in the order of `paths`, atomically replacing `path`.

    The arguments are checked as write_csv checks them (ValueError); `neighbors` is the number
    of neighbours per row (0: no column), `model` the record put into the schema metadata (its
    dim must be the embeddings'). `progress(done, total)` is called after each chunk of rows
    and at the end; raising from it cancels the export and leaves any existing file untouched.
    """
    columns = Columns.checked(paths, embeddings, coords, classes, probabilities, scores)
    if isinstance(neighbors, bool) or not isinstance(neighbors, (int, np.integer)) or neighbors < 0:
        raise ValueError(f"neighbors should be a whole number >= 0, got {neighbors!r}")
    dim = columns.embeddings.shape[1]
    if model is not None and model.dim != dim:
        raise ValueError(f"the model record says {model.dim} dimensions, the embeddings have {dim}")
    writer = _Writer(columns, bool(thumbnails), int(neighbors), model)
    atomic_write(Path(path), lambda f: writer.write(f, progress), binary=True)


def model_record(encoder: Any, dim: int) -> ModelRecord | None:
    """The record of `encoder` (None for None), made of `dim`-wide embeddings, without building it.

    A LazyEncoder (models/lazy_encoder.py) builds its model on the first attribute it does not
    carry; its identity, key and dim it carries, so they are read from the instance itself.
    An encoder that does not carry its dim is taken to have made `dim`-wide vectors.
    """
    if encoder is None:
        return None
    carried = getattr(encoder, "__dict__", {})
    identity = carried["identity"] if "identity" in carried else encoder.identity
    key = carried["key"] if "key" in carried else encoder.key
    carried_dim = carried.get("dim")
    return ModelRecord(dict(identity), str(key), int(dim if carried_dim is None else carried_dim))


def thumbnail(path: str, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """A JPEG of the image at `path`, its longest side at most `side` px; None if it cannot be made.

    Decoded as the encoder decodes (upright, RGB, JPEGs at reduced scale); any failure, of
    reading, decoding or encoding, gives None: a thumbnail is never worth failing an export.
    """
    from PIL import Image

    from clipscape.models.images import load_rgb

    try:
        image = load_rgb(path, min_side=side)
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
        return out.getvalue()
    except Exception:  # noqa: BLE001 — see the docstring
        return None


class _Writer:
    """The schema of one export, and its rows written chunk by chunk into row groups."""

    def __init__(self, columns: Columns, thumbnails: bool, neighbors: int, model: ModelRecord | None):
        import pyarrow as pa

        self.columns, self.thumbnails, self.neighbors = columns, thumbnails, neighbors
        fields = [pa.field(PATH, pa.string())]
        if columns.coords is not None:
            fields += [pa.field(X, pa.float32()), pa.field(Y, pa.float32())]
        if columns.classes is not None:
            fields += [pa.field(CLASS, pa.string()), pa.field(PROBABILITY, pa.float32())]
        if columns.scores is not None:
            fields.append(pa.field(SCORE, pa.float32()))
        fields.append(pa.field(EMBEDDING, vector_type(columns.embeddings.shape[1])))
        if thumbnails:
            fields.append(pa.field(IMAGE, pa.binary()))
        if neighbors:
            fields.append(pa.field(NEIGHBORS, _neighbors_type()))
        self.schema = pa.schema(fields, metadata=None if model is None else model.metadata())

    def write(self, f, progress: ProgressFn | None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        total = len(self.columns.paths)
        chunk = THUMBNAIL_CHUNK_ROWS if self.thumbnails else CHUNK_ROWS
        group_rows = parquet_schema.ROW_GROUP_ROWS
        inverse_norms = unit_scale(np.asarray(self.columns.embeddings, np.float32)) if self.neighbors else None
        with ExitStack() as stack:
            pool = (stack.enter_context(ThreadPoolExecutor(min(THUMBNAIL_THREADS, os.cpu_count() or 1),
                                                           thread_name_prefix="thumbnail"))
                    if self.thumbnails else None)
            writer = stack.enter_context(pq.ParquetWriter(f, self.schema))
            pending: list = []
            pending_rows = 0
            for start in range(0, total, chunk):
                stop = min(start + chunk, total)
                pending.append(self._batch(start, stop, pool, inverse_norms))
                pending_rows += stop - start
                if pending_rows >= group_rows:
                    table = pa.Table.from_batches(pending, self.schema)
                    while table.num_rows >= group_rows:
                        writer.write_table(table.slice(0, group_rows), row_group_size=group_rows)
                        table = table.slice(group_rows)
                    pending, pending_rows = table.to_batches(), table.num_rows
                if progress is not None:
                    progress(stop, total)
            if pending_rows:
                writer.write_table(pa.Table.from_batches(pending, self.schema), row_group_size=group_rows)
        if progress is not None and total == 0:
            progress(0, 0)

    def _batch(self, start: int, stop: int, pool: ThreadPoolExecutor | None, inverse_norms):
        """Rows start..stop-1 as one record batch of the schema."""
        import pyarrow as pa

        c = self.columns
        arrays = [_text_array(c.paths[start:stop])]
        if c.coords is not None:
            xy = np.asarray(c.coords[start:stop], np.float32)
            arrays += [pa.array(np.ascontiguousarray(xy[:, 0])), pa.array(np.ascontiguousarray(xy[:, 1]))]
        if c.classes is not None:
            arrays.append(_text_array(list(c.classes[start:stop])))
            arrays.append(pa.nulls(stop - start, pa.float32()) if c.probabilities is None
                          else pa.array(np.asarray(c.probabilities[start:stop], np.float32)))
        if c.scores is not None:
            arrays.append(pa.array(np.asarray(c.scores[start:stop], np.float32)))
        arrays.append(vectors_to_arrow(c.embeddings[start:stop]))
        if pool is not None:
            arrays.append(pa.array(list(pool.map(thumbnail, c.paths[start:stop])), pa.binary()))
        if self.neighbors:
            ids, distances = nearest_neighbors(c.embeddings, self.neighbors, start, stop, inverse_norms)
            arrays.append(_neighbors_array(ids, distances))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _neighbors_type():
    import pyarrow as pa

    return pa.struct([pa.field("ids", pa.list_(pa.int64())), pa.field("distances", pa.list_(pa.float32()))])


def _neighbors_array(ids: np.ndarray, distances: np.ndarray):
    """Rows of {"ids": [...], "distances": [...]} from two n × k arrays, without a Python loop."""
    import pyarrow as pa

    n, k = ids.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32) if k else np.zeros(n + 1, np.int32))
    return pa.StructArray.from_arrays(
        [pa.ListArray.from_arrays(offsets, pa.array(ids.reshape(-1), pa.int64())),
         pa.ListArray.from_arrays(offsets, pa.array(distances.reshape(-1), pa.float32()))],
        fields=list(_neighbors_type()))


def _text_array(values: Sequence[str]):
    """Strings as Arrow text; a string that is not valid UTF-8 gets its stray bytes as \\xNN escapes."""
    import pyarrow as pa

    try:
        return pa.array(values, pa.string())
    except UnicodeEncodeError:
        return pa.array([_utf8(v) for v in values], pa.string())


def _utf8(text: str) -> str:
    """`text` made valid UTF-8: the bytes os.fsdecode smuggled in as surrogates become \\xNN."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a byte (Windows names can hold them)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
