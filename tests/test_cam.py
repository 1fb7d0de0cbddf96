"""The CAM engine against values worked out by hand, pytorch-grad-cam, Captum and the papers' claims."""

import math

import numpy as np
import pytest
import torch
import torchvision
from tiny_models import GapNet, SmallVGG
from torch import nn

from lib import cam
from lib.cam import CAMError
from lib.cam.engine import Above
from lib.layers import LayerNotFoundError

PGC = [
    "gradcam",
    "gradcam++",
    "xgradcam",
    "hirescam",
    "layercam",
    "eigencam",
    "scorecam",
    "ablationcam",
]


# --------------------------------------------------------------------------- tiny models


def tiny_model(gap: bool = False) -> nn.Module:
    """x (1 channel, 2x2) -> A = relu(conv1x1) with A_0 = relu(x), A_1 = relu(3 - x) -> head.

    Flatten head: Y_0 = sum(G_0 * A_0) + sum(G_1 * A_1) + 10 with G_0 = [[0,0],[0,1]],
    G_1 = [[0,-1],[0,3]] (so dY/dA = G exactly). GAP head: Y_1 = 2 mean(A_0) - mean(A_1).
    """
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 3.0]))
    if gap:
        head = nn.Linear(2, 3)
        with torch.no_grad():
            head.weight.copy_(torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.0, 0.5]]))
            head.bias.zero_()
        return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).double()
    head = nn.Linear(8, 2)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0] = torch.tensor([0, 0, 0, 1, 0, -1, 0, 3.0])
        head.bias.copy_(torch.tensor([10.0, 0.0]))
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), head).double()


X = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], dtype=torch.float64)
A0 = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
A1 = torch.tensor([[3.0, 2.0], [1.0, 0.0]], dtype=torch.float64)


def _t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def _scorecam_by_hand():
    # masks: min-max of A_0 and A_1; Y(x * mask) worked out from the head (see tiny_model)
    y0, y1 = 31 / 3, 50 / 3
    w1 = 1 / (1 + math.exp(y0 - y1))
    return (1 - w1) * A0 + w1 * A1


HAND = {
    "gradcam": _t([[1.5, 1.25], [1.0, 0.75]]),  # alpha = (1/4, 2/4)
    "counterfactual": -_t([[1.5, 1.25], [1.0, 0.75]]),
    "hirescam": _t([[0.0, -2.0], [0.0, 3.0]]),  # G_0*A_0 + G_1*A_1
    "layercam": _t([[0.0, 0.0], [0.0, 3.0]]),  # relu(G)*A
    "xgradcam": _t([[-1.0, -1 / 6], [2 / 3, 1.5]]),  # alpha = (3/6, -2/6)
    "gradcam++": _t([[0.45, 0.425], [0.4, 0.375]]),  # alpha = (1/8, 3/20)
    "ablationcam": _t([[-6 / 11, -1 / 11], [4 / 11, 9 / 11]]),  # Y=11; ablated 8, 13
    "scorecam": _scorecam_by_hand(),
}


@pytest.mark.parametrize("method", sorted(HAND))
def test_tiny_network_by_hand(method):
    got = cam.compute(tiny_model(), X, "1", method, target=0)[0]
    tol = 1e-6 if method in ("xgradcam", "gradcam++", "scorecam") else 1e-12  # pgc's eps
    assert torch.allclose(got, HAND[method], atol=tol, rtol=0), (method, got)


def test_eigencam_by_hand():
    # pixels x channels, centred: (-1.5, 1.5), (-.5, .5), (.5, -.5), (1.5, -1.5); v = (1, -1)/sqrt 2
    got = cam.compute(tiny_model(), X, "1", "eigencam")[0]
    want = math.sqrt(2) * _t([[-1.5, -0.5], [0.5, 1.5]])
    assert torch.allclose(got.abs(), want.abs(), atol=1e-10)
    assert torch.allclose(got, want, atol=1e-10) or torch.allclose(got, -want, atol=1e-10)


def test_cam_by_hand_and_equals_gradcam_times_z():
    model = tiny_model(gap=True)
    got = cam.compute(model, X, "1", "cam", target=1)[0]
    assert torch.allclose(got, 2 * A0 - A1, atol=1e-12)  # w^1 = (2, -1)
    grad = cam.compute(model, X, "1", "gradcam", target=1)[0]
    assert torch.allclose(got, 4 * grad, atol=1e-12)  # Z = 2 * 2


