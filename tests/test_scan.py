"""Tests for models.scan: what a real photo folder throws at a scanner."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from PIL import Image

from clipscape.models.images import load_rgb
from clipscape.models.scan import IMAGE_EXTENSIONS, LINK_OUT, ImageFile, ScanResult, Skipped, iter_scan, scan

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="Linux file-system behaviour")


def touch(path: Path, content: bytes = b"x") -> Path:
    """Create a file (and its folders); the scan looks at names, never at content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def paths_of(result: ScanResult) -> list[str]:
    return [item.path for item in result.files]


def test_extensions_are_the_documented_set():
    base = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    heif = {".heic", ".heif"} if importlib.util.find_spec("pillow_heif") else set()
    assert IMAGE_EXTENSIONS == base | heif


def test_nested_folders_case_insensitive_extensions_sorted(tmp_path):
    wanted = [
        touch(tmp_path / "a.JPG", b"12345"),
        touch(tmp_path / "b.Jpeg"),
        touch(tmp_path / "sub" / "c.png"),
        touch(tmp_path / "sub" / "deeper" / "d.TIFF"),
        touch(tmp_path / "sub" / "deeper" / "e.webp"),
    ]
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "sub" / "raw.cr2")
    touch(tmp_path / "sub" / "jpg")  # no extension at all
    result = scan(tmp_path)
    assert paths_of(result) == sorted(str(p) for p in wanted)
    assert result.skipped == []
    first = result.files[0]
    assert first == ImageFile(str(wanted[0]), 5, os.stat(wanted[0]).st_mtime_ns)


def test_hidden_files_and_folders_skipped_unless_asked(tmp_path):
    visible = touch(tmp_path / "seen.png")
    hidden_file = touch(tmp_path / ".secret.png")
    hidden_dir_file = touch(tmp_path / ".thumbnails" / "t.png")
    assert paths_of(scan(tmp_path)) == [str(visible)]
    assert set(paths_of(scan(tmp_path, include_hidden=True))) == {
        str(visible),
        str(hidden_file),
        str(hidden_dir_file),
    }


def test_hidden_root_given_explicitly_is_scanned(tmp_path):
    inside = touch(tmp_path / ".library" / "a.png")
    assert paths_of(scan(tmp_path / ".library")) == [str(inside)]


def test_symlink_to_file_is_followed_but_not_resolved(tmp_path):
    target = touch(tmp_path / "elsewhere" / "real.png", b"0123456789")
    root = tmp_path / "root"
    root.mkdir()
    link = root / "link.jpg"
    link.symlink_to(target)
    result = scan(root)
    assert result.files == [ImageFile(str(link), 10, os.stat(target).st_mtime_ns)]


def test_a_folder_link_out_of_the_scanned_folders_is_skipped_unless_asked(tmp_path):
    touch(tmp_path / "outside" / "o.png")
    root = tmp_path / "root"
    touch(root / "own.png")
    (root / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "to_slash").symlink_to("/", target_is_directory=True)  # was: the whole disk scanned
    result = scan(root)
    assert paths_of(result) == [str(root / "own.png")]
    assert [(s.path, s.reason.startswith(LINK_OUT)) for s in result.skipped] == [
        (str(root / "linked"), True), (str(root / "to_slash"), True)]
    assert str(tmp_path / "outside") in result.skipped[0].reason
    assert paths_of(scan(root / "linked", follow_links_out=False)) == [str(root / "linked" / "o.png")]  # a root
    # opening the target too includes it, under the link's path as before
    both = scan([root, tmp_path / "outside"])
    assert paths_of(both) == [str(root / "linked" / "o.png"), str(root / "own.png")]
    assert [s.path for s in both.skipped] == [str(root / "to_slash")]


def test_symlink_to_outside_folder_is_scanned_under_the_link_path_when_asked(tmp_path):
    touch(tmp_path / "outside" / "o.png")
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert paths_of(scan(root, follow_links_out=True)) == [str(root / "linked" / "o.png")]


def test_a_folder_link_inside_the_scanned_folder_is_followed(tmp_path):
    touch(tmp_path / "root" / "deep" / "down" / "d.png")
    (tmp_path / "root" / "shortcut").symlink_to(tmp_path / "root" / "deep" / "down", target_is_directory=True)
    result = scan(tmp_path / "root")
    assert paths_of(result) == [str(tmp_path / "root" / "deep" / "down" / "d.png")] and result.skipped == []


def test_symlink_loop_terminates_with_each_real_file_once(tmp_path):
    top = touch(tmp_path / "top.png")
    inner = touch(tmp_path / "sub" / "inner.png")
    (tmp_path / "sub" / "back_to_parent").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "sub" / "self").symlink_to(tmp_path / "sub", target_is_directory=True)
    result = scan(tmp_path)
    assert paths_of(result) == sorted([str(top), str(inner)])
    assert result.skipped == []


