"""Every architecture of the book by name: the papers' torchvision networks, small CPU-trainable
ResNet / DenseNet / EfficientNet analogues for 64 px scenes, and this project's own models; and
the papers' layer names for each (``paper_layers``)."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Callable

import timm
import torch
import torchvision
from timm.models.resnet import BasicBlock, ResNet
from torch import nn
from torchvision.models.efficientnet import EfficientNet, MBConvConfig
from torchvision.models.googlenet import BasicConv2d, GoogLeNet, Inception
from torchvision.models.vgg import make_layers

from ..environment import download_allowed, random_stand_ins
from ..layers import resolve_layer
from .heads import LinearProbe
from .masked_vgg import MaskedVGG, masked_vgg16
from .small import MnistNet, PooledCNN, gap_net, gmp_net
from .unet import UNetClassifier

__all__ = [
    "build",
    "paper_layers",
    "imagenet_weights_file",
    "small_resnet",
    "small_densenet",
    "small_efficientnet",
    "TORCHVISION",
    "PROJECT",
    "names",
]

#: the papers' ImageNet architectures (torchvision builders)
TORCHVISION = ("resnet50", "densenet121", "efficientnet_b0", "vgg16", "alexnet", "googlenet")

_EFFNET = [f"features[{-i}]" for i in range(1, 5)]
_DENSENET = ["denseblock4", "transition3", "denseblock3", "transition2"]
_RESNET = ["layer4", "layer3", "layer2"]
# paper label -> dotted name; the receptive-field chapter (Santos et al.) uses the first three,
# Nagy et al. the next three.
_PAPER_LAYERS: dict[str, dict[str, str]] = {
    "efficientnet_b0": {k: f"features.{9 - i}" for i, k in enumerate(_EFFNET, start=1)},
    "densenet121": {k: f"features.{k}" for k in _DENSENET},
    "resnet50": {k: k for k in _RESNET},
    "vgg16": {"features.29": "features.29"},
    "alexnet": {"features.11": "features.11"},
    "googlenet": {"inception5b": "inception5b"},
}


def _replace_stem_conv(conv: nn.Conv2d, in_channels: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )


def small_resnet(
    num_classes: int = 10,
    in_channels: int = 1,
    width: int = 16,
    layers: tuple[int, ...] = (1, 1, 1, 1),
    total_stride: int = 16,
) -> nn.Module:
    """A ResNet18-style network (timm ResNet, BasicBlocks) with widths (w, 2w, 4w, 8w) and
    ``layer1..layer4`` named as in ResNet50. ``total_stride=16`` drops the stem max-pool so
    ``layer4`` is 4x4 on a 64 px input (ResNet50 is 7x7 on 224); 32 keeps it."""
    if total_stride not in (16, 32):
        raise ValueError(f"total_stride must be 16 or 32, got {total_stride}")
    model = ResNet(
        BasicBlock,
        list(layers),
        num_classes=num_classes,
        in_chans=in_channels,
        stem_width=width,
        channels=tuple(width * 2**i for i in range(4)),
    )
    if total_stride == 16:
        model.maxpool = nn.Identity()
    return model


def small_densenet(
    num_classes: int = 10,
    in_channels: int = 1,
    growth_rate: int = 12,
    block_config: tuple[int, ...] = (2, 2, 2, 2),
    num_init_features: int = 16,
    total_stride: int = 16,
) -> nn.Module:
    """A DenseNet121-style network (torchvision DenseNet, 4 dense blocks) with the same layer
    names (``features.denseblock4``, ``features.transition3`` ...). ``total_stride=16`` drops
    the stem max-pool ``features.pool0``."""
    if total_stride not in (16, 32):
        raise ValueError(f"total_stride must be 16 or 32, got {total_stride}")
    model = torchvision.models.DenseNet(
        growth_rate=growth_rate,
        block_config=tuple(block_config),
        num_init_features=num_init_features,
        num_classes=num_classes,
    )
    model.features.conv0 = _replace_stem_conv(model.features.conv0, in_channels, 2)
    nn.init.kaiming_normal_(model.features.conv0.weight)
    if total_stride == 16:
        model.features.pool0 = nn.Identity()
    return model


def small_efficientnet(
    num_classes: int = 10,
    in_channels: int = 1,
    width_mult: float = 0.25,
    depth_mult: float = 0.5,
    total_stride: int = 16,
    dropout: float = 0.2,
) -> nn.Module:
    """An EfficientNet-b0-style network (torchvision EfficientNet with b0's MBConv stages and
    squeeze-and-excitation, scaled by ``width_mult`` / ``depth_mult``), layers ``features[0..8]``
    as in b0. ``total_stride=16`` makes the stem conv stride 1."""
    if total_stride not in (16, 32):
        raise ValueError(f"total_stride must be 16 or 32, got {total_stride}")
    conf = partial(MBConvConfig, width_mult=width_mult, depth_mult=depth_mult)
    setting = [
        conf(1, 3, 1, 32, 16, 1),
        conf(6, 3, 2, 16, 24, 2),
        conf(6, 5, 2, 24, 40, 2),
        conf(6, 3, 2, 40, 80, 3),
        conf(6, 5, 1, 80, 112, 3),
        conf(6, 5, 2, 112, 192, 4),
        conf(6, 3, 1, 192, 320, 1),
    ]
    # stochastic depth off: the small models train for few epochs and must be deterministic
    model = EfficientNet(
        setting, dropout=dropout, stochastic_depth_prob=0.0, num_classes=num_classes
    )
    stem = model.features[0][0]
    model.features[0][0] = _replace_stem_conv(stem, in_channels, 1 if total_stride == 16 else 2)
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    return model


class SmallConvNet(nn.Module):
    """``features`` -> ``avgpool`` -> flatten -> ``classifier``: the layout (and module names) of
    torchvision's AlexNet and VGG, for the small stand-ins below."""

    def __init__(self, features: nn.Sequential, avgpool: nn.Module, classifier: nn.Sequential):
        super().__init__()
        self.features, self.avgpool, self.classifier = features, avgpool, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _mlp_head(n_in: int, hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    # AlexNet's and VGG's classifier: two hidden layers with dropout, then the class scores
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(n_in, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def small_alexnet(
    num_classes: int = 10,
    in_channels: int = 1,
    width: int = 16,
    hidden: int = 128,
    dropout: float = 0.5,
    batch_norm: bool = False,
) -> nn.Module:
    """AlexNet's layout at 64 px (Nagy et al.'s AlexNet stand-in): five convs with ReLU and three
    max-pools, so without batch norm ``features.11`` is the last conv's ReLU (the paper's layer,
    torchvision's index), then an adaptive average pool and AlexNet's three-layer classifier.
    Scaled: conv1 5x5 stride 2 (AlexNet: 11x11 stride 4), 2x2 pools (3x3 stride 2), widths
    (w, 2w, 3w, 3w, 2w). The last conv's ReLU is 8x8 at 64 px (AlexNet: 13x13 at 224).
    ``batch_norm`` puts a BatchNorm2d after each conv (the last ReLU is then ``features.16``)."""
    w = width
    layers: list[nn.Module] = []
    for c_in, c_out, k, stride, pool in (
        (in_channels, w, 5, 2, True),
        (w, 2 * w, 5, 1, True),
        (2 * w, 3 * w, 3, 1, False),
        (3 * w, 3 * w, 3, 1, False),
        (3 * w, 2 * w, 3, 1, True),
    ):
        layers.append(nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2))
        layers += [nn.BatchNorm2d(c_out)] if batch_norm else []
        layers.append(nn.ReLU())
        layers += [nn.MaxPool2d(2)] if pool else []
    for m in layers:  # He initialisation: the plain stack does not learn from PyTorch's default
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return SmallConvNet(
        nn.Sequential(*layers),
        nn.AdaptiveAvgPool2d((4, 4)),
        _mlp_head(2 * w * 16, hidden, num_classes, dropout),
    )


def small_vgg(
    num_classes: int = 10,
    in_channels: int = 1,
    width: int = 8,
    hidden: int = 128,
    dropout: float = 0.5,
    batch_norm: bool = False,
) -> nn.Module:
    """VGG16's layout at 64 px (Nagy et al.'s VGG16 stand-in): 13 3x3 convs in blocks of 2, 2, 3,
    3, 3 (torchvision's ``vgg.make_layers`` of configuration "D"), so ``features.29`` is the last
    conv's ReLU (the paper's layer), then ``features.30`` max-pool, a 2x2 adaptive average pool
    and VGG's three-layer classifier. Scaled: widths (w, 2w, 4w, 4w, 4w) and the fourth
    max-pool (``features.23``) replaced by an identity, so ``features.29`` is 8x8 at 64 px (VGG16:
    14x14 at 224). ``batch_norm`` uses VGG16-BN's layout instead (other indices)."""
    w = width
    cfg = [
        w,
        w,
        "M",
        2 * w,
        2 * w,
        "M",
        4 * w,
        4 * w,
        4 * w,
        "M",
        4 * w,
        4 * w,
        4 * w,
        "M",
        4 * w,
        4 * w,
        4 * w,
        "M",
    ]
    features = make_layers(cfg, batch_norm=batch_norm)
    if in_channels != 3:
        first = features[0]
        features[0] = nn.Conv2d(in_channels, first.out_channels, 3, padding=1)
    pools = [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)]
    features[pools[3]] = nn.Identity()
    for m in features.modules():  # VGG's initialisation (torchvision VGG.__init__)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return SmallConvNet(
        features, nn.AdaptiveAvgPool2d((2, 2)), _mlp_head(4 * w * 4, hidden, num_classes, dropout)
    )


