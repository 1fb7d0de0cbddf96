"""Chapter "Sanity checks" (lib.chapters.sanity_checks): the randomisations on hand-made models
(which parameters change and which do not, cascading against independent), the similarity
measures against SciPy and scikit-image on known inputs, the blocks of every model the chapter
runs, the verdict rules, and the oracle: Quantus's MPRT on a small trained network."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from skimage.feature import hog
from skimage.metrics import structural_similarity
from torch import nn

from lib import verdict as V
from lib.chapters import sanity_checks as sc

SIZES = {k: v["smoke"] for k, v in sc.SIZES.items()}


class Tiny(nn.Module):
    """conv -> batch norm -> ReLU -> GAP -> linear, with every parameter set to a value that no
    initialisation draws (so that a re-initialised parameter is seen to change)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            for i, p in enumerate(self.parameters()):
                p.fill_(7.0 + i)
            self.bn1.running_mean.fill_(0.25)
            self.bn1.running_var.fill_(4.0)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.relu(self.bn1(self.conv1(x))))))


BLOCKS = {"logits": ("fc",), "norm": ("bn1",), "conv": ("conv1",)}
PARAMS = {
    "logits": {"fc.weight", "fc.bias"},
    "norm": {"bn1.weight", "bn1.bias"},
    "conv": {"conv1.weight", "conv1.bias"},
}


# ------------------------------------------------------------------------------------------
# Randomisation
# ------------------------------------------------------------------------------------------


def test_cascading_re_initialises_the_blocks_so_far_and_nothing_else():
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    for (label, m), want in zip(
        sc.cascading(model, BLOCKS, seed=3),
        [
            PARAMS["logits"],
            PARAMS["logits"] | PARAMS["norm"],
            PARAMS["logits"] | PARAMS["norm"] | PARAMS["conv"],
        ],
    ):
        seen.append(label)
        assert set(sc.changed_parameters(model, m)) == want, label
        assert not m.training
    assert seen == ["logits", "norm", "conv"]
    # the trained model is never touched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_independent_re_initialises_one_block_with_the_cascades_weights():
    model = Tiny()
    casc = dict(sc.cascading(model, BLOCKS, seed=3))
    for label, m in sc.independent(model, BLOCKS, seed=3):
        assert set(sc.changed_parameters(model, m)) == PARAMS[label]
        # the same seed for every block: a block gets the same random weights alone as in the
        # cascade
        for name in PARAMS[label]:
            assert torch.equal(
                dict(m.named_parameters())[name], dict(casc[label].named_parameters())[name]
            )


def test_reinitialise_is_pytorchs_default_initialisation_after_the_seed():
    model = Tiny()
    sc.reinitialise(model, ["fc"], seed=11)
    torch.manual_seed(11)
    fresh = nn.Linear(4, 3)  # nn.Linear's constructor calls reset_parameters()
    assert torch.equal(model.fc.weight, fresh.weight) and torch.equal(model.fc.bias, fresh.bias)
    other = Tiny()
    sc.reinitialise(other, ["fc"], seed=12)
    assert not torch.equal(other.fc.weight, model.fc.weight)


def test_reinitialise_leaves_the_callers_random_state_alone():
    model = Tiny()  # building a model draws from the generator: before taking its state
    torch.manual_seed(5)
    state = torch.get_rng_state()
    sc.reinitialise(model, ["conv1", "fc"], seed=0)
    assert torch.equal(torch.get_rng_state(), state)


def test_batch_norm_statistics_reset_or_kept():
    reset, kept = Tiny(), Tiny()
    sc.reinitialise(reset, ["bn1"], seed=0)
    sc.reinitialise(kept, ["bn1"], seed=0, buffers=False)
    assert torch.equal(reset.bn1.running_mean, torch.zeros(4))
    assert torch.equal(reset.bn1.running_var, torch.ones(4))
    assert torch.equal(kept.bn1.running_mean, torch.full((4,), 0.25))
    assert torch.equal(kept.bn1.running_var, torch.full((4,), 4.0))
    # the affine parameters are reset either way (batch norm's default: weight 1, bias 0)
    for m in (reset, kept):
        assert torch.equal(m.bn1.weight, torch.ones(4)) and torch.equal(m.bn1.bias, torch.zeros(4))


