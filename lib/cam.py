"""One CAM engine, many weightings.

A forward hook captures the target layer's activations A (N, K, h, w); autograd gives
G = dY/dA for the target score Y; each method is a weighting of A. The methods live in one
registry, :data:`METHODS` (name -> :class:`Method`); each entry says what it computes, what it
needs, what it costs and where it comes from (``help(cam.METHODS["gradcam"])``). The table
below is generated from it:

@METHODS_TABLE@

Maps are returned raw: signed, not normalised, at the layer's own resolution; post-processing
is separate (:func:`postprocess`). The constants (eps) of Grad-CAM++, XGrad-CAM, Score-CAM and
Ablation-CAM are those of pytorch-grad-cam, so that both agree to 1e-4 after the same
post-processing (Ablation-CAM: where a layer's smallest activation is 0, see its entry).
Integrated Gradients, occlusion and Gradient SHAP come from Captum behind the same call.

:func:`compute` gives one map (one method, one layer); :func:`compute_many` gives
``maps[method][layer_name]`` for several methods and layers from one shared forward and backward
pass. Options of a method go in ``options={"eigencam": {"sign": "svd"}}``.

Speed: the network below the first target layer runs without autograd, so a gradient map
costs one forward pass and a backward pass from the output to the layer only; all
gradient-based methods and layers share it. Ablation-CAM runs only the part of the network
above the layer (a torch.fx split) for its K ablations. The methods bound by forward passes
(Score-CAM, Ablation-CAM, occlusion, Integrated Gradients, Gradient SHAP) run them through a
fast path (:func:`fast_path`: batch-norm folded into the convolutions, channels-last memory
format and cache-sized batches on the CPU), in a torch.fx copy of the graph; the model itself
is left exactly as it came.

Adding a method: one function ``weighting(A, G, ctx) -> map`` decorated with
:func:`register` (name, formula, cost, reference, needs). Nothing else to edit: the name
tuples (``GRADIENT_METHODS``, ``LAYER_METHODS``, ``INPUT_METHODS``, ``CAPTUM_METHODS``) and
this table are derived from the registry.
"""
from __future__ import annotations

import contextlib
import inspect
import numbers
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lib import winograd as _winograd
from lib.layers import layer_name, resolve_layer

__all__ = ["compute", "compute_many", "postprocess", "register", "fast_path", "Method", "Context",
           "METHODS", "GRADIENT_METHODS", "LAYER_METHODS", "INPUT_METHODS", "CAPTUM_METHODS",
           "CAMError", "PGC_PRESET"]

#: post-processing of pytorch-grad-cam (and so of papers that used it, e.g. Taimeskhanov et al.)
PGC_PRESET = "pytorch-grad-cam"

Target = (None | int | Sequence[int] | torch.Tensor | Callable[[object], torch.Tensor]
          | Sequence[Callable[[object], torch.Tensor]])


class CAMError(ValueError):
    """Bad input to the CAM engine; the message names the problem and the fix."""


# --------------------------------------------------------------------------- the registry

