"""Resampling of explanation maps: bilinear up-sampling as an explicit interpolation,
up-sampling that places every unit at its receptive-field centre instead of its grid cell, and
Santos et al.'s down-then-up resampling that brings maps of several layers to one resolution."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["upsample_centres", "interp_matrix", "upsample_at_centres", "pool_centres", "down_up"]


def upsample_centres(n: int, size: int) -> np.ndarray:
    """Where bilinear up-sampling of ``n`` units to ``size`` pixels (``align_corners=False``) puts
    each unit: ``size / n * (i + 0.5) - 0.5`` in pixel-index coordinates (Grad-CAM's final
    up-sampling, against which Santos et al.'s RF centres are compared).

    Args:
        n: units along the axis.
        size: pixels along the axis.

    Returns:
        (n,) float64 array of coordinates.

    Example:
        >>> from lib.resample import upsample_centres
        >>> upsample_centres(2, 4)                            # 4 / 2 * (0.5, 1.5) - 0.5
        array([0.5, 2.5])
    """
    return size / n * (np.arange(n) + 0.5) - 0.5


def interp_matrix(centres, size: int) -> torch.Tensor:
    """The matrix of 1-D linear interpolation from ``n`` values placed at the pixel coordinates
    ``centres`` (increasing) to the pixels ``0..size-1``.

    Beyond the first and last centre the edge value is kept (as ``F.interpolate`` does). With
    ``centres = upsample_centres(n, size)`` it is bilinear up-sampling (``align_corners=False``)
    along one axis.

    Args:
        centres: (n,) strictly increasing, finite pixel coordinates.
        size: pixels of the output.

    Returns:
        (size, n) float64 tensor W: the interpolated values are ``W @ values``.

    Example:
        >>> from lib.resample import interp_matrix
        >>> interp_matrix([0.5, 2.5], 4)                      # pixel 1 is 1/4 of the way
        tensor([[1.0000, 0.0000],
                [0.7500, 0.2500],
                [0.2500, 0.7500],
                [0.0000, 1.0000]], dtype=torch.float64)
    """
    c = np.asarray(centres, dtype=np.float64).ravel()
    if c.size == 0 or not np.isfinite(c).all():
        raise ValueError(f"centres must be a non-empty array of finite coordinates, got {c}")
    if c.size > 1 and not (np.diff(c) > 0).all():
        raise ValueError("centres must be strictly increasing (one per unit, in order)")
    pixels = np.arange(size, dtype=np.float64)
    eye = np.eye(c.size)
    # np.interp holds the edge values beyond the first / last centre (clamping)
    return torch.from_numpy(np.stack([np.interp(pixels, c, eye[i]) for i in range(c.size)], 1))


def upsample_at_centres(maps: torch.Tensor, centres_y, centres_x, size) -> torch.Tensor:
    """Up-sample maps placing unit (i, j) at the input pixel (``centres_y[i]``, ``centres_x[j]``),
    e.g. its RF centre (``lib.rf.rf_centres``), bilinear between units (separable: ``Wy @ map @
    Wx^T``).

    With :func:`upsample_centres` as the centres this is ``F.interpolate(..., "bilinear",
    align_corners=False)``; with the RF centres it is the RF-centred up-sampling.

    Args:
        maps: (N, h, w) maps.
        centres_y: (h,) increasing row coordinates of the units.
        centres_x: (w,) increasing column coordinates of the units.
        size: the output size, int or (H, W).

    Returns:
        (N, H, W) tensor, the maps' floating dtype (float32 for integer maps).

    Example:
        >>> import torch
        >>> from lib.resample import upsample_at_centres
        >>> maps = torch.tensor([[[0., 4.]]])                  # one row, units at columns 0.5, 2.5
        >>> upsample_at_centres(maps, [0.], [0.5, 2.5], (1, 4))
        tensor([[[0., 1., 3., 4.]]])
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        raise ValueError(
            f"maps must be a (N, h, w) tensor, got "
            f"{tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}"
        )
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    h, w = maps.shape[-2:]
    if len(np.ravel(centres_y)) != h or len(np.ravel(centres_x)) != w:
        raise ValueError(
            f"{len(np.ravel(centres_y))} x {len(np.ravel(centres_x))} centres for a "
            f"{h} x {w} map: give one centre per unit along each axis"
        )
    wy = interp_matrix(centres_y, H).to(maps.device, torch.float64)
    wx = interp_matrix(centres_x, W).to(maps.device, torch.float64)
    return (wy @ maps.double() @ wx.T).to(maps.dtype if maps.is_floating_point() else torch.float32)


def pool_centres(centres, n: int) -> np.ndarray:
    """Centres of the ``n`` units of a 1-D map area-averaged (adaptive average pooling) from units
    placed at ``centres``: the mean centre of each pooling window (e.g. the RF centres of a
    layer's units after :func:`down_up`'s down-sampling, Santos et al., Section 2.4).

    Args:
        centres: (m,) coordinates of the units, m >= n.
        n: units after pooling.

    Returns:
        (n,) float64 array of coordinates.

    Example:
        >>> from lib.resample import pool_centres
        >>> pool_centres([0.5, 2.5, 4.5, 6.5], 2)            # means of (0.5, 2.5) and (4.5, 6.5)
        array([1.5, 5.5])
    """
    c = np.asarray(centres, dtype=np.float64).ravel()
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive number of units, got {n!r}")
    if c.size < n:
        raise ValueError(
            f"cannot pool {c.size} units down to {n}: down-sampling needs at least "
            "as many units as the target grid"
        )
    return F.adaptive_avg_pool1d(torch.from_numpy(c).view(1, 1, -1), int(n)).view(-1).numpy()


def down_up(
    maps: torch.Tensor, grid: tuple[int, int], size, centres=None, relu: bool = True
) -> torch.Tensor:
    """Santos et al.'s resampling of a layer's maps (Section 2.4): ReLU, area-average down to
    ``grid`` (the last layer's feature size; nothing to do if already that size), then up-sample
    to ``size``, so that every layer is judged at the same resolution.

    Args:
        maps: (N, h, w) maps of one layer, h >= grid[0] and w >= grid[1].
        grid: (gh, gw), the last layer's feature size.
        size: the output size, int or (H, W).
        centres: None for bilinear up-sampling (``align_corners=False``, as Grad-CAM does), or
            the (rows, columns) input coordinates of the ``grid`` units (e.g. their RF centres
            pooled by :func:`pool_centres`) for the RF-centred up-sampling
            (:func:`upsample_at_centres`).
        relu: apply the ReLU first.

    Returns:
        (N, H, W) float32 tensor.

    Example:
        >>> import torch
        >>> from lib.resample import down_up
        >>> maps = torch.arange(16.).view(1, 4, 4) - 5        # ReLU, then the means of 2 x 2 blocks
        >>> down_up(maps, (2, 2), 2)
        tensor([[[0.0000, 0.7500],
                 [5.5000, 7.5000]]])
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        raise ValueError(
            f"maps must be a (N, h, w) tensor, got "
            f"{tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}"
        )
    gh, gw = grid
    h, w = maps.shape[-2:]
    if h < gh or w < gw:
        raise ValueError(
            f"a {h}x{w} map cannot be down-sampled to the last layer's {gh}x{gw} "
            "grid: list the last (coarsest) layer first"
        )
    out = maps.float().clamp(min=0) if relu else maps.float()
    if (h, w) != (gh, gw):
        out = F.adaptive_avg_pool2d(out[:, None], (gh, gw))[:, 0]
    size = (size, size) if isinstance(size, int) else tuple(size)
    if centres is None:
        return F.interpolate(out[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return upsample_at_centres(out, centres[0], centres[1], size)
