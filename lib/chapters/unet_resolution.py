"""The "U-Net resolution" chapter: Mascolini et al., *High resolution explanation maps for CNNs
using segmentation networks* (2022), Table I, and what the paper could not measure.

A U-Net used as a classifier (GAP + linear head after the decoder, ``lib.models.unet``) and the
same network without its skip connections ("ablated") are explained with Grad-CAM, Grad-CAM++
and Score-CAM at the last decoder layer (``dec1``, full input resolution) and, for contrast, at
the bottleneck. Each map A is scored by the paper's localisation score

    s = sum_ij A_ij M_ij / sum_ij A_ij          (Section III; ``lib.metrics.mass_in_mask``)

with M the paper's reference (a thresholded Grad-CAM++ map of a separate ResNet-style
classifier; the threshold is not given, so it is swept) and, beyond the paper, M the true object
mask of the scene.

What lives here, so that the chapter only calls it: the paper's numbers (``PAPER_TABLE1``), the
sizes per profile (``SIZES``, ``COST``), the recipes of the models (``unet_recipe``,
``reference_model``), the test images of each profile (``test_set``), the experiment
(``Experiment``: models, maps, scores, cached in a ``lib.results.ResultsStore``), the tables, the
verdicts and the figures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D
from torch import nn

from lib import cam, fast, metrics, verdict
from lib.data.errors import DataMissingError
from lib.data.images import IMAGENET_MEAN, IMAGENET_STD, normalize_imagenet
from lib.data.needs import Need, require, weights_need
from lib.data.scenes import make_scenes
from lib.data.unet_folder import FOLDER as UNET_FOLDER
from lib.data.unet_folder import WHERE as UNET_WHERE
from lib.data.unet_folder import list_unet_folder, load_unet_folder, unet_folder_dir
from lib.models.heads import Normalized
from lib.plot import METHOD_LABELS, ours_and_paper, overlay, shared_colorbar
from lib.results import ResultsStore
from lib.train import DataBundle, TrainConfig, load_or_train, torch_threads

__all__ = [
    # the paper, the chapter's sizes and choices
    "CHAPTER",
    "PAPER_TABLE1",
    "PAPER_DATA",
    "METHODS",
    "LAYERS",
    "NETWORKS",
    "REFERENCE",
    "THRESHOLDS",
    "SCENES",
    "model_descriptions",
    "SIZES",
    "COST",
    # data and models
    "scene_data",
    "scene_facts",
    "check_data",
    "folder_data",
    "unet_recipe",
    "unet_model",
    "reference_recipe",
    "reference_model",
    "TestSet",
    "test_set",
    # maps and scores
    "postprocess",
    "reference_masks",
    "mask_iou",
    "score_maps",
    "Experiment",
    "Scores",
    "SCORE_COLUMNS",
    "REFERENCE_COLUMNS",
    "map_sizes",
    # tables and verdicts
    "accuracy_table",
    "reference_quality",
    "argued_threshold",
    "seed_means",
    "table1",
    "UNIT",
    "scene_pairs",
    "paired_verdict",
    "paired_differences",
    "skips_verdict",
    "PAPER_GAP",
    "GAP_TOLERANCE",
    "relative_gap",
    "paper_gaps",
    "gap_verdict",
    "gap_undefined",
    "floors",
    "gap_table",
    "gap_facts",
    "verdicts",
    "sweep_verdicts",
    "sweep_verdict",
    "truth_table",
    "layer_verdict",
    "both_correct",
    "correct_subset_table",
    "correct_subset_counts",
    "selectivity_table",
    "class_blind_share",
    "uniform_baseline",
    "for_page",
    "verdict_facts",
    "sweep_not_holding",
    "skips_outcome",
    "claim_rows",
    # figures
    "plot_reference",
    "plot_sweep",
    "plot_maps",
    "plot_layers",
]

CHAPTER = "06_unet_resolution"

#: Mascolini et al., Table I: localisation score s (%) on ImageNet validation images, reference
#: M = ResNet50 + Grad-CAM++ thresholded (threshold not given).
PAPER_TABLE1 = {
    "U-Net": {"gradcam": 53.55, "gradcam++": 72.47, "scorecam": 71.52},
    "ablated U-Net": {"gradcam": 47.81, "gradcam++": 63.04, "scorecam": 64.36},
}
PAPER_DATA = "ImageNet validation images, U-Net / ResNet50 trained on ImageNet"
#: Table I's methods, in the paper's order
METHODS = ("gradcam", "gradcam++", "scorecam")
#: the layers explained: the paper's (the last decoder layer) and, for contrast, the bottleneck
LAYERS = {"dec1": "last decoder layer", "bottleneck": "bottleneck"}
#: the two networks: name -> skip connections
NETWORKS = {"U-Net": True, "ablated U-Net": False}
#: the reference map: method and layer of the ResNet-style classifier (ResNet50's names)
REFERENCE = ("gradcam++", "layer4")
#: thresholds of the reference map (min-max normalised): M = ref > t
THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.0, 0.96, 0.05), 2))


#: the chapter's sizes per profile (``lib.notebook.setup(profile, sizes=SIZES, ...)``)
SIZES: dict[str, dict[str, Any]] = {
    "n_seeds": {"smoke": 1, "default": 3, "full": 3},  # trained pairs (U-Net + ablated)
    # test images explained per seed: Score-CAM costs 8 + 64 forward passes of the U-Net per
    # image and network (dec1, bottleneck), ~0.25 CPU-s at 48 px; 40 keeps the default within
    # ~1.5 CPU-minutes of scoring
    "n_images": {"smoke": 4, "default": 40, "full": 500},
    "n_show": {"smoke": 2, "default": 4, "full": 4},  # scenes in the figures
}
COST = {
    "smoke": "under a minute on a CPU (trains tiny models)",
    "default": "under a minute on a 2-core CPU with the committed models (Score-CAM: 72 "
    "forward passes an image and network), more on a busy machine",
    "full": "hours on one GPU (trains 3 x 3 networks on the data folder)",
}

#: the scenes (lib.data.scenes.make_scenes): two items of the scene's class and one distractor
#: item of another class, 30-40 % of the side each, never touching; the label (single, cross-
#: entropy) is the class with two items, so it is identifiable, and its true mask is the union of
#: those two items' pixels
SCENES: dict[str, Any] = dict(size=48, n_objects=2, n_distractors=1, scale=(0.3, 0.4))
#: what stands in for the paper's networks in the default profile (the scenes' size: dec1 has one
#: unit per pixel, the bottleneck 1/8 of the side, the ResNet-style layer4 1/16)
_S = SCENES["size"]
# Models per profile: train / test scenes per seed, the U-Nets' and the reference's training.
# default: each model trains in at most ~3 CPU-minutes with one thread.
_SCENE_SIZES = {"smoke": dict(n_train=64, n_test=12), "default": dict(n_train=3000, n_test=300)}
_UNET = {
    "smoke": dict(base=8, depth=3, epochs=1, lr=1e-2, batch_size=32),
    "default": dict(base=8, depth=3, epochs=12, lr=1e-2, batch_size=32),
    "full": dict(base=16, depth=4, epochs=30, lr=1e-3, batch_size=64),
}
_REFERENCE = {
    "smoke": dict(epochs=1, lr=3e-3, batch_size=32),
    "default": dict(epochs=10, lr=3e-3, batch_size=32),
}
#: the full profile: image size of the data folder and the reference's fine-tuning
_FULL = dict(size=128, reference_epochs=10, reference_lr=1e-4)


# --------------------------------------------------------------------------- data and models


def model_descriptions(profile: str) -> dict[str, str]:
    """What the U-Net (``"unet"``) and the reference network (``"reference"``) of ``profile``
    are, for the page: a network trained here is named as the stand-in it is."""
    if profile not in _UNET:
        raise ValueError(f"profile must be one of {sorted(_UNET)}, got {profile!r}")
    u, full = _UNET[profile], profile == "full"
    size = _FULL["size"] if full else _S
    low = size // 2 ** u["depth"]
    data = "the data folder's images" if full else "scenes"
    unet = (
        f"a U-Net-style classifier, {u['base']} to {u['base'] * 2 ** u['depth']} channels, "
        f"{size} px in, {size} × {size} maps at the last decoder layer, {low} × {low} at the "
        f"bottleneck, trained here on {data}"
    )
    if full:
        reference = (
            f"torchvision's ResNet50 from its ImageNet weights, fine-tuned here on {data} "
            f"(layer4 {size // 32} × {size // 32} at {size} px), the paper's ResNet50"
        )
    else:
        reference = (
            f"ResNet-style (ResNet18-like BasicBlocks, layer4 {size // 16} × {size // 16} at "
            f"{size} px), trained here on the same scenes, standing in for the paper's "
            "ResNet50 (7 × 7 at 224 px)"
        )
    return {"unet": unet, "reference": reference}


def scene_data(profile: str, seed: int) -> dict:
    """The lib.train data spec of the scenes of ``profile`` and ``seed`` (the seed draws both the
    training scenes, from Fashion-MNIST's train split, and the test scenes, from its test split)."""
    if profile not in _SCENE_SIZES:
        raise ValueError(
            f"the scenes are the data of the 'smoke' and 'default' profiles, not "
            f"{profile!r} (the 'full' profile reads a data folder)"
        )
    return dict(
        SCENES, name="scenes", scale=list(SCENES["scale"]), seed=seed, **_SCENE_SIZES[profile]
    )


def scene_facts(profile: str, data_root=None) -> dict[str, Any]:
    """What the images of ``profile`` are, as facts for the page: for the scenes (``smoke``,
    ``default``) their side (px), the items of the scene's class and of another class, the
    items' size as shares of the side (%, low and high) and the training and test scenes per
    seed; for ``full`` the data folder and the side the images are resized to (px)."""
    if profile == "full":
        return {"folder": str(unet_folder_dir(data_root)), "size": _FULL["size"]}
    if profile not in _SCENE_SIZES:
        raise ValueError(f"profile must be 'smoke', 'default' or 'full', got {profile!r}")
    lo, hi = SCENES["scale"]
    n = _SCENE_SIZES[profile]
    return {
        "size": SCENES["size"],
        "n_objects": SCENES["n_objects"],
        "n_distractors": SCENES["n_distractors"],
        "scale_low": 100 * lo,
        "scale_high": 100 * hi,
        "n_train": n["n_train"],
        "n_test": n["n_test"],
    }


def check_data(profile: str, data_root) -> None:
    """Fail at the start, not after an hour: the full profile needs the data folder (listed,
    not read) and the torchvision ResNet50 ImageNet weights."""
    if profile != "full":
        return
    # everything at once (lib.data.needs): one table, one error naming every missing row
    try:
        root = unet_folder_dir(data_root)
    except DataMissingError:
        root = None if data_root is None else Path(data_root) / UNET_FOLDER
    require(
        "the U-Net resolution chapter",
        [
            Need.file(f"the data folder's {what}", root and root / sub, UNET_WHERE, folder=True)
            for what, sub in (
                ("training images", "train/images"),
                ("test images", "test/images"),
                ("test masks", "test/masks"),
            )
        ]
        + [weights_need("resnet50")],
    )
    # then the files themselves: a mask for every test image, every class folder listed
    list_unet_folder(data_root, "train", masks=False)
    list_unet_folder(data_root, "test", masks=True)


def folder_data(data_root, size: int = _FULL["size"]):
    """(data callable for lib.train, data_key): the train and test splits of the data folder
    (``lib.data.unet_folder``) as uint8 RGB at ``size`` px. The key names every file, so that
    a changed folder retrains."""
    names = []
    for split in ("train", "test"):
        root, classes, items, _ = list_unet_folder(data_root, split, masks=False)
        names += [f"{split}/{f.relative_to(root / split)}:{k}" for f, k, _ in items]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]

    def data():
        tr = load_unet_folder(data_root, "train", size, 3, masks=False)
        te = load_unet_folder(data_root, "test", size, 3, masks=False)
        return DataBundle(tr.images, tr.labels, te.images, te.labels)

    return data, f"unet-folder:{len(classes)}classes:{len(names)}files:{digest}:size{size}"


