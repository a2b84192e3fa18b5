"""PyInstaller runtime hook: runs in the frozen app (and in its UMAP child) before any import.

The bundle writes nothing inside its own folder, so it can run from a read-only location:
- no bytecode is written next to the modules that ship as .py files (torch's, for its own
  source inspection);
- numba, which compiles UMAP's code, caches it in the user's cache folder
  (~/.cache/clipscape/numba on Linux), found again whatever folder the bundle is started from,
  seeded on the first start from the compiled code the bundle ships, for a CPU target shared by
  most x86-64 machines (clipscape_frozen_numba.py says how, and how numba checks the entries).
  Settings made by the user (NUMBA_CACHE_DIR, NUMBA_CACHE_LOCATOR_CLASSES, NUMBA_CPU_NAME) win.
"""
import sys

sys.dont_write_bytecode = True

import clipscape_frozen_numba  # noqa: E402 - after the line above; imports neither numba nor llvmlite

clipscape_frozen_numba.install()
