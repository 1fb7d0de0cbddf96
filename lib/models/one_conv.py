"""The [CNN] of Taimeskhanov et al., Section 2 (Taimeskhanov, Sicre, Garreau, *CAM-based methods can see
through walls*): one convolution, ReLU, max-pool, an L-layer ReLU MLP, optionally masked so that
it cannot see the lower part of its input.

Notation follows the paper (Eq. 1-3, Figure 2): input xi (H x W, after the optional zero
padding), A = conv(xi) (V x h x w), B = ReLU(A), C = maxpool(B) (V x h' x w'), C' = flatten(C),
a^(l) = W^(l) ReLU(a^(l-1)) with a^(0) = C'. Grad-CAM's target layer is ``relu`` (its output is B).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .masked_vgg import MaskedLinear  # W * mask in every forward: the wall cannot be trained away

__all__ = ["OneConvNet", "mnist_one_conv_net", "init_gaussian_", "effective_weight"]


class OneConvNet(nn.Module):
    """[CNN] of Taimeskhanov et al. (Figure 2, Eq. 1-3): pad -> conv -> ReLU -> max-pool -> flatten -> MLP.

    Args:
        n_filters: V, the number of k x k filters (single input channel unless ``in_channels``).
        kernel_size: k. ``h = H - k + 1`` (no padding inside the convolution, Eq. 1).
        pool_size: k', the max-pool window and stride; it must divide h and w.
        input_size: (H, W) of the image given to ``forward`` (before ``pad``).
        pad: zero padding (left, right, top, bottom) applied first, as ``F.pad``; the paper's MNIST
            set-up pads 28 x 28 to 29 x 29 with (0, 1, 1, 0) (their code).
        hidden: widths d_1 ... d_{L-1} of the hidden layers; ``()`` gives L = 1 (a linear head).
        n_classes: d_L, the number of logits.
        conv_bias, mlp_bias: the paper has none (Eq. 1 and 3); kept as options.
        mask_rows: the last ``mask_rows`` rows (of h') of every channel of C are cut from the first
            dense layer W^(1) (``W[:, :, -mask_rows:, :] = 0``, Theorem 3 and Section 3.1).
    """

    def __init__(
        self,
        n_filters: int,
        kernel_size: int = 2,
        pool_size: int = 2,
        input_size: tuple[int, int] = (28, 28),
        pad: tuple[int, int, int, int] = (0, 0, 0, 0),
        hidden: Sequence[int] = (),
        n_classes: int = 10,
        in_channels: int = 1,
        conv_bias: bool = False,
        mlp_bias: bool = False,
        mask_rows: int = 0,
    ):
        super().__init__()
        H = input_size[0] + pad[2] + pad[3]
        W = input_size[1] + pad[0] + pad[1]
        h, w = H - kernel_size + 1, W - kernel_size + 1
        if h <= 0 or w <= 0:
            raise ValueError(f"kernel_size={kernel_size} is larger than the padded input {H}x{W}")
        if h % pool_size or w % pool_size:
            raise ValueError(
                f"the conv output is {h}x{w}, which pool_size={pool_size} does not divide "
                f"(the paper assumes k' | h and k' | w); change the padding or the input size, "
                f"e.g. pad 28x28 MNIST to 29x29 for k=2, k'=2"
            )
        hp, wp = h // pool_size, w // pool_size
        if not 0 <= mask_rows <= hp:
            raise ValueError(f"mask_rows={mask_rows} must lie in [0, h'={hp}]")
        self.n_filters, self.kernel_size, self.pool_size = n_filters, kernel_size, pool_size
        self.input_size, self.padding, self.mask_rows = tuple(input_size), tuple(pad), mask_rows
        self.conv_size, self.pooled_size = (h, w), (hp, wp)

        self.pad = nn.ZeroPad2d(pad)
        self.conv = nn.Conv2d(in_channels, n_filters, kernel_size, bias=conv_bias)
        self.relu = nn.ReLU()  # not in place: Grad-CAM hooks its output, B
        self.pool = nn.MaxPool2d(pool_size)
        self.flatten = nn.Flatten()
        d0 = n_filters * hp * wp
        mask = torch.ones(n_filters, hp, wp)  # over W^(1)'s inputs, the flattened C
        if mask_rows:
            mask[:, hp - mask_rows :, :] = 0
        widths = [d0, *hidden, n_classes]
        layers: list[nn.Module] = []
        for ell, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
            if ell == 0:
                layers.append(MaskedLinear(d_in, d_out, mask=mask.reshape(-1), bias=mlp_bias))
            else:
                layers += [nn.ReLU(), nn.Linear(d_in, d_out, bias=mlp_bias)]
        self.mlp = nn.Sequential(*layers)

    @property
    def n_layers(self) -> int:
        """L, the number of dense layers."""
        return sum(isinstance(m, nn.Linear) for m in self.mlp)

    @property
    def dense_layers(self) -> list[nn.Linear]:
        """W^(1) ... W^(L), in order."""
        return [m for m in self.mlp if isinstance(m, nn.Linear)]

    @property
    def feature_dead_row(self) -> int:
        """First row of B (h x w) that reaches only masked units of W^(1): rows >= it are unseen."""
        return self.pool_size * (self.pooled_size[0] - self.mask_rows)

    @property
    def input_dead_row(self) -> int:
        """First row of the *unpadded* input from which the logits are independent (the dead zone).

        Input row r (padded coordinates) feeds B rows r-k+1 .. r; it is seen when one of them
        is a seen row, i.e. r <= feature_dead_row - 1 + k - 1. Equals the input height when
        nothing is masked.
        """
        if self.mask_rows == 0:
            return self.input_size[0]
        first_padded = self.feature_dead_row + self.kernel_size - 1
        return min(max(first_padded - self.padding[2], 0), self.input_size[0])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """B = ReLU(conv(pad(x))), shape (N, V, h, w)."""
        return self.relu(self.conv(self.pad(x)))

    def head(self, b: torch.Tensor) -> torch.Tensor:
        """f(B) = F(M(B)) of Eq. 4: the logits from the rectified maps B."""
        return self.mlp(self.flatten(self.pool(b)))

    def pre_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[a^(1), ..., a^(L)] of Eq. 3 (a^(L) are the logits)."""
        out, acts = self.flatten(self.pool(self.features(x))), []
        for m in self.mlp:
            out = m(out)
            if isinstance(m, nn.Linear):
                acts.append(out)
        return acts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"input is {tuple(x.shape[-2:])}, this [CNN] was built for "
                f"{self.input_size} (before its padding {self.padding})"
            )
        return self.head(self.features(x))