def test_real_path_wins_over_a_link_to_a_sibling(tmp_path):
    real = touch(tmp_path / "z_real" / "photo.png")
    (tmp_path / "a_link").symlink_to(tmp_path / "z_real", target_is_directory=True)
    assert paths_of(scan(tmp_path)) == [str(real)]  # even though "a_link" sorts first


def test_dangling_link_is_reported(tmp_path):
    keep = touch(tmp_path / "keep.png")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "deleted.txt")  # not an image: ignored
    result = scan(tmp_path)
    assert paths_of(result) == [str(keep)]
    assert result.skipped == [Skipped(str(tmp_path / "gone.jpg"), "broken symbolic link (target missing)")]


def test_file_link_loop_is_reported(tmp_path):
    (tmp_path / "a.jpg").symlink_to(tmp_path / "b.jpg")
    (tmp_path / "b.jpg").symlink_to(tmp_path / "a.jpg")
    reasons = {s.path: s.reason for s in scan(tmp_path).skipped}
    assert reasons == {
        str(tmp_path / "a.jpg"): "cannot read file: symbolic link loop",
        str(tmp_path / "b.jpg"): "cannot read file: symbolic link loop",
    }


@linux_only
def test_fifo_with_image_name_is_not_taken(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    assert scan(tmp_path) == ScanResult([], [Skipped(str(tmp_path / "pipe.jpg"), "not a regular file")])


def test_single_file_path_is_taken_as_is(tmp_path):
    photo = touch(tmp_path / "deep" / "photo.PNG", b"abc")
    result = scan(photo)
    assert result.files == [ImageFile(str(photo), 3, os.stat(photo).st_mtime_ns)]


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    photo = touch(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    assert paths_of(scan("photo.png")) == paths_of(scan(".")) == [str(photo)]


def test_explicit_non_image_file_is_skipped(tmp_path):
    notes = touch(tmp_path / "notes.txt")
    assert scan(notes) == ScanResult([], [Skipped(str(notes), "not a supported image type (.txt)")])


def test_several_roots_overlapping_give_no_duplicates(tmp_path):
    a = touch(tmp_path / "a.png")
    b = touch(tmp_path / "sub" / "b.png")
    result = scan([tmp_path / "sub", str(tmp_path), a, os.fsencode(b)])
    assert paths_of(result) == sorted([str(a), str(b)])


def test_missing_root_raises_before_anything_is_yielded(tmp_path):
    touch(tmp_path / "a.png")
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError) as info:
        iter_scan([tmp_path, missing])  # raised at call time, not at some later next()
    assert info.value.filename == str(missing)
    assert "no such file or folder" in str(info.value)


def test_broken_link_as_root_says_so(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="broken symbolic link"):
        scan(tmp_path / "link")


def test_unreadable_folder_is_skipped_and_scan_goes_on(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    touch(locked / "hidden_from_us.png")
    fine = touch(tmp_path / "open" / "fine.png")
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)  # simulated, so it also works as root
    result = scan(tmp_path)
    assert paths_of(result) == [str(fine)]
    assert result.skipped == [Skipped(str(locked), "cannot read folder: permission denied")]


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_unreadable_folder_for_real(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import run_unprivileged

    locked = tmp_path / "locked"
    touch(locked / "a.png")
    fine = touch(tmp_path / "fine.png")
    code = ("import json, sys; from clipscape.models.scan import scan; r = scan(sys.argv[1]); "
            "print(json.dumps([[f.path for f in r.files], [[k.path, k.reason] for k in r.skipped]]))")
    locked.chmod(0)
    try:  # as root (CI), without the power to ignore permissions
        proc = run_unprivileged([sys.executable, "-c", code, tmp_path], capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [[str(fine)], [[str(locked), "cannot read folder: permission denied"]]]


@linux_only
def test_non_utf8_name_is_scanned_and_loaded(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    descriptor = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o644)
    with os.fdopen(descriptor, "wb") as stream:
        Image.new("RGB", (5, 3), (10, 200, 30)).save(stream, format="PNG")
    [found] = scan(tmp_path).files
    assert isinstance(found.path, str)
    assert os.fsencode(found.path) == raw
    image = load_rgb(found.path)
    assert image.size == (5, 3)
    assert image.getpixel((2, 1)) == (10, 200, 30)


def test_iter_scan_is_lazy(tmp_path, monkeypatch):
    for index in range(5):
        touch(tmp_path / f"folder{index}" / "photo.png")
    calls = []
    real_scandir = os.scandir

    def counting_scandir(path):
        calls.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    items = iter_scan(tmp_path)
    assert calls == []  # nothing walked until asked
    first = next(items)
    assert first == ImageFile(str(tmp_path / "folder0" / "photo.png"), 1, first.mtime_ns)
    assert len(calls) == 2  # the root and folder0 only: stopping here cancels the rest
    items.close()
