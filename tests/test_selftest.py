"""``clipscape --self-test``: passes on this install, prints one JSON line, and names what fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clipscape.models import selftest

REPO = Path(__file__).resolve().parents[1]
CHECKS = ["encode", "classify", "search", "project", "export"]


def test_self_test_passes_in_a_fresh_process_and_leaves_nothing_behind(tmp_path):
    """The real thing, as a user (or CI, or a bundle) runs it: the UMAP child process included."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "HOME": str(tmp_path / "home")}
    env.pop("CLIPSCAPE_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "clipscape.app", "--self-test", "--device", "cpu"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    report = json.loads(lines[0])
    assert report["self_test"] == "passed" and report["failed"] == []
    assert list(report["checks"]) == CHECKS and all(c["ok"] for c in report["checks"].values())
    assert report["checks"]["encode"]["embedded"] == 96 and report["checks"]["encode"]["reused_on_reopen"] == 96
    assert report["checks"]["project"]["umap_in_child_process"]
    assert report["checks"]["export"]["rows"] == 96
    assert report["frozen"] is False and report["device"] == "cpu"
    # torch._dynamo (imported by open_clip) makes an empty $TMPDIR/torchinductor_$USER on import
    left = [p.name for p in tmp.iterdir() if not p.name.startswith("torchinductor_")]
    assert left == [], "the temporary cache and CSV must be removed"
    assert not (tmp_path / "home").exists(), "the self-test writes nothing into the user's folders"


class _PcaPassedOffAsUmap:
    """A UMAP child that returns the PCA map: the projection check must see through it."""

    def run(self, embeddings, seed=0, progress=None, check=None):
        from clipscape.models.projection import pca_2d

        return pca_2d(embeddings)

    def close(self):
        pass


def run_in_process(monkeypatch, capsys, *argv: str) -> tuple[int, dict, str]:
    import clipscape.models.umap_process

    monkeypatch.setattr(clipscape.models.umap_process, "UmapProcess", _PcaPassedOffAsUmap)
    code = selftest.main(["--device", "cpu", *argv])
    out, err = capsys.readouterr()
    (line,) = out.strip().splitlines()
    return code, json.loads(line), err


def test_a_failing_check_is_named_with_a_non_zero_exit(monkeypatch, capsys):
    monkeypatch.setattr(selftest, "MIN_SHAPE_ACCURACY", 1.01)   # a known answer the model cannot meet
    code, report, err = run_in_process(monkeypatch, capsys)
    assert code == 1 and report["self_test"] == "failed"
    assert report["failed"] == ["classify", "project"]        # and the PCA map is not taken for UMAP
    assert report["checks"]["project"]["umap_trustworthiness"] < selftest.MIN_MAP_TRUST
    assert report["checks"]["encode"]["ok"] and report["checks"]["export"]["ok"]
    assert "check failed: classify" in err and "check failed: project" in err


def test_a_check_that_crashes_is_a_failed_check(monkeypatch, capsys):
    import clipscape.models.export

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(clipscape.models.export, "write_csv", broken)
    code, report, err = run_in_process(monkeypatch, capsys)
    assert code == 1 and "export" in report["failed"]
    assert "No space left on device" in report["checks"]["export"]["error"]
    assert "Traceback" in err


def test_demo_photo_names_carry_the_truth():
    assert selftest.truth("/x/0007_green_star_on_dotted.jpg") == ("green", "star")
    from clipscape.resources import DEMO_IMAGES

    pairs = [selftest.truth(p) for p in sorted(DEMO_IMAGES.glob("*.jpg"))]
    assert len(pairs) == selftest.DEMO_PHOTOS
    assert {c for c, _ in pairs} == set(selftest.COLOURS) and {s for _, s in pairs} == set(selftest.SHAPES)
    assert all(pairs.count(p) == 4 for p in set(pairs))


def test_neighbour_agreement():
    coords = np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1]], np.float32)
    assert selftest._neighbour_agreement(coords, np.array(["a", "a", "b", "b"]), k=1) == 1.0
    assert selftest._neighbour_agreement(coords, np.array(["a", "b", "a", "b"]), k=1) == 0.0


def test_launcher_hands_self_test_to_the_headless_module(monkeypatch):
    from clipscape.app import launch

    seen = []
    monkeypatch.setattr(selftest, "main", lambda argv: seen.append(argv) or 7)
    assert launch.main(["--device", "cpu", "--self-test"]) == 7
    assert seen == [["--device", "cpu"]]
    assert "--self-test" in launch.gui_parser().format_help()