def test_a_parameter_without_reset_parameters_is_refused():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(3))

    model = nn.Sequential(nn.Linear(3, 3), Scale())
    with pytest.raises(ValueError, match="gamma"):
        sc.reinitialise(model, ["1"], seed=0)
    sc.reinitialise(model, ["0"], seed=0)  # a plain layer is fine


def test_block_spellings():
    assert sc.normalise_blocks(["fc", ("conv1", "bn1")]) == [
        ("fc", ("fc",)),
        ("conv1+bn1", ("conv1", "bn1")),
    ]
    assert sc.normalise_blocks({"head": "fc"}) == [("head", ("fc",))]
    items = sc.normalise_blocks(BLOCKS)
    assert sc.normalise_blocks(items) == items
    with pytest.raises(ValueError):
        sc.normalise_blocks([])
    assert sc.top_block_label(BLOCKS, 2) == "norm" and sc.full_block_label(BLOCKS) == "conv"


def _partition(model, blocks):
    """Every parameter of ``model`` in exactly one block."""
    owned = []
    for _, names in sc.normalise_blocks(blocks):
        for n in names:
            owned += [f"{n}.{k}" for k, _ in sc.resolve_layer(model, n).named_parameters()]
    return sorted(owned) == sorted(k for k, _ in model.named_parameters())


def test_the_chapters_blocks_cover_every_parameter_once():
    """So that the last step of the cascade is a fully random network."""
    from lib.chapters import gradcam_localization as gl
    from lib.models.pretrained import efficientnet_lite0
    from lib.models.small import MnistNet
    from lib.models.zoo import build, small_vgg

    assert _partition(efficientnet_lite0(pretrained=False), sc.LITE0_BLOCKS)
    kwargs = gl.STAND_INS[sc.STAND_IN][1]
    assert _partition(small_vgg(**kwargs), sc.STAND_IN_BLOCKS)
    assert sc.stand_in_layer() == gl.STAND_INS[sc.STAND_IN][2]
    assert _partition(MnistNet(), sc.DATA_BLOCKS)
    with torch.device("meta"):
        for arch in sc.IMAGENET_LAYERS:
            m = build(arch)
            assert _partition(m, sc.imagenet_blocks(arch, m)), arch
    assert list(sc.LITE0_BLOCKS)[:2] == ["logits", "head"]


def test_run_randomisation_records_the_scope_and_the_steps():
    torch.manual_seed(0)
    model = Tiny()
    with torch.no_grad():  # a model whose maps are not all constant
        for p in model.parameters():
            p.normal_()
    x = torch.rand(3, 1, 12, 12)
    r = sc.run_randomisation(
        model,
        x,
        "relu",
        BLOCKS,
        ["gradient", "gradcam"],
        SIZES,
        seed=1,
        measures=("spearman_abs", "spearman"),
        keep=[1],
    )
    assert r.steps == ["trained", "logits", "norm", "conv"]
    assert set(r.scores["order"]) == {"cascading", "independent"}
    assert len(r.scores) == 2 * 3 * 2 * 3  # orders x steps x methods x images
    assert (r.scope[["changed outside", "unchanged inside"]].to_numpy() == 0).all()
    assert sc.scope_check(r.scope).outcome == V.HOLDS
    assert r.maps["conv"]["gradcam"].shape == (1, 12, 12)
    bad = r.scope.assign(**{"changed outside": [0, 1] + [0] * (len(r.scope) - 2)})
    assert sc.scope_check(bad).outcome == V.FAILS


# ------------------------------------------------------------------------------------------
# Maps
# ------------------------------------------------------------------------------------------


