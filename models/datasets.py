"""Embeddings made elsewhere, opened as a Collection: Clipscape's Parquet datasets, Embedding
Atlas-style tables and clip-retrieval's npy + metadata output.

What a user with a cluster has is rarely a folder to index: it is the output of a batch job.
``open_embeddings`` recognises three kinds of it and gives the same ``Collection`` the indexer
gives for a folder, so search, zero-shot, the map and export work on it unchanged:

- **clipscape** — what ``clipscape encode --engine ray --out DATASET`` writes: ``DATASET/embeddings/``
  Parquet shards (path, size, mtime_ns, ``embedding``; the model recorded in each file's schema
  metadata) and ``DATASET/skipped/`` (path, size, mtime_ns, reason). A Parquet export
  (``clipscape export --parquet``) is recognised too: one file with ``path`` and ``embedding``.
- **table** — any Parquet file (or folder of them) with one vector column (a list of numbers,
  named with ``vector=`` or the only one found) and, optionally, a path/url column: what
  Embedding Atlas, pandas or DuckDB users have.
- **clip-retrieval** — a folder holding ``img_emb/img_emb_{i}.npy`` and
  ``metadata/metadata_{i}.parquet`` (column ``image_path`` or ``url``), row i of one shard
  matching row i of the other.

Vectors are made float32 and unit length (cosine similarity is what every Clipscape view
uses); rows whose vector is missing, NaN or zero are listed as skipped, not fatal. Rows are
sorted by path, as an indexed folder's are. Where the model is recorded, ``Embeddings.model``
says which; ``check_model`` turns a mismatch into a message naming the model that is needed.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipscape.models.collection import Collection
from clipscape.models.parquet_schema import EMBEDDING, MTIME, PATH, REASON, SIZE, ModelRecord
from clipscape.models.scan import Skipped

__all__ = ["DatasetError", "Embeddings", "check_model", "dataset_keys", "is_dataset", "is_remote", "open_embeddings"]

CLIPSCAPE, TABLE, CLIP_RETRIEVAL = "clipscape", "table", "clip-retrieval"
EMBEDDINGS_DIR, SKIPPED_DIR = "embeddings", "skipped"
IS_DATASET_LOOKS_AT = 64   # entries is_dataset reads of a folder at most (the window asks on the GUI thread)
PATH_COLUMNS = ("path", "image_path", "filepath", "file_path", "file", "filename", "url", "uri", "image_url")


class DatasetError(Exception):
    """The embeddings cannot be opened; ``str(e)`` says why and, where it can, what would work."""


@dataclass
class Embeddings:
    """An opened dataset: its collection, which model made it (None: not recorded), what it skipped."""

    collection: Collection
    kind: str
    source: str
    model: ModelRecord | None
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def label(self) -> str:
        """"200 images from DATASET (clipscape dataset, demo model)" and the like, for status lines."""
        model = self.model.label() if self.model else "model not recorded"
        return f"{len(self.collection)} images from {self.source} ({self.kind}, {model})"


def is_remote(path: str) -> bool:
    """True for a row whose image is not a local file but a URL (s3://, https://…): a dot, not an error."""
    return "://" in path


def is_dataset(path: str | os.PathLike) -> bool:
    """True for a Parquet file or a folder that ``open_embeddings`` would read (not a folder of photos)."""
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() == ".parquet"
    if not p.is_dir():
        return False
    if (p / EMBEDDINGS_DIR).is_dir() and any((p / EMBEDDINGS_DIR).glob("*.parquet")):
        return True
    if (p / "img_emb").is_dir() and (p / "metadata").is_dir():
        return True
    try:  # a folder of .parquet files only; a folder of photos says no at its first photo
        with os.scandir(p) as entries:
            seen = 0
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if not (entry.name.lower().endswith(".parquet") and entry.is_file()):
                    return False
                seen += 1
                if seen >= IS_DATASET_LOOKS_AT:
                    break
            return seen > 0
    except OSError:
        return False


def open_embeddings(source: str | os.PathLike, vector: str | None = None) -> Embeddings:
    """Read the embeddings at ``source`` (a Parquet file or dataset folder) into a Collection.

    ``vector`` names the vector column of a table that has several. Raises DatasetError with a
    readable reason for anything that is not one of the three kinds.
    """
    root = Path(source).expanduser().absolute()
    if not root.exists():
        raise DatasetError(f"no such file or folder: {source}")
    try:
        if root.is_dir() and (root / "img_emb").is_dir():
            return _clip_retrieval(root)
        files = _parquet_files(root / EMBEDDINGS_DIR if (root / EMBEDDINGS_DIR).is_dir() else root)
        return _table(root, files, vector)
    except DatasetError:
        raise
    except OSError as e:
        raise DatasetError(f"cannot read {source}: {e.strerror or e}") from e
    except Exception as e:  # pyarrow's errors on a broken file: ArrowInvalid and friends
        raise DatasetError(f"cannot read {source}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e


def dataset_keys(root: str | os.PathLike, filesystem=None) -> tuple[set[tuple[str, int, int]], ModelRecord | None]:
    """((path, size, mtime_ns) already in a Clipscape dataset, embedded or skipped; its model record).

    What a re-run of the Ray encoder leaves out. ``filesystem`` is a pyarrow FileSystem (None:
    the local one). An absent dataset has no keys.
    """
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    fs = filesystem or pafs.LocalFileSystem()
    keys: set[tuple[str, int, int]] = set()
    record = None
    for sub in (EMBEDDINGS_DIR, SKIPPED_DIR):
        folder = f"{os.fspath(root).rstrip('/')}/{sub}"
        if fs.get_file_info(folder).type != pafs.FileType.Directory:
            continue
        files = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(folder)) if i.path.endswith(".parquet"))
        if not files:
            continue
        data = pads.dataset(files, filesystem=fs, format="parquet")
        if sub == EMBEDDINGS_DIR:
            record = ModelRecord.from_metadata(data.schema.metadata)
        table = data.to_table(columns=[PATH, SIZE, MTIME])
        keys.update(zip(table[PATH].to_pylist(), table[SIZE].to_pylist(), table[MTIME].to_pylist()))
    return keys, record


