"""The Parquet vocabulary Clipscape writes and reads: column names, the vector type, the model record.

One module, so the Ray encoder's dataset (models/ray_encode.py), the export (models/export_parquet.py)
and the reader (models/datasets.py) cannot drift apart:

- ``embedding`` is a fixed-size list of float32 (``pa.list_(pa.float32(), D)``), the shape
  Embedding Atlas (``--vector embedding``), pandas and DuckDB read as one vector per row;
- ``path`` is the image's path (or URL) as text; ``size`` (bytes) and ``mtime_ns`` identify the
  file version that was encoded, as the SQLite cache's key does;
- the file's schema metadata holds ``clipscape`` → JSON ``{"model": identity, "model_key": key,
  "dim": D, "format": FORMAT}``, so a dataset says which model made it.

pyarrow is imported by the callers, not here at module level, so importing the names is free.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FORMAT = 1
METADATA_KEY = b"clipscape"
PATH, SIZE, MTIME, EMBEDDING, REASON = "path", "size", "mtime_ns", "embedding", "reason"
ROW_GROUP_ROWS = 25_000
"""Rows per Parquet row group (and per shard the Ray encoder writes): ~50 MB of 512-d vectors."""


@dataclass(frozen=True)
class ModelRecord:
    """Which model made a file's embeddings: open_clip identity, the cache key, the dimension."""

    identity: dict[str, Any]
    key: str
    dim: int

    def label(self) -> str:
        """A person's name for the model: "ViT-B-32/laion2b_s34b_b79k", "demo model (sha256 1a2b3c4d)"."""
        ident = self.identity or {}
        if ident.get("source") == "hub":
            return f"{ident.get('name')}/{ident.get('tag')}"
        digest = str(ident.get("weights_sha256", ""))[:8]
        name = ident.get("name") or ("a local-dir model" if ident.get("source") == "local-dir" else "a model")
        return f"{name} (weights sha256 {digest})" if digest else str(name)

    def metadata(self) -> dict[bytes, bytes]:
        """The schema metadata entry that records this model in a Parquet file."""
        value = {"model": self.identity, "model_key": self.key, "dim": self.dim, "format": FORMAT}
        return {METADATA_KEY: json.dumps(value, sort_keys=True).encode()}

    @classmethod
    def of_encoder(cls, encoder: Any) -> "ModelRecord":
        return cls(dict(encoder.identity), encoder.key, int(encoder.dim))

    @classmethod
    def from_metadata(cls, metadata: dict[bytes, bytes] | None) -> "ModelRecord | None":
        """The record in a Parquet schema's metadata, or None when the file has none (or a broken one)."""
        raw = (metadata or {}).get(METADATA_KEY)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
            return cls(dict(value["model"]), str(value["model_key"]), int(value["dim"]))
        except (ValueError, KeyError, TypeError):
            return None


def vector_type(dim: int):
    """The Arrow type of the ``embedding`` column: a fixed-size list of ``dim`` float32."""
    import pyarrow as pa

    return pa.list_(pa.float32(), dim)


def vectors_to_arrow(embeddings):
    """An N×D float32 array → a FixedSizeListArray without copying the values."""
    import numpy as np
    import pyarrow as pa

    flat = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), int(embeddings.shape[1]))
