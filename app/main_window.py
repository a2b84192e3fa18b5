"""The Clipscape window: a folder of images becomes a map, a ranked gallery and zero-shot classes.

The window owns the state of what is shown (the collection, its map coordinates, the current
query's scores, the classification, the selection) and applies it to the views. Everything that
reads files, runs the model or UMAP happens in jobs (app/tasks.py via app/workers.py); their
results come back here on the GUI thread, and a result a newer request has superseded is dropped.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QPushButton, QSplitter, QStackedWidget, QTabWidget,
                               QVBoxLayout, QWidget)

from clipscape.app import tasks
from clipscape.app.classes_panel import ClassesPanel
from clipscape.app.gallery import Gallery
from clipscape.app.map_view import MapView
from clipscape.app.model_picker import (DEMO, ModelPicker, ModelUnavailableDialog, describe, load_model_choice,
                              save_model_choice)
from clipscape.app.preview import PreviewPanel
from clipscape.app.search_bar import SearchBar
from clipscape.app.skipped_panel import SkippedPanel
from clipscape.app.thumbnails import ThumbnailCache
from clipscape.app.workers import JobRunner
from clipscape.models.indexer import Collection, IndexProgress
from clipscape.models.weights import ModelUnavailable

from clipscape.resources import ICON  # noqa: E402
RECENT_MAX = 10
CLASSES_DEBOUNCE_MS = 100
TOP_K = 10
PREVIEW_INTERVAL_S = 5.0  # at least this long between maps of the encoded-so-far while encoding
REFINING = "Classes from one prompt; refining them with the 80-prompt ensemble…"


class MainWindow(QMainWindow):
    """Drop a folder, watch it encode, explore the map, search, classify, export."""

    collectionReady = Signal()   # a folder's collection is loaded (encode finished or cancelled)
    mapReady = Signal(str)       # "pca" or "umap": coordinates were applied to the map
    recoloured = Signal()        # the map's colours were updated (query, classes, mode, threshold)
    classified = Signal()        # a classification was applied (a quick one, then the final one)
    exported = Signal(str)       # path of a CSV just written

    def __init__(self, settings: QSettings | None = None, model: tuple[str, str | None] | None = None,
                 device: str = "auto", batch_size: int = 32, cache_dir: str | None = None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings("Clipscape", "Clipscape")
        self._remember_model = model is None
        self.model_choice = model or load_model_choice(self.settings)
        self.device, self.batch_size, self.cache_dir = device, batch_size, cache_dir
        self.jobs = JobRunner(self)
        self.encoder = None
        self.roots: list[str] = []
        self.collection: Collection | None = None
        self.coords: np.ndarray | None = None
        self.map_kind = ""
        self.scores: np.ndarray | None = None
        self.query: tuple[str, object] | None = None   # ("text", caption) or ("image", row)
        self.classification = None
        self.cluster_ids: np.ndarray | None = None
        self.selection = np.zeros(0, np.int64)
        self.last_index: IndexProgress | None = None
        self.error_box: QMessageBox | None = None
        self.model_dialog: ModelUnavailableDialog | None = None
        self._class_vectors: dict[tuple[str, bool], np.ndarray] = {}
        self._open_when_loaded = False
        self._next_preview = 0.0
        self.setWindowTitle("Clipscape")
        self.setWindowIcon(QIcon(str(ICON)))
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self._build_views()
        self._build_menus()
        self._build_status()
        self._connect()
        self._load_model()
        tasks.umap_server()  # a child process compiles UMAP now, before the first map is wanted

    # --- construction -------------------------------------------------------------------------

    def _build_views(self) -> None:
        self.thumbnails = ThumbnailCache(size=160, parent=self)
        self.search_bar = SearchBar()
        self.map = MapView()
        self.gallery = Gallery(self.thumbnails)
        self.classes = ClassesPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.gallery, "Gallery")
        self.tabs.addTab(self.classes, "Classes")
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.map)
        splitter.addWidget(self.tabs)
        splitter.setSizes([760, 520])
        self.drop_hint = QLabel("Drop a folder of images here\nor choose File ▸ Open Folder… (Ctrl+O)")
        self.drop_hint.setAlignment(Qt.AlignCenter)
        self.drop_hint.setStyleSheet("font-size: 18pt; color: #777;")
        explorer = QWidget()
        column = QVBoxLayout(explorer)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.search_bar)
        column.addWidget(splitter, 1)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.drop_hint)
        self.pages.addWidget(explorer)
        self.setCentralWidget(self.pages)
        self.preview = PreviewPanel()
        self.preview_dock = self._dock("Preview", self.preview, Qt.RightDockWidgetArea)
        self.skipped_panel = SkippedPanel()
        self.skipped_dock = self._dock("Skipped files", self.skipped_panel, Qt.BottomDockWidgetArea)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        dock.hide()
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open Folder…", self.choose_folder, QKeySequence.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        self.export_all_action = self._action(file_menu, "&Export CSV…", lambda: self.export(False), "Ctrl+E")
        self.export_selection_action = self._action(file_menu, "Export &Selection as CSV…",
                                                    lambda: self.export(True), "Ctrl+Shift+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.Quit)
        model_menu = self.menuBar().addMenu("&Model")
        self._action(model_menu, "&Choose Model…", self.choose_model, "Ctrl+M")
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(self.preview_dock.toggleViewAction())
        view_menu.addAction(self.skipped_dock.toggleViewAction())
        self._update_recent_menu()
        self._update_actions()

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.status = QLabel("Loading model…")
        self.progress = QProgressBar(maximumWidth=220, textVisible=True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel")
        self.skipped_button = QPushButton("")
        self.skipped_button.setFlat(True)
        self.model_button = QPushButton(describe(*self.model_choice))
        self.model_button.setFlat(True)
        self.model_button.setToolTip("The model in use; click to choose another")
        bar.addWidget(self.status, 1)
        for w in (self.progress, self.cancel_button, self.skipped_button, self.model_button):
            bar.addPermanentWidget(w)
        self._set_busy(None)
        self.skipped_button.hide()

    def _connect(self) -> None:
        self.cancel_button.clicked.connect(self.cancel_work)
        self.skipped_button.clicked.connect(lambda: self.skipped_dock.setVisible(True))
        self.model_button.clicked.connect(self.choose_model)
        self.search_bar.queryChanged.connect(self._on_caption)
        self.search_bar.similarCleared.connect(lambda: self._set_scores(None, None))
        self.search_bar.thresholdChanged.connect(self._on_threshold)
        self.search_bar.colourModeChanged.connect(lambda _m: self._recolour())
        self._classes_debounce = QTimer(self, singleShot=True, interval=CLASSES_DEBOUNCE_MS)
        self._classes_debounce.timeout.connect(self._run_classes)
        self.classes.changed.connect(self._classes_debounce.start)
        self.map.selectionChanged.connect(self._on_selection)
        self.map.pointClicked.connect(self.show_preview)
        self.map.set_hover_provider(self._hover_card)
        self.thumbnails.ready.connect(self._on_thumbnail)
        self.gallery.activated.connect(self.show_preview)
        self.preview.findSimilar.connect(self.find_similar)

    # --- opening folders --------------------------------------------------------------------

    def choose_folder(self) -> None:
        """File ▸ Open Folder…"""
        folder = self._ask_folder()
        if folder:
            self.open_paths([folder])

    def _ask_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Open a folder of images", self._last_folder())

    def open_paths(self, paths: Sequence[str]) -> bool:
        """Explore these folders and/or image files; encoding starts as soon as the model is ready."""
        roots = [os.path.abspath(os.fspath(p)) for p in paths]
        missing = [p for p in roots if not os.path.exists(p)]
        if missing:
            self.show_error("Cannot open", f"No such file or folder: {missing[0]}")
            return False
        self.roots = roots
        self._remember_recent(roots)
        self.setWindowTitle(f"Clipscape — {self._roots_label()}")
        self._reset_collection()
        self.pages.setCurrentIndex(1)
        if self.encoder is None:
            self._open_when_loaded = True
            if not self.jobs.is_running("model"):
                self._load_model()
        else:
            self._start_index()
        return True

    def _roots_label(self) -> str:
        names = [Path(p).name or p for p in self.roots]
        return names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"

    def _reset_collection(self) -> None:
        """Nothing shown: a new folder (or model) is on its way."""
        for name in ("index", "preview"):
            self.jobs.cancel(name)
        self.thumbnails.cancel_pending()
        self._drop_derived()
        self.collection = None
        self.map.clear()
        self.gallery.set_collection([])
        self.preview.clear()
        self._show_skipped([])
        self._update_actions()

    def _drop_derived(self) -> None:
        """Forget what was computed from the current collection (map, scores, classes, clusters, selection)."""
        for name in ("project", "query", "classes", "clusters"):
            self.jobs.cancel(name)
        self.coords, self.map_kind = None, ""
        self.scores, self.classification, self.cluster_ids = None, None, None
        self.selection = np.zeros(0, np.int64)
        if self.query is not None and self.query[0] == "image":  # a row of the old collection
            self.query = None
            self.search_bar.show_similar(None)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = self._dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    @staticmethod
    def _dropped_paths(mime) -> list[str]:
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

    # --- recent folders ------------------------------------------------------------------------

    def recent(self) -> list[list[str]]:
        value = self.settings.value("recent/entries", [])
        entries = value if isinstance(value, list) else [value]
        return [e.split("\n") for e in entries if e]

    def _remember_recent(self, roots: list[str]) -> None:
        key = "\n".join(roots)
        entries = [key] + ["\n".join(e) for e in self.recent() if "\n".join(e) != key]
        self.settings.setValue("recent/entries", entries[:RECENT_MAX])
        self._update_recent_menu()

    def _last_folder(self) -> str:
        recent = self.recent()
        return recent[0][0] if recent else str(Path.home())

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        for roots in self.recent():
            label = roots[0] if len(roots) == 1 else f"{roots[0]} (+{len(roots) - 1})"
            action = self.recent_menu.addAction(label)
            action.setEnabled(all(os.path.exists(p) for p in roots))
            action.triggered.connect(lambda _c=False, r=roots: self.open_paths(r))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    # --- the model ----------------------------------------------------------------------------

    def choose_model(self) -> None:
        picker = ModelPicker(self.model_choice, self)
        picker.accepted.connect(lambda: self.set_model(picker.choice()))
        picker.open()
        self.model_picker = picker

    def set_model(self, choice: tuple[str, str | None], remember: bool = True) -> None:
        """Switch to another model; the open folder is encoded again with it (from its cache if there)."""
        self.model_choice = choice
        if remember:
            save_model_choice(self.settings, *choice)
        self.model_button.setText(describe(*choice))
        self.encoder = None
        self._class_vectors.clear()
        if self.roots:
            self._reset_collection()
            self._open_when_loaded = True
        self._load_model()

    def _load_model(self) -> None:
        self.status.setText(f"Loading {describe(*self.model_choice)}…")
        self._set_busy("model")
        self.jobs.start("model", tasks.load_model, *self.model_choice, self.device,
                        progressed=self._on_download, succeeded=self._on_model,
                        failed=self._on_model_failed, cancelled=self._on_model_cancelled)

    def _on_download(self, d: tasks.Download) -> None:
        mb = 1 << 20
        self.status.setText(f"Downloading model weights: {d.done // mb} of {d.total // mb} MB" if d.total
                            else f"Downloading model weights: {d.done // mb} MB")
        self.progress.setRange(0, max(1, d.total // 1024))
        self.progress.setValue(d.done // 1024)

    def _on_model(self, encoder) -> None:
        self.encoder = encoder
        self._set_busy(None)
        self.status.setText(f"Model ready: {describe(*self.model_choice)} on {encoder.device}")
        if self._open_when_loaded and self.roots:
            self._open_when_loaded = False
            self._start_index()

    def _on_model_failed(self, error: BaseException) -> None:
        self._set_busy(None)
        if not isinstance(error, ModelUnavailable):
            self.show_error("Cannot load the model", _message(error))
            return
        self.status.setText("No model: " + _message(error))
        self.model_dialog = ModelUnavailableDialog(_message(error), self)
        self.model_dialog.finished.connect(self._on_model_dialog)
        self.model_dialog.open()

    def _on_model_dialog(self, _result: int) -> None:
        choice = self.model_dialog.result_choice()
        if choice == "demo":
            self.set_model(DEMO, remember=False)
        elif choice == "local":
            folder = self._ask_model_folder()
            if folder:
                self.set_model((f"local-dir:{folder}", None))

    def _ask_model_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Choose an open_clip model folder")

    def _on_model_cancelled(self) -> None:
        self._set_busy(None)
        self.status.setText("Model download cancelled. Choose a model (Model ▸ Choose Model…) to go on.")

    # --- encoding -----------------------------------------------------------------------------

    def _start_index(self) -> None:
        self.status.setText("Looking for images…")
        self._next_preview = 0.0
        self._set_busy("index")
        self.jobs.start("index", tasks.index_folder, list(self.roots), self.encoder, self.cache_dir,
                        self.batch_size, progressed=self._on_index_progress, succeeded=self._on_collection,
                        failed=self._on_job_failed("Encoding failed"), cancelled=self._on_index_cancelled)

    def _on_index_progress(self, progress: IndexProgress) -> None:
        self.last_index = progress
        self.status.setText(tasks.index_summary(progress))
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)
        self._show_skipped(progress.skipped)
        self._maybe_preview(progress)

    def _show_skipped(self, skipped) -> None:
        self.skipped_panel.set_skipped(skipped)
        self.skipped_button.setText(f"{len(skipped)} skipped")
        self.skipped_button.setVisible(bool(skipped))

    def _on_index_cancelled(self) -> None:
        self.status.setText("Encoding cancelled; finished batches are kept. Open the folder again to go on.")
        self.jobs.start("index", tasks.cached_collection, list(self.roots), self.encoder, self.cache_dir,
                        succeeded=self._on_collection, failed=self._on_job_failed("Cannot read the cache"))

    def _maybe_preview(self, progress: IndexProgress) -> None:
        """While encoding, now and then show the map of what is encoded so far (PCA)."""
        if (progress.stage != "encode" or not progress.embedded or progress.done >= progress.total
                or self.jobs.is_running("preview") or time.monotonic() < self._next_preview):
            return
        started = time.monotonic()

        def shown(result) -> None:
            # the next one after 5 s, or 4× what this one took on a big folder
            self._next_preview = time.monotonic() + max(PREVIEW_INTERVAL_S, 4 * (time.monotonic() - started))
            self._on_preview(result)

        self._next_preview = float("inf")
        self.jobs.start("preview", tasks.preview_map, list(self.roots), self.encoder, self.cache_dir,
                        succeeded=shown, failed=lambda _e: None)  # a failed preview is not worth a message

    def _on_preview(self, result) -> None:
        collection, coords = result
        if not self.jobs.is_running("index") or not len(collection):
            return
        self._take_collection(collection)
        self._apply_coords(coords, "pca")
        self._refresh_gallery()

    def _on_collection(self, collection: Collection) -> None:
        self._set_busy(None)
        self.jobs.cancel("preview")
        self._take_collection(collection)
        done = self.last_index
        if done is not None and done.stage == "done":
            self.status.setText(f"{len(collection)} images ({done.embedded} encoded, {done.reused} from cache, "
                                f"{len(done.skipped)} skipped) in {done.seconds:.1f} s")
        self.collectionReady.emit()
        if not len(collection):
            self.status.setText("No images found in " + self._roots_label())
            return
        self._start_projection()
        self._refresh_gallery()

    def _take_collection(self, collection: Collection) -> None:
        """Show ``collection``: what was derived from the previous one (map, scores, classes) is redone."""
        self._drop_derived()
        self.collection = collection
        self.gallery.set_collection(collection.paths)
        self._update_actions()
        if len(collection):
            if self.classes.classes():   # redo for the new collection, keeping the colour mode
                self._run_classes(user_edit=False)
            if self.query is not None:
                self._on_caption(self.query[1], user_edit=False)

    # --- the map ------------------------------------------------------------------------------

    def _start_projection(self) -> None:
        self._set_busy("project")
        self.jobs.start("project", tasks.project, self.collection.embeddings,
                        progressed=self._on_projection_progress, succeeded=self._on_umap,
                        failed=self._on_job_failed("Map failed"), cancelled=lambda: self._set_busy(None))

    def _on_projection_progress(self, value) -> None:
        if isinstance(value, tuple) and value[0] == "pca":
            self._apply_coords(value[1], "pca")
            self.status.setText("Map: PCA preview; computing UMAP…")
        elif isinstance(value, tasks.MapProgress):
            self.status.setText("Map: finding neighbours…" if value.stage == "neighbours"
                                else f"Map: UMAP layout, epoch {value.done} of {value.total}")
            self.progress.setRange(0, max(1, value.total))
            self.progress.setValue(value.done)

    def _on_umap(self, coords: np.ndarray) -> None:
        self._set_busy(None)
        self._apply_coords(coords, "umap")
        self.status.setText(f"Map: UMAP of {len(coords)} images")

    def _apply_coords(self, coords: np.ndarray, kind: str) -> None:
        first = self.coords is None
        self.coords, self.map_kind = coords, kind
        self.map.set_coords(coords, reset_view=True)
        if first:
            self._recolour()
        self.mapReady.emit(kind)

    def _recolour(self) -> None:
        mode = self.search_bar.colour_mode()
        if self.coords is None:
            return
        if mode == "class" and self.classification is not None:
            c = self.classification
            self.map.show_classes(c.best, c.classes, c.counts())
        elif mode == "score" and self.scores is not None:
            self.map.show_scores(self.scores, top_k=TOP_K, threshold=self.search_bar.score_threshold())
        elif mode == "cluster":
            if self.cluster_ids is None:  # _on_clusters comes back here
                if self.collection is not None and not self.jobs.is_running("clusters"):
                    self.jobs.start("clusters", tasks.clusters, self.collection.embeddings,
                                    succeeded=self._on_clusters, failed=self._on_job_failed("Clustering failed"))
                return
            self.map.show_clusters(self.cluster_ids)
        else:
            self.map.show_plain()
        self.recoloured.emit()

    def _on_clusters(self, ids: np.ndarray) -> None:
        self.cluster_ids = ids
        self._recolour()

    def _on_threshold(self, _threshold) -> None:
        self._recolour()
        self._refresh_gallery()

    def _on_selection(self, rows: np.ndarray) -> None:
        self.selection = np.asarray(rows, dtype=np.int64)
        self._update_actions()
        if len(self.selection):
            self.status.setText(f"{len(self.selection)} images selected")
        self._refresh_gallery()

    def _hover_card(self, row: int):
        if self.collection is None or not 0 <= row < len(self.collection):
            return None, ""
        path = self.collection.paths[row]
        return self.thumbnails.get(path), self._describe_row(row)

    def _describe_row(self, row: int) -> str:
        lines = [Path(self.collection.paths[row]).name]
        if self.classification is not None:
            c = self.classification
            lines.append(f"class: {c.label(row)} ({c.confidence[row]:.2f})")
        if self.scores is not None:
            lines.append(f"score: {self.scores[row]:.3f}")
        return "\n".join(lines)

    def _on_thumbnail(self, path: str) -> None:
        row = self.map.hovered_row()
        if self.collection is not None and 0 <= row < len(self.collection) and self.collection.paths[row] == path:
            self.map.refresh_hover()

    # --- queries ------------------------------------------------------------------------------

    def _on_caption(self, caption: str, user_edit: bool = True) -> None:
        """Rank by ``caption``; a user's query also switches the map to score colours."""
        if not caption:
            if self.query is not None and self.query[0] == "text":
                self._set_scores(None, None)
            return
        self.query = ("text", caption)
        self.search_bar.show_similar(None)
        if self.collection is None or self.encoder is None or not len(self.collection):
            return
        self.jobs.start("query", tasks.caption_scores, self.encoder, self.collection, caption,
                        succeeded=lambda s: self._set_scores(s, ("text", caption), user_edit),
                        failed=self._on_job_failed("Search failed"))

    def find_similar(self, row: int) -> None:
        """Rank every image by similarity to image ``row``."""
        if self.collection is None or not 0 <= row < len(self.collection):
            return
        self.search_bar.caption.clear()
        self.search_bar.show_similar(Path(self.collection.paths[row]).name)
        self.jobs.start("query", tasks.image_scores, self.collection, row,
                        succeeded=lambda s: self._set_scores(s, ("image", row)),
                        failed=self._on_job_failed("Search failed"))

    def _set_scores(self, scores: np.ndarray | None, query, user_edit: bool = True) -> None:
        self.jobs.cancel("query")
        self.scores, self.query = scores, query
        if scores is not None and user_edit:
            self.search_bar.set_colour_mode("score", notify=False)
        elif self.search_bar.colour_mode() == "score":
            self.search_bar.set_colour_mode("class" if self.classification is not None else "none", notify=False)
        self._recolour()
        self._refresh_gallery()

    # --- zero-shot classes --------------------------------------------------------------------

    def _run_classes(self, user_edit: bool = True) -> None:
        """Classify into the panel's classes; after a user's edit the map switches to class colours."""
        self._classes_debounce.stop()
        names = self.classes.classes()
        if not names:
            self.jobs.cancel("classes")
            self._apply_classification(None)
            return
        if self.collection is None or self.encoder is None or not len(self.collection):
            return
        self.jobs.start("classes", tasks.classify, self.encoder, self.collection.embeddings, names,
                        self.classes.ensemble(), self.classes.threshold(), dict(self._class_vectors),
                        self.cache_dir, progressed=lambda r: self._on_classes_preview(r, user_edit),
                        succeeded=lambda r: self._on_classified(r, user_edit),
                        failed=self._on_job_failed("Classification failed"))

    def _on_classes_preview(self, result, user_edit: bool = True) -> None:
        """The single-template answer, shown while the 80-prompt ensemble is computed."""
        self._take_classes(result, user_edit)
        self.status.setText(REFINING)

    def _on_classified(self, result, user_edit: bool = True) -> None:
        self._take_classes(result, user_edit)
        if self.status.text() == REFINING:
            self.status.setText("Classes refined with the 80-prompt ensemble")
        self.classified.emit()

    def _take_classes(self, result, user_edit: bool) -> None:
        classification, fresh = result
        self._class_vectors.update(fresh)
        self._apply_classification(classification, user_edit)

    def _apply_classification(self, classification, user_edit: bool = True) -> None:
        self.classification = classification
        counts = classification.counts() if classification is not None else {}
        self.classes.set_counts(counts)
        self.gallery.set_classes(list(classification.classes) if classification is not None else [])
        if classification is not None and user_edit:
            self.search_bar.set_colour_mode("class", notify=False)  # show what the user just edited
        self._recolour()
        self._refresh_gallery()

    # --- gallery and preview ------------------------------------------------------------------

    def _refresh_gallery(self) -> None:
        if self.collection is None:
            return
        rows = self.selection if len(self.selection) else np.arange(len(self.collection))
        if self.scores is not None:
            rows = rows[np.argsort(-self.scores[rows], kind="stable")]
        labels = self.classification.labels if self.classification is not None else None
        self.gallery.show_rows(rows.tolist(), scores=self.scores, labels=labels,
                               threshold=self.search_bar.score_threshold(), title=self._gallery_title())

    def _gallery_title(self) -> str:
        parts = [f"{len(self.selection)} selected" if len(self.selection) else f"{len(self.collection)} images"]
        if self.query is not None and self.scores is not None:
            kind, what = self.query
            parts.append(f"ranked by “{what}”" if kind == "text"
                         else f"ranked by similarity to {Path(self.collection.paths[what]).name}")
        return ", ".join(parts)

    def show_preview(self, row: int) -> None:
        """Show image ``row`` large in the preview panel, with its class and score."""
        if self.collection is None or not 0 <= row < len(self.collection):
            return
        c = self.classification
        self.preview.show_image(row, self.collection.paths[row],
                                label=c.label(row) if c is not None else None,
                                probability=float(c.confidence[row]) if c is not None else None,
                                score=float(self.scores[row]) if self.scores is not None else None)
        self.preview_dock.show()

    # --- export -------------------------------------------------------------------------------

    def export(self, selection_only: bool) -> None:
        """Ask where, then write the CSV of all images or of the selection in a job."""
        if self.collection is None or (selection_only and not len(self.selection)):
            return
        path = self._ask_save_path("clipscape-selection.csv" if selection_only else "clipscape.csv")
        if path:
            self.export_to(path, selection_only)

    def _ask_save_path(self, name: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", str(Path(self._last_folder()) / name),
                                              "CSV files (*.csv)")
        return path

    def export_to(self, path: str, selection_only: bool) -> None:
        rows = self.selection if selection_only else np.arange(len(self.collection))
        self._set_busy("export")
        self.status.setText(f"Writing {len(rows)} rows to {path}…")
        self.jobs.start(
            "export", tasks.export_csv, path, self.collection, rows, self.coords, self.classification, self.scores,
            progressed=self._on_export_progress, succeeded=lambda n: self._on_exported(path, n),
            failed=self._on_job_failed("Export failed"),
            cancelled=lambda: (self._set_busy(None), self.status.setText("Export cancelled; nothing written.")))

    def _on_export_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_exported(self, path: str, rows: int) -> None:
        self._set_busy(None)
        self.status.setText(f"Wrote {rows} rows to {path}")
        self.exported.emit(path)

    # --- jobs, errors, closing ----------------------------------------------------------------

    def _set_busy(self, job: str | None) -> None:
        """Show the progress bar and Cancel button while ``job`` runs (None hides them)."""
        self._busy = job
        self.progress.setVisible(job is not None)
        self.cancel_button.setVisible(job is not None)
        self.progress.setRange(0, 0)

    def cancel_work(self) -> None:
        """The Cancel button: stop whatever the progress bar shows."""
        job = self.jobs.get(self._busy) if self._busy is not None else None
        if job is not None:
            job.cancel()  # the job stays current, so its `cancelled` slot still runs

    def _on_job_failed(self, title: str):
        def failed(error: BaseException) -> None:
            self._set_busy(None)
            self.show_error(title, _message(error))
        return failed

    def show_error(self, title: str, text: str) -> None:
        """A message the user must see; it does not block the window."""
        self.status.setText(f"{title}: {text}")
        self.error_box = QMessageBox(QMessageBox.Warning, title, text, QMessageBox.Ok, self)
        self.error_box.open()

    def _update_actions(self) -> None:
        has = self.collection is not None and len(self.collection) > 0
        self.export_all_action.setEnabled(has)
        self.export_selection_action.setEnabled(has and len(self.selection) > 0)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Cancel every job and wait for it, so no worker thread outlives the window."""
        for dialog in (self.error_box, self.model_dialog, getattr(self, "model_picker", None)):
            if dialog is not None:
                dialog.close()
        self.jobs.shutdown()
        self.thumbnails.shutdown()
        self.preview.shutdown()
        super().closeEvent(event)


def _message(error: BaseException) -> str:
    text = str(error).strip()
    return text or type(error).__name__
