"""The CAM methods, each its paper's formula: a weighting of the layer's activations A
(N, K, h, w) given the gradients G = dY/dA, registered in :data:`lib.cam.registry.METHODS`.

``ctx`` (:class:`lib.cam.engine.Context`) gives what a formula needs besides A and G: the
images, the model's output, the target score of an output, and the model's forward pass (the
passes of Score-CAM, Ablation-CAM and Captum's methods go through it, so that an accelerator
can speed them up without a line here knowing).
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lib.cam.errors import CAMError
from lib.cam.postprocess import minmax
from lib.cam.registry import register

__all__: list[str] = []  # the methods are reached through the registry


@register(
    "cam",
    formula="sum_k w_k^c A_k, w the linear head after global average pooling",
    cost="1 forward",
    reference="Zhou et al. 2016 (CAM); Selvaraju et al. (w_k^c = Z alpha_k^c)",
)
def _cam(a, g, ctx):
    """CAM: the channels weighted by the class's weights in a linear head on GAP(A); the model
    must be exactly linear(GAP(A)) above the layer (checked)."""
    if ctx.classes is None:
        raise CAMError(
            "CAM needs a class index target (None, an int or one int per image), not a callable"
        )
    output = ctx.output
    linears = [m for m in ctx.model.modules() if isinstance(m, nn.Linear)]
    head = linears[-1] if linears else None
    if head is None or head.in_features != a.shape[1]:
        raise CAMError(
            f"CAM needs a model whose output is a linear layer applied to the global average "
            f"pool of layer {ctx.name!r} ({a.shape[1]} channels); this "
            f"{type(ctx.model).__name__} has "
            + (f"a last linear layer with {head.in_features} inputs" if head else "no linear layer")
            + ". Use method='gradcam', which equals CAM up to Z = h*w on such models"
        )
    with torch.no_grad():
        predicted = head(a.mean((2, 3)))
    if not torch.allclose(predicted, output, rtol=1e-4, atol=1e-4 * output.abs().max()):
        raise CAMError(
            f"CAM needs a global-average-pool + linear head after layer {ctx.name!r}, but "
            f"linear(GAP(A)) differs from the model's output by "
            f"{(predicted - output).abs().max().item():.3g}; use method='gradcam'"
        )
    return _weighted(head.weight[ctx.classes].to(a.dtype), a)


_GRAD = dict(gradients=True, cost="1 forward + 1 backward (shared)")


@register(
    "gradcam",
    formula="sum_k alpha_k A_k, alpha_k = mean_ij G_kij",
    reference="Selvaraju et al. 2017, Eq. 1-2; Taimeskhanov et al., Def. 1",
    options={"pooling": ("mean", "max")},
    **_GRAD,
)
def _gradcam(a, g, ctx):
    """Grad-CAM: the channels weighted by their spatially averaged gradient (Eq. 1).
    ``pooling="max"`` pools the gradients by their spatial maximum instead, the alternative
    Selvaraju et al. (Sec. 3) found to work worse than the average; it differs from the mean only
    where a channel's gradient varies over space (never right before global average pooling,
    where every position receives the same gradient)."""
    pooled = g.mean((2, 3)) if ctx.options["pooling"] == "mean" else g.amax((2, 3))
    return _weighted(pooled, a)


@register(
    "gradcam++",
    formula="alpha_k = sum_ij relu(G) a_kij, a = G^2 / (2G^2 + sum(A) G^3)",
    reference="Chattopadhay et al. 2018; Taimeskhanov et al., Def. 5",
    options={"variant": ("textbook", "authors")},
    **_GRAD,
)
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


@register(
    "xgradcam",
    formula="alpha_k = sum_ij G_kij A_kij / sum_ij A_kij",
    reference="Fu et al. 2020; Taimeskhanov et al., Def. 4",
    **_GRAD,
)
def _xgradcam(a, g, ctx):
    """XGrad-CAM: the gradient averaged with the channel's normalised activations as weights
    (pytorch-grad-cam's eps 1e-7)."""
    sum_a = a.sum((2, 3), keepdim=True)
    return _weighted((g * a / (sum_a + 1e-7)).sum((2, 3)), a)


@register(
    "hirescam",
    formula="sum_k G_k * A_k  (element-wise, no spatial averaging)",
    reference="Draelos & Carin 2021; Taimeskhanov et al., Def. 6",
    **_GRAD,
)
def _hirescam(a, g, ctx):
    """HiResCAM: gradient times activation, summed over channels; exactly 0 where G is 0."""
    return (g * a).sum(1)


@register(
    "layercam", formula="sum_k relu(G_k) * A_k", reference="Jiang et al. 2021 (LayerCAM)", **_GRAD
)
def _layercam(a, g, ctx):
    """LayerCAM: positive gradient times activation, summed over channels."""
    return (g.clamp(min=0) * a).sum(1)


@register(
    "counterfactual", formula="gradcam with -G", reference="Selvaraju et al. 2017, Eq. 12", **_GRAD
)
def _counterfactual(a, g, ctx):
    """Counterfactual Grad-CAM: Grad-CAM of the negated gradient (what lowers the score)."""
    return _weighted((-g).mean((2, 3)), a)


@register(
    "eigencam",
    formula="A (pixels x channels, centred) on its 1st principal direction",
    cost="1 forward + 1 SVD per image",
    reference="Muhammad & Yeasin 2020 (Eigen-CAM)",
    options={"sign": ("sum", "svd")},
)
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


@register(
    "scorecam",
    formula="alpha = softmax_k(Y(x * up(A_k)))",
    cost="1 + N*K forwards (masked inputs)",
    reference="Wang et al. 2020; Taimeskhanov et al., Def. 7",
    extra_forwards=True,
    options={"align_corners": (True, False)},
)
def _scorecam(a, g, ctx):
    """Score-CAM: the channels weighted by the softmax, over channels, of the target score of
    x masked by each channel, up-sampled to x and min-max normalised (pytorch-grad-cam's
    variant: logit scores, eps 1e-8; ``align_corners=True`` up-samples as its
    ``nn.UpsamplingBilinear2d``).

    A channel that is zero everywhere masks x to zeros, whatever the channel: that input's score
    is computed once per image, not once per such channel.
    """
    x, (n, k) = ctx.x, a.shape[:2]
    scores = torch.empty(n, k, dtype=a.dtype, device=a.device)
    bar = tqdm(total=n * k, desc="Score-CAM", disable=not ctx.progress, leave=False)
    with torch.no_grad():
        for i in range(n):
            dead = a[i].flatten(1).abs().amax(1) == 0
            if dead.any():
                scores[i, dead] = ctx.score(ctx.forward(torch.zeros_like(x[i : i + 1])), [i])
            for chans in (~dead).nonzero()[:, 0].split(ctx.batch_size):
                up = F.interpolate(
                    a[i : i + 1, chans],
                    size=x.shape[-2:],
                    mode="bilinear",
                    align_corners=ctx.options["align_corners"],
                )[0]
                masks = minmax(up, eps=1e-8)
                scores[i, chans] = ctx.score(
                    ctx.forward(x[i : i + 1] * masks[:, None]), [i] * len(chans)
                )
            bar.update(k)
    bar.close()
    return _weighted(torch.softmax(scores, dim=1), a)


@register(
    "ablationcam",
    formula="alpha_k = (Y - Y with A_k ablated) / Y",
    cost="1 + N*(K+1) forwards of the part above the layer",
    reference="Desai & Ramaswamy 2020; Taimeskhanov et al., Def. 8",
    extra_forwards=True,
)
def _ablationcam(a, g, ctx):
    """Ablation-CAM: relative drop of the target score when channel k is ablated, i.e. set to
    one value v_i per image i: v_i = 0 when image i's smallest activation is exactly 0 (the
    usual post-ReLU layer: the paper's zeroing), else v_i = min(A_i) - 1e7 (a very negative
    value, as pytorch-grad-cam does), with min over image i's activations only. Y and the
    ablated scores both come from the part of the model above the layer
    (:meth:`Context.above`), so that any difference between that part and the whole model
    cancels in Y - Y_k.

    An image's map is the same alone or within any batch, and for any ``batch_size``, for every
    model that computes each image's output from that image alone. A model that mixes the images
    of a batch (a BatchNorm with ``track_running_stats=False``, which normalises by the batch's
    statistics even in eval mode) gives other maps within another batch, with any method.
    Where the minimum is 0 this equals pytorch-grad-cam to 1e-4. Where it is negative
    pytorch-grad-cam's value depends on its batch: its AblationLayer takes the minimum over the
    ablation batch after ablating the earlier rows in place, so the rows get min - 1e7,
    min - 2e7, ... With its batch_size=1 it equals ours; with its default (32) the maps differ
    wherever the ablated value reaches the score unsaturated (no ReLU between the layer and a
    linear head).
    """
    n, k = a.shape[:2]
    original = torch.empty(n, 1, dtype=a.dtype, device=a.device)
    drops = torch.empty(n, k, dtype=a.dtype, device=a.device)
    bar = tqdm(total=n * k, desc="Ablation-CAM", disable=not ctx.progress, leave=False)
    with torch.no_grad():
        for i in range(n):
            low = a[i].min()
            value = 0.0 if low == 0 else low.item() - 1e7
            original[i] = ctx.score(ctx.above(a[i : i + 1], i), [i])
            for chans in torch.arange(k, device=a.device).split(ctx.batch_size):
                ablated = a[i : i + 1].repeat(len(chans), 1, 1, 1)
                ablated[torch.arange(len(chans)), chans] = value
                drops[i, chans] = ctx.score(ctx.above(ablated, i), [i] * len(chans))
                bar.update(len(chans))
    bar.close()
    if (original == 0).any():
        raise CAMError(
            "Ablation-CAM divides by the target score, which is exactly 0 for "
            "some image; use another method or target"
        )
    return _weighted((original - drops) / original, a)


@register(
    "guidedbackprop",
    formula="dY/dx with negative gradients zeroed at every ReLU",
    cost="1 forward + 1 backward to x",
    layer=False,
    gradients=True,
    input_resolution=True,
    hooks=True,
    reference="Springenberg et al. 2015",
)
def _guidedbackprop(a, g, ctx):
    """Guided Backpropagation: the input gradient where, at every nn.ReLU / nn.ReLU6 module,
    the backward pass keeps only positive gradients at active units (as Captum's)."""
    return ctx.guided_backprop()


@register(
    "guidedgradcam",
    formula="bilinear-up-sampled relu(gradcam) * guidedbackprop",
    cost="gradcam's + guidedbackprop's",
    gradients=True,
    input_resolution=True,
    reference="Selvaraju et al. 2017, Guided Grad-CAM",
)
def _guidedgradcam(a, g, ctx):
    """Guided Grad-CAM: relu(Grad-CAM) up-sampled bilinearly to the input, times Guided
    Backpropagation (Captum's GuidedGradCam with interpolate_mode='bilinear')."""
    cam = _weighted(g.mean((2, 3)), a).clamp(min=0)
    up = F.interpolate(cam[:, None], size=ctx.x.shape[-2:], mode="bilinear", align_corners=False)
    return up * ctx.guided_backprop()


_CAPTUM = dict(layer=False, input_resolution=True, captum=True)


@register(
    "integratedgradients",
    formula="(x - x0) * mean over the path x0 -> x of dY/dx",
    cost="n_steps (50) forwards + backwards",
    gradients=True,
    reference="Sundararajan et al. 2017 (Captum IntegratedGradients)",
    **_CAPTUM,
)
def _integratedgradients(a, g, ctx):
    """Integrated Gradients (Captum), zero baseline unless ``captum_kwargs`` says otherwise."""
    import captum.attr as ca

    forward, cls = _captum_forward(ctx, grad=True)
    return (
        ca.IntegratedGradients(forward)
        .attribute(ctx.x, target=cls, **ctx.captum_kwargs)
        .contiguous()
    )


@register(
    "occlusion",
    formula="Y(x) - Y(x with a sliding window zeroed)",
    cost="1 forward per window position (no gradient)",
    reference="Zeiler & Fergus 2014 (Captum Occlusion)",
    extra_forwards=True,
    **_CAPTUM,
)
def _occlusion(a, g, ctx):
    """Occlusion (Captum): the score drop when a (C, 45, 45) window, stride 1, is zeroed
    (``sliding_window_shapes`` / ``strides`` in ``captum_kwargs``). The occluded images go
    ``batch_size`` at a time (Captum's ``perturbations_per_eval`` windows of all N images, whose
    own default is one window)."""
    import captum.attr as ca

    forward, cls = _captum_forward(ctx, grad=False)
    kw = ctx.captum_kwargs
    kw.setdefault("sliding_window_shapes", (ctx.x.shape[1], 45, 45))
    kw.setdefault("strides", 1)
    kw.setdefault("perturbations_per_eval", max(1, ctx.batch_size // len(ctx.x)))
    return ca.Occlusion(forward).attribute(ctx.x, target=cls, **kw).contiguous()


@register(
    "gradientshap",
    formula="E[dY/dx at random path points] * (x - random baseline)",
    cost="n_samples (5) forwards + backwards",
    gradients=True,
    reference="Lundberg & Lee 2017 (Captum GradientShap)",
    **_CAPTUM,
)
def _gradientshap(a, g, ctx):
    """Gradient SHAP (Captum), zero baseline by default. ``captum_kwargs["seed"]`` (default 0)
    seeds torch, NumPy's and Python's global generators (Captum draws from NumPy's) for this
    call only: the same seed gives bit-identical maps, and the caller's random state is left
    as it was."""
    import captum.attr as ca

    forward, cls = _captum_forward(ctx, grad=True)
    kw = ctx.captum_kwargs
    kw.setdefault("baselines", torch.zeros_like(ctx.x[:1]))
    seed = kw.pop("seed", 0)
    with _seeded(seed, ctx.x.device):
        return ca.GradientShap(forward).attribute(ctx.x, target=cls, **kw).contiguous()


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


def _captum_forward(ctx, grad: bool):
    """The forward function and class indices for Captum: class indices are passed to Captum
    (which expands them with its batches); a callable target becomes part of the forward."""
    target = ctx.target

    def model(inp):
        return ctx.forward(inp, grad=grad)

    if ctx.classes is not None:
        return model, ctx.classes
    if isinstance(target, (list, tuple)):
        # Captum re-batches (steps x images, windows, samples): a per-image callable list
        # cannot follow the rows
        raise CAMError(
            "the Captum methods need class indices or one callable on the whole "
            "output, not one callable per image: pass target=[c_1, ..., c_N] or "
            "target=lambda out: ... (one score per row)"
        )
    return (lambda inp: target(model(inp))), None
