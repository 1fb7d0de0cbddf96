"""The effective receptive field (Santos et al., Eq. 2) and its half-mass radius."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from lib.layers import resolve_layer


def erf(
    model: nn.Module,
    layer: nn.Module | str,
    images: torch.Tensor,
    unit=None,
    batch_size: int = 16,
    progress: bool | None = None,
) -> torch.Tensor:
    """The effective receptive field (Santos et al., Eq. 2):
    ``1/N sum_n | 1/C sum_c dA_ij / dI_n,c,x,y |``.

    A gradient of 1 at the centre unit ``(h // 2, w // 2)`` (or ``unit``) of every channel of
    ``layer``'s output and 0 elsewhere, back-propagated to the input. The model runs in eval mode
    on its own device (state restored); parameters' ``.grad`` are left untouched.

    Args:
        model: the network.
        layer: a module of ``model`` or a dotted name, whose output is (N, C, h, w).
        images: (N, C, H, W) inputs as the model takes them.
        unit: ``(row, column)`` of the unit, default the centre one.
        batch_size: images per backward pass.
        progress: show a progress bar (default: when there is more than one batch).

    Returns:
        (H, W) float32 tensor on the CPU.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lib.rf import erf
        >>> conv = nn.Conv2d(1, 1, 3, bias=False)
        >>> _ = nn.init.ones_(conv.weight)                    # every tap weighs 1
        >>> erf(conv, conv, torch.ones(1, 1, 5, 5))           # centre unit (1, 1) sees rows 1-3
        tensor([[0., 0., 0., 0., 0.],
                [0., 1., 1., 1., 0.],
                [0., 1., 1., 1., 0.],
                [0., 1., 1., 1., 0.],
                [0., 0., 0., 0., 0.]])
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"images must be a (N, C, H, W) tensor, got "
            f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}"
        )
    module = resolve_layer(model, layer)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = images.device
    captured: list[torch.Tensor] = []

    def hook(_m, _inp, out):
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise ValueError(
                f"layer {layer!r} outputs {type(out).__name__}, not a (N, C, h, w) feature map"
            )
        captured[:] = [out]
        return out.clone()  # later in-place ops (DenseNet's relu_) must not rewrite our copy

    batches = list(torch.split(images, batch_size))
    show = progress if progress is not None else len(batches) > 1

    total = None
    training = {m: m.training for m in model.modules()}
    handle = module.register_forward_hook(hook)
    try:
        model.eval()
        for batch in tqdm(batches, desc="ERF", disable=not show):
            x = batch.to(device).detach().requires_grad_(True)
            captured.clear()
            with torch.enable_grad():
                model(x)
                if not captured:
                    raise ValueError(f"layer {layer!r} was not called in the forward pass")
                out = captured[0]
                h, w = out.shape[-2:]
                cy, cx = unit if unit is not None else (h // 2, w // 2)
                seed = torch.zeros_like(out)
                seed[:, :, cy, cx] = 1.0
                (g,) = torch.autograd.grad(out, x, grad_outputs=seed)
            part = g.mean(dim=1).abs().sum(dim=0).double().cpu()
            total = part if total is None else total + part
    finally:
        handle.remove()
        for m, t in training.items():
            m.train(t)
    return (total / images.shape[0]).float()


def erf_radius(erf_map, mass: float = 0.5, centre: tuple[float, float] | None = None) -> float:
    """Smallest radius (pixels) of a disc around ``centre`` holding at least ``mass`` of the ERF's
    total: a scalar concentration measure of Santos et al.'s ERF (Eq. 2).

    Args:
        erf_map: (H, W) non-negative ERF (:func:`erf`), tensor or array.
        mass: the share of the total the disc must hold, in (0, 1].
        centre: ``(row, column)``, default the ERF's centre of mass.

    Returns:
        The radius in pixels, a float.

    Example:
        >>> import torch
        >>> from lib.rf import erf_radius
        >>> e = torch.zeros(5, 5)
        >>> e[1:4, 1:4] = 1                                   # 9 pixels around (2, 2)
        >>> erf_radius(e)                                     # radius 1 holds 5 of 9 (>= 4.5)
        1.0
    """
    a = np.asarray(
        erf_map.detach().cpu() if isinstance(erf_map, torch.Tensor) else erf_map, dtype=np.float64
    )
    if a.ndim != 2:
        raise ValueError(f"erf_map must be 2-D (H, W), got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("erf_map must be finite and non-negative (an ERF is an absolute value)")
    total = a.sum()
    if total <= 0:
        raise ValueError(
            "erf_map is all zero: the layer's centre unit does not depend on the input"
        )
    if not 0 < mass <= 1:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    yy, xx = np.indices(a.shape)
    if centre is None:
        centre = ((a * yy).sum() / total, (a * xx).sum() / total)
    d = np.hypot(yy - centre[0], xx - centre[1]).ravel()
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(a.ravel()[order])
    k = int(np.searchsorted(cum, mass * total * (1 - 1e-12)))
    return float(d[order][min(k, len(d) - 1)])
