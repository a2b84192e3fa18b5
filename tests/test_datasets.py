"""Embeddings made elsewhere: a Clipscape dataset, an Embedding Atlas-style table and clip-retrieval's
npy + metadata output each open as a collection whose caption search and zero-shot classes rank
exactly as the locally indexed collection of the same images does."""
from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipscape.models.cli import main
from clipscape.models.datasets import DatasetError, check_model, is_dataset, open_embeddings
from clipscape.models.parquet_schema import ModelRecord, vectors_to_arrow
from clipscape.models.search import search
from clipscape.models.zeroshot import zero_shot
from conftest import index_folder

CLASSES = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def local(shapes_folder, demo_encoder, tmp_path_factory):
    folder, _ = shapes_folder
    collection, _ = index_folder(str(folder), demo_encoder, tmp_path_factory.mktemp("cache"))
    return collection


def write_ours(root, collection, record):
    """What the Ray encoder writes: embeddings/ shards with the model in the metadata, skipped/."""
    (root / "embeddings").mkdir(parents=True)
    half = len(collection) // 2
    for i, rows in enumerate((slice(0, half), slice(half, None))):
        paths = collection.paths[rows]
        table = pa.table({"path": paths, "size": pa.array([os.path.getsize(p) for p in paths], pa.int64()),
                          "mtime_ns": pa.array([os.stat(p).st_mtime_ns for p in paths], pa.int64()),
                          "embedding": vectors_to_arrow(collection.embeddings[rows])})
        pq.write_table(table.replace_schema_metadata(record.metadata()), root / "embeddings" / f"part-{i}.parquet")
    (root / "skipped").mkdir()
    pq.write_table(pa.table({"path": ["/gone/broken.jpg"], "size": pa.array([3], pa.int64()),
                             "mtime_ns": pa.array([1], pa.int64()), "reason": ["empty file (0 bytes)"]}),
                   root / "skipped" / "part-0.parquet")
    return root


def write_atlas(path, collection, folder):
    """An Embedding Atlas-style table: list<double> vectors, relative paths, other columns, shuffled."""
    order = np.random.default_rng(3).permutation(len(collection))
    table = pa.table({
        "id": pa.array(order, pa.int64()),
        "filepath": [os.path.relpath(collection.paths[i], path.parent) for i in order],
        "caption": [f"image {i}" for i in order],
        "vector": pa.array([(collection.embeddings[i].astype(np.float64) * 3.0).tolist() for i in order],
                           pa.list_(pa.float64())),   # not unit length: the reader normalises
    })
    pq.write_table(table, path)
    return path


def write_clip_retrieval(root, collection, dtype=np.float32):
    """clip-retrieval's output: img_emb/img_emb_{i}.npy beside metadata/metadata_{i}.parquet."""
    (root / "img_emb").mkdir(parents=True)
    (root / "metadata").mkdir()
    cuts = [0, 10, len(collection)]
    for i in range(2):
        rows = slice(cuts[i], cuts[i + 1])
        np.save(root / "img_emb" / f"img_emb_{i}.npy", collection.embeddings[rows].astype(dtype))
        pq.write_table(pa.table({"image_path": collection.paths[rows], "caption": ["x"] * (cuts[i + 1] - cuts[i])}),
                       root / "metadata" / f"metadata_{i}.parquet")
    return root


@pytest.fixture
def kinds(local, demo_encoder, shapes_folder, tmp_path):
    folder, _ = shapes_folder
    return {
        "clipscape": write_ours(tmp_path / "ours", local, ModelRecord.of_encoder(demo_encoder)),
        "table": write_atlas(folder.parent / f"atlas-{tmp_path.name}.parquet", local, folder),
        "clip-retrieval": write_clip_retrieval(tmp_path / "cr", local),
    }


@pytest.mark.parametrize("kind", ["clipscape", "table", "clip-retrieval"])
def test_each_kind_searches_and_classifies_as_the_local_collection(kind, kinds, local, demo_encoder):
    assert is_dataset(kinds[kind])
    opened = open_embeddings(kinds[kind])
    assert opened.kind == kind
    assert opened.collection.paths == local.paths
    np.testing.assert_allclose(opened.collection.embeddings, local.embeddings, atol=1e-6)
    assert check_model(opened, demo_encoder) is None

    caption = "a photo of a red circle"
    assert ([h.path for h in search(opened.collection, demo_encoder, caption, 10)]
            == [h.path for h in search(local, demo_encoder, caption, 10)])
    ours = zero_shot(opened.collection.embeddings, demo_encoder, CLASSES)
    theirs = zero_shot(local.embeddings, demo_encoder, CLASSES)
    assert ours.labels == theirs.labels
    if kind == "clipscape":
        assert opened.model == ModelRecord.of_encoder(demo_encoder)
        assert [(s.path, s.reason) for s in opened.skipped] == [("/gone/broken.jpg", "empty file (0 bytes)")]
    else:
        assert opened.model is None


