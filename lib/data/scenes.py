"""Localisation scenes built from real Fashion-MNIST items pasted at known places.

Every item has an exact box and pixel mask, so localisation metrics need no annotation. Train
scenes use only Fashion-MNIST's train split and test scenes only its test split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset
from tqdm import tqdm

from .boxes import box_mask
from .fashion_mnist import CLASSES, load_fashion_mnist

__all__ = ["Scenes", "make_scenes"]


@dataclass
class Scenes(Dataset):
    """Scenes with their labels, boxes and masks; ``scenes[i]`` is ``(image, label)``.

    images: float (N, C, S, S) in [0, 1]; labels: int64 (N,), the scene's class (the class of its
    objects); multilabels: float (N, 10), 1 for every class present (objects and distractors);
    boxes[i]: int64 (K_i, 5) rows (x_min, y_min, x_max, y_max, class), x_max/y_max exclusive;
    instance_map: uint8 (N, S, S), 0 background, k+1 the pixels of item k of boxes[i];
    items[i]: int64 (K_i,) index of each item in the Fashion-MNIST ``split``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    multilabels: torch.Tensor
    boxes: list[torch.Tensor]
    instance_map: torch.Tensor
    items: list[torch.Tensor]
    split: str
    classes: tuple[str, ...] = CLASSES
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i], self.labels[i]

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    def tensors(self, multilabel: bool = False) -> TensorDataset:
        """(images, labels) or (images, multilabels) as a TensorDataset, ready for a DataLoader."""
        return TensorDataset(self.images, self.multilabels if multilabel else self.labels)

    def masks(self, i: int) -> torch.Tensor:
        """Pixel masks (K_i, S, S) bool of the items of scene ``i``, in the order of ``boxes[i]``."""
        k = self.boxes[i].shape[0]
        ids = torch.arange(1, k + 1, dtype=self.instance_map.dtype)
        return self.instance_map[i][None] == ids[:, None, None]

    def target_boxes(self, i: int, cls: int | None = None) -> torch.Tensor:
        """Boxes (K, 4) of the items of class ``cls`` (default: the scene's label) in scene ``i``."""
        cls = int(self.labels[i]) if cls is None else cls
        b = self.boxes[i]
        return b[b[:, 4] == cls, :4]

    def target_mask(self, i: int, cls: int | None = None) -> torch.Tensor:
        """Union (S, S) of the pixel masks of the items of class ``cls`` (default: the label)."""
        cls = int(self.labels[i]) if cls is None else cls
        sel = self.boxes[i][:, 4] == cls
        return self.masks(i)[sel].any(0)

    def target_box_mask(self, i: int, cls: int | None = None) -> torch.Tensor:
        """Union (S, S) of the boxes of the items of class ``cls`` (default: the label)."""
        return box_mask(self.target_boxes(i, cls), self.size, self.size)


def _range(v, name) -> tuple:
    lo, hi = (v, v) if np.isscalar(v) else tuple(v)
    if lo > hi or lo < 0:
        raise ValueError(f"{name}={v!r}: give a number or a (low, high) pair with 0 <= low <= high")
    return lo, hi


