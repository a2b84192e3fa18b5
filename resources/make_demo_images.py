"""Regenerate the bundled demo photo folder (resources/demo_images) from the shapes world.

Usage: python resources/make_demo_images.py [--out resources/demo_images] [--n 96] [--seed 4242]
The seed differs from the ones the demo model was trained and tested on, so the demo shows the
model on images it has never seen. File names say what each image shows (handy in the gallery).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from clipscape.models.shapes_world import write_folder  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "demo_images")
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--seed", type=int, default=4242)
    a = ap.parse_args()
    if a.out.exists():
        shutil.rmtree(a.out)
    write_folder(a.out, a.n, a.seed, size=256, quality=88)
    print(f"wrote {a.n} images to {a.out}")


if __name__ == "__main__":
    main()
