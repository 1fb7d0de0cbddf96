"""The CAM engine items of issue #9: Eigen-CAM's sign, no_grad / inference_mode, tuple and dict
outputs, pytorch-grad-cam's per-image targets, Gradient SHAP's seed, bad models and layer names,
Ablation-CAM's ablation value. Each test failed on the engine before the fix (item 13: see its
tests' docstrings)."""

import math
import random

import numpy as np
import pytest
import torch
import torchvision
from tiny_models import GapNet, MaxHead, SmallVGG
from torch import nn

from lib import cam
from lib.cam import CAMError
from lib.layers import LayerNotFoundError, resolve_layer


def _pgc(cls, model, layer, x, targets=None):
    with cls(model=model, target_layers=[layer]) as ref_cam:
        return ref_cam(x, targets=targets)


# --------------------------------------------------------------------------- 1. Eigen-CAM's sign


def test_eigencam_sum_sign_by_hand():
    # A_1 = 2 A_0 (rank 1): centred pixels (-1.5, -3), (-.5, -1), (.5, 1), (1.5, 3);
    # v = (1, 2)/sqrt 5 up to sign; the channel sum 3 A_0 rises left to right, so "sum" takes +v
    conv = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
        conv.bias.zero_()
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(8, 2)).double()
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], dtype=torch.float64)
    want = 5**0.5 * torch.tensor([[-1.5, -0.5], [0.5, 1.5]], dtype=torch.float64)
    got = cam.compute(model, x, "0", "eigencam")[0]
    assert torch.allclose(got, want, atol=1e-12)
    for dtype in (np.float32, np.float64):  # "svd": numpy's v, whatever its sign
        r = np.array([[0, 0], [1, 2], [2, 4], [3, 6.0]], dtype=dtype)
        r -= r.mean(0)
        v = np.linalg.svd(r, full_matrices=False)[2][0]
        svd = cam.compute(
            model.to(torch.float64 if dtype == np.float64 else torch.float32),
            x.to(torch.float64 if dtype == np.float64 else torch.float32),
            "0",
            "eigencam",
            options={"eigencam": {"sign": "svd"}},
        )[0]
        assert torch.allclose(
            svd.double(), torch.from_numpy((r @ v).reshape(2, 2)).double(), atol=1e-5
        )


def test_eigencam_svd_sign_equals_pytorch_grad_cam_per_image():
    """On images where the two conventions differ, sign='svd' equals pytorch-grad-cam's EigenCAM
    (same post-processing) image by image, and sign='sum' is its negation there."""
    import pytorch_grad_cam as pgc

    torch.manual_seed(1)  # a seed where the two conventions differ on 5 of 8 images
    model = SmallVGG().eval()
    x = torch.randn(8, 3, 32, 32)
    ours = cam.compute(model, x, "features.7", "eigencam")
    svd = cam.compute(model, x, "features.7", "eigencam", options={"eigencam": {"sign": "svd"}})
    ref = _pgc(pgc.EigenCAM, model, model.features[7], x)
    same = (ours * svd).flatten(1).sum(1) > 0
    assert 0 < int(same.sum()) < len(x), "want images where the conventions agree and differ"
    assert torch.allclose(ours.abs(), svd.abs())
    post = cam.postprocess(svd, 32, preset=cam.PGC_PRESET).numpy()
    assert np.abs(post - ref).max() < 1e-4
    neg = cam.postprocess(-ours, 32, preset=cam.PGC_PRESET).numpy()
    differ = (~same).numpy()
    assert np.abs(neg[differ] - ref[differ]).max() < 1e-4
    # "sum": each image's map correlates positively with its centred channel sum
    acts = model.features(x).detach()
    s = acts.sum(1).flatten(1)
    s = s - s.mean(1, keepdim=True)
    m = ours.flatten(1) - ours.flatten(1).mean(1, keepdim=True)
    assert ((s * m).sum(1) > 0).all()


# ------------------------------------------------------------------ 8. no_grad, inference_mode


