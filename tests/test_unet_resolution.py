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

PAPER = (
    next(Path("/work/shared/papers").glob("004_*.txt"), None)
    if Path("/work/shared/papers").is_dir()
    else None
)


# -- the paper's numbers ----------------------------------------------------------------------------
@pytest.mark.skipif(PAPER is None, reason="the paper's text is not on this machine")
def test_table1_numbers_are_the_papers():
    text = PAPER.read_text()
    rows = {
        m.group(1).strip(): [float(v) for v in m.group(2, 3, 4)]
        for m in re.finditer(
            r"^(U-Net|Ablated U-Net)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%", text, re.M
        )
    }
    assert rows["U-Net"] == [ur.PAPER_TABLE1["U-Net"][m] for m in ur.METHODS]
    assert rows["Ablated U-Net"] == [ur.PAPER_TABLE1["ablated U-Net"][m] for m in ur.METHODS]


def test_paper_own_gaps_satisfy_the_gap_rule():
    """The paper's Table I gaps by hand (5.74 / 9.43 / 7.16 points; 12.0 / 15.0 / 11.1 %), and
    the rule this chapter applies to ours holds on the paper's own numbers: each relative gap
    lies in 10 ± 5 %."""
    g = ur.paper_gaps().set_index("method")
    assert g.loc["gradcam", "absolute"] == pytest.approx(53.55 - 47.81)
    assert g.loc["gradcam++", "relative"] == pytest.approx(100 * (72.47 / 63.04 - 1))
    assert g.loc["scorecam", "relative"] == pytest.approx(100 * (71.52 / 64.36 - 1))
    for m in ur.METHODS:
        v = ur.gap_verdict(
            [ur.PAPER_TABLE1["U-Net"][m]], [ur.PAPER_TABLE1["ablated U-Net"][m]], m, unit=None
        )
        assert v.outcome == "holds", (m, v)
        assert v.low == v.high == v.estimate  # one exact number: nothing sampled


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
    np.testing.assert_allclose(
        sc["s_true"].numpy(), (maps * truth).sum((1, 2)) / maps.sum((1, 2)), rtol=1e-5
    )


# -- verdicts on hand-made scores ---------------------------------------------------------------------
def _many(values, thresholds=(0.0, 0.5)):
    """A Scores from per-scene values: ``values[(seed, network, layer, method)] = {t: [s per
    scene], "truth": [...], "correct": [...]}`` (s as shares; NaN = an empty map); the reference
    table has one row per (seed, scene, threshold) with ``area`` 0.4 at every threshold."""
    rows, ref = [], set()
    for (seed, net, lay, m), v in values.items():
        n = len(v["truth"])
        for t in thresholds:
            for i in range(n):
                s_ref = v[t][i]
                rows.append(
                    (
                        seed,
                        net,
                        lay,
                        m,
                        i,
                        bool(np.isnan(s_ref)),
                        v.get("correct", [True] * n)[i],
                        t,
                        s_ref,
                        v["truth"][i],
                        v.get("other", [np.nan] * n)[i],
                    )
                )
                ref.add((seed, i, t))
    sc = pd.DataFrame(rows, columns=list(ur.SCORE_COLUMNS))
    reference = pd.DataFrame(
        [(s, i, False, t, 0.2, 0.4, 0.1, 0.1) for s, i, t in sorted(ref)],
        columns=list(ur.REFERENCE_COLUMNS),
    )
    return ur.Scores(sc, reference, pd.DataFrame(), tuple(thresholds))


RNG = np.random.default_rng(0)
BASE = RNG.uniform(0.3, 0.6, 10)  # ten scenes per seed
NOISE = RNG.normal(0, 0.05, 10)
NOISE -= NOISE.mean()  # a paired difference of mean 0, spread ~5 points


