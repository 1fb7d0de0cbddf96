"""The "receptive fields" chapter: Santos et al., *The impact of large receptive fields on
Grad-CAM* (Table 1, Table 2, Figures 1 and 2), and the dead zone of Taimeskhanov et al.'s masked
VGG16 computed from its architecture.

What lives here, so that the chapter only calls it:

- the paper's numbers (``PAPER_TABLE1``, ``PAPER_TABLE2``) and the chapter's sizes per profile
  (``SIZES``);
- the protocol of Table 2 (Section 2.4): Grad-CAM at several layers, every map down-sampled to the
  last layer's grid and up-sampled to the input (``layer_maps``), IoU and Hit per finding
  (``evaluate``), mean ± standard deviation over seeds (``summarise``), the layer roles and the
  paper's pattern on a table of means (``layer_roles``, ``verdict``), and the verdicts of the
  paper's claims, rules fixed here before the run: paired bootstraps over test scenes
  (``table2_verdicts``) and over photographs (``photo_erf_radii``, ``figure2_photo_verdict``),
  exact computations on the paper's architectures (``table1_verdict``, ``dead_zone_verdict``);
- the models of each profile and their recipes: small ResNet / DenseNet / EfficientNet-style
  networks trained here on Fashion-MNIST scenes and a frozen ImageNet EfficientNet-Lite0 with a
  linear probe (``default``), the paper's torchvision networks fine-tuned on VinDr-CXR
  (``full``), gathered by ``Table2Experiment``;
- the tables and figures the chapter shows (receptive fields relative to the input, the verdict
  and its reasons, Figures 1 and 2, the RF-centre offsets, the dead-zone sweep).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from lib import cam, metrics, rf
from lib import verdict as V
from lib.data.boxes import box_mask
from lib.data.images import IMAGENET_MEAN, IMAGENET_STD, normalize_imagenet
from lib.data.needs import Need, require, weights_need
from lib.data.photos import list_photos, load_photo, photo_boxes
from lib.data.vindr import WHERE as VINDR_WHERE
from lib.data.vindr import VinDrCXR, vindr_root
from lib.formatting import mean_std
from lib.layers import layer_name
from lib.models import zoo
from lib.models.heads import Normalized
from lib.models.masked_vgg import PAPER_DEAD_ROWS
from lib.models.pretrained import (
    LITE0_MEAN,
    LITE0_STD,
    efficientnet_lite0,
    imagenet_categories,
    preprocess,
)
from lib.notebook import PROFILES
from lib.plot import as_image, overlay, shared_colorbar
from lib.resample import down_up, pool_centres, upsample_centres
from lib.results import ResultsStore
from lib.train import MULTILABEL_SCENES as SCENES
from lib.train import DataBundle, TrainConfig, load_data, load_or_train
from lib.train import multilabel_scene_data as scene_data
from lib.train import multilabel_scene_model as scene_model
from lib.train import multilabel_scene_recipe as scene_recipe
from lib.train import multilabel_scene_test_set as scene_test_set

__all__ = [
    "SIZES",
    "COST",
    "PAPER_INPUT",
    "PAPER_MODELS",
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "PAPER_DEAD_ZONE",
    "LITE0_LAYERS",
    "LITE0_SIZE",
    "SCENES",
    "CLAIM_METRICS",
    # Table 1 and the receptive fields of Table 2's layers
    "meta_model",
    "rf_text",
    "table1",
    "paper_layer_rfs",
    "block_rfs",
    "plot_block_rfs",
    # effective receptive fields
    "erf_centre_table",
    "photo_batch",
    "photo_erfs",
    "plot_photo_erfs",
    "paper_best_layer",
    "photo_best_label",
    "photo_erf_radii",
    "figure2_photo_verdict",
    # the protocol
    "finding_masks",
    "layer_maps",
    "evaluate",
    "summarise",
    "mean_std_text",
    "layer_roles",
    "verdict",
    "paper_table2",
    "overlap_fix_effect",
    "table1_verdict",
    "dead_zone_verdict",
    "image_scores",
    "claim_layers",
    "table2_verdicts",
    "table2_verdict_table",
    "outcome_counts",
    "TABLE2_PARTS",
    # recipes
    "scene_data",
    "scene_test_set",
    "scene_recipe",
    "scene_model",
    "lite0_scene_model",
    "check_full_data",
    "vindr_dataset",
    "vindr_split",
    "vindr_model",
    "vindr_test",
    # the experiment and its tables
    "StandIn",
    "Table2Experiment",
    "Table2Results",
    "table2_vs_paper",
    "rf_scale_table",
    "rf_scale_facts",
    "table2_claims",
    "seed_gains",
    "true_positive_table",
    "best_layers",
    "figure2",
    "figure1",
    "photo_figure",
    "rf_centre_offsets",
    "upsampling_offsets",
    "rf_centred_table",
    "dead_zone_sweep",
    "dead_zone_sweep_facts",
    "SCALE_TOLERANCE",
]

# --------------------------------------------------------------------------------------------
# The paper's numbers and the chapter's sizes
# --------------------------------------------------------------------------------------------

#: the chapter's sizes per profile (``lib.notebook.setup(profile, sizes=SIZES, ...)``)
SIZES: dict[str, dict[str, Any]] = {
    "n_images": {"smoke": 2, "default": 8, "full": 64},  # photographs in the ERF (Eq. 2)
    "image_size": {"smoke": 128, "default": 224, "full": 224},  # their input size
    "n_seeds": {"smoke": 1, "default": 3, "full": 5},  # seeds = splits of Table 2
    "n_eval": {"smoke": 12, "default": 200, "full": None},  # test images per seed and model
    "n_eval_lite0": {"smoke": 6, "default": 60, "full": None},  # the same for Lite0 (slower)
    "epochs": {"smoke": None, "default": None, "full": 10},  # full: fine-tuning epochs
    "n_erf": {"smoke": 4, "default": 16, "full": 64},  # test images in Figure 2's ERFs
}
#: what a run costs, per profile (printed by lib.notebook.setup)
COST = {
    "smoke": "about half a minute on a CPU (trains tiny models the first time)",
    "default": "about half a minute on a 2-core CPU with the committed models (most of it "
    "scores Table 2)",
    "full": "hours on one GPU (fine-tunes 3 networks x 5 splits on VinDr-CXR)",
}

#: the paper's input size (px)
PAPER_INPUT = 224
#: the paper's networks: its name -> lib.models.zoo name (torchvision)
PAPER_MODELS = {
    "EfficientNet-b0": "efficientnet_b0",
    "DenseNet121": "densenet121",
    "ResNet50": "resnet50",
}
#: Santos et al., Table 1: model -> (layer whose RF is reported, smallest RF, largest RF) in px
PAPER_TABLE1 = {
    "EfficientNet-b0": ("features", math.inf, math.inf),
    "DenseNet121": ("features", 1047.0, 2071.0),
    "ResNet50": ("layer4", 427.0, 427.0),
}
#: Santos et al., Table 2 (mean ± std over 5 splits of VinDr-CXR), the last layer first:
#: (model, layer) -> (IoU, IoU std, HR, HR std)
PAPER_TABLE2 = {
    ("EfficientNet-b0", "features[-1]"): (0.21, 0.05, 0.35, 0.08),
    ("EfficientNet-b0", "features[-2]"): (0.20, 0.04, 0.35, 0.06),
    ("EfficientNet-b0", "features[-3]"): (0.23, 0.03, 0.44, 0.04),
    ("EfficientNet-b0", "features[-4]"): (0.13, 0.02, 0.32, 0.03),
    ("DenseNet121", "denseblock4"): (0.18, 0.02, 0.21, 0.04),
    ("DenseNet121", "transition3"): (0.27, 0.02, 0.51, 0.05),
    ("DenseNet121", "denseblock3"): (0.26, 0.02, 0.48, 0.05),
    ("DenseNet121", "transition2"): (0.14, 0.01, 0.30, 0.03),
    ("ResNet50", "layer4"): (0.14, 0.02, 0.30, 0.03),
    ("ResNet50", "layer3"): (0.20, 0.03, 0.43, 0.04),
    ("ResNet50", "layer2"): (0.07, 0.01, 0.17, 0.04),
}
#: Taimeskhanov et al., Section 3.1: the masked VGG16 (224 px, 9 of 14 feature rows masked)
#: cannot see 54 input rows, 24 % of the image (the walls chapter's PAPER_DEAD_ROWS, 0-based)
PAPER_DEAD_ZONE = {
    "n": PAPER_DEAD_ROWS.stop - PAPER_DEAD_ROWS.start,
    "first": PAPER_DEAD_ROWS.start,
    "percent": round(100 * (PAPER_DEAD_ROWS.stop - PAPER_DEAD_ROWS.start) / PAPER_INPUT),
}
#: EfficientNet-Lite0 (timm names) blocks matching EfficientNet-b0's features[-1..-4]: the head
#: and the last three stages
LITE0_LAYERS = {
    "features[-1]": "bn2",
    "features[-2]": "blocks.6",
    "features[-3]": "blocks.5",
    "features[-4]": "blocks.4",
}
#: the scenes are drawn at this size (RGB) for the frozen Lite0 (its stages need more than 64 px)
LITE0_SIZE = 128
#: Table 2's metrics: column of the summary -> the paper's name
CLAIM_METRICS = {"iou": "IoU", "hr": "HR"}


def meta_model(name: str, **kwargs) -> nn.Module:
    """Architecture ``name`` of ``lib.models.zoo`` on the shape-only "meta" device: no weights are
    allocated or initialised (enough for receptive fields)."""
    with torch.device("meta"):
        return zoo.build(name, **kwargs)


# --------------------------------------------------------------------------------------------
# Table 1 and the receptive fields of Table 2's layers
# --------------------------------------------------------------------------------------------


def rf_text(rf_min: float, rf_max: float) -> str:
    """An RF range as the paper prints it: "Infinite", "427" or "1047-2071"."""
    if math.isinf(rf_max):
        return "Infinite"
    return f"{rf_min:.0f}" if rf_min == rf_max else f"{rf_min:.0f}-{rf_max:.0f}"


def table1() -> pd.DataFrame:
    """Table 1 computed (lib.rf on the torchvision architectures at 224 px) beside the paper's:
    model, layer, computed, paper, match, rf_local (convolutional paths only), jump, map."""
    rows = []
    for model, (layer, lo, hi) in PAPER_TABLE1.items():
        r = rf.receptive_field(meta_model(PAPER_MODELS[model]), layer, PAPER_INPUT)
        rows.append(
            {
                "model": model,
                "layer": layer,
                "computed": rf_text(r.rf_min, r.rf_max),
                "paper (Table 1)": rf_text(lo, hi),
                "match": (r.rf_min, r.rf_max) == (lo, hi),
                "RF of the convolutional paths (px)": r.rf_local,
                "jump (px)": r.jump,
                "map": f"{r.out_h}x{r.out_w}",
            }
        )
    return pd.DataFrame(rows)


def table1_verdict(t1: pd.DataFrame) -> V.Verdict:
    """The verdict of ``table1``: how many of Table 1's receptive fields, traced from the paper's
    exact architectures (:func:`table1`), equal the paper's; the rule: all of them."""
    return V.exact(
        int(t1["match"].sum()),
        len(t1),
        rule=f"all {len(t1)} RFs of Table 1 traced from the architectures equal the paper's",
        method="traced from the torchvision architectures at 224 px (lib.rf), nothing sampled",
    )


