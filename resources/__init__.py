"""Bundled data: the offline demo model and its photos, and the icon (installed as clipscape.resources).

Code finds these files through the constants here, so a checkout, an installed wheel and a
frozen bundle all resolve them the same way.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_MODEL = HERE / "demo_model"      # an open_clip local-dir: folder
DEMO_IMAGES = HERE / "demo_images"    # 96 photos of the shapes world
ICON = HERE / "clipscape.svg"
