"""clipscape encode --engine ray: a local Ray (2 CPUs) gives the local encoder's embeddings, lists a
broken file in `skipped` with its reason, and a second run encodes nothing."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from clipscape.models.cli import main

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from clipscape.resources import DEMO_IMAGES

    folder = tmp_path_factory.mktemp("photos")
    for i, image in enumerate(sorted(DEMO_IMAGES.glob("*.jpg"))[:40]):
        target = folder / ("sub" if i % 2 else ".") / image.name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(image, target)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


def run_cli(capsys, *argv):
    code = main([*argv, "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_ray_embeddings_equal_the_local_encoder_and_a_rerun_encodes_nothing(photos, tmp_path, capsys, demo_encoder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clipscape.models.datasets import open_embeddings
    from clipscape.models.indexer import index, run
    from clipscape.models.store import EmbeddingStore

    out = tmp_path / "dataset"
    first = run_cli(capsys, "encode", str(photos), "--engine", "ray", "--out", str(out), "--model", "demo",
                    "--batch-size", "8")
    assert first["embedded"] == 40 and first["already"] == 0
    assert first["skipped"] == [{"path": str(photos / "broken.jpg"),
                                 "reason": "not an image Pillow can read (cannot identify image file)"}]

    skipped = pq.read_table(out / "skipped").to_pylist()
    assert [(r["path"], r["reason"]) for r in skipped] == [
        (str(photos / "broken.jpg"), "not an image Pillow can read (cannot identify image file)")]
    shard = next((out / "embeddings").glob("*.parquet"))
    vector = pq.read_schema(shard).field("embedding").type
    assert pa.types.is_fixed_size_list(vector) and vector.list_size == 64 and vector.value_type == pa.float32()

    dataset = open_embeddings(out)
    with EmbeddingStore(tmp_path / "cache") as store:
        local = run(index(str(photos), demo_encoder, store), lambda p: None)
    assert dataset.collection.paths == local.paths
    cosine = np.sum(dataset.collection.embeddings * local.embeddings, axis=1)
    assert cosine.min() >= 0.999
    assert dataset.model.key == demo_encoder.key

    shards = sorted((out / "embeddings").glob("*.parquet")) + sorted((out / "skipped").glob("*.parquet"))
    second = run_cli(capsys, "encode", str(photos), "--engine", "ray", "--out", str(out), "--model", "demo")
    assert second["embedded"] == 0 and second["already"] == 41 and second["skipped"] == []
    assert sorted((out / "embeddings").glob("*.parquet")) + sorted((out / "skipped").glob("*.parquet")) == shards
    assert len(open_embeddings(out).collection) == 40

    # a changed file is encoded again, and the dataset then holds only its new version
    changed = photos / "sub" / sorted(p.name for p in (photos / "sub").iterdir())[0]
    shutil.copy(sorted(photos.glob("*.jpg"))[1], changed)
    third = run_cli(capsys, "encode", str(photos), "--engine", "ray", "--out", str(out), "--model", "demo")
    assert third["embedded"] == 1
    reopened = open_embeddings(out).collection
    row = reopened.index_of(str(changed))
    assert len(reopened) == 40
    assert not np.allclose(reopened.embeddings[row], dataset.collection.embeddings[row], atol=1e-3)
    np.testing.assert_allclose(reopened.embeddings[row],
                               reopened.embeddings[reopened.index_of(str(sorted(photos.glob("*.jpg"))[1]))],
                               atol=1e-3)


def test_a_dataset_of_another_model_is_refused(photos, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clipscape.models.parquet_schema import ModelRecord, vectors_to_arrow

    out = tmp_path / "other"
    other = ModelRecord({"source": "hub", "name": "ViT-B-32", "tag": "openai"}, "k" * 24, 512)
    (out / "embeddings").mkdir(parents=True)
    table = pa.table({"path": ["/x.jpg"], "size": [1], "mtime_ns": [1],
                      "embedding": vectors_to_arrow(np.ones((1, 512), np.float32))})
    pq.write_table(table.replace_schema_metadata(other.metadata()), out / "embeddings" / "part-0.parquet")
    code = main(["encode", str(photos), "--engine", "ray", "--out", str(out), "--model", "demo", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "holds embeddings of ViT-B-32/openai" in err and "another --out" in err


@pytest.mark.parametrize("argv, message", [
    (["encode", "F", "--engine", "ray"], "--engine ray needs --out"),
    (["encode", "F", "--out", "D"], "--out only go with --engine ray"),
    (["encode", "F", "--workers", "2"], "--workers only go with --engine ray"),
    (["encode", "F", "--engine", "ray", "--out", "D", "--gpus-per-worker", "-1"], "must be at least 0"),
])
def test_ray_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_a_remote_file_system_is_listed_and_read_as_bytes_into_the_local_pixels(photos, demo_encoder):
    """SOURCE on a file system other than the local one (s3://, gs://…; here a pyarrow SubTree over
    a folder, which is not a LocalFileSystem): files are listed by pyarrow, read as bytes and decode
    to exactly the pixels the local decoder makes; unreadable files get their reason."""
    import pyarrow.fs as pafs

    from clipscape.models.pipeline import decode
    from clipscape.models.ray_encode import _decode_batch, _list

    fs = pafs.SubTreeFileSystem(str(photos), pafs.LocalFileSystem())
    files, skipped = _list("sub://photos", fs, "", include_hidden=False)
    assert len(files) == 41 and not skipped
    assert all(f.path.startswith("sub://") for f in files)
    assert files[0].size == (photos / files[0].path[len("sub://"):]).stat().st_size
    paths = [f.path for f in files[:3]] + ["sub://broken.jpg", "sub://missing.jpg"]
    batch = {"path": np.array(paths, dtype=object), "size": np.zeros(5, np.int64), "mtime_ns": np.zeros(5, np.int64)}
    out = _decode_batch(batch, demo_encoder.preparer, fs, threads=2)
    for i in range(3):
        local = decode(str(photos / paths[i][len("sub://"):]), demo_encoder).numpy()
        np.testing.assert_array_equal(out["pixels"][i], local)
    assert list(out["reason"][:3]) == ["", "", ""]
    assert out["reason"][3] == "not an image Pillow can read (cannot identify image file)"
    assert out["reason"][4].startswith("cannot read file:") and "no such file" in out["reason"][4]