def _every_method(model, x, layer, target):
    out = {}
    for m in cam.METHODS:
        kw = {
            "captum_kwargs": {
                "integratedgradients": {"n_steps": 4},
                "occlusion": {"sliding_window_shapes": (3, 3, 3), "strides": 2},
                "gradientshap": {"n_samples": 3, "seed": 1},
            }.get(m, {})
        }
        out[m] = cam.compute(model, x, layer, m, target, **kw)
    return out


def test_compute_inside_no_grad_equals_outside():
    torch.manual_seed(13)
    model, x = GapNet().eval(), torch.randn(2, 3, 8, 8)
    outside = _every_method(model, x, "features", [1, 3])
    with torch.no_grad():
        inside = _every_method(model, x, "features", [1, 3])
        assert not torch.is_grad_enabled()  # the caller's mode is left as it was
    for m in cam.METHODS:
        assert torch.allclose(inside[m], outside[m], atol=1e-6), m


GRADIENT_FREE = ["cam", "eigencam", "scorecam", "ablationcam", "occlusion"]


def test_inference_mode_gradient_methods_say_why_and_the_others_work():
    torch.manual_seed(14)
    model, x = GapNet().eval(), torch.randn(2, 3, 8, 8)
    needs_grad = [m for m in cam.METHODS if cam.METHODS[m].gradients]
    assert sorted(needs_grad + GRADIENT_FREE) == sorted(cam.METHODS)
    outside = {
        m: cam.compute(
            model,
            x,
            "features",
            m,
            2,
            captum_kwargs={"sliding_window_shapes": (3, 3, 3)} if m == "occlusion" else None,
        )
        for m in GRADIENT_FREE
    }
    with torch.inference_mode():
        for m in needs_grad:
            with pytest.raises(
                CAMError,
                match=r"need gradients.*inside torch\.inference_mode\(\)"
                r".*Call it outside the inference_mode block",
            ):
                cam.compute(model, x, "features", m, 2)
        for m in GRADIENT_FREE:
            got = cam.compute(
                model,
                x,
                "features",
                m,
                2,
                captum_kwargs={"sliding_window_shapes": (3, 3, 3)} if m == "occlusion" else None,
            )
            assert torch.allclose(got, outside[m], atol=1e-6), m
        x_inf = torch.randn(2, 3, 8, 8)
    # images made under inference_mode work outside it, gradient methods included
    got = cam.compute_many(model, x_inf, "features", ["gradcam", "guidedgradcam"], 2)
    ref = cam.compute_many(model, x_inf.clone(), "features", ["gradcam", "guidedgradcam"], 2)
    for m in got:
        assert torch.equal(got[m]["features"], ref[m]["features"])


# ------------------------------------------------------------------ 9. tuple and dict outputs


class TwoHeads(nn.Module):
    """GapNet's logits plus an auxiliary head, as a tuple or as a dict."""

    def __init__(self, base, as_dict):
        super().__init__()
        self.base, self.as_dict = base, as_dict
        self.aux = nn.Linear(6, 2)

    def forward(self, x):
        f = self.base.features(x).mean((2, 3))
        logits, aux = self.base.fc(f), self.aux(f)
        return {"out": logits, "aux": aux} if self.as_dict else (logits, aux)


@pytest.mark.parametrize("as_dict", [False, True], ids=["tuple", "dict"])
def test_tuple_and_dict_outputs_through_a_callable_target(as_dict):
    torch.manual_seed(15)
    base = GapNet().eval()
    model = TwoHeads(base, as_dict).eval()
    x = torch.randn(2, 3, 8, 8)
    key = "out" if as_dict else 0
    methods = ["gradcam", "hirescam", "eigencam", "scorecam", "ablationcam", "guidedgradcam"]
    ref = cam.compute_many(base, x, "features", methods, target=2)
    ours = cam.compute_many(model, x, "base.features", methods, target=lambda out: out[key][:, 2])
    ref_pair = cam.compute_many(base, x, "features", methods, target=[1, 3])
    per_image = cam.compute_many(
        model, x, "base.features", methods, target=[lambda o: o[key][1], lambda o: o[key][3]]
    )
    for m in methods:
        assert torch.allclose(ours[m]["base.features"], ref[m]["features"], atol=1e-6), m
        assert torch.allclose(per_image[m]["base.features"], ref_pair[m]["features"], atol=1e-6), m
    kind = "dict with keys \\['out', 'aux'\\]" if as_dict else "tuple of 2 items"
    fix = "out\\['out'\\]" if as_dict else "out\\[0\\]"
    with pytest.raises(
        CAMError, match=f"returns a {kind}.*pass a callable target.*target=lambda out: {fix}"
    ):
        cam.compute(model, x, "base.features", "gradcam")


