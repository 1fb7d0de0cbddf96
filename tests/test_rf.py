"""Tests for lib.rf: theoretical RF (Eq. 1 by hand, gradient connectivity, Santos et al. Table 1),
ERF (Eq. 2 by hand), RF centres vs up-sampling, and Taimeskhanov et al.'s dead zone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from scipy.signal import convolve2d
from torch import nn

from lib import resample
from lib import rf as R
from lib.layers import LayerNotFoundError
from lib.models.masked_vgg import MaskedVGG, masked_vgg16
from lib.rf.__main__ import _main as rf_cli


def meta(fn, *a, **k):
    """Build an architecture on the meta device: shapes only, no weight initialisation."""
    with torch.device("meta"):
        return fn(*a, **k)


# ------------------------------------------------------------------------------------------
# Eq. 1 by hand
# ------------------------------------------------------------------------------------------


def test_eq1_by_hand_conv_pool_stack():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # r = 3,            j = 1, start 0
        nn.Conv2d(4, 4, 3, stride=2, padding=1),  # r = 3 + 2*1 = 5,  j = 2, start -1+1 = 0
        nn.MaxPool2d(2, 2),  # r = 5 + 1*2 = 7,  j = 4, start 0 + 0.5*2 = 1
        nn.Conv2d(4, 4, 5, padding=2),  # r = 7 + 4*4 = 23, j = 4, start 1
        nn.Conv2d(4, 4, 3, dilation=2, padding=2),  # k_eff 5: r = 23 + 4*4 = 39, j = 4, start 1
        nn.AvgPool2d(3, stride=3),  # r = 39 + 2*4 = 47, j = 12, start 1 + 1*4 = 5
    )
    df = R.rf_table(net, input_size=48).set_index("name")
    assert df.index[0] == ""  # the root's output (a 4-D map) comes first, like named_modules
    assert df.loc[""].rf_max == 47
    df = df.drop(index="")
    assert df.rf_max.tolist() == [3, 5, 7, 23, 39, 47]
    assert df.rf_min.tolist() == [3, 5, 7, 23, 39, 47]
    assert df.jump.tolist() == [1, 2, 4, 4, 4, 12]
    assert df.start.tolist() == [0, 0, 1, 1, 1, 5]
    assert df.out_h.tolist() == [48, 24, 12, 12, 12, 4]
    # Eq. 1 backwards from the top: r_{l-1} = r_l s_l + k_l - s_l, starting from r = 1.
    layers = [(3, 1), (3, 2), (2, 2), (5, 1), (5, 1), (3, 3)]  # (effective k, s)
    r = 1
    for k, s in reversed(layers):
        r = r * s + k - s
    assert r == 47
    rf = R.receptive_field(net, "5", input_size=48)
    # unit 1 is centred at 5 + 12 = 17 and spans 47 px: [-6, 40]
    assert rf.y.bounds(1, clip=False) == (-6, 40)
    assert R.unit_rf_bounds(rf, 1) == (0, 40)
    assert R.unit_rf_bounds(rf, 3, 0) == ((18, 47), (0, 28))


def test_non_square_kernels_and_input():
    net = nn.Sequential(
        nn.Conv2d(1, 2, (5, 1), padding=(2, 0)), nn.Conv2d(2, 2, (1, 3), stride=(1, 2))
    )
    rf = R.receptive_field(net, "1", input_size=(20, 11))
    assert (rf.y.rf_max, rf.x.rf_max, rf.y.jump, rf.x.jump) == (5, 3, 1, 2)
    assert (rf.out_h, rf.out_w) == (20, 5)
    assert (rf.y.start, rf.x.start) == (0, 1)
    with pytest.raises(ValueError, match="differs between the axes"):
        rf.rf_max
    df = R.rf_table(net, input_size=(20, 11))
    assert {"rf_max_y", "rf_max_x"} <= set(df.columns)


def test_paper_table1_exact():
    """Santos et al. Table 1 from torchvision's architectures (no weights)."""
    r50 = R.receptive_fields(meta(torchvision.models.resnet50))
    rf = r50["layer4"]
    assert (rf.rf_min, rf.rf_max, rf.jump, rf.out_h) == (427, 427, 32, 7)
    # layer1: 11 + 3*2*4 = 35; layer2: 35 + 2*4 + 3*2*8 = 91; layer3: 91 + 2*8 + 5*2*16 = 267
    assert [r50[f"layer{i}"].rf_max for i in (1, 2, 3)] == [35, 91, 267]
    d121 = R.receptive_fields(meta(torchvision.models.densenet121))
    for layer in ("features", "features.denseblock4", "features.norm5"):
        rf = d121[layer]
        assert (rf.rf_min, rf.rf_max, rf.jump) == (1047, 2071, 32), layer
    # transition3's output is what denseblock4 passes on untouched: the lower end of the range
    assert d121["features.transition3"].rf_max == 1047
    # Table 2's other DenseNet layers: transition2 = 263, denseblock3 = 263 + 24*2*16 = 1031
    assert (
        d121["features.transition2"].rf_max,
        d121["features.denseblock3"].rf_min,
        d121["features.denseblock3"].rf_max,
    ) == (263, 263, 1031)
    eb0 = R.receptive_fields(meta(torchvision.models.efficientnet_b0))
    rf = eb0["features"]
    assert math.isinf(rf.rf_min) and math.isinf(rf.rf_max) and rf.jump == 32
    # the stem is a plain 3x3 conv (stride 2); squeeze-and-excitation starts in the first MBConv
    # block: its depthwise 3x3 conv is still bounded (3 + 2*2), its output (after SE) is not
    assert (eb0["features.0"].rf_max, eb0["features.1.0.block.0"].rf_max) == (3, 7)
    assert math.isinf(eb0["features.1"].rf_max)
    assert eb0["features.8"].rf_local == 851  # the convolutional paths alone