def test_guided_gradcam_by_hand():
    # the layer is at input resolution here, so up-sampling is the identity:
    # relu(Grad-CAM) * guided backprop = [[1.5, 1.25], [1, .75]] * [[0, 0], [0, 1]]
    got = cam.compute(tiny_model(), X, "1", "guidedgradcam", target=0)[0, 0]
    assert torch.allclose(got, _t([[0.0, 0.0], [0.0, 0.75]]), atol=1e-12)


def test_guided_backprop_by_hand():
    # plain gradient: [[0, 1], [0, 1]]; guided backprop drops the negative gradient that reaches
    # the ReLU of A_1 at (0, 1): [[0, 0], [0, 1]]
    got = cam.compute(tiny_model(), X, None, "guidedbackprop", target=0)[0, 0]
    assert torch.equal(got, _t([[0.0, 0.0], [0.0, 1.0]]))
    x = X.clone().requires_grad_(True)
    tiny_model()(x)[0, 0].backward()
    assert torch.equal(x.grad[0, 0], _t([[0.0, 1.0], [0.0, 1.0]]))


# --------------------------------------------------------------------------- papers' claims


def test_cam_equals_gradcam_times_z_on_gap_network():
    """Selvaraju et al.: on GAP + linear, w_k^c = Z alpha_k^c, so CAM = Z * Grad-CAM (float64)."""
    torch.manual_seed(0)
    model = GapNet().double()
    x = torch.randn(3, 3, 10, 12, dtype=torch.float64)
    maps = cam.compute_many(model, x, "features", ["cam", "gradcam"], target=[0, 1, 3])
    c, g = maps["cam"]["features"], maps["gradcam"]["features"]
    assert torch.allclose(c, 120 * g, rtol=1e-12, atol=1e-12)


def test_cam_refuses_a_model_without_gap_head():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with pytest.raises(CAMError, match="global average pool.*gradcam"):
        cam.compute(model, torch.randn(1, 3, 8, 8), "1", "cam")


def test_counterfactual_is_gradcam_with_the_gradient_negated():
    torch.manual_seed(1)
    model = GapNet()
    x = torch.randn(2, 3, 9, 9)
    maps = cam.compute_many(model, x, "features.2", ["gradcam", "counterfactual"])
    assert torch.equal(maps["counterfactual"]["features.2"], -maps["gradcam"]["features.2"])


