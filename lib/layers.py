"""Resolve a model's layers by dotted name, with errors that list the valid names."""

from __future__ import annotations

import difflib

from torch import nn

__all__ = ["resolve_layer", "layer_name", "LayerNotFoundError"]

# containers whose children are positions: the only ones an integer name may index
_SEQUENTIAL = (nn.Sequential, nn.ModuleList)


class LayerNotFoundError(KeyError):
    """An unknown layer name; the message lists the model's valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def _normalise(name: str) -> str:
    # "features[-1]" and "features[29]" (the papers' spelling) become dotted names.
    return name.replace("[", ".").replace("]", "").strip(".")


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """Return the sub-module ``layer`` of ``model``.

    ``layer`` is a module of the model, or a dotted name (``"layer4"``, ``"features.29"``);
    list indices may be negative and written the papers' way (``"features[-1]"``). An integer
    part that is not a child's own name is a position, and only into an ``nn.Sequential`` or
    ``nn.ModuleList``: ``"7"`` on a ResNet is an error, not its 8th child.
    """
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise LayerNotFoundError(
                f"the module {type(layer).__name__} is not a sub-module of this "
                f"{type(model).__name__}; pass one of its modules or a dotted name such as "
                f"{_examples(model)}"
            )
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be an nn.Module or a dotted name, got {type(layer).__name__}")
    module, path = model, []
    for part in _normalise(layer).split(".") if layer else []:
        children = dict(module.named_children())
        if part in children:
            module = children[part]
            path.append(part)
            continue
        index = _int(part)
        if index is not None and isinstance(module, _SEQUENTIAL):
            if -len(children) <= index < len(children):
                module = list(children.values())[index]
                path.append(part)
                continue
        _not_found(model, layer, module, path, part, index)
    return module


def layer_name(model: nn.Module, layer: nn.Module | str) -> str:
    """The dotted name of ``layer`` in ``model`` (the name itself if given as a string)."""
    module = resolve_layer(model, layer)
    for name, m in model.named_modules():
        if m is module:
            return name
    raise AssertionError("unreachable: resolve_layer found the module")


def _int(part: str) -> int | None:
    try:
        return int(part)
    except ValueError:
        return None


def _not_found(model, layer, module, path, part, index):
    names = [n for n, _ in model.named_modules() if n]
    where = ".".join(path) or type(model).__name__
    if index is not None and not isinstance(module, _SEQUENTIAL):
        # integer indexing of any module's children made "7" mean layer4 on a ResNet
        why = (
            f" {part!r} is a position, and positions index only an nn.Sequential or "
            f"nn.ModuleList; {where} is a {type(module).__name__}."
        )
    elif index is not None:
        why = f" {where} has {len(list(module.children()))} children; {part!r} is out of range."
    else:
        close = difflib.get_close_matches(layer, names, n=5)
        why = f" Did you mean: {', '.join(close)}?" if close else ""
    raise LayerNotFoundError(
        f"no layer named {layer!r} in {type(model).__name__}.{why} "
        f"Valid names ({len(names)}): {', '.join(names)}"
    )


def _examples(model: nn.Module) -> str:
    names = [n for n, _ in model.named_modules() if n]
    return ", ".join(repr(n) for n in names[-3:]) or "''"
