"""The CAM method registry (issue #8): one documented entry per method, the name tuples and the
module's table derived from it, compute (one map) and compute_many (many maps), the default
layer."""

import pydoc
import warnings

import pytest
import torch
import torchvision
from tiny_models import GapNet, SmallVGG

from lib import cam
from lib.cam import CAMError
from lib.cam.checks import default_layer

# the name tuples as they were hand-kept before the registry: the derived ones must not move
OLD_GRADIENT = ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam", "counterfactual")
OLD_LAYER = ("cam",) + OLD_GRADIENT + ("eigencam", "scorecam", "ablationcam")
OLD_INPUT = ("guidedbackprop", "guidedgradcam")
OLD_CAPTUM = ("integratedgradients", "occlusion", "gradientshap")


def test_every_method_is_documented_in_its_entry_and_in_the_module_table():
    assert set(cam.METHODS) == set(OLD_LAYER + OLD_INPUT + OLD_CAPTUM)
    for name, m in cam.METHODS.items():
        assert isinstance(m, cam.Method) and m.name == name
        assert m.weighting.__doc__.strip() and m.formula and m.cost and m.reference, name
        text = pydoc.render_doc(m, renderer=pydoc.plaintext)  # what help(METHODS[name]) prints
        for part in (m.formula, m.cost, m.reference, m.weighting.__doc__.split("\n")[0].strip()):
            assert part in text, (name, part)
        row = next(line for line in cam.__doc__.splitlines() if line.startswith(name + " "))
        for part in (m.formula, m.cost, m.reference):
            assert part in row, (name, part, row)
    assert "Selvaraju et al. 2017, Eq. 1-2" in cam.METHODS["gradcam"].reference
    assert "Eq. 12" in cam.METHODS["counterfactual"].reference
    assert "sign" in cam.METHODS["eigencam"].options


def test_name_tuples_are_derived_from_the_registry_and_unchanged():
    m = cam.METHODS
    assert cam.GRADIENT_METHODS == tuple(
        n for n in m if m[n].layer and m[n].gradients and not m[n].input_resolution
    )
    assert cam.LAYER_METHODS == tuple(n for n in m if m[n].layer and not m[n].input_resolution)
    assert cam.INPUT_METHODS == tuple(n for n in m if m[n].input_resolution and not m[n].captum)
    assert cam.CAPTUM_METHODS == tuple(n for n in m if m[n].captum)
    assert (cam.GRADIENT_METHODS, cam.LAYER_METHODS, cam.INPUT_METHODS, cam.CAPTUM_METHODS) == (
        OLD_GRADIENT,
        OLD_LAYER,
        OLD_INPUT,
        OLD_CAPTUM,
    )
    # the needs agree with what the engine does: gradient-free layer methods need no backward
    assert not m["eigencam"].gradients and not m["cam"].gradients
    assert m["scorecam"].extra_forwards and m["ablationcam"].extra_forwards
    assert m["guidedbackprop"].hooks and not m["integratedgradients"].hooks


def test_adding_a_method_is_one_decorated_function(request):
    saved = dict(cam.METHODS)  # registered for this test only: the registry restored after
    request.addfinalizer(lambda: (cam.METHODS.clear(), cam.METHODS.update(saved)))

    @cam.register(
        "gradcam_x2",
        formula="2 * gradcam",
        cost="1 forward + 1 backward (shared)",
        reference="a test",
        gradients=True,
        options={"factor": (2.0, 3.0)},
    )
    def _double(a, g, ctx):
        """Twice Grad-CAM (or three times)."""
        return ctx.options["factor"] * (g.mean((2, 3))[:, :, None, None] * a).sum(1)

    torch.manual_seed(0)
    model, x = GapNet(), torch.randn(2, 3, 8, 8)
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        maps = cam.compute_many(model, x, "features", ["gradcam", "gradcam_x2"])
    finally:
        handle.remove()
    assert len(calls) == 1  # the new method shares the one forward pass
    assert torch.allclose(maps["gradcam_x2"]["features"], 2 * maps["gradcam"]["features"])
    three = cam.compute(model, x, "features", "gradcam_x2", options={"gradcam_x2": {"factor": 3.0}})
    assert torch.allclose(three, 3 * maps["gradcam"]["features"])
    assert "Twice Grad-CAM" in cam.METHODS["gradcam_x2"].__doc__
    with pytest.raises(ValueError, match="already registered"):
        cam.register("gradcam", formula="", cost="", reference="")(_double)
    with pytest.raises(ValueError, match="docstring"):
        cam.register("nodoc", formula="f", cost="c", reference="r")(lambda a, g, ctx: a)


