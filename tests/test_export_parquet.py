"""Tests for models/export_parquet.py (the Parquet export), `clipscape export --parquet`, and the
window's export to a .parquet file. Fast and offline: the demo model and the demo photos."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clipscape.models import export_parquet, neighbors, parquet_schema
from clipscape.models.cli import main
from clipscape.models.export_parquet import model_record, write_parquet
from clipscape.models.neighbors import nearest_neighbors
from clipscape.models.parquet_schema import ModelRecord
from clipscape.models.shapes_world import COLOURS
from clipscape.resources import DEMO_IMAGES

DIM = 8
RECORD = ModelRecord({"source": "hub", "name": "ViT-B-32", "tag": "laion2b_s34b_b79k"}, "abc123", DIM)


def embeddings(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def vectors(table: pa.Table, column: str = "embedding") -> np.ndarray:
    """The fixed-size list column as an N × D array, read without any conversion."""
    array = table.column(column).combine_chunks()
    return array.values.to_numpy(zero_copy_only=False).reshape(len(array), array.type.list_size)


def brute_force_neighbors(emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top-k cosine neighbours the plain way: the full N × N matrix, a stable full sort."""
    unit = emb.astype(np.float64) / np.linalg.norm(emb.astype(np.float64), axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids, 1.0 - np.take_along_axis(sims, ids, axis=1)


# --- columns and values -----------------------------------------------------------------------

def test_values_round_trip_exactly_with_the_model_record(tmp_path):
    n = 40
    rng = np.random.default_rng(1)
    emb = np.concatenate([embeddings(n, 6) * np.float32(1e-3), embeddings(n, 2, seed=2) * np.float32(1e30)], axis=1)
    coords = (rng.standard_normal((n, 2)) * 1e4).astype(np.float32)
    probs = rng.random(n).astype(np.float32)
    scores = rng.uniform(-1, 1, n).astype(np.float32)
    paths = [f"/photos/{i:03d}, \"quoted\"\nname=.jpg" for i in range(n)]
    labels = [["cat", "dog", "=SUM(A1)"][i % 3] for i in range(n)]
    out = tmp_path / "out.parquet"
    write_parquet(out, paths, emb, coords=coords, classes=labels, probabilities=probs, scores=scores, model=RECORD)

    table = pq.read_table(out)
    assert table.column_names == ["path", "x", "y", "class", "probability", "score", "embedding"]
    schema = table.schema
    assert schema.field("embedding").type == parquet_schema.vector_type(DIM) == pa.list_(pa.float32(), DIM)
    assert [schema.field(c).type for c in ("path", "x", "y", "class", "probability", "score")] == [
        pa.string(), pa.float32(), pa.float32(), pa.string(), pa.float32(), pa.float32()]
    assert table.column("path").to_pylist() == paths          # text kept as it is: no CSV quoting or neutralising
    assert table.column("class").to_pylist() == labels
    got = vectors(table)
    assert got.dtype == np.float32 and got.view(np.uint32).tolist() == emb.view(np.uint32).tolist()  # bit for bit
    np.testing.assert_array_equal(table.column("x").to_numpy(), coords[:, 0])
    np.testing.assert_array_equal(table.column("y").to_numpy(), coords[:, 1])
    np.testing.assert_array_equal(table.column("probability").to_numpy(), probs)
    np.testing.assert_array_equal(table.column("score").to_numpy(), scores)
    assert ModelRecord.from_metadata(schema.metadata) == RECORD
    assert json.loads(schema.metadata[b"clipscape"])["model_key"] == "abc123"


@pytest.mark.parametrize("with_coords", [False, True])
@pytest.mark.parametrize("with_classes", [False, True])
@pytest.mark.parametrize("with_scores", [False, True])
def test_optional_groups_are_left_out(tmp_path, with_coords, with_classes, with_scores):
    n = 3
    out = tmp_path / "out.parquet"
    write_parquet(out, [f"/p/{i}.jpg" for i in range(n)], embeddings(n),
                  coords=np.zeros((n, 2)) if with_coords else None,
                  classes=["cat"] * n if with_classes else None,
                  probabilities=np.full(n, 0.5) if with_classes else None,
                  scores=np.ones(n) if with_scores else None)
    expected = (["path"] + (["x", "y"] if with_coords else []) + (["class", "probability"] if with_classes else [])
                + (["score"] if with_scores else []) + ["embedding"])
    table = pq.read_table(out)
    assert table.column_names == expected
    assert table.schema.metadata is None or b"clipscape" not in table.schema.metadata  # no model given, no record
    assert table.column("path").to_pylist() == [f"/p/{i}.jpg" for i in range(n)]


def test_classes_without_probabilities_give_null_probabilities(tmp_path):
    out = tmp_path / "out.parquet"
    write_parquet(out, ["/a", "/b"], embeddings(2), classes=["x", "y"])
    table = pq.read_table(out)
    assert table.column("class").to_pylist() == ["x", "y"]
    assert table.column("probability").to_pylist() == [None, None]


def test_a_path_that_is_not_utf8_is_written_with_escapes(tmp_path):
    name = os.fsdecode(b"/photos/caf\xe9.jpg")           # Latin-1 bytes, as os.fsdecode gives them
    out = tmp_path / "out.parquet"
    write_parquet(out, ["/photos/ok.jpg", name], embeddings(2), classes=["fine", "café"])
    table = pq.read_table(out)
    assert table.column("path").to_pylist() == ["/photos/ok.jpg", "/photos/caf\\xe9.jpg"]
    assert table.column("class").to_pylist() == ["fine", "café"]


def test_row_groups_of_row_group_rows_and_progress_per_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet_schema, "ROW_GROUP_ROWS", 30)
    monkeypatch.setattr(export_parquet, "CHUNK_ROWS", 7)
    n = 100
    seen = []
    out = tmp_path / "out.parquet"
    write_parquet(out, [str(i) for i in range(n)], embeddings(n), progress=lambda d, t: seen.append((d, t)))
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [30, 30, 30, 10]
    assert seen == [(min(d, n), n) for d in range(7, n + 7, 7)]
    assert pq.read_table(out).column("path").to_pylist() == [str(i) for i in range(n)]


