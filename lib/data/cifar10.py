"""CIFAR-10 through torchvision's loader (Nagy et al.'s Table 7, CIFAR-10 half; ``full`` only).

Source order: ``data_root/cifar-10``, ``data_root`` (each holding torchvision's
``cifar-10-batches-py/``), then the cache (``CACHE_DIR/cifar-10``), where torchvision downloads
the archive only if allowed: ``download=True``, or the environment variable
GRADCAM_BOOK_ALLOW_DOWNLOAD set (the Colab install cell sets it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from ..environment import random_stand_ins
from ..paths import CACHE_DIR
from .errors import DataFormatError, DataMissingError

__all__ = ["CLASSES", "FOLDER", "WHERE", "candidate_roots", "load_cifar10"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: the folder torchvision's CIFAR10 reads under its ``root``
FOLDER = "cifar-10-batches-py"
WHERE = (
    "the python version of CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, "
    "163 MB) extracted so that DATA_ROOT/cifar-10/" + FOLDER + "/ holds data_batch_1..5, "
    "test_batch and batches.meta (torchvision.datasets.CIFAR10(root=DATA_ROOT/cifar-10, "
    "download=True) does exactly that), with data_root=DATA_ROOT passed to the chapter; or "
    "set GRADCAM_BOOK_ALLOW_DOWNLOAD=1 where a network exists to let torchvision fetch it "
    "into " + str(CACHE_DIR / "cifar-10")
)


def candidate_roots(data_root: str | Path | None) -> list[Path]:
    """The roots tried, in order, each for a ``cifar-10-batches-py/`` folder inside it."""
    roots = [Path(data_root) / "cifar-10", Path(data_root)] if data_root is not None else []
    return roots + [CACHE_DIR / "cifar-10"]


def load_cifar10(
    split: str = "train", data_root: str | Path | None = None, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 ``split`` ("train": 50,000 images, "test": 10,000) as (uint8 images
    (N, 3, 32, 32), int64 labels (N,)), read by ``torchvision.datasets.CIFAR10``, which checks
    every file's md5 against the published one.

    Raises ``DataMissingError`` (naming the folders searched and where to get the files) when no
    root holds the folder, and ``DataFormatError`` when a folder is there but torchvision finds a
    file missing or different from the published one."""
    # lazy: torchvision costs ~1.3 s to import; only the download needs it
    from torchvision.datasets import CIFAR10

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if download is None:
        download = os.environ.get("GRADCAM_BOOK_ALLOW_DOWNLOAD", "") not in ("", "0")
    roots = candidate_roots(data_root)
    root = next((r for r in roots if (r / FOLDER).is_dir()), None)
    if root is None and download:
        root = roots[-1]
        try:
            CIFAR10(str(root), train=split == "train", download=True)
        except Exception as e:  # no network: name the missing folder below, with the cause
            raise DataMissingError(
                "CIFAR-10", [FOLDER + "/"], WHERE + f" (the download failed: {e})", searched=roots
            ) from e
    if root is None:
        raise DataMissingError("CIFAR-10", [FOLDER + "/"], WHERE, searched=roots)
    # the rehearsal's miniature batches cannot match the published md5s: its check is skipped
    # there (and only there)
    unchecked = (
        mock.patch("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
        if random_stand_ins()
        else contextlib.nullcontext()
    )
    try:
        with unchecked:
            ds = CIFAR10(str(root), train=split == "train", download=False)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
        raise DataFormatError(
            root / FOLDER,
            "a file is missing or differs from the published "
            "one (torchvision's md5 check); extract the archive again",
        ) from e
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    y = torch.as_tensor(ds.targets, dtype=torch.int64)
    if x.shape[1:] != (3, 32, 32) or len(x) != len(y) or not bool(((y >= 0) & (y < 10)).all()):
        raise DataFormatError(
            root / FOLDER,
            f"expected (N, 32, 32, 3) images and labels in "
            f"0..9, got images {tuple(ds.data.shape)} and {len(y)} labels",
        )
    return x, y
