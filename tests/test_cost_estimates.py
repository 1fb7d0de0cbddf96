"""Each chapter's run-time estimate (its ``COST``, printed by ``lib.notebook.setup`` above the run)
stays within a factor of 2 of the time the chapter was measured to take, so a stale estimate fails.

``MEASURED``: seconds per chapter and profile, from papermill runs on a 2-core CPU (``default``:
a clean ``make book``, Jupyter Book's "Executed notebook ... in N seconds" lines; ``smoke``:
``make smoke-notebooks``). Re-measure and update them when a chapter's work changes.
"""

import importlib
import re

import pytest

MEASURED = {  # chapter: (module, smoke s, default s); "module:NAME" for a page's own COST_...
    "01_methods_tour": ("methods_tour", 40, 77),
    "02_gradcam_fundamentals": ("gradcam_fundamentals", 11, 13),
    "02b_gradcam_design_choices": ("gradcam_fundamentals:COST_DESIGN", 17, 66),
    "03_receptive_fields": ("receptive_fields", 24, 31),
    "04_walls_theory": ("walls_theory", 8, 14),
    "05_walls_experiments": ("walls_experiments", 16, 15),
    "06_unet_resolution": ("unet_resolution", 11, 24),
    "07_gradcam_localization": ("gradcam_localization", 25, 30),
    "08_gradcam_faithfulness": ("gradcam_faithfulness", 20, 114),
    "09_explanation_cost": ("explanation_cost", 83, 108),
    "10_sanity_checks": ("sanity_checks", 104, 139),
}
FACTOR = 2.0


def cost_of(module: str) -> tuple[dict[str, str], str]:
    """(the estimates, their name) of a MEASURED entry: ``module`` or ``module:NAME`` (a chapter
    split into pages keeps one module, with one estimate per page)."""
    module, _, name = module.partition(":")
    name = name or "COST"
    return getattr(importlib.import_module(f"lib.chapters.{module}"), name), name


_NUMBER = {"a": 1, "an": 1, "one": 1, "half a": 0.5, "two": 2, "three": 3, "four": 4, "few": 3}
_UNIT = {
    "second": 1,
    "seconds": 1,
    "s": 1,
    "minute": 60,
    "minutes": 60,
    "min": 60,
    "hour": 3600,
    "hours": 3600,
    "h": 3600,
}


def estimate_seconds(text: str) -> tuple[float, float]:
    """(low, high) seconds of an estimate in words: "about 2 minutes", "1 to 3 minutes",
    "2-3 minutes", "~1 min", "under a minute", "about half a minute", "about 15 seconds"."""
    head = text.split(" on ")[0].split(" (")[0].strip().lower().lstrip("~")
    m = re.fullmatch(
        r"(under|about|around)?\s*(half a|an?|one|two|three|four|few|[\d.]+)"
        r"(?:\s*(?:to|-)\s*([\d.]+))?\s*(seconds?|minutes?|min|hours?|h|s)",
        head,
    )
    if m is None:
        raise ValueError(f"cannot read the estimate {text!r} as a time")
    word, lo, hi, unit = m.groups()
    lo = _NUMBER.get(lo, None) or float(lo)
    hi = float(hi) if hi else lo
    lo, hi = lo * _UNIT[unit], hi * _UNIT[unit]
    return (0.0, hi) if word == "under" else (lo, hi)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("about 2 minutes on a 2-core CPU", (120, 120)),
        ("1 to 3 minutes on a 2-core CPU", (60, 180)),
        ("~1 min on a CPU (trains tiny models)", (60, 60)),
        ("under a minute on a CPU", (0, 60)),
        ("about half a minute on a 2-core CPU", (30, 30)),
        ("about 1.5 minutes", (90, 90)),
        ("2-3 minutes", (120, 180)),
        ("about 15 seconds on a CPU", (15, 15)),
    ],
)
def test_estimates_are_read_as_worked_by_hand(text, expected):
    assert estimate_seconds(text) == expected


def test_an_unreadable_estimate_is_an_error():
    with pytest.raises(ValueError, match="cannot read"):
        estimate_seconds("quick")


@pytest.mark.parametrize("chapter", list(MEASURED))
@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_cost_estimate_within_a_factor_of_two_of_the_measured_time(chapter, profile):
    module, smoke, default = MEASURED[chapter]
    cost, _ = cost_of(module)
    measured = {"smoke": smoke, "default": default}[profile]
    lo, hi = estimate_seconds(cost[profile])
    # "under a minute" promises at most a minute: only its upper end is checked
    assert (lo == 0 or measured >= lo / FACTOR) and measured <= hi * FACTOR, (
        f"{chapter} on {profile}: the estimate {cost[profile]!r} ({lo:.0f}-{hi:.0f} s) is more "
        f"than {FACTOR:g}x off the measured {measured} s; word it from the measurement"
    )


def test_every_chapter_notebook_passes_its_estimate():
    from pathlib import Path

    for chapter, (module, _, _) in MEASURED.items():
        text = (Path(__file__).resolve().parents[1] / "notebooks" / f"{chapter}.md").read_text()
        _, name = cost_of(module)
        assert f"cost=chapter.{name}," in text, (
            f"{chapter} does not pass cost=chapter.{name} to setup"
        )
