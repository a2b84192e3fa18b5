"""numba in the frozen bundle: UMAP's compiled code cached once per user, shipped ready-made in the
bundle for the first start, wherever the bundle lives and whatever folder it is started from.

rthook_clipscape.py calls ``install()`` before anything is imported. Nothing here imports numba
or llvmlite until numba itself is first imported (only the UMAP child does that), so the window's
start pays nothing for it. Then, once:

1. **A portable code generation target.** numba keys every cached entry on the CPU name and
   feature string it compiles for (``codegen.magic_tuple()``), and by default that is this very
   CPU ("znver4" with its 150 feature flags), so a cache made on one machine serves no other.
   On an x86-64 CPU that has every x86-64-v3 feature (AVX2, FMA, BMI2…: Intel since Haswell,
   AMD since Zen) numba is told to compile for ``x86-64-v3`` instead (``NUMBA_CPU_NAME``,
   ``NUMBA_CPU_FEATURES=""``), so the key is the same on all of them; older or other CPUs keep
   numba's default (native code, compiled once per user).
2. **The shipped cache.** ``packaging/build.py`` runs the frozen ``--self-test`` once with
   ``CLIPSCAPE_NUMBA_CACHE`` pointing at ``_internal/numba_cache``, so the bundle carries UMAP's
   compiled code (≈3 MB). The first time a user's numba starts with this build, the entries are
   copied into the user's cache (``~/.cache/clipscape/numba``), and a marker named after the
   build is left there so it happens once. Nothing is written inside the bundle at run time.
   numba checks each entry before using it: the index holds the SHA-256 of the executable's
   *content* (``_SourceFileBackedLocatorMixin.get_source_stamp``: for a frozen app the file
   hashed is ``sys.executable``; its size and mtime only key an in-process memo), and each
   entry's key holds the code generation target above and the function's bytecode. So a copy
   of the bundle unpacked by tar or install.sh with other mtimes still matches, another build
   of the bundle does not (its executable differs: the PYZ with every module is inside it), and
   a CPU that gets another target compiles afresh beside the shipped entries.
3. **umap's own functions cached too**, by ``clipscape.models.numba_cache`` (in every install,
   not only here), which UMAP is imported through. In the bundle the executable's hash is the
   source stamp, so code cannot change under a cache entry without the entry being discarded.

``FrozenCacheLocator`` keys the cache on the module's relative name: in a PyInstaller bundle a
module's ``co_filename`` is relative (``umap/umap_.py``), and numba's own frozen-app locator
hashes ``os.path.abspath`` of it, i.e. of the current directory, so a bundle started from
another folder compiled UMAP again and left another cache behind.

Settings made by the user win: ``NUMBA_CACHE_DIR`` or ``NUMBA_CACHE_LOCATOR_CLASSES`` turn all of
this off; ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` keep numba's own target choice.
"""
from __future__ import annotations

import os
import sys

SHIPPED = "numba_cache"            # the shipped cache, in the bundle's _internal folder
BUILD_ID = "BUILD"                 # a file in it: which build made it (the user's marker is named after it)
PORTABLE_TARGET = "x86-64-v3"
# what LLVM's x86-64-v3 CPU model enables (x86-64 psABI levels 1-3), in llvmlite's feature names
X86_64_V3 = ("cmov", "cx8", "fxsr", "mmx", "sse", "sse2", "cx16", "sahf", "popcnt", "sse3", "sse4.1",
             "sse4.2", "ssse3", "avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")


LOCATORS = "clipscape_frozen_numba.FrozenCacheLocator,UserWideCacheLocator"


def install(environ=os.environ) -> bool:
    """Called by the runtime hook: the cache locator, and the first-import hook for numba and umap.

    The UMAP child inherits the environment of the window's process, NUMBA_CACHE_LOCATOR_CLASSES
    included, so that variable counts as the user's only when it is not ours. Returns whether the
    hook is in place."""
    if environ.get("NUMBA_CACHE_DIR") or environ.get("NUMBA_CACHE_LOCATOR_CLASSES", LOCATORS) != LOCATORS:
        return False
    import platformdirs

    environ.setdefault("CLIPSCAPE_NUMBA_CACHE", os.path.join(platformdirs.user_cache_dir("clipscape"), "numba"))
    environ["NUMBA_CACHE_LOCATOR_CLASSES"] = LOCATORS
    sys.meta_path.insert(0, _FirstImport())
    return True


