"""The set-up every notebook runs after its papermill ``parameters`` cell."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

PROFILES = ("smoke", "default", "full")


@dataclass
class Setup:
    profile: str
    device: torch.device
    seed: int
    sizes: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.sizes[name]
        except KeyError:
            raise AttributeError(name) from None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; anything else is passed to torch.device."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but CUDA is not available here; "
                           "use device='auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(profile: str, device: str = "auto", seed: int = 0,
          sizes: dict[str, dict[str, Any]] | None = None,
          given: dict[str, Any] | None = None) -> Setup:
    """Validate the profile, pick the device, seed everything and resolve the profile's sizes.

    ``sizes`` maps a parameter name to its value per profile, e.g.
    ``{"n_images": {"smoke": 2, "default": 16, "full": 1000}}``; a value the reader passed in
    ``given`` (not None) wins over the profile's.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}: 'smoke' runs in "
                         "seconds on a CPU, 'default' is the rendered book (CPU, offline), "
                         "'full' needs the papers' own data and a GPU")
    resolved = {}
    for name, per_profile in (sizes or {}).items():
        value = (given or {}).get(name)
        resolved[name] = per_profile[profile] if value is None else value
    seed_everything(seed)
    return Setup(profile=profile, device=resolve_device(device), seed=seed, sizes=resolved)