def _two_networks(u_minus_a, seeds=(0, 1), layer="dec1", methods=ur.METHODS, truth=None):
    """Both networks on the same scenes: the ablated U-Net scores BASE, the U-Net BASE +
    ``u_minus_a[method]`` (an array per scene), at every threshold and against the truth."""
    vals = {}
    for s in seeds:
        for m in methods:
            d = np.asarray(u_minus_a[m], dtype=float)
            for net, x in (("U-Net", BASE + d), ("ablated U-Net", BASE)):
                t = x if truth is None else truth[m][net]
                vals[(s, net, layer, m)] = {0.0: list(x), 0.5: list(x), "truth": list(t)}
    return vals


def test_skips_verdict_pairs_scenes_and_gives_each_outcome():
    """+10 points on every scene but one: holds; −10: does not hold; noise around zero:
    undecided. The difference is in points, the means over the pairs."""
    diffs = {
        "gradcam": 0.1 + 0.01 * RNG.normal(size=10),
        "gradcam++": -0.1 + 0 * NOISE,
        "scorecam": NOISE,
    }
    sc = _many(_two_networks(diffs))
    v = ur.skips_verdict(sc, "reference", 0.5).set_index("method")
    assert v["outcome"].tolist() == ["holds", "does not hold", "undecided"]
    assert v.loc["gradcam++", "difference"] == pytest.approx(-10.0)
    assert v.loc["scorecam", "difference"] == pytest.approx(100 * NOISE.mean())
    assert v.loc["gradcam", "U-Net"] == pytest.approx(100 * np.mean(BASE + diffs["gradcam"]))
    assert (v["pairs"] == 20).all() and (v["left out"] == 0).all()
    assert v.loc["gradcam", "seeds U-Net higher"] == "2 of 2"
    assert v.loc["gradcam", "verdict"].method.startswith(
        "paired bootstrap over 20 (seed, scene) pairs"
    )
    f = ur.verdict_facts(v.reset_index())
    assert (f["holds"], f["fails"], f["undecided"], f["no_pair"]) == (
        ["Grad-CAM"],
        ["Grad-CAM++"],
        ["Score-CAM"],
        [],
    )
    assert not f["every"]
    assert f["low"] == pytest.approx(-10.0)  # Grad-CAM++: -10 points on every scene
    assert f["high"] == pytest.approx(100 * np.mean(diffs["gradcam"]))  # above the noise's ~0


def test_scene_pairs_leave_out_empty_maps_and_count_them():
    vals = _two_networks({m: np.full(10, 0.1) for m in ur.METHODS}, seeds=(0,))
    vals[(0, "U-Net", "dec1", "gradcam")][0.5][3] = np.nan  # an empty map: no s
    p = ur.scene_pairs(_many(vals), "gradcam", "reference", 0.5)
    assert len(p) == 9 and p.attrs["left out"] == 1 and 3 not in set(p["image"])
    assert p["a"].to_numpy() == pytest.approx(100 * (BASE + 0.1)[[0, 1, 2, 4, 5, 6, 7, 8, 9]])
    with pytest.raises(ValueError, match="give the reference threshold"):
        ur.scene_pairs(_many(vals), "gradcam", "reference")


def test_paired_verdict_with_one_pair_or_none():
    assert ur.paired_verdict([], [], rule="r") is None
    one = ur.paired_verdict([0.9], [0.1], rule="r")  # one scene cannot decide
    assert one.outcome == "undecided" and "sign test" in one.method
    few = ur.paired_verdict([0.9, 0.8, 0.7], [0.1, 0.2, 0.1], rule="r")  # < 6 pairs: undecided
    assert few.outcome == "undecided" and few.low > 0
    same = ur.paired_verdict([0.5, 0.6] * 3, [0.5, 0.6] * 3, rule="r")  # no difference at all
    assert same.outcome == "does not hold" and same.estimate == 0


