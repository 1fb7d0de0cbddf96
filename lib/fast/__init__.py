"""The accelerator of the CAM engine's extra passes, apart from the engine.

The methods bound by forward passes (Score-CAM's masked images, Ablation-CAM's passes above its
layer, Captum's occlusion, Integrated Gradients and Gradient SHAP) run the model hundreds of
times. Given ``accelerator=Accelerator()``, :func:`lib.cam.compute` asks it once per call to
:meth:`~Accelerator.prepare` a faster callable for the model (and for the part above
Ablation-CAM's layer); the engine never imports this package, and this package never imports
the engine.

What it does, each a field of the immutable :class:`Settings`, each measured by
``python -m lib.bench --levers`` and the cost chapter on the machine that runs them:

- ``fold_batchnorm``: each eval-mode BatchNorm2d that only follows a Conv2d folded into it
  (torch's ``fuse_conv_bn_eval``): one pass over the feature map instead of two;
- ``channels_last``: on the CPU in float32, inputs and convolution weights in channels-last
  memory format, where oneDNN's convolutions are faster;
- ``pixels_per_pass``: on the CPU, batches of images split into passes of at most this many
  pixels (32 images of 112 x 112), so that a pass's activations stay in the cache;
- ``compile``: the copy through ``torch.compile`` (off by default: it costs a compilation per
  model and input size; the cost chapter measures it).

A copy is used only where its output on the caller's inputs equals the model's (rtol 1e-4),
compared leaf by leaf (:func:`lib.outputs.same`, which refuses outputs it cannot compare). Every
decision is recorded, with its reason, in :attr:`Accelerator.log` (a :class:`Path` per
prepared module): which path ran, what it changed, and why not more.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from lib import fx_graph
from lib.fast.graph import graph_copy
from lib.outputs import Uncomparable, same

__all__ = ["Settings", "Accelerator", "Path", "PLAIN"]

#: pixels per pass of images on the CPU: 32 images of 112 x 112, 8 of 224 x 224
CPU_PIXELS_PER_PASS = 32 * 112 * 112


@dataclass(frozen=True)
class Settings:
    """What the accelerator may do (see the module's docstring); immutable."""

    fold_batchnorm: bool = True
    channels_last: bool = True
    pixels_per_pass: int | None = CPU_PIXELS_PER_PASS
    compile: bool = False

    def __post_init__(self):
        p = self.pixels_per_pass
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
            raise ValueError(f"pixels_per_pass must be a positive int or None, got {p!r}")


#: every lever off: prepare() returns None and the engine runs the model as it is
PLAIN = Settings(fold_batchnorm=False, channels_last=False, pixels_per_pass=None, compile=False)


@dataclass(frozen=True)
class Path:
    """What ran for one prepared module, and why: ``kind`` is "graph copy", "channels-last
    input", "model as is" or "not prepared"; ``changes`` what the copy changed, in words;
    ``reason`` why nothing faster ran ("" where the fastest candidate was used)."""

    module: str
    kind: str
    changes: tuple[str, ...] = ()
    reason: str = ""

    def __str__(self):
        what = f"{self.module}: {self.kind}"
        if self.changes:
            what += f" ({'; '.join(self.changes)})"
        return what + (f"; {self.reason}" if self.reason else "")


class Accelerator:
    """Prepares faster copies of a model for the CAM engine (``cam.compute(...,
    accelerator=Accelerator())``); ``log`` holds the :class:`Path` of each prepared module,
    newest last (the last 100)."""

    def __init__(self, settings: Settings = Settings()):
        if not isinstance(settings, Settings):
            raise TypeError(f"settings must be a lib.fast.Settings, got {type(settings).__name__}")
        self.settings = settings
        self.log: collections.deque[Path] = collections.deque(maxlen=100)

    def __repr__(self):
        return f"Accelerator({self.settings})"

    def prepare(
        self, module: nn.Module, args: tuple[torch.Tensor, ...], expected
    ) -> Callable | None:
        """A callable computing ``module(*inputs)`` faster for batches like ``args`` (every
        argument one row per input), checked to give ``expected`` on ``args``; None where no
        lever applies. Its decision goes to :attr:`log`."""
        s = self.settings
        name = type(module).__name__
        x = args[0]
        cl = s.channels_last and _channels_last_pays(x)
        rows = (
            max(1, s.pixels_per_pass // (x.shape[-2] * x.shape[-1]))
            if s.pixels_per_pass and x.device.type == "cpu" and x.dim() == 4
            else None
        )
        why = []
        if s.channels_last and not cl:
            why.append(
                f"channels-last not used for a {x.dtype} {x.dim()}-D input on "
                f"{x.device.type} (it pays for float32 images on the CPU)"
            )
        candidates: list[tuple[str, Callable]] = []
        if fx_graph.global_hooks():
            why.append(
                "hooks registered for every module (register_module_forward_hook) would "
                "see a copy's modules, not the model's: no copy"
            )
        elif s.fold_batchnorm or cl:
            try:
                copy, changes = graph_copy(module, s.fold_batchnorm, cl)
                if _share_root_hooks(copy, module):
                    candidates.append(("graph copy", copy, tuple(changes)))
                else:
                    why.append("the model has backward hooks on its root: no copy")
            except Exception as err:  # untraceable or stateful: say so, run the model
                why.append(f"no graph copy: {err}")
        if cl:
            candidates.append(("channels-last input", module, ("channels-last inputs",)))
        for kind, fn, changes in candidates:
            if s.compile:
                fn = torch.compile(fn)
                changes = (*changes, "torch.compile")
            prepared = _Prepared(fn, channels_last=cl, rows=rows)
            try:
                with torch.no_grad():
                    ok = same(prepared(*args), expected)
            except Uncomparable as err:
                why.append(f"{err}: no copy is trusted")
                break
            except Exception as err:
                why.append(f"the {kind} failed on the inputs: {type(err).__name__}: {err}")
                continue
            if ok:
                self.log.append(Path(name, kind, _with_rows(changes, rows), "; ".join(why)))
                return prepared
            why.append(f"the {kind}'s output differs from the model's beyond rtol 1e-4")
        if rows is not None:
            self.log.append(Path(name, "model as is", _with_rows((), rows), "; ".join(why)))
            return _Prepared(module, channels_last=False, rows=rows)
        self.log.append(Path(name, "not prepared", (), "; ".join(why) or "every lever off"))
        return None


def _with_rows(changes: tuple[str, ...], rows: int | None) -> tuple[str, ...]:
    return changes if rows is None else (*changes, f"at most {rows} input(s) a pass")


def _channels_last_pays(x: torch.Tensor) -> bool:
    """Channels-last pays on the CPU for float32 images (oneDNN); elsewhere it is not measured."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4


def _share_root_hooks(copy: nn.Module, model: nn.Module) -> bool:
    """Let the copy run the model's own forward hooks (e.g. ones that count passes); False if
    the model has backward hooks on its root (the copy is then not used)."""
    if copy is model:
        return True
    if getattr(model, "_backward_hooks", None) or getattr(model, "_backward_pre_hooks", None):
        return False
    for attr in (
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
    ):
        if hasattr(model, attr):
            setattr(copy, attr, getattr(model, attr))
    return True


class _Prepared:
    """``fn(*inputs)`` with 4-D inputs in channels-last format (``channels_last``) and batches
    split into passes of at most ``rows`` inputs (outputs concatenated)."""

    def __init__(self, fn: Callable, channels_last: bool, rows: int | None):
        self.fn, self.channels_last, self.rows = fn, channels_last, rows

    def _run(self, args):
        if self.channels_last:
            args = [
                a.contiguous(memory_format=torch.channels_last) if a.dim() == 4 else a for a in args
            ]
        return self.fn(*args)

    def __call__(self, *args):
        n = args[0].shape[0]
        if self.rows is None or n <= self.rows:
            return self._run(args)
        outs = [self._run([a[lo : lo + self.rows] for a in args]) for lo in range(0, n, self.rows)]
        try:
            return _cat(outs)
        except (TypeError, RuntimeError):  # an output with parts that are not per input
            return self._run(args)


def _cat(outs: list):
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outs)
    if isinstance(first, Mapping):
        return type(first)((k, _cat([o[k] for o in outs])) for k in first)
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(_cat(list(parts)) for parts in zip(*outs)))
    if isinstance(first, (tuple, list)):
        return type(first)(_cat(list(parts)) for parts in zip(*outs))
    raise TypeError(f"cannot join the outputs of several passes: a {type(first).__name__}")
