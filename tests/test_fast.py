"""The accelerator (lib.fast) behind its one seam: batch-norm folded by hand and against torch,
maps equal to the plain engine and to the references, the model left exactly as it came, hooks
honoured, the path that ran said with its reason, and the five defects of the old fast path,
each with a test that failed on it."""

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.fx
import torchvision
from torch import nn

from lib import cam, fast
from lib.cam.engine import Above
from lib.fast import graph as graph_copy_module
from lib.outputs import Uncomparable, same

LIB = Path(__file__).resolve().parents[1] / "lib"


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
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, k, 3, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Linear(k, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


CAPTUM = {
    "occlusion": {"sliding_window_shapes": (3, 8, 8), "strides": 8},
    "integratedgradients": {"n_steps": 8},
    "gradientshap": {"n_samples": 4, "stdevs": 0.1, "seed": 3},
}


def _imports(package: Path) -> set[str]:
    names = set()
    for path in package.rglob("*.py") if package.is_dir() else [package]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
    return names


# ------------------------------------------------------------------------------- the seam


def test_engine_and_accelerator_never_import_each_other():
    engine, accel = _imports(LIB / "cam"), _imports(LIB / "fast")
    assert not any(n == "lib.fast" or n.startswith("lib.fast.") for n in engine), engine
    assert not any(n == "lib.cam" or n.startswith("lib.cam.") for n in accel), accel
    # and the engine asks one thing of an accelerator
    assert [n for n in vars(cam.Accelerator) if not n.startswith("_")] == ["prepare"]


def test_settings_are_immutable_and_checked():
    s = fast.Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.channels_last = False
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="pixels_per_pass must be a positive int"):
            fast.Settings(pixels_per_pass=bad)
    with pytest.raises(TypeError, match="lib.fast.Settings"):
        fast.Accelerator({"channels_last": False})
    with pytest.raises(cam.CAMError, match="prepare"):
        cam.compute(
            GapNet().eval(), torch.randn(1, 3, 8, 8), "features.4", "scorecam", accelerator=object()
        )
    acc = fast.Accelerator(fast.PLAIN)
    model, x = GapNet().eval(), torch.randn(1, 3, 8, 8)
    assert acc.prepare(model, (x,), model(x)) is None
    assert acc.log[-1].kind == "not prepared" and "every lever off" in str(acc.log[-1])


# --------------------------------------------------------------------------- folding by hand


