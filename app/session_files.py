"""The session's jobs that write files rather than change what the views show: exporting a CSV
or Parquet file, and forgetting the cached embeddings of a folder the user confirmed is gone.

A mixin of Session (app/session.py), which owns the state these jobs read; they report back
through its status line and its ``exported`` / ``rowsKept`` signals.
"""
from __future__ import annotations

import numpy as np

from clipscape.app import tasks
from clipscape.models.display import printable
from clipscape.models.export_parquet import model_record
from clipscape.models.indexer import IndexProgress, Kept


PARQUET_SUFFIX = ".parquet"


def is_parquet(path: str) -> bool:
    """Whether an export to `path` writes Parquet (its suffix says so) rather than CSV."""
    return path.lower().endswith(PARQUET_SUFFIX)


class FileJobs:
    """Export and cache housekeeping for a Session (see the module docstring)."""

    # --- export ------------------------------------------------------------------------------
    def export(self, path: str, selection_only: bool) -> None:
        """Write the CSV of every image (or of the selection) in a job, or with a .parquet suffix
        the Parquet file, thumbnails and model record included; `exported` when done."""
        if self.collection is None:
            return
        rows = self.selection if selection_only else np.arange(len(self.collection))
        self._say(f"Writing {len(rows)} rows to {path}…", busy="export")
        if is_parquet(path):
            # the record is read from what the encoder carries; it builds no model (export_parquet.model_record)
            dim = self.collection.embeddings.shape[1]
            record = model_record(self.encoder, dim)
            if record is not None and record.dim != dim:   # not this model's vectors: no record, not a wrong one
                record = None
            task, extra = tasks.export_parquet, (record, True)   # model, thumbnails (no neighbours)
        else:
            task, extra = tasks.export_csv, ()
        self.jobs.start("export", task, path, self.collection, rows, self.coords, self.classification,
                        self.scores, *extra, progressed=lambda v: self._say(self.status, progress=v),
                        succeeded=lambda n: self._on_exported(path, n), failed=self._failed("Export failed", path),
                        cancelled=lambda: self._say("Export cancelled; nothing written.", busy=None))

    def _on_exported(self, path: str, rows: int) -> None:
        self._say(f"Wrote {rows} rows to {path}", busy=None)
        self.exported.emit(path, rows)

    # --- cached rows the scan could not prove gone -------------------------------------------------
    def _report_kept(self, progress: IndexProgress | None) -> None:
        """After an encode: ask (through ``rowsKept``) about roots that came back empty."""
        empty = [k for k in (progress.kept if progress is not None else []) if k.reason == "empty"]
        if empty:
            names = ", ".join(printable(k.path) for k in empty)
            self._say(f"{self.status} in {names}; its {sum(k.rows for k in empty)} cached embeddings are kept",
                      busy=None)
            self.rowsKept.emit(empty)

    def forget_kept(self, kept: list[Kept]) -> None:
        """The user confirmed these folders' images are gone: forget their cached embeddings."""
        if self.encoder is None or not kept:
            return
        names = ", ".join(printable(k.path) for k in kept)
        self._say(f"Forgetting the cached embeddings of {names}…", busy="forget")
        self.jobs.start("forget", tasks.forget_empty, [k.path for k in kept], self.encoder, self.cache_dir,
                        succeeded=lambda n: self._say(f"Forgot {n} cached embeddings of {names}", busy=None),
                        failed=self._failed("Cannot forget the cached embeddings"))
