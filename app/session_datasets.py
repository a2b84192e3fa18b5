"""The session's way into embeddings made elsewhere: a Parquet dataset, an Embedding Atlas-style
table or clip-retrieval output (models/datasets.py), opened in place of a folder.

A mixin of Session (app/session.py), which owns the state it sets: ``dataset`` (what was
opened), ``dataset_source`` and ``text_block``, the reason caption search and classes cannot run
while the loaded model is not the one that made the embeddings. Nothing is encoded, so the map
and the gallery need no model at all.
"""
from __future__ import annotations

import os

from clipscape.app import tasks
from clipscape.models.datasets import Embeddings, check_model
from clipscape.models.display import printable


class DatasetJobs:
    """Opening embeddings files for a Session (see the module docstring)."""

    def open_embeddings(self, source: str, remember: bool = True) -> None:
        """Explore embeddings made elsewhere (a Parquet file or dataset folder, models/datasets.py).

        Nothing is encoded: the map and the gallery need no model. Caption search and classes
        need the model that made the embeddings; with another one loaded they say which.
        """
        self.roots, self.dataset, self.text_block = [], None, None
        self.dataset_source = os.path.abspath(os.fspath(source))
        if remember:
            self.settings.add_recent([self.dataset_source])
        for name in ("index", "preview"):
            self.jobs.cancel(name)
        self._take_collection(None)
        self._set_skipped([])
        self.last_index = None
        self._say(f"Reading {printable(self.dataset_source)}…", busy="index")
        self.jobs.start("index", tasks.open_embeddings, self.dataset_source, succeeded=self._on_embeddings,
                        failed=self._failed("Cannot open the embeddings", self.dataset_source),
                        cancelled=lambda: self._say("Opening the embeddings cancelled.", busy=None))
        if self.encoder is None and not self.jobs.is_running("model"):
            self.load_model()

    def _on_embeddings(self, dataset: Embeddings) -> None:
        self.dataset = dataset
        self._check_text_model()
        self._set_skipped(dataset.skipped)
        self._on_collection(dataset.collection)

    def _check_text_model(self) -> None:
        """Decide ``text_block`` for the open dataset and the loaded model, and say it if set."""
        if self.dataset is None or self.encoder is None:
            self.text_block = None
            return
        why = check_model(self.dataset, self.encoder)
        self.text_block = None if why is None else f"{why[0].upper()}{why[1:]} (Model ▸ Choose Model…)."
        if why is not None:
            self._say(self.text_block)
