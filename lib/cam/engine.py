"""The engine: one forward pass with hooks on the target layers, one backward pass from the
target score to them, and what the methods may ask of the model besides (:class:`Context`).

Below the first target layer autograd is off, so a gradient map costs one forward pass and a
backward pass from the output to the layer only; every gradient method and layer shares it.
The passes of the methods bound by forward passes go through :meth:`Context.forward` and
:meth:`Context.above` (Ablation-CAM: the part of the model above the layer, split off with
torch.fx). With an ``accelerator`` (any object with the method of :class:`Accelerator`, such as
:class:`lib.fast.Accelerator`) those passes run through whatever faster copy it prepares;
without one they run the model as it is. Nothing here knows how an accelerator works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.fx as fx
from torch import nn

from lib import fx_graph
from lib.cam.checks import run_model
from lib.cam.errors import CAMError, describe
from lib.cam.targets import Target, scorer_for
from lib.outputs import same, tree_map

__all__ = ["Accelerator", "Context", "Engine", "Above"]


class Accelerator(Protocol):
    """What the engine asks of an accelerator: one method."""

    def prepare(
        self, module: nn.Module, args: tuple[torch.Tensor, ...], expected
    ) -> Callable | None:
        """A callable computing ``module(*inputs)`` for batches like ``args`` (every argument
        holds one row per input), checked to give ``expected`` on ``args``; or None, where it
        has nothing faster that checks out (the engine then runs ``module`` itself)."""


@dataclass
class Context:
    """What a method's weighting may use besides A and G (one layer, one call).

    ``model``; ``x`` (the images, detached); ``output`` (the model's raw output on x: a tensor,
    or the tuple / dict it returns); ``layer`` and ``name`` (the target module and its dotted
    name, None for methods without a layer); ``options`` (this method's, defaults filled in);
    ``target`` (as the caller gave it); ``classes`` ((N,) class indices, None for a callable
    target); ``batch_size``, ``progress``, ``captum_kwargs``.
    """

    model: nn.Module
    x: torch.Tensor
    output: object
    layer: nn.Module | None
    name: str | None
    options: dict
    _engine: Engine

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

    def score(self, out, images) -> torch.Tensor:
        """The target score of each row of ``out``, the model's output for inputs made from
        the images ``images`` (indices into x, one per row)."""
        idx = torch.as_tensor(images, dtype=torch.long, device=self.x.device)
        return self._engine.scorer(out, idx)

    def guided_backprop(self) -> torch.Tensor:
        """Guided Backpropagation's input gradient, computed once per call and shared."""
        return self._engine.guided_backprop()

    def forward(self, inputs: torch.Tensor, grad: bool = False):
        """The model's output for ``inputs`` (without autograd unless ``grad``), through the
        accelerator's copy where there is one."""
        run = self._engine.runner()
        if grad:
            return run(inputs)
        with torch.no_grad():
            return run(inputs)

    def above(self, activations: torch.Tensor, image: int):
        """The model's output when this layer's output is ``activations`` (rows of one image's
        activations, (M, K, h, w)) and everything else is image ``image``'s: the part of the
        model above the layer, split off once per call."""
        return self._engine.above(self.name, self.layer)(activations, image)


@dataclass
class _Capture:
    """What the forward hook of one target layer saw."""

    activation: torch.Tensor | None = None
    calls: int = 0


class Engine:
    """One call of :func:`lib.cam.compute_many`: the images, the layers, the target, and the
    passes shared by the methods."""

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        modules: Sequence[nn.Module | None],
        names: Sequence[str],
        target: Target,
        batch_size: int,
        progress: bool,
        captum_kwargs: dict,
        options: dict,
        accelerator: Accelerator | None,
    ):
        self.model, self.x, self.modules, self.names = model, x, modules, names
        self.target, self.batch_size, self.progress = target, batch_size, progress
        self.captum_kwargs, self.options = captum_kwargs, options
        self.accelerator = accelerator
        self.scorer: Callable[[object, torch.Tensor], torch.Tensor] | None = None
        self.classes: torch.Tensor | None = None
        self.output = None
        self._guided: torch.Tensor | None = None
        self._guided_output = None
        self._runner: Callable | None = None
        self._above: dict[str, Above] = {}
        self._acts: dict[str, torch.Tensor] = {}

    def run(self, specs) -> dict[str, dict[str, torch.Tensor]]:
        """Every method of ``specs`` at every layer: ``maps[method][layer_name]``."""
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
                output = run_model(self.model, self.x)
            acts = grads = [None] * len(self.names)
        self.output = output
        self._acts = dict(zip(self.names, acts))
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

    # -- the passes the methods ask for
    def runner(self) -> Callable:
        """The model's forward pass, prepared by the accelerator at first use (on x, checked
        against the model's output), or the model itself."""
        if self._runner is None:
            prepared = None
            if self.accelerator is not None:
                with torch.inference_mode(False), torch.no_grad():
                    prepared = self.accelerator.prepare(self.model, (self.x,), self.output)
            self._runner = prepared or self.model
        return self._runner

    def above(self, name: str, layer: nn.Module) -> Above:
        """The part of the model above ``layer``, split off at first use."""
        if name not in self._above:
            self._above[name] = Above(
                self.model, name, layer, self.x, self._acts[name], self.output, self.accelerator
            )
        return self._above[name]

    def _forward(self, need_grad: bool):
        """One forward pass capturing every target layer's output; gradients of the summed
        target scores w.r.t. those outputs. Below the first layer autograd is off."""
        captures = [_Capture() for _ in self.modules]

        def make_hook(cap):
            def hook(module, inputs, output):
                if not isinstance(output, torch.Tensor) or output.dim() != 4:
                    raise CAMError(
                        f"target layer {type(module).__name__} returns "
                        f"{describe(output)}; CAMs need a 4-D feature map (N, K, h, w)"
                        "; pick a convolutional layer or block"
                    )
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
                output = run_model(self.model, self.x)
        finally:
            for h in handles:
                h.remove()
        for n, c in zip(self.names, captures):
            if c.calls == 0:
                raise CAMError(
                    f"layer {n!r} did not run in the forward pass, so it has no "
                    "activations; pick a layer on the path from the input to the output"
                )
            if c.calls > 1:
                raise CAMError(
                    f"layer {n!r} runs {c.calls} times in one forward pass (a shared "
                    "module, e.g. a ReLU reused inside a block); pick a layer that runs "
                    "once, such as the enclosing block"
                )
        acts = [c.activation for c in captures]
        if not need_grad:
            return acts, [None] * len(acts), output
        # the caller may be inside torch.no_grad(), which the block above restored
        with torch.enable_grad():
            scores = self._scores_for_output(output)
            if not scores.requires_grad:
                raise CAMError(
                    f"the target score does not depend on layer(s) {self.names}: no "
                    "target layer is on the path from the input to the output"
                )
            grads = torch.autograd.grad(scores.sum(), acts, allow_unused=True)
        for n, g in zip(self.names, grads):
            if g is None:
                raise CAMError(
                    f"layer {n!r} is not on the path to the output (its gradient is "
                    "None); pick a layer whose output the prediction depends on"
                )
        return [a.detach() for a in acts], list(grads), tree_map(torch.Tensor.detach, output)

    # -- targets
    def _set_scorer(self, output) -> None:
        self.scorer, self.classes = scorer_for(self.target, output, self.x.shape[0])

    def _scores_for_output(self, output):
        if self.scorer is None:
            self._set_scorer(tree_map(torch.Tensor.detach, output))
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
                output = run_model(self.model, x)
                scores = self._scores_for_output(output)
                (grad,) = torch.autograd.grad(scores.sum(), x)
        finally:
            for h in handles:
                h.remove()
        self._guided, self._guided_output = grad, tree_map(torch.Tensor.detach, output)
        return grad


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


