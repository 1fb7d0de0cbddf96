"""Tests for lib.localization (paper 000's protocol) and the RF-centred up-sampling of lib.rf:
values worked out by hand on tiny maps, boxes and a tiny model; the paper's own Table 2 claim."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from lib import localization as L
from lib import resample
from lib import rf as R


# ------------------------------------------------------------------------------------------
# Down-sample to the last layer's grid, then up-sample (by hand)
# ------------------------------------------------------------------------------------------

def test_down_up_by_hand():
    m = torch.zeros(1, 4, 4)
    m[0, :2, :2] = torch.tensor([[1.0, 3.0], [5.0, 7.0]])  # block mean 4
    out = L.down_up(m, (2, 2), 4)
    # 2 units -> 4 px (align_corners=False): units at pixels 0.5 and 2.5, edges held:
    # [4, 0] -> [4, 3, 1, 0] per axis, the 2-D map is the outer product / 4
    p = torch.tensor([4.0, 3.0, 1.0, 0.0])
    assert torch.allclose(out[0], torch.outer(p, p) / 4)


def test_down_up_relu_before_pooling_and_identity_grid():
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0], m[0, 0, 1] = 8.0, -8.0  # the negative value is cut before averaging
    out = L.down_up(m, (2, 2), 2)
    assert torch.allclose(out[0], torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
    # a map already on the grid is only up-sampled
    g = torch.rand(2, 3, 3)
    assert torch.allclose(L.down_up(g, (3, 3), 9),
                          F.interpolate(g[:, None], size=9, mode="bilinear",
                                        align_corners=False)[:, 0])
    with pytest.raises(ValueError, match="last .coarsest. layer first"):
        L.down_up(torch.rand(1, 2, 2), (4, 4), 8)


def test_pool_centres():
    # ResNet-like: layer3 units at 16 i, pooled 2 -> 1 onto layer4's grid: 8, 40, 72
    c3 = 16.0 * np.arange(6)
    assert np.allclose(L.pool_centres(c3, 3), [8, 40, 72])
    with pytest.raises(ValueError):
        L.pool_centres(np.arange(2.0), 3)


# ------------------------------------------------------------------------------------------
# Boxes -> masks
# ------------------------------------------------------------------------------------------

def test_finding_masks_union_and_per_box():
    boxes = torch.tensor([[0, 0, 2, 2, 3], [4, 4, 6, 6, 3], [0, 4, 1, 6, 5]])
    f = L.finding_masks(boxes, 6)
    assert [(c, k) for c, k, _ in f] == [(3, -1), (5, -1)]
    assert int(f[0][2].sum()) == 8 and bool(f[0][2][5, 5]) and not f[0][2][3, 3]
    assert int(f[1][2].sum()) == 2 and bool(f[1][2][4, 0]) and bool(f[1][2][5, 0])
    b = L.finding_masks(boxes, 6, per="box")
    assert [(c, k, int(m.sum())) for c, k, m in b] == [(3, 0, 4), (3, 1, 4), (5, 2, 2)]
    with pytest.raises(ValueError, match="cover no pixel"):
        L.finding_masks(torch.tensor([[10, 10, 12, 12, 0]]), 6)


# ------------------------------------------------------------------------------------------
# The whole protocol on a tiny model whose Grad-CAM is known by hand
# ------------------------------------------------------------------------------------------

class Tiny(nn.Module):
    """x -> a (1x1 conv, weight 1) -> b (2x2 average pool) -> global mean -> fc (w = +1, -1).

    Grad-CAM for class 0: at b, alpha = 1/16 and the map is A_b / 16; at a, alpha = 1/64 and
    the map is A_a / 64 = x / 64. Area-pooling a's 8x8 map to b's 4x4 grid gives b's map / 4."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 1, 1, bias=False)
        self.b = nn.AvgPool2d(2)
        self.fc = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.a.weight.fill_(1.0)
            self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))

    def forward(self, x):
        return self.fc(self.b(self.a(x)).mean((2, 3)))


