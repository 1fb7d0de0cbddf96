"""STACK-MIX (Taimeskhanov et al., Eq. 6) from any labelled image set.

xi = (xi_1[:, :split_row, :] over xi_2[:, split_row:, :]): the upper rows of one image and the
lower rows of another image of the same class. The paper's split is 170 of 224 rows, i.e. the lower
54 rows, the dead zone of its masked VGG, come from the second image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

__all__ = ["StackMix", "stack_mix"]


@dataclass
class StackMix:
    """images (N, ..., H, W); labels (N,); upper[i] / lower[i]: index in the source set of the
    image that gave rows [0, split_row) / [split_row, H) of image i."""

    images: torch.Tensor
    labels: torch.Tensor
    upper: torch.Tensor
    lower: torch.Tensor
    split_row: int

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def stack_mix(
    images: torch.Tensor,
    labels: torch.Tensor,
    split_row: int | None = None,
    dead_rows: int | None = None,
    n_per_class: int = 1,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> StackMix:
    """Build STACK-MIX images (Eq. 6) from ``images`` (N, [C,] H, W) and ``labels`` (N,).

    Give either ``split_row`` (rows above it from the first image) or ``dead_rows`` (the number of
    bottom rows the model cannot see; split_row = H - dead_rows). For each class in ``classes``
    (default: every label with at least two images, ascending) ``n_per_class`` pairs of two distinct
    images are drawn with ``seed``; the output is ordered by class.
    """
    images = torch.as_tensor(images)
    labels = torch.as_tensor(labels).reshape(-1)
    if images.ndim < 3 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"images must be (N, [C,] H, W) with N = len(labels); got "
            f"{tuple(images.shape)} and {labels.shape[0]} labels"
        )
    height = images.shape[-2]
    if (split_row is None) == (dead_rows is None):
        raise ValueError("give exactly one of split_row= or dead_rows=")
    if split_row is None:
        split_row = height - int(dead_rows)
    split_row = int(split_row)
    if not 0 < split_row < height:
        raise ValueError(
            f"split_row={split_row} must lie strictly between 0 and the image "
            f"height {height} (dead_rows={dead_rows})"
        )
    lab = labels.cpu().numpy()
    counts = {int(c): int((lab == c).sum()) for c in np.unique(lab)}
    if classes is None:
        classes = [c for c in sorted(counts) if counts[c] >= 2]
        if not classes:
            raise ValueError("no class has two images to mix")
    rng = np.random.default_rng(seed)
    upper, lower, out_labels = [], [], []
    for c in classes:
        idx = np.flatnonzero(lab == int(c))
        if idx.size < 2:
            raise ValueError(
                f"class {c} has {idx.size} image(s); STACK-MIX needs two distinct "
                "images of the same class"
            )
        for _ in range(n_per_class):
            a, b = rng.choice(idx, size=2, replace=False)
            upper.append(int(a))
            lower.append(int(b))
            out_labels.append(int(c))
    up = torch.tensor(upper, dtype=torch.int64)
    lo = torch.tensor(lower, dtype=torch.int64)
    mixed = images[up.to(images.device)].clone()
    mixed[..., split_row:, :] = images[lo.to(images.device)][..., split_row:, :]
    return StackMix(mixed, torch.tensor(out_labels, dtype=labels.dtype), up, lo, split_row)
