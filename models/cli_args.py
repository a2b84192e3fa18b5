"""The command-line options of ``clipscape``, declared once for the window and the headless commands.

``app/launch.py`` builds the window's parser from ``add_model_arguments`` and ``add_version``;
``build_parser`` builds the headless commands' parser from the same declarations. Nothing here
imports more than the standard library, so ``--help``, ``--version`` and usage errors answer at
once, before torch is imported.
"""
from __future__ import annotations

import argparse
from typing import Any

PROG = "clipscape"
HEADLESS_COMMANDS = ("encode", "search", "similar", "classify", "export")
DEVICES = ("auto", "cpu", "cuda", "mps")


def add_model_arguments(group: Any) -> None:
    """--model, --pretrained, --device and --batch-size, on a parser or an argument group."""
    group.add_argument("--model", default=None,
                       help="open_clip model name (default ViT-B-32; the window: the one chosen last time), "
                            "'local-dir:FOLDER', or 'demo' (bundled, offline)")
    group.add_argument("--pretrained", default=None,
                       help="pretrained tag (default laion2b_s34b_b79k for ViT-B-32) or a checkpoint file")
    group.add_argument("--device", default="auto", choices=DEVICES)
    group.add_argument("--batch-size", type=positive, default=32, metavar="N", help="images per forward pass")


def add_version(parser: argparse.ArgumentParser) -> None:
    """--version: prints "clipscape X.Y.Z" (the installed distribution's version) and exits."""
    parser.add_argument("--version", action=_Version, help="show the version and exit")


class _Version(argparse.Action):
    """Like argparse's "version" action, but reads the version only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{PROG} {version()}")
        parser.exit()


def version() -> str:
    """The installed version of the clipscape distribution ("unknown" when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("clipscape")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The parser of the headless commands (encode, search, similar, classify, export)."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("model and cache")
    add_model_arguments(g)
    g.add_argument("--decode-workers", type=positive, default=None, metavar="N",
                   help="threads decoding images ahead of the model (default: up to 4, by CPU count)")
    g.add_argument("--cache-dir", default=None,
                   help="where embeddings are cached (default: $CLIPSCAPE_CACHE_DIR or the user cache dir)")
    g.add_argument("--include-hidden", action="store_true", help="also scan hidden files and folders")
    g.add_argument("--follow-links-out", action="store_true",
                   help="also follow symbolic links to folders outside FOLDER (off: a link to / or a network "
                        "share would scan all of it; such links are listed as skipped)")
    g.add_argument("--json", action="store_true", help="print a JSON document on stdout")
    g.add_argument("--quiet", action="store_true", help="no progress bars")

    parser = argparse.ArgumentParser(prog=PROG, description="Explore a folder of images with a CLIP model.")
    add_version(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("encode", parents=[common], help="embed every image of FOLDER into the cache")
    p.add_argument("folder", help="the folder of images; with --engine ray also a URI pyarrow reads (s3://…)")
    p.add_argument("--prune-missing", action="store_true",
                   help="also forget the cached embeddings of a folder that came back empty "
                        "(by default they are kept: an unmounted drive looks empty)")
    _ray_args(p)
    p = sub.add_parser("search", parents=[common], help="rank images by similarity to a caption")
    _source_args(p)
    p.add_argument("caption")
    p.add_argument("--top", type=positive, default=10, metavar="K")
    p = sub.add_parser("similar", parents=[common], help="images most similar to IMAGE")
    _source_args(p)
    p.add_argument("image")
    p.add_argument("--top", type=positive, default=10, metavar="K")
    p = sub.add_parser("classify", parents=[common], help="zero-shot class for every image")
    _source_args(p)
    _class_args(p, required=True)
    p = sub.add_parser("export", parents=[common], help="write embeddings, map, classes, scores to CSV or Parquet")
    _source_args(p)
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--csv", metavar="OUT", help="the CSV file to write")
    out.add_argument("--parquet", metavar="OUT",
                     help="the Parquet file to write (embedding as a vector column; opens in Embedding Atlas: "
                          "embedding-atlas OUT --vector embedding --image image --neighbors neighbors)")
    _class_args(p, required=False)
    p.add_argument("--query", default=None, help="add a 'score' column: similarity to this caption")
    p.add_argument("--projection", choices=("umap", "pca", "none"), default="umap")
    p.add_argument("--seed", type=int, default=0, help="UMAP random seed (default 0)")
    p.add_argument("--thumbnails", action="store_true",
                   help="with --parquet: an 'image' column of JPEG thumbnails (longest side 256 px)")
    p.add_argument("--neighbors", type=positive, default=None, metavar="K",
                   help="with --parquet: a 'neighbors' column, every image's K nearest by cosine")
    return parser


def _source_args(p: argparse.ArgumentParser) -> None:
    """FOLDER, or --embeddings DATASET: embeddings made elsewhere (models/datasets.py)."""
    p.add_argument("folder", nargs="?", default=None, help="the folder of images (or give --embeddings)")
    p.add_argument("--embeddings", default=None, metavar="DATASET",
                   help="use the embeddings in DATASET instead of a folder: a Parquet file or folder "
                        "(clipscape encode --engine ray, Embedding Atlas-style tables) or clip-retrieval output")
    p.add_argument("--vector", default=None, metavar="COLUMN",
                   help="the vector column of an --embeddings table that has several")


def _ray_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("encoding on a Ray cluster (pip install 'clipscape[ray]')")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process and the SQLite cache (default); ray: a Ray Data pipeline "
                        "writing a Parquet dataset to --out")
    g.add_argument("--out", default=None, metavar="DATASET",
                   help="with --engine ray: the Parquet dataset folder (or URI) to write; a re-run adds only "
                        "what it lacks")
    g.add_argument("--address", default=None,
                   help="with --engine ray: the cluster to join ('auto', 'ray://HEAD:10001'); default: start Ray here")
    g.add_argument("--workers", type=positive, default=None, metavar="N",
                   help="with --engine ray: model replicas (default: one per --gpus-per-worker GPUs, or half the CPUs)")
    g.add_argument("--gpus-per-worker", type=fraction, default=0.0, metavar="G",
                   help="with --engine ray: GPUs per model replica (0: CPU; 0.5 puts two replicas on a GPU)")


def fraction(text: str) -> float:
    """argparse type: a number of at least 0 (GPUs per worker may be a fraction)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def _class_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--classes", required=required, default=None,
                   help='comma-separated class names, e.g. "cat,dog,car"')
    p.add_argument("--threshold", type=probability, default=0.0,
                   help="below this probability an image is 'unknown' (0-1, default 0)")
    p.add_argument("--single-template", action="store_true",
                   help='use only "a photo of a {}." instead of the 80-prompt ensemble')


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def probability(text: str) -> float:
    """argparse type: a number between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value
