"""Resampling of explanation maps: bilinear up-sampling as an explicit interpolation, and
up-sampling that places every unit at its receptive-field centre instead of its grid cell."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["upsample_centres", "interp_matrix", "upsample_at_centres"]


def upsample_centres(n: int, size: int) -> np.ndarray:
    """Where bilinear up-sampling of ``n`` units to ``size`` pixels (align_corners=False) puts
    unit ``i``: ``size / n * (i + 0.5) - 0.5`` in pixel-index coordinates."""
    return size / n * (np.arange(n) + 0.5) - 0.5


def interp_matrix(centres, size: int) -> torch.Tensor:
    """(size, n) float64 matrix of 1-D linear interpolation from ``n`` values placed at the pixel
    coordinates ``centres`` (increasing) to the pixels ``0..size-1``; beyond the first and last
    centre the edge value is kept (as ``F.interpolate`` does). With ``centres =
    upsample_centres(n, size)`` it is bilinear up-sampling (align_corners=False) along one axis."""
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
    """Up-sample maps (N, h, w) to ``size`` (int or (H, W)) placing unit (i, j) at the input
    pixel (``centres_y[i]``, ``centres_x[j]``), e.g. its RF centre (:func:`rf_centres`), and
    interpolating bilinearly between units (separable: ``Wy @ map @ Wx^T``). With
    :func:`upsample_centres` as the centres this is ``F.interpolate(..., "bilinear",
    align_corners=False)``; with the RF centres it is the RF-centred up-sampling."""
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        raise ValueError(f"maps must be a (N, h, w) tensor, got "
                         f"{tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}")
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    h, w = maps.shape[-2:]
    if len(np.ravel(centres_y)) != h or len(np.ravel(centres_x)) != w:
        raise ValueError(f"{len(np.ravel(centres_y))} x {len(np.ravel(centres_x))} centres for a "
                         f"{h} x {w} map: give one centre per unit along each axis")
    wy = interp_matrix(centres_y, H).to(maps.device, torch.float64)
    wx = interp_matrix(centres_x, W).to(maps.device, torch.float64)
    return (wy @ maps.double() @ wx.T).to(maps.dtype if maps.is_floating_point() else torch.float32)
