"""The theoretical receptive field of every feature map of a model (Santos et al., Eq. 1), from the
model's own computation (:mod:`lib.rf._trace`); the result types and their table."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from lib.layers import layer_name

from ._trace import RFError, _Axis, _input_axis, _is_tensor, _Map, _Tracker

# --------------------------------------------------------------------------------------------
# Public results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisRF:
    """Theoretical RF along one axis of a feature map (input pixel units, unbounded image).

    ``rf_min``/``rf_max``: smallest/largest RF size over channels (and phases after
    up-sampling); ``inf`` when a global operation feeds the map. ``rf_local``: the largest size
    counting only the local (convolutional) paths. ``jump``: input pixels between neighbouring
    units (the effective stride). ``start``: centre of unit 0's RF, so unit ``i`` is centred at
    ``start + i * jump`` (exactly so when ``period == 1``). ``size``: units along the axis;
    ``input_size``: pixels along the axis.
    """

    rf_min: float
    rf_max: float
    rf_local: float
    jump: float
    start: float
    size: int
    input_size: int
    period: int
    _lo: tuple
    _hi: tuple
    _glob: tuple

    def bounds(self, i: int, clip: bool = True) -> tuple[float, float] | None:
        """Input interval ``(first, last)`` (inclusive) seen by unit ``i``; clipped to the image
        (integers) unless ``clip=False``; None if the unit sees no input pixel."""
        if not 0 <= i < self.size:
            raise IndexError(f"unit {i} outside a {self.size}-unit axis")
        r = i % self.period
        if self._glob[r]:
            return (0, self.input_size - 1) if clip else (-math.inf, math.inf)
        off = i * self.jump if math.isfinite(self.jump) else 0.0
        a, b = self._lo[r] + off, self._hi[r] + off
        if a > b:
            return None
        if not clip:
            return (a, b)
        a, b = max(math.ceil(a), 0), min(math.floor(b), self.input_size - 1)
        return (a, b) if a <= b else None

    def centres(self) -> np.ndarray:
        """Input coordinate of each unit's RF centre (local part; pixel-index coordinates)."""
        i = np.arange(self.size)
        r = i % self.period
        lo, hi = np.asarray(self._lo)[r], np.asarray(self._hi)[r]
        with np.errstate(invalid="ignore"):
            return (lo + hi) / 2 + i * self.jump


def _summarise(ax: _Axis, size: int, input_size: int) -> AxisRF:
    p = ax.period
    used = slice(0, max(1, min(p, size)))
    lo, hi, gl = ax.lo[:, used], ax.hi[:, used], ax.glob[:, used]
    with np.errstate(invalid="ignore"):
        local = np.where(lo <= hi, hi - lo + 1, 0.0)
    sizes = np.where(gl, np.inf, local)
    ulo, uhi, ugl = ax.lo.min(axis=0), ax.hi.max(axis=0), ax.glob.any(axis=0)
    start = (ulo[0] + uhi[0]) / 2 if ulo[0] <= uhi[0] else math.nan
    return AxisRF(
        rf_min=_num(sizes.min()),
        rf_max=_num(sizes.max()),
        rf_local=_num(local.max()),
        jump=_num(ax.jump),
        start=_num(start),
        size=int(size),
        input_size=int(input_size),
        period=p,
        _lo=tuple(float(a) for a in ulo),
        _hi=tuple(float(a) for a in uhi),
        _glob=tuple(bool(a) for a in ugl),
    )


def _num(v) -> float:
    v = float(v)
    return float(round(v)) if math.isfinite(v) and abs(v - round(v)) < 1e-9 else v


@dataclass(frozen=True)
class RF:
    """Theoretical RF of one layer's output map: ``y`` (rows) and ``x`` (columns) axes.
    ``rf_min``, ``rf_max``, ``jump``, ``start`` read both axes and need them equal."""

    layer: str
    channels: int
    y: AxisRF
    x: AxisRF

    def _both(self, attr: str) -> float:
        a, b = getattr(self.y, attr), getattr(self.x, attr)
        if _same(a, b):
            return a
        raise ValueError(
            f"{attr} differs between the axes of {self.layer!r} (rows {a}, "
            f"columns {b}); read rf.y.{attr} and rf.x.{attr}"
        )

    rf_min = property(lambda self: self._both("rf_min"))
    rf_max = property(lambda self: self._both("rf_max"))
    rf_local = property(lambda self: self._both("rf_local"))
    jump = property(lambda self: self._both("jump"))
    start = property(lambda self: self._both("start"))
    out_h = property(lambda self: self.y.size)
    out_w = property(lambda self: self.x.size)

    def __str__(self) -> str:
        def f(a: AxisRF) -> str:
            rng = _fmt(a.rf_max) if a.rf_min == a.rf_max else f"{_fmt(a.rf_min)}-{_fmt(a.rf_max)}"
            return f"RF {rng}, jump {_fmt(a.jump)}, start {_fmt(a.start)}, {a.size} units"

        if self.y == self.x or (f(self.y) == f(self.x)):
            return f"{self.layer}: {f(self.y)}"
        return f"{self.layer}: rows {f(self.y)}; columns {f(self.x)}"


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _fmt(v: float) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


