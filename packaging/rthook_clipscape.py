"""PyInstaller runtime hook: runs in the frozen app (and in its UMAP child) before any import.

The bundle writes nothing inside its own folder, so it can run from a read-only location:
- numba caches compiled UMAP code next to the source files it is given, i.e. inside the
  bundle; NUMBA_CACHE_DIR sends that cache to the user's cache folder instead (an explicit
  setting is kept);
- no bytecode is written next to the few modules that ship as .py files.
"""
import os
import sys

sys.dont_write_bytecode = True
if not os.environ.get("NUMBA_CACHE_DIR"):
    import platformdirs

    os.environ["NUMBA_CACHE_DIR"] = os.path.join(platformdirs.user_cache_dir("clipscape"), "numba")
