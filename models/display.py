"""File names as a person can read them, on a terminal or in the window, without losing a byte.

A name that is not valid UTF-8 reaches Python with its bad bytes surrogate-escaped; shown raw it
either fails to encode or loses those bytes silently. Control characters (a newline, an ESC) in
a name would forge lines or drive the terminal. Both are shown as visible escapes instead:
``\\xNN`` for undecodable bytes, ``\\n``, ``\\t`` and ``\\xNN`` for control characters.
"""
from __future__ import annotations

import os
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(path: str | os.PathLike) -> str:
    """``path`` with undecodable bytes and control characters as visible escapes."""
    text = os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def printable_name(path: str | os.PathLike) -> str:
    """The file name part of ``path`` (or the path itself for a root), printable."""
    p = os.fspath(path)
    return printable(os.path.basename(p.rstrip(os.sep)) or p)
