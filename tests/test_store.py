"""Tests for models.store: the SQLite embedding cache."""

from __future__ import annotations

import inspect
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from clipscape.models.store import DB_NAME, PAGE_SIZE, CacheError, EmbeddingStore, default_cache_dir

try:
    from clipscape.models.scan import ImageFile
except ImportError:  # models/scan.py not written yet: the store only duck-types on these fields
    ImageFile = namedtuple("ImageFile", "path size mtime_ns")

REPO = Path(__file__).resolve().parents[1]
DIM = 8


def vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def files(names, size: int = 100, mtime_ns: int = 1_000) -> list:
    return [ImageFile(f"/photos/{name}", size, mtime_ns) for name in names]


@pytest.fixture
def store(tmp_path):
    with EmbeddingStore(tmp_path / "cache") as s:
        yield s


@pytest.fixture
def model(store):
    return store.model_id("clip-a", {"name": "ViT-B-32", "pretrained": "laion"}, DIM)


def test_creates_database_in_cache_dir(tmp_path):
    with EmbeddingStore(tmp_path / "a" / "b"):
        pass
    assert (tmp_path / "a" / "b" / DB_NAME).is_file()


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIPSCAPE_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("CLIPSCAPE_CACHE_DIR")
    assert "clipscape" in str(default_cache_dir()).lower()


def test_wal_mode_schema_version_page_size(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    conn.close()


def test_roundtrip(store, model):
    batch, emb = files(["a.jpg", "b.jpg", "c.jpg"]), vectors(3)
    store.add_batch(model, batch, emb)
    assert store.count(model) == 3
    loaded = store.load(model, ["/photos/c.jpg", "/photos/a.jpg"])
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, emb[[2, 0]])


def test_roundtrip_survives_reopen(tmp_path):
    emb = vectors(2)
    with EmbeddingStore(tmp_path) as s:
        s.add_batch(s.model_id("k", {}, DIM), files(["a", "b"]), emb)
    with EmbeddingStore(tmp_path) as s:
        np.testing.assert_array_equal(s.load(s.model_id("k", {}, DIM), ["/photos/a", "/photos/b"]), emb)


def test_load_missing_path_names_it(store, model):
    store.add_batch(model, files(["a"]), vectors(1))
    with pytest.raises(KeyError, match="nope.jpg"):
        store.load(model, ["/photos/a", "/photos/nope.jpg"])


def test_load_empty(store, model):
    assert store.load(model, []).shape == (0, DIM)


def test_partition_new_changed_unchanged(store, model):
    store.add_batch(model, files(["same", "bigger", "touched"]), vectors(3))
    same = ImageFile("/photos/same", 100, 1_000)
    bigger = ImageFile("/photos/bigger", 101, 1_000)
    touched = ImageFile("/photos/touched", 100, 1_001)
    new = ImageFile("/photos/new", 100, 1_000)
    cached, todo = store.partition(model, [new, same, bigger, touched])
    assert cached == [same]
    assert todo == [new, bigger, touched]


def test_partition_many_files_is_fast(store, model):
    many = files([f"{i}.jpg" for i in range(20_000)])
    for start in range(0, len(many), 5_000):
        store.add_batch(model, many[start : start + 5_000], vectors(5_000))
    probe = many + files([f"new{i}.jpg" for i in range(5_000)])
    t0 = time.perf_counter()
    cached, todo = store.partition(model, probe)
    assert time.perf_counter() - t0 < 5
    assert len(cached) == 20_000 and len(todo) == 5_000


def test_changed_file_replaces_its_row(store, model):
    store.add_batch(model, [ImageFile("/photos/a", 1, 1)], vectors(1, seed=1))
    store.add_batch(model, [ImageFile("/photos/a", 2, 2)], vectors(1, seed=2))
    assert store.count(model) == 1
    np.testing.assert_array_equal(store.load(model, ["/photos/a"]), vectors(1, seed=2))
    assert store.partition(model, [ImageFile("/photos/a", 2, 2)])[1] == []


def test_models_are_isolated(store):
    a = store.model_id("clip-a", {"name": "a"}, DIM)
    b = store.model_id("clip-b", {"name": "b"}, 4)
    assert a != b and store.model_id("clip-a", {"name": "a"}, DIM) == a
    store.add_batch(a, files(["x"]), vectors(1))
    assert store.count(b) == 0
    assert store.partition(b, files(["x"])) == ([], files(["x"]))
    with pytest.raises(KeyError):
        store.load(b, ["/photos/x"])