def test_folded_convolution_by_hand():
    # one input channel, two output channels, 1x1 kernel: y_c = w_c x + b_c, then
    # bn: (y - mu) * gamma / sqrt(var + eps) + beta, eps = 0 to keep the numbers round
    conv = nn.Conv2d(1, 2, 1).double().eval()
    bn = nn.BatchNorm2d(2, eps=0.0).double().eval()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([1.0, 3.0]))
        bn.running_mean.copy_(torch.tensor([1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([3.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.5, -1.0]))
    model = nn.Sequential(conv, bn)
    copy, changes = graph_copy_module.graph_copy(model, fold=True, channels_last=False)
    (fused,) = [m for m in copy.modules() if isinstance(m, nn.Conv2d)]
    # s = gamma / sqrt(var) = (1.5, 2); W' = W s = (3, -2); b' = (b - mu) s + beta = (0.5, 1)
    assert torch.equal(fused.weight.view(2), torch.tensor([3.0, -2.0], dtype=torch.float64))
    assert torch.equal(fused.bias, torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy.modules())
    assert changes == ["1 batch norm(s) folded into their convolutions"]
    x = torch.tensor([[[[0.0, 1.0], [2.0, -3.0]]]], dtype=torch.float64)
    assert torch.allclose(copy(x), model(x), atol=1e-12)
    assert torch.equal(conv.weight.view(2), torch.tensor([2.0, -1.0], dtype=torch.float64))


def test_copy_folds_every_batchnorm_and_equals_the_model():
    model = _resnet(1)
    x = torch.randn(2, 3, 32, 32)
    acc = fast.Accelerator()
    with torch.no_grad():
        out = model(x)
        run = acc.prepare(model, (x,), out)
        got = run(x)
    path = acc.log[-1]
    assert path.kind == "graph copy" and path.reason == ""
    assert "20 batch norm(s) folded" in str(path)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in run.fn.modules())
    convs = [m for m in run.fn.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and all(
        c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs
    )
    assert run.fn.fc is model.fc  # the other modules are the model's own, not copies
    assert torch.allclose(got, out, rtol=1e-4, atol=1e-5)
    for settings, has_bn, cl in (
        (fast.Settings(fold_batchnorm=False), True, True),
        (fast.Settings(channels_last=False), False, False),
    ):
        with torch.no_grad():
            f = fast.Accelerator(settings).prepare(model, (x,), out)
        assert any(isinstance(m, nn.BatchNorm2d) for m in f.fn.modules()) == has_bn
        assert f.channels_last == cl


def test_above_runs_the_folded_channels_last_upper_part():
    model = _resnet(11)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)
        a = model.layer3(
            model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x))))))
        )
    tail = Above(model, "layer3", model.layer3, x, a, out, fast.Accelerator())
    mods = list(tail.upper.fn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in mods)
    assert sum(isinstance(m, nn.Conv2d) for m in mods) == 5  # layer4: 4 convs + downsample
    with torch.no_grad():
        assert torch.allclose(
            tail(a[1:2].repeat(3, 1, 1, 1), 1), out[1:2].expand(3, -1), rtol=1e-4, atol=1e-5
        )
    plain = Above(model, "layer3", model.layer3, x, a, out)
    assert isinstance(plain.upper, torch.fx.GraphModule)
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.upper.modules())


# ------------------------------------------------------------- maps: accelerated = plain


@pytest.mark.slow
def test_accelerated_maps_equal_the_plain_engine_and_pytorch_grad_cam():
    import pytorch_grad_cam as pgc

    model = _resnet(2)
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    accelerated = cam.compute_many(
        model, x, "layer3", ["scorecam", "ablationcam"], accelerator=fast.Accelerator()
    )
    plain = cam.compute_many(model, x, "layer3", ["scorecam", "ablationcam"])
    for m, cls in (("scorecam", pgc.ScoreCAM), ("ablationcam", pgc.AblationCAM)):
        a, b = accelerated[m]["layer3"], plain[m]["layer3"]
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()), m
        with cls(model=model, target_layers=[model.layer3]) as ref_cam:
            ref_cam.batch_size = 64
            ref = ref_cam(x, targets=None)
        post = cam.postprocess(a, 32, preset=cam.PGC_PRESET).numpy()
        assert ref.max() > 0.5 and np.abs(post - ref).max() < 1e-4, m


@pytest.mark.parametrize("method", sorted(CAPTUM))
def test_captum_methods_through_the_accelerator_equal_captum(method):
    import captum.attr as ca

    from lib.cam.methods import _seeded

    model = _resnet(4)
    torch.manual_seed(5)
    x = torch.randn(2, 3, 16, 16)
    kw = dict(CAPTUM[method])
    ours = cam.compute(
        model,
        x,
        None,
        method,
        target=[1, 7],
        captum_kwargs=dict(kw),
        accelerator=fast.Accelerator(),
    )
    seed = kw.pop("seed", None)
    if method == "gradientshap":
        kw["baselines"] = torch.zeros_like(x[:1])
        with _seeded(seed, x.device):
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
        "params": [
            (n, p, p.data_ptr(), p.stride(), p.requires_grad, p.detach().clone())
            for n, p in model.named_parameters()
        ],
        "buffers": [(n, b, b.data_ptr(), b.stride(), b.clone()) for n, b in model.named_buffers()],
        "modules": list(model.modules()),
        "attributes": [sorted(m.__dict__) for m in model.modules()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
    }