def test_torchvision_segmentation_model_by_hand():
    torch.manual_seed(16)
    model = torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=3, aux_loss=True
    ).eval()
    x = torch.randn(1, 3, 48, 48)
    with pytest.raises(
        CAMError,
        match=r"OrderedDict with keys \['out', 'aux'\].*target=lambda "
        r"out: out\['out'\]\[:, c\]\.mean\(\(1, 2\)\)",
    ):
        cam.compute(model, x, "backbone.16", "gradcam")
    got = cam.compute(
        model, x, "backbone.16", "gradcam", target=lambda out: out["out"][:, 2].mean((1, 2))
    )
    # by hand: a hook, autograd, Grad-CAM's Eq. 1-2
    acts = {}
    handle = model.backbone["16"].register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    out = model(x)
    handle.remove()
    (g,) = torch.autograd.grad(out["out"][:, 2].mean((1, 2)).sum(), acts["a"])
    want = (g.mean((2, 3))[:, :, None, None] * acts["a"]).sum(1).detach()
    assert want.abs().max() > 0
    assert torch.allclose(got, want, atol=1e-6 * want.abs().max().item(), rtol=1e-4)


# --------------------------------------------------------------------------- 10. targets


def test_pytorch_grad_cam_target_objects_and_scalar_targets():
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(17)
    model, x = SmallVGG().eval(), torch.randn(2, 3, 32, 32)
    targets = [ClassifierOutputTarget(3), ClassifierOutputTarget(5)]
    methods = ["gradcam", "scorecam", "ablationcam"]
    ours = cam.compute_many(model, x, "features.7", methods, target=targets)
    ints = cam.compute_many(model, x, "features.7", methods, target=[3, 5])
    for m, cls in (
        ("gradcam", pgc.GradCAM),
        ("scorecam", pgc.ScoreCAM),
        ("ablationcam", pgc.AblationCAM),
    ):
        assert torch.allclose(ours[m]["features.7"], ints[m]["features.7"], atol=1e-6), m
        ref = _pgc(cls, model, model.features[7], x, targets)
        post = cam.postprocess(ours[m]["features.7"], 32, preset=cam.PGC_PRESET).numpy()
        assert np.abs(post - ref).max() < 1e-4, m
    three = cam.compute(model, x, "features.7", "gradcam", target=3)
    for scalar in (np.int64(3), torch.tensor(3), np.array(3), torch.tensor(3, dtype=torch.int32)):
        assert torch.equal(cam.compute(model, x, "features.7", "gradcam", target=scalar), three)
    for bad in (torch.tensor(3.0), True, [ClassifierOutputTarget(3), 5]):
        with pytest.raises(CAMError, match="target"):
            cam.compute(model, x, "features.7", "gradcam", target=bad)
    with pytest.raises(CAMError, match="2 per-image callables for 1 images"):
        cam.compute(model, x[:1], "features.7", "gradcam", target=targets)
    with pytest.raises(CAMError, match="Captum methods need class indices"):
        cam.compute(model, x, None, "integratedgradients", target=targets)


# ------------------------------------------------------------------ 11. Gradient SHAP's seed


def _rng_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _same_states(a, b):
    np_a, np_b = a[1], b[1]
    return (
        torch.equal(a[0], b[0])
        and np_a[0] == np_b[0]
        and np.array_equal(np_a[1], np_b[1])
        and np_a[2:] == np_b[2:]
        and a[2] == b[2]
    )