def test_identity_is_stored_as_json(store, model):
    conn = sqlite3.connect(store.path)
    (text,) = conn.execute("SELECT identity FROM models WHERE id = ?", (model,)).fetchone()
    conn.close()
    assert '"name": "ViT-B-32"' in text


def test_dim_mismatch(store, model):
    with pytest.raises(ValueError, match="dim"):
        store.add_batch(model, files(["a"]), vectors(1, dim=DIM + 1))
    with pytest.raises(ValueError, match="dim"):
        store.model_id("clip-a", {}, DIM + 1)
    with pytest.raises(ValueError):
        store.add_batch(model, files(["a", "b"]), vectors(1))
    assert store.count(model) == 0


def test_prune_only_under_root(store, model):
    paths = ["/a/b/1.jpg", "/a/b/sub/2.jpg", "/a/b/keep.jpg", "/a/bc/3.jpg", "/a/b-x/4.jpg", "/a/5.jpg", "/a/b"]
    store.add_batch(model, [ImageFile(p, 1, 1) for p in paths], vectors(len(paths)))
    other = store.model_id("other", {}, DIM)
    store.add_batch(other, [ImageFile("/a/b/1.jpg", 1, 1)], vectors(1))

    removed = store.prune(model, "/a/b", keep=["/a/b/keep.jpg"])

    assert removed == 3  # 1.jpg, sub/2.jpg, and the path equal to the root itself
    left = {f.path for f in store.partition(model, [ImageFile(p, 1, 1) for p in paths])[0]}
    assert left == {"/a/b/keep.jpg", "/a/bc/3.jpg", "/a/b-x/4.jpg", "/a/5.jpg"}
    assert store.count(other) == 1


def test_prune_spares_what_the_scan_could_not_read(store, model):
    paths = ["/a/locked/1.jpg", "/a/locked/deep/2.jpg", "/a/locked-not/3.jpg", "/a/odd.jpg", "/a/gone.jpg"]
    store.add_batch(model, [ImageFile(p, 1, 1) for p in paths], vectors(len(paths)))
    assert store.count_under(model, "/a/locked") == 2 and store.count_under(model, "/a") == 5
    assert store.prune(model, "/a", keep=[], spare=["/a/locked", "/a/odd.jpg"]) == 2  # locked-not, gone
    left = {f.path for f in store.partition(model, [ImageFile(p, 1, 1) for p in paths])[0]}
    assert left == {"/a/locked/1.jpg", "/a/locked/deep/2.jpg", "/a/odd.jpg"}


def test_prune_root_with_trailing_separator(store, model):
    store.add_batch(model, [ImageFile(p, 1, 1) for p in ["/a/b/1", "/a/bc/2"]], vectors(2))
    assert store.prune(model, "/a/b/", keep=[]) == 1
    assert store.count(model) == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes")
def test_non_utf8_path_roundtrip(store, model):
    weird = os.fsdecode(b"/photos/caf\xe9-\xff.jpg")  # Latin-1 bytes: not valid UTF-8
    emb = vectors(1)
    store.add_batch(model, [ImageFile(weird, 5, 6)], emb)
    assert store.partition(model, [ImageFile(weird, 5, 6)])[0] == [ImageFile(weird, 5, 6)]
    np.testing.assert_array_equal(store.load(model, [weird]), emb)
    assert store.prune(model, os.fsdecode(b"/photos"), keep=[weird]) == 0
    assert store.prune(model, os.fsdecode(b"/photos"), keep=[]) == 1


def test_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite at all, just some text" * 100)
    with pytest.raises(CacheError, match="delete") as info:
        EmbeddingStore(tmp_path)
    assert str(tmp_path / DB_NAME) in str(info.value)


def test_newer_schema_is_refused(tmp_path):
    EmbeddingStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(CacheError, match="newer"):
        EmbeddingStore(tmp_path)


def test_writer_waits_for_another_connections_lock(tmp_path):
    with EmbeddingStore(tmp_path) as s:
        model = s.model_id("k", {}, DIM)
        other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # hold the write lock, like a CLI mid-batch
        release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
        release.start()
        s.add_batch(model, files(["a"]), vectors(1))  # waits instead of "database is locked"
        release.join()
        other.close()
        assert s.count(model) == 1


# -- kill -9 ---------------------------------------------------------------------------------

BATCH, KILL_DIM = 200, 32


