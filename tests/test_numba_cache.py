"""models/numba_cache.py: umap's numba functions are compiled once per installation, not per start."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from clipscape.models import numba_cache


def test_umap_functions_get_cache_true_once_per_function(monkeypatch):
    calls = []

    def njit(*args, **kwargs):
        calls.append(kwargs.get("cache"))
        return (lambda f: f) if not args or isinstance(args[0], str) else args[0]

    fake = type("numba", (), {"njit": staticmethod(njit), "jit": staticmethod(njit)})
    numba_cache.cache_umap_functions(fake)
    numba_cache.cache_umap_functions(fake)                                   # once: not wrapped twice
    source = textwrap.dedent("""
        def f(x): return x
        def g(x): return x
        def make():
            def inner(x): return x
            return numba.njit(inner)
        numba.njit(f)                          # cached
        numba.njit("f8(f8)", fastmath=True)(g) # cached (decorator factory)
        numba.njit(f, parallel=True)           # same function, other options: not cached
        numba.njit(f)                          # the first options again: cached
        numba.njit(g, cache=False)             # umap's own choice stands
        make()                                 # a closure: not cached
    """)
    exec(compile(source, "umap/fake.py", "exec"), {"__name__": "umap.fake", "numba": fake})
    assert calls == [True, True, None, True, False, None]
    calls.clear()
    exec(compile("numba.njit(lambda x: x)\ndef h(x): return x\nnumba.njit(h)", "other.py", "exec"),
         {"__name__": "pynndescent.x", "numba": fake})
    assert calls == [None, None]                                                # only umap's


def test_umap_imported_through_it_leaves_its_compiled_code_in_numbas_cache(tmp_path):
    """The real umap: a function of umap.layouts (where umap asks for no cache) compiled in one
    process is in numba's cache (NUMBA_CACHE_DIR) for the next."""
    script = "from clipscape.models.numba_cache import import_umap; import_umap().layouts.clip(2.0)"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    assert list(tmp_path.rglob("layouts.clip-*.nbi")) and list(tmp_path.rglob("layouts.clip-*.nbc"))
