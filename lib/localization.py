"""Paper 000's localisation protocol (Santos et al., Section 2.4, Table 2), and the models of its
default-profile analogue.

For each image and finding: Grad-CAM at the last layer and at earlier ones (one forward and
backward pass for all of them), ReLU; a map from an intermediate layer is first *down-sampled* to
the last layer's feature size (area averaging) and only then up-sampled to the input (bilinear,
align_corners=False), so that every layer is judged at the same resolution. Then

- IoU: the map binarised to its top-A pixels, A = the finding's box area, against the box
  (``lib.metrics.iou_top_area``);
- Hit: the map's arg-max pixel lies inside the box (``lib.metrics.hit``).

Choices the paper leaves open, made here (and stated in the notebook): the target of Grad-CAM is
the finding's logit (a sigmoid score gives the same map up to a positive factor per image, which
top-A and arg-max ignore); every ground-truth finding is scored (``score`` is kept, so the true
positives can be selected afterwards); a finding with several boxes is scored against the union of
its boxes (``per="finding"``) or box by box (``per="box"``); down-sampling is area averaging.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import cam, metrics, resample, rf
from .data.boxes import box_mask
from .layers import layer_name

__all__ = ["finding_masks", "pool_centres", "down_up", "layer_maps", "evaluate", "summarise",
           "verdict", "PAPER_TABLE2", "paper_table2", "SCENES", "scene_data", "scene_recipe",
           "test_scenes", "scene_model", "lite0_scene_model", "imagenet_classifier", "vindr_split",
           "vindr_model", "vindr_test"]


# --------------------------------------------------------------------------------------------
# Boxes -> masks
# --------------------------------------------------------------------------------------------

def finding_masks(boxes, height: int, width: int | None = None, per: str = "finding"
                  ) -> list[tuple[int, int, torch.Tensor]]:
    """The (class, box index, bool mask (H, W)) of each finding of one image.

    ``boxes``: (K, 5) rows (x_min, y_min, x_max, y_max, class), max exclusive, input pixels.
    ``per="finding"``: one mask per class, the union of its boxes (box index -1); ``"box"``: one
    mask per box."""
    width = height if width is None else width
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float64)).reshape(-1, 5)
    if per not in ("finding", "box"):
        raise ValueError(f"per must be 'finding' (union of a class's boxes) or 'box', not {per!r}")
    out = []
    if per == "box":
        for k, row in enumerate(b):
            out.append((int(row[4]), k, box_mask(row[None, :4], height, width)))
    else:
        for c in sorted({int(v) for v in b[:, 4].tolist()}):
            out.append((c, -1, box_mask(b[b[:, 4] == c, :4], height, width)))
    for c, k, m in out:
        if not m.any():
            raise ValueError(f"the box(es) of class {c} cover no pixel of the {height}x{width} "
                             f"input: {b[b[:, 4] == c, :4].tolist()}")
    return out


# --------------------------------------------------------------------------------------------
# Down-sample to the last layer's grid, then up-sample to the input
# --------------------------------------------------------------------------------------------

def pool_centres(centres, n: int) -> np.ndarray:
    """Centres of the ``n`` units of a 1-D map area-averaged (adaptive average pooling) from units
    at ``centres``: the mean centre of each pooling window."""
    c = torch.as_tensor(np.asarray(centres, dtype=np.float64)).view(1, 1, -1)
    if c.shape[-1] < n:
        raise ValueError(f"cannot pool {c.shape[-1]} units down to {n}")
    return F.adaptive_avg_pool1d(c, n).view(-1).numpy()


def down_up(maps: torch.Tensor, grid: tuple[int, int], size, centres=None,
            relu: bool = True) -> torch.Tensor:
    """Paper 000's resampling of a layer's maps (N, h, w): ReLU, area-average down to ``grid``
    (the last layer's feature size; no-op if already that size), then up-sample to ``size``.

    ``centres``: None for bilinear up-sampling (align_corners=False, as Grad-CAM does), or the
    (rows, columns) input coordinates of the ``grid`` units (e.g. their RF centres) for the
    RF-centred up-sampling (:func:`lib.resample.upsample_at_centres`)."""
    if maps.dim() != 3:
        raise ValueError(f"maps must be (N, h, w), got {tuple(maps.shape)}")
    gh, gw = grid
    h, w = maps.shape[-2:]
    if h < gh or w < gw:
        raise ValueError(f"a {h}x{w} map cannot be down-sampled to the last layer's {gh}x{gw} "
                         "grid: list the last (coarsest) layer first")
    out = maps.float().clamp(min=0) if relu else maps.float()
    if (h, w) != (gh, gw):
        out = F.adaptive_avg_pool2d(out[:, None], (gh, gw))[:, 0]
    size = (size, size) if isinstance(size, int) else tuple(size)
    if centres is None:
        return F.interpolate(out[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return resample.upsample_at_centres(out, centres[0], centres[1], size)


def _grid_centres(model, names: Sequence[str], input_size) -> dict[str, tuple]:
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


def layer_maps(model: nn.Module, x: torch.Tensor, layers: Sequence, target=None,
               upsample: str | Sequence[str] = "bilinear", centres: dict | None = None
               ) -> dict[str, dict[str, torch.Tensor]]:
    """Grad-CAM of ``x`` at every layer of ``layers`` (the LAST layer first: its feature size is
    the common grid), resampled by :func:`down_up` to the input size:
    ``maps[upsample][layer name] -> (N, H, W)``.

    ``upsample``: ``"bilinear"`` and/or ``"rf"`` (units at their RF centres, pooled to the grid;
    pass ``centres`` from a previous call's ``_grid_centres`` to avoid re-tracing the model).
    ``target``: as in :func:`lib.cam.compute`."""
    modes = [upsample] if isinstance(upsample, str) else list(upsample)
    bad = [m for m in modes if m not in ("bilinear", "rf")]
    if bad:
        raise ValueError(f"upsample must be 'bilinear' and/or 'rf', got {bad}")
    names = [layer_name(model, lay) for lay in layers]
    raw = cam.compute(model, x, list(layers), "gradcam", target=target)["gradcam"]
    grid = tuple(raw[names[0]].shape[-2:])
    size = tuple(x.shape[-2:])
    if "rf" in modes and centres is None:
        centres = _grid_centres(model, names, size)
    return {m: {n: down_up(raw[n], grid, size, centres[n] if m == "rf" else None)
                for n in names} for m in modes}


# --------------------------------------------------------------------------------------------
# IoU and Hit per finding
# --------------------------------------------------------------------------------------------

def _take(images, idx: list[int]) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[idx]
    return torch.stack([torch.as_tensor(images[i]) for i in idx])


def evaluate(model: nn.Module, images, boxes: Sequence, layers: Sequence | dict,
             per: str = "finding", upsample: str | Sequence[str] = "bilinear",
             batch_size: int = 32, device=None, progress: bool = True) -> pd.DataFrame:
    """Paper 000's IoU and Hit Rate for every (image, finding) pair and every layer.

    ``images``: a (N, C, H, W) tensor or an indexable of (C, H, W) tensors (model input);
    ``boxes[i]``: (K, 5) rows (x_min, y_min, x_max, y_max, class) in input pixels; ``layers``: the
    last layer first, then earlier ones (a list of names, or a dict label -> name). Grad-CAM's
    target is the finding's logit. Returns one row per (image, finding[, box], layer, upsample):
    ``image, cls, box, layer, module, upsample, iou, hit, area, score, empty`` (``score``: the
    model's sigmoid for that class, so ``score > 0.5`` selects the true positives; ``empty``: the
    map is zero everywhere after ReLU)."""
    labels = dict(layers) if isinstance(layers, dict) else {str(n): n for n in layers}
    if not labels:
        raise ValueError("give at least one layer (the last one first)")
    if len(boxes) != len(images):
        raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
    device = device or next(model.parameters()).device
    names = {lab: layer_name(model, n) for lab, n in labels.items()}
    h, w = _take(images, [0]).shape[-2:]
    pairs = [(i, c, k, m) for i in range(len(images)) for c, k, m in finding_masks(boxes[i], h, w, per)]
    if not pairs:
        raise ValueError("no finding has a box: nothing to localise")
    modes = [upsample] if isinstance(upsample, str) else list(upsample)
    centres = _grid_centres(model, list(names.values()), (h, w)) if "rf" in modes else None
    rows = []
    was_training = model.training
    model.eval()
    for s in tqdm(range(0, len(pairs), batch_size), desc="localisation", disable=not progress):
        chunk = pairs[s:s + batch_size]
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
                # an all-zero map (ReLU removed everything) has no top-A pixels or arg-max of its
                # own: it is scored as is (a miss at pixel (0, 0)) and flagged
                empty = (maps[mode][n].flatten(1).amax(1) <= 0).cpu()
                for j, (i, c, k, m) in enumerate(chunk):
                    rows.append({"image": i, "cls": c, "box": k, "layer": lab, "module": n,
                                 "upsample": mode, "iou": float(iou[j]), "hit": float(hit[j]),
                                 "area": int(m.sum()), "score": float(score[j]),
                                 "empty": bool(empty[j])})
    model.train(was_training)
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame, by: Sequence[str] = ("model", "layer"), over: str = "seed"
              ) -> pd.DataFrame:
    """Mean IoU and Hit Rate per ``over`` (a seed / split: the mean over its findings), then
    their mean and standard deviation (ddof=1, as over the paper's splits) across ``over``:
    columns ``iou, iou_std, hr, hr_std, n`` (n = number of seeds), rows in first-seen order."""
    by = list(by)
    missing = [c for c in by + [over, "iou", "hit"] if c not in df.columns]
    if missing:
        raise ValueError(f"the results lack the column(s) {missing}")
    per = df.groupby(by + [over], sort=False)[["iou", "hit"]].mean().reset_index()
    g = per.groupby(by, sort=False)
    out = pd.DataFrame({"iou": g["iou"].mean(), "iou_std": g["iou"].std(ddof=1),
                        "hr": g["hit"].mean(), "hr_std": g["hit"].std(ddof=1),
                        "n": g[over].nunique()})
    return out.fillna({"iou_std": 0.0, "hr_std": 0.0}) if (out["n"] == 1).all() else out


def verdict(table: pd.DataFrame, model_col: str = "model", layer_col: str = "layer",
            metrics_: Sequence[str] = ("iou", "hr")) -> pd.DataFrame:
    """Paper 000's claim, per model and metric, from a table whose layers run from the last one
    backwards (row order within a model): ``one_or_two_back_beats_last`` (the best of the 2nd and
    3rd layers beats the 1st) and ``too_far_back_is_worse`` (the 4th layer, or the 3rd when there
    are only three, is below the best of the earlier ones)."""
    t = table.reset_index() if model_col not in table.columns else table
    rows = []
    for model, g in t.groupby(model_col, sort=False):
        vals = g.reset_index(drop=True)
        if len(vals) < 3:
            raise ValueError(f"{model}: the claim needs the last layer and at least 2 earlier ones")
        for m in metrics_:
            v = vals[m].to_numpy()
            back = v[1:3]
            best = 1 + int(np.argmax(back))
            far = len(v) - 1
            rows.append({model_col: model, "metric": m, "last": v[0],
                         "best 1-2 back": back.max(), "best layer": vals[layer_col][best],
                         "farthest": v[far], "farthest layer": vals[layer_col][far],
                         "one_or_two_back_beats_last": bool(back.max() > v[0]),
                         "too_far_back_is_worse": bool(v[far] < max(v[:far].max(), back.max()))})
    return pd.DataFrame(rows)


#: paper 000, Table 2 (mean ± std over 5 splits of VinDr-CXR): (model, layer) -> (IoU, IoU std,
#: HR, HR std)
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


def paper_table2() -> pd.DataFrame:
    """Paper 000's Table 2 as a DataFrame (columns model, layer, iou, iou_std, hr, hr_std)."""
    return pd.DataFrame([{"model": m, "layer": lay, "iou": v[0], "iou_std": v[1], "hr": v[2],
                          "hr_std": v[3]} for (m, lay), v in PAPER_TABLE2.items()])


# --------------------------------------------------------------------------------------------
# The models of the default profile: multi-label Fashion-MNIST scenes stand in for VinDr-CXR
# --------------------------------------------------------------------------------------------

#: the scenes (lib.data.scenes.make_scenes): one object of the scene's class and 1-2 distractors
#: of other classes, every one a finding with its exact box
SCENES: dict[str, Any] = dict(size=64, n_objects=1, n_distractors=(1, 2), scale=(0.3, 0.45))
#: per profile: train / test scenes per seed and epochs per architecture (2 CPU cores: each
#: default model trains in about 1.5-3 min with one thread)
_SIZES = {"smoke": dict(n_train=64, n_test=12, epochs={"small_resnet": 1, "small_densenet": 1,
                                                       "small_efficientnet": 1}),
          "default": dict(n_train=3000, n_test=300, epochs={"small_resnet": 5, "small_densenet": 6,
                                                            "small_efficientnet": 3})}
_LR = {"small_resnet": 3e-3, "small_densenet": 3e-3, "small_efficientnet": 3e-3}


def scene_data(profile: str, seed: int, size: int | None = None, channels: int = 1) -> dict:
    """The lib.train data spec of the multi-label scenes of ``profile`` and ``seed`` (the seed
    draws both the train scenes, from Fashion-MNIST's train split, and the test scenes, from its
    test split: one "split" of Table 2)."""
    if profile not in _SIZES:
        raise ValueError(f"the scene models exist for the 'smoke' and 'default' profiles, not "
                         f"{profile!r} (the 'full' profile uses VinDr-CXR)")
    s = _SIZES[profile]
    spec = dict(SCENES, name="scenes", n_train=s["n_train"], n_test=s["n_test"], seed=seed,
                multilabel=True, n_distractors=list(SCENES["n_distractors"]),
                scale=list(SCENES["scale"]))
    if size is not None:
        spec["size"] = size
    if channels != 1:
        spec["channels"] = channels
    return spec


def test_scenes(profile: str, seed: int, n: int, size: int | None = None, channels: int = 1,
                data_root=None):
    """``n`` scenes from Fashion-MNIST's TEST split, drawn like the training scenes of
    ``profile`` / ``seed`` (lib.data.scenes.Scenes: images in [0, 1], exact boxes)."""
    from .data.scenes import make_scenes

    spec = scene_data(profile, seed, size, channels)
    kw = {k: v for k, v in spec.items() if k not in ("name", "n_train", "n_test", "multilabel")}
    return make_scenes(n, "test", data_root=data_root, **kw)


def scene_recipe(arch: str, profile: str, seed: int) -> dict:
    """The full lib.train.load_or_train configuration of a small ``arch`` (``small_resnet``,
    ``small_densenet``, ``small_efficientnet``) on the scenes of ``profile`` and ``seed``."""
    if arch not in _LR:
        raise ValueError(f"unknown scene architecture {arch!r}; choose from {sorted(_LR)}")
    return dict(model_fn=arch, model_kwargs={"num_classes": 10, "in_channels": 1},
                data=scene_data(profile, seed), epochs=_SIZES[profile]["epochs"][arch],
                lr=_LR[arch], batch_size=32, seed=seed, loss="bce")


def scene_model(arch: str, profile: str, seed: int, device="cpu", **kwargs):
    """(model, history): ``arch`` trained on the scenes (lib.train: cached; the default profile's
    weights are committed to MODELS_DIR, smoke ones go to CACHE_DIR)."""
    from .train import load_or_train

    return load_or_train(**scene_recipe(arch, profile, seed), device=device,
                         commit=profile == "default", **kwargs)


class _Probe(nn.Module):
    """A linear multi-label head on frozen, globally pooled features."""

    def __init__(self, in_features: int = 1280, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, f):
        return self.fc(f)


def lite0_scene_model(profile: str, seed: int, size: int = 128, device="cpu", epochs: int = 30,
                      progress: bool = False, **kwargs):
    """(model, history): the ImageNet-pretrained EfficientNet-Lite0 with its features FROZEN and a
    new 10-class multi-label head fitted (lib.train, BCE, Adam) on its pooled features of the
    scenes of ``profile`` / ``seed`` drawn at ``size`` px in RGB. Features are computed only when
    the head is not cached (the default profile's heads, 50 kB each, are committed)."""
    from .models.pretrained import LITE0_MEAN, LITE0_STD, efficientnet_lite0
    from .train import DataBundle, load_data, load_or_train

    backbone = efficientnet_lite0().to(device)
    spec = scene_data(profile, seed, size=size, channels=3)
    mean = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE0_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def pooled(x):
        out = []
        for i in tqdm(range(0, len(x), 64), desc="Lite0 features", disable=not progress):
            xb = ((x[i:i + 64] - mean) / std).to(device)
            out.append(backbone.forward_head(backbone.forward_features(xb), pre_logits=True).cpu())
        return torch.cat(out)

    def data():
        b = load_data(spec)
        return DataBundle(pooled(b.x_train), b.y_train, pooled(b.x_test), b.y_test)

    key = "lite0-pooled-features:" + ",".join(f"{k}={spec[k]}" for k in sorted(spec))
    head, hist = load_or_train("linear_probe", {"in_features": backbone.num_features, "num_classes": 10},
                               data, epochs=epochs, lr=1e-2, batch_size=128, seed=seed,
                               loss="bce", data_key=key, device=device, progress=progress,
                               commit=profile == "default", **kwargs)
    clf = nn.Linear(backbone.num_features, 10).to(device)
    clf.load_state_dict(head.fc.state_dict())
    backbone.classifier = clf
    for p in backbone.parameters():
        p.requires_grad_(False)  # Grad-CAM still flows: the engine differentiates activations
    return _Normalised(backbone.eval(), mean, std), hist


class _Normalised(nn.Module):
    """A model that takes images in [0, 1] and normalises them first (so that the scenes, their
    boxes and the maps share one input space)."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


# --------------------------------------------------------------------------------------------
# The full profile: the paper's torchvision networks, ImageNet weights, a new head
# --------------------------------------------------------------------------------------------

def imagenet_classifier(name: str, num_classes: int = 14) -> nn.Module:
    """torchvision ``name`` (resnet50, densenet121, efficientnet_b0) with its ImageNet weights
    (from the torch hub cache, never downloaded) and a new ``num_classes`` head, as paper 000
    fine-tunes them on VinDr-CXR."""
    from .models.zoo import build

    model = build(name, weights="imagenet")
    if name.startswith("resnet"):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif name.startswith("densenet"):
        model.classifier = nn.Linear(model.classifier.in_features, num_classes)
    elif name.startswith("efficientnet"):
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    else:
        raise ValueError(f"no head replacement rule for {name!r}")
    return model


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
            raise ValueError("build the data set with VinDrCXR(data_root, channels=1, "
                             "normalize=False): images are kept as uint8 and normalised per batch")
        xs, ys, bs = [], [], []
        for i in tqdm(range(len(ds)), desc="VinDr-CXR images"):
            x, y, b = ds[i]
            xs.append((x * 255).round().to(torch.uint8))
            ys.append(y)
            bs.append(b)
        _PIXELS[key] = (torch.stack(xs), torch.stack(ys), bs)
    return _PIXELS[key]


def _imagenet_input(x: torch.Tensor) -> torch.Tensor:
    from .data._images import normalize_imagenet

    x = x.float() / 255
    return normalize_imagenet(x.expand(*x.shape[:-3], 3, *x.shape[-2:]))


def vindr_model(name: str, ds, seed: int, epochs: int = 10, device="cuda", **kwargs):
    """(model, history): torchvision ``name`` from ImageNet weights with 14 outputs, trained
    (lib.train, BCE, Adam lr 1e-3, batch 64, 32 for DenseNet121, as paper 000) on the training
    images of split ``seed`` of ``ds`` (a ``VinDrCXR(data_root, channels=1, normalize=False)``)."""
    from .train import DataBundle, load_or_train

    def data():
        x, y, _ = _vindr_pixels(ds)
        tr, te = vindr_split(len(ds), seed)
        return DataBundle(x[tr], y[tr], x[te], y[te], transform=_imagenet_input)

    key = f"vindr-cxr:{ds.root}:{len(ds)}:{ds.size}:split{seed}"
    return load_or_train("imagenet_transfer", {"name": name, "num_classes": 14}, data,
                         epochs=epochs, lr=1e-3, batch_size=32 if "densenet" in name else 64,
                         seed=seed, loss="bce", data_key=key, device=device, **kwargs)


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
    boxes = [all_boxes[i] for i in keep]
    return _Inputs(x[keep]), boxes