def test_other_cli_models():
    vgg = meta(torchvision.models.vgg16)
    rf = R.receptive_field(vgg, "features.29")
    assert (rf.rf_max, rf.jump, rf.start, rf.out_h) == (196, 16, 7.5, 14)
    assert R.receptive_field(vgg, "features[-1]").rf_max == 212  # pool5
    alex = meta(torchvision.models.alexnet)
    assert R.receptive_field(alex, "features.11").rf_max == 163
    import timm

    lite = meta(timm.create_model, "efficientnet_lite0", pretrained=False)
    rf = R.receptive_field(lite, "bn2")  # EfficientNet-Lite has no squeeze-and-excitation
    assert (rf.rf_max, rf.jump) == (851, 32)
    # ConvNeXt (channels-last LayerNorm + Linear): stem 4; stages of 7x7 depthwise convs, 3, 3,
    # 9, 3 blocks at jumps 4, 8, 16, 32, with 2x2 stride-2 downsamplings between them:
    # 4 + 3*6*4 + 4 + 3*6*8 + 8 + 9*6*16 + 16 + 3*6*32 = 1688
    cnx = R.receptive_fields(meta(torchvision.models.convnext_tiny))
    assert (cnx["features"].rf_max, cnx["features"].jump) == (1688, 32)


def test_table_rows_and_state_restored():
    net = torchvision.models.resnet18(weights=None)
    net.train()
    net.layer1[0].bn1.eval()
    df = R.rf_table(net, input_size=64)
    assert df.name.tolist()[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert "fc" not in df.name.tolist()  # not a 4-D map
    assert math.isinf(df.set_index("name").loc["avgpool", "rf_max"])
    assert net.training and not net.layer1[0].bn1.training
    assert df.set_index("name").loc["relu", "calls"] == 1
    assert df.set_index("name").loc["layer1.0.relu", "calls"] == 2  # shared ReLU: last call


# ------------------------------------------------------------------------------------------
# Against gradient connectivity on small random networks
# ------------------------------------------------------------------------------------------


def _positive(net: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=g) + 0.1)  # no accidental zero gradient
    return net.double().eval()


