"""Chapter "Grad-CAM fundamentals": Eq. 1-2 by hooks against values worked out by hand, the
engine and pytorch-grad-cam; w_k^c = Z alpha_k^c in float64 (and a network where it must fail);
Guided Backprop / Guided Grad-CAM against Captum; the counterfactual test's region and verdict;
the GAP / GMP scores on scenes whose answer is known, and the verdict's statistics by hand."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lib import cam
from lib.chapters import gradcam_fundamentals as gcf
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
    a = torch.tensor([[3.0, 0.0], [2.0, 0.5]], dtype=torch.float64)      # relu(x)
    torch.testing.assert_close(steps.activations[0], a)
    torch.testing.assert_close(steps.gradients[0], FlatHead.V)           # dy/dA = V
    assert steps.z == 4 and steps.cls == 0
    alpha = (0 + 1 - 2 + 5) / 4                                          # Eq. 1: 1.0
    assert steps.alpha.tolist() == [alpha]
    torch.testing.assert_close(steps.weighted, alpha * a)                # Eq. 2 before ReLU
    assert steps.peak == (0, 0) and steps.score == pytest.approx(0 - 4 + 2.5)
    assert gcf.engine_difference(steps, FlatHead(), x) == 0.0


def test_top_channels_and_pixel_terms_are_eq1_and_eq2_in_numbers():
    model = _pooled("avg").double()
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    steps = gcf.gradcam_steps(model, x, model.target_layer)
    t = gcf.top_channels(steps, 3)
    np.testing.assert_allclose(t["alpha_k (Eq. 1)"], t["sum_ij dy/dA^k_ij"] / t["Z"], rtol=1e-12)
    assert list(t["alpha_k (Eq. 1)"]) == sorted(t["alpha_k (Eq. 1)"], reverse=True)
    assert t["alpha_k (Eq. 1)"].iloc[0] == steps.alpha.max().item()
    c = gcf.top_channels(steps, 8, by="contribution")["alpha_k x mean A^k"]
    assert list(c) == sorted(c, reverse=True)
    p = gcf.pixel_terms(steps, 2)
    i, j = steps.peak
    total = p["alpha_k A^k_ij"].iloc[-1]
    assert total == pytest.approx(steps.weighted[i, j].item(), rel=1e-12)
    assert p["alpha_k A^k_ij"].iloc[:-1].sum() == pytest.approx(total, rel=1e-12)
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
    assert r["Z"] == 8 * 8 and r["images"] == 5            # one 2x2 max-pool: 16 -> 8
    assert r["max |Z alpha - w|"] < 1e-14 and r["max |CAM - Z Grad-CAM| / max |CAM|"] < 1e-14
    assert r["max |w|"] == pytest.approx(model.fc.weight[[0, 1, 2, 3, 9]].abs().max().item())
    assert next(model.parameters()).dtype == torch.float32   # the model itself is untouched


def test_gap_gradient_is_w_over_z_and_gmp_gradient_is_one_hot():
    x = torch.rand(3, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for pool in ("avg", "max"):
        model = _pooled(pool).double()
        a, g, cls, _ = gcf.layer_gradients(model, x, model.target_layer, target=7)
        w = model.fc.weight[7].detach()
        if pool == "avg":   # Eq. 7-8: w_k / Z at every unit, Z = 8 x 8
            torch.testing.assert_close(g, (w / 64).view(1, -1, 1, 1).expand_as(g))
        else:               # the gradient of a max: w_k at one unit of each channel, 0 elsewhere
            flat = g.flatten(2)
            assert ((flat != 0).sum(2) <= 1).all()
            torch.testing.assert_close(flat.sum(2), w.expand(3, -1))


def test_cam_identity_fails_where_the_head_is_not_one_linear_layer():
    model = TwoLinearHeads()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    r = gcf.cam_identity(model, x, "features")
    assert r["max |Z alpha - w|"] > 1e-3       # alpha is W_fc W_mid / Z, not W_fc / Z
    with pytest.raises(ValueError, match="one linear layer"):
        gcf.cam_identity(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(),
                                       nn.Linear(72, 3)), x, "1")


def test_cam_vs_gradcam_from_the_engine():
    model = _pooled("avg").double()
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    maps = cam.compute_many(model, x, model.target_layer, ["cam", "gradcam"])
    z, rel = gcf.cam_vs_gradcam({m: maps[m][model.target_layer] for m in ("cam", "gradcam")})
    assert z == 6 * 6 and rel < 1e-14
    z, rel = gcf.cam_vs_gradcam({"cam": maps["cam"][model.target_layer],
                                 "gradcam": 2 * maps["gradcam"][model.target_layer]})
    assert rel == pytest.approx(1.0)           # a wrong Z is caught


@pytest.mark.slow
def test_lite0_cam_identity_in_float64():
    im = gcf.load_images("smoke", "cpu", ["coffee"])
    r = gcf.cam_identity(im.model, im.x, im.layer)
    assert r["Z"] == 49 and r["max |Z alpha - w|"] < 1e-10
    assert r["max |CAM - Z Grad-CAM| / max |CAM|"] < 1e-10
    steps = gcf.gradcam_steps(im.model, im.x, im.layer)
    assert gcf.engine_difference(steps, im.model, im.x) < 1e-6
    g = steps.gradients.flatten(1)
    assert bool((g.amax(1) == g.amin(1)).all())            # flat: w / Z at every unit


# --------------------------------------------------------------------------- two classes

def _images(model, x):
    return gcf.Images(model, "tiny", model.target_layer, model.target_layer, x,
                      [f"img{i}" for i in range(len(x))], [f"class {c}" for c in range(10)],
                      (0.0,), (1.0,))


def test_competing_picks_the_close_contests_first():
    p = torch.tensor([[0.5, 0.4], [0.9, 0.05], [0.4, 0.39], [0.3, 0.15]])
    assert gcf.competing(p, 0.5) == [2, 0, 3]
    with pytest.raises(ValueError, match="lower compete_ratio"):
        gcf.competing(p[1:2], 0.5)


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
    assert list(labels["class"]) == ["top-1: class 1", "top-2: class 0", "top-1: class 3",
                                     "top-2: class 5"]


def test_discrimination_is_the_pearson_correlation_of_the_two_maps():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 8, 8, generator=g), torch.rand(3, 8, 8, generator=g)
    maps = {"gradcam": torch.stack([a[0, :4, :4], a[0, :4, :4]]),        # same map: 1
            "guidedbackprop": torch.stack([a, b]),
            "guidedgradcam": torch.stack([a, -a])}                       # |.|: the same: 1
    two = gcf.TwoClasses([0], [0, 0], [1, 2], torch.zeros(2, 3, 8, 8), maps)
    im = SimpleNamespace(names=["only"])
    d = gcf.discrimination(two, im)
    assert d.loc["only", "gradcam"] == pytest.approx(1.0)
    assert d.loc["only", "guidedgradcam"] == pytest.approx(1.0)
    ref = np.corrcoef(a.abs().sum(0).flatten(), b.abs().sum(0).flatten())[0, 1]
    assert d.loc["only", "guidedbackprop"] == pytest.approx(ref)
    v = gcf.discrimination_verdict(d)
    assert v["holds"] is False and v["gb_more_alike"] == 0   # GB less alike than GGC here


def test_top_region_takes_the_largest_positive_pixels_only():
    m = torch.tensor([[0.0, 3.0, 1.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    r = gcf._top_region(m, 0.25)                           # 2 of 8 pixels
    assert r.tolist() == [[False, True, False, False], [False, False, True, False]]
    r = gcf._top_region(m, 0.75)                           # 6 wanted, 3 are positive
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
    d = gcf.deletion(model, two, fraction=1 / 16)          # one pixel
    assert d["y image"].tolist() == pytest.approx([0.75, -0.75])
    assert d["y gradcam"][0] == pytest.approx(0.25)        # the 8 is gone
    assert bool(d["empty counterfactual"][0]) and not bool(d["empty gradcam"][0])
    # class 1: its counterfactual map is the image; deleting the 8 raises y_1 from -0.75 to -0.25
    assert d["y counterfactual"][1] == pytest.approx(-0.25)
    assert d["p counterfactual"][1] > d["p image"][1]
    assert d["deleted share gradcam"].tolist() == [1 / 16, 0.0]


def test_counterfactual_verdict_counts_scored_rows_only():
    d = pd.DataFrame({"p image": [0.5, 0.5, 0.5, 0.5], "p gradcam": [0.1, 0.2, 0.3, 0.9],
                      "p counterfactual": [0.6, 0.7, 0.4, 0.9],
                      "empty counterfactual": [False, False, False, True]})
    v = gcf.counterfactual_verdict(d)
    assert (v["scored"], v["empty"], v["rises"], v["less_than_gradcam"]) == (3, 1, 2, 3)
    assert v["holds"] is True and v["mean_dp"] == pytest.approx((0.1 + 0.2 - 0.1) / 3)
    d.loc[1, "p counterfactual"] = 0.5
    assert gcf.counterfactual_verdict(d)["holds"] is False   # 1 of 3: no majority
    with pytest.raises(ValueError, match="every counterfactual map is empty"):
        gcf.counterfactual_verdict(d.assign(**{"empty counterfactual": True}))


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
    assert loc.loc[0, ["iou", "hit", "coverage"]].tolist() == [1.0, 1.0, 1.0]
    # class 1 (w = -1): the map is negative everywhere, ReLU leaves nothing: scored 0, counted
    assert loc.loc[1, ["iou", "hit", "coverage"]].tolist() == [0.0, 0.0, 0.0]
    assert loc["empty"].tolist() == [False, True]
    assert loc["correct"].tolist() == [True, False]      # y = (mean, -mean): argmax is 0
    assert gcf.canvas_to_box(scenes) == pytest.approx(256 / 20)


def _runs(acc, iou, hit=None, cov=None):
    rows = []
    for p, pool in enumerate(("GAP", "GMP")):
        for s in range(len(acc[p])):
            rows.append({"pooling": pool, "seed": s, "accuracy": acc[p][s], "iou": iou[p][s],
                         "hit": (hit or iou)[p][s], "coverage": (cov or iou)[p][s],
                         "scene accuracy": 0.5})
    return pd.DataFrame(rows)


def test_paired_differences_and_the_summary_by_hand():
    runs = _runs([[0.90, 0.91, 0.89], [0.90, 0.905, 0.90]],
                 [[0.50, 0.52, 0.51], [0.40, 0.41, 0.43]])
    d = gcf.paired(runs, "iou")
    diffs = np.array([0.10, 0.11, 0.08])
    assert d["mean"] == pytest.approx(diffs.mean())
    assert d["std"] == pytest.approx(diffs.std(ddof=1))
    assert d["se"] == pytest.approx(diffs.std(ddof=1) / np.sqrt(3))
    assert (d["gap_higher"], d["seeds"]) == (3, 3)
    s = gcf.gap_gmp_summary(runs)
    assert s.loc["GMP", "iou std"] == pytest.approx(np.std([0.40, 0.41, 0.43], ddof=1))
    assert s.loc["GAP", "accuracy mean"] == pytest.approx(0.90)
    with pytest.raises(ValueError, match="at least two seeds"):
        gcf.gap_gmp_summary(runs[runs.seed == 0])


def test_gap_gmp_verdict_by_hand():
    gap_wins = [[0.50, 0.52, 0.51], [0.40, 0.41, 0.43]]
    v = gcf.gap_gmp_verdict(_runs([[0.90, 0.91, 0.89], [0.90, 0.905, 0.90]], gap_wins,
                                  cov=[[0.9, 0.9, 0.9], [0.7, 0.6, 0.8]]))
    assert v["similar_accuracy"] and v["gap_better_iou"] and v["gap_better_hit"] and v["holds"]
    assert v["gmp_smaller_coverage"]         # GMP's maps cover less of the box in every seed
    v2 = gcf.gap_gmp_verdict(_runs([[0.90] * 3, [0.90] * 3], gap_wins,
                                   cov=[[0.7, 0.6, 0.8], [0.9, 0.9, 0.9]]))
    assert v2["gmp_smaller_coverage"] is False  # the other way round
    # one seed of four where GMP localises better: the mean is 3 standard errors above 0, but
    # GAP is not better in every seed, so no verdict for GAP
    v = gcf.gap_gmp_verdict(_runs([[0.9] * 4, [0.9] * 4],
                                  [[0.5, 0.5, 0.5, 0.399], [0.4, 0.4, 0.4, 0.4]]))
    assert v["iou"]["mean"] > 2 * v["iou"]["se"]
    assert not v["gap_better_iou"] and not v["holds"]
    # 2 points apart: not "similar" at the 1-point tolerance, similar at 3 points
    runs = _runs([[0.88, 0.88, 0.88], [0.90, 0.90, 0.90]], gap_wins)
    assert not gcf.gap_gmp_verdict(runs)["similar_accuracy"]
    assert gcf.gap_gmp_reading(gcf.gap_gmp_verdict(runs)).startswith(
        "Here GMP is 2.0 points more accurate, more than the 1 point called similar; GAP's IoU "
        "is higher in every seed, by 0.097 ± 0.015; so does its pointing game.")
    assert gcf.gap_gmp_verdict(runs, tolerance=0.03)["similar_accuracy"]


def test_recipes_of_the_three_seeds_and_their_committed_weights():
    for pool in ("gap", "gmp"):
        names = [gcf.recipe(pool, s) for s in gcf.SEEDS]
        assert names[0] == f"{pool}_net"
        configs = [dict(RECIPES[n], seed=0) for n in names]
        assert all(c == configs[0] for c in configs)       # only the seed differs
        assert [RECIPES[n]["seed"] for n in names] == list(gcf.SEEDS)
        for n in names:
            assert recipe_path(n).is_file(), f"{recipe_path(n)} is missing: load_trained({n!r})"
    with pytest.raises(ValueError, match="seed 3"):
        gcf.recipe("gap", 3)
    with pytest.raises(ValueError, match="'gap' or 'gmp'"):
        gcf.recipe("avg", 0)
    with pytest.raises(ValueError, match="list of ints"):
        gcf.gap_gmp_runs("[0, 1]", None)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gap_net_seed1", "gmp_net_seed1", "gap_net_seed2",
                                  "gmp_net_seed2"])
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
    identity = pd.DataFrame({"Z": [49.0], "images": [2.0], "max |Z alpha - w|": [1.1e-16],
                             "max |w|": [0.25], "max |CAM - Z Grad-CAM| / max |CAM|": [7e-16]})
    t = gcf.identity_table(identity)
    assert t.iloc[0].tolist() == [49, 2, "1.1e-16", 0.25, "7.0e-16"]