def _rf_row(r: rf.RF, input_size: int) -> dict:
    """RF columns of one layer, also relative to the input (the convolutional part when a global
    operation makes the RF unbounded)."""
    unbounded = math.isinf(r.rf_max)
    lo, hi = (r.rf_local, r.rf_local) if unbounded else (r.rf_min, r.rf_max)
    return {
        "rf_min": r.rf_min,
        "rf_max": r.rf_max,
        "rf_local": r.rf_local,
        "jump": r.jump,
        "map": f"{r.out_h}x{r.out_w}",
        "input": input_size,
        "unbounded": unbounded,
        "rf/input min": lo / input_size,
        "rf/input max": hi / input_size,
    }


def _ratio_text(row) -> str:
    a, b = row["rf/input min"], row["rf/input max"]
    text = f"{a:.1f}" if round(a, 1) == round(b, 1) else f"{a:.1f}-{b:.1f}"
    return f"∞ (conv. paths {text})" if row["unbounded"] else text


def paper_layer_rfs() -> pd.DataFrame:
    """The RF of every layer of Table 2 in the paper's networks at 224 px: model, layer (the
    paper's name), module, rf_min, rf_max, rf_local, jump, map, input, and RF / input."""
    rows = []
    for model, arch in PAPER_MODELS.items():
        table = rf.receptive_fields(meta_model(arch), PAPER_INPUT)
        for label, module in zoo.paper_layers(arch).items():
            rows.append(
                {
                    "model": model,
                    "layer": label,
                    "module": module,
                    **_rf_row(table[module], PAPER_INPUT),
                }
            )
    out = pd.DataFrame(rows)
    out["RF / input"] = out.apply(_ratio_text, axis=1)
    return out


def block_rfs(
    arch: str = "resnet50",
    pattern: str = r"conv1|maxpool|layer\d\.\d+",
    input_size: int = PAPER_INPUT,
) -> pd.DataFrame:
    """lib.rf's table of ``arch`` restricted to the modules whose dotted name matches
    ``pattern`` (by default ResNet50's stem and every residual block), in forward order."""
    table = rf.rf_table(meta_model(arch), input_size)
    return table[table["name"].str.fullmatch(pattern)].reset_index(drop=True)


def plot_block_rfs(blocks: pd.DataFrame, title: str, input_size: int = PAPER_INPUT):
    """The RF after each block, against the input size: returns the figure."""
    fig, ax = plt.subplots(figsize=(7.5, 3))
    ax.plot(range(len(blocks)), blocks["rf_max"], "o-", label="theoretical RF")
    ax.axhline(input_size, color="grey", ls="--", label=f"input size ({input_size} px)")
    ax.set_xticks(range(len(blocks)), blocks["name"], rotation=90, fontsize=9)
    ax.set_ylabel("RF (px)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Effective receptive fields (Eq. 2)
# --------------------------------------------------------------------------------------------


def erf_centre_table(model: nn.Module, layers: Sequence[str], input_size: int) -> pd.DataFrame:
    """Which unit Eq. 2 back-propagates from: lib.rf.erf seeds unit ``(h // 2, w // 2)``. For an
    odd ``h`` it is the middle unit; for an even ``h`` there is no middle unit and ``h // 2`` is
    the lower (right) one of the two central units. Per layer: map, the unit, its RF centre, the
    image centre and the offset between them (px, positive: below / right of the centre)."""
    table = rf.receptive_fields(model, input_size)
    c = (input_size - 1) / 2
    rows = []
    for layer in layers:
        r = table[layer_name(model, layer)]
        cy, cx = r.out_h // 2, r.out_w // 2
        ry, rx = float(r.y.centres()[cy]), float(r.x.centres()[cx])
        rows.append(
            {
                "layer": layer,
                "map": f"{r.out_h}x{r.out_w}",
                "even map": r.out_h % 2 == 0 or r.out_w % 2 == 0,
                "centre unit": f"({cy}, {cx})",
                "its RF centre (px)": f"({ry:g}, {rx:g})",
                "image centre (px)": f"({c:g}, {c:g})",
                "row offset (px)": ry - c,
                "column offset (px)": rx - c,
            }
        )
    return pd.DataFrame(rows)


def photo_erfs(
    model: nn.Module, images: torch.Tensor, layers: dict[str, str] = LITE0_LAYERS
) -> tuple[dict[str, torch.Tensor], pd.DataFrame]:
    """The ERF (Eq. 2, ``lib.rf.erf``) of each layer over ``images`` and a table: layer, the
    paper's name, theoretical RF, map, centre unit, and the radii holding 50 % and 90 % of the
    ERF's mass around its centre of mass (``lib.rf.erf_radius``)."""
    size = images.shape[-1]
    table = rf.receptive_fields(model, size)
    erfs = {module: rf.erf(model, module, images) for module in layers.values()}
    centres = erf_centre_table(model, list(layers.values()), size).set_index("layer")
    rows = [
        {
            "layer": module,
            "paper's name": label,
            "theoretical RF (px)": table[module].rf_max,
            "map": f"{table[module].out_h}x{table[module].out_w}",
            "centre unit": centres.loc[module, "centre unit"],
            "ERF radius, 50 % mass (px)": rf.erf_radius(erfs[module], 0.5),
            "ERF radius, 90 % mass (px)": rf.erf_radius(erfs[module], 0.9),
        }
        for label, module in layers.items()
    ]
    return erfs, pd.DataFrame(rows)


def photo_batch(n: int, size: int) -> tuple[list[str], torch.Tensor]:
    """The first ``n`` bundled photographs (lib.data.photos), resized to ``size * 256 / 224`` and
    centre-cropped to ``size`` (the usual ImageNet evaluation crop), normalised for
    EfficientNet-Lite0: (names, images (n, 3, size, size))."""
    names = list_photos()[:n]
    return names, preprocess(
        [load_photo(p) for p in names], size=size, resize=round(size * 256 / 224)
    )


def paper_best_layer(model: str, metric: str = "iou") -> str:
    """The paper's best layer one or two blocks back for ``model`` (Table 2, our verdict rule)."""
    v = verdict(paper_table2())
    return v[(v.model == model) & (v.metric == metric)]["best layer"].iloc[0]


def _centre_of_mass(e: np.ndarray) -> tuple[float, float]:
    yy, xx = np.indices(e.shape)
    return float((e * yy).sum() / e.sum()), float((e * xx).sum() / e.sum())


def plot_photo_erfs(erfs: dict[str, torch.Tensor], title: str):
    """One panel per layer: the ERF (normalised to its maximum) and the circle around its centre
    of mass that holds half of its mass. Returns the figure."""
    fig, axes = plt.subplots(1, len(erfs), figsize=(7.5, 2.4), squeeze=False)
    for ax, (layer, erf_map) in zip(axes[0], erfs.items()):
        e = erf_map.numpy()
        ax.imshow(e / e.max(), cmap="magma")
        r = rf.erf_radius(erf_map, 0.5)
        cy, cx = _centre_of_mass(e)
        ax.add_patch(plt.Circle((cx, cy), r, fill=False, color="cyan", lw=1))
        ax.set_title(f"{layer}\n50 % within {r:.0f} px", fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()

    shared_colorbar(fig, "ERF as a share of its maximum", cmap="magma")
    return fig


def photo_erf_radii(
    model: nn.Module,
    images: torch.Tensor,
    names: Sequence[str],
    layers: dict[str, str],
    mass: float = 0.5,
) -> pd.DataFrame:
    """The ERF (Eq. 2) of each photograph on its own (N = 1) at each layer, and its radius
    holding ``mass`` of its mass (``lib.rf.erf_radius``): one row per photograph (index
    ``names``), one column per layer (``layers``: column label -> module). The mean of these
    per-photograph ERFs is the ERF of :func:`photo_erfs`; the radii are what a paired comparison
    of two layers over photographs needs."""
    if len(names) != len(images):
        raise ValueError(f"{len(names)} names for {len(images)} images")
    return pd.DataFrame(
        {
            label: [
                rf.erf_radius(rf.erf(model, module, images[i : i + 1], progress=False), mass)
                for i in range(len(images))
            ]
            for label, module in layers.items()
        },
        index=pd.Index(list(names), name="photo"),
    )


def figure2_photo_verdict(radii: pd.DataFrame, back: str, last: str = "features[-1]") -> V.Verdict:
    """The verdict of ``figure2-photos``, rule fixed before the run: the mean over photographs of
    (the half-mass radius of the ERF at ``back`` − at ``last``) is below 0 (the ERF one or two
    blocks back is more concentrated), by a paired bootstrap over the photographs of
    :func:`photo_erf_radii` ("not run here" with fewer than 2 photographs: no interval)."""
    rule = f"mean over photographs of (ERF half-mass radius at {back} − at {last}) < 0 px"
    if len(radii) < 2:
        return V.not_run(
            rule, f"{len(radii)} photograph(s) on this profile; an interval needs at least 2"
        )
    return V.paired_difference(
        radii[back], radii[last], 0.0, direction="<", unit="photographs", rule=rule
    )


# --------------------------------------------------------------------------------------------
# The protocol (Section 2.4): boxes -> masks, maps through down-then-up, IoU and Hit
# --------------------------------------------------------------------------------------------


def finding_masks(
    boxes, height: int, width: int | None = None, per: str = "finding"
) -> list[tuple[int, int, torch.Tensor]]:
    """The (class, box index, bool mask (H, W)) of each finding of one image.

    ``boxes``: (K, 5) rows (x_min, y_min, x_max, y_max, class), max exclusive, input pixels.
    ``per="finding"``: one mask per class, the union of its boxes (box index -1); ``"box"``: one
    mask per box."""
    width = height if width is None else width
    if per not in ("finding", "box"):
        raise ValueError(f"per must be 'finding' (union of a class's boxes) or 'box', not {per!r}")
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float64)).reshape(-1, 5)
    out = []
    if per == "box":
        for k, row in enumerate(b):
            out.append((int(row[4]), k, box_mask(row[None, :4], height, width)))
    else:
        for c in sorted({int(v) for v in b[:, 4].tolist()}):
            out.append((c, -1, box_mask(b[b[:, 4] == c, :4], height, width)))
    for c, _, m in out:
        if not m.any():
            raise ValueError(
                f"the box(es) of class {c} cover no pixel of the {height}x{width} "
                f"input: {b[b[:, 4] == c, :4].tolist()}"
            )
    return out