def _assert_same(before, after):
    assert before["modes"] == after["modes"]
    assert all(a is b for a, b in zip(before["modules"], after["modules"]))
    assert before["hooks"] == after["hooks"] and before["attributes"] == after["attributes"]
    for (n, p, ptr, stride, rg, val), (_, q, ptr2, stride2, rg2, val2) in zip(
        before["params"], after["params"]
    ):
        assert p is q and ptr == ptr2 and stride == stride2 and rg == rg2, n
        assert torch.equal(val, val2), n
    for (n, b, ptr, stride, val), (_, c, ptr2, stride2, val2) in zip(
        before["buffers"], after["buffers"]
    ):
        assert b is c and ptr == ptr2 and stride == stride2 and torch.equal(val, val2), n


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_model_left_exactly_as_it_came_memory_format_included(layout):
    model = _resnet(6, classes=5)
    model.train()
    model.layer1.eval()  # mixed modes
    model.fc.weight.requires_grad_(False)  # mixed flags
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    before = _snapshot(model)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert model.conv1.weight.is_contiguous(memory_format=fmt)
    torch.manual_seed(7)
    x = torch.randn(2, 3, 32, 32)
    cam.compute_many(
        model, x, "layer3", ["scorecam", "ablationcam", "gradcam"], accelerator=fast.Accelerator()
    )
    for m, kw in CAPTUM.items():
        cam.compute(
            model, x, None, m, target=1, captum_kwargs=dict(kw), accelerator=fast.Accelerator()
        )
    _assert_same(before, _snapshot(model))
    assert model.conv1.weight.is_contiguous(memory_format=fmt)
    assert model.training and not model.layer1.training


# --------------------------------------------------------------- hooks, passes, batches


def test_hooks_are_kept_and_the_passes_counted():
    """A root hook sees every pass of Score-CAM (N for the engine's forward, N for the
    accelerator's check, then one masked input per live channel, in batches of ``batch_size``
    split into passes of ``pixels_per_pass``, plus one all-zero mask per image with dead
    channels); a hooked convolution is run as it is, its batch-norm not folded into it, and its
    hook sees its own output."""
    torch.manual_seed(8)
    model = GapNet(k=6).eval()
    with torch.no_grad():
        model.features[3].bias[:2] = -50.0  # channels 0 and 1 dead everywhere
    x = torch.randn(2, 3, 8, 8)
    rows, seen = [], []
    h1 = model.register_forward_pre_hook(lambda m, inp: rows.append(inp[0].shape[0]))
    h2 = model.features[0].register_forward_hook(
        lambda m, inp, out: seen.append((m is model.features[0], out.shape[1]))
    )
    acc = fast.Accelerator()
    capped_acc = fast.Accelerator(fast.Settings(pixels_per_pass=2 * 8 * 8 + 5))  # 2 a pass
    try:
        got = cam.compute(model, x, "features.4", "scorecam", batch_size=3, accelerator=acc)
        ref = cam.compute(model, x, "features.4", "scorecam", batch_size=3)
        capped = cam.compute(
            model, x, "features.4", "scorecam", batch_size=3, accelerator=capped_acc
        )
    finally:
        h1.remove()
        h2.remove()
    a = model.features(x).detach()
    live = (a.flatten(2).amax(2) > 0).sum(1).tolist()
    assert live == [4, 4]
    # per image: zero mask (1), live channels in batches of 3 (3, 1)
    assert rows == (
        [2, 2]
        + [1, 3, 1] * 2  # accelerated: the engine's pass, the check
        + [2]
        + [1, 3, 1] * 2  # plain: no check
        + [2, 2]
        + [1, 2, 1, 1] * 2
    )  # capped: the batch of 3 as 2 + 1
    assert all(same_module and k == 8 for same_module, k in seen)
    assert "at most 2 input(s) a pass" in str(capped_acc.log[-1])
    h = model.features[0].register_forward_hook(lambda *args: None)
    try:
        with torch.no_grad():
            run = fast.Accelerator().prepare(model, (x,), model(x))
    finally:
        h.remove()
    assert run.fn.get_submodule("features.0") is model.features[0]  # kept as it is
    assert any(m is model.features[1] for m in run.fn.modules())  # its batch norm not folded
    assert torch.allclose(got, ref, atol=1e-6) and torch.allclose(capped, ref, atol=1e-6)


