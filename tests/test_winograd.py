"""Winograd's F(4x4, 3x3) (lib.winograd) by hand, against torch's convolution, and inside the CAM
engine's fast path (lever ``winograd``): used where the rule says, checked against the model,
never under gradients, and the maps unchanged."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib import cam, winograd


def test_one_dimensional_f43_by_hand():
    # F(4, 3): y_i = sum_k g_k d_{i+k} for d = 1..6, g = (1, 2, 3):
    # y = (1+4+9, 2+6+12, 3+8+15, 4+10+18) = (14, 20, 26, 32), from 6 products instead of 12
    bt, g, at = (torch.tensor(m, dtype=torch.float64) for m in (winograd.BT, winograd.G,
                                                                  winograd.AT))
    d = torch.arange(1.0, 7.0, dtype=torch.float64)
    y = at @ ((g @ torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)) * (bt @ d))
    assert torch.allclose(y, torch.tensor([14.0, 20.0, 26.0, 32.0], dtype=torch.float64),
                          atol=1e-12)
    # the bias slot: column 1 of A^T is all ones, so a value there reaches every output once
    slot = torch.zeros(6, 6, dtype=torch.float64)
    slot.view(-1)[winograd.BIAS_SLOT] = 1.0
    assert torch.equal(at @ slot @ at.T, torch.ones(4, 4, dtype=torch.float64))


def test_filter_transform_by_hand():
    # a filter with one tap at the centre, value 6: G g G^T = 6 * outer(G[:, 1], G[:, 1]),
    # G[:, 1] = (0, -1/6, 1/6, 1/12, -1/12, 0)
    w = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    w[0, 0, 1, 1] = 6.0
    col = torch.tensor([0, -1 / 6, 1 / 6, 1 / 12, -1 / 12, 0], dtype=torch.float64)
    u = winograd.filter_transform(w)
    assert u.shape == (36, 1, 1)
    assert torch.allclose(u.view(6, 6), 6.0 * torch.outer(col, col), atol=1e-15)
    with pytest.raises(ValueError, match="needs 3x3 filters"):
        winograd.filter_transform(torch.zeros(2, 2, 5, 5))


@pytest.mark.parametrize("size", [(4, 4), (7, 5), (1, 1), (9, 13), (8, 8)])
def test_conv3x3_equals_torch_in_float64_at_any_size(size):
    gen = torch.Generator().manual_seed(sum(size))
    x = torch.randn(3, 5, *size, dtype=torch.float64, generator=gen)
    w = torch.randn(7, 5, 3, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(7, dtype=torch.float64, generator=gen)
    other = torch.randn(3, 7, *size, dtype=torch.float64, generator=gen)
    u = winograd.filter_transform(w)
    ref = F.conv2d(x, w, b, padding=1)
    assert torch.allclose(winograd.conv3x3(x, u, b), ref, atol=1e-10)
    assert torch.allclose(winograd.conv3x3(x, u), ref - b.view(1, -1, 1, 1), atol=1e-10)
    assert torch.allclose(winograd.conv3x3(x, u, b, relu=True), torch.relu(ref), atol=1e-10)
    assert torch.allclose(winograd.conv3x3(x, u, b, relu=True, add=other),
                          torch.relu(ref + other), atol=1e-10)


def test_conv3x3_in_float32_to_rounding_either_memory_format():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 256, 7, 7, generator=gen)
    w = torch.randn(256, 256, 3, 3, generator=gen) / 48
    b = torch.randn(256, generator=gen)
    ref = F.conv2d(x, w, b, padding=1)
    u = winograd.filter_transform(w)
    for inp in (x, x.contiguous(memory_format=torch.channels_last)):
        y = winograd.conv3x3(inp, u, b)
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert ((y - ref).abs().max() / ref.abs().max()).item() < 5e-5
    with pytest.raises(ValueError, match="is for 256 input channels"):
        winograd.conv3x3(x[:, :128], u, b)


def test_applies_only_to_3x3_stride_1_same_convolutions():
    assert winograd.applies(nn.Conv2d(8, 8, 3, padding=1))
    assert winograd.applies(nn.Conv2d(8, 16, 3, padding=1, bias=False))
    for conv in (nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Conv2d(8, 8, 3, padding=2,
                                                                     dilation=2),
                 nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.Conv2d(8, 8, 3),
                 nn.Conv2d(8, 8, 5, padding=2), nn.Conv2d(8, 8, 3, padding=1,
                                                          padding_mode="reflect"),
                 nn.Conv2d(8, 8, 3, padding="same"), nn.Linear(8, 8)):
        assert not winograd.applies(conv)


def test_the_rule_picks_wide_small_convolutions_in_full_batches():
    wide = nn.Conv2d(256, 512, 3, padding=1)
    assert cam._winograd_may_pay(wide)
    for narrow in (nn.Conv2d(128, 512, 3, padding=1), nn.Conv2d(512, 128, 3, padding=1),
                   nn.Conv2d(512, 512, 3, stride=2, padding=1)):
        assert not cam._winograd_may_pay(narrow)
    assert cam._winograd_pays(wide, torch.zeros(32, 256, 4, 4))      # 32 blocks of 4x4
    assert cam._winograd_pays(wide, torch.zeros(8, 256, 7, 7))       # 8 * 4 blocks, 49/64 used
    assert not cam._winograd_pays(wide, torch.zeros(31, 256, 4, 4))  # too few blocks
    assert not cam._winograd_pays(wide, torch.zeros(64, 256, 2, 2))  # a quarter of each used


class WideNet(nn.Module):
    """A stem, then two residual 3x3 blocks of 256 channels at 4x4: what Winograd takes."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 256, 4, stride=4), nn.BatchNorm2d(256), nn.ReLU())
        self.conv1 = nn.Conv2d(256, 256, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(256)
        self.conv2 = nn.Conv2d(256, 256, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(256)
        self.fc = nn.Linear(256, 5)

    def forward(self, x):
        s = self.stem(x)
        h = torch.relu(self.bn1(self.conv1(s)))
        h = torch.relu(self.bn2(self.conv2(h)) + s)
        return self.fc(h.mean((2, 3)))


def _widenet():
    torch.manual_seed(0)
    model = WideNet().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
        if isinstance(m, nn.Conv2d):
            m.weight.data /= 2
    return model


def test_fast_path_runs_winograd_where_the_rule_says_and_equals_the_model(monkeypatch):
    model = _widenet()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        out = model(x)
        fast = cam._FastForward(model, x, out)
    convs = [m for m in fast.module.modules() if isinstance(m, cam._OneDNNConv)]
    assert sorted(str(m.then) for m in convs if m.winograd) == ["add-relu", "relu"]
    calls = []
    real = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *a, **k: calls.append(1) or real(*a, **k))
    batch = torch.randn(32, 3, 16, 16)  # 32 images of 4x4 maps: 32 blocks
    with torch.no_grad():
        y, ref = fast(batch), model(batch)
    assert len(calls) == 2
    assert torch.allclose(y, ref, rtol=1e-4, atol=1e-5 * (1 + ref.abs().max()))
    calls.clear()
    with torch.no_grad():
        fast(batch[:4])  # 4 blocks: the direct convolution
    assert not calls
    (g_fast,) = torch.autograd.grad(fast(batch.requires_grad_(True), grad=True)[:, 0].sum(), batch)
    assert not calls  # never under gradients
    with cam.fast_path(winograd=False), torch.no_grad():
        plain = cam._FastForward(model, x, out)
        plain(batch)
    assert not calls and not any(getattr(m, "winograd", False) for m in plain.module.modules())
    # the check before use ran both convolutions by Winograd on the single image
    calls.clear()
    with torch.no_grad():
        cam._FastForward(model, x, out)
    assert len(calls) == 2


def test_fast_path_is_not_used_where_winograd_would_not_equal_the_model(monkeypatch):
    model = _widenet()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        out = model(x)
    real = winograd.conv3x3
    # a broken Winograd (off by 1 % everywhere): the check on the image must catch it, although
    # the rule would leave a single image to the direct convolution
    monkeypatch.setattr(winograd, "conv3x3", lambda *a, **k: real(*a, **k) * 1.01)
    with torch.no_grad():
        fast = cam._FastForward(model, x, out)
        assert fast.kind != "graph" or not any(
            getattr(m, "winograd", False) for m in fast.module.modules())
        batch = torch.randn(32, 3, 16, 16)
        assert torch.allclose(fast(batch), model(batch), rtol=1e-4, atol=1e-5)


def test_scorecam_maps_with_and_without_winograd_agree():
    model = _widenet()
    x = torch.randn(2, 3, 16, 16)
    with cam.fast_path(winograd=False):
        off = cam.compute(model, x, "conv2", "scorecam")
    on = cam.compute(model, x, "conv2", "scorecam")
    assert torch.allclose(on, off, rtol=1e-4, atol=1e-6 * off.abs().max())