def test_empty_collection(tmp_path):
    seen = []
    out = tmp_path / "out.parquet"
    write_parquet(out, [], np.zeros((0, DIM), np.float32), model=RECORD, thumbnails=True, neighbors=3,
                  progress=lambda d, t: seen.append((d, t)))
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.column_names == ["path", "embedding", "image", "neighbors"]
    assert seen == [(0, 0)]


def test_bad_arguments_are_rejected_before_writing(tmp_path):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"old")
    with pytest.raises(ValueError, match="coords"):
        write_parquet(out, ["/a", "/b"], embeddings(2), coords=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dimensions"):
        write_parquet(out, ["/a", "/b"], embeddings(2), model=ModelRecord({}, "k", DIM + 1))
    with pytest.raises(ValueError, match="neighbors"):
        write_parquet(out, ["/a", "/b"], embeddings(2), neighbors=-1)
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]


# --- atomic ---------------------------------------------------------------------------------------

def test_cancel_leaves_the_old_file_byte_identical_and_no_temp_file(tmp_path, monkeypatch):
    monkeypatch.setattr(export_parquet, "CHUNK_ROWS", 10)
    out = tmp_path / "out.parquet"
    write_parquet(out, ["/old"], embeddings(1), model=RECORD)
    before = out.read_bytes()
    calls = []

    def cancel(done, total):
        calls.append(done)
        if done >= 20:
            raise KeyboardInterrupt  # what a Cancel (or Ctrl+C) raises from the progress callback

    n = 50
    with pytest.raises(KeyboardInterrupt):
        write_parquet(out, [f"/new/{i}" for i in range(n)], embeddings(n), neighbors=3, progress=cancel)
    assert calls == [10, 20]
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]
    assert pq.read_table(out).column("path").to_pylist() == ["/old"]


def test_a_finished_export_replaces_the_file_with_its_permissions(tmp_path):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"not parquet")
    os.chmod(out, 0o640)
    write_parquet(out, ["/a"], embeddings(1))
    assert pq.read_table(out).column("path").to_pylist() == ["/a"]
    assert out.stat().st_mode & 0o777 == 0o640