class MaskedHead(nn.Module):
    """Conv features, then a linear layer whose weights on the lower rows are zero (Taimeskhanov et al.)."""

    def __init__(self, rows_seen=3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(5 * 8 * 8, 3)
        mask = torch.zeros(5, 8, 8)
        mask[:, :rows_seen] = 1
        self.register_buffer("mask", mask.flatten())

    def forward(self, x):
        return nn.functional.linear(
            self.features(x).flatten(1), self.fc.weight * self.mask, self.fc.bias
        )


def test_hirescam_is_exactly_zero_where_the_gradient_is_zero():
    torch.manual_seed(2)
    model = MaskedHead()
    x = torch.rand(4, 3, 8, 8)
    maps = cam.compute_many(model, x, "features", ["hirescam", "gradcam"])
    hi, gc = maps["hirescam"]["features"], maps["gradcam"]["features"]
    assert torch.equal(hi[:, 3:], torch.zeros_like(hi[:, 3:]))  # exactly 0, not 1e-9
    assert (gc[:, 3:].abs() > 1e-6).any()  # Grad-CAM sees through the wall


# --------------------------------------------------------------------------- second implementations


def _architectures():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    # break the symmetry of fresh batch-norm so maps are not trivially flat
    for m in resnet.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # layer2 (128 channels, 4x4 at 32 px) keeps Score-/Ablation-CAM's 2 x 128 passes cheap
    return [
        ("resnet18", resnet, "layer2", resnet.layer2),
        ("smallvgg", SmallVGG().eval(), "features.7", None),
    ]


@pytest.fixture(scope="module")
def architectures():
    return _architectures()


@pytest.mark.parametrize("arch", [0, 1], ids=["resnet18-skips", "plain-vgg"])
def test_agrees_with_pytorch_grad_cam(architectures, arch):
    import pytorch_grad_cam as pgc

    classes = {
        "gradcam": pgc.GradCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "xgradcam": pgc.XGradCAM,
        "hirescam": pgc.HiResCAM,
        "layercam": pgc.LayerCAM,
        "eigencam": pgc.EigenCAM,
        "scorecam": pgc.ScoreCAM,
        "ablationcam": pgc.AblationCAM,
    }
    name, model, layer, _ = architectures[arch]
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    maps = cam.compute_many(model, x, layer, PGC)
    module = cam.resolve_layer(model, layer)
    for method, cls in classes.items():
        ours = cam.postprocess(maps[method][layer], 32, preset=cam.PGC_PRESET).numpy()
        with cls(model=model, target_layers=[module]) as ref_cam:
            ref = ref_cam(x, targets=None)
        diff = np.abs(ours - ref).max((1, 2))
        if method == "eigencam":  # our sign convention: either sign, but image by image
            flipped = cam.postprocess(-maps[method][layer], 32, preset=cam.PGC_PRESET).numpy()
            diff = np.minimum(diff, np.abs(flipped - ref).max((1, 2)))
            svd = cam.compute(model, x, layer, "eigencam", options={"eigencam": {"sign": "svd"}})
            svd = cam.postprocess(svd, 32, preset=cam.PGC_PRESET).numpy()
            assert np.abs(svd - ref).max() < 1e-4, f"{name}: eigencam sign='svd' vs pgc"
        diff = diff.max()
        assert ref.max() > 0.5, f"{method}: degenerate reference map"
        assert diff < 1e-4, f"{name} {method}: max |ours - pytorch-grad-cam| = {diff:.2e}"


@pytest.mark.parametrize("arch", [0, 1], ids=["resnet18-skips", "plain-vgg"])
def test_agrees_with_captum(architectures, arch):
    from captum.attr import GuidedBackprop, GuidedGradCam, LayerGradCam

    name, model, layer, _ = architectures[arch]
    module = cam.resolve_layer(model, layer)
    torch.manual_seed(4)
    x = torch.randn(3, 3, 32, 32)
    target = [1, 4, 6]
    ours = cam.compute_many(
        model, x, layer, ["gradcam", "guidedgradcam", "guidedbackprop"], target=target
    )
    ref = LayerGradCam(model, module).attribute(x, target=target)[:, 0]
    assert torch.allclose(ours["gradcam"][layer], ref, atol=1e-6, rtol=1e-4)
    ref = GuidedBackprop(model).attribute(x, target=target)
    assert ref.abs().max() > 0
    assert torch.allclose(ours["guidedbackprop"][layer], ref, atol=1e-7, rtol=1e-5)
    ref = GuidedGradCam(model, module).attribute(x, target=target, interpolate_mode="bilinear")
    assert torch.allclose(ours["guidedgradcam"][layer], ref, atol=1e-7, rtol=1e-4)


def test_captum_methods_behind_the_same_call():
    from captum.attr import IntegratedGradients

    torch.manual_seed(5)
    model = SmallVGG().eval()
    x = torch.randn(2, 3, 32, 32)
    ours = cam.compute(
        model, x, None, "integratedgradients", target=[2, 3], captum_kwargs={"n_steps": 16}
    )
    ref = IntegratedGradients(model).attribute(x, target=[2, 3], n_steps=16)
    assert torch.allclose(ours, ref, atol=1e-6)
    # completeness of IG: attributions sum to f(x) - f(0), up to the Riemann error
    delta = model(x)[[0, 1], [2, 3]] - model(torch.zeros_like(x))[[0, 1], [2, 3]]
    assert torch.allclose(ours.sum((1, 2, 3)), delta, rtol=0.05, atol=1e-3)
    # occlusion by hand on a linear model: occluding a pixel removes exactly w * x
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    xs = torch.randn(1, 3, 4, 4)
    occ = cam.compute(
        lin,
        xs,
        None,
        "occlusion",
        target=1,
        captum_kwargs={"sliding_window_shapes": (1, 1, 1), "strides": 1},
    )
    assert torch.allclose(occ[0], (lin[1].weight[1].view(3, 4, 4) * xs[0]).detach(), atol=1e-6)


def test_callable_target_equals_int_target():
    torch.manual_seed(6)
    model = GapNet()
    x = torch.randn(2, 3, 8, 8)
    a = cam.compute_many(model, x, "features", ["gradcam", "scorecam", "ablationcam"], target=2)
    b = cam.compute_many(
        model, x, "features", ["gradcam", "scorecam", "ablationcam"], target=lambda out: out[:, 2]
    )
    for m in a:
        assert torch.allclose(a[m]["features"], b[m]["features"], atol=1e-6)
    # a sigmoid score (multi-label logits) is a different target, with its own map
    c = cam.compute(model, x, "features", "gradcam", target=lambda out: out.sigmoid()[:, 2])
    s = torch.sigmoid(model(x)[:, 2]).detach()
    assert torch.allclose(c, a["gradcam"]["features"] * (s * (1 - s)).view(-1, 1, 1), atol=1e-6)


# --------------------------------------------------------------------------- one pass, many maps


def test_many_methods_and_layers_share_one_forward_pass(architectures):
    _, model, _, _ = architectures[0]
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(1))
    x = torch.randn(2, 3, 32, 32)
    try:
        both = cam.compute_many(
            model,
            x,
            ["layer3", "layer4"],
            ["gradcam", "hirescam", "gradcam++", "layercam", "xgradcam"],
        )
    finally:
        handle.remove()
    assert len(calls) == 1
    for layer in ("layer3", "layer4"):
        for method in ("gradcam", "hirescam"):
            alone = cam.compute(model, x, layer, method)
            assert torch.allclose(both[method][layer], alone, atol=1e-6)


