"""Chapter "Sanity checks": do the maps depend on the model? (Adebayo et al., *Sanity Checks for
Saliency Maps*, NeurIPS 2018, Sections 3 and 4), run on every affordable method of the engine.

- **Model-parameter randomisation** (the paper's Section 3): the weights of a trained model are
  re-initialised block by block from the logits down (:func:`cascading`: the blocks above stay
  random), or one block at a time with the others trained (:func:`independent`); after each step
  every method's map is compared with the trained model's map (:func:`similarities`).
- **Data randomisation** (Section 4): the same small network trained on true labels and on
  permuted labels until it memorises them (:func:`data_randomisation_models`); the same scores.

Conventions (fixed here, before any run):

- a *block* is one or more dotted module names; re-initialising it calls ``reset_parameters()``
  of every sub-module that has its own parameters (PyTorch's default initialisation of that layer
  type), right after ``torch.manual_seed(seed)`` (inside a forked generator: the caller's random
  state is left alone). The same seed for every block, as Quantus's MPRT does, so a block gets the
  same random weights in the cascade and alone. Batch norm's running statistics are reset with
  it (mean 0, variance 1), as Quantus does. The authors' code re-initialised TensorFlow's
  *trainable* variables only and so kept the moving averages (``buffers=False``): with random
  weights below it, a batch norm that still subtracts the trained mean outputs nearly the same
  constant whatever the input, and every map after it stops changing with the blocks below.
- *target*: the class the trained model predicts, for every randomised model too (the same
  question asked of both; Quantus's protocol). The authors' code explained each model's own top
  class: ``target="own"``.
- *the map compared*: a layer map (N, h, w) bilinearly up-sampled, signed, to the input
  (align_corners=False); an input attribution (N, C, H, W) summed over its channels. No ReLU, no
  normalisation: the measures below take what they need.
- *the measures* (the paper's four, :data:`MEASURES`): Spearman rank correlation of the absolute
  values and of the signed values (``scipy.stats.spearmanr``); SSIM
  (``skimage.metrics.structural_similarity``, data range 1) and the Pearson correlation of HOG
  features (``skimage.feature.hog``, as the paper) of the absolute maps divided by their maximum
  (the authors' ``abs_grayscale_norm``). A map that is constant has no ranking: its correlations
  are 0 (counted in :func:`similarities`' ``constant`` column), never NaN.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats
from skimage.feature import hog
from skimage.metrics import structural_similarity
from torch import nn

from .. import cam, fast
from .. import verdict as V
from ..data.fashion_mnist import load_fashion_mnist
from ..data.imagenet import WHERE, ImageNetVal, imagenet_root
from ..data.needs import Need, require, weights_need
from ..data.photos import list_photos
from ..layers import resolve_layer
from ..models.zoo import build
from ..plot import METHOD_LABELS
from ..report import outcome_word
from ..train import (
    STAND_INS,
    DataBundle,
    TrainConfig,
    load_or_train,
    load_trained,
    stand_in_recipe,
    stand_in_test_scenes,
)

__all__ = [
    "SIZES",
    "COST",
    "MEASURES",
    "MEASURE_LABELS",
    "LITE0_LAYER",
    "LITE0_BLOCKS",
    "STAND_IN",
    "STAND_IN_BLOCKS",
    "DATA_MODEL",
    "DATA_LAYER",
    "DATA_BLOCKS",
    "IMAGENET_BLOCKS",
    "IMAGENET_LAYERS",
    "MEMORISE_N",
    "MEMORISE_EPOCHS",
    "MEMORISE_LR",
    "MEMORISE_BATCH",
    "TOP_STEPS",
    "INSENSITIVE_ABOVE",
    "SENSITIVE_BELOW",
    "PASS_BELOW",
    "MEMORISED",
    "CHEAP",
    "EXPENSIVE",
    "PAPER_CLAIMS",
    "method_label",
    "normalise_blocks",
    "reinitialise",
    "cascading",
    "independent",
    "changed_parameters",
    "input_gradient",
    "captum_options",
    "methods_for",
    "explain",
    "comparable",
    "spearman",
    "ssim",
    "hog_cell",
    "hog_similarity",
    "similarities",
    "Randomisation",
    "independent_measures",
    "run_randomisation",
    "per_unit",
    "step_means",
    "top_block_label",
    "full_block_label",
    "block_table",
    "stand_in_models",
    "stand_in_layer",
    "stand_in_inputs",
    "memorise_bundle",
    "data_randomisation_models",
    "training_accuracy",
    "data_inputs",
    "compare_models",
    "paper_claims",
    "full_claims",
    "engine_findings",
    "engine_table",
    "scope_check",
    "self_check",
    "memorisation_check",
    "cascade_figure",
    "curves_figure",
    "data_figure",
    "imagenet_figure",
    "independent_table",
    "imagenet_blocks",
    "check_full_data",
    "imagenet_run",
]

# --------------------------------------------------------------------------------------------
# Sizes, layers, blocks
# --------------------------------------------------------------------------------------------

#: per profile: the photographs; whether the forward-pass-bound methods run (Integrated Gradients,
#: Gradient SHAP, occlusion); their sizes; the stand-ins' seeds and scenes; the data
#: randomisation's training subset, its epochs and the test items explained
SIZES: dict[str, dict[str, Any]] = {
    "photos": {"smoke": ["chelsea", "coffee"], "default": list_photos(), "full": list_photos()},
    "expensive": {"smoke": False, "default": True, "full": True},
    "ig_steps": {"smoke": 4, "default": 6, "full": 32},
    "shap_samples": {"smoke": 2, "default": 3, "full": 16},
    "occlusion_grid": {"smoke": 4, "default": 4, "full": 7},
    "independent_runs": {"smoke": False, "default": True, "full": True},
    "stand_in_seeds": {"smoke": [0], "default": [0, 1, 2], "full": [0, 1, 2]},
    "n_scenes": {"smoke": 6, "default": 16, "full": 100},
    "n_data_items": {"smoke": 8, "default": 32, "full": 200},
    "imagenet_archs": {"smoke": [], "default": [], "full": ["vgg16", "resnet50"]},
    "n_imagenet": {"smoke": 0, "default": 0, "full": 100},
}
COST = {
    "smoke": "about 2 minutes on a 2-core CPU",
    "default": "2 to 3 minutes on a 2-core CPU",
    "full": "about 20 minutes on one GPU (two ImageNet networks, 100 ILSVRC images)",
}

#: the measures, as the paper names them
MEASURES = ("spearman_abs", "spearman", "ssim", "hog")
MEASURE_LABELS = {
    "spearman_abs": "Spearman (absolute values)",
    "spearman": "Spearman (signed)",
    "ssim": "SSIM",
    "hog": "HOG (Pearson)",
}

#: EfficientNet-Lite0 (lib.models.pretrained): the Grad-CAM layer and the blocks from the logits
#: down (timm's names; its 16 inverted-residual blocks are grouped by stage)
LITE0_LAYER = "bn2"
LITE0_BLOCKS: dict[str, tuple[str, ...]] = {
    "logits": ("classifier",),
    "head": ("conv_head", "bn2"),
    **{f"stage {s + 1}": (f"blocks.{s}",) for s in range(6, -1, -1)},
    "stem": ("conv_stem", "bn1"),
}
#: the stand-in: the VGG16-BN-style network of the localisation chapter (64 px scenes, three
#: seeds, committed weights), its Grad-CAM layer and its blocks from the logits down (its three
#: linear layers, then its five convolution stages)
STAND_IN = "VGG16"
STAND_IN_BLOCKS: dict[str, tuple[str, ...]] = {
    "logits": ("classifier.6",),
    "fc 2": ("classifier.4",),
    "fc 1": ("classifier.1",),
    "conv 5": tuple(f"features.{i}" for i in (34, 35, 37, 38, 40, 41)),
    "conv 4": tuple(f"features.{i}" for i in (24, 25, 27, 28, 30, 31)),
    "conv 3": tuple(f"features.{i}" for i in (14, 15, 17, 18, 20, 21)),
    "conv 2": tuple(f"features.{i}" for i in (7, 8, 10, 11)),
    "conv 1": tuple(f"features.{i}" for i in (0, 1, 3, 4)),
}
#: the data randomisation's training: the first MEMORISE_N Fashion-MNIST training items, true or
#: permuted labels, the same recipe for both (enough for the permuted labels to be memorised; the
#: weights are committed, so every profile loads them)
MEMORISE_N, MEMORISE_EPOCHS, MEMORISE_LR, MEMORISE_BATCH = 1000, 100, 3e-3, 32
#: the data randomisation's network: the MNIST network of the faithfulness chapter (conv 5x5,
#: max-pool, ReLU, two linear layers), trained here on Fashion-MNIST items
DATA_MODEL = "mnist_net"
DATA_LAYER = "relu1"
DATA_BLOCKS: dict[str, tuple[str, ...]] = {
    "logits": ("fc2",),
    "fc 1": ("fc1",),
    "conv 1": ("conv1",),
}
#: the full profile's torchvision networks: Grad-CAM layers (as the localisation chapter)
IMAGENET_LAYERS = {"vgg16": "features.29", "resnet50": "layer4"}

# --------------------------------------------------------------------------------------------
# The rules of the verdicts, fixed before the run
# --------------------------------------------------------------------------------------------

#: "the top layers": the first two steps of the cascade (the logits and the block below them)
TOP_STEPS = 2
#: a method is *insensitive* to a randomisation when the mean Spearman rank correlation of the
#: absolute maps (trained vs randomised) stays above this; *sensitive* when it falls below
INSENSITIVE_ABOVE = 0.5
SENSITIVE_BELOW = 0.5
#: the engine's pass / fail: a method passes the model-parameter randomisation test when the mean
#: Spearman correlation (absolute values) between the trained model's map and the map of the
#: model with every block re-initialised is below this
PASS_BELOW = 0.5
#: the data randomisation's network must memorise its permuted labels: training accuracy at least
MEMORISED = 0.95


def method_label(method: str) -> str:
    """Display name of a method ("gradient" is this chapter's plain input gradient)."""
    return "Gradient" if method == "gradient" else METHOD_LABELS.get(method, method)


# --------------------------------------------------------------------------------------------
# Randomisation
# --------------------------------------------------------------------------------------------


def normalise_blocks(blocks) -> list[tuple[str, tuple[str, ...]]]:
    """Blocks as (label, module names): from a mapping ``{label: names}``, or a sequence whose
    items are a dotted name or a tuple of names (labelled by their names joined with '+')."""
    if isinstance(blocks, Mapping):
        items = [(str(k), (v,) if isinstance(v, str) else tuple(v)) for k, v in blocks.items()]
    else:
        items = []
        for b in blocks:
            if isinstance(b, str):
                items.append((b, (b,)))
            elif len(b) == 2 and isinstance(b[0], str) and isinstance(b[1], (tuple, list)):
                items.append((b[0], tuple(b[1])))  # already (label, names)
            else:
                items.append(("+".join(b), tuple(b)))
    if not items:
        raise ValueError("no blocks: give at least one module name")
    for label, names in items:
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(
                f"block {label!r}: give one or more dotted module names, got {names!r}"
            )
    labels = [lab for lab, _ in items]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two blocks have the same label: {labels}")
    return items


def _resettable(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The sub-modules (with their names) whose own parameters ``reset_parameters`` re-draws."""
    return [
        (n, m)
        for n, m in module.named_modules()
        if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))
    ]


def reinitialise(
    model: nn.Module, names: Sequence[str], seed: int = 0, buffers: bool = True
) -> list[str]:
    """Re-initialise, in place, the modules ``names`` of ``model``: ``reset_parameters()`` of
    every sub-module with its own parameters, in the order of ``named_modules``, right after
    ``torch.manual_seed(seed)`` (in a forked generator). Buffers (batch norm's running
    statistics) are reset too, unless ``buffers=False`` (then kept as trained). Returns the
    names of the parameters re-drawn.

    Raises ValueError where a parameter of the block belongs to a module without
    ``reset_parameters`` (it would stay trained without anyone noticing)."""
    done: list[str] = []
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for name in names:
            block = resolve_layer(model, name)
            covered = set()
            kept = {k: b.detach().clone() for k, b in block.named_buffers()} if not buffers else {}
            for sub_name, sub in _resettable(block):
                sub.reset_parameters()
                for p_name, _ in sub.named_parameters(recurse=False):
                    covered.add(f"{sub_name}.{p_name}" if sub_name else p_name)
            missed = [k for k, _ in block.named_parameters() if k not in covered]
            if missed:
                raise ValueError(
                    f"block {name!r}: parameters {missed} belong to modules without "
                    "reset_parameters(); re-initialise them yourself or choose "
                    "another block"
                )
            with torch.no_grad():
                for k, b in block.named_buffers():
                    if k in kept:
                        b.copy_(kept[k])
            done += [f"{name}.{k}" for k in sorted(covered)]
    return done


def cascading(
    model: nn.Module, blocks, seed: int = 0, buffers: bool = True
) -> Iterator[tuple[str, nn.Module]]:
    """Cascading randomisation (the paper's Section 3): yields ``(label, model)`` after each
    block, in the order given (logits first), every block so far re-initialised; each model is
    a new deep copy in eval mode, ``model`` is never changed."""
    work = copy.deepcopy(model).eval()
    for label, names in normalise_blocks(blocks):
        reinitialise(work, names, seed, buffers)
        yield label, copy.deepcopy(work)


def independent(
    model: nn.Module, blocks, seed: int = 0, buffers: bool = True
) -> Iterator[tuple[str, nn.Module]]:
    """Independent randomisation: yields ``(label, model)`` with only that block
    re-initialised (the same random weights as in :func:`cascading`), the rest trained."""
    for label, names in normalise_blocks(blocks):
        work = copy.deepcopy(model).eval()
        reinitialise(work, names, seed, buffers)
        yield label, work


def changed_parameters(a: nn.Module, b: nn.Module) -> list[str]:
    """Names of the parameters of ``b`` that differ from ``a``'s (same architecture)."""
    pa = dict(a.named_parameters())
    return [
        k
        for k, v in b.named_parameters()
        if not torch.equal(pa[k].detach().cpu(), v.detach().cpu())
    ]


# --------------------------------------------------------------------------------------------
# Maps
# --------------------------------------------------------------------------------------------


def input_gradient(model: nn.Module, x: torch.Tensor, target: Sequence[int]) -> torch.Tensor:
    """The plain gradient of the target logit with respect to the input (Simonyan et al.'s
    saliency, the paper's "Gradient"), (N, C, H, W); the model's state is left as it was."""
    xg = x.detach().clone().requires_grad_(True)
    idx = torch.as_tensor(list(target), device=x.device)
    with torch.enable_grad():
        out = model(xg)
        score = out.gather(1, idx.view(-1, 1)).sum()
        (g,) = torch.autograd.grad(score, xg)
    return g.detach()


def captum_options(method: str, sizes: Mapping[str, Any], channels: int, side: int) -> dict:
    """The Captum arguments of a forward-pass-bound method at this profile's sizes, for inputs
    of ``channels`` x ``side`` x ``side``: Integrated Gradients' steps (zero baseline), Gradient
    SHAP's samples, occlusion's windows (``occlusion_grid`` x ``occlusion_grid`` squares)."""
    if method == "integratedgradients":
        return {"n_steps": sizes["ig_steps"], "internal_batch_size": 64}
    if method == "gradientshap":
        return {"n_samples": sizes["shap_samples"], "stdevs": 0.1}
    if method == "occlusion":  # a grid x grid tiling of the input by windows of zeros
        w = max(1, int(side) // sizes["occlusion_grid"])
        return {
            "sliding_window_shapes": (channels, w, w),
            "strides": w,
            "perturbations_per_eval": 16,
        }
    return {}


#: the methods a model gets, in the figure's order: the plain gradient, the guided ones, the CAM
#: family at the layer, then the forward-pass-bound ones (profile permitting)
CHEAP = [
    "gradient",
    "guidedbackprop",
    "guidedgradcam",
    "cam",
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "layercam",
    "eigencam",
    "ablationcam",
]
EXPENSIVE = ["integratedgradients", "gradientshap", "occlusion"]


def methods_for(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    expensive: bool,
    only: Sequence[str] | None = None,
) -> list[str]:
    """The methods this chapter runs on ``model``: every method of the engine's registry but the
    counterfactual (Grad-CAM with the sign flipped: the same absolute map) and Score-CAM (one
    forward pass per channel), plus the plain gradient; CAM only where the model ends in
    global average pooling + a linear layer after ``layer`` (checked on one image); the
    forward-pass-bound methods only if ``expensive``. ``only`` restricts the list."""
    out = list(CHEAP) + (list(EXPENSIVE) if expensive else [])
    if "cam" in out:
        try:
            cam.compute(model, x[:1], layer, "cam")
        except cam.CAMError:
            out.remove("cam")
    if only is not None:
        unknown = [m for m in only if m != "gradient" and m not in cam.METHODS]
        if unknown:
            raise ValueError(
                f"unknown methods {unknown}; choose from 'gradient' and {list(cam.METHODS)}"
            )
        out = [m for m in only]
    return out


def explain(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    methods: Sequence[str],
    target: Sequence[int],
    sizes: Mapping[str, Any],
    batch_size: int = 128,
) -> dict[str, torch.Tensor]:
    """Every method's raw map of ``model`` for the images ``x`` and the classes ``target``:
    the layer methods and the guided ones from one ``cam.compute_many`` call, each Captum method
    with its own options, the plain gradient by autograd. ``{method: tensor}`` on the CPU."""
    target = [int(t) for t in target]
    model = model.eval()
    shared = [m for m in methods if m in cam.METHODS and not cam.METHODS[m].captum]
    out: dict[str, torch.Tensor] = {}
    if shared:
        maps = cam.compute_many(
            model, x, [layer], shared, target, batch_size=batch_size, accelerator=fast.Accelerator()
        )
        name = next(iter(maps[shared[0]]))
        out.update({m: maps[m][name].detach().cpu() for m in shared})
    for m in methods:
        if m in cam.METHODS and cam.METHODS[m].captum:
            out[m] = (
                cam.compute(
                    model,
                    x,
                    layer,
                    m,
                    target,
                    batch_size=batch_size,
                    accelerator=fast.Accelerator(),
                    captum_kwargs=captum_options(m, sizes, x.shape[1], x.shape[-1]),
                )
                .detach()
                .cpu()
            )
        elif m == "gradient":
            out[m] = input_gradient(model, x, target).cpu()
    return {m: out[m] for m in methods}


def comparable(raw: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """The map that is compared, (N, H, W) float64: a layer map (N, h, w) up-sampled bilinearly
    (signed, align_corners=False) to ``size``; an input attribution (N, C, H, W) summed over C."""
    t = raw.detach().float().cpu()
    if t.dim() == 4:
        t = t.sum(1)
    elif t.dim() == 3:
        if tuple(t.shape[-2:]) != tuple(size):
            t = F.interpolate(t[:, None], size=tuple(size), mode="bilinear", align_corners=False)[
                :, 0
            ]
    else:
        raise ValueError(f"a map must be (N, h, w) or (N, C, H, W), got {tuple(t.shape)}")
    return t.double().numpy()


# --------------------------------------------------------------------------------------------
# Similarity measures
# --------------------------------------------------------------------------------------------


def _constant(a: np.ndarray) -> bool:
    return bool(np.ptp(a) == 0)


def spearman(a: np.ndarray, b: np.ndarray, absolute: bool = True) -> float:
    """Spearman's rank correlation (``scipy.stats.spearmanr``) of two maps, of their absolute
    values (``absolute``) or signed; 0 where either map is constant (no ranking)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if absolute:
        a, b = np.abs(a), np.abs(b)
    if _constant(a) or _constant(b):
        return 0.0
    return float(stats.spearmanr(a, b)[0])


def _unit(a: np.ndarray) -> np.ndarray:
    """|a| / max|a| (the authors' abs_grayscale_norm), zeros for a zero map."""
    a = np.abs(np.asarray(a, float))
    m = a.max()
    return a / m if m > 0 else np.zeros_like(a)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (``skimage.metrics.structural_similarity``, data range 1) of the two absolute maps,
    each divided by its maximum."""
    return float(structural_similarity(_unit(a), _unit(b), data_range=1.0))


def hog_cell(size: int) -> int:
    """HOG's cell side for a map of ``size`` px: 8 cells across (28 px at 224, 8 at 64)."""
    return max(2, int(size) // 8)


def hog_similarity(a: np.ndarray, b: np.ndarray, cell: int | None = None) -> float:
    """The Pearson correlation (``scipy.stats.pearsonr``) of the HOG features
    (``skimage.feature.hog``, 9 orientations, ``cell`` px cells (default :func:`hog_cell`),
    2x2-cell blocks) of the two
    absolute maps divided by their maximum; 0 where either has no gradient at all."""
    ha, hb = _hog(_unit(a), cell), _hog(_unit(b), cell)
    if _constant(ha) or _constant(hb):
        return 0.0
    return float(stats.pearsonr(ha, hb)[0])


class _Prepared:
    """What the measures need of one map, computed once (the trained model's maps are compared
    with every step's): ranks of |map| and of map, |map| / max |map| and its HOG features."""

    def __init__(self, a: np.ndarray, measures: Sequence[str]):
        self.constant = _constant(a)
        flat = np.asarray(a, float).ravel()
        self.rank_abs = stats.rankdata(np.abs(flat)) if "spearman_abs" in measures else None
        self.rank = stats.rankdata(flat) if "spearman" in measures else None
        self.unit = _unit(a) if {"ssim", "hog"} & set(measures) else None
        self.hog = _hog(self.unit) if "hog" in measures else None
        self.constant_abs = _constant(np.abs(flat))


def _hog(unit: np.ndarray, cell: int | None = None) -> np.ndarray:
    cell = hog_cell(unit.shape[-1]) if cell is None else cell
    return hog(
        unit,
        orientations=9,
        pixels_per_cell=(cell, cell),
        cells_per_block=(2, 2),
        feature_vector=True,
    )


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r (``scipy.stats.pearsonr``'s statistic, computed as NumPy's corrcoef: the same
    number without SciPy's per-call checks, which cost more than the sum at 224 px); 0 where
    either is constant."""
    if _constant(a) or _constant(b):
        return 0.0
    return float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))


def _scores(p: _Prepared, q: _Prepared, measures: Sequence[str]) -> dict[str, float]:
    out = {}
    if "spearman_abs" in measures:  # Spearman = Pearson of the ranks (scipy's definition)
        out["spearman_abs"] = (
            0.0 if p.constant_abs or q.constant_abs else _pearson(p.rank_abs, q.rank_abs)
        )
    if "spearman" in measures:
        out["spearman"] = 0.0 if p.constant or q.constant else _pearson(p.rank, q.rank)
    if "ssim" in measures:
        out["ssim"] = float(structural_similarity(p.unit, q.unit, data_range=1.0))
    if "hog" in measures:
        out["hog"] = _pearson(p.hog, q.hog)
    return out


def similarities(
    reference: Mapping[str, np.ndarray],
    other: Mapping[str, np.ndarray],
    measures: Sequence[str] = MEASURES,
    units: Sequence | None = None,
    prepared: dict | None = None,
) -> pd.DataFrame:
    """One row per (method, unit): the measures between ``reference[method][i]`` and
    ``other[method][i]`` (maps from :func:`comparable`; the same numbers as :func:`spearman`,
    :func:`ssim` and :func:`hog_similarity`), and ``constant`` (the other map is constant, so
    its correlations are 0). ``prepared``: a dict in which the reference's ranks and HOG
    features are kept from one call to the next (the same reference against many steps)."""
    bad = [m for m in measures if m not in MEASURES]
    if bad:
        raise ValueError(f"unknown measures {bad}; choose from {MEASURES}")
    prepared = {} if prepared is None else prepared
    rows = []
    for m, ref in reference.items():
        oth = other[m]
        if ref.shape != oth.shape:
            raise ValueError(f"{m}: maps of shapes {ref.shape} and {oth.shape}")
        names = list(range(len(ref))) if units is None else list(units)
        if len(names) != len(ref):
            raise ValueError(f"{len(names)} unit names for {len(ref)} maps")
        for i, unit in enumerate(names):
            key = (m, i, tuple(measures))
            if key not in prepared:
                prepared[key] = _Prepared(ref[i], measures)
            q = _Prepared(oth[i], measures)
            rows.append(
                {
                    "method": m,
                    "unit": unit,
                    "constant": q.constant,
                    **_scores(prepared[key], q, measures),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# One model through both randomisations
# --------------------------------------------------------------------------------------------


class Randomisation:
    """What :func:`run_randomisation` returns: ``scores`` (one row per order, step, method, unit
    and measure columns), the trained model's ``reference`` maps and the cascade's ``maps``
    (``{step label: {method: (K, H, W)}}``, kept for the units ``keep`` only), the ``steps`` in
    order, ``target``, ``seconds`` and ``scope`` (per step, parameters changed outside / left
    unchanged inside the randomised blocks)."""

    def __init__(self, scores, reference, maps, steps, target, seconds, scope, methods):
        self.scores, self.reference, self.maps = scores, reference, maps
        self.steps, self.target, self.seconds, self.scope = steps, target, seconds, scope
        self.methods = methods


def _scope_errors(trained: nn.Module, model: nn.Module, expected: set[str]) -> tuple[int, int]:
    changed = set(changed_parameters(trained, model))
    return len(changed - expected), len(expected - changed)


def _params_of(model: nn.Module, names: Sequence[str]) -> set[str]:
    out = set()
    for n in names:
        prefix = n + "."
        out |= {k for k, _ in model.named_parameters() if k.startswith(prefix) or k == n}
    return out


def independent_measures(measure: str = "spearman_abs") -> tuple[str, ...]:
    """The measures of the independent order: the two Spearman correlations, and ``measure``
    where it is another (SSIM and HOG cost more than the maps, so only when asked for)."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose from {MEASURES}")
    return tuple(m for m in MEASURES if m in ("spearman_abs", "spearman", measure))


def run_randomisation(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    blocks,
    methods: Sequence[str],
    sizes: Mapping[str, Any],
    seed: int = 0,
    orders=("cascading", "independent"),
    target: str | Sequence[int] = "trained",
    units: Sequence | None = None,
    measures: Sequence[str] = MEASURES,
    keep: Sequence[int] = (0,),
    buffers: bool = True,
    independent_methods: Sequence[str] | None = None,
    independent_measures: Sequence[str] = ("spearman_abs", "spearman"),
    progress: bool = False,
) -> Randomisation:
    """Both randomisation tests of one model on the images ``x``: the trained model's maps, then
    after each step of each order (:func:`cascading`, :func:`independent`) every method's map,
    scored against the trained one by :func:`similarities`. ``target``: ``"trained"`` (the
    trained model's top-1 class, for every model), ``"own"`` (each model's own top-1, as the
    authors' code) or class indices. ``independent_methods`` restricts the methods of the
    independent order (default: all), ``independent_measures`` its measures (default the two
    Spearman correlations: SSIM and HOG cost more than the maps)."""
    t0 = time.perf_counter()
    model = model.eval()
    blocks = normalise_blocks(blocks)
    size = tuple(x.shape[-2:])
    with torch.no_grad():
        top = model(x).argmax(1).cpu().tolist()
    if isinstance(target, str):
        if target not in ("trained", "own"):
            raise ValueError(f"target must be 'trained', 'own' or class indices, got {target!r}")
        fixed = top if target == "trained" else None
    else:
        fixed = [int(t) for t in target]
    units = list(range(len(x))) if units is None else list(units)
    raw = explain(model, x, layer, methods, fixed or top, sizes)
    reference = {m: comparable(v, size) for m, v in raw.items()}
    prepared: dict = {}
    keep = list(keep)
    rows, maps, scope = (
        [],
        {"trained": {m: v[keep].astype(np.float32) for m, v in reference.items()}},
        [],
    )
    steps = ["trained"] + [lab for lab, _ in blocks]
    for order in orders:
        gen = {"cascading": cascading, "independent": independent}[order]
        which = (
            list(methods)
            if order == "cascading" or independent_methods is None
            else [m for m in methods if m in independent_methods]
        )
        randomised_so_far: list[str] = []
        for k, ((label, model_k), (_, names)) in enumerate(
            zip(gen(model, blocks, seed, buffers), blocks)
        ):
            randomised_so_far = (
                randomised_so_far + list(names) if order == "cascading" else list(names)
            )
            outside, inside = _scope_errors(model, model_k, _params_of(model, randomised_so_far))
            scope.append(
                {
                    "order": order,
                    "step": label,
                    "changed outside": outside,
                    "unchanged inside": inside,
                }
            )
            if not which:
                continue
            if fixed is None:
                with torch.no_grad():
                    tgt = model_k(x).argmax(1).cpu().tolist()
            else:
                tgt = fixed
            got = {
                m: comparable(v, size)
                for m, v in explain(model_k, x, layer, which, tgt, sizes).items()
            }
            meas = (
                measures
                if order == "cascading"
                else [m for m in measures if m in independent_measures]
            )
            sim = similarities({m: reference[m] for m in which}, got, meas, units, prepared)
            sim.insert(0, "order", order)
            sim.insert(1, "step", label)
            sim.insert(2, "depth", k + 1)
            rows.append(sim)
            if order == "cascading":
                maps[label] = {m: v[keep].astype(np.float32) for m, v in got.items()}
            if progress:
                print(f"{order} {label}: {time.perf_counter() - t0:.1f} s")
    scores = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return Randomisation(
        scores,
        reference,
        maps,
        steps,
        fixed or top,
        time.perf_counter() - t0,
        pd.DataFrame(scope),
        list(methods),
    )


def per_unit(scores: pd.DataFrame, measure: str = "spearman_abs") -> pd.DataFrame:
    """Mean of ``measure`` per (order, step, depth, method, unit) over the other columns (seeds):
    the values the intervals are computed on (one per image or scene)."""
    keys = [c for c in ("order", "step", "depth", "method", "unit") if c in scores.columns]
    return scores.groupby(keys, sort=False, as_index=False)[measure].mean()


def step_means(
    scores: pd.DataFrame,
    steps: Sequence[str],
    measure: str = "spearman_abs",
    order: str = "cascading",
) -> pd.DataFrame:
    """One row per method (display names), one column per step of ``steps``: the mean of
    ``measure`` over the units (per unit, the mean over seeds first) after that step."""
    d = per_unit(scores[(scores["order"] == order) & scores["step"].isin(list(steps))], measure)
    t = d.groupby(["method", "step"], sort=False)[measure].mean().unstack("step")
    t = t.reindex(index=list(dict.fromkeys(d["method"])), columns=list(steps))
    t.index = [method_label(m) for m in t.index]
    t.columns = [f"after '{s}'" for s in t.columns]
    return t.rename_axis("method")


def top_block_label(blocks, steps: int = TOP_STEPS) -> str:
    """The step label after which "the top layers" are random."""
    return normalise_blocks(blocks)[steps - 1][0]


def full_block_label(blocks) -> str:
    """The step label after which every block is random."""
    return normalise_blocks(blocks)[-1][0]


def block_table(model: nn.Module, blocks) -> pd.DataFrame:
    """One row per block: its label, modules and number of parameters."""
    rows = []
    for label, names in normalise_blocks(blocks):
        n = sum(p.numel() for name in names for p in resolve_layer(model, name).parameters())
        rows.append({"step": label, "modules": ", ".join(names), "parameters": n})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The stand-ins and the data randomisation
# --------------------------------------------------------------------------------------------


def stand_in_models(seeds: Sequence[int], device="cpu") -> list[nn.Module]:
    """The committed VGG16-BN-style stand-ins of the localisation chapter, one per seed."""
    return [
        load_trained(stand_in_recipe(STAND_IN, s), device=device, verbose=False)[0].eval()
        for s in seeds
    ]


def stand_in_layer() -> str:
    return STAND_INS[STAND_IN][2]


def stand_in_inputs(n: int, data_root=None) -> torch.Tensor:
    """``n`` test scenes of the localisation chapter (its fixed test seed), (n, 1, 64, 64)."""
    return stand_in_test_scenes(n, data_root).images


def memorise_bundle(n: int, permuted: bool, seed: int = 0, n_test: int = 500, data_root=None):
    """A ``lib.train.DataBundle`` of the first ``n`` Fashion-MNIST training items, with their
    labels permuted (a seeded permutation: the same items, random labels) or true, and the
    first ``n_test`` test items (true labels)."""
    xtr, ytr = load_fashion_mnist("train", data_root)
    xte, yte = load_fashion_mnist("test", data_root)
    y = ytr[:n].clone()
    if permuted:
        y = y[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    return DataBundle(xtr[:n].clone(), y, xte[:n_test].clone(), yte[:n_test].clone())


def _data_recipe(n: int, epochs: int, permuted: bool, seed: int, data_root=None) -> TrainConfig:
    what = f"permuted (seed {seed})" if permuted else "true"
    return TrainConfig(
        model_fn=DATA_MODEL,
        model_kwargs={},
        epochs=epochs,
        lr=MEMORISE_LR,
        batch_size=MEMORISE_BATCH,
        seed=seed,
        n_test=500,
        data=lambda: memorise_bundle(n, permuted, seed, data_root=data_root),
        data_key=f"fashion_mnist train[:{n}] with {what} labels, test[:500]",
    )


def data_randomisation_models(
    n: int = MEMORISE_N,
    epochs: int = MEMORISE_EPOCHS,
    seed: int = 0,
    device="cpu",
    data_root=None,
    verbose: bool = False,
    commit: bool | None = None,
) -> dict[str, tuple[nn.Module, dict]]:
    """``{"true labels": (model, history), "permuted labels": (model, history)}``: the same
    network (:data:`DATA_MODEL`), seed and recipe trained on the first ``n`` Fashion-MNIST items
    with their true labels and with permuted labels (``lib.train.load_or_train``; the default
    recipe's weights are committed to ``MODELS_DIR``; another ``n`` / ``epochs`` / ``seed`` is
    trained and cached in ``CACHE_DIR``)."""
    out = {}
    for key, permuted in (("true labels", False), ("permuted labels", True)):
        model, hist = load_or_train(
            _data_recipe(n, epochs, permuted, seed, data_root),
            device=device,
            progress=False,
            verbose=verbose,
            commit=(n, epochs, seed) == (MEMORISE_N, MEMORISE_EPOCHS, 0)
            if commit is None
            else commit,
        )
        out[key] = (model.eval(), hist)
    return out


def training_accuracy(
    model: nn.Module, n: int = MEMORISE_N, permuted: bool = True, seed: int = 0, data_root=None
) -> float:
    """Accuracy of ``model`` on the labels it was trained on (the first ``n`` items)."""
    b = memorise_bundle(n, permuted, seed, data_root=data_root)
    dev = next(model.parameters()).device
    with torch.no_grad():
        pred = model(b.prepare(b.x_train).to(dev)).argmax(1).cpu()
    return float((pred == b.y_train).float().mean())


def data_inputs(n: int, data_root=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` Fashion-MNIST test items (1, 28, 28) in [0, 1] and their true labels:
    the inputs the data randomisation explains (never seen in training)."""
    x, y = load_fashion_mnist("test", data_root)
    return (x[:n].float() / 255).unsqueeze(1), y[:n].clone()


def compare_models(
    model_a: nn.Module,
    model_b: nn.Module,
    x: torch.Tensor,
    layer: str,
    methods: Sequence[str],
    target: Sequence[int],
    sizes: Mapping[str, Any],
    units: Sequence | None = None,
    measures: Sequence[str] = MEASURES,
) -> tuple[pd.DataFrame, dict, dict]:
    """Every method's maps of two models of the same architecture for the same images and
    classes, and :func:`similarities` between them: (scores, maps of a, maps of b), the maps
    as :func:`comparable` gives them."""
    size = tuple(x.shape[-2:])
    a = {
        m: comparable(v, size)
        for m, v in explain(model_a, x, layer, methods, target, sizes).items()
    }
    b = {
        m: comparable(v, size)
        for m, v in explain(model_b, x, layer, methods, target, sizes).items()
    }
    return similarities(a, b, measures, units), a, b


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------

#: the paper's claims: key -> (method, direction of the rule, the method's name in the text):
#: Guided Backprop and Guided Grad-CAM insensitive, the gradient and Grad-CAM sensitive
PAPER_CLAIMS = {
    "gbp": ("guidedbackprop", ">", "Guided Backprop"),
    "ggcam": ("guidedgradcam", ">", "Guided Grad-CAM"),
    "grad": ("gradient", "<", "The gradient"),
    "gradcam": ("gradcam", "<", "Grad-CAM"),
}


def _values_at(
    scores: pd.DataFrame,
    method: str,
    step: str,
    order: str = "cascading",
    measure: str = "spearman_abs",
) -> pd.Series:
    s = per_unit(
        scores[
            (scores["order"] == order) & (scores["method"] == method) & (scores["step"] == step)
        ],
        measure,
    )
    if s.empty:
        raise ValueError(f"no scores of {method!r} after step {step!r} ({order})")
    return s.set_index("unit")[measure]


def _rule(label: str, direction: str, where: str, bound: float) -> str:
    word = "above" if direction == ">" else "below"
    return (
        f"mean Spearman correlation (absolute values) of {label}'s maps, trained vs "
        f"{where}, {word} {bound:g}"
    )


def _claim_text(
    key: str, data: bool, what: str, top_step: str | None = None
) -> tuple[str, str, str]:
    """(claim id prefix, statement, where the rule compares) of claim ``key``."""
    method, direction, label = PAPER_CLAIMS[key]
    if data:
        where = "the same network trained on permuted labels"
        verb = "resemble" if direction == ">" else "differ from"
        return (
            f"{key}-labels",
            f"{label}'s maps of a network trained on permuted labels {verb} "
            f"those of the same network trained on true labels ({what}).",
            where,
        )
    where = f"the top {TOP_STEPS} blocks re-initialised (up to {top_step!r})"
    if direction == ">":
        st = f"{label}'s maps hardly change when the top layers are re-initialised ({what})."
    else:
        st = f"{label}'s maps change when the top layers are re-initialised ({what})."
    return key, st, where


def paper_claims(
    scores: pd.DataFrame, top_step: str | None, tag: str, unit: str, what: str, data: bool = False
) -> list[dict]:
    """The paper's claims (:data:`PAPER_CLAIMS`) on one model (or set of stand-ins): Guided
    Backprop and Guided Grad-CAM insensitive (mean Spearman correlation of the absolute maps,
    trained vs randomised, above :data:`INSENSITIVE_ABOVE`), the gradient and Grad-CAM
    sensitive (below :data:`SENSITIVE_BELOW`), once the cascade has reached ``top_step`` (the
    top :data:`TOP_STEPS` blocks), or, with ``data``, between the networks trained on true and
    on permuted labels. The mean is over ``unit`` (per unit, the mean over seeds first). One
    dict per claim: ``id`` (``<key>-<tag>`` or ``<key>-labels``), ``method``, ``statement``,
    ``verdict``."""
    out = []
    for key, (method, direction, label) in PAPER_CLAIMS.items():
        cid, st, where = _claim_text(key, data, what, top_step)
        if data:
            vals = per_unit(scores[scores["method"] == method]).set_index("unit")["spearman_abs"]
        else:
            vals = _values_at(scores, method, top_step)
            cid = f"{cid}-{tag}"
        if direction == ">":
            v = V.mean_above(
                vals.to_numpy(),
                INSENSITIVE_ABOVE,
                rule=_rule(label, ">", where, INSENSITIVE_ABOVE),
                unit=unit,
            )
        else:
            v = V.mean_below(
                vals.to_numpy(),
                SENSITIVE_BELOW,
                rule=_rule(label, "<", where, SENSITIVE_BELOW),
                unit=unit,
            )
        out.append({"id": cid, "method": method, "statement": st, "verdict": v})
    return out


def full_claims(
    profile: str,
    runs: Mapping[str, "Randomisation"] | None = None,
    archs: Sequence[str] = tuple(IMAGENET_LAYERS),
) -> list[dict]:
    """The paper's claims on torchvision's ImageNet networks and ILSVRC 2012 val images (the
    ``full`` profile's ``runs``: arch -> :class:`Randomisation`); on the other profiles, and for
    an architecture the reader left out of ``imagenet_archs``, the same claims, "not run here".
    Ids ``<key>-<arch>``."""
    out = []
    for arch in archs:
        what = f"torchvision's ImageNet {arch}, ILSVRC 2012 val images"
        if profile == "full" and arch in (runs or {}):
            run = runs[arch]
            with torch.device("meta"):  # the names only: no memory, no initialisation
                top = top_block_label(imagenet_blocks(arch, build(arch)), TOP_STEPS)
            out += [
                dict(c, arch=arch)
                for c in paper_claims(run.scores, top, arch, "ILSVRC images", what)
            ]
            continue
        for key, (method, direction, label) in PAPER_CLAIMS.items():
            cid, st, where = _claim_text(key, False, what, "the top blocks")
            bound = INSENSITIVE_ABOVE if direction == ">" else SENSITIVE_BELOW
            out.append(
                {
                    "id": f"{cid}-{arch}",
                    "method": method,
                    "arch": arch,
                    "statement": st,
                    "verdict": V.not_run(
                        _rule(label, direction, where, bound),
                        "needs ILSVRC 2012 val and torchvision's ImageNet weights: the full "
                        "profile",
                    ),
                }
            )
    return out


def engine_findings(scores: pd.DataFrame, full_step: str, unit: str) -> list[dict]:
    """The engine's pass / fail, one finding per method: the mean Spearman correlation of the
    absolute maps between the trained model and the model with every block re-initialised, below
    :data:`PASS_BELOW` (holds: the method passes; does not hold: it fails; undecided)."""
    out = []
    for method in dict.fromkeys(scores["method"]):
        vals = _values_at(scores, method, full_step)
        label = method_label(method)
        v = V.mean_below(
            vals.to_numpy(),
            PASS_BELOW,
            rule=_rule(label, "<", "every block re-initialised", PASS_BELOW),
            unit=unit,
        )
        out.append({"id": f"pass-{method}", "method": method, "label": label, "verdict": v})
    return out


def engine_table(
    columns: Mapping[str, pd.DataFrame], step: Mapping[str, str | None]
) -> pd.DataFrame:
    """The pass / fail table: one row per method, per model set (``columns``: name -> scores;
    ``step``: name -> the step after which all is random, None for the data randomisation) the
    mean Spearman correlation (absolute values) with its 95 % interval and the rule's outcome."""
    rows: dict[str, dict] = {}
    for name, scores in columns.items():
        for method in dict.fromkeys(scores["method"]):
            if step[name] is None:
                vals = per_unit(scores[scores["method"] == method])["spearman_abs"].to_numpy()
            else:
                vals = _values_at(scores, method, step[name]).to_numpy()
            v = V.mean_below(vals, PASS_BELOW, rule="engine", unit="units")
            r = rows.setdefault(method, {"method": method_label(method)})
            r[f"{name}"] = v.interval_text(2)
            r[f"{name}: outcome"] = outcome_word(v.outcome, "check")
    return pd.DataFrame(list(rows.values()))


def scope_check(scope: pd.DataFrame) -> V.Verdict:
    """Every step re-initialised exactly the parameters of its blocks (and, cascading, of the
    blocks above): the number of parameters changed outside plus left unchanged inside."""
    err = int(scope["changed outside"].sum() + scope["unchanged inside"].sum())
    return V.check(
        err,
        0,
        rule=f"parameters changed outside the randomised blocks + left "
        f"unchanged inside, over {len(scope)} steps = 0",
    )


def self_check(reference: Mapping[str, np.ndarray]) -> V.Verdict:
    """The measures of a map against itself are 1: the largest |1 − similarity| over the
    trained model's maps (a constant map, whose correlations are 0 by convention, is left out)."""
    sim = similarities(reference, reference)
    sim = sim[~sim["constant"]]
    err = float((1 - sim[list(MEASURES)]).abs().to_numpy().max())
    return V.check(
        err,
        1e-9,
        rule="largest |1 − similarity| of each trained map with itself, "
        "over the four measures ≤ 1e-9",
    )


def memorisation_check(accuracy: float) -> V.Verdict:
    """The permuted-label network memorised its labels: 1 − training accuracy at most
    1 − :data:`MEMORISED`."""
    return V.check(
        1 - accuracy,
        1 - MEMORISED,
        rule=f"1 − training accuracy on the permuted labels ≤ {1 - MEMORISED:g} "
        f"(memorised: at least {MEMORISED:.0%} right)",
    )


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _shown(m: np.ndarray, percentile: float = 99) -> np.ndarray:
    """A map for display: |map| divided by its 99th percentile, clipped at 1 (the authors'
    grey-scale display, so that a few extreme pixels do not leave the rest black)."""
    a = np.abs(np.asarray(m, float))
    top = float(np.percentile(a, percentile))
    top = top if top > 0 else float(a.max())
    return np.clip(a / top, 0, 1) if top > 0 else np.zeros_like(a)


#: the grid figures' margins (inches): method names on the left, the grey colour bar on the right,
#: the rotated column titles on top; drawn 7.3 inches wide at most, 7.5 with the saved margin
_GRID_LEFT, _GRID_RIGHT, _GRID_TOP, _GRID_BOTTOM, _GRID_WIDTH = 1.2, 0.9, 0.95, 0.08, 7.3


def _wrapped(label: str, width: int = 12) -> str:
    """A long method name on two lines (at its first space), so that 9 pt fits the margin."""
    return label.replace(" ", "\n", 1) if len(label) > width and " " in label else label


def _grid(nrows: int, ncols: int, max_cell: float = 0.62, title: str | None = None):
    """A grid of square map panels that fits the text column, with room for the method names, the
    rotated column titles and the colour bar; returns the figure and its axes (nrows, ncols)."""
    top = _GRID_TOP + (0.3 if title else 0.0)
    cell = min(max_cell, (_GRID_WIDTH - _GRID_LEFT - _GRID_RIGHT) / ncols)
    width = _GRID_LEFT + cell * ncols + _GRID_RIGHT
    height = top + cell * nrows + _GRID_BOTTOM
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(
        wspace=0.04,
        hspace=0.06,
        left=_GRID_LEFT / width,
        right=1 - _GRID_RIGHT / width,
        top=1 - top / height,
        bottom=_GRID_BOTTOM / height,
    )
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def cascade_figure(
    result: Randomisation,
    image: np.ndarray,
    unit: int = 0,
    methods: Sequence[str] | None = None,
    title: str | None = None,
):
    """The paper's Figure 2: one row per method, columns the cascade from "trained" to "all
    blocks random", each map as |map| over its 99th percentile, clipped at 1 (the authors'
    display), a colour bar. All text is 9 pt or more and the figure fits the 750 px column, so
    that it stays readable on a phone (``lib.plot.figure``)."""
    methods = list(methods or result.methods)
    steps = [s for s in result.steps if s in result.maps]
    fig, axes = _grid(len(methods), len(steps) + 1, title=title)
    for i, m in enumerate(methods):
        axes[i, 0].imshow(image, cmap="gray" if image.ndim == 2 else None)
        axes[i, 0].set_ylabel(
            _wrapped(method_label(m)), rotation=0, ha="right", va="center", fontsize=9
        )
        for j, s in enumerate(steps):
            axes[i, j + 1].imshow(_shown(result.maps[s][m][unit]), cmap="gray", vmin=0, vmax=1)
            if i == 0:
                axes[i, j + 1].set_title(s, fontsize=9, rotation=60, ha="left", va="bottom")
    axes[0, 0].set_title("image", fontsize=9, rotation=60, ha="left", va="bottom")
    return _grey_bar_and_title(fig, axes, title)


def curves_figure(
    scores: pd.DataFrame,
    steps: Sequence[str],
    order: str = "cascading",
    measures: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    ncols: int = 3,
    title: str | None = None,
):
    """Similarity curves, one panel per method (``ncols`` per row): each measure (default: every
    measure this order computed) against the cascade's steps (or the independent order's
    blocks), the mean over units with its 95 % bootstrap interval (seaborn), the trained model at
    1. Three panels a row keep the steps' names at 9 pt apart, readable on a phone."""
    # lazy: seaborn costs ~1.5 s to import; only this figure needs it
    import seaborn as sns

    d = scores[scores["order"] == order] if "order" in scores else scores.iloc[:0]
    if d.empty:
        raise ValueError(
            f"no scores of the {order!r} order: this run made "
            f"{sorted(set(scores.get('order', [])))} (the smoke profile runs the "
            "cascade only)"
        )
    if measures is None:
        measures = [m for m in MEASURES if m in d and d[m].notna().any()]
    missing = [m for m in measures if m not in d or d[m].isna().all()]
    if missing:
        raise ValueError(
            f"the {order!r} order has no {missing} scores; run it with "
            "independent_measures=sc.independent_measures(measure)"
        )
    methods = list(methods or dict.fromkeys(d["method"]))
    long = d.melt(
        id_vars=[c for c in ("step", "depth", "method", "unit", "seed") if c in d],
        value_vars=list(measures),
        var_name="measure",
        value_name="similarity",
    )
    long = long.groupby(["step", "depth", "method", "unit", "measure"], as_index=False)[
        "similarity"
    ].mean()
    if order == "cascading":  # the trained model, at step 0, is 1 by construction
        first = long.drop_duplicates(["method", "unit", "measure"]).assign(
            step="trained", depth=0, similarity=1.0
        )
        long = pd.concat([first, long], ignore_index=True)
    long["measure"] = long["measure"].map(MEASURE_LABELS)
    labels = (["trained"] if order == "cascading" else []) + [s for s in steps if s != "trained"]
    ncols = max(1, min(ncols, len(methods)))
    nrows = math.ceil(len(methods) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(7.3, 1.6 * nrows + 1.6), sharex=True, sharey=True, squeeze=False
    )
    for k, m in enumerate(methods):
        ax = axes.flat[k]
        sns.lineplot(
            data=long[long["method"] == m],
            x="depth",
            y="similarity",
            hue="measure",
            hue_order=[MEASURE_LABELS[x] for x in measures],
            errorbar=("ci", 95),
            n_boot=1000,
            seed=0,
            ax=ax,
            legend=k == 0,
            marker="o",
            markersize=3,
            linewidth=1,
        )
        ax.set_title(method_label(m), fontsize=10)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xlabel("")
        ax.set_ylabel("similarity" if k % ncols == 0 else "")
        ax.set_ylim(-0.4, 1.05)
    for ax in axes.flat[len(methods) :]:
        ax.set_visible(False)
    xs = list(range(0, len(labels))) if order == "cascading" else list(range(1, len(labels) + 1))
    for k, ax in enumerate(axes.flat[: len(methods)]):
        ax.set_xticks(xs, labels, rotation=70, fontsize=9)
        # the labels under the lowest panel of each column
        ax.tick_params(labelbottom=k + ncols >= len(methods))
    leg = axes.flat[0].get_legend()
    if leg is not None:
        handles, texts = axes.flat[0].get_legend_handles_labels()
        leg.remove()
        fig.legend(
            handles,
            texts,
            loc="upper center",
            ncol=2,
            fontsize=9,
            frameon=False,
            bbox_to_anchor=(0.5, 1.0),
        )
    if title:
        fig.suptitle(title, fontsize=10, y=1.06)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return fig


def imagenet_figure(
    runs: Mapping[str, Randomisation], archs: Sequence[str], measure: str = "spearman_abs"
):
    """The full profile's ImageNet networks along the cascade: one panel per network of
    ``archs``, one line per method, the mean of ``measure`` over the images (95 % bootstrap
    interval). A network not run on this profile gets a panel that says so, so that the page
    has the same numbered figure on every profile."""
    # lazy: seaborn costs ~1.5 s to import; only this figure needs it
    import seaborn as sns

    archs = list(archs)
    if not archs:
        raise ValueError("imagenet_figure: no network to draw; pass the architectures")
    fig, axes = plt.subplots(1, len(archs), figsize=(7.3, 3.4), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        ax.set_title(f"torchvision {arch}", fontsize=10)
        run = runs.get(arch)
        if run is None:
            ax.text(
                0.5,
                0.5,
                'not run on this profile:\nprofile="full" with the\nILSVRC 2012 validation images',
                ha="center",
                va="center",
                fontsize=9,
                transform=ax.transAxes,
            )
            ax.set_axis_off()
            continue
        d = run.scores[run.scores["order"] == "cascading"]
        d = d.assign(method=d["method"].map(method_label))
        sns.lineplot(
            data=d,
            x="depth",
            y=measure,
            hue="method",
            errorbar=("ci", 95),
            n_boot=1000,
            seed=0,
            ax=ax,
            marker="o",
            markersize=3,
            linewidth=1,
        )
        ax.set_xlabel("blocks re-initialised, from the logits down", fontsize=9)
        ax.set_ylabel(MEASURE_LABELS[measure], fontsize=9)
        ax.set_ylim(-0.4, 1.05)
        ax.axhline(0, color="0.6", lw=0.6)
        handles, texts = ax.get_legend_handles_labels()
        ax.get_legend().remove()
    fig.tight_layout()
    if any(a.get_lines() for a in axes[0]):  # one legend for the networks run, under the panels
        fig.legend(
            handles,
            texts,
            loc="upper center",
            ncol=3,
            fontsize=9,
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )
    return fig


def data_figure(
    images: Sequence[np.ndarray],
    maps_a: Mapping[str, np.ndarray],
    maps_b: Mapping[str, np.ndarray],
    labels: tuple[str, str],
    methods: Sequence[str] | None = None,
    title: str | None = None,
):
    """Maps of two models side by side: one row per method, per image three panels (the image,
    model a's map, model b's map), each map as |map| over its 99th percentile, a colour bar;
    text at 9 pt or more, within the 750 px column."""
    methods = list(methods or maps_a)
    k = len(images)
    fig, axes = _grid(len(methods), 3 * k, title=title)
    for i, m in enumerate(methods):
        for j in range(k):
            panels = [
                (images[j], "image", None),
                (_shown(maps_a[m][j]), labels[0], 1),
                (_shown(maps_b[m][j]), labels[1], 1),
            ]
            for c, (img, head, vmax) in enumerate(panels):
                ax = axes[i, 3 * j + c]
                ax.imshow(img, cmap="gray", vmin=0, vmax=vmax)
                if i == 0:
                    ax.set_title(head, fontsize=9, rotation=60, ha="left", va="bottom")
        axes[i, 0].set_ylabel(
            _wrapped(method_label(m)), rotation=0, ha="right", va="center", fontsize=9
        )
    return _grey_bar_and_title(fig, axes, title)


def independent_table(
    scores: pd.DataFrame, steps: Sequence[str], measure: str = "spearman_abs"
) -> pd.DataFrame:
    """The independent order as a table: one row per method, one column per block, the mean of
    ``measure`` over units."""
    d = scores[scores["order"] == "independent"] if "order" in scores else scores.iloc[:0]
    if d.empty or measure not in d or d[measure].isna().all():
        raise ValueError(f"no {measure!r} scores of the independent order in this run")
    t = d.groupby(["method", "step"], sort=False)[measure].mean().unstack("step")
    t = t[[s for s in steps if s in t.columns]]
    t.index = [method_label(m) for m in t.index]
    return t.rename_axis("method")


# --------------------------------------------------------------------------------------------
# The full profile: torchvision's ImageNet networks on ILSVRC images
# --------------------------------------------------------------------------------------------


def imagenet_blocks(arch: str, model: nn.Module) -> dict[str, tuple[str, ...]]:
    """The cascade's blocks of a torchvision network, from the logits down: VGG16's three linear
    layers then its 13 convolutions; ResNet50's ``fc``, its 16 bottlenecks, its stem."""
    if arch == "vgg16":
        lin = [
            f"classifier.{i}" for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear)
        ]
        conv = [f"features.{i}" for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
        return {n: (n,) for n in lin[::-1] + conv[::-1]}
    if arch == "resnet50":
        out: dict[str, tuple[str, ...]] = {"fc": ("fc",)}
        for stage in ("layer4", "layer3", "layer2", "layer1"):
            for j in range(len(getattr(model, stage)) - 1, -1, -1):
                out[f"{stage}.{j}"] = (f"{stage}.{j}",)
        out["stem"] = ("conv1", "bn1")
        return out
    raise ValueError(f"no blocks for {arch!r}; the full profile runs {list(IMAGENET_LAYERS)}")


IMAGENET_BLOCKS = imagenet_blocks


def check_full_data(data_root, archs: Sequence[str]) -> list[str]:
    """Fail before anything runs, with everything at once: one table of torchvision's ImageNet
    weights of ``archs`` (downloaded by torchvision where a network exists) and the ILSVRC 2012
    validation images under ``data_root``, one error naming every missing row. Returns the
    plan."""
    unknown = [a for a in archs if a not in IMAGENET_LAYERS]
    if unknown:
        raise ValueError(f"the full profile runs {list(IMAGENET_LAYERS)}; unknown {unknown}")
    # everything at once (lib.data.needs): one table, one error naming every missing row
    root = imagenet_root(data_root) if data_root is not None else None
    require(
        "the sanity-checks chapter",
        [Need.file("ImageNet 2012 validation images (ILSVRC, folder)", root, WHERE, folder=True)]
        + [weights_need(a) for a in archs],
    )
    return [f"{a} on ILSVRC 2012 val" for a in archs]


def imagenet_run(
    arch: str, data_root, n: int, sizes: Mapping[str, Any], device="cpu", seed: int = 0
) -> Randomisation:
    """Both randomisations of torchvision's ImageNet ``arch`` on the first ``n`` ILSVRC 2012
    validation images (shorter side 256, centre crop 224), every affordable method."""
    ds = ImageNetVal(data_root, resize=256, crop=224, mode="shorter", limit=n)
    x = torch.stack([ds[i][0] for i in range(len(ds))]).to(device)
    model = build(arch, weights="imagenet").to(device).eval()
    layer = IMAGENET_LAYERS[arch]
    methods = methods_for(model, x, layer, sizes["expensive"])
    return run_randomisation(
        model, x, layer, imagenet_blocks(arch, model), methods, sizes, seed=seed
    )


def _grey_bar_and_title(fig, axes, title: str | None):
    """The grid's one colour bar (|map| scaled to [0, 1] in grey) beside its panels, its text at
    9 pt, and its title."""
    first, last = axes[0, -1].get_position(), axes[-1, -1].get_position()
    width = fig.get_figwidth()
    cax = fig.add_axes([last.x1 + 0.08 / width, last.y0, 0.12 / width, first.y1 - last.y0])
    cb = fig.colorbar(mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap="gray"), cax=cax)
    cb.set_label("|map| / its 99th\npercentile", fontsize=9)
    cb.ax.tick_params(labelsize=9)
    if title:
        fig.suptitle(title, fontsize=10, y=0.995)
    return fig
