"""Tests for models.export: CSV export of a collection."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from clipscape.models.export import CHUNK_ROWS, neutralise, write_csv

DIM = 4


def embeddings(n: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)


def read_rows(path: Path) -> list[list[str]]:
    """Read the CSV back the way the module documents (surrogateescape keeps raw path bytes)."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return list(csv.reader(f))


def test_neutralise():
    for bad in ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "\tx", "\rx"]:
        assert neutralise(bad) == "'" + bad
    for fine in ["/photos/a.jpg", "cat", "", "a=b", "1-2"]:
        assert neutralise(fine) == fine


@pytest.mark.parametrize("with_coords", [False, True])
@pytest.mark.parametrize("with_classes", [False, True])
@pytest.mark.parametrize("with_scores", [False, True])
def test_columns_for_each_combination(tmp_path, with_coords, with_classes, with_scores):
    n = 3
    out = tmp_path / "out.csv"
    write_csv(
        out,
        [f"/p/{i}.jpg" for i in range(n)],
        embeddings(n),
        coords=np.zeros((n, 2), np.float32) if with_coords else None,
        classes=["cat"] * n if with_classes else None,
        probabilities=np.full(n, 0.5, np.float32) if with_classes else None,
        scores=np.ones(n, np.float32) if with_scores else None,
    )
    expected = (
        ["path"]
        + (["x", "y"] if with_coords else [])
        + (["class", "probability"] if with_classes else [])
        + (["score"] if with_scores else [])
        + [f"e{i}" for i in range(DIM)]
    )
    header, *rows = read_rows(out)
    assert header == expected
    assert [r[0] for r in rows] == [f"/p/{i}.jpg" for i in range(n)]
    assert all(len(r) == len(expected) for r in rows)


def test_values_roundtrip_to_float32(tmp_path):
    n = 50
    rng = np.random.default_rng(1)
    emb = np.concatenate([embeddings(n, 32) * np.float32(1e-3), embeddings(n, 8) * np.float32(1e30)], axis=1)
    coords = (rng.standard_normal((n, 2)) * 1e4).astype(np.float32)
    probs = rng.random(n).astype(np.float32)
    scores = rng.uniform(-1, 1, n).astype(np.float32)
    out = tmp_path / "out.csv"
    write_csv(out, [f"/p/{i}" for i in range(n)], emb, coords=coords, classes=["c"] * n,
              probabilities=probs, scores=scores)
    header, *rows = read_rows(out)
    table = np.array([[float(c) for c in r[1:3] + r[4:]] for r in rows], dtype=np.float64)
    # Nine significant digits: every float32 comes back bit for bit.
    np.testing.assert_array_equal(table[:, :2].astype(np.float32), coords)
    np.testing.assert_array_equal(table[:, 2].astype(np.float32), probs)
    np.testing.assert_array_equal(table[:, 3].astype(np.float32), scores)
    np.testing.assert_array_equal(table[:, 4:].astype(np.float32), emb)


def test_formula_cells_are_neutralised_but_our_numbers_are_not(tmp_path):
    bad = ["=cmd", "+1", "-1", "@x", "\tTAB", "\rCR"]
    n = len(bad)
    out = tmp_path / "out.csv"
    coords = np.tile(np.float32([-1.5, 2.0]), (n, 1))
    write_csv(out, bad, embeddings(n), coords=coords, classes=bad, scores=np.full(n, -0.25))
    header, *rows = read_rows(out)
    for row, text in zip(rows, bad):
        assert row[0] == "'" + text  # path
        assert row[3] == "'" + text  # class
        assert row[1:3] == ["-1.5", "2"]  # a legit negative coordinate, unquoted
        assert row[5] == "-0.25"
        assert row[4] == ""  # no probabilities given
    raw = out.read_bytes()
    assert b",-1.5,2," in raw and b"'-1.5" not in raw


