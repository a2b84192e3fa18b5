"""The session's way into a folder: show what was there last time at once, then check the folder.

A mixin of Session (app/session.py), which owns the state it sets (``roots``, ``collection``,
``coords`` and all that is derived from them). Opening runs the "index" job, which first reads
the folder's snapshot (models/snapshot.py): the collection and the map the user saw last time, a
few contiguous arrays, shown within a second or two even at 1M images. With no snapshot, a PCA
map of a sample of the cache's rows under the folder is shown instead (tasks.sample_map). The
job then scans the folder, encodes what is new or changed and returns the collection as it is
now. When a snapshot was shown, what changed is applied to it without a reset: the selection,
the preview, the query and the classes stay, images still there keep their place on the map and
new ones are placed among them (tasks.carry_over); an unchanged folder changes nothing. Without
a snapshot the index's collection is shown as before, with its PCA map at once and UMAP's when
it is done; a finished UMAP map is kept beside the snapshot for the next open.
"""
from __future__ import annotations

import gc
import os
import time
from typing import Sequence

import numpy as np
from PySide6.QtCore import QTimer

from clipscape.app import tasks
from clipscape.app.session_derived import Query, same_image
from clipscape.models.collection import Collection
from clipscape.models.indexer import IndexProgress

PREVIEW_INTERVAL_S = 5.0  # at least this long between maps of the encoded-so-far while encoding
FREEZE_ROWS = 100_000     # collections this big leave their objects to gc.freeze (see _take_collection)


