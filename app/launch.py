"""The ``clipscape`` command: the desktop window, or a headless subcommand.

``clipscape`` opens the window; ``clipscape FOLDER…`` opens it on folders or images;
``clipscape demo`` opens the bundled sample photos with the bundled model, fully offline;
``clipscape encode|search|similar|classify|export …`` run headless (models/cli.py) and never
import Qt, so they work on servers without a display.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from typing import Sequence

from clipscape.models.cli_args import HEADLESS_COMMANDS as HEADLESS
from clipscape.models.cli_args import PROG, add_model_arguments, add_version
from clipscape.resources import DEMO_IMAGES  # (re-exported for tests and tools)

DEMO_CLASSES = ("circle", "square", "triangle", "star")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clipscape`` console script."""
    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--self-test" in argv:   # headless, offline: models/selftest.py
        from clipscape.models.selftest import main as self_test

        return self_test([a for a in argv if a != "--self-test"])
    if argv and argv[0] in HEADLESS:
        from clipscape.models.cli import main as cli_main

        return cli_main(argv)
    args = gui_parser().parse_args(argv)
    return run_gui(args)


def gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="See a folder of images the way a CLIP model sees it.",
        epilog=f"headless commands (no window): {PROG} {{{','.join(HEADLESS)}}} --help")
    parser.add_argument("paths", nargs="*", metavar="FOLDER",
                        help="folders or images to open, or one embeddings dataset (a .parquet file or folder); "
                             "'demo' opens the bundled sample set with the demo model")
    add_model_arguments(parser)  # declared once, with the headless commands' (models/cli_args.py)
    add_version(parser)
    parser.add_argument("--self-test", action="store_true",  # handled in main(); listed for --help
                        help="check this install offline (demo model and photos), print one JSON line, exit")
    parser.add_argument("--exit-after-map", type=float, nargs="?", const=0.0, default=None,
                        help=argparse.SUPPRESS)  # app/startup_probe.py: tests and benchmarks of a real start
    return parser


def run_gui(args: argparse.Namespace) -> int:
    """Open the window (within a couple of seconds: torch and umap load later, in workers)."""
    demo = args.paths == ["demo"]
    paths = [str(DEMO_IMAGES)] if demo else args.paths
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        gui_parser().error(f"no such file or folder: {missing[0]}")
    model = ("demo", None) if demo else ((args.model, args.pretrained) if args.model else None)

    from PySide6.QtWidgets import QApplication

    from clipscape.app import file_open, startup_probe
    from clipscape.app.main_window import MainWindow
    from clipscape.app.settings import Settings
    from clipscape.app.welcome import first_run

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Clipscape")
    app.setOrganizationName("Clipscape")
    model, paths, demo = first_run(Settings(), model, paths, demo)   # app/welcome.py: asked once
    window = MainWindow(model=model, device=args.device, batch_size=args.batch_size)
    if demo:
        window.session.set_classes(list(DEMO_CLASSES))
        window.session.undo_stack.clear()   # the demo's classes are where the user starts, not an edit
    window.show()
    file_open.install(app, window)      # macOS: a folder dropped on the Dock icon
    if args.exit_after_map is not None:
        startup_probe.watch(app, window, args.exit_after_map)
    if paths:
        window.open_paths(paths)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