def _grid_centres(model: nn.Module, names: Sequence[str], input_size) -> dict[str, tuple]:
    """RF centres (rows, columns) of each layer's units pooled to the grid of ``names[0]`` (the
    last layer), from one trace of the model (lib.rf)."""
    table = rf.receptive_fields(model, input_size)
    grid = (table[names[0]].out_h, table[names[0]].out_w)
    out = {}
    for n in names:
        cy, cx = table[n].y.centres(), table[n].x.centres()
        if not (np.isfinite(cy).all() and np.isfinite(cx).all()):
            raise ValueError(f"layer {n!r} has no local RF centre (its RF is global only)")
        out[n] = (pool_centres(cy, grid[0]), pool_centres(cx, grid[1]))
    return out


def layer_maps(
    model: nn.Module,
    x: torch.Tensor,
    layers: Sequence,
    target=None,
    upsample: str | Sequence[str] = "bilinear",
    centres: dict | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """Grad-CAM of ``x`` at every layer of ``layers`` (the LAST layer first: its feature size is
    the common grid) from one forward and backward pass, each map resampled by
    :func:`lib.resample.down_up` to the input size: ``maps[upsample][layer name] -> (N, H, W)``.

    ``upsample``: ``"bilinear"`` and/or ``"rf"`` (units at their RF centres, pooled to the grid;
    ``centres`` from a previous trace saves re-tracing). ``target``: as in lib.cam.compute. A
    layer listed twice is computed once."""
    modes = [upsample] if isinstance(upsample, str) else list(upsample)
    bad = [m for m in modes if m not in ("bilinear", "rf")]
    if bad:
        raise ValueError(f"upsample must be 'bilinear' and/or 'rf', got {bad}")
    # a layer listed twice (the best layer is the last one) is computed once
    names = list(dict.fromkeys(layer_name(model, lay) for lay in layers))
    raw = cam.compute_many(model, x, names, "gradcam", target=target)["gradcam"]
    grid = tuple(raw[names[0]].shape[-2:])
    size = tuple(x.shape[-2:])
    if "rf" in modes and centres is None:
        centres = _grid_centres(model, names, size)
    return {
        m: {n: down_up(raw[n], grid, size, centres[n] if m == "rf" else None) for n in names}
        for m in modes
    }


def _take(images, idx: list[int]) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[idx]
    return torch.stack([torch.as_tensor(images[i]) for i in idx])


def evaluate(
    model: nn.Module,
    images,
    boxes: Sequence,
    layers: Sequence | dict,
    per: str = "finding",
    upsample: str | Sequence[str] = "bilinear",
    batch_size: int = 32,
    device=None,
    progress: bool = True,
) -> pd.DataFrame:
    """Santos et al.'s IoU and Hit Rate for every (image, finding) pair and every layer.

    ``images``: a (N, C, H, W) tensor or an indexable of (C, H, W) tensors (model input);
    ``boxes[i]``: (K, 5) rows (x_min, y_min, x_max, y_max, class) in input pixels; ``layers``: the
    last layer first, then earlier ones (a list of names, or a dict label -> name). Grad-CAM's
    target is the finding's logit (a sigmoid score gives the same map up to a positive factor per
    image, which top-A and arg-max ignore). Returns one row per (image, finding[, box], layer,
    upsample): ``image, cls, box, layer, module, upsample, iou, hit, area, score, empty``
    (``score``: the model's sigmoid for that class, so ``score > 0.5`` selects the true
    positives; ``empty``: the map is zero everywhere after ReLU, scored as is: a miss at pixel
    (0, 0), flagged)."""
    labels = dict(layers) if isinstance(layers, dict) else {str(n): n for n in layers}
    if not labels:
        raise ValueError("give at least one layer (the last one first)")
    if len(boxes) != len(images):
        raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
    device = device or next(model.parameters()).device
    names = {lab: layer_name(model, n) for lab, n in labels.items()}
    h, w = _take(images, [0]).shape[-2:]
    pairs = [
        (i, c, k, m) for i in range(len(images)) for c, k, m in finding_masks(boxes[i], h, w, per)
    ]
    if not pairs:
        raise ValueError("no finding has a box: nothing to localise")
    modes = [upsample] if isinstance(upsample, str) else list(upsample)
    centres = _grid_centres(model, list(names.values()), (h, w)) if "rf" in modes else None
    rows = []
    was_training = model.training
    model.eval()
    for s in tqdm(range(0, len(pairs), batch_size), desc="localisation", disable=not progress):
        chunk = pairs[s : s + batch_size]
        x = _take(images, [p[0] for p in chunk]).to(device)
        cls = torch.tensor([p[1] for p in chunk], device=device)
        masks = torch.stack([p[3] for p in chunk]).to(device)
        with torch.no_grad():
            score = torch.sigmoid(model(x)).gather(1, cls[:, None])[:, 0].cpu()
        maps = layer_maps(model, x, list(names.values()), cls, modes, centres)
        for mode in modes:
            for lab, n in names.items():
                iou = metrics.iou_top_area(maps[mode][n], masks).cpu()
                hit = metrics.hit(maps[mode][n], masks).cpu()
                empty = metrics.is_empty(maps[mode][n]).cpu()
                for j, (i, c, k, m) in enumerate(chunk):
                    rows.append(
                        {
                            "image": i,
                            "cls": c,
                            "box": k,
                            "layer": lab,
                            "module": n,
                            "upsample": mode,
                            "iou": float(iou[j]),
                            "hit": float(hit[j]),
                            "area": int(m.sum()),
                            "score": float(score[j]),
                            "empty": bool(empty[j]),
                        }
                    )
    model.train(was_training)
    return pd.DataFrame(rows)


def summarise(
    df: pd.DataFrame, by: Sequence[str] = ("model", "layer"), over: str = "seed"
) -> pd.DataFrame:
    """Mean IoU and Hit Rate per ``over`` (a seed / split: the mean over its findings), then
    their mean and sample standard deviation (ddof=1, as over the paper's 5 splits) across
    ``over``: columns ``iou, iou_std, hr, hr_std, n`` (n = number of seeds), rows in first-seen
    order. With one seed there is no spread to measure: the std is NaN (shown as "one seed")."""
    by = list(by)
    missing = [c for c in by + [over, "iou", "hit"] if c not in df.columns]
    if missing:
        raise ValueError(f"the results lack the column(s) {missing}")
    per = df.groupby(by + [over], sort=False)[["iou", "hit"]].mean().reset_index()
    g = per.groupby(by, sort=False)
    return pd.DataFrame(
        {
            "iou": g["iou"].mean(),
            "iou_std": g["iou"].std(ddof=1),
            "hr": g["hit"].mean(),
            "hr_std": g["hit"].std(ddof=1),
            "n": g[over].nunique(),
        }
    )


def mean_std_text(mean: float, std: float, digits: int = 2) -> str:
    """ "0.20 ± 0.03", or "0.20 (one seed)" when the std is undefined (NaN)."""
    return mean_std(mean, std, digits, "one seed")


def layer_roles(labels: Sequence[str]) -> dict[str, str]:
    """The role of each layer in the paper's claim, layers listed from the last one backwards:
    ``"last"`` (the first), ``"1-2 back"`` (the next one or two) and ``"too far back"`` (every
    layer after them). The sets never overlap and the farthest layer is always "too far back":
    with four layers (EfficientNet-b0, DenseNet121) that is the 2nd and 3rd vs the 4th; with
    ResNet50's three (layer4, layer3, layer2) it is layer3 vs layer2, since layer2 cannot be
    both the improvement and what goes too far (the paper's own table: layer2 0.07 < layer4 0.14)."""
    labels = list(labels)
    if len(labels) < 3:
        raise ValueError(
            f"the claim needs the last layer and at least two earlier ones, got {labels}"
        )
    n_back = min(2, len(labels) - 2)
    return {
        lab: ("last" if i == 0 else "1-2 back" if i <= n_back else "too far back")
        for i, lab in enumerate(labels)
    }


def verdict(
    table: pd.DataFrame,
    model_col: str = "model",
    layer_col: str = "layer",
    metrics_: Sequence[str] = tuple(CLAIM_METRICS),
) -> pd.DataFrame:
    """The paper's claim, computed per model and metric from a table whose layers run from the
    last one backwards (row order within a model; roles by :func:`layer_roles`):
    ``one_or_two_back_beats_last`` (the best "1-2 back" layer beats the last one) and
    ``too_far_back_is_worse`` (the best "too far back" layer is below the best of the nearer
    ones). Columns: model, metric, last, best 1-2 back, best layer, farthest, farthest layer,
    and the two verdicts."""
    t = table.reset_index() if model_col not in table.columns else table
    rows = []
    for model, g in t.groupby(model_col, sort=False):
        g = g.reset_index(drop=True)
        roles = layer_roles(g[layer_col])
        role = g[layer_col].map(roles)
        for m in metrics_:
            back, far = g[role == "1-2 back"], g[role == "too far back"]
            last = float(g[m].iloc[0])
            b, f = back.loc[back[m].idxmax()], far.loc[far[m].idxmax()]
            rows.append(
                {
                    model_col: model,
                    "metric": m,
                    "last": last,
                    "best 1-2 back": float(b[m]),
                    "best layer": b[layer_col],
                    "farthest": float(f[m]),
                    "farthest layer": f[layer_col],
                    "one_or_two_back_beats_last": bool(b[m] > last),
                    "too_far_back_is_worse": bool(f[m] < max(last, float(b[m]))),
                }
            )
    return pd.DataFrame(rows)


def overlap_fix_effect(
    table: pd.DataFrame,
    model_col: str = "model",
    layer_col: str = "layer",
    metrics_: Sequence[str] = tuple(CLAIM_METRICS),
) -> pd.DataFrame:
    """What :func:`layer_roles`'s non-overlapping sets change for models with three layers, on the
    means: an overlapping rule would take the 2nd AND 3rd layers as "1-2 back" while the 3rd is
    also the farthest, so ResNet50's layer2 could count as the improvement. Per (model, metric):
    the best "1-2 back" value and whether it beats the last layer under the overlapping rule and
    under :func:`layer_roles`, and whether the two differ (booleans, not words)."""
    t = table.reset_index() if model_col not in table.columns else table
    new = verdict(t, model_col, layer_col, metrics_).set_index([model_col, "metric"])
    rows = []
    for model, g in t.groupby(model_col, sort=False):
        g = g.reset_index(drop=True)
        if len(g) != 3:
            continue
        for m in metrics_:
            old_best = float(g[m].iloc[1:3].max())
            old = {"best": old_best, "beats": old_best > float(g[m].iloc[0])}
            n = new.loc[(model, m)]
            rows.append(
                {
                    model_col: model,
                    "metric": m,
                    "overlapping: best of layers 2-3": old["best"],
                    "roles: best 1-2 back": n["best 1-2 back"],
                    "overlapping: beats last": old["beats"],
                    "roles: beats last": n["one_or_two_back_beats_last"],
                    "beats last differs": old["beats"] != n["one_or_two_back_beats_last"],
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            model_col,
            "metric",
            "overlapping: best of layers 2-3",
            "roles: best 1-2 back",
            "overlapping: beats last",
            "roles: beats last",
            "beats last differs",
        ],
    )


def paper_table2() -> pd.DataFrame:
    """Santos et al.'s Table 2 as a DataFrame (columns model, layer, iou, iou_std, hr, hr_std)."""
    return pd.DataFrame(
        [
            {"model": m, "layer": lay, "iou": v[0], "iou_std": v[1], "hr": v[2], "hr_std": v[3]}
            for (m, lay), v in PAPER_TABLE2.items()
        ]
    )


# --------------------------------------------------------------------------------------------
# Recipes of the default profile: multi-label Fashion-MNIST scenes stand in for VinDr-CXR
# --------------------------------------------------------------------------------------------

#: the small stand-ins and the paper model each stands in for, in Table 2's order
_SMALL = {
    "small_efficientnet": "EfficientNet-b0",
    "small_densenet": "DenseNet121",
    "small_resnet": "ResNet50",
}
#: what a stand-in's architecture is called in a row label
_STYLE = {
    "small_efficientnet": "EfficientNet-b0-style",
    "small_densenet": "DenseNet-style",
    "small_resnet": "ResNet-style",
}


def lite0_scene_model(
    profile: str,
    seed: int,
    size: int = LITE0_SIZE,
    device="cpu",
    epochs: int = 30,
    progress: bool = False,
    data_root=None,
    **kwargs,
):
    """(model, history): the ImageNet-pretrained EfficientNet-Lite0 with its features FROZEN and a
    new 10-class multi-label head (``linear_probe``) fitted (lib.train, BCE, Adam) on its pooled
    features of the scenes of ``profile`` / ``seed`` drawn at ``size`` px in RGB. The model takes
    images in [0, 1] (``Normalized``). Features are computed only when the head is not cached
    (the default profile's heads, 50 kB each, are committed)."""
    backbone = efficientnet_lite0().to(device)
    spec = scene_data(profile, seed, size=size, channels=3)
    mean = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE0_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def pooled(x):
        out = []
        for i in tqdm(range(0, len(x), 64), desc="Lite0 features", disable=not progress):
            xb = ((x[i : i + 64] - mean) / std).to(device)
            out.append(backbone.forward_head(backbone.forward_features(xb), pre_logits=True).cpu())
        return torch.cat(out)

    def data():
        b = load_data(spec, data_root)
        return DataBundle(pooled(b.x_train), b.y_train, pooled(b.x_test), b.y_test)

    key = "lite0-pooled-features:" + ",".join(f"{k}={spec[k]}" for k in sorted(spec))
    config = TrainConfig(
        "linear_probe",
        {"in_features": backbone.num_features, "num_classes": 10},
        data,
        epochs=epochs,
        lr=1e-2,
        batch_size=128,
        seed=seed,
        loss="bce",
        data_key=key,
    )
    head, hist = load_or_train(
        config, device=device, progress=progress, commit=profile == "default", **kwargs
    )
    clf = nn.Linear(backbone.num_features, 10).to(device)
    clf.load_state_dict(head.fc.state_dict())
    backbone.classifier = clf
    for p in backbone.parameters():
        p.requires_grad_(False)  # Grad-CAM still flows: the engine differentiates activations
    return Normalized(backbone.eval(), LITE0_MEAN, LITE0_STD).to(device), hist


# --------------------------------------------------------------------------------------------
# Recipes of the full profile: the paper's torchvision networks on VinDr-CXR
# --------------------------------------------------------------------------------------------


def check_full_data(data_root, show=None) -> None:
    """The full run's needs, all at once before anything runs (``lib.data.needs.require``): one
    table of VinDr-CXR's annotations and images and the three networks' ImageNet weights
    (torchvision downloads them where a network exists), one error naming every missing row."""
    root = vindr_root(data_root) if data_root is not None else None
    require(
        "the receptive-fields chapter",
        [
            Need.file(
                "VinDr-CXR annotations (train.csv)", root and root / "train.csv", VINDR_WHERE
            ),
            Need.file(
                "VinDr-CXR images (train/*.dicom or .png)",
                root and root / "train",
                VINDR_WHERE,
                folder=True,
            ),
        ]
        + [weights_need(arch) for arch in PAPER_MODELS.values()],
        show,
    )


def vindr_dataset(data_root, size: int = PAPER_INPUT):
    """VinDr-CXR for Table 2 (grey uint8 images kept, normalised per batch), after
    :func:`check_full_data`: everything the full run needs, before any training starts."""
    check_full_data(data_root)
    return VinDrCXR(data_root, size=size, channels=1, normalize=False)


def vindr_split(n: int, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Split ``seed`` of ``n`` images: (train indices, test indices), a seeded permutation (the
    paper's 5 splits and their ratios are not published; no validation set: lib.train trains for
    a fixed number of epochs instead of the paper's early stopping)."""
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * (1 - test_fraction)))
    return np.sort(perm[:cut]), np.sort(perm[cut:])


_PIXELS: dict = {}


def _vindr_pixels(ds) -> tuple[torch.Tensor, torch.Tensor, list]:
    """All images of a VinDrCXR data set (channels=1, normalize=False) as uint8 (N, 1, S, S),
    their labels (N, 14) and boxes (K, 5) in input pixels, loaded once per data set."""
    key = (str(ds.root), len(ds), ds.size)
    if key not in _PIXELS:
        if ds.channels != 1 or ds.normalize:
            raise ValueError(
                "build the data set with VinDrCXR(data_root, channels=1, "
                "normalize=False): images are kept as uint8 and normalised per batch"
            )
        xs, ys, bs = [], [], []
        for i in tqdm(range(len(ds)), desc="VinDr-CXR images"):
            x, y, b = ds[i]
            xs.append((x * 255).round().to(torch.uint8))
            ys.append(y)
            bs.append(b)
        _PIXELS[key] = (torch.stack(xs), torch.stack(ys), bs)
    return _PIXELS[key]


def _imagenet_input(x: torch.Tensor) -> torch.Tensor:
    """Stored grey uint8 images -> the networks' input: RGB in [0, 1], ImageNet-normalised."""
    x = x.float() / 255
    return normalize_imagenet(x.expand(*x.shape[:-3], 3, *x.shape[-2:]))


def vindr_model(name: str, ds, seed: int, epochs: int = 10, device="cuda", **kwargs):
    """(model, history): torchvision ``name`` from ImageNet weights with 14 outputs, trained
    (lib.train, BCE, Adam lr 1e-3, batch 64, 32 for DenseNet121, as the paper) on the training
    images of split ``seed`` of ``ds`` (a ``VinDrCXR(data_root, channels=1, normalize=False)``)."""

    def data():
        x, y, _ = _vindr_pixels(ds)
        tr, te = vindr_split(len(ds), seed)
        return DataBundle(x[tr], y[tr], x[te], y[te], transform=_imagenet_input)

    key = f"vindr-cxr:{ds.root}:{len(ds)}:{ds.size}:split{seed}"
    config = TrainConfig(
        "imagenet_transfer",
        {"name": name, "num_classes": 14},
        data,
        epochs=epochs,
        lr=1e-3,
        batch_size=32 if "densenet" in name else 64,
        seed=seed,
        loss="bce",
        data_key=key,
    )
    return load_or_train(config, device=device, **kwargs)


class _Inputs:
    """Indexable model inputs (3, S, S) of some images of a VinDrCXR data set."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return _imagenet_input(self.x[i])


def vindr_test(ds, seed: int, n: int | None = None):
    """(inputs, boxes) of the test images of split ``seed`` that have at least one finding box:
    ``inputs[i]`` the ImageNet-normalised (3, S, S) image, ``boxes[i]`` (K, 5) in input pixels
    (the data set's fusion of the three readers' boxes)."""
    x, _, all_boxes = _vindr_pixels(ds)
    _, te = vindr_split(len(ds), seed)
    keep = [int(i) for i in te if len(all_boxes[i])][:n]
    return _Inputs(x[keep]), [all_boxes[i] for i in keep]


# --------------------------------------------------------------------------------------------
# The experiment of Table 2
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandIn:
    """One row group of Table 2: what the model is (``label``), the paper's model it stands in
    for, its recipe (``arch``: a small zoo name, ``"lite0"``, or a torchvision name on the full
    profile), Table 2's layers (the paper's label -> module name, the last layer first), its
    input size (px) and channels, and a short name for figure titles."""

    label: str
    paper_model: str
    arch: str
    layers: dict[str, str]
    input_size: int
    in_channels: int = 1
    short: str = ""  # a name for figure titles ("ResNet-style")

    @property
    def is_paper_model(self) -> bool:
        return self.arch == PAPER_MODELS.get(self.paper_model)

    @property
    def description(self) -> str:
        """What the model is, for a claim's statement: the paper's own network, or a stand-in
        named as one with the paper model it stands in for."""
        if self.is_paper_model:
            return (
                f"{self.paper_model} (torchvision, ImageNet weights, fine-tuned here on VinDr-CXR)"
            )
        if self.arch == "lite0":
            return (
                f"EfficientNet-Lite0 (ImageNet-pretrained, frozen, head fitted here on "
                f"Fashion-MNIST scenes at {self.input_size} px; a stand-in for "
                f"{self.paper_model} fine-tuned on VinDr-CXR)"
            )
        return (
            f"The {self.short} stand-in ({self.input_size} px, trained here on Fashion-MNIST "
            f"scenes; a stand-in for {self.paper_model} on VinDr-CXR)"
        )


def _stand_ins(profile: str) -> dict[str, StandIn]:
    """The models of Table 2 on ``profile``, by row label."""
    if profile == "full":
        out = [
            StandIn(
                f"{paper} (torchvision, ImageNet, fine-tuned here on VinDr-CXR, {PAPER_INPUT} px)",
                paper,
                arch,
                zoo.paper_layers(arch),
                PAPER_INPUT,
                3,
                paper,
            )
            for paper, arch in PAPER_MODELS.items()
        ]
    else:
        size = SCENES["size"]
        out = [
            StandIn(
                f"{_STYLE[arch]}, {size} px, trained here on scenes",
                paper,
                arch,
                zoo.paper_layers(arch),
                size,
                1,
                _STYLE[arch],
            )
            for arch, paper in _SMALL.items()
        ]
        out.append(
            StandIn(
                f"EfficientNet-Lite0, ImageNet, frozen; {LITE0_SIZE} px, head fitted "
                "here on scenes",
                "EfficientNet-b0",
                "lite0",
                {k: f"model.{v}" for k, v in LITE0_LAYERS.items()},
                LITE0_SIZE,
                3,
                "EfficientNet-Lite0",
            )
        )
    return {s.label: s for s in out}


def _state_digest(model: nn.Module) -> str:
    """SHA-256 (16 hex digits) of a model's parameters and buffers, in name order: which
    weights produced a result, wherever the file lives."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode() + b"\0")
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class Table2Results:
    """The scored findings of Table 2 (``rows``: one per image, finding, layer and up-sampling,
    with ``model`` and ``seed``), each model's test accuracy (mean over seeds) and the number of
    findings scored."""

    rows: pd.DataFrame
    accuracy: pd.Series
    n_findings: pd.Series

    @property
    def bilinear(self) -> pd.DataFrame:
        """The rows of the paper's protocol (bilinear up-sampling)."""
        return self.rows[self.rows.upsample == "bilinear"]

    def overview(self) -> pd.DataFrame:
        """Per model: test accuracy (per class decision) and findings scored (all seeds)."""
        return pd.DataFrame(
            {
                "test accuracy (per class decision)": self.accuracy,
                "findings scored (all seeds)": self.n_findings,
            }
        ).rename_axis("model")


