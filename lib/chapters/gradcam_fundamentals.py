"""Chapter "Grad-CAM fundamentals" (Selvaraju et al., through the reading notes of paper 002).

Grad-CAM computed step by step with a forward hook and autograd (Eq. 1-2); CAM as its special
case, w_k^c = Z alpha_k^c (Eq. 3-11), checked in float64; Guided Backpropagation, Guided Grad-CAM
and the counterfactual map (Eq. 12) on images where two classes compete; and global average
against global max pooling (Zhou et al.) over three training seeds, on scenes with exact boxes.
The chapter's sizes, recipes, checks and drivers; the notebook tells the story.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import cam, metrics
from ..data.photos import list_photos
from ..layers import resolve_layer
from ..plot import as_image, attribution_image, colorbar, overlay, signed_map

__all__ = ["SIZES", "COST", "COMPETE_RATIO", "DELETE_FRACTION", "ACCURACY_TOLERANCE", "SCENES",
           "SEEDS", "Images", "load_images", "predictions", "layer_gradients", "Steps",
           "gradcam_steps", "engine_difference", "top_channels", "pixel_terms", "plot_steps",
           "cam_vs_gradcam", "cam_identity", "identity_table", "competing", "TwoClasses",
           "two_class_maps", "discrimination", "discrimination_verdict", "deletion",
           "counterfactual_verdict", "counterfactual_reading", "plot_two_classes", "recipe",
           "recipe_text", "load_pooled", "localisation_scenes", "canvas_to_box", "localise",
           "gap_gmp_runs", "gap_gmp_summary", "paired", "gap_gmp_verdict", "gap_gmp_reading",
           "plot_gap_gmp"]

#: two classes "compete" on an image when the second's probability is at least this share of
#: the first's
COMPETE_RATIO = 0.5
#: the share of the image deleted (set to the data's mean colour) in the counterfactual test
DELETE_FRACTION = 0.2
#: "similar accuracy": GAP's and GMP's mean test accuracies differ by at most this (1 point)
ACCURACY_TOLERANCE = 0.01

#: per profile: the photographs (None: ImageNet validation images, profile "full"), the one
#: walked through step by step (None: the first image), how many ImageNet images the full profile
#: reads, how many images the float64 check takes (small networks; photographs), how many
#: competing images are drawn, how many scenes score GAP against GMP, the training seeds of the
#: GAP / GMP networks (three in every profile: the spread needs them), and the thresholds of the
#: verdicts (the module constants above, the same in every profile)
SIZES = {"photos": {"smoke": ["chelsea"], "default": list_photos(), "full": None},
         "step_photo": {"smoke": "chelsea", "default": "chelsea", "full": None},
         "n_imagenet": {"smoke": 0, "default": 0, "full": 200},
         "n_identity": {"smoke": 16, "default": 64, "full": 1000},
         # Lite0 in float64 on a CPU: ~5 CPU-seconds a photograph
         "n_identity_photos": {"smoke": 1, "default": 2, "full": 32},
         "n_show": {"smoke": 1, "default": 3, "full": 4},
         "n_scenes": {"smoke": 60, "default": 500, "full": 5000},
         "seeds": {"smoke": [0, 1, 2], "default": [0, 1, 2], "full": [0, 1, 2]},
         "compete_ratio": dict.fromkeys(("smoke", "default", "full"), COMPETE_RATIO),
         "delete_fraction": dict.fromkeys(("smoke", "default", "full"), DELETE_FRACTION),
         "accuracy_tolerance": dict.fromkeys(("smoke", "default", "full"), ACCURACY_TOLERANCE)}
COST = {"smoke": "under a minute on a CPU",
        "default": "under a minute on a 2-core CPU (the six GAP / GMP networks are committed)",
        "full": "a few minutes on one GPU (ResNet50 on ImageNet validation images)"}
#: the scenes on which the GAP / GMP networks, trained on 28 px Fashion-MNIST items, localise:
#: one item on a 64 px black canvas, resized to 26-32 px (about its training size), no distractor
SCENES = dict(size=64, n_objects=1, n_distractors=0, scale=(0.4, 0.5))
#: training seeds with committed GAP and GMP weights (lib.train.RECIPES)
SEEDS = (0, 1, 2)


# --------------------------------------------------------------------------- the images

@dataclass
class Images:
    """The images of sections 1-3 with their model: ImageNet-pretrained EfficientNet-Lite0 on
    the photographs (smoke, default), torchvision's ResNet50 on ImageNet validation images
    (full). ``layer`` is the last feature map (global average pooling and one linear layer
    follow it); ``inner_layer`` an earlier one, where gradients vary from unit to unit."""
    model: nn.Module
    model_name: str
    layer: str
    inner_layer: str
    x: torch.Tensor
    names: list[str]
    categories: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def index(self, name: str | None) -> int:
        """The position of image ``name`` (None: the first image)."""
        if name is None:
            return 0
        if name not in self.names:
            raise ValueError(f"no image named {name!r}; the images are {self.names}")
        return self.names.index(name)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as (H, W, 3) in [0, 1], for display."""
        return as_image(self.x[i].cpu(), self.mean, self.std)


