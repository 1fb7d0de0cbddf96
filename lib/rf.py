"""Receptive fields (RF), effective receptive fields (ERF) and the dead zone of a masked model.

The theoretical RF (Araujo et al., *Distill* 2019; paper 000, Eq. 1, ``r_{l-1} = r_l s_l + k_l -
s_l``) is computed from the model's own computation: the model runs once on a blank image (on
the shape-only "meta" device when it can), every torch operation is intercepted
(``__torch_function__``), and each one moves, per axis and per channel, the input interval that a
unit can depend on. Python control flow on shapes is fine (it runs for real); data-dependent
control flow follows the blank image's path, with a warning. The RF lives on an unbounded
image (Araujo's convention, so sizes may exceed the input: ResNet50 427 at 224 px); clip it with
:func:`unit_rf_bounds` to get the pixels a unit sees in a real image.

Rules. Convolution, pooling, padding, cropping and strided slicing: the window of Eq. 1, per axis.
Element-wise operations and additions (residuals): the union of the operands' intervals. Channel
concatenation keeps each channel's own RF, so the map has a range (DenseNet121: 1047-2071); a
convolution then mixes its channels (the union again). Global pooling (adaptive pooling to 1,
means over the spatial axes), squeeze-and-excitation (a product with a globally pooled tensor),
instance/group/layer normalisation over space, attention and flatten + linear make the RF
unbounded (``inf``). Up-sampling and transposed convolutions divide the jump; units then fall into
a few phases with different RFs, each tracked exactly. BatchNorm counts as in eval mode.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from lib.layers import layer_name, resolve_layer

__all__ = ["AxisRF", "RF", "RFError", "DeadZone", "receptive_field", "receptive_fields", "rf_table",
           "unit_rf_bounds", "rf_centres", "upsample_centres", "interp_matrix",
           "upsample_at_centres", "erf", "erf_radius",
           "dead_zone", "build_model", "CLI_MODELS"]


class RFError(RuntimeError):
    """The receptive field cannot be computed (untraceable model, unknown operation)."""


# --------------------------------------------------------------------------------------------
# Per-axis state of one tensor during propagation
# --------------------------------------------------------------------------------------------

@dataclass
class _Axis:
    """Along one spatial axis: unit ``o`` of channel ``c`` depends on the input pixels
    ``[lo[c, o % P] + o * jump, hi[c, o % P] + o * jump]`` and, where ``glob[c, o % P]``, on the
    whole input. ``lo``/``hi``/``glob`` have shape (C or 1, P); 1 row means "same for every
    channel"; an empty interval (lo = +inf, hi = -inf) means no local dependence. ``jump`` is nan
    when there is no grid (after a global pool)."""
    jump: float
    lo: np.ndarray
    hi: np.ndarray
    glob: np.ndarray

    @property
    def period(self) -> int:
        return self.lo.shape[1]

    @property
    def channels(self) -> int:
        return self.lo.shape[0]


@dataclass
class _Map:
    """A 4-D tensor with its spatial layout: ``dims`` are the tensor dimensions of the
    (channel, row, column) axes, (1, 2, 3) for NCHW, (3, 1, 2) after a channels-last permute."""
    y: _Axis
    x: _Axis
    dims: tuple = (1, 2, 3)

    def apply(self, fn: Callable[[_Axis, int], _Axis]) -> "_Map":
        return _Map(fn(self.y, 0), fn(self.x, 1), self.dims)

    @property
    def nchw(self) -> bool:
        return self.dims == (1, 2, 3)


@dataclass
class _Flat:
    """A tensor without spatial axes that depends on the input, hence on all of it.
    ``exact`` is False when only layout operations (flatten, view, permute) removed the axes:
    a map rebuilt from it is then reported unbounded as an upper bound."""
    exact: bool


def _input_axis() -> _Axis:
    return _Axis(1.0, np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1), bool))


def _empty_axis(channels: int = 1) -> _Axis:
    return _Axis(math.nan, np.full((channels, 1), np.inf), np.full((channels, 1), -np.inf),
                 np.zeros((channels, 1), bool))


def _canonical(ax: _Axis) -> _Axis:
    """Round away float noise and shrink the phase period to its smallest divisor."""
    lo = np.where(np.isfinite(ax.lo), np.round(ax.lo, 9), ax.lo)
    hi = np.where(np.isfinite(ax.hi), np.round(ax.hi, 9), ax.hi)
    jump = round(ax.jump, 12) if math.isfinite(ax.jump) else ax.jump
    p = lo.shape[1]
    for d in range(1, p):
        if p % d:
            continue
        idx = np.arange(p) % d
        if (np.array_equal(lo, lo[:, idx]) and np.array_equal(hi, hi[:, idx])
                and np.array_equal(ax.glob, ax.glob[:, idx])):
            return _Axis(jump, lo[:, :d], hi[:, :d], ax.glob[:, :d])
    return _Axis(jump, lo, hi, ax.glob)


def _gather(ax: _Axis, sources: Sequence[Sequence[int]], jump_out: float) -> _Axis:
    """New axis whose unit ``q`` (for each phase ``q < len(sources)``) reads the input units
    ``sources[q]``; later units repeat the pattern shifted by ``jump_out`` per unit."""
    c, p = ax.lo.shape
    pout = len(sources)
    lo = np.full((c, pout), np.inf)
    hi = np.full((c, pout), -np.inf)
    gl = np.zeros((c, pout), bool)
    finite = math.isfinite(ax.jump)
    for q, js in enumerate(sources):
        for j in js:
            r = j % p
            off = j * ax.jump if finite else 0.0
            lo[:, q] = np.minimum(lo[:, q], ax.lo[:, r] + off)
            hi[:, q] = np.maximum(hi[:, q], ax.hi[:, r] + off)
            gl[:, q] |= ax.glob[:, r]
        if math.isfinite(jump_out):
            lo[:, q] -= q * jump_out
            hi[:, q] -= q * jump_out
    return _canonical(_Axis(jump_out, lo, hi, gl))


def _window(ax: _Axis, k: int, s: int, p: int, d: int = 1) -> _Axis:
    """Eq. 1 written forward: output unit o reads input units o*s - p + t*d, t < k."""
    if k < 1 or s < 1 or d < 1:
        raise RFError(f"kernel {k}, stride {s}, dilation {d}: all must be >= 1")
    pout = ax.period // math.gcd(ax.period, s)
    sources = [[q * s - p + t * d for t in range(k)] for q in range(pout)]
    return _gather(ax, sources, ax.jump * s)


def _transposed(ax: _Axis, k: int, s: int, p: int, d: int = 1) -> _Axis:
    """Transposed convolution: output o receives input j where o = j*s - p + t*d."""
    pout = ax.period * s
    sources = [[(q + p - t * d) // s for t in range(k) if (q + p - t * d) % s == 0]
               for q in range(pout)]
    return _gather(ax, sources, ax.jump / s)


def _ratio_window(ax: _Axis, ratio: Fraction, src: Callable[[int], Iterable[int]]) -> _Axis:
    """Resampling with ``ratio`` input units per output unit, ``src(o)`` the input units of
    output ``o`` on an unbounded axis (so src(o + b) = src(o) + a for ratio = a/b)."""
    a, b = ratio.numerator, ratio.denominator
    pout = b * ax.period // math.gcd(a, ax.period)
    return _gather(ax, [list(src(q)) for q in range(pout)], ax.jump * a / b)


def _adaptive_axis(ax: _Axis, n_in: int, n_out: int) -> _Axis:
    """Adaptive pooling: to 1 unit it is global (its extent is the whole image whatever its
    size: unbounded); to the same size the identity; otherwise torch's windows for this size."""
    if n_out == 1:
        return _globalise(ax, keep_local=False)
    if n_in == n_out:
        return ax
    r = Fraction(n_in, n_out)
    return _ratio_window(ax, r, lambda o: range(math.floor(o * r), math.ceil((o + 1) * r)))


