"""A numba cache locator for the frozen bundle: UMAP's compiled code cached once per user, wherever
the bundle lives and whatever folder it is started from.

In a PyInstaller bundle a module's ``co_filename`` is relative (``umap/umap_.py``), and numba's
own frozen-app locator hashes ``os.path.abspath`` of it, i.e. of the current directory: started
from another folder, the bundle compiled UMAP again (20+ s) and left another cache behind.
This one keys the cache on the relative name alone, under ``$CLIPSCAPE_NUMBA_CACHE`` (set by
rthook_clipscape.py to the user's cache folder). numba still checks each entry against the
executable's size and mtime (its rule for frozen apps) and against this CPU, so a rebuilt bundle
or another machine simply compiles afresh.
"""
import os
import sys

from numba.core.caching import UserWideCacheLocator


class FrozenCacheLocator(UserWideCacheLocator):
    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        package = os.path.dirname(py_file).replace("\\", "/").strip("/").replace("/", ".") or "_"
        self._cache_path = os.path.join(os.environ["CLIPSCAPE_NUMBA_CACHE"], package)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not getattr(sys, "frozen", False) or os.path.isabs(py_file) or not os.environ.get("CLIPSCAPE_NUMBA_CACHE"):
            return None
        return super().from_function(py_func, py_file)