class Above:
    """The part of the model above one layer, as a function of that layer's output.

    torch.fx splits the graph at the layer (:mod:`lib.fx_graph`, which leaves the model as it
    was); values from below it that the upper part also needs (skip connections) are computed
    once and repeated. The accelerator, if any, may prepare a faster copy of that part. A model
    that cannot be split (untraceable, stateful, with hooks for every module) runs whole, with
    the layer's output replaced by a hook (correct, and slower).
    """

    def __init__(self, model, name, layer, x, a, output, accelerator=None):
        self.model, self.name, self.layer, self.x = model, name, layer, x
        self.upper: Callable | None = None
        self.externals: list[torch.Tensor] = []
        if fx_graph.global_hooks():
            return  # hooks on every module would not see the modules of the split
        try:
            module = self._split()
            with torch.inference_mode(False), torch.no_grad():
                expected = module(a, *self.externals)
            if not same(expected, output):
                return
        except Exception:
            return
        self.upper = module
        if accelerator is not None:
            with torch.inference_mode(False), torch.no_grad():
                self.upper = accelerator.prepare(module, (a, *self.externals), expected) or module

    def _split(self):
        target_name = self.name
        graph = fx_graph.trace(self.model, leaves={target_name}, inside=target_name)
        nodes = [nd for nd in graph.nodes if nd.op == "call_module" and nd.target == target_name]
        if len(nodes) != 1:
            raise RuntimeError("layer not found once in the traced graph")
        cut = nodes[0]
        order = list(graph.nodes)
        downstream = {cut}
        for nd in order[order.index(cut) + 1 :]:
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
        return fx.GraphModule(
            self.model,
            new,
            class_name=f"{type(self.model).__name__}_above_{self.name}".replace(".", "_"),
        )

    def __call__(self, activations: torch.Tensor, image: int):
        if self.upper is not None:
            rows = torch.full((len(activations),), image, device=activations.device)
            return self.upper(activations, *[e[rows] for e in self.externals])
        handle = self.layer.register_forward_hook(lambda m, inp, out: activations)
        try:
            return self.model(self.x[image : image + 1].expand(len(activations), *self.x.shape[1:]))
        finally:
            handle.remove()
