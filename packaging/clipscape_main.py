"""The frozen bundle's entry script: the same as the ``clipscape`` console script.

``main()`` calls ``multiprocessing.freeze_support()`` first thing, which lets the UMAP child
process (spawned: the bundle's own executable started again with ``--multiprocessing-fork``)
run its job and exit instead of opening a second window. The guard below keeps the spawned
child, which re-imports this script as ``__mp_main__``, from starting the app.
"""
import sys

from clipscape.app.launch import main

if __name__ == "__main__":
    sys.exit(main())
