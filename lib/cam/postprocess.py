"""From raw maps to display maps: ReLU, resize, normalise (kept apart from the engine, which
returns maps raw)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lib.cam.errors import CAMError

__all__ = ["postprocess", "minmax", "PGC_PRESET"]

#: post-processing of pytorch-grad-cam (and so of papers that used it, e.g. Taimeskhanov et al.)
PGC_PRESET = "pytorch-grad-cam"


def postprocess(
    maps: torch.Tensor,
    size: int | tuple[int, int] | None = None,
    relu: bool = True,
    mode: str = "bilinear",
    normalize: str = "minmax",
    preset: str | None = None,
) -> torch.Tensor:
    """Turn raw maps into display maps: ReLU, resize, normalise, in that order.

    Args:
        maps: raw maps (N, h, w), as :func:`lib.cam.compute` returns them.
        size: the output size (an int for a square, or (H, W)); None keeps (h, w).
        relu: keep only the positive part first.
        mode: ``"bilinear"`` (align_corners=False), ``"nearest"`` or ``"bicubic"``.
        normalize: ``"minmax"`` (per map, to [0, 1]; a constant map gives zeros, never NaN),
            ``"max"`` (divide by the per-map maximum) or ``"none"``.
        preset: ``"pytorch-grad-cam"`` is that library's post-processing (ReLU, per-map min-max
            with its 1e-7, bilinear resize, min-max again), whatever the other arguments say.

    Returns:
        float maps (N, H, W).

    Example:
        >>> postprocess(torch.tensor([[[-1.0, 1.0], [2.0, 3.0]]]))
        tensor([[[0.0000, 0.3333],
                 [0.6667, 1.0000]]])
    """
    if preset is not None:
        if preset != PGC_PRESET:
            raise CAMError(f"unknown preset {preset!r}; the one preset is {PGC_PRESET!r}")
        relu, mode, normalize = True, "bilinear", "pgc"
    if maps.dim() != 3:
        raise CAMError(
            f"postprocess expects maps of shape (N, h, w), got {tuple(maps.shape)}; "
            "for input attributions (N, C, H, W) sum or take |.| over C first"
        )
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise CAMError(f"mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    if normalize not in ("minmax", "max", "none", "pgc"):
        raise CAMError(f"normalize must be 'minmax', 'max' or 'none', got {normalize!r}")
    out = maps.float()
    if relu:
        out = out.clamp(min=0)
    if normalize == "pgc":  # pytorch-grad-cam normalises, then resizes, then normalises again
        out = minmax(out, eps=1e-7)
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        kw = {} if mode == "nearest" else {"align_corners": False}
        out = F.interpolate(out[:, None], size=size, mode=mode, **kw)[:, 0]
    if normalize in ("minmax", "pgc"):
        out = minmax(out, eps=1e-7 if normalize == "pgc" else 0.0)
    elif normalize == "max":
        peak = out.flatten(1).amax(1).view(-1, 1, 1)
        out = torch.where(peak > 0, out / peak.clamp(min=torch.finfo(out.dtype).tiny), 0.0)
    return out


def minmax(m: torch.Tensor, eps: float) -> torch.Tensor:
    """Each map scaled to [0, 1] by its own minimum and maximum.

    Args:
        m: maps (N, h, w).
        eps: added to max - min (pytorch-grad-cam's 1e-7, Score-CAM's 1e-8); with 0 a constant
            map gives zeros, never NaN.

    Returns:
        (m - min) / (max - min + eps), per map, the shape of m.

    Example:
        >>> minmax(torch.tensor([[[1.0, 3.0]], [[2.0, 2.0]]]), eps=0.0)
        tensor([[[0., 1.]],
        <BLANKLINE>
                [[0., 0.]]])
    """
    flat = m.flatten(1)
    lo = flat.amin(1).view(-1, 1, 1)
    span = flat.amax(1).view(-1, 1, 1) - lo
    if eps:
        return (m - lo) / (span + eps)
    return torch.where(span > 0, (m - lo) / span.clamp(min=torch.finfo(m.dtype).tiny), 0.0)