def test_gradientshap_repeatable_for_a_seed_and_leaves_the_global_random_state():
    torch.manual_seed(18)
    model, x = GapNet().eval(), torch.randn(2, 3, 8, 8)
    kw = {"n_samples": 4, "stdevs": 0.2, "baselines": torch.randn(3, 3, 8, 8), "seed": 5}

    def run(**over):
        return cam.compute(
            model, x, None, "gradientshap", target=[0, 2], captum_kwargs={**kw, **over}
        )

    before = _rng_states()
    a = run()
    assert _same_states(before, _rng_states()), "the caller's random state changed"
    np.random.rand(3)  # the caller draws in between: the map must not depend on it
    random.random()
    torch.rand(3)
    b = run()
    assert torch.equal(a, b)
    assert not torch.equal(a, run(seed=6))


# ------------------------------------------------------------------ 12. bad models, bad names


def test_traced_model_is_refused_with_the_reason():
    torch.manual_seed(19)
    model, x = GapNet().eval(), torch.randn(1, 3, 8, 8)
    traced = torch.jit.trace(model, x)
    for method in ("gradcam", "eigencam", "guidedbackprop"):
        with pytest.raises(
            CAMError,
            match=r"TorchScript.*hooks cannot see inside a compiled "
            r"graph.*eager nn\.Module",
        ):
            cam.compute(traced, x, "features", method)
    # a traced part holding the layer is refused too
    wrapper = nn.Sequential(torch.jit.trace(model.features, x), nn.AdaptiveAvgPool2d(1))
    with pytest.raises(CAMError, match="TorchScript"):
        cam.compute(wrapper, x, "0", "eigencam")


def test_float64_input_to_float32_model_names_the_fix():
    torch.manual_seed(20)
    model = GapNet().eval()
    with pytest.raises(
        CAMError,
        match=r"x is torch\.float64 but the model's parameters are "
        r"torch\.float32: pass x\.float\(\).*model\.double\(\)",
    ):
        cam.compute(model, torch.randn(1, 3, 8, 8, dtype=torch.float64), "features")
    with pytest.raises(CAMError, match=r"x is torch\.float32 .* torch\.float64: pass x\.double"):
        cam.compute(model.double(), torch.randn(1, 3, 8, 8), "features")


def test_empty_layer_or_method_list_rejected_before_any_forward_pass():
    torch.manual_seed(21)
    model, x = GapNet().eval(), torch.randn(1, 3, 8, 8)
    calls = []
    handle = model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(CAMError, match="layers is an empty list"):
            cam.compute_many(model, x, [], "gradcam")
        with pytest.raises(CAMError, match="methods is an empty list"):
            cam.compute_many(model, x, "features", [])
        with pytest.raises(CAMError, match="compute_many"):
            cam.compute(model, x, [], "gradcam")
    finally:
        handle.remove()
    assert calls == []


def test_integer_layer_names_index_only_sequential_containers():
    resnet = torchvision.models.resnet18(weights=None)
    for name in ("7", "-3", "layer4.0.1"):
        with pytest.raises(
            LayerNotFoundError,
            match=r"positions index only an nn\.Sequential "
            r"or nn\.ModuleList.*Valid names.*layer4",
        ):
            resolve_layer(resnet, name)
    assert resolve_layer(resnet, "layer4.-1") is resnet.layer4[1]
    assert resolve_layer(resnet, "layer4[0]") is resnet.layer4[0]
    with pytest.raises(LayerNotFoundError, match="out of range"):
        resolve_layer(resnet, "layer4.2")
    seq = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.ModuleList([nn.ReLU(), nn.Tanh()]))
    assert resolve_layer(seq, "-2") is seq[1] and resolve_layer(seq, "2.-1") is seq[2][1]
    # the papers' names still resolve (paper_layers checks each one with resolve_layer)
    effnet = torchvision.models.efficientnet_b0(weights=None)
    assert resolve_layer(effnet, "features[-1]") is effnet.features[8]
    from lib.models import zoo

    for name in zoo.TORCHVISION + (
        "small_resnet",
        "small_densenet",
        "small_efficientnet",
        "gap_net",
        "masked_vgg",
        "unet",
        "mnist_net",
    ):
        assert zoo.paper_layers(name)


# --------------------------------------------------------------------------- 13. Ablation-CAM