class Table2Experiment:
    """Table 2 on one profile: its models (``models``: label -> StandIn), each trained or loaded
    per seed (``load_model``), its test set per seed (``eval_set``), every finding scored at every
    layer with both up-samplings (``score``), through a results store (``run``).

    ``full`` uses the paper's torchvision networks on VinDr-CXR (``data_root``; the data and the
    ImageNet weights are checked here, before anything runs); the other profiles use the scene
    stand-ins of the default recipes."""

    def __init__(
        self,
        profile: str,
        device="cpu",
        n_seeds: int = 3,
        n_eval: int | None = 200,
        n_eval_lite0: int | None = 60,
        epochs: int | None = None,
        data_root=None,
    ):
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
        if profile == "full" and not epochs:
            raise ValueError("the full profile fine-tunes on VinDr-CXR: give epochs (SIZES: 10)")
        self.profile, self.device = profile, torch.device(device)
        self.n_seeds, self.n_eval, self.n_eval_lite0 = n_seeds, n_eval, n_eval_lite0
        self.epochs, self.data_root = epochs, data_root
        self.vindr = vindr_dataset(data_root) if profile == "full" else None
        self.models: dict[str, StandIn] = _stand_ins(profile)
        self._loaded: dict[tuple[str, int], tuple[nn.Module, dict]] = {}

    def _model(self, name: str) -> StandIn:
        if name not in self.models:
            raise KeyError(
                f"no model {name!r} in Table 2 on profile {self.profile!r}; "
                f"choose from {list(self.models)}"
            )
        return self.models[name]

    def load_model(self, name: str, seed: int) -> tuple[nn.Module, dict]:
        """(model, training history) of row group ``name`` for ``seed``: trained once (cached on
        disk; the default profile's weights are committed), then loaded in a second."""
        s = self._model(name)
        if (name, seed) not in self._loaded:
            if self.profile == "full":
                out = vindr_model(s.arch, self.vindr, seed, epochs=self.epochs, device=self.device)
            elif s.arch == "lite0":
                out = lite0_scene_model(
                    self.profile,
                    seed,
                    size=s.input_size,
                    device=self.device,
                    verbose=False,
                    data_root=self.data_root,
                )
            else:
                out = scene_model(
                    s.arch,
                    self.profile,
                    seed,
                    device=self.device,
                    progress=False,
                    verbose=False,
                    data_root=self.data_root,
                )
            self._loaded[name, seed] = out
        return self._loaded[name, seed]

    def eval_set(self, name: str, seed: int):
        """(images, boxes) scored for ``name`` and ``seed``: test images never seen in training
        (scenes from Fashion-MNIST's test split, or split ``seed``'s VinDr-CXR test images)."""
        s = self._model(name)
        if self.profile == "full":
            return vindr_test(self.vindr, seed, self.n_eval)
        if s.arch == "lite0":
            sc = scene_test_set(
                self.profile,
                seed,
                self.n_eval_lite0,
                size=s.input_size,
                channels=3,
                data_root=self.data_root,
            )
        else:
            sc = scene_test_set(self.profile, seed, self.n_eval, data_root=self.data_root)
        return sc.images, sc.boxes

    def score(self, item: tuple[str, int]) -> dict:
        """One record of the results store: the model's test accuracy and every scored row."""
        name, seed = item
        model, hist = self.load_model(name, seed)
        images, boxes = self.eval_set(name, seed)
        df = evaluate(
            model,
            images,
            boxes,
            self.models[name].layers,
            upsample=["bilinear", "rf"],
            device=self.device,
            progress=False,
        )
        return {"test_acc": hist["test_acc"], "rows": df.to_dict("records")}

    def items(self) -> list[tuple[str, int]]:
        return [(m, s) for m in self.models for s in range(self.n_seeds)]

    def config(self) -> dict:
        """What the records depend on besides the code and the weights (the store's config)."""
        return {
            "record_format": 3,
            "profile": self.profile,
            "models": {
                k: {"arch": s.arch, "layers": s.layers, "input": s.input_size}
                for k, s in self.models.items()
            },
            "n_seeds": self.n_seeds,
            "n_eval": self.n_eval,
            "n_eval_lite0": self.n_eval_lite0,
            "epochs": self.epochs,
            "scenes": SCENES,
            "recipes": (
                {a: scene_recipe(a, self.profile, 0).cache_config() for a in _SMALL}
                if self.profile != "full"
                else None
            ),
        }

    def weights_digests(self) -> dict[str, str]:
        """``"label|seed"`` -> digest of the weights that score it (loads every model)."""
        return {f"{m}|{s}": _state_digest(self.load_model(m, s)[0]) for m, s in self.items()}

    def store(self, root=None):
        """The results store of this experiment, keyed by its config, the library's code and the
        digests of the models' weights (so retraining a model recomputes its rows)."""
        data = {
            "weights": self.weights_digests(),
            "data": (
                f"vindr-cxr:{self.vindr.root}:{len(self.vindr)}"
                if self.vindr is not None
                else "fashion-mnist scenes"
            ),
        }
        return ResultsStore(
            "03_receptive_fields", self.profile, self.config(), root=root, data=data
        )

    def run(self, store=None) -> Table2Results:
        """Score every (model, seed) not yet in ``store`` (default: :meth:`store`) and gather
        the rows."""
        store = store if store is not None else self.store()
        rec = store.run(self.items(), self.score, key=lambda it: f"{it[0]}|{it[1]}", desc="Table 2")
        split = rec["key"].str.rsplit("|", n=1)
        rows = pd.concat(
            [
                pd.DataFrame(r).assign(model=k[0], seed=int(k[1]))
                for k, r in zip(split, rec["rows"])
            ],
            ignore_index=True,
        )
        accuracy = rec.assign(model=split.str[0]).groupby("model", sort=False)["test_acc"].mean()
        n_findings = (
            rows.drop_duplicates(["model", "seed", "image", "cls", "box"])
            .groupby("model", sort=False)
            .size()
        )
        return Table2Results(rows, accuracy, n_findings)