def test_input_gradient_of_a_linear_model_is_its_weight_row():
    lin = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))
    x = torch.rand(2, 2, 2, 2)
    g = sc.input_gradient(lin, x, [1, 2])
    assert torch.allclose(g[0].flatten(), lin[1].weight[1])
    assert torch.allclose(g[1].flatten(), lin[1].weight[2])


def test_comparable_upsamples_layer_maps_and_sums_channels():
    layer = torch.tensor([[[1.0, -1.0], [2.0, 0.0]]])
    up = sc.comparable(layer, (4, 4))
    ref = (
        torch.nn.functional.interpolate(
            layer[:, None], size=(4, 4), mode="bilinear", align_corners=False
        )[:, 0]
        .double()
        .numpy()
    )
    assert up.shape == (1, 4, 4) and np.allclose(up, ref)
    attr = torch.arange(24.0).view(1, 3, 2, 4) - 10
    assert np.array_equal(sc.comparable(attr, (2, 4)), attr.sum(1).double().numpy())
    with pytest.raises(ValueError):
        sc.comparable(torch.zeros(3), (2, 2))


def test_methods_for_drops_cam_without_a_gap_head():
    from lib.models.small import MnistNet, gap_net

    x = torch.rand(2, 1, 28, 28)
    assert "cam" not in sc.methods_for(MnistNet().eval(), x, "relu1", False)
    gap = gap_net(channels=(4, 8)).eval()
    got = sc.methods_for(gap, x, gap.target_layer, True)
    assert "cam" in got and got[-3:] == sc.EXPENSIVE
    assert sc.methods_for(gap, x, gap.target_layer, True, ["gradient"]) == ["gradient"]
    with pytest.raises(ValueError, match="unknown"):
        sc.methods_for(gap, x, gap.target_layer, True, ["saliency"])


# ------------------------------------------------------------------------------------------
# Similarity measures
# ------------------------------------------------------------------------------------------


def test_spearman_by_hand():
    # ranks 1 2 3 4 against 1 3 2 4: sum d^2 = 2, rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert sc.spearman(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])) == pytest.approx(0.8)
    # absolute values: |-4, 1, 2, 3| ranks 4 1 2 3 against 1 2 3 4: sum d^2 = 12, rho = -0.2
    a, b = np.array([-4.0, 1, 2, 3]), np.array([1.0, 2, 3, 4])
    assert sc.spearman(a, b, absolute=True) == pytest.approx(-0.2)
    assert sc.spearman(a, b, absolute=False) == pytest.approx(1.0)
    # a constant map has no ranking: 0, never NaN
    assert sc.spearman(np.zeros(4), b) == 0.0
    assert sc.spearman(np.array([-1.0, 1, -1, 1]), b, absolute=True) == 0.0


