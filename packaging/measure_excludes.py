"""What each exclusion in packaging/excludes.py takes out of the bundle, measured on disk.

    python packaging/build.py --no-excludes     # the baseline, into dist-baseline/
    python packaging/build.py                   # the bundle, into dist/
    python packaging/measure_excludes.py [--baseline dist-baseline/clipscape] [--bundle dist/clipscape]

For every exclusion it counts, in the baseline bundle, the files its globs match plus what
belongs to its modules: their folders under _internal/ (data, extension modules, libraries) and
their entries in the executable's compressed module archive (PYZ). Then it compares the total
with the real difference between the two bundles; the rest ("not attributed") is what the
excluded modules pulled in besides themselves. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from excludes import EXCLUSIONS, active  # noqa: E402


def files(folder: Path) -> dict[str, int]:
    """Bundle-relative path (inside _internal/, forward slashes) → size; symlinks count 0."""
    internal = folder / "_internal"
    return {p.relative_to(internal).as_posix(): (0 if p.is_symlink() else p.lstat().st_size)
            for p in internal.rglob("*") if p.is_file() or p.is_symlink()}


def pyz_entries(exe: Path) -> dict[str, int]:
    """Module name → compressed size in the PYZ embedded in ``exe``."""
    from PyInstaller.archive.readers import CArchiveReader

    pkg = CArchiveReader(str(exe))
    name = next(n for n, entry in pkg.toc.items() if entry[-1] == "z")
    return {module: entry[2] for module, entry in pkg.open_embedded_archive(name).toc.items()}


def owned(path_or_module: str, modules: tuple[str, ...], sep: str) -> bool:
    return any(path_or_module == m.replace(".", sep) or path_or_module.startswith(m.replace(".", sep) + sep)
               for m in modules)


def measure(baseline: Path, bundle: Path) -> list[tuple[str, int]]:
    base_files, base_pyz = files(baseline), pyz_entries(baseline / "clipscape")
    rows, counted = [], set()
    for e in active(sys.platform):
        size = 0
        for path, n in base_files.items():
            if path in counted:
                continue
            if any(fnmatch.fnmatch(path, g) for g in e.files) or owned(path, e.modules, "/"):
                size += n
                counted.add(path)
        size += sum(n for module, n in base_pyz.items() if owned(module, e.modules, "."))
        rows.append((e.name, size))
    return rows


def total(folder: Path) -> int:
    return sum(0 if p.is_symlink() else p.lstat().st_size for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, default=REPO / "dist-baseline" / "clipscape")
    ap.add_argument("--bundle", type=Path, default=REPO / "dist" / "clipscape")
    args = ap.parse_args()
    rows = measure(args.baseline, args.bundle)
    before, after = total(args.baseline), total(args.bundle)
    print("| exclusion | saves |\n| --- | ---: |")
    for name, size in rows:
        print(f"| {name} | {size / 1e6:,.0f} MB |")
    attributed = sum(size for _, size in rows)
    print(f"| not attributed (what the excluded modules pulled in) | {(before - after - attributed) / 1e6:,.0f} MB |")
    print(f"| **baseline → bundle** | **{before / 1e9:.2f} GB → {after / 1e9:.2f} GB "
          f"({(before - after) / 1e6:,.0f} MB, {100 * (before - after) / before:.0f} %)** |")
    missing = [e.name for e in EXCLUSIONS if e not in active(sys.platform)]
    if missing:
        print(f"\n(not on {sys.platform}: {', '.join(missing)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