# --------------------------------------------------------------------------------------------
# Tables of the chapter
# --------------------------------------------------------------------------------------------


def table2_vs_paper(ours: pd.DataFrame, exp: Table2Experiment) -> pd.DataFrame:
    """Our Table 2 (``summarise`` of the bilinear rows, reset index) beside the paper's: per row,
    the paper model, what the model is here, the layer, ``mean ± std`` of both, and the
    differences ΔIoU, ΔHR."""
    paper = paper_table2().set_index(["model", "layer"])
    rows = []
    for r in ours.itertuples():
        s = exp.models[r.model]
        p = paper.loc[(s.paper_model, r.layer)] if (s.paper_model, r.layer) in paper.index else None
        rows.append(
            {
                "paper model": s.paper_model,
                "model here": r.model,
                "layer": r.layer,
                "module": s.layers[r.layer],
                "IoU (ours)": mean_std_text(r.iou, r.iou_std),
                "HR (ours)": mean_std_text(r.hr, r.hr_std),
                "IoU (paper)": mean_std_text(p.iou, p.iou_std) if p is not None else "",
                "HR (paper)": mean_std_text(p.hr, p.hr_std) if p is not None else "",
                "ΔIoU": r.iou - p.iou if p is not None else np.nan,
                "ΔHR": r.hr - p.hr if p is not None else np.nan,
            }
        )
    return pd.DataFrame(rows)


