"""The Clipscape window: layout, menus, drag-and-drop and dialogs around one Session.

What the user is looking at lives in the Session (app/session.py); every view draws from it.
The window only arranges the views, turns menu commands, drops and dialog answers into session
calls, and shows the messages and dialogs the session asks for.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (QApplication, QFileDialog, QLabel, QMainWindow, QMessageBox, QSplitter, QStackedWidget,
                               QTabWidget, QVBoxLayout, QWidget)

from clipscape.app import gc_timer, tasks
from clipscape.app.classes_panel import ClassesPanel
from clipscape.app.gallery import Gallery
from clipscape.app.map import MapView
from clipscape.app.model_choice import DEFAULT, DEMO, Choice
from clipscape.app.model_picker import ModelPicker, ModelUnavailableDialog
from clipscape.app.preview import PreviewPanel
from clipscape.app.search_bar import SearchBar
from clipscape.app.session import Session
from clipscape.app.settings import Settings
from clipscape.app.skipped_panel import SkippedPanel
from clipscape.app.status_bar import StatusBar
from clipscape.app.thumbnails import ThumbnailCache
from clipscape.models.datasets import is_dataset
from clipscape.models.display import printable
from clipscape.resources import ICON

SCREEN_FRACTION = 0.9           # of the screen's free area the window opens at
MIN_SIZE = (960, 640)
SWITCH_INTERVAL_S = 0.0005      # sys.setswitchinterval for the window's process (see MainWindow.__init__)
SIDE_FRACTION, SIDE_RANGE = 0.36, (360, 720)   # the gallery column: share of the width, in px
PREVIEW_SHARE, PREVIEW_MIN_HEIGHT = 0.45, 120       # of the side column, when Preview opens


class MainWindow(QMainWindow):
    """Drop a folder, watch it encode, explore the map, search, classify, export."""

    def __init__(self, settings: QSettings | None = None, model: Choice | None = None, device: str = "auto",
                 batch_size: int | None = None, cache_dir: str | None = None, parent=None) -> None:
        super().__init__(parent)
        # a worker holding the GIL hands it over after this long when the GUI thread asks (5 ms by
        # default): each return from Qt into Python paid up to that, and a paint made of many of
        # them stopped the window for 80-100 ms while a million paths were decoded beside it
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        gc_timer.install(QApplication.instance())   # cyclic garbage is collected on this thread only
        self.settings = Settings(settings)
        self.session = Session(self.settings, model or self.settings.model_choice(DEFAULT), device,
                               batch_size or self.settings.batch_size(), cache_dir, parent=self)
        self.dialog: QMessageBox | ModelUnavailableDialog | ModelPicker | None = None
        self.setWindowTitle("Clipscape")
        self.setWindowIcon(QIcon(str(ICON)))
        self.setAcceptDrops(True)
        self._build_views()
        self._build_menus()
        self._fit_to_screen()
        s = self.session
        s.errorRaised.connect(self.show_error)
        s.modelUnavailable.connect(self._offer_other_model)
        s.rowsKept.connect(self._ask_forget)
        s.previewChanged.connect(self._on_preview)
        s.skippedChanged.connect(self._on_skipped)
        s.selectionChanged.connect(self._update_actions)
        s.collectionChanged.connect(self._update_actions)
        s.load_model(remember=model is None)
        tasks.umap_server()  # a child process compiles UMAP now, before the first map is wanted

    # --- construction -------------------------------------------------------------------------
    def _build_views(self) -> None:
        s = self.session
        self.search_bar = SearchBar(s)
        self.map = MapView(s, ThumbnailCache(size=160, capacity=256, parent=self))
        self.gallery = Gallery(s, ThumbnailCache(size=self.settings.thumbnail_size(), parent=self), self.settings)
        self.classes = ClassesPanel(s)
        self.skipped = SkippedPanel(s)
        self.preview = PreviewPanel(s)
        self.preview.hide()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.gallery, "Gallery")
        self.tabs.addTab(self.classes, "Classes")
        self.tabs.addTab(self.skipped, "Skipped files")
        self.tabs.setTabVisible(2, False)
        self.side = QSplitter(Qt.Orientation.Vertical)
        self.side.addWidget(self.tabs)
        self.side.addWidget(self.preview)
        self.side.setStretchFactor(0, 3)
        self.side.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.map)
        self.splitter.addWidget(self.side)
        self.splitter.setStretchFactor(0, 1)   # a wider window widens the map
        self.splitter.setStretchFactor(1, 0)
        self.drop_hint = QLabel("Drop a folder of images here\nor choose File ▸ Open Folder… (Ctrl+O)")
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setStyleSheet("font-size: 18pt; color: #777;")
        explorer = QWidget()
        column = QVBoxLayout(explorer)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.search_bar)
        column.addWidget(self.splitter, 1)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.drop_hint)
        self.pages.addWidget(explorer)
        self.setCentralWidget(self.pages)
        self.status_bar = StatusBar(s)
        self.status_bar.skippedRequested.connect(lambda: self.tabs.setCurrentWidget(self.skipped))
        self.status_bar.modelRequested.connect(self.choose_model)
        self.setStatusBar(self.status_bar)

    def _build_menus(self) -> None:
        s = self.session
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open Folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &Embeddings…", self.choose_embeddings, "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        self.export_all_action = self._action(file_menu, "&Export…", lambda: self.export(False), "Ctrl+E")
        self.export_selection_action = self._action(file_menu, "Export &Selection…",
                                                    lambda: self.export(True), "Ctrl+Shift+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = s.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = s.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit_menu.addActions([self.undo_action, self.redo_action])
        edit_menu.addSeparator()
        self._action(edit_menu, "Clear Selection", s.clear_selection, "Esc")
        model_menu = self.menuBar().addMenu("&Model")
        self._action(model_menu, "&Choose Model…", self.choose_model, "Ctrl+M")
        view_menu = self.menuBar().addMenu("&View")
        self.preview_action = self._action(view_menu, "&Preview", self.show_preview_panel)
        self.preview_action.setCheckable(True)
        self._action(view_menu, "S&kipped Files", lambda: self.tabs.setCurrentWidget(self.skipped))
        self._action(view_menu, "&Fit Map", self.map.fit, "Ctrl+0")
        self._fill_recent_menu()
        self._update_actions()

    def _on_preview(self) -> None:
        if self.session.previewed >= 0:
            self.show_preview_panel(True)

    def _on_skipped(self) -> None:
        self.tabs.setTabVisible(self.tabs.indexOf(self.skipped), bool(self.session.skipped))

    def show_preview_panel(self, on: bool) -> None:
        """Show or hide Preview under the tabs; shown, it gets a useful share of the column."""
        self.preview.setVisible(on)
        self.preview_action.setChecked(on)
        sizes = self.side.sizes()
        if on and sizes[1] < PREVIEW_MIN_HEIGHT:
            total = sum(sizes) or self.side.height()
            self.side.setSizes([total - int(total * PREVIEW_SHARE), int(total * PREVIEW_SHARE)])

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _fit_to_screen(self) -> None:
        """Open at most of the free area of the screen the window is on, centred there."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        free = screen.availableGeometry()
        width = max(min(MIN_SIZE[0], free.width()), int(free.width() * SCREEN_FRACTION))
        height = max(min(MIN_SIZE[1], free.height()), int(free.height() * SCREEN_FRACTION))
        self.resize(width, height)
        self.move(free.x() + (free.width() - width) // 2, free.y() + (free.height() - height) // 2)
        side = int(min(SIDE_RANGE[1], max(SIDE_RANGE[0], width * SIDE_FRACTION)))
        self.splitter.setSizes([width - side, side])

    # --- opening folders --------------------------------------------------------------------
    def choose_folder(self) -> None:
        """File ▸ Open Folder…"""
        folder = self._ask_folder()
        if folder:
            self.open_paths([folder])

    def _ask_folder(self) -> str:
        recent = self.settings.recent()
        return QFileDialog.getExistingDirectory(self, "Open a folder of images",
                                                recent[0][0] if recent else str(Path.home()))

    def choose_embeddings(self) -> None:
        """File ▸ Open Embeddings…: a Parquet file (a dataset folder opens with Open Folder or a drop)."""
        path, _ = QFileDialog.getOpenFileName(self, "Open embeddings", str(Path.home()),
                                              "Parquet (*.parquet);;All files (*)")
        if path:
            self.open_paths([path])

    def open_paths(self, paths: Sequence[str]) -> bool:
        """Explore these folders and/or image files, or one embeddings dataset (models/datasets.py)."""
        roots = [os.path.abspath(os.fspath(p)) for p in paths]
        missing = [p for p in roots if not os.path.exists(p)]
        if missing:
            self.show_error("Cannot open", f"No such file or folder: {printable(missing[0])}")
            return False
        names = [printable(Path(p).name or p) for p in roots]
        self.setWindowTitle("Clipscape — " + (names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more"))
        self.pages.setCurrentIndex(1)
        if len(roots) == 1 and is_dataset(roots[0]):
            self.session.open_embeddings(roots[0])
        else:
            self.session.open(roots)
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if _dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = _dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for roots in self.settings.recent():
            label = printable(roots[0]) + (f" (+{len(roots) - 1})" if len(roots) > 1 else "")
            action = self.recent_menu.addAction(label)
            action.setEnabled(all(os.path.exists(p) for p in roots))
            action.triggered.connect(lambda _c=False, r=roots: self.open_paths(r))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    # --- the model ----------------------------------------------------------------------------
    def choose_model(self) -> None:
        picker = ModelPicker(self.session.model_choice, self)
        picker.accepted.connect(lambda: self.session.load_model(picker.choice()))
        self._open_dialog(picker)

    def _offer_other_model(self, message: str) -> None:
        dialog = ModelUnavailableDialog(message, self)
        dialog.finished.connect(lambda _r: self._on_model_dialog(dialog.result_choice()))
        self._open_dialog(dialog)

    def _on_model_dialog(self, choice: str | None) -> None:
        if choice == "demo":
            self.session.load_model(DEMO, remember=False)
        elif choice == "local":
            folder = self._ask_model_folder()
            if folder:
                self.session.load_model((f"local-dir:{folder}", None))

    def _ask_model_folder(self) -> str:
        return QFileDialog.getExistingDirectory(self, "Choose an open_clip model folder")

    # --- export -------------------------------------------------------------------------------
    EXPORT_FILTERS = {"CSV (*.csv)": ".csv", "Parquet (*.parquet)": ".parquet"}

    def export(self, selection_only: bool) -> None:
        """Ask where, then write the CSV or Parquet file (the file's suffix decides) of all images or
        of the selection."""
        s = self.session
        if s.collection is None or (selection_only and not len(s.selection)):
            return
        path = self._ask_save_path("clipscape-selection.csv" if selection_only else "clipscape.csv")
        if path:
            if not Path(path).suffix:
                path += ".csv"
            self.settings.set_export_folder(str(Path(path).parent))
            s.export(path, selection_only)

    def _ask_save_path(self, name: str) -> str:
        """The file to export to; a name typed without a suffix gets the chosen format's."""
        path, chosen = QFileDialog.getSaveFileName(self, "Export", str(Path(self.settings.export_folder()) / name),
                                                   ";;".join(self.EXPORT_FILTERS))
        if path and not Path(path).suffix:
            path += self.EXPORT_FILTERS.get(chosen, ".csv")
        return path

    def _update_actions(self) -> None:
        s = self.session
        has = s.collection is not None and len(s.collection) > 0
        self.export_all_action.setEnabled(has)
        self.export_selection_action.setEnabled(has and len(s.selection) > 0)

    # --- messages, closing --------------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        """A message the user must see; it does not block the window."""
        self._open_dialog(QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self))

    def _ask_forget(self, kept) -> None:
        """A folder came back empty while the cache holds its embeddings: keep them unless told."""
        rows = sum(k.rows for k in kept)
        names = "\n".join(printable(k.path) for k in kept)
        box = QMessageBox(QMessageBox.Icon.Question, "Folder came back empty",
                          f"No images were found in\n{names}\nbut the cache holds {rows} embeddings for it.\n\n"
                          "If its drive is unplugged or not mounted, keep them: they are used again when it "
                          "is back. Forget them only if the images were deleted.", QMessageBox.StandardButton.NoButton,
                          self)
        box.addButton("Keep", QMessageBox.ButtonRole.RejectRole)
        forget = box.addButton("Forget", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(box.buttons()[0])
        box.finished.connect(lambda _r: box.clickedButton() is forget and self.session.forget_kept(kept))
        self._open_dialog(box)

    def _open_dialog(self, dialog) -> None:
        self.dialog = dialog
        dialog.open()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Cancel every job and wait for it, so no worker thread outlives the window."""
        for kind in (QMessageBox, ModelPicker, ModelUnavailableDialog):
            for dialog in self.findChildren(kind):
                dialog.close()
        self.session.shutdown()
        for cache in self.findChildren(ThumbnailCache):
            cache.shutdown()
        super().closeEvent(event)


def _dropped_paths(mime) -> list[str]:
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]
