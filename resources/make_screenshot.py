"""Take the README screenshot from the real window: the demo set, a caption typed, a point hovered.

Usage (Linux, with Debian's xvfb and imagemagick installed):
    xvfb-run -a -s "-screen 0 1280x800x24" python resources/make_screenshot.py resources/screenshot.png
    xvfb-run -a -s "-screen 0 1920x1080x24" python resources/make_screenshot.py resources/screenshot-1920.png

It opens the same MainWindow `clipscape demo` opens, at the size it picks for that screen, waits
for the UMAP map, types a caption, previews and hovers the best match, and captures the window's
area of the X screen with imagemagick's `import -window root`, so the picture is what a user
sees, pixel for pixel.
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
    session = window.session
    session.set_classes(list(DEMO_CLASSES))
    window.show()
    window.open_paths([str(DEMO_IMAGES)])
    _wait(app, lambda: session.map_kind == "umap" and session.classification is not None
          and not session.jobs.running())
    window.search_bar.type_caption(CAPTION)
    _wait(app, lambda: session.scores is not None)
    best = int(window.gallery.rows()[0])
    session.set_preview(best)
    _wait(app, lambda: False, seconds=1.0)  # the colour bar appears and the plot settles
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
    g = window.frameGeometry()
    subprocess.run(["import", "-window", "root", "-crop", f"{g.width()}x{g.height()}+{g.x()}+{g.y()}", out],
                   check=True)
    window.close()


def _wait(app, done, seconds: float = 120.0) -> None:
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "screenshot.png")