def test_measures_agree_with_scipy_and_skimage():
    rng = np.random.default_rng(0)
    a = np.round(rng.normal(size=(32, 32)), 1)  # ties, as in rectified maps
    b = a + rng.normal(scale=0.7, size=(32, 32))
    b[:8] = 0
    assert sc.spearman(a, b, False) == pytest.approx(
        stats.spearmanr(a.ravel(), b.ravel())[0], abs=1e-12
    )
    assert sc.spearman(a, b, True) == pytest.approx(
        stats.spearmanr(np.abs(a).ravel(), np.abs(b).ravel())[0], abs=1e-12
    )
    ua, ub = np.abs(a) / np.abs(a).max(), np.abs(b) / np.abs(b).max()
    assert sc.ssim(a, b) == pytest.approx(structural_similarity(ua, ub, data_range=1.0))
    kw = dict(orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    assert sc.hog_cell(32) == 4
    assert sc.hog_similarity(a, b) == pytest.approx(
        stats.pearsonr(hog(ua, **kw), hog(ub, **kw))[0], abs=1e-12
    )
    # the table computes the same numbers, with the reference's ranks and HOG kept
    table = sc.similarities({"m": np.stack([a, b])}, {"m": np.stack([b, a])})
    assert table.loc[0, "spearman_abs"] == pytest.approx(sc.spearman(a, b, True), abs=1e-12)
    assert table.loc[0, "spearman"] == pytest.approx(sc.spearman(a, b, False), abs=1e-12)
    assert table.loc[1, "ssim"] == pytest.approx(sc.ssim(b, a), abs=1e-12)
    assert table.loc[1, "hog"] == pytest.approx(sc.hog_similarity(b, a), abs=1e-12)
    assert not table["constant"].any()


def test_measures_of_a_map_with_itself_its_scaling_and_its_negation():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(28, 28))
    for other, signed in ((a, 1.0), (3 * a, 1.0), (-a, -1.0)):
        t = sc.similarities({"m": a[None]}, {"m": other[None]}).iloc[0]
        assert t["spearman_abs"] == pytest.approx(1.0)
        assert t["spearman"] == pytest.approx(signed)
        assert t["ssim"] == pytest.approx(1.0)
        assert t["hog"] == pytest.approx(1.0)
    assert sc.self_check({"m": a[None]}).outcome == V.HOLDS
    zero = sc.similarities({"m": a[None]}, {"m": np.zeros((1, 28, 28))}).iloc[0]
    assert bool(zero["constant"]) and zero["spearman_abs"] == 0 and zero["hog"] == 0
    with pytest.raises(ValueError, match="unknown measures"):
        sc.similarities({"m": a[None]}, {"m": a[None]}, ["pearson"])


# ------------------------------------------------------------------------------------------
# The data randomisation's data
# ------------------------------------------------------------------------------------------


def test_permuted_labels_are_the_true_labels_shuffled():
    true = sc.memorise_bundle(200, permuted=False, seed=0, n_test=10)
    perm = sc.memorise_bundle(200, permuted=True, seed=0, n_test=10)
    assert torch.equal(true.x_train, perm.x_train)
    assert torch.equal(torch.sort(true.y_train).values, torch.sort(perm.y_train).values)
    assert (true.y_train != perm.y_train).float().mean() > 0.5
    assert torch.equal(perm.y_train, sc.memorise_bundle(200, True, 0, 10).y_train)
    assert not torch.equal(perm.y_train, sc.memorise_bundle(200, True, 1, 10).y_train)


def test_the_committed_networks_memorised_their_labels():
    from lib.paths import MODELS_DIR

    nets = sc.data_randomisation_models(verbose=False)
    for key, (model, hist) in nets.items():
        assert str(MODELS_DIR) in hist["path"], f"{key}: weights not committed"
    acc = sc.training_accuracy(nets["permuted labels"][0], permuted=True)
    assert acc >= sc.MEMORISED and sc.memorisation_check(acc).outcome == V.HOLDS
    assert nets["permuted labels"][1]["test_acc"] < 0.2  # nothing learned about the images
    assert sc.memorisation_check(0.5).outcome == V.FAILS


# ------------------------------------------------------------------------------------------
# Verdicts
# ------------------------------------------------------------------------------------------


