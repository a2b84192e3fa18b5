"""The ``clipscape`` command line: the same core as the desktop app, headless.

Every command indexes the folder first (only new or changed images are encoded; the rest come
from the cache), then does its job. Progress bars go to stderr; ``--json`` prints one JSON
document on stdout for scripts. Exit status: 0 when the run completed (skipped files are listed,
not fatal), 2 for a usage error, 1 with a one-line reason for anything fatal. File names in the
text output go through ``display.printable`` (a newline or ESC in a name cannot forge a line or
drive the terminal); the JSON output keeps them exact.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Sequence

from clipscape.models.cli_args import PROG, add_model_arguments, build_parser  # noqa: F401 (re-exported)
from clipscape.models.display import printable
from clipscape.models.weights import ModelUnavailable


class Fatal(Exception):
    """A one-line, user-facing reason to stop with exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clipscape`` console script."""
    multiprocessing.freeze_support()
    parser = build_parser()
    args = parser.parse_args(argv)
    classes = getattr(args, "classes", None)  # only classify and export have --classes
    if classes is not None:
        from clipscape.models.zeroshot import parse_classes

        args.class_list = parse_classes(classes)
        if not args.class_list:
            parser.error("--classes needs at least one class name")
    _check_source(parser, args)
    if args.command == "search" and not args.caption.strip():
        parser.error("the caption is empty")
    if getattr(args, "query", None) is not None and not args.query.strip():
        parser.error("--query is empty")
    if getattr(args, "csv", None) is not None and (args.thumbnails or args.neighbors is not None):
        parser.error("--thumbnails and --neighbors go with --parquet (a CSV has no room for them)")
    from clipscape.models.datasets import DatasetError
    from clipscape.models.store import CacheError

    try:
        result = COMMANDS[args.command](args)
    except (Fatal, ModelUnavailable, CacheError, DatasetError, OSError) as e:
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished batches are cached, rerun to resume", file=sys.stderr)
        return 130
    try:
        _emit(args, result)
        sys.stdout.flush()
    except BrokenPipeError:  # `clipscape search … | head -1`: the reader has all it wanted
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    return 0


def _check_source(parser, args) -> None:
    """Usage errors of FOLDER / --embeddings and of the Ray options (exit 2, before anything runs)."""
    if hasattr(args, "embeddings"):
        if (args.folder is None) == (args.embeddings is None):
            parser.error("give a FOLDER or --embeddings DATASET (one of them)")
        if args.vector is not None and args.embeddings is None:
            parser.error("--vector needs --embeddings")
    if getattr(args, "engine", None) == "ray":
        if args.out is None:
            parser.error("--engine ray needs --out DATASET (the Parquet dataset to write)")
        if args.prune_missing:
            parser.error("--prune-missing is for the local cache; a Ray dataset is only added to")
    elif getattr(args, "engine", None) == "local":
        given = [flag for flag, value in (("--out", args.out), ("--address", args.address),
                                          ("--workers", args.workers),
                                          ("--gpus-per-worker", args.gpus_per_worker or None)) if value is not None]
        if given:
            parser.error(f"{', '.join(given)} only go with --engine ray")


def _message(e: Exception) -> str:
    """One printable line for a fatal error; an OSError as "PATH: reason", not "[Errno 13] …: 'PATH'"."""
    if isinstance(e, OSError) and e.strerror:
        where = f"{printable(e.filename)}: " if e.filename is not None else ""
        return f"{where}{e.strerror.lower()}"
    return printable(str(e)) if isinstance(e, OSError) else str(e)


# What a shell reports for a command that SIGPIPE stopped (128 + 13), as for `cat`, `grep` & co.
EXIT_BROKEN_PIPE = 141


def _drop_stdout() -> None:
    """Point stdout at the null device, so the interpreter's flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


# --- shared steps -----------------------------------------------------------------------------

def _load(args):
    """(encoder, collection, summary) for args.folder, indexing as needed with a progress bar.

    With --embeddings the collection is the dataset's (models/datasets.py) and nothing is indexed.
    """
    from clipscape.models.encoder import ModelSpec
    from clipscape.models.lazy_encoder import open_encoder
    from clipscape.models.store import EmbeddingStore

    if getattr(args, "embeddings", None) is not None:
        return _load_dataset(args)
    folder = os.path.abspath(args.folder)
    if not os.path.exists(folder):
        raise Fatal(f"no such folder: {printable(args.folder)}")
    with EmbeddingStore(args.cache_dir) as store:  # opened first: an unusable cache fails before the model loads
        # built only if an image or a new text must be encoded (models/lazy_encoder.py)
        encoder = open_encoder(ModelSpec.parse(args.model, args.pretrained), store, device=args.device)
        collection, summary = _index(args, folder, encoder, store)
    if not args.json:
        for s in summary.skipped:
            print(f"skipped {printable(s.path)}: {printable(s.reason)}", file=sys.stderr)
        for k in summary.kept:
            print(_kept_line(k), file=sys.stderr)
    return encoder, collection, summary


