"""Take the README screenshot from the real window: the demo set, a caption typed, a point hovered.

Usage (Linux, with Debian's xvfb and imagemagick installed):
    xvfb-run -a -s "-screen 0 1440x900x24" python resources/make_screenshot.py resources/screenshot.png

It opens the same MainWindow `clipscape demo` opens, waits for the UMAP map, types a caption,
hovers the best match, and captures the X screen with imagemagick's `import -window root`, so the
picture is what a user sees, pixel for pixel.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path


CAPTION = "a red circle"


def main(out: str) -> None:
    from PySide6.QtCore import QEvent, QPointF, QSettings, Qt
    from PySide6.QtGui import QCursor, QMouseEvent
    from PySide6.QtWidgets import QApplication

    from clipscape.app.launch import DEMO_CLASSES, DEMO_IMAGES
    from clipscape.app.main_window import MainWindow

    app = QApplication([])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings, model=("demo", None))
    window.setGeometry(0, 0, 1440, 900)
    window.classes.set_classes(list(DEMO_CLASSES))
    window.show()
    window.open_paths([str(DEMO_IMAGES)])
    _wait(app, lambda: window.map_kind == "umap" and window.classification is not None)
    window.search_bar.set_text(CAPTION)
    _wait(app, lambda: window.scores is not None)
    _wait(app, lambda: False, seconds=1.0)  # the colour bar appears and the plot settles
    best = int(window.gallery.rows()[0])
    plot = window.map.plot_widget()
    x, y = window.map.coords()[best]
    scene = plot.getPlotItem().vb.mapViewToScene(QPointF(float(x), float(y)))
    pos = QPointF(plot.mapFromScene(scene))
    move = QMouseEvent(QEvent.Type.MouseMove, pos, plot.viewport().mapToGlobal(pos), Qt.NoButton,
                       Qt.NoButton, Qt.NoModifier)
    QCursor.setPos(plot.viewport().mapToGlobal(pos).toPoint())  # where X thinks the pointer is
    _wait(app, lambda: False, seconds=0.5)
    QApplication.sendEvent(plot.viewport(), move)
    _wait(app, lambda: False, seconds=2.0)  # let the hover card's thumbnail arrive and paint
    subprocess.run(["import", "-window", "root", "-crop", "1440x900+0+0", out], check=True)
    window.close()


def _wait(app, done, seconds: float = 120.0) -> None:
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "screenshot.png")