class SmallGoogLeNet(nn.Module):
    """GoogLeNet's layout at 64 px (Nagy et al.'s GoogLeNet stand-in), built from torchvision's own
    ``Inception`` and ``BasicConv2d`` modules with GoogLeNet's module names: conv1 (3x3) -
    maxpool1 - conv2 (1x1) - conv3 (3x3) - maxpool2 - inception3a - maxpool3 - inception4a -
    maxpool4 - inception5b (the paper's layer) - global average pooling - dropout - fc.
    ``inception5b`` is 4x4 at 64 px (stride 16; GoogLeNet: 7x7 at 224, stride 32): the coarsest
    of the three stand-ins, as GoogLeNet's is of the paper's three."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, width: int = 16, dropout: float = 0.2
    ):
        super().__init__()
        w = width
        self.conv1 = BasicConv2d(in_channels, w, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(2)
        self.conv2 = BasicConv2d(w, w, kernel_size=1)
        self.conv3 = BasicConv2d(w, 2 * w, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(2)
        # Inception(in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj): GoogLeNet's
        # proportions; torchvision's "5x5" branch is a 3x3 conv, as in its GoogLeNet
        self.inception3a = Inception(2 * w, w, w, 2 * w, w // 4, w // 2, w // 2)  # 4w
        self.maxpool3 = nn.MaxPool2d(2)
        self.inception4a = Inception(4 * w, 2 * w, w, 2 * w, w // 4, w, w)  # 6w
        self.maxpool4 = nn.MaxPool2d(2)
        self.inception5b = Inception(6 * w, 3 * w, 2 * w, 3 * w, w // 2, w, w)  # 8w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3a(x))
        x = self.inception5b(self.maxpool4(self.inception4a(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


def cifar_googlenet(num_classes: int = 10, dropout: float = 0.2) -> nn.Module:
    """Nagy et al.'s CIFAR-10 GoogLeNet (their repository,
    ``contrastivity_and_fidelity/googlenet.py``): torchvision's GoogLeNet with the stem cut for
    32 px inputs: conv1 a 3x3, stride-1 BasicConv2d to 192 channels, no maxpool1 / conv2 /
    conv3 / maxpool2, maxpool3 and maxpool4 3x3 / 2 with padding 1, no auxiliary heads.
    ``inception5b`` (their Grad-CAM layer) is 1024 x 8 x 8 at 32 px. The module names are
    theirs, so their state dict loads (``build("cifar_googlenet", weights=path)``)."""
    model = GoogLeNet(
        num_classes=num_classes,
        aux_logits=False,
        transform_input=False,
        init_weights=True,
        dropout=dropout,
    )
    model.conv1 = BasicConv2d(3, 192, kernel_size=3, stride=1, padding=1)
    model.maxpool1 = model.conv2 = model.conv3 = model.maxpool2 = nn.Identity()
    model.maxpool3 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=False)
    model.maxpool4 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=False)
    model.target_layer = "inception5b"
    return model


def imagenet_transfer(name: str, num_classes: int = 14) -> nn.Module:
    """torchvision ``name`` (resnet50, densenet121, efficientnet_b0, ...) with its ImageNet weights
    (from the torch hub cache, never downloaded) and a new ``num_classes`` linear head, as paper
    000 fine-tunes them on VinDr-CXR."""
    model = build(name, weights="imagenet")
    if name.startswith("resnet") or name == "googlenet":
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif name.startswith("densenet"):
        model.classifier = nn.Linear(model.classifier.in_features, num_classes)
    elif name.startswith(("efficientnet", "vgg", "alexnet")):
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    else:
        raise ValueError(
            f"no head replacement rule for {name!r}: use one of resnet*, densenet*, "
            "efficientnet*, vgg*, alexnet, googlenet"
        )
    return model


#: this project's models: name -> constructor
PROJECT: dict[str, Callable[..., nn.Module]] = {
    "mnist_net": MnistNet,
    "gap_net": gap_net,
    "gmp_net": gmp_net,
    "pooled_cnn": PooledCNN,
    "masked_vgg": MaskedVGG,
    "masked_vgg16": masked_vgg16,
    "unet": UNetClassifier,
    "small_resnet": small_resnet,
    "small_densenet": small_densenet,
    "small_efficientnet": small_efficientnet,
    # timm's architecture; lib.models.pretrained.efficientnet_lite0 loads its ImageNet weights
    "efficientnet_lite0": partial(timm.create_model, "efficientnet_lite0", pretrained=False),
    "linear_probe": LinearProbe,
    "imagenet_transfer": imagenet_transfer,
    # Nagy et al.'s stand-ins for AlexNet, GoogLeNet and VGG16 (64 px scenes)
    "small_alexnet": small_alexnet,
    "small_googlenet": SmallGoogLeNet,
    "small_vgg": small_vgg,
    # Nagy et al.'s CIFAR-10 network (Table 7)
    "cifar_googlenet": cifar_googlenet,
}
_SMALL_LAYERS = {
    "small_resnet": "resnet50",
    "small_densenet": "densenet121",
    "small_efficientnet": "efficientnet_b0",
    "small_alexnet": "alexnet",
    "small_googlenet": "googlenet",
    "small_vgg": "vgg16",
}


def names() -> list[str]:
    """Every name ``build`` accepts."""
    return list(TORCHVISION) + list(PROJECT)


def imagenet_weights_file(name: str, which: str = "IMAGENET1K_V1") -> tuple[Path, str]:
    """(path in the torch hub cache, download URL) of torchvision's ImageNet weights for ``name``."""
    enum = torchvision.models.get_model_weights(name)[which]
    url = enum.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def _load_state(model: nn.Module, path: str | Path) -> nn.Module:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    obj = torch.load(path, map_location="cpu", weights_only=False)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    model.load_state_dict(state)
    return model


