"""Chapter "A tour of the methods": every CAM method of the engine on real photographs with the
ImageNet-pretrained EfficientNet-Lite0; the chapter's sizes, its checks, its scores and the rules
of its verdicts (fixed here, before the run)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import cam, metrics
from .. import verdict as V
from ..data.boxes import box_mask
from ..data.photos import list_photos, photo_boxes
from ..plot import method_label

__all__ = [
    "SIZES",
    "COST",
    "LAYER",
    "LAYER_METHODS",
    "INPUT_METHODS",
    "EXPECTED",
    "predictions",
    "check_predictions",
    "agreement_with_pytorch_grad_cam",
    "captum_options",
    "predicted_object_masks",
    "box_scores",
    "box_scores_per_photo",
    "localisation_verdict",
    "predictions_check",
    "LOCALISATION_RULE",
    "REFERENCE_TOLERANCE",
    "reference_check",
]

#: per profile: photographs, those that also get Score-CAM (hundreds of passes each), the
#: occlusion stride, the steps of Integrated Gradients (half as many samples for Gradient SHAP)
SIZES = {
    "photos": {"smoke": ["coffee"], "default": list_photos(), "full": list_photos()},
    "scorecam_photos": {"smoke": [], "default": ["chelsea", "coffee"], "full": list_photos()},
    "occlusion_stride": {"smoke": 45, "default": 16, "full": 4},
    "ig_steps": {"smoke": 8, "default": 32, "full": 64},
}
COST = {
    "smoke": "under a minute on a CPU",
    "default": "1 to 3 minutes on a 2-core CPU (Score-CAM: ~600 forward passes a photograph)",
    "full": "a few minutes on one GPU",
}
#: EfficientNet-Lite0's last feature map: 1280 x 7 x 7, then global average pooling + linear
LAYER = "bn2"
#: the layer methods on every photograph; Score-CAM (hundreds of passes) only on ``scorecam_photos``
LAYER_METHODS = [m for m in cam.LAYER_METHODS if m != "scorecam"]
#: the methods at the input's resolution: guided backpropagation and Captum's attributions
INPUT_METHODS = [*cam.INPUT_METHODS, *cam.CAPTUM_METHODS]
#: what a person sees in the photographs: the top-3 classes of chelsea are the three cats
#: (tabby, tiger cat, Egyptian cat); coffee is an espresso; the rocket a missile
EXPECTED = {
    "chelsea": ("top-3", {281, 282, 285}),
    "coffee": ("top-1", {967}),
    "rocket": ("top-1", {657}),
}


def predictions(
    model: nn.Module, x: torch.Tensor, names: Sequence[str], categories: Sequence[str], k: int = 3
) -> tuple[torch.Tensor, pd.DataFrame]:
    """(top-k class indices (N, k), a table of the top-k classes and the top-1 probability)."""
    with torch.no_grad():
        top = model(x).softmax(1).topk(k, dim=1)
    table = pd.DataFrame(
        {f"top-{r + 1}": [categories[i] for i in top.indices[:, r].tolist()] for r in range(k)},
        index=pd.Index(list(names), name="photo"),
    )
    table["p(top-1)"] = top.values[:, 0].cpu().numpy()
    return top.indices.cpu(), table


def check_predictions(
    top: torch.Tensor, names: Sequence[str], categories: Sequence[str]
) -> pd.DataFrame:
    """One row per photograph of :data:`EXPECTED` in ``names``: expected and predicted classes
    and whether they agree."""
    rows = []
    for name, (which, want) in EXPECTED.items():
        if name not in names:
            continue
        got = top[list(names).index(name)].tolist()
        got = set(got[:3] if which == "top-3" else got[:1])
        rows.append(
            {
                "photo": name,
                "which": which,
                "expected": ", ".join(categories[i] for i in sorted(want)),
                "predicted": ", ".join(categories[i] for i in sorted(got)),
                "holds": got == want,
            }
        )
    return pd.DataFrame(rows)


def agreement_with_pytorch_grad_cam(
    model: nn.Module, x: torch.Tensor, layer: str, maps: dict[str, torch.Tensor]
) -> dict[str, float]:
    """max |ours - pytorch-grad-cam| after pytorch-grad-cam's post-processing, per method, for
    Grad-CAM and HiResCAM (the library's tests do the other methods)."""
    # lazy: pytorch-grad-cam costs ~4 s to import; only the comparison needs it
    from pytorch_grad_cam import GradCAM, HiResCAM

    diffs = {}
    for name, method in (("gradcam", GradCAM), ("hirescam", HiResCAM)):
        with method(model=model, target_layers=[cam.resolve_layer(model, layer)]) as ref_cam:
            ref = ref_cam(x, targets=None)
        ours = cam.postprocess(maps[name], x.shape[-1], preset=cam.PGC_PRESET).cpu().numpy()
        diffs[name] = float(np.abs(ours - ref).max())
    return diffs


def captum_options(method: str, occlusion_stride: int, ig_steps: int) -> dict:
    """The Captum arguments of an input-resolution method: 45 x 45 occlusion patches of zeros,
    ``ig_steps`` steps of Integrated Gradients, half as many Gradient SHAP samples."""
    if method == "integratedgradients":
        return {"n_steps": ig_steps, "internal_batch_size": 32}
    if method == "occlusion":
        return {
            "sliding_window_shapes": (3, 45, 45),
            "strides": occlusion_stride,
            "perturbations_per_eval": 16,
        }
    if method == "gradientshap":
        return {"n_samples": ig_steps // 2, "stdevs": 0.1}
    return {}


def predicted_object_masks(
    names: Sequence[str], top1: Sequence[int], size: int = 224
) -> torch.Tensor:
    """(N, size, size) masks of each photograph's box of the predicted class (its first box where
    no box carries that class), through the model's resize-and-crop geometry."""
    masks = []
    for name, cls in zip(names, top1):
        objs, coords = photo_boxes(name)
        pick = next((k for k, b in enumerate(objs) if cls in b.imagenet_classes), 0)
        masks.append(box_mask(coords[pick : pick + 1], size, size))
    return torch.stack(masks)


def box_scores_per_photo(
    maps: dict[str, torch.Tensor], masks: torch.Tensor, names: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per (method, photograph): ``mass in box`` (``metrics.mass_in_mask``; NaN for a map
    that is zero everywhere, which has no mass to place), ``hit`` (arg-max in the box, 0/1),
    ``empty`` and ``box share of image`` (that photograph's box area / image area: what a map
    spread evenly over the image scores on "mass in box"). ``names``: the photographs, in the
    order of the maps (default 0, 1, ...)."""
    names = list(range(len(masks))) if names is None else list(names)
    if len(names) != len(masks):
        raise ValueError(f"{len(names)} names for {len(masks)} masks")
    share = masks.flatten(1).float().mean(1).cpu().numpy()
    frames = []
    for m, v in maps.items():
        if len(v) != len(masks):
            raise ValueError(f"method {m!r}: {len(v)} maps for {len(masks)} masks")
        frames.append(
            pd.DataFrame(
                {
                    "method": m,
                    "photo": names,
                    "mass in box": metrics.mass_in_mask(v, masks, empty="nan").cpu().numpy(),
                    "hit": metrics.hit(v, masks).cpu().numpy(),
                    "empty": metrics.is_empty(v).cpu().numpy(),
                    "box share of image": share,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def box_scores(maps: dict[str, torch.Tensor], masks: torch.Tensor) -> pd.DataFrame:
    """Per method: mean share of the map's mass in the box (``metrics.mass_in_mask``) over the
    maps that are not zero everywhere (an empty map has no mass to place: counted, left out), hit
    rate (arg-max in the box), and the box's share of the image (what an even map scores)."""
    table = pd.DataFrame(
        {
            m: {
                "mass in box": torch.nanmean(metrics.mass_in_mask(v, masks, empty="nan")).item(),
                "hit rate": metrics.hit(v, masks).mean().item(),
                "empty maps": int(metrics.is_empty(v).sum()),
            }
            for m, v in maps.items()
        }
    ).T
    table["box share of image"] = masks.float().mean().item()
    return table


#: the rule of ``gradcam-localises``, fixed before the run (Selvaraju et al., Section 4: Grad-CAM
#: localises the predicted object): per photograph, Grad-CAM's share of mass in the box minus the
#: box's share of the image (what a map spread evenly scores); its mean over the photographs must
#: be above 0, by a paired bootstrap over photographs
LOCALISATION_RULE = (
    "mean over photographs of (Grad-CAM's mass in the box − the box's share of the image) > 0"
)


def localisation_verdict(per_photo: pd.DataFrame, method: str = "gradcam") -> V.Verdict:
    """The verdict of ``gradcam-localises`` from :func:`box_scores_per_photo`: a paired bootstrap
    over the photographs of ``method``'s mass in the box against the photograph's box share of
    the image. A photograph whose map is empty (no mass) is left out, and said so in the rule;
    with fewer than 2 photographs left there is no interval to decide on: "not run here"."""
    rows = per_photo[per_photo["method"] == method]
    if rows.empty:
        raise ValueError(f"no scores of method {method!r}; have {sorted(set(per_photo.method))}")
    kept = rows[~rows["empty"]]
    rule = LOCALISATION_RULE.replace("Grad-CAM", _label(method))
    if len(kept) < len(rows):
        rule += f" ({len(rows) - len(kept)} empty map(s) left out)"
    if len(kept) < 2:  # one photograph has no spread to resample: no interval, no outcome
        return V.not_run(
            rule,
            f"{len(kept)} photograph(s) with a map on this profile; an interval needs at least 2",
        )
    return V.paired_difference(
        kept["mass in box"], kept["box share of image"], 0.0, rule=rule, unit="photographs"
    )


def _label(method: str) -> str:
    return method_label(method)


def predictions_check(expected: pd.DataFrame) -> V.Verdict:
    """The set-up check ``photos-as-expected`` from :func:`check_predictions`: the number of
    photographs NOT predicted as a person sees them, against a tolerance of 0. It checks the
    weights' loading and the pre-processing (a wrong parameter mapping or normalisation fails
    it), not a claim of the paper."""
    wrong = int((~expected["holds"].astype(bool)).sum())
    return V.check(
        wrong,
        0,
        rule=f"photographs not predicted as a person sees them (of {len(expected)} checked) = 0",
    )


#: the largest difference from pytorch-grad-cam's maps (in [0, 1]) that counts as the same map
REFERENCE_TOLERANCE = 1e-4


def reference_check(diffs: dict[str, float]) -> V.Verdict:
    """The check ``same-as-pytorch-grad-cam`` from :func:`agreement_with_pytorch_grad_cam`: the
    largest difference over the methods compared, against :data:`REFERENCE_TOLERANCE`."""
    if not diffs:
        raise ValueError("no method was compared with pytorch-grad-cam")
    return V.check(
        max(diffs.values()),
        REFERENCE_TOLERANCE,
        rule=f"largest |ours − pytorch-grad-cam| over {', '.join(map(_label, diffs))} "
        f"maps in [0, 1] ≤ {REFERENCE_TOLERANCE:g}",
    )
