"""The "walls: experiments" chapter (Taimeskhanov et al., Section 3: Taimeskhanov, Sicre, Garreau,
*CAM-based methods can see through walls*): the masked VGG, STACK-MIX and Table 1's mu (Eq. 7)
for seven CAM methods, and a wall built into a pretrained EfficientNet-Lite0.

The paper's numbers (Table 1, Figure 5's accuracies), the profile's sizes, the full profile's
data check (the authors' weights and STACK-MIX / STACK-GEN folders), the scoring of a batch and
the tables live here; the chapter calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from torch import nn

import lib.cam
from lib import fast, verdict
from lib.data.errors import DataMissingError
from lib.data.fashion_mnist import CLASSES
from lib.data.images import IMAGENET_MEAN, IMAGENET_STD, normalize_imagenet
from lib.data.needs import Need, require
from lib.data.stack_folders import WHERE, load_stack_folder, stack_folder_dir
from lib.data.stackmix import stack_mix
from lib.formatting import mean_std
from lib.metrics import dead_zone_ratio, is_empty
from lib.models.masked_vgg import AUTHORS_WEIGHTS_URL, load_authors_weights
from lib.models.masked_vgg import PAPER_DEAD_ROWS as _PAPER_DEAD_ROWS
from lib.models.pretrained import LITE0_MEAN, LITE0_STD, imagenet_categories
from lib.models.walled import WalledModel
from lib.plot import METHOD_LABELS, as_image, mark_dead_zone, method_grid
from lib.results import ResultsStore
from lib.rf import dead_zone
from lib.train import load_data, recipe_path

__all__ = [
    "SIZES",
    "COST",
    "TABLE1_METHODS",
    "EIGEN_OURS",
    "EIGEN_SIGNS",
    "PAPER_TABLE1",
    "PAPER_ACCURACY",
    "PAPER_EPOCHS",
    "PAPER_IMAGES",
    "PAPER_DEAD_ROWS",
    "PAPER_MODEL",
    "STAND_IN",
    "RECIPES",
    "authors_files",
    "check_data",
    "Table1Data",
    "table1_data",
    "masked_zone_rows",
    "wall_scores",
    "score_batch",
    "run_table1",
    "table1_stats",
    "table1",
    "ordering_verdict",
    "eigen_sign_summary",
    "table1_claims",
    "add_table1_claims",
    "mean_std_text",
    "leak_values",
    "paired_leaks",
    "paper_order",
    "ordering_claim",
    "method_label",
    "hirescam_error",
    "add_dead_zone_claim",
    "dataset_summary",
    "plot_training",
    "plot_examples",
    "figure7",
    "accuracy_table",
    "lite0_dead_zone_table",
    "lite0_predictions",
    "lite0_scores",
    "plot_lite0",
]

#: Table 1's methods, in the paper's order. "eigencam" is scored as the paper's tool computes it.
TABLE1_METHODS = [
    "gradcam",
    "gradcam++",
    "xgradcam",
    "scorecam",
    "ablationcam",
    "eigencam",
    "hirescam",
]
#: Eigen-CAM with this library's sign convention, scored beside the paper's (not in the paper).
EIGEN_OURS = "eigencam (sign: channel sum)"
#: lib.cam's Eigen-CAM sign option per row: the SVD's sign as returned (pytorch-grad-cam, the
#: paper's protocol) and ours (the first component correlated with the channel sum).
EIGEN_SIGNS = {"eigencam": "svd", EIGEN_OURS: "sum"}


def method_label(method: str) -> str:
    """A method's name as a reader reads it (``"gradcam++"`` -> ``"Grad-CAM++"``), our
    Eigen-CAM sign convention included; an unknown key is returned as it is."""
    if method == EIGEN_OURS:
        return "Eigen-CAM (sign: channel sum)"
    return METHOD_LABELS.get(method, method)


#: Taimeskhanov et al., Table 1: 100 * mu, mean and standard deviation over 100 images per data set.
PAPER_TABLE1 = {
    "STACK-MIX": {
        "gradcam": (22.7, 13.4),
        "gradcam++": (28.8, 8.1),
        "xgradcam": (23.8, 9.0),
        "scorecam": (19.9, 10.3),
        "ablationcam": (21.0, 9.9),
        "eigencam": (51.7, 19.7),
        "hirescam": (0.0, 0.0),
    },
    "STACK-GEN": {
        "gradcam": (21.6, 11.6),
        "gradcam++": (28.5, 7.9),
        "xgradcam": (22.8, 9.0),
        "scorecam": (18.5, 10.6),
        "ablationcam": (20.8, 9.6),
        "eigencam": (55.8, 21.6),
        "hirescam": (0.0, 0.0),
    },
}
#: Taimeskhanov et al., Figure 5 and Section 3.1: ImageNet validation accuracy (%), after 90 epochs.
PAPER_ACCURACY = {
    "masked": {"top-1": 66.5, "top-5": 87.0},
    "unmasked": {"top-1": 71.5, "top-5": 90.4},
}
PAPER_EPOCHS = 90
PAPER_IMAGES = 100  # images per data set in Table 1
#: Section 3.1's dead rows of the masked VGG16 (``lib.models.masked_vgg.PAPER_DEAD_ROWS``)
PAPER_DEAD_ROWS = _PAPER_DEAD_ROWS
PAPER_MODEL = "VGG16 (paper): masked [VGG], ImageNet, 224 px"
#: What stands in for the paper's model in the default profile, and its recipes (lib.train).
STAND_IN = "VGG-style, 64 px, trained here on Fashion-MNIST"
RECIPES = {"masked": "masked_vgg_fmnist64", "unmasked": "unmasked_vgg_fmnist64"}

#: The chapter's sizes per profile (``lib.notebook.setup(profile, sizes=SIZES, ...)``).
SIZES = {
    "n_per_class": {"smoke": 1, "default": 10, "full": 10},
    "n_photos": {"smoke": 1, "default": 8, "full": 8},
    "lite0_masked_rows": {"smoke": 3, "default": 3, "full": 3},
    "lite0_methods": {
        "smoke": ["gradcam", "hirescam"],
        "default": [
            "gradcam",
            "gradcam++",
            "xgradcam",
            "eigencam",
            EIGEN_OURS,
            "ablationcam",
            "hirescam",
        ],
        "full": TABLE1_METHODS + [EIGEN_OURS],
    },
    "lite0_sweep": {"smoke": (3, 6), "default": tuple(range(7)), "full": tuple(range(7))},
    "n_show": {"smoke": 2, "default": 4, "full": 4},
    "stackmix_pool": {"smoke": 2000, "default": 2000, "full": None},
}
#: the run time per profile, measured (``lib.notebook.setup`` prints it above the run)
COST = {
    "smoke": "about 15 seconds on a CPU",
    "default": "about 15 seconds on a 2-core CPU with the committed models",
    "full": "about an hour on one GPU (the authors' VGG16 at 224 px on STACK-MIX and STACK-GEN)",
}
BATCH = 10  # images per record of the results store


# --------------------------------------------------------------------------- data and models


def authors_files(data_root) -> tuple[Path, dict[str, Path]]:
    """The full profile's inputs: the authors' masked VGG16 weights and their STACK-MIX /
    STACK-GEN folders under ``data_root``. Raises one DataMissingError listing everything that
    is missing, with where to get it (before any long computation starts)."""
    root = Path(data_root) if data_root is not None else None
    candidates = (
        [root / "stack" / "params_vgg16_masked.pt", root / "params_vgg16_masked.pt"]
        if root is not None
        else []
    )
    weights = next((p for p in candidates if p.is_file()), None)
    missing = []
    if weights is None:
        missing.append(
            str(candidates[0])
            if root is not None
            else "DATA_ROOT/stack/params_vgg16_masked.pt (data_root is None)"
        )
    folders = {}
    for kind in ("stackmix", "stackgen"):
        folder = stack_folder_dir(root, kind) if root is not None else None
        if folder is None or not folder.is_dir() or not any(folder.iterdir()):
            missing.append(
                f"{folder if folder is not None else 'DATA_ROOT/stack/' + kind}/*.png|jpg"
            )
        folders[kind] = folder
    if missing:
        raise DataMissingError(
            "Taimeskhanov et al.'s masked VGG and STACK-MIX / STACK-GEN",
            missing,
            f"weights: {AUTHORS_WEIGHTS_URL}, put in DATA_ROOT/stack/; images: {WHERE}",
        )
    return weights, folders


def check_data(profile: str, data_root) -> None:
    """Fail at the start, not after an hour: on the full profile, one table of everything it
    needs (the authors' weights, STACK-MIX, STACK-GEN; ``lib.data.needs.require``) and one error
    naming every missing row."""
    if profile != "full":
        return
    root = Path(data_root) if data_root is not None else None
    weights = None
    if root is not None:
        candidates = [root / "stack" / "params_vgg16_masked.pt", root / "params_vgg16_masked.pt"]
        weights = next((p for p in candidates if p.is_file()), candidates[0])
    needs = [
        Need.file(
            "Taimeskhanov et al.'s masked VGG16 weights (params_vgg16_masked.pt)",
            weights,
            f"{AUTHORS_WEIGHTS_URL}, put in DATA_ROOT/stack/",
        )
    ]
    for kind, label in (("stackmix", "STACK-MIX"), ("stackgen", "STACK-GEN")):
        folder = stack_folder_dir(root, kind) if root is not None else None
        need = Need.file(f"{label} images (a folder of .png / .jpg)", folder, WHERE, folder=True)
        need.present = need.present and any(folder.iterdir())
        needs.append(need)
    require("the walls experiments chapter", needs)
    authors_files(data_root)


@dataclass
class Table1Data:
    """The model Table 1 explains and its data sets: ``datasets[name] = (images, labels)`` as the
    model takes them (normalised); ``show_mean`` / ``show_std`` undo that for display."""

    model: nn.Module
    model_name: str
    datasets: dict[str, tuple[torch.Tensor, torch.Tensor]]
    weights: list[Path]
    show_mean: tuple | None = None
    show_std: tuple | None = None
    stack_mix: object = None  # the StackMix built here (default and smoke profiles)
    data_identity: dict = field(default_factory=dict)


def table1_data(
    profile: str,
    data_root,
    device,
    masked: nn.Module | None = None,
    n_per_class: int = 10,
    pool: int | None = 2000,
    seed: int = 0,
) -> Table1Data:
    """``full``: the authors' masked VGG16 and their STACK-MIX and STACK-GEN (ImageNet
    normalisation, assumed as for torchvision's VGG16). Otherwise ``masked`` (the stand-in) and
    STACK-MIX (Eq. 6) built from the first ``pool`` Fashion-MNIST test images, split at the
    stand-in's first dead row, ``n_per_class`` images per class."""
    if profile == "full":
        weights, _ = authors_files(data_root)
        model = load_authors_weights(weights).to(device).eval()
        datasets = {}
        for kind, label in (("stackmix", "STACK-MIX"), ("stackgen", "STACK-GEN")):
            s = load_stack_folder(data_root, kind, size=model.input_size)
            datasets[label] = (normalize_imagenet(s.images), s.labels)
        return Table1Data(
            model,
            "authors' masked VGG16 (ImageNet, 224 px)",
            datasets,
            [weights],
            IMAGENET_MEAN,
            IMAGENET_STD,
            data_identity={k: len(v[0]) for k, v in datasets.items()},
        )

    if masked is None:
        raise ValueError("give the stand-in model (masked=...) for the default and smoke profiles")
    fm64 = load_data("fashion_mnist@64", data_root)
    n = len(fm64.x_test) if pool is None else pool
    sm = stack_mix(
        fm64.prepare(fm64.x_test[:n]),
        fm64.y_test[:n],
        split_row=dead_zone(masked).first,
        n_per_class=n_per_class,
        seed=seed,
    )
    return Table1Data(
        masked,
        f"{STAND_IN} (stand-in for the paper's VGG16)",
        {"STACK-MIX": (sm.images, sm.labels)},
        [recipe_path(RECIPES["masked"])],
        stack_mix=sm,
        data_identity={
            "fashion_mnist@64 test[:n]": n,
            "n_per_class": n_per_class,
            "seed": seed,
            "split_row": sm.split_row,
        },
    )


# --------------------------------------------------------------------------- Table 1


def masked_zone_rows(n_rows: int, masked_rows: int, size: int) -> slice:
    """Rows of a ``size``-row up-sampled map (bilinear, align_corners=False, as in the CAM
    post-processing) that receive no weight from a visible feature row: the image of the
    ``masked_rows`` masked rows of an ``n_rows``-row map. Computed by up-sampling the row mask."""
    if not 0 < masked_rows < n_rows:
        raise ValueError(f"masked_rows must be in (0, {n_rows}), got {masked_rows}")
    visible = torch.zeros(1, 1, n_rows, 1, dtype=torch.float64)
    visible[..., : n_rows - masked_rows, :] = 1
    up = F.interpolate(visible, size=(size, 1), mode="bilinear", align_corners=False)[0, 0, :, 0]
    dead = torch.nonzero(up == 0).flatten()
    if dead.numel() == 0:
        return slice(size, size)
    return slice(int(dead[0]), size)


def _raw_maps(model, x, layer, methods, target, batch_size) -> dict[str, torch.Tensor]:
    """Raw maps (N, h, w) per method name, from one shared pass (:func:`lib.cam.compute_many`);
    the Eigen-CAM rows with their sign convention (:data:`EIGEN_SIGNS`)."""
    engine = [m for m in methods if m not in EIGEN_SIGNS or m == "eigencam"]
    out = {}
    if engine:
        maps = lib.cam.compute_many(
            model,
            x,
            [layer],
            engine,
            target=target,
            batch_size=batch_size,
            accelerator=fast.Accelerator(),
            options={"eigencam": {"sign": EIGEN_SIGNS["eigencam"]}},
        )
        out.update({m: next(iter(maps[m].values())) for m in engine})
    for m in methods:
        if m not in out:
            out[m] = lib.cam.compute(
                model,
                x,
                layer,
                "eigencam",
                target=target,
                options={"eigencam": {"sign": EIGEN_SIGNS[m]}},
            )
    return {m: out[m].detach().float().cpu() for m in methods}


def wall_scores(
    model: nn.Module,
    x: torch.Tensor,
    layer: nn.Module | str,
    methods,
    dead_rows: slice,
    feature_masked_rows: int,
    target=None,
    batch_size: int = 64,
) -> dict[str, dict[str, torch.Tensor]]:
    """Per image and per method, how much of a CAM falls where the model cannot look.

    For each method, from one raw map (N, h, w) at ``layer`` (:func:`lib.cam.compute`;
    "eigencam" with the SVD's sign as pytorch-grad-cam returns it, :data:`EIGEN_OURS` with the
    library's sign): ``mu_pgc``: mu of Eq. 7 over the input rows ``dead_rows`` of the map
    post-processed as the paper (pytorch-grad-cam: ReLU, per-image min-max, bilinear to the input
    size); ``mu_relu``: the same on relu(raw) up-sampled without normalisation; ``mu_feature``:
    Eq. 7 at the layer's own resolution over the last ``feature_masked_rows`` rows;
    ``max_feature``: max |raw| over those rows (exactly 0 for a map that ignores them);
    ``empty``: the map is zero everywhere after ReLU, so it has no mass to place and its three
    mu are NaN (never 0). Also ``pred``: the predicted class. Values are fractions (x100 for the
    paper's table). Returns ``{method: {name: tensor (N,)}}`` plus ``{"pred": ...}``.
    """
    methods = [methods] if isinstance(methods, str) else list(methods)
    size = tuple(x.shape[-2:])
    raws = _raw_maps(model, x, layer, methods, target, batch_size)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for m, raw in raws.items():
        h = raw.shape[-2]
        if not 0 < feature_masked_rows < h:
            raise ValueError(
                f"feature_masked_rows={feature_masked_rows} must be in (0, {h}) for "
                f"the {h}-row map of layer {layer!r}"
            )
        feat = slice(h - feature_masked_rows, h)
        relu = raw.clamp(min=0)
        pgc = lib.cam.postprocess(raw, size, preset=lib.cam.PGC_PRESET)
        relu_up = lib.cam.postprocess(raw, size, relu=True, mode="bilinear", normalize="none")
        out[m] = {
            "mu_pgc": dead_zone_ratio(pgc, dead_rows, empty="nan"),
            "mu_relu": dead_zone_ratio(relu_up, dead_rows, empty="nan"),
            "mu_feature": dead_zone_ratio(relu, feat, empty="nan"),
            "max_feature": raw[:, feat].abs().flatten(1).amax(1),
            "empty": is_empty(relu),
        }
    if all(m in raws for m in EIGEN_SIGNS):
        # the two conventions differ by the sign of the whole map, image by image
        a, b = (raws[m].flatten(1).double() for m in EIGEN_SIGNS)
        out["eigencam sign"] = {"differs": (a * b).sum(1) < 0}
    with torch.no_grad():
        out["pred"] = {"class": model(x).argmax(1).cpu()}
    return out


def score_batch(
    model: nn.Module, x: torch.Tensor, first_index: int, dead_rows: slice, methods=None
) -> dict:
    """One results-store record: :func:`wall_scores` of the images ``x`` (indices from
    ``first_index``) at ``model.target_layer``, flattened to ``{"method|score": list}``."""
    methods = TABLE1_METHODS + [EIGEN_OURS] if methods is None else list(methods)
    r = wall_scores(model, x, model.target_layer, methods, dead_rows, model.masked_rows)
    rec = {"index": list(range(first_index, first_index + len(x))), "pred": r["pred"]["class"]}
    for m in methods:
        for k, v in r[m].items():
            rec[f"{m}|{k}"] = v
    if "eigencam sign" in r:
        rec["eigencam sign differs"] = r["eigencam sign"]["differs"]
    return rec


SCORES = ("mu_pgc", "mu_relu", "mu_feature", "max_feature", "empty")


def run_table1(
    data: Table1Data, profile: str, config: dict, device, methods=None, batch: int = BATCH
) -> pd.DataFrame:
    """Score every image of every data set (results store: an interrupted run resumes, a
    finished one is read back) and return one row per (data set, image, method)."""
    methods = TABLE1_METHODS + [EIGEN_OURS] if methods is None else list(methods)
    model = data.model
    dead = dead_zone(model).as_slice()
    store = ResultsStore(
        "05_walls_experiments",
        profile,
        {
            **config,
            "model": data.model_name,
            "dead": [dead.start, dead.stop],
            "methods": methods,
            "batch": batch,
            "datasets": {k: len(v[0]) for k, v in data.datasets.items()},
        },
        weights=data.weights,
        data=data.data_identity,
    )
    items = [
        (name, i0) for name, (xs, _) in data.datasets.items() for i0 in range(0, len(xs), batch)
    ]

    def one(item):
        name, i0 = item
        xs = data.datasets[name][0][i0 : i0 + batch].to(device)
        return score_batch(model, xs, i0, dead, methods)

    rec = store.run(items, one, key=lambda it: f"{it[0]}:{it[1]}", desc="Table 1")
    rows = []
    for _, r in rec.iterrows():
        name = r["key"].rsplit(":", 1)[0]
        differs = r.get("eigencam sign differs")
        for j, idx in enumerate(r["index"]):
            for m in methods:
                rows.append(
                    {
                        "dataset": name,
                        "image": idx,
                        "method": m,
                        **{k: r[f"{m}|{k}"][j] for k in SCORES},
                        "eigen sign differs": None if differs is None else bool(differs[j]),
                    }
                )
    per_image = pd.DataFrame(rows)
    per_image["empty"] = per_image["empty"].astype(bool)
    n_expected = {k: len(v[0]) for k, v in data.datasets.items()}
    n_found = per_image.groupby("dataset")["image"].nunique().to_dict()
    if n_found != n_expected:
        raise RuntimeError(
            f"the results store holds {n_found} images per data set, expected "
            f"{n_expected}: delete its folder ({store.path}) and rerun"
        )
    for k in ("mu_pgc", "mu_relu", "mu_feature"):
        if not per_image[k].isna().equals(per_image["empty"]):
            raise RuntimeError(f"{k} is NaN on other images than the empty maps")
    return per_image


def _std(s: pd.Series) -> float:
    # the authors' spread: sample standard deviation (ddof = 1); one image has none
    return float(s.std(ddof=1)) if s.count() > 1 else float("nan")


def table1_stats(per_image: pd.DataFrame, dataset: str, score: str = "mu_pgc") -> pd.DataFrame:
    """Numbers of Table 1 for one data set, one row per method: 100 * mean, std (ddof = 1) and
    standard error of ``score`` over the non-empty maps, how many maps are empty, the paper's
    mean and std, and ``z``: (ours - paper) over the two means' combined standard error (the
    paper's from its std over its :data:`PAPER_IMAGES` images)."""
    d = per_image[per_image.dataset == dataset]
    paper = PAPER_TABLE1.get(dataset, {})
    rows = {}
    for m, g in d.groupby("method", sort=False):
        ok = g[~g["empty"]][score]
        mean, std = (100 * float(ok.mean()) if len(ok) else float("nan")), 100 * _std(ok)
        p_mean, p_std = paper.get(m, (np.nan, np.nan))
        se = std / np.sqrt(len(ok)) if len(ok) > 1 else np.nan
        se_both = np.hypot(se, p_std / np.sqrt(PAPER_IMAGES))
        rows[m] = {
            "mean": mean,
            "std": std,
            "se": se,
            "n": len(g),
            "empty": int(g["empty"].sum()),
            "paper mean": p_mean,
            "paper std": p_std,
            "z": np.nan
            if np.isnan(p_mean)
            else (
                (mean - p_mean) / se_both if se_both > 0 else (0.0 if mean == p_mean else np.inf)
            ),
        }
    return pd.DataFrame(rows).T.astype({"n": int, "empty": int})


def _pm(mean: float, std: float) -> str:
    return mean_std(mean, std, 1, "one image")


def mean_std_text(values) -> str:
    """ "mean ± std" (ddof = 1, as the authors) of a 1-D tensor or array; one value has no std."""
    v = np.asarray(torch.as_tensor(values).double().cpu())
    return _pm(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"))


def table1(per_image: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Table 1 for one data set as the chapter shows it: ours beside the paper's, μ × 100 as
    mean ± std (ddof = 1) over the maps that are not empty, with the count of empty maps."""
    s = {k: table1_stats(per_image, dataset, k) for k in ("mu_pgc", "mu_relu", "mu_feature")}
    p = s["mu_pgc"]
    t = pd.DataFrame(index=[method_label(m) for m in p.index])
    t.index.name = "method"
    t["ours: μ × 100, paper's post-processing"] = [_pm(a, b) for a, b in zip(p["mean"], p["std"])]
    t["empty maps (left out)"] = [f"{e} of {n}" for e, n in zip(p["empty"], p["n"])]
    t["paper's Table 1"] = [_pm(a, b) for a, b in zip(p["paper mean"], p["paper std"])]
    t["ours: mean, 95 % interval"] = [
        _mean_interval(leak_values(per_image, dataset, m)) for m in p.index
    ]
    t["ours - paper (mean)"] = (p["mean"] - p["paper mean"]).astype(float).round(1)
    t["ours: relu(raw), up-sampled"] = [
        _pm(a, b) for a, b in zip(s["mu_relu"]["mean"], s["mu_relu"]["std"])
    ]
    t["ours: relu(raw), masked feature rows"] = [
        _pm(a, b) for a, b in zip(s["mu_feature"]["mean"], s["mu_feature"]["std"])
    ]
    return t


def _mean_interval(values: np.ndarray) -> str:
    """ "28.1 [21.4, 35.6]": the mean with its 95 % interval (lib.verdict's BCa bootstrap)."""
    if len(values) == 0:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f} (one image)"
    return verdict.mean_above(values, 0.0, rule="mean").interval_text(1)


def ordering_verdict(stats: pd.DataFrame) -> dict:
    """The methods ordered by mean mu, ours against the paper's (over the methods the paper
    scored), with Kendall's tau between the two orders."""
    s = stats.dropna(subset=["paper mean", "mean"])
    ours = list(s["mean"].astype(float).sort_values(ascending=False, kind="stable").index)
    paper = list(s["paper mean"].astype(float).sort_values(ascending=False, kind="stable").index)
    tau = kendalltau(s["mean"].astype(float), s["paper mean"].astype(float)).statistic
    return {
        "ours": ours,
        "paper": paper,
        "same": ours == paper,
        "kendall_tau": float(tau),
        "highest": (ours[0], paper[0]),
        "lowest": (ours[-1], paper[-1]),
    }


def eigen_sign_summary(per_image: pd.DataFrame, dataset: str) -> dict:
    """How much Table 1's Eigen-CAM row owes to the SVD's arbitrary sign: on how many images the
    sign pytorch-grad-cam gets differs from the library's, and μ × 100 with each convention."""
    d = per_image[per_image.dataset == dataset]
    first = d[d.method == "eigencam"]
    stats = table1_stats(per_image, dataset)
    return {
        "differs": int(first["eigen sign differs"].sum()),
        "n": len(first),
        "mu paper's tool": float(stats.loc["eigencam", "mean"]),
        "mu ours": float(stats.loc[EIGEN_OURS, "mean"]),
    }


def leak_values(
    per_image: pd.DataFrame, dataset: str, method: str, score: str = "mu_pgc"
) -> np.ndarray:
    """100 x ``score`` of ``method`` on ``dataset``, one value per image whose map is not empty
    (in image order): the units a Table 1 verdict resamples."""
    d = per_image[(per_image.dataset == dataset) & (per_image.method == method)]
    d = d[~d["empty"]].sort_values("image")
    return 100 * d[score].to_numpy(dtype=float)


def paired_leaks(
    per_image: pd.DataFrame, dataset: str, a: str, b: str, score: str = "mu_pgc"
) -> tuple[np.ndarray, np.ndarray]:
    """100 x ``score`` of methods ``a`` and ``b`` on the same images, those where neither map is
    empty (an empty map has no mass to place, so no mu): two aligned arrays."""
    d = per_image[per_image.dataset == dataset]
    wide = d[~d["empty"]].pivot(index="image", columns="method", values=score)
    for m in (a, b):
        if m not in wide.columns:
            raise ValueError(
                f"{dataset}: no scores of {m!r} (methods: {sorted(d.method.unique())})"
            )
    both = wide[[a, b]].dropna()
    return 100 * both[a].to_numpy(dtype=float), 100 * both[b].to_numpy(dtype=float)


def hirescam_error(per_image: pd.DataFrame, dataset: str) -> float:
    """The largest mass HiResCAM puts where the model cannot look, over every image: μ × 100
    in the three measures and max |raw| on the masked feature rows (exactly 0 by construction:
    HiResCAM's map is sum_k G_k * A_k and G is exactly 0 on the masked rows)."""
    hi = per_image[(per_image.dataset == dataset) & (per_image.method == "hirescam")]
    if hi.empty:
        raise ValueError(f"{dataset}: no HiResCAM scores")
    mu = 100 * hi[["mu_pgc", "mu_relu", "mu_feature"]].to_numpy(dtype=float)
    feat = hi["max_feature"].to_numpy(dtype=float)
    return float(max(np.nanmax(np.abs(mu)) if np.isfinite(mu).any() else 0.0, np.abs(feat).max()))


def paper_order(dataset: str, methods) -> list[str]:
    """The paper's order of Table 1's methods on ``dataset`` (highest mean mu first), over the
    ``methods`` scored here."""
    paper = PAPER_TABLE1.get(dataset, PAPER_TABLE1["STACK-MIX"])
    return sorted((m for m in methods if m in paper), key=lambda m: -paper[m][0])


def ordering_claim(
    per_image: pd.DataFrame, dataset: str, score: str = "mu_pgc"
) -> tuple[verdict.Verdict, pd.DataFrame]:
    """The paper's order of mean mu as a verdict, by a rule fixed before the run.

    A full order is a conjunction of its adjacent pairs: for each pair (a, b) adjacent in the
    paper's order, :func:`lib.verdict.paired_difference` of μ × 100 (a - b > 0, paired bootstrap
    over the images where both maps are non-empty). The order **holds** if every adjacent pair
    holds, **does not hold** if any adjacent pair is significantly reversed (its interval at or
    below 0), and is **undecided** otherwise.

    The returned :class:`lib.verdict.Verdict` counts pairs: ``estimate`` is the number of
    adjacent pairs whose mean difference is in the paper's order; its interval is [pairs whose
    interval lies above 0 (certainly in order), pairs whose interval does not lie at or below 0
    (not certainly reversed)]; ``boundary`` is P - 1/2 for P pairs, so that the outcome is
    :func:`lib.verdict.decide` of that interval (all P certainly in order: holds; fewer than P
    not reversed: does not hold). ``detectable`` is the largest of the pairs' detectable
    differences, in points of μ × 100. Also returns one table row per pair.
    """
    methods = per_image[per_image.dataset == dataset]["method"].unique()
    order = paper_order(dataset, methods)
    if len(order) < 2:
        raise ValueError(f"{dataset}: an order needs two of the paper's methods, got {order}")
    rows, pair_verdicts = [], []
    for a, b in zip(order, order[1:]):
        xa, xb = paired_leaks(per_image, dataset, a, b, score)
        v = verdict.paired_difference(
            xa,
            xb,
            0.0,
            rule=f"mean μ × 100 of {method_label(a)} − {method_label(b)} > 0",
            unit="images (both maps non-empty)",
        )
        pair_verdicts.append(v)
        rows.append(
            {
                "pair (paper's order)": f"{method_label(a)} > {method_label(b)}",
                "images": v.n,
                "mean difference (μ × 100), 95 % interval": v.interval_text(1),
                "outcome": v.outcome,
            }
        )
    n_pairs = len(pair_verdicts)
    certain = sum(v.outcome == verdict.HOLDS for v in pair_verdicts)
    not_reversed = sum(v.outcome != verdict.FAILS for v in pair_verdicts)
    in_order = sum(v.estimate > 0 for v in pair_verdicts)
    ns = [v.n for v in pair_verdicts]
    detect = [v.detectable for v in pair_verdicts if v.detectable]
    boundary = n_pairs - 0.5
    v = verdict.Verdict(
        verdict.decide(certain, not_reversed, boundary, ">"),
        float(in_order),
        float(certain),
        float(not_reversed),
        boundary,
        rule=f"the paper's order {' > '.join(map(method_label, order))} holds if all {n_pairs} "
        "adjacent pairs hold "
        "(mean difference of μ × 100 > 0), does not hold if any adjacent pair is "
        "significantly reversed, else undecided; counted in pairs",
        method=f"paired bootstrap per adjacent pair over {min(ns)}-{max(ns)} images (both maps "
        f"non-empty), BCa; estimate: pairs in the paper's order; interval: [pairs "
        f"certainly in order, pairs not certainly reversed]; detectable: the largest "
        f"pair's, in points of μ × 100",
        n=max(ns),
        detectable=max(detect) if detect else None,
    )
    return v, pd.DataFrame(rows)


def table1_claims(per_image: pd.DataFrame, dataset: str) -> dict:
    """Table 1's claims, each decided on our numbers by a rule fixed here, before the run.

    - ``hirescam_error``: :func:`hirescam_error` (a check: 0 by construction), with
      ``hirescam_zero`` (it is exactly 0 and no HiResCAM map is empty).
    - ``leak_verdicts``: per other method, :func:`lib.verdict.mean_above` of μ × 100 over its
      non-empty maps, boundary 0 (a method that respected the wall gives 0 on every image);
      ``others_leak``: ``(deciding method, verdict)``, every method must leak (:func:`lib.verdict.all_of`).
      ``leaks``: per method, on how many non-empty maps mu > 0, ``(k, n)``.
    - ``gradcam``: Grad-CAM's mean μ × 100 above 0 (the paper's 22.7 is on VGG16 and ImageNet:
      its level is not comparable with a stand-in's, so it is shown, not tested).
    - ``eigencam``: ``(deciding method, verdict)``: Eigen-CAM (as pytorch-grad-cam computes
      it) minus each other method of the paper, paired over images, every difference > 0.
    - ``ordering``: ``(verdict, pair table)`` of :func:`ordering_claim`.
    """
    d = per_image[per_image.dataset == dataset]
    hi = d[d.method == "hirescam"]
    err = hirescam_error(per_image, dataset)
    others = [m for m in TABLE1_METHODS if m != "hirescam" and m in set(d.method)]
    leaks = {
        m: (int((g["mu_pgc"] > 0).sum()), len(g))
        for m, g in d[(d.method != "hirescam") & ~d["empty"]].groupby("method", sort=False)
    }
    # keyed by display name: lib.verdict.all_of names the deciding member in its rule
    leak_verdicts = {
        method_label(m): verdict.mean_above(
            leak_values(per_image, dataset, m),
            0.0,
            rule=f"mean μ × 100 of {method_label(m)} > 0",
            unit="images (non-empty maps)",
        )
        for m in others
    }
    rivals = {
        method_label(m): verdict.paired_difference(
            *paired_leaks(per_image, dataset, "eigencam", m),
            0.0,
            rule=f"mean μ × 100 of Eigen-CAM − {method_label(m)} > 0",
            unit="images (both maps non-empty)",
        )
        for m in TABLE1_METHODS
        if m != "eigencam" and m in set(d.method)
    }
    g = table1_stats(per_image, dataset).loc["gradcam"]
    return {
        "hirescam_error": err,
        "hirescam_zero": bool(err == 0.0 and not hi["empty"].any()),
        "n_images": int(hi["image"].nunique()),
        "leaks": leaks,
        "leak_verdicts": leak_verdicts,
        "others_leak": verdict.all_of(
            leak_verdicts, "every method other than HiResCAM: mean μ × 100 > 0"
        ),
        "gradcam": verdict.mean_above(
            leak_values(per_image, dataset, "gradcam"),
            0.0,
            rule="mean μ × 100 of Grad-CAM > 0",
            unit="images (non-empty maps)",
        ),
        "gradcam_mean": float(g["mean"]),
        "gradcam_paper": float(g["paper mean"]),
        "eigencam": verdict.all_of(rivals, "Eigen-CAM's mean μ × 100 above every other method's"),
        "ordering": ordering_claim(per_image, dataset),
    }


def add_dead_zone_claim(claims, dz, section: str | None = None) -> None:
    """Section 3.1's dead zone, traced by ``lib.rf.dead_zone`` from the architecture of the
    paper's masked VGG16 (``dz``, at 224 px): a deterministic number on the paper's own
    architecture (tier "paper-data"), exact (:func:`lib.verdict.exact`): it holds if the rows
    are the paper's, :data:`PAPER_DEAD_ROWS` (171..224, 1-based)."""
    n_paper = PAPER_DEAD_ROWS.stop - PAPER_DEAD_ROWS.start
    claims.add(
        "dead-zone",
        "taimeskhanov",
        "Section 3.1",
        "The masked VGG16 cannot see input rows "
        f"{PAPER_DEAD_ROWS.start + 1}..{PAPER_DEAD_ROWS.stop} ({n_paper} px, "
        f"{100 * n_paper / 224:.0f} % of the image).",
        n_paper,
        f"{dz.n} px, rows {dz.first + 1}..{dz.rows[-1] + 1}",
        kind="paper",
        tier="paper-data",
        digits=0,
        section=section,
        verdict=verdict.exact(
            dz.n,
            n_paper,
            holds=dz.as_slice() == PAPER_DEAD_ROWS,
            rule="the dead zone traced from the masked VGG16's "
            "architecture is the paper's rows "
            f"{PAPER_DEAD_ROWS.start + 1}..{PAPER_DEAD_ROWS.stop}",
            method="traced from the architecture (lib.rf.dead_zone), nothing sampled",
        ),
    )


def add_table1_claims(
    claims,
    per_image: pd.DataFrame,
    dataset: str,
    section: str | None = None,
    computed: dict | None = None,
):
    """Table 1's claim rows for the chapter's verdict box (``lib.report.Claims``), decided on
    ``dataset`` by :func:`table1_claims` (``computed``, if the chapter has it already):
    HiResCAM's zero (a check: it holds by construction), every other method leaks, Grad-CAM
    leaks, Eigen-CAM highest, the paper's ordering (paper claims on the stand-in)."""
    stats = table1_stats(per_image, dataset)
    v = computed if computed is not None else table1_claims(per_image, dataset)
    order = ordering_verdict(stats)
    leakers = stats.loc[[m for m in TABLE1_METHODS if m != "hirescam" and m in stats.index]]
    span = "{:.1f} to {:.1f}".format
    kw = dict(paper="taimeskhanov", where="Table 1", section=section)
    stand_in = f"the stand-in ({STAND_IN}), {dataset}"
    claims.add(
        "hirescam",
        statement="HiResCAM puts exactly nothing in the dead zone (by "
        "construction: its map is Σₖ Gₖ ⊙ Aₖ and the gradient G is exactly 0 on the "
        f"masked feature rows; measured on {v['n_images']} images).",
        paper_value=0.0,
        kind="check",
        digits=1,
        verdict=verdict.check(
            v["hirescam_error"],
            0.0,
            rule="largest μ × 100 (three "
            "measures) and |raw map| on the masked rows of HiResCAM = 0",
        ),
        **kw,
    )
    name, lv = v["others_leak"]
    claims.add(
        "others-leak",
        statement=f"On {stand_in}, every method other than HiResCAM "
        "highlights the dead zone: mean μ × 100 above 0 for each (the weakest decides).",
        paper_value=span(leakers["paper mean"].min(), leakers["paper mean"].max()),
        ours=f"means {span(leakers['mean'].min(), leakers['mean'].max())}; "
        f"weakest: {method_label(name)}",
        kind="paper",
        tier="stand-in",
        verdict=lv,
        digits=1,
        **kw,
    )
    claims.add(
        "gradcam",
        statement=f"On {stand_in}, Grad-CAM puts mass in the dead zone: mean "
        "μ × 100 above 0 (the paper's value is on VGG16 and ImageNet, shown for scale, "
        "not tested: the level depends on the model, the data and the dead zone's share).",
        paper_value=float(stats.loc["gradcam", "paper mean"]),
        kind="paper",
        tier="stand-in",
        verdict=v["gradcam"],
        digits=1,
        **kw,
    )
    rival, ev = v["eigencam"]
    claims.add(
        "eigencam-highest",
        statement=f"On {stand_in}, Eigen-CAM (as pytorch-grad-cam "
        "computes it) leaks most: its mean μ × 100 above every other method's, paired "
        "over images (the closest rival decides).",
        paper_value=method_label(order["paper"][0]),
        ours=f"highest here: {method_label(order['ours'][0])}; Eigen-CAM − {method_label(rival)}",
        kind="paper",
        tier="stand-in",
        verdict=ev,
        digits=1,
        **kw,
    )
    ov, _ = v["ordering"]
    claims.add(
        "ordering",
        statement=f"On {stand_in}, the methods in the paper's order of mean "
        "mu: every adjacent pair in order (paired over images).",
        paper_value=" > ".join(map(method_label, order["paper"])),
        ours=" > ".join(map(method_label, order["ours"])),
        kind="paper",
        tier="stand-in",
        verdict=ov,
        **kw,
    )


# --------------------------------------------------------------------------- figures


def dataset_summary(data: Table1Data, device) -> pd.DataFrame:
    """Per data set: images, their shape and the masked model's accuracy on them."""
    rows = []
    for name, (xs, ys) in data.datasets.items():
        with torch.no_grad():
            pred = torch.cat(
                [
                    data.model(xs[i : i + 64].to(device)).argmax(1).cpu()
                    for i in range(0, len(xs), 64)
                ]
            )
        known = ys >= 0
        rows.append(
            {
                "data set": name,
                "images": len(xs),
                "shape": str(tuple(xs.shape[1:])),
                "accuracy of the masked model (%)": 100
                * float((pred[known] == ys[known]).float().mean())
                if known.any()
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def plot_training(hist_masked: dict, hist_unmasked: dict):
    """Figure 5, scaled: training loss and test accuracy per epoch, masked and unmasked."""
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.0))
    for hist, name in ((hist_unmasked, "unmasked (baseline)"), (hist_masked, "masked")):
        ep = [e["epoch"] for e in hist["epochs"]]
        axes[0].plot(ep, [e["train_loss"] for e in hist["epochs"]], "o-", label=name)
        axes[1].plot(ep, [100 * e["test_acc"] for e in hist["epochs"]], "o-", label=name)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="training loss")
    axes[1].set(xlabel="epoch", ylabel="test top-1 accuracy (%)", title="test accuracy")
    for ax in axes:
        ax.legend()
        ax.set_xticks(ep)
    fig.suptitle(f"Figure 5, scaled: masked vs unmasked {STAND_IN}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_examples(data: Table1Data, first_dead: int, k: int = 5):
    """The first ``k`` images of each data set, the dead zone in red."""
    fig, axes = plt.subplots(
        len(data.datasets), k, figsize=(1.45 * k, 1.75 * len(data.datasets)), squeeze=False
    )
    for row, (name, (xs, ys)) in zip(axes, data.datasets.items()):
        for i, ax in enumerate(row[: len(xs)]):
            ax.imshow(as_image(xs[i], data.show_mean, data.show_std), cmap="gray")
            size = xs.shape[-1]
            mark_dead_zone(ax, first_dead, size, size, label="dead" if i == 0 else None)
            if data.stack_mix is not None:
                ax.set_title(CLASSES[int(ys[i])], fontsize=9)
            ax.axis("off")
        row[0].set_ylabel(name)
    fig.suptitle(
        f"{', '.join(data.datasets)}: rows ≥ {first_dead} from a second item of the same class",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def figure7(data: Table1Data, first_dead: int, n_show: int):
    """Figure 7: for ``n_show`` images of each data set, the input and the seven methods of
    Table 1 after the paper's post-processing, the dead zone in red, in one figure (each row
    labelled with its data set). Returns the figure and the maps shown,
    ``{data set: {method: (n_show, H, W)}}``."""
    images, labels, shown_all = [], [], {}
    for name, (xs, _) in data.datasets.items():
        idx = torch.linspace(0, len(xs) - 1, n_show).round().long()
        x_show = xs[idx].to(next(data.model.parameters()).device)
        raw = _raw_maps(data.model, x_show, data.model.target_layer, TABLE1_METHODS, None, 64)
        shown = {
            m: lib.cam.postprocess(raw[m], tuple(x_show.shape[-2:]), preset=lib.cam.PGC_PRESET)
            for m in TABLE1_METHODS
        }
        images += [as_image(x.cpu(), data.show_mean, data.show_std) for x in x_show]
        labels += [name] * len(x_show)
        shown_all[name] = shown
    maps = {m: torch.cat([shown_all[n][m].cpu() for n in shown_all]) for m in TABLE1_METHODS}
    fig = method_grid(images, maps, size=1.5, row_labels=labels)
    size = images[0].shape[0]
    for ax in fig.axes:
        mark_dead_zone(ax, first_dead, size, size, label=None)
    # two lines: on one, the model's name made the title (and the saved image) wider than the
    # text column, so that a phone shrank its 9 pt text under 6 px
    fig.suptitle(f"Figure 7: red = dead zone\n{data.model_name}", y=1.04, fontsize=10)
    return fig, shown_all


# --------------------------------------------------------------------------- accuracy (Figure 5)


def accuracy_table(hist_masked: dict, hist_unmasked: dict) -> pd.DataFrame:
    """Test accuracy of the stand-ins (top-1, from the trainer's history) beside the paper's."""
    acc = pd.DataFrame(
        {
            "ours: test top-1 (%)": [
                100 * hist_masked["test_acc"],
                100 * hist_unmasked["test_acc"],
            ],
            "ours: epochs": [len(hist_masked["epochs"]), len(hist_unmasked["epochs"])],
            "paper: ImageNet top-1 (%)": [
                PAPER_ACCURACY[k]["top-1"] for k in ("masked", "unmasked")
            ],
            "paper: ImageNet top-5 (%)": [
                PAPER_ACCURACY[k]["top-5"] for k in ("masked", "unmasked")
            ],
        },
        index=["masked", "unmasked"],
    )
    acc["ours: top-1 change (points)"] = (
        acc["ours: test top-1 (%)"] - acc.loc["unmasked", "ours: test top-1 (%)"]
    )
    acc["paper: top-1 change (points)"] = (
        acc["paper: ImageNet top-1 (%)"] - PAPER_ACCURACY["unmasked"]["top-1"]
    )
    return acc


# --------------------------------------------------------------------------- a wall in Lite0


def lite0_dead_zone_table(
    lite0: nn.Module, layer: str, masked_rows, size: int = 224
) -> pd.DataFrame:
    """Dead input rows of ``lite0`` with the last ``k`` rows of ``layer`` masked, per k."""
    rows = [
        {
            "masked feature rows (of 7)": k,
            "dead input rows (of %d)" % size: dead_zone(lite0, size, k, layer=layer).n,
        }
        for k in masked_rows
    ]
    return pd.DataFrame(rows).set_index("masked feature rows (of 7)")


def lite0_predictions(
    lite0: nn.Module, walled: WalledModel, x: torch.Tensor, names
) -> pd.DataFrame:
    """Top-1 ImageNet class of each photograph, without and with the wall."""
    categories = imagenet_categories()
    with torch.no_grad():
        plain, wall = lite0(x).argmax(1).tolist(), walled(x).argmax(1).tolist()
    return pd.DataFrame(
        {
            "photo": list(names),
            "Lite0": [categories[i] for i in plain],
            f"Lite0 with {walled.masked_rows} rows walled": [categories[i] for i in wall],
        }
    )


def plot_lite0(walled: WalledModel, x: torch.Tensor, zone: slice, methods, n: int = 4):
    """The walled Lite0's maps (paper's post-processing) on up to ``n`` photographs, the input
    rows under the masked features in orange."""
    x_show = x[: min(n, len(x))]
    size = x.shape[-1]
    raw = _raw_maps(walled, x_show, walled.target_layer, methods, None, 64)
    shown = {m: lib.cam.postprocess(raw[m], size, preset=lib.cam.PGC_PRESET) for m in methods}
    fig = method_grid([as_image(v.cpu(), LITE0_MEAN, LITE0_STD) for v in x_show], shown, size=1.6)
    for ax in fig.axes:
        mark_dead_zone(ax, zone.start, size, size, color="orange", label=None)
    fig.suptitle(
        f"EfficientNet-Lite0 with its last {walled.masked_rows} feature rows walled:\n"
        "orange = under the masked features (seen in the input)",
        y=1.04,
        fontsize=10,
    )
    return fig


def lite0_scores(
    walled: WalledModel, x: torch.Tensor, zone: slice, methods
) -> tuple[dict, torch.Tensor, pd.DataFrame]:
    """Table 1's analysis on the walled Lite0: :func:`wall_scores` over the input rows ``zone``
    under the masked features, and the share of the input gradient of the predicted logit in
    those rows (how much the prediction depends on them). Returns the scores, the gradient
    shares and the table (μ × 100, mean ± std with ddof = 1 over the non-empty maps)."""
    r = wall_scores(walled, x, walled.target_layer, methods, zone, walled.masked_rows)
    xg = x.clone().requires_grad_(True)
    with torch.enable_grad():
        out = walled(xg)
        out.gather(1, out.argmax(1, keepdim=True)).sum().backward()
    grad_share = dead_zone_ratio(xg.grad.detach().abs().sum(1).cpu(), zone)

    def pm(v: torch.Tensor, empty: torch.Tensor) -> str:
        return mean_std_text(100 * v[~empty]) if (~empty).any() else "—"

    table = pd.DataFrame(
        {
            m: {
                "μ × 100 (paper's post-processing)": pm(r[m]["mu_pgc"], r[m]["empty"]),
                "μ × 100 (relu(raw), up-sampled)": pm(r[m]["mu_relu"], r[m]["empty"]),
                "μ × 100 (masked rows of bn2)": pm(r[m]["mu_feature"], r[m]["empty"]),
                "empty maps (left out)": f"{int(r[m]['empty'].sum())} of {len(x)}",
                "max |raw| in masked rows": float(r[m]["max_feature"].max()),
            }
            for m in methods
        }
    ).T.rename(index=method_label)
    return r, grad_share, table
