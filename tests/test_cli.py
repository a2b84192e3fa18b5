"""Tests for the ``clipscape`` command line (models/cli.py), with the bundled demo model.

Most cases call ``models.cli.main(argv)`` in-process: a subprocess pays seconds of torch import
each time. Three cases run the installed console script, to see exit codes and stderr exactly as
a shell does. The demo model is only partly trained (colours near perfect, shapes ~70 %), so
every quality assertion is about colour.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from clipscape.models.cli import main
from clipscape.models.shapes_world import COLOURS
from clipscape.models.store import DB_NAME

MODEL = ("--model", "demo", "--quiet")
COLOUR_CLASSES = ",".join(COLOURS)  # red,green,blue,yellow,purple,orange
SCRIPT = Path(sys.executable).with_name("clipscape")


# --- helpers ----------------------------------------------------------------------------------

def cli(capsys, *argv, json_out: bool = True):
    """Run main() in-process; return (exit code, parsed JSON or stdout text, stderr)."""
    capsys.readouterr()  # drop anything printed before
    args = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else a for a in argv]
    code = main([*args, *MODEL, *(["--json"] if json_out else [])])
    out, err = capsys.readouterr()
    if json_out and code == 0:
        return code, json.loads(out), err
    return code, out, err


def colour_of(path: str) -> str:
    """Ground-truth colour from a shapes-world file name (``0007_red_star_on_plain.jpg``)."""
    return os.path.basename(path).split("_")[1]


def shape_of(path: str) -> str:
    return os.path.basename(path).split("_")[2]


def read_csv(path) -> list[list[str]]:
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return list(csv.reader(f))


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("clipscape: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One embedding cache for the read-only tests of this module (passed as --cache-dir)."""
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture
def shapes(shapes_folder):
    """(folder, sorted list of its image paths as str)."""
    folder, written = shapes_folder
    return folder, sorted(str(p) for p, _ in written)


def small_folder(shapes_folder, dest: Path, colours=("red", "green", "blue")) -> dict[str, Path]:
    """Copy one image of each of ``colours`` from the shapes folder into ``dest``."""
    _, written = shapes_folder
    dest.mkdir()
    picked = {}
    for path, scene in written:
        if scene.colour in colours and scene.colour not in picked:
            picked[scene.colour] = Path(shutil.copy(path, dest / path.name))
    assert sorted(picked) == sorted(colours)
    return picked


# --- encode -----------------------------------------------------------------------------------

def test_encode_reports_then_reuses_everything(shapes, tmp_path, capsys):
    folder, paths = shapes
    code, first, _ = cli(capsys, "encode", folder)
    assert code == 0
    assert first["folder"] == str(folder)
    assert first["model"]["source"] == "local-dir"
    assert first["device"] == "cpu"
    assert (first["images"], first["embedded"], first["reused"], first["skipped"]) == (48, 48, 0, [])
    assert first["seconds"] > 0
    assert first["images_per_second"] == pytest.approx(48 / first["seconds"], rel=0.05)
    # the cache went where CLIPSCAPE_CACHE_DIR points (set per test by conftest)
    assert (tmp_path / "cache" / DB_NAME).is_file()

    code, second, _ = cli(capsys, "encode", folder)
    assert code == 0
    assert (second["images"], second["embedded"], second["reused"], second["skipped"]) == (48, 0, 48, [])
    assert second["images_per_second"] == 0


def test_broken_file_is_listed_as_skipped_not_fatal(shapes_folder, tmp_path, capsys):
    folder = tmp_path / "mixed"
    good = small_folder(shapes_folder, folder)
    broken = folder / "broken.jpg"
    broken.write_text("this is not a JPEG, just text with a .jpg name\n")

    code, out, _ = cli(capsys, "encode", folder)
    assert code == 0
    assert (out["images"], out["embedded"], out["reused"]) == (4, 3, 0)
    assert [s["path"] for s in out["skipped"]] == [str(broken)]
    reason = out["skipped"][0]["reason"]
    assert "image" in reason and ("cannot identify" in reason or "not an image" in reason), reason

    # without --json the skip is reported on stderr; the good images come from the cache
    code, text, err = cli(capsys, "encode", folder, json_out=False)
    assert code == 0
    assert f"skipped {broken}: {reason}" in err
    assert "3 images indexed" in text and "0 embedded, 3 from cache, 1 skipped" in text

    code, out, _ = cli(capsys, "search", folder, "a red circle", "--top", "10")
    assert code == 0
    assert sorted(r["path"] for r in out["results"]) == sorted(str(p) for p in good.values())


