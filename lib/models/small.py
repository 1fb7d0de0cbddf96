"""Small CNNs of Nagy et al. (the MNIST net of Table 7) and 002 (GAP vs GMP heads)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["MnistNet", "PooledCNN", "gap_net", "gmp_net"]


class MnistNet(nn.Module):
    """Nagy et al.'s MNIST network: Conv2d(1,20,5), MaxPool2d(2), ReLU, Linear(2880,50), ReLU,
    Linear(50,10).

    For a 28x28 input the conv gives 20x24x24, the pool 20x12x12 = 2880 features. Grad-CAM's
    target layer is ``relu1`` (the rectified 20x12x12 maps), named in ``target_layer``.
    """

    target_layer = "relu1"

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28):
        super().__init__()
        if (input_size - 4) % 2:
            raise ValueError(
                f"input_size={input_size}: the 5x5 conv and 2x2 pool need "
                "input_size - 4 even (28 gives the paper's 2880 features)"
            )
        side = (input_size - 4) // 2
        self.input_size = input_size
        self.conv1 = nn.Conv2d(in_channels, 20, kernel_size=5)
        self.pool1 = nn.MaxPool2d(2)
        self.relu1 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(20 * side * side, 50)
        self.relu2 = nn.ReLU()
        self.fc2 = nn.Linear(50, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.pool1(self.conv1(x)))
        return self.fc2(self.relu2(self.fc1(self.flatten(x))))


class PooledCNN(nn.Module):
    """A small CNN ending in global pooling and one linear layer (Selvaraju et al., GAP vs GMP).

    ``features`` holds ``len(channels)`` blocks conv3x3-BN-ReLU, each but the last followed by a
    2x2 max-pool; then global average (``pool="avg"``, a CAM network: GAP + linear head) or
    global max (``pool="max"``) pooling and ``fc``. The CAM target layer is the last ReLU,
    ``features.relu{n}``, given by ``target_layer``. Fully convolutional up to the pooling, so it
    runs on inputs of any size (e.g. 64 px scenes after training on 28 px items).
    """

    def __init__(
        self,
        pool: str = "avg",
        num_classes: int = 10,
        in_channels: int = 1,
        channels: tuple[int, ...] = (32, 64, 128),
    ):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' (GAP) or 'max' (GMP), got {pool!r}")
        layers: list[tuple[str, nn.Module]] = []
        c_in = in_channels
        for i, c in enumerate(channels, start=1):
            layers += [
                (f"conv{i}", nn.Conv2d(c_in, c, 3, padding=1, bias=False)),
                (f"bn{i}", nn.BatchNorm2d(c)),
                (f"relu{i}", nn.ReLU()),
            ]
            if i < len(channels):
                layers.append((f"pool{i}", nn.MaxPool2d(2)))
            c_in = c
        self.pool_type = pool
        self.features = nn.Sequential(OrderedDict(layers))
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, num_classes)
        self.target_layer = f"features.relu{len(channels)}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


def gap_net(**kwargs) -> PooledCNN:
    """The GAP-head network of Selvaraju et al. (a CAM network)."""
    return PooledCNN(pool="avg", **kwargs)


def gmp_net(**kwargs) -> PooledCNN:
    """The same network with a global-max-pooling head."""
    return PooledCNN(pool="max", **kwargs)