@pytest.mark.parametrize("kind", ["clipscape", "table", "clip-retrieval"])
def test_cli_search_and_classify_take_embeddings(kind, kinds, shapes_folder, capsys):
    folder, _ = shapes_folder

    def run(*argv):
        assert main([*argv, "--json", "--quiet", "--model", "demo"]) == 0
        return json.loads(capsys.readouterr().out)

    from_folder = run("search", str(folder), "a red circle", "--top", "5")
    from_dataset = run("search", "--embeddings", str(kinds[kind]), "a red circle", "--top", "5")
    assert from_dataset["results"] == from_folder["results"]
    assert from_dataset["embeddings"] == str(kinds[kind])
    classes = run("classify", "--embeddings", str(kinds[kind]), "--classes", "red,green,blue")["results"]
    expected = run("classify", str(folder), "--classes", "red,green,blue")["results"]
    assert [(r["path"], r["class"]) for r in classes] == [(r["path"], r["class"]) for r in expected]
    assert [r["probability"] for r in classes] == pytest.approx([r["probability"] for r in expected], abs=1e-5)
    similar = run("similar", "--embeddings", str(kinds[kind]), from_folder["results"][0]["path"], "--top", "3")
    assert similar["results"][0]["path"] != from_folder["results"][0]["path"]


def test_the_recorded_model_is_used_and_another_is_refused_by_name(kinds, local, tmp_path, capsys):
    assert main(["search", "--embeddings", str(kinds["clipscape"]), "a red circle", "--quiet"]) == 0  # demo, from the record
    assert "red" in capsys.readouterr().out.splitlines()[0]

    other = ModelRecord({"source": "hub", "name": "ViT-B-32", "tag": "openai"}, "k" * 24, 64)
    write_ours(tmp_path / "other", local, other)
    assert main(["search", "--embeddings", str(tmp_path / "other"), "a cat", "--model", "demo", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "made with ViT-B-32/openai (--model ViT-B-32 --pretrained openai)" in err


def test_unrecorded_embeddings_of_another_dimension_are_refused(tmp_path, capsys):
    table = pa.table({"path": ["/a.jpg", "/b.jpg"], "embedding": pa.array([[1.0] * 32, [0.5] * 32])})
    pq.write_table(table, tmp_path / "t.parquet")
    assert main(["search", "--embeddings", str(tmp_path / "t.parquet"), "a cat", "--model", "demo", "--quiet"]) == 1
    assert "have 32 dimensions but the model gives 64" in capsys.readouterr().err


def test_unusable_rows_are_skipped_and_urls_kept(tmp_path):
    table = pa.table({"url": ["https://example.org/a.jpg", "b/c.png", "https://example.org/n.jpg", None],
                      "emb": pa.array([[1.0, 0.0], [0.0, 2.0], [float("nan"), 1.0], [0.0, 0.0]])})
    pq.write_table(table, tmp_path / "t.parquet")
    opened = open_embeddings(tmp_path / "t.parquet")
    assert opened.collection.paths == [str(tmp_path / "b" / "c.png"), "https://example.org/a.jpg"]
    np.testing.assert_allclose(opened.collection.embeddings, [[0, 1], [1, 0]])
    assert sorted(s.path for s in opened.skipped) == [f"{tmp_path / 't.parquet'}#row3", "https://example.org/n.jpg"]


def test_clip_retrieval_float16_and_a_missing_metadata_shard(local, tmp_path):
    root = write_clip_retrieval(tmp_path / "cr", local, dtype=np.float16)
    opened = open_embeddings(root)
    np.testing.assert_allclose(opened.collection.embeddings, local.embeddings, atol=2e-3)
    (root / "metadata" / "metadata_1.parquet").unlink()
    with pytest.raises(DatasetError, match="img_emb_1.npy has no metadata/metadata_1.parquet"):
        open_embeddings(root)


def test_tables_that_cannot_be_read_say_why(tmp_path):
    pq.write_table(pa.table({"a": [1.0], "b": ["x"]}), tmp_path / "none.parquet")
    with pytest.raises(DatasetError, match="no vector column"):
        open_embeddings(tmp_path / "none.parquet")
    pq.write_table(pa.table({"u": pa.array([[1.0]]), "v": pa.array([[2.0]])}), tmp_path / "two.parquet")
    with pytest.raises(DatasetError, match="several vector columns .*--vector"):
        open_embeddings(tmp_path / "two.parquet")
    assert open_embeddings(tmp_path / "two.parquet", vector="v").collection.embeddings.tolist() == [[1.0]]
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="cannot read"):
        open_embeddings(tmp_path / "junk.parquet")
    with pytest.raises(DatasetError, match="no such file"):
        open_embeddings(tmp_path / "absent")
    assert not is_dataset(tmp_path.parent)   # a folder of other things is a folder, not a dataset


@pytest.mark.parametrize("argv, message", [
    (["search", "a cat"], "give a FOLDER or --embeddings"),
    (["search", "F", "--embeddings", "D", "a cat"], "unrecognized arguments: a cat"),
    (["similar", "F", "I", "--embeddings", "D"], "give a FOLDER or --embeddings"),
    (["classify", "F", "--classes", "a", "--vector", "v"], "--vector needs --embeddings"),
])
def test_source_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
