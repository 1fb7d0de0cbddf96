"""A model's output as a tree of tensors: a tensor, or tuples, lists and dicts of them.

The CAM engine (:mod:`lib.cam`) and the accelerator (:mod:`lib.fast`) both read outputs of this
shape; :func:`same` is the accelerator's check that a faster copy computes what the model does,
and it refuses what it cannot compare rather than call it equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

__all__ = ["tree_map", "leaves", "same", "Uncomparable"]


class Uncomparable(TypeError):
    """An output holds something :func:`same` cannot compare (e.g. a dataclass)."""


def tree_map(fn: Callable[[torch.Tensor], object], obj):
    """``fn`` applied to every tensor of a model's output.

    Args:
        fn: a function of one tensor.
        obj: a tensor, or nested tuples / lists / dicts of them (named tuples included).

    Returns:
        ``obj`` rebuilt with the same containers, each tensor replaced by ``fn(tensor)``; other
        leaves as they are.

    Example:
        >>> tree_map(lambda t: t * 2, {"a": torch.tensor([1.0]), "b": (torch.tensor([2.0]), 3)})
        {'a': tensor([2.]), 'b': (tensor([4.]), 3)}
    """
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, Mapping):
        return type(obj)((k, tree_map(fn, v)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(tree_map(fn, v) for v in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(tree_map(fn, v) for v in obj)
    return obj


def leaves(obj) -> list[torch.Tensor]:
    """The tensors of a model's output.

    Args:
        obj: as in :func:`tree_map`.

    Returns:
        the tensors of ``obj``, in the order :func:`tree_map` visits them.

    Example:
        >>> [t.tolist() for t in leaves((torch.tensor([1]), {"b": torch.tensor([2])}, "x"))]
        [[1], [2]]
    """
    out: list[torch.Tensor] = []
    tree_map(out.append, obj)
    return out


_PLAIN = (type(None), bool, int, float, complex, str, bytes)


def _flatten(obj, path: str, out: list) -> None:
    if isinstance(obj, torch.Tensor):
        out.append((path, obj))
    elif isinstance(obj, Mapping):
        out.append((path, ("dict", tuple(obj))))
        for k, v in obj.items():
            _flatten(v, f"{path}[{k!r}]", out)
    elif isinstance(obj, (tuple, list)):
        out.append((path, (type(obj).__name__, len(obj))))
        for j, v in enumerate(obj):
            _flatten(v, f"{path}[{j}]", out)
    elif isinstance(obj, _PLAIN):
        out.append((path, obj))
    else:
        raise Uncomparable(
            f"the output holds an object of type {type(obj).__name__} at "
            f"{path or 'its top level'}, which cannot be compared element by "
            "element"
        )


def same(a, b, rtol: float = 1e-4, atol_scale: float = 1e-5) -> bool:
    """Whether two model outputs are equal.

    Args:
        a, b: outputs (tensors, tuples, lists, dicts and plain values).
        rtol: the relative tolerance of each pair of tensors.
        atol_scale: the absolute tolerance, as a multiple of 1 + the largest magnitude of
            ``b``'s tensor.

    Returns:
        True where both have the same structure, equal plain values, and every pair of tensors
        the same shape and dtype and close.

    Raises:
        Uncomparable: where either output holds anything but tensors, tuples, lists, dicts and
            plain values (a dataclass, say): such outputs are never called equal.

    Example:
        >>> same((torch.ones(2), 1), (torch.ones(2) + 1e-7, 1))
        True
        >>> same((torch.ones(2), 1), (torch.ones(2), 2))
        False
    """
    fa: list = []
    fb: list = []
    _flatten(a, "", fa)
    _flatten(b, "", fb)
    if len(fa) != len(fb):
        return False
    for (pa, u), (pb, v) in zip(fa, fb):
        if pa != pb or isinstance(u, torch.Tensor) != isinstance(v, torch.Tensor):
            return False
        if isinstance(u, torch.Tensor):
            if u.shape != v.shape or u.dtype != v.dtype:
                return False
            if u.numel() and not torch.allclose(
                u, v, rtol=rtol, atol=atol_scale * (1 + float(v.abs().max()))
            ):
                return False
        elif u != v:
            return False
    return True
