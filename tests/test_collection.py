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
