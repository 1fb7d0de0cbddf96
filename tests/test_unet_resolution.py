"""The U-Net resolution chapter (Mascolini et al., Table I): the score s, the reference masks,
the verdicts on hand-made numbers, the paper's numbers, the maps against pytorch-grad-cam, and the
committed models."""
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lib import metrics
from lib.chapters import unet_resolution as ur
from lib.data import DataMissingError

PAPER = next(Path("/work/shared/papers").glob("004_*.txt"), None) if Path(
    "/work/shared/papers").is_dir() else None


# -- the paper's numbers ----------------------------------------------------------------------------
@pytest.mark.skipif(PAPER is None, reason="the paper's text is not on this machine")
def test_table1_numbers_are_the_papers():
    text = PAPER.read_text()
    rows = {m.group(1).strip(): [float(v) for v in m.group(2, 3, 4)] for m in re.finditer(
        r"^(U-Net|Ablated U-Net)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%", text, re.M)}
    assert rows["U-Net"] == [ur.PAPER_TABLE1["U-Net"][m] for m in ur.METHODS]
    assert rows["Ablated U-Net"] == [ur.PAPER_TABLE1["ablated U-Net"][m] for m in ur.METHODS]


def test_paper_claims_skips_raise_s_for_every_method():
    """The paper's own numbers satisfy the verdict rule this chapter applies to ours."""
    means = pd.DataFrame([{"seed": 0, "network": n, "method": m, "s": ur.PAPER_TABLE1[n][m]}
                          for n in ur.NETWORKS for m in ur.METHODS])
    v = ur.skips_verdict(means).set_index("method")
    assert v["holds"].all()
    assert v.loc["gradcam++", "difference"] == pytest.approx(72.47 - 63.04)


# -- s, masks, IoU on hand-made maps ----------------------------------------------------------------
def test_reference_masks_threshold_strictly():
    ref = torch.tensor([[[0.1, 0.6], [0.5, 1.0]]])
    m = ur.reference_masks(ref, (0.0, 0.5))
    assert m.shape == (2, 1, 2, 2)
    assert m[0].all()  # every value above 0
    assert m[1, 0].tolist() == [[False, True], [False, True]]  # 0.5 is not above 0.5


def test_mask_iou_by_hand():
    a = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]]], dtype=torch.bool)
    b = torch.tensor([[[1, 0], [1, 0]], [[0, 0], [0, 0]]], dtype=torch.bool)
    assert ur.mask_iou(a, b).tolist() == pytest.approx([1 / 3, 1.0])


def test_score_maps_by_hand_and_empty_maps():
    maps = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    truth = torch.tensor([[[0, 1], [0, 0]], [[1, 0], [0, 0]]], dtype=torch.bool)
    ref = torch.stack([torch.ones_like(truth), truth])
    other = torch.tensor([[[1, 0], [0, 0]], [[0, 1], [0, 0]]], dtype=torch.bool)
    sc = ur.score_maps(maps, ref, truth, other)
    assert sc["s_true"][0].item() == pytest.approx(3 / 4)
    assert sc["s_other"][0].item() == pytest.approx(1 / 4)
    assert torch.isnan(ur.score_maps(maps, ref, truth)["s_other"]).all()  # no distractor masks
    assert sc["s_ref"][:, 0].tolist() == pytest.approx([1.0, 3 / 4])
    assert sc["empty"].tolist() == [False, True]
    assert math.isnan(sc["s_true"][1].item()) and torch.isnan(sc["s_ref"][:, 1]).all()