def test_options_are_checked_against_the_registry():
    torch.manual_seed(0)
    model, x = GapNet(), torch.randn(1, 3, 8, 8)
    with pytest.raises(CAMError, match="eigencam has no option 'signs'; its options: sign"):
        cam.compute(model, x, "features", "eigencam", options={"eigencam": {"signs": "svd"}})
    with pytest.raises(CAMError, match=r"options\['eigencam'\]\['sign'\] must be one of"):
        cam.compute(model, x, "features", "eigencam", options={"eigencam": {"sign": "pca"}})
    with pytest.raises(CAMError, match="options given for unknown method 'eigen'"):
        cam.compute(model, x, "features", "eigencam", options={"eigen": {"sign": "svd"}})


def test_compute_returns_one_tensor_and_compute_many_a_dict_from_one_pass():
    torch.manual_seed(1)
    model = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    one = cam.compute(model, x, "layer4", "gradcam")
    assert isinstance(one, torch.Tensor) and one.shape == (2, 1, 1)
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        many = cam.compute_many(model, x, ["layer3", "layer4"], ["gradcam", "hirescam"])
    finally:
        handle.remove()
    assert len(calls) == 1
    assert set(many) == {"gradcam", "hirescam"} and set(many["gradcam"]) == {"layer3", "layer4"}
    assert torch.allclose(many["gradcam"]["layer4"], one, atol=1e-6)
    # a single name is a list of one: still a dict
    single = cam.compute_many(model, x, "layer3", "hirescam")
    assert torch.allclose(single["hirescam"]["layer3"], many["hirescam"]["layer3"], atol=1e-6)


def test_compute_given_lists_is_an_error_naming_compute_many():
    """compute's return type never changes with list-ness: lists go to compute_many."""
    torch.manual_seed(2)
    model, x = GapNet(), torch.randn(2, 3, 8, 8)
    for method, layer in (
        (["gradcam"], "features"),
        ("gradcam", ["features"]),
        (("gradcam", "hirescam"), ("features",)),
    ):
        with pytest.raises(CAMError, match=r"several methods or layers call cam\.compute_many"):
            cam.compute(model, x, layer, method)
    many = cam.compute_many(model, x, ["features"], ["gradcam"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the one-map form never warns
        assert torch.equal(
            cam.compute(model, x, "features", "gradcam"), many["gradcam"]["features"]
        )


def test_default_layer_is_the_last_4d_feature_map():
    torch.manual_seed(3)
    resnet = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    # avgpool (1x1) and the blocks' shared ReLUs (run twice) are skipped: layer4
    assert set(cam.compute_many(resnet, x, None, "gradcam")["gradcam"]) == {"layer4"}
    assert torch.equal(
        cam.compute(resnet, x, None, "gradcam"), cam.compute(resnet, x, "layer4", "gradcam")
    )
    vgg = SmallVGG().eval()
    x = torch.randn(2, 3, 32, 32)
    # the features block (its output is features.7's): the classifier flattens
    assert set(cam.compute_many(vgg, x, None, ["gradcam", "eigencam"])["eigencam"]) == {"features"}
    assert torch.equal(
        cam.compute(vgg, x, None, "hirescam"), cam.compute(vgg, x, "features.7", "hirescam")
    )
    # methods without a layer keep the name "input" when no layer is asked for
    ig = cam.compute_many(
        vgg, x, None, "integratedgradients", target=1, captum_kwargs={"n_steps": 2}
    )
    assert set(ig["integratedgradients"]) == {"input"}


def test_default_layer_of_torchvision_architectures():
    """What compute's docstring promises, on the architectures only (meta device: no memory)."""
    want = {
        "resnet50": "layer4",
        "densenet121": "features",
        "efficientnet_b0": "features",
        "googlenet": "inception5b",
        "vgg16": "avgpool",
        "alexnet": "avgpool",
    }
    for name, layer in want.items():
        with torch.device("meta"):
            kw = {"init_weights": False} if name == "googlenet" else {}
            model = torchvision.models.get_model(name, weights=None, **kw).eval()
            x = torch.empty(1, 3, 224, 224)
        assert default_layer(model, x) == layer, name