def rf_scale_table(exp: Table2Experiment) -> pd.DataFrame:
    """Per Table 2 layer: the RF of the model used here relative to its input, beside the
    paper model's RF relative to 224 px (lib.rf; the convolutional paths when squeeze-and-
    excitation makes the RF unbounded). ``here / paper``: the ratio of the two (largest RF)."""
    paper = paper_layer_rfs().set_index(["model", "layer"])
    rows = []
    for label, s in exp.models.items():
        if s.arch == "lite0":
            model, layers = meta_model("efficientnet_lite0"), LITE0_LAYERS
        else:
            model = meta_model(
                s.arch, **({} if s.is_paper_model else {"in_channels": 1, "num_classes": 10})
            )
            layers = zoo.paper_layers(s.arch)
        table = rf.receptive_fields(model, s.input_size)
        for lab, module in layers.items():
            here = _rf_row(table[module], s.input_size)
            p = paper.loc[(s.paper_model, lab)]
            rows.append(
                {
                    "paper model": s.paper_model,
                    "model here": label,
                    "layer": lab,
                    "paper: RF (px)": rf_text(p.rf_min, p.rf_max),
                    "paper: RF / 224": p["RF / input"],
                    "here: RF (px)": rf_text(here["rf_min"], here["rf_max"]),
                    "here: input (px)": s.input_size,
                    "here: RF / input": _ratio_text(here),
                    "largest RF / input, here": here["rf/input max"],
                    "largest RF / input, paper": p["rf/input max"],
                    "here / paper": here["rf/input max"] / p["rf/input max"],
                }
            )
    return pd.DataFrame(rows)


#: "as large as the paper's": the last layer's RF / input here within this factor of the paper
#: model's (10 %); below it the stand-in tests the hypothesis in a milder regime
SCALE_TOLERANCE = 1.1


def rf_scale_facts(
    scale: pd.DataFrame, verdicts: pd.DataFrame, tolerance: float = SCALE_TOLERANCE
) -> pd.DataFrame:
    """What the reading of the RF scale rests on, per model: the last layer's RF / input here
    and in the paper, their ratio ``here / paper``, whether it is ``smaller`` than ``1 /
    tolerance`` or ``larger`` than ``tolerance`` (neither: as large as the paper's), the outcome
    of "one or two blocks back beats the last layer" here on each metric (columns ``IoU``,
    ``HR``, from :func:`table2_verdicts`), whether it ``holds`` on every metric and whether it
    ``fails`` on any. The chapter words what that does to the verdict (a stand-in with smaller
    RFs is a milder test of the paper's hypothesis)."""
    rows = []
    for model, g in scale.groupby("model here", sort=False):
        last = g.iloc[0]
        here, paper = (
            float(last["largest RF / input, here"]),
            float(last["largest RF / input, paper"]),
        )
        q = here / paper
        c = verdicts[(verdicts["model"] == model) & (verdicts["part"] == "back-beats-last")]
        outcomes = dict(zip(c["metric"], c["outcome"]))
        if not outcomes:
            raise ValueError(f"no verdict of 'back-beats-last' for {model!r}")
        rows.append(
            {
                "model here": model,
                "paper model": last["paper model"],
                "last layer": last["layer"],
                "RF / input here": here,
                "RF / input, paper": paper,
                "here / paper": q,
                "smaller": bool(q < 1 / tolerance),
                "larger": bool(q > tolerance),
                **{CLAIM_METRICS[m]: o for m, o in outcomes.items()},
                "holds": all(o == V.HOLDS for o in outcomes.values()),
                "fails": any(o == V.FAILS for o in outcomes.values()),
            }
        )
    return pd.DataFrame(rows)


#: the two parts of Table 2's claim, each tested on IoU and on HR: part -> (what it says, the
#: sign the paired difference must have)
TABLE2_PARTS = {
    "back-beats-last": ("Grad-CAM one or two blocks back beats the last layer", ">"),
    "too-far-back": ("going too far back is worse", "<"),
}
_METRIC_COLUMN = {"iou": "iou", "hr": "hit"}


def image_scores(rows: pd.DataFrame, upsample: str = "bilinear") -> pd.DataFrame:
    """Per (model, seed, image, layer): IoU and Hit averaged over the image's findings, the
    unit of Table 2's paired comparisons (findings of one image are not independent; each seed
    draws its own test scenes, so a (seed, image) pair is one scene)."""
    r = rows[rows.upsample == upsample] if "upsample" in rows.columns else rows
    if r.empty:
        raise ValueError(f"no rows with upsample={upsample!r}")
    return (
        r.groupby(["model", "seed", "image", "layer"], sort=False)[["iou", "hit"]]
        .mean()
        .reset_index()
    )


def claim_layers(s: StandIn, metric: str = "iou") -> dict[str, str]:
    """The layers Table 2's claim compares for ``s``, fixed before the run: ``last`` (the last
    layer), ``back`` (the paper's best layer one or two blocks back for the model ``s`` stands in
    for, on ``metric``: taken from the paper's Table 2, not from ours, so that no layer is picked
    on the numbers it is then tested on) and ``far`` (the farthest layer, "too far back")."""
    labels = list(s.layers)
    roles = layer_roles(labels)
    back = paper_best_layer(s.paper_model, metric)
    if roles.get(back) != "1-2 back":
        raise ValueError(
            f"{s.label}: the paper's best layer {back!r} is not one or two blocks "
            f"back among {labels}"
        )
    return {"last": labels[0], "back": back, "far": labels[-1]}


def table2_verdicts(
    rows: pd.DataFrame,
    exp: "Table2Experiment",
    parts: Sequence[str] = tuple(TABLE2_PARTS),
    metrics_: Sequence[str] = tuple(CLAIM_METRICS),
    upsample: str = "bilinear",
) -> pd.DataFrame:
    """The verdicts of Table 2's claim on this run, rules fixed before it: per model, metric and
    part, a paired bootstrap over the test scenes (every (seed, image) pair; per scene, the metric
    averaged over its findings) of the difference between two layers (:func:`claim_layers`):

    - ``back-beats-last``: mean(metric at ``back`` − at ``last``) > 0;
    - ``too-far-back``: mean(metric at ``far`` − at ``back``) < 0.

    Columns: model, paper model, metric, part, layer, against, ``mean (layer)``, ``mean
    (against)`` (over scenes), difference, low, high, outcome, scenes, seeds, the paper's
    difference (Table 2's means), and ``verdict`` (the :class:`lib.verdict.Verdict`)."""
    per = image_scores(rows, upsample)
    paper = PAPER_TABLE2
    out = []
    for m, s in exp.models.items():
        g = per[per.model == m]
        if g.empty:
            continue
        for metric in metrics_:
            col = _METRIC_COLUMN[metric]
            lay = claim_layers(s, metric)
            wide = g.pivot_table(
                index=["seed", "image"], columns="layer", values=col, sort=False
            ).dropna()
            n_seeds = wide.index.get_level_values("seed").nunique()
            # the paper's models are scored on VinDr-CXR's test images, the stand-ins on scenes
            what = "test images" if s.is_paper_model else "test scenes"
            unit = (
                f"{what} ({n_seeds} seed{'s' if n_seeds != 1 else ''}, each with its own "
                f"{what.split()[1]} and model)"
            )
            k = 0 if metric == "iou" else 2
            for part in parts:
                says, direction = TABLE2_PARTS[part]
                a, b = (
                    (lay["back"], lay["last"])
                    if part == "back-beats-last"
                    else (lay["far"], lay["back"])
                )
                name = CLAIM_METRICS[metric]
                v = V.paired_difference(
                    wide[a].to_numpy(),
                    wide[b].to_numpy(),
                    0.0,
                    direction=direction,
                    unit=unit,
                    rule=f"mean over {what} of ({name} at {a} − at {b}) {direction} 0",
                )
                pa, pb = paper.get((s.paper_model, a)), paper.get((s.paper_model, b))
                out.append(
                    {
                        "model": m,
                        "paper model": s.paper_model,
                        "metric": metric,
                        "part": part,
                        "layer": a,
                        "against": b,
                        "mean (layer)": float(wide[a].mean()),
                        "mean (against)": float(wide[b].mean()),
                        "difference": v.estimate,
                        "low": v.low,
                        "high": v.high,
                        "outcome": v.outcome,
                        "scenes": v.n,
                        "seeds": n_seeds,
                        "paper difference": (
                            round(pa[k] - pb[k], 4) if pa is not None and pb is not None else np.nan
                        ),
                        "verdict": v,
                    }
                )
    return pd.DataFrame(out)


