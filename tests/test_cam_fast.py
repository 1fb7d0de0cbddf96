"""The fast path of the methods bound by forward passes (issue #15): batch-norm folded by hand
and against torch's fusion, maps equal to the plain path and to the references, the model left
exactly as it came (memory format included), hooks kept, passes counted."""
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from lib import cam


def _resnet(seed=0, classes=10):
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(weights=None, num_classes=classes).eval()
    for m in model.modules():  # fresh batch-norm is the identity: draw statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return model


class GapNet(nn.Module):
    def __init__(self, k=6, classes=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, k, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(k, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


PLAIN = {"channels_last": False, "fold_batchnorm": False, "inference_mode": False,
         "cpu_pixels_per_pass": None, "share_first_conv": False, "onednn_fusion": False,
         "winograd": False}
CAPTUM = {"occlusion": {"sliding_window_shapes": (3, 8, 8), "strides": 8},
          "integratedgradients": {"n_steps": 8},
          "gradientshap": {"n_samples": 4, "stdevs": 0.1, "seed": 3}}


# --------------------------------------------------------------------------- folding by hand

def test_fold_conv_bn_by_hand_and_against_torch():
    # one input channel, two output channels, 1x1 kernel: y_c = w_c x + b_c, then
    # bn: (y - mu) * gamma / sqrt(var + eps) + beta, eps = 0 to keep the numbers round
    conv = nn.Conv2d(1, 2, 1).double()
    bn = nn.BatchNorm2d(2, eps=0.0).double().eval()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([1.0, 3.0]))
        bn.running_mean.copy_(torch.tensor([1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([3.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.5, -1.0]))
    fused = cam._fold_conv_bn(conv, bn)
    # s = gamma / sqrt(var) = (1.5, 2); W' = W s = (3, -2); b' = (b - mu) s + beta = (0.5, 1)
    assert torch.equal(fused.weight.view(2), torch.tensor([3.0, -2.0], dtype=torch.float64))
    assert torch.equal(fused.bias, torch.tensor([0.5, 1.0], dtype=torch.float64))
    x = torch.tensor([[[[0.0, 1.0], [2.0, -3.0]]]], dtype=torch.float64)
    assert torch.allclose(fused(x), bn(conv(x)), atol=1e-12)
    # a conv without bias, channels-last weights, against torch's own fusion
    torch.manual_seed(0)
    conv2, bn2 = nn.Conv2d(4, 6, 3, bias=False).eval(), nn.BatchNorm2d(6).eval()
    bn2.running_mean.uniform_(-1, 1)
    bn2.running_var.uniform_(0.5, 2)
    ours = cam._fold_conv_bn(conv2, bn2, torch.channels_last)
    ref = torch.nn.utils.fusion.fuse_conv_bn_eval(conv2, bn2)
    assert ours.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(ours.weight, ref.weight, atol=1e-6)
    assert torch.allclose(ours.bias, ref.bias, atol=1e-6)
    assert conv2.bias is None and conv2.weight.is_contiguous()  # the original is untouched


def test_fast_forward_folds_every_batchnorm_and_equals_the_model():
    model = _resnet(1)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        fast = cam._FastForward(model, x, out)
        got = fast(x)
    assert fast.kind == "graph"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.module.modules())
    # the folded weights stay as the model's (contiguous) where oneDNN reorders them into its
    # own layout; without oneDNN and Winograd they are written channels-last
    convs = [m for m in fast.module.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and all(c.weight.is_contiguous() for c in convs)
    assert torch.allclose(got, out, rtol=1e-4, atol=1e-5)
    with cam.fast_path(onednn_fusion=False, winograd=False), torch.no_grad():
        unfused = cam._FastForward(model, x, out)
        assert torch.allclose(unfused(x), out, rtol=1e-4, atol=1e-5)
    convs = [m for m in unfused.module.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and all(
        c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    # the non-convolution modules are the model's own, not copies
    assert fast.module.fc is model.fc
    # each lever alone
    for levers, has_bn, cl in (({"fold_batchnorm": False}, True, True),
                               ({"channels_last": False}, False, False)):
        with cam.fast_path(**levers):
            with torch.no_grad():
                f = cam._FastForward(model, x, out)
        assert f.kind == "graph"
        assert any(isinstance(m, nn.BatchNorm2d) for m in f.module.modules()) == has_bn
        assert f.channels_last == cl
    with cam.fast_path(**PLAIN), torch.no_grad():
        assert cam._FastForward(model, x, out).kind == "model"


def test_onednn_fusion_takes_in_relus_and_residual_adds_and_equals_the_model():
    model = _resnet(2)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        fast = cam._FastForward(model, x, out)
    kinds = sorted(str(m.then) for m in fast.module.modules() if isinstance(m, cam._OneDNNConv))
    # every convolution but the first (Score-CAM's shared one): 8 blocks end in add + ReLU, 8
    # have a ReLU after their first convolution, 3 shortcut convolutions have neither
    assert kinds == ["None"] * 3 + ["add-relu"] * 8 + ["relu"] * 8
    with torch.no_grad():
        for n in (1, 5):  # weights reordered for the first input's size; any size runs
            xb = torch.randn(n, 3, 64, 64)
            assert torch.allclose(fast(xb), model(xb), rtol=1e-4, atol=1e-5)
    # with gradients the plain convolution, addition and ReLU run: the gradients are the model's
    xg = x.clone().requires_grad_(True)
    (g_fast,) = torch.autograd.grad(fast(xg, grad=True)[:, 0].sum(), xg)
    (g_model,) = torch.autograd.grad(model(xg)[:, 0].sum(), xg)
    assert torch.allclose(g_fast, g_model, rtol=1e-4, atol=1e-6)
    # a ReLU with a hook is not fused away: its hook sees as many calls as in the model
    calls = []
    h = model.layer1[0].relu.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            model(x)
            n_model = len(calls)
            hooked = cam._FastForward(model, x, model(x))
            calls.clear()
            hooked(x)
    finally:
        h.remove()
    assert n_model == 2 and len(calls) == 2
    with cam.fast_path(onednn_fusion=False, winograd=False), torch.no_grad():
        plain = cam._FastForward(model, x, out)
    assert plain.kind == "graph"
    assert not any(isinstance(m, cam._OneDNNConv) for m in plain.module.modules())
    # without oneDNN, only the 3x3 convolutions that Winograd may take are wrapped: stride 1,
    # 256 channels or more (layer3's 3 and layer4's 3 of ResNet18's 16 3x3 convolutions)
    with cam.fast_path(onednn_fusion=False), torch.no_grad():
        wino = cam._FastForward(model, x, out)
        assert torch.allclose(wino(x), out, rtol=1e-4, atol=1e-5)
    wrapped = [m for m in wino.module.modules() if isinstance(m, cam._OneDNNConv)]
    assert len(wrapped) == 6 and all(m.winograd and not m.onednn for m in wrapped)


def test_ablation_tail_runs_the_folded_channels_last_upper_part():
    model = _resnet(11)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        a = model.layer3(model.layer2(model.layer1(model.maxpool(model.relu(
            model.bn1(model.conv1(x)))))))
    tail = cam._Tail(model, "layer3", x, a, out)
    assert tail.graph_module is not None and tail.channels_last
    mods = list(tail.graph_module.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in mods)
    assert sum(isinstance(m, nn.Conv2d) for m in mods) == 5  # layer4: 4 convs + downsample
    with torch.no_grad():
        assert torch.allclose(tail(a[1:2].repeat(3, 1, 1, 1), 1), out[1:2].expand(3, -1),
                              rtol=1e-4, atol=1e-5)
    with cam.fast_path(**PLAIN):
        plain = cam._Tail(model, "layer3", x, a, out)
    assert plain.graph_module is not None and not plain.channels_last
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.graph_module.modules())


# ------------------------------------------------------------- maps: fast path = plain path

@pytest.mark.slow
def test_fast_path_maps_equal_the_plain_path_and_pytorch_grad_cam():
    import pytorch_grad_cam as pgc

    model = _resnet(2)
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    fast = cam.compute_many(model, x, "layer3", ["scorecam", "ablationcam"])
    with cam.fast_path(**PLAIN):
        plain = cam.compute_many(model, x, "layer3", ["scorecam", "ablationcam"])
    for m, cls in (("scorecam", pgc.ScoreCAM), ("ablationcam", pgc.AblationCAM)):
        a, b = fast[m]["layer3"], plain[m]["layer3"]
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()), m
        with cls(model=model, target_layers=[model.layer3]) as ref_cam:
            ref_cam.batch_size = 64
            ref = ref_cam(x, targets=None)
        post = cam.postprocess(a, 32, preset=cam.PGC_PRESET).numpy()
        assert ref.max() > 0.5 and np.abs(post - ref).max() < 1e-4, m


@pytest.mark.parametrize("method", sorted(CAPTUM))
def test_captum_methods_through_the_fast_path_equal_captum(method):
    import captum.attr as ca

    model = _resnet(4)
    torch.manual_seed(5)
    x = torch.randn(2, 3, 16, 16)
    kw = dict(CAPTUM[method])
    ours = cam.compute(model, x, None, method, target=[1, 7], captum_kwargs=dict(kw))
    seed = kw.pop("seed", None)
    if method == "gradientshap":
        kw["baselines"] = torch.zeros_like(x[:1])
        with cam._seeded(seed, x.device):
            ref = ca.GradientShap(model).attribute(x, target=[1, 7], **kw)
    else:
        cls = {"occlusion": ca.Occlusion, "integratedgradients": ca.IntegratedGradients}[method]
        ref = cls(model).attribute(x, target=[1, 7], **kw)  # Captum's defaults: 1 window a pass
    assert ref.abs().max() > 0
    assert torch.allclose(ours, ref.detach(), rtol=1e-3, atol=1e-4 * ref.abs().max().item())
    assert ours.is_contiguous() and not ours.is_inference()


# --------------------------------------------------------------------- the model as it came

def _snapshot(model):
    return {
        "modes": [m.training for m in model.modules()],
        "params": [(n, p, p.data_ptr(), p.stride(), p.requires_grad, p.detach().clone())
                   for n, p in model.named_parameters()],
        "buffers": [(n, b, b.data_ptr(), b.stride(), b.clone()) for n, b in model.named_buffers()],
        "modules": list(model.modules()),
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for m in model.modules()],
    }


def _assert_same(before, after):
    assert before["modes"] == after["modes"]
    assert all(a is b for a, b in zip(before["modules"], after["modules"]))
    assert before["hooks"] == after["hooks"]
    for (n, p, ptr, stride, rg, val), (_, q, ptr2, stride2, rg2, val2) in zip(
            before["params"], after["params"]):
        assert p is q and ptr == ptr2 and stride == stride2 and rg == rg2, n
        assert torch.equal(val, val2), n
    for (n, b, ptr, stride, val), (_, c, ptr2, stride2, val2) in zip(before["buffers"],
                                                                     after["buffers"]):
        assert b is c and ptr == ptr2 and stride == stride2 and torch.equal(val, val2), n


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_model_left_exactly_as_it_came_memory_format_included(layout):
    model = _resnet(6, classes=5)
    model.train()
    model.layer1.eval()                       # mixed modes
    model.fc.weight.requires_grad_(False)     # mixed flags
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    before = _snapshot(model)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert model.conv1.weight.is_contiguous(memory_format=fmt)
    torch.manual_seed(7)
    x = torch.randn(2, 3, 32, 32)
    cam.compute_many(model, x, "layer3", ["scorecam", "ablationcam", "gradcam"])
    for m, kw in CAPTUM.items():
        cam.compute(model, x, None, m, target=1, captum_kwargs=dict(kw))
    _assert_same(before, _snapshot(model))
    assert model.conv1.weight.is_contiguous(memory_format=fmt)
    assert model.training and not model.layer1.training


# --------------------------------------------------------------- hooks, passes, the levers

def test_hooks_are_kept_and_the_passes_counted():
    """A root hook sees every full pass of Score-CAM through the fast copy (N for the engine's
    forward, N for the copy's check (one: no convolution here is wide enough for Winograd),
    then one masked input per live channel plus one all-zero
    mask per image with dead channels); a hooked convolution is run as it is, its batch-norm
    not folded into it, and its hook sees its own output."""
    torch.manual_seed(8)
    model = GapNet(k=6).eval()
    with torch.no_grad():
        model.features[3].bias[:2] = -50.0  # channels 0 and 1 dead everywhere
    x = torch.randn(2, 3, 8, 8)
    rows, seen = [], []
    h1 = model.register_forward_pre_hook(lambda m, inp: rows.append(inp[0].shape[0]))
    h2 = model.features[0].register_forward_hook(
        lambda m, inp, out: seen.append((m is model.features[0], out.shape[1])))
    try:
        got = cam.compute(model, x, "features.4", "scorecam", batch_size=3)
        with cam.fast_path(**PLAIN):
            ref = cam.compute(model, x, "features.4", "scorecam", batch_size=3)
        with cam.fast_path(cpu_pixels_per_pass=2 * 8 * 8 + 5):  # 2 images of 8 x 8 a pass
            capped = cam.compute(model, x, "features.4", "scorecam", batch_size=3)
    finally:
        h1.remove()
        h2.remove()
    a = model.features(x).detach()
    live = (a.flatten(2).amax(2) > 0).sum(1).tolist()
    assert live == [4, 4]
    # fast: [2 engine, 2 check] + per image: zero mask (1), live channels in batches of 3 (3, 1)
    fast_rows = [2, 2] + [1, 3, 1] * 2
    plain_rows = [2] + [1, 3, 1] * 2  # the plain path: no check
    assert rows == fast_rows + plain_rows + [2, 2] + [1, 2, 2] * 2
    assert all(same and k == 8 for same, k in seen)
    assert torch.allclose(got, ref, atol=1e-6) and torch.allclose(capped, ref, atol=1e-6)


def test_inference_mode_lever_and_the_switch_restores_the_levers():
    model, x = GapNet().eval(), torch.randn(1, 3, 8, 8)
    modes = []
    h = model.register_forward_hook(lambda m, i, o: modes.append(torch.is_inference_mode_enabled()))
    try:
        cam.compute(model, x, "features.4", "scorecam")
        off = modes[2:]  # after the engine's forward and the check
        modes.clear()
        with cam.fast_path(inference_mode=True) as levers:
            assert levers == {**cam._LEVERS, "inference_mode": True}
            cam.compute(model, x, "features.4", "scorecam")
        on = modes[2:]
    finally:
        h.remove()
    assert on and all(on) and off and not any(off)
    defaults = {"channels_last": True, "fold_batchnorm": True, "inference_mode": False,
                "cpu_pixels_per_pass": 32 * 112 * 112, "share_first_conv": True,
                "onednn_fusion": True, "winograd": True}
    assert cam._LEVERS == defaults
    with pytest.raises(RuntimeError, match="boom"):
        with cam.fast_path(False, False, False, None, False):
            raise RuntimeError("boom")
    assert cam._LEVERS == defaults
    for bad in (0, 2.5, True):
        with pytest.raises(cam.CAMError, match="cpu_pixels_per_pass must be a positive int"):
            with cam.fast_path(cpu_pixels_per_pass=bad):
                pass


def test_occlusion_batches_its_windows():
    """Captum's default is one window a pass; the engine passes batch_size // N windows a pass:
    4 x 4 windows of 8 px on 32 px in batches of 6 windows (batch_size 12, 2 images) is
    ceil(16 / 6) = 3 passes, plus Captum's unoccluded pass, the engine's forward and the
    two checks (as the copy runs, and with Winograd on its 3x3 convolutions)."""
    model = _resnet(9)
    x = torch.randn(2, 3, 32, 32)
    rows = []
    h = model.register_forward_pre_hook(lambda m, inp: rows.append(inp[0].shape[0]))
    try:
        cam.compute(model, x, None, "occlusion", target=[0, 1], batch_size=12,
                    captum_kwargs={"sliding_window_shapes": (3, 8, 8), "strides": 8})
    finally:
        h.remove()
    assert rows == [2, 2, 2, 2] + [12, 12, 8]


def test_untraceable_model_runs_as_it_is_with_the_same_maps():
    class Branchy(GapNet):
        def forward(self, x):
            f = self.features(x)
            if f.sum() > -1e9:  # data-dependent: fx cannot trace the root
                f = f * 1.0
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(10)
    model, x = Branchy().eval(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        fast = cam._FastForward(model, x, model(x))
    assert fast.kind == "channels-last input"
    got = cam.compute(model, x, "features.4", "scorecam")
    with cam.fast_path(**PLAIN):
        ref = cam.compute(model, x, "features.4", "scorecam")
    assert torch.allclose(got, ref, atol=1e-6)


# ------------------------------------------------------- Score-CAM shares the first convolution

@pytest.mark.parametrize("align_corners", [True, False])
def test_bilinear_unit_maps_sum_to_one_and_rebuild_every_mask(align_corners):
    """The two facts the sharing rests on: bilinear up-sampling is linear with unit maps B_j
    that sum to 1, so a min-max normalised up-sampled map is sum_j c_j B_j."""
    torch.manual_seed(12)
    a = torch.rand(5, 3, 4)  # 5 channels of a 3 x 4 layer
    unit = torch.eye(12).view(12, 1, 3, 4)
    maps = nn.functional.interpolate(unit, size=(13, 17), mode="bilinear",
                                     align_corners=align_corners)[:, 0]
    assert torch.allclose(maps.sum(0), torch.ones(13, 17), atol=1e-6)
    up = nn.functional.interpolate(a[None], size=(13, 17), mode="bilinear",
                                   align_corners=align_corners)[0]
    lo = up.flatten(1).amin(1).view(-1, 1, 1)
    span = up.flatten(1).amax(1).view(-1, 1, 1) - lo + 1e-8
    masks = (up - lo) / span
    coef = (a.flatten(1) - lo.view(-1, 1)) / span.view(-1, 1)
    assert torch.allclose(torch.einsum("kj,jhw->khw", coef, maps), masks, atol=1e-6)


def test_first_conv_split_equals_the_model_on_masked_inputs():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
            self.bn = nn.BatchNorm2d(5)
            self.head = nn.Linear(5 * 4 * 4, 3)

        def forward(self, x):
            return self.head(torch.relu(self.bn(self.conv(x))).flatten(1))

    torch.manual_seed(13)
    model = Net().eval()
    model.bn.running_mean.uniform_(-1, 1)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        fast = cam._FastForward(model, x, model(x))
        first = fast.first_conv(x, model(x))
        assert first is not None and first.conv is not model.conv  # the folded copy
        maps = torch.rand(6, 8, 8)
        coef = torch.randn(4, 6)
        got = first(first.basis(x, maps), coef)
        want = model(x * torch.einsum("kj,jhw->khw", coef, maps)[:, None])
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
    # the model's own hooks expect its input: no sharing then
    h = model.register_forward_pre_hook(lambda m, i: None)
    try:
        with torch.no_grad():
            assert cam._FastForward(model, x, model(x)).first_conv(x, model(x)) is None
    finally:
        h.remove()


def test_scorecam_shares_the_first_conv_with_the_same_maps(monkeypatch):
    model = _resnet(14)
    torch.manual_seed(15)
    x = torch.randn(2, 3, 32, 32)  # layer3: 2 x 2, so 4 unit maps against conv1's 3 x 7 x 7
    calls = []
    real = cam._FirstConv.__call__

    def counted(self, basis, coef):
        calls.append(len(coef))
        return real(self, basis, coef)

    monkeypatch.setattr(cam._FirstConv, "__call__", counted)
    shared = cam.compute(model, x, "layer3", "scorecam", batch_size=100)
    # the first two calls are the checks on x (as it runs, and with Winograd on the 3x3 ones)
    assert calls[:2] == [2, 2]
    n_shared = sum(calls[2:])
    calls.clear()
    with cam.fast_path(share_first_conv=False):
        alone = cam.compute(model, x, "layer3", "scorecam", batch_size=100)
    assert not calls
    live = int((model.layer3(model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(
        model.conv1(x))))))).flatten(2).amax(2) > 0).sum())
    assert n_shared == live > 0
    assert torch.allclose(shared, alone, rtol=1e-4, atol=1e-5 * alone.abs().max().item())


