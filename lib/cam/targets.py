"""The target score Y of each image: what a class index, a callable or one callable per image
picks from the model's output."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from lib.cam.errors import CAMError, describe
from lib.outputs import tree_map

__all__ = ["Target", "Scorer", "scorer_for"]

Target = (
    None
    | int
    | Sequence[int]
    | torch.Tensor
    | Callable[[object], torch.Tensor]
    | Sequence[Callable[[object], torch.Tensor]]
)
#: ``scorer(out, images)``: the target score of each row of ``out``, the model's output for
#: inputs made from the images ``images`` (indices into the batch x)
Scorer = Callable[[object, torch.Tensor], torch.Tensor]


def scorer_for(target: Target, output, n: int) -> tuple[Scorer, torch.Tensor | None]:
    """Fix the target once, from the unperturbed output of the ``n`` images: a class per image,
    a callable on the whole output, or one callable per image.

    Returns:
        ``(scorer, classes)``: ``classes`` the (n,) class indices, None for callable targets.
    """
    if callable(target) and not isinstance(target, torch.Tensor):

        def scorer(out, idx):
            s = target(out)
            if not isinstance(s, torch.Tensor) or s.shape != (len(idx),):
                raise CAMError(
                    f"a callable target must return one score per image, shape "
                    f"({len(idx)},); it returned {describe(s)}"
                )
            return s

        return scorer, None
    if isinstance(target, (list, tuple)) and any(callable(t) for t in target):
        return _per_image_scorer(target, n), None
    if not isinstance(output, torch.Tensor):
        key = f"out[{next(iter(output))!r}]" if isinstance(output, Mapping) and output else "out[0]"
        raise CAMError(
            f"the model returns {describe(output)}, not a logits tensor, so a class index "
            f"cannot pick its score: pass a callable target that maps the output to one score "
            f"per image, e.g. target=lambda out: {key}[:, c].mean((1, 2)) for a segmentation "
            f"map or target=lambda out: {key}[:, c] for logits"
        )
    if output.dim() != 2:
        raise CAMError(
            f"the model's output has shape {tuple(output.shape)}; an int target "
            "needs (N, classes) logits: pass a callable target instead"
        )
    k = output.shape[1]
    if target is None:
        classes = output.argmax(1)
    elif _is_integer(target):
        classes = torch.full((n,), int(target), dtype=torch.long, device=output.device)
    else:
        try:
            classes = torch.as_tensor(target, device=output.device)
        except (TypeError, ValueError, RuntimeError):
            classes = None
        if (
            classes is None
            or classes.dtype.is_floating_point
            or classes.dtype == torch.bool
            or classes.dim() != 1
            or len(classes) != n
        ):
            raise CAMError(
                f"target must be None, an int, one int per image ({n}), a "
                f"callable or one callable per image; got {describe(target)}"
            )
        classes = classes.long()
    bad = (classes < 0) | (classes >= k)
    if bad.any():
        raise CAMError(
            f"target class {classes[bad][0].item()} is out of range: the model "
            f"has {k} classes (0..{k - 1})"
        )
    return (lambda out, idx: out.gather(1, classes[idx].view(-1, 1))[:, 0]), classes


def _per_image_scorer(targets, n):
    """Scores from one callable per image (pytorch-grad-cam's target objects): callable i gets
    image i's output (every batch-sized tensor of the output indexed at that image) and returns
    one score."""
    if not all(callable(t) for t in targets):
        raise CAMError(
            "target mixes callables and class indices: pass one callable per image, "
            "or class indices only"
        )
    if len(targets) != n:
        raise CAMError(
            f"target holds {len(targets)} per-image callables for {n} images: pass one per image"
        )

    def scorer(out, idx):
        rows = len(idx)
        scores = []
        for j, i in enumerate(idx.tolist()):
            s = targets[i](tree_map(lambda t: t[j] if t.dim() and t.shape[0] == rows else t, out))
            if not isinstance(s, torch.Tensor) or s.numel() != 1:
                raise CAMError(
                    f"the per-image target {i} must return one score (a scalar "
                    f"tensor); it returned {describe(s)}"
                )
            scores.append(s.reshape(()))
        return torch.stack(scores)

    return scorer


def _is_integer(obj) -> bool:
    """An int-like scalar: int, NumPy integer, 0-d integer tensor or array (not a bool)."""
    if isinstance(obj, bool | np.bool_):
        return False
    if isinstance(obj, numbers.Integral):
        return True
    if isinstance(obj, torch.Tensor | np.ndarray) and obj.ndim == 0:
        dtype = obj.dtype
        if isinstance(obj, torch.Tensor):
            return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool
        return np.issubdtype(dtype, np.integer)
    return False
