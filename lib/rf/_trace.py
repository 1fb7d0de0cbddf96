"""The tracer behind lib.rf: every torch operation of one run moves, per axis and channel, the
input interval a unit can depend on (Eq. 1 per window; unions for additions; ranges for
concatenations; ``inf`` for global operations)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch.overrides import TorchFunctionMode


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
    return _Axis(
        math.nan,
        np.full((channels, 1), np.inf),
        np.full((channels, 1), -np.inf),
        np.zeros((channels, 1), bool),
    )


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
        if (
            np.array_equal(lo, lo[:, idx])
            and np.array_equal(hi, hi[:, idx])
            and np.array_equal(ax.glob, ax.glob[:, idx])
        ):
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
    sources = [
        [(q + p - t * d) // s for t in range(k) if (q + p - t * d) % s == 0] for q in range(pout)
    ]
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
    return _Axis(math.nan, np.full((c, 1), np.inf), np.full((c, 1), -np.inf), np.ones((c, 1), bool))


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
    return _Axis(
        ax.jump,
        np.broadcast_to(ax.lo, (c, p)).copy(),
        np.broadcast_to(ax.hi, (c, p)).copy(),
        np.broadcast_to(ax.glob, (c, p)).copy(),
    )


def _align(axes: Sequence[_Axis], what: str) -> list[_Axis]:
    """Bring axes on the same grid to a common phase period (jumps must agree)."""
    jumps = [a.jump for a in axes if math.isfinite(a.jump)]
    if jumps and not np.allclose(jumps, jumps[0], rtol=0, atol=1e-9):
        raise RFError(
            f"{what} combines feature maps of the same size on different grids "
            f"(jumps {sorted(set(jumps))}); their units are not aligned"
        )
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
    "add",
    "sub",
    "mul",
    "truediv",
    "div",
    "floordiv",
    "floor_divide",
    "true_divide",
    "pow",
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "square",
    "reciprocal",
    "sign",
    "clamp",
    "clamp_min",
    "clamp_max",
    "clip",
    "maximum",
    "minimum",
    "where",
    "lerp",
    "addcmul",
    "iadd",
    "isub",
    "imul",
    "itruediv",
    "add_",
    "sub_",
    "mul_",
    "div_",
    "clamp_",
    "neg_",
    "relu",
    "relu_",
    "relu6",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "selu",
    "celu",
    "gelu",
    "silu",
    "silu_",
    "mish",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "hardtanh",
    "hardtanh_",
    "hardswish",
    "hardswish_",
    "hardsigmoid",
    "hardsigmoid_",
    "softplus",
    "softsign",
    "threshold",
    "logsigmoid",
    "erf",
    "sin",
    "cos",
    "dropout",
    "dropout2d",
    "alpha_dropout",
    "feature_alpha_dropout",
    "batch_norm",
    "stochastic_depth",
    "drop_path",
    "contiguous",
    "clone",
    "detach",
    "float",
    "double",
    "half",
    "bfloat16",
    "to",
    "type",
    "type_as",
    "cpu",
    "cuda",
    "expand",
    "expand_as",
    "broadcast_to",
    "masked_fill",
    "nan_to_num",
    "gt",
    "lt",
    "ge",
    "le",
    "eq",
    "ne",
}
# Results that do not depend on the input's values (only on its shape) or overwrite it.
_CONSTANT_LIKE = {
    "zeros_like",
    "ones_like",
    "empty_like",
    "full_like",
    "rand_like",
    "randn_like",
    "randint_like",
    "new_zeros",
    "new_ones",
    "new_empty",
    "new_full",
    "new_tensor",
    "bernoulli",
    "zero",
    "fill",
    "normal",
    "uniform",
}
_REDUCTIONS = {
    "mean",
    "sum",
    "amax",
    "amin",
    "max",
    "min",
    "std",
    "var",
    "norm",
    "logsumexp",
    "prod",
    "any",
    "all",
    "median",
    "nanmean",
    "nansum",
}
_LAYOUT = {
    "view",
    "reshape",
    "flatten",
    "permute",
    "transpose",
    "squeeze",
    "unsqueeze",
    "movedim",
    "unflatten",
    "view_as",
    "reshape_as",
    "t",
    "swapaxes",
}


_REFLECTED = {
    "radd": "add",
    "rsub": "sub",
    "rmul": "mul",
    "rtruediv": "truediv",
    "rdiv": "div",
    "rfloordiv": "floordiv",
    "rpow": "pow",
    "rmatmul": "matmul",
}


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
        self.fields: dict[int, Any] = {}  # id(tensor) -> field
        self._alive: list = []  # keeps tracked tensors alive: ids stay unique

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
            self.track(
                args[0],
                self._elementwise(
                    [
                        (f, v)
                        for f, v in ((fargs[0], args[0]), (fargs[2], args[2]))
                        if isinstance(f, (_Map, _Flat))
                    ],
                    args[0],
                ),
            )
            return out
        if not (
            _is_tensor(out) or (isinstance(out, (tuple, list)) and any(_is_tensor(v) for v in out))
        ):
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
        if any(
            isinstance(f, _Map) and not f.nchw for f, _ in tensors
        ) and name not in _ELEMENTWISE | _LAYOUT | {"linear", "layer_norm"}:
            raise RFError(
                f"no RF rule for {name!r} on a tensor whose spatial axes were permuted "
                "(channels-last); only element-wise operations, linear and layer_norm "
                "over channels, and permutes are understood there"
            )
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
            return self._conv(
                first_f,
                first_v,
                value,
                k,
                _arg(vargs, vkw, 3, "stride", 1),
                pad,
                dil,
                _arg(vargs, vkw, 6, "groups", 1),
            )
        if name == "conv_transpose2d":
            w = vargs[1] if len(vargs) > 1 else vkw["weight"]
            k = tuple(w.shape[-2:])
            s_, p_ = (
                _pair(_arg(vargs, vkw, i, key, 1 if key == "stride" else 0))
                for i, key in ((3, "stride"), (4, "padding"))
            )
            d_ = _pair(_arg(vargs, vkw, 7, "dilation", 1))
            m = first_f.apply(lambda ax, i: _transposed(ax, k[i], s_[i], p_[i], d_[i]))
            return m.apply(
                lambda ax, i: _mix(
                    ax, _arg(vargs, vkw, 6, "groups", 1), first_v.shape[1], value.shape[1]
                )
            )
        if name in ("local_response_norm", "channel_shuffle", "native_channel_shuffle"):
            return first_f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        if name in ("max_pool2d", "avg_pool2d", "max_pool2d_with_indices", "lp_pool2d"):
            off = 1 if name == "lp_pool2d" else 0  # lp_pool2d(input, norm_type, kernel, ...)
            k = _arg(vargs, vkw, 1 + off, "kernel_size")
            s = _arg(vargs, vkw, 2 + off, "stride", None) or k
            p = 0 if name == "lp_pool2d" else _arg(vargs, vkw, 3, "padding", 0)
            d = _arg(vargs, vkw, 4, "dilation", 1) if name.startswith("max") else 1
            return self._conv(first_f, first_v, value, k, s, p, d, None)
        if name in (
            "adaptive_avg_pool2d",
            "adaptive_max_pool2d",
            "adaptive_max_pool2d_with_indices",
        ):
            return self._adaptive(first_f, first_v, _first_tensor(value))
        if name in ("interpolate", "upsample", "upsample_bilinear", "upsample_nearest"):
            mode = _arg(vargs, vkw, 3, "mode", "nearest")
            if name == "upsample_bilinear":
                mode = "bilinear"
            ac = _arg(vargs, vkw, 4, "align_corners", True if name == "upsample_bilinear" else None)
            if _arg(vargs, vkw, 6, "antialias", False):
                raise RFError(
                    "interpolate(antialias=True) widens its kernel when down-sampling; "
                    "no RF rule for it"
                )
            return self._interpolate(
                first_f,
                first_v,
                value,
                mode,
                ac,
                _arg(vargs, vkw, 2, "scale_factor"),
                _arg(vargs, vkw, 5, "recompute_scale_factor"),
            )
        if name == "pad":
            p = tuple(_arg(vargs, vkw, 1, "pad"))
            return self._pad(first_f, p)
        if name == "linear" and isinstance(first_f, _Map) and first_f.dims[0] == 3:
            # a linear layer over channels-last channels: a 1x1 convolution
            return first_f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        if name in (
            "linear",
            "matmul",
            "bmm",
            "mm",
            "einsum",
            "scaled_dot_product_attention",
            "baddbmm",
            "addmm",
        ):
            if any(isinstance(f, _Map) for f, _ in tensors):
                return self._from_flat([_Flat(exact=False)], value)
            return self._from_flat([_Flat(exact=True)], value)
        if name in ("softmax", "log_softmax", "softmin"):
            return self._softmax(first_f, first_v, value, _arg(vargs, vkw, 1, "dim"))
        if name in ("layer_norm", "group_norm", "instance_norm"):
            if name == "layer_norm":
                return self._normalise_last(
                    first_f, first_v, value, len(tuple(_arg(vargs, vkw, 1, "normalized_shape")))
                )
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
        raise RFError(
            f"no receptive-field rule for the operation {name!r}. Supported: "
            "convolutions, pooling, interpolate, pad, element-wise operations, cat, split, "
            "reductions, reshapes and linear layers; compute the RF of a layer before "
            "it"
        )

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
                r = (
                    1 / Fraction(sf).limit_denominator(10**6)
                    if sf and not recompute
                    else Fraction(n_in, n_out)
                )
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
                        raise RFError(
                            "broadcasting a 1-unit map with a bounded RF over a "
                            "larger map: no RF rule for it"
                        )
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
                ax = _Axis(
                    math.nan, np.full((1, 1), np.inf), np.full((1, 1), -np.inf), glob_any.copy()
                )
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
            ax = _Axis(
                math.nan, np.full((1, 1), np.inf), np.full((1, 1), -np.inf), np.ones((1, 1), bool)
            )
            return _Map(ax, ax)
        return _Flat(exact=exact)

    def _layout(self, f, v, value):
        out = _first_tensor(value)
        if isinstance(f, _Flat):
            return self._from_flat([f], value)
        if out is not None and tuple(out.shape) == tuple(v.shape):
            return f
        if (
            f.nchw
            and out is not None
            and out.dim() == 4
            and len(v.shape) == 4
            and out.shape[0] == v.shape[0]
            and tuple(out.shape[2:]) == tuple(v.shape[2:])
        ):
            # channels regrouped in an unknown order: every channel may hold any input channel
            return f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        # Already global along both axes (a flattened global pool): nothing is lost.
        return _Flat(exact=bool(f.y.glob.all() and f.x.glob.all()))

    def _permute(self, f: _Map, name, vargs, vkw, value):
        if name == "permute":
            perm = (
                vargs[1]
                if len(vargs) == 2 and isinstance(vargs[1], (tuple, list))
                else (vargs[1:] or vkw.get("dims"))
            )
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
            index = index[:e] + (slice(None),) * (4 - len(index) + 1) + index[e + 1 :]
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
            result.append(
                _canonical(
                    _Axis(
                        al[0].jump,
                        np.concatenate([a.lo for a in al]),
                        np.concatenate([a.hi for a in al]),
                        np.concatenate([a.glob for a in al]),
                    )
                )
            )
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
            res = _Map(
                _globalise(m.y, False) if 2 in dims else m.y,
                _globalise(m.x, False) if 3 in dims else m.x,
            )
        return tuple(res for _ in value) if isinstance(value, (tuple, list)) else res

    def _softmax(self, f, v, value, dim):
        if dim is None:
            raise RFError("softmax without dim")
        dim = dim % 4
        if dim == 1:
            return f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1))
        if dim == 0:
            return f
        return _Map(
            _globalise(f.y, True) if dim == 2 else f.y, _globalise(f.x, True) if dim == 3 else f.x
        )

    def _normalise_last(self, f, v, value, ndims):
        normed = set(range(4 - ndims, 4))
        c, y, x = (d in normed for d in f.dims)
        m = f.apply(lambda ax, i: _mix(ax, 1, ax.channels, 1)) if c else f
        return _Map(
            _globalise(m.y, True) if y else m.y, _globalise(m.x, True) if x else m.x, f.dims
        )


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
    warnings.warn(
        "a spatial map was rebuilt from a tensor whose spatial axes were reshaped "
        "away (flatten/view/permute); its RF is reported unbounded, an upper bound",
        stacklevel=4,
    )