# --- neighbours ---------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 5, 56, 80])
def test_neighbors_equal_the_brute_force_answer(tmp_path, monkeypatch, k):
    monkeypatch.setattr(export_parquet, "CHUNK_ROWS", 13)            # chunks and blocks that do not
    monkeypatch.setattr(neighbors, "NEIGHBOR_BLOCK", 57 * 5)         # line up with each other
    n = 57
    emb = embeddings(n, 16, seed=3) * np.random.default_rng(4).uniform(0.5, 3, (n, 1)).astype(np.float32)
    out = tmp_path / "out.parquet"
    write_parquet(out, [str(i) for i in range(n)], emb, neighbors=k)
    table = pq.read_table(out)
    assert table.schema.field("neighbors").type == pa.struct(
        [("ids", pa.list_(pa.int64())), ("distances", pa.list_(pa.float32()))])
    rows = table.column("neighbors").to_pylist()
    expected_ids, expected_distances = brute_force_neighbors(emb, min(k, n - 1))
    assert [r["ids"] for r in rows] == expected_ids.tolist()
    assert all(i not in r["ids"] for i, r in enumerate(rows))
    np.testing.assert_allclose(np.array([r["distances"] for r in rows]), expected_distances, atol=2e-6)


def test_nearest_neighbors_never_builds_an_n_by_n_matrix(monkeypatch):
    n = 2000
    shapes = []
    best_k = neighbors._kernel()

    def watched(sims, scale, k):
        shapes.append(sims.shape)
        return best_k(sims, scale, k)

    monkeypatch.setattr(neighbors, "_kernel", lambda: watched)
    monkeypatch.setattr(neighbors, "NEIGHBOR_BLOCK", 100 * n)        # 100 rows of similarities at a time
    emb = embeddings(n, 4)
    ids, distances = nearest_neighbors(emb, 3)
    assert shapes == [(100, n)] * 20
    assert ids.shape == (n, 3) and distances.dtype == np.float32
    assert not np.any(ids == np.arange(n)[:, None])                  # never itself
    expected, _ = brute_force_neighbors(emb, 3)
    assert ids.tolist() == expected.tolist()


def test_equal_neighbours_go_to_the_lower_id_and_the_search_reports_and_cancels(monkeypatch):
    emb = embeddings(300, 8, seed=5)
    emb[[40, 7, 250, 120]] = emb[3] * np.array([[1.0], [2.0], [0.5], [1.0]], np.float32)  # four of row 3's direction
    ids, distances = nearest_neighbors(emb, 3)
    assert ids[3].tolist() == [7, 40, 120] and np.allclose(distances[3], 0, atol=1e-6)
    assert ids[250].tolist() == [3, 7, 40]
    emb[1] = 0.0                                   # a zero row: cosine 0 with all, never its own neighbour
    ids, distances = nearest_neighbors(emb, 3)
    assert 1 not in ids[1].tolist() and np.allclose(distances[1], 1.0) and 1 not in ids[0].tolist()
    monkeypatch.setattr(neighbors, "NEIGHBOR_BLOCK", 100 * 300)
    reports = []

    def progress(done, total):
        reports.append((done, total))
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nearest_neighbors(emb, 3, progress=progress)
    assert reports == [(0, 300), (100, 300)]


# --- thumbnails ---------------------------------------------------------------------------------