def check_model(embeddings: Embeddings, encoder) -> str | None:
    """Why ``encoder`` cannot embed captions for these embeddings (None: it can).

    A recorded model must be the same (its cache key); an unrecorded one must at least have the
    same dimension, and the caller warns that the model is assumed.
    """
    dim = embeddings.collection.embeddings.shape[1]
    record = embeddings.model
    if record is not None and record.key != encoder.key:
        return (f"these embeddings were made with {record.label()}{_how_to_load(record)}; "
                f"caption search and classes need that model's text tower")
    encoder_dim = getattr(encoder, "dim", None)
    if encoder_dim is not None and dim != encoder_dim:
        return (f"these embeddings have {dim} dimensions but the model gives {encoder_dim}: "
                "they come from another model; load the one that made them")
    return None


def _how_to_load(record: ModelRecord) -> str:
    ident = record.identity
    if ident.get("source") == "hub":
        return f" (--model {ident.get('name')} --pretrained {ident.get('tag')})"
    if ident.get("source") == "file":
        return f" (--model {ident.get('name')} --pretrained CHECKPOINT with weights sha256 {record.identity.get('weights_sha256', '')[:12]})"
    return f" (a local-dir model with weights sha256 {str(ident.get('weights_sha256', ''))[:12]}, such as --model demo)"


# --- the kinds ---------------------------------------------------------------------------------