def _clutter(rng: np.random.Generator, size: int, amplitude: float) -> np.ndarray:
    # smooth low-frequency texture: the network must ignore a non-empty background
    low = rng.random((max(size // 8, 2), max(size // 8, 2)), dtype=np.float32)
    return cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * amplitude


def _layout(rng, cls_list, by_class, src_x, size, lo_sc, hi_sc, threshold):
    """Pick, resize and place one item per class in ``cls_list``; None if they do not fit."""
    out, rects = [], []
    for cls in cls_list:
        j = int(rng.choice(by_class[cls]))
        side = int(round(rng.uniform(lo_sc, hi_sc) * size))
        interp = cv2.INTER_AREA if side < 28 else cv2.INTER_LINEAR
        patch = cv2.resize(src_x[j], (side, side), interpolation=interp).astype(np.float32) / 255.0
        on = patch > threshold
        if not on.any():
            raise ValueError(f"item {j} has no pixel above threshold={threshold}")
        rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
        patch = patch[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        on = on[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h, w = patch.shape
        for _ in range(30):
            x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            # one free pixel between boxes, so masks and boxes never overlap
            if all(
                x0 > bx1 or x0 + w < bx0 or y0 > by1 or y0 + h < by0 for bx0, by0, bx1, by1 in rects
            ):
                break
        else:
            return None
        rects.append((x0, y0, x0 + w, y0 + h))
        out.append((x0, y0, patch, on, cls, j))
    return out


def make_scenes(
    n: int,
    split: str = "train",
    size: int = 64,
    n_objects: int | Sequence[int] = 1,
    n_distractors: int | Sequence[int] = (0, 2),
    scale: float | Sequence[float] = (0.3, 0.5),
    clutter: float = 0.0,
    channels: int = 1,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    data_root: str | Path | None = None,
    threshold: float = 0.1,
    source: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool = False,
) -> Scenes:
    """Generate ``n`` deterministic scenes of ``size`` px from Fashion-MNIST ``split``.

    Each scene has a class c (balanced over ``classes``), ``n_objects`` items of class c and
    ``n_distractors`` items of other classes (int or inclusive (low, high) range), each resized to a
    side of ``scale`` x ``size`` (uniform in the range), placed so that no two boxes touch, composited
    with a pixel-wise maximum over an optional smooth ``clutter`` background of that amplitude. An
    item's box is the tight box of its pixels above ``threshold`` (exact); its mask is those pixels.
    ``source`` = (uint8 images (M, 28, 28), labels (M,)) replaces the Fashion-MNIST split (tests).
    """
    if not 16 <= size <= 512:
        raise ValueError(f"size={size}: scenes are 16..512 px (64..224 intended)")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    lo_obj, hi_obj = _range(n_objects, "n_objects")
    lo_dis, hi_dis = _range(n_distractors, "n_distractors")
    lo_sc, hi_sc = _range(scale, "scale")
    if hi_sc > 1 or lo_sc * size < 4:
        raise ValueError(
            f"scale={scale!r}: item side must be between 4 px and the canvas ({size} px)"
        )
    if hi_obj < 1:
        raise ValueError("n_objects must allow at least one object")
    src_x, src_y = source if source is not None else load_fashion_mnist(split, data_root)
    src_x, src_y = np.asarray(src_x, dtype=np.uint8), np.asarray(src_y, dtype=np.int64)
    classes = list(range(len(CLASSES))) if classes is None else [int(c) for c in classes]
    by_class = {c: np.flatnonzero(src_y == c) for c in range(len(CLASSES))}
    for c in classes:
        if by_class[c].size == 0:
            raise ValueError(f"class {c} has no items in the {split} split")
    others_pool = {
        c: [d for d in range(len(CLASSES)) if d != c and by_class[d].size] for c in classes
    }

    rng = np.random.default_rng(seed)
    labels = np.array(classes)[rng.permutation(np.arange(n) % len(classes))]
    images = np.zeros((n, size, size), np.float32)
    inst = np.zeros((n, size, size), np.uint8)
    multi = np.zeros((n, len(CLASSES)), np.float32)
    boxes, items = [], []
    for i in tqdm(range(n), desc=f"scenes ({split})", disable=not progress):
        c = int(labels[i])
        canvas = _clutter(rng, size, clutter) if clutter > 0 else images[i]
        k_obj = int(rng.integers(lo_obj, hi_obj + 1))
        k_dis = int(rng.integers(lo_dis, hi_dis + 1)) if others_pool[c] else 0
        cls_list = [c] * k_obj + [int(rng.choice(others_pool[c])) for _ in range(k_dis)]
        for _attempt in range(50):
            layout = _layout(rng, cls_list, by_class, src_x, size, lo_sc, hi_sc, threshold)
            if layout is not None:
                break
        else:
            raise ValueError(
                f"cannot place {len(cls_list)} items of scale {scale} without "
                f"overlap on a {size} px canvas: lower n_objects/n_distractors or "
                "scale, or raise size"
            )
        placed, idx_list = [], []
        for x0, y0, patch, on, cls, j in layout:
            h, w = patch.shape
            region = canvas[y0 : y0 + h, x0 : x0 + w]
            np.maximum(region, patch, out=region)
            inst[i, y0 : y0 + h, x0 : x0 + w][on] = len(placed) + 1
            placed.append((x0, y0, x0 + w, y0 + h, cls))
            idx_list.append(j)
            multi[i, cls] = 1.0
        images[i] = canvas
        boxes.append(torch.tensor(placed, dtype=torch.int64).reshape(-1, 5))
        items.append(torch.tensor(idx_list, dtype=torch.int64))
    x = torch.from_numpy(images)[:, None]
    if channels == 3:
        x = x.expand(-1, 3, -1, -1).contiguous()
    params = dict(
        n=n,
        split=split,
        size=size,
        n_objects=n_objects,
        n_distractors=n_distractors,
        scale=scale,
        clutter=clutter,
        channels=channels,
        seed=seed,
        classes=classes,
        threshold=threshold,
    )
    return Scenes(
        x,
        torch.from_numpy(labels.astype(np.int64)),
        torch.from_numpy(multi),
        boxes,
        torch.from_numpy(inst),
        items,
        split,
        CLASSES,
        params,
    )