def batch_vectors(i: int, n: int, dim: int) -> np.ndarray:
    """The embeddings the child writes for batch i: deterministic, different per batch and row."""
    return (np.arange(n * dim, dtype=np.float32).reshape(n, dim) % 997 + i * 0.5).astype(np.float32)


def batch_files(i: int, n: int) -> list:
    return [ImageFile(f"/kill/{i:05d}/{j:04d}.jpg", i, j) for j in range(n)]


CHILD = (
    "import numpy as np\n"
    + inspect.getsource(batch_vectors)  # the child writes exactly what the test expects
    + textwrap.dedent(
        """
        import sys, time
        from collections import namedtuple
        from clipscape.models.store import EmbeddingStore
        ImageFile = namedtuple("ImageFile", "path size mtime_ns")
        cache, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        store = EmbeddingStore(cache)
        model = store.model_id("kill-test", {"name": "kill"}, dim)
        i = 0
        while True:
            files = [ImageFile(f"/kill/{i:05d}/{j:04d}.jpg", i, j) for j in range(n)]
            store.add_batch(model, files, batch_vectors(i, n, dim))
            i += 1
            time.sleep(0.002)
        """
    )
)


def _wait_for_rows(db: Path, rows: int, child: subprocess.Popen, timeout: float = 60) -> None:
    """Poll the child's database with our own connection until it holds `rows` rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read().decode()
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                if conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] >= rows:
                    return
            finally:
                conn.close()
        except sqlite3.OperationalError:
            pass  # file or table not created yet
        time.sleep(0.02)
    pytest.fail(f"child did not write {rows} rows in {timeout}s")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_keeps_every_committed_batch(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), str(BATCH), str(KILL_DIM)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_rows(tmp_path / DB_NAME, 3 * BATCH, child)
        time.sleep(np.random.default_rng().uniform(0, 0.01))  # land anywhere in a batch
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    with EmbeddingStore(tmp_path) as s:
        assert s._conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        model = s.model_id("kill-test", {"name": "kill"}, KILL_DIM)
        rows = s.count(model)
        assert rows >= 3 * BATCH and rows % BATCH == 0, "a batch was partly committed"
        for i in range(rows // BATCH):  # every committed batch is there, whole and intact
            batch = batch_files(i, BATCH)
            assert s.partition(model, batch) == (batch, [])
            np.testing.assert_array_equal(s.load(model, [f.path for f in batch]), batch_vectors(i, BATCH, KILL_DIM))


def test_text_vectors_round_trip_and_persist(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    with EmbeddingStore(tmp_path) as store:
        mid = store.model_id("m", {"name": "m"}, 8)
        assert store.text_vectors(mid, ["a photo of a cat."]) == {}
        store.add_texts(mid, ["a", "b", "c"], vectors)
        with pytest.raises(ValueError):
            store.add_texts(mid, ["d"], np.zeros((1, 4), np.float32))
    with EmbeddingStore(tmp_path) as store:
        found = store.text_vectors(mid, ["c", "a", "zzz", "a"])
    assert set(found) == {"a", "c"}
    assert np.array_equal(found["a"], vectors[0]) and np.array_equal(found["c"], vectors[2])


# --- every cache failure is one CacheError line naming the file ---------------------------------

def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_cache_dir_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheError) as info:
        EmbeddingStore(tmp_path / "file")
    assert str(tmp_path / "file") in one_line(info.value) and "--cache-dir" in str(info.value)


def test_database_path_that_is_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / DB_NAME).mkdir()
    with pytest.raises(CacheError, match="is a folder") as info:
        EmbeddingStore(tmp_path)
    assert str(tmp_path / DB_NAME) in one_line(info.value)


def test_foreign_sqlite_file_is_refused_and_left_alone(tmp_path):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="not a Clipscape cache") as info:
        EmbeddingStore(tmp_path)
    assert "notes" in one_line(info.value)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]  # nothing added
    conn.close()


def test_foreign_file_with_a_models_table_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("CREATE TABLE models (x)")  # was: sqlite3.OperationalError: table models already exists
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="not a Clipscape cache"):
        EmbeddingStore(tmp_path)


def test_half_made_schema_is_refused(tmp_path):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("CREATE TABLE models (id INTEGER PRIMARY KEY, key TEXT, identity TEXT, dim INTEGER)")
    conn.execute("PRAGMA user_version = 1")  # was: sqlite3.OperationalError: no such table: embeddings
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="damaged") as info:
        EmbeddingStore(tmp_path)
    assert "embeddings" in one_line(info.value)


def test_wrong_length_vector_is_reported_and_re_encoded(store, model):
    batch = files(["a.jpg", "b.jpg"])
    store.add_batch(model, batch, vectors(2))
    raw = sqlite3.connect(store.path)
    raw.execute("UPDATE embeddings SET vector = x'0102030405' WHERE path = ?", (os.fsencode("/photos/b.jpg"),))
    raw.commit()
    raw.close()
    with pytest.raises(CacheError, match="damaged") as info:  # was: ValueError: buffer size must be …
        store.load(model, ["/photos/a.jpg", "/photos/b.jpg"])
    assert "/photos/b.jpg" in one_line(info.value) and str(store.path) in str(info.value)
    for under in (None, ["/photos"]):   # the whole-folder read says the same
        with pytest.raises(CacheError, match="damaged") as info:
            store.load_found(model, ["/photos/a.jpg", "/photos/b.jpg"], under=under)
        assert "/photos/b.jpg" in one_line(info.value)
    assert store.load_found(model, ["/photos/a.jpg"], under=["/photos"])[0] == [0]   # only the rows asked for count
    cached, todo = store.partition(model, batch)
    assert [f.path for f in todo] == ["/photos/b.jpg"]  # the next encode replaces the damaged row
    store.add_batch(model, todo, vectors(1, seed=3))
    np.testing.assert_array_equal(store.load(model, ["/photos/b.jpg"]), vectors(1, seed=3))


def test_disk_full_is_a_clear_error_and_keeps_committed_rows(tmp_path):
    with EmbeddingStore(tmp_path) as store:
        model = store.model_id("k", {}, 512)
        store.add_batch(model, files(["first.jpg"]), vectors(1, 512))
        pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
        store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # the disk is full one page on
        with pytest.raises(CacheError, match="full") as info:
            store.add_batch(model, files([f"{i}.jpg" for i in range(200)]), vectors(200, 512))
        assert str(tmp_path / DB_NAME) in one_line(info.value)
        assert store.count(model) == 1
    with EmbeddingStore(tmp_path) as store:
        assert store.count(store.model_id("k", {}, 512)) == 1


READ_ONLY = """
import sys
from clipscape.models.store import CacheError, EmbeddingStore
try:
    with EmbeddingStore(sys.argv[1]) as store:
        store.model_id("k", {}, 8)