# --------------------------------------------------------------------------------------------
# Analysis entry points
# --------------------------------------------------------------------------------------------


def _hw(input_size) -> tuple[int, int]:
    if isinstance(input_size, int):
        return input_size, input_size
    h, w = input_size
    return int(h), int(w)


def _in_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def _analyse(
    model: nn.Module, input_size=224, in_channels: int | None = None
) -> dict[str, tuple[RF, int]]:
    """name -> (RF, number of calls) for every module whose output is a 4-D feature map."""
    h, w = _hw(input_size)
    c = in_channels or _in_channels(model)
    params = list(model.named_parameters()) + list(model.named_buffers())
    dtype = next((v.dtype for _, v in params if v.is_floating_point()), torch.float32)
    names = {id(m): n for n, m in model.named_modules()}
    outputs: dict[str, tuple] = {}
    calls: dict[str, int] = {}

    def run(meta: bool) -> None:
        outputs.clear()
        calls.clear()
        tracker = _Tracker(meta)

        def hook(module, _inputs, out):
            name = names.get(id(module))
            if name is not None:
                calls[name] = calls.get(name, 0) + 1  # a module called several times: last call
                outputs[name] = (
                    tracker.field_of(out),
                    tuple(out.shape) if _is_tensor(out) else None,
                )

        device = (
            torch.device("meta")
            if meta
            else next((v.device for _, v in params), torch.device("cpu"))
        )
        x = torch.zeros(1, c, h, w, device=device, dtype=dtype)
        tracker.track(x, _Map(_input_axis(), _input_axis()))
        handles = [m.register_forward_hook(hook) for m in model.modules()]
        try:
            with torch.no_grad(), tracker:
                if meta:  # shapes only: parameters and buffers swapped for meta tensors
                    torch.func.functional_call(model, {k: v.to("meta") for k, v in params}, (x,))
                else:
                    model(x)
        finally:
            for hd in handles:
                hd.remove()

    training = {m: m.training for m in model.modules()}
    try:
        model.eval()
        try:
            run(meta=True)
        except RFError:
            raise
        except Exception as meta_exc:  # noqa: BLE001 - an op without a meta kernel: run for real
            if all(v.device.type == "meta" for _, v in params) and params:
                raise RFError(
                    f"the forward pass of {type(model).__name__} failed on a "
                    f"{h}x{w} image with {c} channels: {meta_exc}. Is input_size large "
                    "enough, and in_channels right?"
                ) from meta_exc
            warnings.warn(
                f"{type(model).__name__}'s forward needs real values ({meta_exc}): "
                "data-dependent control flow or an operation without a shape-only "
                "kernel. The RF is computed on a real blank (all-zero) image and "
                "follows the path that image takes",
                stacklevel=3,
            )
            try:
                run(meta=False)
            except RFError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise RFError(
                    f"the forward pass of {type(model).__name__} failed on a {h}x{w} "
                    f"image with {c} channels: {exc}. Is input_size large enough, and "
                    "in_channels right?"
                ) from exc
    finally:
        for m, t in training.items():
            m.train(t)
    result: dict[str, tuple[RF, int]] = {}
    for name, (f, shape) in outputs.items():
        if isinstance(f, _Map) and shape is not None and len(shape) == 4:
            cd, yd, xd = f.dims
            rf = RF(
                layer=name,
                channels=int(shape[cd]),
                y=_summarise(f.y, shape[yd], h),
                x=_summarise(f.x, shape[xd], w),
            )
            result[name] = (rf, calls[name])
    return result


def receptive_field(
    model: nn.Module, layer: nn.Module | str = "", input_size=224, in_channels: int | None = None
) -> RF:
    """Theoretical RF of ``layer``'s output (Santos et al., Eq. 1, ``r_{l-1} = r_l s_l + k_l -
    s_l``, generalised to any traced graph).

    A module called several times (ResNet's shared ReLU) is reported at its last call. Restores
    the model's train/eval state.

    Args:
        model: the network (any ``nn.Module`` taking (1, C, H, W)).
        layer: a module of ``model`` or a dotted name (``"layer4"``, ``"features[-1]"``); ``""``
            is the model's output.
        input_size: int or (height, width); it sets the map sizes (and adaptive pooling
            windows), not the RF of convolutional paths.
        in_channels: C of the blank input (default: the first convolution's).

    Returns:
        An :class:`RF`: per axis the RF size (range over channels), jump, centre of unit 0 and
        number of units.

    Example:
        >>> from torch import nn
        >>> from lib.rf import receptive_field
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(2))
        >>> # each layer adds (k - 1) x the jump so far: 3, then 3 + 2 x 1 = 5, then 5 + 1 x 2 = 7
        >>> print(receptive_field(net, "2", input_size=16))  # jumps 1, 2, 4; 14, 6, 3 units
        2: RF 7, jump 4, start 3, 3 units
    """
    name = layer_name(model, layer) if layer != "" else ""
    table = _analyse(model, input_size, in_channels)
    if name not in table:
        raise RFError(
            f"layer {name!r} of {type(model).__name__} has no 4-D feature map output "
            "in the forward pass (not called, or its output is not (N, C, H, W)). "
            f"Layers with one: {', '.join(n for n in table if n) or 'none'}"
        )
    return table[name][0]