def test_ablation_tail_handles_skips_and_untraceable_models():
    """Ablation-CAM runs only the part above the layer; a U-Net-like skip (a value from below the
    layer used above it) and a model torch.fx cannot trace give the same maps as
    pytorch-grad-cam, which runs the whole model for every ablation."""
    import pytorch_grad_cam as pgc

    class Skip(nn.Module):
        def __init__(self, traceable=True):
            super().__init__()
            self.traceable = traceable
            self.enc = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
            self.mid = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
            self.head = nn.Linear(14, 3)

        def forward(self, x):
            e = self.enc(x)
            if not self.traceable and bool(x.sum() > -1e9):  # data-dependent: fx cannot trace
                e = e * 1.0
            m = self.mid(nn.functional.max_pool2d(e, 2))
            up = nn.functional.interpolate(m, scale_factor=2)
            return self.head(torch.cat([up, e], 1).mean((2, 3)))

    class ShapeGate(nn.Module):  # control flow on a shape: fx keeps it whole, as a leaf
        def forward(self, t):
            return t * 2.0 if t.shape[-1] > 1 else t

    class Gated(Skip):
        def __init__(self):
            super().__init__()
            self.gate = ShapeGate()

        def forward(self, x):
            e = self.enc(x)
            m = self.gate(self.mid(nn.functional.max_pool2d(e, 2)))
            up = nn.functional.interpolate(m, scale_factor=2)
            return self.head(torch.cat([up, e], 1).mean((2, 3)))

    torch.manual_seed(7)
    x = torch.randn(2, 3, 8, 8)
    gated = Gated().eval()
    a = gated.mid(nn.functional.max_pool2d(gated.enc(x), 2)).detach()
    tail = Above(gated, "mid", gated.mid, x, a, gated(x).detach())
    assert tail.upper is not None and tail.externals  # split, with the skip as external
    for model in (Skip(True).eval(), Skip(False).eval(), gated):
        ours = cam.postprocess(
            cam.compute(model, x, "mid", "ablationcam"), 8, preset=cam.PGC_PRESET
        ).numpy()
        with pgc.AblationCAM(model=model, target_layers=[model.mid]) as ref_cam:
            ref = ref_cam(x, targets=None)
        assert np.abs(ours - ref).max() < 1e-4


# --------------------------------------------------------------------------- post-processing


def test_postprocess_by_hand():
    m = torch.tensor([[[-1.0, 1.0], [3.0, 5.0]]])
    assert torch.equal(cam.postprocess(m), torch.tensor([[[0.0, 0.2], [0.6, 1.0]]]))
    assert torch.equal(
        cam.postprocess(m, normalize="max"), torch.tensor([[[0.0, 0.2], [0.6, 1.0]]])
    )
    assert torch.equal(cam.postprocess(m, relu=False, normalize="none"), m)
    near = cam.postprocess(m, size=4, mode="nearest", relu=False, normalize="none")
    assert torch.equal(near[0, :2, :2], torch.full((2, 2), -1.0))
    # bilinear, align_corners=False: output pixel 0 of 4 sits at input coordinate -0.25 -> clamped
    bil = cam.postprocess(torch.tensor([[[0.0, 4.0]]]), size=(1, 4), relu=False, normalize="none")
    assert torch.allclose(bil, torch.tensor([[[0.0, 1.0, 3.0, 4.0]]]))
    # a constant map normalises to zeros, never NaN
    flat = cam.postprocess(torch.zeros(2, 3, 3), size=6)
    assert torch.equal(flat, torch.zeros(2, 6, 6))


def test_postprocess_preset_matches_pytorch_grad_cam_scaling():
    from pytorch_grad_cam.utils.image import scale_cam_image

    torch.manual_seed(8)
    raw = torch.randn(3, 7, 7)
    ours = cam.postprocess(raw, 224, preset=cam.PGC_PRESET).numpy()
    ref = scale_cam_image(scale_cam_image(np.maximum(raw.numpy(), 0), (224, 224)))
    assert np.abs(ours - ref).max() < 1e-5


# --------------------------------------------------------------------------- the model is left as it came


