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
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QPushButton

from clipscape.app.main_window import SWITCH_INTERVAL_S
from clipscape.app.session import REFINING
from clipscape.resources import DEMO_IMAGES
from gui_support import TIMEOUT, drop, make_window, slow_window, wait_collection, wait_for_umap, wait_idle


def test_drop_search_classify_select_export(qtbot, window, tmp_path, monkeypatch):
    from clipscape.models.zeroshot import zero_shot

    s = window.session
    images = sorted(p for p in DEMO_IMAGES.iterdir() if p.suffix == ".jpg")
    drop(window, DEMO_IMAGES)
    wait_for_umap(qtbot, window)
    assert window.map.point_count() == len(images) == len(s.collection)
    assert sorted(s.collection.paths) == [str(p) for p in images]

    window.search_bar.caption.setText("a red circle")
    window.search_bar.caption.textEdited.emit("a red circle")   # as typing does
    qtbot.waitUntil(lambda: s.scores is not None, timeout=TIMEOUT)
    top = [Path(s.collection.paths[r]).name for r in window.gallery.rows()[:4]]
    assert all("_red_circle_" in name for name in top), top
    assert s.colour_mode == "score" and window.search_bar.colour.currentData() == "score"

    window.tabs.setCurrentWidget(window.classes)
    s.add_classes("circle, square, triangle")
    wait_idle(qtbot, window)
    core = zero_shot(s.collection.embeddings, s.encoder, ["circle", "square", "triangle"])
    assert np.array_equal(s.classification.best, core.best)
    entries = {label: text for label, text, _ in window.map.legend.entries()}
    assert entries == {k: f"{k} ({v})" for k, v in core.counts().items() if v or k != "unknown"}

    coords = window.map.coords()
    x0, x1 = float(coords[:, 0].min()) - 0.01, float(np.median(coords[:, 0]))
    y0, y1 = float(coords[:, 1].min()) - 0.01, float(coords[:, 1].max()) + 0.01
    expected = np.flatnonzero(coords[:, 0] <= x1)
    window.map.select_polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    assert np.array_equal(s.selection, expected)
    assert sorted(window.gallery.rows()) == expected.tolist()

    out = tmp_path / "selection"        # no suffix: ".csv" is added
    monkeypatch.setattr(window, "_ask_save_path", lambda _name: str(out))
    assert window.export_selection_action.isEnabled()
    with qtbot.waitSignal(s.exported, timeout=TIMEOUT):
        window.export_selection_action.trigger()
    with open(tmp_path / "selection.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"] for r in rows) == sorted(s.collection.paths[i] for i in expected)
    by_path = {r["path"]: r for r in rows}
    for i in expected:
        row = by_path[s.collection.paths[i]]
        assert row["class"] == core.label(i)
        assert float(row["score"]) == pytest.approx(float(s.scores[i]), abs=1e-6)
    assert window.settings.export_folder() == str(tmp_path)


def test_cancel_keeps_finished_batches_and_reopen_resumes(qtbot, settings, tmp_path):
    from clipscape.models.shapes_world import write_folder

    folder = tmp_path / "photos"
    folder.mkdir()
    write_folder(folder, 48, seed=3, size=128)
    window = slow_window(qtbot, settings, batch_size=8, seconds_per_batch=0.5)
    s = window.session
    encode = s.encoder.encode_images.__wrapped__
    window.open_paths([folder])
    qtbot.waitUntil(lambda: s.last_index is not None and s.last_index.embedded >= 8, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: 0 < window.map.point_count() < 48, timeout=TIMEOUT)  # the map grows while encoding
    assert s.jobs.is_running("index") and len(s.collection) == window.map.point_count()
    assert window.gallery.rows() == list(range(window.map.point_count()))
    cancel = window.findChild(QPushButton, "cancel")
    assert cancel.isVisible()
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    wait_collection(qtbot, window)
    kept = len(s.collection)
    assert 8 <= kept < 48 and kept % 8 == 0

    s.encoder.encode_images = encode
    window.open_paths([folder])
    wait_collection(qtbot, window)
    assert s.last_index.reused == kept and len(s.collection) == 48
    window.close()
    assert not s.jobs.running()