def table2_verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """:func:`table2_verdicts` for display: the comparison, the means, the difference with its
    95 % interval, the paper's difference and the outcome."""
    t = verdicts.copy()
    t["claim"] = [TABLE2_PARTS[p][0] for p in t["part"]]
    t["metric"] = t["metric"].map(CLAIM_METRICS)
    t["comparison"] = t["layer"] + " − " + t["against"]
    t["difference (95 % interval)"] = [
        f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        for d, lo, hi in zip(t["difference"], t["low"], t["high"])
    ]
    return t[
        [
            "model",
            "metric",
            "claim",
            "comparison",
            "mean (layer)",
            "mean (against)",
            "difference (95 % interval)",
            "paper difference",
            "scenes",
            "outcome",
        ]
    ]


def outcome_counts(outcomes: Sequence[str]) -> dict[str, int]:
    """How many of ``outcomes`` (verdict outcomes) there are (``"n"``) and how many hold, fail
    and are undecided: ``{"n": 8, "holds": 3, "fails": 2, "undecided": 3}``."""
    outcomes = list(outcomes)
    unknown = set(outcomes) - set(V.OUTCOMES)
    if unknown:
        raise ValueError(f"outcomes {sorted(unknown)} are none of {list(V.OUTCOMES)}")
    return {
        "n": len(outcomes),
        "holds": outcomes.count(V.HOLDS),
        "fails": outcomes.count(V.FAILS),
        "undecided": outcomes.count(V.UNDECIDED),
    }


#: short claim ids (``where`` already says "Table 2"): "beats-last-resnet-iou", so that the
#: chapter's figure of verdicts can title each panel in full
_PART_KEY = {"back-beats-last": "beats-last", "too-far-back": "too-far"}
_CLAIM_KEY = {
    "small_efficientnet": "effnet",
    "small_densenet": "densenet",
    "small_resnet": "resnet",
    "lite0": "lite0",
    "efficientnet_b0": "effnet-b0",
}


def table2_claims(verdicts: pd.DataFrame, exp: Table2Experiment) -> list[dict]:
    """The paper's Table-2 claim stated on OUR numbers, one row per model, part and metric, for
    ``lib.report.Claims.add``: claim_id (``beats-last-<model>-<metric>``,
    ``too-far-<model>-<metric>``), statement (worded as a stand-in result where the model
    is one), paper_value (the paper's difference between the same two layers, for the model
    stood in for), kind, tier ("stand-in"; "paper-data" for the paper's own networks on
    VinDr-CXR), verdict (from :func:`table2_verdicts`) and digits."""
    out = []
    for _, r in verdicts.iterrows():
        s = exp.models[r["model"]]
        key = _CLAIM_KEY.get(s.arch, s.arch.replace("_", "-"))
        name = CLAIM_METRICS[r["metric"]]
        if r["part"] == "back-beats-last":
            says = (
                f"Grad-CAM's {name} at {r['layer']}, one or two blocks back, is above the "
                f"last layer's ({r['against']})"
            )
        else:
            says = (
                f"Grad-CAM's {name} at the farthest layer {r['layer']} is below that at "
                f"{r['against']}, one or two blocks back (too far back is worse)"
            )
        pv = r["paper difference"]
        out.append(
            {
                "claim_id": f"{_PART_KEY[r['part']]}-{key}-{r['metric']}",
                "statement": f"{s.description}: {says}.",
                "paper_value": None if pd.isna(pv) else float(pv),
                "kind": "paper",
                "tier": "paper-data" if s.is_paper_model else "stand-in",
                "verdict": r["verdict"],
                "digits": 3,
            }
        )
    return out