def test_gap_rule_on_the_relative_gap_and_the_floor():
    """s_A = BASE, s_U = 1.1 BASE (+10 %): inside 10 ± 5 %; 1.3 BASE: outside; the relative gap
    by hand; the floor is the reference's area (40 %), the normalised gap (s − 40) / 60."""
    assert ur.relative_gap([66, 54], [60, 50]) == pytest.approx(100 * (60 / 55 - 1))
    noisy = 1 + 0.1 + 0.02 * RNG.normal(size=10)
    u = {"gradcam": BASE * noisy, "gradcam++": BASE * 1.3, "scorecam": BASE * (1.15 + 2 * NOISE)}
    vals = {}
    for s in (0, 1):
        for m in ur.METHODS:
            for net, x in (("U-Net", u[m]), ("ablated U-Net", BASE)):
                vals[(s, net, "dec1", m)] = {0.0: list(x), 0.5: list(x), "truth": list(x)}
    g = ur.gap_table(_many(vals), 0.5).set_index("method")
    assert g.loc["gradcam++", "relative gap (%)"] == pytest.approx(30.0)
    assert g["outcome"].tolist() == ["holds", "does not hold", "undecided"]
    assert g.loc["gradcam", "floor"] == pytest.approx(40.0)
    want = 100 * np.mean((u["gradcam++"] - BASE) / 0.6)
    assert g.loc["gradcam++", "normalised gap"] == pytest.approx(want)
    assert g.loc["gradcam", "paper relative (%)"] == pytest.approx(100 * (53.55 / 47.81 - 1))
    f = ur.gap_facts(g.reset_index())
    assert f["high"] == pytest.approx(30.0)  # Grad-CAM++: 1.3 BASE against BASE
    assert f["low"] == pytest.approx(g["relative gap (%)"].min()) and 5 < f["low"] < 20
    assert f["paper_low"] == pytest.approx(100 * (71.52 / 64.36 - 1))  # Score-CAM's 11.1 %
    assert f["paper_high"] == pytest.approx(100 * (72.47 / 63.04 - 1))  # Grad-CAM++'s 15.0 %
    assert (f["band_low"], f["band_high"]) == (5.0, 15.0)
    assert f["undefined"] == [] and f["outcome"] == "does not hold"
    assert f["fails"] == ["Grad-CAM++"] and f["side"] == "above"  # 30 % > 15 %
    one = ur.gap_verdict([0.9], [0.5], "gradcam")  # a single scene of data: undecided
    assert one.outcome == "undecided"
    few = {k: {t: x[:3] for t, x in v.items()} for k, v in vals.items() if k[0] == 0}
    g = ur.gap_table(_many(few), 0.5).set_index("method")  # 3 scenes: too few to decide
    assert (g["outcome"] == "undecided").all() and (g["95 % interval"] == "—").all()
    assert g.loc["gradcam++", "relative gap (%)"] == pytest.approx(30.0)  # the data's, shown


