"""The real window driven through the user's flows, offscreen, with the bundled demo model.

drop a folder (a real QDropEvent) → encoding finishes → one map point per image → a caption
ranks red circles first → zero-shot classes colour the map as the core classifies → a region
selected on the map → its CSV has exactly those rows. Also: Cancel keeps finished batches, an
unavailable model gives a dialog (not a traceback), and slots touching widgets run on the GUI
thread.
"""
from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QPushButton

from clipscape.app.launch import DEMO_IMAGES
from clipscape.app.main_window import MainWindow

TIMEOUT = 120_000  # ms; the first UMAP in a process compiles numba code


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


def make_window(qtbot, settings, model=("demo", None), **kwargs) -> MainWindow:
    window = MainWindow(settings=settings, model=model, device="cpu", **kwargs)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def slow_window(qtbot, settings, batch_size: int, seconds_per_batch: float) -> MainWindow:
    """A window whose model takes ``seconds_per_batch`` per batch, so a test can act mid-encode."""
    window = make_window(qtbot, settings, batch_size=batch_size)
    qtbot.waitUntil(lambda: window.encoder is not None, timeout=TIMEOUT)
    encode = window.encoder.encode_images

    def slow_encode(batch):
        threading.Event().wait(seconds_per_batch)
        return encode(batch)

    slow_encode.__wrapped__ = encode
    window.encoder.encode_images = slow_encode
    return window


@pytest.fixture
def window(qtbot, settings):
    w = make_window(qtbot, settings)
    qtbot.waitUntil(lambda: w.encoder is not None, timeout=TIMEOUT)
    yield w
    w.close()