# --- search and similar -----------------------------------------------------------------------

def test_search_ranks_red_circles_first(shapes, shared_cache, capsys):
    folder, paths = shapes
    code, out, _ = cli(capsys, "search", folder, "a red circle", "--top", "100", "--cache-dir", shared_cache)
    assert code == 0
    assert out["caption"] == "a red circle"
    results = out["results"]
    assert len(results) == 48  # --top larger than the folder gives every image once
    assert sorted(r["path"] for r in results) == paths
    assert [r["rank"] for r in results] == list(range(1, 49))
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    # the folder holds two red circles: they come first, and half-matches beat non-matches
    assert {(colour_of(r["path"]), shape_of(r["path"])) for r in results[:2]} == {("red", "circle")}
    half = [r["rank"] for r in results[2:] if (colour_of(r["path"]) == "red") != (shape_of(r["path"]) == "circle")]
    none = [r["rank"] for r in results if colour_of(r["path"]) != "red" and shape_of(r["path"]) != "circle"]
    assert np.mean(half) < np.mean(none) - 10

    code, out, _ = cli(capsys, "search", folder, "a red circle", "--top", "3", "--cache-dir", shared_cache)
    assert [r["path"] for r in out["results"]] == [r["path"] for r in results[:3]]


def test_similar_leaves_out_the_query_and_ranks_its_twin_first(shapes, shared_cache, capsys, monkeypatch):
    folder, paths = shapes
    monkeypatch.chdir(folder)  # the image may be given relative to the working directory
    for colour in ("red", "blue", "yellow"):
        query = next(p for p in paths if colour_of(p) == colour)
        code, out, _ = cli(capsys, "similar", folder, os.path.basename(query), "--top", "100",
                           "--cache-dir", shared_cache)
        assert code == 0
        assert out["image"] == query
        results = out["results"]
        assert len(results) == 47
        assert query not in {r["path"] for r in results}
        assert sorted(r["path"] for r in results) == sorted(set(paths) - {query})
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)
        shape = shape_of(query)
        # the nearest shares colour or shape; its twin (same colour and shape) is near the top
        assert colour_of(results[0]["path"]) == colour or shape_of(results[0]["path"]) == shape
        twin = next(r["rank"] for r in results if (colour_of(r["path"]), shape_of(r["path"])) == (colour, shape))
        assert twin <= 10, (query, twin)  # within the top fifth of 47
        related = [r["rank"] for r in results if colour_of(r["path"]) == colour or shape_of(r["path"]) == shape]
        unrelated = [r["rank"] for r in results if colour_of(r["path"]) != colour and shape_of(r["path"]) != shape]
        assert len(related) == 17 and np.mean(related) < np.mean(unrelated) - 10, (colour, related)

    code, out, err = cli(capsys, "similar", folder, "/nowhere/else.jpg", "--cache-dir", shared_cache)
    assert code == 1
    assert "else.jpg" in one_line_error(err)


# --- classify ---------------------------------------------------------------------------------

