"""Receptive fields (RF), effective receptive fields (ERF) and the dead zone of a masked model.

The theoretical RF (Araujo et al., *Distill* 2019; Santos et al., Eq. 1, ``r_{l-1} = r_l s_l + k_l -
s_l``) is computed from the model's own computation: the model runs once on a blank image (on
the shape-only "meta" device when it can), every torch operation is intercepted
(``__torch_function__``), and each one moves, per axis and per channel, the input interval that a
unit can depend on. Python control flow on shapes is fine (it runs for real); data-dependent
control flow follows the blank image's path, with a warning. The RF lives on an unbounded
image (Araujo's convention, so sizes may exceed the input: ResNet50 427 at 224 px); clip it with
:func:`unit_rf_bounds` to get the pixels a unit sees in a real image.

Rules. Convolution, pooling, padding, cropping and strided slicing: the window of Eq. 1, per axis.
Element-wise operations and additions (residuals): the union of the operands' intervals. Channel
concatenation keeps each channel's own RF, so the map has a range (DenseNet121: 1047-2071); a
convolution then mixes its channels (the union again). Global pooling (adaptive pooling to 1,
means over the spatial axes), squeeze-and-excitation (a product with a globally pooled tensor),
instance/group/layer normalisation over space, attention and flatten + linear make the RF
unbounded (``inf``). Up-sampling and transposed convolutions divide the jump; units then fall into
a few phases with different RFs, each tracked exactly. BatchNorm counts as in eval mode.

Modules: :mod:`lib.rf.fields` (the RF of every feature map, its result types and table),
:mod:`lib.rf.erf` (the effective RF, Eq. 2), :mod:`lib.rf.dead_zone` (Taimeskhanov et al.'s dead rows),
:mod:`lib.rf._trace` (the tracer behind them). Map resampling on RF centres is in
:mod:`lib.resample`. Command line: ``python -m lib.rf MODEL`` / ``python -m lib.rf deadzone``.
"""

from ._trace import RFError
from .dead_zone import DeadZone, dead_zone
from .erf import erf, erf_radius
from .fields import (
    RF,
    AxisRF,
    receptive_field,
    receptive_fields,
    rf_centres,
    rf_table,
    unit_rf_bounds,
)

__all__ = [
    "AxisRF",
    "RF",
    "RFError",
    "DeadZone",
    "receptive_field",
    "receptive_fields",
    "rf_table",
    "unit_rf_bounds",
    "rf_centres",
    "erf",
    "erf_radius",
    "dead_zone",
]