def drop(window: MainWindow, *paths) -> None:
    """Drag the paths over the window and drop them, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    enter = QDragEnterEvent(pos.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, event)


def wait_classified(qtbot, window) -> None:
    """Until the final classification (after the quick single-template one) is applied."""
    qtbot.waitUntil(lambda: window.classification is not None and not window.jobs.is_running("classes"),
                    timeout=TIMEOUT)


def wait_for_umap(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.map_kind == "umap", timeout=TIMEOUT)


def test_drop_search_classify_select_export(qtbot, window, tmp_path, monkeypatch):
    from clipscape.models.zeroshot import zero_shot

    images = sorted(p for p in DEMO_IMAGES.iterdir() if p.suffix == ".jpg")
    drop(window, DEMO_IMAGES)
    wait_for_umap(qtbot, window)
    assert window.map.point_count() == len(images) == len(window.collection)
    assert sorted(window.collection.paths) == [str(p) for p in images]

    with qtbot.waitSignal(window.recoloured, timeout=TIMEOUT):
        window.search_bar.caption.setText("a red circle")
        window.search_bar.caption.textEdited.emit("a red circle")   # as typing does
    top = [Path(window.collection.paths[r]).name for r in window.gallery.rows()[:4]]
    assert all("_red_circle_" in name for name in top), top
    assert window.search_bar.colour_mode() == "score"

    window.tabs.setCurrentWidget(window.classes)
    window.classes.add_classes("circle, square, triangle")
    wait_classified(qtbot, window)
    core = zero_shot(window.collection.embeddings, window.encoder, ["circle", "square", "triangle"])
    assert np.array_equal(window.classification.best, core.best)
    entries = {label: (count, colour) for label, count, colour, _visible in window.map.legend_entries()}
    assert {k: v for k, v in core.counts().items() if v} == {k: c for k, (c, _) in entries.items()}
    colours = window.map.point_colours()
    for i, name in enumerate(core.classes):
        want = entries[name][1]
        assert (colours[core.best == i][:, :3] == [want.red(), want.green(), want.blue()]).all()

    coords = window.map.coords()
    x0, x1 = float(coords[:, 0].min()) - 0.01, float(np.median(coords[:, 0]))
    y0, y1 = float(coords[:, 1].min()) - 0.01, float(coords[:, 1].max()) + 0.01
    expected = np.flatnonzero(coords[:, 0] <= x1)
    window.map.select_in_polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    assert np.array_equal(window.selection, expected)
    assert sorted(window.gallery.rows()) == expected.tolist()

    out = tmp_path / "selection.csv"
    monkeypatch.setattr(window, "_ask_save_path", lambda _name: str(out))
    assert window.export_selection_action.isEnabled()
    with qtbot.waitSignal(window.exported, timeout=TIMEOUT):
        window.export_selection_action.trigger()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"] for r in rows) == sorted(window.collection.paths[i] for i in expected)
    by_path = {r["path"]: r for r in rows}
    for i in expected:
        row = by_path[window.collection.paths[i]]
        assert row["class"] == core.label(i)
        assert float(row["score"]) == pytest.approx(float(window.scores[i]), abs=1e-6)


def test_cancel_keeps_finished_batches_and_reopen_resumes(qtbot, settings, tmp_path):
    from clipscape.models.shapes_world import write_folder

    folder = tmp_path / "photos"
    folder.mkdir()
    write_folder(folder, 48, seed=3, size=128)
    window = slow_window(qtbot, settings, batch_size=8, seconds_per_batch=0.5)
    encode = window.encoder.encode_images.__wrapped__
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.last_index is not None and window.last_index.embedded >= 8, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: 0 < window.map.point_count() < 48, timeout=TIMEOUT)  # the map grows while encoding
    assert window.jobs.is_running("index") and len(window.collection) == window.map.point_count()
    assert window.gallery.rows() == list(range(window.map.point_count()))
    cancel = window.findChild(QPushButton, "cancel")
    assert cancel.isVisible()
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        qtbot.mouseClick(cancel, Qt.LeftButton)
    kept = len(window.collection)
    assert 8 <= kept < 48 and kept % 8 == 0
    assert "cancelled" in window.status.text().lower() or window.map_kind

    window.encoder.encode_images = encode
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_paths([folder])
    assert window.last_index.reused == kept
    assert len(window.collection) == 48
    window.close()
    assert not window.jobs.running()


def test_unavailable_model_offers_the_demo_model(qtbot, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    window = make_window(qtbot, settings, model=("ViT-B-32", "laion2b_s34b_b79k"))
    qtbot.waitUntil(lambda: window.model_dialog is not None and window.model_dialog.isVisible(), timeout=TIMEOUT)
    assert "ViT-B-32" in window.status.text()
    use_demo = window.model_dialog.findChild(QPushButton, "useDemo")
    qtbot.mouseClick(use_demo, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.encoder is not None, timeout=TIMEOUT)
    assert window.model_choice == ("demo", None)
    window.close()


def test_slots_that_touch_widgets_run_on_the_gui_thread(qtbot, window, monkeypatch):
    gui = threading.get_ident()
    threads: dict[str, set[int]] = {}
    for name in ("_on_index_progress", "_on_collection", "_on_projection_progress", "_on_umap",
                 "_on_classified", "_set_scores"):
        original = getattr(window, name)

        def spy(*args, _original=original, _name=name):
            threads.setdefault(_name, set()).add(threading.get_ident())
            return _original(*args)

        monkeypatch.setattr(window, name, spy)
    window.open_paths([DEMO_IMAGES])
    wait_for_umap(qtbot, window)
    window.classes.add_classes("star")
    wait_classified(qtbot, window)
    with qtbot.waitSignal(window.recoloured, timeout=TIMEOUT):
        window.search_bar.set_text("a blue square")
    assert {"_on_index_progress", "_on_collection", "_on_umap", "_on_classified", "_set_scores"} <= set(threads)
    assert all(ids == {gui} for ids in threads.values()), threads


def test_broken_files_are_listed_with_reasons(qtbot, window, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:6]:
        shutil.copy(p, folder)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_paths([folder])
    assert len(window.collection) == 6
    entries = window.skipped_panel.entries()
    assert [Path(p).name for p, _ in entries] == ["broken.jpg"] and entries[0][1]
    assert window.skipped_button.text() == "1 skipped"


def test_recent_folders_reopen_from_the_cache(qtbot, window, tmp_path):
    folder = tmp_path / "few"
    folder.mkdir()
    for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:10]:
        shutil.copy(p, folder)
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_paths([folder])
    assert window.recent()[0] == [str(folder)]
    action = window.recent_menu.actions()[0]
    assert action.text() == str(folder)
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        action.trigger()
    assert window.last_index.reused == 10 and window.last_index.embedded == 0


def test_find_similar_ranks_by_image(qtbot, window):
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_paths([DEMO_IMAGES])
    row = 5
    window.show_preview(row)
    assert window.preview_dock.isVisible() and window.preview.current_row() == row
    qtbot.mouseClick(window.preview.findChild(QPushButton, "findSimilar"), Qt.LeftButton)
    qtbot.waitUntil(lambda: window.query == ("image", row), timeout=TIMEOUT)
    assert window.search_bar.colour_mode() == "score"
    assert window.gallery.rows()[0] == row  # an image is most similar to itself
    scores = window.scores
    assert np.all(np.diff(scores[window.gallery.rows()]) <= 1e-7)


def test_launcher_dispatches_headless_commands_and_rejects_bad_paths(capsys, tmp_path):
    from clipscape.app.launch import main

    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "nowhere")])
    assert exit_.value.code == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["classify", str(DEMO_IMAGES), "--model", "demo", "--classes", "circle,square",
                 "--quiet", "--json"]) == 0
    assert '"classes"' in capsys.readouterr().out


def test_model_download_shows_progress_and_cancel_stops_it(qtbot, settings, monkeypatch):
    import clipscape.models.encoder

    def downloading(spec, device="auto", cache_dir=None, tqdm_class=None):
        bar = tqdm_class(total=600 << 20, unit="B")
        for _ in range(6000):
            bar.update(1 << 20)
            threading.Event().wait(0.01)
        raise AssertionError("the download was not cancelled")

    monkeypatch.setattr(clipscape.models.encoder, "load_encoder", downloading)
    window = make_window(qtbot, settings, model=("ViT-B-32", "laion2b_s34b_b79k"))
    qtbot.waitUntil(lambda: "Downloading model weights" in window.status.text(), timeout=TIMEOUT)
    assert "of 600 MB" in window.status.text() and window.progress.isVisible()
    assert 0 < window.progress.value() < window.progress.maximum()
    qtbot.mouseClick(window.findChild(QPushButton, "cancel"), Qt.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in window.status.text(), timeout=10_000)
    assert window.encoder is None and not window.progress.isVisible()
    assert not window.jobs.is_running("model")
    window.close()


def test_threshold_dims_legend_hides_and_clusters_colour(qtbot, window):
    window.classes.set_classes(["circle", "square"])
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_paths([DEMO_IMAGES])
    qtbot.waitUntil(lambda: window.coords is not None, timeout=TIMEOUT)
    wait_classified(qtbot, window)

    window.map.set_label_visible("square", False)
    squares = window.classification.best == 1
    assert not window.map.visible_mask()[squares].any() and window.map.visible_mask()[~squares].all()

    window.search_bar.set_text("a green star")
    qtbot.waitUntil(lambda: window.scores is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(window.recoloured, timeout=TIMEOUT):
        window.search_bar.set_score_threshold(float(np.median(window.scores)))
    cut = window.search_bar.score_threshold()  # as the spin box rounded it
    dimmed = [r for r in window.gallery.rows() if window.gallery.is_dimmed(r)]
    assert sorted(dimmed) == sorted(np.flatnonzero(window.scores < cut).tolist())
    assert (window.map.point_colours()[window.scores < cut][:, 3] < 255).all()

    window.search_bar.set_colour_mode("cluster")
    qtbot.waitUntil(lambda: window.cluster_ids is not None and bool(window.map.legend_entries()), timeout=TIMEOUT)
    labels = [label for label, *_ in window.map.legend_entries()]
    assert labels and all(label.startswith("cluster ") for label in labels)
    assert sum(count for _, count, *_ in window.map.legend_entries()) == len(window.collection)

    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):  # reopen: query and classes are redone…
        window.open_paths([DEMO_IMAGES])
    qtbot.waitUntil(lambda: window.scores is not None and window.cluster_ids is not None, timeout=TIMEOUT)
    wait_classified(qtbot, window)
    assert window.search_bar.colour_mode() == "cluster"  # …without taking the user's colour mode away


def test_a_failing_job_shows_a_message_and_the_window_goes_on(qtbot, window, monkeypatch):
    from clipscape.app import tasks

    def broken(job, encoder, embeddings, caption):
        raise ValueError("the text tower is on fire")

    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_paths([DEMO_IMAGES])
    monkeypatch.setattr(tasks, "caption_scores", broken)
    window.search_bar.set_text("a red circle")
    qtbot.waitUntil(lambda: window.error_box is not None and window.error_box.isVisible(), timeout=TIMEOUT)
    assert "the text tower is on fire" in window.error_box.text()
    assert window.error_box.windowTitle() == "Search failed"
    monkeypatch.undo()
    window.error_box.accept()
    window.search_bar.set_text("a blue star")
    qtbot.waitUntil(lambda: window.query == ("text", "a blue star") and window.scores is not None, timeout=TIMEOUT)


def test_open_menu_class_options_filter_and_export_all(qtbot, window, tmp_path, monkeypatch):
    from clipscape.models.zeroshot import zero_shot

    monkeypatch.setattr(window, "_ask_folder", lambda: str(DEMO_IMAGES))
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_action.trigger()
    classes = ["circle", "square", "triangle", "star"]
    window.classes.set_classes(classes)
    window.classes.changed.emit()
    wait_classified(qtbot, window)

    with qtbot.waitSignal(window.classified, timeout=TIMEOUT):
        window.classes.set_ensemble(False)
    single = zero_shot(window.collection.embeddings, window.encoder, classes, ensemble=False)
    assert np.array_equal(window.classification.best, single.best)

    with qtbot.waitSignal(window.classified, timeout=TIMEOUT):
        window.classes.set_threshold(0.95)
    strict = zero_shot(window.collection.embeddings, window.encoder, classes, 0.95, ensemble=False)
    assert np.array_equal(window.classification.best, strict.best) and (strict.best < 0).any()
    assert ("unknown", int((strict.best < 0).sum())) in [(l, c) for l, c, *_ in window.map.legend_entries()]

    window.gallery.set_class_filter("star")
    shown = window.gallery.rows()
    assert shown and all(window.classification.label(r) == "star" for r in shown)
    assert len(shown) == window.classification.counts()["star"]

    out = tmp_path / "all.csv"
    monkeypatch.setattr(window, "_ask_save_path", lambda _name: str(out))
    with qtbot.waitSignal(window.exported, timeout=TIMEOUT):
        window.export_all_action.trigger()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == window.collection.paths
    assert [r["class"] for r in rows] == window.classification.labels
    assert "Wrote 96 rows" in window.status.text()


def test_classes_show_one_prompt_first_then_the_ensemble(qtbot, window, monkeypatch):
    from clipscape.app.main_window import REFINING
    from clipscape.models.zeroshot import zero_shot

    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        window.open_paths([DEMO_IMAGES])
    encode = window.encoder.encode_texts
    classes = ["circle", "square", "triangle", "star"]
    single = zero_shot(window.collection.embeddings, window.encoder, classes, ensemble=False)
    ensemble = zero_shot(window.collection.embeddings, window.encoder, classes, ensemble=True)
    assert not np.array_equal(single.probabilities, ensemble.probabilities)

    def slow(texts):  # a big model on a CPU: the ensemble takes seconds
        threading.Event().wait(0.01 * len(texts))
        return encode(texts)

    monkeypatch.setattr(window.encoder, "encode_texts", slow)
    window.classes.add_classes(", ".join(classes))
    qtbot.waitUntil(lambda: window.status.text() == REFINING, timeout=TIMEOUT)
    assert window.jobs.is_running("classes")
    assert np.allclose(window.classification.probabilities, single.probabilities, atol=1e-5)
    wait_classified(qtbot, window)
    assert np.allclose(window.classification.probabilities, ensemble.probabilities, atol=1e-5)
    assert "refined" in window.status.text()
    window.close()

    again = make_window(qtbot, window.settings)
    qtbot.waitUntil(lambda: again.encoder is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(again.collectionReady, timeout=TIMEOUT):
        again.open_paths([DEMO_IMAGES])
    passes, previews = [], []
    monkeypatch.setattr(again.encoder, "encode_texts", lambda texts: passes.append(texts))
    monkeypatch.setattr(again, "_on_classes_preview", previews.append)
    again.classes.add_classes(", ".join(classes))
    wait_classified(qtbot, again)
    assert passes == [] and previews == []  # every prompt came from the embedding cache
    assert np.allclose(again.classification.probabilities, ensemble.probabilities, atol=1e-5)
    again.close()


def test_opening_another_folder_mid_encode_switches_to_it(qtbot, settings, tmp_path):
    from clipscape.models.shapes_world import write_folder

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_folder(first, 40, seed=4, size=96)
    write_folder(second, 12, seed=5, size=96)
    window = slow_window(qtbot, settings, batch_size=4, seconds_per_batch=0.2)
    window.open_paths([first])
    qtbot.waitUntil(lambda: window.last_index is not None and window.last_index.embedded >= 4, timeout=TIMEOUT)
    window.open_paths([second / p.name for p in sorted(second.iterdir())][:5] + [first / "missing.jpg"])
    assert window.error_box is not None and "missing.jpg" in window.error_box.text()
    with qtbot.waitSignal(window.collectionReady, timeout=TIMEOUT):
        drop(window, *sorted(second.iterdir())[:5])
    assert sorted(window.collection.paths) == sorted(str(p) for p in sorted(second.iterdir())[:5])
    qtbot.waitUntil(lambda: window.map.point_count() == 5, timeout=TIMEOUT)
    window.close()
    assert not window.jobs.running()


def test_window_has_its_icon_and_the_desktop_entry_runs_clipscape(window):
    from clipscape.app.main_window import ICON

    assert ICON.is_file() and not window.windowIcon().isNull()
    entry = (Path(__file__).resolve().parent.parent / "packaging" / "clipscape.desktop").read_text()
    assert "Exec=clipscape %F" in entry and "MimeType=inode/directory;" in entry