def load_images(profile: str, device, photos: Sequence[str] | None = None,
                data_root=None, n_imagenet: int = 0) -> Images:
    """The model and images of the profile: Lite0 and the photographs ``photos``, or (profile
    "full") ResNet50 with torchvision's ImageNet weights and the first ``n_imagenet`` ImageNet
    validation images under ``data_root`` (``lib.data.imagenet``, which raises DataMissingError
    when they are not there)."""
    from ..models.pretrained import (LITE0_LAYER, LITE0_MEAN, LITE0_STD, efficientnet_lite0,
                                     imagenet_categories, preprocess)

    categories = imagenet_categories()
    if profile == "full":
        from ..data.images import IMAGENET_MEAN, IMAGENET_STD
        from ..data.imagenet import ImageNetVal
        from ..models.zoo import build

        if n_imagenet < 1:
            raise ValueError(f"n_imagenet={n_imagenet}: the full profile needs at least one "
                             "ImageNet validation image")
        ds = ImageNetVal(data_root, resize=256, crop=224, mode="shorter", limit=n_imagenet)
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        model = build("resnet50", weights="imagenet").eval()
        return Images(model.to(device), "ResNet50 (torchvision, ImageNet)", "layer4", "layer3",
                      x.to(device), ds.names, categories, IMAGENET_MEAN, IMAGENET_STD)
    from ..data.photos import load_photo

    if not photos:
        raise ValueError("photos is empty: name at least one of lib.data.photos.list_photos()")
    x = preprocess([load_photo(n) for n in photos])
    return Images(efficientnet_lite0().to(device), "EfficientNet-Lite0 (ImageNet)", LITE0_LAYER,
                  "blocks.6", x.to(device), list(photos), categories, LITE0_MEAN, LITE0_STD)


def predictions(images: Images, k: int = 2) -> tuple[torch.Tensor, torch.Tensor, pd.DataFrame]:
    """(top-k classes (N, k), their probabilities (N, k), a table of both per image)."""
    with torch.no_grad():
        top = images.model(images.x).softmax(1).topk(k, dim=1)
    idx, p = top.indices.cpu(), top.values.cpu()
    table = pd.DataFrame(index=pd.Index(images.names, name="image"))
    for r in range(k):
        table[f"top-{r + 1}"] = [images.categories[i] for i in idx[:, r].tolist()]
        table[f"p(top-{r + 1})"] = p[:, r].numpy()
    return idx, p, table


# --------------------------------------------------------------------------- Eq. 1-2 by hand

def layer_gradients(model: nn.Module, x: torch.Tensor, layer: str, target=None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, dy^c/dA, classes, logits) at ``layer`` for the images ``x``, all detached.

    A forward hook keeps the layer's output A (N, K, h, w); autograd gives the gradient of the
    summed target logits y^c (N images are independent in eval mode, so each image's gradient is
    its own). ``target``: None (the predicted class), an int or one int per image.
    """
    module = resolve_layer(model, layer)
    seen: list[torch.Tensor] = []

    def hook(mod, inputs, output):
        seen.append(output)
        return output.clone()  # what runs downstream is a copy: in-place ops leave A intact

    was_training = model.training
    model.eval()
    handle = module.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x.detach().requires_grad_(True))
            if len(seen) != 1:
                raise ValueError(f"layer {layer!r} ran {len(seen)} times in one forward pass; "
                                 "pick a layer that runs once")
            a = seen[0]
            if target is None:
                classes = logits.argmax(1)
            else:
                classes = torch.as_tensor(target, device=logits.device).long().expand(len(x))
            score = logits.gather(1, classes.view(-1, 1)).sum()
            (g,) = torch.autograd.grad(score, a)
    finally:
        handle.remove()
        model.train(was_training)
    return a.detach(), g.detach(), classes.detach(), logits.detach()


@dataclass
class Steps:
    """Grad-CAM of one image for one class, each quantity of Eq. 1-2 kept: the activations A^k
    (K, h, w), the gradients dy^c/dA^k (K, h, w), alpha_k (K,) (Eq. 1) and the weighted sum
    sum_k alpha_k A^k (h, w) before the ReLU (Eq. 2)."""
    layer: str
    cls: int
    score: float
    activations: torch.Tensor
    gradients: torch.Tensor
    alpha: torch.Tensor
    weighted: torch.Tensor

    @property
    def z(self) -> int:
        """Z, the number of units of one feature map (h w)."""
        return self.activations.shape[-1] * self.activations.shape[-2]

    @property
    def map(self) -> torch.Tensor:
        """L^c = ReLU(sum_k alpha_k A^k) (Eq. 2)."""
        return self.weighted.clamp(min=0)

    @property
    def peak(self) -> tuple[int, int]:
        """(row, column) of the largest unit of the weighted sum."""
        r, c = divmod(int(self.weighted.argmax()), self.weighted.shape[-1])
        return r, c


def gradcam_steps(model: nn.Module, x: torch.Tensor, layer: str, target: int | None = None
                  ) -> Steps:
    """Grad-CAM (Eq. 1-2) for the single image ``x`` (1, C, H, W) at ``layer``, step by step:
    alpha_k = (1/Z) sum_ij dy^c/dA^k_ij, then sum_k alpha_k A^k, then its ReLU."""
    if x.dim() != 4 or len(x) != 1:
        raise ValueError(f"gradcam_steps explains one image: x must be (1, C, H, W), got "
                         f"{tuple(x.shape)}; take x[i:i + 1]")
    a, g, classes, logits = layer_gradients(model, x, layer, target)
    alpha = g[0].mean((1, 2))                                  # Eq. 1
    weighted = torch.einsum("k,khw->hw", alpha, a[0])          # Eq. 2, before the ReLU
    cls = int(classes[0])
    return Steps(layer, cls, float(logits[0, cls]), a[0], g[0], alpha, weighted)


def engine_difference(steps: Steps, model: nn.Module, x: torch.Tensor) -> float:
    """max |steps' sum_k alpha_k A^k - cam.compute(..., "gradcam")| / max |that map|: the
    hand-made Grad-CAM against the library's engine (raw maps, before any ReLU)."""
    ref = cam.compute(model, x, steps.layer, "gradcam", target=steps.cls)[0]
    return float((steps.weighted - ref).abs().max() / ref.abs().max())


