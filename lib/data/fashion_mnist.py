"""Fashion-MNIST, the real data set, read from its IDX files without a network.

Source order: ``data_root`` (if given), Debian's package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``), the cache (``CACHE_DIR/FashionMNIST/raw``, torchvision's
layout), and only if allowed, torchvision's download into the cache.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..paths import CACHE_DIR
from .errors import DataFormatError, DataMissingError

__all__ = [
    "CLASSES",
    "FILES",
    "load_fashion_mnist",
    "find_fashion_mnist",
    "read_idx",
    "fashion_mnist_sizes",
    "DEBIAN_DIR",
]

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
N_EXPECTED = {"train": 60000, "test": 10000}
#: where Debian's ``dataset-fashion-mnist`` puts the gzipped IDX files
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MAGIC = {"images": 2051, "labels": 2049}
WHERE = (
    "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu, files in "
    "/usr/share/datasets/fashion-mnist/), or the four *-ubyte.gz files from "
    "https://github.com/zalandoresearch/fashion-mnist (data/fashion/) put in a folder passed "
    "as data_root=..., or set GRADCAM_BOOK_ALLOW_DOWNLOAD=1 (or download=True) where a "
    "network exists to let torchvision fetch them into " + str(CACHE_DIR / "FashionMNIST")
)


#: what a reader on any profile can do (every profile needs Fashion-MNIST)
NOTE = (
    "Every profile (smoke, default, full) needs Fashion-MNIST. On Colab the first cell sets "
    "GRADCAM_BOOK_ALLOW_DOWNLOAD=1 and the loader downloads it (30 MB, once); if this "
    "message appears there, a download failed: run the cell again. Elsewhere, with a "
    "network, set GRADCAM_BOOK_ALLOW_DOWNLOAD=1 before starting the kernel; offline, "
    "copy the four files into a folder and pass it as data_root."
)


def _candidate_dirs(data_root: str | Path | None) -> list[Path]:
    dirs: list[Path] = []
    if data_root is not None:
        r = Path(data_root)
        dirs += [r, r / "fashion-mnist", r / "fashion_mnist", r / "FashionMNIST" / "raw"]
    dirs += [DEBIAN_DIR, CACHE_DIR / "FashionMNIST" / "raw"]
    return dirs


def _find_file(d: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (d / name).is_file():
            return d / name
    return None


def find_fashion_mnist(
    data_root: str | Path | None = None, split: str = "train"
) -> tuple[Path, Path] | None:
    """Return the (images, labels) files of ``split`` from the first folder that has both, or None."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    for d in _candidate_dirs(data_root):
        found = [_find_file(d, stem) for stem in FILES[split]]
        if all(found):
            return found[0], found[1]
    return None


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path, kind: str | None = None) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into a uint8 array.

    Checks the magic number (2051 for images, 2049 for labels when ``kind`` is given), the
    dimensions and that the file length is exactly header + data.
    """
    path = Path(path)
    if not path.is_file():
        raise DataMissingError("Fashion-MNIST", [path], WHERE)
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a truncated .gz raises EOFError
        raise DataFormatError(
            path, f"cannot be read ({e}); the file is damaged or truncated, download it again"
        ) from e
    if len(raw) < 8:
        raise DataFormatError(path, f"only {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataFormatError(path, f"magic number {magic} is not an unsigned-byte IDX file")
    ndim = raw[3]
    if kind is not None and magic != MAGIC[kind]:
        raise DataFormatError(path, f"magic number {magic}, expected {MAGIC[kind]} for {kind}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(path, "truncated header")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if kind == "labels" and ndim != 1:
        raise DataFormatError(path, f"dimensions {dims}, expected (N,) for labels")
    if kind == "images" and (ndim != 3 or dims[1:] != [28, 28]):
        raise DataFormatError(path, f"dimensions {dims}, expected (N, 28, 28)")
    n_data = int(np.prod(dims)) if dims else 0
    if len(raw) != header + n_data:
        raise DataFormatError(
            path,
            f"{len(raw)} bytes but the header {dims} needs "
            f"{header + n_data}: the file is truncated or damaged",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


@lru_cache(maxsize=8)
def _load_cached(
    images_path: str, labels_path: str, mtimes: tuple
) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, "images")
    labels = read_idx(labels_path, "labels")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataFormatError(
            labels_path, f"{labels.shape[0]} labels for {images.shape[0]} images in {images_path}"
        )
    if labels.size and labels.max() > 9:
        raise DataFormatError(labels_path, f"label {int(labels.max())} outside 0..9")
    return images, labels


def _download(split: str) -> tuple[Path, Path] | None:
    # lazy: torchvision costs ~1.3 s to import; only the download needs it
    import torchvision

    try:
        torchvision.datasets.FashionMNIST(str(CACHE_DIR), train=(split == "train"), download=True)
    except Exception:  # no network: report the missing files below instead
        return None
    return find_fashion_mnist(None, split)


def load_fashion_mnist(
    split: str = "train", data_root: str | Path | None = None, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST ``split`` as (uint8 images (N, 28, 28), int64 labels (N,)).

    ``download`` (default: the environment variable GRADCAM_BOOK_ALLOW_DOWNLOAD) lets torchvision
    fetch the files into the cache when no local copy exists; the book never needs it. Parsed arrays
    are cached in memory; each call returns fresh tensors, so callers may modify them.
    """
    files = find_fashion_mnist(data_root, split)
    if files is None:
        if download is None:
            download = os.environ.get("GRADCAM_BOOK_ALLOW_DOWNLOAD", "") not in ("", "0")
        if download:
            files = _download(split)
        if files is None:
            raise DataMissingError(
                "Fashion-MNIST",
                [s + "[.gz]" for s in FILES[split]],
                WHERE,
                searched=_candidate_dirs(data_root),
                note=NOTE,
            )
    images, labels = _load_cached(
        str(files[0]), str(files[1]), (files[0].stat().st_mtime_ns, files[1].stat().st_mtime_ns)
    )
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def fashion_mnist_sizes(data_root: str | Path | None = None) -> dict[str, int | None]:
    """Number of items per split found on disk (from the IDX headers only), None where missing."""
    out: dict[str, int | None] = {}
    for split in FILES:
        files = find_fashion_mnist(data_root, split)
        if files is None:
            out[split] = None
            continue
        with _open(files[0]) as f:
            head = f.read(8)
        out[split] = int.from_bytes(head[4:8], "big") if len(head) == 8 else None
    return out
