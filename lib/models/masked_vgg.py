"""The masked [VGG] of Taimeskhanov et al. (Section 3.1, Figure 4): a VGG16 that cannot see the bottom of
its input because the first dense layer's weights over the last feature rows are held at 0."""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PAPER_DEAD_ROWS",
    "MaskedLinear",
    "MaskedVGG",
    "masked_vgg16",
    "load_authors_weights",
    "map_state_dict_keys",
    "CONFIGS",
    "AUTHORS_WEIGHTS_URL",
]

#: Conv channels per layer, "M" a 2x2 max-pool. "D" is VGG16 without its last max-pool and with
#: the last conv 512 -> 256 (Taimeskhanov et al.); its module indices equal torchvision's
#: vgg16.features[0..29], so the paper's target layer is ``features.29``. "S" is a shallow
#: VGG-like stack for 64 px inputs: VGG16's receptive field (196 px) covers a whole 64 px image
#: from every unit, so a scaled-down "D" would have no dead zone at all; "S" (RF 54 px, jump 8)
#: with 5 of 8 rows masked leaves a 17-row dead zone at 64 px (27 %, the paper's 54/224 is 24 %).
CONFIGS: dict[str, list] = {
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 256],
    "S": [64, "M", 128, "M", 256, "M", 512, 256],
}

#: Taimeskhanov et al., Section 3.1: their masked VGG16 cannot see input rows 171..224
#: (1-based) of a 224 px image, 54 px; 0-based, this slice
PAPER_DEAD_ROWS = slice(170, 224)
AUTHORS_WEIGHTS_URL = (
    "https://github.com/MagamedT/cam-can-see-through-walls/tree/main/"
    "vgg16_experiment (params_vgg16_masked.pt, params_vgg16_baseline.pt)"
)


class MaskedLinear(nn.Linear):
    """``y = x (W * m)^T + b`` with a fixed 0/1 mask ``m`` over the input features.

    The mask multiplies the weight inside ``forward``, so masked weights never reach the output
    and receive an exactly zero gradient, whatever the optimiser does; the stored weights there
    are zeroed at construction, so with any optimiser whose update of a zero-gradient zero
    weight is zero (SGD, momentum, weight decay, Adam) they stay exactly 0 through training.
    """

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        mask = torch.as_tensor(mask, dtype=torch.float32).reshape(-1)
        if mask.numel() != in_features or (
            mask.device.type != "meta" and not torch.all((mask == 0) | (mask == 1))
        ):
            raise ValueError(
                f"mask must hold {in_features} zeros and ones, got {mask.numel()} values"
            )
        # Not persistent: the mask follows from the architecture (masked_rows), not the weights.
        self.register_buffer("mask", mask, persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        if self.mask.device.type == "meta":
            return super().extra_repr()
        return super().extra_repr() + f", masked_inputs={int((self.mask == 0).sum())}"


class MaskedVGG(nn.Module):
    """Taimeskhanov et al.'s [VGG]: ``features`` (VGG16 convs, no last max-pool, last conv to 256
    channels), flatten, ``classifier`` (dense over 256 x 14 x 14 -> 4096, ReLU, dropout, 4096,
    ReLU, dropout, classes) where the first dense layer's weights over the last ``masked_rows``
    of the 14 feature rows are exactly 0 (W[:, :, -9:, :] = 0).

    ``width`` multiplies every conv width, ``hidden`` sets the dense width, ``cfg`` picks the conv
    stack from ``CONFIGS`` (or a list in the same form); ``feature_size = input_size // 2**pools``
    (input_size // 16 for "D"). ``target_layer`` names the last ReLU (``features.29`` for "D").
    """

    def __init__(
        self,
        num_classes: int = 1000,
        width: float = 1.0,
        input_size: int = 224,
        masked_rows: int = 9,
        hidden: int = 4096,
        in_channels: int = 3,
        dropout: float = 0.5,
        cfg: str | list = "D",
    ):
        super().__init__()
        if isinstance(cfg, str) and cfg not in CONFIGS:
            raise ValueError(f"unknown cfg {cfg!r}; use one of {sorted(CONFIGS)} or a list")
        spec = CONFIGS[cfg] if isinstance(cfg, str) else list(cfg)
        n_pools = spec.count("M")
        if input_size % (2**n_pools):
            raise ValueError(
                f"input_size={input_size} must be a multiple of {2**n_pools} "
                f"(cfg has {n_pools} max-pools), e.g. 224 or 64"
            )
        self.feature_size = input_size // 2**n_pools
        if not 0 <= masked_rows < self.feature_size:
            raise ValueError(
                f"masked_rows={masked_rows} must be in [0, {self.feature_size}) "
                f"for a {self.feature_size}-row feature map (input {input_size})"
            )
        layers: list[nn.Module] = []
        c_in = in_channels
        for v in spec:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                c = max(1, int(round(v * width)))
                # ReLU not in place: CAM hooks read the activations and their gradients.
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU()]
                c_in = c
        self.cfg = cfg if isinstance(cfg, str) else list(cfg)
        self.input_size = input_size
        self.masked_rows = masked_rows
        self.feature_channels = c_in
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten(1)
        mask = self.feature_mask().to(torch.float32).expand(c_in, -1, -1).reshape(-1)
        self.classifier = nn.Sequential(
            MaskedLinear(c_in * self.feature_size**2, hidden, mask),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        self.target_layer = f"features.{len(layers) - 1}"
        self._init_weights()

    def feature_mask(self) -> torch.Tensor:
        """Bool (feature_size, feature_size): True where the first dense layer sees the map."""
        m = torch.ones(self.feature_size, self.feature_size, dtype=torch.bool)
        if self.masked_rows:
            m[-self.masked_rows :, :] = False
        return m

    def _init_weights(self) -> None:
        # torchvision's VGG initialisation; the masked weights are re-zeroed afterwards.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.classifier[0].weight.mul_(self.classifier[0].mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        if f.shape[-2:] != (self.feature_size, self.feature_size):
            raise ValueError(
                f"input {tuple(x.shape[-2:])} gives a {tuple(f.shape[-2:])} feature "
                f"map; this model was built for {self.input_size}x{self.input_size} "
                f"inputs ({self.feature_size}x{self.feature_size} features)"
            )
        return self.classifier(self.flatten(f))


def masked_vgg16(num_classes: int = 1000, masked_rows: int = 9) -> MaskedVGG:
    """The exact model of Taimeskhanov et al.: 224 px input, 9 of 14 rows masked (0 gives the baseline)."""
    return MaskedVGG(num_classes=num_classes, masked_rows=masked_rows)


def _natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in name.split("."))


