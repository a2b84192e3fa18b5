"""A file's content fingerprint: its size and a hash of its first and last 64 KiB.

The cache knows a file by (path, size, mtime_ns); a moved, renamed or copied file is a new path
and would be encoded again. Its fingerprint finds the embedding of the same bytes under their
old path instead (EmbeddingStore.reuse). Reading 128 KiB is a few percent of what decoding a
photo reads, and two different photos with the same size and the same first and last 64 KiB
(headers, EXIF, thumbnail, the end of the scan data) do not occur in practice.

What it does not catch, by design: a file whose content changes while its size and mtime stay
the same keeps its old embedding, as with rsync and make. Checking every cached file's bytes
on every scan would read 128 KiB per image per search.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from clipscape.models.scan import ImageFile

EDGE = 64 * 1024


def fingerprint(path: str, size: int) -> bytes | None:
    """16 bytes naming the content of a ``size``-byte file; None if it cannot be read."""
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=16)
    try:
        with open(path, "rb") as f:
            digest.update(f.read(EDGE))
            if size > EDGE:
                f.seek(max(EDGE, size - EDGE))
                digest.update(f.read(EDGE))
    except OSError:
        return None  # the decoder reports why; the file is simply encoded (or skipped)
    return digest.digest()


def fingerprints(files: Sequence[ImageFile], workers: int = 4) -> list[bytes | None]:
    """The fingerprint of each file, read by ``workers`` threads (file reads release the GIL)."""
    if len(files) < 2 * workers:
        return [fingerprint(f.path, f.size) for f in files]
    with ThreadPoolExecutor(workers, thread_name_prefix="clipscape-fingerprint") as pool:
        return list(pool.map(lambda f: fingerprint(f.path, f.size), files, chunksize=16))
