"""A torch.fx copy of a model that runs faster on the CPU and computes the same: each eval-mode
BatchNorm2d that only follows a Conv2d folded into it (torch's ``fuse_conv_bn_eval``), and the
convolutions' weights in channels-last memory format.

The copy shares every other module, tensor and hook of the model; only convolutions are new.
Modules with hooks, and modules whose attributes the graph reads directly, are kept as they
are, so that hooks see what they expect.
"""

from __future__ import annotations

import copy

import torch
import torch.fx as fx
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lib import fx_graph

__all__ = ["graph_copy"]


def graph_copy(
    module: nn.Module, fold: bool, channels_last: bool
) -> tuple[fx.GraphModule, list[str]]:
    """A GraphModule computing ``module`` with batch-norm folded (``fold``) and channels-last
    convolution weights (``channels_last``), and what it changed, in words.

    ``module`` may itself be a GraphModule (its graph is copied, not traced again).

    Raises:
        lib.fx_graph.StatefulForward, or whatever torch.fx raises for a model it cannot trace.
    """
    if isinstance(module, fx.GraphModule):
        graph = copy.deepcopy(module.graph)
    else:
        graph = fx_graph.trace(module)
    modules = dict(module.named_modules())
    attrs = [nd.target for nd in graph.nodes if nd.op == "get_attr"]
    root: dict[str, object] = {t: _get_attr(module, t) for t in attrs}
    for nd in graph.nodes:
        if nd.op == "call_module":
            root.setdefault(nd.target, modules[nd.target])

    def own(name):  # a module that may be replaced
        m = modules.get(name)
        return (
            m is not None
            and not fx_graph.hooked(m)
            and not any(t.startswith(name + ".") for t in attrs)
        )

    layout = torch.channels_last if channels_last else torch.contiguous_format
    count = folded = 0
    for nd in list(graph.nodes):
        if not (
            fold
            and nd.op == "call_module"
            and type(modules.get(nd.target)) is nn.BatchNorm2d
            and len(nd.args) == 1
            and not nd.kwargs
        ):
            continue
        prev, bn = nd.args[0], modules[nd.target]
        if not (
            isinstance(prev, fx.Node)
            and prev.op == "call_module"
            and type(modules.get(prev.target)) is nn.Conv2d
            and len(prev.users) == 1
            and own(prev.target)
            and own(nd.target)
            and not bn.training
            and bn.track_running_stats
            and bn.running_mean is not None
            and not modules[prev.target].training
        ):
            continue
        with torch.no_grad():
            fused = fuse_conv_bn_eval(modules[prev.target], bn)
            fused.weight = nn.Parameter(
                fused.weight.contiguous(memory_format=layout), requires_grad=False
            )
            fused.bias.requires_grad_(False)
        name = f"_fast_conv_{count}"
        count += 1
        folded += 1
        root[name] = fused
        prev.target = name
        nd.replace_all_uses_with(prev)
        graph.erase_node(nd)
    relaid = 0
    if channels_last:
        for nd in graph.nodes:
            if nd.op != "call_module" or not isinstance(root[nd.target], nn.Conv2d):
                continue
            if nd.target.startswith("_fast_conv_") or not own(nd.target):
                continue  # folded (already channels-last), or to be kept as it is
            conv = copy.copy(root[nd.target])
            conv._parameters = dict(conv._parameters)
            conv.weight = nn.Parameter(
                conv.weight.detach().contiguous(memory_format=torch.channels_last),
                requires_grad=False,
            )
            name = f"_fast_conv_{count}"
            count += 1
            relaid += 1
            root[name] = conv
            nd.target = name
    changes = []
    if folded:
        changes.append(f"{folded} batch norm(s) folded into their convolutions")
    if channels_last:
        changes.append(f"{folded + relaid} convolution(s) with channels-last weights")
    return fx.GraphModule(root, graph), changes


def _get_attr(model: nn.Module, target: str):
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