def _unwrap_state_dict(obj) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                return _unwrap_state_dict(obj[key])
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            "expected a state dict (names -> tensors), possibly inside "
            "{'model_state_dict': ...}; got " + type(obj).__name__
        )
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in obj.items()}


def _groups(names: list[str]) -> "OrderedDict[str, list[str]]":
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for name in sorted(names, key=_natural_key):
        prefix, _, _ = name.rpartition(".")
        groups.setdefault(prefix, []).append(name)
    return groups


def map_state_dict_keys(
    src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor]
) -> dict[str, str]:
    """Map each key of ``src`` (e.g. the authors' ``Sequential`` keys ``0.weight`` ...
    ``31.6.bias``) to the key of ``dst`` (a ``MaskedVGG`` state dict) for the same tensor.

    Layers are paired by position (numeric module order; ``features`` before ``classifier``),
    leaf names (weight, bias) must agree and every shape must match, else a ValueError says
    which layer differs.
    """
    if set(src) == set(dst):
        pairs = {k: k for k in src}
    else:
        s_groups, d_groups = _groups(list(src)), _groups(list(dst))
        if len(s_groups) != len(d_groups):
            raise ValueError(
                f"the file has {len(s_groups)} parameterised layers, the model "
                f"{len(d_groups)}: {list(s_groups)} vs {list(d_groups)}"
            )
        # Order by module position, not by name: "31.0" (authors) and "classifier.0" (ours).
        d_order = sorted(
            d_groups.items(), key=lambda kv: (not kv[0].startswith("features"), _natural_key(kv[0]))
        )
        pairs = {}
        for (s_prefix, s_names), (d_prefix, d_names) in zip(s_groups.items(), d_order):
            s_leaf = [n.rpartition(".")[2] for n in s_names]
            d_leaf = [n.rpartition(".")[2] for n in d_names]
            if s_leaf != d_leaf:
                raise ValueError(
                    f"layer {s_prefix!r} holds {s_leaf}, model layer {d_prefix!r} holds {d_leaf}"
                )
            pairs.update(zip(s_names, d_names))
    for s_key, d_key in pairs.items():
        if src[s_key].shape != dst[d_key].shape:
            raise ValueError(
                f"shape mismatch: {s_key} {tuple(src[s_key].shape)} in the file, "
                f"{d_key} {tuple(dst[d_key].shape)} in the model"
            )
    return pairs