except CacheError as e:
    print(e)
    sys.exit(3)
"""


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_read_only_cache_folder_is_a_clear_error(tmp_path, existing):
    from conftest import run_unprivileged

    folder = tmp_path / "ro"
    folder.mkdir()
    if existing:
        EmbeddingStore(folder).close()
    folder.chmod(0o555)
    try:
        proc = run_unprivileged([sys.executable, "-c", READ_ONLY, folder], capture_output=True, text=True,
                                timeout=60)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 3, proc.stderr
    line = proc.stdout.strip()
    assert "\n" not in line and str(folder / DB_NAME) in line and "writable" in line, line


def test_load_found_reports_positions_and_skips_missing(store, model):
    store.add_batch(model, files(["a.jpg", "c.jpg"]), vectors(2))
    found, emb = store.load_found(model, ["/photos/c.jpg", "/photos/b.jpg", "/photos/a.jpg"])
    assert found == [0, 2]
    np.testing.assert_array_equal(emb, vectors(2)[[1, 0]])
    with pytest.raises(KeyError, match="b.jpg"):
        store.load(model, ["/photos/a.jpg", "/photos/b.jpg", "/photos/c.jpg"])


def test_rows_read_under_a_folder_are_stacked_in_steps_and_come_back_whole(store, model, monkeypatch):
    """load_found(under=) and sample_under build their dictionary and their array a few rows a
    step (so a worker lets the window's GUI thread in); what they return is the same."""
    import clipscape.models.store as store_module

    monkeypatch.setattr(store_module, "CHUNK", 2)
    names = [f"{i}.jpg" for i in range(7)]
    store.add_batch(model, files(names), vectors(7))
    asked = [f"/photos/{n}" for n in reversed(names)] + ["/photos/missing.jpg"]
    found, emb = store.load_found(model, asked, under=["/photos"])
    assert found == list(range(7))
    np.testing.assert_array_equal(emb, vectors(7)[::-1])
    paths, sample = store.sample_under(model, ["/photos"], 100)
    np.testing.assert_array_equal(sample, vectors(7)[[names.index(os.path.basename(p)) for p in paths]])


def test_known_model_needs_no_write_lock(tmp_path, monkeypatch):
    import clipscape.models.store as store_module

    with EmbeddingStore(tmp_path) as s:
        known = s.model_id("k", {}, DIM)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    writer = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    with EmbeddingStore(tmp_path) as reader:
        writer.execute("BEGIN IMMEDIATE")  # another process is committing a batch
        try:
            assert reader.model_id("k", {}, DIM) == known  # was: waited, then "database is locked"
            with pytest.raises(CacheError, match="locked"):
                reader.model_id("new", {}, DIM)  # a new model does need the lock
        finally:
            writer.execute("ROLLBACK")
            writer.close()


def test_reuse_copies_a_vector_by_fingerprint_and_a_rewrite_drops_the_old_fingerprint(tmp_path):
    vectors = np.eye(3, 8, dtype=np.float32)
    old = [ImageFile(f"/old/{i}.jpg", 10 + i, 1) for i in range(3)]
    with EmbeddingStore(tmp_path) as store:
        model = store.model_id("fp", {"name": "fp"}, 8)
        store.add_batch(model, old, vectors, [b"a" * 16, b"b" * 16, None])
        moved = [ImageFile("/new/0.jpg", 10, 5), ImageFile("/new/1.jpg", 11, 5), ImageFile("/new/2.jpg", 12, 5)]
        got = store.reuse(model, moved, [b"a" * 16, b"zz" * 8, None])
        assert got == [moved[0]]
        np.testing.assert_array_equal(store.load(model, ["/new/0.jpg"]), vectors[:1])
        assert store.partition(model, moved[:1]) == (moved[:1], [])  # under its own size and mtime
        store.add_batch(model, old[1:2], vectors[2:3])  # /old/1 re-encoded, fingerprint unknown now
        assert store.reuse(model, moved[1:2], [b"b" * 16]) == []  # its old content is no longer there
        store.prune(model, "/old", keep=[])
        assert store.reuse(model, moved[:1], [b"a" * 16]) == moved[:1]  # /new/0 carries the fingerprint on
        assert store._conn.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0] == 1


