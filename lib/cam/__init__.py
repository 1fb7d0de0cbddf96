"""One CAM engine, many weightings.

A forward hook captures the target layer's activations A (N, K, h, w); autograd gives
G = dY/dA for the target score Y; each method is a weighting of A. The methods live in one
registry, :data:`METHODS` (name -> :class:`Method`); each entry says what it computes, what it
needs, what it costs and where it comes from (``help(cam.METHODS["gradcam"])``). The table
below is generated from it:

@METHODS_TABLE@

Maps are returned raw: signed, not normalised, at the layer's own resolution; post-processing
is separate (:func:`postprocess`). The constants (eps) of Grad-CAM++, XGrad-CAM, Score-CAM and
Ablation-CAM are those of pytorch-grad-cam, so that both agree to 1e-4 after the same
post-processing (Ablation-CAM: where a layer's smallest activation is 0, see its entry).
Integrated Gradients, occlusion and Gradient SHAP come from Captum behind the same call.

:func:`compute` gives one map (one method, one layer); :func:`compute_many` gives
``maps[method][layer_name]`` for several methods and layers from one shared forward and backward
pass. Options of a method go in ``options={"eigencam": {"sign": "svd"}}``.

The package, in reading order: :mod:`~lib.cam.registry` (what a method is),
:mod:`~lib.cam.methods` (the methods, each its paper's formula), :mod:`~lib.cam.engine` (hooks,
targets, the shared pass, Ablation-CAM's split above the layer), :mod:`~lib.cam.api` (the two
calls), :mod:`~lib.cam.checks` (what a caller passes), :mod:`~lib.cam.postprocess`.

Speed: below the first target layer autograd is off, so a gradient map costs one forward pass
and a backward pass from the output to the layer only. The methods bound by forward passes
(Score-CAM, Ablation-CAM, occlusion, Integrated Gradients, Gradient SHAP) run those passes
through ``accelerator=`` where one is given (:class:`lib.fast.Accelerator`: batch-norm folded,
channels-last), which this package never imports: it asks an accelerator one thing,
:class:`~lib.cam.engine.Accelerator`'s ``prepare``.

Adding a method: one function ``weighting(A, G, ctx) -> map`` decorated with
:func:`register` (name, formula, cost, reference, needs). Nothing else to edit: the name
tuples (``GRADIENT_METHODS``, ``LAYER_METHODS``, ``INPUT_METHODS``, ``CAPTUM_METHODS``) and
this table are derived from the registry.
"""

from lib.cam import methods as _methods  # noqa: F401  (registers the methods)
from lib.cam.api import compute, compute_many
from lib.cam.engine import Accelerator, Context
from lib.cam.errors import CAMError
from lib.cam.postprocess import PGC_PRESET, postprocess
from lib.cam.registry import METHODS, Method, methods_table, names_where, register
from lib.layers import resolve_layer

__all__ = [
    "compute",
    "compute_many",
    "postprocess",
    "register",
    "Method",
    "Context",
    "Accelerator",
    "METHODS",
    "GRADIENT_METHODS",
    "LAYER_METHODS",
    "INPUT_METHODS",
    "CAPTUM_METHODS",
    "CAMError",
    "PGC_PRESET",
    "resolve_layer",
]

#: derived from the registry; kept for callers that test membership
GRADIENT_METHODS = names_where(layer=True, gradients=True, input_resolution=False)
LAYER_METHODS = names_where(layer=True, input_resolution=False)
INPUT_METHODS = names_where(input_resolution=True, captum=False)
CAPTUM_METHODS = names_where(captum=True)

__doc__ = __doc__.replace("@METHODS_TABLE@", methods_table())