def test_classify_colours(shapes, shared_cache, capsys):
    folder, paths = shapes
    code, out, _ = cli(capsys, "classify", folder, "--classes", COLOUR_CLASSES, "--cache-dir", shared_cache)
    assert code == 0
    assert out["classes"] == list(COLOURS)
    results = out["results"]
    assert sorted(r["path"] for r in results) == paths
    correct = sum(r["class"] == colour_of(r["path"]) for r in results)
    assert correct >= 0.9 * 48, f"only {correct}/48 colours right"
    assert list(out["counts"]) == [*COLOURS, "unknown"]
    assert sum(out["counts"].values()) == 48
    assert out["counts"]["unknown"] == 0
    assert out["counts"] == {**{c: 0 for c in out["counts"]}, **Counter(r["class"] for r in results)}
    assert all(1 / 6 <= r["probability"] <= 1 for r in results)  # a top class of six
    probability = {r["path"]: r["probability"] for r in results}

    # --threshold 0.99: exactly the images below 0.99 become unknown
    code, out, _ = cli(capsys, "classify", folder, "--classes", COLOUR_CLASSES, "--threshold", "0.99",
                       "--cache-dir", shared_cache)
    assert code == 0
    assert sum(out["counts"].values()) == 48
    unknown = {r["path"] for r in out["results"] if r["class"] == "unknown"}
    assert out["counts"]["unknown"] == len(unknown)
    assert {p for p, pr in probability.items() if pr < 0.99 - 1e-6} <= unknown
    assert not {p for p, pr in probability.items() if pr > 0.99 + 1e-6} & unknown
    for r in out["results"]:  # the probability reported is the top class's, known or not
        assert r["probability"] == pytest.approx(probability[r["path"]], abs=1e-6)

    # a threshold at the most confident image's probability must leave some unknown and some not
    # (0.99 alone would stop proving that once a better demo model is more confident)
    top = max(probability, key=probability.get)
    least = min(probability, key=probability.get)
    assert probability[least] < probability[top]
    code, out, _ = cli(capsys, "classify", folder, "--classes", COLOUR_CLASSES,
                       "--threshold", repr(probability[top] - 1e-6), "--cache-dir", shared_cache)
    labels = {r["path"]: r["class"] for r in out["results"]}
    assert labels[least] == "unknown" and labels[top] == colour_of(top)
    assert 1 <= out["counts"]["unknown"] < 48
    assert sum(out["counts"].values()) == 48


# --- export -----------------------------------------------------------------------------------

def test_export_csv_with_classes_score_and_pca(shapes, shared_cache, tmp_path, capsys, demo_encoder):
    folder, paths = shapes
    target = tmp_path / "out.csv"
    code, out, _ = cli(capsys, "export", folder, "--csv", target, "--classes", COLOUR_CLASSES,
                       "--query", "a red circle", "--projection", "pca", "--cache-dir", shared_cache)
    assert code == 0
    assert (out["csv"], out["rows"], out["projection"]) == (str(target), 48, "pca")
    header, *rows = read_csv(target)
    dim = demo_encoder.dim
    assert header == ["path", "x", "y", "class", "probability", "score", *(f"e{i}" for i in range(dim))]
    assert len(rows) == 48 and all(len(r) == len(header) for r in rows)
    assert sorted(r[0] for r in rows) == paths

    xy = np.array([[float(r[1]), float(r[2])] for r in rows])
    assert np.all(np.abs(xy) <= 1.0) and np.abs(xy).max() == pytest.approx(1.0)
    assert xy.std(axis=0).min() > 0.05  # a real spread, not a collapsed map
    correct = sum(r[3] == colour_of(r[0]) for r in rows)
    assert correct >= 0.9 * 48
    assert all(1 / 6 <= float(r[4]) <= 1 for r in rows)
    by_score = sorted(rows, key=lambda r: -float(r[5]))
    assert {(colour_of(r[0]), shape_of(r[0])) for r in by_score[:2]} == {("red", "circle")}
    vectors = np.array([[float(v) for v in r[6:]] for r in rows])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the score column is the cosine of the stored embedding with the caption's
    caption = demo_encoder.encode_texts(["a red circle"])[0]
    np.testing.assert_allclose([float(r[5]) for r in rows], vectors @ caption, atol=1e-4)


def test_export_projection_none_and_umap(shapes, shared_cache, tmp_path, capsys, demo_encoder):
    folder, paths = shapes
    target = tmp_path / "plain.csv"
    code, out, _ = cli(capsys, "export", folder, "--csv", target, "--projection", "none",
                       "--cache-dir", shared_cache)
    assert code == 0 and out["projection"] == "none"
    header, *rows = read_csv(target)
    assert header == ["path", *(f"e{i}" for i in range(demo_encoder.dim))]
    assert sorted(r[0] for r in rows) == paths

    # the default projection is UMAP; same map coordinates within [-1, 1]
    code, out, _ = cli(capsys, "export", folder, "--csv", target, "--cache-dir", shared_cache)
    assert code == 0 and out["projection"] == "umap"
    header, *rows = read_csv(target)
    assert header[:3] == ["path", "x", "y"] and len(rows) == 48
    xy = np.array([[float(r[1]), float(r[2])] for r in rows])
    assert np.isfinite(xy).all() and np.all(np.abs(xy) <= 1.0)
    assert np.abs(xy).max() == pytest.approx(1.0)