def _load_dataset(args):
    """(encoder, collection, summary) of ``--embeddings``: the dataset's rows and the model that made them."""
    from clipscape.models.datasets import check_model, open_embeddings
    from clipscape.models.indexer import IndexProgress
    from clipscape.models.lazy_encoder import open_encoder
    from clipscape.models.store import EmbeddingStore

    started = time.perf_counter()
    dataset = open_embeddings(args.embeddings, vector=args.vector)
    with EmbeddingStore(args.cache_dir) as store:
        encoder = open_encoder(_dataset_spec(args, dataset), store, device=args.device)
    why = check_model(dataset, encoder)
    if why is not None:
        raise Fatal(why)
    collection = dataset.collection
    if not args.json:
        if dataset.model is None:
            print(f"{printable(args.embeddings)} does not record its model; assuming {encoder_label(encoder)} "
                  f"(its {collection.embeddings.shape[1]} dimensions match)", file=sys.stderr)
        for s in dataset.skipped:
            print(f"skipped {printable(s.path)}: {printable(s.reason)}", file=sys.stderr)
    n = len(collection)
    return encoder, collection, IndexProgress("done", total=n, done=n, reused=n, skipped=dataset.skipped,
                                              seconds=time.perf_counter() - started)


def _dataset_spec(args, dataset):
    """The model to embed captions with: --model if given, else the one the dataset records."""
    from clipscape.models.encoder import DEMO, ModelSpec, demo_weights_sha256

    if args.model is not None or dataset.model is None:
        return ModelSpec.parse(args.model, args.pretrained)
    ident = dataset.model.identity
    if ident.get("source") == "hub":
        return ModelSpec.parse(ident["name"], ident["tag"])
    if ident.get("source") == "local-dir" and ident.get("weights_sha256") == demo_weights_sha256():
        return ModelSpec.parse(DEMO)
    raise Fatal(f"{printable(args.embeddings)} was made with {dataset.model.label()}: "
                "pass --model (and --pretrained) to name it")


def encoder_label(encoder) -> str:
    from clipscape.models.parquet_schema import ModelRecord

    return ModelRecord(dict(encoder.identity), encoder.key, int(encoder.dim)).label()


def _index(args, folder: str, encoder, store):
    """(collection, last IndexProgress) of indexing ``folder``, with a progress bar."""
    from clipscape.models.indexer import index, run

    with _Bar(args, "encoding", "img") as bar:
        # Only encode deletes what the scan proved gone; search, similar, classify, export never delete.
        collection = run(index(folder, encoder, store, batch_size=args.batch_size,
                               decode_workers=args.decode_workers, include_hidden=args.include_hidden,
                               follow_links_out=args.follow_links_out,
                               prune=args.command == "encode",
                               prune_missing=getattr(args, "prune_missing", False)),
                         bar.update)
    return collection, bar.last


def _kept_line(kept) -> str:
    """Why cached embeddings were not deleted, and how to delete them if that is what is wanted."""
    if kept.reason == "empty":
        return (f"kept {kept.rows} cached embeddings of {printable(kept.path)}: the folder came back empty "
                f"(is its drive mounted?); {PROG} encode --prune-missing forgets them")
    if kept.reason == "link out":
        return (f"kept {kept.rows} cached embeddings under {printable(kept.path)}: it links out of the folder "
                "and was not followed (--follow-links-out follows it)")
    return f"kept {kept.rows} cached embeddings under {printable(kept.path)}: it could not be read"


def _summary(args, encoder, summary) -> dict[str, Any]:
    source = {"embeddings": os.path.abspath(args.embeddings)} if getattr(args, "embeddings", None) else {
        "folder": os.path.abspath(args.folder)}
    return source | {
        "model": encoder.identity,
        "device": encoder.device if args.json else None,  # (a model not built yet needs torch to say)
        "images": summary.total,
        "embedded": summary.embedded,
        "reused": summary.reused,
        "recognised": summary.recognised,  # of the reused: new paths whose content was cached (moved, copied)
        "skipped": [{"path": s.path, "reason": s.reason} for s in summary.skipped],
        "kept": [{"path": k.path, "rows": k.rows, "reason": k.reason} for k in summary.kept],
        "seconds": round(summary.seconds, 3),
        "images_per_second": round(summary.images_per_second, 2),
    }


