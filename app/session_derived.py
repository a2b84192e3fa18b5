"""What the views draw, derived from the session's state: legend, visible and dimmed rows, top-k,
the gallery's rows, a row's class as text.

A mixin of Session, kept apart so session.py holds the state and its changes and this module
the read-only questions views ask of it. All of it is vectorised numpy: nothing here loops
over the images in Python (ARCHITECTURE.md, threading rule 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipscape.models.collection import Collection, all_rows
from clipscape.models.search import score_range
from clipscape.models.zeroshot import unknown_label

UNCLUSTERED = "unclustered"
TOP_K = 10


@dataclass(frozen=True)
class Query:
    """What the images are ranked by: a caption, or the image at ``row`` (named for display)."""

    kind: str          # "text" or "image"
    text: str          # the caption, or the image's path
    row: int = -1


@dataclass(frozen=True)
class LegendEntry:
    label: str
    count: int
    slot: int | None   # palette slot; None draws the "unknown" grey
    hidden: bool


class DerivedState:
    """Read-only views of a Session's state (see the module docstring)."""

    def unknown_label(self) -> str:
        """What the images below the unknown threshold are called ("(unknown)" if a class is "unknown")."""
        return unknown_label(self.class_list.names)

    def derive(self, name: str, key: tuple, compute):
        """``compute()``, kept until an element of ``key`` is another object (or, for a frozenset,
        another set): each view asks the same question after a change, and at 1M rows every
        answer is a pass or two over N. The arrays kept are made read-only, so no caller can
        change what the next one gets."""
        memo = self.__dict__.setdefault("_memos", {})
        found = memo.get(name)
        if found is not None and len(found[0]) == len(key) and all(
                a is b or (isinstance(a, frozenset) and a == b) for a, b in zip(found[0], key)):
            return found[1]
        value = compute()
        for part in value if isinstance(value, tuple) else (value,):
            if isinstance(part, np.ndarray):
                part.flags.writeable = False
        memo[name] = (key, value)
        return value

    def seed(self, name: str, key: tuple, value) -> None:
        """What ``derive(name, key, …)`` is to return: a value a job computed off the GUI thread."""
        self.derive(name, key, lambda: value)

    def legend_labels(self) -> tuple[list[str], np.ndarray, list[int | None]]:
        """(labels, per-row index into labels, palette slot per label) for the colour mode's legend."""
        key = (self.collection, self.colour_mode, self.classification, self.cluster_ids, self.class_list)
        return self.derive("legend_labels", key, self._legend_labels)

    def _legend_labels(self) -> tuple[list[str], np.ndarray, list[int | None]]:
        n = len(self.collection) if self.collection is not None else 0
        if self.colour_mode == "class" and self.classification is not None:
            names = list(self.classification.classes)
            slots = [self.class_list.slot(x) if x in self.class_list.names else None for x in names]
            best = self.classification.best
            return names + [self.classification.unknown_label], np.where(best < 0, len(names), best), slots + [None]
        if self.colour_mode == "cluster" and self.cluster_ids is not None:
            k = int(self.cluster_ids.max()) + 1 if len(self.cluster_ids) else 0
            ids = self.cluster_ids
            return ([f"cluster {i + 1}" for i in range(k)] + [UNCLUSTERED], np.where(ids < 0, k, ids),
                    list(range(k)) + [None])
        return [], np.zeros(n, np.intp), []

    def legend(self) -> list[LegendEntry]:
        """The legend of the colour mode: labels with at least one image (names always), counts."""
        labels, of, slots = self.legend_labels()
        counts = np.bincount(of, minlength=len(labels)) if len(labels) else []
        keep_all = set(self.class_list.names) if self.colour_mode == "class" else set()
        return [LegendEntry(label, int(count), slot, label in self.hidden)
                for label, count, slot in zip(labels, counts, slots) if count or label in keep_all]

    def visible(self) -> np.ndarray:
        """N bools (read-only): False for the images of hidden legend labels."""
        labels, of, _ = self.legend_labels()
        return self.derive("visible", (of, self.hidden), lambda: self._visible(labels, of))

    def _visible(self, labels: list[str], of: np.ndarray) -> np.ndarray:
        hidden = [i for i, label in enumerate(labels) if label in self.hidden]
        return ~np.isin(of, hidden) if hidden else np.ones(len(of), bool)

    def all_visible(self) -> bool:
        """Whether no image is hidden (one pass over N the first time after a change)."""
        visible = self.visible()
        return self.derive("all_visible", (visible,), lambda: bool(visible.all()))

    def score_range(self) -> tuple[float, float]:
        """(lowest, highest) finite score, which the colour bar shows and the score colours span;
        the query job seeds it, so a recolour does not pass over N scores for two numbers."""
        scores = self.scores
        return self.derive("score_range", (scores,), lambda: score_range(scores)) if scores is not None else (0.0, 0.0)

    def dimmed(self) -> np.ndarray | None:
        """N bools: True for the images scoring below the dim threshold (None: nothing dimmed)."""
        if self.scores is None or self.dim_threshold is None:
            return None
        return self.scores < self.dim_threshold

    def top_rows(self, k: int = TOP_K) -> np.ndarray:
        """The ``k`` best-scoring visible rows, best first (empty without scores).

        It looks at the rank's head only, four times longer each round until ``k`` are visible,
        instead of filtering all N ranked rows for ten."""
        if self.rank is None:
            return np.zeros(0, np.intp)
        visible, m = self.visible(), max(1, k)
        while True:
            head = self.rank[:m]
            top = head[visible[head]]
            if len(top) >= k or m >= len(self.rank):
                return top[:k]
            m *= 4

    def gallery_rows(self) -> np.ndarray:
        """The rows the gallery lists, in order: the selection (or all), ranked, visible, filtered."""
        if self.collection is None:
            return np.zeros(0, np.intp)
        n = len(self.collection)
        if self.all_visible() and not len(self.selection) and self.class_filter is None:
            # everything, in rank order: the session's own (read-only) rank, or 0..N-1
            return self.rank if self.rank is not None else all_rows(n)
        keep = self.visible().copy()
        if len(self.selection):
            chosen = np.zeros(len(keep), bool)
            chosen[self.selection] = True
            keep &= chosen
        if self.class_filter is not None:
            c = self.classification
            unknown = c is not None and self.class_filter == c.unknown_label
            if c is None or (not unknown and self.class_filter not in c.classes):
                keep[:] = False
            else:
                keep &= c.best == (-1 if unknown else c.classes.index(self.class_filter))
        if self.rank is None:
            return np.flatnonzero(keep)
        return self.rank[keep[self.rank]]

    def describe_class(self, row: int) -> str | None:
        """"circle (0.93)", or "unknown (best guess: circle, 0.41)"; None without classes."""
        c = self.classification
        if c is None or not 0 <= row < len(c.best):
            return None
        guess = c.classes[int(np.argmax(c.probabilities[row]))]
        p = float(c.confidence[row])
        return f"{c.label(row)} ({p:.2f})" if c.best[row] >= 0 else f"{c.unknown_label} (best guess: {guess}, {p:.2f})"


def same_image(old: Collection | None, new: Collection | None, row: int) -> int:
    """Row of ``old``'s image ``row`` in ``new``, or -1 (one list search, in C, for one row)."""
    if old is None or new is None or not 0 <= row < len(old):
        return -1
    try:
        return new.paths.index(old.paths[row])
    except ValueError:
        return -1