def build(
    name: str, /, num_classes: int | None = None, weights: str | Path | None = None, **kwargs
) -> nn.Module:
    """The architecture ``name`` (see ``names()``; any other torchvision or timm architecture
    by its own name too), randomly initialised (``weights=None``), with
    torchvision's ImageNet weights (``"imagenet"``, or a torchvision weights name such as
    ``"IMAGENET1K_V2"``; only from the torch hub cache, never downloaded), or with the state dict
    in a file (``weights=path``; this project's trainer files load too). ``num_classes`` defaults
    to the architecture's own (1000 for ImageNet networks, 10 for the project's)."""
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if name in PROJECT:
        if weights is not None and str(weights).lower().startswith(("imagenet", "imagenet1k")):
            raise ValueError(
                f"{name} has no ImageNet weights; pass a file or train it with "
                "lib.train.load_or_train"
            )
        model = PROJECT[name](**kwargs)
        return _load_state(model, weights) if weights is not None else model
    if name not in TORCHVISION and name not in torchvision.models.list_models():
        if timm.is_model(name):  # any timm architecture, randomly initialised or from a file
            if weights is not None and not Path(str(weights)).is_file():
                raise ValueError(
                    f"{name} is a timm model: weights must be a file here (timm's "
                    "hub weights are not loaded by the zoo)"
                )
            model = timm.create_model(name, pretrained=False, **kwargs)
            return _load_state(model, weights) if weights is not None else model
        raise ValueError(
            f"unknown model {name!r}; choose from {names()}, or any name of "
            "torchvision.models.list_models() or timm.list_models()"
        )
    is_imagenet = weights is not None and (
        str(weights) == "imagenet" or str(weights).startswith("IMAGENET1K")
    )
    if is_imagenet:
        which = "IMAGENET1K_V1" if str(weights) == "imagenet" else str(weights)
        path, url = imagenet_weights_file(name, which)
        if kwargs.get("num_classes", 1000) != 1000:
            raise ValueError(f"ImageNet weights have 1000 classes, not {kwargs['num_classes']}")
        if random_stand_ins():  # the full-profile rehearsal: the architecture, random weights
            return build(name, **kwargs)
        if not path.is_file() and not download_allowed():
            raise FileNotFoundError(
                f"{name} ImageNet weights not found: {path} is missing. It comes from {url}: "
                "where a network exists torchvision downloads it by itself (on Colab always; "
                "elsewhere set GRADCAM_BOOK_ALLOW_DOWNLOAD=1). Only the 'full' profile needs "
                "it; the 'default' profile runs offline without it."
            )
        enum = torchvision.models.get_model_weights(name)[which]
        return torchvision.models.get_model(name, weights=enum, **kwargs)
    if name == "googlenet":
        # without weights, skip the auxiliary heads (they only matter for training from scratch)
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", True)
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    return _load_state(model, weights) if weights is not None else model