class _Bar:
    """tqdm progress on stderr for IndexProgress items; remembers the last one."""

    def __init__(self, args, desc: str, unit: str):
        self.args, self.desc, self.unit, self.bar, self.last = args, desc, unit, None, None

    def __enter__(self):
        return self

    def update(self, p) -> None:
        self.last = p
        if self.args.quiet or p.stage in ("reopen", "scan"):
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.total, initial=p.done, desc=self.desc, unit=self.unit, file=sys.stderr,
                            dynamic_ncols=True, leave=False)
        self.bar.n = p.done
        self.bar.refresh()

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


# --- commands ---------------------------------------------------------------------------------

def cmd_encode(args) -> dict[str, Any]:
    if args.engine == "ray":
        return _encode_with_ray(args)
    encoder, collection, summary = _load(args)
    out = _summary(args, encoder, summary)
    out["text"] = (f"{len(collection)} images indexed with {encoder.identity.get('name', args.model)}: "
                   f"{summary.embedded} embedded, {summary.reused} from cache{_recognised(summary)}, "
                   f"{len(summary.skipped)} skipped "
                   f"in {summary.seconds:.1f} s ({summary.images_per_second:.1f} images/s)")
    return out


def _encode_with_ray(args) -> dict[str, Any]:
    """clipscape encode SOURCE --engine ray --out DATASET (models/ray_encode.py)."""
    from clipscape.models.encoder import ModelSpec
    from clipscape.models.ray_encode import RayUnavailable, encode_with_ray

    started = time.perf_counter()
    last = None
    try:
        with _Bar(args, "encoding (ray)", "img") as bar:
            for progress in encode_with_ray(args.folder, args.out, ModelSpec.parse(args.model, args.pretrained),
                                            address=args.address, workers=args.workers,
                                            gpus_per_worker=args.gpus_per_worker, batch_size=args.batch_size,
                                            include_hidden=args.include_hidden, device=args.device):
                last = progress
                if progress.stage != "list":
                    bar.update(progress)
    except RayUnavailable as e:
        raise Fatal(str(e)) from e
    seconds = time.perf_counter() - started
    if not args.json:
        for s in last.skipped:
            print(f"skipped {printable(s.path)}: {printable(s.reason)}", file=sys.stderr)
    rate = last.embedded / seconds if seconds > 0 else 0.0
    return {"source": args.folder, "dataset": args.out, "engine": "ray", "embedded": last.embedded,
            "already": last.already, "skipped": [{"path": s.path, "reason": s.reason} for s in last.skipped],
            "seconds": round(seconds, 3), "images_per_second": round(rate, 2),
            "text": (f"{last.embedded} images embedded with Ray into {printable(args.out)}, {last.already} already "
                     f"there, {len(last.skipped)} skipped in {seconds:.1f} s ({rate:.1f} images/s)")}


def _recognised(summary) -> str:
    return f" ({summary.recognised} moved, renamed or copied)" if summary.recognised else ""


def cmd_search(args) -> dict[str, Any]:
    from clipscape.models.search import search

    encoder, collection, summary = _load(args)
    with _texts(args, encoder) as texts:
        hits = search(collection, texts, args.caption, args.top)
    return _hits_result(args, encoder, summary, hits, {"caption": args.caption})


def cmd_similar(args) -> dict[str, Any]:
    from clipscape.models.search import similar

    encoder, collection, summary = _load(args)
    try:
        index = collection.index_of(args.image)
    except ValueError:
        raise Fatal(f"{printable(args.image)} is not among the indexed images of {printable(args.folder or args.embeddings)}") from None
    hits = similar(collection, index, args.top)
    return _hits_result(args, encoder, summary, hits, {"image": collection.paths[index]})


def _hits_result(args, encoder, summary, hits, query: dict) -> dict[str, Any]:
    out = _summary(args, encoder, summary) | query
    out["results"] = [{"rank": r + 1, "path": h.path, "score": round(h.score, 6)} for r, h in enumerate(hits)]
    out["text"] = "\n".join(f"{r + 1:4d}  {h.score:.4f}  {printable(h.path)}" for r, h in enumerate(hits))
    return out


def cmd_classify(args) -> dict[str, Any]:
    encoder, collection, summary = _load(args)
    result = _zero_shot(args, encoder, collection)
    out = _summary(args, encoder, summary)
    out["classes"] = args.class_list
    out["counts"] = result.counts()
    conf = result.confidence
    out["results"] = [{"path": p, "class": result.label(i), "probability": round(float(conf[i]), 6)}
                      for i, p in enumerate(collection.paths)]
    lines = [f"{printable(result.label(i)):>12}  {conf[i]:.3f}  {printable(p)}" for i, p in enumerate(collection.paths)]
    lines.append("counts: " + ", ".join(f"{k} {v}" for k, v in out["counts"].items()))
    out["text"] = "\n".join(lines)
    return out