def _num_classes(profile: str, data_root) -> int:
    if profile != "full":
        return 10
    return len(list_unet_folder(data_root, "train", masks=False)[1])


def unet_recipe(profile: str, seed: int, skips: bool, data_root=None) -> TrainConfig:
    """The lib.train.load_or_train configuration of the U-Net (``skips=True``) or its ablation
    (``skips=False``) of ``profile`` and ``seed``: on the scenes (smoke / default) or the data
    folder (full), cross-entropy."""
    if profile not in _UNET:
        raise ValueError(f"profile must be one of {sorted(_UNET)}, got {profile!r}")
    u = _UNET[profile]
    kwargs = {
        "num_classes": _num_classes(profile, data_root),
        "in_channels": 3 if profile == "full" else 1,
        "base": u["base"],
        "depth": u["depth"],
        "skips": bool(skips),
    }
    if profile == "full":
        data, key = folder_data(data_root)
    else:
        data, key = scene_data(profile, seed), None
    return TrainConfig(
        model_fn="unet",
        model_kwargs=kwargs,
        data=data,
        epochs=u["epochs"],
        lr=u["lr"],
        batch_size=u["batch_size"],
        seed=seed,
        loss="ce",
        data_key=key,
    )


def reference_recipe(profile: str, seed: int) -> TrainConfig:
    """The lib.train.load_or_train configuration of the ResNet-style reference network
    (``small_resnet``: ResNet18-like, layers named as ResNet50's) on the scenes of ``profile``
    and ``seed``, the U-Nets' scenes."""
    if profile not in _REFERENCE:
        raise ValueError(
            f"the ResNet-style reference exists for 'smoke' and 'default', not "
            f"{profile!r} (the 'full' profile fine-tunes ResNet50)"
        )
    r = _REFERENCE[profile]
    return TrainConfig(
        model_fn="small_resnet",
        model_kwargs={"num_classes": 10, "in_channels": 1},
        data=scene_data(profile, seed),
        epochs=r["epochs"],
        lr=r["lr"],
        batch_size=r["batch_size"],
        seed=seed,
        loss="ce",
    )


def unet_model(profile: str, seed: int, skips: bool, device="cpu", data_root=None, **kwargs):
    """(model, history): the U-Net or its ablation, trained by lib.train (cached; the default
    profile's weights are committed to MODELS_DIR)."""
    return load_or_train(
        unet_recipe(profile, seed, skips, data_root),
        device=device,
        commit=profile == "default",
        **kwargs,
    )


def reference_model(profile: str, seed: int, device="cpu", data_root=None, **kwargs):
    """(model taking images in [0, 1], history): the network whose Grad-CAM++ map is the
    reference M. smoke / default: a ResNet-style network trained on the same scenes
    (:func:`reference_recipe`; the default's weights committed); full: torchvision's ResNet50
    from its ImageNet weights, fine-tuned on the data folder (the paper's ResNet50)."""
    if profile != "full":
        return load_or_train(
            reference_recipe(profile, seed), device=device, commit=profile == "default", **kwargs
        )

    data, key = folder_data(data_root)

    def normalised():
        b = data()
        return DataBundle(
            b.x_train,
            b.y_train,
            b.x_test,
            b.y_test,
            transform=lambda x: normalize_imagenet(x.float() / 255),
        )

    model, hist = load_or_train(
        TrainConfig(
            "imagenet_transfer",
            {"name": "resnet50", "num_classes": _num_classes(profile, data_root)},
            normalised,
            epochs=_FULL["reference_epochs"],
            lr=_FULL["reference_lr"],
            batch_size=64,
            seed=seed,
            loss="ce",
            data_key=key + ":imagenet-normalised",
        ),
        device=device,
        **kwargs,
    )
    return Normalized(model, IMAGENET_MEAN, IMAGENET_STD).to(device).eval(), hist


@dataclass
class TestSet:
    """The images explained for one seed: ``images`` float (N, C, S, S) in [0, 1], ``labels``
    (N,) the class explained (the scene's object class), ``masks`` bool (N, S, S) the true
    object masks (the union of the items of that class), ``others`` bool (N, S, S) the masks of
    the other items (the distractors; None where the data have no such masks),
    ``description``."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    description: str
    others: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]


def test_set(profile: str, seed: int, n: int, data_root=None) -> TestSet:
    """``n`` test images with exact masks: scenes from Fashion-MNIST's test split, drawn like the
    training scenes of ``seed`` (smoke / default), or the data folder's test split (full)."""
    if profile == "full":
        d = load_unet_folder(data_root, "test", _FULL["size"], 3, n=n)
        return TestSet(d.float_images(), d.labels, d.masks, f"{len(d)} test images of {d.root}")

    spec = scene_data(profile, seed)
    sc = make_scenes(
        n, "test", **{k: v for k, v in spec.items() if k not in ("name", "n_train", "n_test")}
    )
    masks = torch.stack([sc.target_mask(i) for i in range(len(sc))])
    items = sc.instance_map > 0
    return TestSet(
        sc.images,
        sc.labels,
        masks,
        f"{len(sc)} test scenes ({sc.size} px, seed {seed}, Fashion-MNIST test split)",
        items & ~masks,
    )


# --------------------------------------------------------------------------- maps and scores


def postprocess(raw: torch.Tensor, size) -> torch.Tensor:
    """The display map of a raw CAM as pytorch-grad-cam gives it (ReLU, per-image min-max,
    bilinear to ``size``, min-max): non-negative, max 1 (0 everywhere for an empty map)."""
    return cam.postprocess(raw, size, preset=cam.PGC_PRESET)


def reference_masks(ref: torch.Tensor, thresholds: Sequence[float] = THRESHOLDS) -> torch.Tensor:
    """Binary reference masks M_t = ref > t, bool (T, N, H, W), from post-processed reference
    maps (N, H, W) in [0, 1]."""
    t = torch.as_tensor(list(thresholds), dtype=ref.dtype).view(-1, 1, 1, 1)
    return ref[None] > t


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a and b| / |a or b| per image over the last two dimensions (1 when both are empty)."""
    inter = (a & b).flatten(-2).sum(-1).float()
    union = (a | b).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def score_maps(
    maps: torch.Tensor,
    ref_masks: torch.Tensor,
    true_masks: torch.Tensor,
    other_masks: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The localisation score s of post-processed maps (N, H, W): ``s_ref`` (T, N) against each
    reference mask (T, N, H, W), ``s_true`` (N,) against the true masks (N, H, W), ``s_other``
    (N,) against the distractors' masks (NaN without them), and ``empty`` (N,): maps that are
    zero everywhere, whose s is NaN (no mass to place)."""
    empty = metrics.is_empty(maps)
    s_ref = torch.stack([metrics.mass_in_mask(maps, m, empty="nan") for m in ref_masks])
    s_true = metrics.mass_in_mask(maps, true_masks, empty="nan")
    s_other = (
        metrics.mass_in_mask(maps, other_masks, empty="nan")
        if other_masks is not None
        else torch.full_like(s_true, float("nan"))
    )
    return {"s_ref": s_ref, "s_true": s_true, "s_other": s_other, "empty": empty}


def _nan(v) -> float:
    return np.nan if v is None else v


