"""PyInstaller runtime hook: runs in the frozen app (and in its UMAP child) before any import.

The bundle writes nothing inside its own folder, so it can run from a read-only location. No
bytecode is written next to the modules that ship as .py files (torch's, for its own
source inspection). numba, which compiles UMAP's code with cache=True, recognises a frozen
app and caches in the user's folder (~/.cache/numba on Linux), not beside the code.
"""
import sys

sys.dont_write_bytecode = True