def cmd_export(args) -> dict[str, Any]:
    from clipscape.models.projection import project
    from clipscape.models.search import text_scores

    given = args.parquet if args.parquet is not None else args.csv
    kind = "parquet" if args.parquet is not None else "csv"
    out_path = os.path.abspath(given)
    _check_writable(given, out_path)  # before encoding: a wrong target must not cost an hour
    encoder, collection, summary = _load(args)
    started = time.perf_counter()
    coords = project(collection.embeddings, args.projection, seed=args.seed)
    labels = probs = scores = None
    if args.classes is not None:
        result = _zero_shot(args, encoder, collection)
        labels, probs = result.labels, result.confidence
    if args.query is not None:
        with _texts(args, encoder) as texts:
            scores = text_scores(collection, texts, args.query)
    with _Bar(args, f"writing {'Parquet' if kind == 'parquet' else 'CSV'}", "row") as bar:
        def progress(done: int, total: int) -> None:
            bar.update(_Count(done, total))

        try:
            if kind == "parquet":
                from clipscape.models.export_parquet import model_record, write_parquet

                # the record comes from what a LazyEncoder carries: writing it builds no model
                write_parquet(out_path, collection.paths, collection.embeddings, coords=coords, classes=labels,
                              probabilities=probs, scores=scores, thumbnails=args.thumbnails,
                              neighbors=args.neighbors or 0,
                              model=model_record(encoder, collection.embeddings.shape[1]), progress=progress)
            else:
                from clipscape.models.export import write_csv

                write_csv(out_path, collection.paths, collection.embeddings, coords=coords, classes=labels,
                          probabilities=probs, scores=scores, progress=progress)
        except OSError as e:  # the disk filled up, the folder went away: name the user's file, not the temp one
            raise Fatal(f"cannot write {printable(given)}: {_reason(e)}") from e
    out = _summary(args, encoder, summary)
    out.update({kind: out_path, "rows": len(collection), "projection": args.projection,
                "export_seconds": round(time.perf_counter() - started, 3)})
    if kind == "parquet":
        out.update({"thumbnails": args.thumbnails, "neighbors": args.neighbors or 0})
    out["text"] = f"wrote {len(collection)} rows to {printable(out_path)}"
    return out


def _check_writable(given: str, path: str) -> None:
    """Fatal, naming the path as the user gave it, unless a file can be created beside ``path``."""
    import tempfile

    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise Fatal(f"cannot write {printable(given)}: its folder does not exist")
    if os.path.isdir(path):
        raise Fatal(f"cannot write {printable(given)}: it is a folder")
    try:  # the real test: permissions, a read-only mount, ACLs (os.access says yes to root)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".probe"):
            pass
    except OSError as e:
        raise Fatal(f"cannot write {printable(given)}: {_reason(e)}") from None


def _reason(e: OSError) -> str:
    """An OS error's reason in lower case, without the errno number or a file name."""
    return (e.strerror or str(e)).lower()


def _zero_shot(args, encoder, collection):
    """The classification for --classes, with prompt embeddings cached in the store and a progress bar."""
    from clipscape.models.zeroshot import zero_shot

    with _texts(args, encoder) as texts, _Bar(args, "class prompts", "prompt") as bar:
        return zero_shot(collection.embeddings, texts, args.class_list,
                         args.threshold, ensemble=not args.single_template,
                         progress=lambda done, total: bar.update(_Count(done, total)))


@contextmanager
def _texts(args, encoder):
    """The encoder with every text's embedding remembered in the store (a caption searched again needs no model)."""
    from clipscape.models.store import EmbeddingStore
    from clipscape.models.zeroshot import CachedTextEncoder

    with EmbeddingStore(args.cache_dir) as store:
        yield CachedTextEncoder(encoder, store)


class _Count:
    """Adapts (done, total) progress to the progress bar's IndexProgress-like interface."""

    stage = "count"

    def __init__(self, done: int, total: int):
        self.done, self.total = done, total


def _emit(args, result: dict[str, Any]) -> None:
    text = result.pop("text", "")
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif text:
        print(text)


COMMANDS = {"encode": cmd_encode, "search": cmd_search, "similar": cmd_similar,
            "classify": cmd_classify, "export": cmd_export}


if __name__ == "__main__":
    sys.exit(main())