def test_export_refuses_a_bad_target_before_encoding(shapes, tmp_path, capsys):
    folder, _ = shapes
    code, _, err = cli(capsys, "export", folder, "--csv", tmp_path / "missing" / "out.csv")
    assert code == 1 and "does not exist" in one_line_error(err)
    code, _, err = cli(capsys, "export", folder, "--csv", tmp_path)
    assert code == 1 and "folder" in one_line_error(err)
    assert not (tmp_path / "cache" / DB_NAME).exists()  # nothing was encoded


# --- usage errors and fatal errors ------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["search", "F", "a cat", "--top", "0"],
    ["search", "F", "a cat", "--top", "many"],
    ["similar", "F", "x.jpg", "--top", "-3"],
    ["encode", "F", "--batch-size", "0"],
    ["classify", "F", "--classes", "red", "--threshold", "2"],
    ["classify", "F", "--classes", "red", "--threshold", "-0.1"],
    ["classify", "F"],
    ["classify", "F", "--classes", ""],
    ["classify", "F", "--classes", " , ,\n"],
    ["export", "F", "--csv", "o.csv", "--classes", ""],
    ["export", "F", "--csv", "o.csv", "--query", "  "],
    ["export", "F", "--csv", "o.csv", "--projection", "tsne"],
    ["export", "F"],
    ["search", "F", "   "],
    ["frobnicate", "F"],
    [],
], ids=lambda a: " ".join(a) or "no-command")
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: clipscape") and "error:" in err


@pytest.mark.parametrize("command", ["encode", "search", "similar", "classify", "export"])
def test_missing_folder_returns_1_with_one_line(command, tmp_path, capsys):
    extra = {"encode": [], "search": ["a cat"], "similar": ["x.jpg"], "classify": ["--classes", "a,b"],
             "export": ["--csv", tmp_path / "out.csv"]}[command]
    code, _, err = cli(capsys, command, tmp_path / "no-such-folder", *extra)
    assert code == 1
    line = one_line_error(err)
    assert "no such folder" in line and "no-such-folder" in line


# --- file names that are not UTF-8 ------------------------------------------------------------

@pytest.fixture
def latin1_folder(shapes_folder, tmp_path):
    """A red circle stored as b"caf\\xe9.jpg" (Latin-1, invalid UTF-8) beside one image per other colour."""
    if sys.platform in ("darwin", "win32"):
        pytest.skip("this file system only allows Unicode file names")
    folder = tmp_path / "latin1"
    small_folder(shapes_folder, folder, colours=("green", "blue", "yellow", "purple", "orange"))
    _, written = shapes_folder
    red_circle = next(p for p, s in written if (s.colour, s.shape) == ("red", "circle"))
    name = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    shutil.copyfile(red_circle, name)
    return folder, name


def test_non_utf8_file_name_round_trips(latin1_folder, tmp_path, capsys):
    folder, name = latin1_folder
    code, out, _ = cli(capsys, "encode", folder)
    assert code == 0
    assert (out["images"], out["embedded"], out["skipped"]) == (6, 6, [])

    code, out, _ = cli(capsys, "search", folder, "a red circle", "--top", "6")
    assert code == 0
    assert len(out["results"]) == 6
    assert os.fsencode(out["results"][0]["path"]) == name  # the only red image, bytes intact

    code, text, _ = cli(capsys, "search", folder, "a red circle", "--top", "1", json_out=False)
    assert code == 0 and text.rstrip().endswith("caf\\xe9.jpg")  # printable, bytes shown as \xNN

    code, out, _ = cli(capsys, "similar", folder, name)  # the query given as the raw name
    assert code == 0 and os.fsencode(out["image"]) == name and len(out["results"]) == 5

    target = os.path.join(os.fsencode(tmp_path), b"r\xe9sultat.csv")
    code, text, _ = cli(capsys, "export", folder, "--csv", target, "--projection", "pca", json_out=False)
    assert code == 0 and "r\\xe9sultat.csv" in text
    header, *rows = read_csv(target)
    assert header[:3] == ["path", "x", "y"]
    assert name in [os.fsencode(r[0]) for r in rows]
    with open(target, "rb") as f:
        assert name in f.read()  # the CSV holds the file name's raw bytes


