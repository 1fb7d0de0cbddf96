"""Checks of what a caller passes to the engine, each failing with an error that names the fix;
the model's state kept as it came."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping

import torch
from torch import nn

from lib.cam.errors import CAMError, describe, module_names
from lib.cam.registry import METHODS
from lib.layers import layer_name

__all__ = [
    "check_methods",
    "check_input",
    "check_scripted",
    "method_options",
    "model_state",
    "default_layer",
    "run_model",
]

_CHANNELS = re.compile(r"to have (\d+) channels, but got (\d+) channels")


def run_model(model: nn.Module, x: torch.Tensor):
    """``model(x)``, with torch's error for a wrong number of input channels turned into one that
    says what to pass."""
    try:
        return model(x)
    except RuntimeError as err:
        found = _CHANNELS.search(str(err))
        if not found:
            raise
        want, got = found.groups()
        raise CAMError(
            f"x has {got} channel(s) per image, but the model's first convolution expects {want}: "
            f"pass images as the model was trained on them (e.g. grey images as "
            f"x.repeat(1, {want}, 1, 1) for a {want}-channel model), normalised as it expects"
        ) from err


def check_methods(methods) -> None:
    """The method names are registered, none twice, at least one."""
    if not methods:
        raise CAMError(
            "methods is an empty list: pass at least one method, e.g. 'gradcam'; "
            f"valid methods: {', '.join(METHODS)}"
        )
    for m in methods:
        if not isinstance(m, str) or m not in METHODS:
            raise CAMError(f"unknown method {m!r}; valid methods: {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise CAMError(f"method list {methods} names a method twice")


def check_input(model, x) -> torch.Tensor:
    """x as the engine takes it: a detached floating-point (N, C, H, W) batch on the model's
    device and in its dtype (an inference tensor cloned outside inference mode)."""
    if not isinstance(x, torch.Tensor):
        raise CAMError(f"x must be a torch.Tensor of images (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        hint = " (add a batch dimension: x[None])" if x.dim() == 3 else ""
        raise CAMError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}{hint}")
    if not x.dtype.is_floating_point:
        raise CAMError(
            f"x must be a floating-point tensor, got {x.dtype}: convert images with "
            "x.float() / 255 and normalise them as the model expects"
        )
    if x.shape[0] == 0:
        raise CAMError("x holds no images (batch size 0)")
    params = [p for p in model.parameters() if p.dtype.is_floating_point]
    if params and params[0].device != x.device:
        raise CAMError(
            f"x is on {x.device} but the model is on {params[0].device}; move one of "
            "them (x.to(device) or model.to(device))"
        )
    dtypes = {p.dtype for p in params}
    if dtypes and x.dtype not in dtypes:
        want = params[0].dtype
        fix = {
            torch.float32: "x.float()",
            torch.float64: "x.double()",
            torch.float16: "x.half()",
            torch.bfloat16: "x.bfloat16()",
        }.get(want, f"x.to({want})")
        conv = {
            torch.float64: "model.double()",
            torch.float32: "model.float()",
            torch.float16: "model.half()",
        }.get(x.dtype, f"model.to({x.dtype})")
        raise CAMError(
            f"x is {x.dtype} but the model's parameters are {want}: pass {fix}, or "
            f"convert the model with {conv}"
        )
    if x.is_inference() and not torch.is_inference_mode_enabled():
        x = x.clone()  # an inference tensor (made under inference_mode) cannot require grad
    return x.detach()


def check_scripted(model, hooked_methods, modules=()):
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
            "Pass the eager nn.Module (the model before tracing / scripting)"
        )


@contextlib.contextmanager
def model_state(model: nn.Module):
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


def default_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The last module (in the order modules finish) whose output is a 4-D tensor with h*w > 1
    and that runs once, from a no-grad forward pass of x[:1] (torchcam's
    ``locate_candidate_layer`` rule, on the real input)."""
    seen: list[tuple[str, bool]] = []
    calls: dict[str, int] = {}

    def make_hook(name):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            seen.append(
                (
                    name,
                    isinstance(output, torch.Tensor)
                    and output.dim() == 4
                    and output.shape[-2] * output.shape[-1] > 1,
                )
            )

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            run_model(model, x[:1])
    finally:
        for h in handles:
            h.remove()
    for name, spatial in reversed(seen):
        if spatial and calls[name] == 1:
            return name
    raise CAMError(
        f"no module of this {type(model).__name__} outputs a 4-D feature map "
        f"(N, K, h, w) with h*w > 1, so there is no default target layer: pass "
        f"layer= (a dotted name or a module); names: {module_names(model)}"
    )


def method_options(options, align_corners) -> dict[str, dict]:
    """Every method's options, defaults filled in, ``options`` checked against the registry."""
    out = {n: {k: v[0] for k, v in m.options.items()} for n, m in METHODS.items()}
    out["scorecam"]["align_corners"] = align_corners
    if options is None:
        return out
    if not isinstance(options, Mapping):
        raise CAMError(
            f"options must be a dict {{method: {{option: value}}}}, e.g. "
            f"{{'eigencam': {{'sign': 'svd'}}}}; got {describe(options)}"
        )
    for name, opts in options.items():
        if name not in METHODS:
            raise CAMError(
                f"options given for unknown method {name!r}; valid methods: {', '.join(METHODS)}"
            )
        if not isinstance(opts, Mapping):
            raise CAMError(
                f"options[{name!r}] must be a dict of option -> value, got {describe(opts)}"
            )
        allowed = METHODS[name].options
        for key, value in opts.items():
            if key not in allowed:
                raise CAMError(
                    f"{name} has no option {key!r}; its options: {', '.join(allowed) or 'none'}"
                )
            if not any(value is v or (type(value) is type(v) and value == v) for v in allowed[key]):
                raise CAMError(
                    f"options[{name!r}][{key!r}] must be one of {allowed[key]}, got {value!r}"
                )
            out[name][key] = value
    return out
