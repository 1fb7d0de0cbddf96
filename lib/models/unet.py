"""A U-Net used as a classifier (Mascolini et al.): encoder-decoder, global average pooling, linear head;
``skips=False`` gives the "ablated" U-Net with the same layer names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNetClassifier", "DoubleConv"]


class DoubleConv(nn.Sequential):
    """(conv3x3 - BN - ReLU) x 2, the U-Net block."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )


class UNetClassifier(nn.Module):
    """U-Net (Ronneberger et al.) with GAP + linear head, a classifier whose last conv maps have
    the input's resolution.

    Encoder ``enc1..enc{depth}`` (each followed by a 2x2 max-pool ``down{i}``), ``bottleneck``, decoder
    ``up{i}`` (2x2 transposed conv) and ``dec{i}`` for i = depth..1; with ``skips=True`` ``dec{i}``
    takes the concatenation of ``up{i}``'s output and ``enc{i}``'s, with ``skips=False`` only
    ``up{i}``'s (the paper's ablation: same names, narrower ``dec{i}`` inputs). Then ``pool``
    (GAP) and ``fc``. The CAM target layer, the last decoder layer, is ``target_layer = "dec1"``.
    Inputs of any size work (odd sizes are padded back to the encoder's size in the decoder).
    """

    target_layer = "dec1"

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        base: int = 8,
        depth: int = 3,
        skips: bool = True,
    ):
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"depth ({depth}) and base ({base}) must be >= 1")
        self.depth, self.skips = depth, skips
        widths = [base * 2**i for i in range(depth + 1)]
        c = in_channels
        for i in range(1, depth + 1):
            self.add_module(f"enc{i}", DoubleConv(c, widths[i - 1]))
            self.add_module(f"down{i}", nn.MaxPool2d(2))
            c = widths[i - 1]
        self.bottleneck = DoubleConv(c, widths[depth])
        for i in range(depth, 0, -1):
            self.add_module(f"up{i}", nn.ConvTranspose2d(widths[i], widths[i - 1], 2, stride=2))
            c_dec = 2 * widths[i - 1] if skips else widths[i - 1]
            self.add_module(f"dec{i}", DoubleConv(c_dec, widths[i - 1]))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[0], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"enc{i}")(x)
            enc.append(x)
            x = getattr(self, f"down{i}")(x)
        x = self.bottleneck(x)
        for i in range(self.depth, 0, -1):
            x = getattr(self, f"up{i}")(x)
            skip = enc[i - 1]
            dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
            if dh or dw:  # odd sizes: pad back to the encoder's size
                x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
            x = getattr(self, f"dec{i}")(torch.cat([x, skip], 1) if self.skips else x)
        return self.fc(self.flatten(self.pool(x)))
