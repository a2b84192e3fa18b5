"""UMAP's compiled code kept between starts: umap-learn's own numba functions get ``cache=True``.

umap-learn 0.5 declares almost none of its ``@njit`` functions with ``cache=True`` (pynndescent
does), so every process that ran UMAP compiled them again: 10-40 s on a 2-core laptop, paid by
the window's UMAP child at each start of the app. ``import_umap`` imports umap with numba's
decorators wrapped so that umap's module-level, closure-free functions are cached; numba keeps
the entries where it keeps any (``__pycache__`` beside umap's sources when that is writable,
else the user's cache folder; the frozen bundle points it at its own, see
packaging/clipscape_frozen_numba.py) and checks each against its source file's size and mtime
and the function's bytecode, so upgrading umap-learn or numba compiles afresh, never runs stale
code.

A function that umap jits twice with other options (``_optimize_layout_euclidean_single_epoch``,
serial and parallel) is cached only in its first form: numba's cache key does not include the
options, so the two would share entries.
"""
from __future__ import annotations

import inspect
import sys

_WRAPPED = "_clipscape_caches_umap"


def import_umap():
    """``import umap``, its functions cached (the first import in a process decides)."""
    if "umap" not in sys.modules:
        import numba

        cache_umap_functions(numba)
    import umap

    return umap


def cache_umap_functions(numba) -> None:
    """Make numba.njit / numba.jit add cache=True for umap's module-level functions (once)."""
    if getattr(numba.njit, _WRAPPED, False):
        return
    options_seen: dict[object, tuple] = {}

    def wrap(decorator):
        def jit(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if "cache" in kwargs or not (caller == "umap" or caller.startswith("umap.")):
                return decorator(*args, **kwargs)
            key = (tuple(a for a in args if not inspect.isfunction(a)), tuple(sorted(kwargs.items(), key=str)))

            def cached(func):
                if func.__closure__ is not None or "<locals>" in func.__qualname__:
                    return False
                return options_seen.setdefault(func, key) == key   # first options only

            if args and inspect.isfunction(args[0]):
                return decorator(*args, **kwargs, **({"cache": True} if cached(args[0]) else {}))
            return lambda func: decorator(*args, **kwargs, **({"cache": True} if cached(func) else {}))(func)

        jit.__wrapped__ = decorator
        setattr(jit, _WRAPPED, True)
        return jit

    numba.njit = wrap(numba.njit)
    numba.jit = wrap(numba.jit)