@dataclass(frozen=True, repr=False, eq=False)
class Method:
    """One registered CAM method (an entry of :data:`METHODS`); ``help()`` on it says what it
    computes, what it needs, its cost and its reference.

    ``weighting(A, G, ctx)`` returns the raw map: (N, h, w) for a layer method, (N, C, H, W) for
    an input-resolution one. A is the layer's activations (N, K, h, w) and G = dY/dA (None
    unless ``gradients``); both are None for methods without a layer. ``ctx`` is a
    :class:`Context`. ``options`` maps each option of the method to its allowed values, the
    first being the default.
    """
    name: str
    weighting: Callable
    formula: str
    cost: str
    reference: str
    layer: bool = True
    gradients: bool = False
    extra_forwards: bool = False
    input_resolution: bool = False
    captum: bool = False
    hooks: bool | None = None
    options: Mapping[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        if self.hooks is None:  # a layer's activations are read by a forward hook
            object.__setattr__(self, "hooks", self.layer)
        doc = inspect.cleandoc(self.weighting.__doc__ or "")
        opts = "; ".join(f"{k} in {v} (default {v[0]!r})" for k, v in self.options.items())
        object.__setattr__(self, "__doc__", (
            f"{self.name}: {doc}\n\n"
            f"map:       {self.formula}\n"
            f"needs:     {', '.join(self.needs)}\n"
            f"cost:      {self.cost}\n"
            f"reference: {self.reference}\n"
            f"options:   {opts or 'none'}  (compute(..., options={{{self.name!r}: {{...}}}}))"))

    @property
    def needs(self) -> tuple[str, ...]:
        """What the method needs, in words."""
        out = []
        if self.layer:
            out.append("a target layer's activations A")
        if self.gradients:
            out.append("gradients G = dY/dA" if self.layer and not self.input_resolution
                       else "gradients (autograd)")
        if self.extra_forwards:
            out.append("extra forward passes")
        if self.input_resolution:
            out.append("input resolution (returns (N, C, H, W))")
        if self.captum:
            out.append("Captum")
        return tuple(out) or ("the model's output only",)

    def __call__(self, a, g, ctx):
        return self.weighting(a, g, ctx)

    def __repr__(self):
        return f"<CAM method {self.name!r}>"


#: the registry: method name -> :class:`Method`, in the order of the module's table
METHODS: dict[str, Method] = {}


def register(name: str, *, formula: str, cost: str, reference: str, **needs):
    """Decorator: register ``weighting(A, G, ctx)`` as the method ``name``.

    ``formula`` (one line, for the table), ``cost`` (e.g. ``"1 forward + 1 backward"``),
    ``reference`` (paper and equation); ``needs``: the :class:`Method` flags ``layer``,
    ``gradients``, ``extra_forwards``, ``input_resolution``, ``captum``, ``hooks`` and
    ``options``. The function's docstring says what the method computes.
    """
    def deco(fn):
        if name in METHODS:
            raise ValueError(f"a CAM method named {name!r} is already registered")
        if not (fn.__doc__ or "").strip():
            raise ValueError(f"the weighting of {name!r} needs a docstring: what it computes")
        METHODS[name] = Method(name, fn, formula, cost, reference, **needs)
        return fn
    return deco


@dataclass
class Context:
    """What a method's weighting may use besides A and G (one layer, one call).

    ``model``; ``x`` (the images, detached); ``output`` (the model's raw output on x: a tensor,
    or the tuple / dict it returns); ``layer`` and ``name`` (the target module and its dotted
    name, None for methods without a layer); ``options`` (this method's, defaults filled in);
    ``target`` (as the caller gave it); ``classes`` ((N,) class indices, None for a callable
    target); ``batch_size``, ``progress``, ``captum_kwargs``. ``score(out, images)`` is the
    target score of each row of ``out``, the model's output for inputs made from the images
    ``images`` (indices into x). ``guided_backprop()`` is computed once per call and shared.
    ``forward(inputs)`` runs the model through the fast path (:func:`fast_path`) and
    ``no_grad()`` is the context for gradient-free passes: the methods bound by forward passes
    use both.
    """
    model: nn.Module
    x: torch.Tensor
    output: object
    layer: nn.Module | None
    name: str | None
    options: dict
    _engine: _Engine

    @property
    def target(self):
        return self._engine.target

    @property
    def classes(self):
        return self._engine.classes

    @property
    def batch_size(self):
        return self._engine.batch_size

    @property
    def progress(self):
        return self._engine.progress

    @property
    def captum_kwargs(self):
        return dict(self._engine.captum_kwargs)

    def score(self, out, images: torch.Tensor) -> torch.Tensor:
        return self._engine.scorer(out, images)

    def guided_backprop(self) -> torch.Tensor:
        return self._engine.guided_backprop()

    def forward(self, inputs: torch.Tensor, grad: bool = False):
        """The model's output for ``inputs`` through the fast path (:func:`fast_path`), built
        once per call; without autograd unless ``grad``."""
        return self._engine.fast(grad)(inputs, grad=grad)

    def no_grad(self):
        """The context for gradient-free passes: ``torch.inference_mode()`` or
        ``torch.no_grad()``, as the fast path's ``inference_mode`` lever says."""
        return torch.inference_mode() if self._engine.levers["inference_mode"] else torch.no_grad()

    @property
    def levers(self) -> dict:
        return dict(self._engine.levers)

    def first_conv(self):
        """The fast copy split after its first convolution (:func:`fast_path`'s
        ``share_first_conv``), or None where that does not apply."""
        return self._engine.fast().first_conv(self.x, self.output)

    def images_per_pass(self) -> int:
        """How many inputs of x's size one pass takes: ``batch_size``, or fewer on the CPU (the
        fast path's ``cpu_pixels_per_pass``)."""
        return self._engine.images_per_pass()


# --------------------------------------------------------------------------- the methods

@register("cam", formula="sum_k w_k^c A_k, w the linear head after global average pooling",
          cost="1 forward",
          reference="Zhou et al. 2016 (CAM); Selvaraju et al. (w_k^c = Z alpha_k^c)")
def _cam(a, g, ctx):
    """CAM: the channels weighted by the class's weights in a linear head on GAP(A); the model
    must be exactly linear(GAP(A)) above the layer (checked)."""
    if ctx.classes is None:
        raise CAMError("CAM needs a class index target (None, an int or one int per image), "
                       "not a callable")
    output = ctx.output
    linears = [m for m in ctx.model.modules() if isinstance(m, nn.Linear)]
    head = linears[-1] if linears else None
    if head is None or head.in_features != a.shape[1]:
        raise CAMError(
            f"CAM needs a model whose output is a linear layer applied to the global average "
            f"pool of layer {ctx.name!r} ({a.shape[1]} channels); this "
            f"{type(ctx.model).__name__} has "
            + (f"a last linear layer with {head.in_features} inputs" if head else
               "no linear layer")
            + ". Use method='gradcam', which equals CAM up to Z = h*w on such models")
    with torch.no_grad():
        predicted = head(a.mean((2, 3)))
    if not torch.allclose(predicted, output, rtol=1e-4, atol=1e-4 * output.abs().max()):
        raise CAMError(
            f"CAM needs a global-average-pool + linear head after layer {ctx.name!r}, but "
            f"linear(GAP(A)) differs from the model's output by "
            f"{(predicted - output).abs().max().item():.3g}; use method='gradcam'")
    return _weighted(head.weight[ctx.classes].to(a.dtype), a)


_GRAD = dict(gradients=True, cost="1 forward + 1 backward (shared)")


@register("gradcam", formula="sum_k alpha_k A_k, alpha_k = mean_ij G_kij",
          reference="Selvaraju et al. 2017, Eq. 1-2; Taimeskhanov et al., Def. 1",
          options={"pooling": ("mean", "max")}, **_GRAD)
def _gradcam(a, g, ctx):
    """Grad-CAM: the channels weighted by their spatially averaged gradient (Eq. 1).
    ``pooling="max"`` pools the gradients by their spatial maximum instead, the alternative
    Selvaraju et al. (Sec. 3) found to work worse than the average; it differs from the mean only
    where a channel's gradient varies over space (never right before global average pooling,
    where every position receives the same gradient)."""
    pooled = g.mean((2, 3)) if ctx.options["pooling"] == "mean" else g.amax((2, 3))
    return _weighted(pooled, a)


@register("gradcam++", formula="alpha_k = sum_ij relu(G) a_kij, a = G^2 / (2G^2 + sum(A) G^3)",
          reference="Chattopadhay et al. 2018; Taimeskhanov et al., Def. 5",
          options={"variant": ("textbook", "authors")}, **_GRAD)
def _gradcampp(a, g, ctx):
    """Grad-CAM++: positive gradients weighted by the closed-form a_kij of an exponential score
    (higher derivatives as powers of G), with pytorch-grad-cam's eps 1e-6.

    ``variant="authors"`` is Nagy, Nimara, Qian's code (Nagy et al., ``src/methods/
    new_grad_cam.py``, ``GradCAM_plusplus``), never the default: the same alpha_k (their eps
    1e-7) but the map is relu(sum_k alpha_k exp(A_k)), the channels' *exponentiated*
    activations, not A_k. It is what their Table 5's Grad-CAM++ column measures."""
    g2 = g * g
    g3 = g2 * g
    sum_a = a.sum((2, 3), keepdim=True)
    if ctx.options["variant"] == "authors":
        aij = g2 / (2 * g2 + sum_a * g3 + 1e-7)
        return _weighted((g.clamp(min=0) * aij).sum((2, 3)), a.exp()).clamp(min=0)
    aij = g2 / (2 * g2 + sum_a * g3 + 1e-6)
    aij = torch.where(g != 0, aij, torch.zeros_like(aij))
    return _weighted((g.clamp(min=0) * aij).sum((2, 3)), a)


@register("xgradcam", formula="alpha_k = sum_ij G_kij A_kij / sum_ij A_kij",
          reference="Fu et al. 2020; Taimeskhanov et al., Def. 4", **_GRAD)
def _xgradcam(a, g, ctx):
    """XGrad-CAM: the gradient averaged with the channel's normalised activations as weights
    (pytorch-grad-cam's eps 1e-7)."""
    sum_a = a.sum((2, 3), keepdim=True)
    return _weighted((g * a / (sum_a + 1e-7)).sum((2, 3)), a)


@register("hirescam", formula="sum_k G_k * A_k  (element-wise, no spatial averaging)",
          reference="Draelos & Carin 2021; Taimeskhanov et al., Def. 6", **_GRAD)
def _hirescam(a, g, ctx):
    """HiResCAM: gradient times activation, summed over channels; exactly 0 where G is 0."""
    return (g * a).sum(1)


@register("layercam", formula="sum_k relu(G_k) * A_k",
          reference="Jiang et al. 2021 (LayerCAM)", **_GRAD)
def _layercam(a, g, ctx):
    """LayerCAM: positive gradient times activation, summed over channels."""
    return (g.clamp(min=0) * a).sum(1)


@register("counterfactual", formula="gradcam with -G",
          reference="Selvaraju et al. 2017, Eq. 12", **_GRAD)
def _counterfactual(a, g, ctx):
    """Counterfactual Grad-CAM: Grad-CAM of the negated gradient (what lowers the score)."""
    return _weighted((-g).mean((2, 3)), a)


@register("eigencam", formula="A (pixels x channels, centred) on its 1st principal direction",
          cost="1 forward + 1 SVD per image",
          reference="Muhammad & Yeasin 2020 (Eigen-CAM)", options={"sign": ("sum", "svd")})
def _eigencam(a, g, ctx):
    """Eigen-CAM: each image's A, as an (h*w, K) matrix centred over pixels, projected on its
    first right singular vector v. The sign of a principal component is arbitrary (v and -v are
    both first singular vectors), so the map's sign is a convention:
    ``sign="sum"`` (default, the library's): the sign that makes the map correlate positively
    with the centred channel sum sum_k A_k, so the map points the way the activations do, per
    image, whatever the SVD routine, machine or batch;
    ``sign="svd"``: v as numpy.linalg.svd returns it, as pytorch-grad-cam's
    ``get_2d_projection`` (the protocol of Taimeskhanov et al.) does, so maps equal its EigenCAM."""
    return _eigen_projection(a, ctx.options["sign"])


@register("scorecam", formula="alpha = softmax_k(Y(x * up(A_k)))",
          cost="1 + N*K forwards (masked inputs)",
          reference="Wang et al. 2020; Taimeskhanov et al., Def. 7", extra_forwards=True,
          options={"align_corners": (True, False)})
def _scorecam(a, g, ctx):
    """Score-CAM: softmax over channels of the target score of x masked by each min-max
    normalised, up-sampled channel (pytorch-grad-cam's variant: logit scores, eps 1e-8;
    ``align_corners=True`` up-samples as its ``nn.UpsamplingBilinear2d``).

    A channel that is exactly zero everywhere gives an all-zero mask, hence the same masked
    input (zeros) whatever the channel: its score is computed once per image, not K times. The
    masked inputs run through the fast path (:func:`fast_path`), ``ctx.images_per_pass()`` at
    a time, sharing the model's first convolution where that applies (``share_first_conv``).
    """
    x = ctx.x
    n, k = a.shape[:2]
    size = x.shape[-2:]
    weights = torch.empty(n, k, dtype=a.dtype, device=a.device)
    flat_a = a.flatten(2)
    dead = (flat_a.amax(2) == 0) & (flat_a.amin(2) == 0)
    step = ctx.images_per_pass()
    align = ctx.options["align_corners"]
    hw = a.shape[2] * a.shape[3]
    first = ctx.first_conv() if n * k > hw else None
    if first is not None and not first.worth_it(hw):
        first = None
    if first is not None:  # the up-sampled unit maps B_j of the layer's h*w positions
        unit = torch.eye(hw, dtype=x.dtype, device=x.device).view(hw, 1, *a.shape[2:])
        maps = F.interpolate(unit, size=size, mode="bilinear", align_corners=align)[:, 0]
    bar = tqdm(total=n * k, desc="Score-CAM", disable=not ctx.progress, leave=False)
    with ctx.no_grad():
        for i in range(n):
            live = (~dead[i]).nonzero()[:, 0]
            if dead[i].any():
                zero = torch.zeros_like(x[i:i + 1])
                idx = torch.full((1,), i, device=a.device)
                weights[i, dead[i]] = ctx.score(ctx.forward(zero), idx).to(a.dtype)
                bar.update(int(dead[i].sum()))
            basis = first.basis(x[i:i + 1], maps) if first is not None and len(live) else None
            for lo in range(0, len(live), step):
                chans = live[lo:lo + step]
                up = F.interpolate(a[i:i + 1, chans], size=size, mode="bilinear",
                                   align_corners=align)[0]
                flat = up.flatten(1)
                mins = flat.amin(1).view(-1, 1, 1)
                spans = flat.amax(1).view(-1, 1, 1) - mins + 1e-8
                if basis is None:
                    out = ctx.forward(x[i:i + 1] * ((up - mins) / spans)[:, None])
                else:  # m_k = sum_j c_kj B_j, c_kj = (A_k[j] - min_k) / span_k
                    coef = (a[i, chans].flatten(1) - mins.view(-1, 1)) / spans.view(-1, 1)
                    out = first(basis, coef)
                idx = torch.full((len(chans),), i, device=a.device)
                weights[i, chans] = ctx.score(out, idx).to(a.dtype)
                bar.update(len(chans))
    bar.close()
    return _weighted(torch.softmax(weights, dim=1), a)


@register("ablationcam", formula="alpha_k = (Y - Y with A_k ablated) / Y",
          cost="1 + N*K forwards of the part above the layer",
          reference="Desai & Ramaswamy 2020; Taimeskhanov et al., Def. 8", extra_forwards=True)
def _ablationcam(a, g, ctx):
    """Ablation-CAM: relative drop of the target score when channel k is ablated, i.e. set to
    one value v_i per image i: v_i = 0 when image i's smallest activation is exactly 0 (the
    usual post-ReLU layer: the paper's zeroing), else v_i = min(A_i) - 1e7 (a very negative
    value, as pytorch-grad-cam does), with min over image i's activations only.

    So an image's map is the same alone or within any batch, and for any ``batch_size``: the
    value depends on the image only. Where the minimum is 0 this equals pytorch-grad-cam to
    1e-4. Where it is negative pytorch-grad-cam's value depends on its batch: its AblationLayer
    takes the minimum over the ablation batch after ablating the earlier rows in place, so the
    rows get min - 1e7, min - 2e7, ... With its batch_size=1 it equals ours; with its default
    (32) the maps differ wherever the ablated value reaches the score unsaturated (no ReLU
    between the layer and a linear head). The part above the layer runs through the fast path
    (:func:`fast_path`).
    """
    n, k = a.shape[:2]
    tail = _Tail(ctx.model, ctx.name, ctx.x, a, ctx.output, ctx.levers)
    original = ctx.score(ctx.output, torch.arange(n, device=a.device))
    drops = torch.empty(n, k, dtype=a.dtype, device=a.device)
    bar = tqdm(total=n * k, desc="Ablation-CAM", disable=not ctx.progress, leave=False)
    with ctx.no_grad():
        for i in range(n):
            low = a[i].min()
            value = 0.0 if low == 0 else low.item() - 1e7
            for lo in range(0, k, ctx.batch_size):
                chans = torch.arange(lo, min(lo + ctx.batch_size, k), device=a.device)
                batch = a[i:i + 1].repeat(len(chans), 1, 1, 1)
                batch[torch.arange(len(chans)), chans] = value
                idx = torch.full((len(chans),), i, device=a.device)
                drops[i, lo:lo + len(chans)] = ctx.score(tail(batch, i), idx)
                bar.update(len(chans))
    bar.close()
    orig = original.view(-1, 1).to(a.dtype)
    if (orig == 0).any():
        raise CAMError("Ablation-CAM divides by the target score, which is exactly 0 for "
                       "some image; use another method or target")
    return _weighted((orig - drops) / orig, a)


@register("guidedbackprop", formula="dY/dx with negative gradients zeroed at every ReLU",
          cost="1 forward + 1 backward to x", layer=False, gradients=True,
          input_resolution=True, hooks=True, reference="Springenberg et al. 2015")
def _guidedbackprop(a, g, ctx):
    """Guided Backpropagation: the input gradient where, at every nn.ReLU / nn.ReLU6 module,
    the backward pass keeps only positive gradients at active units (as Captum's)."""
    return ctx.guided_backprop()


@register("guidedgradcam", formula="bilinear-up-sampled relu(gradcam) * guidedbackprop",
          cost="gradcam's + guidedbackprop's", gradients=True,
          input_resolution=True,
          reference="Selvaraju et al. 2017, Guided Grad-CAM")
def _guidedgradcam(a, g, ctx):
    """Guided Grad-CAM: relu(Grad-CAM) up-sampled bilinearly to the input, times Guided
    Backpropagation (Captum's GuidedGradCam with interpolate_mode='bilinear')."""
    cam = _weighted(g.mean((2, 3)), a).clamp(min=0)
    up = F.interpolate(cam[:, None], size=ctx.x.shape[-2:], mode="bilinear", align_corners=False)
    return up * ctx.guided_backprop()


_CAPTUM = dict(layer=False, input_resolution=True, captum=True)


@register("integratedgradients", formula="(x - x0) * mean over the path x0 -> x of dY/dx",
          cost="n_steps (50) forwards + backwards", gradients=True,
          reference="Sundararajan et al. 2017 (Captum IntegratedGradients)", **_CAPTUM)
def _integratedgradients(a, g, ctx):
    """Integrated Gradients (Captum), zero baseline unless ``captum_kwargs`` says otherwise; the
    passes run through the fast path (:func:`fast_path`)."""
    import captum.attr as ca
    forward, cls = _captum_forward(ctx, grad=True)
    return ca.IntegratedGradients(forward).attribute(
        ctx.x, target=cls, **ctx.captum_kwargs).contiguous()


@register("occlusion", formula="Y(x) - Y(x with a sliding window zeroed)",
          cost="1 forward per window position (no gradient)",
          reference="Zeiler & Fergus 2014 (Captum Occlusion)", extra_forwards=True, **_CAPTUM)
def _occlusion(a, g, ctx):
    """Occlusion (Captum): the score drop when a (C, 45, 45) window, stride 1, is zeroed
    (``sliding_window_shapes`` / ``strides`` in ``captum_kwargs``). The occluded images run
    through the fast path (:func:`fast_path`), ``images_per_pass()`` at a time (Captum's
    ``perturbations_per_eval`` windows of all N images, whose own default is one window)."""
    import captum.attr as ca
    forward, cls = _captum_forward(ctx, grad=False)
    kw = ctx.captum_kwargs
    kw.setdefault("sliding_window_shapes", (ctx.x.shape[1], 45, 45))
    kw.setdefault("strides", 1)
    kw.setdefault("perturbations_per_eval", max(1, ctx.images_per_pass() // len(ctx.x)))
    return ca.Occlusion(forward).attribute(ctx.x, target=cls, **kw).contiguous()


@register("gradientshap", formula="E[dY/dx at random path points] * (x - random baseline)",
          cost="n_samples (5) forwards + backwards", gradients=True,
          reference="Lundberg & Lee 2017 (Captum GradientShap)", **_CAPTUM)
def _gradientshap(a, g, ctx):
    """Gradient SHAP (Captum), zero baseline by default. ``captum_kwargs["seed"]`` (default 0)
    seeds torch, NumPy's and Python's global generators (Captum draws from NumPy's) for this
    call only: the same seed gives bit-identical maps, and the caller's random state is left
    as it was. The passes run through the fast path (:func:`fast_path`)."""
    import captum.attr as ca
    forward, cls = _captum_forward(ctx, grad=True)
    kw = ctx.captum_kwargs
    kw.setdefault("baselines", torch.zeros_like(ctx.x[:1]))
    seed = kw.pop("seed", 0)
    with _seeded(seed, ctx.x.device):
        return ca.GradientShap(forward).attribute(ctx.x, target=cls, **kw).contiguous()


#: derived from the registry; kept for callers that test membership
GRADIENT_METHODS = tuple(n for n, m in METHODS.items()
                         if m.layer and m.gradients and not m.input_resolution)
LAYER_METHODS = tuple(n for n, m in METHODS.items() if m.layer and not m.input_resolution)
INPUT_METHODS = tuple(n for n, m in METHODS.items() if m.input_resolution and not m.captum)
CAPTUM_METHODS = tuple(n for n, m in METHODS.items() if m.captum)


def _methods_table() -> str:
    rows = [("method", "map (before any post-processing)", "cost", "reference")]
    rows += [(n, m.formula, m.cost, m.reference) for n, m in METHODS.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    rule = "  ".join("=" * w for w in widths)
    fmt = [("  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]
    return "\n".join([rule, fmt[0], rule, *fmt[1:], rule])


__doc__ = __doc__.replace("@METHODS_TABLE@", _methods_table())


# --------------------------------------------------------------------------- public API

def compute(model: nn.Module, x: torch.Tensor, layer: nn.Module | str | None = None,
            method: str = "gradcam", target: Target = None, *, batch_size: int = 64,
            scorecam_align_corners: bool = True, progress: bool = False,
            captum_kwargs: dict | None = None, options: dict | None = None) -> torch.Tensor:
    """The class activation map of ``model`` for the images ``x`` (N, C, H, W): one method, one
    layer.

    Returns a float tensor (N, h, w) at ``layer``'s resolution, signed and not normalised, on
    ``x``'s device (``guidedbackprop``, ``guidedgradcam`` and the Captum methods return input
    attributions (N, C, H, W)). For several methods or layers use :func:`compute_many` (a list
    here is an error that says so).

    ``layer``: a module of the model or a dotted name; None picks the last module to finish
    whose output is a 4-D feature map with h*w > 1 and that runs once (torchcam's rule; found
    with one extra forward pass of x[:1]): ``layer4`` on torchvision's ResNets, ``features`` on
    its DenseNets and EfficientNets, ``inception5b`` on GoogLeNet, ``avgpool`` on its VGGs and
    AlexNet (their adaptive pool, the identity on ``features``' map at 224 px), ``features`` on
    a VGG-style net whose classifier flattens it. ``target``: None (the predicted
    class), an int (also a NumPy or 0-d torch integer), one int per image, a callable mapping
    the model's raw output (a tensor, or the tuple / dict it returns) to one score per image, or
    one callable per image taking that image's output (pytorch-grad-cam's targets, e.g.
    ``ClassifierOutputTarget``). ``options``: per-method options, e.g.
    ``{"eigencam": {"sign": "svd"}}`` (see ``help(cam.METHODS[name])``). ``batch_size`` bounds
    the batches of Score-CAM's masked inputs, Ablation-CAM's ablated activations and
    occlusion's occluded images (on the CPU Score-CAM and occlusion take fewer, sized to the
    cache: :func:`fast_path`); ``scorecam_align_corners`` is
    ``options={"scorecam": {"align_corners": ...}}``.

    Runs inside the caller's ``torch.no_grad()``; inside ``torch.inference_mode()`` only the
    gradient-free methods do (cam, eigencam, scorecam, ablationcam, occlusion).
    """
    if isinstance(method, (list, tuple)) or isinstance(layer, (list, tuple)):
        raise CAMError("cam.compute returns one map (N, h, w) for one method and one layer; for "
                       "several methods or layers call cam.compute_many(model, x, layers, "
                       "methods, target), which returns maps[method][layer_name]")
    maps = compute_many(model, x, layer, method, target, batch_size=batch_size,
                        scorecam_align_corners=scorecam_align_corners, progress=progress,
                        captum_kwargs=captum_kwargs, options=options)
    return next(iter(maps[method].values()))


def compute_many(model: nn.Module, x: torch.Tensor,
                 layers: nn.Module | str | Sequence[nn.Module | str] | None,
                 methods: str | Sequence[str], target: Target = None, *, batch_size: int = 64,
                 scorecam_align_corners: bool = True, progress: bool = False,
                 captum_kwargs: dict | None = None, options: dict | None = None
                 ) -> dict[str, dict[str, torch.Tensor]]:
    """Maps of several methods at several layers: ``maps[method][layer_name]``, each as
    :func:`compute` returns it, from one shared forward and backward pass.

    ``layers`` and ``methods`` are lists (a single name is a list of one); ``layer_name`` is
    the module's dotted name. Methods without a layer (guidedbackprop, Captum) appear under
    every layer name (the same tensor), or under ``"input"`` when ``layers`` is None and no
    method needs a layer. Other arguments as in :func:`compute`.
    """
    methods = list(methods) if isinstance(methods, (list, tuple)) else [methods]
    many = isinstance(layers, (list, tuple))
    layers = list(layers) if many else [layers]
    _check_methods(methods)
    if not layers:
        raise CAMError("layers is an empty list: pass at least one layer (a dotted name such as "
                       "'layer4' or a module), or None for the default layer")
    opts = _method_options(options, scorecam_align_corners)
    specs = [METHODS[m] for m in methods]
    x = _check_input(model, x)
    _check_scripted(model, [s.name for s in specs if s.hooks])
    grad_methods = [s.name for s in specs if s.gradients]
    if grad_methods and torch.is_inference_mode_enabled():
        free = ", ".join(n for n, m in METHODS.items() if not m.gradients)
        raise CAMError(
            f"method(s) {grad_methods} need gradients, but cam was called inside "
            "torch.inference_mode(), where autograd records nothing (not even under "
            "torch.enable_grad()). Call it outside the inference_mode block; torch.no_grad() "
            "around it is fine (the engine switches autograd on only where it needs it), or use "
            f"a gradient-free method ({free})")
    needs_layer = any(s.layer for s in specs)

    with _model_state(model):
        if needs_layer and any(lay is None for lay in layers):
            default = _default_layer(model, x)
            layers = [default if lay is None else lay for lay in layers]
        modules = [resolve_layer(model, lay) if lay is not None else None for lay in layers]
        _check_scripted(model, [s.name for s in specs if s.hooks], modules)
        names = [layer_name(model, m) if m is not None else "input" for m in modules]
        if len(set(names)) != len(names):
            raise CAMError(f"layer list {names} names a layer twice")
        maps = _Engine(model, x, modules, names, target, batch_size, progress,
                       captum_kwargs or {}, opts).run(specs)
    for m, per_layer in maps.items():
        for n, t in per_layer.items():
            if not torch.isfinite(t).all():
                raise CAMError(f"the {m} map at layer {n!r} holds NaN or Inf: check the model's "
                               "output for this input (a non-finite score or activation)")
    return maps


def postprocess(maps: torch.Tensor, size: int | tuple[int, int] | None = None, relu: bool = True,
                mode: str = "bilinear", normalize: str = "minmax", preset: str | None = None
                ) -> torch.Tensor:
    """Turn raw maps (N, h, w) into display maps (N, H, W): ReLU, resize, normalise, in that order.

    ``mode``: ``bilinear`` (align_corners=False), ``nearest`` or ``bicubic``. ``normalize``:
    ``minmax`` (per image, to [0, 1]), ``max`` (divide by the per-image max) or ``none``. A
    constant map normalises to zeros, never NaN. ``preset="pytorch-grad-cam"`` is that
    library's post-processing (ReLU, per-image min-max with its 1e-7, bilinear resize).
    """
    if preset is not None:
        if preset != PGC_PRESET:
            raise CAMError(f"unknown preset {preset!r}; the one preset is {PGC_PRESET!r}")
        relu, mode, normalize = True, "bilinear", "pgc"
    if maps.dim() != 3:
        raise CAMError(f"postprocess expects maps of shape (N, h, w), got {tuple(maps.shape)}; "
                       "for input attributions (N, C, H, W) sum or take |.| over C first")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise CAMError(f"mode must be 'bilinear', 'nearest' or 'bicubic', got {mode!r}")
    if normalize not in ("minmax", "max", "none", "pgc"):
        raise CAMError(f"normalize must be 'minmax', 'max' or 'none', got {normalize!r}")
    out = maps.float()
    if relu:
        out = out.clamp(min=0)
    if normalize == "pgc":  # pytorch-grad-cam normalises, then resizes, then normalises again
        out = _minmax(out, eps=1e-7)
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        kw = {} if mode == "nearest" else {"align_corners": False}
        out = F.interpolate(out[:, None], size=size, mode=mode, **kw)[:, 0]
    if normalize in ("minmax", "pgc"):
        out = _minmax(out, eps=1e-7 if normalize == "pgc" else 0.0)
    elif normalize == "max":
        peak = out.flatten(1).amax(1).view(-1, 1, 1)
        out = torch.where(peak > 0, out / peak.clamp(min=torch.finfo(out.dtype).tiny), 0.0)
    return out


# --------------------------------------------------------------------------- engine

@dataclass
class _Capture:
    """What the forward hook of one target layer saw."""
    activation: torch.Tensor | None = None
    calls: int = 0


class _Engine:
    def __init__(self, model, x, modules, names, target, batch_size, progress, captum_kwargs,
                 options):
        self.model, self.x, self.modules, self.names = model, x, modules, names
        self.target, self.batch_size, self.progress = target, batch_size, progress
        self.captum_kwargs, self.options = captum_kwargs, options
        self.scorer: Callable[[object, torch.Tensor], torch.Tensor] | None = None
        self.classes: torch.Tensor | None = None
        self._guided: torch.Tensor | None = None
        self.levers = dict(_LEVERS)  # the fast path's levers as they were when called
        self.output = None
        self._fast: _FastForward | None = None
        self._fast_grad: _FastForward | None = None
        self._guided_output = None

    def images_per_pass(self) -> int:
        pixels = self.levers["cpu_pixels_per_pass"]
        if pixels is None or self.x.device.type != "cpu":
            return self.batch_size
        return max(1, min(self.batch_size, pixels // (self.x.shape[-2] * self.x.shape[-1])))

    def fast(self, grad: bool = False) -> _FastForward:
        """The fast forward pass, built at first use and shared by the methods of the call;
        built outside inference mode, so that methods with gradients can use it too. For passes
        with gradients alone (``grad``) it is built without the levers that act only without
        them (``onednn_fusion``, ``winograd``): their weight layouts and checks would be work
        for nothing."""
        if self._fast is None and grad:
            if self._fast_grad is None:
                levers = {**self.levers, "onednn_fusion": False, "winograd": False}
                with torch.inference_mode(False), torch.no_grad():
                    self._fast_grad = _FastForward(self.model, self.x, self.output, levers)
            return self._fast_grad
        if self._fast is None:
            with torch.inference_mode(False), torch.no_grad():
                self._fast = _FastForward(self.model, self.x, self.output, self.levers)
        return self._fast

    def run(self, specs):
        maps: dict[str, dict[str, torch.Tensor]] = {s.name: {} for s in specs}
        if any(s.layer for s in specs):
            need_grad = any(s.layer and s.gradients for s in specs)
            acts, grads, output = self._forward(need_grad)
        elif all(s.name == "guidedbackprop" for s in specs):
            # its own pass gives the output (the guided ReLUs are the identity going forward):
            # one forward, as Captum's, not two
            self.guided_backprop()
            output = self._guided_output
            acts = grads = [None] * len(self.names)
        else:
            with torch.no_grad():
                output = self.model(self.x)
            acts = grads = [None] * len(self.names)
        self.output = output
        self._set_scorer(output)
        for s in specs:
            opts = self.options.get(s.name, {})
            if s.layer:
                for n, mod, a, g in zip(self.names, self.modules, acts, grads):
                    ctx = Context(self.model, self.x, output, mod, n, opts, self)
                    maps[s.name][n] = s(a, g, ctx)
            else:
                t = s(None, None, Context(self.model, self.x, output, None, None, opts, self))
                for n in self.names:
                    maps[s.name][n] = t
        return maps

    def _forward(self, need_grad: bool):
        """One forward pass capturing every target layer's output; gradients of the summed
        target scores w.r.t. those outputs. Below the first layer autograd is off."""
        captures = [_Capture() for _ in self.modules]

        def make_hook(cap):
            def hook(module, inputs, output):
                if not isinstance(output, torch.Tensor) or output.dim() != 4:
                    raise CAMError(f"target layer {type(module).__name__} returns "
                                   f"{_describe(output)}; CAMs need a 4-D feature map (N, K, h, w)"
                                   "; pick a convolutional layer or block")
                cap.calls += 1
                if need_grad:
                    torch.set_grad_enabled(True)  # restored when the no_grad block exits
                    act = output if output.requires_grad else output.detach().requires_grad_(True)
                else:
                    act = output.detach()
                cap.activation = act
                # a clone, so that in-place ops downstream (ReLU(inplace=True)) leave A intact
                return act.clone()
            return hook

        handles = [m.register_forward_hook(make_hook(c)) for m, c in zip(self.modules, captures)]
        try:
            with torch.no_grad():
                output = self.model(self.x)
        finally:
            for h in handles:
                h.remove()
        for n, c in zip(self.names, captures):
            if c.calls == 0:
                raise CAMError(f"layer {n!r} did not run in the forward pass, so it has no "
                               "activations; pick a layer on the path from the input to the output")
            if c.calls > 1:
                raise CAMError(f"layer {n!r} runs {c.calls} times in one forward pass (a shared "
                               "module, e.g. a ReLU reused inside a block); pick a layer that runs "
                               "once, such as the enclosing block")
        acts = [c.activation for c in captures]
        if not need_grad:
            return acts, [None] * len(acts), output
        # the caller may be inside torch.no_grad(), which the block above restored
        with torch.enable_grad():
            scores = self._scores_for_output(output)
            if not scores.requires_grad:
                raise CAMError(f"the target score does not depend on layer(s) {self.names}: no "
                               "target layer is on the path from the input to the output")
            grads = torch.autograd.grad(scores.sum(), acts, allow_unused=True)
        for n, g in zip(self.names, grads):
            if g is None:
                raise CAMError(f"layer {n!r} is not on the path to the output (its gradient is "
                               "None); pick a layer whose output the prediction depends on")
        return [a.detach() for a in acts], list(grads), _tree_map(torch.Tensor.detach, output)

    # -- targets
    def _set_scorer(self, output):
        """Fix the target once, from the unperturbed output: a class per image, a callable on
        the whole output, or one callable per image."""
        target = self.target
        n = self.x.shape[0]
        if callable(target) and not isinstance(target, torch.Tensor):
            def scorer(out, idx):
                s = target(out)
                if not isinstance(s, torch.Tensor) or s.shape != (len(idx),):
                    raise CAMError(f"a callable target must return one score per image, shape "
                                   f"({len(idx)},); it returned {_describe(s)}")
                return s
            self.scorer = scorer
            return
        if isinstance(target, (list, tuple)) and any(callable(t) for t in target):
            self.scorer = _per_image_scorer(target, n)
            return
        if not isinstance(output, torch.Tensor):
            key = (f"out[{next(iter(output))!r}]" if isinstance(output, Mapping) and output
                   else "out[0]")
            raise CAMError(
                f"the model returns {_describe(output)}, not a logits tensor, so a class index "
                f"cannot pick its score: pass a callable target that maps the output to one score "
                f"per image, e.g. target=lambda out: {key}[:, c].mean((1, 2)) for a segmentation "
                f"map or target=lambda out: {key}[:, c] for logits")
        if output.dim() != 2:
            raise CAMError(f"the model's output has shape {tuple(output.shape)}; an int target "
                           "needs (N, classes) logits: pass a callable target instead")
        k = output.shape[1]
        if target is None:
            classes = output.argmax(1)
        elif _is_integer(target):
            classes = torch.full((n,), int(target), dtype=torch.long, device=output.device)
        else:
            try:
                classes = torch.as_tensor(target, device=output.device)
            except (TypeError, ValueError, RuntimeError):
                classes = None
            if (classes is None or classes.dtype.is_floating_point or classes.dtype == torch.bool
                    or classes.dim() != 1 or len(classes) != n):
                raise CAMError(f"target must be None, an int, one int per image ({n}), a "
                               f"callable or one callable per image; got {_describe(target)}")
            classes = classes.long()
        bad = (classes < 0) | (classes >= k)
        if bad.any():
            raise CAMError(f"target class {classes[bad][0].item()} is out of range: the model "
                           f"has {k} classes (0..{k - 1})")
        self.classes = classes
        self.scorer = lambda out, idx: out.gather(1, classes[idx].view(-1, 1))[:, 0]

    def _scores_for_output(self, output):
        if self.scorer is None:
            self._set_scorer(_tree_map(torch.Tensor.detach, output))
        return self.scorer(output, torch.arange(self.x.shape[0], device=self.x.device))

    def guided_backprop(self):
        """Guided Backpropagation (Springenberg et al.): at every nn.ReLU (and nn.ReLU6) module
        the backward pass keeps only positive gradients, and only where the unit is active.
        Captum's GuidedBackprop treats nn.ReLU only; functional ReLUs are not seen by either."""
        if self._guided is not None:
            return self._guided
        x = self.x.detach().requires_grad_(True)
        relus = [m for m in self.model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
        handles = [m.register_forward_hook(lambda mod, i, o: _GuidedReLU.apply(o)) for m in relus]
        try:
            with torch.enable_grad():
                output = self.model(x)
                scores = self._scores_for_output(output)
                (grad,) = torch.autograd.grad(scores.sum(), x)
        finally:
            for h in handles:
                h.remove()
        self._guided, self._guided_output = grad, _tree_map(torch.Tensor.detach, output)
        return grad


def _per_image_scorer(targets, n):
    """Scores from one callable per image (pytorch-grad-cam's target objects): callable i gets
    image i's output (every batch-sized tensor of the output indexed at that image) and returns
    one score."""
    if not all(callable(t) for t in targets):
        raise CAMError("target mixes callables and class indices: pass one callable per image, "
                       "or class indices only")
    if len(targets) != n:
        raise CAMError(f"target holds {len(targets)} per-image callables for {n} images: pass "
                       "one per image")

    def scorer(out, idx):
        rows = len(idx)
        scores = []
        for j, i in enumerate(idx.tolist()):
            s = targets[i](_tree_map(lambda t: t[j] if t.dim() and t.shape[0] == rows else t,
                                     out))
            if not isinstance(s, torch.Tensor) or s.numel() != 1:
                raise CAMError(f"the per-image target {i} must return one score (a scalar "
                               f"tensor); it returned {_describe(s)}")
            scores.append(s.reshape(()))
        return torch.stack(scores)
    return scorer


def _captum_forward(ctx, grad: bool):
    """The forward function and class indices for Captum: class indices are passed to Captum
    (which expands them with its batches); a callable target becomes part of the forward. The
    passes go through the fast path; gradient-free ones return ordinary tensors (Captum
    works on them outside inference mode)."""
    target = ctx.target
    if grad:
        def model(inp):
            return ctx.forward(inp, grad=True)
    else:
        def model(inp):
            return _tree_map(lambda t: t.clone() if t.is_inference() else t, ctx.forward(inp))
    if ctx.classes is not None:
        return model, ctx.classes
    if isinstance(target, (list, tuple)):
        # Captum re-batches (steps x images, windows, samples): a per-image callable list
        # cannot follow the rows
        raise CAMError("the Captum methods need class indices or one callable on the whole "
                       "output, not one callable per image: pass target=[c_1, ..., c_N] or "
                       "target=lambda out: ... (one score per row)")
    return (lambda inp: target(model(inp))), None


class _GuidedReLU(torch.autograd.Function):
    """Identity on ReLU outputs whose backward keeps positive gradients at positive units."""

    @staticmethod
    def forward(ctx, out):
        ctx.save_for_backward(out)
        return out.clone()

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad.clamp(min=0) * (out > 0).to(grad.dtype)


class _Tail:
    """The part of the model above one layer, as a function of that layer's output.

    torch.fx splits the graph at the layer; values from below it that the upper part also
    needs (skip connections) are computed once and repeated. The upper part runs through the
    fast path (:func:`fast_path`: batch-norm folded, channels-last) when that reproduces the
    model's output, else as it is. A model that fx cannot trace falls back to running the whole
    model with the layer's output replaced (correct, but slower).
    """

    def __init__(self, model, name, x, a, output, levers=None):
        self.model, self.name, self.x = model, name, x
        self.graph_module, self.externals = None, []
        self.channels_last = False
        levers = dict(_LEVERS if levers is None else levers)
        try:
            self._split()
        except Exception:  # untraceable model: fall back to the full forward pass
            return
        for fast in (True, False):  # the fast upper part, else the plain one
            if fast and not (levers["fold_batchnorm"] or levers["channels_last"]
                             or levers["onednn_fusion"] or levers["winograd"]):
                continue
            try:
                self.graph_module = _graph_module(
                    self._modules_root, self._graph, fold=fast and levers["fold_batchnorm"],
                    channels_last=fast and levers["channels_last"] and _cl_ok(x),
                    fuse=fast and levers["onednn_fusion"],
                    winograd=fast and levers["winograd"])
                self.channels_last = fast and levers["channels_last"] and _cl_ok(x)
                if _checks_out(lambda: self._run_fx(a, torch.arange(len(a), device=a.device)),
                               output, self.graph_module):
                    return
            except Exception:
                pass
        self.graph_module, self.channels_last = None, False

    def _split(self):
        import torch.fx as fx

        target_name = self.name
        graph = _trace(self.model, leaves={target_name}, inside=target_name)
        nodes = [nd for nd in graph.nodes if nd.op == "call_module" and nd.target == target_name]
        if len(nodes) != 1:
            raise RuntimeError("layer not found once in the traced graph")
        cut = nodes[0]
        order = list(graph.nodes)
        downstream = {cut}
        for nd in order[order.index(cut) + 1:]:
            if any(arg in downstream for arg in nd.all_input_nodes):
                downstream.add(nd)
        out_node = next(nd for nd in order if nd.op == "output")
        needed = {nd for nd in downstream if nd is not cut}
        externals = []
        for nd in order:
            if nd in needed or nd is out_node:
                for arg in nd.all_input_nodes:
                    if arg.op == "get_attr":  # parameters and buffers: copy, not per-image
                        needed.add(arg)
                    elif arg not in downstream and arg not in externals:
                        externals.append(arg)
        new = fx.Graph()
        env = {cut: new.placeholder("activation")}
        for j, ext in enumerate(externals):
            env[ext] = new.placeholder(f"external_{j}")
        for nd in order:
            if nd in needed:
                env[nd] = new.node_copy(nd, lambda arg: env[arg])
        new.output(fx.map_arg(out_node.args[0], lambda arg: env[arg]))
        self._graph, self._modules_root = new, self.model
        if externals:  # values below the cut that the upper part reads: compute them once
            head = fx.Graph()
            henv = {}
            for nd in order:
                if nd.op == "output":
                    break
                henv[nd] = head.node_copy(nd, lambda arg: henv[arg])
            head.output(tuple(henv[e] for e in externals))
            with torch.no_grad():
                values = fx.GraphModule(self.model, head)(self.x)
            n = len(self.x)
            for v in values:
                if not (isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n):
                    raise RuntimeError("an external value is not per-image")
            self.externals = list(values)

    def _run_fx(self, batch, image_index):
        ext = [e[image_index] for e in self.externals]
        if self.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return self.graph_module(batch, *ext)

    def __call__(self, batch, i):
        if self.graph_module is not None:
            idx = torch.full((len(batch),), i, device=batch.device)
            return self._run_fx(batch, idx)
        module = resolve_layer(self.model, self.name)
        handle = module.register_forward_hook(lambda m, inp, out: batch)
        try:
            return self.model(self.x[i:i + 1].expand(len(batch), *self.x.shape[1:]))
        finally:
            handle.remove()


# --------------------------------------------------------------------------- the fast path

#: pixels per pass of masked inputs / occluded images on the CPU: 32 images of 112 x 112, 8 of
#: 224 x 224. Measured (ResNet18, one thread, CPU time per image, paired rounds): at 112 px
#: batches of 32 were ~8 % faster than 64, at 224 px batches of 8 ~11 % faster than 64 (the
#: activations of a batch stay in the cache)
CPU_PIXELS_PER_PASS = 32 * 112 * 112

#: the levers of the fast path of the methods bound by forward passes; :func:`fast_path`
#: switches them for a block (the benchmark and the cost chapter measure each one)
_LEVERS: dict = {"channels_last": True, "fold_batchnorm": True, "inference_mode": False,
                 "cpu_pixels_per_pass": CPU_PIXELS_PER_PASS, "share_first_conv": True,
                 "onednn_fusion": True, "winograd": True}


@contextlib.contextmanager
def fast_path(channels_last: bool = True, fold_batchnorm: bool = True,
              inference_mode: bool = False,
              cpu_pixels_per_pass: int | None = CPU_PIXELS_PER_PASS,
              share_first_conv: bool = True, onednn_fusion: bool = True,
              winograd: bool = True):
    """Within the block, the methods bound by forward passes (Score-CAM's masked inputs,
    Ablation-CAM's passes of the layers above its layer, Captum's occlusion, Integrated
    Gradients and Gradient SHAP) use these levers, the defaults being the engine's own:

    ``channels_last``: inputs and convolution weights in channels-last memory format, on the
    CPU for float32 (where oneDNN's convolutions are faster in it);
    ``fold_batchnorm``: each eval-mode BatchNorm2d that only follows a Conv2d is folded into it
    (as ``torch.nn.utils.fusion.fuse_conv_bn_eval``): one convolution instead of two passes
    over the feature map;
    ``inference_mode``: gradient-free passes under ``torch.inference_mode()`` rather than
    ``torch.no_grad()`` (off by default: no gain was measured, see ``python -m lib.bench
    --levers``);
    ``cpu_pixels_per_pass``: on the CPU, Score-CAM's masked inputs and occlusion's occluded
    images go ``cpu_pixels_per_pass // (H * W)`` at a time (at most ``batch_size``; None: always
    ``batch_size``);
    ``share_first_conv``: Score-CAM's masked inputs x * m_k share the model's first convolution.
    A mask is a combination of the h*w up-sampled unit maps B_j of the layer (bilinear
    up-sampling is linear and its B_j sum to 1), m_k = sum_j c_kj B_j with
    c_kj = (A_k[j] - min_k) / (max_k - min_k + eps); a convolution is linear, so
    conv(x * m_k) = sum_j c_kj conv_no_bias(x * B_j) + bias: h*w convolutions per image instead
    of one per channel, then a matrix product. Used where the input feeds only that Conv2d (zero
    padding), the model's root has no hooks, and the product costs less than half the
    convolution; checked against the model's output on x;
    ``onednn_fusion``: on the CPU, in float32 and channels-last, gradient-free passes run each
    convolution of the copy through oneDNN with its weights reordered once into oneDNN's own
    layout (``torch.ops.mkldnn._convolution_pointwise``, as torch.compile's CPU back end does),
    with a ReLU that alone follows it, or an addition then a ReLU (a residual block's end),
    computed in the same call. Passes with gradients (Integrated Gradients, Gradient SHAP) and
    other devices run the plain convolution, addition and ReLU;
    ``winograd``: on the CPU, in float32 and channels-last, gradient-free passes run the 3x3
    convolutions of stride 1 that are wide in channels and small in space (ResNet18's layer3
    and layer4 at 112 px) by Winograd's F(4x4, 3x3) (:mod:`lib.winograd`): a quarter of the
    multiplications, the same result to float32 rounding (the copy's output on the images is
    checked against the model's, as for every lever).

    ``fast_path(False, False, False, None, False, False, False)`` is the plain path. The model
    is never changed:
    folded and channels-last convolutions are new modules in a torch.fx copy of the graph that
    shares every other module, tensor and hook of the model, used only where its output on the
    images equals the model's (rtol 1e-4); modules with hooks are kept as they are, so that the
    hooks see what they expect.
    """
    if cpu_pixels_per_pass is not None and (isinstance(cpu_pixels_per_pass, bool)
                                            or not isinstance(cpu_pixels_per_pass, int)
                                            or cpu_pixels_per_pass < 1):
        raise CAMError(f"cpu_pixels_per_pass must be a positive int or None, got "
                       f"{cpu_pixels_per_pass!r}")
    old = dict(_LEVERS)
    _LEVERS.update(channels_last=bool(channels_last), fold_batchnorm=bool(fold_batchnorm),
                   inference_mode=bool(inference_mode), cpu_pixels_per_pass=cpu_pixels_per_pass,
                   share_first_conv=bool(share_first_conv),
                   onednn_fusion=bool(onednn_fusion), winograd=bool(winograd))
    try:
        yield dict(_LEVERS)
    finally:
        _LEVERS.clear()
        _LEVERS.update(old)


def _cl_ok(x: torch.Tensor) -> bool:
    """Channels-last pays on the CPU for float32 (oneDNN); elsewhere it is not measured here."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4


def _hooked(module: nn.Module) -> bool:
    return any(getattr(module, h, None) for h in (
        "_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
        "_state_dict_hooks", "_load_state_dict_pre_hooks"))


def _trace(model: nn.Module, leaves=(), inside: str | None = None):
    """The torch.fx graph of ``model`` with the modules named in ``leaves`` kept whole. A
    sub-module with Python control flow on shapes or values cannot be traced through; it is
    kept whole as a leaf (called as is) unless it contains the module named ``inside``."""
    import torch.fx as fx

    leaves = set(leaves)

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return qualname in leaves or super().is_leaf_module(m, qualname)

    for _ in range(32):
        tracer = Tracer()
        try:
            return tracer.trace(model)
        except Exception:
            stack = [path for path in getattr(tracer, "module_stack", {}) if path]
            culprit = stack[-1] if stack else ""
            if not culprit or culprit in leaves or (inside or "").startswith(culprit + "."):
                raise
            leaves.add(culprit)
    raise RuntimeError("too many untraceable sub-modules")


def _graph_module(model: nn.Module, graph, fold: bool, channels_last: bool, fuse: bool = False,
                  winograd: bool = False):
    """A GraphModule running (a copy of) ``graph``, traced from ``model``, on the model's own
    modules and tensors, shared, not copied; only convolutions are new: with the batch-norm
    that only follows them folded in (``fold``), with channels-last weights
    (``channels_last``), run by oneDNN with a following ReLU or addition + ReLU (``fuse``,
    see :class:`_OneDNNConv`), 3x3 ones by Winograd's algorithm where that is faster
    (``winograd``). Modules with hooks, and modules whose attributes the graph reads
    directly, are kept as they are; the convolution fed by the input is not fused (the shared
    first convolution of Score-CAM splits the graph there)."""
    import copy

    import torch.fx as fx

    graph = copy.deepcopy(graph)
    # oneDNN reorders the weights it runs into its own layout, Winograd transforms them: a
    # channels-last copy of them would be written for nothing (and writing it costs ~12x a
    # plain scaling), so folded weights stay as they are there
    layout = (torch.channels_last if channels_last and not (fuse or winograd)
              else torch.preserve_format)
    modules = dict(model.named_modules())
    attrs = [nd.target for nd in graph.nodes if nd.op == "get_attr"]
    root: dict[str, object] = {t: _get_attr(model, t) for t in attrs}

    def own(name):  # a module that may be replaced
        m = modules.get(name)
        return (m is not None and not _hooked(m)
                and not any(t.startswith(name + ".") for t in attrs))

    count = 0
    for nd in list(graph.nodes):
        if nd.op == "call_module":
            root.setdefault(nd.target, modules[nd.target])
    for nd in list(graph.nodes):
        if not (fold and nd.op == "call_module" and type(modules.get(nd.target)) is nn.BatchNorm2d
                and len(nd.args) == 1 and not nd.kwargs):
            continue
        prev, bn = nd.args[0], modules[nd.target]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module"
                and type(modules.get(prev.target)) is nn.Conv2d and len(prev.users) == 1
                and own(prev.target) and own(nd.target) and not bn.training
                and bn.track_running_stats and bn.running_mean is not None
                and not modules[prev.target].training):
            continue
        fused = _fold_conv_bn(modules[prev.target], bn, layout)
        name = f"_fast_conv_{count}"
        count += 1
        root[name] = fused
        prev.target = name
        nd.replace_all_uses_with(prev)
        graph.erase_node(nd)
    if channels_last:
        for nd in graph.nodes:
            if nd.op != "call_module" or not isinstance(root[nd.target], nn.Conv2d):
                continue
            if nd.target.startswith("_fast_conv_") or not own(nd.target):
                continue  # folded (already channels-last), or to be kept as it is
            conv = _copy_conv(root[nd.target])
            conv.weight = nn.Parameter(
                conv.weight.detach().contiguous(memory_format=torch.channels_last),
                requires_grad=False)
            name = f"_fast_conv_{count}"
            count += 1
            root[name] = conv
            nd.target = name
    if (fuse or winograd) and channels_last and hasattr(torch.ops.mkldnn,
                                                        "_convolution_pointwise"):
        _fuse_onednn(graph, root, own, onednn=fuse, winograd=winograd)
    return fx.GraphModule(root, graph)


def _is_relu(nd, root: dict, own) -> bool:
    if nd.op == "call_function" and nd.target in (F.relu, torch.relu, torch.relu_):
        return len(nd.args) == 1
    if nd.op == "call_method" and nd.target in ("relu", "relu_"):
        return len(nd.args) == 1 and not nd.kwargs
    return (nd.op == "call_module" and type(root.get(nd.target)) is nn.ReLU and own(nd.target)
            and len(nd.args) == 1 and not nd.kwargs)


def _fuse_onednn(graph, root: dict, own, onednn: bool = True, winograd: bool = False) -> None:
    """Replace, in ``graph``, each new convolution (not the first) by an :class:`_OneDNNConv`,
    taking in the ReLU that alone follows it, or the addition and the ReLU that follow it
    (with ``onednn`` False, only the convolutions that Winograd's algorithm computes)."""
    import operator

    inputs = {nd for nd in graph.nodes if nd.op == "placeholder"}
    count = 0
    for nd in list(graph.nodes):
        if nd.op != "call_module" or not nd.target.startswith("_fast_conv_"):
            continue
        conv = root[nd.target]
        if (type(conv) is not nn.Conv2d or conv.padding_mode != "zeros"
                or isinstance(conv.padding, str) or len(nd.args) != 1 or nd.kwargs
                or nd.args[0] in inputs or not (onednn or (winograd and _winograd_may_pay(conv)))):
            continue
        users = list(nd.users)
        one = users[0] if len(users) == 1 else None
        name = f"_onednn_conv_{count}"
        if one is not None and _is_relu(one, root, own):
            root[name] = _OneDNNConv(conv, "relu", onednn, winograd)
            with graph.inserting_after(one):
                new = graph.call_module(name, (nd.args[0],))
            one.replace_all_uses_with(new)
            graph.erase_node(one)
            graph.erase_node(nd)
        elif (one is not None and one.op == "call_function"
              and one.target in (operator.add, torch.add) and len(one.args) == 2
              and not one.kwargs and len(one.users) == 1
              and _is_relu(next(iter(one.users)), root, own)):
            other = one.args[1] if one.args[0] is nd else one.args[0]
            if not isinstance(other, type(nd)) or other is nd:
                continue
            relu = next(iter(one.users))
            root[name] = _OneDNNConv(conv, "add-relu", onednn, winograd)
            with graph.inserting_after(relu):
                new = graph.call_module(name, (nd.args[0], other))
            relu.replace_all_uses_with(new)
            graph.erase_node(relu)
            graph.erase_node(one)
            graph.erase_node(nd)
        else:
            root[name] = _OneDNNConv(conv, None, onednn, winograd)
            nd.target = name
        count += 1
    graph.lint()


class _OneDNNConv(nn.Module):
    """A convolution (with ``then`` None, "relu" or "add-relu": relu(conv(x) + other)) that,
    without gradients on a float32 CPU tensor, runs as one oneDNN call on weights reordered once
    into oneDNN's layout (for the first input's size; any size runs; ``onednn``), or, where
    :func:`_winograd_pays` says so, by Winograd's F(4x4, 3x3) on weights transformed once
    (``winograd``, :mod:`lib.winograd`); otherwise as PyTorch's convolution, addition and
    ReLU."""

    def __init__(self, conv: nn.Conv2d, then: str | None, onednn: bool = True,
                 winograd: bool = False):
        super().__init__()
        self.conv, self.then = conv, then
        self.onednn, self.winograd = onednn, winograd and _winograd_may_pay(conv)
        self.args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self._packed: torch.Tensor | None = None
        self._u: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        c = self.conv
        plain = (torch.is_grad_enabled() or x.device.type != "cpu" or x.dtype != torch.float32
                 or c.weight.dtype != torch.float32)
        bias = None if c.bias is None else c.bias.detach()
        if not plain and self.winograd and _winograd_pays(c, x):
            if self._u is None:
                self._u = _winograd.filter_transform(c.weight)
            return _winograd.conv3x3(x, self._u, bias, relu=self.then is not None, add=other)
        if plain or not self.onednn:
            y = c(x)
            if other is not None:
                y = y + other
            return torch.relu(y) if self.then else y
        mkldnn = torch.ops.mkldnn
        if self._packed is None:
            self._packed = mkldnn._reorder_convolution_weight(c.weight.detach(), *self.args,
                                                              list(x.shape))
        if self.then == "add-relu":
            return mkldnn._convolution_pointwise.binary(
                x, other, self._packed, bias, *self.args, "add", 1.0, "relu", [], None)
        return mkldnn._convolution_pointwise(x, self._packed, bias, *self.args,
                                             self.then or "none", [], None)


#: set by :func:`_checks_out` while it runs every Winograd-capable convolution by Winograd
_WINOGRAD_EVERYWHERE = [False]


def _checks_out(run: Callable, output, module: nn.Module) -> bool:
    """Whether ``run()`` (a copy's output on the images) equals the model's ``output``, as the
    copy runs for these images and, where it has convolutions that Winograd's algorithm may
    compute, with all of those computed by it: the few images of the check would otherwise leave
    them to the direct convolution, which the passes of many images do not."""
    with torch.no_grad():
        if not _allclose_tree(run(), output):
            return False
        if not any(isinstance(m, _OneDNNConv) and m.winograd for m in module.modules()):
            return True
        _WINOGRAD_EVERYWHERE[0] = True
        try:
            return _allclose_tree(run(), output)
        finally:
            _WINOGRAD_EVERYWHERE[0] = False


def _winograd_may_pay(conv: nn.Conv2d) -> bool:
    """A convolution Winograd's F(4x4, 3x3) computes (:func:`lib.winograd.applies`) with at
    least 256 channels in and out: below that, it lost to oneDNN's direct convolution on this
    project's 2-core AVX2 CPU at every size measured (``python -m lib.bench --winograd-shapes``;
    the transforms cost as much as the products they save)."""
    return (_winograd.applies(conv) and conv.in_channels >= 256
            and conv.out_channels >= 256)


def _winograd_pays(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """For such a convolution (:func:`_winograd_may_pay`), whether Winograd beat the direct
    convolution on this input there: at least 32 blocks of 4x4 outputs in the batch (the rows
    of its matrix products) and at least half of each block's outputs inside the image (a 2x2
    map fills a quarter: 0.5x)."""
    if _WINOGRAD_EVERYWHERE[0]:
        return True
    n, _, h, w = x.shape
    th, tw = (h + 3) // 4, (w + 3) // 4
    return n * th * tw >= 32 and 2 * h * w >= 16 * th * tw


def _fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, layout=torch.contiguous_format
                  ) -> nn.Conv2d:
    """One convolution computing bn(conv(x)) for an eval-mode batch-norm: weight W * s and
    bias (b - mu) * s + beta per output channel, s = gamma / sqrt(var + eps) (as
    ``torch.nn.utils.fusion.fuse_conv_bn_eval``, here written in ``layout`` in one pass)."""
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        bias = -bn.running_mean if conv.bias is None else conv.bias - bn.running_mean
        bias = bias * scale
        if bn.bias is not None:
            bias = bias + bn.bias
        w = conv.weight
        weight = torch.empty_like(w, memory_format=layout)
        torch.mul(w, scale.to(w.dtype).view(-1, *[1] * (w.dim() - 1)), out=weight)
    fused = _copy_conv(conv)
    fused.weight = nn.Parameter(weight, requires_grad=False)
    fused.bias = nn.Parameter(bias.to(w.dtype), requires_grad=False)
    return fused


def _copy_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A new Conv2d with the same settings and its own dict of parameters (shared until the
    caller replaces them), without copying the weights."""
    import copy

    new = copy.copy(conv)
    new._parameters = dict(conv._parameters)
    return new


def _get_attr(model: nn.Module, target: str):
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _share_root_hooks(fast: nn.Module, model: nn.Module) -> bool:
    """Let the copy run the model's own forward hooks (e.g. ones that count passes); False if
    the model has backward hooks on its root (the copy is then not used)."""
    if getattr(model, "_backward_hooks", None) or getattr(model, "_backward_pre_hooks", None):
        return False
    for attr in ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
                 "_forward_hooks_with_kwargs", "_forward_hooks_always_called"):
        if hasattr(model, attr):
            setattr(fast, attr, getattr(model, attr))
    return True


class _FastForward:
    """The model's forward pass through the fast path (see :func:`fast_path`), for the methods
    that run many: a torch.fx copy with batch-norm folded and channels-last convolutions, used
    only if its output on ``x`` equals the model's ``output`` (else channels-last inputs to the
    model itself, else the model as it is)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, output, levers=None):
        self.levers = dict(_LEVERS if levers is None else levers)
        self.model, self.module, self.channels_last = model, model, False
        cl = self.levers["channels_last"] and _cl_ok(x)
        candidates = []
        if self.levers["fold_batchnorm"] or cl:
            candidates.append(("graph", cl))
        if cl:
            candidates.append(("model", True))
        for kind, channels_last in candidates:
            try:
                if kind == "graph":
                    module = _graph_module(model, _trace(model), self.levers["fold_batchnorm"],
                                           channels_last, self.levers["onednn_fusion"],
                                           self.levers["winograd"])
                    if not _share_root_hooks(module, model):
                        continue
                else:
                    module = model
                self.module, self.channels_last = module, channels_last
                if _checks_out(lambda: self(x, grad=False), output, module):
                    return
            except Exception:
                pass
        self.module, self.channels_last = model, False

    @property
    def kind(self) -> str:
        """Which path runs: "graph" (the fast copy), "channels-last input" or "model"."""
        if self.module is not self.model:
            return "graph"
        return "channels-last input" if self.channels_last else "model"

    def no_grad(self):
        """The context of gradient-free passes: inference_mode or no_grad, as the lever says."""
        return torch.inference_mode() if self.levers["inference_mode"] else torch.no_grad()

    def __call__(self, inputs: torch.Tensor, grad: bool = False):
        if self.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if grad:
            return self.module(inputs)
        with self.no_grad():
            return self.module(inputs)

    def first_conv(self, x: torch.Tensor, output) -> _FirstConv | None:
        """The split of the fast copy after its first convolution (see :func:`fast_path`'s
        ``share_first_conv``), built once and checked on ``x``; None where it does not apply."""
        if not hasattr(self, "_first"):
            self._first = None
            if self.levers["share_first_conv"] and self.kind == "graph":
                try:
                    first = _FirstConv(self.module, self.model, self.channels_last)
                    # B = one all-ones map per image, c = the identity: the images themselves
                    eye = torch.eye(len(x), dtype=x.dtype, device=x.device)
                    if _checks_out(lambda: first(first.basis(x, torch.ones_like(x[:1, 0])), eye),
                                   output, first.rest):
                        self._first = first
                except Exception:
                    self._first = None
        return self._first


class _FirstConv:
    """A fast copy split after its first convolution: ``basis(x_i, B)`` is that convolution,
    without its bias, of the image x_i times each map B_j; ``self(basis, c)`` the model's
    output for the inputs x_i * sum_j c_kj B_j (one row per k): the combined convolution, its
    bias, then the rest of the graph."""

    def __init__(self, fast: nn.Module, model: nn.Module, channels_last: bool):
        import torch.fx as fx

        if _hooked(model):
            raise RuntimeError("the model's own hooks expect its input")
        graph = fast.graph
        inputs = [nd for nd in graph.nodes if nd.op == "placeholder"]
        if len(inputs) != 1 or len(inputs[0].users) != 1:
            raise RuntimeError("the input feeds more than one node")
        (conv_node,) = inputs[0].users
        conv = (fast.get_submodule(conv_node.target) if conv_node.op == "call_module" else None)
        if (type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or _hooked(conv)
                or conv_node.args != (inputs[0],) or conv_node.kwargs):
            raise RuntimeError("the input does not go to one plain Conv2d")
        self.conv, self.channels_last = conv, channels_last
        new = fx.Graph()
        env = {conv_node: new.placeholder("first_conv_output")}
        for nd in graph.nodes:
            if nd.op == "placeholder" or nd is conv_node:
                continue
            env[nd] = new.node_copy(nd, lambda arg: env[arg])
        self.rest = fx.GraphModule(fast, new)

    def worth_it(self, hw: int) -> bool:
        """The matrix product (h*w multiply-adds per output) at most half the convolution's
        (C_in * kh * kw / groups)."""
        c = self.conv
        return 2 * hw <= c.in_channels * c.kernel_size[0] * c.kernel_size[1] // c.groups

    def basis(self, x_i: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """conv_no_bias(x_i * B_j) for the maps B (J, H, W) of image x_i (1, C, H, W)."""
        inputs = x_i * maps[:, None]
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        c = self.conv
        return c._conv_forward(inputs, c.weight, None)

    def __call__(self, basis: torch.Tensor, coefficients: torch.Tensor):
        """The output for the inputs x_i * sum_j c_kj B_j, c (K, J) of the basis (J, C, H, W)."""
        j, ch, h, w = basis.shape
        coefficients = coefficients.to(basis.dtype)
        bias = self.conv.bias
        if bias is None:
            bias = torch.zeros(ch, dtype=basis.dtype, device=basis.device)
        # one matrix product that also adds the bias, so the output is written once
        if basis.is_contiguous(memory_format=torch.channels_last) and ch > 1:
            flat = basis.permute(0, 2, 3, 1).reshape(j, -1)  # (J, h*w*ch), channels fastest
            out = torch.addmm(bias.repeat(h * w)[None], coefficients, flat)
            out = out.view(-1, h, w, ch).permute(0, 3, 1, 2)
        else:
            out = torch.addmm(bias.repeat_interleave(h * w)[None], coefficients,
                              basis.reshape(j, -1)).view(-1, ch, h, w)
        return self.rest(out)


# --------------------------------------------------------------------------- helpers

def _weighted(alpha: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """sum_k alpha_k A_k for alpha (N, K) and A (N, K, h, w)."""
    return torch.einsum("nk,nkhw->nhw", alpha.to(a.dtype), a)


def _eigen_projection(a: torch.Tensor, sign: str = "sum") -> torch.Tensor:
    """A (pixels x channels, centred over pixels) projected on its first right singular vector,
    per image, in float64; the sign as in Eigen-CAM's entry (``"sum"`` or ``"svd"``)."""
    n, k, h, w = a.shape
    r = a.reshape(n, k, h * w).transpose(1, 2).double()
    r = r - r.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(r, full_matrices=False)
    v = vh[:, 0]
    if sign == "sum":
        proj = torch.einsum("npk,nk->np", r, v)
        ref = a.reshape(n, k, h * w).sum(1).double()
        ref = ref - ref.mean(1, keepdim=True)
        flip = (proj * ref).sum(1) < 0
    else:
        # numpy's SVD, in the activations' precision, as pytorch-grad-cam runs it; torch's SVD
        # returns the opposite sign for about a third of matrices
        dtype = np.float64 if a.dtype == torch.float64 else np.float32
        rn = a.detach().cpu().numpy().astype(dtype).reshape(n, k, h * w).transpose(0, 2, 1)
        rn = rn - rn.mean(1, keepdims=True)
        v_np = torch.from_numpy(np.linalg.svd(rn, full_matrices=False)[2][:, 0].astype(np.float64))
        flip = (v * v_np.to(v.device)).sum(1) < 0
    v = torch.where(flip[:, None], -v, v)
    return torch.einsum("npk,nk->np", r, v).reshape(n, h, w).to(a.dtype)


def _minmax(m: torch.Tensor, eps: float) -> torch.Tensor:
    flat = m.flatten(1)
    lo = flat.amin(1).view(-1, 1, 1)
    span = flat.amax(1).view(-1, 1, 1) - lo
    if eps:
        return (m - lo) / (span + eps)
    return torch.where(span > 0, (m - lo) / span.clamp(min=torch.finfo(m.dtype).tiny), 0.0)


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    """Seed torch (CPU and ``device``), NumPy's and Python's global generators for the block;
    restore all of them after, so the caller's random streams are untouched."""
    np_state, py_state = np.random.get_state(), random.getstate()
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _default_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The last module (in the order modules finish) whose output is a 4-D tensor with h*w > 1
    and that runs once, from a no-grad forward pass of x[:1] (torchcam's
    ``locate_candidate_layer`` rule, on the real input)."""
    seen: list[tuple[str, bool]] = []
    calls: dict[str, int] = {}

    def make_hook(name):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            seen.append((name, isinstance(output, torch.Tensor) and output.dim() == 4
                         and output.shape[-2] * output.shape[-1] > 1))
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    for name, spatial in reversed(seen):
        if spatial and calls[name] == 1:
            return name
    raise CAMError(f"no module of this {type(model).__name__} outputs a 4-D feature map "
                   f"(N, K, h, w) with h*w > 1, so there is no default target layer: pass "
                   f"layer= (a dotted name or a module); names: {_names(model)}")


def _method_options(options, align_corners) -> dict[str, dict]:
    """Every method's options, defaults filled in, ``options`` checked against the registry."""
    out = {n: {k: v[0] for k, v in m.options.items()} for n, m in METHODS.items()}
    out["scorecam"]["align_corners"] = align_corners
    if options is None:
        return out
    if not isinstance(options, Mapping):
        raise CAMError(f"options must be a dict {{method: {{option: value}}}}, e.g. "
                       f"{{'eigencam': {{'sign': 'svd'}}}}; got {_describe(options)}")
    for name, opts in options.items():
        if name not in METHODS:
            raise CAMError(f"options given for unknown method {name!r}; valid methods: "
                           f"{', '.join(METHODS)}")
        if not isinstance(opts, Mapping):
            raise CAMError(f"options[{name!r}] must be a dict of option -> value, got "
                           f"{_describe(opts)}")
        allowed = METHODS[name].options
        for key, value in opts.items():
            if key not in allowed:
                raise CAMError(f"{name} has no option {key!r}; its options: "
                               f"{', '.join(allowed) or 'none'}")
            if not any(value is v or (type(value) is type(v) and value == v)
                       for v in allowed[key]):
                raise CAMError(f"options[{name!r}][{key!r}] must be one of {allowed[key]}, got "
                               f"{value!r}")
            out[name][key] = value
    return out


def _check_methods(methods):
    if not methods:
        raise CAMError("methods is an empty list: pass at least one method, e.g. 'gradcam'; "
                       f"valid methods: {', '.join(METHODS)}")
    for m in methods:
        if not isinstance(m, str) or m not in METHODS:
            raise CAMError(f"unknown method {m!r}; valid methods: {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise CAMError(f"method list {methods} names a method twice")


def _check_input(model, x):
    if not isinstance(x, torch.Tensor):
        raise CAMError(f"x must be a torch.Tensor of images (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        hint = " (add a batch dimension: x[None])" if x.dim() == 3 else ""
        raise CAMError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}{hint}")
    if not x.dtype.is_floating_point:
        raise CAMError(f"x must be a floating-point tensor, got {x.dtype}: convert images with "
                       "x.float() / 255 and normalise them as the model expects")
    if x.shape[0] == 0:
        raise CAMError("x holds no images (batch size 0)")
    params = [p for p in model.parameters() if p.dtype.is_floating_point]
    if params and params[0].device != x.device:
        raise CAMError(f"x is on {x.device} but the model is on {params[0].device}; move one of "
                       "them (x.to(device) or model.to(device))")
    dtypes = {p.dtype for p in params}
    if dtypes and x.dtype not in dtypes:
        want = params[0].dtype
        fix = {torch.float32: "x.float()", torch.float64: "x.double()",
               torch.float16: "x.half()", torch.bfloat16: "x.bfloat16()"}.get(want, f"x.to({want})")
        conv = {torch.float64: "model.double()", torch.float32: "model.float()",
                torch.float16: "model.half()"}.get(x.dtype, f"model.to({x.dtype})")
        raise CAMError(f"x is {x.dtype} but the model's parameters are {want}: pass {fix}, or "
                       f"convert the model with {conv}")
    if x.is_inference() and not torch.is_inference_mode_enabled():
        x = x.clone()  # an inference tensor (made under inference_mode) cannot require grad
    return x.detach()


def _check_scripted(model, hooked_methods, modules=()):
    """Hooks cannot see inside TorchScript (torch.jit.trace / torch.jit.script): refuse early
    rather than report that the layer 'did not run'."""
    if not hooked_methods:
        return
    scripted = isinstance(model, torch.jit.ScriptModule)
    if not scripted:
        for mod in modules:
            if mod is None:
                continue
            name = layer_name(model, mod)
            parts = name.split(".") if name else []
            chain = [model.get_submodule(".".join(parts[:i])) for i in range(1, len(parts) + 1)]
            scripted = scripted or any(isinstance(m, torch.jit.ScriptModule) for m in chain)
    if scripted:
        raise CAMError(
            f"this model (or the part holding the layer) is TorchScript ({type(model).__name__}, "
            f"from torch.jit.trace or torch.jit.script): forward hooks cannot see inside a "
            f"compiled graph, so method(s) {hooked_methods} cannot read the layer's activations. "
            "Pass the eager nn.Module (the model before tracing / scripting)")


@contextlib.contextmanager
def _model_state(model: nn.Module):
    """Run in eval mode with frozen parameters; restore modes and requires_grad flags after,
    also on error."""
    # one walk of the module tree each (a walk costs ~1 ms on a ResNet: per call, that is a
    # visible share of a small model's Grad-CAM)
    modes = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    flags = [(p, p.requires_grad) for p in params]
    grads = [(p, p.grad) for p in params]
    model.eval()
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)
        for p, g in grads:
            p.grad = g


def _is_integer(obj) -> bool:
    """An int-like scalar: int, NumPy integer, 0-d integer tensor or array (not a bool)."""
    if isinstance(obj, bool | np.bool_):
        return False
    if isinstance(obj, numbers.Integral):
        return True
    if isinstance(obj, torch.Tensor | np.ndarray) and obj.ndim == 0:
        dtype = obj.dtype
        if isinstance(obj, torch.Tensor):
            return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool
        return np.issubdtype(dtype, np.integer)
    return False


def _tree_map(fn, obj):
    """``fn`` applied to every tensor of a model output (a tensor, or nested tuple / list /
    dict of them, named tuples included)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, Mapping):
        return type(obj)((k, _tree_map(fn, v)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_tree_map(fn, v) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_tree_map(fn, v) for v in obj)
    return obj


def _leaves(obj) -> list[torch.Tensor]:
    out = []
    _tree_map(out.append, obj)
    return out


def _allclose_tree(a, b) -> bool:
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(
        u.shape == v.shape and torch.allclose(u, v, rtol=1e-4, atol=1e-5 * (1 + v.abs().max()))
        for u, v in zip(la, lb))


def _describe(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, Mapping):
        return f"a {type(obj).__name__} with keys {list(obj)}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__}"


def _names(model) -> str:
    names = [n for n, _ in model.named_modules() if n]
    return ", ".join(names[-12:]) + (" ..." if len(names) > 12 else "")