def test_unavailable_model_offers_the_demo_model(qtbot, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    window = make_window(qtbot, settings, model=("ViT-B-32", "laion2b_s34b_b79k"))
    qtbot.waitUntil(lambda: window.dialog is not None and window.dialog.isVisible(), timeout=TIMEOUT)
    assert "ViT-B-32" in window.status_bar.text.text()
    qtbot.mouseClick(window.dialog.findChild(QPushButton, "useDemo"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.encoder is not None, timeout=TIMEOUT)
    assert window.session.model_choice == ("demo", None)
    assert window.settings.model_choice(None) is None   # the demo was a way out, not a new choice
    window.close()


def test_session_slots_run_on_the_gui_thread(qtbot, window, monkeypatch):
    s = window.session
    gui = threading.get_ident()
    threads: dict[str, set[int]] = {}
    for name in ("_on_index_progress", "_on_collection", "_on_projection_progress", "_on_coords",
                 "_on_classes", "_on_scores"):
        original = getattr(s, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            threads.setdefault(_name, set()).add(threading.get_ident())
            return _original(*args, **kwargs)

        monkeypatch.setattr(s, name, spy)
    window.open_paths([DEMO_IMAGES])
    wait_for_umap(qtbot, window)
    s.add_classes("star")
    window.search_bar.type_caption("a blue square")
    wait_idle(qtbot, window, but=())
    assert {"_on_index_progress", "_on_collection", "_on_coords", "_on_classes", "_on_scores"} <= set(threads)
    assert all(ids == {gui} for ids in threads.values()), threads
    # and a worker hands the GIL over within SWITCH_INTERVAL_S when the GUI thread asks for it
    # (tests/benchmarks/bench_gil_switch.py: a paint beside a worker, 1020 ms at Python's 5 ms, 216 ms at this)
    assert sys.getswitchinterval() <= SWITCH_INTERVAL_S


def test_broken_files_are_listed_with_reasons(qtbot, window, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:6]:
        shutil.copy(p, folder)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    window.open_paths([folder])
    wait_collection(qtbot, window)
    assert len(window.session.collection) == 6
    entries = window.skipped.entries()
    assert [Path(p).name for p, _ in entries] == ["broken.jpg"] and entries[0][1]
    skipped = window.status_bar.skipped
    assert skipped.text() == "1 skipped" and window.tabs.isTabVisible(window.tabs.indexOf(window.skipped))
    qtbot.mouseClick(skipped, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.skipped


def test_recent_folders_reopen_from_the_cache(qtbot, window, tmp_path):
    folder = tmp_path / "few\nlines"   # a newline in a folder name must not split the entry
    folder.mkdir()
    for p in sorted(DEMO_IMAGES.glob("*.jpg"))[:10]:
        shutil.copy(p, folder)
    window.open_paths([folder])
    wait_collection(qtbot, window)
    assert window.settings.recent()[0] == [str(folder)]
    window._fill_recent_menu()
    action = window.recent_menu.actions()[0]
    assert action.text() == str(folder).replace("\n", "\\n") and action.isEnabled()
    action.trigger()
    wait_collection(qtbot, window)
    assert window.session.last_index.reused == 10 and window.session.last_index.embedded == 0


def test_find_similar_ranks_by_image(qtbot, window):
    s = window.session
    window.open_paths([DEMO_IMAGES])
    wait_collection(qtbot, window)
    row = 5
    s.set_preview(row)
    assert window.preview.isVisible() and window.preview_action.isChecked()
    qtbot.mouseClick(window.preview.findChild(QPushButton, "findSimilar"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: s.scores is not None, timeout=TIMEOUT)
    assert s.query.kind == "image" and s.query.row == row and s.colour_mode == "score"
    assert window.gallery.rows()[0] == row  # an image is most similar to itself
    assert np.all(np.diff(s.scores[window.gallery.rows()]) <= 1e-7)
    assert window.preview.facts()[2] == f"score: {s.scores[row]:.3f}"
    assert "Similar to 0005_" in window.search_bar.similar.text()


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
    bar = window.status_bar
    qtbot.waitUntil(lambda: "Downloading model weights" in bar.text.text(), timeout=TIMEOUT)
    assert "of 600 MB" in bar.text.text() and bar.progress.isVisible()
    assert 0 < bar.progress.value() < bar.progress.maximum()
    qtbot.mouseClick(window.findChild(QPushButton, "cancel"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in bar.text.text(), timeout=10_000)
    assert window.session.encoder is None and not bar.progress.isVisible()
    assert not window.session.jobs.is_running("model")
    window.close()


def test_dim_legend_hiding_and_cluster_colours(qtbot, window):
    s = window.session
    s.set_classes(["circle", "square"])
    window.open_paths([DEMO_IMAGES])
    wait_collection(qtbot, window)
    wait_idle(qtbot, window)
    wait_for_umap(qtbot, window)   # the map's points come with the projection, after the collection
    s.set_label_hidden("square", True)
    squares = s.classification.best == 1
    assert not window.map.visible_mask()[squares].any() and window.map.visible_mask()[~squares].all()

    window.search_bar.type_caption("a green star")
    qtbot.waitUntil(lambda: s.scores is not None, timeout=TIMEOUT)
    window.search_bar.threshold.setValue(float(np.median(s.scores)))
    cut = s.dim_threshold  # as the spin box rounded it
    # colouring by score, the class legend is gone and with it the hidden classes
    assert s.colour_mode == "score" and window.map.visible_mask().all()
    dimmed = [r for r in window.gallery.rows() if window.gallery.is_dimmed(r)]
    assert sorted(dimmed) == np.flatnonzero(s.scores < cut).tolist()
    assert (window.map.point_colours()[s.scores < cut][:, 3] < 255).all()

    s.set_colour_mode("cluster")
    qtbot.waitUntil(lambda: s.cluster_ids is not None and bool(window.map.legend.entries()), timeout=TIMEOUT)
    labels = [label for label, *_ in window.map.legend.entries()]
    assert labels and all(label.startswith("cluster ") or label == "unclustered" for label in labels)
    assert sum(e.count for e in s.legend()) == len(s.collection)

    window.open_paths([DEMO_IMAGES])   # reopen: query and classes are redone…
    wait_collection(qtbot, window)
    qtbot.waitUntil(lambda: s.scores is not None and s.cluster_ids is not None, timeout=TIMEOUT)
    wait_idle(qtbot, window)
    assert s.colour_mode == "cluster"  # …without taking the user's colour mode away


def test_a_failing_job_shows_a_message_and_the_window_goes_on(qtbot, window, monkeypatch, caplog):
    from clipscape.app import tasks

    def broken(job, encoder, collection, caption):
        raise ValueError("the text tower is on fire")

    s = window.session
    window.open_paths([DEMO_IMAGES])
    wait_collection(qtbot, window)
    monkeypatch.setattr(tasks, "caption_scores", broken)
    window.search_bar.type_caption("a red circle")
    qtbot.waitUntil(lambda: isinstance(window.dialog, QMessageBox) and window.dialog.isVisible(), timeout=TIMEOUT)
    assert "the text tower is on fire" in window.dialog.text() and window.dialog.windowTitle() == "Search failed"
    logged = [r for r in caplog.records if r.name == "clipscape.app.workers" and r.exc_info]
    assert len(logged) == 1 and "fire" in str(logged[0].exc_info[1])   # the traceback, once
    monkeypatch.undo()
    window.dialog.accept()
    window.search_bar.type_caption("a blue star")
    qtbot.waitUntil(lambda: s.query.text == "a blue star" and s.scores is not None, timeout=TIMEOUT)


def test_open_menu_class_options_filter_and_export_all(qtbot, window, tmp_path, monkeypatch):
    from clipscape.models.zeroshot import zero_shot

    s = window.session
    monkeypatch.setattr(window, "_ask_folder", lambda: str(DEMO_IMAGES))
    window.open_action.trigger()
    wait_collection(qtbot, window)
    classes = ["circle", "square", "triangle", "star"]
    s.set_classes(classes)
    wait_idle(qtbot, window)
    s.set_ensemble(False)
    wait_idle(qtbot, window)
    single = zero_shot(s.collection.embeddings, s.encoder, classes, ensemble=False)
    assert np.array_equal(s.classification.best, single.best)
    assert "single prompt" in s.status and "ensemble" not in s.status

    s.set_unknown_threshold(0.95)
    wait_idle(qtbot, window)
    strict = zero_shot(s.collection.embeddings, s.encoder, classes, 0.95, ensemble=False)
    assert np.array_equal(s.classification.best, strict.best) and (strict.best < 0).any()
    assert ("unknown", f"unknown ({int((strict.best < 0).sum())})", True) in window.map.legend.entries()

    s.set_class_filter("star")
    shown = window.gallery.rows()
    assert shown and all(s.classification.label(r) == "star" for r in shown)
    assert len(shown) == s.classification.counts()["star"]

    out = tmp_path / "all.csv"
    monkeypatch.setattr(window, "_ask_save_path", lambda _name: str(out))
    with qtbot.waitSignal(s.exported, timeout=TIMEOUT):
        window.export_all_action.trigger()
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == s.collection.paths
    assert [r["class"] for r in rows] == s.classification.labels
    assert "Wrote 96 rows" in window.status_bar.text.text()


def test_classes_show_one_prompt_first_then_the_ensemble(qtbot, window, monkeypatch):
    from clipscape.models.zeroshot import zero_shot

    s = window.session
    window.open_paths([DEMO_IMAGES])
    wait_collection(qtbot, window)
    encode = s.encoder.encode_texts
    classes = ["circle", "square", "triangle", "star"]
    single = zero_shot(s.collection.embeddings, s.encoder, classes, ensemble=False)
    ensemble = zero_shot(s.collection.embeddings, s.encoder, classes, ensemble=True)
    assert not np.array_equal(single.probabilities, ensemble.probabilities)

    def slow(texts):  # a big model on a CPU: the ensemble takes seconds
        threading.Event().wait(0.01 * len(texts))
        return encode(texts)

    monkeypatch.setattr(s.encoder, "encode_texts", slow)
    s.add_classes(", ".join(classes))
    qtbot.waitUntil(lambda: s.status == REFINING, timeout=TIMEOUT)
    assert s.jobs.is_running("classes")
    assert np.allclose(s.classification.probabilities, single.probabilities, atol=1e-5)
    wait_idle(qtbot, window)
    assert np.allclose(s.classification.probabilities, ensemble.probabilities, atol=1e-5)
    assert "80-prompt ensemble" in s.status
    window.close()

    again = make_window(qtbot, window.settings.store)
    a = again.session
    qtbot.waitUntil(lambda: a.encoder is not None, timeout=TIMEOUT)
    again.open_paths([DEMO_IMAGES])
    wait_collection(qtbot, again)
    passes, previews = [], []
    monkeypatch.setattr(a.encoder, "encode_texts", lambda texts: passes.append(texts))
    a.add_classes(", ".join(classes))
    a.classificationChanged.connect(lambda: previews.append(a.status))
    wait_idle(qtbot, again)
    assert passes == [] and REFINING not in previews  # every prompt came from the embedding cache
    assert np.allclose(a.classification.probabilities, ensemble.probabilities, atol=1e-5)
    again.close()


def test_opening_another_folder_mid_encode_switches_to_it(qtbot, settings, tmp_path):
    from clipscape.models.shapes_world import write_folder

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write_folder(first, 40, seed=4, size=96)
    write_folder(second, 12, seed=5, size=96)
    window = slow_window(qtbot, settings, batch_size=4, seconds_per_batch=0.2)
    s = window.session
    window.open_paths([first])
    qtbot.waitUntil(lambda: s.last_index is not None and s.last_index.embedded >= 4, timeout=TIMEOUT)
    window.open_paths([second / p.name for p in sorted(second.iterdir())][:5] + [first / "missing.jpg"])
    assert isinstance(window.dialog, QMessageBox) and "missing.jpg" in window.dialog.text()
    drop(window, *sorted(second.iterdir())[:5])
    wait_collection(qtbot, window)
    assert sorted(s.collection.paths) == sorted(str(p) for p in sorted(second.iterdir())[:5])
    qtbot.waitUntil(lambda: window.map.point_count() == 5, timeout=TIMEOUT)
    window.close()
    assert not s.jobs.running()


def test_window_has_its_icon_and_the_desktop_entry_runs_clipscape(window):
    from clipscape.resources import ICON

    assert ICON.is_file() and not window.windowIcon().isNull()
    entry = (Path(__file__).resolve().parent.parent / "packaging" / "clipscape.desktop").read_text()
    assert "Exec=clipscape %F" in entry and "MimeType=inode/directory;" in entry


def test_a_folder_that_comes_back_empty_asks_before_its_cached_rows_are_forgotten(qtbot, window, tmp_path):
    from clipscape.models.store import EmbeddingStore
    from gui_support import photo_folder

    s = window.session

    def cached_rows() -> int:
        with EmbeddingStore(s.cache_dir) as store:
            return store.count_under(store.model_id(s.encoder.key, s.encoder.identity, s.encoder.dim), folder)

    def reopen_and_answer(button: str) -> None:
        window.open_paths([folder])
        qtbot.waitUntil(lambda: isinstance(window.dialog, QMessageBox) and window.dialog.isVisible(), timeout=TIMEOUT)
        box = window.dialog
        assert box.windowTitle() == "Folder came back empty" and "12 embeddings" in box.text()
        assert folder in box.text() and box.defaultButton().text() == "Keep"  # Enter keeps them
        qtbot.mouseClick(next(b for b in box.findChildren(QPushButton) if b.text() == button),
                         Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not box.isVisible() and not s.jobs.running(), timeout=TIMEOUT)

    folder = photo_folder(tmp_path)
    window.open_paths([folder])
    wait_collection(qtbot, window)
    assert cached_rows() == 12
    unplugged = tmp_path / "unplugged"
    shutil.move(folder, unplugged)
    Path(folder).mkdir()  # the mount point is there, its drive is not
    reopen_and_answer("Keep")
    assert cached_rows() == 12 and len(s.collection) == 0
    assert s.status == f"No images found in {folder}; its 12 cached embeddings are kept"
    reopen_and_answer("Forget")
    assert cached_rows() == 0 and s.status == f"Forgot 12 cached embeddings of {folder}"
