"""Tests for lib.resample: Santos et al.'s down-then-up resampling and the RF-centred
up-sampling, with values worked out by hand on tiny maps and F.interpolate as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from lib import resample
from lib import rf as R


def _meta(fn):
    with torch.device("meta"):
        return fn()


def _bilinear(m: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


# ------------------------------------------------------------------------------------------
# Down-sample to the last layer's grid, then up-sample
# ------------------------------------------------------------------------------------------


def test_down_up_by_hand():
    m = torch.zeros(1, 4, 4)
    m[0, :2, :2] = torch.tensor([[1.0, 3.0], [5.0, 7.0]])  # block mean 4
    out = resample.down_up(m, (2, 2), 4)
    # 2 units -> 4 px (align_corners=False): units at pixels 0.5 and 2.5, edges held:
    # [4, 0] -> [4, 3, 1, 0] per axis, the 2-D map is the outer product / 4
    p = torch.tensor([4.0, 3.0, 1.0, 0.0])
    assert torch.allclose(out[0], torch.outer(p, p) / 4)


def test_down_up_relu_before_pooling_and_identity_grid():
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0], m[0, 0, 1] = 8.0, -8.0  # the negative value is cut before averaging
    out = resample.down_up(m, (2, 2), 2)
    assert torch.allclose(out[0], torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    # without the ReLU the two cancel
    assert torch.allclose(resample.down_up(m, (2, 2), 2, relu=False), torch.zeros(1, 2, 2))
    # a map already on the grid is only up-sampled
    g = torch.rand(2, 3, 3)
    assert torch.allclose(resample.down_up(g, (3, 3), 9), _bilinear(g, 9))


def test_down_up_errors_name_the_fix():
    with pytest.raises(ValueError, match="last .coarsest. layer first"):
        resample.down_up(torch.rand(1, 2, 2), (4, 4), 8)
    with pytest.raises(ValueError, match=r"\(N, h, w\)"):
        resample.down_up(torch.rand(2, 1, 4, 4), (2, 2), 8)


def test_down_up_on_given_centres_is_bilinear_on_the_bilinear_grid():
    m = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(1))
    c = resample.upsample_centres(3, 12)
    assert torch.allclose(
        resample.down_up(m, (3, 3), 12, centres=(c, c)), resample.down_up(m, (3, 3), 12), atol=1e-6
    )


def test_pool_centres():
    # ResNet-like: layer3 units at 16 i, pooled 2 -> 1 onto layer4's grid: 8, 40, 72
    assert np.allclose(resample.pool_centres(16.0 * np.arange(6), 3), [8, 40, 72])
    # adaptive pooling of 5 units to 2: windows [0, 3) and [2, 5) (they overlap)
    assert np.allclose(resample.pool_centres([0.0, 1.0, 2.0, 3.0, 4.0], 2), [1.0, 3.0])
    with pytest.raises(ValueError, match="cannot pool 2 units down to 3"):
        resample.pool_centres(np.arange(2.0), 3)
    with pytest.raises(ValueError, match="positive number"):
        resample.pool_centres(np.arange(4.0), 0)


# ------------------------------------------------------------------------------------------
# RF-centred up-sampling
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,size", [(7, 224), (5, 13), (4, 4), (1, 6)])
def test_upsample_at_centres_is_bilinear_on_the_bilinear_grid(n, size):
    m = torch.rand(3, n, n + 1, generator=torch.Generator().manual_seed(n))
    ours = resample.upsample_at_centres(
        m,
        resample.upsample_centres(n, size),
        resample.upsample_centres(n + 1, size + 3),
        (size, size + 3),
    )
    assert torch.allclose(ours, _bilinear(m, (size, size + 3)), atol=1e-6)


def test_rf_centred_equals_bilinear_for_vgg16():
    cy, cx = R.rf_centres(_meta(torchvision.models.vgg16), "features.29", 224)
    m = torch.rand(2, 14, 14, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(
        resample.upsample_at_centres(m, cy, cx, 224), _bilinear(m, 224), atol=1e-6
    )


def test_rf_centred_is_shifted_by_15_5_px_for_resnet50():
    cy, cx = R.rf_centres(_meta(torchvision.models.resnet50), "layer4", 224)
    m = torch.zeros(1, 7, 7)
    m[0, 3, 2] = 1.0  # one active unit: the peak sits at its RF centre (96, 64) ...
    rfmap = resample.upsample_at_centres(m, cy, cx, 224)[0]
    assert divmod(int(rfmap.argmax()), 224) == (96, 64) and rfmap[96, 64] == 1.0
    # ... and bilinear up-sampling puts it at (111.5, 79.5): pixels 111/112 and 79/80 tie
    bil = _bilinear(m, 224)[0]
    assert divmod(int(bil.argmax()), 224) == (111, 79)
    assert bil[111, 79] == pytest.approx((1 - 0.5 / 32) ** 2)
    # the same triangle (half-width 32 px, the jump), moved by 15.5 px
    cols = torch.arange(224.0)
    assert torch.allclose(rfmap[96], (1 - (cols - 64).abs() / 32).clamp(min=0), atol=1e-6)
    assert torch.allclose(
        bil[111] / bil[111].max(),
        (1 - (cols - 79.5).abs() / 32).clamp(min=0) / (1 - 0.5 / 32),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="one centre per unit"):
        resample.upsample_at_centres(m, cy[:6], cx, 224)
