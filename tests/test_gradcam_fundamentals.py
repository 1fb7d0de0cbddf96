"""Chapter "Grad-CAM fundamentals": Eq. 1-2 by hooks against values worked out by hand, the
engine and pytorch-grad-cam; w_k^c = Z alpha_k^c in float64 (and a network where it must fail);
Guided Backprop / Guided Grad-CAM against Captum; the counterfactual test's region and verdict;
the GAP / GMP scores on scenes whose answer is known, and the verdict's statistics by hand."""

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_models import MaxHead
from torch import nn

from lib import cam, verdict
from lib.chapters import gradcam_fundamentals as gcf
from lib.formatting import named_intervals, signed, with_interval
from lib.models.small import PooledCNN
from lib.train import RECIPES, recipe_path

# --------------------------------------------------------------------------- tiny models


class FlatHead(nn.Module):
    """A = relu(x) (1 channel, 2x2), then y_0 = sum(V * A): dy_0/dA = V exactly."""

    V = torch.tensor([[0.0, 1.0], [-2.0, 5.0]], dtype=torch.float64)

    def __init__(self):
        super().__init__()
        self.features = nn.ReLU()
        self.fc = nn.Linear(4, 2).double()
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.weight[0] = self.V.flatten()
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


class IdentityGap(nn.Module):
    """A = relu(x) (1 channel), global average pooling, y_c = w_c mean(A): its Grad-CAM map is
    w_c / Z times the image."""

    target_layer = "features"

    def __init__(self, w=(1.0, -1.0)):
        super().__init__()
        self.features = nn.ReLU()
        self.fc = nn.Linear(1, len(w))
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor(w).view(-1, 1))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


