"""One CAM engine, many weightings.

A forward hook captures the target layer's activations A (N, K, h, w); autograd gives
G = dY/dA for the target score Y; each method is a weighting of A:

==============  ====================================================================
method          map (before any post-processing)
==============  ====================================================================
cam             sum_k w_k^c A_k, w the linear head after global average pooling
gradcam         sum_k alpha_k A_k, alpha_k = mean_ij G_kij               (paper 002, Eq. 1-2)
counterfactual  gradcam with -G                                           (paper 002, Eq. 12)
gradcam++       alpha_k = sum_ij relu(G) a_kij, a = G^2 / (2G^2 + sum(A) G^3)
xgradcam        alpha_k = sum_ij G_kij A_kij / sum_ij A_kij               (paper 003, Def. 4)
hirescam        sum_k G_k * A_k  (element-wise, no spatial averaging)      (paper 003, Def. 6)
layercam        sum_k relu(G_k) * A_k
eigencam        projection of A on its first principal component (no gradient)
scorecam        alpha = softmax_k(Y(x * up(A_k)))  (K forward passes)     (paper 003, Def. 7)
ablationcam     alpha_k = (Y - Y with A_k ablated) / Y                    (paper 003, Def. 8)
guidedbackprop  dY/dx with negative gradients zeroed at every ReLU        (input resolution)
guidedgradcam   bilinear-up-sampled relu(gradcam) * guidedbackprop        (input resolution)
==============  ====================================================================

Maps are returned raw: signed, not normalised, at the layer's own resolution; post-processing
is separate (:func:`postprocess`). The constants (eps) of Grad-CAM++, XGrad-CAM, Score-CAM and
Ablation-CAM are those of pytorch-grad-cam, so that both agree to 1e-4 after the same
post-processing. Integrated Gradients, occlusion and Gradient SHAP come from Captum behind
the same call (``integratedgradients``, ``occlusion``, ``gradientshap``).

Speed: the network below the first target layer runs without autograd, so a gradient map
costs one forward pass and a backward pass from the output to the layer only; all
gradient-based methods and layers share it. Ablation-CAM runs only the part of the network
above the layer (a torch.fx split) for its K ablations.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lib.layers import layer_name, resolve_layer

__all__ = ["compute", "postprocess", "METHODS", "GRADIENT_METHODS", "INPUT_METHODS",
           "CAMError", "PGC_PRESET"]

GRADIENT_METHODS = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "counterfactual")
LAYER_METHODS = ("cam",) + GRADIENT_METHODS + ("eigencam", "scorecam", "ablationcam")
INPUT_METHODS = ("guidedbackprop", "guidedgradcam")
CAPTUM_METHODS = ("integratedgradients", "occlusion", "gradientshap")
METHODS = LAYER_METHODS + INPUT_METHODS + CAPTUM_METHODS

#: post-processing of pytorch-grad-cam (and so of papers that used it, e.g. paper 003)
PGC_PRESET = "pytorch-grad-cam"

Target = None | int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


class CAMError(ValueError):
    """Bad input to the CAM engine; the message names the problem and the fix."""


# --------------------------------------------------------------------------- public API

def compute(model: nn.Module, x: torch.Tensor, layer: nn.Module | str | Sequence | None = None,
            method: str | Sequence[str] = "gradcam", target: Target = None, *,
            batch_size: int = 64, scorecam_align_corners: bool = True, progress: bool = False,
            captum_kwargs: dict | None = None):
    """Class activation maps of ``model`` for the images ``x`` (N, C, H, W).

    Returns a float tensor (N, h, w) at ``layer``'s resolution, signed and not normalised, on
    ``x``'s device (``guidedbackprop``, ``guidedgradcam`` and the Captum methods return input
    attributions (N, C, H, W)). ``layer`` is a module of the model or a dotted name; ``target``
    is None (the predicted class), an int, one int per image, or a callable mapping the model's
    output to one score per image. If ``method`` or ``layer`` is a list, returns
    ``maps[method][layer_name]`` from one shared forward and backward pass.

    ``batch_size`` bounds the batches of Score-CAM's masked inputs and Ablation-CAM's ablated
    activations; ``scorecam_align_corners=True`` up-samples Score-CAM's masks as
    pytorch-grad-cam does (``nn.UpsamplingBilinear2d``).
    """
    methods = [method] if isinstance(method, str) else list(method)
    many_layers = isinstance(layer, (list, tuple))
    layers = list(layer) if many_layers else [layer]
    _check_methods(methods)
    needs_layer = [m for m in methods if m in LAYER_METHODS or m == "guidedgradcam"]
    if needs_layer and any(lay is None for lay in layers):
        raise CAMError(f"method(s) {needs_layer} need a target layer: pass layer='layer4' (a "
                       f"dotted name) or a module; valid names: {_names(model)}")
    modules = [resolve_layer(model, lay) if lay is not None else None for lay in layers]
    names = [layer_name(model, m) if m is not None else "input" for m in modules]
    x = _check_input(model, x)

    with _model_state(model):
        maps = _Engine(model, x, modules, names, target, batch_size, scorecam_align_corners,
                       progress, captum_kwargs or {}).run(methods)
    for m, per_layer in maps.items():
        for n, t in per_layer.items():
            if not torch.isfinite(t).all():
                raise CAMError(f"the {m} map at layer {n!r} holds NaN or Inf: check the model's "
                               "output for this input (a non-finite score or activation)")
    if len(methods) == 1 and not many_layers:
        return maps[methods[0]][names[0]]
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
    def __init__(self, model, x, modules, names, target, batch_size, align_corners, progress,
                 captum_kwargs):
        self.model, self.x, self.modules, self.names = model, x, modules, names
        self.target, self.batch_size, self.align_corners = target, batch_size, align_corners
        self.progress, self.captum_kwargs = progress, captum_kwargs
        self.scorer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self.classes: torch.Tensor | None = None

    # -- orchestration
    def run(self, methods):
        maps: dict[str, dict[str, torch.Tensor]] = {m: {} for m in methods}
        layer_methods = [m for m in methods if m in LAYER_METHODS]
        need_grad = any(m in GRADIENT_METHODS for m in layer_methods) or "guidedgradcam" in methods
        need_acts = bool(layer_methods) or "guidedgradcam" in methods
        if need_acts:
            acts, grads, output = self._forward(need_grad)
            self._set_scorer(output)
            for m in layer_methods:
                for n, mod, a, g in zip(self.names, self.modules, acts, grads):
                    maps[m][n] = self._layer_map(m, mod, n, a, g, output)
            if "guidedgradcam" in methods:
                gb = self._guided_backprop()
                for n, a, g in zip(self.names, acts, grads):
                    cam = _weighted(g.mean((2, 3)), a).clamp(min=0)
                    up = F.interpolate(cam[:, None], size=self.x.shape[-2:], mode="bilinear",
                                       align_corners=False)
                    maps["guidedgradcam"][n] = up * gb
                if "guidedbackprop" in methods:
                    for n in self.names:
                        maps["guidedbackprop"][n] = gb
        else:
            with torch.no_grad():
                self._set_scorer(self.model(self.x))
        if "guidedbackprop" in methods and not maps["guidedbackprop"]:
            gb = self._guided_backprop()
            for n in self.names:
                maps["guidedbackprop"][n] = gb
        for m in methods:
            if m in CAPTUM_METHODS:
                attr = self._captum(m)
                for n in self.names:
                    maps[m][n] = attr
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
        scores = self._scores_for_output(output)
        if not scores.requires_grad:
            raise CAMError(f"the target score does not depend on layer(s) {self.names}: no "
                           "target layer is on the path from the input to the output")
        grads = torch.autograd.grad(scores.sum(), acts, allow_unused=True)
        for n, g in zip(self.names, grads):
            if g is None:
                raise CAMError(f"layer {n!r} is not on the path to the output (its gradient is "
                               "None); pick a layer whose output the prediction depends on")
        return [a.detach() for a in acts], list(grads), output.detach()

    # -- targets
    def _set_scorer(self, output: torch.Tensor):
        """Fix the target once, from the unperturbed output: a class per image or a callable."""
        target = self.target
        n = self.x.shape[0]
        if callable(target) and not isinstance(target, torch.Tensor):
            def scorer(out, idx):
                s = target(out)
                if not isinstance(s, torch.Tensor) or s.shape != (out.shape[0],):
                    raise CAMError(f"a callable target must return one score per image, shape "
                                   f"({out.shape[0]},); it returned {_describe(s)}")
                return s
            self.scorer = scorer
            return
        if output.dim() != 2:
            raise CAMError(f"the model's output has shape {tuple(output.shape)}; an int target "
                           "needs (N, classes) logits: pass a callable target instead")
        k = output.shape[1]
        if target is None:
            classes = output.argmax(1)
        elif isinstance(target, int) and not isinstance(target, bool):
            classes = torch.full((n,), target, dtype=torch.long, device=output.device)
        else:
            classes = torch.as_tensor(target, device=output.device)
            if classes.dtype.is_floating_point or classes.dim() != 1 or len(classes) != n:
                raise CAMError(f"target must be None, an int, one int per image ({n}) or a "
                               f"callable; got {_describe(target)}")
            classes = classes.long()
        bad = (classes < 0) | (classes >= k)
        if bad.any():
            raise CAMError(f"target class {classes[bad][0].item()} is out of range: the model "
                           f"has {k} classes (0..{k - 1})")
        self.classes = classes
        self.scorer = lambda out, idx: out.gather(1, classes[idx].view(-1, 1))[:, 0]

    def _scores_for_output(self, output):
        if self.scorer is None:
            self._set_scorer(output.detach())
        return self.scorer(output, torch.arange(output.shape[0], device=output.device))

    # -- one layer, one method
    def _layer_map(self, method, module, name, a, g, output):
        if method == "gradcam":
            return _weighted(g.mean((2, 3)), a)
        if method == "counterfactual":
            return _weighted((-g).mean((2, 3)), a)
        if method == "gradcam++":
            g2 = g * g
            g3 = g2 * g
            sum_a = a.sum((2, 3), keepdim=True)
            aij = g2 / (2 * g2 + sum_a * g3 + 1e-6)
            aij = torch.where(g != 0, aij, torch.zeros_like(aij))
            return _weighted((g.clamp(min=0) * aij).sum((2, 3)), a)
        if method == "xgradcam":
            sum_a = a.sum((2, 3), keepdim=True)
            return _weighted((g * a / (sum_a + 1e-7)).sum((2, 3)), a)
        if method == "hirescam":
            return (g * a).sum(1)
        if method == "layercam":
            return (g.clamp(min=0) * a).sum(1)
        if method == "eigencam":
            return _eigen_projection(a)
        if method == "cam":
            return self._cam(module, name, a, output)
        if method == "scorecam":
            return _weighted(self._scorecam_weights(a), a)
        if method == "ablationcam":
            return _weighted(self._ablation_weights(module, name, a, output), a)
        raise AssertionError(method)

    def _cam(self, module, name, a, output):
        """CAM (Zhou et al. 2016): w_k^c of a linear head on the global average pool of A."""
        if self.classes is None:
            raise CAMError("CAM needs a class index target (None, an int or one int per image), "
                           "not a callable")
        linears = [m for m in self.model.modules() if isinstance(m, nn.Linear)]
        head = linears[-1] if linears else None
        if head is None or head.in_features != a.shape[1]:
            raise CAMError(
                f"CAM needs a model whose output is a linear layer applied to the global average "
                f"pool of layer {name!r} ({a.shape[1]} channels); this "
                f"{type(self.model).__name__} has "
                + (f"a last linear layer with {head.in_features} inputs" if head else
                   "no linear layer")
                + ". Use method='gradcam', which equals CAM up to Z = h*w on such models")
        with torch.no_grad():
            predicted = head(a.mean((2, 3)))
        if not torch.allclose(predicted, output, rtol=1e-4, atol=1e-4 * output.abs().max()):
            raise CAMError(
                f"CAM needs a global-average-pool + linear head after layer {name!r}, but "
                f"linear(GAP(A)) differs from the model's output by "
                f"{(predicted - output).abs().max().item():.3g}; use method='gradcam'")
        return _weighted(head.weight[self.classes].to(a.dtype), a)

    def _scorecam_weights(self, a):
        """Score-CAM: softmax over channels of the target score of x masked by each
        min-max-normalised, up-sampled channel (pytorch-grad-cam's variant: logit scores).

        A channel that is exactly zero everywhere gives an all-zero mask, hence the same masked
        input (zeros) whatever the channel: its score is computed once per image, not K times.
        """
        n, k = a.shape[:2]
        size = self.x.shape[-2:]
        weights = torch.empty(n, k, dtype=a.dtype, device=a.device)
        flat_a = a.flatten(2)
        dead = (flat_a.amax(2) == 0) & (flat_a.amin(2) == 0)
        bar = tqdm(total=n * k, desc="Score-CAM", disable=not self.progress, leave=False)
        with torch.no_grad():
            for i in range(n):
                live = (~dead[i]).nonzero()[:, 0]
                if dead[i].any():
                    zero = torch.zeros_like(self.x[i:i + 1])
                    idx = torch.full((1,), i, device=a.device)
                    weights[i, dead[i]] = self.scorer(self.model(zero), idx).to(a.dtype)
                    bar.update(int(dead[i].sum()))
                for lo in range(0, len(live), self.batch_size):
                    chans = live[lo:lo + self.batch_size]
                    up = F.interpolate(a[i:i + 1, chans], size=size, mode="bilinear",
                                       align_corners=self.align_corners)[0]
                    flat = up.flatten(1)
                    mins = flat.amin(1).view(-1, 1, 1)
                    maxs = flat.amax(1).view(-1, 1, 1)
                    masks = (up - mins) / (maxs - mins + 1e-8)
                    batch = self.x[i:i + 1] * masks[:, None]
                    idx = torch.full((len(chans),), i, device=a.device)
                    weights[i, chans] = self.scorer(self.model(batch), idx).to(a.dtype)
                    bar.update(len(chans))
        bar.close()
        return torch.softmax(weights, dim=1)

    def _ablation_weights(self, module, name, a, output):
        """Ablation-CAM: relative drop of the target score when channel k is ablated (set to 0,
        or to min(A) - 1e7 when A has negative values, as pytorch-grad-cam does)."""
        n, k = a.shape[:2]
        tail = _Tail(self.model, name, self.x, a, output)
        original = self.scorer(output, torch.arange(n, device=a.device))
        drops = torch.empty(n, k, dtype=a.dtype, device=a.device)
        bar = tqdm(total=n * k, desc="Ablation-CAM", disable=not self.progress, leave=False)
        with torch.no_grad():
            for i in range(n):
                low = a[i].min()
                value = 0.0 if low == 0 else low.item() - 1e7
                for lo in range(0, k, self.batch_size):
                    chans = torch.arange(lo, min(lo + self.batch_size, k), device=a.device)
                    batch = a[i:i + 1].repeat(len(chans), 1, 1, 1)
                    batch[torch.arange(len(chans)), chans] = value
                    idx = torch.full((len(chans),), i, device=a.device)
                    drops[i, lo:lo + len(chans)] = self.scorer(tail(batch, i), idx)
                    bar.update(len(chans))
        bar.close()
        orig = original.view(-1, 1).to(a.dtype)
        if (orig == 0).any():
            raise CAMError("Ablation-CAM divides by the target score, which is exactly 0 for "
                           "some image; use another method or target")
        return (orig - drops) / orig

    def _guided_backprop(self):
        """Guided Backpropagation (Springenberg et al.): at every nn.ReLU (and nn.ReLU6) module
        the backward pass keeps only positive gradients, and only where the unit is active.
        Captum's GuidedBackprop treats nn.ReLU only; functional ReLUs are not seen by either."""
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
        return grad

    def _captum(self, method):
        """Captum's attribution for the same target: class indices are passed to Captum (which
        expands them with its batches); a callable target becomes part of the forward function."""
        import captum.attr as ca
        model, target = self.model, self.target
        if self.classes is not None:
            forward, cls = model, self.classes
        else:
            forward, cls = (lambda inp: target(model(inp))), None
        kw = dict(self.captum_kwargs)
        x = self.x.detach()
        if method == "integratedgradients":
            return ca.IntegratedGradients(forward).attribute(x, target=cls, **kw)
        if method == "occlusion":
            kw.setdefault("sliding_window_shapes", (x.shape[1], 45, 45))
            kw.setdefault("strides", 1)
            return ca.Occlusion(forward).attribute(x, target=cls, **kw)
        if method == "gradientshap":
            kw.setdefault("baselines", torch.zeros_like(x[:1]))
            seed = kw.pop("seed", 0)
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                torch.manual_seed(seed)
                return ca.GradientShap(forward).attribute(x, target=cls, **kw)
        raise AssertionError(method)


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
    needs (skip connections) are computed once and repeated. A model that fx cannot trace falls
    back to running the whole model with the layer's output replaced (correct, but slower).
    """

    def __init__(self, model, name, x, a, output):
        self.model, self.name, self.x = model, name, x
        self.graph_module, self.externals = None, []
        try:
            self._split()
            with torch.no_grad():
                check = self._run_fx(a, torch.arange(len(a), device=a.device))
            if not torch.allclose(check, output, rtol=1e-4, atol=1e-5 * (1 + output.abs().max())):
                self.graph_module = None
        except Exception:  # untraceable model: fall back to the full forward pass
            self.graph_module = None

    def _split(self):
        import torch.fx as fx

        target_name = self.name
        leaves = {target_name}

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m, qualname):
                return qualname in leaves or super().is_leaf_module(m, qualname)

        # A sub-module with Python control flow on shapes or values cannot be traced through;
        # it is kept whole as a leaf (called as is) unless it contains the target layer.
        for _ in range(32):
            tracer = Tracer()
            try:
                graph = tracer.trace(self.model)
                break
            except Exception:
                stack = [path for path in getattr(tracer, "module_stack", {}) if path]
                culprit = stack[-1] if stack else ""
                if not culprit or culprit in leaves or target_name.startswith(culprit + "."):
                    raise
                leaves.add(culprit)
        else:
            raise RuntimeError("too many untraceable sub-modules")
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
        self.graph_module = fx.GraphModule(self.model, new)
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


# --------------------------------------------------------------------------- helpers

def _weighted(alpha: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """sum_k alpha_k A_k for alpha (N, K) and A (N, K, h, w)."""
    return torch.einsum("nk,nkhw->nhw", alpha.to(a.dtype), a)


def _eigen_projection(a: torch.Tensor) -> torch.Tensor:
    """Eigen-CAM: A (pixels x channels, centred over pixels) projected on its first right
    singular vector. The SVD's sign is arbitrary; we pick the one that correlates positively
    with the channel-summed activations."""
    n, k, h, w = a.shape
    r = a.reshape(n, k, h * w).transpose(1, 2).double()
    r = r - r.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(r, full_matrices=False)
    proj = torch.einsum("npk,nk->np", r, vh[:, 0])
    ref = a.reshape(n, k, h * w).sum(1).double()
    ref = ref - ref.mean(1, keepdim=True)
    sign = torch.where((proj * ref).sum(1) < 0, -1.0, 1.0).to(proj.dtype)
    return (proj * sign[:, None]).reshape(n, h, w).to(a.dtype)


def _minmax(m: torch.Tensor, eps: float) -> torch.Tensor:
    flat = m.flatten(1)
    lo = flat.amin(1).view(-1, 1, 1)
    span = flat.amax(1).view(-1, 1, 1) - lo
    if eps:
        return (m - lo) / (span + eps)
    return torch.where(span > 0, (m - lo) / span.clamp(min=torch.finfo(m.dtype).tiny), 0.0)


def _check_methods(methods):
    for m in methods:
        if m not in METHODS:
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
    param = next(model.parameters(), None)
    if param is not None and param.device != x.device:
        raise CAMError(f"x is on {x.device} but the model is on {param.device}; move one of them "
                       "(x.to(device) or model.to(device))")
    return x.detach()


@contextlib.contextmanager
def _model_state(model: nn.Module):
    """Run in eval mode with frozen parameters; restore modes and requires_grad flags after,
    also on error."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    grads = [(p, p.grad) for p in model.parameters()]
    model.eval()
    for p in model.parameters():
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


def _describe(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__}"


def _names(model) -> str:
    names = [n for n, _ in model.named_modules() if n]
    return ", ".join(names[-12:]) + (" ..." if len(names) > 12 else "")

