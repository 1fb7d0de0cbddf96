"""torch.fx graphs of a model that leave the model exactly as it was.

Tracing runs the model's ``forward`` methods with proxies instead of tensors. Two things in a
user's model would see those proxies, and :func:`trace` keeps both from doing so:

- a module with hooks (its own, or any of its sub-modules') is kept whole, a leaf of the graph,
  so its hooks run only when the graph runs, on real tensors;
- a ``forward`` that stores state (``self.last = x``) would be left holding a proxy, and a graph
  copy would never update it: every module's attributes are restored after tracing, and such a
  model raises :class:`StatefulForward`, so that callers run the model as it is.

The CAM engine (:mod:`lib.cam`, Ablation-CAM's split above a layer) and the accelerator
(:mod:`lib.fast`, its graph copy) both trace through here.
"""

from __future__ import annotations

import torch.fx as fx
from torch import nn

__all__ = ["trace", "hooked", "global_hooks", "StatefulForward"]

_HOOKS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


class StatefulForward(RuntimeError):
    """A module's forward changed its attributes while traced: a graph copy cannot honour it."""


def hooked(module: nn.Module) -> bool:
    """Whether ``module`` itself has hooks."""
    return any(getattr(module, h, None) for h in _HOOKS)


def global_hooks() -> bool:
    """Whether hooks for every module are registered (``register_module_forward_hook`` and
    kin): they would see the modules of a graph copy, not the model's."""
    import torch.nn.modules.module as mm

    return any(
        getattr(mm, name, None)
        for name in (
            "_global_forward_hooks",
            "_global_forward_pre_hooks",
            "_global_backward_hooks",
            "_global_backward_pre_hooks",
            "_global_forward_hooks_always_called",
        )
    )


def trace(model: nn.Module, leaves=(), inside: str | None = None) -> fx.Graph:
    """The torch.fx graph of ``model``, with the modules named in ``leaves`` and every module
    with hooks kept whole (called as they are when the graph runs).

    A sub-module with Python control flow on shapes or values cannot be traced through; it is
    kept whole as well, unless it contains the module named ``inside`` (then tracing fails).

    Raises:
        StatefulForward: where tracing changed an attribute of a module (its attributes are
            restored first).
        Exception: whatever torch.fx raises for a model it cannot trace.
    """
    hooks = {name for name, m in model.named_modules() if name and hooked(m)}
    if inside is not None and any(inside.startswith(h + ".") for h in hooks):
        raise RuntimeError(f"{inside!r} lies inside a module with hooks, which is kept whole")
    leaves = set(leaves) | hooks

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return qualname in leaves or super().is_leaf_module(m, qualname)

    state = [(m, dict(m.__dict__)) for m in model.modules()]
    try:
        for _ in range(32):
            tracer = Tracer()
            try:
                return tracer.trace(model)
            except StatefulForward:
                raise
            except Exception:
                _check_state(state)
                stack = [path for path in getattr(tracer, "module_stack", {}) if path]
                culprit = stack[-1] if stack else ""
                if not culprit or culprit in leaves or (inside or "").startswith(culprit + "."):
                    raise
                leaves.add(culprit)
        raise RuntimeError("too many untraceable sub-modules")
    finally:
        _check_state(state)


def _check_state(state) -> None:
    """Restore every module's attributes; raise :class:`StatefulForward` if any had changed."""
    changed = []
    for module, before in state:
        now = module.__dict__
        if now.keys() != before.keys() or any(now[k] is not v for k, v in before.items()):
            keys = sorted(
                k
                for k in now.keys() | before.keys()
                if k not in before or k not in now or now[k] is not before[k]
            )
            changed.append((type(module).__name__, keys))
            now.clear()
            now.update(before)
    if changed:
        name, keys = changed[0]
        raise StatefulForward(
            f"the forward of a {name} sets {', '.join(map(repr, keys))}: a "
            "graph copy would not, so the model runs as it is"
        )