def _measured(net, x, units):
    """For each unit (row, col) and output channel: the (first, last) input row and column
    with a non-zero gradient. One backward pass: one copy of the image per (unit, channel)."""
    with torch.no_grad():
        c_out = net(x).shape[1]
    pairs = [(u, c) for u in units for c in range(c_out)]
    xb = x.repeat(len(pairs), 1, 1, 1).requires_grad_(True)
    out = net(xb)
    b = torch.arange(len(pairs))
    sel = out[b, [c for _, c in pairs], [u[0] for u, _ in pairs], [u[1] for u, _ in pairs]]
    (g,) = torch.autograd.grad(sel.sum(), xb)
    nz = g.abs().sum(1) > 0  # (B, H, W)
    res: dict = {}
    for k, (u, _) in enumerate(pairs):
        rows = torch.nonzero(nz[k].any(1)).flatten()
        cols = torch.nonzero(nz[k].any(0)).flatten()
        res.setdefault(u, []).append(((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))))
    return res


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 3, 3, stride=2, padding=1)
        self.a = nn.Sequential(
            nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1)
        )
        self.down_main = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.down_skip = nn.Conv2d(3, 4, 1, stride=2)
        self.pool = nn.AvgPool2d(3, 1, 1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = x + self.a(x)  # 3 + 2*2 + 2*2 = 11
        x = self.down_main(x) + self.down_skip(x)  # 11 + 2*2 = 15, jump 4
        return self.pool(x)  # 15 + 2*4 = 23


class _Dense(nn.Module):
    """DenseNet-like: concatenated channels keep the RF they had."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 2, 3, padding=1)  # RF 3
        self.c1 = nn.Conv2d(2, 2, 5, padding=2)  # RF 7
        self.c2 = nn.Conv2d(4, 1, 3, padding=2, dilation=2)  # RF 7 + 4 = 11
        self.pool = nn.AvgPool2d(2)  # +1: 4, 8, 12; jump 2

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([x, torch.relu(self.c1(x))], 1)
        x = torch.cat([x, self.c2(x)], dim=1)
        return self.pool(x)


class _UpDown(nn.Module):
    def __init__(self):
        super().__init__()
        self.d1 = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.d2 = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.c = nn.Conv2d(2, 2, 3, padding=1)
        self.t = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1)
        self.e = nn.Conv2d(2, 2, 2)

    def forward(self, x):
        x = self.d2(self.d1(x))
        x = self.c(self.up1(x))
        x = self.t(x)
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.e(nn.functional.pad(x, (1, 0, 1, 0)))


class _ChannelsLast(nn.Module):
    """A ConvNeXt-like block: depthwise conv, channels-last LayerNorm + Linear, residual."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 2, stride=2)  # RF 2, jump 2
        self.dw = nn.Conv2d(4, 4, 5, padding=2, groups=4)  # 2 + 4*2 = 10
        self.norm = nn.LayerNorm(4)
        self.pw = nn.Linear(4, 4)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw(nn.functional.gelu(self.norm(y))).permute(0, 3, 1, 2)
        return x + y


class _SE(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        x = self.conv(x)
        s = torch.sigmoid(self.fc(nn.functional.adaptive_avg_pool2d(x, 1)))
        return x * s


@pytest.mark.parametrize(
    "net_cls, size", [(_Residual, 32), (_Dense, 24), (_UpDown, 24), (_ChannelsLast, 20)]
)
def test_theory_matches_gradient_connectivity(net_cls, size):
    torch.manual_seed(0)
    net = _positive(net_cls())
    rf = R.receptive_field(net, "", input_size=size)
    x = torch.rand(1, next(net.parameters()).shape[1], size, size, dtype=torch.float64) + 0.1
    n = rf.out_h
    sizes = []
    units = [u for i in range(n) for u in ((i, n // 2), (n // 2, i))]  # middle row and column
    measured = _measured(net, x, units)
    for unit in units:
        per_channel = measured[unit]
        rows = (min(a[0][0] for a in per_channel), max(a[0][1] for a in per_channel))
        cols = (min(a[1][0] for a in per_channel), max(a[1][1] for a in per_channel))
        assert R.unit_rf_bounds(rf, *unit) == (rows, cols), (unit, rf)
        lo, hi = rf.y.bounds(unit[0], clip=False)
        if lo >= 0 and hi < size:  # the whole RF lies in the image: sizes are exact
            sizes += [a[0][1] - a[0][0] + 1 for a in per_channel]
    # over channels (concatenation) and unit phases (up-sampling): rf_min and rf_max
    assert (min(sizes), max(sizes)) == (rf.rf_min, rf.rf_max)


class _Upto(nn.Module):
    """The output of ``layer`` of ``net`` (for gradient measurements)."""

    def __init__(self, net, layer):
        super().__init__()
        self.net, self.layer = net, layer

    def forward(self, x):
        got = []
        h = self.net.get_submodule(self.layer).register_forward_hook(lambda m, i, o: got.append(o))
        try:
            self.net(x)
        finally:
            h.remove()
        return got[-1]


@pytest.mark.parametrize("skips", [True, False])
def test_unet_decoder_matches_gradient_connectivity(skips):
    """Mascolini et al.'s U-Net (lib.models.unet): transposed convs, skip concatenations and, at 20 px,
    the decoder's padding of odd sizes. Max-pools become average pools of the same geometry so
    that every pixel of a window gets a gradient."""
    from lib.models.unet import UNetClassifier

    torch.manual_seed(0)
    net = UNetClassifier(in_channels=1, base=2, depth=3, skips=skips)
    for i in (1, 2, 3):
        setattr(net, f"down{i}", nn.AvgPool2d(2))
    net = _positive(net)
    rf = R.receptive_field(net, "dec1", input_size=20)
    assert rf.jump == 1 and rf.out_h == 20
    x = torch.rand(1, 1, 20, 20, dtype=torch.float64) + 0.1
    units = [u for i in range(20) for u in ((i, 10), (10, i))]
    measured = _measured(_Upto(net, "dec1"), x, units)
    for unit in units:
        per_channel = measured[unit]
        rows = (min(a[0][0] for a in per_channel), max(a[0][1] for a in per_channel))
        cols = (min(a[1][0] for a in per_channel), max(a[1][1] for a in per_channel))
        assert R.unit_rf_bounds(rf, *unit) == (rows, cols), unit


def test_dense_range_by_hand():
    rf = R.receptive_field(_Dense(), "", input_size=24)
    assert (rf.rf_min, rf.rf_max, rf.jump) == (4, 12, 2)
    assert R.receptive_field(_Residual(), "", input_size=32).rf_max == 23


def test_squeeze_excitation_is_global():
    net = _positive(_SE())
    rf = R.receptive_field(net, "", input_size=16)
    assert math.isinf(rf.rf_min) and rf.rf_local == 3 and rf.jump == 1
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64) + 0.1
    per_channel = _measured(net, x, [(8, 8)])[(8, 8)]
    assert per_channel == [((0, 15), (0, 15))] * 2
    assert R.unit_rf_bounds(rf, 8, 8) == ((0, 15), (0, 15))


def test_upsampling_divides_the_jump():
    rf = R.receptive_field(_UpDown(), "up1", input_size=24)
    assert rf.jump == 2 and rf.rf_max == 7  # nearest: each unit copies one RF-7 unit
    assert R.receptive_field(_UpDown(), "t", input_size=24).jump == 1


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


def test_unknown_layer_lists_valid_names():
    with pytest.raises(LayerNotFoundError, match="layer4"):
        R.receptive_field(meta(torchvision.models.resnet18), "layer5")


def test_data_dependent_and_unsupported_give_clear_messages():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.c(x) if x.sum() > 0 else x

    with pytest.warns(UserWarning, match="follows the path that image takes"):
        assert R.receptive_field(Branchy(), "", input_size=8).rf_max == 1  # blank: x.sum() = 0
    with pytest.warns(UserWarning), pytest.raises(R.RFError, match="'c' of Branchy has no 4-D"):
        R.receptive_field(Branchy(), "c", input_size=8)
    with pytest.raises(R.RFError, match="pixel_shuffle"):
        R.receptive_field(nn.Sequential(nn.Conv2d(4, 4, 1), nn.PixelShuffle(2)), "1", input_size=8)
    with pytest.raises(R.RFError, match="no 4-D feature map"):
        R.receptive_field(meta(torchvision.models.resnet18), "fc", input_size=64)


# ------------------------------------------------------------------------------------------
# ERF (Eq. 2)
# ------------------------------------------------------------------------------------------


def test_erf_single_conv_is_the_kernel():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 2, 3, bias=False)
    images = torch.randn(5, 3, 9, 9)
    e = R.erf(nn.Sequential(conv), "0", images)
    expected = np.zeros((9, 9))
    # centre unit (3, 3) of the 7x7 map reads input rows/cols 3..5; dA/dI = sum over out chans
    expected[3:6, 3:6] = np.abs(conv.weight.detach().sum(0).mean(0).numpy())
    np.testing.assert_allclose(e.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert e.shape == (9, 9) and e.dtype == torch.float32


def test_erf_linear_model_is_full_convolution_and_state_kept():
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.Conv2d(1, 1, 3, padding=1, bias=False)
    )
    net.train()
    images = torch.randn(7, 1, 11, 11)
    e = R.erf(net, "1", images, batch_size=3, progress=False)
    k1, k2 = (net[i].weight.detach()[0, 0].numpy() for i in (0, 1))
    # out = corr(corr(x, k1), k2): d out_c / d x is the full convolution of the kernels (flipped
    # twice = the correlation kernel conv(k1, k2)), laid out around the centre pixel (5, 5)
    expected = np.zeros((11, 11))
    expected[3:8, 3:8] = np.abs(convolve2d(k1, k2, mode="full"))
    np.testing.assert_allclose(e.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert net.training and all(p.grad is None for p in net.parameters())


def test_erf_unaffected_by_later_inplace_ops():
    """DenseNet applies relu_ in place to ``features``' output after the layer: the ERF must be
    that of ``features`` itself, as computed directly on the sub-module."""
    torch.manual_seed(0)
    net = torchvision.models.densenet121(weights=None).eval()
    x = torch.randn(2, 3, 32, 32)
    e = R.erf(net, "features", x)
    xr = x.clone().requires_grad_(True)
    out = net.features(xr)
    seed = torch.zeros_like(out)
    seed[:, :, 0, 0] = 1.0  # 32 px -> 1x1 map: the centre is (0, 0)
    (g,) = torch.autograd.grad(out, xr, seed)
    np.testing.assert_allclose(e.numpy(), g.mean(1).abs().mean(0).numpy(), rtol=1e-5, atol=1e-8)


def test_erf_mean_over_images_of_absolute_value():
    # one ReLU unit: its gradient exists only for images where it is active
    net = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.ReLU())
    with torch.no_grad():
        net[0].weight.fill_(2.0)
    images = torch.zeros(4, 1, 3, 3)
    images[:2, 0, 1, 1] = 1.0  # active in 2 of 4 images
    images[2:, 0, 1, 1] = -1.0
    e = R.erf(net, "1", images)
    assert float(e[1, 1]) == pytest.approx(2.0 * 2 / 4) and float(e.sum()) == pytest.approx(1.0)


def test_erf_radius_by_hand():
    d = np.zeros((11, 11))
    d[5, 5] = 3.0
    assert R.erf_radius(d) == 0.0
    two = np.zeros((11, 11))
    two[5, 1] = two[5, 9] = 1.0
    assert R.erf_radius(two, mass=0.5) == 4.0  # centre of mass (5, 5), both at distance 4
    block = np.zeros((9, 9))
    block[3:6, 3:6] = 1.0
    assert R.erf_radius(block, 0.5) == 1.0  # centre + 4 neighbours = 5/9 >= 0.5
    assert R.erf_radius(block, 1.0) == pytest.approx(math.sqrt(2))
    with pytest.raises(ValueError, match="all zero"):
        R.erf_radius(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        R.erf_radius(-block)


# ------------------------------------------------------------------------------------------
# RF centres vs bilinear up-sampling
# ------------------------------------------------------------------------------------------


def test_rf_centres_vs_upsampling():
    np.testing.assert_array_equal(resample.upsample_centres(2, 8), [1.5, 5.5])
    vgg = meta(torchvision.models.vgg16)
    cy, cx = R.rf_centres(vgg, "features.29", 224)
    np.testing.assert_array_equal(cy, resample.upsample_centres(14, 224))  # 7.5 + 16 i: they agree
    np.testing.assert_array_equal(cx, cy)
    r50 = meta(torchvision.models.resnet50)
    cy, _ = R.rf_centres(r50, "layer4", 224)
    np.testing.assert_array_equal(cy, 32 * np.arange(7))  # padded: unit 0 centred on pixel 0
    np.testing.assert_array_equal(resample.upsample_centres(7, 224) - cy, 15.5)


# ------------------------------------------------------------------------------------------
# Dead zone of the masked VGG (Taimeskhanov et al.)
# ------------------------------------------------------------------------------------------


def _paper_features():
    """VGG16 features[:30] with the last conv 512 -> 256, built from torchvision."""
    f = torchvision.models.vgg16().features[:30]
    f[28] = nn.Conv2d(512, 256, 3, padding=1)
    return f


def test_dead_zone_paper_value():
    model = meta(masked_vgg16)
    dz = R.dead_zone(model)  # defaults from the model: 224 px, 9 of 14 rows masked
    assert (dz.n, dz.first, dz.as_slice()) == (54, 170, slice(170, 224))
    assert round(100 * dz.fraction) == 24
    assert (dz.rf.rf_max, dz.rf.jump, dz.rf.start) == (196, 16, 7.5)
    # same from torchvision's VGG16 with the description of the paper
    assert R.dead_zone(meta(_paper_features), 224, 9).rows == tuple(range(170, 224))


@pytest.mark.parametrize(
    "k, size, expected",
    [
        # visible rows 0..n-k-1; unit i sees [16 i - 90, 16 i + 105]; dead = S - 16(n-k-1) - 106
        (9, 224, 54),
        (8, 224, 38),
        (6, 224, 6),
        (5, 224, 0),
        (0, 224, 0),
        (14, 224, 224),
        (12, 256, 102),
        (9, 232, 62),
    ],
)
def test_dead_zone_follows_mask_and_size(k, size, expected):
    dz = R.dead_zone(meta(_paper_features), size, k)
    assert dz.n == expected
    if expected and expected < size:
        assert dz.rows == tuple(range(size - expected, size))


def test_dead_zone_shallow_config_and_errors():
    # lib.models.masked_vgg's "S" config claims 17 dead rows of 64 with 5 of 8 rows masked
    dz = R.dead_zone(
        meta(MaskedVGG, cfg="S", input_size=64, masked_rows=5, hidden=8, num_classes=2)
    )
    assert (dz.n, dz.first, dz.rf.rf_max, dz.rf.jump) == (17, 47, 54, 8)
    with pytest.raises(ValueError, match="masked_rows=15"):
        R.dead_zone(meta(_paper_features), 224, 15)


def test_dead_zone_is_really_dead():
    """Perturbing the dead rows of a random masked VGG leaves the output bit-identical;
    perturbing the last seen row changes it."""
    torch.manual_seed(0)
    model = MaskedVGG(num_classes=3, width=1 / 16, input_size=224, masked_rows=9, hidden=8)
    model = model.double().eval()
    with torch.no_grad():
        for m in model.features:
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()  # positive weights, positive image: no dead ReLU by chance
        for m in model.classifier:
            if isinstance(m, nn.Linear):
                m.weight.abs_()
        model.classifier[0].weight.mul_(model.classifier[0].mask)
    dz = R.dead_zone(model)
    assert dz.first == 170
    x = torch.rand(2, 3, 224, 224, dtype=torch.float64) + 0.1
    with torch.no_grad():
        base = model(x)
        xd = x.clone()
        xd[:, :, dz.as_slice()] += 10 * torch.rand_like(xd[:, :, dz.as_slice()])
        assert torch.equal(model(xd), base)
        xs = x.clone()
        xs[:, :, dz.first - 1] += 10.0
        assert not torch.equal(model(xs), base)
        assert (model(xs) - base).abs().max() > 1e-6


def _cli(capsys, *argv) -> list[str]:
    assert rf_cli(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


def test_cli(capsys):
    """``python -m lib.rf MODEL`` and ``python -m lib.rf deadzone`` (run in-process)."""
    for model, layer, expected in [
        ("resnet50", "layer4", ["427", "427", "32"]),
        ("densenet121", "features", ["1047", "2071", "32"]),
        ("efficientnet_b0", "features", ["inf", "inf", "32"]),
    ]:
        out = _cli(capsys, model)
        rows = {ln.split()[0]: ln.split()[1:] for ln in out if not ln.startswith("#")}
        assert rows[layer] == expected, model
    assert _cli(capsys, "deadzone", "--mask-rows", "9", "--input-size", "224")[0].startswith(
        "54 dead rows (24.1 %): rows 170..223"
    )
    assert _cli(capsys, "deadzone", "--mask-rows", "5", "--input-size", "224")[0].startswith(
        "0 dead rows"
    )
    assert _cli(capsys, "deadzone", "--mask-rows", "12", "--input-size", "256")[0].startswith(
        "102 dead rows"
    )
