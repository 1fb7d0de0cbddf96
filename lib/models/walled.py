"""Walls built into networks (Taimeskhanov et al.'s masking, moved into any CNN) and the check that a wall
holds: noise behind it leaves the logits bit-identical, a change just in front of it does not.

``RowWall`` zeroes the last rows of a feature map; ``WalledModel`` puts one after a layer of a
copy of any model; ``dead_zone_check`` tests a wall in the input (the dead zone of Taimeskhanov et al.'s
masked models) or in a layer's output.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass

import torch
from torch import nn

from lib.layers import layer_name, resolve_layer

__all__ = ["RowWall", "WalledLayer", "WalledModel", "WallCheck", "dead_zone_check"]


class RowWall(nn.Module):
    """Zero the last ``masked_rows`` rows of a feature map (N, C, H, W).

    A multiplication by a fixed 0/1 row mask, so the gradient reaching the wall's input in those
    rows is exactly 0 (0 * g), as behind the masked dense weights of Taimeskhanov et al.'s [VGG].
    """

    def __init__(self, masked_rows: int):
        super().__init__()
        if masked_rows < 0:
            raise ValueError(f"masked_rows must be >= 0, got {masked_rows}")
        self.masked_rows = int(masked_rows)

    def keep(self, height: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """The (height, 1) row mask: 1 on the visible rows, 0 on the masked ones."""
        if self.masked_rows >= height:
            raise ValueError(
                f"masked_rows={self.masked_rows} leaves no visible row of a "
                f"{height}-row feature map; mask fewer rows"
            )
        k = torch.ones(height, 1, device=device, dtype=dtype)
        if self.masked_rows:
            k[height - self.masked_rows :] = 0
        return k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.keep(x.shape[-2], x.device, x.dtype)

    def extra_repr(self) -> str:
        return f"masked_rows={self.masked_rows}"


class WalledLayer(nn.Module):
    """``wall(inner(x))``: a layer followed by a :class:`RowWall`. Target ``inner`` with a CAM:
    its activations are whole, and the gradient on its masked rows is exactly 0."""

    def __init__(self, inner: nn.Module, masked_rows: int):
        super().__init__()
        self.inner = inner
        self.wall = RowWall(masked_rows)

    def forward(self, x):
        return self.wall(self.inner(x))


class WalledModel(nn.Module):
    """A network with a wall built in: the last ``masked_rows`` rows of ``layer``'s output are
    zeroed before the rest of the network reads them.

    The model is copied (``copy=True``) and ``layer`` is replaced inside it by a
    :class:`WalledLayer`, so the mask is part of the forward pass and cannot be bypassed.
    ``target_layer`` names the layer to explain (the original layer, before the wall): its
    activations are intact and the gradient of every output there is exactly 0 in the masked
    rows. ``layer_name`` is the original layer's name in ``model``.
    """

    def __init__(
        self, model: nn.Module, layer: nn.Module | str, masked_rows: int, copy: bool = True
    ):
        super().__init__()
        name = layer_name(model, resolve_layer(model, layer))
        if not name:
            raise ValueError("layer must be a sub-module of the model, not the model itself")
        net = _copy.deepcopy(model) if copy else model
        parent_name, _, attr = name.rpartition(".")
        parent = resolve_layer(net, parent_name) if parent_name else net
        inner = resolve_layer(net, name)
        if isinstance(parent, nn.Sequential) and attr.lstrip("-").isdigit():
            parent[int(attr)] = WalledLayer(inner, masked_rows)
        else:
            setattr(parent, attr, WalledLayer(inner, masked_rows))
        self.net = net
        self.layer_name = name
        self.masked_rows = int(masked_rows)
        self.target_layer = f"net.{name}.inner"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass(frozen=True)
class WallCheck:
    """Outcome of :func:`dead_zone_check`: the largest change of any logit of any image."""

    dead: float  # max |delta logit| with the rows behind the wall replaced by noise
    above: float  # max |delta logit| with the row just in front of the wall shifted by `bump`
    rows: slice  # the rows tested as behind the wall
    where: str  # "input" or the name of the layer whose output was perturbed

    @property
    def holds(self) -> bool:
        """The wall is exact (dead rows change nothing, bit for bit) and sits where it should
        (the row in front of it is seen)."""
        return self.dead == 0.0 and self.above > 0.0

    def __str__(self) -> str:
        first = self.rows.start
        return (
            f"noise in {self.where} rows {first}.. : max |delta logit| = {self.dead:.3g}"
            f"{' (bit-identical)' if self.dead == 0.0 else ''}; row {first - 1} (just above) "
            f"shifted: max |delta logit| = {self.above:.3g}"
        )


def dead_zone_check(
    model: nn.Module,
    x: torch.Tensor,
    dead_rows: slice | int,
    *,
    layer: nn.Module | str | None = None,
    noise_scale: float = 1.0,
    bump: float = 0.5,
    seed: int = 0,
) -> WallCheck:
    """Whether the rows ``dead_rows`` (a slice, or the first dead row) are behind a wall.

    Three forward passes of the same batch ``x``: as is; with every row of ``dead_rows``
    replaced by Gaussian noise (std ``noise_scale``, drawn from ``seed``, the caller's random
    state is untouched); with the row just above the dead rows shifted by ``bump``. The rows are
    the input's (``layer=None``) or those of ``layer``'s output (perturbed through a forward
    hook). Returns the two max |delta logit| values; a wall holds when the first is exactly 0.
    """
    if isinstance(dead_rows, int):
        dead_rows = slice(dead_rows, None)
    if not isinstance(dead_rows, slice) or dead_rows.step not in (None, 1):
        raise ValueError(
            f"dead_rows must be a slice of consecutive rows or the first dead row, "
            f"got {dead_rows!r}"
        )
    first = dead_rows.start or 0
    if first < 1:
        raise ValueError(
            f"dead_rows={dead_rows!r} starts at row {first}: there is no row just "
            "above it to check that the wall sits where it should"
        )
    gen = torch.Generator().manual_seed(seed)

    def dead_noise(t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        rows = t[..., dead_rows, :]
        if rows.shape[-2] == 0:
            raise ValueError(f"dead_rows={dead_rows!r} selects no row of a {t.shape[-2]}-row map")
        t[..., dead_rows, :] = noise_scale * torch.randn(rows.shape, generator=gen).to(t)
        return t

    def shift_above(t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        t[..., first - 1, :] += bump
        return t

    def forward(change=None) -> torch.Tensor:
        if layer is None:
            return model(x if change is None else change(x))
        if change is None:
            return model(x)
        handle = resolve_layer(model, layer).register_forward_hook(lambda m, i, out: change(out))
        try:
            return model(x)
        finally:
            handle.remove()

    with torch.no_grad():
        y = forward()
        y_dead, y_above = forward(dead_noise), forward(shift_above)
    where = (
        "input"
        if layer is None
        else (layer if isinstance(layer, str) else layer_name(model, layer))
    )
    return WallCheck(
        dead=float((y_dead - y).abs().max()),
        above=float((y_above - y).abs().max()),
        rows=dead_rows,
        where=where,
    )
