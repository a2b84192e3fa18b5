"""Find the image files under folders: paths, sizes and modification times.

The scan feeds the embedding store, which uses (size, mtime_ns) to tell new or changed files
from ones already embedded, so it must be quick on big photo libraries: it walks with
``os.scandir`` and stats only files whose extension says they are images.  It must also
survive real folders: symlinks (followed, never looping), dangling links, unreadable
folders and file names that are not valid UTF-8 are reported or handled, never fatal.

A symbolic link to a folder outside the scanned folders is not followed unless asked
(``follow_links_out``): one link to ``/`` or to a network share would otherwise scan a whole
disk (1.1 M files, measured). It is reported as skipped, so the user sees it and can open its
target too (a folder inside any scanned folder is followed). Links to single files are
followed wherever they point: each costs one file.
"""

from __future__ import annotations

import errno
import operator
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from stat import S_ISREG
from typing import NamedTuple, Union

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# The start of a Skipped reason for a folder link that was not followed (the indexer keys on it).
LINK_OUT = "link to a folder outside the scanned folders"


def _image_extensions() -> frozenset[str]:
    """Extensions we scan for; HEIC/HEIF only when the pillow_heif decoder is installed."""
    extensions = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    try:
        import pillow_heif  # noqa: F401  (only asking whether it imports)
    except (ImportError, OSError):
        pass
    else:
        extensions |= {".heic", ".heif"}
    return frozenset(extensions)


IMAGE_EXTENSIONS: frozenset[str] = _image_extensions()


class ImageFile(NamedTuple):
    """An image file found by the scan.

    ``path`` is absolute but not resolved through a symlink to the file, so the user sees the
    name they put there.  Non-UTF-8 names are surrogate-escaped (``os.fsencode`` gives back
    the original bytes).  ``size`` and ``mtime_ns`` describe the target of a symlink.

    A named tuple, not a frozen dataclass: one is made per file of the library on every open,
    and a tuple is built in C (a million of them: 0.3 s instead of 1.1 s). Tuples sort by path.
    """

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """Something the scan could not take, with a short reason a person can read."""

    path: str
    reason: str


