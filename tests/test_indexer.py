"""Indexing a folder: skips, cache reuse, changed and deleted files, cancel, kill -9 and resume."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from clipscape.models import indexer
from clipscape.models.indexer import index
from clipscape.models.projection import pca_2d, umap_2d
from clipscape.models.search import search, similar
from clipscape.models.shapes_world import write_folder
from clipscape.models.store import EmbeddingStore

from conftest import index_folder

REPO = Path(__file__).resolve().parent.parent


def test_bad_files_are_skipped_with_reasons_and_the_run_goes_on(folder, demo_encoder, tmp_path):
    (folder / "notes.jpg").write_text("this is not an image")
    good = sorted(folder.glob("00*.jpg"))
    (folder / "truncated.jpg").write_bytes(good[0].read_bytes()[:300])
    (folder / "empty.png").write_bytes(b"")
    collection, progress = index_folder(folder, demo_encoder, tmp_path / "c", batch_size=8)
    reasons = {Path(s.path).name: s.reason for s in progress.skipped}
    assert set(reasons) == {"notes.jpg", "truncated.jpg", "empty.png"}
    assert all(reasons.values())
    assert len(collection) == len(good) == progress.embedded
    assert collection.embeddings.shape == (len(good), demo_encoder.dim)
    assert np.allclose(np.linalg.norm(collection.embeddings, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("use_snapshot", [True, False], ids=["snapshot", "store"])
def test_reopening_encodes_only_new_and_changed_files_and_drops_deleted(use_snapshot, folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    first, p1 = index_folder(folder, demo_encoder, cache, use_snapshot=use_snapshot)
    assert (p1.embedded, p1.reused) == (48, 0)
    files = sorted(folder.glob("*.jpg"))
    files[0].unlink()                                          # deleted
    changed = files[1]
    write_folder(tmp_path / "other", 1, seed=99)[0][0].replace(changed)   # changed content
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    shutil.copy(files[2], folder / "new.jpg")                  # new
    second, p2 = index_folder(folder, demo_encoder, cache, use_snapshot=use_snapshot)
    # the new file is a copy of a cached one: recognised by its content, not encoded
    assert (p2.embedded, p2.reused, p2.recognised, p2.total) == (1, 47, 1, 48)
    assert str(files[0]) not in second.paths
    row = second.index_of(changed)
    assert not np.allclose(second.embeddings[row], first.embeddings[first.index_of(changed)])
    with EmbeddingStore(cache) as store:
        assert store.count(store.model_id(demo_encoder.key, demo_encoder.identity, demo_encoder.dim)) == 48


def test_cancel_keeps_finished_batches(folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    with EmbeddingStore(cache) as store:
        job = index(folder, demo_encoder, store, batch_size=8)
        stages = [next(job).stage, next(job).stage, next(job).stage]
        job.close()                                            # the user pressed Cancel
        assert stages == ["reopen", "scan", "encode"]          # (no snapshot yet: nothing reopened)
    _, progress = index_folder(folder, demo_encoder, cache, batch_size=8)
    assert (progress.reused, progress.embedded) == (8, 40)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_folders_work_end_to_end(n, tmp_path, demo_encoder):
    write_folder(tmp_path / "tiny", n, seed=n)
    collection, progress = index_folder(tmp_path / "tiny", demo_encoder, tmp_path / "c")
    assert len(collection) == n == progress.embedded
    assert len(search(collection, demo_encoder, "a red circle", top=10)) == n
    assert len(similar(collection, 0, top=10)) == n - 1
    for coords in (pca_2d(collection.embeddings), umap_2d(collection.embeddings)):
        assert coords.shape == (n, 2) and np.isfinite(coords).all()


def test_empty_folder_gives_an_empty_collection(tmp_path, demo_encoder):
    (tmp_path / "empty").mkdir()
    collection, progress = index_folder(tmp_path / "empty", demo_encoder, tmp_path / "c")
    assert len(collection) == 0 and collection.embeddings.shape == (0, demo_encoder.dim)


def test_cuda_out_of_memory_halves_the_batch_and_goes_on(folder, demo_encoder, tmp_path, monkeypatch):
    real = demo_encoder.model.encode_image
    sizes = []

    def picky(batch, *a, **k):
        sizes.append(len(batch))
        if len(batch) > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(batch, *a, **k)

    monkeypatch.setattr(demo_encoder.model, "encode_image", picky)
    monkeypatch.setattr(demo_encoder, "max_batch", None)
    collection, progress = index_folder(folder, demo_encoder, tmp_path / "c", batch_size=16)
    assert progress.embedded == 48 and demo_encoder.max_batch == 4
    assert sizes[:3] == [16, 8, 4] and max(sizes[3:]) == 4
    monkeypatch.undo()
    reference, _ = index_folder(folder, demo_encoder, tmp_path / "c2", batch_size=16)
    assert np.allclose(collection.embeddings, reference.embeddings, atol=1e-5)


SLOW_ENCODE = """
import sys, time
import clipscape.models.store as store
add = store.EmbeddingStore.add_batch
def slow(self, *a, **k):
    add(self, *a, **k)
    time.sleep(0.4)
