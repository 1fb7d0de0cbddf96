"""Tiny networks the CAM tests share (imported as ``tiny_models``: pytest puts tests/ on the
path, as for ``idx_files``)."""

import torch
from torch import nn


class GapNet(nn.Module):
    """Two 3x3 convolutions (the last with ``k`` channels), global average pooling, a linear
    head: the CAM setting, where Grad-CAM's weights are exactly the head's (Zhou et al.)."""

    def __init__(self, k=6, classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, k, 3, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(k, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


class SmallVGG(nn.Module):
    """A plain conv stack (no branches), VGG style, on 32 x 32 inputs, with a flatten +
    classifier head of 7 classes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(48 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 7)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class MaxHead(nn.Module):
    """Grad-CAM's pooling worked by hand: A (2 channels, 1 x 2), y = sum(W * A) with
    W = [[3, 1], [0, 2]]: G = W, so mean pooling gives alpha = (2, 1), max pooling (3, 2)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Identity()
        self.w = torch.tensor([[[3.0, 1.0]], [[0.0, 2.0]]], dtype=torch.float64)

    def forward(self, x):
        return (self.w * self.a(x)).sum((1, 2, 3)).unsqueeze(1)
