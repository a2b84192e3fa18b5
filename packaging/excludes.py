"""What the bundle leaves out: things a frozen inference app never imports or loads.

Each exclusion names Python modules (given to PyInstaller's Analysis as ``excludes``) and/or
globs of collected files (dropped from the bundle after analysis), with the reason it is safe.
``packaging/measure_excludes.py`` measures what each one removes, against a bundle built with
``packaging/build.py --no-excludes``; the figures are in packaging/README.md.

Safe means: ``clipscape --self-test`` and the frozen window test (tests/test_bundle.py) pass
without it, and no code path of Clipscape's reaches it (checked by listing sys.modules after
encoding, classifying, searching and a UMAP run: none of these is loaded, except triton, which
torch imports only to ask whether it is there and does without).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exclusion:
    name: str
    why: str
    modules: tuple[str, ...] = ()
    files: tuple[str, ...] = ()       # fnmatch globs on the bundle-relative path (forward slashes)
    platforms: tuple[str, ...] = ()   # sys.platform prefixes it applies to; () = all


EXCLUSIONS: tuple[Exclusion, ...] = (
    Exclusion("triton", "torch.compile's GPU kernel compiler; inference runs eager, and torch "
              "only probes `import triton` and does without it",
              modules=("triton",), files=("triton/*",)),
    Exclusion("inductor code generators", "networkx and jinja2 serve torch._inductor's graph passes "
              "and C++/Triton code templates (torch.compile only)",
              modules=("networkx", "jinja2", "markupsafe")),
    Exclusion("test and build tools", "pytest (reached from torch.testing._internal's test helpers, of which "
              "torch itself imports only a few that do not need it), setuptools (torch.utils.cpp_extension: "
              "building C++ extensions), pip, PyInstaller itself, import-linter",
              modules=("pytest", "_pytest", "pluggy", "iniconfig", "pytestqt", "hypothesis", "expecttest",
                       "torch.utils.cpp_extension", "setuptools", "pkg_resources",
                       "pip", "PyInstaller", "importlinter", "grimp")),
    Exclusion("notebooks and plotting", "IPython, matplotlib, pandas, tkinter, TensorBoard: optional "
              "imports of torch/numba/tqdm/sklearn that a desktop inference app never takes",
              modules=("IPython", "matplotlib", "pandas", "tkinter", "_tkinter", "tensorboard",
                       "torch.utils.tensorboard", "pyqtgraph.opengl", "pyqtgraph.jupyter", "pyqtgraph.examples")),
    Exclusion("Ray", "the `clipscape encode --engine ray` extra: a cluster engine with its own worker "
              "processes, run from a Python install (pip install 'clipscape[ray]'), not from the desktop "
              "bundle; models/ray_encode.py imports it only when asked and says so when it is missing",
              modules=("ray",)),
    Exclusion("Qt translations", "Qt's own translations of its dialogs; Clipscape's window is English",
              files=("PySide6/Qt/translations/*",)),
    Exclusion("CUDA libraries torch never loads", "multi-GPU cuSOLVER, the alternate NVRTC build, "
              "the FFTW/BLAS drop-in shims, CUPTI's profiler-only helpers",
              files=("nvidia/*/lib/libcusolverMg.so*", "nvidia/*/lib/libnvrtc.alt.so*",
                     "nvidia/*/lib/libnvrtc-builtins.alt.so*", "nvidia/*/lib/libcufftw.so*",
                     "nvidia/*/lib/libnvblas.so*", "nvidia/*/lib/libnvperf_*.so*",
                     "nvidia/*/lib/libpcsamplingutil.so*", "nvidia/*/lib/libcheckpoint.so*"),
              platforms=("linux",)),
)


def active(platform: str, disabled: bool = False) -> list[Exclusion]:
    """The exclusions for ``platform`` (sys.platform); none when ``disabled`` (the baseline build)."""
    if disabled:
        return []
    return [e for e in EXCLUSIONS if not e.platforms or platform.startswith(e.platforms)]