def load_authors_weights(
    path: str | Path | dict,
    masked_rows: int = 9,
    map_location: str | torch.device = "cpu",
    **kwargs,
) -> MaskedVGG:
    """A ``MaskedVGG`` holding the weights published with Taimeskhanov et al.

    The file holds the state dict of ``Sequential(features[0..29], Flatten, classifier)`` (keys
    ``0.weight`` ... ``28.bias``, ``31.0.weight`` ... ``31.6.bias``). Tensors are matched to the
    model's parameters by order (module indices sorted numerically) and every shape is checked,
    so a ``module.`` prefix, a ``{'model_state_dict': ...}`` wrapper or this project's own key
    names load too. The architecture (width, feature size, hidden, classes, input channels) is
    read from the shapes; ``kwargs`` override it (e.g. ``dropout``). Use ``masked_rows=0`` for
    the authors' unmasked baseline ``params_vgg16_baseline.pt``.
    """
    if isinstance(path, dict):
        raw = path
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no weights file at {path}. The masked VGG weights of Taimeskhanov et al. come from "
                f"{AUTHORS_WEIGHTS_URL}; they are only needed by the 'full' profile - the "
                "'default' profile runs offline with the scaled masked VGG trained here."
            )
        raw = torch.load(path, map_location=map_location, weights_only=True)
    sd = _unwrap_state_dict(raw)
    weights = [sd[n] for g in _groups(list(sd)).values() for n in g if n.endswith("weight")]
    convs = [w for w in weights if w.dim() == 4]
    denses = [w for w in weights if w.dim() == 2]
    if not convs or len(denses) != 3:
        where = "the state dict" if isinstance(path, dict) else path
        raise ValueError(
            f"expected VGG conv layers and 3 dense layers, found {len(convs)} conv "
            f"and {len(denses)} dense weight tensors in {where}"
        )
    w_first, c_last, d0 = convs[0], convs[-1].shape[0], denses[0]
    side = round((d0.shape[1] / c_last) ** 0.5)
    if side * side * c_last != d0.shape[1]:
        raise ValueError(f"first dense layer takes {d0.shape[1]} inputs, not {c_last} x s x s")
    n_convs = {len([v for v in spec if v != "M"]): name for name, spec in CONFIGS.items()}
    if len(convs) not in n_convs:
        raise ValueError(
            f"{len(convs)} conv layers match no config in CONFIGS "
            f"({ {k: len([v for v in s if v != 'M']) for k, s in CONFIGS.items()} })"
        )
    cfg = n_convs[len(convs)]
    n_pools = CONFIGS[cfg].count("M")
    arch = dict(
        cfg=cfg,
        width=w_first.shape[0] / CONFIGS[cfg][0],
        input_size=side * 2**n_pools,
        hidden=d0.shape[0],
        num_classes=denses[2].shape[0],
        in_channels=w_first.shape[1],
        masked_rows=masked_rows,
    )
    arch.update(kwargs)
    model = MaskedVGG(**arch)
    mapped = {dst: sd[src] for src, dst in map_state_dict_keys(sd, model.state_dict()).items()}
    model.load_state_dict(mapped, strict=True)
    lin = model.classifier[0]
    leaked = float(lin.weight.detach()[:, lin.mask == 0].abs().max()) if masked_rows else 0.0
    if leaked > 0:
        warnings.warn(
            f"the file's first dense layer has non-zero weights (max |w| = {leaked:.3g})"
            f" over the {masked_rows} masked rows: is this the unmasked baseline? They "
            "are set to 0 here (the mask is applied in forward anyway)."
        )
    with torch.no_grad():
        lin.weight.mul_(lin.mask)
    return model.eval()