def test_gap_with_an_ablated_score_of_zero_is_undecided_and_said():
    """The ablated network's maps all outside the reference (s_A = 0 on every pair, as random
    weights can give): the relative gap has no base, so its rule is undecided with the reason
    stated, never an infinity, a NaN verdict or a crash; the other methods keep theirs, and
    the combined claim is undecided."""
    with pytest.raises(ValueError, match="mean s_A = 0 over 3"):
        ur.relative_gap([0.2, 0.1, 0.3], [0.0, 0.0, 0.0])
    for n in (1, 3, 8):  # the sign test's branch, the bootstrap's, and one exact number
        v = ur.gap_verdict(np.full(n, 0.2), np.zeros(n), "gradcam")
        assert v.outcome == "undecided" and v.unmeasured, (n, v)
        assert f"mean s_A = 0 over {n} (seed, scene) pairs" in v.method
        assert (v.boundary, v.tolerance) == (ur.PAPER_GAP, ur.GAP_TOLERANCE)
    vals = _two_networks({m: np.full(10, 0.1 * BASE) for m in ur.METHODS}, seeds=(0,))
    for t in (0.0, 0.5):  # Grad-CAM's ablated maps score 0 against the reference
        vals[(0, "ablated U-Net", "dec1", "gradcam")][t] = [0.0] * 10
    g = ur.gap_table(_many(vals), 0.5).set_index("method")
    assert np.isnan(g.loc["gradcam", "relative gap (%)"])
    assert g.loc["gradcam", "outcome"] == "undecided" and g.loc["gradcam", "95 % interval"] == "—"
    assert g.loc["gradcam++", "relative gap (%)"] == pytest.approx(10.0)  # +10 % on every scene
    assert g.loc["gradcam++", "outcome"] == "holds"
    f = ur.gap_facts(g.reset_index())
    assert f["undefined"] == ["Grad-CAM"]  # worded by the chapter as undecided, with the reason
    assert f["low"] == pytest.approx(10.0) and f["high"] == pytest.approx(10.0)  # the others'
    assert f["outcome"] == "undecided" and f["fails"] == []
    every = g.reset_index().assign(**{"relative gap (%)": np.nan, "outcome": "undecided"})
    f = ur.gap_facts(every)  # undefined for every method: no range, never a NaN
    assert f["low"] is None and f["high"] is None and len(f["undefined"]) == 3
    name, combined = ur.verdict.all_of(dict(zip(g.index, g["verdict"])), "every method")
    assert combined.outcome == "undecided"


def _scores(values, thresholds=(0.0, 0.5)):
    """A Scores with two images per (seed, network, method), layer dec1: the first image's s is
    ``values`` at every threshold, the second image's map is empty (NaN)."""
    rows = []
    for (seed, net, m), v in values.items():
        for t in thresholds:
            rows.append(
                (
                    seed,
                    net,
                    "dec1",
                    m,
                    0,
                    False,
                    v.get("correct", True),
                    t,
                    v[t],
                    v["truth"],
                    v.get("other"),
                )
            )
            rows.append((seed, net, "dec1", m, 1, True, True, t, np.nan, np.nan, np.nan))
    sc = pd.DataFrame(rows, columns=list(ur.SCORE_COLUMNS))
    return ur.Scores(sc, pd.DataFrame(), pd.DataFrame(), tuple(thresholds))


def test_seed_means_leave_empty_maps_out_and_count_them():
    vals = {
        (0, n, m): {0.0: 0.9, 0.5: 0.6 if n == "U-Net" else 0.4, "truth": 0.3}
        for n in ur.NETWORKS
        for m in ur.METHODS
    }
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
    vals = {
        (0, n, m): {
            0.0: 0.5,
            0.5: 0.5,
            "truth": 0.3 if n == "U-Net" else 0.2,
            "other": 0.1 if n == "U-Net" else 0.2,
        }
        for n in ur.NETWORKS
        for m in ur.METHODS
    }
    sc = _scores(vals)
    sc.scores = pd.concat([sc.scores, sc.scores.assign(layer="bottleneck")])  # same numbers
    t = ur.selectivity_table(sc)
    row = t[
        (t["layer"] == ur.LAYERS["dec1"]) & (t["network"] == "U-Net") & (t["method"] == "Grad-CAM")
    ].iloc[0]
    assert row["on the object"] == pytest.approx(30) and row["object's share"] == pytest.approx(75)
    assert (t[t["network"] == "ablated U-Net"]["object's share"] == 50).all()
    sc.reference = pd.DataFrame(
        {"threshold": [0.0, 0.0, 0.5], "truth_area": [0.2, 0.1, 0.2], "other_area": [0.1, 0.1, 0.1]}
    )
    assert ur.class_blind_share(sc) == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    sc.reference["other_area"] = np.nan
    assert ur.class_blind_share(sc) is None