def test_passes_split_by_pixels_join_every_kind_of_output():
    class DictNet(GapNet):
        def forward(self, x):
            f = self.features(x)
            return {"logits": self.fc(f.mean((2, 3))), "pair": (f.amax((2, 3)), f.sum())}

    torch.manual_seed(9)
    model, x = DictNet().eval(), torch.randn(5, 3, 8, 8)
    acc = fast.Accelerator(fast.Settings(pixels_per_pass=2 * 8 * 8))
    with torch.no_grad():
        out = model(x)
        run = acc.prepare(model, (x,), out)
        got = run(x)
    # a scalar in the output is not per input: the passes cannot be joined, one pass runs
    assert same(got, out)


def test_occlusion_batches_its_windows():
    """Captum's default is one window a pass; the engine passes batch_size // N windows a pass:
    4 x 4 windows of 8 px on 32 px in batches of 6 windows (batch_size 12, 2 images) is
    ceil(16 / 6) = 3 passes, after the engine's forward, the accelerator's check and Captum's
    unoccluded pass."""
    model = _resnet(9)
    x = torch.randn(2, 3, 32, 32)
    rows = []
    h = model.register_forward_pre_hook(lambda m, inp: rows.append(inp[0].shape[0]))
    try:
        cam.compute(
            model,
            x,
            None,
            "occlusion",
            target=[0, 1],
            batch_size=12,
            captum_kwargs={"sliding_window_shapes": (3, 8, 8), "strides": 8},
            accelerator=fast.Accelerator(),
        )
    finally:
        h.remove()
    assert rows == [2, 2, 2] + [12, 12, 8]


def test_untraceable_model_runs_with_channels_last_inputs_and_says_why():
    class Branchy(GapNet):
        def forward(self, x):
            f = self.features(x)
            if f.sum() > -1e9:  # data-dependent: fx cannot trace the root
                f = f * 1.0
            return self.fc(f.mean((2, 3)))

    torch.manual_seed(10)
    model, x = Branchy().eval(), torch.randn(2, 3, 8, 8)
    acc = fast.Accelerator()
    got = cam.compute(model, x, "features.4", "scorecam", accelerator=acc)
    path = acc.log[-1]
    assert path.kind == "channels-last input" and "no graph copy" in path.reason
    assert torch.allclose(got, cam.compute(model, x, "features.4", "scorecam"), atol=1e-6)


@pytest.mark.slow
def test_torch_compile_setting_compiles_the_copy_and_checks_it():
    torch.manual_seed(12)
    model, x = GapNet().eval(), torch.randn(2, 3, 8, 8)
    acc = fast.Accelerator(fast.Settings(compile=True))
    got = cam.compute(model, x, "features.4", "scorecam", accelerator=acc)
    assert "torch.compile" in str(acc.log[-1]) and acc.log[-1].kind == "graph copy"
    assert torch.allclose(got, cam.compute(model, x, "features.4", "scorecam"), atol=1e-6)


# ------------------------------------------- the five defects of the old fast path (issue 23)


@dataclasses.dataclass
class Out:
    logits: torch.Tensor


class DataclassNet(GapNet):
    def forward(self, x):
        return Out(self.fc(self.features(x).mean((2, 3))))