def _nan_to_none(values) -> list:
    return [None if v != v else float(v) for v in np.asarray(values, dtype=float).ravel()]


@dataclass
class _Seed:
    test: TestSet
    nets: dict[str, nn.Module]
    histories: dict[str, dict]
    reference: nn.Module
    reference_history: dict


@dataclass
class Experiment:
    """The chapter's experiment: per seed, the U-Net, its ablation and the reference network,
    the test images, every map and score. ``scores()`` runs (or reloads) the scoring through a
    ResultsStore keyed by the models' weights, the sizes and the library's code. ``threads``:
    torch's CPU threads while computing maps (1, as for training: on a shared 2-core machine two
    threads spin-wait and run several times slower; None keeps torch's setting)."""

    profile: str
    n_seeds: int
    n_images: int
    device: Any = "cpu"
    data_root: Any = None
    thresholds: tuple = THRESHOLDS
    progress: bool = False
    batch_size: int = 25
    threads: int | None = 1
    seeds: dict[int, _Seed] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.n_seeds < 1 or self.n_images < 1:
            raise ValueError(
                f"n_seeds ({self.n_seeds}) and n_images ({self.n_images}) must be >= 1"
            )
        for s in range(self.n_seeds):
            nets, hists = {}, {}
            for name, skips in NETWORKS.items():
                nets[name], hists[name] = unet_model(
                    self.profile,
                    s,
                    skips,
                    self.device,
                    self.data_root,
                    progress=self.progress,
                    verbose=False,
                )
            ref, ref_hist = reference_model(
                self.profile, s, self.device, self.data_root, progress=self.progress, verbose=False
            )
            test = test_set(self.profile, s, self.n_images, self.data_root)
            self.seeds[s] = _Seed(test, nets, hists, ref.eval(), ref_hist)

    # -- models ---------------------------------------------------------------------------------
    def weight_files(self) -> list[str]:
        """The weights files of every model (what the scores depend on)."""
        out = []
        for sd in self.seeds.values():
            out += [h["path"] for h in sd.histories.values()] + [sd.reference_history["path"]]
        return out

    def training_table(self) -> pd.DataFrame:
        """One row per trained model: network, seed, the trainer's test accuracy, epochs and CPU
        time of training (s; lib.train trains with one thread)."""
        rows = []
        for s, sd in self.seeds.items():
            for name, h in [*sd.histories.items(), ("reference", sd.reference_history)]:
                rows.append(
                    {
                        "network": name,
                        "seed": s,
                        "test accuracy": h["test_acc"],
                        "epochs": len(h["epochs"]),
                        "CPU time (s)": h.get("cpu_time_s"),
                    }
                )
        return pd.DataFrame(rows)

    # -- maps -----------------------------------------------------------------------------------
    def unet_maps(
        self,
        seed: int,
        network: str,
        idx=None,
        layers: Sequence[str] = tuple(LAYERS),
        methods: Sequence[str] = METHODS,
    ) -> dict[str, dict[str, torch.Tensor]]:
        """Post-processed maps ``[method][layer]`` (N, S, S) of ``network`` on the test images
        ``idx`` of ``seed`` (all by default), explaining each image's label."""
        sd = self.seeds[seed]
        x, y = self._take(sd.test, idx)
        with self._threads():
            raw = cam.compute_many(
                sd.nets[network],
                x,
                list(layers),
                list(methods),
                target=y,
                batch_size=128,
                accelerator=fast.Accelerator(),
            )
        return {
            m: {lay: postprocess(raw[m][lay], x.shape[-2:]).cpu() for lay in layers}
            for m in methods
        }

    def reference_maps(self, seed: int, idx=None) -> torch.Tensor:
        """The reference network's post-processed Grad-CAM++ maps (N, S, S) at ``layer4``."""
        sd = self.seeds[seed]
        x, y = self._take(sd.test, idx)
        with self._threads():
            # full: torchvision's ResNet50 inside its normalisation (lib.models.heads.Normalized)
            layer = (
                f"model.{REFERENCE[1]}"
                if hasattr(sd.reference, "model") and not hasattr(sd.reference, REFERENCE[1])
                else REFERENCE[1]
            )
            raw = cam.compute(sd.reference, x, layer, REFERENCE[0], target=y)
        return postprocess(raw, x.shape[-2:]).cpu()

    def _threads(self):
        return torch_threads(self.threads)

    def _take(self, test: TestSet, idx):
        sel = slice(None) if idx is None else torch.as_tensor(idx)
        return test.images[sel].to(self.device), test.labels[sel].to(self.device)

    # -- scores ---------------------------------------------------------------------------------
    def _score_seed(self, seed: int) -> dict:
        sd = self.seeds[seed]
        n = len(sd.test)
        ref_rows, rows = [], []
        correct = self._correct(seed)
        for lo in range(0, n, self.batch_size):
            idx = list(range(lo, min(lo + self.batch_size, n)))
            truth = sd.test.masks[idx]
            others = sd.test.others[idx] if sd.test.others is not None else None
            ref = self.reference_maps(seed, idx)
            ref_empty = metrics.is_empty(ref)
            masks = reference_masks(ref, self.thresholds)
            iou = mask_iou(masks, truth[None])
            area = masks.flatten(-2).float().mean(-1)
            for j, i in enumerate(idx):
                ref_rows.append(
                    {
                        "image": i,
                        "reference_empty": bool(ref_empty[j]),
                        "iou": _nan_to_none(iou[:, j]),
                        "area": _nan_to_none(area[:, j]),
                        "truth_area": float(truth[j].float().mean()),
                        "other_area": (
                            float(others[j].float().mean()) if others is not None else None
                        ),
                    }
                )
            for net in NETWORKS:
                maps = self.unet_maps(seed, net, idx)
                for m in METHODS:
                    for lay in LAYERS:
                        sc = score_maps(maps[m][lay], masks, truth, others)
                        for j, i in enumerate(idx):
                            s_ref = (
                                sc["s_ref"][:, j]
                                if not ref_empty[j]
                                else torch.full((len(self.thresholds),), float("nan"))
                            )
                            rows.append(
                                {
                                    "network": net,
                                    "layer": lay,
                                    "method": m,
                                    "image": i,
                                    "empty": bool(sc["empty"][j]),
                                    "correct": bool(correct[net][i]),
                                    "s_true": _nan_to_none(sc["s_true"][j : j + 1])[0],
                                    "s_other": _nan_to_none(sc["s_other"][j : j + 1])[0],
                                    "s_ref": _nan_to_none(s_ref),
                                }
                            )
        accuracy = [{"network": k, "top-1": float(v.float().mean())} for k, v in correct.items()]
        return {"reference": ref_rows, "scores": rows, "accuracy": accuracy}

    @torch.no_grad()
    def _correct(self, seed: int) -> dict[str, torch.Tensor]:
        """Per network (and the reference): bool (N,), whether each explained image's label is
        the network's top-1 class."""
        sd = self.seeds[seed]
        x, y = self._take(sd.test, None)
        out = {}
        for name, model in [*sd.nets.items(), ("reference", sd.reference)]:
            with self._threads():
                logits = torch.cat([model(x[i : i + 100]) for i in range(0, len(x), 100)])
            out[name] = (logits.argmax(1) == y).cpu()
        return out

    def store(self):
        """The ResultsStore of this experiment's scores."""
        config = {
            "n_seeds": self.n_seeds,
            "n_images": self.n_images,
            "thresholds": list(self.thresholds),
            "methods": list(METHODS),
            "layers": list(LAYERS),
            "reference": list(REFERENCE),
        }
        data = {s: sd.test.description for s, sd in self.seeds.items()}
        return ResultsStore(CHAPTER, self.profile, config, weights=self.weight_files(), data=data)

    def scores(self) -> "Scores":
        """Every score, computed once per seed and then reloaded from the results store."""
        store = self.store()
        recs = store.run(
            list(self.seeds), self._score_seed, key=lambda s: f"seed{s}", desc="seeds", save_every=1
        )
        return Scores.from_records(recs, self.thresholds)


#: the columns of ``Scores.scores``, in order: one row per (seed, network, layer, method, image,
#: threshold); ``empty``: the map is zero everywhere; ``correct``: the network's top-1 is the
#: label; s as shares (NaN for an empty map or reference)
SCORE_COLUMNS = (
    "seed",
    "network",
    "layer",
    "method",
    "image",
    "empty",
    "correct",
    "threshold",
    "s_ref",
    "s_true",
    "s_other",
)
#: the columns of ``Scores.reference``, in order: one row per (seed, image, threshold)
REFERENCE_COLUMNS = (
    "seed",
    "image",
    "reference_empty",
    "threshold",
    "iou",
    "area",
    "truth_area",
    "other_area",
)


@dataclass
class Scores:
    """The experiment's numbers as tables: ``scores`` one row per (seed, network, layer, method,
    image, threshold) with ``s_ref``, ``s_true`` and ``s_other`` (NaN for an empty map, or where
    the reference is empty) and ``correct`` (the network's top-1 is the label); ``reference`` one row per (seed, image, threshold) with the reference
    mask's IoU with the truth and its area; ``accuracy`` per (seed, network)."""

    scores: pd.DataFrame
    reference: pd.DataFrame
    accuracy: pd.DataFrame
    thresholds: tuple

    @classmethod
    def from_records(cls, recs: pd.DataFrame, thresholds) -> "Scores":
        th = list(thresholds)
        sc, ref, acc = [], [], []
        for _, r in recs.iterrows():
            seed = int(str(r["key"]).removeprefix("seed"))
            for row in r["scores"]:
                for t, v in zip(th, row["s_ref"]):
                    sc.append(
                        (
                            seed,
                            row["network"],
                            row["layer"],
                            row["method"],
                            row["image"],
                            row["empty"],
                            row["correct"],
                            t,
                            _nan(v),
                            _nan(row["s_true"]),
                            _nan(row["s_other"]),
                        )
                    )
            for row in r["reference"]:
                for t, iou, area in zip(th, row["iou"], row["area"]):
                    ref.append(
                        (
                            seed,
                            row["image"],
                            row["reference_empty"],
                            t,
                            iou,
                            area,
                            row["truth_area"],
                            _nan(row["other_area"]),
                        )
                    )
            acc += [{"seed": seed, **a} for a in r["accuracy"]]
        scores = pd.DataFrame(sc, columns=list(SCORE_COLUMNS))
        reference = pd.DataFrame(ref, columns=list(REFERENCE_COLUMNS))
        return cls(scores, reference, pd.DataFrame(acc), tuple(th))


