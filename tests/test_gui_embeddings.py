"""The window opens embeddings made elsewhere: a dropped Parquet dataset folder shows its map and
gallery without encoding, caption search ranks as the folder's own collection does, a dataset of
another model says which model it needs, and rows whose images are elsewhere are dots, not errors."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clipscape.models.parquet_schema import ModelRecord, vectors_to_arrow
from gui_support import TIMEOUT, drop, photo_folder, wait_collection


def write_dataset(root, paths, embeddings, record):
    (root / "embeddings").mkdir(parents=True)
    table = pa.table({"path": paths, "size": pa.array([1] * len(paths), pa.int64()),
                      "mtime_ns": pa.array([1] * len(paths), pa.int64()), "embedding": vectors_to_arrow(embeddings)})
    pq.write_table(table.replace_schema_metadata(record.metadata()), root / "embeddings" / "part-0.parquet")
    (root / "skipped").mkdir()
    pq.write_table(pa.table({"path": ["/elsewhere/broken.jpg"], "size": pa.array([1], pa.int64()),
                             "mtime_ns": pa.array([1], pa.int64()), "reason": ["empty file (0 bytes)"]}),
                   root / "skipped" / "part-0.parquet")
    return root


def test_a_dropped_dataset_opens_without_encoding_and_searches_like_the_folder(qtbot, window, tmp_path):
    s = window.session
    folder = photo_folder(tmp_path, n=16)
    drop(window, folder)
    wait_collection(qtbot, window)
    local = s.collection
    s.set_caption("a red circle")
    qtbot.waitUntil(lambda: s.rank is not None, timeout=TIMEOUT)
    local_rank = [local.paths[i] for i in s.rank[:5]]

    remote = [f"https://images.example.org/{i}.jpg" for i in range(3)]
    paths = [*local.paths, *remote]
    vectors = np.concatenate([local.embeddings, local.embeddings[:3]])
    dataset = write_dataset(tmp_path / "dataset", paths, vectors, ModelRecord.of_encoder(s.encoder))
    encoded = []
    s.encoder.encode_images = lambda batch: encoded.append(batch)   # nothing may be encoded
    drop(window, dataset)
    qtbot.waitUntil(lambda: s.dataset is not None and s.collection is not None and not s.jobs.is_running("index"),
                    timeout=TIMEOUT)
    assert s.roots == [] and s.dataset_source == str(dataset)
    assert len(s.collection) == len(paths) and s.collection.paths == sorted(paths)
    assert [k.path for k in s.skipped] == ["/elsewhere/broken.jpg"]
    assert s.dataset.label.startswith(f"{len(paths)} images from {dataset} (clipscape, ")
    qtbot.waitUntil(lambda: s.coords is not None and len(s.coords) == len(paths), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: s.rank is not None, timeout=TIMEOUT)   # the caption query carries over
    ranked = [s.collection.paths[i] for i in s.rank[:8]]
    assert [p for p in ranked if p in local_rank] == local_rank  # the remote copies only tie in between
    assert not encoded

    # an image that is not on this machine: a thumbnail placeholder with the reason, no message box
    gallery = window.gallery
    row = s.collection.paths.index(remote[0])
    gallery._thumbnails.get(remote[0])
    qtbot.waitUntil(lambda: gallery._thumbnails.error(remote[0]) is not None, timeout=TIMEOUT)
    assert "not on this machine" in gallery._thumbnails.error(remote[0])
    assert window.dialog is None
    s.set_preview(row)
    assert not window.preview._reveal_button.isEnabled()   # no file manager for a URL
    s.set_preview(s.collection.paths.index(local.paths[0]))
    assert window.preview._reveal_button.isEnabled()


def test_a_dataset_of_another_model_says_which_it_needs(qtbot, window, tmp_path):
    s = window.session
    other = ModelRecord({"source": "hub", "name": "ViT-B-32", "tag": "openai"}, "k" * 24, 64)
    vectors = np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32)
    dataset = write_dataset(tmp_path / "ds", [f"/x/{i}.jpg" for i in range(5)], vectors, other)
    assert window.open_paths([str(dataset)])
    qtbot.waitUntil(lambda: s.dataset is not None and not s.jobs.is_running("index"), timeout=TIMEOUT)
    assert s.text_block is not None and "ViT-B-32/openai" in s.text_block
    s.set_caption("a cat")
    assert "ViT-B-32/openai" in s.status and "caption search" in s.status
    assert not s.jobs.is_running("query") and s.scores is None
    s.add_classes("cat, dog")
    assert not s.jobs.is_running("classes") and s.classification is None
    qtbot.waitUntil(lambda: s.coords is not None, timeout=TIMEOUT)   # the map needs no model


def test_open_embeddings_menu_takes_a_parquet_file(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    s = window.session
    vectors = np.random.default_rng(1).normal(size=(4, 64)).astype(np.float32)
    table = pa.table({"url": [f"https://e.org/{i}.jpg" for i in range(4)],
                      "vec": pa.array(vectors.tolist(), pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "atlas.parquet")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "atlas.parquet"), ""))
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Open &Embeddings…")
    action.trigger()
    qtbot.waitUntil(lambda: s.dataset is not None and not s.jobs.is_running("index"), timeout=TIMEOUT)
    assert s.dataset.kind == "table" and len(s.collection) == 4
    assert s.text_block is None   # no model recorded, same dimension: the loaded model is assumed
    assert os.path.basename(s.dataset_source) == "atlas.parquet"
    assert s.settings.recent()[0] == [str(tmp_path / "atlas.parquet")]