def _scores(values: dict[str, list[float]], step: str = "norm") -> pd.DataFrame:
    rows = [
        {"order": "cascading", "step": step, "depth": 1, "method": m, "unit": i, "spearman_abs": v}
        for m, vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_paper_claims_follow_the_rules():
    high, low = [0.9, 0.95, 0.92, 0.97, 0.91, 0.93], [0.1, 0.05, 0.12, 0.2, 0.08, 0.1]
    s = _scores({"guidedbackprop": high, "guidedgradcam": low, "gradient": low, "gradcam": high})
    out = {c["id"]: c["verdict"].outcome for c in sc.paper_claims(s, "norm", "t", "images", "x")}
    assert out == {"gbp-t": V.HOLDS, "ggcam-t": V.FAILS, "grad-t": V.HOLDS, "gradcam-t": V.FAILS}
    # the facts the chapter glues beside each outcome: the mean over the units with its interval,
    # 5.58 / 6 = 0.93 for the high values, 0.65 / 6 = 0.108 for the low ones
    v = {c["id"]: c["verdict"] for c in sc.paper_claims(s, "norm", "t", "images", "x")}
    assert v["gbp-t"].estimate == pytest.approx(0.93) and v["gbp-t"].n == 6
    assert v["grad-t"].estimate == pytest.approx(0.65 / 6)
    assert v["gbp-t"].interval_text(2).startswith("0.93 [")
    assert v["grad-t"].interval_text(2).startswith("0.11 [")
    assert (
        v["gbp-t"].boundary == sc.INSENSITIVE_ABOVE and v["grad-t"].boundary == sc.SENSITIVE_BELOW
    )
    data = _scores(
        {"guidedbackprop": high, "guidedgradcam": high, "gradient": high, "gradcam": low}
    ).drop(columns=["order", "step", "depth"])
    out = {
        c["id"]: c["verdict"].outcome
        for c in sc.paper_claims(data, None, "", "items", "x", data=True)
    }
    assert out == {
        "gbp-labels": V.HOLDS,
        "ggcam-labels": V.HOLDS,
        "grad-labels": V.FAILS,
        "gradcam-labels": V.HOLDS,
    }


def test_engine_findings_pass_fail_and_undecided():
    s = _scores(
        {
            "a": [0.1, 0.05, 0.12, 0.2, 0.08, 0.1],
            "b": [0.9, 0.95, 0.92, 0.97, 0.91, 0.9],
            "c": [0.1, 0.9, 0.2, 0.8, 0.4, 0.6],
        },
        step="conv",
    )
    out = {f["method"]: f["verdict"].outcome for f in sc.engine_findings(s, "conv", "images")}
    assert out == {"a": V.HOLDS, "b": V.FAILS, "c": V.UNDECIDED}
    table = sc.engine_table({"m": s}, {"m": "conv"})
    assert list(table["m: outcome"]) == ["passes", "fails", V.UNDECIDED]


def test_full_profile_claims_are_not_run_elsewhere_and_data_is_checked():
    claims = sc.full_claims("default")
    assert len(claims) == len(sc.PAPER_CLAIMS) * len(sc.IMAGENET_LAYERS)
    assert all(c["verdict"].outcome == V.NOT_RUN for c in claims)
    # the weights missing (FileNotFoundError) or, with them, the images (DataMissingError, a
    # FileNotFoundError): a clear error before anything runs
    with pytest.raises(FileNotFoundError, match="torch hub cache|ImageNet 2012"):
        sc.check_full_data("/nonexistent", ["vgg16"])
    with pytest.raises(ValueError, match="full profile runs"):
        sc.check_full_data(None, ["alexnet"])


# ------------------------------------------------------------------------------------------
# The oracle: Quantus's Model Parameter Randomisation Test
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["guidedbackprop", "gradcam"])
def test_cascade_agrees_with_quantus_mprt(method):
    """Quantus (pinned, installed without its opencv-python dependency) re-initialises every
    module with reset_parameters() from the top down, right after torch.manual_seed(seed + 1),
    and compares each map with the trained model's by Spearman's rank correlation (with or
    without absolute values). The same layer order, seed, maps and similarity here must give
    the same numbers, step by step and image by image."""
    import quantus
    from quantus.functions.similarity_func import correlation_spearman

    from lib.train import load_trained

    model, _ = load_trained("mnist_net", verbose=False)
    x, y = sc.data_inputs(8)
    q_seed = 41  # Quantus seeds torch with seed + 1 before each layer

    def explain_func(model, inputs, targets, **kw):
        xt = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        maps = sc.explain(model, xt, sc.DATA_LAYER, [method], np.asarray(targets).tolist(), SIZES)
        return sc.comparable(maps[method], tuple(xt.shape[-2:]))[:, None].astype(np.float32)

    ours = sc.run_randomisation(
        model,
        x,
        sc.DATA_LAYER,
        sc.DATA_BLOCKS,
        [method],
        SIZES,
        seed=q_seed + 1,
        orders=("cascading",),
        target=y.tolist(),
        measures=("spearman_abs", "spearman"),
    )
    for absolute, measure in ((True, "spearman_abs"), (False, "spearman")):
        metric = quantus.MPRT(
            similarity_func=correlation_spearman,
            layer_order="top_down",
            seed=q_seed,
            abs=absolute,
            normalise=False,
            disable_warnings=True,
        )
        theirs = metric(
            model=model,
            x_batch=x.numpy(),
            y_batch=y.numpy(),
            a_batch=None,
            explain_func=explain_func,
            device="cpu",
            batch_size=64,
        )
        layers = [k for k in theirs if k != "original"]
        assert layers == [names[0] for names in sc.DATA_BLOCKS.values()]
        assert np.allclose(theirs["original"], 1.0)
        for label, names in sc.DATA_BLOCKS.items():
            q = np.asarray(theirs[names[0]], dtype=float)
            o = ours.scores[ours.scores["step"] == label].sort_values("unit")[measure].to_numpy()
            assert np.isfinite(q).all()
            assert np.allclose(o, q, atol=1e-6), (method, measure, label, o, q)


