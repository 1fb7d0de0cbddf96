"""What this run may do beyond the machine: download (a network: Colab, or
``GRADCAM_BOOK_ALLOW_DOWNLOAD=1``), and whether it is the full-profile rehearsal, whose hub
weights are random stand-ins (``GRADCAM_BOOK_REHEARSAL=1``)."""

from __future__ import annotations

import os
import sys

__all__ = ["DOWNLOAD_VARIABLE", "download_allowed", "REHEARSAL_VARIABLE", "random_stand_ins"]

#: the environment variable that lets the loaders and the zoo download (set on Colab)
DOWNLOAD_VARIABLE = "GRADCAM_BOOK_ALLOW_DOWNLOAD"


def download_allowed(modules=None) -> bool:
    """Whether downloads may happen: ``GRADCAM_BOOK_ALLOW_DOWNLOAD`` set (not 0), or, where it is
    unset, a Colab kernel (``google.colab`` imported: Colab has a network)."""
    value = os.environ.get(DOWNLOAD_VARIABLE)
    if value is not None:
        return value not in ("", "0")
    return "google.colab" in (sys.modules if modules is None else modules)


#: the full-profile rehearsal: torchvision's ImageNet weights are replaced by randomly
#: initialised ones of the same architecture; every page says so
REHEARSAL_VARIABLE = "GRADCAM_BOOK_REHEARSAL"


def random_stand_ins() -> bool:
    """Whether this run is the full-profile rehearsal (``GRADCAM_BOOK_REHEARSAL=1``): hub weights
    are random stand-ins and nothing it computes is a result."""
    return os.environ.get(REHEARSAL_VARIABLE, "") not in ("", "0")