def _globalise(ax: _Axis, keep_local: bool) -> _Axis:
    """Every unit also depends on the whole axis (global pooling, normalisation over space)."""
    if keep_local:
        return _Axis(ax.jump, ax.lo, ax.hi, np.ones_like(ax.glob))
    c = ax.channels
    return _Axis(math.nan, np.full((c, 1), np.inf), np.full((c, 1), -np.inf),
                 np.ones((c, 1), bool))


def _mix(ax: _Axis, groups: int | None, c_in: int, c_out: int) -> _Axis:
    """Channel mixing: output channels of a group depend on all input channels of that group
    (``groups=None``: no mixing, channel c reads channel c)."""
    if groups is None or ax.channels == 1:
        return ax

    def red(a: np.ndarray, f) -> np.ndarray:
        return f(a.reshape(groups, c_in // groups, -1), axis=1)

    lo, hi, gl = red(ax.lo, np.min), red(ax.hi, np.max), red(ax.glob, np.any)
    if groups > 1:
        rep = c_out // groups
        lo, hi, gl = (np.repeat(a, rep, axis=0) for a in (lo, hi, gl))
    return _Axis(ax.jump, lo, hi, gl)


def _broadcast_channels(ax: _Axis, c: int) -> _Axis:
    if ax.channels == c:
        return ax
    if ax.channels != 1:
        raise RFError(f"internal: {ax.channels} channel rows for a {c}-channel tensor")
    p = ax.period
    return _Axis(ax.jump, np.broadcast_to(ax.lo, (c, p)).copy(),
                 np.broadcast_to(ax.hi, (c, p)).copy(), np.broadcast_to(ax.glob, (c, p)).copy())


def _align(axes: Sequence[_Axis], what: str) -> list[_Axis]:
    """Bring axes on the same grid to a common phase period (jumps must agree)."""
    jumps = [a.jump for a in axes if math.isfinite(a.jump)]
    if jumps and not np.allclose(jumps, jumps[0], rtol=0, atol=1e-9):
        raise RFError(f"{what} combines feature maps of the same size on different grids "
                      f"(jumps {sorted(set(jumps))}); their units are not aligned")
    jump = jumps[0] if jumps else math.nan
    p = math.lcm(*(a.period for a in axes))
    out = []
    for a in axes:
        idx = np.arange(p) % a.period
        # offsets are relative to o * jump, so tiling the phases is exact; an axis without a
        # grid has only empty intervals, which need no re-basing
        out.append(_Axis(jump, a.lo[:, idx], a.hi[:, idx], a.glob[:, idx]))
    return out


# --------------------------------------------------------------------------------------------
# Tracing and propagation
# --------------------------------------------------------------------------------------------

# Functions and tensor methods (by name) that act element-wise, with broadcasting.
_ELEMENTWISE = {
    "add", "sub", "mul", "truediv", "div", "floordiv", "floor_divide", "true_divide", "pow",
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "square", "reciprocal", "sign", "clamp",
    "clamp_min", "clamp_max", "clip", "maximum", "minimum", "where", "lerp", "addcmul",
    "iadd", "isub", "imul", "itruediv", "add_", "sub_", "mul_", "div_", "clamp_", "neg_",
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu",
    "gelu", "silu", "silu_", "mish", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardtanh",
    "hardtanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "softplus",
    "softsign", "threshold", "logsigmoid", "erf", "sin", "cos", "dropout", "dropout2d",
    "alpha_dropout", "feature_alpha_dropout", "batch_norm", "stochastic_depth", "drop_path",
    "contiguous", "clone", "detach", "float", "double", "half", "bfloat16", "to", "type",
    "type_as", "cpu", "cuda", "expand", "expand_as", "broadcast_to", "masked_fill",
    "nan_to_num", "gt", "lt", "ge", "le", "eq", "ne",
}
# Results that do not depend on the input's values (only on its shape) or overwrite it.
_CONSTANT_LIKE = {"zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
                  "randint_like", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor",
                  "bernoulli", "zero", "fill", "normal", "uniform"}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "norm", "logsumexp",
               "prod", "any", "all", "median", "nanmean", "nansum"}
_LAYOUT = {"view", "reshape", "flatten", "permute", "transpose", "squeeze", "unsqueeze",
           "movedim", "unflatten", "view_as", "reshape_as", "t", "swapaxes"}


_REFLECTED = {"radd": "add", "rsub": "sub", "rmul": "mul", "rtruediv": "truediv", "rdiv": "div",
              "rfloordiv": "floordiv", "rpow": "pow", "rmatmul": "matmul"}


def _op_name(func) -> str:
    """``torch.add``, ``Tensor.add`` and ``Tensor.__radd__`` all become ``"add"``."""
    name = getattr(func, "__name__", str(func)).strip("_")
    if name in ("max_pool2d_with_indices", "_max_pool2d"):
        return "max_pool2d"
    return _REFLECTED.get(name, name)


def _any_field(obj) -> bool:
    if isinstance(obj, (_Map, _Flat)):
        return True
    if isinstance(obj, dict):
        return any(_any_field(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return any(_any_field(v) for v in obj)
    return False


def _arg(args, kwargs, i, key, default=None):
    if key in kwargs:
        return kwargs[key]
    return args[i] if len(args) > i else default


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _is_tensor(v) -> bool:
    return isinstance(v, torch.Tensor)


class _Tracker(TorchFunctionMode):
    """Runs the model once on a blank image, intercepting every torch function call
    (``__torch_function__``) to propagate RF fields from inputs to outputs. Python control flow
    on shapes works, as the tensors are real (or shape-only "meta") tensors."""

    def __init__(self, meta: bool):
        super().__init__()
        self.meta = meta
        self.fields: dict[int, Any] = {}   # id(tensor) -> field
        self._alive: list = []             # keeps tracked tensors alive: ids stay unique

    def track(self, tensor, field) -> None:
        self.fields[id(tensor)] = field
        self._alive.append(tensor)

    def field_of(self, value):
        if _is_tensor(value):
            return self.fields.get(id(value))
        if isinstance(value, torch.Size):
            return None
        if isinstance(value, list):
            return [self.field_of(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.field_of(v) for v in value)
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _op_name(func)
        fargs, fkw = self.field_of(tuple(args)), {k: self.field_of(v) for k, v in kwargs.items()}
        tracked = _any_field((fargs, fkw))
        if tracked and self.meta and name == "batch_norm":
            out = torch.empty_like(args[0])  # same shape; skips a slow meta decomposition
        else:
            out = func(*args, **kwargs)
        if not tracked:
            return out  # depends on no input pixel (constants, parameters, shapes)
        if name == "setitem":  # x[idx] = y writes y into x: x may now depend on y as well
            self.track(args[0], self._elementwise(
                [(f, v) for f, v in ((fargs[0], args[0]), (fargs[2], args[2]))
                 if isinstance(f, (_Map, _Flat))], args[0]))
            return out
        if not (_is_tensor(out) or (isinstance(out, (tuple, list))
                                    and any(_is_tensor(v) for v in out))):
            return out  # sizes, dtypes, booleans of shape checks
        try:
            field = self._function(name, fargs, fkw, list(args), kwargs, out)
        except RFError as exc:
            raise RFError(f"at {name!r}: {exc}") from None
        if _is_tensor(out):
            self.track(out, field)
        else:
            parts = field if isinstance(field, (tuple, list)) else [field] * len(out)
            for v, f in zip(out, parts):
                if _is_tensor(v):
                    self.track(v, f)
        return out

    # -- functions and methods -----------------------------------------------------------------
    def _function(self, name, fargs, fkw, vargs, vkw, value):
        tensors = [(f, v) for f, v in zip(_flatten_args(fargs), _flatten_args(vargs))]
        tensors += [(fkw[k], vkw[k]) for k in fkw if isinstance(fkw[k], (_Map, _Flat))]
        tensors = [(f, v) for f, v in tensors if isinstance(f, (_Map, _Flat))]
        first_f = fargs[0] if fargs else None
        first_v = vargs[0] if vargs else None
        if (any(isinstance(f, _Map) and not f.nchw for f, _ in tensors)
                and name not in _ELEMENTWISE | _LAYOUT | {"linear", "layer_norm"}):
            raise RFError(f"no RF rule for {name!r} on a tensor whose spatial axes were permuted "
                          "(channels-last); only element-wise operations, linear and layer_norm "
                          "over channels, and permutes are understood there")
        if name in _CONSTANT_LIKE:
            return None
        if name == "copy" and len(fargs) > 1:  # dst.copy_(src): dst now holds src
            return fargs[1]
        if name in ("getitem",):
            return self._getitem(first_f, first_v, vargs[1], value)
        if name in ("cat", "concat", "concatenate"):
            dim = _arg(vargs, vkw, 1, "dim", _arg(vargs, vkw, 1, "axis", 0))
            return self._cat(fargs[0], vargs[0], dim, value)
        if isinstance(first_f, _Flat) and name not in _ELEMENTWISE:
            return self._from_flat([first_f], value)
        if name == "conv2d":
            w = vargs[1] if len(vargs) > 1 else vkw["weight"]
            pad = _arg(vargs, vkw, 4, "padding", 0)
            k = tuple(w.shape[-2:])
            dil = _arg(vargs, vkw, 5, "dilation", 1)
            if isinstance(pad, str):
                pad = _same_padding(k, _pair(dil)) if pad == "same" else (0, 0)
            return self._conv(first_f, first_v, value, k, _arg(vargs, vkw, 3, "stride", 1), pad,
                              dil, _arg(vargs, vkw, 6, "groups", 1))
        if name == "conv_transpose2d":
            w = vargs[1] if len(vargs) > 1 else vkw["weight"]
            k = tuple(w.shape[-2:])
            s_, p_ = (_pair(_arg(vargs, vkw, i, key, 1 if key == "stride" else 0))
                      for i, key in ((3, "stride"), (4, "padding")))
            d_ = _pair(_arg(vargs, vkw, 7, "dilation", 1))
            m = first_f.apply(lambda ax, i: _transposed(ax, k[i], s_[i], p_[i], d_[i]))
            return m.apply(lambda ax, i: _mix(ax, _arg(vargs, vkw, 6, "groups", 1),
                                              first_v.shape[1], value.shape[1]))
        if name in ("local_response_norm", "channel_shuffle", "native_channel_shuffle"):
            return first_f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        if name in ("max_pool2d", "avg_pool2d", "max_pool2d_with_indices", "lp_pool2d"):
            off = 1 if name == "lp_pool2d" else 0  # lp_pool2d(input, norm_type, kernel, ...)
            k = _arg(vargs, vkw, 1 + off, "kernel_size")
            s = _arg(vargs, vkw, 2 + off, "stride", None) or k
            p = 0 if name == "lp_pool2d" else _arg(vargs, vkw, 3, "padding", 0)
            d = _arg(vargs, vkw, 4, "dilation", 1) if name.startswith("max") else 1
            return self._conv(first_f, first_v, value, k, s, p, d, None)
        if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d",
                    "adaptive_max_pool2d_with_indices"):
            return self._adaptive(first_f, first_v, _first_tensor(value))
        if name in ("interpolate", "upsample", "upsample_bilinear", "upsample_nearest"):
            mode = _arg(vargs, vkw, 3, "mode", "nearest")
            if name == "upsample_bilinear":
                mode = "bilinear"
            ac = _arg(vargs, vkw, 4, "align_corners", True if name == "upsample_bilinear"
                      else None)
            if _arg(vargs, vkw, 6, "antialias", False):
                raise RFError("interpolate(antialias=True) widens its kernel when down-sampling; "
                              "no RF rule for it")
            return self._interpolate(first_f, first_v, value, mode, ac,
                                     _arg(vargs, vkw, 2, "scale_factor"),
                                     _arg(vargs, vkw, 5, "recompute_scale_factor"))
        if name == "pad":
            p = tuple(_arg(vargs, vkw, 1, "pad"))
            return self._pad(first_f, p)
        if name == "linear" and isinstance(first_f, _Map) and first_f.dims[0] == 3:
            # a linear layer over channels-last channels: a 1x1 convolution
            return first_f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        if name in ("linear", "matmul", "bmm", "mm", "einsum", "scaled_dot_product_attention",
                    "baddbmm", "addmm"):
            if any(isinstance(f, _Map) for f, _ in tensors):
                return self._from_flat([_Flat(exact=False)], value)
            return self._from_flat([_Flat(exact=True)], value)
        if name in ("softmax", "log_softmax", "softmin"):
            return self._softmax(first_f, first_v, value, _arg(vargs, vkw, 1, "dim"))
        if name in ("layer_norm", "group_norm", "instance_norm"):
            if name == "layer_norm":
                return self._normalise_last(first_f, first_v, value,
                                            len(tuple(_arg(vargs, vkw, 1, "normalized_shape"))))
            groups = 1 if name == "group_norm" else None
            c = first_v.shape[1]
            return first_f.apply(lambda ax, i: _mix(_globalise(ax, True), groups, c, c))
        if name in ("split", "chunk", "tensor_split", "unbind", "split_with_sizes"):
            return self._split(first_f, first_v, name, vargs, vkw, value)
        if name in _REDUCTIONS:
            if len(tensors) > 1 or (len(vargs) > 1 and _is_tensor(vargs[1])):
                return self._elementwise(tensors, value)  # torch.max(a, b) is element-wise
            return self._reduce(first_f, first_v, vargs, vkw, value)
        if name in _ELEMENTWISE:
            return self._elementwise(tensors, value)
        if name in _LAYOUT:
            if name in ("permute", "transpose", "swapaxes") and isinstance(first_f, _Map):
                return self._permute(first_f, name, vargs, vkw, value)
            return self._layout(first_f, first_v, value)
        raise RFError(f"no receptive-field rule for the operation {name!r}. Supported: "
                      "convolutions, pooling, interpolate, pad, element-wise operations, cat, split, "
                      "reductions, reshapes and linear layers; compute the RF of a layer before "
                      "it")

    # -- rules -------------------------------------------------------------------------------
    def _conv(self, f: _Map, v, value, k, s, p, d, groups):
        k, s, p, d = _pair(k), _pair(s), _pair(p), _pair(d)
        m = f.apply(lambda ax, i: _window(ax, k[i], s[i], p[i], d[i]))
        out = _first_tensor(value)
        return m.apply(lambda ax, i: _mix(ax, groups, v.shape[1], out.shape[1]))

    def _adaptive(self, f: _Map, v, out):
        return f.apply(lambda ax, i: _adaptive_axis(ax, v.shape[2 + i], out.shape[2 + i]))

    def _interpolate(self, f: _Map, v, value, mode, align_corners, scale_factor, recompute):
        def rule(ax: _Axis, i: int) -> _Axis:
            n_in, n_out = v.shape[2 + i], value.shape[2 + i]
            if mode == "area":
                return _adaptive_axis(ax, n_in, n_out)
            if align_corners and mode in ("bilinear", "bicubic"):
                if n_out == 1:
                    return _gather(ax, [[0]], ax.jump)
                r = Fraction(n_in - 1, n_out - 1)
                pos = lambda o: o * r  # noqa: E731
            else:
                sf = scale_factor[i] if isinstance(scale_factor, (tuple, list)) else scale_factor
                r = (1 / Fraction(sf).limit_denominator(10 ** 6) if sf and not recompute
                     else Fraction(n_in, n_out))
                pos = lambda o: (o + Fraction(1, 2)) * r - Fraction(1, 2)  # noqa: E731
            if mode == "nearest":
                src = lambda o: [math.floor(o * r)]  # noqa: E731
            elif mode == "nearest-exact":
                src = lambda o: [math.floor((o + Fraction(1, 2)) * r)]  # noqa: E731
            elif mode in ("bilinear", "bicubic"):
                taps = (0, 1) if mode == "bilinear" else (-1, 0, 1, 2)

                def src(o):
                    x = pos(o)
                    fl = math.floor(x)
                    return [fl] if x == fl else [fl + t for t in taps]
            else:
                raise RFError(f"no receptive-field rule for interpolate mode {mode!r}")
            return _ratio_window(ax, r, src)
        return f.apply(rule)

    def _pad(self, f: _Map, pad):
        pad = _pair(pad) * 2 if not isinstance(pad, (tuple, list)) else tuple(pad)
        if len(pad) == 2:
            pad = tuple(pad) + (0, 0)
        if len(pad) > 4 and any(pad[4:]):
            raise RFError("padding of the channel or batch axis has no RF rule")
        left, top = pad[0], pad[2]
        return _Map(_window(f.y, 1, 1, top), _window(f.x, 1, 1, left))

    def _elementwise(self, items, value):
        out = _first_tensor(value)
        if out is None or out.dim() != 4:
            return _Flat(exact=all(isinstance(f, _Flat) and f.exact for f, _ in items))
        flats = [f for f, _ in items if isinstance(f, _Flat)]
        maps = [(f, v) for f, v in items if isinstance(f, _Map)]
        layouts = {f.dims for f, _ in maps}
        if len(layouts) > 1:
            raise RFError(f"an element-wise operation mixes tensor layouts {sorted(layouts)}")
        dims = layouts.pop() if layouts else (1, 2, 3)
        c = out.shape[dims[0]]
        if flats and not all(fl.exact for fl in flats):
            _warn_upper_bound()
        result = []
        for i in (0, 1):
            n = out.shape[dims[1 + i]]
            full, glob_any = [], np.zeros((1, 1), bool)
            for f, v in maps:
                ax = f.y if i == 0 else f.x
                size = v.shape[dims[1 + i]] if len(v.shape) == 4 else 1
                if size == n:
                    full.append(ax)
                elif size == 1:
                    if np.isfinite(ax.lo).any() or np.isfinite(ax.hi).any():
                        raise RFError("broadcasting a 1-unit map with a bounded RF over a "
                                      "larger map: no RF rule for it")
                    glob_any = glob_any | ax.glob.any(axis=1, keepdims=True)
                else:
                    raise RFError(f"operands of sizes {size} and {n} along an axis")
            if flats:
                glob_any = np.ones((1, 1), bool)
            if full:
                al = _align(full, "an element-wise operation")
                lo = np.minimum.reduce(np.broadcast_arrays(*[a.lo for a in al]))
                hi = np.maximum.reduce(np.broadcast_arrays(*[a.hi for a in al]))
                gl = np.logical_or.reduce(np.broadcast_arrays(*[a.glob for a in al]))
                lo, hi, gl = np.broadcast_arrays(lo, hi, gl | glob_any)
                ax = _Axis(al[0].jump, lo.copy(), hi.copy(), gl.copy())
            else:
                ax = _Axis(math.nan, np.full((1, 1), np.inf), np.full((1, 1), -np.inf),
                           glob_any.copy())
            if ax.channels not in (1, c):
                ax = _mix(ax, 1, ax.channels, 1)
            result.append(_canonical(ax))
        return _Map(*result, dims=dims)

    def _from_flat(self, flats: list[_Flat], value):
        out = _first_tensor(value)
        exact = all(f.exact for f in flats)
        if out is not None and out.dim() == 4:
            if not exact:
                _warn_upper_bound()
            ax = _Axis(math.nan, np.full((1, 1), np.inf), np.full((1, 1), -np.inf),
                       np.ones((1, 1), bool))
            return _Map(ax, ax)
        return _Flat(exact=exact)

    def _layout(self, f, v, value):
        out = _first_tensor(value)
        if isinstance(f, _Flat):
            return self._from_flat([f], value)
        if out is not None and tuple(out.shape) == tuple(v.shape):
            return f
        if f.nchw and out is not None and out.dim() == 4 and len(v.shape) == 4 and \
                out.shape[0] == v.shape[0] and tuple(out.shape[2:]) == tuple(v.shape[2:]):
            # channels regrouped in an unknown order: every channel may hold any input channel
            return f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        # Already global along both axes (a flattened global pool): nothing is lost.
        return _Flat(exact=bool(f.y.glob.all() and f.x.glob.all()))

    def _permute(self, f: _Map, name, vargs, vkw, value):
        if name == "permute":
            perm = vargs[1] if len(vargs) == 2 and isinstance(vargs[1], (tuple, list)) \
                else (vargs[1:] or vkw.get("dims"))
            perm = [d % 4 for d in perm]
        else:
            a, b = (d % 4 for d in (vargs[1], vargs[2]))
            perm = list(range(4))
            perm[a], perm[b] = perm[b], perm[a]
        if perm[0] != 0:  # the batch axis moved: the layout is no longer understood
            return _Flat(exact=False)
        return _Map(f.y, f.x, tuple(perm.index(d) for d in f.dims))

    def _getitem(self, f, v, index, value):
        if isinstance(f, (tuple, list)):
            return f[index]
        if isinstance(f, _Flat) or f is None:
            return f if f is None else _Flat(f.exact)
        if not isinstance(index, tuple):
            index = (index,)
        if any(i is Ellipsis for i in index):
            e = index.index(Ellipsis)
            index = index[:e] + (slice(None),) * (4 - len(index) + 1) + index[e + 1:]
        index = index + (slice(None),) * (4 - len(index))
        if len(index) != 4 or not all(isinstance(i, slice) for i in index):
            return self._layout(f, v, value)
        m = f
        ch = index[1]
        if ch != slice(None):
            c = v.shape[1]
            sel = np.arange(c)[ch]
            m = m.apply(lambda ax, i: _take(ax, c, sel))
        axes = []
        for i, ax in ((0, m.y), (1, m.x)):
            s = index[2 + i]
            if s != slice(None):
                start, _, step = s.indices(v.shape[2 + i])
                ax = _window(ax, 1, step, -start)
            axes.append(ax)
        return _Map(*axes)

    def _cat(self, fs, vs, dim, value):
        items = [(f, v) for f, v in zip(fs, vs) if f is not None or _is_tensor(v)]
        out = _first_tensor(value)
        if out.dim() != 4:
            return self._elementwise([(f, v) for f, v in items if f is not None], value)
        dim = dim % 4
        if dim == 0:
            return self._elementwise([(f, v) for f, v in items if f is not None], value)
        if dim != 1:
            raise RFError("concatenation along a spatial axis has no RF rule")
        axes: list[list[_Axis]] = [[], []]
        for f, v in items:
            c = v.shape[1]
            if f is None:  # a constant block of channels: no dependence
                f = _Map(_empty_axis(c), _empty_axis(c))
            elif isinstance(f, _Flat):
                f = self._from_flat([f], torch.empty(0, c, 1, 1))
            for i, ax in enumerate((f.y, f.x)):
                axes[i].append(_broadcast_channels(ax, c))
        result = []
        for i in (0, 1):
            al = _align(axes[i], "a channel concatenation")
            result.append(_canonical(_Axis(al[0].jump, np.concatenate([a.lo for a in al]),
                                           np.concatenate([a.hi for a in al]),
                                           np.concatenate([a.glob for a in al]))))
        return _Map(*result)

    def _split(self, f, v, name, vargs, vkw, value):
        dim = _arg(vargs, vkw, 2, "dim", 0) if name != "unbind" else _arg(vargs, vkw, 1, "dim", 0)
        if isinstance(f, _Flat):
            return tuple(_Flat(f.exact) for _ in value)
        dim = dim % len(v.shape)
        if name == "unbind" and dim != 0:
            return tuple(_Flat(exact=False) for _ in value)
        pieces, start = [], 0
        for piece in value:
            size = piece.shape[dim]
            index = [slice(None)] * 4
            index[dim] = slice(start, start + size)
            pieces.append(self._getitem(f, v, tuple(index), piece))
            start += size
        return tuple(pieces)

    def _reduce(self, f, v, vargs, vkw, value):
        dim = _arg(vargs, vkw, 1, "dim", None)
        out = _first_tensor(value)
        if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
            return tuple(_Flat(True) for _ in value) if isinstance(value, tuple) else _Flat(True)
        dims = {d % 4 for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        if out is None or out.dim() != 4:
            res = _Flat(exact=bool(dims & {2, 3}))
        else:
            m = f
            if 1 in dims:
                m = m.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
            res = _Map(_globalise(m.y, False) if 2 in dims else m.y,
                       _globalise(m.x, False) if 3 in dims else m.x)
        return tuple(res for _ in value) if isinstance(value, (tuple, list)) else res

    def _softmax(self, f, v, value, dim):
        if dim is None:
            raise RFError("softmax without dim")
        dim = dim % 4
        if dim == 1:
            return f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        if dim == 0:
            return f
        return _Map(_globalise(f.y, True) if dim == 2 else f.y,
                    _globalise(f.x, True) if dim == 3 else f.x)

    def _normalise_last(self, f, v, value, ndims):
        normed = set(range(4 - ndims, 4))
        c, y, x = (d in normed for d in f.dims)
        m = f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1)) if c else f
        return _Map(_globalise(m.y, True) if y else m.y, _globalise(m.x, True) if x else m.x,
                    f.dims)


def _take(ax: _Axis, c: int, sel: np.ndarray) -> _Axis:
    if ax.channels == 1:
        return ax
    return _Axis(ax.jump, ax.lo[sel], ax.hi[sel], ax.glob[sel])


def _same_padding(k, d) -> tuple[int, int]:
    k, d = _pair(k), _pair(d)
    return tuple((d[i] * (k[i] - 1)) // 2 for i in (0, 1))


def _first_tensor(value):
    if _is_tensor(value):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            if _is_tensor(v):
                return v
    return None


def _flatten_args(args) -> list:
    out: list = []
    for a in args:
        if isinstance(a, (tuple, list)):
            out.extend(_flatten_args(a))
        else:
            out.append(a)
    return out


def _warn_upper_bound() -> None:
    warnings.warn("a spatial map was rebuilt from a tensor whose spatial axes were reshaped "
                  "away (flatten/view/permute); its RF is reported unbounded, an upper bound",
                  stacklevel=4)


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
    return AxisRF(rf_min=_num(sizes.min()), rf_max=_num(sizes.max()),
                  rf_local=_num(local.max()), jump=_num(ax.jump), start=_num(start),
                  size=int(size), input_size=int(input_size), period=p,
                  _lo=tuple(float(a) for a in ulo), _hi=tuple(float(a) for a in uhi),
                  _glob=tuple(bool(a) for a in ugl))


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
        raise ValueError(f"{attr} differs between the axes of {self.layer!r} (rows {a}, "
                         f"columns {b}); read rf.y.{attr} and rf.x.{attr}")

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


def _analyse(model: nn.Module, input_size=224, in_channels: int | None = None
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
                outputs[name] = (tracker.field_of(out), tuple(out.shape) if _is_tensor(out)
                                 else None)

        device = torch.device("meta") if meta else next(
            (v.device for _, v in params), torch.device("cpu"))
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
                raise RFError(f"the forward pass of {type(model).__name__} failed on a "
                              f"{h}x{w} image with {c} channels: {meta_exc}. Is input_size large "
                              "enough, and in_channels right?") from meta_exc
            warnings.warn(f"{type(model).__name__}'s forward needs real values ({meta_exc}): "
                          "data-dependent control flow or an operation without a shape-only "
                          "kernel. The RF is computed on a real blank (all-zero) image and "
                          "follows the path that image takes", stacklevel=3)
            try:
                run(meta=False)
            except RFError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise RFError(f"the forward pass of {type(model).__name__} failed on a {h}x{w} "
                              f"image with {c} channels: {exc}. Is input_size large enough, and "
                              "in_channels right?") from exc
    finally:
        for m, t in training.items():
            m.train(t)
    result: dict[str, tuple[RF, int]] = {}
    for name, (f, shape) in outputs.items():
        if isinstance(f, _Map) and shape is not None and len(shape) == 4:
            cd, yd, xd = f.dims
            rf = RF(layer=name, channels=int(shape[cd]), y=_summarise(f.y, shape[yd], h),
                    x=_summarise(f.x, shape[xd], w))
            result[name] = (rf, calls[name])
    return result


def receptive_field(model: nn.Module, layer: nn.Module | str = "", input_size=224,
                    in_channels: int | None = None) -> RF:
    """Theoretical RF of ``layer``'s output (paper 000, Eq. 1, generalised to any traced graph).

    ``layer``: a module of ``model`` or a dotted name (``"layer4"``, ``"features[-1]"``); ``""``
    is the model's output. ``input_size``: int or (height, width); it sets the map sizes (and
    adaptive pooling windows), not the RF of convolutional paths. A module called several times
    (ResNet's shared ReLU) is reported at its last call. Restores the model's train/eval state.
    """
    name = layer_name(model, layer) if layer != "" else ""
    table = _analyse(model, input_size, in_channels)
    if name not in table:
        raise RFError(f"layer {name!r} of {type(model).__name__} has no 4-D feature map output "
                      "in the forward pass (not called, or its output is not (N, C, H, W)). "
                      f"Layers with one: {', '.join(n for n in table if n) or 'none'}")
    return table[name][0]


def receptive_fields(model: nn.Module, input_size=224, in_channels: int | None = None
                     ) -> dict[str, RF]:
    """The RF of every module whose output is a 4-D map, from one analysis: name -> RF."""
    return {name: rf for name, (rf, _) in _analyse(model, input_size, in_channels).items()}


def rf_table(model: nn.Module, input_size=224, in_channels: int | None = None):
    """A pandas DataFrame with one row per module (``model.named_modules()`` order) whose output
    is a 4-D feature map: name, type, channels, rf_min, rf_max, rf_local, jump, start, out_h,
    out_w, calls. Non-square cases get per-axis columns (``rf_min_y``, ``rf_min_x``, ...)."""
    import pandas as pd

    table = _analyse(model, input_size, in_channels)
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    order = [n for n, _ in model.named_modules() if n in table]
    keys = ("rf_min", "rf_max", "rf_local", "jump", "start")
    square = all(_same(getattr(table[n][0].y, k), getattr(table[n][0].x, k))
                 for n in order for k in keys)
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
    """Input pixels seen by unit ``row`` (inclusive ``(first, last)`` rows, clipped to the
    image), or by unit ``(row, col)``: ``((first_row, last_row), (first_col, last_col))``."""
    if col is None:
        return rf.y.bounds(row)
    return rf.y.bounds(row), rf.x.bounds(col)


def rf_centres(model: nn.Module, layer: nn.Module | str, input_size=224,
               in_channels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinates (pixel indices) of the RF centres of the layer's units, per axis:
    ``(rows, columns)``."""
    rf = receptive_field(model, layer, input_size, in_channels)
    return rf.y.centres(), rf.x.centres()


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
    if not _is_tensor(maps) or maps.dim() != 3:
        raise ValueError(f"maps must be a (N, h, w) tensor, got "
                         f"{tuple(maps.shape) if _is_tensor(maps) else type(maps).__name__}")
    H, W = (size, size) if isinstance(size, int) else tuple(size)
    h, w = maps.shape[-2:]
    if len(np.ravel(centres_y)) != h or len(np.ravel(centres_x)) != w:
        raise ValueError(f"{len(np.ravel(centres_y))} x {len(np.ravel(centres_x))} centres for a "
                         f"{h} x {w} map: give one centre per unit along each axis")
    wy = interp_matrix(centres_y, H).to(maps.device, torch.float64)
    wx = interp_matrix(centres_x, W).to(maps.device, torch.float64)
    return (wy @ maps.double() @ wx.T).to(maps.dtype if maps.is_floating_point() else torch.float32)


# --------------------------------------------------------------------------------------------
# Effective receptive field (paper 000, Eq. 2)
# --------------------------------------------------------------------------------------------

def erf(model: nn.Module, layer: nn.Module | str, images: torch.Tensor, unit=None,
        batch_size: int = 16, progress: bool | None = None) -> torch.Tensor:
    """ERF (paper 000, Eq. 2): ``1/N sum_n | 1/C sum_c dA_ij / dI_n,c,x,y |``, with a gradient of
    1 at the centre unit ``(h // 2, w // 2)`` (or ``unit``) of every channel of ``layer``'s output
    and 0 elsewhere; returns an (H, W) float tensor on the CPU. The model runs in eval mode on
    its own device (state restored); parameters' ``.grad`` are left untouched."""
    if not _is_tensor(images) or images.dim() != 4:
        raise ValueError(f"images must be a (N, C, H, W) tensor, got "
                         f"{tuple(images.shape) if _is_tensor(images) else type(images).__name__}")
    module = resolve_layer(model, layer)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = images.device
    captured: list[torch.Tensor] = []

    def hook(_m, _inp, out):
        if not _is_tensor(out) or out.dim() != 4:
            raise ValueError(f"layer {layer!r} outputs {type(out).__name__}, not a (N, C, h, w) "
                             "feature map")
        captured[:] = [out]
        return out.clone()  # later in-place ops (DenseNet's relu_) must not rewrite our copy

    batches = list(torch.split(images, batch_size))
    show = progress if progress is not None else len(batches) > 1
    from tqdm import tqdm

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
    """Smallest radius (pixels) of a disc around ``centre`` (default: the ERF's centre of mass)
    holding at least ``mass`` of the ERF's total: a scalar concentration measure."""
    a = np.asarray(erf_map.detach().cpu() if _is_tensor(erf_map) else erf_map, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"erf_map must be 2-D (H, W), got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("erf_map must be finite and non-negative (an ERF is an absolute value)")
    total = a.sum()
    if total <= 0:
        raise ValueError("erf_map is all zero: the layer's centre unit does not depend on the "
                         "input")
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


# --------------------------------------------------------------------------------------------
# Dead zone of a masked model (paper 003)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadZone:
    """Input rows no unmasked unit can see. ``rows``: their indices; ``n``; ``fraction`` of the
    image (rows x full width / area); ``first`` (None if empty); ``seen``: rows that are seen."""
    rows: tuple[int, ...]
    input_size: int
    visible_rows: tuple[int, ...]
    rf: RF

    n = property(lambda self: len(self.rows))
    fraction = property(lambda self: len(self.rows) / self.input_size)
    first = property(lambda self: self.rows[0] if self.rows else None)

    def as_slice(self) -> slice:
        """The dead rows as a slice (they must be contiguous)."""
        if not self.rows:
            return slice(0, 0)
        if self.rows != tuple(range(self.rows[0], self.rows[-1] + 1)):
            raise ValueError(f"the dead rows are not contiguous: {self.rows}")
        return slice(self.rows[0], self.rows[-1] + 1)


def dead_zone(model: nn.Module, input_size=None, masked_rows: int | None = None, *,
              layer: nn.Module | str | None = None, visible_rows: Iterable[int] | None = None,
              in_channels: int | None = None) -> DeadZone:
    """The dead zone (paper 003, Section 3.1): input rows outside the union of the RFs of the
    feature rows that the mask leaves visible (the first ``n - masked_rows`` rows, or
    ``visible_rows``).

    ``model``: the feature extractor (its output is the masked map), or a model with
    ``.features`` (a ``MaskedVGG``, whose ``input_size`` and ``masked_rows`` are the defaults).
    Paper 003's masked VGG16: 224 px, 9 of 14 rows masked -> rows 170..223 (54 rows, 24 %).
    """
    if input_size is None:
        input_size = getattr(model, "input_size", None)
    if masked_rows is None:
        masked_rows = getattr(model, "masked_rows", None)
    if input_size is None:
        raise ValueError("input_size is required (e.g. 224)")
    if layer is None:
        # a whole MaskedVGG does not trace (its forward checks shapes in Python): use .features
        if isinstance(getattr(model, "features", None), nn.Module):
            model = model.features
        layer = ""
    rf = receptive_field(model, layer, input_size, in_channels)
    n = rf.y.size
    if visible_rows is None:
        if masked_rows is None:
            raise ValueError("give masked_rows (the number of masked bottom feature rows) or "
                             "visible_rows")
        if not 0 <= masked_rows <= n:
            raise ValueError(f"masked_rows={masked_rows} must be in [0, {n}] for a {n}-row "
                             f"feature map at input {input_size}")
        visible = tuple(range(n - masked_rows))
    else:
        visible = tuple(sorted(set(int(r) for r in visible_rows)))
        if visible and not (0 <= visible[0] and visible[-1] < n):
            raise ValueError(f"visible_rows must lie in [0, {n}), got {visible}")
    h = rf.y.input_size
    covered = np.zeros(h, bool)
    for r in visible:
        b = rf.y.bounds(r)
        if b is not None:
            covered[b[0]:b[1] + 1] = True
    rows = tuple(int(i) for i in np.flatnonzero(~covered))
    return DeadZone(rows=rows, input_size=h, visible_rows=visible, rf=rf)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

CLI_MODELS = ("resnet50", "densenet121", "efficientnet_b0", "vgg16", "alexnet", "masked_vgg16",
              "efficientnet_lite0")


def build_model(name: str) -> nn.Module:
    """An untrained model by name: torchvision's (``weights=None``), ``masked_vgg16`` (paper
    003, lib.models.masked_vgg) or timm's ``efficientnet_lite0`` (``pretrained=False``)."""
    if name == "masked_vgg16":
        from lib.models.masked_vgg import masked_vgg16

        return masked_vgg16()
    if name == "efficientnet_lite0":
        import timm

        return timm.create_model("efficientnet_lite0", pretrained=False)
    import torchvision

    try:
        return torchvision.models.get_model(name, weights=None)
    except ValueError as exc:
        raise ValueError(f"unknown model {name!r}: use a torchvision model name (e.g. "
                         f"{', '.join(CLI_MODELS[:5])}), masked_vgg16 or efficientnet_lite0"
                         ) from exc


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["deadzone"]:
        p = argparse.ArgumentParser(prog="python -m lib.rf deadzone",
                                    description="Dead rows of paper 003's masked VGG16.")
        p.add_argument("--mask-rows", type=int, default=9)
        p.add_argument("--input-size", type=int, default=224)
        a = p.parse_args(argv[1:])
        from lib.models.masked_vgg import MaskedVGG

        # The RF does not depend on the channel widths: a narrow VGG16 traces and runs faster.
        with torch.device("meta"):
            features = MaskedVGG(num_classes=2, input_size=a.input_size, masked_rows=0,
                                 hidden=2).features
        dz = dead_zone(features, a.input_size, a.mask_rows)
        span = f"rows {dz.rows[0]}..{dz.rows[-1]}" if dz.rows else "none"
        print(f"{dz.n} dead rows ({100 * dz.fraction:.1f} %): {span}; input {a.input_size} px, "
              f"{a.mask_rows} of {dz.rf.out_h} feature rows masked, RF {_fmt(dz.rf.y.rf_max)}, "
              f"jump {_fmt(dz.rf.y.jump)}")
        return 0
    p = argparse.ArgumentParser(prog="python -m lib.rf",
                                description="Theoretical receptive field of every feature map.")
    p.add_argument("model", help=f"one of {', '.join(CLI_MODELS)} or any torchvision model name;"
                                 " or 'deadzone --mask-rows K --input-size S'")
    p.add_argument("--input-size", type=int, default=224)
    a = p.parse_args(argv)
    with torch.device("meta"):  # shapes only: no weight initialisation, no arithmetic
        model = build_model(a.model)
    prefix = ""
    if a.model == "masked_vgg16":  # its forward checks shapes in Python: trace .features
        model, prefix = model.features, "features."
    df = rf_table(model, a.input_size)
    print(f"# name rf_min rf_max stride   ({a.model}, input {a.input_size} px)")
    for r in df.itertuples():
        name = prefix + r.name if r.name else (prefix.rstrip(".") or "<output>")
        print(f"{name} {_fmt(r.rf_min)} {_fmt(r.rf_max)} {_fmt(r.jump)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
