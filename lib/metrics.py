"""Localisation metrics for explanation maps, exactly as the papers define them.

All functions take maps (N, H, W) at the input's resolution (already post-processed, so
non-negative where a paper says so) and boolean masks (N, H, W) or a dead-zone row slice, and
return one value per image as a float tensor.
"""
from __future__ import annotations

import torch

__all__ = ["mass_in_mask", "hit", "iou_top_area", "dead_zone_ratio"]


def _check(maps: torch.Tensor, masks: torch.Tensor | None = None) -> None:
    if maps.dim() != 3:
        raise ValueError(f"maps must be (N, H, W), got {tuple(maps.shape)}")
    if masks is not None and masks.shape != maps.shape:
        raise ValueError(f"masks {tuple(masks.shape)} must match maps {tuple(maps.shape)}: "
                         "up-sample the maps to the input size first (lib.cam.postprocess)")
    if not torch.isfinite(maps).all():
        raise ValueError("maps hold NaN or Inf")


def mass_in_mask(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """sum(A * M) / sum(A): the share of a non-negative map's mass inside the mask.

    Paper 004's localisation score s. A map that is zero everywhere has no mass to place: its
    score is NaN-free 0.
    """
    _check(maps, masks)
    if (maps < 0).any():
        raise ValueError("mass_in_mask needs non-negative maps (apply ReLU / postprocess first)")
    total = maps.flatten(1).sum(1)
    inside = (maps * masks).flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=torch.finfo(maps.dtype).tiny), 0.0)


def hit(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """1 if the map's arg-max pixel lies inside the mask (paper 000's hit rate; paper 001's
    pointing game), else 0. ``tolerance`` > 0 grows the mask by that many pixels (the pointing
    game's optional 15 px); ties take the first arg-max in row-major order."""
    _check(maps, masks)
    m = masks.bool()
    if tolerance > 0:
        k = 2 * tolerance + 1
        m = torch.nn.functional.max_pool2d(m[:, None].float(), k, stride=1,
                                           padding=tolerance)[:, 0].bool()
    idx = maps.flatten(1).argmax(1)
    return m.flatten(1).gather(1, idx[:, None])[:, 0].float()


def iou_top_area(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """IoU between the mask and the map binarised to its top-A pixels, A = the mask's area
    (paper 000, Section 2.4). Ties at the threshold are broken by pixel order (top-k)."""
    _check(maps, masks)
    flat = maps.flatten(1)
    m = masks.flatten(1).bool()
    out = torch.empty(len(maps), dtype=torch.float32, device=maps.device)
    for i in range(len(maps)):
        area = int(m[i].sum())
        if area == 0:
            raise ValueError(f"mask {i} is empty: IoU with an empty box is undefined")
        top = torch.zeros_like(m[i])
        top[flat[i].topk(area).indices] = True
        out[i] = (top & m[i]).sum() / (top | m[i]).sum()
    return out


def dead_zone_ratio(maps: torch.Tensor, dead_rows: slice) -> torch.Tensor:
    """mu (paper 003, Eq. 7): ||Lambda[dead rows, :]||_2 / ||Lambda||_2 of the up-sampled map.

    The paper reports 100 * mu; a zero map gives 0.
    """
    _check(maps)
    norm = maps.flatten(1).norm(dim=1)
    dead = maps[:, dead_rows].flatten(1).norm(dim=1)
    return torch.where(norm > 0, dead / norm.clamp(min=torch.finfo(maps.dtype).tiny), 0.0)
