"""The session: the one owner of what the user is looking at, and of the jobs that compute it.

It holds the model, the collection and its map, the query and its scores, the classes and
their classification, the thresholds, the colour mode, hidden labels, the selection and the
previewed row. Each change emits its own signal; views (app/map, gallery, preview, search bar,
classes panel, status bar) draw from the session when it does and change it only through its
methods, so no view reads another and none keeps a copy that can go stale. The session builds
each job's request from its own state (ARCHITECTURE.md, threading rule 3), runs it in the
JobRunner, applies the result on the GUI thread and drops results a newer request superseded.
It imports no widget module: the window's dialogs are asked for through signals.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from clipscape.app import tasks
from clipscape.app.class_list import ClassEdit, ClassList
from clipscape.app.session_derived import UNCLUSTERED, DerivedState, Query
from clipscape.app.session_datasets import DatasetJobs
from clipscape.app.session_files import FileJobs
from clipscape.app.session_folders import FolderJobs
from clipscape.app.model_choice import Choice, describe
from clipscape.app.settings import Settings
from clipscape.app.workers import JobRunner
from clipscape.models.display import printable
from clipscape.models.collection import Collection
from clipscape.models.datasets import Embeddings
from clipscape.models.indexer import IndexProgress
from clipscape.models.weights import ModelUnavailable
from clipscape.models.zeroshot import Classification, unknown_label

COLOUR_MODES = ("class", "score", "cluster", "none")
REFINING = "Classes from one prompt; refining them with the 80-prompt ensemble…"


class Session(DerivedState, FolderJobs, FileJobs, DatasetJobs, QObject):
    """See the module docstring. Results are applied by the ``_on_*`` methods on the GUI thread."""

    modelChanged = Signal()          # model_choice / encoder / loading state
    collectionChanged = Signal()     # a new collection: rows mean other images now
    coordsChanged = Signal()
    queryChanged = Signal()          # the query, its scores (None while computing) or its rank
    classesChanged = Signal()        # names, colours, ensemble or unknown threshold
    classificationChanged = Signal()
    clustersChanged = Signal()
    colourModeChanged = Signal()
    dimThresholdChanged = Signal()
    hiddenChanged = Signal()
    selectionChanged = Signal()
    classFilterChanged = Signal()
    previewChanged = Signal()
    statusChanged = Signal()         # status text, busy job or its progress
    skippedChanged = Signal()
    errorRaised = Signal(str, str)   # title, message: the window shows a message box
    modelUnavailable = Signal(str)   # why: the window offers the demo model or a local folder
    exported = Signal(str, int)      # path, rows
    rowsKept = Signal(object)        # [Kept]: roots that came back empty; the window asks to forget them

    def __init__(self, settings: Settings, model: Choice, device: str = "auto", batch_size: int = 32,
                 cache_dir: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.settings, self.device, self.batch_size, self.cache_dir = settings, device, batch_size, cache_dir
        self.jobs = JobRunner(self)
        self.undo_stack = QUndoStack(self)
        self.model_choice, self.loading_choice, self.encoder = model, None, None
        self._remember_loading = True
        self.roots: list[str] = []
        self.dataset: Embeddings | None = None          # embeddings opened in place of a folder, and from where
        self.dataset_source = self.text_block = None     # text_block: why captions and classes cannot run now
        self.collection: Collection | None = None
        self.last_index: IndexProgress | None = None
        self.skipped: list = []
        self.coords: np.ndarray | None = None
        self.map_kind = ""
        self.query: Query | None = None
        self.scores: np.ndarray | None = None
        self.rank: np.ndarray | None = None   # rows best first (on a big collection at first only its head: tasks._head_first)
        self.class_list = ClassList()
        self.ensemble, self.unknown_threshold = True, 0.0
        self.classification: Classification | None = None
        self.classified_with: tuple | None = None      # (names, ensemble, threshold) it answers
        self.cluster_ids: np.ndarray | None = None
        self.colour_mode = "none"
        self.dim_threshold: float | None = None
        self.hidden: frozenset[str] = frozenset()
        self.selection = np.zeros(0, np.int64)
        self.class_filter: str | None = None
        self.previewed = -1
        self.status, self.busy, self.progress = "", None, None
        self._class_vectors: dict[tuple[str, bool], np.ndarray] = {}
        self._next_preview = 0.0

    # --- status --------------------------------------------------------------------------------
    def _say(self, text: str, busy: str | None | bool = False, progress=None) -> None:
        """Set the status text; ``busy`` names the job the progress bar and Cancel stand for."""
        self.status = text
        if busy is not False:
            self.busy = busy
        self.progress = progress
        self.statusChanged.emit()

    def cancel_busy(self) -> None:
        """The Cancel button: stop the job the progress bar shows (its `cancelled` slot still runs)."""
        job = self.jobs.get(self.busy) if self.busy else None
        if job is not None:
            job.cancel()

    def _failed(self, title: str, path: str | None = None):
        """A job's failure handler: status line and message box, naming ``path`` for an OSError."""
        def failed(error: BaseException) -> None:
            text = str(error).strip() or type(error).__name__
            if path is not None and isinstance(error, OSError) and error.strerror:
                text = f"{printable(path)}: {error.strerror}"
            self._say(f"{title}: {text}", busy=None)
            self.errorRaised.emit(title, text)
        return failed

    # --- the model ---------------------------------------------------------------------------
    def load_model(self, choice: Choice | None = None, remember: bool = True) -> None:
        """Load ``choice`` (default: the current one); the model in use stays until it has loaded.

        ``remember`` False keeps the saved choice (the demo model taken as a way out when the
        chosen model cannot be downloaded, say).
        """
        self.loading_choice = choice or self.model_choice
        self._remember_loading = remember
        self._say(f"Loading {describe(*self.loading_choice)}…", busy="model")
        self.modelChanged.emit()
        self.jobs.start("model", tasks.load_model, *self.loading_choice, self.device,
                        progressed=self._on_download, succeeded=self._on_model,
                        failed=self._on_model_failed, cancelled=self._on_model_cancelled)

    def _on_download(self, d: tasks.Download) -> None:
        mb = 1 << 20
        text = f"{d.done // mb} of {d.total // mb} MB" if d.total else f"{d.done // mb} MB"
        self._say(f"Downloading model weights: {text}", progress=(d.done // 1024, max(1, d.total // 1024)))

    def _on_model(self, encoder) -> None:
        choice, switched = self.loading_choice, self.encoder is not None
        self.encoder, self.model_choice, self.loading_choice = encoder, choice, None
        self._class_vectors.clear()
        if self._remember_loading:
            self.settings.set_model_choice(choice)
        self._say(f"Model ready: {describe(*choice)} on {encoder.device}", busy=None)
        self.modelChanged.emit()
        if self.dataset is not None:   # its embeddings stay; only what needs the text tower is redone
            self._check_text_model()
            self._run_query()
            self._run_classes()
        elif self.roots and (switched or self.collection is None):
            self.open(self.roots, remember=False)   # the folder seen through the new model

    def _on_model_failed(self, error: BaseException) -> None:
        choice, self.loading_choice = self.loading_choice, None
        self.modelChanged.emit()
        text = str(error).strip() or type(error).__name__
        kept = f" Still using {describe(*self.model_choice)}." if self.encoder is not None else ""
        self._say(f"Cannot load {describe(*choice)}: {text}{kept}", busy=None)
        if isinstance(error, ModelUnavailable):
            self.modelUnavailable.emit(text)
        else:
            self.errorRaised.emit("Cannot load the model", text)

    def _on_model_cancelled(self) -> None:
        choice, self.loading_choice = self.loading_choice, None
        self.modelChanged.emit()
        kept = (f"; still using {describe(*self.model_choice)}" if self.encoder is not None
                else ". Choose a model (Model ▸ Choose Model…) to go on")
        self._say(f"Loading {describe(*choice)} cancelled{kept}.", busy=None)

    # --- the map -----------------------------------------------------------------------------
    def _on_projection_progress(self, value) -> None:
        if isinstance(value, tuple) and value[0] == "pca":
            self._on_coords(value[1], "pca")
            self._say(f"Map: PCA of {len(value[1])} images; computing UMAP…")
        elif isinstance(value, tasks.MapProgress):
            self._say(value.text, progress=(value.done, max(1, value.total)))

    def _on_coords(self, coords: np.ndarray, kind: str) -> None:
        self.coords, self.map_kind = coords, kind
        if kind == "umap":
            self._say(f"Map: UMAP of {len(coords)} images", busy=None)
        self.coordsChanged.emit()

    # --- the query ---------------------------------------------------------------------------
    def set_caption(self, caption: str) -> None:
        """Rank by ``caption`` ("" clears a caption query); the map shows the scores."""
        caption = caption.strip()
        if not caption:
            if self.query is not None and self.query.kind == "text":
                self.clear_query()
            return
        self._set_query(Query("text", caption))

    def find_similar(self, row: int) -> None:
        """Rank every image by similarity to image ``row``."""
        if self.collection is not None and 0 <= row < len(self.collection):
            self._set_query(Query("image", self.collection.paths[row], row))

    def clear_query(self) -> None:
        self.jobs.cancel("query")
        self.query = self.scores = self.rank = None
        if self.colour_mode == "score":
            self._set_colour_mode("class" if self.class_list.names else "none")
        self.queryChanged.emit()

    def _set_query(self, query: Query) -> None:
        self.query, self.scores, self.rank = query, None, None
        self._set_colour_mode("score")
        self.queryChanged.emit()
        self._run_query()

    def _run_query(self) -> None:
        q, c = self.query, self.collection
        if q is None or c is None or not len(c) or self.encoder is None:
            return
        if q.kind == "text" and self.text_block is not None:
            self._say(self.text_block)
            return
        task, args = (tasks.caption_scores, (self.encoder, c, q.text)) if q.kind == "text" else (tasks.image_scores, (c, q.row))
        self.jobs.start("query", task, *args, progressed=lambda r: self._on_scores(q, r),
                        succeeded=lambda r: self._on_scores(q, r), failed=self._failed("Search failed"))

    def _on_scores(self, query: Query, result) -> None:
        """``result``: (scores, rank), and from the query job also the scores' colour bins and
        their (lowest, highest), made off the GUI thread."""
        if query == self.query:
            self.scores, self.rank = result[0], result[1]
            if len(result) > 2:
                self.seed("score_bins", (self.scores,), result[2])
                self.seed("score_range", (self.scores,), result[3])
            self.queryChanged.emit()

    # --- classes -----------------------------------------------------------------------------
    def add_classes(self, text: str | Sequence[str]) -> None:
        """Add names (a comma- or line-separated string, or a list); undoable."""
        self._edit_classes(self.class_list.add(text), "Add classes")

    def remove_classes(self, names: Sequence[str]) -> None:
        self._edit_classes(self.class_list.remove(names), "Remove classes")

    def rename_class(self, old: str, text: str) -> None:
        self._edit_classes(self.class_list.rename(old, text), "Rename class")

    def clear_classes(self) -> None:
        self._edit_classes(ClassList(), "Clear classes")

    def set_classes(self, names: Sequence[str]) -> None:
        """Replace the list (names still in it keep their colours); undoable."""
        self._edit_classes(self.class_list.replaced(names), "Set classes")

    def _edit_classes(self, new: ClassList, what: str) -> None:
        if new != self.class_list:
            self.undo_stack.push(ClassEdit(self._apply_class_list, self.class_list, new, what))

    def _apply_class_list(self, class_list: ClassList) -> None:
        """Undo/redo and every edit come here."""
        self.class_list = class_list
        self.hidden = frozenset(h for h in self.hidden if h in class_list.names or h == unknown_label(class_list.names)
                                or h.startswith("cluster ") or h == UNCLUSTERED)
        if self.class_filter is not None and self.class_filter not in (*class_list.names, unknown_label(class_list.names)):
            self.set_class_filter(None)
        if class_list.names:
            self._set_colour_mode("class")
        elif self.colour_mode == "class":
            self._set_colour_mode("none")
        self.classesChanged.emit()
        self._run_classes()

    def set_ensemble(self, on: bool) -> None:
        if bool(on) != self.ensemble:
            self.ensemble = bool(on)
            self.classesChanged.emit()
            self._run_classes()

    def set_unknown_threshold(self, value: float) -> None:
        value = min(1.0, max(0.0, float(value)))
        if value != self.unknown_threshold:
            self.unknown_threshold = value
            self.classesChanged.emit()
            self._run_classes()

    def _run_classes(self) -> None:
        names, c = list(self.class_list.names), self.collection
        if not names:
            self.jobs.cancel("classes")
            if self.classification is not None:
                self.classification = self.classified_with = None
                self._say("No classes")
                self.classificationChanged.emit()
            return
        if c is None or not len(c) or self.encoder is None:
            return
        if self.text_block is not None:
            self._say(self.text_block)
            return
        wanted = (tuple(names), self.ensemble, self.unknown_threshold)
        self.jobs.start("classes", tasks.classify, self.encoder, c.embeddings, names, self.ensemble,
                        self.unknown_threshold, dict(self._class_vectors), self.cache_dir,
                        progressed=lambda r: self._on_classes(wanted, r, final=False),
                        succeeded=lambda r: self._on_classes(wanted, r, final=True),
                        failed=self._failed("Classification failed"))

    def _on_classes(self, wanted: tuple, result, final: bool) -> None:
        classification, fresh = result
        self._class_vectors.update(fresh)
        self.classification = classification
        self.classified_with = (wanted[0], wanted[1] and final, wanted[2])
        n = len(wanted[0])
        if not final:
            self._say(REFINING)
        elif wanted[1]:
            self._say(f"{n} classes, each from the 80-prompt ensemble")
        else:
            self._say(f"{n} classes, each from the single prompt “a photo of a {{}}.”")
        self.classificationChanged.emit()
        self._visibility_changed()

    # --- clusters, colours, thresholds, hiding -----------------------------------------------
    def set_colour_mode(self, mode: str) -> None:
        """What the map's colours show: "class", "score", "cluster" or "none"."""
        self._set_colour_mode(mode)

    def _set_colour_mode(self, mode: str) -> None:
        if mode not in COLOUR_MODES:
            raise ValueError(f"colour mode must be one of {COLOUR_MODES}, not {mode!r}")
        if mode != self.colour_mode:
            self.colour_mode = mode
            self.colourModeChanged.emit()
            self._visibility_changed()
            if mode == "cluster" and self.cluster_ids is None:
                self._run_clusters()

    def _run_clusters(self) -> None:
        if self.collection is not None and len(self.collection) and not self.jobs.is_running("clusters"):
            self.jobs.start("clusters", tasks.clusters, self.collection.embeddings,
                            succeeded=self._on_clusters, failed=self._failed("Clustering failed"))

    def _on_clusters(self, ids: np.ndarray) -> None:
        self.cluster_ids = ids
        self.clustersChanged.emit()
        self._visibility_changed()

    def set_dim_threshold(self, value: float | None) -> None:
        """Dim the images scoring below ``value`` on the map and in the gallery (None: none)."""
        value = None if value is None else float(value)
        if value != self.dim_threshold:
            self.dim_threshold = value
            self.dimThresholdChanged.emit()

    def set_label_hidden(self, label: str, hidden: bool) -> None:
        """Hide (or show) the images of a legend label, on the map and in the gallery."""
        new = self.hidden | {label} if hidden else self.hidden - {label}
        if new != self.hidden:
            self.hidden = frozenset(new)
            self.hiddenChanged.emit()
            self._visibility_changed()

    def _visibility_changed(self) -> None:
        """Hidden images leave the selection (what is selected is always on the map)."""
        if len(self.selection):
            kept = self.selection[self.visible()[self.selection]]
            if len(kept) != len(self.selection):
                self.selection = kept
                self.selectionChanged.emit()

    def set_class_filter(self, name: str | None) -> None:
        if name != self.class_filter:
            self.class_filter = name
            self.classFilterChanged.emit()

    # --- selection and preview ---------------------------------------------------------------
    def set_selection(self, rows: np.ndarray, add: bool = False) -> None:
        """Select these rows (hidden ones are left out); ``add`` keeps what was selected. As sorted
        unique int64 rows, from an N-bool mask: no sort (np.unique of 500k rows took 0.4 s)."""
        if self.collection is None:
            return
        rows, chosen = np.asarray(rows, dtype=np.int64).reshape(-1), np.zeros(len(self.collection), bool)
        if rows.size and (rows.min() < 0 or rows.max() >= len(chosen)):
            raise IndexError("row out of range")
        chosen[rows] = chosen[self.selection if add else []] = True
        rows = np.flatnonzero(chosen & self.visible()).astype(np.int64, copy=False)
        if not np.array_equal(rows, self.selection):
            self.selection = rows
            self.selectionChanged.emit()

    def clear_selection(self) -> None:
        self.set_selection(np.zeros(0, np.int64))

    def set_preview(self, row: int) -> None:
        """Show image ``row`` in the Preview panel (-1: none)."""
        row = int(row) if self.collection is not None and 0 <= row < len(self.collection) else -1
        if row != self.previewed:
            self.previewed = row
            self.previewChanged.emit()

    def shutdown(self) -> None:
        """Cancel every job and wait for it (the window is closing)."""
        self.jobs.shutdown()