def receptive_fields(
    model: nn.Module, input_size=224, in_channels: int | None = None
) -> dict[str, RF]:
    """The RF (Santos et al., Eq. 1) of every module whose output is a 4-D map, from one analysis.

    Args:
        model: the network.
        input_size: int or (height, width).
        in_channels: C of the blank input (default: the first convolution's).

    Returns:
        dict: module name -> :class:`RF` (``""``: the model's own output), in call order.

    Example:
        >>> from torch import nn
        >>> from lib.rf import receptive_fields
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(2))
        >>> {name: rf.rf_max for name, rf in receptive_fields(net, 16).items()}
        {'0': 3.0, '1': 5.0, '2': 7.0, '': 7.0}
    """
    return {name: rf for name, (rf, _) in _analyse(model, input_size, in_channels).items()}


def rf_table(model: nn.Module, input_size=224, in_channels: int | None = None):
    """The RF (Santos et al., Eq. 1) of every module whose output is a 4-D map, as a table.

    Args:
        model: the network.
        input_size: int or (height, width).
        in_channels: C of the blank input (default: the first convolution's).

    Returns:
        A pandas DataFrame, one row per module (``model.named_modules()`` order): name, type,
        channels, rf_min, rf_max, rf_local, jump, start, out_h, out_w, calls. Non-square cases
        get per-axis columns (``rf_min_y``, ``rf_min_x``, ...).

    Example:
        >>> from torch import nn
        >>> from lib.rf import rf_table
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(2))
        >>> rf_table(net, 16)[["name", "rf_max", "jump", "out_h"]]
          name  rf_max  jump  out_h
        0          7.0   4.0      3
        1    0     3.0   1.0     14
        2    1     5.0   2.0      6
        3    2     7.0   4.0      3
    """
    table = _analyse(model, input_size, in_channels)
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    order = [n for n, _ in model.named_modules() if n in table]
    keys = ("rf_min", "rf_max", "rf_local", "jump", "start")
    square = all(
        _same(getattr(table[n][0].y, k), getattr(table[n][0].x, k)) for n in order for k in keys
    )
    rows = []
    for n in order:
        rf, calls = table[n]
        row = {"name": n, "type": types.get(n, type(model).__name__), "channels": rf.channels}
        for k in keys:
            if square:
                row[k] = getattr(rf.y, k)
            else:
                row[k + "_y"], row[k + "_x"] = getattr(rf.y, k), getattr(rf.x, k)
        row.update(out_h=rf.out_h, out_w=rf.out_w, calls=calls)
        rows.append(row)
    return pd.DataFrame(rows)


def unit_rf_bounds(rf: RF, row: int, col: int | None = None):
    """Input pixels seen by one unit of a feature map (its RF clipped to the image).

    Args:
        rf: the layer's :class:`RF` (:func:`receptive_field`).
        row: the unit's row.
        col: the unit's column, or None for the rows only.

    Returns:
        ``(first, last)`` inclusive input rows, or with ``col``
        ``((first_row, last_row), (first_col, last_col))``; None for an axis the unit does not see.

    Example:
        >>> from torch import nn
        >>> from lib.rf import receptive_field, unit_rf_bounds
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(2))
        >>> rf = receptive_field(net, "2", 16)                # RF 7, jump 4: unit i sees 4i..4i+6
        >>> unit_rf_bounds(rf, 1), unit_rf_bounds(rf, 0, 2)
        ((4, 10), ((0, 6), (8, 14)))
    """
    if col is None:
        return rf.y.bounds(row)
    return rf.y.bounds(row), rf.x.bounds(col)


def rf_centres(
    model: nn.Module, layer: nn.Module | str, input_size=224, in_channels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinates (pixel indices) of the RF centres of a layer's units, per axis: where
    Santos et al.'s up-sampling should put them (``start + i * jump``, Eq. 1's centres).

    Args:
        model: the network.
        layer: a module of ``model`` or a dotted name; ``""`` is the model's output.
        input_size: int or (height, width).
        in_channels: C of the blank input (default: the first convolution's).

    Returns:
        ``(rows, columns)``: two float64 arrays, (out_h,) and (out_w,).

    Example:
        >>> from torch import nn
        >>> from lib.rf import rf_centres
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, stride=2), nn.MaxPool2d(2))
        >>> rf_centres(net, "2", 16)                          # start 3, jump 4
        (array([ 3.,  7., 11.]), array([ 3.,  7., 11.]))
    """
    rf = receptive_field(model, layer, input_size, in_channels)
    return rf.y.centres(), rf.x.centres()
