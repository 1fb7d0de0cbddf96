"""The dead zone of a masked model (Taimeskhanov et al., Section 3.1): input rows no visible unit sees."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from torch import nn

from .fields import RF, receptive_field


@dataclass(frozen=True)
class DeadZone:
    """Input rows no unmasked unit can see. ``rows``: their indices; ``n``; ``fraction`` of the
    image (rows x full width / area); ``first`` (None if empty); ``seen``: rows that are seen."""

    rows: tuple[int, ...]
    input_size: int
    visible_rows: tuple[int, ...]
    rf: RF

    n = property(lambda self: len(self.rows))
    fraction = property(lambda self: len(self.rows) / self.input_size)
    first = property(lambda self: self.rows[0] if self.rows else None)

    def as_slice(self) -> slice:
        """The dead rows as a slice (they must be contiguous)."""
        if not self.rows:
            return slice(0, 0)
        if self.rows != tuple(range(self.rows[0], self.rows[-1] + 1)):
            raise ValueError(f"the dead rows are not contiguous: {self.rows}")
        return slice(self.rows[0], self.rows[-1] + 1)


def dead_zone(
    model: nn.Module,
    input_size=None,
    masked_rows: int | None = None,
    *,
    layer: nn.Module | str | None = None,
    visible_rows: Iterable[int] | None = None,
    in_channels: int | None = None,
) -> DeadZone:
    """The dead zone (Taimeskhanov et al., Section 3.1): input rows outside the union of the RFs of
    the feature rows that the mask leaves visible.

    Taimeskhanov et al.'s masked VGG16: 224 px, 9 of 14 rows masked -> rows 170..223 (54 rows,
    24 %).

    Args:
        model: the feature extractor (its output is the masked map), or a model with
            ``.features`` (a ``MaskedVGG``, whose ``input_size`` and ``masked_rows`` are the
            defaults).
        input_size: int or (height, width).
        masked_rows: the number of masked bottom feature rows (the visible ones are the first
            ``n - masked_rows``).
        layer: the masked map's module (default: the model's output).
        visible_rows: the visible feature rows, instead of ``masked_rows``.
        in_channels: C of the blank input (default: the first convolution's).

    Returns:
        A :class:`DeadZone`: ``rows`` (the dead input rows), ``n``, ``fraction`` of the image,
        ``first``, and the map's :class:`RF`.

    Example:
        >>> from torch import nn
        >>> from lib.rf import dead_zone
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2))  # row i: 2i-1..2i+2
        >>> dz = dead_zone(net, input_size=8, masked_rows=2)  # rows 0-1 visible: input rows 0..4
        >>> dz.rows, dz.n, dz.fraction, dz.first
        ((5, 6, 7), 3, 0.375, 5)
    """
    if input_size is None:
        input_size = getattr(model, "input_size", None)
    if masked_rows is None:
        masked_rows = getattr(model, "masked_rows", None)
    if input_size is None:
        raise ValueError("input_size is required (e.g. 224)")
    if layer is None:
        # a whole MaskedVGG does not trace (its forward checks shapes in Python): use .features
        if isinstance(getattr(model, "features", None), nn.Module):
            model = model.features
        layer = ""
    rf = receptive_field(model, layer, input_size, in_channels)
    n = rf.y.size
    if visible_rows is None:
        if masked_rows is None:
            raise ValueError(
                "give masked_rows (the number of masked bottom feature rows) or visible_rows"
            )
        if not 0 <= masked_rows <= n:
            raise ValueError(
                f"masked_rows={masked_rows} must be in [0, {n}] for a {n}-row "
                f"feature map at input {input_size}"
            )
        visible = tuple(range(n - masked_rows))
    else:
        visible = tuple(sorted(set(int(r) for r in visible_rows)))
        if visible and not (0 <= visible[0] and visible[-1] < n):
            raise ValueError(f"visible_rows must lie in [0, {n}), got {visible}")
    h = rf.y.input_size
    covered = np.zeros(h, bool)
    for r in visible:
        b = rf.y.bounds(r)
        if b is not None:
            covered[b[0] : b[1] + 1] = True
    rows = tuple(int(i) for i in np.flatnonzero(~covered))
    return DeadZone(rows=rows, input_size=h, visible_rows=visible, rf=rf)
