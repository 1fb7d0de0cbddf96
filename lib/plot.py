"""Figures the chapters share: maps over images, boxes, signed raw maps, dead zones."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

__all__ = ["as_image", "overlay", "draw_boxes", "signed_map", "mark_dead_zone", "method_grid"]


def as_image(x, mean=None, std=None) -> np.ndarray:
    """A displayable (H, W, 3) or (H, W) float array in [0, 1] from a tensor (C, H, W) (undoing
    the normalisation ``mean``/``std`` if given) or an array (H, W[, 3])."""
    if isinstance(x, torch.Tensor):
        t = x.detach().float().cpu()
        if mean is not None:
            t = t * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
        arr = t.permute(1, 2, 0).numpy() if t.dim() == 3 else t.numpy()
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
    else:
        arr = np.asarray(x, dtype=np.float32)
        if arr.max() > 1.5:
            arr = arr / 255.0
    return np.clip(arr, 0, 1)


def draw_boxes(ax, boxes, color="lime", lw=1.5, labels: Sequence[str] | None = None) -> None:
    """Boxes (K, 4+) as (x_min, y_min, x_max, y_max), x_max exclusive (pixel edges)."""
    for k, b in enumerate(np.asarray(boxes, dtype=float).reshape(-1, np.shape(boxes)[-1])):
        x0, y0, x1, y1 = b[:4]
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                               edgecolor=color, lw=lw))
        if labels is not None:
            ax.text(x0, y0, labels[k], color=color, fontsize=7, va="bottom")


def overlay(ax, image, heat=None, boxes=None, alpha=0.5, cmap="jet", title=None, vmax=None):
    """The image with a non-negative heat map (same H, W) over it, and boxes."""
    ax.imshow(image, cmap="gray" if np.ndim(image) == 2 else None)
    if heat is not None:
        h = heat.detach().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat)
        ax.imshow(h, cmap=cmap, alpha=alpha, vmin=0, vmax=vmax if vmax is not None else
                  max(float(h.max()), 1e-12))
    if boxes is not None:
        draw_boxes(ax, boxes)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def signed_map(ax, raw, title=None, cmap="RdBu_r"):
    """A raw, signed map at its own resolution, with a colour scale centred on zero."""
    r = raw.detach().cpu().numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw)
    lim = max(float(np.abs(r).max()), 1e-12)
    im = ax.imshow(r, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def mark_dead_zone(ax, first_row: float, width: float, height: float, color="red", alpha=0.25,
                   label="unseen", hatch=None):
    """Shade the rows from ``first_row`` to the bottom: the part of the input the model cannot see."""
    ax.add_patch(Rectangle((-0.5, first_row - 0.5), width, height - first_row, facecolor=color,
                           alpha=alpha, lw=0, hatch=hatch, edgecolor=color))
    ax.axhline(first_row - 0.5, color=color, lw=1)
    if label:
        ax.text(1, height - 2, label, color=color, fontsize=7, va="bottom")


def method_grid(images: Sequence, maps: dict[str, torch.Tensor], boxes: Sequence | None = None,
                row_labels: Sequence[str] | None = None, size: float = 1.6, alpha=0.5):
    """Rows of images, one column per method, each map over its image (maps (N, H, W))."""
    methods = list(maps)
    n = len(images)
    fig, axes = plt.subplots(n, len(methods) + 1, figsize=(size * (len(methods) + 1), size * n),
                             squeeze=False)
    for i, img in enumerate(images):
        overlay(axes[i, 0], img, None, None if boxes is None else boxes[i],
                title="image" if i == 0 else None)
        if row_labels is not None:
            axes[i, 0].set_ylabel(row_labels[i], fontsize=8)
        for j, m in enumerate(methods):
            overlay(axes[i, j + 1], img, maps[m][i], None if boxes is None else boxes[i],
                    alpha=alpha, title=m if i == 0 else None)
    fig.tight_layout()
    return fig
