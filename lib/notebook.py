"""The set-up every notebook runs after its papermill ``parameters`` cell."""

from __future__ import annotations

import json
import os
import random
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .environment import random_stand_ins

PROFILES = ("smoke", "default", "full")
#: the full-profile rehearsal's size overrides: a JSON object of SIZES names and values, read
#: only where ``GRADCAM_BOOK_REHEARSAL=1`` (the rehearsal runs every chapter in miniature)
SIZES_VARIABLE = "GRADCAM_BOOK_SIZES"
#: the line every page of the rehearsal shows below its set-up
REHEARSAL_NOTE = (
    "Rehearsal: this run is the full profile's rehearsal on a miniature data root, "
    "with randomly initialised stand-ins for the ImageNet weights. Nothing on this "
    "page is a result; its claim records go to the rehearsal's own folder, never "
    "to the summary page."
)


class ProfileCostWarning(UserWarning):
    """The profile will run for hours on the device found (``full`` on a CPU)."""


@dataclass
class Setup:
    profile: str
    device: torch.device
    seed: int
    sizes: dict[str, Any] = field(default_factory=dict)
    device_name: str = field(default="", repr=False)

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
        raise RuntimeError(
            f"device={device!r} was asked for but CUDA is not available here; "
            "use device='auto' or 'cpu'"
        )
    return dev


def device_name(device: torch.device) -> str:
    """A short human name of the device, e.g. "NVIDIA H100 80GB HBM3 (cuda)" or "CPU (2 cores)"."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    if device.type == "cpu":
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return f"CPU ({n} core{'s' if n != 1 else ''})"
    if device.type == "mps":
        return "Apple GPU (mps)"
    return str(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(
    profile: str,
    device: str = "auto",
    seed: int = 0,
    sizes: dict[str, dict[str, Any]] | None = None,
    given: dict[str, Any] | None = None,
    cost: dict[str, str] | None = None,
) -> Setup:
    """Validate the profile, pick the device, seed everything and resolve the profile's sizes.

    ``sizes`` maps a parameter name to its value per profile, e.g.
    ``{"n_images": {"smoke": 2, "default": 16, "full": 1000}}``; a value the reader passed in
    ``given`` (not None) wins over the profile's. ``cost`` is the notebook's own estimate of its
    run time per profile (e.g. ``{"default": "~2 min on a 2-core CPU", "full": "~1 h on one
    GPU"}``). Prints one line, the profile, the device and that estimate, to stderr: a reader of
    the notebook (Jupyter, Colab) sees it above the run, the book's pages do not (the book drops
    stderr, ``_config.yml``; a machine's run time is no part of a page). ``full`` on a CPU also
    raises a ProfileCostWarning (it needs a GPU and would run for hours).
    """
    if profile not in PROFILES:
        raise ValueError(
            f"profile must be one of {PROFILES}, got {profile!r}: 'smoke' runs in "
            "seconds on a CPU, 'default' is the rendered book (CPU, offline), "
            "'full' needs the papers' own data and a GPU"
        )
    unknown = sorted(set(cost or {}) - set(PROFILES))
    if unknown:
        raise ValueError(f"cost has estimates for {unknown}, which are not profiles {PROFILES}")
    given = {**(given or {}), **rehearsal_sizes(sizes or {})}
    resolved = {}
    for name, per_profile in (sizes or {}).items():
        value = given.get(name)
        resolved[name] = per_profile[profile] if value is None else value
    dev = resolve_device(device)
    name = device_name(dev)
    estimate = (cost or {}).get(profile)
    print(f"profile {profile!r} on {name}" + (f": {estimate}" if estimate else ""), file=sys.stderr)
    if profile == "full" and dev.type == "cpu":
        warnings.warn(
            f"profile 'full' needs a GPU: on this {name} it will take hours"
            + (f" (the notebook's estimate is {estimate})" if estimate else "")
            + ". To render the book on a CPU, run it with `-p profile default` (papermill) or "
            'set profile = "default" in the parameters cell.',
            ProfileCostWarning,
            stacklevel=2,
        )
    if random_stand_ins():
        _show_rehearsal_note()
    seed_everything(seed)
    return Setup(profile=profile, device=dev, seed=seed, sizes=resolved, device_name=name)


def rehearsal_sizes(sizes: dict[str, Any]) -> dict[str, Any]:
    """The rehearsal's overrides of ``sizes`` (``GRADCAM_BOOK_SIZES``, JSON), {} outside it. A name
    that is not one of the chapter's sizes, or the variable set outside the rehearsal, is an
    error (a typo would otherwise run the full sizes for hours)."""
    raw = os.environ.get(SIZES_VARIABLE)
    if not raw:
        return {}
    if not random_stand_ins():
        raise RuntimeError(
            f"{SIZES_VARIABLE} is set but this is not the rehearsal "
            "(GRADCAM_BOOK_REHEARSAL=1): unset it, and pass sizes as the notebook's "
            "parameters"
        )
    over = json.loads(raw)
    unknown = sorted(set(over) - set(sizes))
    if unknown:
        raise ValueError(
            f"{SIZES_VARIABLE} names {unknown}, which are not sizes of this chapter "
            f"({sorted(sizes)})"
        )
    return over


def _show_rehearsal_note() -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:  # outside a kernel
        print(REHEARSAL_NOTE)
        return
    display(Markdown(f"**{REHEARSAL_NOTE}**"))
