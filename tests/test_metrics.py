"""Metrics against values worked out by hand."""

import math

import pytest
import torch

from lib import metrics


def test_mass_in_mask_by_hand():
    maps = torch.tensor([[[1.0, 3.0], [0.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = torch.tensor([[[1, 1], [0, 0]], [[1, 0], [0, 0]]], dtype=torch.bool)
    s = metrics.mass_in_mask(maps, masks, empty="nan")
    assert s[0] == 0.5 and s[1].isnan()  # the empty map has no share: NaN, asked for explicitly
    with pytest.raises(ValueError, match="non-negative"):
        metrics.mass_in_mask(-maps, masks)
    with pytest.raises(ValueError, match="up-sample"):
        metrics.mass_in_mask(maps, masks[:, :1])


def test_hit_by_hand_with_tolerance():
    maps = torch.zeros(2, 5, 5)
    maps[0, 4, 4] = 1.0  # arg-max in the corner
    maps[1, 0, 0] = 1.0
    masks = torch.zeros(2, 5, 5, dtype=torch.bool)
    masks[:, 0:2, 0:2] = True
    assert torch.equal(metrics.hit(maps, masks), torch.tensor([0.0, 1.0]))
    # (4, 4) is sqrt(18) = 4.24 px from the box's corner (1, 1): the tolerance is a disc, so
    # 4 px misses and 5 px hits (a square tolerance would already hit at 3 px)
    assert metrics.hit(maps, masks, tolerance=3)[0] == 0
    assert metrics.hit(maps, masks, tolerance=4)[0] == 0
    assert metrics.hit(maps, masks, tolerance=5)[0] == 1
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        metrics.hit(maps, masks, tolerance=-1)


def test_iou_top_area_by_hand():
    # box of area 4 (2x2); the map's top-4 pixels are the box's left column + 2 outside
    maps = torch.tensor([[[9.0, 1.0, 8.0], [7.0, 0.0, 6.0], [0.0, 0.0, 0.0]]])
    masks = torch.tensor([[[1, 1, 0], [1, 1, 0], [0, 0, 0]]], dtype=torch.bool)
    # top-4 = {(0,0), (0,2), (1,0), (1,2)}; inside: 2; union: 4 + 4 - 2 = 6
    assert torch.allclose(metrics.iou_top_area(maps, masks), torch.tensor([2 / 6]))
    with pytest.raises(ValueError, match="empty"):
        metrics.iou_top_area(maps, torch.zeros_like(masks))


def test_dead_zone_ratio_by_hand():
    maps = torch.zeros(2, 4, 3)
    maps[0, :2] = 1.0  # seen rows only
    maps[0, 3, 0] = 2.0  # one dead pixel
    # ||dead|| = 2, ||all|| = sqrt(6 + 4)
    mu = metrics.dead_zone_ratio(maps, slice(3, None), empty="nan")
    assert mu[0] == pytest.approx(2 / math.sqrt(10)) and mu[1].isnan()
    assert metrics.dead_zone_ratio(maps[:1], slice(3, None)) == pytest.approx(2 / math.sqrt(10))


def test_empty_maps_are_never_scored_silently():
    """Issue #9, item 2: a map that is zero everywhere has no mass to place. It used to score 0
    ("no leak", "nothing in the box"); now it is refused, naming the maps, unless the caller
    asks for NaN, and is_empty counts such maps."""
    maps = torch.zeros(3, 4, 4)
    maps[1, 0, 0] = 1.0
    masks = torch.ones(3, 4, 4, dtype=torch.bool)
    assert torch.equal(metrics.is_empty(maps), torch.tensor([True, False, True]))
    with pytest.raises(
        ValueError, match=r"2 of 3 maps are zero everywhere \(maps \[0, 2\]\).*empty='nan'"
    ):
        metrics.dead_zone_ratio(maps, slice(2, None))
    with pytest.raises(ValueError, match="2 of 3 maps are zero everywhere"):
        metrics.mass_in_mask(maps, masks)
    mu = metrics.dead_zone_ratio(maps, slice(2, None), empty="nan")
    assert torch.equal(mu.isnan(), metrics.is_empty(maps)) and mu[1] == 0.0
    s = metrics.mass_in_mask(maps, masks, empty="nan")
    assert torch.equal(s.isnan(), metrics.is_empty(maps))
    with pytest.raises(ValueError, match="empty must be"):
        metrics.dead_zone_ratio(maps, slice(2, None), empty="zero")