class _FirstImport:
    """A meta-path finder that finds nothing: when numba or umap is first imported it chooses the
    target and seeds the user's cache, then leaves the meta path to the ordinary finders."""

    def __init__(self):
        self._prepared = False

    def find_spec(self, name, path=None, target=None):
        if name not in ("numba", "umap"):
            return None
        if not self._prepared:
            self._prepared = True
            choose_target(os.environ)
            seed_user_cache(os.path.join(getattr(sys, "_MEIPASS", ""), SHIPPED), os.environ["CLIPSCAPE_NUMBA_CACHE"])
            sys.meta_path.remove(self)
        return None


def choose_target(environ=os.environ, features=None) -> str | None:
    """Set numba's code generation target to x86-64-v3 where this CPU has all of it; returns it (or None)."""
    if environ.get("NUMBA_CPU_NAME") or "NUMBA_CPU_FEATURES" in environ:
        return None
    if features is None:
        import platform

        if platform.machine().lower() not in ("x86_64", "amd64"):
            return None
        import llvmlite.binding as ll

        features = ll.get_host_cpu_features()
    if not all(features.get(name) for name in X86_64_V3):
        return None
    environ["NUMBA_CPU_NAME"] = PORTABLE_TARGET
    environ["NUMBA_CPU_FEATURES"] = ""
    return PORTABLE_TARGET


def seed_user_cache(shipped: str, user: str) -> int:
    """Copy the shipped cache's entries into the user's cache once per build; returns files copied.

    Atomic per file (a temporary name, then os.replace), so two processes seeding at once write the
    same files; an unwritable cache is left as it is (numba then finds no locator that can write).
    """
    try:
        with open(os.path.join(shipped, BUILD_ID), encoding="utf-8") as f:
            build = f.read().strip()
    except OSError:
        return 0           # a bundle without a shipped cache (macOS, a build with --no-numba-cache)
    marker = os.path.join(user, f".seeded-{build}")
    if not build or os.path.exists(marker):
        return 0
    copied = 0
    try:
        for folder, _dirs, files in os.walk(shipped):
            target = os.path.join(user, os.path.relpath(folder, shipped))
            os.makedirs(target, exist_ok=True)
            for name in files:
                if name.endswith((".nbi", ".nbc")):
                    tmp = os.path.join(target, f".{name}.{os.getpid()}.tmp")
                    with open(os.path.join(folder, name), "rb") as src, open(tmp, "wb") as dst:
                        dst.write(src.read())
                    os.replace(tmp, os.path.join(target, name))
                    copied += 1
        with open(marker, "w", encoding="utf-8") as f:
            f.write(f"{copied} files from {shipped}\n")
    except OSError:
        pass
    return copied


def __getattr__(name):
    if name == "FrozenCacheLocator":     # numba asks for it by name, once numba is imported
        return _locator_class()
    raise AttributeError(name)


def _locator_class():
    from numba.core.caching import UserWideCacheLocator

    class FrozenCacheLocator(UserWideCacheLocator):
        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            package = os.path.dirname(py_file).replace("\\", "/").strip("/").replace("/", ".") or "_"
            self._cache_path = os.path.join(os.environ["CLIPSCAPE_NUMBA_CACHE"], package)

        @classmethod
        def from_function(cls, py_func, py_file):
            if (not getattr(sys, "frozen", False) or os.path.isabs(py_file)
                    or not os.environ.get("CLIPSCAPE_NUMBA_CACHE")):
                return None
            return super().from_function(py_func, py_file)

    globals()["FrozenCacheLocator"] = FrozenCacheLocator
    return FrozenCacheLocator