def test_defect_1_outputs_it_cannot_compare_are_never_called_equal():
    """The old check compared only tensors inside tensors, tuples, lists and dicts: two
    dataclass outputs with different values passed. With a global hook that changes every
    convolution's output (which a folded copy's new convolutions would bypass), the copy would
    have changed the maps."""
    with pytest.raises(Uncomparable, match="Out"):
        same(Out(torch.zeros(2)), Out(torch.ones(2)))
    assert not same({"a": torch.zeros(2)}, {"a": torch.ones(2)})
    assert not same((torch.zeros(2),), [torch.zeros(2)])
    torch.manual_seed(13)
    model, x = DataclassNet().eval(), torch.randn(2, 3, 8, 8)
    target = lambda out: out.logits[:, 1]  # noqa: E731
    for method in ("ablationcam", "scorecam"):
        plain = cam.compute(model, x, "features.2", method, target=target)
        acc = fast.Accelerator()
        got = cam.compute(model, x, "features.2", method, target=target, accelerator=acc)
        assert torch.allclose(got, plain, rtol=1e-5, atol=1e-6), method
    assert "cannot be compared" in acc.log[-1].reason and acc.log[-1].kind == "model as is"

    def double_convs(module, inputs, output):
        return output * 2 if isinstance(module, nn.Conv2d) else None

    class Wrapped(nn.Module):  # a ResNet18 returning a dataclass
        def __init__(self):
            super().__init__()
            self.net = _resnet(20)

        def forward(self, x):
            return Out(self.net(x))

    model, x = Wrapped().eval(), torch.randn(1, 3, 64, 64)
    handle = nn.modules.module.register_module_forward_hook(double_convs)
    try:  # the old fast path's Ablation-CAM differed from the plain engine's by 32x here
        for method in ("ablationcam", "scorecam"):
            plain = cam.compute(model, x, "net.layer3", method, target=target)
            acc = fast.Accelerator()
            got = cam.compute(model, x, "net.layer3", method, target=target, accelerator=acc)
            assert torch.allclose(got, plain, rtol=1e-5, atol=1e-6 * plain.abs().max()), method
    finally:
        handle.remove()
    assert "every module" in acc.log[-1].reason and "cannot be compared" in acc.log[-1].reason
    assert acc.log[-1].kind == "model as is"


class Remembers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.last = None

    def forward(self, x):
        self.last = x
        return torch.relu(self.conv(x))


class StatefulNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = Remembers()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.block(self.stem(x)).mean((2, 3)))


def test_defect_2_tracing_leaves_the_model_and_its_hooks_as_they_were():
    """The old tracer ran the user's forwards with fx proxies: a module storing ``self.last = x``
    was left holding a Proxy, and a hook on a non-leaf module was called once with a Proxy and
    never during the real passes."""
    torch.manual_seed(14)
    model, x = StatefulNet().eval(), torch.randn(2, 3, 8, 8)
    acc = fast.Accelerator()
    got = cam.compute(model, x, "stem", "scorecam", accelerator=acc)
    assert type(model.block.last) is torch.Tensor  # a real tensor, not a Proxy
    assert "sets 'last'" in acc.log[-1].reason and acc.log[-1].kind == "channels-last input"
    assert torch.allclose(got, cam.compute(model, x, "stem", "scorecam"), atol=1e-6)
    # a hook on a block (not a leaf): kept whole in the copy, called with tensors on every pass
    model = _resnet(15)
    x = torch.randn(1, 3, 32, 32)
    kinds, passes = [], []
    h1 = model.layer2.register_forward_hook(lambda m, i, o: kinds.append(type(o)))
    h2 = model.register_forward_pre_hook(lambda m, i: passes.append(1))
    try:
        acc = fast.Accelerator()
        got = cam.compute(model, x, "layer3", "scorecam", accelerator=acc)
    finally:
        h1.remove()
        h2.remove()
    assert acc.log[-1].kind == "graph copy"
    assert kinds and all(k is torch.Tensor for k in kinds)
    assert len(kinds) == len(passes)  # once per pass of the model or its copy
    assert torch.allclose(got, cam.compute(model, x, "layer3", "scorecam"), rtol=1e-4, atol=1e-6)


