"""Tests for lib.chapters.methods_tour's scores and verdict rules, on hand-made maps and masks."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from lib import verdict as V
from lib.chapters import methods_tour as T
from lib.formatting import signed


def _masks(n: int) -> torch.Tensor:
    """n 4x4 masks of the top-left 2x2 box: a box share of 1/4."""
    m = torch.zeros(n, 4, 4, dtype=torch.bool)
    m[:, :2, :2] = True
    return m


def test_box_scores_per_photo_by_hand_and_the_table_unchanged():
    masks = _masks(3)
    maps = torch.zeros(3, 4, 4)
    maps[0, :2, :2] = 1.0  # all mass in the box: 1, hit
    maps[1] = 1.0  # even: 4/16 = 0.25, arg-max (0, 0) in the box
    maps[2, 3, 3] = 2.0  # all outside: 0, miss
    maps[2, 0, 0] = 2.0 / 3  # ... plus a little inside: (2/3) / (8/3) = 0.25; arg-max outside
    per = T.box_scores_per_photo({"gradcam": maps}, masks, ["a", "b", "c"])
    assert per["photo"].tolist() == ["a", "b", "c"]
    assert per["mass in box"].tolist() == pytest.approx([1.0, 0.25, 0.25])
    assert per["hit"].tolist() == [1.0, 1.0, 0.0]
    assert per["box share of image"].tolist() == pytest.approx([0.25] * 3)
    table = T.box_scores({"gradcam": maps}, masks).loc["gradcam"]
    assert table["mass in box"] == pytest.approx(per["mass in box"].mean())
    assert table["hit rate"] == pytest.approx(per["hit"].mean())
    assert table["box share of image"] == pytest.approx(per["box share of image"].mean())
    with pytest.raises(ValueError, match="2 names for 3 masks"):
        T.box_scores_per_photo({"gradcam": maps}, masks, ["a", "b"])


def _per_photo(mass, share, empty=None):
    n = len(mass)
    return pd.DataFrame(
        {
            "method": "gradcam",
            "photo": range(n),
            "mass in box": mass,
            "hit": 1.0,
            "empty": empty or [False] * n,
            "box share of image": share,
        }
    )


def test_localisation_verdict_three_outcomes_empty_maps_and_one_photo():
    share = [0.2, 0.3, 0.25, 0.4, 0.1, 0.35]
    holds = T.localisation_verdict(_per_photo([0.8, 0.7, 0.9, 0.6, 0.5, 0.75], share))
    assert holds.outcome == V.HOLDS and holds.n == 6
    assert holds.estimate == pytest.approx((4.25 - 1.6) / 6)
    fails = T.localisation_verdict(_per_photo([0.1, 0.2, 0.15, 0.3, 0.05, 0.2], share))
    assert fails.outcome == V.FAILS
    mixed = T.localisation_verdict(_per_photo([0.3, 0.2, 0.35, 0.3, 0.2, 0.25], share))
    assert mixed.outcome == V.UNDECIDED and mixed.low < 0 < mixed.high
    # an empty map (NaN mass) is left out and said so; the verdict never sees a NaN
    emp = T.localisation_verdict(
        _per_photo(
            [0.8, float("nan"), 0.9, 0.6, 0.5, 0.75],
            share,
            [False, True, False, False, False, False],
        )
    )
    assert emp.n == 5 and "1 empty map(s) left out" in emp.rule
    # one photograph: no interval, no outcome
    one = T.localisation_verdict(_per_photo([0.8], [0.2]))
    assert one.outcome == V.NOT_RUN
    assert math.isnan(one.estimate) and "1 photograph(s) with a map" in one.method


def test_the_facts_the_chapter_words_its_localisation_verdict_from():
    """The chapter words the verdict from its estimate and interval, written with their sign
    (``lib.formatting.signed``), and a verdict not run here reads "—", never "+nan"."""
    share = [0.2, 0.3, 0.25, 0.4, 0.1, 0.35]
    holds = T.localisation_verdict(_per_photo([0.8, 0.7, 0.9, 0.6, 0.5, 0.75], share))
    # the differences 0.6, 0.4, 0.65, 0.2, 0.4, 0.4: mean 2.65 / 6 = 0.44166...
    assert signed(holds.estimate, 2) == "+0.44"
    assert holds.low < holds.estimate < holds.high and holds.low > 0
    fails = T.localisation_verdict(_per_photo([0.1, 0.2, 0.15, 0.3, 0.05, 0.2], share))
    # the differences -0.1, -0.1, -0.1, -0.1, -0.05, -0.15: mean -0.6 / 6 = -0.1
    assert signed(fails.estimate, 2) == "-0.10" and fails.high < 0
    one = T.localisation_verdict(_per_photo([0.8], [0.2]))
    assert [signed(x, 2) for x in (one.estimate, one.low, one.high)] == ["—"] * 3
    assert signed(0.0, 2) == "+0.00" and signed(-0.004, 2) == "-0.00"
    with pytest.raises(ValueError, match="a number or NaN"):
        signed("0.4")


def test_checks_measure_their_error():
    exp = pd.DataFrame({"photo": ["a", "b", "c"], "holds": [True, False, True]})
    v = T.predictions_check(exp)
    assert (v.outcome, v.estimate) == (V.FAILS, 1.0)
    assert T.predictions_check(exp.assign(holds=True)).outcome == V.HOLDS
    assert T.reference_check({"gradcam": 2e-7, "hirescam": 5e-7}).estimate == pytest.approx(5e-7)
    assert T.reference_check({"gradcam": 2e-3}).outcome == V.FAILS