def test_independent_measures_and_missing_orders_say_what_to_do():
    assert sc.independent_measures("spearman_abs") == ("spearman_abs", "spearman")
    assert sc.independent_measures("hog") == ("spearman_abs", "spearman", "hog")
    with pytest.raises(ValueError, match="unknown measure"):
        sc.independent_measures("iou")
    s = _scores({"gradient": [0.1, 0.2]})
    with pytest.raises(ValueError, match="independent"):
        sc.curves_figure(s, ["trained", "norm"], "independent")
    with pytest.raises(ValueError, match="independent"):
        sc.independent_table(s, ["norm"])
    t = sc.step_means(s, ["norm"])
    assert list(t.columns) == ["after 'norm'"] and t.iloc[0, 0] == pytest.approx(0.15)


def test_the_chapters_grids_pass_the_figure_check_on_a_phone(monkeypatch):
    """Figure 2's cascade (nine methods, twelve columns) and the data randomisation's grid: every
    text 9 pt or more within the 750 px column, so >= 6 px on a phone (lib.plot.figure refuses
    the 7 pt titles these grids had); the ImageNet figure says where a network was not run."""
    import matplotlib

    matplotlib.use("Agg")
    import myst_nb

    from lib import plot

    glued = {}
    monkeypatch.setattr(
        myst_nb, "glue", lambda name, obj, display=True: glued.setdefault(name, obj)
    )
    methods = [
        "gradient",
        "guidedbackprop",
        "guidedgradcam",
        "gradcam",
        "gradcam++",
        "hirescam",
        "layercam",
        "integratedgradients",
        "eigencam",
    ]
    steps = ["classifier", "head"] + [f"blocks.{i}" for i in range(6, -1, -1)] + ["stem"]
    g = np.random.default_rng(0)
    run = sc.Randomisation(
        None,
        None,
        {s: {m: g.random((1, 32, 32)) for m in methods} for s in steps},
        ["trained"] + steps,
        None,
        None,
        None,
        methods,
    )
    with matplotlib.rc_context():
        plot.style()
        plot.figure(sc.cascade_figure(run, g.random((32, 32, 3))), "fig-cascade")
        maps = {m: g.random((3, 28, 28)) for m in methods}
        plot.figure(
            sc.data_figure([g.random((28, 28))] * 3, maps, maps, ("true", "permuted")), "fig-data"
        )
        fig = sc.imagenet_figure({}, ["vgg16", "resnet50"])
        assert [t.get_text() for ax in fig.axes for t in ax.texts][0].startswith(
            "not run on this profile"
        )
        plot.figure(fig, "fig-imagenet")
    for name in ("fig-cascade", "fig-data", "fig-imagenet"):
        record = glued[name].metadata["lib.plot"]
        assert record["width_px"] <= plot.TEXT_COLUMN_PX and record["phone_text_px"] >= 6, name