class Offset:
    """An accelerator whose copy is off by a constant, within the check's tolerance."""

    def prepare(self, module, args, expected):
        return lambda *inputs: module(*inputs) + 4e-6


def test_defect_3_ablation_cam_takes_both_scores_from_the_same_path():
    """The old Ablation-CAM took the unablated score from the model and the ablated scores from
    the copy, so the copy's offset moved every channel's weight by offset / Y and the map's
    shape with it; taken from the same path, the offset cancels in Y - Y_k."""
    torch.manual_seed(16)
    model = GapNet(k=6).eval()
    with torch.no_grad():
        model.fc.weight.mul_(0.01)
        model.fc.bias.zero_()
    x = torch.randn(2, 3, 8, 8)
    plain = cam.compute(model, x, "features.4", "ablationcam", target=0)
    offset = cam.compute(model, x, "features.4", "ablationcam", target=0, accelerator=Offset())
    shown = [cam.postprocess(m, relu=False) for m in (plain, offset)]
    assert torch.allclose(shown[0], shown[1], atol=1e-4)


def test_defect_4_the_path_that_ran_is_said_with_its_reason(monkeypatch):
    """The old fast path turned itself off silently (a copy whose output moved beyond the
    tolerance, half precision, ...)."""
    real = graph_copy_module.graph_copy

    def off_copy(module, fold, channels_last):
        copy, changes = real(module, fold, channels_last)
        fc = copy.fc
        copy.fc = nn.Linear(fc.in_features, fc.out_features)
        copy.fc.weight.data, copy.fc.bias.data = fc.weight.data, fc.bias.data + 1e-2
        return copy, changes

    monkeypatch.setattr(fast, "graph_copy", off_copy)
    torch.manual_seed(17)
    model, x = GapNet().eval(), torch.randn(2, 3, 8, 8)
    acc = fast.Accelerator()
    got = cam.compute(model, x, "features.4", "scorecam", accelerator=acc)
    path = acc.log[-1]
    assert path.kind == "channels-last input"
    assert "graph copy's output differs from the model's" in path.reason
    assert torch.allclose(got, cam.compute(model, x, "features.4", "scorecam"), atol=1e-6)
    monkeypatch.undo()
    model64 = GapNet().double().eval()
    acc = fast.Accelerator()
    cam.compute(model64, x.double(), "features.4", "scorecam", accelerator=acc)
    assert "channels-last not used for a torch.float64" in acc.log[-1].reason
    assert acc.log[-1].kind == "graph copy"  # batch-norm still folded


def test_defect_5_a_model_that_mixes_a_batch_is_documented_as_one():
    """Ablation-CAM's docstring promised the same map alone or within any batch; a BatchNorm
    with track_running_stats=False normalises by the batch even in eval mode."""
    torch.manual_seed(18)
    model = GapNet().eval()
    model.features[1] = nn.BatchNorm2d(8, track_running_stats=False)
    x = torch.randn(2, 3, 8, 8)
    alone = cam.compute(model, x[:1], "features.4", "ablationcam", target=0)
    within = cam.compute(model, x, "features.4", "ablationcam", target=0)[:1]
    assert not torch.allclose(alone, within, atol=1e-3)
    doc = " ".join(cam.METHODS["ablationcam"].__doc__.split())
    assert "track_running_stats=False" in doc and "mixes the images of a batch" in doc


def test_wrong_number_of_input_channels_names_the_fix():
    model = _resnet(19)
    with pytest.raises(cam.CAMError, match=r"x has 1 channel\(s\).*expects 3.*x.repeat"):
        cam.compute(model, torch.randn(1, 1, 32, 32), "layer4")
