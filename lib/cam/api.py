"""The two calls of the engine: :func:`compute` (one method, one layer) and
:func:`compute_many` (several of each, from one shared forward and backward pass)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lib.cam.checks import (
    check_input,
    check_methods,
    check_scripted,
    default_layer,
    method_options,
    model_state,
)
from lib.cam.engine import Accelerator, Engine
from lib.cam.errors import CAMError
from lib.cam.registry import METHODS
from lib.cam.targets import Target
from lib.layers import layer_name, resolve_layer

__all__ = ["compute", "compute_many"]


def compute(
    model: nn.Module,
    x: torch.Tensor,
    layer: nn.Module | str | None = None,
    method: str = "gradcam",
    target: Target = None,
    *,
    batch_size: int = 64,
    scorecam_align_corners: bool = True,
    progress: bool = False,
    captum_kwargs: dict | None = None,
    options: dict | None = None,
    accelerator: Accelerator | None = None,
) -> torch.Tensor:
    """The class activation map of ``model`` for the images ``x``: one method, one layer.

    Args:
        model: an eager ``nn.Module`` (not TorchScript); it is run in eval mode with frozen
            parameters and comes back exactly as it was.
        x: the images, a float tensor (N, C, H, W) on the model's device and in its dtype.
        layer: a module of the model or a dotted name (``"layer4"``, ``"features[-1]"``); None
            picks the last module to finish whose output is a 4-D map with h*w > 1 and that runs
            once (torchcam's rule): ``layer4`` on torchvision's ResNets, ``features`` on its
            DenseNets and EfficientNets, ``avgpool`` on its VGGs and AlexNet.
        method: a name of :data:`METHODS` (``help(cam.METHODS[name])`` says what it computes).
        target: None (the predicted class), an int, one int per image, a callable mapping the
            model's raw output (a tensor, or the tuple / dict it returns) to one score per
            image, or one callable per image taking that image's output (pytorch-grad-cam's
            targets, e.g. ``ClassifierOutputTarget``).
        batch_size: the most inputs of one extra pass (Score-CAM's masked images, Ablation-CAM's
            ablated activations, occlusion's windows of all N images).
        scorecam_align_corners: ``options={"scorecam": {"align_corners": ...}}``.
        progress: a progress bar over the extra passes.
        captum_kwargs: passed to Captum's ``attribute`` (integratedgradients, occlusion,
            gradientshap).
        options: per-method options, e.g. ``{"eigencam": {"sign": "svd"}}``.
        accelerator: runs the extra passes through a faster copy of the model that it checks
            against the model (e.g. ``lib.fast.Accelerator()``); None runs the model as it is.

    Returns:
        the raw map, a float tensor (N, h, w) at the layer's resolution, signed and not
        normalised, on x's device (guidedbackprop, guidedgradcam and the Captum methods return
        input attributions (N, C, H, W)). Post-processing is :func:`postprocess`.

    Raises:
        CAMError: for anything it cannot do, with the fix in the message (a list of methods or
            layers: use :func:`compute_many`).

    Runs inside the caller's ``torch.no_grad()``; inside ``torch.inference_mode()`` only the
    gradient-free methods do (cam, eigencam, scorecam, ablationcam, occlusion).

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.AdaptiveAvgPool2d(1),
        ...                       nn.Flatten(), nn.Linear(2, 1, bias=False))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
        ...     _ = model[3].weight.copy_(torch.tensor([[1.0, -1.0]]))
        >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
        >>> # Y = mean(A_0) - mean(A_1): alpha = (1/4, -1/4), map = (A_0 - A_1) / 4 = -x / 4
        >>> compute(model, x, "0", "gradcam", target=0)
        tensor([[[-0.2500, -0.5000],
                 [-0.7500, -1.0000]]])
    """
    if isinstance(method, (list, tuple)) or isinstance(layer, (list, tuple)):
        raise CAMError(
            "cam.compute returns one map (N, h, w) for one method and one layer; for "
            "several methods or layers call cam.compute_many(model, x, layers, "
            "methods, target), which returns maps[method][layer_name]"
        )
    maps = compute_many(
        model,
        x,
        layer,
        method,
        target,
        batch_size=batch_size,
        scorecam_align_corners=scorecam_align_corners,
        progress=progress,
        captum_kwargs=captum_kwargs,
        options=options,
        accelerator=accelerator,
    )
    return next(iter(maps[method].values()))


def compute_many(
    model: nn.Module,
    x: torch.Tensor,
    layers: nn.Module | str | Sequence[nn.Module | str] | None,
    methods: str | Sequence[str],
    target: Target = None,
    *,
    batch_size: int = 64,
    scorecam_align_corners: bool = True,
    progress: bool = False,
    captum_kwargs: dict | None = None,
    options: dict | None = None,
    accelerator: Accelerator | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Maps of several methods at several layers from one shared forward and backward pass.

    Args:
        layers: a list of layers (modules or dotted names); a single one is a list of one; None
            is the default layer of :func:`compute`.
        methods: a list of method names; a single name is a list of one.
        model, x, target, batch_size, scorecam_align_corners, progress, captum_kwargs, options,
            accelerator: as in :func:`compute`.

    Returns:
        ``maps[method][layer_name]``, each as :func:`compute` returns it; ``layer_name`` is the
        module's dotted name. Methods without a layer (guidedbackprop, Captum's) appear under
        every layer name (the same tensor), or under ``"input"`` when ``layers`` is None and no
        method needs a layer.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        ...                       nn.Flatten(), nn.Linear(2, 3))
        >>> maps = compute_many(model, torch.rand(2, 1, 4, 4), ["0", "1"],
        ...                     ["gradcam", "hirescam"])
        >>> {m: {n: tuple(t.shape) for n, t in d.items()} for m, d in maps.items()}
        {'gradcam': {'0': (2, 4, 4), '1': (2, 4, 4)}, 'hirescam': {'0': (2, 4, 4), '1': (2, 4, 4)}}
    """
    methods = list(methods) if isinstance(methods, (list, tuple)) else [methods]
    many = isinstance(layers, (list, tuple))
    layers = list(layers) if many else [layers]
    check_methods(methods)
    if not layers:
        raise CAMError(
            "layers is an empty list: pass at least one layer (a dotted name such as "
            "'layer4' or a module), or None for the default layer"
        )
    if accelerator is not None and not callable(getattr(accelerator, "prepare", None)):
        raise CAMError(
            f"accelerator must have a prepare(module, args, expected) method (e.g. "
            f"lib.fast.Accelerator()); got a {type(accelerator).__name__}"
        )
    opts = method_options(options, scorecam_align_corners)
    specs = [METHODS[m] for m in methods]
    x = check_input(model, x)
    check_scripted(model, [s.name for s in specs if s.hooks])
    grad_methods = [s.name for s in specs if s.gradients]
    if grad_methods and torch.is_inference_mode_enabled():
        free = ", ".join(n for n, m in METHODS.items() if not m.gradients)
        raise CAMError(
            f"method(s) {grad_methods} need gradients, but cam was called inside "
            "torch.inference_mode(), where autograd records nothing (not even under "
            "torch.enable_grad()). Call it outside the inference_mode block; torch.no_grad() "
            "around it is fine (the engine switches autograd on only where it needs it), or use "
            f"a gradient-free method ({free})"
        )
    needs_layer = any(s.layer for s in specs)

    with model_state(model):
        if needs_layer and any(lay is None for lay in layers):
            default = default_layer(model, x)
            layers = [default if lay is None else lay for lay in layers]
        modules = [resolve_layer(model, lay) if lay is not None else None for lay in layers]
        check_scripted(model, [s.name for s in specs if s.hooks], modules)
        names = [layer_name(model, m) if m is not None else "input" for m in modules]
        if len(set(names)) != len(names):
            raise CAMError(f"layer list {names} names a layer twice")
        maps = Engine(
            model,
            x,
            modules,
            names,
            target,
            batch_size,
            progress,
            captum_kwargs or {},
            opts,
            accelerator,
        ).run(specs)
    for m, per_layer in maps.items():
        for n, t in per_layer.items():
            if not torch.isfinite(t).all():
                raise CAMError(
                    f"the {m} map at layer {n!r} holds NaN or Inf: check the model's "
                    "output for this input (a non-finite score or activation)"
                )
    return maps
