"""The protocol of chapter 08 (Nagy, Nimara, Qian, Tables 3, 6, 7): occlusion's cost and map
against a brute-force loop, the authors' grey-scaling, the one-pixel attack on models where the
answer is known, the verdict rules on hand-made rows, the SHAP choice."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lib.chapters import gradcam_faithfulness as ff
from lib.data.errors import DataMissingError


class _Counting(nn.Module):
    """A tiny classifier (a 3 x 3 conv, two logits) that counts the occluded images it sees:
    those that differ from ``reference``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.reference, self.occluded = None, 0

    def forward(self, x):
        if self.reference is not None:
            self.occluded += int((x != self.reference).flatten(1).any(1).sum())
        return self.conv(x).mean((2, 3))


# ---------------------------------------------------------------- Table 3: occlusion

def test_occlusion_passes_by_hand():
    # 224 px, 45 px window: 179 px of travel; Captum takes ceil(179 / s) + 1 positions per axis
    assert ff.occlusion_passes(224, 45, 1) == 180 * 180 + 1 == 32401
    assert ff.occlusion_passes(224, 45, 16) == 13 * 13 + 1       # ceil(11.19) + 1 = 13
    assert ff.occlusion_passes(224, 45, 45) == 5 * 5 + 1         # ceil(3.98) + 1 = 5
    assert ff.occlusion_passes((20, 10), 7, 3) == 6 * 2 + 1      # ceil(13/3)+1, ceil(3/3)+1
    with pytest.raises(ValueError, match="stride"):
        ff.occlusion_passes(224, 45, 0)


def test_occlusion_map_counts_and_equals_a_brute_force_loop():
    torch.manual_seed(0)
    model = _Counting().eval()
    x = torch.randn(1, 1, 12, 12)
    window, stride, fill, cls = 5, 3, 0.5, 1
    model.reference = x
    got = ff.occlusion_map(model, x, cls, stride, batch=4, window=window, fill=fill)[0]
    model.reference = None
    # one occluded image per window position: ceil(7 / 3) + 1 = 4 positions per axis
    assert model.occluded == ff.occlusion_passes(12, window, stride) - 1 == 16
    # brute force: every window position, its p_cls, averaged over the windows covering a pixel
    total, count = torch.zeros(12, 12), torch.zeros(12, 12)
    for top in range(0, 12 - window + stride, stride):
        for left in range(0, 12 - window + stride, stride):
            occ = x.clone()
            occ[..., top:top + window, left:left + window] = fill
            with torch.no_grad():
                p = model(occ).softmax(1)[0, cls]
            total[top:top + window, left:left + window] += p
            count[top:top + window, left:left + window] += 1
    assert torch.allclose(got, 1 - total / count, atol=1e-6)


def test_grey_is_the_authors_luma():
    rgb = torch.zeros(3, 3, 1, 1)
    for c in range(3):
        rgb[c, c] = 1.0
    assert ff.grey(rgb).flatten().tolist() == pytest.approx([0.2989, 0.5870, 0.1140])


def test_to_grid_keeps_a_smooth_ramp_in_order():
    ramp = torch.linspace(0, 1, 224).repeat(224, 1)[None]  # increases along the columns
    grid = ff.to_grid(ramp)
    assert grid.shape == (1, 14, 14)
    assert (grid[0].diff(dim=1) > 0).all() and torch.allclose(grid[0], grid[0, :1].expand(14, 14))