# --------------------------------------------------------------------------- tables and verdicts


def accuracy_table(exp: Experiment, sc: Scores) -> pd.DataFrame:
    """Per network: top-1 accuracy (%) on the trainer's test scenes and on the explained ones,
    mean ± std over seeds (ddof=1). The training's CPU time is in
    :meth:`Experiment.training_table`, not here: timings belong to the cost chapter."""
    tr = exp.training_table()
    tr["network"] = tr["network"].replace({"reference": "reference (ResNet-style)"})
    acc = sc.accuracy.assign(
        network=sc.accuracy["network"].replace({"reference": "reference (ResNet-style)"})
    )
    g, e = tr.groupby("network", sort=False), acc.groupby("network", sort=False)
    out = pd.DataFrame(
        {
            "test top-1 (%)": 100 * g["test accuracy"].mean(),
            "± std": 100 * g["test accuracy"].std(ddof=1),
            "explained scenes top-1 (%)": 100 * e["top-1"].mean(),
            "± std ": 100 * e["top-1"].std(ddof=1),
        }
    )
    out.index.name = "network"
    return out


def reference_quality(sc: Scores) -> pd.DataFrame:
    """Per threshold: mean IoU of the reference mask with the true mask, the reference mask's
    area and the true mask's area (shares of the image), over the seeds' images whose reference
    map is not empty."""
    r = sc.reference[~sc.reference["reference_empty"]]
    g = r.groupby("threshold")
    return pd.DataFrame(
        {
            "IoU with truth": g["iou"].mean(),
            "reference area": g["area"].mean(),
            "true area": g["truth_area"].mean(),
        }
    )


def argued_threshold(sc: Scores) -> float:
    """The threshold at which the reference mask matches the true object best (largest mean IoU
    over seeds and images): chosen from the reference network alone, before any U-Net is
    scored."""
    q = reference_quality(sc)
    return float(q["IoU with truth"].idxmax())


def both_correct(sc: Scores) -> pd.DataFrame:
    """The (seed, image) pairs that both networks of the seed classify correctly."""
    c = sc.scores.drop_duplicates(["seed", "image", "network"]).pivot_table(
        index=["seed", "image"], columns="network", values="correct", aggfunc="first"
    )
    keep = c[list(NETWORKS)].astype(bool).all(axis=1)
    return keep[keep].index.to_frame(index=False)


def seed_means(
    sc: Scores,
    against: str = "reference",
    threshold: float | None = None,
    layer: str = "dec1",
    subset: str = "all",
) -> pd.DataFrame:
    """Mean s (%) per (seed, network, method) over the non-empty maps of ``layer``, against the
    reference at ``threshold``, the true object (``"truth"``) or the distractors
    (``"distractor"``); with the number of maps scored and empty. ``subset="both correct"``
    keeps the images that both networks of the seed classify correctly."""
    d, col = _select(sc, against, threshold, subset)
    d = d[d["layer"] == layer]
    if d.empty:
        raise ValueError(
            f"no scores at threshold {threshold} (thresholds: {sc.thresholds})"
            + (" in this subset" if subset != "all" else "")
        )
    g = d.groupby(["seed", "network", "method"], sort=False)
    return pd.DataFrame(
        {"s": 100 * g[col].mean(), "scored": g[col].count(), "empty": g["empty"].sum()}
    ).reset_index()


def _select(
    sc: Scores, against: str, threshold: float | None, subset: str = "all"
) -> tuple[pd.DataFrame, str]:
    """The score rows of one reference (``against`` at ``threshold``; the true object and the
    distractor at the first threshold, where s_true and s_other repeat) and the column of s."""
    d = sc.scores
    if subset == "both correct":
        d = d.merge(both_correct(sc), on=["seed", "image"])
    elif subset != "all":
        raise ValueError(f"subset must be 'all' or 'both correct', got {subset!r}")
    if against == "reference":
        if threshold is None:
            raise ValueError("give the reference threshold")
        d = d[np.isclose(d["threshold"], threshold)]
        col = "s_ref"
    elif against in ("truth", "distractor"):
        d = d[np.isclose(d["threshold"], sc.thresholds[0])]  # s_true repeats over thresholds
        col = "s_true" if against == "truth" else "s_other"
    else:
        raise ValueError(f"against must be 'reference', 'truth' or 'distractor', got {against!r}")
    if d.empty:
        raise ValueError(
            f"no scores at threshold {threshold} (thresholds: {sc.thresholds})"
            + (" in this subset" if subset != "all" else "")
        )
    return d, col


#: what one unit of a paired verdict is: a test scene of one seed, scored by both maps compared
UNIT = "(seed, scene) pairs"
#: the two maps a skips verdict compares: (network, layer)
UNET, ABLATED = ("U-Net", "dec1"), ("ablated U-Net", "dec1")


def scene_pairs(
    sc: Scores,
    method: str,
    against: str = "reference",
    threshold: float | None = None,
    a: tuple[str, str] = UNET,
    b: tuple[str, str] = ABLATED,
    subset: str = "all",
) -> pd.DataFrame:
    """s (%) of two maps of the same scene, ``a`` and ``b`` (network, layer), for ``method``:
    one row per (seed, scene) with columns ``seed``, ``image``, ``a``, ``b``, and the pairs
    where either map is empty (or the reference is: no s) left out. ``attrs["left out"]``
    counts those."""
    d, col = _select(sc, against, threshold, subset)
    d = d[(d["method"] == method) & d.set_index(["network", "layer"]).index.isin([a, b])]
    w = d.set_index(["seed", "image", "network", "layer"])[col].unstack(["network", "layer"])
    if w.empty or a not in w.columns or b not in w.columns:
        raise ValueError(f"no scores of {a} and {b} for {method!r}")
    out = pd.DataFrame({"a": 100 * w[a], "b": 100 * w[b]}).reset_index()
    keep = out[["a", "b"]].notna().all(axis=1)
    out = out[keep].reset_index(drop=True)
    out.attrs["left out"] = int((~keep).sum())
    return out