def seed_gains(rows: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """The IoU gain of the layer tested one or two blocks back over the last layer, seed by seed
    (each seed its own model and test scenes), and its spread across seeds: the verdicts'
    intervals resample test scenes within these seeds, not new seeds."""
    per = image_scores(rows)
    piv = per.groupby(["model", "layer", "seed"], sort=False)["iou"].mean().unstack("seed")
    v = verdicts[(verdicts.metric == "iou") & (verdicts.part == "back-beats-last")]
    out = []
    for _, r in v.iterrows():
        d = piv.loc[(r["model"], r["layer"])] - piv.loc[(r["model"], r["against"])]
        out.append(
            {
                "model": r["model"],
                "layer tested (IoU)": r["layer"],
                "IoU gain over the last layer, per seed": np.round(d.to_numpy(), 3),
                "spread over seeds (sd)": float(d.std(ddof=1)) if len(d) > 1 else np.nan,
                "over scenes (95 % interval)": f"{r['difference']:+.3f} "
                f"[{r['low']:+.3f}, {r['high']:+.3f}]",
            }
        )
    return pd.DataFrame(out)


def true_positive_table(
    rows: pd.DataFrame, ours: pd.DataFrame, exp: Table2Experiment | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The same summary restricted to the true positives (sigmoid score > 0.5) beside all
    findings, the share of findings that are true positives, and the share of maps ReLU leaves
    empty; plus, given ``exp``, the verdicts of "one or two blocks back beats the last layer" on
    the true positives (:func:`table2_verdicts`; None when some layer has none)."""
    bil = rows[rows.upsample == "bilinear"]
    tp = bil[bil.score > 0.5]
    tp_table = summarise(tp).reset_index() if len(tp) else ours.iloc[:0]
    side = ours[["model", "layer", "iou", "hr"]].merge(
        tp_table[["model", "layer", "iou", "hr"]],
        on=["model", "layer"],
        how="left",
        suffixes=(" (all findings)", " (true positives)"),
    )
    key = ["model", "seed", "image", "cls", "box"]
    side["true positives / findings"] = side["model"].map(
        tp.drop_duplicates(key).groupby("model").size()
        / bil.drop_duplicates(key).groupby("model").size()
    )
    empty = bil.groupby(["model", "layer"], sort=False)["empty"].mean()
    side["empty maps"] = [empty.loc[(m, lay)] for m, lay in zip(side["model"], side["layer"])]
    tp_verdicts = None
    if exp is not None and len(tp_table) == len(ours):
        tp_verdicts = table2_verdicts(tp, exp, parts=("back-beats-last",))
    return side, tp_verdicts


def best_layers(ours: pd.DataFrame) -> dict[str, str]:
    """Each model's best layer: highest IoU, then HR."""
    return {
        m: g.sort_values(["iou", "hr"], ascending=False, kind="stable")["layer"].iloc[0]
        for m, g in ours.groupby("model", sort=False)
    }


def _first_images(exp: Table2Experiment, name: str, n: int) -> torch.Tensor:
    images, _ = exp.eval_set(name, 0)
    return _take(images, list(range(min(n, len(images)))))


def figure2(exp: Table2Experiment, best: dict[str, str], n_erf: int):
    """Figure 2: per model (seed 0), the ERF (Eq. 2, over ``n_erf`` test images) of the centre
    unit of the last layer (top) and of the best layer (bottom), with the centre unit's
    theoretical RF (white; dashed when unbounded and only its convolutional part is drawn), the
    last layer's up-sampling grid (cyan lines), where the protocol puts the unit (cyan x) and its
    RF centre (white +). Returns (figure, table of the ERF radii)."""
    names = list(exp.models)
    fig, axes = plt.subplots(2, len(names), figsize=(7.5, 4.4), squeeze=False)
    rows = []
    for j, m in enumerate(names):
        s = exp.models[m]
        model, _ = exp.load_model(m, 0)
        images = _first_images(exp, m, n_erf).to(exp.device)
        size = images.shape[-1]
        last_label = next(iter(s.layers))
        table = rf.receptive_fields(model, size)
        last_rf = table[layer_name(model, s.layers[last_label])]
        for i, (which, label) in enumerate((("last", last_label), ("best", best[m]))):
            mod = layer_name(model, s.layers[label])
            e = rf.erf(model, mod, images)
            r = table[mod]
            cy, cx = r.out_h // 2, r.out_w // 2
            ax = axes[i, j]
            ax.imshow((e / e.max()).numpy(), cmap="magma")
            (y0, y1), (x0, x1) = rf.unit_rf_bounds(r, cy, cx)
            ax.add_patch(
                plt.Rectangle(
                    (x0 - 0.5, y0 - 0.5),
                    x1 - x0 + 1,
                    y1 - y0 + 1,
                    fill=False,
                    color="white",
                    lw=1,
                    ls="--" if math.isinf(r.rf_max) else "-",
                )
            )
            for k in range(1, last_rf.out_h):
                ax.axhline(k * size / last_rf.out_h - 0.5, color="cyan", lw=0.4)
                ax.axvline(k * size / last_rf.out_w - 0.5, color="cyan", lw=0.4)
            ax.plot(r.x.centres()[cx], r.y.centres()[cy], "w+", ms=8)
            gy = upsample_centres(last_rf.out_h, size)[
                min(cy * last_rf.out_h // r.out_h, last_rf.out_h - 1)
            ]
            gx = upsample_centres(last_rf.out_w, size)[
                min(cx * last_rf.out_w // r.out_w, last_rf.out_w - 1)
            ]
            ax.plot(gx, gy, "cx", ms=7)
            rad = rf.erf_radius(e, 0.5)
            rows.append(
                {
                    "model": m,
                    "layer": label,
                    "which": which,
                    "centre unit": f"({cy}, {cx}) of {r.out_h}x{r.out_w}",
                    "theoretical RF (px)": r.rf_max,
                    "RF, conv. part (px)": r.rf_local,
                    "image (px)": size,
                    "ERF radius, 50 % mass (px)": rad,
                    "ERF radius / image": rad / size,
                }
            )
            ax.set_title(f"{s.short}\n{which}: {label},\nr50 = {rad:.0f} px", fontsize=9)
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.axis("off")
    fig.suptitle(
        "ERF (Eq. 2) of the centre unit: last layer (top) vs best layer (bottom)", fontsize=10
    )
    fig.tight_layout()

    shared_colorbar(fig, "ERF as a share of its maximum", cmap="magma")
    return fig, pd.DataFrame(rows)


def figure1(exp: Table2Experiment, best: dict[str, str]):
    """Figure 1: per model (seed 0) its first test image, the finding of its first box as the
    target, and the last-layer and best-layer maps through the protocol, with each map's IoU and
    Hit. Returns (figure, table of the scores)."""
    names = list(exp.models)
    fig, axes = plt.subplots(len(names), 3, figsize=(7.5, 2.3 * len(names)), squeeze=False)
    rows = []
    for j, m in enumerate(names):
        s = exp.models[m]
        model, _ = exp.load_model(m, 0)
        images, boxes = exp.eval_set(m, 0)
        x = _take(images, [0])
        b = torch.as_tensor(np.asarray(boxes[0], dtype=np.float64))
        cls = int(b[0, 4])
        labels = [next(iter(s.layers)), best[m]]
        mods = [layer_name(model, s.layers[lab]) for lab in labels]
        maps = layer_maps(model, x.to(exp.device), mods, target=cls)["bilinear"]
        mask = next(mk for c, _, mk in finding_masks(b, x.shape[-2], x.shape[-1]) if c == cls)
        mask = mask[None].to(exp.device)
        img = (
            as_image(x[0], IMAGENET_MEAN, IMAGENET_STD) if exp.profile == "full" else as_image(x[0])
        )
        cls_boxes = b[b[:, 4] == cls, :4]
        overlay(axes[j, 0], img, boxes=cls_boxes, title=f"{s.short}: class {cls}")
        for i, (lab, n) in enumerate(zip(labels, mods)):
            iou = float(metrics.iou_top_area(maps[n], mask)[0])
            hit = int(metrics.hit(maps[n], mask)[0])
            rows.append(
                {"model": m, "layer": lab, "which": ["last", "best"][i], "IoU": iou, "hit": hit}
            )
            overlay(
                axes[j, i + 1],
                img,
                maps[n][0].cpu(),
                boxes=cls_boxes,
                title=f"{['last', 'best'][i]}: {lab}\nIoU {iou:.2f}, hit {hit}",
            )
    fig.tight_layout()

    shared_colorbar(fig, "Grad-CAM, as a share of each map's maximum")
    return fig, pd.DataFrame(rows)


def photo_figure(model: nn.Module, photo: str, best_label: str, device="cpu"):
    """Figure 1 on a real photograph: EfficientNet-Lite0 with its own ImageNet head, its
    predicted class as the target, the last layer and ``best_label`` (a key of LITE0_LAYERS)
    through the protocol at 224 px, scored against the photograph's box. Returns (figure,
    table)."""
    x = preprocess([load_photo(photo)], size=224, resize=256).to(device)
    _, coords = photo_boxes(photo)
    with torch.no_grad():
        pred = int(model(x).argmax(1))
    names = [LITE0_LAYERS["features[-1]"], LITE0_LAYERS[best_label]]
    maps = layer_maps(model, x, names, target=pred)["bilinear"]
    boxes = np.c_[coords.numpy(), np.zeros(len(coords))]
    mask = finding_masks(boxes, x.shape[-2], x.shape[-1])[0][2][None].to(device)
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
    img = as_image(x[0].cpu(), LITE0_MEAN, LITE0_STD)
    overlay(axes[0], img, boxes=coords, title=f"{photo}: predicted '{imagenet_categories()[pred]}'")
    rows = []
    for i, n in enumerate(names):
        iou = float(metrics.iou_top_area(maps[n], mask)[0])
        hit = int(metrics.hit(maps[n], mask)[0])
        rows.append({"layer": n, "IoU": iou, "hit": hit})
        overlay(
            axes[i + 1],
            img,
            maps[n][0].cpu(),
            boxes=coords,
            title=f"{['last', 'best (Table 2)'][i]}: {n}\nIoU {iou:.2f}, hit {hit}",
        )
    fig.tight_layout()

    shared_colorbar(fig, "Grad-CAM, as a share of each map's maximum")
    return fig, pd.DataFrame(rows)


def photo_best_label(exp: Table2Experiment, best: dict[str, str]) -> str:
    """The layer shown beside the last one on the photograph: the best layer of this run's
    EfficientNet-Lite0 row when Table 2 has one, else the paper's best EfficientNet-b0 layer."""
    lite = [m for m, s in exp.models.items() if s.arch == "lite0"]
    return best[lite[0]] if lite else paper_best_layer("EfficientNet-b0")


def rf_centre_offsets(
    models: dict[str, tuple[str, str]] | None = None, input_size: int = PAPER_INPUT
) -> pd.DataFrame:
    """Where each unit's RF is centred vs where bilinear up-sampling (align_corners=False) puts
    it, for the last layer of ImageNet networks (``models``: label -> (zoo name, layer)):
    the RF centre of unit 0, its up-sampled position, and the largest offset (px)."""
    models = models or {
        "VGG16": ("vgg16", "features.29"),
        "ResNet50": ("resnet50", "layer4"),
        "DenseNet121": ("densenet121", "features"),
        "EfficientNet-b0": ("efficientnet_b0", "features"),
    }
    rows = []
    for label, (arch, layer) in models.items():
        cy, _ = rf.rf_centres(meta_model(arch), layer, input_size)
        up = upsample_centres(len(cy), input_size)
        rows.append(
            {
                "model": label,
                "layer": layer,
                "units": len(cy),
                "RF centre of unit 0": cy[0],
                "up-sampling puts it at": up[0],
                "offset (px)": float(np.max(np.abs(up - cy))),
            }
        )
    return pd.DataFrame(rows)


def upsampling_offsets(exp: Table2Experiment) -> pd.DataFrame:
    """The same offset for the last layer of each Table 2 model (seed 0), in px and in units of
    the last layer's spacing."""
    rows = []
    for m, s in exp.models.items():
        model, _ = exp.load_model(m, 0)
        last = next(iter(s.layers))
        cy, _ = rf.rf_centres(model, s.layers[last], s.input_size)
        up = upsample_centres(len(cy), s.input_size)
        off = float(np.mean(cy - up))
        rows.append(
            {
                "model": m,
                "last layer": last,
                "units": len(cy),
                "input (px)": s.input_size,
                "offset, RF centre - bilinear (px)": off,
                "offset / unit spacing": off / (s.input_size / len(cy)),
            }
        )
    return pd.DataFrame(rows)


def rf_centred_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 2's IoU and HR with bilinear and RF-centred up-sampling, and their differences."""
    both = summarise(rows, by=("model", "layer", "upsample")).reset_index()
    wide = both.pivot_table(
        index=["model", "layer"], columns="upsample", values=["iou", "hr"], sort=False
    )
    return pd.DataFrame(
        {
            "IoU bilinear": wide[("iou", "bilinear")],
            "IoU RF-centred": wide[("iou", "rf")],
            "ΔIoU": wide[("iou", "rf")] - wide[("iou", "bilinear")],
            "HR bilinear": wide[("hr", "bilinear")],
            "HR RF-centred": wide[("hr", "rf")],
            "ΔHR": wide[("hr", "rf")] - wide[("hr", "bilinear")],
        }
    )


# --------------------------------------------------------------------------------------------
# Taimeskhanov et al.'s dead zone, swept over the number of masked rows
# --------------------------------------------------------------------------------------------


def dead_zone_verdict(dz: rf.DeadZone, paper: dict = PAPER_DEAD_ZONE) -> V.Verdict:
    """The verdict of ``dead-zone``: the dead rows traced from the masked VGG16's architecture
    and mask (``lib.rf.dead_zone``); the rule: their number, the first one and their share of the
    image (whole per cent) are the paper's."""
    ours = (dz.n, dz.first, round(100 * dz.fraction))
    want = (paper["n"], paper["first"], paper["percent"])
    return V.exact(
        dz.n,
        paper["n"],
        holds=ours == want,
        rule=f"dead rows, first dead row and share of the image = the paper's "
        f"({want[0]} rows from row {want[1]}, {want[2]} %)",
        method="traced from the masked VGG16's architecture and mask (lib.rf), nothing sampled",
    )


def dead_zone_sweep(features: nn.Module, input_size: int = PAPER_INPUT) -> pd.DataFrame:
    """Dead rows (lib.rf.dead_zone) of ``features`` for every number of masked feature rows, 0
    to all of them, and the rows each further masked row adds."""
    n = rf.receptive_field(features, "", input_size).out_h
    dead = [rf.dead_zone(features, input_size, k).n for k in range(n + 1)]
    return pd.DataFrame(
        {
            "masked rows": range(n + 1),
            "dead rows": dead,
            "added by the last masked row": [0] + list(np.diff(dead)),
        }
    )


def dead_zone_sweep_facts(sweep: pd.DataFrame, jump: float) -> dict[str, Any]:
    """The landmarks of :func:`dead_zone_sweep`: ``first_dead`` (the fewest masked rows with a
    dead zone), ``dead_at_first`` (its dead rows), ``added`` (the rows each further masked row
    adds, up to all but one masked), ``adds_the_jump`` (True if each of them adds exactly
    ``jump``), ``n`` (all feature rows), ``dead_before_all`` (dead rows with ``n - 1`` masked)
    and ``dead_all`` (with all ``n`` masked)."""
    dead = sweep.set_index("masked rows")["dead rows"]
    added = sweep.set_index("masked rows")["added by the last masked row"]
    if not (dead > 0).any():
        raise ValueError("no number of masked rows gives a dead zone in this sweep")
    k0 = int(dead[dead > 0].index[0])
    n = int(dead.index[-1])
    middle = [int(v) for v in added.loc[k0 + 1 : n - 1]]
    return {
        "first_dead": k0,
        "dead_at_first": int(dead[k0]),
        "added": middle,
        "adds_the_jump": bool(middle) and set(middle) == {int(jump)},
        "n": n,
        "dead_before_all": int(dead[n - 1]),
        "dead_all": int(dead[n]),
    }