def test_sweep_verdict_names_the_thresholds_where_it_fails():
    """One scene per seed and six seeds, the same value in each: no spread, so each threshold's
    verdict is the point: above at t = 0, below at t = 0.5."""
    vals = {
        (s, n, m): {0.0: 0.5 + 0.1 * (n == "U-Net"), 0.5: 0.5 - 0.1 * (n == "U-Net"), "truth": 0.3}
        for s in range(6)
        for n in ur.NETWORKS
        for m in ur.METHODS
    }
    v = ur.sweep_verdict(_scores(vals))
    assert (v["holds"] == 1).all() and (v["does not hold"] == 1).all()
    assert (v["undecided"] == 0).all() and (v["not holding at"] == "0.5").all()


def test_sweep_facts_name_the_failing_thresholds_and_their_area():
    vals = {
        (s, n, m): {0.0: 0.5 - 0.1 * (n == "U-Net"), 0.5: 0.5 + 0.1 * (n == "U-Net"), "truth": 0.3}
        for s in range(6)
        for n in ur.NETWORKS
        for m in ur.METHODS
    }
    sc = _scores(vals)
    sc.reference = pd.DataFrame(
        {
            "seed": 0,
            "image": 0,
            "reference_empty": False,
            "threshold": [0.0, 0.5],
            "iou": 0.1,
            "area": [0.96, 0.3],
            "truth_area": 0.1,
        }
    )
    off = ur.sweep_not_holding(sc)
    assert off.to_dict("records") == [
        {"outcome": "does not hold", "threshold": 0.0, "reference area (%)": pytest.approx(96.0)}
    ]
    up = _scores({k: {**v, 0.0: v[0.5]} for k, v in vals.items()})  # U-Net +10 points at both
    up.reference = sc.reference
    assert ur.sweep_not_holding(up).empty


def test_subset_of_images_both_networks_classify_correctly():
    """Seed 0: image 0 wrong for the ablated U-Net, so only image 1 (an empty map) is kept; seed
    1: image 0 right for both. The subset's pairs come from the kept images only: one pair,
    which cannot decide."""
    vals = {
        (s, n, m): {
            0.0: 0.5,
            0.5: 0.6 if n == "U-Net" else 0.4,
            "truth": 0.35 if n == "U-Net" else 0.3,
            "correct": not (s == 0 and n == "ablated U-Net"),
        }
        for s in range(2)
        for n in ur.NETWORKS
        for m in ur.METHODS
    }
    sc = _scores(vals)
    kept = ur.both_correct(sc)
    assert sorted(map(tuple, kept.to_numpy().tolist())) == [(0, 1), (1, 0), (1, 1)]
    counts = ur.correct_subset_counts(sc)
    assert counts.to_dict("list") == {"seed": [0, 1], "kept": [1, 2], "explained": [2, 2]}
    means = ur.seed_means(sc, "reference", 0.5, subset="both correct")
    assert means["seed"].tolist().count(0) == 6 and means[means["seed"] == 0]["s"].isna().all()
    t = ur.correct_subset_table(sc, 0.5)
    assert set(t["pairs"]) == {1} and set(t["outcome"]) == {"undecided"}
    with pytest.raises(ValueError, match="subset must be"):
        ur.seed_means(sc, "truth", subset="some")


def test_argued_threshold_maximises_iou_of_non_empty_references():
    rows = [(0, 0, False, t, iou, 0.2, 0.1) for t, iou in ((0.1, 0.2), (0.3, 0.5), (0.6, 0.4))]
    rows.append((0, 1, True, 0.6, 1.0, 0.0, 0.1))  # an empty reference: left out
    ref = pd.DataFrame(
        rows, columns=["seed", "image", "reference_empty", "threshold", "iou", "area", "truth_area"]
    )
    sc = ur.Scores(pd.DataFrame(), ref, pd.DataFrame(), (0.1, 0.3, 0.6))
    assert ur.argued_threshold(sc) == 0.3