class FolderJobs:
    """Opening folders for a Session (see the module docstring)."""

    def open(self, roots: Sequence[str], remember: bool = True) -> None:
        """Explore these folders/images (absolute paths); encoding starts once the model is ready."""
        self.roots = [os.path.abspath(os.fspath(p)) for p in roots]
        self.dataset = self.dataset_source = self.text_block = None
        if remember:
            self.settings.add_recent(self.roots)
        for name in ("index", "preview", "carry"):
            self.jobs.cancel(name)
        self._take_collection(None)
        self._set_skipped([])
        if self.encoder is None:
            if not self.jobs.is_running("model"):
                self.load_model()
            return
        self._say("Looking for images…", busy="index")
        self._next_preview = 0.0
        self.jobs.start("index", tasks.index_folder, list(self.roots), self.encoder, self.cache_dir,
                        self.batch_size, progressed=self._on_index_progress, succeeded=self._on_collection,
                        failed=self._failed("Encoding failed"), cancelled=self._on_index_cancelled)

    def _on_last_opened(self, last: tasks.LastOpened) -> None:
        """The snapshot read: show it while the index checks the folder. With none, a sample of
        the cache's rows under the folder gives a first map within seconds (tasks.sample_map)."""
        collection = last.collection
        if collection is None:
            self._start_preview(tasks.sample_map)
            return
        self._take_collection(collection)
        if last.saved_map is not None:
            self._on_coords(*last.saved_map)
        if self.map_kind != "umap":   # none kept, or only the PCA preview of an unfinished one
            self._start_projection(collection)
        self._say(f"{len(collection):,} images as last opened; checking the folder for changes…", busy="index")
        QTimer.singleShot(0, last.shown.set)   # the scan waits for this: after the slot and the paint it queued

    def _shows_snapshot(self) -> bool:
        """Whether the collection on screen came from the folder's snapshot and the index may update it."""
        return self.collection is not None and bool(self.collection.snapshot) and self.dataset is None

    def _on_index_progress(self, progress: IndexProgress | tasks.LastOpened) -> None:
        if isinstance(progress, tasks.LastOpened):
            self._on_last_opened(progress)
            return
        self.last_index = progress
        self._say(tasks.index_summary(progress), progress=(progress.done, max(1, progress.total)))
        self._set_skipped(progress.skipped)
        if (progress.stage == "encode" and progress.embedded and progress.done < progress.total
                and not self._shows_snapshot()   # the last map is on screen; no need for a preview
                and not self.jobs.is_running("preview") and time.monotonic() >= self._next_preview):
            self._start_preview()

    def _set_skipped(self, skipped) -> None:
        if [s.path for s in skipped] != [s.path for s in self.skipped]:
            self.skipped = list(skipped)
            self.skippedChanged.emit()

    def _start_preview(self, task=tasks.preview_map) -> None:
        """While encoding, now and then the map of what is encoded so far (PCA); ``task`` may be
        tasks.sample_map, a sample of what is cached, while a big folder is first read."""
        started = time.monotonic()

        def shown(result) -> None:
            if not result:   # nothing cached yet: the first encoded batches get the next one
                self._next_preview = 0.0
                return
            # the next one after 5 s, or 4× what this one took on a big folder
            self._next_preview = time.monotonic() + max(PREVIEW_INTERVAL_S, 4 * (time.monotonic() - started))
            if self.jobs.is_running("index") and len(result[0]) and not self._shows_snapshot():
                self._take_collection(result[0])
                self._on_coords(result[1], "pca")
                if task is tasks.sample_map:
                    self._say(f"Map of {len(result[0]):,} cached images, a sample; reading the others…",
                              busy="index")

        self._next_preview = float("inf")
        self.jobs.start("preview", task, list(self.roots), self.encoder, self.cache_dir,
                        succeeded=shown, failed=lambda _e: None)  # a failed preview is not worth a message

    def _on_index_cancelled(self) -> None:
        self._say("Encoding cancelled; finished batches are kept. Open the folder again to go on.", busy=None)
        if self._shows_snapshot():
            return   # what was there last time stays on screen
        self.jobs.start("index", tasks.cached_collection, list(self.roots), self.encoder, self.cache_dir,
                        succeeded=self._on_collection, failed=self._failed("Cannot read the cache"))

    def _on_collection(self, collection: Collection) -> None:
        self.jobs.cancel("preview")
        done = self.last_index
        if not len(collection):
            text = "No images found"
        elif self.dataset is not None:
            text = self.dataset.label
        elif done is not None and done.stage == "done":
            text = (f"{len(collection)} images ({done.embedded} encoded, {done.reused} from cache, "
                    f"{len(done.skipped)} skipped) in {done.seconds:.1f} s")
        else:
            text = f"{len(collection)} images"
        self._say(text, busy=None)
        if self._shows_snapshot() and len(collection):
            shown = self.collection
            if collection.snapshot and collection.snapshot == shown.snapshot:
                self._report_kept(done)    # the folder is as it was: nothing on screen changes
                return
            self._say(text + "; updating the map…", busy="carry")
            self.jobs.start("carry", tasks.carry_over, shown, collection, self.coords,
                            succeeded=lambda r: self._on_carried(shown, collection, *r, text=text),
                            failed=self._failed("Cannot update the collection"))
            self._report_kept(done)
            return
        self._take_collection(collection)
        self._report_kept(done)
        if len(collection):
            self._say(text + "; computing the map…", busy="project")
            self._start_projection(collection)

    def _start_projection(self, collection: Collection) -> None:
        self.jobs.start("project", tasks.project, collection.embeddings,
                        progressed=self._on_projection_progress, succeeded=self._on_umap,
                        failed=self._failed("Map failed"), cancelled=lambda: self._say("Map cancelled", busy=None))

    def _on_umap(self, coords: np.ndarray) -> None:
        self._on_coords(coords, "umap")
        self._keep_map()

    def _keep_map(self) -> None:
        """Save the map on screen beside the folder's snapshot, for the next open (a job: a disk write)."""
        c = self.collection
        if c is not None and c.snapshot and self.roots and self.dataset is None and self.coords is not None:
            self.jobs.start("keep map", tasks.save_map, list(self.roots), self.encoder, self.cache_dir, c.snapshot,
                            self.coords, self.map_kind, failed=lambda _e: None)   # losing it costs a UMAP

    def _on_carried(self, old: Collection, new: Collection, new_of_old: np.ndarray, coords, text: str) -> None:
        """The folder changed since its snapshot: take the new rows, keeping what still applies."""
        if self.collection is not old:
            return   # another folder, or another open, meanwhile
        for name in ("project", "query", "classes", "clusters"):
            self.jobs.cancel(name)
        kind = self.map_kind
        self.collection = new
        self.coords, self.map_kind = (coords, kind) if coords is not None else (None, "")
        self.scores = self.rank = self.classification = self.classified_with = self.cluster_ids = None
        moved = new_of_old[self.selection] if len(self.selection) else self.selection
        chosen = np.zeros(len(new), bool)
        chosen[moved[moved >= 0]] = True
        self.selection = np.flatnonzero(chosen).astype(np.int64, copy=False)
        self.previewed = int(new_of_old[self.previewed]) if self.previewed >= 0 else -1
        if self.query is not None and self.query.kind == "image":
            row = int(new_of_old[self.query.row])
            self.query = Query("image", self.query.text, row) if row >= 0 else None
        self._rows_changed(new)
        if kind == "umap" and coords is not None:
            self._say(f"{text}; the changes are on the map", busy=None)
            self._keep_map()
        else:   # UMAP had not finished: it starts again on the new rows
            self._say(f"{text}; computing the map…", busy="project")
            self._start_projection(new)

    def _take_collection(self, collection: Collection | None) -> None:
        """Show ``collection``: what was derived from the previous one is dropped, then redone."""
        for name in ("project", "query", "classes", "clusters", "carry"):
            self.jobs.cancel(name)
        old, self.collection = self.collection, collection
        self.coords, self.map_kind = None, ""
        self.scores = self.rank = self.classification = self.classified_with = self.cluster_ids = None
        self.selection = np.zeros(0, np.int64)
        self.previewed = same_image(old, collection, self.previewed)
        if self.query is not None and self.query.kind == "image":
            row = same_image(old, collection, self.query.row)
            self.query = Query("image", self.query.text, row) if row >= 0 else None
        self._rows_changed(collection)

    def _rows_changed(self, collection: Collection | None) -> None:
        """The collection's rows are other rows now: tell the views, redo what is derived from them."""
        self._freeze(collection)
        for signal in (self.collectionChanged, self.coordsChanged, self.selectionChanged, self.previewChanged):
            signal.emit()
        self._run_query()
        self._run_classes()
        if self.colour_mode == "cluster":
            self._run_clusters()

    @staticmethod
    def _freeze(collection: Collection | None) -> None:
        """After a big collection arrives, move every object alive now out of the cyclic collector's
        reach (gc.freeze): they live as long as the collection, and each full collection would walk
        them all while every thread waits. Objects freed later are still freed by their refcount.
        No gc.collect() first: at 1M it cost the GUI thread 46 ms, for garbage that is tiny beside
        what it spares the collector."""
        if collection is not None and len(collection) >= FREEZE_ROWS:
            gc.freeze()
