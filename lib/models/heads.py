"""Small wrappers around other models: a linear probe on frozen features, an input normaliser,
and a torchvision ImageNet network with a new classification head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["LinearProbe", "Normalized"]


class LinearProbe(nn.Module):
    """A linear (multi-label) head on frozen, globally pooled features (N, in_features)."""

    def __init__(self, in_features: int = 1280, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)


class Normalized(nn.Module):
    """``model((x - mean) / std)``: a model that takes images in [0, 1], so that images, boxes and
    maps share one input space."""

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
    ):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)
