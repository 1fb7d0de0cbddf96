"""The engine's one error type, and how it describes what it was given."""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["CAMError", "describe", "module_names"]


class CAMError(ValueError):
    """Bad input to the CAM engine; the message names the problem and the fix."""


def describe(obj) -> str:
    """A few words on ``obj`` for an error message: a tensor's shape, a dict's keys."""
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, Mapping):
        return f"a {type(obj).__name__} with keys {list(obj)}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__}"


def module_names(model) -> str:
    """The last dozen dotted module names of ``model``, for an error that asks for a layer."""
    names = [n for n, _ in model.named_modules() if n]
    return ", ".join(names[-12:]) + (" ..." if len(names) > 12 else "")