def _rows3(means: dict, n: int = 8, spread: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    cols = {}
    for m, (argsort, rho) in means.items():
        noise = rng.normal(0, spread, n)
        cols[f"{m} argsort"] = argsort + noise - noise.mean()
        cols[f"{m} spearman"] = rho + noise - noise.mean()
    return pd.DataFrame(cols)


def test_table3_verdicts_on_hand_made_rows():
    # the authors' argsort means exactly, and Spearman far above them in the authors' order
    rows = _rows3({"guidedbackprop": (0.0095, 0.1), "gradcam": (0.0505, 0.3),
                   "guidedgradcam": (0.0526, 0.31)})
    v = ff.table3_claims(rows)
    assert v["gradcam_argsort"] == pytest.approx(0.0505)
    assert v["gradcam_argsort_holds"] and v["guidedbackprop_argsort_holds"]
    assert not v["gradcam_spearman_holds"]  # 0.3 is far outside 0.0505 +- 3 SE
    # the band: 3 * sqrt(0.1283^2 / 120 + sd_ours^2 / 8)
    sd = rows["gradcam spearman"].std(ddof=1)
    half = 3 * math.sqrt(0.1283 ** 2 / 120 + sd ** 2 / 8)
    assert v["gradcam_spearman_band"] == pytest.approx((0.0505 - half, 0.0505 + half))
    assert v["order_spearman"] == ["guidedbackprop", "gradcam", "guidedgradcam"]
    assert v["order_spearman_holds"]
    swapped = _rows3({"guidedbackprop": (0.0, 0.4), "gradcam": (0.0, 0.3),
                      "guidedgradcam": (0.0, 0.2)})
    assert not ff.table3_claims(swapped)["order_spearman_holds"]


def test_table3_summary_counts_constant_maps():
    rows = _rows3({m: (0.0, 0.2) for m in ff.TABLE3_METHODS}, n=4)
    rows.loc[2, "gradcam spearman"] = float("nan")
    s = ff.table3_summary(rows)
    assert s.loc["Grad-CAM", "constant maps"] == 1
    want = rows["gradcam spearman"].drop(2).mean()
    assert s.loc["Grad-CAM", "ours, Spearman"] == pytest.approx(want)
    assert s.loc["Guided Backprop", "paper (authors' computation)"] == 0.0095


# ---------------------------------------------------------------- Table 6: one-pixel attack

class _OnePixelSwitch(nn.Module):
    """Logits (0.5, 4 * x[..., 2, 3] summed over channels): class 0 on a black image; class 1
    as soon as pixel (row 2, col 3) exceeds 0.125 per channel, and only through that pixel."""

    def forward(self, x):
        v = 4 * x[:, :, 2, 3].sum(1)
        return torch.stack([torch.full_like(v, 0.5), v], 1)


def test_the_attack_finds_the_one_pixel_that_flips_the_class():
    model, x = _OnePixelSwitch(), torch.zeros(1, 1, 6, 6)
    r = ff.one_pixel_attack(model, x, cls=0, popsize=10, maxiter=30, seed=0)
    assert r["success"] and (r["row"], r["col"]) == (2, 3) and r["value"][0] > 0.125
    assert r["cls_after"] == 1 and r["p_after"] < 0.5
    # the search stopped early, and counts every image it evaluated: 30 a generation
    assert r["nfev"] % 30 == 0 and r["nfev"] < 30 * 31
    again = ff.one_pixel_attack(model, x, cls=0, popsize=10, maxiter=30, seed=0)
    assert (again["row"], again["col"], again["value"], again["nfev"]) == (
        r["row"], r["col"], r["value"], r["nfev"])  # seeded


def test_a_failed_attack_is_reported_with_its_whole_budget():
    class Stubborn(nn.Module):
        def forward(self, x):
            return torch.tensor([[2.0, 0.0]]).expand(len(x), 2) + 0 * x.sum((1, 2, 3))[:, None]

    x = torch.rand(1, 3, 5, 5)
    r = ff.one_pixel_attack(Stubborn(), x, cls=0, popsize=2, maxiter=3, seed=1)
    assert not r["success"] and r["cls_after"] == 0
    target = ff.AttackTarget("stub", "VGG16", Stubborn(), "", x, ["a"], (2, 3))
    assert r["nfev"] == target.max_images == 2 * 5 * 4  # popsize x (C + 2) x (1 + maxiter)


def _rows6():
    return pd.DataFrame({
        "model": ["a", "a", "a", "b"], "success": [True, True, False, True],
        "nfev": [10, 20, 30, 5],
        "gradcam_before": [0.2, 0.4, 0.9, 0.0], "gradcam_after": [0.25, 0.35, None, 0.1],
        "gradcam_after_same_class": [0.2, 0.3, None, 0.0],
        "below_before": [0.3, 0.5, 0.9, 0.0]})


def test_table6_counts_failures_and_reads_sensitivity_over_all_successes():
    v = ff.table6_claims(_rows6())
    assert (v["attacked"], v["successes"], v["nonzero"]) == (4, 3, 2)
    assert not v["sensitive"]  # model b's pixel got exactly 0
    assert v["before"] == pytest.approx(0.2) and v["after"] == pytest.approx(0.7 / 3)
    assert v["change_small"]  # mean change (0.05 - 0.05 + 0.1) / 3 = 0.033 <= 0.05
    s = ff.table6_summary(_rows6())
    assert s.loc["a", "attacked"] == 3 and s.loc["a", "success rate"] == pytest.approx(2 / 3)
    assert s.loc["a", "Grad-CAM before"] == pytest.approx(0.3)  # the failure is not averaged in
    none = ff.table6_claims(_rows6().assign(success=False))
    assert none["successes"] == 0 and "no attack succeeded" in ff.table6_sentence(none).lower()


# ---------------------------------------------------------------- Table 7: the SHAP choice

@pytest.fixture(scope="module")
def mnist():
    return ff.mnist_data("smoke", 8, seed=0)


@pytest.mark.slow
def test_captums_deepliftshap_fails_its_completeness_check_on_this_network(mnist):
    """Why the chapter uses Gradient SHAP: if a Captum release fixes DeepLIFT's MaxPool2d and
    Softmax rules (issues #1276, #519), this fails and the chapter should switch back."""
    d = ff.deepliftshap_check(mnist.model, mnist.x[:4], mnist.background, int(mnist.y[0]))
    # DeepLIFT's attributions must sum to f(x) - f(reference): here they miss by more than 0.1,
    # on probabilities that differ by at most 1
    assert d["softmax"]["max |delta|"] > 0.1 and d["softmax"]["max |f(x) - f(ref)|"] <= 1
    assert d["logits"]["max |delta|"] > 0.1


@pytest.mark.slow
def test_gradient_shap_completeness_improves_with_samples(mnist):
    x = mnist.x[:4]
    few = ff.shap_maps(mnist.model, x, mnist.background, [int(mnist.y[0])], n_samples=5)[1]
    many = ff.shap_maps(mnist.model, x, mnist.background, [int(mnist.y[0])], n_samples=400)[1]
    # unbiased but heavy-tailed (softmax gradients at random points): it converges slowly
    assert many.mean() < 0.5 * few.mean()


def test_table7_on_hand_made_verdicts():
    t = pd.DataFrame({"method": ["gradcam", "gradcam", "gradientshap", "gradientshap"],
                      "p (%)": [1, 10, 1, 10], "fidelity": [0.5, 0.4, 0.7, 0.3],
                      "contrastivity": [0.7, 0.8, 0.6, 0.7]})
    v = ff.table7_claims(t)
    assert v["gradcam_more_contrastive"]
    assert not v["shap_more_faithful"]  # at p = 10 Grad-CAM's 0.4 beats SHAP's 0.3
    assert v["fidelity"][1] == (0.5, 0.7)


def test_mnist_files_are_found_or_named(tmp_path):
    with pytest.raises(DataMissingError, match="data_root"):
        ff.check_data("full", None)
    with pytest.raises(DataMissingError, match="train-images-idx3-ubyte"):
        ff._mnist_files(tmp_path)
    (tmp_path / "mnist").mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / "mnist" / (stem + ".gz")).write_bytes(b"")
    found = ff._mnist_files(tmp_path)
    assert found["test"][0].name == "t10k-images-idx3-ubyte.gz"