def _order(steps: Steps, n: int, by: str) -> list[int]:
    if by == "alpha":
        key = steps.alpha
    elif by == "contribution":
        key = steps.alpha * steps.activations.mean((1, 2))
    else:
        raise ValueError(f"by must be 'alpha' or 'contribution', got {by!r}")
    return key.argsort(descending=True)[:n].tolist()


def top_channels(steps: Steps, n: int = 5, by: str = "alpha") -> pd.DataFrame:
    """The ``n`` channels with the largest alpha_k (``by="alpha"``) or the largest contribution
    alpha_k x mean_ij A^k_ij to the map's mean (``by="contribution"``): Eq. 1 in numbers (the
    gradient summed over the Z units, divided by Z), the channel's mean activation, and what it
    adds to the map's mean."""
    order = _order(steps, n, by)
    g_sum = steps.gradients.sum((1, 2))
    a_mean = steps.activations.mean((1, 2))
    return pd.DataFrame({
        "channel k": order,
        "sum_ij dy/dA^k_ij": g_sum[order].cpu().numpy(),
        "Z": steps.z,
        "alpha_k (Eq. 1)": steps.alpha[order].cpu().numpy(),
        "mean_ij A^k_ij": a_mean[order].cpu().numpy(),
        "alpha_k x mean A^k": (steps.alpha * a_mean)[order].cpu().numpy()})


def pixel_terms(steps: Steps, n: int = 5, unit: tuple[int, int] | None = None) -> pd.DataFrame:
    """Eq. 2 at one unit (i, j) (default: the peak of the weighted sum): the ``n`` largest terms
    alpha_k A^k_ij in absolute value, the sum of the other K - n, and the total, which is the
    map's value at (i, j) before the ReLU."""
    i, j = steps.peak if unit is None else unit
    terms = steps.alpha * steps.activations[:, i, j]
    order = terms.abs().argsort(descending=True)
    top, rest = order[:n].tolist(), order[n:]
    rows = [{"term": f"k = {k}", "alpha_k": float(steps.alpha[k]),
             "A^k_ij": float(steps.activations[k, i, j]), "alpha_k A^k_ij": float(terms[k])}
            for k in top]
    rows.append({"term": f"the other {len(rest)} channels", "alpha_k": np.nan, "A^k_ij": np.nan,
                 "alpha_k A^k_ij": float(terms[rest].sum())})
    rows.append({"term": f"sum = map at ({i}, {j})", "alpha_k": np.nan, "A^k_ij": np.nan,
                 "alpha_k A^k_ij": float(terms.sum())})
    return pd.DataFrame(rows)


