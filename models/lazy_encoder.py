"""An encoder that builds its model only when something has to be encoded.

A search on a folder whose images are all cached, for a caption searched before, needs no
model: the image embeddings and the caption's embedding are in the store. What it needs is the
model's cache key, identity and dim, which are known only once the model is built (its
preprocessing comes from the built model). So the store records them under an alias: a hash of
everything that decides them before the build (the weights' identity, a local model's config
file, the open_clip, torch and Clipscape versions). When the alias is known, ``open_encoder``
returns a LazyEncoder carrying them, and torch and open_clip (3-4 s of imports on a laptop) are
loaded only when an image or a new text must be encoded. Texts are remembered in the store by
zeroshot.CachedTextEncoder, as class prompts are.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from typing import Any, Callable

from clipscape.models.encoder import Encoder, Located, ModelSpec, build_encoder, locate, pick_device
from clipscape.models.store import EmbeddingStore
from clipscape.models.weights import ModelUnavailable

_VERSIONED = ("open_clip_torch", "torch", "clipscape")


def open_encoder(spec: ModelSpec, store: EmbeddingStore, device: str = "auto", cache_dir: str | None = None,
                 tqdm_class: Any = None) -> "Encoder | LazyEncoder":
    """The encoder for ``spec``: built now the first time, afterwards a LazyEncoder until it is used.

    Raises ModelUnavailable as load_encoder does; a model whose weights cannot be had fails
    before anything is built or imported.
    """
    located = locate(spec, cache_dir, tqdm_class, hashes_dir=store.cache_dir)  # --cache-dir holds it all
    alias = model_alias(located)
    record = store.model_by_alias(alias) if alias is not None else None
    if record is None:
        encoder = build_encoder(located, device)
        if alias is not None:
            store.add_alias(alias, store.model_id(encoder.key, encoder.identity, encoder.dim))
        return encoder
    key = record[0]
    return LazyEncoder(*record, build=lambda: _rebuild(located, device, alias, key, store.cache_dir), device=device)


def model_alias(located: Located) -> str | None:
    """What ``located`` is recorded under in the store; None when a version cannot be read (no lazy load)."""
    try:
        versions = {name: importlib.metadata.version(name) for name in _VERSIONED}
    except importlib.metadata.PackageNotFoundError:
        return None
    config = hashlib.sha256(located.config.read_bytes()).hexdigest() if located.config is not None else None
    text = json.dumps({"name": located.name, "identity": located.identity, "config": config, "versions": versions},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _rebuild(located: Located, device: str, alias: str, key: str, cache_dir) -> Encoder:
    """Build the model a LazyEncoder (of ``key``) stands for; if it is another, record that and say so."""
    encoder = build_encoder(located, device)
    if encoder.key != key:  # cannot happen unless the alias misses something the build depends on
        with EmbeddingStore(cache_dir) as store:
            store.add_alias(alias, store.model_id(encoder.key, encoder.identity, encoder.dim))
            raise ModelUnavailable(f"model {located.spec.label} is not the one the cache recorded for it (its "
                                   "preprocessing changed); the record is updated: run the command again")
    return encoder


class LazyEncoder:
    """An Encoder's key, identity and dim from the store's record, and the model built on first use.

    Any other attribute (encode_texts, prepare, logit_scale, …) builds the model, then comes
    from it; ``device`` is the one the model runs (or would run) on.
    """

    def __init__(self, key: str, identity: dict[str, Any], dim: int, *, build: Callable[[], Encoder],
                 device: str = "auto") -> None:
        self.key, self.identity, self.dim = key, identity, dim
        self._build, self._requested, self._encoder = build, device, None

    @property
    def built(self) -> bool:
        return self._encoder is not None

    @property
    def device(self) -> str:
        return self._encoder.device if self._encoder is not None else pick_device(self._requested)

    def encoder(self) -> Encoder:
        """The built model (built now if it was not)."""
        if self._encoder is None:
            self._encoder = self._build()
        return self._encoder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.encoder(), name)