def test_evaluate_by_hand_iou_hit_and_down_then_up():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, :4, :4] = 1.0  # the object fills rows/cols 0..3
    # the declared box is rows/cols 1..4 (x_max/y_max exclusive) of class 0
    boxes = [torch.tensor([[1, 1, 5, 5, 0]])]
    df = L.evaluate(Tiny(), x, boxes, {"last": "b", "earlier": "a"}, progress=False)
    assert list(df["layer"]) == ["last", "earlier"]
    # b's map [[1,1,0,0],..] up-sampled to 8 px: per axis [1,1,1,.75,.25,0,0,0]; its top-16
    # pixels are rows/cols 0..3 (9 ones, 6 of 0.75, one of 0.5625); box rows/cols 1..4:
    # intersection 9, union 16 + 16 - 9 = 23
    assert df["iou"].tolist() == pytest.approx([9 / 23, 9 / 23])
    # the arg-max (first in row-major order among the ones) is pixel (0, 0): outside the box
    assert df["hit"].tolist() == [0.0, 0.0]
    assert df["area"].tolist() == [16, 16]
    assert df["score"].iloc[0] == pytest.approx(torch.sigmoid(torch.tensor(0.25)).item())
    # the down-then-up step: the earlier layer's map equals the last layer's after it
    maps = L.layer_maps(Tiny(), x, ["b", "a"], target=0)["bilinear"]
    assert torch.allclose(maps["a"] * 4, maps["b"])
    # without it, the earlier layer's 8x8 map is the object itself (a different answer)
    raw = torch.tensor([[1.0] * 4 + [0.0] * 4]).T @ torch.tensor([[1.0] * 4 + [0.0] * 4])
    assert not torch.allclose(maps["a"][0] / maps["a"][0].max(), raw)


def test_evaluate_hit_inside_box_and_errors():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 4:, 4:] = 1.0
    boxes = [torch.tensor([[4, 4, 8, 8, 0]])]
    df = L.evaluate(Tiny(), x, boxes, ["b"], progress=False)
    # mirror image of the case above, box exactly on the object: the top 16 pixels are rows/cols
    # 4..7 (values 1 at 5..7, .75 at 4): IoU 1, arg-max (5, 5) inside
    assert df["iou"].tolist() == pytest.approx([1.0])
    assert df["hit"].tolist() == [1.0]
    with pytest.raises(ValueError, match="1 images but 2 box arrays"):
        L.evaluate(Tiny(), x, boxes * 2, ["b"], progress=False)