def test_text_with_commas_quotes_and_newlines_is_quoted(tmp_path):
    tricky = ['/p/a,b.jpg', '/p/say "hi".jpg', "/p/two\nlines.jpg"]
    out = tmp_path / "out.csv"
    write_csv(out, tricky, embeddings(3), classes=["x,y", 'q"', "n\nl"])
    rows = read_rows(out)[1:]
    assert [r[0] for r in rows] == tricky
    assert [r[1] for r in rows] == ["x,y", 'q"', "n\nl"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes")
def test_non_utf8_path_roundtrip(tmp_path):
    raw_name = b"/photos/caf\xe9 \xff.jpg"  # Latin-1 bytes: not valid UTF-8
    path = os.fsdecode(raw_name)
    out = tmp_path / "out.csv"
    write_csv(out, [path, "/photos/caf\u00e9.jpg"], embeddings(2))
    assert raw_name in out.read_bytes()  # the original bytes, not a replacement character
    rows = read_rows(out)
    assert rows[1][0] == path and os.fsencode(rows[1][0]) == raw_name
    assert rows[2][0] == "/photos/caf\u00e9.jpg"  # ordinary non-ASCII stays plain UTF-8


def test_progress_is_reported_in_chunks_and_at_the_end(tmp_path):
    n = 2 * CHUNK_ROWS + 5
    calls = []
    write_csv(tmp_path / "out.csv", [f"/p/{i}" for i in range(n)], embeddings(n),
              progress=lambda done, total: calls.append((done, total)))
    assert calls == [(CHUNK_ROWS, n), (2 * CHUNK_ROWS, n), (n, n)]


def test_empty_collection(tmp_path):
    calls = []
    out = tmp_path / "out.csv"
    write_csv(out, [], np.zeros((0, DIM), np.float32), progress=lambda *a: calls.append(a))
    assert read_rows(out) == [["path"] + [f"e{i}" for i in range(DIM)]]
    assert calls == [(0, 0)]


class Cancelled(Exception):
    pass


def test_cancel_leaves_previous_file_untouched_and_no_temp(tmp_path):
    out = tmp_path / "out.csv"
    out.write_bytes(b"previous export\r\n")
    os.chmod(out, 0o640)
    n = 3 * CHUNK_ROWS

    def cancel_midway(done, total):
        if done > CHUNK_ROWS:
            raise Cancelled

    with pytest.raises(Cancelled):
        write_csv(out, [f"/p/{i}" for i in range(n)], embeddings(n), progress=cancel_midway)
    assert out.read_bytes() == b"previous export\r\n"
    assert os.listdir(tmp_path) == ["out.csv"]

    write_csv(out, ["/p/0"], embeddings(1))  # a successful export keeps the file's mode
    assert read_rows(out)[1][0] == "/p/0"
    assert os.listdir(tmp_path) == ["out.csv"]
    if os.name == "posix":
        assert out.stat().st_mode & 0o777 == 0o640


def test_new_file_gets_normal_permissions(tmp_path):
    out = tmp_path / "new.csv"
    write_csv(out, ["/p/0"], embeddings(1))
    if os.name == "posix":
        umask = os.umask(0o022)
        os.umask(umask)
        assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not NamedTemporaryFile's 0600


def test_mismatched_lengths_are_rejected_before_writing(tmp_path):
    out = tmp_path / "out.csv"
    with pytest.raises(ValueError):
        write_csv(out, ["/a", "/b"], embeddings(3))
    with pytest.raises(ValueError):
        write_csv(out, ["/a"], embeddings(1), coords=np.zeros((1, 3)))
    with pytest.raises(ValueError):
        write_csv(out, ["/a"], embeddings(1), classes=["a", "b"])
    with pytest.raises(ValueError):
        write_csv(out, ["/a"], embeddings(1), probabilities=np.ones(1))
    assert not out.exists() and os.listdir(tmp_path) == []
