"""The zero-shot class list as a value: names in order, each with the colour slot it keeps.

An edit (add, remove, rename, paste, clear) makes a new ClassList, so the session can keep the
one before it for undo, and a class keeps its colour while other classes come and go or are
renamed: the slot belongs to the name, not to its position in the list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from PySide6.QtGui import QUndoCommand

from clipscape.models.zeroshot import parse_classes


@dataclass(frozen=True)
class ClassList:
    names: tuple[str, ...] = ()
    slots: tuple[int, ...] = ()   # palette slot per name, parallel to names

    @classmethod
    def of(cls, names: Iterable[str]) -> "ClassList":
        return cls().add(names)

    def slot(self, name: str) -> int:
        """The palette slot of class ``name`` (KeyError if it is not listed)."""
        try:
            return self.slots[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def add(self, names: Iterable[str] | str) -> "ClassList":
        """These names appended (a string is split at commas and new lines); repeats are dropped."""
        new = parse_classes(names) if isinstance(names, str) else parse_classes("\n".join(names))
        new = [n for n in new if n not in self.names]
        return self._insert(len(self.names), new)

    def replaced(self, names: Iterable[str]) -> "ClassList":
        """The list ``names`` (in that order); names already listed keep their slots."""
        wanted = parse_classes("\n".join(names))
        kept = {n: s for n, s in zip(self.names, self.slots) if n in wanted}
        used, slots = set(kept.values()), []
        free = (s for s in range(len(self.slots) + len(wanted) + 1) if s not in used)
        for n in wanted:
            slots.append(kept[n] if n in kept else next(free))
        return ClassList(tuple(wanted), tuple(slots))

    def remove(self, names: Iterable[str]) -> "ClassList":
        gone = set(names)
        kept = [(n, s) for n, s in zip(self.names, self.slots) if n not in gone]
        return ClassList(tuple(n for n, _ in kept), tuple(s for _, s in kept))

    def rename(self, old: str, text: str) -> "ClassList":
        """``old`` renamed to the first name in ``text``; more names ("a, b") go in after it.

        An empty new name, or one another class already has, leaves the list as it was.
        """
        if old not in self.names:
            return self
        at = self.names.index(old)
        others = set(self.names) - {old}
        names = parse_classes(text)
        if not names or names[0] in others:
            return self
        renamed = ClassList(self.names[:at] + (names[0],) + self.names[at + 1:], self.slots)
        extra = [n for n in dict.fromkeys(names[1:]) if n not in others and n != names[0]]
        return renamed._insert(at + 1, extra)

    def _insert(self, at: int, names: list[str]) -> "ClassList":
        used, slots = set(self.slots), []
        free = (s for s in range(len(self.slots) + len(names) + 1) if s not in used)
        for _ in names:
            slots.append(next(free))
        return ClassList(self.names[:at] + tuple(names) + self.names[at:],
                         self.slots[:at] + tuple(slots) + self.slots[at:])


class ClassEdit(QUndoCommand):
    """One class-list edit, for Edit ▸ Undo / Redo: ``apply`` gets the list to show."""

    def __init__(self, apply: Callable[[ClassList], None], before: ClassList, after: ClassList, text: str) -> None:
        super().__init__(text)
        self._apply, self._before, self._after = apply, before, after

    def redo(self) -> None:
        self._apply(self._after)

    def undo(self) -> None:
        self._apply(self._before)