def _parquet_files(folder_or_file: Path) -> list[Path]:
    if folder_or_file.is_file():
        return [folder_or_file]
    files = sorted(p for p in folder_or_file.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise DatasetError(f"{folder_or_file} holds no .parquet files (nor img_emb/ and metadata/ folders)")
    return files


def _table(root: Path, files: list[Path], vector: str | None) -> Embeddings:
    import pyarrow.dataset as pads

    data = pads.dataset([str(f) for f in files], format="parquet")
    schema = data.schema
    record = ModelRecord.from_metadata(schema.metadata)
    column = _vector_column(schema, vector, files)
    path_column = _path_column(schema)
    wanted = [column] + ([path_column] if path_column else []) + ([MTIME] if MTIME in schema.names else [])
    table = data.to_table(columns=wanted)
    vectors = _as_matrix(table[column])
    paths = _paths(table[path_column] if path_column else None, len(table), root)
    mtimes = np.asarray(table[MTIME].to_numpy(zero_copy_only=False)) if MTIME in wanted else None
    kind = CLIPSCAPE if record is not None else TABLE
    skipped = _read_skipped(root / SKIPPED_DIR) if (root / SKIPPED_DIR).is_dir() else []
    return _embeddings(paths, vectors, kind, root, record, skipped, mtimes)


def _vector_column(schema, vector: str | None, files: list[Path]) -> str:
    import pyarrow as pa

    def is_vector(t) -> bool:
        return (pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t)) and (
            pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type))

    candidates = [f.name for f in schema if is_vector(f.type)]
    if vector is not None:
        if vector not in schema.names:
            raise DatasetError(f"no column {vector!r} in {files[0]}; its columns: {', '.join(schema.names)}")
        if vector not in candidates:
            raise DatasetError(f"column {vector!r} is {schema.field(vector).type}, not a list of numbers")
        return vector
    if EMBEDDING in candidates:
        return EMBEDDING
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise DatasetError(f"{files[0]} has no vector column (a list of numbers per row); "
                           f"its columns: {', '.join(schema.names)}")
    raise DatasetError(f"{files[0]} has several vector columns ({', '.join(candidates)}): name one with --vector")


def _path_column(schema) -> str | None:
    import pyarrow as pa

    lowered = {f.name.lower(): f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)}
    return next((lowered[name] for name in PATH_COLUMNS if name in lowered), None)


def _as_matrix(column) -> np.ndarray:
    """A list-of-numbers column → an N×D float array (NaN rows where a vector is missing or short)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    if pa.types.is_fixed_size_list(column.type):
        dim = column.type.list_size
        values = column.flatten() if column.null_count == 0 else None
        if values is not None and column.offset == 0:
            return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, dim)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    lengths = np.nan_to_num(lengths.astype(np.float64), nan=0).astype(np.int64)
    dim = int(np.bincount(lengths[lengths > 0]).argmax()) if (lengths > 0).any() else 0
    if dim == 0:
        raise DatasetError("the vector column holds no vectors")
    out = np.full((n, dim), np.nan, np.float32)
    good = lengths == dim
    if good.any():
        out[good] = np.asarray(column.filter(pa.array(good)).flatten().to_numpy(zero_copy_only=False),
                               np.float32).reshape(-1, dim)
    return out


def _paths(values, n: int, root: Path):
    """Each row's path, as an Arrow string array: an absolute path as it is, a relative one from the
    table's folder, a URL as it is, and "TABLE#rowI" where there is none (vectorised: 1M rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = pa.array([f"{root}#row{i}" for i in range(n)], pa.string()) if values is None else None
    if rows is not None:
        return rows
    values = (values.combine_chunks() if isinstance(values, pa.ChunkedArray) else pa.array(values)).cast(pa.string())
    missing = pc.fill_null(pc.equal(values, ""), True)
    if pc.any(missing).as_py():
        values = pc.if_else(missing, pa.array([f"{root}#row{i}" for i in range(n)]), values)
    kept = pc.or_(pc.or_(pc.starts_with(values, "/"), pc.match_substring_regex(values, r"^[a-zA-Z][a-zA-Z0-9+.-]+://")),
                  missing)
    if os.sep != "/":  # C:\… and \\server\share on Windows
        kept = pc.or_(kept, pc.match_substring_regex(values, r"^([a-zA-Z]:[\\/]|\\\\)"))
    relative = np.flatnonzero(~kept.to_numpy(zero_copy_only=False))
    if not len(relative):
        return values
    base = root.parent if root.is_file() else root
    out = values.to_pylist()
    for i in relative:
        out[i] = os.path.abspath(os.path.join(base, out[i]))
    return pa.array(out, pa.string())