def test_partition_and_load_by_folder_equal_the_per_path_join(tmp_path):
    rng = np.random.default_rng(2)
    files = [ImageFile(f"/lib/{d}/{i}.jpg", i, 7) for d in ("a", "a b", "a-b", "ab") for i in range(20)]
    outside = [ImageFile("/lib/a.jpg", 1, 1), ImageFile("/lib2/x.jpg", 1, 1)]  # siblings a range scan also meets
    with EmbeddingStore(tmp_path) as store:
        model = store.model_id("under", {"name": "under"}, 4)
        store.add_batch(model, files + outside, rng.normal(size=(len(files) + 2, 4)).astype(np.float32))
        changed = [ImageFile(f.path, f.size, 8) if f.size % 3 == 0 else f for f in files] + [ImageFile("/lib/a/new.jpg", 1, 1)]
        scanned = [f for f in changed if f.path.startswith(("/lib/a/", "/lib/a b/"))]
        roots = ["/lib/a", "/lib/a b/"]
        assert store.partition(model, scanned, under=roots) == store.partition(model, scanned)
        paths = [f.path for f in scanned]
        by_join, by_range = store.load_found(model, paths), store.load_found(model, paths, under=roots)
        assert by_join[0] == by_range[0] and len(by_join[0]) == 40
        np.testing.assert_array_equal(by_join[1], by_range[1])


def test_sample_under_reads_about_n_rows_of_the_folder_only(tmp_path):
    from clipscape.models.scan import ImageFile

    with EmbeddingStore(tmp_path) as store:
        model = store.model_id("k", {}, 4)
        inside = [ImageFile(f"/lib/photos/{i:04d}.jpg", 1, 1) for i in range(1000)]
        outside = [ImageFile(f"/lib/other/{i:04d}.jpg", 1, 1) for i in range(1000)]
        vectors = np.eye(4, dtype=np.float32)[np.arange(2000) % 4]
        store.add_batch(model, inside + outside, vectors)
        paths, embeddings = store.sample_under(model, ["/lib/photos"], 100)
    assert 40 <= len(paths) <= 60 and embeddings.shape == (len(paths), 4)    # every 20th of the 2,000 rows
    assert all(p.startswith("/lib/photos/") for p in paths)
    by_path = {f.path: v for f, v in zip(inside, vectors)}
    assert all(np.array_equal(by_path[p], e) for p, e in zip(paths, embeddings))
