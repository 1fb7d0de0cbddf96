"""Real photographs bundled with scikit-image and scikit-learn, with boxes drawn by hand.

The boxes live in ``data/photos_boxes.csv`` (original-image pixels, x_max / y_max exclusive,
and the ImageNet classes that count as each object).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import skimage.data as sk
import torch

from lib.paths import DATA_DIR

from .boxes import rescale_boxes
from .errors import CSV_ENCODING, DataFormatError

__all__ = ["list_photos", "load_photo", "load_boxes", "Box", "photo_boxes", "BOXES_CSV"]

BOXES_CSV = DATA_DIR / "photos_boxes.csv"
_COLUMNS = ["photo", "object", "x_min", "y_min", "x_max", "y_max", "imagenet_classes"]


def _loaders():
    def sklearn(name):
        # lazy: scikit-learn costs ~1.3 s to import; only this data set needs it
        from sklearn.datasets import load_sample_image

        return lambda: load_sample_image(name)

    return {
        "chelsea": sk.chelsea,
        "coffee": sk.coffee,
        "astronaut": sk.astronaut,
        "rocket": sk.rocket,
        "motorcycle": lambda: sk.stereo_motorcycle()[0],
        "camera": sk.camera,
        "china": sklearn("china.jpg"),
        "flower": sklearn("flower.jpg"),
    }


def list_photos() -> list[str]:
    """Names of the photographs that have hand-drawn boxes."""
    return sorted({b.photo for b in load_boxes()}, key=list(_loaders()).index)


def load_photo(name: str) -> np.ndarray:
    """The photograph as uint8 RGB (H, W, 3); grey images are repeated over 3 channels."""
    loaders = _loaders()
    if name not in loaders:
        raise KeyError(f"no photograph named {name!r}; available: {', '.join(loaders)}")
    img = np.asarray(loaders[name]())
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


@dataclass(frozen=True)
class Box:
    photo: str
    object: str
    x_min: int
    y_min: int
    x_max: int
    y_max: int
    imagenet_classes: tuple[int, ...]


@lru_cache(maxsize=4)
def load_boxes(path: Path = BOXES_CSV) -> tuple[Box, ...]:
    """Parse the boxes file; a malformed row raises an error that gives the file and line."""
    boxes = []
    # comments and blank lines are skipped, a byte-order mark is read, as in every loader
    with open(path, newline="", encoding=CSV_ENCODING) as f:
        lines = [
            (i, line) for i, line in enumerate(f, 1) if not line.startswith("#") and line.strip()
        ]
    reader = csv.reader([line for _, line in lines])
    header = next(reader, None)
    if header != _COLUMNS:
        raise DataFormatError(
            path, f"header must be {','.join(_COLUMNS)}, got {header}", lines[0][0] if lines else 1
        )
    known = _loaders()
    for (lineno, _), row in zip(lines[1:], reader):
        if len(row) != len(_COLUMNS):
            raise DataFormatError(path, f"expected {len(_COLUMNS)} fields, got {len(row)}", lineno)
        photo, obj, *coords, classes = row
        if photo not in known:
            raise DataFormatError(path, f"unknown photograph {photo!r}", lineno)
        try:
            x0, y0, x1, y1 = (int(c) for c in coords)
            cls = tuple(int(c) for c in classes.split(";") if c.strip())
        except ValueError:
            raise DataFormatError(
                path, f"coordinates and classes must be integers: {row}", lineno
            ) from None
        h, w = load_photo(photo).shape[:2]
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise DataFormatError(
                path, f"box {x0, y0, x1, y1} is empty or outside the {w}x{h} image", lineno
            )
        if any(not 0 <= c < 1000 for c in cls):
            raise DataFormatError(path, f"ImageNet class out of 0..999 in {classes!r}", lineno)
        boxes.append(Box(photo, obj, x0, y0, x1, y1, cls))
    return tuple(boxes)


def photo_boxes(
    name: str, resize: int | None = 256, crop: int | None = 224
) -> tuple[list[Box], torch.Tensor]:
    """The photo's boxes and their coordinates (K, 4) after the ImageNet resize (shorter side
    ``resize``) and centre crop ``crop`` that :func:`lib.models.pretrained.preprocess` applies.
    Boxes cropped away entirely are dropped, and so are their entries in the list."""
    mine = [b for b in load_boxes() if b.photo == name]
    h, w = load_photo(name).shape[:2]
    coords = [[b.x_min, b.y_min, b.x_max, b.y_max] for b in mine]
    scaled, kept = rescale_boxes(
        np.array(coords, dtype=float).reshape(-1, 4), w, h, resize, crop, mode="shorter"
    )
    return [b for b, k in zip(mine, kept.tolist()) if k], scaled