store.EmbeddingStore.add_batch = slow
from clipscape.models.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_mid_encode_loses_at_most_a_batch_and_resumes(folder, tmp_path):
    cache = tmp_path / "c"
    cmd = [sys.executable, "-c", SLOW_ENCODE, "encode", str(folder), "--model", "demo",
           "--batch-size", "4", "--cache-dir", str(cache), "--quiet"]
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = cache / "embeddings.sqlite"
    committed = 0
    deadline = time.monotonic() + 120
    while committed < 12 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
                    committed = con.execute("select count(*) from embeddings").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    assert child.poll() is None, child.stderr.read().decode()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with sqlite3.connect(db) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        kept = con.execute("select count(*) from embeddings").fetchone()[0]
    assert kept >= committed and kept % 4 == 0 and kept < 48

    from clipscape.models.cli import main
    import json
    import io
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["encode", str(folder), "--model", "demo", "--cache-dir", str(cache), "--json", "--quiet"]) == 0
    summary = json.loads(out.getvalue())
    assert summary["reused"] == kept and summary["embedded"] == 48 - kept


# --- pruning only what the scan proved gone ---------------------------------------------------

def _count(cache, encoder):
    with EmbeddingStore(cache) as store:
        return store.count(store.model_id(encoder.key, encoder.identity, encoder.dim))