def _read_skipped(folder: Path) -> list[Skipped]:
    import pyarrow.dataset as pads

    files = sorted(str(p) for p in folder.glob("*.parquet"))
    if not files:
        return []
    table = pads.dataset(files, format="parquet").to_table(columns=[PATH, REASON])
    return [Skipped(p, r) for p, r in zip(table[PATH].to_pylist(), table[REASON].to_pylist())]


def _clip_retrieval(root: Path) -> Embeddings:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def number(p: Path) -> int:
        found = re.search(r"(\d+)$", p.stem)
        return int(found.group(1)) if found else -1

    shards = sorted((root / "img_emb").glob("img_emb_*.npy"), key=number)
    if not shards:
        raise DatasetError(f"{root / 'img_emb'} holds no img_emb_N.npy files")
    vectors, paths = [], []
    for shard in shards:
        emb = np.load(shard, mmap_mode="r")
        meta_file = root / "metadata" / f"metadata_{number(shard)}.parquet"
        if not meta_file.is_file():
            raise DatasetError(f"{shard.name} has no {meta_file.relative_to(root)} beside it")
        meta = pq.read_table(meta_file)
        if len(meta) != len(emb):
            raise DatasetError(f"{meta_file.name} has {len(meta)} rows but {shard.name} {len(emb)} vectors")
        column = _path_column(meta.schema)
        paths.append(_paths(meta[column] if column else [None] * len(meta), len(meta), root))
        vectors.append(np.asarray(emb, np.float32))
    return _embeddings(pa.concat_arrays(paths), np.concatenate(vectors), CLIP_RETRIEVAL, root, None, [])


def _embeddings(paths, vectors: np.ndarray, kind: str, root: Path, record: ModelRecord | None,
                skipped: list[Skipped], mtimes: np.ndarray | None = None) -> Embeddings:
    """Normalise, drop unusable rows (as skipped), keep one row per path (the newest), sort by path.

    ``paths`` is an Arrow string array; the sort and the de-duplication run in Arrow (C++), so a
    million rows take a fraction of a second rather than a Python dict's seconds.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(paths)
    norms = np.linalg.norm(vectors, axis=1) if n else np.zeros(0)
    usable = np.isfinite(norms) & (norms > 0)
    unusable = np.flatnonzero(~usable)
    bad = [Skipped(p, "no usable vector (missing, NaN or all zeros)") for p in paths.take(pa.array(unusable)).to_pylist()]
    columns = {"p": paths, "i": pa.array(np.arange(n, dtype=np.int64))}
    keys = [("p", "ascending")]
    if mtimes is not None:  # a re-run appended a newer version of a changed file: keep the newest
        columns["m"] = pa.array(mtimes, pa.int64())
        keys.append(("m", "descending"))
    table = pa.table(columns).filter(pa.array(usable))
    table = table.take(pc.sort_indices(table, sort_keys=keys))
    sorted_paths = table["p"].combine_chunks()
    keep = np.ones(len(table), bool)
    if len(table) > 1:
        keep[1:] = pc.not_equal(sorted_paths.slice(1), sorted_paths.slice(0, len(table) - 1)).to_numpy(
            zero_copy_only=False)
    rows = table["i"].to_numpy()[keep]
    final_paths = sorted_paths.filter(pa.array(keep)).to_pylist()
    unit = vectors[rows]
    unit /= norms[rows, None]
    if skipped:
        held = set(final_paths)
        skipped = [s for s in skipped if s.path not in held]
    key = record.key if record is not None else f"unrecorded:{kind}:{root}"
    collection = Collection(final_paths, np.ascontiguousarray(unit, dtype=np.float32), key)
    return Embeddings(collection, kind, str(root), record, skipped + bad)