def test_score_maps_against_numpy():
    rng = np.random.default_rng(0)
    maps = rng.random((5, 16, 16)).astype(np.float32)
    masks = rng.random((3, 5, 16, 16)) > 0.6
    truth = rng.random((5, 16, 16)) > 0.7
    sc = ur.score_maps(torch.from_numpy(maps), torch.from_numpy(masks), torch.from_numpy(truth))
    want = (maps[None] * masks).sum((-1, -2)) / maps.sum((-1, -2))
    np.testing.assert_allclose(sc["s_ref"].numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(sc["s_true"].numpy(), (maps * truth).sum((1, 2)) / maps.sum((1, 2)),
                               rtol=1e-5)


# -- verdicts on hand-made scores ---------------------------------------------------------------------
def _means(values):
    """values[method] = (U-Net per seed, ablated per seed)."""
    rows = []
    for m, (u, a) in values.items():
        for s, (x, y) in enumerate(zip(u, a)):
            rows += [{"seed": s, "network": "U-Net", "method": m, "s": x},
                     {"seed": s, "network": "ablated U-Net", "method": m, "s": y}]
    return pd.DataFrame(rows)


def test_skips_verdict_is_paired_by_seed():
    means = _means({"gradcam": ([60, 62, 64], [55, 63, 58]),       # one seed against: no
                    "gradcam++": ([70, 71, 72], [60, 70.5, 71]),   # every seed above: yes
                    "scorecam": ([50, 50, 50], [50, 49, 48])})     # a tie is not "raises"
    v = ur.skips_verdict(means).set_index("method")
    assert v.loc["gradcam", "difference"] == pytest.approx(10 / 3)
    assert v.loc["gradcam", "difference std"] == pytest.approx(math.sqrt(43 / 3))  # ddof=1
    assert v.loc["gradcam", "seeds U-Net higher"] == 2
    assert v["holds"].tolist() == [False, True, False]
    assert v.loc["gradcam++", "U-Net"] == pytest.approx(71.0)


def _scores(values, thresholds=(0.0, 0.5)):
    """A Scores with two images per (seed, network, method), layer dec1: the first image's s is
    ``values`` at every threshold, the second image's map is empty (NaN)."""
    rows = []
    for (seed, net, m), v in values.items():
        for t in thresholds:
            rows.append((seed, net, "dec1", m, 0, False, v.get("correct", True), t, v[t],
                         v["truth"], v.get("other")))
            rows.append((seed, net, "dec1", m, 1, True, True, t, np.nan, np.nan, np.nan))
    sc = pd.DataFrame(rows, columns=["seed", "network", "layer", "method", "image", "empty",
                                     "correct", "threshold", "s_ref", "s_true", "s_other"])
    return ur.Scores(sc, pd.DataFrame(), pd.DataFrame(), tuple(thresholds))


def test_seed_means_leave_empty_maps_out_and_count_them():
    vals = {(0, n, m): {0.0: 0.9, 0.5: 0.6 if n == "U-Net" else 0.4, "truth": 0.3}
            for n in ur.NETWORKS for m in ur.METHODS}
    sc = _scores(vals)
    means = ur.seed_means(sc, "reference", 0.5)
    assert set(means["s"]) == {60.0, 40.0}
    assert (means["scored"] == 1).all() and (means["empty"] == 1).all()
    assert set(ur.seed_means(sc, "truth")["s"]) == {30.0}
    t1 = ur.table1(sc, 0.5).set_index("network")
    assert t1.loc["U-Net", "Grad-CAM++ ours"] == 60.0
    assert t1.loc["ablated U-Net", "Score-CAM paper"] == 64.36
    with pytest.raises(ValueError, match="no scores at threshold 0.7"):
        ur.seed_means(sc, "reference", 0.7)


def test_object_share_and_the_class_blind_baseline():
    """U-Net: 0.3 on the object, 0.1 on the distractor -> 75 % of the items' mass on the object;
    a scene whose object covers 2 of 3 item pixels (and one with 1 of 2) -> blind share 7/12."""
    vals = {(0, n, m): {0.0: 0.5, 0.5: 0.5, "truth": 0.3 if n == "U-Net" else 0.2,
                        "other": 0.1 if n == "U-Net" else 0.2}
            for n in ur.NETWORKS for m in ur.METHODS}
    sc = _scores(vals)
    sc.scores = pd.concat([sc.scores, sc.scores.assign(layer="bottleneck")])  # same numbers
    t = ur.selectivity_table(sc)
    row = t[(t["layer"] == ur.LAYERS["dec1"]) & (t["network"] == "U-Net")
            & (t["method"] == "Grad-CAM")].iloc[0]
    assert row["on the object"] == pytest.approx(30) and row["object's share"] == pytest.approx(75)
    assert (t[t["network"] == "ablated U-Net"]["object's share"] == 50).all()
    sc.reference = pd.DataFrame({"threshold": [0.0, 0.0, 0.5], "truth_area": [0.2, 0.1, 0.2],
                                 "other_area": [0.1, 0.1, 0.1]})
    assert ur.class_blind_share(sc) == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    sc.reference["other_area"] = np.nan
    assert ur.class_blind_share(sc) is None


def test_sweep_verdict_names_the_thresholds_where_it_fails():
    vals = {(s, n, m): {0.0: 0.5 + 0.1 * (n == "U-Net"), 0.5: 0.5 - 0.1 * (n == "U-Net"),
                        "truth": 0.3} for s in range(2) for n in ur.NETWORKS for m in ur.METHODS}
    v = ur.sweep_verdict(_scores(vals))
    assert (v["U-Net higher in every seed"] == 1).all() and (v["not at"] == "0.5").all()


def test_sweep_text_names_the_failing_thresholds_and_their_area():
    vals = {(s, n, m): {0.0: 0.5 - 0.1 * (n == "U-Net"), 0.5: 0.5 + 0.1 * (n == "U-Net"),
                        "truth": 0.3} for s in range(2) for n in ur.NETWORKS for m in ur.METHODS}
    sc = _scores(vals)
    sc.reference = pd.DataFrame({"seed": 0, "image": 0, "reference_empty": False,
                                 "threshold": [0.0, 0.5], "iou": 0.1, "area": [0.96, 0.3],
                                 "truth_area": 0.1})
    assert ur.sweep_text(sc) == "except at t = 0, where the reference mask covers 96 % of the image"


def test_subset_of_images_both_networks_classify_correctly():
    """Seed 0: image 0 wrong for the ablated U-Net, so only image 1 (an empty map) is kept; seed
    1: image 0 right for both. The subset's means come from the kept images only."""
    vals = {(s, n, m): {0.0: 0.5, 0.5: 0.6 if n == "U-Net" else 0.4,
                        "truth": 0.35 if n == "U-Net" else 0.3,
                        "correct": not (s == 0 and n == "ablated U-Net")}
            for s in range(2) for n in ur.NETWORKS for m in ur.METHODS}
    sc = _scores(vals)
    kept = ur.both_correct(sc)
    assert sorted(map(tuple, kept.to_numpy().tolist())) == [(0, 1), (1, 0), (1, 1)]
    assert ur.correct_subset_text(sc) == "1 of 2, 2 of 2 per seed"
    means = ur.seed_means(sc, "reference", 0.5, subset="both correct")
    assert means["seed"].tolist().count(0) == 6 and means[means["seed"] == 0]["s"].isna().all()
    t = ur.correct_subset_table(sc, 0.5)
    assert set(t["U-Net higher"]) == {"1 of 1 seeds"}  # seed 0 has no non-empty map left
    with pytest.raises(ValueError, match="subset must be"):
        ur.seed_means(sc, "truth", subset="some")


def test_argued_threshold_maximises_iou_of_non_empty_references():
    rows = [(0, 0, False, t, iou, 0.2, 0.1) for t, iou in ((0.1, 0.2), (0.3, 0.5), (0.6, 0.4))]
    rows.append((0, 1, True, 0.6, 1.0, 0.0, 0.1))  # an empty reference: left out
    ref = pd.DataFrame(rows, columns=["seed", "image", "reference_empty", "threshold", "iou",
                                      "area", "truth_area"])
    sc = ur.Scores(pd.DataFrame(), ref, pd.DataFrame(), (0.1, 0.3, 0.6))
    assert ur.argued_threshold(sc) == 0.3


# -- models and data ----------------------------------------------------------------------------------
def test_recipes_differ_only_in_the_skips():
    a, b = ur.unet_recipe("default", 1, True), ur.unet_recipe("default", 1, False)
    assert a["model_kwargs"].pop("skips") is True and b["model_kwargs"].pop("skips") is False
    assert a == b and a["data"]["seed"] == 1 and a["loss"] == "ce"
    # the same scenes as the reference network of that seed, and other scenes for another seed
    assert a["data"] == ur.reference_recipe("default", 1)["data"]
    assert a["data"] != ur.unet_recipe("default", 2, True)["data"]
    with pytest.raises(ValueError, match="profile must be one of"):
        ur.unet_recipe("huge", 0, True)
    with pytest.raises(ValueError, match="'full' profile fine-tunes ResNet50"):
        ur.reference_recipe("full", 0)


def test_scenes_have_two_objects_and_one_distractor_with_exact_masks():
    t = ur.test_set("smoke", 0, 6)
    assert t.images.shape == (6, 1, 48, 48)
    from lib.data.scenes import make_scenes
    spec = {k: v for k, v in ur.scene_data("smoke", 0).items()
            if k not in ("name", "n_train", "n_test")}
    sc = make_scenes(6, "test", **spec)
    for i in range(6):
        cls = sc.boxes[i][:, 4].tolist()
        assert cls.count(int(sc.labels[i])) == 2 and len(cls) == 3  # the label is identifiable
        # the true mask: exactly the pixels of the label's two items, none of the distractor's
        items = sc.masks(i)
        want = items[sc.boxes[i][:, 4] == sc.labels[i]].any(0)
        assert torch.equal(t.masks[i], want) and not (t.masks[i] & items[cls.index(
            next(c for c in cls if c != int(sc.labels[i])))]).any()


def test_default_models_are_committed():
    from lib.paths import MODELS_DIR
    from lib.train import MAX_COMMIT_BYTES
    for s in range(ur.SIZES["n_seeds"]["default"]):
        for skips in (True, False):
            model, hist = ur.unet_model("default", s, skips, verbose=False)
            path = Path(hist["path"])
            assert path.parent == MODELS_DIR and path.stat().st_size < MAX_COMMIT_BYTES
            assert model.skips is skips
            # the ablated decoder reads only the up-sampled features, the U-Net also the skip
            assert model.dec1[0].in_channels == (16 if skips else 8)
        _, hist = ur.reference_model("default", s, verbose=False)
        assert Path(hist["path"]).parent == MODELS_DIR


def _folder(root, n_classes=2):
    base = root / "unet_resolution"
    rng = np.random.default_rng(0)
    for k in range(n_classes):
        for split in ("train", "test"):
            p = base / split / "images" / f"c{k}" / "x.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(p)
        m = np.zeros((20, 20), np.uint8)
        m[5:10, 5:10] = 255
        p = base / "test" / "masks" / f"c{k}" / "x.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(m).save(p)
    return base


def test_full_profile_reads_the_folder(tmp_path):
    base = _folder(tmp_path, n_classes=3)
    r = ur.unet_recipe("full", 0, False, tmp_path)
    assert r["model_kwargs"]["num_classes"] == 3 and r["model_kwargs"]["in_channels"] == 3
    assert r["loss"] == "ce" and "3classes:6files" in r["data_key"]
    bundle = r["data"]()
    assert bundle.x_train.shape == (3, 3, 128, 128) and bundle.y_test.tolist() == [0, 1, 2]
    test = ur.test_set("full", 0, 2, tmp_path)
    assert test.masks.shape == (2, 128, 128) and test.images.max() <= 1
    # the mask's 5 x 5 px at 20 px is 32 x 32 px at 128 px (scale 6.4: rows 32..63)
    assert int(test.masks[0].sum()) == 32 * 32
    # a new file is new data: a new cache key
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(base / "train" / "images" / "c0" / "y.png")
    assert ur.unet_recipe("full", 0, False, tmp_path)["data_key"] != r["data_key"]


def test_full_profile_without_data_fails_at_the_start(tmp_path):
    with pytest.raises(DataMissingError, match="data_root is None"):
        ur.check_data("full", None)
    with pytest.raises(DataMissingError, match="unet_resolution"):
        ur.check_data("full", tmp_path)
    ur.check_data("default", None)  # nothing to check


# -- the pipeline against pytorch-grad-cam -----------------------------------------------------------
@pytest.mark.slow
def test_maps_equal_pytorch_grad_cam_and_dec1_is_full_resolution():
    """The reference (Grad-CAM++ of the ResNet-style network at layer4) and the U-Net's maps at
    dec1 are pytorch-grad-cam's (same post-processing, target = the scene's class); dec1's map
    has one value per input pixel (the paper's claim 1), the bottleneck's 1/8 of the side."""
    from pytorch_grad_cam import GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from lib import cam

    exp = ur.Experiment("default", 1, 3)
    sd = exp.seeds[0]
    x, y = sd.test.images[:3], sd.test.labels[:3]
    targets = [ClassifierOutputTarget(int(c)) for c in y]
    with GradCAMPlusPlus(model=sd.reference, target_layers=[sd.reference.layer4]) as g:
        want = g(x, targets=targets)
    np.testing.assert_allclose(exp.reference_maps(0, [0, 1, 2]).numpy(), want, atol=1e-4)
    unet = sd.nets["U-Net"]
    with ScoreCAM(model=unet, target_layers=[unet.dec1]) as g:
        g.batch_size = 64
        want = g(x, targets=targets)
    maps = exp.unet_maps(0, "U-Net", [0, 1, 2], layers=["dec1"], methods=["scorecam"])
    np.testing.assert_allclose(maps["scorecam"]["dec1"].numpy(), want, atol=1e-4)
    raw = cam.compute_many(unet, x, ["dec1", "bottleneck"], ["gradcam"], target=y)["gradcam"]
    assert raw["dec1"].shape[-2:] == x.shape[-2:] and raw["bottleneck"].shape[-1] == x.shape[-1] // 8


@pytest.mark.slow
def test_experiment_scores_match_the_metric_recomputed():
    """One seed, two smoke-size scenes: every s the experiment records equals mass_in_mask on the
    maps recomputed here, and the table rows cover every network, layer, method and threshold."""
    exp = ur.Experiment("default", 1, 2)
    rec = exp._score_seed(0)
    sc = ur.Scores.from_records(pd.DataFrame([{"key": "seed0", **rec}]), exp.thresholds)
    assert len(sc.scores) == 2 * 2 * 3 * 2 * len(exp.thresholds)
    maps = exp.unet_maps(0, "ablated U-Net", [0, 1], layers=["bottleneck"], methods=["gradcam++"])
    a = maps["gradcam++"]["bottleneck"]
    truth = exp.seeds[0].test.masks[:2]
    want = metrics.mass_in_mask(a, truth, empty="nan")
    got = sc.scores[(sc.scores["network"] == "ablated U-Net") & (sc.scores["layer"] == "bottleneck")
                    & (sc.scores["method"] == "gradcam++") & (sc.scores["threshold"] == 0.0)]
    np.testing.assert_allclose(got.sort_values("image")["s_true"].to_numpy(), want.numpy(),
                               rtol=1e-5)
    ref = exp.reference_maps(0, [0, 1])
    t = exp.thresholds[4]
    got_ref = sc.scores[(sc.scores["network"] == "ablated U-Net")
                        & (sc.scores["layer"] == "bottleneck") & (sc.scores["method"] == "gradcam++")
                        & np.isclose(sc.scores["threshold"], t)].sort_values("image")["s_ref"]
    np.testing.assert_allclose(got_ref.to_numpy(),
                               metrics.mass_in_mask(a, ref > t, empty="nan").numpy(), rtol=1e-5)


def test_verdict_text_names_the_methods_that_fail():
    v = ur.skips_verdict(_means({"gradcam": ([60, 62, 64], [55, 63, 58]),
                                 "gradcam++": ([70, 71, 72], [60, 70.5, 71]),
                                 "scorecam": ([51, 52, 53], [50, 49, 48])}))
    assert ur.verdict_text(v) == ("above its ablation in every seed for Grad-CAM++ and Score-CAM, "
                                  "not for Grad-CAM (2 of 3 seeds); the mean differences run "
                                  "from +3.0 to +3.8 points")
    every = ur.skips_verdict(_means({m: ([2, 3], [1, 1]) for m in ur.METHODS}))
    assert ur.verdict_text(every) == ("above its ablation in every seed for all three methods, "
                                      "by +1.5 to +1.5 points on average")


def test_closing_text_states_both_verdicts():
    vals = {(s, n, m): {0.0: 0.9, 0.5: 0.6 if n == "U-Net" else 0.5,
                        "truth": 0.3 if n == "U-Net" else 0.2} for s in range(2)
            for n in ur.NETWORKS for m in ur.METHODS}
    sc = _scores(vals)
    sc.reference = pd.DataFrame({"seed": 0, "image": 0, "reference_empty": False,
                                 "threshold": [0.0, 0.5], "iou": 0.1, "area": [0.9, 0.4],
                                 "truth_area": 0.12})
    text = ur.closing_text(sc, 0.5)
    assert text.startswith("Against the reference at t = 0.5, the U-Net is above its ablation in "
                           "every seed for all three methods, by +10.0 to +10.0 points")
    assert "holds against the truth as well as against the reference" in text
    assert text.endswith("only 30 to 30 % of their mass on the object, which covers 12 % of the "
                         "image.")
    vals[(1, "U-Net", "scorecam")]["truth"] = 0.1  # one seed against, for one method
    against = ur.Scores(_scores(vals).scores, sc.reference, sc.accuracy, sc.thresholds)
    assert "does not hold" in ur.closing_text(against, 0.5)
