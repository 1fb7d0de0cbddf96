"""Chapter "Reproducing Grad-CAM: faithfulness" (Nagy, Nimara, Qian, Tables 3, 6 and 7).

- Table 3: occlusion maps (Captum's ``Occlusion``, 45 x 45 window, fill 0.5 in normalised space,
  map = 1 - p of the ground-truth class) against Grad-CAM, Guided Grad-CAM and Guided
  Backpropagation on a 14 x 14 grid, by Spearman's rank correlation computed correctly and as
  the authors computed it (Spearman on ``argsort`` arrays).
- Table 6: Grad-CAM's value at the pixel of a successful one-pixel attack (Su et al.; differential
  evolution from SciPy), before and after the attack.
- Table 7: fidelity and contrastivity of Grad-CAM and of a SHAP-style attribution (Captum's
  Gradient SHAP, 50 background images; Captum's DeepLiftShap fails its own completeness check
  on this network, see :func:`deepliftshap_check`) on the paper's MNIST network.

The protocols follow the authors' code (GitHub ``ddnimara/DD2412-Project-Grad-CAM``: files
``src/experiments/occlusion/1_4_occlusion.py``, ``one_pixel/2_2_sensitivity_imagenet.py``,
``contrastivity_and_fidelity/contrastivity_and_fidelity.py``); the paper's own text stops before
these tables, so the book cites them as "the authors' repository".
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import cam, metrics
from ..train import torch_threads as threads
from ..data.photos import list_photos, load_photo, photo_boxes

__all__ = ["SIZES", "COST", "PAPER_TABLE3", "PAPER_TABLE6", "PAPER_TABLE6_SUCCESSES",
           "TABLE3_METHODS", "WINDOW", "FILL", "GRID", "GREY", "PERCENTILES", "SHAP_BACKGROUND",
           "threads", "method_name", "column_name", "check_data", "occlusion_passes",
           "occlusion_map", "to_grid", "grey", "Probabilities", "Table3Data", "table3_data",
           "table3_image", "run_table3", "table3_summary", "table3_claims", "stride_check",
           "plot_table3", "AttackTarget", "attack_targets", "one_pixel_attack", "gradcam_at",
           "run_table6", "table6_summary", "table6_table", "table6_sentence", "table6_claims",
           "plot_table6", "MnistData", "mnist_data", "shap_maps", "deepliftshap_check",
           "gradcam_maps", "run_table7", "table7_claims", "plot_table7"]

# --------------------------------------------------------------------------------------------
# Sizes, costs and the paper's numbers
# --------------------------------------------------------------------------------------------

#: per profile: Table 3's images (photographs on smoke/default, ILSVRC val 1..n on full), the
#: occlusion stride and a second stride for the first image; Table 6's attacks (test scenes per
#: scene classifier, photographs, ILSVRC images per network) and their differential-evolution
#: budgets (SciPy's popsize multiplier, generations); Table 7's test images and the Gradient
#: SHAP samples per image and class; the CPU threads
SIZES = {
    "n_table3": {"smoke": 1, "default": len(list_photos()), "full": 120},
    "occlusion_stride": {"smoke": 45, "default": 16, "full": 1},
    "second_stride": {"smoke": 30, "default": 8, "full": 16},
    "occlusion_batch": {"smoke": 32, "default": 32, "full": 512},
    "n_scene_attacks": {"smoke": 2, "default": 16, "full": 0},
    "n_photo_attacks": {"smoke": 1, "default": len(list_photos()), "full": 0},
    "n_imagenet_attacks": {"smoke": 0, "default": 0, "full": 250},
    "scene_de": {"smoke": (3, 2), "default": (10, 12), "full": (10, 12)},
    "photo_de": {"smoke": (2, 1), "default": (5, 5), "full": (35, 150)},
    "n_mnist": {"smoke": 16, "default": 100, "full": 10000},
    "shap_samples": {"smoke": 10, "default": 50, "full": 200},
    # torch's CPU threads (None: torch's default). The smoke profile runs beside other notebooks
    # (pytest -n 2): two threads each would oversubscribe the cores and run ~10x slower
    "threads": {"smoke": 1, "default": None, "full": None},
}
COST = {"smoke": "under a minute on a CPU",
        "default": "2 to 3 minutes on two free CPU cores (occlusion, the attacks and Gradient "
                   "SHAP are forward passes); longer when other jobs share the cores",
        "full": "hours on one GPU (32,401 VGG16 forward passes per occlusion map, 120 maps; "
                "26,000 per attacked image)"}

#: the occluder of Table 3: a 45 x 45 window filled with 0.5 (in the model's normalised input
#: space, as the authors padded and filled), compared on a 14 x 14 grid
WINDOW, FILL, GRID = 45, 0.5, 14
#: the authors' grey-scaling of Guided (Grad-CAM) maps (ITU-R 601 luma)
GREY = (0.2989, 0.5870, 0.1140)
TABLE3_METHODS = ("gradcam", "guidedgradcam", "guidedbackprop")
#: Table 3 as the authors computed it (Spearman on argsort arrays), VGG16, ILSVRC val images
#: 1..120: mean and sample SD over the images, from their result files
#: (results/occlusion/45x45/result_*.csv)
PAPER_TABLE3 = {"gradcam": (0.0505, 0.1283), "guidedgradcam": (0.0526, 0.1287),
                "guidedbackprop": (0.0095, 0.1240)}
PAPER_TABLE3_N = 120
#: Table 6: Grad-CAM's value at the attacked pixel (ReLU, bilinear to 224 px, min-max), mean over
#: the successfully attacked images, before and after the attack
PAPER_TABLE6 = {"VGG16": (0.0609, 0.0683), "GoogLeNet": (0.3476, 0.3039)}
#: the authors' result files list 76 successful attacks per network (indices up to 248 / 244)
PAPER_TABLE6_SUCCESSES = {"VGG16": (76, 248), "GoogLeNet": (76, 244)}
#: Table 7's percentiles of the positive map values and the SHAP background size
PERCENTILES = (1, 10)
SHAP_BACKGROUND = 50


def method_name(method: str) -> str:
    """The name a reader sees (``lib.plot.method_label``; "Gradient SHAP" for Captum's)."""
    from ..plot import method_label

    return "Gradient SHAP" if method == "gradientshap" else method_label(method)


def column_name(column: str) -> str:
    """"gradcam spearman" -> "Grad-CAM: Spearman", "gradcam argsort" -> "Grad-CAM: authors'
    (argsort)"; other names unchanged."""
    method, _, kind = column.rpartition(" ")
    if kind in ("spearman", "argsort") and method in TABLE3_METHODS:
        how = "Spearman" if kind == "spearman" else "authors' (argsort)"
        return f"{method_name(method)}: {how}"
    return column


def check_data(profile: str, data_root) -> None:
    """On ``full``: fail now, naming what is missing, if the ILSVRC validation images, the VGG16
    and GoogLeNet ImageNet weights or MNIST are not there (not after an hour of occlusion)."""
    if profile != "full":
        return
    from ..data.errors import DataMissingError
    from ..data.imagenet import WHERE, ImageNetVal
    from ..models.zoo import imagenet_weights_file

    if data_root is None:
        raise DataMissingError("ILSVRC 2012 validation and MNIST", ["data_root"],
                               WHERE + "; and MNIST's four IDX files under DATA_ROOT/mnist/")
    ImageNetVal(data_root, limit=1)  # raises DataMissingError naming what is not there
    for name in ("vgg16", "googlenet"):
        path, url = imagenet_weights_file(name)
        if not path.is_file():
            raise FileNotFoundError(f"{name} ImageNet weights not found at {path}; they come "
                                    f"from {url} (torchvision's cache)")
    _mnist_files(data_root)


# --------------------------------------------------------------------------------------------
# Table 3: occlusion against Grad-CAM and Guided Grad-CAM
# --------------------------------------------------------------------------------------------

def occlusion_passes(size: int | tuple[int, int], window: int = WINDOW, stride: int = 1) -> int:
    """Images through the network for one occlusion map: one per window position (Captum's
    ``ceil((size - window) / stride) + 1`` per axis; the last window may hang over the far edge,
    where Captum clips it) plus the unoccluded image."""
    h, w = (size, size) if isinstance(size, int) else size
    if stride < 1 or window > min(h, w):
        raise ValueError(f"stride {stride} must be >= 1 and window {window} <= the image ({h}x{w})")
    per = [math.ceil((s - window) / stride) + 1 for s in (h, w)]
    return per[0] * per[1] + 1


def to_grid(maps: torch.Tensor, size: int = GRID) -> torch.Tensor:
    """(N, H, W) maps resized to ``size`` x ``size`` as the authors did
    (``skimage.transform.resize``: bilinear, Gaussian anti-aliasing when down-sampling)."""
    from skimage.transform import resize

    arr = maps.detach().cpu().double().numpy()
    return torch.from_numpy(np.stack([resize(m, (size, size)) for m in arr]))


def grey(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, H, W): 0.2989 R + 0.5870 G + 0.1140 B, the authors' grey-scaling."""
    return torch.einsum("nchw,c->nhw", rgb, torch.tensor(GREY, dtype=rgb.dtype, device=rgb.device))


def _minmax_all(t: torch.Tensor) -> torch.Tensor:
    """Each image (first axis) min-max normalised over all its other axes (0 where constant)."""
    flat = t.flatten(1)
    lo = flat.amin(1).view(-1, *[1] * (t.dim() - 1))
    span = flat.amax(1).view(-1, *[1] * (t.dim() - 1)) - lo
    return torch.where(span > 0, (t - lo) / span.clamp(min=torch.finfo(t.dtype).tiny), 0.0)


class Probabilities(nn.Module):
    """``softmax(model(x))``: the class probabilities that occlusion's map 1 - p is made of and
    that SHAP explains. The softmax is a module (not ``Tensor.softmax``) so that DeepLIFT sees
    it and applies its rule to it, as to every other non-linearity."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.model(x))


@dataclass
class Table3Data:
    """Table 3's inputs: the model (on normalised images), its Grad-CAM layer, the images
    (normalised, (N, 3, 224, 224)), their names, the ground-truth class of each, and what the
    model and the images are, in words."""
    model: nn.Module
    layer: str
    x: torch.Tensor
    names: list[str]
    classes: list[int]
    label: str
    images: str
    paper_model: str = "VGG16"
    mean: tuple = ()
    std: tuple = ()


def table3_data(profile: str, n: int, data_root=None, device="cpu") -> Table3Data:
    """``full``: torchvision's VGG16 (``features.29``) on ILSVRC 2012 validation images 1..n
    (256 x 256, centre crop 224, as the authors), ground truth from the boxes. Otherwise
    EfficientNet-Lite0 (``bn2``) on the first n photographs; each photograph's ground truth is
    the class of its hand-drawn boxes (``data/photos_boxes.csv``) that the model ranks highest."""
    if profile == "full":
        from ..data.imagenet import ImageNetVal
        from ..data.images import IMAGENET_MEAN, IMAGENET_STD
        from ..models.zoo import build

        ds = ImageNetVal(data_root, resize=256, crop=224, mode="square", limit=n)
        x = torch.stack([ds[i][0] for i in range(len(ds))]).to(device)
        model = build("vgg16", weights="imagenet").to(device).eval()
        return Table3Data(model, "features.29", x, ds.names, [ds[i][1] for i in range(len(ds))],
                          "VGG16 (torchvision, ImageNet)",
                          f"ILSVRC 2012 validation images 1-{len(ds)}, with their labels", "VGG16",
                          IMAGENET_MEAN, IMAGENET_STD)
    from ..models.pretrained import (LITE0_LAYER, LITE0_MEAN, LITE0_STD, efficientnet_lite0,
                                     preprocess)

    names = list_photos()[:n]
    # channels-last: the CPU's faster layout for convolutions (~1.5x for Lite0 here)
    model = efficientnet_lite0().to(device).to(memory_format=torch.channels_last)
    x = preprocess([load_photo(p) for p in names]).to(device)
    with torch.no_grad():
        probs = model(x).softmax(1).cpu()
    classes = []
    for i, name in enumerate(names):
        allowed = sorted({c for b in photo_boxes(name)[0] for c in b.imagenet_classes})
        classes.append(max(allowed, key=lambda c: probs[i, c].item()))
    return Table3Data(model, LITE0_LAYER, x, names, classes,
                      "EfficientNet-Lite0 (ImageNet, offline weights), standing in for VGG16",
                      f"the book's {len(names)} photographs, each with the ground-truth class of "
                      "its hand-drawn boxes that the model ranks highest", "VGG16",
                      LITE0_MEAN, LITE0_STD)


def occlusion_map(model: nn.Module, x: torch.Tensor, cls, stride: int, batch: int = 32,
                  window: int = WINDOW, fill: float = FILL) -> torch.Tensor:
    """(N, H, W): 1 - p_cls of the images ``x`` with a ``window`` x ``window`` square (all
    channels) set to ``fill``, averaged over the window positions that cover each pixel
    (Captum's ``Occlusion`` through ``lib.cam``, ``batch`` occluded images per forward call)."""
    probs = Probabilities(model)
    with torch.inference_mode():
        p = probs(x)[torch.arange(len(x)), torch.as_tensor(cls).view(-1).expand(len(x))]
        attr = cam.compute(probs, x, None, "occlusion", target=cls, captum_kwargs={
            "sliding_window_shapes": (x.shape[1], window, window), "strides": stride,
            "baselines": fill, "perturbations_per_eval": batch})
    # Captum: p(x) - mean p(occluded); the window spans the channels, so they are equal
    return 1 - p.view(-1, 1, 1) + attr.mean(1)


def table3_image(data: Table3Data, i: int, stride: int, batch: int = 32,
                 methods: Sequence[str] = TABLE3_METHODS) -> dict:
    """One image of Table 3: the occlusion map and the methods' maps on the 14 x 14 grid, and
    both rank correlations of each method's map with the occlusion map.

    Occlusion (Captum, ``perturbations_per_eval=batch``) scores p_c, the softmax probability of
    the ground-truth class, so its attribution is p_c(x) - mean over the windows covering a
    pixel of p_c(x occluded); the map is 1 - that mean p_c, as the authors' 1 - p. Grad-CAM:
    ReLU, bilinear to the input, min-max (the authors' ``generateCam``). Guided Backpropagation:
    min-max over the image's three channels, grey-scaled; Guided Grad-CAM: the authors' product
    of the two (the up-sampled Grad-CAM times the min-max normalised Guided Backpropagation),
    grey-scaled. Every map is min-max normalised, then resized to 14 x 14 (``to_grid``).
    """
    x = data.x[i:i + 1]
    cls = data.classes[i]
    size = x.shape[-2:]
    t0 = time.perf_counter()
    occ = occlusion_map(data.model, x, cls, stride, batch)
    with torch.inference_mode():
        p = Probabilities(data.model)(x)[0, cls].item()
    t_occ = time.perf_counter() - t0
    maps = cam.compute_many(data.model, x, [data.layer], ["gradcam", "guidedbackprop"], target=cls)
    gc = cam.postprocess(maps["gradcam"][data.layer], tuple(size))
    gb = _minmax_all(maps["guidedbackprop"][data.layer].float())
    full = {"occlusion": _minmax_all(occ), "gradcam": gc, "guidedgradcam": grey(gc[:, None] * gb),
            "guidedbackprop": grey(gb)}
    grids = {m: to_grid(v)[0] for m, v in full.items()}
    rec = {"image": data.names[i], "class": cls, "p": p, "stride": stride,
           "passes": occlusion_passes(tuple(size), WINDOW, stride), "occlusion_s": t_occ,
           "grids": {m: g.numpy().round(6).tolist() for m, g in grids.items()}}
    for m in methods:
        a, b = grids[m][None], grids["occlusion"][None]
        rec[f"{m} spearman"] = metrics.spearman(a, b, constant="nan").item()
        rec[f"{m} argsort"] = metrics.spearman_of_argsorts(a, b).item()
    return rec


def run_table3(data: Table3Data, profile: str, stride: int, batch: int, seed: int = 0,
               n_threads: int | None = None) -> pd.DataFrame:
    """Table 3 image by image through a results store (a killed run resumes), one row per image:
    the ground-truth class and its probability, the stride and the forward passes per map, and
    per method both rank correlations with the occlusion map (and the 14 x 14 grids)."""
    from ..results import ResultsStore

    store = ResultsStore("08_gradcam_faithfulness", profile,
                         {"table": 3, "stride": stride, "window": WINDOW, "fill": FILL,
                          "grid": GRID, "model": data.label, "seed": seed},
                         data={"images": data.names, "classes": data.classes})
    with threads(n_threads):
        return store.run(range(len(data.names)), lambda i: table3_image(data, i, stride, batch),
                         key=lambda i: data.names[i], desc="Table 3", save_every=1)


def table3_summary(rows: pd.DataFrame, methods: Sequence[str] = TABLE3_METHODS) -> pd.DataFrame:
    """Per method: the mean rank correlation with the occlusion map as the authors computed it
    and computed correctly (images with a constant map counted, left out of the mean), beside
    the authors' number."""
    out = []
    for m in methods:
        rho = rows[f"{m} spearman"]
        out.append({"method": method_name(m), "images": len(rows),
                    "paper (authors' computation)": PAPER_TABLE3[m][0],
                    "ours, authors' computation": rows[f"{m} argsort"].mean(),
                    "ours, Spearman": rho.mean(skipna=True),
                    "SD (Spearman)": (rho.std(skipna=True) if rho.notna().sum() > 1
                                      else float("nan")),
                    "constant maps": int(rho.isna().sum())})
    return pd.DataFrame(out).set_index("method")


def _band(paper_mean: float, paper_sd: float, paper_n: int, ours: pd.Series) -> tuple[float, float]:
    """The paper's mean +- 3 combined standard errors (its SD over its images, ours over ours)."""
    se = math.sqrt(paper_sd ** 2 / paper_n + (ours.var(ddof=1) / len(ours) if len(ours) > 1 else 0))
    return paper_mean - 3 * se, paper_mean + 3 * se


def table3_claims(rows: pd.DataFrame) -> dict:
    """The verdicts of Table 3: do our numbers, computed as the authors did, fall in the band of
    theirs (mean +- 3 combined standard errors); does the correct Spearman; is the authors'
    ordering Guided Backprop < Grad-CAM < Guided Grad-CAM kept under each computation; the
    largest gap between the two computations on one image (``max_gap``); and, when ``rows``
    hold the grids, the mean Spearman between Grad-CAM's and Guided Grad-CAM's maps."""
    order = ["guidedbackprop", "gradcam", "guidedgradcam"]
    gaps = pd.concat([(rows[f"{m} spearman"] - rows[f"{m} argsort"]).abs() for m in order])
    out = {"order_paper": order, "max_gap": float(gaps.max())}
    if "grids" in rows:  # how alike Grad-CAM and Guided Grad-CAM are, image by image
        pair = [torch.tensor([g[m] for g in rows["grids"]]) for m in ("gradcam", "guidedgradcam")]
        out["gradcam_vs_guided"] = float(metrics.spearman(*pair, constant="nan").nanmean())
    for kind in ("argsort", "spearman"):
        means = {m: rows[f"{m} {kind}"].mean(skipna=True) for m in order}
        out[f"order_{kind}"] = sorted(order, key=means.get)
        out[f"order_{kind}_holds"] = out[f"order_{kind}"] == order
        for m in order:
            band = _band(*PAPER_TABLE3[m], PAPER_TABLE3_N, rows[f"{m} {kind}"].dropna())
            out[f"{m}_{kind}"] = means[m]
            out[f"{m}_{kind}_band"] = band
            out[f"{m}_{kind}_halfwidth"] = (band[1] - band[0]) / 2
            out[f"{m}_{kind}_holds"] = bool(band[0] <= means[m] <= band[1])
    return out


def stride_check(data: Table3Data, rows: pd.DataFrame, image: str, stride: int, batch: int = 32,
                 n_threads: int | None = None) -> pd.DataFrame:
    """One image at Table 3's stride (its row of ``rows``) and at another ``stride``: forward
    passes per map, seconds of occlusion, and both rank correlations of each method (how much
    the stride moves Table 3's numbers)."""
    with threads(n_threads):
        other = table3_image(data, data.names.index(image), stride, batch)
    mine = rows[rows["image"] == image].iloc[0].to_dict()
    out = []
    for r in (mine, other):
        out.append({"stride": int(r["stride"]), "forward passes": int(r["passes"]),
                    "seconds": r["occlusion_s"],
                    **{f"{m} spearman": r[f"{m} spearman"] for m in TABLE3_METHODS},
                    **{f"{m} argsort": r[f"{m} argsort"] for m in TABLE3_METHODS}})
    return pd.DataFrame(out).set_index("stride")


def plot_table3(rows: pd.DataFrame, data: Table3Data, n: int = 4):
    """The first ``n`` images: the photograph, the occlusion map and each method's map on the
    14 x 14 grid, titled with both rank correlations."""
    import matplotlib.pyplot as plt

    from ..plot import as_image, method_label

    n = min(n, len(rows))
    cols = ["occlusion", *TABLE3_METHODS]
    fig, axes = plt.subplots(n, len(cols) + 1, figsize=(7.5, 1.75 * n + 0.3), squeeze=False)
    for r in range(n):
        row = rows.iloc[r]
        i = data.names.index(row["image"])
        axes[r, 0].imshow(as_image(data.x[i].cpu(), data.mean, data.std))
        axes[r, 0].set_ylabel(row["image"], fontsize=9)
        for j, m in enumerate(cols, start=1):
            axes[r, j].imshow(np.array(row["grids"][m]),
                              cmap="viridis" if m == "occlusion" else "gray")
            title = ("1 − p (occlusion)" if m == "occlusion" else
                     f"{method_label(m)}\nρ {row[f'{m} spearman']:.2f} | "
                     f"argsort {row[f'{m} argsort']:.2f}")
            axes[r, j].set_title(title if r == 0 or m != "occlusion" else "", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Table 6: Grad-CAM at the pixel of a one-pixel attack
# --------------------------------------------------------------------------------------------

@dataclass
class AttackTarget:
    """A model attacked in Table 6: what it is (``label``) and the paper's model it stands in
    for, the model itself (taking images in [0, 1]), its Grad-CAM layer, the images ((N, C, H, W)
    in [0, 1]) and their names, the differential-evolution budget (popsize multiplier,
    generations) and the CPU threads its attacks run on (None: torch's default)."""
    label: str
    paper_model: str
    model: nn.Module
    layer: str
    x: torch.Tensor
    names: list[str]
    budget: tuple[int, int]
    threads: int | None = None

    @property
    def max_images(self) -> int:
        """The most images one attack may evaluate: SciPy's population (popsize x the C + 2
        parameters) at the start and in each of the ``maxiter`` generations."""
        popsize, maxiter = self.budget
        return popsize * (self.x.shape[1] + 2) * (maxiter + 1)


def attack_targets(profile: str, sizes, data_root=None, device="cpu", seed: int = 0
                   ) -> list[AttackTarget]:
    """Table 6's models. ``full``: torchvision's VGG16 (``features.29``) and GoogLeNet
    (``inception5b``) on the first ILSVRC validation images. Otherwise the three small scene
    classifiers of the receptive-fields chapter (64 px grey Fashion-MNIST scenes; their
    committed default weights, also on the smoke profile: nothing is trained here) on test
    scenes they classify correctly, and EfficientNet-Lite0 on the photographs."""
    from ..models.heads import Normalized

    if profile == "full":
        from ..data.imagenet import ImageNetVal
        from ..data.images import IMAGENET_MEAN, IMAGENET_STD
        from ..models.zoo import build

        ds = ImageNetVal(data_root, resize=256, crop=224, mode="square", normalize=False,
                         limit=sizes.n_imagenet_attacks)
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        return [AttackTarget(f"{name} (torchvision, ImageNet)", name,
                             Normalized(build(arch, weights="imagenet"), IMAGENET_MEAN,
                                        IMAGENET_STD).to(device).eval(),
                             f"model.{layer}", x.to(device), ds.names, tuple(sizes.photo_de))
                for name, arch, layer in (("VGG16", "vgg16", "features.29"),
                                          ("GoogLeNet", "googlenet", "inception5b"))]
    from ..models.pretrained import (LITE0_LAYER, LITE0_MEAN, LITE0_STD, efficientnet_lite0,
                                     preprocess)
    from ..models.zoo import paper_layers
    from . import receptive_fields as rf

    out = []
    if sizes.n_scene_attacks:
        scenes = rf.scene_test_set("default", seed, 8 * sizes.n_scene_attacks)
        for arch, style in (("small_resnet", "ResNet-style"), ("small_densenet", "DenseNet-style"),
                            ("small_efficientnet", "EfficientNet-b0-style")):
            model, _ = rf.scene_model(arch, "default", seed, device=device, verbose=False)
            with torch.no_grad():
                pred = model(scenes.images.to(device)).argmax(1).cpu()
            keep = (pred == scenes.labels).nonzero()[:, 0][:sizes.n_scene_attacks]
            out.append(AttackTarget(f"{style}, 64 px, trained here on scenes", "VGG16 / GoogLeNet",
                                    model.eval(), next(iter(paper_layers(arch).values())),
                                    scenes.images[keep].to(device),
                                    [f"scene {int(k)}" for k in keep], tuple(sizes.scene_de),
                                    # batches of 30 tiny images: a second thread only adds
                                    # synchronisation (10x slower on a busy 2-core machine)
                                    threads=1))
    if sizes.n_photo_attacks:
        names = list_photos()[:sizes.n_photo_attacks]
        lite0 = Normalized(efficientnet_lite0(), LITE0_MEAN, LITE0_STD).to(device).eval()
        lite0 = lite0.to(memory_format=torch.channels_last)
        x = preprocess([load_photo(p) for p in names], mean=(0, 0, 0), std=(1, 1, 1))
        out.append(AttackTarget("EfficientNet-Lite0, ImageNet (offline weights)",
                                "VGG16 / GoogLeNet", lite0, f"model.{LITE0_LAYER}", x.to(device),
                                names,
                                tuple(sizes.photo_de)))
    return out


def _perturb(x: torch.Tensor, params: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Copies of one image (1, C, H, W), each with one pixel replaced: ``params`` (C + 2, S) rows
    (row, col, value per channel), positions floored to integers as Su et al.'s code does."""
    _, c, h, w = x.shape
    rows = np.clip(np.floor(params[0]), 0, h - 1).astype(int)
    cols = np.clip(np.floor(params[1]), 0, w - 1).astype(int)
    batch = x.repeat(params.shape[1], 1, 1, 1)
    idx = torch.arange(params.shape[1])
    values = torch.as_tensor(params[2:].T, dtype=x.dtype, device=x.device)
    batch[idx, :, torch.as_tensor(rows), torch.as_tensor(cols)] = values
    return batch, rows, cols


def one_pixel_attack(model: nn.Module, x: torch.Tensor, cls: int, popsize: int, maxiter: int,
                     seed: int, batch_size: int = 64) -> dict:
    """Su et al.'s non-targeted one-pixel attack on one image ``x`` (1, C, H, W) in [0, 1]:
    ``scipy.optimize.differential_evolution`` (seeded; Su et al.'s DE/rand/1 with recombination
    1, no polishing) searches (row, col, value per channel) minimising the softmax probability
    of class ``cls``; the whole population goes through the network in one batch per generation
    (``vectorized=True``, ``updating="deferred"``). It stops at the first generation that holds
    an image whose top-1 class is no longer ``cls`` (the attack succeeded) or after ``maxiter``
    generations (it failed); ``nfev`` counts the images evaluated (popsize x (C + 2) per
    generation, plus the initial population).

    Returns ``success``, the pixel (``row``, ``col``, ``value``), ``cls_after`` and
    ``p_after`` (of ``cls``) of the best image found (the successful one of lowest p_cls when
    the attack succeeded), ``nfev`` and the seconds taken.
    """
    from scipy.optimize import differential_evolution

    _, c, h, w = x.shape
    best = {"p": math.inf}
    evaluated = [0]  # images through the network (SciPy's nfev counts calls: one a generation)
    t0 = time.perf_counter()

    def objective(params):  # params (C + 2, S): the whole population
        params = np.atleast_2d(params.T).T
        evaluated[0] += params.shape[1]
        probs = []
        with torch.inference_mode():
            for lo in range(0, params.shape[1], batch_size):
                batch, rows, cols = _perturb(x, params[:, lo:lo + batch_size])
                probs.append(model(batch).softmax(1).double().cpu())
        probs = torch.cat(probs)
        p = probs[:, cls].numpy()
        won = (probs.argmax(1) != cls).numpy()
        for k in np.flatnonzero(won):
            if p[k] < best["p"]:
                best.update(p=float(p[k]), params=params[:, k].copy(),
                            cls_after=int(probs[k].argmax()))
        return p

    def stop(intermediate_result):
        return "params" in best

    bounds = [(0, h), (0, w)] + [(0.0, 1.0)] * c
    res = differential_evolution(objective, bounds, popsize=popsize, maxiter=maxiter, seed=seed,
                                 recombination=1.0, polish=False, tol=0, atol=-1, init="random",
                                 vectorized=True, updating="deferred", callback=stop)
    success = "params" in best
    params = best["params"] if success else res.x
    batch, rows, cols = _perturb(x, params[:, None])
    with torch.inference_mode():
        probs = model(batch).softmax(1)[0]
    return {"success": success, "row": int(rows[0]), "col": int(cols[0]),
            "value": [float(v) for v in params[2:]], "p_before": None, "cls": int(cls),
            "p_after": float(probs[cls]), "cls_after": int(probs.argmax()), "nfev": evaluated[0],
            "generations": int(res.nit),
            "seconds": time.perf_counter() - t0}


def gradcam_at(model: nn.Module, layer: str, x: torch.Tensor, row: int, col: int, cls: int
               ) -> tuple[float, float]:
    """(value, share of the map's pixels below it) of Grad-CAM for ``cls`` at pixel (row, col)
    of image ``x`` (1, C, H, W): ReLU, bilinear up-sampling to the input, min-max, as the
    authors read it in Table 6."""
    m = cam.postprocess(cam.compute(model, x, layer, "gradcam", target=cls), tuple(x.shape[-2:]))[0]
    v = m[row, col]
    return float(v), float((m < v).float().mean())


def _attack_record(t: AttackTarget, i: int, seed: int) -> dict:
    x = t.x[i:i + 1]
    with torch.inference_mode():
        probs = t.model(x).softmax(1)[0]
    cls = int(probs.argmax())
    popsize, maxiter = t.budget
    r = one_pixel_attack(t.model, x, cls, popsize, maxiter, seed=seed + i)
    r.update(model=t.label, image=t.names[i], p_before=float(probs[cls]))
    before, share = gradcam_at(t.model, t.layer, x, r["row"], r["col"], cls)
    r.update(gradcam_before=before, below_before=share)
    if r["success"]:
        adv, _, _ = _perturb(x, np.array([r["row"] + 0.5, r["col"] + 0.5, *r["value"]])[:, None])
        r["gradcam_after"], r["below_after"] = gradcam_at(t.model, t.layer, adv, r["row"], r["col"],
                                                          r["cls_after"])
        r["gradcam_after_same_class"], _ = gradcam_at(t.model, t.layer, adv, r["row"], r["col"],
                                                      cls)
    else:
        r["gradcam_after"] = r["below_after"] = r["gradcam_after_same_class"] = None
    return r


def run_table6(targets: Sequence[AttackTarget], profile: str, seed: int = 0,
               n_threads: int | None = None) -> pd.DataFrame:
    """Every image of every target attacked once (a results store: a killed run resumes); one
    row per attack, failures included (``success`` False, no "after" values). ``n_threads``
    overrides each target's CPU threads."""
    from ..results import ResultsStore

    frames = []
    for t in targets:
        store = ResultsStore("08_gradcam_faithfulness", profile,
                             {"table": 6, "model": t.label, "budget": list(t.budget), "seed": seed},
                             data={"images": t.names})
        with threads(n_threads or t.threads):
            frames.append(store.run(range(len(t.names)), lambda i, t=t: _attack_record(t, i, seed),
                                    key=lambda i, t=t: t.names[i], desc=f"Table 6: {t.label}",
                                    save_every=1))
    return pd.concat(frames, ignore_index=True)


def table6_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model: images attacked, successes and rate, images evaluated per attack, and over the
    successful attacks the mean Grad-CAM value at the pixel before and after (the map of the new
    class on the attacked image, as the authors; and of the old class), and the mean share of
    the map's pixels below the attacked pixel's value (0.5: a typical pixel)."""
    out = []
    for model, g in rows.groupby("model", sort=False):
        ok = g[g.success]
        out.append({"model": model, "attacked": len(g), "successes": len(ok),
                    "success rate": len(ok) / len(g), "images per attack": g.nfev.mean(),
                    "Grad-CAM before": ok.gradcam_before.mean() if len(ok) else float("nan"),
                    "after (new class)": ok.gradcam_after.mean() if len(ok) else float("nan"),
                    "after (old class)": (ok.gradcam_after_same_class.mean() if len(ok)
                                          else float("nan")),
                    "pixels below it, before": ok.below_before.mean() if len(ok) else float("nan")})
    return pd.DataFrame(out).set_index("model")


def table6_table(rows: pd.DataFrame) -> pd.DataFrame:
    """:func:`table6_summary` with the authors' two rows under it (their successful attacks and
    their means; their files hold the successes only, so their attack count is unknown)."""
    ours = table6_summary(rows)
    paper = pd.DataFrame([{"model": f"paper: {m} (authors' repository)",
                           "successes": PAPER_TABLE6_SUCCESSES[m][0],
                           "Grad-CAM before": PAPER_TABLE6[m][0],
                           "after (new class)": PAPER_TABLE6[m][1]}
                          for m in PAPER_TABLE6]).set_index("model")
    return pd.concat([ours, paper])


def table6_claims(rows: pd.DataFrame, tolerance: float = 0.05) -> dict:
    """Over all successful attacks: is Grad-CAM's value at the attacked pixel non-zero on every
    one (sensitivity), and does the mean value move by at most ``tolerance`` (the paper's larger
    change, GoogLeNet's 0.044, rounded up) between before and after."""
    ok = rows[rows.success]
    n = len(ok)
    change = float((ok.gradcam_after - ok.gradcam_before).mean()) if n else float("nan")
    return {"attacked": len(rows), "successes": n, "nonzero": int((ok.gradcam_before > 0).sum()),
            "sensitive": bool(n > 0 and (ok.gradcam_before > 0).all()),
            "before": float(ok.gradcam_before.mean()) if n else float("nan"),
            "after": float(ok.gradcam_after.mean()) if n else float("nan"),
            "change": change, "change_small": bool(n > 0 and abs(change) <= tolerance),
            "below": float(ok.below_before.mean()) if n else float("nan"),
            "tolerance": tolerance}


def table6_sentence(v: dict) -> str:
    """What the successful attacks show, in words, from :func:`table6_claims`'s verdict (a
    sentence that also reads right when no attack succeeded)."""
    if not v["successes"]:
        return ("No attack succeeded within the budget, so there is no attacked pixel to read "
                "Grad-CAM at (raise the budget: see Try it).")
    return (f"Over those, Grad-CAM's value at the attacked pixel is {v['before']:.3f} before and "
            f"{v['after']:.3f} after the attack, and it is non-zero on {v['nonzero']} of "
            f"{v['successes']}. But a non-zero value is not the same as pointing at the pixel: on "
            f"average {v['below']:.0%} of the map's pixels lie below the attacked one, where a "
            "pixel drawn at random would have half of them below it.")


def plot_table6(rows: pd.DataFrame, targets: Sequence[AttackTarget], n: int = 4):
    """Up to ``n`` successful attacks: the image with the attacked pixel circled, Grad-CAM before
    (old class) and after (new class), each with the pixel's value."""
    import matplotlib.pyplot as plt

    from ..plot import as_image

    ok = rows[rows.success].head(n)
    if ok.empty:
        return None
    by_label = {t.label: t for t in targets}
    fig, axes = plt.subplots(len(ok), 3, figsize=(5.4, 1.8 * len(ok) + 0.3), squeeze=False)
    for r, (_, row) in enumerate(ok.iterrows()):
        t = by_label[row.model]
        i = t.names.index(row.image)
        x = t.x[i:i + 1]
        adv, _, _ = _perturb(x, np.array([row.row + 0.5, row.col + 0.5, *row.value])[:, None])
        size = tuple(x.shape[-2:])
        maps = [cam.postprocess(cam.compute(t.model, img, t.layer, "gradcam", target=c), size)[0]
                for img, c in ((x, row.cls), (adv, row.cls_after))]
        img = as_image(adv[0].cpu())
        axes[r, 0].imshow(img if img.ndim == 3 else img, cmap=None if img.ndim == 3 else "gray")
        axes[r, 0].set_ylabel(f"{row.image}\n{t.label.split(',')[0]}", fontsize=8)
        for j, (m, v, title) in enumerate(((maps[0], row.gradcam_before, "before"),
                                           (maps[1], row.gradcam_after, "after")), start=1):
            axes[r, j].imshow(m.cpu(), cmap="jet", vmin=0, vmax=1)
            axes[r, j].set_title(f"Grad-CAM {title}: {v:.3f}", fontsize=9)
        for ax in axes[r]:
            ax.add_patch(plt.Circle((row.col, row.row), max(size) / 16, fill=False, color="red",
                                    lw=1.5))
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("attacked image", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Table 7: fidelity and contrastivity on the paper's MNIST network
# --------------------------------------------------------------------------------------------

@dataclass
class MnistData:
    """Table 7's network (trained here), its test images ((N, 1, 28, 28) in [0, 1]) and labels,
    the SHAP background images, and what the data are, in words."""
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    background: torch.Tensor
    data_name: str
    history: dict


_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _mnist_files(data_root) -> dict:
    from pathlib import Path

    from ..data.errors import DataMissingError

    root = Path(data_root)
    for d in (root / "mnist", root / "MNIST" / "raw", root):
        found = {}
        for split, stems in _MNIST_FILES.items():
            paths = [next((d / (s + e) for e in (".gz", "") if (d / (s + e)).is_file()), None)
                     for s in stems]
            if None in paths:
                break
            found[split] = paths
        if len(found) == 2:
            return found
    raise DataMissingError("MNIST", [s + "[.gz]" for stems in _MNIST_FILES.values() for s in stems],
                           "the four IDX files from http://yann.lecun.com/exdb/mnist/ (or "
                           "torchvision's MNIST/raw folder) under DATA_ROOT/mnist/",
                           searched=[root / "mnist", root / "MNIST" / "raw", root])


def mnist_data(profile: str, n: int, data_root=None, device="cpu", seed: int = 0) -> MnistData:
    """The paper's MNIST network (``lib.models.small.MnistNet``) with its test images and 50
    background images drawn (seeded) from the training set. ``full``: trained on MNIST from
    ``data_root`` (cached, not committed); otherwise the committed recipe ``mnist_net``, trained
    on Fashion-MNIST (MNIST is not available offline here)."""
    from ..train import DataBundle, load_or_train, load_trained

    if profile == "full":
        from ..data.fashion_mnist import read_idx
        from ..results import file_digest

        files = _mnist_files(data_root)

        def bundle():
            xs = [torch.from_numpy(read_idx(files[s][0], "images")) for s in ("train", "test")]
            ys = [torch.from_numpy(read_idx(files[s][1], "labels")).long()
                  for s in ("train", "test")]
            return DataBundle(xs[0], ys[0], xs[1], ys[1])

        key = "mnist:" + ",".join(file_digest(p)[:16] for s in ("train", "test") for p in files[s])
        from ..train import RECIPES

        r = RECIPES["mnist_net"]
        model, hist = load_or_train("mnist_net", {}, bundle, epochs=r["epochs"], lr=r["lr"],
                                    batch_size=r["batch_size"], seed=r["seed"], data_key=key,
                                    device=device, verbose=False)
        data, name = bundle(), "MNIST"
    else:
        from ..train import load_data

        model, hist = load_trained("mnist_net", device=device, verbose=False)
        data, name = load_data("fashion_mnist", data_root), "Fashion-MNIST"
    g = torch.Generator().manual_seed(seed)
    test = torch.randperm(len(data.x_test), generator=g)[:n]
    bg = torch.randperm(len(data.x_train), generator=g)[:SHAP_BACKGROUND]
    return MnistData(model.to(device).eval(), data.prepare(data.x_test[test]).to(device),
                     data.y_test[test].to(device), data.prepare(data.x_train[bg]).to(device),
                     name, hist)


def gradcam_maps(model: nn.Module, x: torch.Tensor, classes: Sequence[int] | None = None
                 ) -> torch.Tensor:
    """Grad-CAM at ``relu1`` (the authors' layer: the rectified 20 x 12 x 12 maps) for every class
    (default 0..9): (N, K, 28, 28), ReLU and bilinear up-sampling, not normalised (the
    percentiles of Table 7 do not depend on the scale)."""
    classes = range(10) if classes is None else classes
    size = tuple(x.shape[-2:])
    return torch.stack([cam.postprocess(cam.compute(model, x, model.target_layer, "gradcam",
                                                    target=int(c)), size, normalize="none")
                        for c in classes], 1)


def shap_maps(model: nn.Module, x: torch.Tensor, background: torch.Tensor,
              classes: Sequence[int] | None = None, n_samples: int = 50, seed: int = 0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient SHAP (Captum, through ``lib.cam``) of the softmax output for every class
    (default 0..9): (N, K, 28, 28), and its completeness error per image and class (N, K):
    |sum of the attribution - (p_c(x) - mean p_c(background))|, zero in expectation only.

    ``n_samples`` gradients per image, each at a random point between the image and a random
    one of the ``background`` images (expected gradients: SHAP's GradientExplainer), seeded."""
    classes = list(range(10)) if classes is None else list(classes)
    net = Probabilities(model).eval()
    with torch.no_grad():
        p, p_bg = net(x), net(background).mean(0)
    out, err = [], []
    for c in classes:
        a = cam.compute(net, x, None, "gradientshap", target=int(c), captum_kwargs={
            "baselines": background, "n_samples": n_samples, "stdevs": 0.0, "seed": seed + int(c)})
        out.append(a[:, 0])
        err.append((a.sum((1, 2, 3)) - (p[:, c] - p_bg[c])).abs())
    return torch.stack(out, 1), torch.stack(err, 1)


def deepliftshap_check(model: nn.Module, x: torch.Tensor, background: torch.Tensor, cls: int
                       ) -> dict:
    """Captum's DeepLiftShap on this network, checked against DeepLIFT's own completeness:
    per image, the largest |sum of the attribution - (f(x) - f(reference))| over the references
    (Captum's convergence delta), for the softmax output and for the logits, beside the largest
    |f(x) - f(reference)| it should reproduce."""
    import warnings

    from captum.attr import DeepLiftShap

    out = {}
    for name, net in (("softmax", Probabilities(model).eval()), ("logits", model.eval())):
        with warnings.catch_warnings():  # Captum warns that it sets hooks on the activations
            warnings.simplefilter("ignore")
            _, delta = DeepLiftShap(net).attribute(x, baselines=background, target=cls,
                                                   return_convergence_delta=True)
        with torch.no_grad():
            span = (net(x)[:, cls, None] - net(background)[None, :, cls]).abs().max()
        out[name] = {"max |delta|": float(delta.abs().max()), "max |f(x) - f(ref)|": float(span)}
    return out


def run_table7(data: MnistData, n_samples: int = 50, seed: int = 0,
               percentiles: Sequence[int] = PERCENTILES, n_threads: int | None = None
               ) -> tuple[pd.DataFrame, dict]:
    """(table, extra): Table 7 per method and percentile p: the mean fidelity (the drop of the
    true class's probability when the pixels above the p-th percentile of the map's positive
    values are set to 0) and the mean contrastivity (the true class's mask against each other
    class's), with the count of images whose true-class map has no positive value (nothing
    removed) and of mask pairs that are both empty (scored 0, the authors' convention, and
    counted). ``extra``: the maps (method -> (N, 10, 28, 28)), seconds per method and Gradient
    SHAP's completeness error (N, 10)."""
    with threads(n_threads):
        return _table7(data, n_samples, seed, percentiles)


def _table7(data: MnistData, n_samples: int, seed: int, percentiles: Sequence[int]
            ) -> tuple[pd.DataFrame, dict]:
    t0 = time.perf_counter()
    maps = {"gradcam": gradcam_maps(data.model, data.x)}
    t_gc = time.perf_counter() - t0
    maps["gradientshap"], err = shap_maps(data.model, data.x, data.background, n_samples=n_samples,
                                          seed=seed)
    extra = {"maps": maps, "gradcam_s": t_gc, "shap_s": time.perf_counter() - t0 - t_gc,
             "shap_completeness_error": err}
    n, k = maps["gradcam"].shape[:2]
    own = torch.arange(n, device=data.y.device)
    rows = []
    for m, v in maps.items():
        for p in percentiles:
            masks = metrics.above_positive_percentile(v.flatten(0, 1), p).view(n, k, *v.shape[2:])
            mine = masks[own, data.y]
            fid = metrics.fidelity(data.model, data.x, mine, data.y)
            others = torch.ones(n, k, dtype=torch.bool)
            others[own.cpu(), data.y.cpu()] = False
            both_empty = (~mine.flatten(1).any(1))[:, None].cpu() & ~masks.flatten(2).any(2).cpu()
            rows.append({"method": m, "p (%)": p, "images": n, "fidelity": fid.mean().item(),
                         "contrastivity": metrics.contrastivity(masks, data.y,
                                                                empty="zero").mean().item(),
                         "pixels removed": mine.flatten(1).sum(1).float().mean().item(),
                         "maps without positive values": int((~mine.flatten(1).any(1)).sum()),
                         "empty mask pairs": int((both_empty & others).sum())})
    return pd.DataFrame(rows), extra


def table7_claims(table: pd.DataFrame) -> dict:
    """Grad-CAM's contrastivity above Gradient SHAP's at every p (the authors: Grad-CAM has the
    highest contrastivity), and Gradient SHAP's fidelity above Grad-CAM's at every p (the
    authors: on a network that is mostly dense layers, non-CNN methods are more faithful)."""
    t = table.set_index(["method", "p (%)"])
    ps = sorted(table["p (%)"].unique())
    return {"contrastivity": {p: (t.loc[("gradcam", p), "contrastivity"],
                                  t.loc[("gradientshap", p), "contrastivity"]) for p in ps},
            "fidelity": {p: (t.loc[("gradcam", p), "fidelity"],
                             t.loc[("gradientshap", p), "fidelity"]) for p in ps},
            "gradcam_more_contrastive": all(
                t.loc[("gradcam", p), "contrastivity"] > t.loc[("gradientshap", p), "contrastivity"]
                for p in ps),
            "shap_more_faithful": all(t.loc[("gradientshap", p), "fidelity"]
                                      > t.loc[("gradcam", p), "fidelity"] for p in ps)}


def plot_table7(data: MnistData, maps: dict, p: int = 10, n: int = 4):
    """The first ``n`` test images: the image, then per method the true class's map and its
    mask above the ``p``-th percentile of its positive values (the pixels fidelity removes)."""
    import matplotlib.pyplot as plt

    from ..data.fashion_mnist import CLASSES

    n = min(n, len(data.x))
    fig, axes = plt.subplots(n, 1 + 2 * len(maps), figsize=(7.5, 1.45 * n + 0.3), squeeze=False)
    for r in range(n):
        c = int(data.y[r])
        axes[r, 0].imshow(data.x[r, 0].cpu(), cmap="gray")
        label = CLASSES[c] if data.data_name == "Fashion-MNIST" else str(c)
        axes[r, 0].set_ylabel(label, fontsize=8)
        for j, (m, v) in enumerate(maps.items()):
            mv = v[r, c].cpu()
            mask = metrics.above_positive_percentile(v[r:r + 1, c], p)[0].cpu()
            lim = float(mv.abs().max()) or 1.0
            axes[r, 1 + 2 * j].imshow(mv, cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[r, 2 + 2 * j].imshow(mask, cmap="gray")
            if r == 0:
                axes[r, 1 + 2 * j].set_title(method_name(m), fontsize=9)
                axes[r, 2 + 2 * j].set_title(f"mask, p = {p} %", fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=9)
    fig.tight_layout()
    return fig
