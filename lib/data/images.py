"""Reading image files into [0, 1] tensors for a model, and ImageNet's normalisation
(IMAGENET_MEAN, IMAGENET_STD, normalize_imagenet), shared by the loaders and the chapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from .boxes import resize_crop_geometry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_image(
    dirs, stem: str, exts=(".JPEG", ".jpeg", ".jpg", ".JPG", ".png", ".PNG")
) -> Path | None:
    """First existing ``dir/stem+ext`` (or ``dir/stem`` when the stem has its extension)."""
    for d in dirs:
        d = Path(d)
        if Path(stem).suffix and (d / stem).is_file():
            return d / stem
        for e in exts:
            if (d / (stem + e)).is_file():
                return d / (stem + e)
    return None


def array_to_tensor(
    arr: np.ndarray, resize: int | None, crop: int | None, mode: str, channels: int = 3
) -> torch.Tensor:
    """(H, W) or (H, W, C) array in [0, 1] -> (channels, out, out) float tensor, bilinear resize."""
    t = torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32)
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    h, w = t.shape[-2:]
    sx, sy, ox, oy, ow, oh = resize_crop_geometry(w, h, resize, crop, mode)
    rw, rh = int(round(w * sx)), int(round(h * sy))
    if (rh, rw) != (h, w):
        t = TF.resize(t, [rh, rw], antialias=True)
    if crop is not None:
        t = TF.center_crop(t, [crop, crop])
    if channels == 3 and t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    elif channels == 1 and t.shape[0] == 3:
        t = t.mean(0, keepdim=True)
    return t.clamp(0, 1).contiguous()


def load_rgb(path: Path) -> np.ndarray:
    """An image file as an (H, W, 3) float array in [0, 1]."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    with Image.open(path) as im:
        return im.size


def normalize_imagenet(x: torch.Tensor) -> torch.Tensor:
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)
