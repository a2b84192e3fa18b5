"""The embedding cache: one SQLite file holding every image embedding we have computed.

Rows are keyed by the model identity and the image file's (path, size, mtime_ns), so a scan can
ask which files are new or changed (`partition`) and encode only those. Each batch is committed
as it arrives (`add_batch`), so cancelling or killing a long encode keeps all finished work.

Threading: an `EmbeddingStore` belongs to the thread that created it (sqlite3's default
`check_same_thread=True` enforces this). Open one store per worker thread or process; SQLite's
WAL mode lets many readers run alongside one writer, and the busy timeout makes a second writer
(the CLI while the GUI encodes) wait for its turn instead of failing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import platformdirs

from clipscape.models.collection import CHUNK, PathTable, drop
from clipscape.models.display import printable
from clipscape.models.store_errors import CacheError, cache_error, damaged, folder_error, translated

__all__ = ["CacheError", "EmbeddingStore", "FileKey", "default_cache_dir"]

DB_NAME = "embeddings.sqlite"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
PAGE_SIZE = 32768
# Vectors are stored little-endian whatever the machine, so a cache folder can be copied around.
VECTOR_DTYPE = np.dtype("<f4")

_SCHEMA = (
    """CREATE TABLE models (
        id       INTEGER PRIMARY KEY,
        key      TEXT    NOT NULL UNIQUE,   -- stable hash of the identity: the cache key
        identity TEXT    NOT NULL,          -- JSON, only for humans poking at the file
        dim      INTEGER NOT NULL CHECK (dim > 0)
    )""",
    """CREATE TABLE embeddings (
        model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
        path     BLOB    NOT NULL,          -- os.fsencode(path): any bytes the OS allows
        size     INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        vector   BLOB    NOT NULL,          -- little-endian float32 x models.dim
        PRIMARY KEY (model_id, path)
    )""",
)

# Text (prompt) embeddings, so the 80-prompt class ensembles are computed once per model, not once
# per session. Added after schema 1 shipped; CREATE IF NOT EXISTS on open keeps both directions
# compatible (older code ignores the table), so it does not bump SCHEMA_VERSION.
_TEXTS = """CREATE TABLE IF NOT EXISTS texts (
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    prompt   TEXT    NOT NULL,
    vector   BLOB    NOT NULL,              -- little-endian float32 x models.dim
    PRIMARY KEY (model_id, prompt)
)"""

# Added the same way: what a model is known by before it is built (models/lazy_encoder.py), a
# hash of its weights' identity, config and library versions, pointing at the row a build produced.
_ALIASES = """CREATE TABLE IF NOT EXISTS model_aliases (
    alias    TEXT    PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE
)"""

# And each embedding's content fingerprint (models/fingerprint.py), so a moved, renamed or copied
# file gets the embedding of the same bytes at their old path instead of being encoded again.
# A row goes with its embedding (the foreign key), and add_batch replaces or drops it.
_FINGERPRINTS = (
    """CREATE TABLE IF NOT EXISTS fingerprints (
        model_id    INTEGER NOT NULL,
        path        BLOB    NOT NULL,
        fingerprint BLOB    NOT NULL,
        PRIMARY KEY (model_id, path),
        FOREIGN KEY (model_id, path) REFERENCES embeddings (model_id, path) ON DELETE CASCADE
    )""",
    "CREATE INDEX IF NOT EXISTS fingerprints_by_content ON fingerprints (model_id, fingerprint)",
)

# Scratch table for set operations against a long list of files (partition, load): one
# executemany + one join instead of a query per file. TEMP tables are private to the connection.
_PROBE = """CREATE TEMP TABLE IF NOT EXISTS probe (
    idx      INTEGER PRIMARY KEY,           -- position in the caller's sequence
    path     BLOB NOT NULL,
    size     INTEGER,
    mtime_ns INTEGER
)"""

# Every path equal to or under a folder sorts in [folder, folder + (sep + 1)) byte-wise: an index
# range scan. That range also holds siblings like "/a/b-x" or "/a/b.txt", which the callers'
# startswith check drops (and "/a/bc" is outside it: 'c' > sep + 1).
_UNDER = "SELECT rowid, path FROM embeddings WHERE model_id = ? AND path >= ? AND path < ?"

# What this version reads and writes; _migrate refuses a file whose schema lacks any of it.
_COLUMNS = {"models": {"id", "key", "identity", "dim"},
            "embeddings": {"model_id", "path", "size", "mtime_ns", "vector"}}

_UPSERT = """INSERT INTO embeddings (model_id, path, size, mtime_ns, vector) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (model_id, path) DO UPDATE
    SET size = excluded.size, mtime_ns = excluded.mtime_ns, vector = excluded.vector"""


_SET_FINGERPRINT = "INSERT OR REPLACE INTO fingerprints (model_id, path, fingerprint) VALUES (?, ?, ?)"


class FileKey(Protocol):
    """What the store needs of a scanned file (models.scan.ImageFile has exactly this)."""

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def mtime_ns(self) -> int: ...


F = TypeVar("F", bound=FileKey)



def default_cache_dir() -> Path:
    """Where the cache lives: $CLIPSCAPE_CACHE_DIR if set, else the platform's user cache dir."""
    override = os.environ.get("CLIPSCAPE_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("clipscape"))


class EmbeddingStore:
    """SQLite (WAL) cache of image embeddings keyed by file (path, size, mtime_ns) and model identity."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        """Open (creating if needed) `<cache_dir>/embeddings.sqlite`; see the module doc on threads."""
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission, a read-only file system
            raise folder_error(exc, self.cache_dir) from None
        self.path = self.cache_dir / DB_NAME
        if self.path.is_dir():
            raise CacheError(f"the embedding cache {printable(self.path)} is a folder, not a file: move it "
                             "away, or point --cache-dir (CLIPSCAPE_CACHE_DIR) at another folder")
        self._dims: dict[int, int] = {}
        try:
            # isolation_level=None: no implicit transactions; we say BEGIN/COMMIT ourselves.
            # timeout= is SQLite's busy timeout: wait for another process's write lock.
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise cache_error(exc, self.path) from exc
        try:
            self._configure()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise cache_error(exc, self.path) from exc
        except BaseException:
            self._conn.close()
            raise

    # -- public API ---------------------------------------------------------------------------

    @translated
    def model_id(self, key: str, identity: dict[str, Any], dim: int) -> int:
        """Row id of the model named by `key` (created if missing); ValueError if its dim differs."""
        dim = int(dim)
        if dim <= 0:
            raise ValueError(f"embedding dim must be positive, got {dim}")
        # Read first: a model already known needs no write lock (none is taken while another
        # process encodes, and a read-only command then writes nothing at all).
        row = self._conn.execute("SELECT id, dim FROM models WHERE key = ?", (key,)).fetchone()
        if row is None:
            with self._write_transaction() as conn:
                row = conn.execute("SELECT id, dim FROM models WHERE key = ?", (key,)).fetchone()
                if row is None:
                    text = json.dumps(identity, sort_keys=True, default=str)
                    cursor = conn.execute(
                        "INSERT INTO models (key, identity, dim) VALUES (?, ?, ?)", (key, text, dim)
                    )
                    row = (cursor.lastrowid, dim)
        model, stored_dim = row
        if stored_dim != dim:
            raise ValueError(f"model {key!r} is cached with dim {stored_dim}, not {dim}")
        self._dims[model] = dim
        return model

    @translated
    def model_by_alias(self, alias: str) -> tuple[str, dict[str, Any], int] | None:
        """(key, identity, dim) of the model recorded under ``alias``, or None if none is."""
        row = self._conn.execute("SELECT m.key, m.identity, m.dim FROM model_aliases a JOIN models m "
                                 "ON m.id = a.model_id WHERE a.alias = ?", (alias,)).fetchone()
        if row is None:
            return None
        try:
            identity = json.loads(row[1])
        except ValueError:
            return None  # a hand-edited record: the model is built and recorded again
        return row[0], identity, int(row[2])

    @translated
    def add_alias(self, alias: str, model_id: int) -> None:
        """Record that the model built for ``alias`` is ``model_id`` (see model_by_alias)."""
        with self._write_transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO model_aliases (alias, model_id) VALUES (?, ?)", (alias, model_id))

    @translated
    def partition(self, model_id: int, files: Sequence[F], under: Sequence[str] | None = None,
                  unseen: list[bytes] | None = None) -> tuple[list[F], list[F]]:
        """Split files into (cached, todo): todo holds the new ones and those whose size or mtime changed.

        A row whose stored vector has the wrong length (a damaged file) counts as missing, so
        the next encode replaces it. ``under``: folders (or files) that hold every one of
        ``files``, as the indexer's roots do; their rows are then read in one range scan each
        instead of joining a temporary table of every path (4× faster for a whole library); an
        ``unseen`` list then receives the (fsencoded) paths of the rows read that are not among
        ``files``: what a prune would delete, without reading the rows again (``prune(unseen=)``).
        """
        dim = self._dim(model_id)
        if under is not None:
            length = dim * VECTOR_DTYPE.itemsize
            known = PathTable()   # read in chunks: no list of every row
            for rows in self._chunks_under(model_id, under, "size, mtime_ns, length(vector)"):
                known.update((path, (size, mtime)) for path, size, mtime, n in rows if n == length)
            cached, todo = [], []
            fsencode = os.fsencode
            look = known.get if unseen is None else known.pop
            for f in files:
                (cached if look(fsencode(f.path), None) == (f.size, f.mtime_ns) else todo).append(f)
            if unseen is not None:
                unseen.extend(known)
            known.clear()
            return cached, todo
        rows = ((i, os.fsencode(f.path), int(f.size), int(f.mtime_ns)) for i, f in enumerate(files))
        with self._probe(rows) as conn:
            hits = conn.execute(
                """SELECT p.idx FROM temp.probe AS p JOIN embeddings AS e
                   ON e.model_id = ? AND e.path = p.path
                   AND e.size = p.size AND e.mtime_ns = p.mtime_ns AND length(e.vector) = ?""",
                (model_id, dim * VECTOR_DTYPE.itemsize),
            ).fetchall()
        cached_idx = {idx for (idx,) in hits}
        cached = [f for i, f in enumerate(files) if i in cached_idx]
        todo = [f for i, f in enumerate(files) if i not in cached_idx]
        return cached, todo

    @translated
    def add_batch(self, model_id: int, files: Sequence[FileKey], embeddings: np.ndarray,
                  fingerprints: Sequence[bytes | None] | None = None) -> None:
        """Store one embedding per file, replacing older rows of the same path, in one committed transaction.

        ``fingerprints`` (one per file, None where unknown) are each file's content fingerprint
        now; a path's older fingerprint is dropped either way.
        """
        vectors = self._checked_vectors(model_id, embeddings, len(files))
        rows = [
            (model_id, os.fsencode(f.path), int(f.size), int(f.mtime_ns), vector.tobytes())
            for f, vector in zip(files, vectors)
        ]
        prints = list(fingerprints) if fingerprints is not None else [None] * len(rows)
        with self._write_transaction() as conn:
            conn.executemany(_UPSERT, rows)
            conn.executemany("DELETE FROM fingerprints WHERE model_id = ? AND path = ?",
                             [(model_id, r[1]) for r, fp in zip(rows, prints) if fp is None])
            conn.executemany(_SET_FINGERPRINT,
                             [(model_id, r[1], fp) for r, fp in zip(rows, prints) if fp is not None])

    @translated
    def reuse(self, model_id: int, files: Sequence[F], fingerprints: Sequence[bytes | None]) -> list[F]:
        """Give each file the embedding cached for the same content elsewhere; return the files that got one.

        A file whose fingerprint matches a cached row (a moved, renamed or copied file, or one
        touched without changing) gets that row's vector under its own path, size and mtime,
        in one committed transaction. Damaged vectors are never copied.
        """
        wanted = {fp for fp in fingerprints if fp is not None}
        if not wanted:
            return []
        size = self._dim(model_id) * VECTOR_DTYPE.itemsize
        known: dict[bytes, bytes] = {}
        unique = list(wanted)
        for start in range(0, len(unique), 500):  # stay below SQLite's bound-parameter limit
            chunk = unique[start:start + 500]
            rows = self._conn.execute(
                f"""SELECT f.fingerprint, e.vector FROM fingerprints AS f JOIN embeddings AS e
                    ON e.model_id = f.model_id AND e.path = f.path
                    WHERE f.model_id = ? AND f.fingerprint IN ({",".join("?" * len(chunk))})""",
                (model_id, *chunk)).fetchall()
            known.update((fp, vector) for fp, vector in rows if len(vector) == size)
        found = [(f, fp) for f, fp in zip(files, fingerprints) if fp in known]
        if found:
            with self._write_transaction() as conn:
                conn.executemany(_UPSERT, [(model_id, os.fsencode(f.path), int(f.size), int(f.mtime_ns), known[fp])
                                           for f, fp in found])
                conn.executemany(_SET_FINGERPRINT,
                                 [(model_id, os.fsencode(f.path), fp) for f, fp in found])
        return [f for f, _ in found]

    @translated
    def prune(self, model_id: int, root: str, keep: Iterable[str], spare: Iterable[str] = (),
              unseen: Sequence[bytes] | None = None) -> int:
        """Delete this model's rows for paths inside folder `root` that are not in `keep`; return how many.

        Rows at or under a path in `spare` stay whatever `keep` says: the indexer passes what
        the scan could not read (an unreadable sub-folder's files were not seen, not deleted).
        ``unseen``: the rows not in ``keep`` as ``partition(unseen=)`` found them; only those are
        deleted then (``keep`` is not read), instead of reading every row under ``root`` again.
        """
        exact, prefix = _folder_prefix(root)
        spared = {_folder_prefix(p)[0] for p in spare}
        with self._write_transaction() as conn:
            if unseen is None:
                keep_bytes = {os.fsencode(p) for p in keep}
                rows = conn.execute(_UNDER, (model_id, exact, _range_end(prefix))).fetchall()
                doomed = [(rowid,) for rowid, path in rows
                          if (path == exact or path.startswith(prefix)) and path not in keep_bytes
                          and not (spared and _is_under_any(path, spared))]
                conn.executemany("DELETE FROM embeddings WHERE rowid = ?", doomed)
            else:
                doomed = [(model_id, path) for path in unseen
                          if (path == exact or path.startswith(prefix)) and not (spared and _is_under_any(path, spared))]
                conn.executemany("DELETE FROM embeddings WHERE model_id = ? AND path = ?", doomed)
        return len(doomed)

    @translated
    def sample_under(self, model_id: int, roots: Sequence[str], n: int) -> tuple[list[str], np.ndarray]:
        """About ``n`` of this model's rows at or under ``roots`` (every k-th row id), as (paths,
        float32 embeddings): a first look at a big cached folder before all of it is read. Rows
        are not checked against the files; damaged vectors are left out."""
        dim = self._dim(model_id)
        size = dim * VECTOR_DTYPE.itemsize
        top = self._conn.execute("SELECT max(rowid) FROM embeddings").fetchone()[0] or 0
        stride = max(1, top // max(1, int(n)))
        rows = [r for r in self._rows_under(model_id, roots, "vector", f"rowid % {stride} = 0") if len(r[1]) == size]
        return [os.fsdecode(r[0]) for r in rows], _stacked([r[1] for r in rows], dim)

    @translated
    def count_under(self, model_id: int, root: str) -> int:
        """How many of this model's rows are for `root` itself or paths inside it."""
        exact, prefix = _folder_prefix(root)
        rows = self._conn.execute(_UNDER, (model_id, exact, _range_end(prefix))).fetchall()
        return sum(1 for _, path in rows if path == exact or path.startswith(prefix))

    @translated
    def load(self, model_id: int, paths: Sequence[str]) -> np.ndarray:
        """Embeddings (float32, N x D) in the order of `paths`; KeyError naming the first missing path."""
        found, embeddings = self.load_found(model_id, paths)
        if len(found) < len(paths):
            missing = next(i for i, j in enumerate([*found, len(paths)]) if i != j)
            raise KeyError(f"no cached embedding for {paths[missing]!r}")
        return embeddings

    @translated
    def load_found(self, model_id: int, paths: Sequence[str],
                   under: Sequence[str] | None = None) -> tuple[list[int], np.ndarray]:
        """(positions in `paths` that have a row, their embeddings as float32 len(found) x D), in one read.

        Another process may delete rows between a partition() and this call (it pruned a file
        deleted meanwhile); the caller decides what to do with what is missing. ``under`` as
        for partition.
        """
        dim = self._dim(model_id)
        if under is not None:
            return self._load_under(model_id, paths, under, dim)
        rows = ((i, os.fsencode(p), None, None) for i, p in enumerate(paths))
        with self._probe(rows) as conn:
            found = conn.execute(
                """SELECT p.idx, e.vector FROM temp.probe AS p JOIN embeddings AS e
                   ON e.model_id = ? AND e.path = p.path ORDER BY p.idx""",
                (model_id,),
            ).fetchall()
        positions = [idx for idx, _ in found]
        blobs = [blob for _, blob in found]
        self._check_lengths([paths[i] for i in positions], blobs, dim)  # before decoding
        return positions, _stacked(blobs, dim)

    def _load_under(self, model_id: int, paths: Sequence[str], under: Sequence[str],
                    dim: int) -> tuple[list[int], np.ndarray]:
        """load_found(under=): the rows under the roots, read ``CHUNK`` at a time and each chunk's
        vectors put straight into place, so that no list of every row (paths and vector blobs as
        Python objects, ~430 MB at 1M 64-d rows) is alive beside the array (256 MB); the peak of
        a first open of a 1M folder is that much lower. The GIL is let go between chunks."""
        size = dim * VECTOR_DTYPE.itemsize
        position = PathTable()
        fsencode = os.fsencode
        for start in range(0, len(paths), CHUNK):
            position.update(zip(map(fsencode, paths[start:start + CHUNK]), range(start, start + CHUNK)))
        out = np.empty((len(paths), dim), np.float32)
        have = np.zeros(len(paths), bool)
        bad: list[str] = []
        for rows in self._chunks_under(model_id, under, "vector"):
            at = [position.get(path, -1) for path, _ in rows]
            keep = [i for i, p in enumerate(at) if p >= 0 and not have[p]]
            bad.extend(paths[at[i]] for i in keep if len(rows[i][1]) != size)
            keep = [i for i in keep if len(rows[i][1]) == size]
            if keep:
                where = np.fromiter((at[i] for i in keep), np.intp, len(keep))
                out[where] = np.frombuffer(b"".join(rows[i][1] for i in keep), dtype=VECTOR_DTYPE).reshape(-1, dim)
                have[where] = True
        position.clear()
        if bad:
            self._damaged(bad, dim)
        found = np.flatnonzero(have)
        return found.tolist(), out if len(found) == len(paths) else out[found]

    def _chunks_under(self, model_id: int, roots: Sequence[str], columns: str, where: str = "1") -> Iterator[list[tuple]]:
        """(path, *columns) of this model's rows at or under each of ``roots`` (and ``where``), as
        lists of at most ``CHUNK`` rows, read in one transaction."""
        self._conn.execute("BEGIN")  # one snapshot for all the roots
        try:
            for root in roots:
                exact, prefix = _folder_prefix(root)
                cursor = self._conn.execute(
                    f"SELECT path, {columns} FROM embeddings WHERE model_id = ? AND path >= ? AND path < ? AND {where}",
                    (model_id, exact, _range_end(prefix)))
                while rows := cursor.fetchmany(CHUNK):
                    yield [r for r in rows if r[0] == exact or r[0].startswith(prefix)]
        finally:
            _rollback(self._conn)

    def _check_lengths(self, paths: Sequence[str], blobs: Sequence[bytes], dim: int) -> None:
        """CacheError naming the rows whose stored vector is not dim float32s long."""
        size = dim * VECTOR_DTYPE.itemsize
        bad = [paths[i] for i, blob in enumerate(blobs) if len(blob) != size]
        if bad:
            self._damaged(bad, dim)

    def _damaged(self, bad: Sequence[str], dim: int) -> None:
        """Raise the CacheError naming these rows, whose stored vector is not dim float32s long."""
        raise CacheError(
            f"{len(bad)} stored embedding(s) in {printable(self.path)} are damaged (not {dim} numbers long), "
            f"first {printable(bad[0])}: run encode again to replace them")

    @translated
    def text_vectors(self, model_id: int, prompts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached embeddings of those prompts this model has seen (float32 vectors by prompt)."""
        dim = self._dim(model_id)
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(prompts))
        for start in range(0, len(unique), 500):  # stay below SQLite's bound-parameter limit
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT prompt, vector FROM texts WHERE model_id = ? AND prompt IN ({marks})",
                (model_id, *chunk)).fetchall()
            for prompt, blob in rows:
                vector = np.frombuffer(blob, dtype=VECTOR_DTYPE)
                if vector.size == dim:
                    found[prompt] = vector.astype(np.float32)
        return found

    @translated
    def add_texts(self, model_id: int, prompts: Sequence[str], embeddings: np.ndarray) -> None:
        """Store one embedding per prompt (replacing older ones), in one committed transaction."""
        vectors = self._checked_vectors(model_id, embeddings, len(prompts))
        with self._write_transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO texts (model_id, prompt, vector) VALUES (?, ?, ?)",
                             [(model_id, p, v.tobytes()) for p, v in zip(prompts, vectors)])

    @translated
    def count(self, model_id: int) -> int:
        """How many embeddings are cached for this model."""
        sql = "SELECT COUNT(*) FROM embeddings WHERE model_id = ?"
        return self._conn.execute(sql, (model_id,)).fetchone()[0]

    def close(self) -> None:
        """Close the connection (a no-op when already closed)."""
        try:
            self._conn.execute("PRAGMA optimize")  # cheap; keeps the query planner's stats fresh
        except sqlite3.Error:
            pass
        self._conn.close()

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- opening ------------------------------------------------------------------------------

    def _configure(self) -> None:
        """Connection pragmas. journal_mode reads the file, so a non-database fails here."""
        # Only takes effect on a fresh file. A 512-d vector is 2 KiB: with the default 4 KiB
        # pages only one row fits per page and the file is twice the data; at 32 KiB pages the
        # overhead is ~10-15 % for 512, 768 and 1024-d vectors, and loading is faster too.
        self._conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        # WAL: readers never block the writer and a commit is one append to the -wal file.
        self._conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode, synchronous=NORMAL fsyncs only at checkpoints, not at every commit. A
        # commit has still been write()n to the -wal file before COMMIT returns, and that data
        # lives in the OS page cache, which outlives our process: a kill -9 loses nothing that
        # was committed. Only an OS crash or power cut can drop the last few commits, and even
        # then the database stays consistent. For a cache that is the right trade for speed.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        """Create the schema in a fresh file; refuse a file written by a newer schema."""
        with self._write_transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise CacheError(
                    f"{printable(self.path)} was written by a newer Clipscape (cache schema {version}, this "
                    f"version reads {SCHEMA_VERSION}): upgrade Clipscape, or point --cache-dir "
                    "(CLIPSCAPE_CACHE_DIR) at another folder"
                )
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version == 0:
                if tables:  # someone else's database: never add our tables to it
                    raise damaged(self.path, f"it holds other tables: {', '.join(sorted(tables))}")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            else:
                self._check_schema(conn, tables)
            for statement in (_TEXTS, _ALIASES, *_FINGERPRINTS):
                conn.execute(statement)
        self._conn.execute(_PROBE)

    def _check_schema(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        """CacheError unless the tables and columns this version uses are all there."""
        for table, columns in _COLUMNS.items():
            if table not in tables:
                raise damaged(self.path, f"no table {table!r}")
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not columns <= have:
                raise damaged(self.path, f"table {table!r} lacks {', '.join(sorted(columns - have))}")

    # -- helpers ------------------------------------------------------------------------------

    @contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction holding the write lock from the start, committed on a clean exit.

        BEGIN IMMEDIATE waits (busy timeout) for another writer up front; a deferred BEGIN
        that reads first and then writes can fail with SQLITE_BUSY without waiting.
        """
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            _rollback(self._conn)
            raise
        try:
            self._conn.execute("COMMIT")
        except BaseException:  # a full disk can fail the commit itself; the batch is then not kept
            _rollback(self._conn)
            raise

    @contextmanager
    def _probe(self, rows: Iterable[tuple[int, bytes, int | None, int | None]]) -> Iterator[sqlite3.Connection]:
        """Fill temp.probe with (idx, path, size, mtime_ns) rows for the duration of a join.

        The rows live in a read transaction that is rolled back afterwards, which also empties
        the table again; the main database is only read.
        """
        self._conn.execute("BEGIN")
        try:
            self._conn.executemany("INSERT INTO temp.probe VALUES (?, ?, ?, ?)", rows)
            yield self._conn
        finally:
            _rollback(self._conn)

    def _rows_under(self, model_id: int, roots: Sequence[str], columns: str, where: str = "1") -> list[tuple]:
        """(path, *columns) of this model's rows at or under each of ``roots`` (and ``where``), read in one transaction."""
        return [row for rows in self._chunks_under(model_id, roots, columns, where) for row in rows]

    def _dim(self, model_id: int) -> int:
        """Embedding dim of a model row; ValueError for an id this cache does not know."""
        if model_id not in self._dims:
            row = self._conn.execute("SELECT dim FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None:
                raise ValueError(f"unknown model id {model_id} in {self.path}")
            self._dims[model_id] = row[0]
        return self._dims[model_id]

    def _checked_vectors(self, model_id: int, embeddings: np.ndarray, n: int) -> np.ndarray:
        """`embeddings` as contiguous little-endian float32 after checking it is n x dim."""
        array = np.asarray(embeddings)
        dim = self._dim(model_id)
        if array.ndim != 2 or array.shape[0] != n:
            raise ValueError(f"expected {n} embeddings as an N x D array, got shape {array.shape}")
        if array.shape[1] != dim:
            raise ValueError(f"embedding dim {array.shape[1]} does not match the model's dim {dim}")
        return np.ascontiguousarray(array, dtype=VECTOR_DTYPE)


def _folder_prefix(root: str) -> tuple[bytes, bytes]:
    """(root itself, root + separator) as fsencoded bytes, ignoring trailing separators."""
    sep = os.fsencode(os.sep)
    exact = os.fsencode(root).rstrip(sep)
    return exact, exact + sep


def _range_end(prefix: bytes) -> bytes:
    """The first byte string after every path that starts with `prefix` minus its separator."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _is_under_any(path: bytes, folders: set[bytes]) -> bool:
    """Whether `path` is one of `folders` or inside one (walks up the path's ancestors)."""
    sep = os.fsencode(os.sep)
    while path:
        if path in folders:
            return True
        parent = path.rsplit(sep, 1)[0]
        if parent == path:
            return False
        path = parent
    return False


def _rollback(conn: sqlite3.Connection) -> None:
    """End the open transaction, if SQLite has not already (it rolls back itself on a full disk)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the error that got us here is the one to report


def _stacked(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """The stored vectors as one float32 len(blobs)×dim array, filled ``CHUNK`` rows a step.

    One ``b"".join`` of 1M blobs and its float32 copy are two C calls over 256 MB (512-d) that
    hold the GIL for as long, a fraction of a second each with the fresh pages they write; the
    window's GUI thread waits for them. In steps, it can run in between."""
    out = np.empty((len(blobs), dim), np.float32)
    for start in range(0, len(blobs), CHUNK):
        part = blobs[start:start + CHUNK]
        out[start:start + len(part)] = np.frombuffer(b"".join(part), dtype=VECTOR_DTYPE).reshape(len(part), dim)
    return out