# -- models and data ----------------------------------------------------------------------------------
def test_scene_facts_are_the_profiles_sizes():
    """The default's scenes: 48 px, two items of the class and one distractor, 30-40 % of the
    side, 3000 training and 300 test scenes per seed; the full profile names its folder."""
    assert ur.scene_facts("default") == {
        "size": 48,
        "n_objects": 2,
        "n_distractors": 1,
        "scale_low": pytest.approx(30.0),
        "scale_high": pytest.approx(40.0),
        "n_train": 3000,
        "n_test": 300,
    }
    assert ur.scene_facts("smoke")["n_train"] == 64
    with pytest.raises(ValueError, match="profile must be 'smoke', 'default' or 'full'"):
        ur.scene_facts("fast")


def test_recipes_differ_only_in_the_skips():
    a, b = ur.unet_recipe("default", 1, True), ur.unet_recipe("default", 1, False)
    assert a.model_kwargs.pop("skips") is True and b.model_kwargs.pop("skips") is False
    assert a == b and a.data["seed"] == 1 and a.loss == "ce"
    # the same scenes as the reference network of that seed, and other scenes for another seed
    assert a.data == ur.reference_recipe("default", 1).data
    assert a.data != ur.unet_recipe("default", 2, True).data
    with pytest.raises(ValueError, match="profile must be one of"):
        ur.unet_recipe("huge", 0, True)
    with pytest.raises(ValueError, match="'full' profile fine-tunes ResNet50"):
        ur.reference_recipe("full", 0)


def test_scenes_have_two_objects_and_one_distractor_with_exact_masks():
    t = ur.test_set("smoke", 0, 6)
    assert t.images.shape == (6, 1, 48, 48)
    from lib.data.scenes import make_scenes

    spec = {
        k: v for k, v in ur.scene_data("smoke", 0).items() if k not in ("name", "n_train", "n_test")
    }
    sc = make_scenes(6, "test", **spec)
    for i in range(6):
        cls = sc.boxes[i][:, 4].tolist()
        assert cls.count(int(sc.labels[i])) == 2 and len(cls) == 3  # the label is identifiable
        # the true mask: exactly the pixels of the label's two items, none of the distractor's
        items = sc.masks(i)
        want = items[sc.boxes[i][:, 4] == sc.labels[i]].any(0)
        assert (
            torch.equal(t.masks[i], want)
            and not (
                t.masks[i] & items[cls.index(next(c for c in cls if c != int(sc.labels[i])))]
            ).any()
        )


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
    assert r.model_kwargs["num_classes"] == 3 and r.model_kwargs["in_channels"] == 3
    assert r.loss == "ce" and "3classes:6files" in r.data_key
    bundle = r.data()
    assert bundle.x_train.shape == (3, 3, 128, 128) and bundle.y_test.tolist() == [0, 1, 2]
    test = ur.test_set("full", 0, 2, tmp_path)
    assert test.masks.shape == (2, 128, 128) and test.images.max() <= 1
    # the mask's 5 x 5 px at 20 px is 32 x 32 px at 128 px (scale 6.4: rows 32..63)
    assert int(test.masks[0].sum()) == 32 * 32
    # a new file is new data: a new cache key
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(
        base / "train" / "images" / "c0" / "y.png"
    )
    assert ur.unet_recipe("full", 0, False, tmp_path).data_key != r.data_key


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
    assert (
        raw["dec1"].shape[-2:] == x.shape[-2:] and raw["bottleneck"].shape[-1] == x.shape[-1] // 8
    )


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
    got = sc.scores[
        (sc.scores["network"] == "ablated U-Net")
        & (sc.scores["layer"] == "bottleneck")
        & (sc.scores["method"] == "gradcam++")
        & (sc.scores["threshold"] == 0.0)
    ]
    np.testing.assert_allclose(
        got.sort_values("image")["s_true"].to_numpy(), want.numpy(), rtol=1e-5
    )
    ref = exp.reference_maps(0, [0, 1])
    t = exp.thresholds[4]
    got_ref = sc.scores[
        (sc.scores["network"] == "ablated U-Net")
        & (sc.scores["layer"] == "bottleneck")
        & (sc.scores["method"] == "gradcam++")
        & np.isclose(sc.scores["threshold"], t)
    ].sort_values("image")["s_ref"]
    np.testing.assert_allclose(
        got_ref.to_numpy(), metrics.mass_in_mask(a, ref > t, empty="nan").numpy(), rtol=1e-5
    )