def paper_layers(name: str) -> dict[str, str]:
    """The papers' target layers of ``name``: paper label -> dotted module name.

    EfficientNet-b0 ``features[-1]``..``features[-4]``; DenseNet121 ``denseblock4``,
    ``transition3``, ``denseblock3``, ``transition2``; ResNet50 ``layer4``..``layer2``; VGG16
    ``features.29``; AlexNet ``features.11``; GoogLeNet ``inception5b``; the small analogues use
    their big model's labels; the project's models map ``"target"`` to their CAM layer. Each name
    is checked to exist with ``lib.layers.resolve_layer``.
    """
    if name in _PAPER_LAYERS:
        layers = dict(_PAPER_LAYERS[name])
    elif name in _SMALL_LAYERS:
        layers = dict(_PAPER_LAYERS[_SMALL_LAYERS[name]])
        if name == "small_efficientnet":
            layers = {k: f"features.{9 - i}" for i, k in enumerate(_EFFNET, start=1)}
    elif name in PROJECT:
        layers = None
    else:
        raise ValueError(f"unknown model {name!r}; choose from {names()}")
    with torch.device("meta"):  # architecture only: no memory, no initialisation cost
        model = build(name)
    if layers is None:
        layers = {"target": model.target_layer}
    for label, dotted in layers.items():
        resolve_layer(model, dotted)
        if label.startswith("features["):  # the papers' spelling must point at the same module
            assert resolve_layer(model, label) is resolve_layer(model, dotted), (label, dotted)
    return layers