def _state(model):
    return (
        [m.training for m in model.modules()],
        [p.requires_grad for p in model.parameters()],
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        {k: v.clone() for k, v in model.state_dict().items()},
        [
            (len(m._forward_hooks), len(m._backward_hooks), len(m._forward_pre_hooks))
            for m in model.modules()
        ],
    )


def _same(a, b):
    assert a[0] == b[0] and a[1] == b[1] and a[4] == b[4]
    for g, h in zip(a[2], b[2]):
        assert (g is None and h is None) or torch.equal(g, h)
    for k in a[3]:
        assert torch.equal(a[3][k], b[3][k]), k


def test_model_left_exactly_as_it_came():
    torch.manual_seed(9)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Conv2d(8, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    model.train()
    model[1].eval()  # mixed modes
    model[9].weight.requires_grad_(False)  # mixed flags
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = _state(model)
    x = torch.randn(2, 3, 12, 12)
    cam.compute_many(model, x, ["2", "6"], list(cam.LAYER_METHODS[1:]) + ["guidedgradcam"])
    cam.compute(model, x, "6", "cam")  # layer 6 is followed by GAP + linear
    _same(before, _state(model))  # batch-norm statistics untouched too (eval mode inside)


def test_model_restored_when_an_error_is_raised_half_way():
    torch.manual_seed(10)
    model = torchvision.models.resnet18(weights=None, num_classes=5).train()
    before = _state(model)

    def bad_target(out):
        raise RuntimeError("boom in the target")

    with pytest.raises(RuntimeError, match="boom"):
        cam.compute(model, torch.randn(1, 3, 32, 32), "layer4", "gradcam", target=bad_target)
    with pytest.raises(CAMError, match="out of range"):
        cam.compute(model, torch.randn(1, 3, 32, 32), "layer4", "gradcam", target=5)
    _same(before, _state(model))
    assert torch.is_grad_enabled()


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    torch.manual_seed(11)
    model = GapNet()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(CAMError, match=r"\(N, C, H, W\).*x\[None\]"):
        cam.compute(model, x[0], "features")
    with pytest.raises(CAMError, match="floating-point"):
        cam.compute(model, (x * 100).to(torch.uint8), "features")
    with pytest.raises(CAMError, match=r"class 4 is out of range.*4 classes \(0..3\)"):
        cam.compute(model, x, "features", target=4)
    with pytest.raises(CAMError, match="one int per image"):
        cam.compute(model, x, "features", target=[0, 1, 2])
    with pytest.raises(LayerNotFoundError, match=r"no layer named 'layer9'.*features\.0"):
        cam.compute(model, x, "layer9")
    with pytest.raises(CAMError, match="unknown method 'gradcamm'.*gradcam"):
        cam.compute(model, x, "features", "gradcamm")
    with pytest.raises(CAMError, match="NaN or Inf"):
        cam.compute(model, x * float("nan"), "features")
    with pytest.raises(CAMError, match="one score per image"):
        cam.compute(model, x, "features", target=lambda out: out.sum())
    with pytest.raises(CAMError, match="no default target layer.*pass layer="):
        cam.compute(nn.Sequential(nn.Flatten(), nn.Linear(3 * 64, 2)), x, None, "gradcam")


def test_layer_off_the_path_and_layer_that_never_runs():
    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 4, 3)
            self.aux = nn.Conv2d(4, 4, 1)  # runs, but the output ignores it
            self.unused = nn.Conv2d(4, 4, 1)  # never runs
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            a = self.body(x)
            self.aux(a)
            return self.fc(a.mean((2, 3)))

    x = torch.randn(1, 3, 6, 6)
    with pytest.raises(
        CAMError, match="not on the path to the output.*gradient is None|does not depend"
    ):
        cam.compute(Aux(), x, "aux")
    with pytest.raises(CAMError, match="did not run"):
        cam.compute(Aux(), x, "unused")
    with pytest.raises(CAMError, match="runs 2 times"):
        resnet = torchvision.models.resnet18(weights=None)
        cam.compute(resnet, torch.randn(1, 3, 32, 32), "layer4.0.relu")
    with pytest.raises(CAMError, match="4-D feature map"):
        cam.compute(Aux(), x, "fc")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_maps_stay_on_the_inputs_device():
    model = GapNet().cuda()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    maps = cam.compute_many(model, x, "features", ["gradcam", "scorecam", "ablationcam"])
    assert all(t["features"].is_cuda for t in maps.values())
    cpu = cam.compute(model.cpu(), x.cpu(), "features", "gradcam")
    assert torch.allclose(maps["gradcam"]["features"].cpu(), cpu, atol=1e-5)