def test_thumbnails_are_small_jpegs_and_a_broken_file_gets_null(tmp_path):
    wide, tall, small = tmp_path / "wide.jpg", tmp_path / "tall.png", tmp_path / "small.jpg"
    Image.new("RGB", (1200, 600), (200, 30, 30)).save(wide)
    Image.new("RGBA", (300, 900), (30, 200, 30, 128)).save(tall)
    Image.new("RGB", (100, 50), (30, 30, 200)).save(small)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a JPEG at all\n")
    paths = [str(wide), str(broken), str(tall), str(tmp_path / "gone.jpg"), str(small)]
    out = tmp_path / "out.parquet"
    write_parquet(out, paths, embeddings(len(paths)), thumbnails=True)

    table = pq.read_table(out)
    assert table.column_names == ["path", "embedding", "image"]
    assert table.schema.field("image").type == pa.binary()
    images = table.column("image").to_pylist()
    assert images[1] is None and images[3] is None
    sizes = {}
    for i in (0, 2, 4):
        assert images[i][:3] == b"\xff\xd8\xff"                   # JPEG
        with Image.open(io.BytesIO(images[i])) as decoded:
            assert decoded.format == "JPEG" and decoded.mode == "RGB"
            sizes[i] = decoded.size
            centre = decoded.convert("RGB").getpixel((decoded.width // 2, decoded.height // 2))
        if i == 0:
            assert max(abs(a - b) for a, b in zip(centre, (200, 30, 30))) < 12
    assert sizes == {0: (256, 128), 2: (85, 256), 4: (100, 50)}   # longest side 256, never enlarged


def test_thumbnails_are_made_on_several_threads(tmp_path, monkeypatch):
    import threading

    names = set()

    def fake(path, side=export_parquet.THUMBNAIL_SIDE):
        names.add(threading.current_thread().name)
        threading.Event().wait(0.02)
        return path.encode()

    monkeypatch.setattr(export_parquet, "thumbnail", fake)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    out = tmp_path / "out.parquet"
    paths = [f"/p/{i}" for i in range(40)]
    write_parquet(out, paths, embeddings(40), thumbnails=True)
    assert pq.read_table(out).column("image").to_pylist() == [p.encode() for p in paths]  # in row order
    assert len(names) > 1 and all(n.startswith("thumbnail") for n in names)


# --- the model record without building the model ----------------------------------------------

def test_model_record_of_a_lazy_encoder_builds_no_model():
    from clipscape.models.lazy_encoder import LazyEncoder

    def build():
        raise AssertionError("the model was built")

    lazy = LazyEncoder("key1", {"source": "hub", "name": "ViT-B-32", "tag": "t"}, 512, build=build)
    record = model_record(lazy, 512)
    assert record == ModelRecord({"source": "hub", "name": "ViT-B-32", "tag": "t"}, "key1", 512)
    assert not lazy.built
    # an encoder that does not carry its dim: the embeddings' is taken
    assert model_record(SimpleNamespace(identity={"a": 1}, key="k"), 64) == ModelRecord({"a": 1}, "k", 64)
    assert model_record(None, 64) is None


# --- the command line -----------------------------------------------------------------------------

def run_cli(capsys, *argv) -> tuple[int, dict | str, str]:
    capsys.readouterr()
    code = main([*map(str, argv), "--model", "demo", "--quiet", "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else out), err


def test_cli_exports_the_demo_photos_to_parquet(tmp_path, capsys, demo_encoder, monkeypatch):
    from clipscape.models import lazy_encoder

    photos = sorted(str(p) for p in DEMO_IMAGES.iterdir() if p.suffix == ".jpg")
    target = tmp_path / "demo.parquet"
    argv = ("export", DEMO_IMAGES, "--parquet", target, "--thumbnails", "--neighbors", "5",
            "--classes", ",".join(COLOURS), "--query", "a red circle", "--projection", "pca")
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0, out
    assert (out["parquet"], out["rows"], out["thumbnails"], out["neighbors"]) == (str(target), len(photos), True, 5)
    assert "csv" not in out

    table = pq.read_table(target)
    assert table.column_names == ["path", "x", "y", "class", "probability", "score", "embedding", "image",
                                  "neighbors"]
    assert sorted(table.column("path").to_pylist()) == photos
    assert ModelRecord.from_metadata(table.schema.metadata) == ModelRecord(
        dict(demo_encoder.identity), demo_encoder.key, demo_encoder.dim)
    emb = vectors(table)
    assert emb.shape == (len(photos), demo_encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    colours = [os.path.basename(p).split("_")[1] for p in table.column("path").to_pylist()]
    assert sum(c == k for c, k in zip(colours, table.column("class").to_pylist())) >= 0.9 * len(photos)
    caption = demo_encoder.encode_texts(["a red circle"])[0]
    np.testing.assert_allclose(table.column("score").to_numpy(), emb @ caption, atol=1e-4)
    assert all(i is not None and i[:3] == b"\xff\xd8\xff" for i in table.column("image").to_pylist())
    ids, _ = brute_force_neighbors(emb, 5)
    assert [r["ids"] for r in table.column("neighbors").to_pylist()] == ids.tolist()

    # again, everything cached: the record comes from the LazyEncoder, which builds no model for it
    def no_build(*args, **kwargs):
        raise AssertionError("the model was built to write the record")

    monkeypatch.setattr(lazy_encoder, "build_encoder", no_build)
    before = target.read_bytes()
    code, out, _ = run_cli(capsys, "export", DEMO_IMAGES, "--parquet", target, "--projection", "pca")
    assert code == 0, out
    table = pq.read_table(target)
    assert table.column_names == ["path", "x", "y", "embedding"] and target.read_bytes() != before
    assert ModelRecord.from_metadata(table.schema.metadata).key == demo_encoder.key


def test_cli_refuses_a_bad_parquet_target_before_encoding(tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", DEMO_IMAGES, "--parquet", tmp_path / "missing" / "out.parquet")
    assert code == 1 and "does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "cache").exists()  # nothing was encoded


@pytest.mark.parametrize("argv", [
    ["export", "F"],                                                    # neither --csv nor --parquet
    ["export", "F", "--csv", "o.csv", "--parquet", "o.parquet"],        # both
    ["export", "F", "--csv", "o.csv", "--thumbnails"],                  # Parquet-only options on a CSV
    ["export", "F", "--csv", "o.csv", "--neighbors", "3"],
    ["export", "F", "--parquet", "o.parquet", "--neighbors", "0"],
    ["export", "F", "--parquet", "o.parquet", "--neighbors", "many"],
], ids=lambda a: " ".join(a))
def test_cli_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: clipscape") and "error:" in err


# --- the window -----------------------------------------------------------------------------------

def test_window_exports_parquet_with_thumbnails_and_the_model_record(qtbot, window, tmp_path, monkeypatch):
    from gui_support import TIMEOUT, photo_folder, wait_collection

    from clipscape.app import main_window

    s = window.session
    folder = photo_folder(tmp_path, n=6)
    window.open_paths([folder])
    wait_collection(qtbot, window)
    qtbot.waitUntil(lambda: s.coords is not None, timeout=TIMEOUT)
    assert window.export_all_action.text() == "&Export…" and window.export_all_action.shortcut().toString() == "Ctrl+E"
    assert window.export_selection_action.text() == "Export &Selection…"
    assert window.export_selection_action.shortcut().toString() == "Ctrl+Shift+E"

    asked = []

    def save_dialog(parent, title, start, filters):
        asked.append(filters)
        return str(tmp_path / "atlas"), "Parquet (*.parquet)"     # typed without a suffix, Parquet chosen

    monkeypatch.setattr(main_window.QFileDialog, "getSaveFileName", save_dialog)
    with qtbot.waitSignal(s.exported, timeout=TIMEOUT) as signal:
        window.export_all_action.trigger()
    target = tmp_path / "atlas.parquet"
    assert signal.args == [str(target), len(s.collection)]
    assert asked == ["CSV (*.csv);;Parquet (*.parquet)"]
    assert not (tmp_path / "atlas.csv").exists()

    table = pq.read_table(target)
    assert table.column_names == ["path", "x", "y", "embedding", "image"]
    assert table.column("path").to_pylist() == list(s.collection.paths)
    assert vectors(table).view(np.uint32).tolist() == s.collection.embeddings.view(np.uint32).tolist()
    np.testing.assert_array_equal(np.stack([table.column("x").to_numpy(), table.column("y").to_numpy()], axis=1),
                                  np.asarray(s.coords, np.float32))
    for jpeg in table.column("image").to_pylist():
        with Image.open(io.BytesIO(jpeg)) as decoded:
            assert decoded.format == "JPEG" and max(decoded.size) <= 256
    encoder = s.encoder
    assert ModelRecord.from_metadata(table.schema.metadata) == ModelRecord(dict(encoder.identity), encoder.key,
                                                                         encoder.dim)

    # the CSV filter still writes a CSV, and a .parquet name typed under it still writes Parquet
    monkeypatch.setattr(main_window.QFileDialog, "getSaveFileName",
                        lambda *a: (str(tmp_path / "plain"), "CSV (*.csv)"))
    with qtbot.waitSignal(s.exported, timeout=TIMEOUT):
        window.export(False)
    assert (tmp_path / "plain.csv").read_text().startswith("path,x,y,e0,")
    monkeypatch.setattr(main_window.QFileDialog, "getSaveFileName",
                        lambda *a: (str(tmp_path / "typed.PARQUET"), "CSV (*.csv)"))
    with qtbot.waitSignal(s.exported, timeout=TIMEOUT):
        window.export(False)
    assert pq.read_table(tmp_path / "typed.PARQUET").num_rows == len(s.collection)