@pytest.mark.parametrize("use_snapshot", [True, False], ids=["snapshot", "store"])
def test_unreadable_sub_folder_keeps_its_cached_rows(use_snapshot, tmp_path, shapes_folder, demo_encoder, monkeypatch):
    src, _ = shapes_folder
    root = tmp_path / "photos"
    shutil.copytree(src, root / "open")
    shutil.copytree(src, root / "locked")
    cache = tmp_path / "c"
    index_folder(root, demo_encoder, cache, use_snapshot=use_snapshot)
    assert _count(cache, demo_encoder) == 96
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == str(root / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # simulated, so it also runs as root
    collection, progress = index_folder(root, demo_encoder, cache, use_snapshot=use_snapshot)
    assert len(collection) == 48
    assert [(k.path, k.rows, k.reason) for k in progress.kept] == [(str(root / "locked"), 48, "unreadable")]
    assert _count(cache, demo_encoder) == 96  # nothing deleted
    monkeypatch.undo()
    (root / "open" / sorted(os.listdir(root / "open"))[0]).unlink()  # a file really gone is still pruned
    collection, progress = index_folder(root, demo_encoder, cache, use_snapshot=use_snapshot)
    assert progress.kept == [] and len(collection) == 95 and _count(cache, demo_encoder) == 95


@pytest.mark.parametrize("use_snapshot", [True, False], ids=["snapshot", "store"])
def test_a_root_that_comes_back_empty_keeps_its_rows_unless_asked(use_snapshot, folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    index_folder(folder, demo_encoder, cache, use_snapshot=use_snapshot)
    away = tmp_path / "unplugged"
    away.mkdir()
    for f in folder.iterdir():
        f.rename(away / f.name)  # the folder is there but empty, as a mount point without its drive
    collection, progress = index_folder(folder, demo_encoder, cache, use_snapshot=use_snapshot)
    assert len(collection) == 0
    assert [(k.path, k.rows, k.reason) for k in progress.kept] == [(str(folder), 48, "empty")]
    assert _count(cache, demo_encoder) == 48
    collection, progress = index_folder(folder, demo_encoder, cache, prune_missing=True, use_snapshot=use_snapshot)
    assert progress.kept == [] and _count(cache, demo_encoder) == 0


def test_forget_empty_deletes_only_what_a_new_scan_proves_gone(folder, demo_encoder, tmp_path):
    from clipscape.models.indexer import forget_empty

    cache = tmp_path / "c"
    index_folder(folder, demo_encoder, cache)
    away = tmp_path / "unplugged"
    away.mkdir()
    files = sorted(folder.iterdir())
    for f in files:
        f.rename(away / f.name)
    _, progress = index_folder(folder, demo_encoder, cache)
    assert [k.reason for k in progress.kept] == ["empty"]
    for f in files[:10]:  # the drive is back (partly) before the user answers: those rows stay
        (away / f.name).rename(f)
    with EmbeddingStore(cache) as store:
        assert forget_empty(folder, demo_encoder, store) == 38
    assert _count(cache, demo_encoder) == 10
    with EmbeddingStore(cache) as store:
        assert forget_empty(tmp_path / "no-such-folder", demo_encoder, store) == 0
    assert _count(cache, demo_encoder) == 10


def test_prune_false_deletes_nothing(folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    index_folder(folder, demo_encoder, cache)
    for f in sorted(folder.iterdir())[:5]:
        f.unlink()
    collection, progress = index_folder(folder, demo_encoder, cache, prune=False)
    assert len(collection) == 43 and _count(cache, demo_encoder) == 48


def test_rows_deleted_by_another_process_after_partition_do_not_lose_the_run(folder, demo_encoder, tmp_path,
                                                                            monkeypatch):
    cache = tmp_path / "c"
    first, _ = index_folder(folder, demo_encoder, cache)
    files = sorted(folder.glob("*.jpg"))
    gone, still_there = files[0], files[1]
    real_partition = EmbeddingStore.partition

    def partition_then_race(self, model_id, scanned, **kwargs):
        result = real_partition(self, model_id, scanned, **kwargs)
        gone.unlink()  # meanwhile `encode PARENT/SUB` in another process prunes a deleted file …
        with sqlite3.connect(self.path) as other:  # … and something else drops a row of a file still there
            for path in (gone, still_there):
                other.execute("DELETE FROM embeddings WHERE path = ?", (os.fsencode(str(path)),))
        return result

    monkeypatch.setattr(EmbeddingStore, "partition", partition_then_race)
    # without the snapshot, which would give both files their last embeddings without asking the store
    collection, progress = index_folder(folder, demo_encoder, cache, use_snapshot=False)  # was: KeyError
    assert str(gone) not in collection.paths and len(collection) == 47
    assert (progress.reused, progress.embedded) == (46, 1)
    row = collection.index_of(still_there)
    np.testing.assert_allclose(collection.embeddings[row], first.embeddings[first.index_of(still_there)],
                               atol=1e-5)
    monkeypatch.undo()
    with EmbeddingStore(cache) as store:
        model = store.model_id(demo_encoder.key, demo_encoder.identity, demo_encoder.dim)
        assert store.count(model) == 47


# --- moved, renamed and copied files keep their embeddings -----------------------------------

def test_a_renamed_folder_and_a_copied_file_reuse_their_embeddings(folder, demo_encoder, tmp_path, monkeypatch):
    from PIL import Image

    root = tmp_path / "library"
    shutil.copytree(folder, root / "2019")
    cache = tmp_path / "c"
    first, _ = index_folder(root, demo_encoder, cache)
    (root / "2019").rename(root / "2019 - Holidays")
    some = sorted((root / "2019 - Holidays").iterdir())[0]
    shutil.copy(some, root / "copy.jpg")
    Image.open(some).rotate(90).save(root / "changed.jpg", "JPEG")  # other bytes: encoded

    encoded = []
    real = indexer.encoded_batches
    monkeypatch.setattr(indexer, "encoded_batches", lambda todo, *a, **k: (encoded.extend(todo), real(todo, *a, **k))[1])
    collection, progress = index_folder(root, demo_encoder, cache)
    assert (progress.recognised, progress.reused, progress.embedded) == (49, 49, 1)
    assert [f.path for f in encoded] == [str(root / "changed.jpg")]
    assert len(collection) == 50 and _count(cache, demo_encoder) == 50  # the old paths were pruned
    by_name = dict(zip(first.paths, first.embeddings))
    for path, vector in zip(collection.paths, collection.embeddings):
        if "Holidays" in path:
            np.testing.assert_array_equal(vector, by_name[path.replace("2019 - Holidays", "2019")])
    np.testing.assert_array_equal(collection.embeddings[collection.index_of(str(root / "copy.jpg"))],
                                  by_name[str(some).replace("2019 - Holidays", "2019")])
    # touched, not changed: recognised by content, not encoded again
    encoded.clear()
    os.utime(root / "copy.jpg", ns=(1, 1))
    _, progress = index_folder(root, demo_encoder, cache)
    assert (progress.recognised, progress.embedded, encoded) == (1, 0, [])


def test_a_file_whose_content_changed_is_never_given_its_old_embedding(folder, demo_encoder, tmp_path):
    from PIL import Image

    root = tmp_path / "r"
    shutil.copytree(folder, root)
    cache = tmp_path / "c"
    index_folder(root, demo_encoder, cache)
    victim = sorted(root.iterdir())[0]
    Image.new("RGB", (96, 96), "white").save(victim, "JPEG")
    _, progress = index_folder(root, demo_encoder, cache)
    assert (progress.recognised, progress.embedded) == (0, 1)


def test_the_collector_is_paused_while_a_library_is_read(folder, demo_encoder, tmp_path, monkeypatch):
    """No collection may start while the store's rows are read, on this thread or from the window's
    timer (models/gc_policy.py: collect_due holds off while a paused_gc block runs)."""
    import gc

    import clipscape.models.store as store_module
    from clipscape.models import gc_policy

    seen = []
    real = store_module.EmbeddingStore.partition

    def partition(self, *args, **kwargs):
        young = [[] for _ in range(2 * gc.get_threshold()[0])]   # alive: a young collection is due
        seen.append(gc_policy.collect_due())
        del young
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store_module.EmbeddingStore, "partition", partition)
    index_folder(folder, demo_encoder, tmp_path / "c")
    assert seen == [None]