# --- the console script as a shell runs it ----------------------------------------------------

def run_script(*argv, env=None, timeout=90):
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT}")
    started = time.monotonic()
    proc = subprocess.run([str(SCRIPT), *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    return proc, time.monotonic() - started


def test_script_usage_error_exits_2():
    proc, _ = run_script("search", "--top", "0")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("usage: clipscape search")
    assert "clipscape search: error:" in proc.stderr


def test_script_missing_folder_exits_1_with_one_line(tmp_path):
    proc, _ = run_script("encode", tmp_path / "gone", *MODEL)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "gone" in one_line_error(proc.stderr)


def test_script_unreachable_hub_model_fails_fast_with_a_fix(shapes, tmp_path):
    folder, _ = shapes
    empty_hub_cache = tmp_path / "hf-hub"
    empty_hub_cache.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "HF_HOME")}
    env.update(HF_HUB_CACHE=str(empty_hub_cache), HF_ENDPOINT="https://hub.clipscape-test.invalid")
    proc, seconds = run_script("encode", folder, "--model", "ViT-B-32", "--quiet", env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    line = one_line_error(proc.stderr)
    assert "ViT-B-32" in line and "--model demo" in line
    assert seconds < 40, f"took {seconds:.1f} s: the hub was retried instead of probed"
    assert seconds < 5, f"took {seconds:.1f} s: decided after importing torch (0.6 s measured without)"
    assert list(empty_hub_cache.iterdir()) == []


# --- never lose a cached embedding ------------------------------------------------------------

def cached_rows(cache: Path) -> int:
    with sqlite3.connect(cache / DB_NAME) as con:
        return con.execute("select count(*) from embeddings").fetchone()[0]


def test_unreadable_sub_folder_for_real_keeps_its_rows(shapes_folder, tmp_path):
    from conftest import run_unprivileged

    folder = tmp_path / "photos"
    folder.mkdir()
    small_folder(shapes_folder, folder / "open")
    small_folder(shapes_folder, folder / "locked")
    cache = tmp_path / "c"
    argv = [sys.executable, "-m", "clipscape.models.cli", "encode", folder, *MODEL, "--cache-dir", cache]
    assert subprocess.run(argv, capture_output=True).returncode == 0
    assert cached_rows(cache) == 6
    (folder / "locked").chmod(0)
    try:
        proc = run_unprivileged(argv, capture_output=True, text=True, timeout=120)
    finally:
        (folder / "locked").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert f"skipped {folder / 'locked'}: cannot read folder: permission denied" in proc.stderr
    assert f"kept 3 cached embeddings under {folder / 'locked'}: it could not be read" in proc.stderr
    assert cached_rows(cache) == 6


def test_empty_root_keeps_rows_and_says_how_to_forget_them(shapes_folder, tmp_path, capsys):
    folder = tmp_path / "mnt"
    small_folder(shapes_folder, folder)
    assert cli(capsys, "encode", folder)[0] == 0
    for f in folder.iterdir():
        f.unlink()
    code, out, err = cli(capsys, "encode", folder, json_out=False)
    assert code == 0
    assert f"kept 3 cached embeddings of {folder}: the folder came back empty" in err
    assert "--prune-missing" in err
    assert cached_rows(tmp_path / "cache") == 3
    code, out, _ = cli(capsys, "encode", folder, "--prune-missing")
    assert code == 0 and out["kept"] == [] and cached_rows(tmp_path / "cache") == 0


def test_read_only_commands_never_delete(shapes_folder, tmp_path, capsys):
    folder = tmp_path / "photos"
    picked = small_folder(shapes_folder, folder)
    assert cli(capsys, "encode", folder)[0] == 0
    picked["red"].unlink()
    for argv in (["search", folder, "a red circle"], ["similar", folder, picked["blue"]],
                 ["classify", folder, "--classes", "red,blue", "--single-template"],
                 ["export", folder, "--csv", tmp_path / "o.csv", "--projection", "none"]):
        code, out, _ = cli(capsys, *argv)
        assert code == 0 and out["images"] == 2
        assert cached_rows(tmp_path / "cache") == 3, argv
    assert cli(capsys, "encode", folder)[0] == 0
    assert cached_rows(tmp_path / "cache") == 2


def test_disk_full_at_a_random_batch_is_one_line_and_a_rerun_completes(shapes, tmp_path, capsys, monkeypatch):
    import random

    from clipscape.models.store import EmbeddingStore

    folder, paths = shapes
    full_at = random.Random().randrange(1, 6)  # 48 images in batches of 8: fail one of batches 2-6
    real_add = EmbeddingStore.add_batch
    calls = []

    class FullDisk:
        """The store's connection once the disk has filled up: every write fails as SQLite's does.

        (tests/test_store.py makes SQLite itself run out of pages; the demo model's vectors are
        too small to fill a page per batch, so here the error is injected.)"""

        def __init__(self, conn):
            self.conn = conn

        def __getattr__(self, name):
            return getattr(self.conn, name)

        def executemany(self, *args):
            raise sqlite3.OperationalError("database or disk is full")

    def filling_up(self, *args, **kwargs):
        calls.append(1)
        if len(calls) <= full_at:
            return real_add(self, *args, **kwargs)
        conn, self._conn = self._conn, FullDisk(self._conn)
        try:
            return real_add(self, *args, **kwargs)
        finally:
            self._conn = conn

    cache = tmp_path / "cache"
    with monkeypatch.context() as patch:
        patch.setattr(EmbeddingStore, "add_batch", filling_up)
        code, _, err = cli(capsys, "encode", folder, "--batch-size", "8", json_out=False)
    assert code == 1, f"a disk full at batch {full_at + 1} went unnoticed"
    line = one_line_error(err)
    assert "full" in line and str(cache / DB_NAME) in line
    kept = cached_rows(cache)  # every batch before the one that found no room
    assert kept == 8 * full_at, (full_at, kept)
    with sqlite3.connect(cache / DB_NAME) as con:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"

    code, out, _ = cli(capsys, "encode", folder, "--batch-size", "8")
    assert code == 0 and (out["reused"], out["embedded"]) == (kept, 48 - kept)
    code, clean, _ = cli(capsys, "export", folder, "--csv", tmp_path / "a.csv", "--projection", "none")
    code, _, _ = cli(capsys, "export", folder, "--csv", tmp_path / "b.csv", "--projection", "none",
                     "--cache-dir", tmp_path / "clean")
    a, b = (sorted(read_csv(tmp_path / n)[1:]) for n in ("a.csv", "b.csv"))
    assert [r[0] for r in a] == [r[0] for r in b] == paths
    np.testing.assert_allclose(np.array(a)[:, 1:].astype(float), np.array(b)[:, 1:].astype(float), atol=1e-6)


def test_cache_folder_that_is_a_file_exits_1_with_one_line(shapes, tmp_path, capsys):
    folder, _ = shapes
    (tmp_path / "not-a-folder").write_text("")
    code, _, err = cli(capsys, "encode", folder, "--cache-dir", tmp_path / "not-a-folder", json_out=False)
    line = one_line_error(err)
    assert code == 1 and str(tmp_path / "not-a-folder") in line
    assert "--cache-dir" in line and "Errno" not in line  # says what to do, not raw errno text
    # the cache is opened before the model loads, so its error comes first (and at once)
    capsys.readouterr()
    code, _, err = main(["encode", str(folder), "--model", "local-dir:/no/such/model", "--quiet",
                         "--cache-dir", str(tmp_path / "not-a-folder")]), None, capsys.readouterr().err
    assert code == 1 and "embedding cache folder" in one_line_error(err)


def test_os_errors_are_one_printable_line_without_errno():
    from clipscape.models.cli import _message

    assert _message(PermissionError(13, "Permission denied", "/x/\x1b[2Jy")) == "/x/\\x1b[2Jy: permission denied"
    assert _message(OSError(28, "No space left on device")) == "no space left on device"


# --- hostile file names in the text output ----------------------------------------------------

def test_control_characters_in_names_cannot_forge_lines_or_reach_the_terminal(shapes_folder, tmp_path, capsys):
    if sys.platform == "win32":
        pytest.skip("Windows file names cannot hold control characters")
    folder = tmp_path / "hostile"
    picked = small_folder(shapes_folder, folder)
    forged = folder / "x.jpg\n   1  1.0000  forged.jpg"
    picked["red"].rename(forged)
    escape = folder / "\x1b]0;owned\x07\x1b[2J.jpg"
    picked["green"].rename(escape)
    (folder / "bad\nname\x1b[31m.jpg").write_text("not an image")

    code, text, err = cli(capsys, "search", folder, "a red circle", "--top", "3", json_out=False)
    assert code == 0
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 3 and all(line.startswith(f"{rank:4d}  ") for rank, line in enumerate(lines, 1))
    assert "\x1b" not in text + err and "\x07" not in text + err
    assert any(line.endswith("x.jpg\\n   1  1.0000  forged.jpg") for line in lines)
    skipped = [line for line in err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "bad\\nname\\x1b[31m.jpg" in skipped[0]

    code, text, _ = cli(capsys, "classify", folder, "--classes", "red,green,blue", "--single-template",
                        json_out=False)
    assert code == 0 and "\x1b" not in text and len(text.rstrip("\n").split("\n")) == 3 + 1  # rows + counts

    code, out, _ = cli(capsys, "search", folder, "a red circle", "--top", "3")
    assert {r["path"] for r in out["results"]} >= {str(forged), str(escape)}  # JSON keeps the names exact


# --- smaller faults ---------------------------------------------------------------------------

def test_closed_stdout_exits_quietly(shapes, shared_cache):
    folder, _ = shapes
    if not SCRIPT.exists():
        pytest.skip(f"console script not installed at {SCRIPT}")
    argv = [str(SCRIPT), "search", str(folder), "a red circle", "--top", "40", *MODEL, "--cache-dir", str(shared_cache)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `| head -0` would: the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # what a shell shows for a command stopped by SIGPIPE
    assert "Traceback" not in err and "BrokenPipe" not in err and err == ""


def test_csv_into_a_read_only_folder_fails_before_encoding_naming_the_users_path(shapes, tmp_path):
    from conftest import run_unprivileged

    folder, _ = shapes
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    cache = tmp_path / "c"
    try:
        proc = run_unprivileged([sys.executable, "-m", "clipscape.models.cli", "export", folder, "--csv",
                                 locked / "out.csv", *MODEL, "--cache-dir", cache],
                                capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 1
    line = one_line_error(proc.stderr)
    assert line == f"clipscape: error: cannot write {locked / 'out.csv'}: permission denied"
    assert not cache.exists()  # refused before the model was loaded or anything encoded
    assert list(locked.iterdir()) == []


def test_many_classes_show_progress(shapes, shared_cache, capsys):
    folder, _ = shapes
    capsys.readouterr()
    classes = ",".join(f"thing {i}" for i in range(500))
    code = main(["classify", str(folder), "--classes", classes, "--single-template", "--model", "demo",
                 "--cache-dir", str(shared_cache), "--json"])
    err = capsys.readouterr().err
    assert code == 0
    assert "class prompts" in err and "500/500" in err, err[-500:]


def test_a_folder_link_out_is_listed_not_followed_and_its_cached_rows_are_kept(shapes, tmp_path, capsys):
    import shutil

    folder, paths = shapes
    root = tmp_path / "photos"
    shutil.copytree(folder, root / "own")
    (root / "elsewhere").symlink_to(folder, target_is_directory=True)
    code, out, _ = cli(capsys, "encode", root, "--follow-links-out")  # asked: followed
    assert code == 0 and out["images"] == 96 and out["skipped"] == []
    (root / "everything").symlink_to("/", target_is_directory=True)  # was: the whole disk scanned
    code, out, _ = cli(capsys, "encode", root)
    assert code == 0 and out["images"] == 48
    assert sorted(s["path"] for s in out["skipped"]) == [str(root / "elsewhere"), str(root / "everything")]
    assert all(s["reason"].startswith("link to a folder outside the scanned folders") for s in out["skipped"])
    assert out["kept"] == [{"path": str(root / "elsewhere"), "rows": 48, "reason": "link out"}]
    assert cached_rows(tmp_path / "cache") == 96  # not pruned: the scan did not look there
    code, _, err = cli(capsys, "search", root, "a red circle", json_out=False)
    assert code == 0 and f"skipped {root / 'everything'}: link to a folder outside" in err