def test_verdict_facts_when_every_method_holds_or_none_does():
    every = ur.skips_verdict(
        _many(_two_networks({m: np.full(10, 0.015) for m in ur.METHODS})), "truth"
    )
    f = ur.verdict_facts(every)
    assert f["every"] and f["holds"] == ["Grad-CAM", "Grad-CAM++", "Score-CAM"]
    assert f["low"] == pytest.approx(1.5) and f["high"] == pytest.approx(1.5)  # +0.015 a scene
    none = ur.skips_verdict(_many(_two_networks({m: NOISE for m in ur.METHODS})), "truth")
    f = ur.verdict_facts(none)
    assert not f["every"] and f["holds"] == [] and len(f["undecided"]) == 3
    assert f["low"] == pytest.approx(0.0, abs=1e-9)  # the same noise, of mean 0, every method


def test_closing_facts_and_claim_rows_follow_the_outcomes():
    vals = _two_networks({m: np.full(10, 0.1) for m in ur.METHODS})
    for (s, net, lay, m), v in list(vals.items()):  # the bottleneck: lower, for the U-Net
        vals[(s, net, "bottleneck", m)] = {
            t: list(np.asarray(x) - 0.05 * (net == "U-Net")) if t != "correct" else x
            for t, x in v.items()
        }
    sc = _many(vals)
    tables = ur.verdicts(sc, 0.5)
    assert ur.skips_outcome(tables) == "holds"  # +10 points on every scene, both references
    f = ur.verdict_facts(tables["reference"])
    assert f["every"] and f["low"] == pytest.approx(10.0) and f["high"] == pytest.approx(10.0)
    assert ur.verdict_facts(tables["layers"])["low"] == pytest.approx(5.0)  # dec1 − bottleneck
    # the level: the U-Net's mean s on the object, against the object's area (10 % here)
    assert tables["truth"]["U-Net"].to_numpy() == pytest.approx(100 * np.mean(BASE + 0.1))
    assert ur.uniform_baseline(sc, 0.5)["truth"] == pytest.approx(10.0)
    assert ur.verdict_facts(tables["subset"])["every"]  # every scene classified correctly
    rows = {
        r["claim_id"]: r
        for r in ur.claim_rows(sc, 0.5, {"input": (48, 48), "dec1": (48, 48), "bottleneck": (6, 6)})
    }
    assert rows["resolution"]["kind"] == "check" and "tier" not in rows["resolution"]
    assert rows["resolution"]["verdict"].outcome == "holds"
    assert all(
        r["kind"] == "paper" and r["tier"] == "stand-in"
        for k, r in rows.items()
        if k != "resolution"
    )
    assert rows["table1-gradcam"]["verdict"].outcome == "holds"
    assert rows["resolution-helps"]["verdict"].outcome == "holds"
    assert rows["resolution-helps"]["verdict"].estimate == pytest.approx(5.0)
    bad = ur.claim_rows(sc, 0.5, {"input": (48, 48), "dec1": (47, 48), "bottleneck": (6, 6)})[0]
    assert bad["verdict"].outcome == "does not hold" and bad["verdict"].estimate == 1
    for s in (0, 1):  # Score-CAM against the truth: the U-Net 20 points below on every scene
        vals[(s, "U-Net", "dec1", "scorecam")]["truth"] = list(BASE - 0.2)
    against = _many(vals)
    assert ur.skips_outcome(ur.verdicts(against, 0.5)) == "does not hold"
    noisy = dict(vals)
    for s in (0, 1):  # Score-CAM against the truth: noise around 0, the others still +10
        noisy[(s, "U-Net", "dec1", "scorecam")] = {
            **vals[(s, "U-Net", "dec1", "scorecam")],
            "truth": list(BASE + NOISE),
        }
    assert ur.skips_outcome(ur.verdicts(_many(noisy), 0.5)) == "undecided"
    rows = {
        r["claim_id"]: r
        for r in ur.claim_rows(
            against, 0.5, {"input": (48, 48), "dec1": (48, 48), "bottleneck": (6, 6)}
        )
    }
    assert rows["truth-scorecam"]["verdict"].outcome == "does not hold"
    assert rows["truth-gradcam"]["verdict"].outcome == "holds"


