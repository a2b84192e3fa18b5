"""CSV export of a collection: one row per image with its map position, class, score and embedding.

Columns: path, x, y, class, probability, score, e0 ... e(D-1); the optional groups are left out
when their data is not given. The file is written atomically (temp file + fsync + os.replace),
so a failed or cancelled export never leaves a half-written CSV in place of a good one.

Encoding: UTF-8, with errors="surrogateescape". Paths come from os.fsdecode, so a file name
that is not valid UTF-8 arrives as a str with lone surrogates (U+DC80..U+DCFF). Writing them
with surrogateescape puts the file name's original bytes into the CSV, and reading it back with
encoding="utf-8", errors="surrogateescape" yields the very same str, which os.fsencode turns back
into the real file name. The alternative, replacing them with U+FFFD, would give tidy text but
paths that name no file. Such a CSV is not strictly valid UTF-8 at those cells only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["neutralise", "write_csv"]

ProgressFn = Callable[[int, int], None]

CHUNK_ROWS = 1000
# Nine significant digits round-trip every float32 exactly, so a CSV read back with
# np.float32 gives the cached vectors bit for bit. .7g would be ~15 % smaller and faster but
# is off by up to ~4 float32 ulps. Numbers are written by us and never need neutralising.
_FLOAT_FMT = "%.9g"
# OWASP "CSV injection": spreadsheet apps treat a cell starting with one of these as a formula.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Prefix a text cell that a spreadsheet would run as a formula with a single quote (OWASP)."""
    return "'" + cell if cell.startswith(_FORMULA_TRIGGERS) else cell


def write_csv(
    path: str | os.PathLike[str],
    paths: Sequence[str],
    embeddings: np.ndarray,
    *,
    coords: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    probabilities: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    progress: ProgressFn | None = None,
) -> None:
    """Write one CSV row per image, in the order of `paths`, atomically replacing `path`.

    `progress(done, total)` is called every CHUNK_ROWS rows and at the end; raising from it
    cancels the export and leaves any existing file at `path` untouched. `probabilities`
    (one per row) needs `classes`; without probabilities the probability column stays empty.
    """
    columns = Columns.checked(paths, embeddings, coords, classes, probabilities, scores)
    atomic_write(Path(path), lambda f: columns.write(f, progress))


@dataclass(frozen=True)
class Columns:
    """The validated data of one export, and how to write it as CSV (models/export_parquet.py
    shares the validation)."""

    paths: Sequence[str]
    embeddings: np.ndarray
    coords: np.ndarray | None
    classes: Sequence[str] | None
    probabilities: np.ndarray | None
    scores: np.ndarray | None

    @classmethod
    def checked(cls, paths, embeddings, coords, classes, probabilities, scores) -> Columns:
        """Build after checking every array has one entry per path (ValueError otherwise).
        The Parquet export validates its arguments through this too."""
        n = len(paths)
        embeddings = _as_numeric_array(embeddings, "embeddings", (n, None))
        coords = None if coords is None else _as_numeric_array(coords, "coords", (n, 2))
        scores = None if scores is None else _as_numeric_array(scores, "scores", (n,))
        if probabilities is not None:
            if classes is None:
                raise ValueError("probabilities need classes")
            probabilities = _as_numeric_array(probabilities, "probabilities", (n,))
        if classes is not None and len(classes) != n:
            raise ValueError(f"classes has {len(classes)} entries for {n} paths")
        return cls(paths, embeddings, coords, classes, probabilities, scores)

    def header(self) -> list[str]:
        """Column names, leaving out the groups we have no data for."""
        names = ["path"]
        if self.coords is not None:
            names += ["x", "y"]
        if self.classes is not None:
            names += ["class", "probability"]
        if self.scores is not None:
            names.append("score")
        return names + [f"e{i}" for i in range(self.embeddings.shape[1])]

    def write(self, f: TextIO, progress: ProgressFn | None) -> None:
        """Header, then the rows chunk by chunk, reporting progress after each chunk."""
        csv.writer(f).writerow(self.header())
        total = len(self.paths)
        for start in range(0, total, CHUNK_ROWS):
            self._write_chunk(f, start, min(start + CHUNK_ROWS, total))
            if progress is not None:
                progress(min(start + CHUNK_ROWS, total), total)
        if progress is not None and total == 0:
            progress(0, 0)

    def _write_chunk(self, f: TextIO, start: int, stop: int) -> None:
        """Rows start..stop-1: the leading cells go through the csv module (it quotes text as
        needed); the embedding cells are numbers we format, which never need quoting, so they
        are formatted a row at a time with one %-format and appended as they are. Splitting
        them into cells for csv.writer measured more than twice as slow."""
        to_line = _CsvLine()
        row_format = ("," + _FLOAT_FMT) * self.embeddings.shape[1] + "\r\n"
        for i, vector in zip(range(start, stop), self.embeddings[start:stop].tolist()):
            f.write(to_line(self._leading_cells(i)))
            f.write(row_format % tuple(vector))

    def _leading_cells(self, i: int) -> list[str]:
        """path, x, y, class, probability, score of row i (those present), text neutralised."""
        cells = [neutralise(self.paths[i])]
        if self.coords is not None:
            cells += [_FLOAT_FMT % self.coords[i, 0], _FLOAT_FMT % self.coords[i, 1]]
        if self.classes is not None:
            probability = "" if self.probabilities is None else _FLOAT_FMT % self.probabilities[i]
            cells += [neutralise(self.classes[i]), probability]
        if self.scores is not None:
            cells.append(_FLOAT_FMT % self.scores[i])
        return cells


class _CsvLine:
    """Turns a list of cells into one CSV line without its line terminator, via csv.writer.

    The writer keeps its default CR LF terminator, because csv quotes a cell only when it
    holds the delimiter, the quote char or a character of the terminator: with
    lineterminator="" a newline inside a file name would not be quoted and would split the row.
    """

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def __call__(self, cells: list[str]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(cells)
        return self._buffer.getvalue()[: -len(self._writer.dialect.lineterminator)]


def _as_numeric_array(values, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """`values` as a numeric array of `shape` (None = any length there); ValueError otherwise.
    No dtype conversion: a float32 N x 512 embedding matrix is not copied."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":  # bool, int, uint, float
        raise ValueError(f"{name} should be numbers, got dtype {array.dtype}")
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        expected = " x ".join("D" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} should be {expected}, got shape {array.shape}")
    return array


def atomic_write(target: Path, write: Callable[[Any], None], *, binary: bool = False) -> None:
    """Write via `write(f)` into a temp file beside `target`, fsync it, then os.replace it onto
    `target`. On any error (or cancel) the temp file is removed and `target` is untouched.

    `f` is a UTF-8 text file (surrogateescape, no newline translation), or with `binary` a
    binary one (the Parquet export, models/export_parquet.py, writes through this too)."""
    text = {} if binary else {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}
    tmp = tempfile.NamedTemporaryFile(
        "wb" if binary else "w",
        **text,
        dir=target.parent,
        prefix=f".{target.name}.",
        suffix=".tmp",
        delete=False,
    )
    try:
        with tmp as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp.name, _mode_for(target))
        os.replace(tmp.name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    _fsync_dir(target.parent)


def _mode_for(target: Path) -> int:
    """Permissions for the new file: the old file's, else what open() would give (0666 & ~umask).
    NamedTemporaryFile creates 0600, which would make a shared export unreadable to others."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it (os.umask() would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); directories cannot be opened this way on Windows."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
