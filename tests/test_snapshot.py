"""The snapshot of a folder's last collection (models/snapshot.py): reopening reads it instead of
the store's rows, and gives the same collection as a fresh index whatever changed in between."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from clipscape.models import snapshot as snapshots
from clipscape.models.shapes_world import write_folder
from clipscape.models.store import EmbeddingStore

from conftest import index_folder


def _key(encoder, folder: Path) -> str:
    return snapshots.snapshot_key(encoder.key, [str(folder)], include_hidden=False, follow_links_out=False)


def _spy_store(monkeypatch) -> dict[str, list]:
    """Record how many files each partition / load_found call asked the store about."""
    asked: dict[str, list] = {"partition": [], "load_found": []}
    for name in asked:
        real = getattr(EmbeddingStore, name)

        def spy(self, model_id, files, *args, _real=real, _name=name, **kwargs):
            asked[_name].append(len(files))
            return _real(self, model_id, files, *args, **kwargs)

        monkeypatch.setattr(EmbeddingStore, name, spy)
    return asked


def _assert_same(a, b) -> None:
    assert a.paths == b.paths
    np.testing.assert_array_equal(a.embeddings, b.embeddings)


def test_an_unchanged_reopen_reads_the_snapshot_and_asks_the_store_nothing(folder, demo_encoder, tmp_path,
                                                                           monkeypatch):
    cache = tmp_path / "c"
    first, _ = index_folder(folder, demo_encoder, cache)
    assert first.snapshot and (cache / "snapshots" / f"{_key(demo_encoder, folder)}.npz").is_file()
    asked = _spy_store(monkeypatch)
    pruned = []
    monkeypatch.setattr(EmbeddingStore, "prune", lambda self, *a, **k: pruned.append(a) or 0)
    again, progress = index_folder(folder, demo_encoder, cache)
    _assert_same(again, first)
    assert again.snapshot == first.snapshot            # not rewritten
    assert asked == {"partition": [0], "load_found": []} and not pruned
    assert (progress.reused, progress.embedded) == (48, 0)


def test_a_reopen_after_adds_changes_and_deletes_equals_a_fresh_index(folder, demo_encoder, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    first, _ = index_folder(folder, demo_encoder, cache)
    files = sorted(folder.glob("*.jpg"))
    files[0].unlink()                                                      # deleted
    changed = files[1]
    write_folder(tmp_path / "other", 1, seed=99)[0][0].replace(changed)    # changed content
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    write_folder(folder / "new", 2, seed=5)                                # new files
    asked = _spy_store(monkeypatch)
    reopened, progress = index_folder(folder, demo_encoder, cache)
    assert asked["partition"] == [3], "only the changed and the new files go to the store"
    assert progress.embedded == 3 and progress.reused == 46
    assert reopened.snapshot and reopened.snapshot != first.snapshot
    monkeypatch.undo()
    fresh, _ = index_folder(folder, demo_encoder, cache, use_snapshot=False)
    _assert_same(reopened, fresh)
    assert str(files[0]) not in reopened.paths
    row = reopened.index_of(changed)
    assert not np.allclose(reopened.embeddings[row], first.embeddings[first.index_of(changed)])
    with EmbeddingStore(cache) as store:   # the deleted file's row was pruned: the snapshot no longer covered it
        assert store.count(store.model_id(demo_encoder.key, demo_encoder.identity, demo_encoder.dim)) == 49
    # and the snapshot written now is read back whole next time
    third, _ = index_folder(folder, demo_encoder, cache)
    _assert_same(third, fresh)
    assert third.snapshot == reopened.snapshot


def test_a_damaged_or_foreign_snapshot_is_ignored(folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    first, _ = index_folder(folder, demo_encoder, cache)
    target = cache / "snapshots" / f"{_key(demo_encoder, folder)}.npz"
    for damage in (b"", b"not a zip file", target.read_bytes()[:1000]):
        target.write_bytes(damage)
        again, _ = index_folder(folder, demo_encoder, cache)
        _assert_same(again, first)
        assert snapshots.load(cache, _key(demo_encoder, folder), demo_encoder.dim) is not None  # rewritten
    assert snapshots.load(cache, _key(demo_encoder, folder), demo_encoder.dim + 1) is None  # another width


def test_a_snapshot_that_cannot_be_written_costs_only_time(folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    cache.mkdir()
    (cache / "snapshots").write_text("a file where the folder would go")
    first, _ = index_folder(folder, demo_encoder, cache)
    assert len(first) == 48 and first.snapshot == ""
    again, _ = index_folder(folder, demo_encoder, cache)
    _assert_same(again, first)


def test_paths_that_are_not_utf8_come_back_exactly(tmp_path, demo_encoder):
    folder = tmp_path / "odd"
    write_folder(folder, 2, seed=3)
    name = next(folder.glob("*.jpg"))
    odd = os.fsencode(folder) + b"/caf\xe9 \xff.jpg"
    os.rename(os.fsencode(name), odd)
    first, _ = index_folder(folder, demo_encoder, tmp_path / "c")
    snap = snapshots.load(tmp_path / "c", _key(demo_encoder, folder), demo_encoder.dim)
    assert snap.paths == first.paths and os.fsdecode(odd) in snap.paths
    again, _ = index_folder(folder, demo_encoder, tmp_path / "c")
    _assert_same(again, first)


def test_a_read_only_run_does_not_let_a_later_one_skip_pruning(folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    index_folder(folder, demo_encoder, cache, prune=False)    # `clipscape search`: deletes nothing
    snap = snapshots.load(cache, _key(demo_encoder, folder), demo_encoder.dim)
    assert not snap.pruned
    with EmbeddingStore(cache) as store:   # a row the store holds under the folder that the snapshot lacks
        model = store.model_id(demo_encoder.key, demo_encoder.identity, demo_encoder.dim)
        from clipscape.models.scan import ImageFile
        store.add_batch(model, [ImageFile(str(folder / "gone.jpg"), 1, 1)], np.ones((1, demo_encoder.dim)))
    index_folder(folder, demo_encoder, cache)                 # the window's open: prunes, as without a snapshot
    with EmbeddingStore(cache) as store:
        assert store.count(model) == 48
    assert snapshots.load(cache, _key(demo_encoder, folder), demo_encoder.dim).pruned


def test_the_map_is_kept_for_its_own_snapshot_only(folder, demo_encoder, tmp_path):
    cache = tmp_path / "c"
    first, _ = index_folder(folder, demo_encoder, cache)
    key = _key(demo_encoder, folder)
    coords = np.random.default_rng(0).normal(size=(len(first), 2)).astype(np.float32)
    assert snapshots.save_map(cache, key, first.snapshot, coords, "umap")
    got, kind = snapshots.load_map(cache, key, first.snapshot)
    np.testing.assert_array_equal(got, coords)
    assert kind == "umap"
    assert not snapshots.save_map(cache, key, "another token", coords, "umap")
    sorted(folder.glob("*.jpg"))[0].unlink()
    second, _ = index_folder(folder, demo_encoder, cache)
    assert snapshots.load_map(cache, key, second.snapshot) is None   # the old map is of other rows


def test_match_finds_rows_by_path_and_stamp():
    from clipscape.models.scan import ImageFile

    snap = snapshots.Snapshot(["/a", "/b", "/c"], np.array([[1, 10], [2, 20], [3, 30]]),
                              np.eye(3, dtype=np.float32), "t", True)
    same = snapshots.match(snap, [ImageFile("/a", 1, 10), ImageFile("/b", 2, 20), ImageFile("/c", 3, 30)])
    assert same.rows.tolist() == [0, 1, 2] and same.covered
    moved = snapshots.match(snap, [ImageFile("/c", 3, 30), ImageFile("/b", 2, 21), ImageFile("/d", 4, 40)])
    assert moved.rows.tolist() == [2, -1, -1] and not moved.covered
    assert moved.stamps.tolist() == [[3, 30], [2, 21], [4, 40]]
    none = snapshots.match(None, [ImageFile("/a", 1, 10)])
    assert none.rows.tolist() == [-1] and not none.covered


def test_only_the_most_recently_used_snapshots_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "KEEP", 3)
    empty = np.zeros((1, 4), np.float32)
    for i in range(3):
        snapshots.save(tmp_path, f"k{i}", ["/a"], [[1, 1]], empty, True)
        os.utime(tmp_path / "snapshots" / f"k{i}.npz", ns=(i * 10**9, i * 10**9))
    token = snapshots.load(tmp_path, "k0", 4).token          # used now: the newest
    assert snapshots.save_map(tmp_path, "k0", token, np.zeros((1, 2)), "umap")
    snapshots.save(tmp_path, "k3", ["/a"], [[1, 1]], empty, True)
    names = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert names == ["k0.map.npz", "k0.npz", "k2.npz", "k3.npz"]


def test_paths_are_written_and_read_in_steps_and_come_back_exactly(monkeypatch):
    """The paths go to and from their byte array a chunk at a time (so that a worker leaves the
    GIL to the window in between); what comes back is the same, whatever the chunk boundaries."""
    from clipscape.models import collection

    odd = ["/x/é\udcff.jpg", "", "/y/" + "z" * 300 + ".png", "/w/日本.jpg"]
    paths = [f"/p/{i:05d}/ä{i}.jpg" for i in range(2_000)] + odd + ["/last.jpg"]
    for chunk, step in ((1, 1), (7, 5), (1000, 100), (1 << 20, 1 << 20)):
        monkeypatch.setattr(snapshots, "CHUNK", chunk)
        monkeypatch.setattr(snapshots, "DECODE_BYTES", step)
        encoded = snapshots._encode_paths(paths)
        assert encoded.tobytes() == "\0".join(paths).encode("utf-8", "surrogatepass")
        assert snapshots._decode_paths(encoded) == paths
    monkeypatch.setattr(collection, "CHUNK", 3)
    snap = snapshots.Snapshot(paths, np.zeros((len(paths), 2), np.int64), np.zeros((len(paths), 1), np.float32), "t", True)
    from clipscape.models.scan import ImageFile

    files = [ImageFile(p, 0, 0) for p in reversed(paths)]   # another order: found by the path index
    assert snapshots.match(snap, files).rows.tolist() == list(range(len(paths)))[::-1]
