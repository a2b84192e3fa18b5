"""Render resources/clipscape.svg into the icon files the platforms want.

Usage: python packaging/make_icons.py OUT_DIR
Writes clipscape-{16..512}.png (Linux hicolor sizes), clipscape.ico (Windows exe) and
clipscape.icns (macOS .app). Qt renders the SVG (offscreen, no display needed), Pillow writes
the containers, so nothing beyond the app's own dependencies is needed.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SVG = Path(__file__).resolve().parents[1] / "resources" / "clipscape.svg"


def render(out: Path) -> dict[int, Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - Qt needs one for painting
    renderer = QSvgRenderer(str(SVG))
    pngs = {}
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        pngs[size] = out / f"clipscape-{size}.png"
        image.save(str(pngs[size]))
    return pngs


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "build/icons")
    out.mkdir(parents=True, exist_ok=True)
    pngs = render(out)
    from PIL import Image

    big = Image.open(pngs[256])
    big.save(out / "clipscape.ico", sizes=[(s, s) for s in SIZES if s <= 256])
    Image.open(pngs[512]).save(out / "clipscape.icns")
    print(f"icons in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
