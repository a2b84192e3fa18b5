"""models/collection.py: Collection on its own, so readers of a collection skip the encode job."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from clipscape.models.collection import Collection


def test_search_imports_collection_without_the_indexer():
    code = ("import sys, clipscape.models.search, clipscape.models.zeroshot\n"
            "print(sorted(m for m in sys.modules if m in ('clipscape.models.indexer', 'clipscape.models.images',"
            " 'clipscape.models.scan', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_indexer_still_exports_the_same_class():
    from clipscape.models.indexer import Collection as Reexported

    assert Reexported is Collection


def test_index_of_takes_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Collection([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], np.zeros((2, 3), np.float32))
    assert len(c) == 2 and c.index_of("b.jpg") == 1
    with pytest.raises(ValueError, match="not among"):
        c.index_of("c.jpg")


def test_a_path_table_answers_as_a_dict_and_spreads_its_keys():
    """PathTable (a dict of many keys as SHARDS dicts, so that no growth re-inserts them all)."""
    from clipscape.models.collection import SHARDS, PathTable

    keys = [f"/photos/{i // 1000:04d}/img_{i:07d}.jpg".encode() for i in range(20_000)]
    plain = {k: i for i, k in enumerate(keys)}
    table = PathTable(plain.items())
    assert len(table) == len(plain) and dict(table.items()) == plain and sorted(table) == sorted(plain)
    assert table.get(keys[7]) == 7 and table.get(b"/elsewhere", -1) == -1
    assert keys[9] in table and b"/elsewhere" not in table
    assert table.pop(keys[9]) == 9 and keys[9] not in table and table.pop(keys[9], None) is None
    table.update([(keys[9], 99)])
    assert table.get(keys[9]) == 99 and len(table) == len(plain)
    table.clear()
    assert len(table) == 0 and keys[0] not in table
    assert max(len(shard) for shard in table._shards) < 2 * len(keys) / SHARDS


def test_bulk_helpers_answer_as_the_one_call_they_replace(monkeypatch):
    """path_rows, same_paths and drop work CHUNK items a step; the result is the plain one's."""
    from clipscape.models import collection

    monkeypatch.setattr(collection, "CHUNK", 4)
    paths = [f"/p/{i}.jpg" for i in range(11)]
    assert dict(collection.path_rows(paths).items()) == {p: i for i, p in enumerate(paths)}
    assert collection.same_paths(paths, list(paths)) and collection.same_paths([], [])
    assert not collection.same_paths(paths, paths[:-1])
    assert not collection.same_paths(paths, paths[:9] + ["/other.jpg", paths[10]])
    items = list(range(11))
    collection.drop(items)
    assert items == []
    rows = collection.all_rows(5)
    assert rows.tolist() == [0, 1, 2, 3, 4] and not rows.flags.writeable and collection.all_rows(5) is rows
    old = Collection(paths, np.zeros((11, 1), np.float32))
    new = Collection(paths[3:] + ["/new.jpg"], np.zeros((9, 1), np.float32))
    assert collection.row_map(old, new).tolist() == [-1, -1, -1] + list(range(8))