class TwoLinearHeads(nn.Module):
    """GAP, then Linear(K, K), then Linear(K, C): w_k^c of the last layer is NOT Z alpha_k^c."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.mid = nn.Linear(4, 4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.mid(self.features(x).mean((2, 3))))


def _pooled(pool, seed=0):
    torch.manual_seed(seed)
    return PooledCNN(pool=pool, channels=(4, 8)).eval()


# --------------------------------------------------------------------------- Eq. 1-2 by hand


def test_gradcam_steps_by_hand():
    x = torch.tensor([[[[3.0, -1.0], [2.0, 0.5]]]], dtype=torch.float64)
    steps = gcf.gradcam_steps(FlatHead(), x, "features", target=0)
    a = torch.tensor([[3.0, 0.0], [2.0, 0.5]], dtype=torch.float64)  # relu(x)
    torch.testing.assert_close(steps.activations[0], a)
    torch.testing.assert_close(steps.gradients[0], FlatHead.V)  # dy/dA = V
    assert steps.z == 4 and steps.cls == 0
    alpha = (0 + 1 - 2 + 5) / 4  # Eq. 1: 1.0
    assert steps.alpha.tolist() == [alpha]
    torch.testing.assert_close(steps.weighted, alpha * a)  # Eq. 2 before ReLU
    assert steps.peak == (0, 0) and steps.score == pytest.approx(0 - 4 + 2.5)
    assert gcf.engine_difference(steps, FlatHead(), x) == 0.0


def test_top_channels_and_pixel_terms_are_eq1_and_eq2_in_numbers():
    model = _pooled("avg").double()
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    steps = gcf.gradcam_steps(model, x, model.target_layer)
    t = gcf.top_channels(steps, 3)
    np.testing.assert_allclose(t["αₖ (Eq. 1)"], t["Σᵢⱼ ∂y/∂Aᵏᵢⱼ"] / t["Z"], rtol=1e-12)
    assert list(t["αₖ (Eq. 1)"]) == sorted(t["αₖ (Eq. 1)"], reverse=True)
    assert t["αₖ (Eq. 1)"].iloc[0] == steps.alpha.max().item()
    c = gcf.top_channels(steps, 8, by="contribution")["αₖ × mean Aᵏ"]
    assert list(c) == sorted(c, reverse=True)
    p = gcf.pixel_terms(steps, 2)
    i, j = steps.peak
    total = p["αₖ Aᵏᵢⱼ"].iloc[-1]
    assert total == pytest.approx(steps.weighted[i, j].item(), rel=1e-12)
    assert p["αₖ Aᵏᵢⱼ"].iloc[:-1].sum() == pytest.approx(total, rel=1e-12)
    with pytest.raises(ValueError, match="'alpha' or 'contribution'"):
        gcf.top_channels(steps, 3, by="weight")


def test_gradcam_steps_equal_pytorch_grad_cam():
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _pooled("max", seed=2)
    x = torch.rand(1, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    steps = gcf.gradcam_steps(model, x, model.target_layer, target=4)
    layer = cam.resolve_layer(model, model.target_layer)
    with GradCAM(model=model, target_layers=[layer]) as ref_cam:
        ref = ref_cam(x, targets=[ClassifierOutputTarget(4)])
    ours = cam.postprocess(steps.weighted[None], 20, preset=cam.PGC_PRESET).numpy()
    assert np.abs(ours - ref).max() < 1e-4


def test_gradcam_steps_refuses_a_batch():
    with pytest.raises(ValueError, match=r"one image.*x\[i:i \+ 1\]"):
        gcf.gradcam_steps(_pooled("avg"), torch.rand(2, 1, 8, 8), "features.relu2")


# --------------------------------------------------------------------------- w = Z alpha


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_cam_identity_holds_to_machine_precision(pool):
    model = _pooled(pool)
    x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    r = gcf.cam_identity(model, x, model.target_layer, target=[0, 1, 2, 3, 9])
    assert r["Z"] == 8 * 8 and r["images"] == 5  # one 2x2 max-pool: 16 -> 8
    assert r["max |Z alpha - w|"] < 1e-14 and r["max |CAM - Z Grad-CAM| / max |CAM|"] < 1e-14
    assert r["max |w|"] == pytest.approx(model.fc.weight[[0, 1, 2, 3, 9]].abs().max().item())
    assert next(model.parameters()).dtype == torch.float32  # the model itself is untouched


def test_gap_gradient_is_w_over_z_and_gmp_gradient_is_one_hot():
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for pool in ("avg", "max"):
        model = _pooled(pool).double()
        a, g, cls, _ = gcf.layer_gradients(model, x, model.target_layer, target=7)
        w = model.fc.weight[7].detach()
        if pool == "avg":  # Eq. 7-8: w_k / Z at every unit, Z = 8 x 8
            torch.testing.assert_close(g, (w / 64).view(1, -1, 1, 1).expand_as(g))
        else:  # the gradient of a max: w_k at one unit of each channel, 0 elsewhere
            flat = g.flatten(2)
            assert ((flat != 0).sum(2) <= 1).all()
            torch.testing.assert_close(flat.sum(2), w.expand(3, -1))


def test_cam_identity_fails_where_the_head_is_not_one_linear_layer():
    model = TwoLinearHeads()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    r = gcf.cam_identity(model, x, "features")
    assert r["max |Z alpha - w|"] > 1e-3  # alpha is W_fc W_mid / Z, not W_fc / Z
    with pytest.raises(ValueError, match="one linear layer"):
        gcf.cam_identity(
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 3)), x, "1"
        )


def test_cam_vs_gradcam_from_the_engine():
    model = _pooled("avg").double()
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    maps = cam.compute_many(model, x, model.target_layer, ["cam", "gradcam"])
    z, rel = gcf.cam_vs_gradcam({m: maps[m][model.target_layer] for m in ("cam", "gradcam")})
    assert z == 6 * 6 and rel < 1e-14
    z, rel = gcf.cam_vs_gradcam(
        {"cam": maps["cam"][model.target_layer], "gradcam": 2 * maps["gradcam"][model.target_layer]}
    )
    assert rel == pytest.approx(1.0)  # a wrong Z is caught


@pytest.mark.slow
def test_lite0_cam_identity_in_float64():
    im = gcf.load_images("smoke", "cpu", ["coffee"])
    r = gcf.cam_identity(im.model, im.x, im.layer)
    assert r["Z"] == 49 and r["max |Z alpha - w|"] < 1e-10
    assert r["max |CAM - Z Grad-CAM| / max |CAM|"] < 1e-10
    steps = gcf.gradcam_steps(im.model, im.x, im.layer)
    assert gcf.engine_difference(steps, im.model, im.x) < 1e-6
    g = steps.gradients.flatten(1)
    assert bool((g.amax(1) == g.amin(1)).all())  # flat: w / Z at every unit


# --------------------------------------------------------------------------- two classes


def _images(model, x):
    return gcf.Images(
        model,
        "tiny",
        model.target_layer,
        model.target_layer,
        x,
        [f"img{i}" for i in range(len(x))],
        [f"class {c}" for c in range(10)],
        (0.0,),
        (1.0,),
    )


def test_competing_picks_the_close_contests_first():
    p = torch.tensor([[0.5, 0.4], [0.9, 0.05], [0.4, 0.39], [0.3, 0.15]])
    assert gcf.competing(p, 0.5) == [2, 0, 3]
    # no contest is no error: the page says so and the claims have no case
    assert gcf.competing(p[1:2], 0.5) == []
    # what the page words where there is none: the closest contest, 0.05 / 0.9 = 0.0555...
    assert gcf.closest_ratio(p[1:2]) == pytest.approx(0.05 / 0.9)
    assert gcf.closest_ratio(p) == pytest.approx(0.39 / 0.4)  # the image of 0.4 vs 0.39
    assert gcf.closest_ratio(p[:0]) == 0.0  # no image at all
    with pytest.raises(ValueError, match="compete_ratio must be in"):
        gcf.competing(p, 0.0)


def test_every_counterfactual_map_empty_is_undecided_with_no_case():
    # w = (1, 2) and x >= 0: both classes' Grad-CAM sums are >= 0 everywhere, so both
    # counterfactual maps (their negation) are empty after the ReLU, as with the full
    # rehearsal's random weights. Nothing can be scored: undecided with n = 0, no NaN.
    model = IdentityGap((1.0, 2.0))
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    im = _images(model, x)
    two = gcf.two_class_maps(im, [0], torch.tensor([[1, 0]]))
    d = gcf.deletion(model, two)
    assert d["empty counterfactual"].tolist() == [True, True]
    cv = gcf.counterfactual_verdict(d)
    v = cv["verdict"]
    assert (cv["scored"], cv["empty"], cv["rises"]) == (0, 2, 0)
    assert v.outcome == verdict.UNDECIDED and v.n == 0 and v.unmeasured
    assert cv["mean_dp"] is None and cv["mean_dp_gradcam"] is None
    assert v.method == cv["why"] == "all 2 counterfactual maps are empty (negative everywhere)"
    assert v.interval_text(2) == "—"
    assert (cv["less_than_gradcam"], cv["mostly_less"]) == (0, False)
    # the check of Eq. 12 still runs: the maps exist, they are negative everywhere
    err = gcf.counterfactual_identity(model, two, "features")
    assert gcf.counterfactual_sign_verdict(err).outcome == verdict.HOLDS


def test_no_competing_image_leaves_every_two_class_test_without_a_case():
    model = IdentityGap((1.0, 2.0))
    im = _images(model, torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
    two = gcf.two_class_maps(im, [], torch.tensor([[1, 0], [1, 0]]))
    assert two.rows == [] and two.maps["gradcam"].shape[0] == 0
    assert gcf.counterfactual_identity(model, two, "features") is None
    sign = gcf.counterfactual_sign_verdict(None)
    assert sign.outcome == verdict.UNDECIDED and sign.n == 0
    dv = gcf.discrimination_verdict(gcf.discrimination(two, im))
    assert dv["images"] == 0 and dv["verdict"] is None and dv["few"] is False
    assert dv["gb"] is None and dv["ggc"] is None and dv["gradcam"] is None  # no mean, no NaN
    d = gcf.deletion(model, two)
    assert d.empty and "empty counterfactual" in d.columns
    cv = gcf.counterfactual_verdict(d)
    assert cv["verdict"].outcome == verdict.UNDECIDED and cv["verdict"].n == 0
    assert cv["why"] == "no image has two classes that compete"
    fig = gcf.plot_two_classes(im, two, 3)
    assert "no image where two classes compete" in fig.axes[0].texts[0].get_text()


def test_two_class_maps_counterfactual_and_guided_methods_against_captum():
    from captum.attr import GuidedBackprop, GuidedGradCam

    model = _pooled("avg", seed=4)
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    im = _images(model, x)
    top2 = torch.tensor([[3, 5], [1, 0]])
    two = gcf.two_class_maps(im, [1, 0], top2)
    assert two.rows == [1, 1, 0, 0] and two.targets == [1, 0, 3, 5]
    assert torch.equal(two.maps["counterfactual"], -two.maps["gradcam"])
    layer = cam.resolve_layer(model, model.target_layer)
    t = torch.tensor(two.targets)
    gb = GuidedBackprop(model).attribute(two.x, target=t)
    ggc = GuidedGradCam(model, layer).attribute(two.x, target=t, interpolate_mode="bilinear")
    torch.testing.assert_close(two.maps["guidedbackprop"], gb, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(two.maps["guidedgradcam"], ggc, rtol=1e-5, atol=1e-7)
    labels = two.labels(im)
    assert list(labels["class"]) == [
        "top-1: class 1",
        "top-2: class 0",
        "top-1: class 3",
        "top-2: class 5",
    ]


def test_discrimination_is_the_pearson_correlation_of_the_two_maps():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 8, 8, generator=g), torch.rand(3, 8, 8, generator=g)
    maps = {
        "gradcam": torch.stack([a[0, :4, :4], a[0, :4, :4]]),  # same map: 1
        "guidedbackprop": torch.stack([a, b]),
        "guidedgradcam": torch.stack([a, -a]),
    }  # |.|: the same: 1
    two = gcf.TwoClasses([0], [0, 0], [1, 2], torch.zeros(2, 3, 8, 8), maps)
    im = SimpleNamespace(names=["only"])
    d = gcf.discrimination(two, im)
    assert d.loc["only", "gradcam"] == pytest.approx(1.0)
    assert d.loc["only", "guidedgradcam"] == pytest.approx(1.0)
    ref = np.corrcoef(a.abs().sum(0).flatten(), b.abs().sum(0).flatten())[0, 1]
    assert d.loc["only", "guidedbackprop"] == pytest.approx(ref)
    dv = gcf.discrimination_verdict(d)
    assert dv["gb_more_alike"] == 0  # GB less alike than GGC here
    # one photograph: no interval, so no verdict and nothing "few" to say about it
    assert dv["images"] == 1 and dv["verdict"] is None and dv["few"] is False


def _disc(gb, ggc):
    return pd.DataFrame(
        {"gradcam": [0.9] * len(gb), "guidedbackprop": gb, "guidedgradcam": ggc},
        index=[f"p{i}" for i in range(len(gb))],
    )


def test_discrimination_verdict_is_a_paired_difference_with_three_outcomes():
    # GB's two maps far more alike on every photograph: the paired interval is above 0
    gb, ggc = [0.99] * 6, [0.5, 0.6, 0.7, 0.55, 0.65, 0.6]
    dv = gcf.discrimination_verdict(_disc(gb, ggc))
    v = dv["verdict"]
    assert v.outcome == verdict.HOLDS and v.n == 6
    assert v.estimate == pytest.approx(0.99 - 0.6) and v.low > 0
    assert (dv["gb"], dv["ggc"], dv["gb_more_alike"]) == (
        pytest.approx(0.99),
        pytest.approx(0.6),
        6,
    )
    assert v.rule == gcf.RULES["guided-photos"]
    assert "photographs" in v.method
    # differences of both signs around 0: undecided (the interval contains 0)
    d = [0.02, -0.03, 0.01, -0.02, 0.03, -0.01]
    v = gcf.discrimination_verdict(_disc([0.9 + x for x in d], [0.9] * 6))["verdict"]
    assert v.outcome == verdict.UNDECIDED and v.low < 0 < v.high
    # GB less alike than GGC everywhere: does not hold
    v = gcf.discrimination_verdict(_disc(ggc, gb))["verdict"]
    assert v.outcome == verdict.FAILS and v.high < 0
    # six photographs are enough (verdict.MIN_UNITS = 6): not "few"
    assert gcf.discrimination_verdict(_disc(gb, ggc))["few"] is False
    # four photographs decide nothing, even with an interval above 0: "few" says why
    dv = gcf.discrimination_verdict(_disc(gb[:4], ggc[:4]))
    assert dv["verdict"].outcome == verdict.UNDECIDED and dv["verdict"].low > 0
    assert dv["few"] is True and dv["verdict"].n == 4 and dv["gb_more_alike"] == 4


def test_counterfactual_identity_measures_the_engine_against_the_negated_gradient():
    # IdentityGap: A = relu(x), y_c = w_c mean(A); dy_c/dA = w_c / Z, so the counterfactual map
    # of class c is -w_c / Z * A
    model = IdentityGap((1.0, -1.0))
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    im = _images(model, x)
    two = gcf.two_class_maps(im, [0], torch.tensor([[0, 1]]))
    a = x[0, 0].clamp(min=0)
    torch.testing.assert_close(two.maps["counterfactual"][0], -a / 16)
    torch.testing.assert_close(two.maps["counterfactual"][1], a / 16)
    assert gcf.counterfactual_identity(model, two, "features") < 1e-7
    # a map with the wrong sign (Grad-CAM itself) is caught: |g - (-g)| / |g| = 2
    wrong = gcf.TwoClasses(
        two.idx, two.rows, two.targets, two.x, {**two.maps, "counterfactual": two.maps["gradcam"]}
    )
    assert gcf.counterfactual_identity(model, wrong, "features") == pytest.approx(2.0)
    assert verdict.check(2.0, gcf.FLOAT32_TOLERANCE, rule="x").outcome == verdict.FAILS


def test_top_region_takes_the_largest_positive_pixels_only():
    m = torch.tensor([[0.0, 3.0, 1.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    r = gcf._top_region(m, 0.25)  # 2 of 8 pixels
    assert r.tolist() == [[False, True, False, False], [False, False, True, False]]
    r = gcf._top_region(m, 0.75)  # 6 wanted, 3 are positive
    assert r.sum() == 3 and bool((m[r] > 0).all())
    assert not gcf._top_region(torch.zeros(2, 2), 0.5).any()


def test_deletion_on_a_network_whose_answer_is_known():
    # y_0 = mean(relu(x)): the Grad-CAM map of class 0 is the image; deleting its brightest
    # pixels lowers y_0 by exactly their sum / Z. Class 1 (w = -1) has the mirrored map.
    model = IdentityGap((1.0, -1.0))
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0], x[0, 0, 3, 3] = 8.0, 4.0
    im = _images(model, x)
    two = gcf.two_class_maps(im, [0], torch.tensor([[0, 1]]))
    d = gcf.deletion(model, two, fraction=1 / 16)  # one pixel
    assert d["y image"].tolist() == pytest.approx([0.75, -0.75])
    assert d["y gradcam"][0] == pytest.approx(0.25)  # the 8 is gone
    assert bool(d["empty counterfactual"][0]) and not bool(d["empty gradcam"][0])
    # class 1: its counterfactual map is the image; deleting the 8 raises y_1 from -0.75 to -0.25
    assert d["y counterfactual"][1] == pytest.approx(-0.25)
    assert d["p counterfactual"][1] > d["p image"][1]
    assert d["deleted share gradcam"].tolist() == [1 / 16, 0.0]


def test_counterfactual_verdict_counts_scored_rows_only():
    d = pd.DataFrame(
        {
            "p image": [0.5, 0.5, 0.5, 0.5],
            "p gradcam": [0.1, 0.2, 0.3, 0.9],
            "p counterfactual": [0.6, 0.7, 0.4, 0.9],
            "empty counterfactual": [False, False, False, True],
        }
    )
    cv = gcf.counterfactual_verdict(d)
    assert (cv["scored"], cv["empty"], cv["rises"], cv["less_than_gradcam"]) == (3, 1, 2, 3)
    assert cv["mean_dp"] == pytest.approx((0.1 + 0.2 - 0.1) / 3)
    # 2 of 3: a majority, but three cases cannot decide it. Wilson's interval by hand:
    # (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    v, z, n, p = cv["verdict"], 1.959963984540054, 3, 2 / 3
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert v.low == pytest.approx((centre - half) / (1 + z * z / n), abs=1e-6)
    assert v.high == pytest.approx((centre + half) / (1 + z * z / n), abs=1e-6)
    assert v.outcome == verdict.UNDECIDED and v.estimate == pytest.approx(2 / 3)
    # deleting the counterfactual regions costs less than Grad-CAM's in 3 of 3 (0.6 > 0.1,
    # 0.7 > 0.2, 0.4 > 0.3): more than half
    assert cv["mostly_less"] is True
    d.loc[1, "p counterfactual"] = 0.5
    assert gcf.counterfactual_verdict(d)["verdict"].outcome == verdict.UNDECIDED  # 1 of 3
    # the facts the page words: mean changes (0.1 + 0.2 - 0.1) / 3 and (-0.4 - 0.3 - 0.2) / 3
    assert signed(cv["mean_dp"], 3) == "+0.067"
    assert signed(cv["mean_dp_gradcam"], 3) == "-0.300"
    # now 0.6 > 0.1 and 0.5 > 0.2 but not 0.25 > 0.3: 2 of 3, more than half
    d.loc[2, "p counterfactual"] = 0.25
    cv = gcf.counterfactual_verdict(d)
    assert (cv["less_than_gradcam"], cv["mostly_less"]) == (2, True)
    d.loc[0, "p counterfactual"] = 0.05
    cv = gcf.counterfactual_verdict(d)
    assert (cv["less_than_gradcam"], cv["mostly_less"]) == (1, False)


def _deleted(rises, n):
    """n scored rows, the first ``rises`` of them with p(c) up after the deletion."""
    up = np.arange(n) < rises
    return pd.DataFrame(
        {
            "p image": [0.5] * n,
            "p gradcam": [0.2] * n,
            "p counterfactual": np.where(up, 0.6, 0.4),
            "empty counterfactual": [False] * n,
        }
    )


def test_counterfactual_verdict_holds_and_fails_on_enough_cases():
    # all 10 rise: Wilson's lower bound for k = n is n / (n + z^2) = 0.722 > 1/2
    cv = gcf.counterfactual_verdict(_deleted(10, 10))
    z2 = 1.959963984540054**2
    assert cv["verdict"].low == pytest.approx(10 / (10 + z2), abs=1e-6)
    assert cv["verdict"].outcome == verdict.HOLDS
    assert (cv["rises"], cv["scored"], f"{cv['verdict'].low:.2f}") == (10, 10, "0.72")
    # none rises: the upper bound is z^2 / (n + z^2) = 0.278 < 1/2
    cv = gcf.counterfactual_verdict(_deleted(0, 10))
    assert cv["verdict"].high == pytest.approx(z2 / (10 + z2), abs=1e-6)
    assert cv["verdict"].outcome == verdict.FAILS
    assert cv["rises"] == 0 and cv["verdict"].estimate == 0.0


# --------------------------------------------------------------------------- GAP against GMP


class BoxScenes:
    """Two 16 px scenes, each a 4x5 block of ones (its box) on zeros, labels 0 and 1: the
    parts of lib.data.scenes.Scenes that localise reads."""

    size = 16
    images = torch.zeros(2, 1, 16, 16)
    images[0, 0, 2:6, 3:8] = 1.0
    images[1, 0, 9:13, 8:13] = 1.0
    boxes = [torch.tensor([[3, 2, 8, 6, 0]]), torch.tensor([[8, 9, 13, 13, 1]])]
    labels = torch.tensor([0, 1])

    def __len__(self):
        return 2

    def target_boxes(self, i):
        return self.boxes[i][:, :4]

    def target_box_mask(self, i):
        from lib.data.boxes import box_mask

        return box_mask(self.target_boxes(i), 16, 16)


def test_localise_scores_a_map_that_is_the_object_and_an_empty_map():
    scenes, model = BoxScenes(), IdentityGap((1.0, -1.0))
    loc = gcf.localise(model, scenes, batch_size=1)
    # class 0 (w = +1): the map is the block itself, so top-A = the box, the maximum is in it
    assert loc.loc[0, ["iou", "hit", "coverage", "zhou"]].tolist() == [1.0, 1.0, 1.0, 1.0]
    # class 1 (w = -1): the map is negative everywhere, ReLU leaves nothing: scored 0, counted
    assert loc.loc[1, ["iou", "hit", "coverage", "zhou"]].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert loc["empty"].tolist() == [False, True]
    assert loc["correct"].tolist() == [True, False]  # y = (mean, -mean): argmax is 0
    assert gcf.canvas_to_box(scenes) == pytest.approx(256 / 20)


def _runs(acc, iou, hit=None, cov=None):
    rows = []
    for p, pool in enumerate(("GAP", "GMP")):
        for s in range(len(acc[p])):
            rows.append(
                {
                    "pooling": pool,
                    "seed": s,
                    "accuracy": acc[p][s],
                    "iou": iou[p][s],
                    "hit": (hit or iou)[p][s],
                    "coverage": (cov or iou)[p][s],
                    "zhou": iou[p][s],
                    "scene accuracy": 0.5,
                }
            )
    return pd.DataFrame(rows)


def _scores(gap, gmp, metrics=("iou", "hit", "coverage", "zhou")):
    """Per-scene scores: ``gap[s][i]`` is seed s's value on scene i (the same for every metric
    unless ``metrics`` maps a metric to its own (gap, gmp) pair)."""
    rows = []
    for pool, vals in (("GAP", gap), ("GMP", gmp)):
        for seed, per_scene in enumerate(vals):
            for i, x in enumerate(per_scene):
                rows.append(
                    {
                        "pooling": pool,
                        "seed": seed,
                        "scene": i,
                        **{m: np.float32(x) for m in metrics},
                    }
                )
    return pd.DataFrame(rows)


def test_paired_differences_and_the_summary_by_hand():
    runs = _runs(
        [[0.90, 0.91, 0.89], [0.90, 0.905, 0.90]], [[0.50, 0.52, 0.51], [0.40, 0.41, 0.43]]
    )
    d = gcf.paired(runs, "iou")
    diffs = np.array([0.10, 0.11, 0.08])
    np.testing.assert_allclose(gcf.seed_differences(runs, "iou"), diffs)
    assert d["mean"] == pytest.approx(diffs.mean())
    assert d["std"] == pytest.approx(diffs.std(ddof=1))
    assert d["se"] == pytest.approx(diffs.std(ddof=1) / np.sqrt(3))
    assert (d["gap_higher"], d["seeds"]) == (3, 3)
    s = gcf.gap_gmp_summary(runs)
    assert s.loc["GMP", "iou std"] == pytest.approx(np.std([0.40, 0.41, 0.43], ddof=1))
    assert s.loc["GAP", "accuracy mean"] == pytest.approx(0.90)
    with pytest.raises(ValueError, match="at least two seeds"):
        gcf.gap_gmp_summary(runs[runs.seed == 0])


def test_scene_pairs_average_each_scene_over_the_seeds():
    # 3 seeds, 2 scenes; hits are 0/1, so a scene's mean over seeds is 0, 1/3, 2/3 or 1
    scores = _scores([[1, 0], [1, 1], [0, 1]], [[1, 0], [0, 0], [1, 1]])
    gap, gmp = gcf.scene_pairs(scores, "hit")
    np.testing.assert_array_equal(gap, [2 / 3, 2 / 3])  # exact: averaged in float64
    np.testing.assert_array_equal(gmp, [2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="seeds"):
        gcf.scene_pairs(scores[~((scores.pooling == "GMP") & (scores.seed == 2))], "hit")


def _correct(gap, gmp):
    """Per-image correctness: ``gap[s][i]`` is 1 where the GAP network of seed s classifies
    test image i correctly."""
    rows = []
    for pool, vals in (("GAP", gap), ("GMP", gmp)):
        for seed, per_image in enumerate(vals):
            rows += [
                {"pooling": pool, "seed": seed, "image": i, "correct": bool(c)}
                for i, c in enumerate(per_image)
            ]
    return pd.DataFrame(rows)


def test_gap_gmp_verdict_by_hand():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, (3, 40))
    # GMP wrong on image 0 with seed 0 only: per image GAP - GMP is 1/3 on image 0, else 0
    ok = np.ones((3, 100), bool)
    wrong = ok.copy()
    wrong[0, 0] = False
    correct = _correct(ok, wrong)
    # GAP 0.1 above GMP on every scene and seed: iou, hit, coverage and Zhou's box all hold
    v = gcf.gap_gmp_verdict(correct, _scores(base + 0.1, base))
    assert set(v) == {"accuracy", "iou", "hit", "coverage", "zhou"}
    assert all(v[m].outcome == verdict.HOLDS for m in ("iou", "hit", "coverage", "zhou"))
    assert v["iou"].estimate == pytest.approx(0.1, abs=1e-6) and v["iou"].n == 40
    assert "over 40 scenes" in v["iou"].method
    assert v["accuracy"].estimate == pytest.approx(1 / 300) and v["accuracy"].n == 100
    assert v["accuracy"].outcome == verdict.HOLDS and "test images" in v["accuracy"].method
    assert "2 points" in v["accuracy"].rule
    # the same networks, noise of both signs around 0: undecided
    noise = rng.normal(0, 0.05, (3, 40))
    v = gcf.gap_gmp_verdict(correct, _scores(base + noise, base - noise + 0.001))
    assert v["iou"].outcome == verdict.UNDECIDED and v["iou"].low < 0 < v["iou"].high
    # GMP above GAP everywhere: does not hold
    v = gcf.gap_gmp_verdict(correct, _scores(base, base + 0.1))
    assert v["coverage"].outcome == verdict.FAILS and v["zhou"].outcome == verdict.FAILS
    # GAP wrong on 100 of 4,000 images in every seed: GMP 2.5 points ahead, standard error
    # sqrt(0.025 * 0.975 / 4000) = 0.25 points, so the interval is about [-3.0, -2.0] points.
    # Not similar at 1.5 points, undecided where the band's edge falls inside it (2.5), similar
    # at 3.5 points
    gap = np.ones((3, 4000), bool)
    gap[:, :100] = False
    correct = _correct(gap, np.ones((3, 4000), bool))
    s = _scores(base + 0.1, base)
    acc = gcf.gap_gmp_verdict(correct, s, tolerance=0.015)["accuracy"]
    assert acc.estimate == pytest.approx(-0.025)
    assert acc.outcome == verdict.FAILS and -0.032 <= acc.low < acc.high <= -0.018
    assert gcf.gap_gmp_verdict(correct, s, tolerance=0.025)["accuracy"].outcome == verdict.UNDECIDED
    assert gcf.gap_gmp_verdict(correct, s, tolerance=0.035)["accuracy"].outcome == verdict.HOLDS
    with pytest.raises(ValueError, match="seeds"):
        gcf.gap_gmp_verdict(correct[~((correct.pooling == "GMP") & (correct.seed == 2))], s)


def test_gap_gmp_verdict_gives_the_facts_the_page_words():
    # GAP wrong on every image with seed 0 of 3: each image's difference is -1/3, no spread
    gap = np.ones((3, 50), bool)
    gap[0] = False
    correct = _correct(gap, np.ones((3, 50), bool))
    base = np.random.default_rng(1).uniform(0.2, 0.8, (3, 20))
    s = _scores(base + 0.1, base, metrics=("iou", "coverage", "zhou"))
    s["hit"] = np.float32(1.0)  # every map hits, in both
    v = gcf.gap_gmp_verdict(correct, s)
    assert v["hit"].outcome == verdict.FAILS and v["hit"].estimate == 0.0  # no spread: the point
    # accuracy: -1/3 on every image, outside +-2 points, GMP ahead
    a = v["accuracy"]
    assert a.outcome == verdict.FAILS and a.n == 50
    assert (f"{100 * a.low:+.1f}", f"{100 * a.estimate:+.1f}", f"{100 * a.high:+.1f}") == (
        "-33.3",
        "-33.3",
        "-33.3",
    )
    # IoU and Zhou's box: GAP 0.1 higher on each of the 20 scenes, every seed
    for m in ("iou", "zhou"):
        assert v[m].outcome == verdict.HOLDS and v[m].n == 20
        assert with_interval(v[m].estimate, v[m].low, v[m].high) == "+0.100 [+0.100, +0.100]"
    assert v["hit"].n == 20


def test_gap_gmp_runs_per_scene_are_the_values_behind_the_means(monkeypatch):
    hist = {"test_acc": 0.9, "cpu_time_s": 1.0}
    w = {"gap": (1.0, -1.0), "gmp": (-1.0, 1.0)}
    monkeypatch.setattr(
        gcf, "load_pooled", lambda pool, seed, device="cpu": (IdentityGap(w[pool]), hist)
    )
    runs, scores = gcf.gap_gmp_runs([0, 1], BoxScenes(), per_scene=True)
    assert list(scores.columns[:3]) == ["pooling", "seed", "scene"] and len(scores) == 2 * 2 * 2
    # GAP (w = +1 for class 0): scene 0 is found exactly, scene 1's map is empty; GMP mirrored
    gap, gmp = gcf.scene_pairs(scores, "iou")
    np.testing.assert_array_equal(gap, [1.0, 0.0])
    np.testing.assert_array_equal(gmp, [0.0, 1.0])
    np.testing.assert_array_equal(gcf.scene_pairs(scores, "zhou")[0], [1.0, 0.0])
    means = scores.groupby(["pooling", "seed"])[["iou", "hit", "coverage", "zhou"]].mean()
    for _, r in runs.iterrows():
        for m in ("iou", "hit", "coverage", "zhou"):
            assert r[m] == pytest.approx(means.loc[(r.pooling, r.seed), m])
    pd.testing.assert_frame_equal(gcf.gap_gmp_runs([0, 1], BoxScenes()), runs)


def test_recipes_of_the_five_seeds_and_their_committed_weights():
    for pool in ("gap", "gmp"):
        names = [gcf.recipe(pool, s) for s in gcf.SEEDS]
        assert names[0] == f"{pool}_net"
        configs = [dataclasses.replace(RECIPES[n], seed=0) for n in names]
        assert all(c == configs[0] for c in configs)  # only the seed differs
        assert [RECIPES[n].seed for n in names] == list(gcf.SEEDS)
        for n in names:
            assert recipe_path(n).is_file(), f"{recipe_path(n)} is missing: load_trained({n!r})"
    assert list(gcf.SEEDS) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="seed 5"):
        gcf.recipe("gap", 5)
    with pytest.raises(ValueError, match="'gap' or 'gmp'"):
        gcf.recipe("avg", 0)
    with pytest.raises(ValueError, match="list of ints"):
        gcf.gap_gmp_runs("[0, 1]", None)


@pytest.mark.slow
@pytest.mark.parametrize("name", [f"{p}_net_seed{s}" for s in (1, 2, 3, 4) for p in ("gap", "gmp")])
def test_committed_seed_models_reach_85_percent(name):
    from lib.train import evaluate, load_data, load_trained

    model, hist = load_trained(name, verbose=False)
    acc = evaluate(model, load_data("fashion_mnist"))
    assert acc == hist["test_acc"] and acc >= 0.85, (name, acc)


# --------------------------------------------------------------------------- the full profile


def test_full_profile_without_imagenet_raises_data_missing():
    from lib.data import DataMissingError

    with pytest.raises(DataMissingError, match="ImageNet 2012 validation.*data_root"):
        gcf.load_images("full", "cpu", None, data_root=None, n_imagenet=10)


@pytest.mark.slow
def test_full_profile_reads_imagenet_and_explains_a_resnet(tmp_path, monkeypatch):
    """The full profile's path on two ImageNet-format files, with a random ResNet18 standing in
    for the ResNet50 weights (not in this machine's torch hub cache)."""
    import torchvision
    from PIL import Image

    root = tmp_path / "imagenet"
    (root / "val").mkdir(parents=True)
    lines = ["ImageId,PredictionString"]
    for i, wnid in ((1, "n01440764"), (2, "n01443537")):
        name = f"ILSVRC2012_val_{i:08d}"
        img = np.random.default_rng(i).integers(0, 255, (300, 400, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "val" / f"{name}.JPEG")
        lines.append(f"{name},{wnid} 10 10 200 200")
    (root / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().eval()
    monkeypatch.setattr("lib.models.zoo.build", lambda name, weights=None: resnet)
    im = gcf.load_images("full", "cpu", None, data_root=tmp_path, n_imagenet=2)
    assert im.names == ["ILSVRC2012_val_00000001", "ILSVRC2012_val_00000002"]
    assert tuple(im.x.shape) == (2, 3, 224, 224)
    assert (im.layer, im.inner_layer) == ("layer4", "layer3")
    steps = gcf.gradcam_steps(im.model, im.x[:1], im.layer)
    assert gcf.engine_difference(steps, im.model, im.x[:1]) < 1e-5
    r = gcf.cam_identity(im.model, im.x[:1], im.layer)
    assert r["Z"] == 49 and r["max |Z alpha - w|"] < 1e-10
    two = gcf.two_class_maps(im, [0, 1], gcf.predictions(im)[0])
    assert torch.equal(two.maps["counterfactual"], -two.maps["gradcam"])


def test_identity_table_shows_tiny_differences_in_scientific_notation():
    identity = pd.DataFrame(
        {
            "Z": [49.0],
            "images": [2.0],
            "max |Z alpha - w|": [1.1e-16],
            "max |w|": [0.25],
            "max |CAM - Z Grad-CAM| / max |CAM|": [7e-16],
        }
    )
    t = gcf.identity_table(identity)
    assert t.iloc[0].tolist() == [49, 2, "1.1e-16", 0.25, "7.0e-16"]
    assert t.columns.tolist() == [
        "Z",
        "images",
        "max |Z·αᶜₖ − wᶜₖ|",
        "max |wᶜₖ|",
        "max |CAM − Z·Grad-CAM| / max |CAM|",
    ]


# --------------------------------------------------------------------------- sections 4-7


class LinearHead(nn.Module):
    """A = x (no ReLU: the layer ``features`` passes the input on), y_c = mean_ij A_c: channel c
    of the input is class c's evidence. dy_c/dA_k = [k = c] / Z, so Grad-CAM of class c is
    A_c / Z, Guided Backprop (no ReLU module to guide) is 1 / Z on channel c and 0 elsewhere."""

    def __init__(self):
        super().__init__()
        self.features = nn.Identity()

    def forward(self, x):
        return self.features(x).mean((2, 3))


def _two_object_scenes(channels):
    """Two 16 px scenes (``Scenes``) with two objects each: class 0 (the scene's) in a 4 x 5 box
    and class 1 in a 3 x 3 box; ``channels`` (2, C, 16, 16) are the images."""
    from lib.data.scenes import Scenes

    boxes = [
        torch.tensor([[3, 2, 8, 6, 0], [10, 10, 13, 13, 1]]),
        torch.tensor([[8, 9, 13, 13, 0], [1, 1, 4, 4, 1]]),
    ]
    inst = torch.zeros(2, 16, 16, dtype=torch.uint8)
    return Scenes(
        channels,
        torch.tensor([0, 0]),
        torch.zeros(2, 10),
        boxes,
        inst,
        [torch.zeros(2, dtype=torch.int64)] * 2,
        "test",
    )


def _on_boxes(scenes, values):
    """Images (N, len(values), S, S): channel k holds ``values[k][j]`` inside object j's box."""
    x = torch.zeros(len(scenes), len(values), scenes.size, scenes.size)
    for i, b in enumerate(scenes.boxes):
        for k, per_object in enumerate(values):
            for (x0, y0, x1, y1, _), v in zip(b.tolist(), per_object):
                x[i, k, y0:y1, x0:x1] = v
    return x


def test_inclusive_boxes_and_scene_rows():
    b = torch.tensor([[3, 2, 8, 6, 0]])
    assert gcf.inclusive(b).tolist() == [[3, 2, 7, 5, 0]]
    assert gcf.inclusive(torch.tensor([[1.5, 2.0, 7.2, 6.0]])).tolist() == [[1, 2, 7, 5]]
    sc = _two_object_scenes(torch.zeros(2, 1, 16, 16))
    rows, cls = gcf.scene_rows(sc, "label")
    assert cls.tolist() == [0, 0] and rows[0].tolist() == [[3, 2, 7, 5, 0]]
    rows, cls = gcf.scene_rows(sc, "other")
    assert cls.tolist() == [1, 1] and rows[1].tolist() == [[1, 1, 3, 3, 1]]
    with pytest.raises(ValueError, match="which"):
        gcf.scene_rows(sc, "both")


def test_box_hits_and_nagy_scores_by_hand():
    # object box: columns 3-7, rows 2-5 (inclusive), 5 x 4 = 20 px: the size rule asks
    # 20 / (15 * 14) = 0.095 of IoU
    rows, cls = [torch.tensor([[3, 2, 7, 5, 0]])] * 3, torch.tensor([0, 0, 0])
    maps = torch.zeros(3, 16, 16)
    maps[0, 2:6, 3:8] = 1.0  # the box itself: IoU 1
    maps[1] = 1.0  # all but one corner pixel (the min-max's 0):
    maps[1, 0, 0] = 0.0  # box 16 x 16, IoU 20 / 256 = 0.078 < 0.095
    # map 2 is empty: no box, a miss
    assert gcf.box_hits(maps, rows, cls).tolist() == [1.0, 0.0, 0.0]
    # nagy_scores up-samples (here 16 -> 16: the identity), min-max normalises, points
    s = gcf.nagy_scores(maps, 16, rows, cls)
    assert s["box"].tolist() == [1.0, 0.0, 0.0]
    assert s["point"].tolist() == [1.0, 0.0, 0.0]  # map 1's first max is (0, 1): outside
    assert s["empty"].tolist() == [False, False, True]
    # without the ReLU a signed map keeps its shape: -1 on the background, +1 on the box, after
    # min-max 0 and 1: the same box; with the ReLU the same too. A map -1 on the box and 0
    # elsewhere: with the ReLU empty (a miss), without it the box is the whole background
    signed = -torch.ones(2, 16, 16)
    signed[0, 2:6, 3:8] = 1.0
    signed[1] = 0.0
    signed[1, 2:6, 3:8] = -1.0
    r2, c2 = rows[:2], cls[:2]
    assert gcf.nagy_scores(signed, 16, r2, c2, relu=False)["box"].tolist() == [1.0, 0.0]
    with_relu = gcf.nagy_scores(signed, 16, r2, c2)
    assert with_relu["box"].tolist() == [1.0, 0.0] and with_relu["empty"].tolist() == [False, True]


def test_pooling_difference_by_hand():
    x = torch.tensor([[[[1.0, 2.0]], [[4.0, -1.0]]]], dtype=torch.float64)
    # mean: 2 (1, 2) + 1 (4, -1) = (6, 3); max: 3 (1, 2) + 2 (4, -1) = (11, 4); |diff| max 5 / 6
    assert gcf.pooling_difference(MaxHead(), x, "a", 0) == pytest.approx(5 / 6)
    # before global average pooling every position gets w / Z: the two maps are the same
    x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    assert gcf.pooling_difference(IdentityGap((1.0, -1.0)), x, "features", 0) < 1e-7
    with pytest.raises(ValueError, match="zero everywhere"):
        gcf.pooling_difference(IdentityGap((1.0, -1.0)), torch.zeros(1, 1, 4, 4), "features", 0)


def test_pooling_layers_are_where_the_gradients_vary():
    """On the real architectures (untrained weights): at each stand-in's pooling layer mean and
    max pooling give different maps; at the GoogLeNet-style one's last layer (global average
    pooling follows) they give the same map."""
    from lib.models.zoo import build

    torch.manual_seed(0)
    x = torch.rand(2, 1, 64, 64)
    for net, (arch, kwargs, last, _) in gcf.STAND_INS.items():
        model = build(arch, **kwargs).eval()
        assert gcf.pooling_difference(model, x, gcf.POOLING_LAYERS[net], 0) > 0.01, net
        assert (net, last) in gcf.FOLLOWED_BY and (net, gcf.POOLING_LAYERS[net]) in gcf.FOLLOWED_BY
        assert gcf.BLOCKS[net][-1] == last
    model = build("small_googlenet").eval()
    assert gcf.pooling_difference(model, x, "inception5b", 0) < 1e-5


def _units(column, a, b, values_a, values_b, metric="box", nets=("AlexNet",)):
    """A units table: per network, seed s and scene i, ``values_a[s][i]`` for column == a."""
    rows = []
    for net in nets:
        for key, vals in ((a, values_a), (b, values_b)):
            for seed, per_scene in enumerate(vals):
                rows += [
                    {"network": net, "seed": seed, "scene": i, column: key, metric: v, "point": v}
                    for i, v in enumerate(per_scene)
                ]
    return pd.DataFrame(rows)


def test_pairs_average_over_seeds_and_pooling_verdicts():
    # 2 seeds, 3 scenes: mean-pooled hits (1, 0, 1), (1, 1, 1); max-pooled (0, 0, 1), (1, 0, 0)
    u = _units("pooling", "mean", "max", [[1, 0, 1], [1, 1, 1]], [[0, 0, 1], [1, 0, 0]])
    a, b = gcf._pairs(u, "box", "pooling", "mean", "max", "AlexNet")
    np.testing.assert_array_equal(a, [1.0, 0.5, 1.0])
    np.testing.assert_array_equal(b, [0.5, 0.0, 0.5])
    # 40 scenes, mean pooling hits every one, max pooling none, in both stand-ins: holds
    u = _units("pooling", "mean", "max", [[1] * 40], [[0] * 40], nets=("AlexNet", "VGG16"))
    pv = gcf.pooling_verdicts(u)
    assert set(pv["by_network"]["box"]) == {"AlexNet-style", "VGG16-BN-style"}
    assert pv["box"].outcome == verdict.HOLDS and pv["box"].estimate == 1.0
    assert "every one of 2" in pv["box"].rule
    assert "α = mean" in pv["box"].rule


def test_relu_units_on_a_map_known_by_hand(monkeypatch):
    # Grad-CAM of class 0 is channel 0 / Z: 2 on A's box (20 px), 0 on B's box, -1 elsewhere.
    # With the ReLU: 2 on A, 0 elsewhere: no mass on B, A's box exactly. Without: min-max gives
    # A 1, B 1/3, background 0: B's share of the mass is (1/3 |B|) / (|A| + 1/3 |B|)
    sc = _two_object_scenes(torch.zeros(2, 1, 16, 16))
    sc.images = _on_boxes(sc, [[2.0, 0.0]]) - 1.0
    for i, b in enumerate(sc.boxes):  # background -1, boxes as set above
        for x0, y0, x1, y1, c in b.tolist():
            sc.images[i, 0, y0:y1, x0:x1] += 1.0
    monkeypatch.setattr(gcf, "stand_in", lambda net, seed, device="cpu": LinearHead())
    monkeypatch.setattr(gcf, "STAND_INS", {"AlexNet": ("", {}, "features", "")})
    u = gcf.relu_units(["AlexNet"], [0], sc)
    on = u[u.relu].set_index("scene")
    off = u[~u.relu].set_index("scene")
    assert on["other"].tolist() == [0.0, 0.0] and on["box"].tolist() == [1.0, 1.0]
    area_a, area_b = 20, 9
    expect = (area_b / 3) / (area_a + area_b / 3)
    assert off["other"].tolist() == pytest.approx([expect, expect], rel=1e-6)
    assert off["point"].tolist() == on["point"].tolist() == [1.0, 1.0]
    t = gcf.relu_table(u)
    assert t.loc["AlexNet-style", "other (no ReLU)"] == pytest.approx(expect, rel=1e-6)


def test_discrimination_units_on_maps_known_by_hand(monkeypatch):
    # channel 0 lights A's box, channel 1 B's: Grad-CAM of class c is channel c, on its own box
    # only (d = +1); Guided Backprop is 1/Z on channel c, |.| summed over channels is flat: its
    # mass shares are the boxes' areas, d_A = (20 - 9) / 256 = -d_B, d = 0; Guided Grad-CAM is
    # Grad-CAM times it: d = +1
    sc = _two_object_scenes(torch.zeros(2, 2, 16, 16))
    sc.images = _on_boxes(sc, [[1.0, 0.0], [0.0, 1.0]])
    sc.labels = torch.tensor([0, 0])
    monkeypatch.setattr(gcf, "stand_in", lambda net, seed, device="cpu": LinearHead())
    monkeypatch.setattr(gcf, "STAND_INS", {"AlexNet": ("", {}, "features", "")})
    u = gcf.discrimination_units(["AlexNet"], [0], sc).set_index(["method", "scene"])
    assert u.loc["gradcam", "d"].tolist() == pytest.approx([1.0, 1.0])
    assert u.loc["guidedgradcam", "d"].tolist() == pytest.approx([1.0, 1.0])
    assert u.loc["guidedbackprop", "d_a"].tolist() == pytest.approx([11 / 256] * 2)
    assert u.loc["guidedbackprop", "d"].tolist() == pytest.approx([0.0, 0.0], abs=1e-7)
    assert gcf.own_minus_other(
        torch.zeros(1, 4, 4),
        torch.ones(1, 4, 4, dtype=torch.bool),
        torch.zeros(1, 4, 4, dtype=torch.bool),
    ).tolist() == [0.0]


def test_discrimination_scene_verdicts_by_hand():
    rows = []
    for net in ("AlexNet", "VGG16"):
        for i in range(30):
            rows += [
                {"network": net, "seed": 0, "scene": i, "method": m, "d": d}
                for m, d in (
                    ("gradcam", 0.3 + 0.01 * (i % 3)),
                    ("guidedbackprop", 0.0),
                    ("guidedgradcam", 0.4),
                )
            ]
    v = gcf.discrimination_scene_verdicts(pd.DataFrame(rows))
    assert v["gradcam"].outcome == verdict.HOLDS and v["gradcam"].estimate == pytest.approx(0.31)
    assert v["guided"].outcome == verdict.HOLDS and v["guided"].estimate == pytest.approx(0.4)
    assert set(v["by_network"]["guided"]) == {"AlexNet-style", "VGG16-BN-style"}


def test_block_receptive_fields_by_hand():
    # AlexNet-style: 5x5 conv, stride 2 (RF 5, jump 2); 2x2 max-pool (7, 4); 5x5 conv (23, 4);
    # max-pool (27, 8); three 3x3 convs (43, 59, 75; jump 8)
    t = gcf.block_rfs("AlexNet")
    assert t["RF (px)"].tolist() == [5, 23, 43, 59, 75]
    assert t["jump (px)"].tolist() == [2, 4, 8, 8, 8]
    assert t["map"].tolist() == ["32 x 32", "16 x 16", "8 x 8", "8 x 8", "8 x 8"]
    assert t["layer"].tolist() == gcf.BLOCKS["AlexNet"]


def test_layer_verdicts_find_a_trend_and_its_absence():
    # score = 0.1 x block in every scene: slope 0.1 exactly, no spread
    rows = [
        {"network": "AlexNet", "seed": 0, "scene": i, "block": k, "box": 0.1 * k, "point": 0.5}
        for i in range(20)
        for k in range(1, 6)
    ]
    lv = gcf.layer_verdicts(pd.DataFrame(rows))
    assert lv["box"].outcome == verdict.HOLDS and lv["box"].estimate == pytest.approx(0.1)
    assert lv["last_vs_first"]["box"]["AlexNet-style"].estimate == pytest.approx(0.4)
    # a flat score: slope 0, its interval [0, 0] is not above 0
    assert lv["point"].outcome == verdict.FAILS
    assert "bootstrap over 20 scenes" in lv["box"].method


def test_stand_in_scenes_have_two_objects_of_different_classes():
    sc = gcf.stand_in_scenes(12, two_objects=True)
    assert sc.size == 64 and len(sc) == 12
    for i, b in enumerate(sc.boxes):
        assert len(b) == 2 and int(b[0, 4]) == int(sc.labels[i]) != int(b[1, 4])
    one = gcf.stand_in_scenes(12)
    assert all(1 <= len(b) <= 2 for b in one.boxes)


def test_shared_stand_ins_and_their_committed_weights():
    from lib.train import STAND_INS, stand_in_recipe

    assert gcf.STAND_INS is STAND_INS and set(gcf.POOLING_LAYERS) == set(STAND_INS)
    for net in STAND_INS:
        for seed in (0, 1, 2):
            assert recipe_path(stand_in_recipe(net, seed)).is_file()
    assert stand_in_recipe("VGG16", 1) == "gradcam_loc_small_vgg_seed1"
    with pytest.raises(ValueError, match="no stand-in"):
        stand_in_recipe("ResNet", 0)


def test_photo_rows_follow_the_model_and_the_boxes():
    """The rocket's box through Lite0's resize and crop, and its class: of missile (657) and
    projectile (744), the one Lite0 scores higher."""
    im = gcf.load_images("default", "cpu", ["rocket"])
    rows, cls = gcf.photo_rows(im)
    assert set(rows[0][:, 4].tolist()) == {657, 744} and int(cls[0]) in (657, 744)
    with torch.no_grad():
        logits = im.model(im.x)[0]
    assert int(cls[0]) == (657 if logits[657] >= logits[744] else 744)
    assert bool((rows[0][:, :4] >= 0).all() and (rows[0][:, :4] <= 223).all())
    p = gcf.photo_pooling(im)
    assert p.pooling.tolist() == ["mean", "max"] and set(p.columns) >= {"box", "point", "empty"}
    t = gcf.photo_pooling_table(p)
    assert list(t.columns) == ["class", "box (max)", "box (mean)", "point (max)", "point (mean)"]


def test_test_correct_is_the_trainers_accuracy():
    from lib.train import evaluate, load_data

    c = gcf.test_correct([0], n=300)
    assert set(c.pooling) == {"GAP", "GMP"} and len(c) == 600
    model, _ = gcf.load_pooled("gap", 0)
    acc = evaluate(model, load_data("fashion_mnist"), n=300)
    assert c[c.pooling == "GAP"]["correct"].mean() == pytest.approx(acc)


def test_notes_table_names_each_claim_of_the_notes():
    from types import SimpleNamespace as NS

    v = verdict.Verdict(verdict.HOLDS, 0.3, 0.2, 0.4, 0.0, "r", "m", 10)
    rows = [
        NS(claim_id=c, kind="paper", tier="stand-in", outcome=v.outcome, verdict=v, digits=2)
        for ids in gcf.NOTES_CLAIMS.values()
        for c in ids
    ]
    t = gcf.notes_table(rows)
    assert len(t) == sum(len(i) for i in gcf.NOTES_CLAIMS.values()) == 9
    assert t["estimate [95 %]"].iloc[0] == "0.30 [0.20, 0.40]"
    assert t.index[0] == "1. pooling the gradients" and t["tested by"].iloc[0] == "pooling-box"
    with pytest.raises(ValueError, match="was not added"):
        gcf.notes_table(rows[1:])


def test_named_intervals_of_verdicts():
    """The claims' "ours" of chapter 02b (``lib.formatting.named_intervals``): each verdict's
    estimate and interval with its sign, by name; with the page's words, its outcome too."""
    hold = verdict.Verdict(verdict.HOLDS, 0.3, 0.2, 0.4, 0.0, "r", "m", 10)
    und = verdict.Verdict(verdict.UNDECIDED, 0.1, -0.1, 0.3, 0.0, "r", "m", 10)
    assert named_intervals({"a": hold}) == "a +0.300 [+0.200, +0.400]"
    assert named_intervals({"a": hold, "b": und}, 1) == "a +0.3 [+0.2, +0.4]; b +0.1 [-0.1, +0.3]"
    words = {verdict.HOLDS: "holds", verdict.UNDECIDED: "is undecided"}
    assert named_intervals({"a": und}, words=words) == "a +0.100 [-0.100, +0.300], is undecided"
    assert with_interval(float("nan"), None, -0.0004) == "— [—, -0.000]"
    fails = verdict.Verdict(verdict.FAILS, -0.3, -0.4, -0.2, 0.0, "r", "m", 10)
    with pytest.raises(ValueError, match="no words for the outcome 'does not hold' of 'c'"):
        named_intervals({"c": fails}, words=words)


def test_training_recipe_is_the_committed_recipe_of_seed_0():
    r = gcf.training_recipe("gap")
    assert r is RECIPES[gcf.recipe("gap", 0)]
    # what the page says of it: Adam with a cosine schedule
    assert (r.optimizer, r.schedule) == ("adam", "cosine")