def effective_weight(layer: nn.Linear) -> torch.Tensor:
    """The weight a dense layer really applies: W * mask for a ``MaskedLinear``, else W."""
    mask = getattr(layer, "mask", None)
    return layer.weight if mask is None else layer.weight * mask


def init_gaussian_(
    model: nn.Module, tau: float = 1.0, generator: torch.Generator | None = None
) -> nn.Module:
    """Draw every conv and linear weight (and bias) i.i.d. N(0, tau^2), in place (Theorem 3).

    Masks stay in force: ``MaskedLinear`` applies its mask in ``forward``.
    """
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                for p in (m.weight, m.bias):
                    if p is not None:
                        dev = p.device if generator is None else generator.device
                        draw = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=dev)
                        p.copy_(draw.to(p.device) * tau)
    return model


def mnist_one_conv_net(
    n_filters: int = 256,
    mask_rows: int = 7,
    hidden: Sequence[int] = (),
    tau: float = 1.0,
    generator: torch.Generator | None = None,
) -> OneConvNet:
    """The paper's MNIST set-up (Figure 3): 28x28 padded to 29x29 with (0, 1, 1, 0),
    Conv2d(1, 256, 2, bias=False), ReLU, MaxPool2d(2), Linear(256*14*14, 10, bias=False),
    the last 7 rows (of 14) of W masked, everything N(0, 1)."""
    model = OneConvNet(
        n_filters,
        kernel_size=2,
        pool_size=2,
        input_size=(28, 28),
        pad=(0, 1, 1, 0),
        hidden=hidden,
        n_classes=10,
        mask_rows=mask_rows,
    )
    return init_gaussian_(model, tau, generator)