def test_passes_with_gradients_alone_use_a_copy_without_the_gradient_free_levers():
    """Integrated Gradients' passes need gradients, where oneDNN's fused calls and Winograd do not
    run: its copy is built without them (no weight reordered or transformed, one check); a
    gradient-free method in the same call builds the full copy."""
    model = _resnet(3)
    x = torch.randn(1, 3, 32, 32)
    rows = []
    h = model.register_forward_pre_hook(lambda m, inp: rows.append(inp[0].shape[0]))
    try:
        ig = cam.compute(model, x, None, "integratedgradients", target=1,
                         captum_kwargs={"n_steps": 4})
        # the engine's forward, one check of the copy, Captum's 4 steps in one pass
        assert rows == [1, 1, 4]
        with cam.fast_path(**PLAIN):
            ref = cam.compute(model, x, None, "integratedgradients", target=1,
                              captum_kwargs={"n_steps": 4})
    finally:
        h.remove()
    assert torch.allclose(ig, ref, rtol=1e-4, atol=1e-6)
    engine = cam._Engine(model, x, [], [], 1, 64, False, {}, {})
    with torch.no_grad():
        engine.output = model(x)
    grad_copy = engine.fast(grad=True)
    assert engine._fast is None and not any(
        isinstance(m, cam._OneDNNConv) for m in grad_copy.module.modules())
    full = engine.fast()
    assert full is not grad_copy and engine.fast(grad=True) is full
    assert any(isinstance(m, cam._OneDNNConv) for m in full.module.modules())