class NegativeLayer(nn.Module):
    """A conv whose output (the target layer) has negative values, then GAP and a linear head:
    no ReLU saturates the ablation value, so its size reaches the score."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


def test_ablation_value_is_per_image_and_batch_independent():
    """Passed before the fix too (the engine was right, its docstring claimed agreement with
    pytorch-grad-cam everywhere): an image's map is the same alone, in a batch, for any
    batch_size, and equals ablation by hand with min(A_i) - 1e7; pytorch-grad-cam's depends on
    its batch_size."""
    import pytorch_grad_cam as pgc

    torch.manual_seed(22)
    model, x = NegativeLayer().eval(), torch.randn(3, 3, 6, 6)
    a = model.conv(x).detach()
    assert (a.flatten(1).amin(1) < 0).all()
    batch = cam.compute(model, x, "conv", "ablationcam")
    for i in range(3):
        for bs in (1, 2, 64):
            alone = cam.compute(model, x[i : i + 1], "conv", "ablationcam", batch_size=bs)
            assert torch.allclose(alone[0], batch[i], atol=1e-5, rtol=1e-5), (i, bs)
    # by hand
    y = model(x).detach()
    cls = y.argmax(1)
    for i in range(3):
        yi = y[i, cls[i]]
        alpha = []
        for k in range(5):
            ablated = a[i : i + 1].clone()
            ablated[0, k] = a[i].min() - 1e7
            yk = model.head(ablated.mean((2, 3)))[0, cls[i]]
            alpha.append((yi - yk) / yi)
        want = (torch.stack(alpha).view(5, 1, 1) * a[i]).sum(0).detach()
        assert torch.allclose(batch[i], want, atol=1e-4, rtol=1e-4)
    # pytorch-grad-cam's value compounds along its ablation batch: with batch_size=1 it is ours,
    # with its default (32) the map differs
    post = cam.postprocess(batch, 6, preset=cam.PGC_PRESET).numpy()
    for bs, agree in ((1, True), (32, False)):
        with pgc.AblationCAM(model=model, target_layers=[model.conv]) as ref_cam:
            ref_cam.batch_size = bs
            ref = ref_cam(x, targets=None)
        assert (np.abs(post - ref).max() < 1e-4) == agree, bs


def test_ablation_agrees_with_pytorch_grad_cam_on_non_negative_activations():
    import pytorch_grad_cam as pgc

    torch.manual_seed(23)
    model, x = SmallVGG().eval(), torch.randn(3, 3, 32, 32)
    a = model.features(x).detach()
    assert (a.flatten(1).amin(1) == 0).all()  # post-ReLU: the ablation value is 0
    ours = cam.compute(model, x, "features.7", "ablationcam")
    ref = _pgc(pgc.AblationCAM, model, model.features[7], x)
    assert ref.max() > 0.5
    assert np.abs(cam.postprocess(ours, 32, preset=cam.PGC_PRESET).numpy() - ref).max() < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_eigencam_svd_sign_and_gradientshap_seed():
    torch.manual_seed(24)
    model, x = GapNet().eval(), torch.randn(3, 3, 8, 8)
    opts = {"eigencam": {"sign": "svd"}}
    cpu = cam.compute(model, x, "features", "eigencam", options=opts)
    model, x = model.cuda(), x.cuda()
    gpu = cam.compute(model, x, "features", "eigencam", options=opts)
    assert gpu.is_cuda and torch.allclose(gpu.cpu(), cpu, atol=1e-5)
    before = (torch.cuda.get_rng_state(), torch.get_rng_state())
    kw = {"n_samples": 4, "stdevs": 0.2, "seed": 5}
    a = cam.compute(model, x, None, "gradientshap", target=1, captum_kwargs=dict(kw))
    after = (torch.cuda.get_rng_state(), torch.get_rng_state())
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    torch.rand(3, device="cuda")  # the caller draws in between
    b = cam.compute(model, x, None, "gradientshap", target=1, captum_kwargs=dict(kw))
    assert a.is_cuda and torch.equal(a, b)


# --------------------------------------------------------------------------- Grad-CAM's pooling


def test_gradcam_max_pooling_of_the_gradients_by_hand():
    """Selvaraju et al.'s alternative to Eq. 1: alpha_k = max_ij G_kij. A layer A (1 image, 2
    channels, 1 x 2 pixels) followed by y = sum(W * A) with W = [[3, 1], [0, 2]]: G = W, so
    mean pooling gives alpha = (2, 1) and max pooling alpha = (3, 2)."""

    x = torch.tensor(
        [[[[1.0, 2.0]], [[4.0, -1.0]]]], dtype=torch.float64
    )  # A_0 = (1, 2), A_1 = (4, -1)
    model = MaxHead()
    mean = cam.compute(model, x, "a", "gradcam", target=0)[0]
    mx = cam.compute(model, x, "a", "gradcam", target=0, options={"gradcam": {"pooling": "max"}})[0]
    # mean: 2 * (1, 2) + 1 * (4, -1) = (6, 3); max: 3 * (1, 2) + 2 * (4, -1) = (11, 4)
    assert torch.allclose(mean, torch.tensor([[6.0, 3.0]], dtype=torch.float64))
    assert torch.allclose(mx, torch.tensor([[11.0, 4.0]], dtype=torch.float64))
    with pytest.raises(CAMError, match="pooling"):
        cam.compute(model, x, "a", "gradcam", options={"gradcam": {"pooling": "sum"}})


def test_gradcam_pooling_cannot_matter_right_before_global_average_pooling():
    """Before GAP every position gets the same gradient, so mean and max pooling agree."""
    torch.manual_seed(0)
    model = GapNet().eval()
    x = torch.randn(2, 3, 32, 32)
    mean = cam.compute(model, x, "features", "gradcam")  # the output of the last ReLU
    mx = cam.compute(model, x, "features", "gradcam", options={"gradcam": {"pooling": "max"}})
    assert torch.allclose(mean, mx, atol=1e-6)
    # one layer earlier (before the ReLU) the gradient varies over space and the two differ
    mean = cam.compute(model, x, "features.2", "gradcam")
    mx = cam.compute(model, x, "features.2", "gradcam", options={"gradcam": {"pooling": "max"}})
    assert (mean - mx).abs().max() > 0.1 * mean.abs().max()


# --------------------------------------------------------------------------- Grad-CAM++: the authors'


def test_gradcampp_authors_variant_exponentiates_the_activations_by_hand():
    """Nagy et al.'s code (``GradCAM_plusplus``): the textbook alpha_k (eps 1e-7), then
    relu(sum_k alpha_k exp(A_k)). One channel A = (0, ln 2), y = 3 * sum(A): G = 3 everywhere,
    sum(A) = ln 2, a_ij = 9 / (18 + 27 ln 2), alpha = 2 * 3 * a_ij. Textbook map alpha * (0, ln 2);
    the authors' alpha * (e^0, e^ln2) = alpha * (1, 2)."""

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Identity()

        def forward(self, x):
            return 3 * self.a(x).sum((1, 2, 3)).unsqueeze(1)

    ln2 = math.log(2.0)
    x = torch.tensor([[[[0.0, ln2]]]], dtype=torch.float64)
    model = Head()
    textbook = cam.compute(model, x, "a", "gradcam++", target=0)[0]
    authors = cam.compute(
        model, x, "a", "gradcam++", target=0, options={"gradcam++": {"variant": "authors"}}
    )[0]
    alpha_t = 6 * 9 / (18 + 27 * ln2 + 1e-6)
    alpha_a = 6 * 9 / (18 + 27 * ln2 + 1e-7)
    assert torch.allclose(textbook, torch.tensor([[0.0, alpha_t * ln2]], dtype=torch.float64))
    assert torch.allclose(authors, torch.tensor([[alpha_a, 2 * alpha_a]], dtype=torch.float64))
    # the default is the textbook method, and an unknown variant is refused by name
    assert cam.METHODS["gradcam++"].options["variant"][0] == "textbook"
    with pytest.raises(CAMError, match="variant"):
        cam.compute(model, x, "a", "gradcam++", options={"gradcam++": {"variant": "paper"}})
