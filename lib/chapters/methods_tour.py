"""Chapter "A tour of the methods": every CAM method of the engine on real photographs with the
ImageNet-pretrained EfficientNet-Lite0; the chapter's sizes, its checks and its scores."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import cam, metrics
from ..data.boxes import box_mask
from ..data.photos import list_photos, photo_boxes

__all__ = ["SIZES", "COST", "LAYER", "LAYER_METHODS", "INPUT_METHODS", "EXPECTED",
           "predictions", "check_predictions", "agreement_with_pytorch_grad_cam",
           "captum_options", "predicted_object_masks", "box_scores"]

#: per profile: photographs, those that also get Score-CAM (hundreds of passes each), the
#: occlusion stride, the steps of Integrated Gradients (half as many samples for Gradient SHAP)
SIZES = {"photos": {"smoke": ["coffee"], "default": list_photos(), "full": list_photos()},
         "scorecam_photos": {"smoke": [], "default": ["chelsea", "coffee"], "full": list_photos()},
         "occlusion_stride": {"smoke": 45, "default": 16, "full": 4},
         "ig_steps": {"smoke": 8, "default": 32, "full": 64}}
COST = {"smoke": "under a minute on a CPU",
        "default": "about 4 minutes on a 2-core CPU (Score-CAM: ~600 forward passes a photograph)",
        "full": "a few minutes on one GPU"}
#: EfficientNet-Lite0's last feature map: 1280 x 7 x 7, then global average pooling + linear
LAYER = "bn2"
LAYER_METHODS = ["cam", "gradcam", "gradcam++", "xgradcam", "hirescam", "layercam",
                 "counterfactual", "eigencam", "ablationcam"]
INPUT_METHODS = ["guidedbackprop", "guidedgradcam", "integratedgradients", "occlusion",
                 "gradientshap"]
#: what a person sees in the photographs: the top-3 classes of chelsea are the three cats
#: (tabby, tiger cat, Egyptian cat); coffee is an espresso; the rocket a missile
EXPECTED = {"chelsea": ("top-3", {281, 282, 285}), "coffee": ("top-1", {967}),
            "rocket": ("top-1", {657})}


def predictions(model: nn.Module, x: torch.Tensor, names: Sequence[str],
                categories: Sequence[str], k: int = 3) -> tuple[torch.Tensor, pd.DataFrame]:
    """(top-k class indices (N, k), a table of the top-k classes and the top-1 probability)."""
    with torch.no_grad():
        top = model(x).softmax(1).topk(k, dim=1)
    table = pd.DataFrame({f"top-{r + 1}": [categories[i] for i in top.indices[:, r].tolist()]
                          for r in range(k)}, index=pd.Index(list(names), name="photo"))
    table["p(top-1)"] = top.values[:, 0].cpu().numpy()
    return top.indices.cpu(), table


def check_predictions(top: torch.Tensor, names: Sequence[str], categories: Sequence[str]
                      ) -> pd.DataFrame:
    """One row per photograph of :data:`EXPECTED` in ``names``: expected and predicted classes
    and whether they agree."""
    rows = []
    for name, (which, want) in EXPECTED.items():
        if name not in names:
            continue
        got = top[list(names).index(name)].tolist()
        got = set(got[:3] if which == "top-3" else got[:1])
        rows.append({"photo": name, "which": which,
                     "expected": ", ".join(categories[i] for i in sorted(want)),
                     "predicted": ", ".join(categories[i] for i in sorted(got)),
                     "holds": got == want})
    return pd.DataFrame(rows)


def agreement_with_pytorch_grad_cam(model: nn.Module, x: torch.Tensor, layer: str,
                                    maps: dict[str, torch.Tensor]) -> dict[str, float]:
    """max |ours - pytorch-grad-cam| after pytorch-grad-cam's post-processing, per method, for
    Grad-CAM and HiResCAM (the library's tests do the other methods)."""
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
        return {"sliding_window_shapes": (3, 45, 45), "strides": occlusion_stride,
                "perturbations_per_eval": 16}
    if method == "gradientshap":
        return {"n_samples": ig_steps // 2, "stdevs": 0.1}
    return {}


def predicted_object_masks(names: Sequence[str], top1: Sequence[int], size: int = 224
                           ) -> torch.Tensor:
    """(N, size, size) masks of each photograph's box of the predicted class (its first box where
    no box carries that class), through the model's resize-and-crop geometry."""
    masks = []
    for name, cls in zip(names, top1):
        objs, coords = photo_boxes(name)
        pick = next((k for k, b in enumerate(objs) if cls in b.imagenet_classes), 0)
        masks.append(box_mask(coords[pick:pick + 1], size, size))
    return torch.stack(masks)


def box_scores(maps: dict[str, torch.Tensor], masks: torch.Tensor) -> pd.DataFrame:
    """Per method: mean share of the map's mass in the box (``metrics.mass_in_mask``) over the
    maps that are not zero everywhere (an empty map has no mass to place: counted, left out), hit
    rate (arg-max in the box), and the box's share of the image (what an even map scores)."""
    table = pd.DataFrame({m: {"mass in box": torch.nanmean(
                                  metrics.mass_in_mask(v, masks, empty="nan")).item(),
                              "hit rate": metrics.hit(v, masks).mean().item(),
                              "empty maps": int(metrics.is_empty(v).sum())}
                          for m, v in maps.items()}).T
    table["box share of image"] = masks.float().mean().item()
    return table