# ------------------------------------------------------------------------------------------
# RF-centred up-sampling (lib.resample.upsample_at_centres)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,size", [(7, 224), (5, 13), (4, 4), (1, 6)])
def test_upsample_at_centres_is_bilinear_on_the_bilinear_grid(n, size):
    g = torch.Generator().manual_seed(n)
    m = torch.rand(3, n, n + 1, generator=g)
    ours = resample.upsample_at_centres(m, resample.upsample_centres(n, size), resample.upsample_centres(n + 1, size + 3),
                                 (size, size + 3))
    ref = F.interpolate(m[:, None], size=(size, size + 3), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(ours, ref, atol=1e-6)


def _meta(fn):
    with torch.device("meta"):
        return fn()


def test_rf_centred_equals_bilinear_for_vgg16():
    cy, cx = R.rf_centres(_meta(torchvision.models.vgg16), "features.29", 224)
    assert np.array_equal(cy, resample.upsample_centres(14, 224))
    m = torch.rand(2, 14, 14, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(resample.upsample_at_centres(m, cy, cx, 224),
                          F.interpolate(m[:, None], size=224, mode="bilinear",
                                        align_corners=False)[:, 0], atol=1e-6)


def test_rf_centred_is_shifted_by_15_5_px_for_resnet50():
    cy, cx = R.rf_centres(_meta(torchvision.models.resnet50), "layer4", 224)
    assert np.array_equal(cy, 32.0 * np.arange(7))
    assert np.allclose(resample.upsample_centres(7, 224) - cy, 15.5)
    m = torch.zeros(1, 7, 7)
    m[0, 3, 2] = 1.0  # one active unit: the peak sits at its RF centre (96, 64) ...
    rfmap = resample.upsample_at_centres(m, cy, cx, 224)[0]
    assert divmod(int(rfmap.argmax()), 224) == (96, 64) and rfmap[96, 64] == 1.0
    # ... and bilinear up-sampling puts it at (111.5, 79.5): pixels 111/112 and 79/80 tie
    bil = F.interpolate(m[:, None], size=224, mode="bilinear", align_corners=False)[0, 0]
    assert divmod(int(bil.argmax()), 224) == (111, 79)
    assert bil[111, 79] == pytest.approx((1 - 0.5 / 32) ** 2)
    # the same triangle (half-width 32 px, the jump), moved by 15.5 px
    cols = torch.arange(224.0)
    assert torch.allclose(rfmap[96], (1 - (cols - 64).abs() / 32).clamp(min=0), atol=1e-6)
    assert torch.allclose(bil[111] / bil[111].max(), (1 - (cols - 79.5).abs() / 32).clamp(min=0)
                          / (1 - 0.5 / 32), atol=1e-5)
    with pytest.raises(ValueError, match="one centre per unit"):
        resample.upsample_at_centres(m, cy[:6], cx, 224)


# ------------------------------------------------------------------------------------------
# Summary and the paper's claim
# ------------------------------------------------------------------------------------------

def test_summarise_mean_and_std_over_seeds():
    df = pd.DataFrame({"model": ["m"] * 6, "layer": ["l"] * 6, "seed": [0, 0, 1, 1, 2, 2],
                       "iou": [0.1, 0.3, 0.4, 0.4, 0.5, 0.7], "hit": [1, 0, 1, 1, 0, 0]})
    s = L.summarise(df).loc[("m", "l")]
    # per-seed means: iou .2, .4, .6 (mean .4, std .2); hit .5, 1, 0 (mean .5, std .5)
    assert (s["iou"], s["iou_std"], s["hr"], s["hr_std"], s["n"]) == pytest.approx(
        (0.4, 0.2, 0.5, 0.5, 3))


def test_verdict_holds_on_the_papers_table2_and_fails_when_last_is_best():
    v = L.verdict(L.paper_table2())
    assert len(v) == 6 and v["one_or_two_back_beats_last"].all() and v["too_far_back_is_worse"].all()
    best = v.set_index(["model", "metric"])["best layer"]
    assert best[("DenseNet121", "iou")] == "transition3"
    assert best[("EfficientNet-b0", "hr")] == "features[-3]"
    assert best[("ResNet50", "iou")] == "layer3"
    t = pd.DataFrame({"model": ["m"] * 4, "layer": list("abcd"), "iou": [0.5, 0.4, 0.3, 0.6],
                      "hr": [0.5, 0.6, 0.3, 0.2]})
    w = L.verdict(t).set_index("metric")
    assert not w.loc["iou", "one_or_two_back_beats_last"]
    assert not w.loc["iou", "too_far_back_is_worse"]  # 0.6 is the best of all
    assert w.loc["hr", "one_or_two_back_beats_last"] and w.loc["hr", "too_far_back_is_worse"]


# ------------------------------------------------------------------------------------------
# Full profile plumbing (VinDr-CXR) on a fake data set
# ------------------------------------------------------------------------------------------

class FakeVinDr:
    """Stands in for lib.data.vindr.VinDrCXR(channels=1, normalize=False): image i is constant
    i / 10; images 1 and 3 have one box of finding 4 and 7."""
    root, size, channels, normalize = "fake", 8, 1, False

    def __len__(self):
        return 5

    def __getitem__(self, i):
        boxes = {1: [[0, 0, 4, 4, 4]], 3: [[2, 2, 6, 8, 7]]}.get(i, np.zeros((0, 5)))
        y = torch.zeros(14)
        return torch.full((1, 8, 8), i / 10), y, torch.as_tensor(np.asarray(boxes, float)).reshape(-1, 5)


def test_vindr_split_and_test_set():
    tr, te = L.vindr_split(10, seed=3)
    assert len(tr) == 8 and len(te) == 2 and set(tr) | set(te) == set(range(10))
    assert not set(tr) & set(te)
    assert not np.array_equal(L.vindr_split(10, 4)[1], te)  # another seed, another split
    ds = FakeVinDr()
    tr, te = L.vindr_split(5, seed=0)
    inputs, boxes = L.vindr_test(ds, seed=0)
    with_boxes = [i for i in te if i in (1, 3)]
    assert with_boxes == [1]  # split 0 tests image 1 only
    assert len(inputs) == len(boxes) == len(with_boxes)
    for k, i in enumerate(with_boxes):
        x = inputs[k]
        assert x.shape == (3, 8, 8)
        # ImageNet normalisation of the grey value round(i/10 * 255) / 255, channel 0
        v = round(i / 10 * 255) / 255
        assert float(x[0, 0, 0]) == pytest.approx((v - 0.485) / 0.229, abs=1e-5)
        assert int(boxes[k][0, 4]) == {1: 4, 3: 7}[i]