@dataclass
class ScanResult:
    """Everything one scan found: image files sorted by path (no duplicates), and skips."""

    files: list[ImageFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def scan(paths: StrPath | Iterable[StrPath], *, include_hidden: bool = False,
         follow_links_out: bool = False) -> ScanResult:
    """Scan ``paths`` completely (see ``iter_scan``) and return the sorted result."""
    result = ScanResult()
    for item in iter_scan(paths, include_hidden=include_hidden, follow_links_out=follow_links_out):
        (result.files if isinstance(item, ImageFile) else result.skipped).append(item)
    result.files.sort()   # by path: paths are unique, so the other fields never decide
    result.skipped.sort(key=lambda s: s.path)
    return result


def iter_scan(
    paths: StrPath | Iterable[StrPath], *, include_hidden: bool = False, follow_links_out: bool = False
) -> Iterator[ImageFile | Skipped]:
    """Yield each image file (``ImageFile``) and each problem (``Skipped``) under ``paths``.

    ``paths`` is one path or a list of them; a folder is scanned recursively, a file is taken
    as it is (it only has to have an image extension).  Names starting with "." are skipped
    inside folders unless ``include_hidden``; a path given explicitly is always taken.
    Symlinks to files are followed; symlinks to folders too if their target lies inside one
    of ``paths`` or ``follow_links_out`` (otherwise they are skipped, with a reason starting
    ``LINK_OUT``); a folder reached twice (a link loop, or two roots that overlap) is scanned once, and a file path is yielded once.  Real folders are
    walked before linked ones within a root, so a file reachable both ways is reported under
    its real path.

    Raises ``FileNotFoundError`` at once, before yielding, if a given path does not exist.
    The walk itself is lazy: a caller cancels by no longer iterating.
    """
    roots = [_checked_root(path) for path in _as_list(paths)]
    return _walk_roots(roots, include_hidden, follow_links_out)


def _as_list(paths: StrPath | Iterable[StrPath]) -> list[StrPath]:
    """Accept a single path or an iterable of paths."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        return [paths]
    return list(paths)


def _checked_root(path: StrPath) -> str:
    """Return ``path`` as an absolute str; raise ``FileNotFoundError`` if it does not exist.

    Other errors (say, a parent folder without permission) are left for the walk to report
    as ``Skipped``: the path may well exist, the user just cannot read it.
    """
    root = os.path.abspath(os.fsdecode(path))
    try:
        os.stat(root)
    except FileNotFoundError:
        what = "broken symbolic link" if os.path.islink(root) else "no such file or folder"
        raise FileNotFoundError(errno.ENOENT, f"cannot scan: {what}", root) from None
    except OSError:
        pass
    return root


def _walk_roots(roots: list[str], include_hidden: bool, follow_links_out: bool) -> Iterator[ImageFile | Skipped]:
    """Scan every root in turn, sharing the seen folders and paths so nothing comes twice."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_paths: set[str] = set()
    inside = None if follow_links_out else tuple(os.path.realpath(r) for r in roots if os.path.isdir(r))
    if len(roots) == 1 and os.path.isdir(roots[0]):  # one tree yields no path twice: no set of them
        yield from _walk_tree(roots[0], include_hidden, seen_dirs, inside)
        return
    for root in roots:
        if os.path.isdir(root):
            items = _walk_tree(root, include_hidden, seen_dirs, inside)
        else:
            items = iter([_root_file(root)])
        for item in items:
            if item.path not in seen_paths:
                seen_paths.add(item.path)
                yield item


def _root_file(path: str) -> ImageFile | Skipped:
    """Take a file named explicitly as a root, if its extension is an image one."""
    if not _has_image_extension(os.path.basename(path)):
        extension = os.path.splitext(path)[1] or "no extension"
        return Skipped(path, f"not a supported image type ({extension})")
    try:
        return _image_file(path, os.stat(path))
    except OSError as exc:
        return Skipped(path, f"cannot read file: {_describe(exc)}")


def _walk_tree(
    root: str, include_hidden: bool, seen_dirs: set[tuple[int, int]], inside: tuple[str, ...] | None = None
) -> Iterator[ImageFile | Skipped]:
    """Walk the folder ``root`` depth-first without recursion (deep trees are fine).

    Real sub-folders go on one stack and symlinked ones on another that is only drained when
    the first is empty, so real paths win over linked ones.  A folder is scanned only if its
    (st_dev, st_ino) is new: that is what stops symlink loops. A linked folder whose target is
    not in one of the real folders ``inside`` (None: no limit) is skipped.
    """
    try:
        root_key = _dir_key(os.stat(root))
    except OSError as exc:
        yield Skipped(root, f"cannot read folder: {_describe(exc)}")
        return
    real_dirs: list[tuple[str, tuple[int, int]]] = [(root, root_key)]
    linked_dirs: list[tuple[str, tuple[int, int]]] = []
    while real_dirs or linked_dirs:
        folder, key = real_dirs.pop() if real_dirs else linked_dirs.pop()
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        entries, error = _list_dir(folder)
        if error is not None:
            yield Skipped(folder, f"cannot read folder: {_describe(error)}")
        subdirs: list[os.DirEntry[str]] = []
        # The loop runs once per file of the library: the common case (a regular image file that
        # stats) is inlined; anything unusual goes through the helpers below.
        for entry in entries:
            name = entry.name
            if name[0] == "." and not include_hidden:
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(entry)
                continue
            stem = name.lstrip(".")
            dot = stem.rfind(".")
            if dot <= 0 or stem[dot:].lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                info = entry.stat()
            except OSError:
                yield _entry_file(entry)   # says why (broken link, gone, unreadable)
                continue
            if S_ISREG(info.st_mode):
                yield ImageFile(entry.path, info.st_size, info.st_mtime_ns)
            else:
                yield Skipped(entry.path, "not a regular file")
        for entry in reversed(subdirs):  # reversed: the stack then pops them in name order
            yield from _push_dir(entry, real_dirs, linked_dirs, inside)


def _list_dir(folder: str) -> tuple[list[os.DirEntry[str]], OSError | None]:
    """List ``folder`` sorted by name; on an error return what was read and the error."""
    entries: list[os.DirEntry[str]] = []
    error = None
    try:
        with os.scandir(folder) as iterator:
            entries.extend(iterator)   # what was read before an error is kept
    except OSError as exc:
        error = exc
    entries.sort(key=_name)
    return entries, error


_name = operator.attrgetter("name")


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether ``entry`` is a folder or a link to one (False if that cannot be told)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _push_dir(
    entry: os.DirEntry[str],
    real_dirs: list[tuple[str, tuple[int, int]]],
    linked_dirs: list[tuple[str, tuple[int, int]]],
    inside: tuple[str, ...] | None = None,
) -> Iterator[Skipped]:
    """Queue a sub-folder with its identity, or yield why it cannot (or will not) be scanned."""
    try:
        key = _dir_key(entry.stat())
        is_link = entry.is_symlink()
    except OSError as exc:
        yield Skipped(entry.path, f"cannot read folder: {_describe(exc)}")
        return
    if is_link and inside is not None:
        target = os.path.realpath(entry.path)
        if not any(target == r or target.startswith(r.rstrip(os.sep) + os.sep) for r in inside):
            yield Skipped(entry.path, f"{LINK_OUT} ({target}): not followed; open that folder too to include it")
            return
    (linked_dirs if is_link else real_dirs).append((entry.path, key))


def _entry_file(entry: os.DirEntry[str]) -> ImageFile | Skipped:
    """Stat an image-named entry (through a symlink) into an ``ImageFile``, or say why not."""
    try:
        return _image_file(entry.path, entry.stat())
    except FileNotFoundError:
        if entry.is_symlink():
            return Skipped(entry.path, "broken symbolic link (target missing)")
        return Skipped(entry.path, "file disappeared during the scan")
    except OSError as exc:
        return Skipped(entry.path, f"cannot read file: {_describe(exc)}")


def _image_file(path: str, info: os.stat_result) -> ImageFile | Skipped:
    """Build the ``ImageFile`` for ``path``; refuse non-regular files (a FIFO would hang)."""
    if not stat.S_ISREG(info.st_mode):
        return Skipped(path, "not a regular file")
    return ImageFile(path, info.st_size, info.st_mtime_ns)


def _has_image_extension(name: str) -> bool:
    """Case-insensitive test of a file name's extension (.JPG and .Jpeg count), as os.path.splitext
    sees it (leading dots are not one), without its cost: this runs once per file of the library."""
    stem = name.lstrip(".")
    dot = stem.rfind(".")
    return dot > 0 and stem[dot:].lower() in IMAGE_EXTENSIONS


def _dir_key(info: os.stat_result) -> tuple[int, int]:
    """The identity of a folder, whatever path reached it."""
    return info.st_dev, info.st_ino


def _describe(exc: OSError) -> str:
    """A short lower-case reason for an OS error, e.g. "permission denied"."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()