def paired_verdict(a, b, rule: str, unit: str = UNIT) -> verdict.Verdict | None:
    """mean(a) − mean(b) > 0 over paired units: ``verdict.paired_difference`` (paired BCa
    bootstrap; undecided with fewer than ``verdict.MIN_UNITS`` pairs); with a single pair, the
    sign test (which cannot decide: undecided); None with no pair."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0:
        return None
    if a.size < 2:
        return verdict.sign_test(a - b, rule=rule, unit=unit)
    return verdict.paired_difference(a, b, 0.0, rule=rule, unit=unit)


def _interval(v: verdict.Verdict | None, digits: int = 1) -> str:
    """The verdict's estimate and interval as the tables show it; "—" with no pair or where a
    sign test (too few pairs) stands in: its estimate is a share, not the quantity shown."""
    if v is None or v.method.startswith("exact sign test"):
        return "—"
    return v.interval_text(digits)


def skips_verdict(
    sc: Scores,
    against: str = "reference",
    threshold: float | None = None,
    layer: str = "dec1",
    subset: str = "all",
) -> pd.DataFrame:
    """Per method, the rule fixed before the run for "the skip connections raise s": the mean
    over (seed, scene) pairs of s(U-Net) − s(ablated U-Net), both maps of the same scene, is
    above 0 (``verdict.paired_difference``: paired BCa bootstrap over the pairs, pooled over
    seeds; the interval covers the scenes drawn, not the training seeds). Columns: the mean s
    of each network over the pairs (%), the difference and its interval (points), the outcome,
    the pairs and those left out (an empty map), the seeds whose mean difference is positive
    (descriptive: three seeds cannot decide), and ``verdict`` (the ``Verdict``)."""
    where = (
        f"the reference at t = {threshold:g}"
        if against == "reference"
        else "the true object mask"
        if against == "truth"
        else "the distractor's mask"
    )
    per_seed = paired_differences(seed_means(sc, against, threshold, layer, subset))
    rows = []
    for m in METHODS:
        p = scene_pairs(sc, m, against, threshold, (UNET[0], layer), (ABLATED[0], layer), subset)
        v = paired_verdict(
            p["a"],
            p["b"],
            rule=f"mean s(U-Net) − s(ablated U-Net) > 0, {METHOD_LABELS[m]} at "
            f"{layer}, against {where}",
        )
        d = per_seed[per_seed["method"] == m]["difference"].dropna()
        rows.append(
            {
                "method": m,
                "U-Net": p["a"].mean() if len(p) else np.nan,
                "ablated U-Net": p["b"].mean() if len(p) else np.nan,
                "difference": (p["a"] - p["b"]).mean() if len(p) else np.nan,
                "95 % interval": _interval(v),
                "outcome": v.outcome if v is not None else "no pair",
                "pairs": len(p),
                "left out": p.attrs["left out"],
                "seeds U-Net higher": f"{int((d > 0).sum())} of {len(d)}",
                "verdict": v,
            }
        )
    return pd.DataFrame(rows)


def correct_subset_table(sc: Scores, threshold: float) -> pd.DataFrame:
    """The comparison of Table I (reference at ``threshold``) and against the true mask, at the
    last decoder layer, on the scenes both networks of a seed classify correctly: per method,
    U-Net and ablated s (%), the paired difference with its interval and outcome
    (:func:`skips_verdict`), the pairs."""
    kept = both_correct(sc).groupby("seed").size()
    rows = []
    if kept.empty:
        return pd.DataFrame(
            [{"M": "—", "method": "no image is classified correctly by both networks of any seed"}]
        )
    for against in ("reference", "truth"):
        v = skips_verdict(sc, against, threshold, subset="both correct")
        where = "true mask" if against == "truth" else f"reference, t = {threshold:g}"
        rows += _page_rows(v, M=where)
    return pd.DataFrame(rows)


def _page_rows(v: pd.DataFrame, **first) -> list[dict]:
    """The rows of a :func:`skips_verdict` table as the page's tables show them, each after the
    columns ``first``: the method's display name, both networks' s, the difference with its
    interval and outcome, the pairs."""
    return [
        {
            **first,
            "method": METHOD_LABELS[r["method"]],
            "U-Net": r["U-Net"],
            "ablated": r["ablated U-Net"],
            "difference": r["difference"],
            "95 % interval": r["95 % interval"],
            "outcome": r["outcome"],
            "pairs": r["pairs"],
        }
        for _, r in v.iterrows()
    ]


def correct_subset_counts(sc: Scores) -> pd.DataFrame:
    """Per seed: the explained images that both networks classify correctly (``kept``) and the
    explained images (``explained``); a seed where none is kept has ``kept`` 0."""
    seeds = sorted(sc.scores["seed"].unique())
    kept = both_correct(sc).groupby("seed").size().reindex(seeds, fill_value=0)
    n = sc.scores.groupby("seed")["image"].nunique().reindex(seeds)
    return pd.DataFrame(
        {"seed": seeds, "kept": kept.to_numpy().astype(int), "explained": n.to_numpy().astype(int)}
    )


def paired_differences(means: pd.DataFrame) -> pd.DataFrame:
    """Per (seed, method): s(U-Net) - s(ablated U-Net) in points, the two networks of a seed
    trained on the same scenes from the same seed (descriptive: the verdicts pair scenes)."""
    w = means.pivot_table(index=["seed", "method"], columns="network", values="s", dropna=False)
    return (w["U-Net"] - w["ablated U-Net"]).rename("difference").reset_index()


def table1(sc: Scores, threshold: float) -> pd.DataFrame:
    """Table I beside the paper's: per network and method, the paper's s (%) and ours at
    ``threshold`` (mean ± std over seeds, ddof=1)."""
    means = seed_means(sc, "reference", threshold)
    g = means.groupby(["network", "method"], sort=False)["s"]
    mean, std = g.mean(), g.std(ddof=1)
    rows = []
    for net in NETWORKS:
        row = {"network": net}
        for m in METHODS:
            row[f"{METHOD_LABELS[m]} paper"] = PAPER_TABLE1[net][m]
            row[f"{METHOD_LABELS[m]} ours"] = mean[(net, m)]
            row[f"{METHOD_LABELS[m]} ± std"] = std[(net, m)]
        rows.append(row)
    return pd.DataFrame(rows)


# -- the size of the gap: "almost 10 % higher" ------------------------------------------------
#: the paper's "localization scores almost 10 % higher for the non-ablated network ... for every
#: CAM method", read as a relative gap (s_U − s_A) / s_A, in %
PAPER_GAP = 10.0
#: the band fixed before the run: 10 ± 5 %, wide enough for the paper's words ("almost 10 %")
#: and for all three of its own Table I gaps (12.0, 15.0, 11.1 %), and no wider
GAP_TOLERANCE = 5.0


def relative_gap(a, b) -> float:
    """(mean(a) − mean(b)) / mean(b), in % (a: the U-Net's s, b: the ablated U-Net's). Undefined
    with no pair or where mean(b) is 0 (every ablated map entirely outside its reference): an
    error naming which (:func:`gap_undefined` says beforehand; the chapter's tables state it)."""
    why = gap_undefined(b)
    if why:
        raise ValueError(f"relative gap: {why}; check gap_undefined(b) first")
    return float(100 * (np.mean(a) - np.mean(b)) / np.mean(b))


def gap_undefined(b) -> str | None:
    """Why the relative gap over the pairs whose ablated s are ``b`` is undefined (no pair, or
    mean s_A = 0: no base to be "% higher" than), or None where it is defined."""
    b = np.asarray(b, float)
    if b.size == 0:
        return "no (seed, scene) pair with both maps non-empty"
    if not np.mean(b) > 0:
        return f"mean s_A = {np.mean(b):g} over {b.size} (seed, scene) pairs, no base for a ratio"
    return None


def paper_gaps() -> pd.DataFrame:
    """The paper's Table I gaps per method: absolute (points) and relative (%)."""
    u, a = PAPER_TABLE1["U-Net"], PAPER_TABLE1["ablated U-Net"]
    return pd.DataFrame(
        {
            "method": list(METHODS),
            "absolute": [u[m] - a[m] for m in METHODS],
            "relative": [relative_gap([u[m]], [a[m]]) for m in METHODS],
        }
    )


def gap_verdict(a, b, method: str, unit: str | None = UNIT) -> verdict.Verdict:
    """The rule fixed before the run for "almost 10 % higher": the relative gap (mean s_U −
    mean s_A) / mean s_A of one method lies within PAPER_GAP ± GAP_TOLERANCE (%)
    (``verdict.within``), its 95 % interval a paired BCa bootstrap of that ratio over the
    pairs (``lib.verdict.relative_gap_within``). ``unit=None`` with one value each
    (the paper's own table): the exact number; fewer than ``lib.verdict.MIN_UNITS`` pairs of
    scenes: undecided (a sign test, which cannot decide); no pair, or mean s_A = 0
    (:func:`gap_undefined`): undecided with no estimate, the reason as its method."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rule = (
        f"relative gap (s_U − s_A) / s_A of {METHOD_LABELS[method]} within "
        f"{PAPER_GAP:g} ± {GAP_TOLERANCE:g} %"
    )
    why = gap_undefined(b)
    if why:  # nothing to be "% higher" than: undecided, stated (never a NaN or an infinity)
        return replace(
            verdict.no_units(rule, f"relative gap undefined: {why}"),
            boundary=PAPER_GAP,
            tolerance=GAP_TOLERANCE,
        )
    if a.size == 1 and unit is None:  # the paper's own table: one exact number per method
        x = relative_gap(a, b)
        return replace(
            verdict.within(None, PAPER_GAP, GAP_TOLERANCE, rule=rule, estimate=x, interval=(x, x)),
            method="the paper's table, exact",
            n=1,
        )
    if a.size < verdict.MIN_UNITS:  # too few scenes decide nothing (as lib.verdict's rules):
        est = relative_gap(a, b)  # the sign test on "inside the band" says so
        return verdict.sign_test(
            [GAP_TOLERANCE - abs(est - PAPER_GAP)],
            rule=rule + f" ({a.size} pairs: too few to decide)",
            unit=unit,
        )
    return verdict.relative_gap_within(a, b, PAPER_GAP, GAP_TOLERANCE, rule=rule, unit=unit)


def floors(sc: Scores, threshold: float) -> pd.DataFrame:
    """Per (seed, scene): the reference mask's area at ``threshold`` (%), the s of a map spread
    evenly over the image: the floor of s against that scene's reference."""
    r = sc.reference[np.isclose(sc.reference["threshold"], threshold)]
    return pd.DataFrame(
        {
            "seed": r["seed"].to_numpy(),
            "image": r["image"].to_numpy(),
            "floor": 100 * r["area"].to_numpy(),
        }
    )


def gap_table(sc: Scores, threshold: float) -> pd.DataFrame:
    """The size of the gap at ``threshold``, per method, beside the paper's: the floor (the
    reference's mean area, %), the mean s of each network over the pairs, the absolute gap
    (points), the relative gap (%) with its interval and the outcome of :func:`gap_verdict`,
    and the floor-normalised gap (s − floor) / (100 − floor) in points of the room above the
    floor (paired difference of the normalised scores; the paper's cannot be computed: it gives
    no floor). ``verdict``: the relative gap's ``Verdict``."""
    fl = floors(sc, threshold)
    paper = paper_gaps().set_index("method")
    rows = []
    for m in METHODS:
        p = scene_pairs(sc, m, "reference", threshold).merge(fl, on=["seed", "image"])
        v = gap_verdict(p["a"], p["b"], m)
        room = 100 - p["floor"]
        norm = paired_verdict(
            100 * (p["a"] - p["floor"]) / room,
            100 * (p["b"] - p["floor"]) / room,
            rule=f"floor-normalised gap of {METHOD_LABELS[m]} > 0",
        )
        rows.append(
            {
                "method": m,
                "floor": p["floor"].mean(),
                "U-Net": p["a"].mean(),
                "ablated U-Net": p["b"].mean(),
                "absolute gap": p["a"].mean() - p["b"].mean(),
                "paper absolute": paper.loc[m, "absolute"],
                "relative gap (%)": (
                    np.nan if gap_undefined(p["b"]) else relative_gap(p["a"], p["b"])
                ),  # undefined: shown "—", stated by gap_facts and the verdict's method
                "95 % interval": _interval(v),
                "paper relative (%)": paper.loc[m, "relative"],
                "outcome": v.outcome,
                "normalised gap": norm.estimate if norm is not None else np.nan,
                "normalised 95 % interval": _interval(norm),
                "pairs": len(p),
                "verdict": v,
            }
        )
    return pd.DataFrame(rows)


def gap_facts(gaps: pd.DataFrame) -> dict[str, Any]:
    """The facts a sentence on the gap's verdict needs, from :func:`gap_table`: ``low`` and
    ``high``, the smallest and largest relative gap (%) among the methods where it is defined
    (None where it is defined for none); ``paper_low`` and ``paper_high``, the paper's; the band
    (``band_low``, ``band_high``, %); ``undefined``, the methods (display names) whose relative
    gap is undefined (:func:`gap_undefined`: their rule is undecided); ``outcome``, the rule over
    every method (holds where every method's does, does not hold where one does not,
    undecided otherwise); ``fails``, the methods whose rule does not hold, and ``side``, where
    their relative gaps lie: "above" or "below" the band when all on one side, else
    "outside"."""
    rel = gaps["relative gap (%)"]
    defined = rel.dropna()
    outcomes = set(gaps["outcome"])
    failing = gaps["outcome"] == verdict.FAILS
    over = rel[failing]
    return {
        "low": float(defined.min()) if len(defined) else None,
        "high": float(defined.max()) if len(defined) else None,
        "paper_low": float(gaps["paper relative (%)"].min()),
        "paper_high": float(gaps["paper relative (%)"].max()),
        "band_low": PAPER_GAP - GAP_TOLERANCE,
        "band_high": PAPER_GAP + GAP_TOLERANCE,
        "undefined": [METHOD_LABELS[m] for m in gaps.loc[rel.isna(), "method"]],
        "outcome": (
            verdict.HOLDS
            if outcomes == {verdict.HOLDS}
            else verdict.FAILS
            if verdict.FAILS in outcomes
            else verdict.UNDECIDED
        ),
        "fails": [METHOD_LABELS[m] for m in gaps.loc[failing, "method"]],
        "side": (
            "above"
            if len(over) and (over > PAPER_GAP).all()
            else "below"
            if len(over) and (over < PAPER_GAP).all()
            else "outside"
        ),
    }


# -- beyond Table I ---------------------------------------------------------------------------
def truth_table(sc: Scores, tables: dict | None = None) -> pd.DataFrame:
    """Per layer and method: s (%) against the true masks, U-Net and ablated U-Net (means over
    the pairs), their paired difference with its interval and outcome (:func:`skips_verdict`;
    from ``tables``, :func:`verdicts`, where given), and the seeds whose mean difference is
    positive."""
    rows = []
    for lay in LAYERS:
        key = {"dec1": "truth", "bottleneck": "bottleneck"}.get(lay)
        v = (
            tables[key]
            if tables is not None and key is not None
            else skips_verdict(sc, "truth", layer=lay)
        )
        seeds = v["seeds U-Net higher"].tolist()
        rows += [
            {**row, "seeds U-Net higher": n}
            for row, n in zip(_page_rows(v, layer=LAYERS[lay]), seeds)
        ]
    return pd.DataFrame(rows)


def selectivity_table(sc: Scores) -> pd.DataFrame:
    """Per layer, network and method: s (%) on the object and on the distractor (mean over
    seeds), and the object's share of the mass the map puts on items, s_object / (s_object +
    s_distractor), beside what a map blind to the class scores: the object's share of the items'
    area (:func:`class_blind_share`)."""
    rows = []
    for lay in LAYERS:
        obj = seed_means(sc, "truth", layer=lay).groupby(["network", "method"], sort=False)["s"]
        dis = seed_means(sc, "distractor", layer=lay).groupby(["network", "method"], sort=False)[
            "s"
        ]
        o, d = obj.mean(), dis.mean()
        for net in NETWORKS:
            for m in METHODS:
                rows.append(
                    {
                        "layer": LAYERS[lay],
                        "network": net,
                        "method": METHOD_LABELS[m],
                        "on the object": o[(net, m)],
                        "on the distractor": d[(net, m)],
                        "object's share": 100 * o[(net, m)] / (o[(net, m)] + d[(net, m)]),
                    }
                )
    return pd.DataFrame(rows)


def class_blind_share(sc: Scores) -> float | None:
    """The object's share (%) of the items' area, averaged over scenes: the object's share of
    the items' mass for a map that covers every item evenly, whatever its class. None where the
    data have no distractor masks (the full profile's folder)."""
    r = sc.reference[np.isclose(sc.reference["threshold"], sc.thresholds[0])]
    if r["other_area"].isna().all():
        return None
    return float(100 * (r["truth_area"] / (r["truth_area"] + r["other_area"])).mean())


def sweep_verdicts(sc: Scores, layer: str = "dec1") -> pd.DataFrame:
    """At every threshold and for every method, the paired verdict of :func:`skips_verdict`
    (s(U-Net) − s(ablated U-Net) over (seed, scene) pairs > 0): one row per (threshold,
    method) with the difference, its interval, the outcome and ``verdict``."""
    d = sc.scores[sc.scores["layer"] == layer]
    w = d.set_index(["threshold", "method", "seed", "image", "network"])["s_ref"].unstack("network")
    rows = []
    for (t, m), g in w.groupby(level=["threshold", "method"], sort=True):
        g = g[[UNET[0], ABLATED[0]]].dropna()
        v = paired_verdict(
            100 * g[UNET[0]],
            100 * g[ABLATED[0]],
            rule=f"mean s(U-Net) − s(ablated U-Net) > 0, {METHOD_LABELS[m]}, "
            f"reference at t = {t:g}",
        )
        rows.append(
            {
                "threshold": float(t),
                "method": m,
                "difference": (100 * (g[UNET[0]] - g[ABLATED[0]])).mean() if len(g) else np.nan,
                "95 % interval": _interval(v),
                "outcome": v.outcome if v is not None else "no pair",
                "verdict": v,
            }
        )
    return pd.DataFrame(rows)


def sweep_verdict(
    sc: Scores, layer: str = "dec1", sweep: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per method: at how many thresholds the paired verdict holds, does not hold, is
    undecided, and the thresholds where it does not hold (``sweep``: :func:`sweep_verdicts`,
    computed if not given)."""
    sweep = sweep_verdicts(sc, layer) if sweep is None else sweep
    rows = []
    for m in METHODS:
        s = sweep[sweep["method"] == m]
        count = s["outcome"].value_counts()
        rows.append(
            {
                "method": m,
                "thresholds": len(s),
                verdict.HOLDS: int(count.get(verdict.HOLDS, 0)),
                verdict.UNDECIDED: int(count.get(verdict.UNDECIDED, 0)),
                verdict.FAILS: int(count.get(verdict.FAILS, 0)),
                "not holding at": ", ".join(
                    f"{t:g}" for t in s.loc[s["outcome"] != verdict.HOLDS, "threshold"]
                )
                or "—",
            }
        )
    return pd.DataFrame(rows)


def sweep_not_holding(sc: Scores, sweep: pd.DataFrame | None = None) -> pd.DataFrame:
    """The thresholds where the paired verdict of the sweep does not hold for some method
    (``sweep``: :func:`sweep_verdicts`, computed if not given): one row per (outcome, threshold),
    outcomes undecided, does not hold and "no pair", thresholds ascending, with the reference
    mask's mean area there (``reference area (%)``); empty where it holds everywhere."""
    sweep = sweep_verdicts(sc) if sweep is None else sweep
    q = reference_quality(sc)
    bad = sweep.loc[sweep["outcome"] != verdict.HOLDS, ["outcome", "threshold"]]
    bad = bad.drop_duplicates().sort_values(["outcome", "threshold"], kind="stable")
    area = [
        100 * float(q.loc[q.index[np.isclose(q.index, t)][0], "reference area"])
        for t in bad["threshold"]
    ]
    return bad.assign(**{"reference area (%)": area}).reset_index(drop=True)


def layer_verdict(sc: Scores, network: str = "U-Net") -> pd.DataFrame:
    """Per method: s (%) against the true mask at the last decoder layer and at the bottleneck
    of ``network`` (means over the (seed, scene) pairs), the paired difference with its
    interval and outcome (rule: mean s(dec1) − s(bottleneck) > 0), and ``verdict``."""
    rows = []
    for m in METHODS:
        p = scene_pairs(sc, m, "truth", a=(network, "dec1"), b=(network, "bottleneck"))
        v = paired_verdict(
            p["a"],
            p["b"],
            rule=f"mean s(dec1) − s(bottleneck) > 0, {network}, "
            f"{METHOD_LABELS[m]}, against the true object mask",
        )
        rows.append(
            {
                "method": m,
                "last decoder layer": p["a"].mean(),
                "bottleneck": p["b"].mean(),
                "difference": (p["a"] - p["b"]).mean() if len(p) else np.nan,
                "95 % interval": _interval(v),
                "outcome": v.outcome if v is not None else "no pair",
                "pairs": len(p),
                "verdict": v,
            }
        )
    return pd.DataFrame(rows)


def verdicts(sc: Scores, threshold: float) -> dict[str, pd.DataFrame | None]:
    """Every verdict table of the chapter, computed once (each paired bootstrap takes a moment):
    ``reference`` and ``truth`` (:func:`skips_verdict` at the last decoder layer),
    ``bottleneck`` (against the truth at the bottleneck), ``gaps`` (:func:`gap_table`),
    ``sweep`` (:func:`sweep_verdicts`), ``layers`` (:func:`layer_verdict`) and ``subset``
    (against the truth on the scenes both networks classify correctly; None if there is none)."""
    return {
        "reference": skips_verdict(sc, "reference", threshold),
        "truth": skips_verdict(sc, "truth"),
        "bottleneck": skips_verdict(sc, "truth", layer="bottleneck"),
        "gaps": gap_table(sc, threshold),
        "sweep": sweep_verdicts(sc),
        "layers": layer_verdict(sc),
        "subset": (
            skips_verdict(sc, "truth", subset="both correct")
            if not both_correct(sc).empty
            else None
        ),
    }


def map_sizes(exp: Experiment, seed: int = 0) -> dict[str, tuple[int, int]]:
    """(h, w) of the raw maps at each layer of :data:`LAYERS`, and of the input."""
    x, y = exp._take(exp.seeds[seed].test, [0])
    raw = cam.compute_many(exp.seeds[seed].nets["U-Net"], x, list(LAYERS), ["gradcam"], target=y)[
        "gradcam"
    ]
    return {"input": tuple(x.shape[-2:]), **{lay: tuple(raw[lay].shape[-2:]) for lay in LAYERS}}


def _require(v: verdict.Verdict | None, what: str, left_out: int | None = None) -> verdict.Verdict:
    """A paired claim's verdict; where no (seed, scene) pair has both maps non-empty (a network
    whose maps are empty on every scene, as an untrained one can give), undecided with no
    estimate and that reason stated (``verdict.no_units``; boundary 0, the paired difference's),
    never a crash or a NaN."""
    if v is not None:
        return v
    why = "no (seed, scene) pair has both maps non-empty" + (
        f" ({left_out} left out for an empty map)" if left_out else ""
    )
    return replace(
        verdict.no_units(f"{what}: mean paired difference of s above 0", why), boundary=0.0
    )


def _versus(a: float, b: float) -> str:
    """ "61.2 vs 55.0", or "no pair" where the means are missing (no pair to average)."""
    return "no pair" if np.isnan(a) or np.isnan(b) else f"{a:.1f} vs {b:.1f}"


def claim_rows(sc: Scores, threshold: float, sizes: dict, tables: dict | None = None) -> list[dict]:
    """The chapter's claims, as keyword arguments of ``lib.report.Claims.add``, each with the
    verdict of a rule fixed here before the run: the map's resolution (a check: it holds by
    construction), Table I per method and the size of its gap, the ordering at every
    threshold, and beyond the paper, against the true masks and full resolution against the
    bottleneck. Every network is a stand-in trained here (tier "stand-in"). ``tables``: the
    :func:`verdicts` of ``sc`` at ``threshold`` (computed if not given)."""
    tables = verdicts(sc, threshold) if tables is None else tables
    stand_in = "the U-Net-style stand-in (48 px scenes, trained here)"
    rows = []
    h, w = sizes["dec1"]
    err = abs(h - sizes["input"][0]) + abs(w - sizes["input"][1])
    rows.append(
        dict(
            claim_id="resolution",
            paper="mascolini",
            where="Section II",
            statement="At the U-Net's last decoder layer a CAM has one value per input "
            "pixel (by construction: the decoder returns to the input's size).",
            paper_value="input resolution",
            ours=f"{h} x {w} for a {sizes['input'][0]} px input (bottleneck "
            f"{sizes['bottleneck'][0]} x {sizes['bottleneck'][1]})",
            kind="check",
            verdict=verdict.check(err, 0, rule="rows + columns of the dec1 map minus the input's"),
            section="The networks",
        )
    )
    for _, v in tables["reference"].iterrows():
        m = v["method"]
        rows.append(
            dict(
                claim_id=f"table1-{m}",
                paper="mascolini",
                where="Table I",
                statement=f"The skip connections raise s for {METHOD_LABELS[m]}: {stand_in} scores "
                "above its skip-less twin against the reference mask (% of the map in "
                "it; mean over scenes of the paired difference, points; the paper: "
                f"{PAPER_TABLE1['U-Net'][m]:.2f} vs {PAPER_TABLE1['ablated U-Net'][m]:.2f} "
                "on ImageNet).",
                paper_value=round(PAPER_TABLE1["U-Net"][m] - PAPER_TABLE1["ablated U-Net"][m], 2),
                ours=_versus(v["U-Net"], v["ablated U-Net"]),
                kind="paper",
                tier="stand-in",
                verdict=_require(v["verdict"], f"table1-{m}", v["left out"]),
                section="Table I",
                digits=1,
            )
        )
    gaps = tables["gaps"]
    key, gv = verdict.all_of(
        {METHOD_LABELS[m]: g for m, g in zip(gaps["method"], gaps["verdict"])},
        f"every method's relative gap within {PAPER_GAP:g} ± {GAP_TOLERANCE:g} %",
    )
    rows.append(
        dict(
            claim_id="table1-gap",
            paper="mascolini",
            where="Section III",
            statement="Almost 10 % higher for every method: the relative gap "
            "(s_U − s_A) / s_A of the stand-in lies within 10 ± 5 % for "
            "every method (interval inside the band).",
            paper_value="almost 10 % (Table I: "
            + ", ".join(f"{g:.1f}" for g in paper_gaps()["relative"])
            + " %)",
            ours=", ".join(
                f"{METHOD_LABELS[m]} "
                + ("undefined (mean s_A = 0 or no pair)" if np.isnan(g) else f"{g:.1f} %")
                for m, g in zip(gaps["method"], gaps["relative gap (%)"])
            )
            + f" (deciding: {key})",
            kind="paper",
            tier="stand-in",
            verdict=gv,
            section="How much higher",
            digits=1,
        )
    )
    sweep = tables["sweep"]
    swv = {
        f"{METHOD_LABELS[r.method]} at t = {r.threshold:g}": r.verdict
        for r in sweep.itertuples()
        if r.verdict is not None
    }
    _, sv = verdict.all_of(swv, "the paired difference above 0 at every (threshold, method)")
    count = sweep["outcome"].value_counts()
    rows.append(
        dict(
            claim_id="every-threshold",
            paper="mascolini",
            where="Table I",
            statement="The U-Net stays above its ablation whatever the reference "
            "threshold (the paper does not give its own): for the stand-in, "
            "the paired difference is above 0 at every threshold, every method.",
            paper_value=None,
            ours=f"holds at {int(count.get(verdict.HOLDS, 0))} of {len(sweep)} "
            f"(threshold, method) pairs, undecided at "
            f"{int(count.get(verdict.UNDECIDED, 0))}, reversed at "
            f"{int(count.get(verdict.FAILS, 0))}"
            + (f", no pair at {int(count['no pair'])}" if count.get("no pair", 0) else ""),
            kind="paper",
            tier="stand-in",
            verdict=sv,
            section="The threshold sweep",
            digits=1,
        )
    )
    for _, v in tables["truth"].iterrows():
        m = v["method"]
        rows.append(
            dict(
                claim_id=f"truth-{m}",
                paper="mascolini",
                where="beyond Table I",
                statement=f"The skip connections raise s for {METHOD_LABELS[m]} against the true "
                f"object mask: {stand_in} above its skip-less twin (paired by scene).",
                paper_value=None,
                ours=_versus(v["U-Net"], v["ablated U-Net"]),
                kind="paper",
                tier="stand-in",
                verdict=_require(v["verdict"], f"truth-{m}", v["left out"]),
                section="Beyond the paper: s against the true object",
                digits=1,
            )
        )
    lv = tables["layers"]
    _, hv = verdict.all_of(
        {METHOD_LABELS[r.method]: _require(r.verdict, "resolution-helps") for r in lv.itertuples()},
        "s(dec1) − s(bottleneck) above 0 for every method",
    )
    rows.append(
        dict(
            claim_id="resolution-helps",
            paper="mascolini",
            where="Section II",
            statement="The full-resolution decoder maps localise the object better "
            "than the bottleneck's: for the stand-in U-Net, against the true "
            "mask, every method (paired by scene).",
            paper_value=None,
            ours=", ".join(
                f"{METHOD_LABELS[r['method']]} {_versus(r['last decoder layer'], r['bottleneck'])}"
                for _, r in lv.iterrows()
            ),
            kind="paper",
            tier="stand-in",
            verdict=hv,
            section="Beyond the paper: s against the true object",
            digits=1,
        )
    )
    return rows


def verdict_facts(v: pd.DataFrame) -> dict[str, Any]:
    """The facts a sentence on a paired verdict table needs (:func:`skips_verdict`,
    :func:`layer_verdict`): the methods (display names) by outcome, ``holds``, ``fails``,
    ``undecided`` and ``no_pair``; ``every``, whether every method holds; ``low`` and ``high``,
    the smallest and largest mean paired difference (points; NaN where no method has a pair)."""
    by = {
        o: [METHOD_LABELS[m] for m, oo in zip(v["method"], v["outcome"]) if oo == o]
        for o in (verdict.HOLDS, verdict.FAILS, verdict.UNDECIDED, "no pair")
    }
    return {
        "holds": by[verdict.HOLDS],
        "fails": by[verdict.FAILS],
        "undecided": by[verdict.UNDECIDED],
        "no_pair": by["no pair"],
        "every": len(by[verdict.HOLDS]) == len(v),
        "low": float(v["difference"].min()),
        "high": float(v["difference"].max()),
    }


def skips_outcome(tables: dict) -> str:
    """The claim "the skip connections raise s" over every method, against the reference and
    against the true object (``tables``: :func:`verdicts`): holds where every one of those
    paired verdicts holds, does not hold where one does not, undecided otherwise (a method
    with no pair included)."""
    outcomes = set(tables["reference"]["outcome"]) | set(tables["truth"]["outcome"])
    if outcomes == {verdict.HOLDS}:
        return verdict.HOLDS
    return verdict.FAILS if verdict.FAILS in outcomes else verdict.UNDECIDED


def for_page(df: pd.DataFrame) -> pd.DataFrame:
    """A verdict table as the reader sees it: methods by their display names, the ``verdict``
    objects dropped."""
    out = df.drop(columns=[c for c in ("verdict",) if c in df]).copy()
    if "method" in out:
        out["method"] = out["method"].map(lambda m: METHOD_LABELS.get(m, m))
    return out.rename(columns={"seeds U-Net higher": "seeds where U-Net is higher"})


def uniform_baseline(sc: Scores, threshold: float) -> dict[str, float]:
    """s (%) of a map spread evenly over the image: the reference mask's mean area at
    ``threshold`` and the true mask's mean area."""
    q = reference_quality(sc)
    t = q.index[np.isclose(q.index, threshold)][0]
    return {"reference": 100 * q.loc[t, "reference area"], "truth": 100 * q.loc[t, "true area"]}


# --------------------------------------------------------------------------- figures


def plot_sweep(sc: Scores, threshold: float):
    """s (%) against the reference threshold, one panel per method: U-Net and ablated U-Net at the
    last decoder layer (solid) and the bottleneck (dashed), mean and its sd band over seeds
    (seaborn); the argued threshold marked; a map spread evenly scores the grey line."""
    # lazy: seaborn costs ~1.5 s to import; only this figure needs it
    import seaborn as sns

    d = (
        sc.scores.groupby(["seed", "network", "layer", "method", "threshold"], sort=False)["s_ref"]
        .mean()
        .mul(100)
        .rename("s (%)")
        .reset_index()
    )
    d["layer"] = d["layer"].map(LAYERS)
    q = reference_quality(sc)
    fig, axes = plt.subplots(1, len(METHODS), figsize=(7.5, 3.0), sharey=True)
    for ax, m in zip(axes, METHODS):
        sns.lineplot(
            data=d[d["method"] == m],
            x="threshold",
            y="s (%)",
            hue="network",
            style="layer",
            errorbar="sd",
            ax=ax,
            legend=ax is axes[-1],
            hue_order=list(NETWORKS),
            style_order=list(LAYERS.values()),
        )
        ax.plot(q.index, 100 * q["reference area"], color="grey", lw=1, ls=":")
        ax.axvline(threshold, color="black", lw=0.8, ls="--")
        ax.set_title(METHOD_LABELS[m])
        ax.set_xlabel("reference threshold t")
    axes[-1].legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_table1(sc: Scores, threshold: float):
    """Table I as a figure: per method, the paper's s (%) (open diamond, ImageNet) and ours
    against the reference at ``threshold`` (filled dot: mean over seeds, whisker: ± sd over
    seeds, ddof=1; none with one seed), the U-Net and the ablated U-Net side by side; the grey
    dotted line is what a map spread evenly over the image scores here."""
    means = seed_means(sc, "reference", threshold)
    g = means.groupby(["network", "method"], sort=False)["s"]
    mean, std = g.mean(), g.std(ddof=1)
    colours = dict(zip(NETWORKS, ("#0969da", "#bc4c00")))
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for j, net in enumerate(NETWORKS):
        off = -0.14 if j == 0 else 0.14
        xs = np.arange(len(METHODS)) + off
        ours = [mean.get((net, m), np.nan) for m in METHODS]
        sd = [std.get((net, m), np.nan) for m in METHODS]
        ours_and_paper(
            ax,
            xs,
            ours,
            sd,
            [PAPER_TABLE1[net][m] for m in METHODS],
            colours[net],
            f"{net}, ours (mean ± sd over seeds)",
            f"{net}, paper (ImageNet)",
            ms=6,
        )
    ax.axhline(
        uniform_baseline(sc, threshold)["reference"],
        color="grey",
        ls=":",
        lw=1,
        label="a map spread evenly (here)",
    )
    ax.set_xticks(range(len(METHODS)), [METHOD_LABELS[m] for m in METHODS])
    ax.set_xlim(-0.5, len(METHODS) - 0.5)
    ax.set_ylabel("s against the reference (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_sweep_verdicts(sweep: pd.DataFrame):
    """The paired verdict of Table I at every threshold (``sweep_verdicts``): per method, the
    mean of s(U-Net) − s(ablated U-Net) over the (seed, scene) pairs (points) with its 95 %
    interval shaded, each threshold's marker coloured and shaped by its outcome; zero dashed."""
    marks = {verdict.HOLDS: "o", verdict.FAILS: "X", verdict.UNDECIDED: "s"}
    fig, axes = plt.subplots(1, len(METHODS), figsize=(7.5, 2.9), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), METHODS):
        d = sweep[sweep["method"] == m].sort_values("threshold")
        # a sign test (too few pairs) decides on a share, not on points: no interval drawn
        shown = [v is not None and not v.method.startswith("exact sign test") for v in d["verdict"]]
        lo = [v.low if ok else np.nan for v, ok in zip(d["verdict"], shown)]
        hi = [v.high if ok else np.nan for v, ok in zip(d["verdict"], shown)]
        ax.fill_between(d["threshold"], lo, hi, color="0.8", lw=0)
        ax.plot(d["threshold"], d["difference"], color="0.3", lw=1)
        for o, mk in marks.items():
            e = d[d["outcome"] == o]
            ax.plot(
                e["threshold"],
                e["difference"],
                mk,
                ls="none",
                ms=5,
                color=verdict.OUTCOME_COLOURS[o],
            )
        ax.axhline(0, color="black", lw=0.8, ls="--")
        ax.set_title(METHOD_LABELS[m])
        ax.set_xlabel("reference threshold t")
    np.atleast_1d(axes)[0].set_ylabel("U-Net − ablated (points)")
    handles = [
        Line2D([], [], marker=mk, ls="none", color=verdict.OUTCOME_COLOURS[o], label=o)
        for o, mk in marks.items()
    ]
    handles.append(mpl.patches.Patch(color="0.8", label="95 % interval"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        fontsize=9,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_reference(sc: Scores, threshold: float):
    """The reference mask against the truth across thresholds: mean IoU with the true mask, the
    reference's area and the true mask's area (shares of the image)."""
    q = reference_quality(sc)
    fig, ax = plt.subplots(figsize=(5.0, 2.6))
    ax.plot(q.index, q["IoU with truth"], marker="o", ms=3, label="IoU(reference, true mask)")
    ax.plot(q.index, q["reference area"], ls="--", label="reference area / image")
    ax.axhline(q["true area"].iloc[0], color="grey", ls=":", label="true mask area / image")
    ax.axvline(threshold, color="black", lw=0.8, ls="--")
    ax.set_xlabel("reference threshold t")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


def _outline(ax, mask, color, ls="-"):
    m = np.asarray(mask, dtype=float)
    if m.any() and not m.all():
        ax.contour(m, levels=[0.5], colors=[color], linewidths=1.0, linestyles=ls)


def _grid(images, columns: dict[str, torch.Tensor], truth, ref_mask, size: float = 1.05):
    """Rows of images: the image with the true mask (lime) and the reference mask (white,
    dashed) outlined, then one map per column, over the image, with both outlines."""
    n, ncol = len(images), len(columns) + 1
    cell = min(size, 7.2 / ncol)
    fig, axes = plt.subplots(n, ncol, figsize=(cell * ncol, cell * n + 0.55), squeeze=False)
    for i in range(n):
        img = images[i, 0].numpy() if images.shape[1] == 1 else images[i].permute(1, 2, 0).numpy()
        overlay(axes[i, 0], img, title="scene" if i == 0 else None)
        for j, (title, maps) in enumerate(columns.items(), start=1):
            overlay(axes[i, j], img, maps[i], alpha=0.55, title=title if i == 0 else None, vmax=1.0)
        for ax in axes[i]:
            _outline(ax, truth[i], "lime")
            _outline(ax, ref_mask[i], "white", "--")
    fig.tight_layout()
    shared_colorbar(
        fig,
        "map (min-max); lime: true object mask; white dashed: reference mask",
        axes=axes.ravel(),
    )
    return fig


def plot_maps(exp: Experiment, seed: int, n_show: int, threshold: float):
    """The maps of both networks side by side at the last decoder layer, per method, on the
    first ``n_show`` test images of ``seed``."""
    idx = list(range(min(n_show, exp.n_images)))
    sd = exp.seeds[seed]
    maps = {net: exp.unet_maps(seed, net, idx, layers=["dec1"]) for net in NETWORKS}
    cols = {}
    for m in METHODS:
        for net in NETWORKS:
            short = "U-Net" if net == "U-Net" else "ablated"
            cols[f"{METHOD_LABELS[m]}\n{short}"] = maps[net][m]["dec1"]
    ref = exp.reference_maps(seed, idx)
    return _grid(sd.test.images[idx], cols, sd.test.masks[idx], ref > threshold)


def plot_layers(
    exp: Experiment, seed: int, n_show: int, threshold: float, method: str = "gradcam++"
):
    """``method`` at the bottleneck and at the last decoder layer of both networks, beside the
    reference map itself."""
    idx = list(range(min(n_show, exp.n_images)))
    sd = exp.seeds[seed]
    ref = exp.reference_maps(seed, idx)
    cols = {"reference\n(ResNet-style)": ref}
    for net in NETWORKS:
        maps = exp.unet_maps(seed, net, idx, methods=[method])[method]
        short = "U-Net" if net == "U-Net" else "ablated"
        cols[f"{short}\nbottleneck"] = maps["bottleneck"]
        cols[f"{short}\ndec1"] = maps["dec1"]
    return _grid(sd.test.images[idx], cols, sd.test.masks[idx], ref > threshold)