def test_claims_with_an_empty_map_on_every_scene_are_undecided_and_said():
    """The ablated U-Net's Grad-CAM maps empty on every scene (an untrained network gives them):
    no pair for Grad-CAM, so its claims are undecided with the reason and the count stated, the
    other methods keep their verdicts, and nothing prints "nan" (it raised before)."""
    vals = _two_networks({m: np.full(10, 0.1) for m in ur.METHODS})
    for (s, net, lay, m), v in list(vals.items()):
        vals[(s, net, "bottleneck", m)] = {t: list(np.asarray(x) - 0.05) for t, x in v.items()}
        if net == "ablated U-Net" and m == "gradcam":
            for key in (0.0, 0.5, "truth"):
                v[key] = [np.nan] * 10  # an empty map: no s
    sc = _many(vals)
    rows = {
        r["claim_id"]: r
        for r in ur.claim_rows(sc, 0.5, {"input": (48, 48), "dec1": (48, 48), "bottleneck": (6, 6)})
    }
    for cid in ("table1-gradcam", "truth-gradcam"):
        v = rows[cid]["verdict"]
        assert v.outcome == "undecided" and v.unmeasured and v.boundary == 0.0, cid
        assert v.method == (
            "no (seed, scene) pair has both maps non-empty (20 left out for an empty map)"
        )
        assert rows[cid]["ours"] == "no pair"
    assert rows["table1-gradcam++"]["verdict"].outcome == "holds"
    assert rows["table1-gradcam++"]["ours"] == f"{100 * np.mean(BASE + 0.1):.1f} vs " + (
        f"{100 * np.mean(BASE):.1f}"
    )
    gap = rows["table1-gap"]
    assert gap["verdict"].outcome == "does not hold"  # the others' +10 points: over +15 %
    assert gap["ours"].startswith("Grad-CAM undefined (mean s_A = 0 or no pair), Grad-CAM++ ")
    assert rows["resolution-helps"]["verdict"].outcome == "holds"  # the U-Net's own maps
    assert rows["every-threshold"]["ours"].endswith("reversed at 0, no pair at 2")
    assert "nan" not in " ".join(str(r["ours"]) for r in rows.values())


def test_model_descriptions_follow_the_profile_by_hand():
    # default: base 8, depth 3 -> 8..64 channels; 48 px in, 48 / 2**3 = 6 at the bottleneck
    d = ur.model_descriptions("default")
    assert "8 to 64 channels, 48 px in" in d["unet"] and "6 × 6 at the bottleneck" in d["unet"]
    assert "standing in for the paper's ResNet50" in d["reference"]
    assert "layer4 3 × 3 at 48 px" in d["reference"]  # 48 / 16
    # full: base 16, depth 4 -> 16..256; 128 px, 128 / 16 = 8; ResNet50's layer4 at 128 / 32 = 4
    f = ur.model_descriptions("full")
    assert "16 to 256 channels, 128 px in" in f["unet"] and "8 × 8 at the bottleneck" in f["unet"]
    assert (
        "ResNet50 from its ImageNet weights" in f["reference"]
        and "4 × 4 at 128 px" in f["reference"]
    )
    with pytest.raises(ValueError, match="profile"):
        ur.model_descriptions("huge")
