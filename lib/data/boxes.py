"""Box geometry shared by the loaders: rescaling boxes with the image, boxes to masks.

Convention everywhere in ``lib.data``: a box is (x_min, y_min, x_max, y_max) in pixel
coordinates of the image it belongs to, with x_max / y_max exclusive for integer boxes (the box
covers pixels x_min <= x < x_max), i.e. the same as array slicing ``img[y_min:y_max, x_min:x_max]``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "resize_crop_geometry",
    "rescale_boxes",
    "box_mask",
    "EDGE_TOLERANCE",
    "EDGE_WARNING",
    "box_overhang",
]

#: how far (pixels) an annotated box may pass the image edge and still be clipped (with a counted
#: warning, ``EDGE_WARNING``) rather than rejected: ImageNet's XML boxes reach a pixel past the
#: image, radiologists' boxes touch the border. Farther out, the box or the image size is wrong.
EDGE_TOLERANCE = 2.0
EDGE_WARNING = f"box up to {EDGE_TOLERANCE:g} px past the image edge, clipped"


def resize_crop_geometry(
    width: int, height: int, resize: int | None, crop: int | None, mode: str = "square"
) -> tuple[float, float, float, float, int, int]:
    """Scale and offset that a resize followed by a centre crop applies to coordinates.

    ``mode="square"`` resizes to ``resize x resize`` (Nagy et al.: 256x256 then a 224 centre crop);
    ``mode="shorter"`` resizes the shorter side to ``resize`` (torchvision's ``Resize(256)``).
    Returns (sx, sy, ox, oy, out_w, out_h): x' = x * sx - ox, y' = y * sy - oy.
    """
    if resize is None:
        rw, rh = width, height
    elif mode == "square":
        rw, rh = resize, resize
    elif mode == "shorter":
        if width <= height:
            rw, rh = resize, int(resize * height / width)
        else:
            rw, rh = int(resize * width / height), resize
    else:
        raise ValueError(f"mode must be 'square' or 'shorter', not {mode!r}")
    sx, sy = rw / width, rh / height
    if crop is None:
        return sx, sy, 0.0, 0.0, rw, rh
    # torchvision's center_crop offsets: int(round((size - crop) / 2))
    ox, oy = int(round((rw - crop) / 2.0)), int(round((rh - crop) / 2.0))
    return sx, sy, float(ox), float(oy), crop, crop


def rescale_boxes(
    boxes: torch.Tensor | np.ndarray,
    width: int,
    height: int,
    resize: int | None,
    crop: int | None = None,
    mode: str = "square",
    min_size: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map boxes (K, 4+) from an image of ``width x height`` through resize + centre crop.

    Extra columns (e.g. the class) are carried along. Boxes are clipped to the output; boxes left
    narrower or shorter than ``min_size`` (cropped away) are removed, and the returned boolean
    ``kept`` (K,) says which, so callers can count them.
    """
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float64)).clone()
    if b.ndim == 1:
        b = b.reshape(-1, 4) if b.numel() == 0 else b[None]
    sx, sy, ox, oy, ow, oh = resize_crop_geometry(width, height, resize, crop, mode)
    b[:, [0, 2]] = (b[:, [0, 2]] * sx - ox).clamp(0, ow)
    b[:, [1, 3]] = (b[:, [1, 3]] * sy - oy).clamp(0, oh)
    kept = ((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)
    return b[kept].to(torch.float32), kept


def box_mask(boxes: torch.Tensor | np.ndarray, height: int, width: int) -> torch.Tensor:
    """Union of boxes (K, 4+) as a bool mask (H, W); fractional edges round outwards."""
    m = torch.zeros(height, width, dtype=torch.bool)
    arr = np.asarray(boxes, dtype=np.float64)
    for x0, y0, x1, y1 in arr.reshape(-1, arr.shape[-1] if arr.ndim else 4)[:, :4]:
        xa, ya = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        xb, yb = min(int(np.ceil(x1)), width), min(int(np.ceil(y1)), height)
        if xb > xa and yb > ya:
            m[ya:yb, xa:xb] = True
    return m


def box_overhang(box, width: float | None = None, height: float | None = None) -> float:
    """How far (pixels) the box (x_min, y_min, x_max, y_max) passes the image's edges; 0 if inside.

    Without a width/height only the left and top edges are checked.
    """
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    over = max(0.0, -x0, -y0)
    if width is not None:
        over = max(over, x1 - width)
    if height is not None:
        over = max(over, y1 - height)
    return over
