"""PyInstaller runtime hook: runs in the frozen app (and in its UMAP child) before any import.

The bundle writes nothing inside its own folder, so it can run from a read-only location:
- no bytecode is written next to the modules that ship as .py files (torch's, for its own
  source inspection);
- numba, which compiles UMAP's code with cache=True, caches it in the user's cache folder
  (~/.cache/clipscape/numba on Linux) through clipscape_frozen_numba.FrozenCacheLocator, keyed
  so that the cache is found again whatever folder the bundle is started from. Settings made
  by the user (NUMBA_CACHE_DIR, NUMBA_CACHE_LOCATOR_CLASSES) win.
"""
import os
import sys

sys.dont_write_bytecode = True
if not os.environ.get("NUMBA_CACHE_DIR") and not os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):
    import platformdirs

    os.environ.setdefault("CLIPSCAPE_NUMBA_CACHE", os.path.join(platformdirs.user_cache_dir("clipscape"), "numba"))
    os.environ["NUMBA_CACHE_LOCATOR_CLASSES"] = "clipscape_frozen_numba.FrozenCacheLocator,UserWideCacheLocator"