def plot_steps(steps: Steps, image: np.ndarray, n: int = 4, title: str | None = None):
    """Eq. 1-2 as pictures: for the ``n`` channels that add most to the map (largest
    alpha_k x mean A^k), the activations A^k, the gradients dy^c/dA^k and alpha_k A^k (rows 1-3);
    then the sum over all K channels, its ReLU and the ReLU up-sampled over the image (row 4)."""
    order = _order(steps, n, "contribution")
    fig, axes = plt.subplots(4, n, figsize=(7.5, 7.2), squeeze=False)
    for col, k in enumerate(order):
        a, g = steps.activations[k].cpu(), steps.gradients[k].cpu()
        im = axes[0, col].imshow(a.numpy(), cmap="viridis", vmin=0 if a.min() >= 0 else None)
        axes[0, col].set_title(f"$A^{{{k}}}$", fontsize=9)
        axes[0, col].set_xticks([])
        axes[0, col].set_yticks([])
        colorbar(axes[0, col], im)
        flat = float(g.max() - g.min()) == 0.0
        signed_map(axes[1, col], g, title=f"$\\partial y^c/\\partial A^{{{k}}}$"
                   + (" (constant)" if flat else ""))
        colorbar(axes[1, col], axes[1, col].images[0])
        signed_map(axes[2, col], steps.alpha[k].cpu() * a,
                   title=f"$\\alpha_{{{k}}} A^{{{k}}}$, $\\alpha$={float(steps.alpha[k]):.2g}")
        colorbar(axes[2, col], axes[2, col].images[0])
    for ax in axes[3]:
        ax.axis("off")
    ax = axes[3, 0]
    ax.axis("on")
    signed_map(ax, steps.weighted.cpu(), title=f"sum over all K={len(steps.alpha)}")
    colorbar(ax, ax.images[0])
    ax = axes[3, 1]
    ax.axis("on")
    im = ax.imshow(steps.map.cpu().numpy(), cmap="jet", vmin=0)
    ax.set_title("ReLU: $L^c$ (Eq. 2)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    colorbar(ax, im)
    if n > 2:
        ax = axes[3, 2]
        ax.axis("on")
        up = cam.postprocess(steps.weighted[None].cpu(), image.shape[:2])[0]
        overlay(ax, image, up, title="up-sampled, over the image")
    fig.suptitle(title or f"Grad-CAM at {steps.layer}, class {steps.cls}: the {n} channels that "
                 "add most to the map", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- CAM = Z Grad-CAM

def cam_vs_gradcam(maps: dict[str, torch.Tensor]) -> tuple[int, float]:
    """(Z, max |CAM - Z Grad-CAM| / max |CAM|) from the engine's ``"cam"`` and ``"gradcam"``
    maps of one layer: CAM = Z x Grad-CAM on a GAP + linear network (Eq. 3-11), Z = h w."""
    z = maps["gradcam"].shape[-1] * maps["gradcam"].shape[-2]
    rel = ((maps["cam"] - z * maps["gradcam"]).abs().max() / maps["cam"].abs().max()).item()
    return z, rel


def _head(model: nn.Module, k: int) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].in_features != k:
        raise ValueError(f"this {type(model).__name__} does not end in one linear layer on the "
                         f"{k} channels of the layer: w_k^c is the weight of such a head")
    return linears[-1]


def cam_identity(model: nn.Module, x: torch.Tensor, layer: str, target=None) -> dict:
    """w_k^c = Z alpha_k^c (Eq. 3-11), checked on a float64 copy of ``model`` (the model itself
    is untouched) for the images ``x``: the model must end in a global pooling and one linear
    layer whose weights are w. Returns Z, max |Z alpha_k^c - w_k^c| over images and channels,
    max |w|, and max |CAM - Z Grad-CAM| / max |CAM| with CAM = sum_k w_k^c A^k and Grad-CAM from
    ``cam.compute``. On global max pooling the identity holds too: the gradient of a max is
    w_k^c at one unit and 0 elsewhere, whose mean is w_k^c / Z."""
    m64 = copy.deepcopy(model).double().eval()
    x64 = x.double()
    a, g, classes, _ = layer_gradients(m64, x64, layer, target)
    head = _head(m64, a.shape[1])
    z = a.shape[-1] * a.shape[-2]
    alpha = g.mean((2, 3))
    w = head.weight.detach()[classes]
    cam_map = torch.einsum("nk,nkhw->nhw", w, a)
    gradcam = cam.compute(m64, x64, layer, "gradcam", target=classes)
    return {"Z": z, "images": len(x), "max |Z alpha - w|": float((z * alpha - w).abs().max()),
            "max |w|": float(w.abs().max()),
            "max |CAM - Z Grad-CAM| / max |CAM|":
                float((cam_map - z * gradcam).abs().max() / cam_map.abs().max())}


def identity_table(identity: pd.DataFrame) -> pd.DataFrame:
    """:func:`cam_identity`'s rows for the page: the differences, near 1e-16, in scientific
    notation (a table with fixed decimals would show them as 0)."""
    out = identity.copy()
    for col in ("max |Z alpha - w|", "max |CAM - Z Grad-CAM| / max |CAM|"):
        out[col] = [f"{v:.1e}" for v in identity[col]]
    out["Z"] = identity["Z"].astype(int)
    out["images"] = identity["images"].astype(int)
    return out


# --------------------------------------------------------------------------- two classes

def competing(probs: torch.Tensor, ratio: float = COMPETE_RATIO) -> list[int]:
    """Images whose second class has at least ``ratio`` times the first's probability, the
    closest contests first. ``probs``: (N, 2) top-2 probabilities."""
    share = (probs[:, 1] / probs[:, 0]).tolist()
    picked = sorted((i for i, s in enumerate(share) if s >= ratio), key=lambda i: -share[i])
    if not picked:
        raise ValueError(f"on no image does the second class reach {ratio} times the first's "
                         f"probability (best: {max(share):.2f}); lower compete_ratio or add images")
    return picked


TWO_CLASS_METHODS = ["gradcam", "counterfactual", "guidedbackprop", "guidedgradcam"]


@dataclass
class TwoClasses:
    """The maps of each competing image for its top-1 and its top-2 class: row 2p is image
    ``idx[p]`` with its top-1 class, row 2p + 1 the same image with its top-2 class."""
    idx: list[int]
    rows: list[int]
    targets: list[int]
    x: torch.Tensor
    maps: dict[str, torch.Tensor]

    def labels(self, images: Images) -> pd.DataFrame:
        """Image, rank and class name of each row."""
        return pd.DataFrame({"image": [images.names[i] for i in self.rows],
                             "class": [f"{'top-1' if r % 2 == 0 else 'top-2'}: "
                                       f"{images.categories[t]}"
                                       for r, t in enumerate(self.targets)]})


def two_class_maps(images: Images, idx: Sequence[int], top2: torch.Tensor) -> TwoClasses:
    """Grad-CAM, the counterfactual map (Eq. 12), Guided Backprop and Guided Grad-CAM of images
    ``idx``, each for its top-1 and its top-2 class, from one call of the engine."""
    rows = [i for i in idx for _ in range(2)]
    targets = [int(top2[i, r]) for i in idx for r in range(2)]
    x = images.x[rows]
    maps = cam.compute_many(images.model, x, [images.layer], TWO_CLASS_METHODS, target=targets)
    return TwoClasses(list(idx), rows, targets, x,
                      {m: maps[m][images.layer] for m in TWO_CLASS_METHODS})


def _corr(u: torch.Tensor, v: torch.Tensor) -> float:
    u, v = u.flatten().double(), v.flatten().double()
    u, v = u - u.mean(), v - v.mean()
    den = u.norm() * v.norm()
    if den == 0:
        raise ValueError("a map is constant: its correlation with another map is undefined")
    return float((u * v).sum() / den)


def discrimination(two: TwoClasses, images: Images) -> pd.DataFrame:
    """Per image, the Pearson correlation between the maps of its top-1 and its top-2 class:
    near 1, the method shows the same pixels whatever the class (it is not class-discriminative).
    Grad-CAM: ReLU and bilinear up-sampling; the input attributions: |.| summed over colour."""
    maps = two.maps
    shown = {"gradcam": cam.postprocess(maps["gradcam"], two.x.shape[-2:], normalize="none"),
             "guidedbackprop": maps["guidedbackprop"].abs().sum(1),
             "guidedgradcam": maps["guidedgradcam"].abs().sum(1)}
    rows = [{"image": images.names[i], **{m: _corr(v[2 * p], v[2 * p + 1])
                                          for m, v in shown.items()}}
            for p, i in enumerate(two.idx)]
    return pd.DataFrame(rows).set_index("image")


def discrimination_verdict(disc: pd.DataFrame) -> dict:
    """Guided Backprop is not class-discriminative and Guided Grad-CAM is (Section 3 of the
    paper): holds when, on average over the images, Guided Backprop's maps of the two classes
    are more alike than Guided Grad-CAM's; also the number of images where they are."""
    gb, ggc = disc["guidedbackprop"], disc["guidedgradcam"]
    return {"gb": float(gb.mean()), "ggc": float(ggc.mean()),
            "gradcam": float(disc["gradcam"].mean()),
            "images": len(disc), "gb_more_alike": int((gb > ggc).sum()),
            "holds": bool(gb.mean() > ggc.mean())}


def _top_region(m: torch.Tensor, fraction: float) -> torch.Tensor:
    """The ``fraction`` of the pixels where the map ``m`` (H, W) is largest, among those where it
    is positive (fewer if fewer are positive: a zero says nothing, so ties at zero never enter)."""
    k = min(int(round(fraction * m.numel())), int((m > 0).sum()))
    region = torch.zeros(m.numel(), dtype=torch.bool, device=m.device)
    if k > 0:
        region[m.flatten().topk(k).indices] = True
    return region.view_as(m)


def deletion(model: nn.Module, two: TwoClasses, fraction: float = DELETE_FRACTION) -> pd.DataFrame:
    """The counterfactual test (the paper: "removal of these regions" makes the network "more
    confident"): per row of ``two``, p(c) and the logit y^c of the image, of the image with the
    top ``fraction`` of the up-sampled ReLU(Grad-CAM) deleted, and with the top ``fraction`` of
    the up-sampled ReLU(counterfactual map) deleted (only pixels where the map is positive).
    Deleted pixels are set to 0 after normalisation: the data's mean colour. A map that is zero
    everywhere after the ReLU highlights nothing: its row is kept, marked ``empty``, and not
    scored by :func:`counterfactual_verdict`."""
    x, size = two.x, two.x.shape[-2:]
    t = torch.as_tensor(two.targets, device=x.device).view(-1, 1)
    out = {}
    for name in ("image", "gradcam", "counterfactual"):
        if name == "image":
            xb = x
        else:
            up = cam.postprocess(two.maps[name], size, normalize="none")
            out[f"empty {name}"] = metrics.is_empty(up).cpu().numpy()
            region = torch.stack([_top_region(u, fraction) for u in up])
            out[f"deleted share {name}"] = region.flatten(1).float().mean(1).cpu().numpy()
            xb = x * (~region)[:, None].to(x.dtype)
        with torch.no_grad():
            logits = model(xb)
        out[f"y {name}"] = logits.gather(1, t)[:, 0].cpu().numpy()
        out[f"p {name}"] = logits.softmax(1).gather(1, t)[:, 0].cpu().numpy()
    return pd.DataFrame(out)


def counterfactual_verdict(deleted: pd.DataFrame) -> dict:
    """The counterfactual claim on the scored rows (non-empty counterfactual map): holds when
    deleting the counterfactual regions raises p(c) on a majority of them. Also counted: the
    rows where deleting them costs less p(c) than deleting Grad-CAM's regions."""
    d = deleted[~deleted["empty counterfactual"]]
    if d.empty:
        raise ValueError("every counterfactual map is empty: no row to score")
    rises = int((d["p counterfactual"] > d["p image"]).sum())
    return {"scored": len(d), "empty": int(deleted["empty counterfactual"].sum()), "rises": rises,
            "mean_dp": float((d["p counterfactual"] - d["p image"]).mean()),
            "mean_dp_gradcam": float((d["p gradcam"] - d["p image"]).mean()),
            "less_than_gradcam": int((d["p counterfactual"] > d["p gradcam"]).sum()),
            "holds": bool(rises > len(d) / 2)}


def counterfactual_reading(cv: dict) -> str:
    """One sentence for the prose: what the counterfactual test (:func:`counterfactual_verdict`)
    says about the map."""
    if cv["holds"]:
        return ("Deleting the counterfactual regions makes the network more confident on most "
                "of them, as the paper says.")
    if cv["less_than_gradcam"] > cv["scored"] / 2:
        return ("The counterfactual map points at evidence that matters less to the class than "
                "Grad-CAM's regions, but not clearly at evidence against it.")
    return ("On these images the counterfactual map does not even single out regions that matter "
            "less to the class than Grad-CAM's.")


def plot_two_classes(images: Images, two: TwoClasses, n: int):
    """For the first ``n`` competing images and each of their top-2 classes: Grad-CAM and the
    counterfactual map over the image, Guided Backprop and Guided Grad-CAM (grey, |.|)."""
    n = min(n, len(two.idx))
    size = images.x.shape[-2:]
    gc = cam.postprocess(two.maps["gradcam"][:2 * n], size).cpu()
    cf = cam.postprocess(two.maps["counterfactual"][:2 * n], size).cpu()
    empty = metrics.is_empty(cf)
    labels = two.labels(images)
    fig, axes = plt.subplots(2 * n, 4, figsize=(7.5, 1.9 * 2 * n + 0.3), squeeze=False)
    titles = ["Grad-CAM", "counterfactual", "Guided Backprop", "Guided Grad-CAM"]
    for row in range(2 * n):
        ax, img = axes[row], images.image(two.rows[row])
        overlay(ax[0], img, gc[row], title=titles[0] if row == 0 else None)
        overlay(ax[1], img, cf[row], title=titles[1] if row == 0 else None)
        if empty[row]:
            ax[1].text(0.5, 0.5, "empty:\nnegative everywhere", transform=ax[1].transAxes,
                       ha="center", va="center", fontsize=8,
                       bbox=dict(facecolor="white", alpha=0.85, edgecolor="none"))
        for c, m in ((2, "guidedbackprop"), (3, "guidedgradcam")):
            ax[c].imshow(attribution_image(two.maps[m][row]), cmap="gray", vmin=0, vmax=1)
            ax[c].set_xticks([])
            ax[c].set_yticks([])
            if row == 0:
                ax[c].set_title(titles[c], fontsize=9)
        ax[0].set_ylabel(f"{labels.image[row]}\n{labels['class'][row][:22]}", fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- GAP against GMP

def recipe(pool: str, seed: int) -> str:
    """The ``lib.train.RECIPES`` name of the GAP (``pool="gap"``) or GMP network of ``seed``."""
    from ..train import RECIPES

    if pool not in ("gap", "gmp"):
        raise ValueError(f"pool must be 'gap' or 'gmp', got {pool!r}")
    name = f"{pool}_net" if seed == 0 else f"{pool}_net_seed{seed}"
    if name not in RECIPES:
        raise ValueError(f"no committed {pool.upper()} network for seed {seed} ({name!r} is not in "
                         f"lib.train.RECIPES): the seeds are {list(SEEDS)}; add a recipe to train "
                         "another")
    return name


def recipe_text(pool: str) -> str:
    """The training recipe of the ``pool`` networks in words, from ``lib.train.RECIPES``."""
    from ..train import RECIPES

    r = RECIPES[recipe(pool, 0)]
    return (f"{r['epochs']} epochs of Adam, learning rate {r['lr']:g} with a cosine schedule, "
            f"batches of {r['batch_size']}")


def load_pooled(pool: str, seed: int, device="cpu") -> tuple[nn.Module, dict]:
    """(model, training history) of the committed GAP or GMP network of ``seed``."""
    from ..train import load_trained

    return load_trained(recipe(pool, seed), device=device, progress=False, verbose=False)


def localisation_scenes(n: int, seed: int, data_root=None):
    """``n`` scenes of :data:`SCENES` from Fashion-MNIST's test split (exact boxes)."""
    from ..data.scenes import make_scenes

    return make_scenes(n, "test", seed=seed, data_root=data_root, **SCENES)


def canvas_to_box(scenes) -> float:
    """The canvas's area over the mean area of the items' boxes."""
    areas = [float(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).sum()) for b in scenes.boxes]
    return scenes.size ** 2 / float(np.mean(areas))


def localise(model: nn.Module, scenes, device="cpu", batch_size: int = 250) -> pd.DataFrame:
    """Per scene, for the scene's true class: whether the network predicts it, and where its
    Grad-CAM map at ``model.target_layer`` points (on these networks Grad-CAM = CAM / Z, also
    with global max pooling): ReLU, bilinear up-sampling to the canvas, then ``iou`` (the top-A
    pixels against the item's box, A its area; ``metrics.iou_top_area``), ``hit`` (the maximum
    in the box; ``metrics.hit``) and ``coverage`` (the share of the box where the map is at least
    half its maximum: near 1, the map covers the whole item; small, one part of it). A map that
    is zero everywhere points nowhere: iou, hit and coverage 0, counted in ``empty``."""
    size = scenes.size
    rows = []
    masks_all = torch.stack([scenes.target_box_mask(i) for i in range(len(scenes))])
    for lo in range(0, len(scenes), batch_size):
        x = scenes.images[lo:lo + batch_size].to(device)
        y = scenes.labels[lo:lo + batch_size].to(device)
        masks = masks_all[lo:lo + batch_size]
        with torch.no_grad():
            pred = model(x).argmax(1)
        raw = cam.compute(model, x, model.target_layer, "gradcam", target=y)
        up = cam.postprocess(raw, size, normalize="max").cpu()
        empty = metrics.is_empty(up)
        iou = torch.where(empty, 0.0, metrics.iou_top_area(up, masks))
        hit = torch.where(empty, 0.0, metrics.hit(up, masks))
        high = (up >= 0.5) & masks
        coverage = high.flatten(1).sum(1) / masks.flatten(1).sum(1)
        coverage = torch.where(empty, 0.0, coverage)
        rows.append(pd.DataFrame({"correct": (pred == y).cpu().numpy(), "iou": iou.numpy(),
                                  "hit": hit.numpy(), "coverage": coverage.numpy(),
                                  "empty": empty.numpy()}))
    return pd.concat(rows, ignore_index=True)


def gap_gmp_runs(seeds: Sequence[int], scenes, device="cpu") -> pd.DataFrame:
    """One row per (pooling, seed): test accuracy on the 10,000 Fashion-MNIST test images (the
    trainer's record, 28 px), accuracy on the scenes, and the scene means of iou, hit and
    coverage (:func:`localise`), the count of empty maps, and the CPU time of training."""
    if isinstance(seeds, (str, bytes)) or not all(isinstance(s, (int, np.integer)) for s in seeds):
        raise ValueError(f"seeds must be a list of ints, e.g. [0, 1, 2], got {seeds!r} (with "
                         "papermill pass lists as YAML: -y 'seeds: [0, 1]')")
    rows = []
    for pool in ("gap", "gmp"):
        for seed in seeds:
            model, hist = load_pooled(pool, seed, device)
            loc = localise(model, scenes, device)
            rows.append({"pooling": pool.upper(), "seed": seed, "accuracy": hist["test_acc"],
                         "scene accuracy": loc["correct"].mean(), "iou": loc["iou"].mean(),
                         "hit": loc["hit"].mean(), "coverage": loc["coverage"].mean(),
                         "empty maps": int(loc["empty"].sum()),
                         "training CPU s": hist["cpu_time_s"]})
    return pd.DataFrame(rows)


METRICS = ["accuracy", "scene accuracy", "iou", "hit", "coverage"]


def gap_gmp_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (standard deviation over seeds, ddof=1) of each metric, per pooling."""
    n = runs.groupby("pooling")["seed"].nunique()
    if (n < 2).any():
        raise ValueError(f"a spread over seeds needs at least two seeds per pooling, got "
                         f"{n.to_dict()}")
    agg = runs.groupby("pooling")[METRICS].agg(["mean", lambda s: s.std(ddof=1)])
    agg.columns = [f"{m} {'mean' if s == 'mean' else 'std'}" for m, s in agg.columns]
    agg["seeds"] = n
    return agg


def paired(runs: pd.DataFrame, metric: str) -> dict:
    """GAP minus GMP on ``metric``, seed by seed (the two networks of a seed start from the same
    weights and see the same batches): the mean difference, its standard deviation over seeds
    (ddof=1), its standard error, and the number of seeds where GAP is higher."""
    gap = runs[runs.pooling == "GAP"].set_index("seed")[metric]
    gmp = runs[runs.pooling == "GMP"].set_index("seed")[metric]
    if sorted(gap.index) != sorted(gmp.index):
        raise ValueError(f"GAP seeds {sorted(gap.index)} and GMP seeds {sorted(gmp.index)} differ")
    d = (gap - gmp.loc[gap.index]).to_numpy(dtype=float)
    if len(d) < 2:
        raise ValueError("a spread over seeds needs at least two seeds")
    sd = float(d.std(ddof=1))
    return {"mean": float(d.mean()), "std": sd, "se": sd / np.sqrt(len(d)),
            "gap_higher": int((d > 0).sum()), "seeds": len(d)}


def gap_gmp_verdict(runs: pd.DataFrame, tolerance: float = ACCURACY_TOLERANCE) -> dict:
    """The claim "similar accuracy, GAP localises better" (Zhou et al.), computed:

    - similar accuracy: |mean GAP - GMP test accuracy| <= ``tolerance``;
    - GAP localises better, for iou and for hit: GAP is higher in every seed and the mean paired
      difference exceeds two standard errors;
    - GMP's map covers less of the object (one discriminative part): GMP's coverage is lower in
      every seed and the mean difference exceeds two standard errors.
    """
    acc, iou, hit, cov = (paired(runs, m) for m in ("accuracy", "iou", "hit", "coverage"))

    def better(d, sign=1):
        wins = d["gap_higher"] if sign > 0 else d["seeds"] - d["gap_higher"]
        return bool(wins == d["seeds"] and sign * d["mean"] > 2 * d["se"])

    out = {"accuracy": acc, "iou": iou, "hit": hit, "coverage": cov, "tolerance": tolerance,
           "similar_accuracy": bool(abs(acc["mean"]) <= tolerance),
           "gap_better_iou": better(iou), "gap_better_hit": better(hit),
           "gmp_smaller_coverage": better(cov)}
    out["holds"] = out["similar_accuracy"] and out["gap_better_iou"] and out["gap_better_hit"]
    return out


def gap_gmp_reading(v: dict) -> str:
    """One sentence for the prose: which parts of "similar accuracy, GAP localises better" hold
    (:func:`gap_gmp_verdict`), and by how much."""
    acc, iou, hit = v["accuracy"], v["iou"], v["hit"]
    more = "GAP" if acc["mean"] > 0 else "GMP"
    parts = [("the accuracies are similar" if v["similar_accuracy"] else
              f"{more} is {100 * abs(acc['mean']):.1f} points more accurate, more than the "
              f"{100 * v['tolerance']:.0f} point called similar"),
             (f"GAP's IoU is higher in every seed, by {iou['mean']:.3f} ± {iou['std']:.3f}"
              if v["gap_better_iou"] else
              "the IoU does not put GAP ahead in every seed by two standard errors"),
             ("so does its pointing game" if v["gap_better_hit"] else
              f"the pointing game does not separate them (GAP - GMP {hit['mean']:+.3f} "
              f"± {hit['std']:.3f})")]
    return "Here " + "; ".join(parts) + "."


def plot_gap_gmp(gap: nn.Module, gmp: nn.Module, scenes, idx: Sequence[int]):
    """Scenes ``idx`` (item box in green) with the Grad-CAM (= CAM / Z) map of the true class of
    the GAP network (row 2) and of the GMP network (row 3), each up-sampled and scaled to its
    maximum."""
    from ..data.fashion_mnist import CLASSES

    idx = list(idx)
    x = scenes.images[idx]
    y = scenes.labels[idx]
    fig, axes = plt.subplots(3, len(idx), figsize=(7.5, 3 * 7.5 / len(idx) + 0.4), squeeze=False)
    for r, (name, model) in enumerate((("GAP", gap), ("GMP", gmp)), start=1):
        dev = next(model.parameters()).device
        raw = cam.compute(model, x.to(dev), model.target_layer, "gradcam", target=y.to(dev))
        up = cam.postprocess(raw, scenes.size, normalize="max").cpu()
        for c in range(len(idx)):
            overlay(axes[r, c], x[c, 0].numpy(), up[c], scenes.target_boxes(idx[c]))
        axes[r, 0].set_ylabel(name, fontsize=9)
    for c, i in enumerate(idx):
        overlay(axes[0, c], x[c, 0].numpy(), None, scenes.target_boxes(i),
                title=CLASSES[int(y[c])])
    axes[0, 0].set_ylabel("scene", fontsize=9)
    fig.tight_layout()
    return fig
