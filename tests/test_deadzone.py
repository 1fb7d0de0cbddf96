"""The dead zone of every masked model in the book is dead (Taimeskhanov et al., Section 3.1): noise there
leaves the logits bit-identical, a change in the row just above changes them
(``lib.models.walled.dead_zone_check``); HiResCAM is exactly 0 there while Grad-CAM is not
(Table 1's claim); the walls of lib.models.walled."""

import pytest
import torch

import lib.cam
from lib.chapters.walls_experiments import masked_zone_rows, wall_scores
from lib.data.stackmix import stack_mix
from lib.metrics import dead_zone_ratio
from lib.models.masked_vgg import MaskedVGG, masked_vgg16
from lib.models.one_conv import mnist_one_conv_net
from lib.models.walled import RowWall, WalledModel, dead_zone_check
from lib.rf import dead_zone
from lib.train import RECIPES, load_data, recipe_path

SCALED = [
    n
    for n, r in RECIPES.items()
    if r.model_fn == "masked_vgg" and r.model_kwargs.get("masked_rows", 9) > 0
]


def _scaled(name: str, trained: bool) -> MaskedVGG:
    torch.manual_seed(0)
    model = MaskedVGG(**RECIPES[name].model_kwargs)
    if trained:
        path = recipe_path(name)
        if not path.is_file():
            pytest.skip(
                f"committed weights {path.name} not there yet (lib.train.load_trained "
                f"({name!r}) writes them)"
            )
        model.load_state_dict(
            torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        )
    return model.eval()


def _assert_wall(model, x: torch.Tensor, first: int):
    check = dead_zone_check(model, x, first, noise_scale=5.0, bump=1.0)
    assert check.dead == 0.0, "noise in the dead zone changed the logits"
    assert check.above > 0.0, f"row {first - 1}, just above the dead zone, is not seen"


def test_recipes_hold_a_masked_vgg():
    assert SCALED, "lib.train.RECIPES lists no masked VGG: the book's [VGG] is gone"


@pytest.mark.parametrize("name", SCALED)
@pytest.mark.parametrize("trained", [False, True])
def test_scaled_masked_vgg_dead_zone_is_dead(name, trained):
    model = _scaled(name, trained)
    dz = dead_zone(model)
    assert dz.n > 0 and dz.rows[-1] == model.input_size - 1
    x = torch.rand(
        3,
        model.features[0].in_channels,
        model.input_size,
        model.input_size,
        generator=torch.Generator().manual_seed(1),
    )
    _assert_wall(model, x, dz.first)


def test_paper_masked_vgg16_dead_zone_is_dead():
    torch.manual_seed(0)
    model = masked_vgg16().eval()  # random init: the wall is architectural
    dz = dead_zone(model)
    assert (dz.n, dz.first) == (54, 170)  # Taimeskhanov et al.: 54 px, rows 171..224 (1-based)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    _assert_wall(model, x, dz.first)


def test_one_conv_net_dead_zone_is_dead_and_matches_rf():
    model = mnist_one_conv_net(n_filters=32, generator=torch.Generator().manual_seed(0)).eval()
    # a second implementation: the RF toolkit on pad -> conv -> relu -> pool, 7 of 14 rows masked
    feats = torch.nn.Sequential(model.pad, model.conv, model.relu, model.pool)
    dz = dead_zone(feats, 28, model.mask_rows)
    assert dz.first == model.input_dead_row and dz.rows[-1] == 27
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    _assert_wall(model, x, dz.first)


def test_masked_zone_rows_by_hand():
    # bilinear, align_corners=False, factor s: output row i reads source rows floor(u) and
    # floor(u) + 1, u = (i + 0.5) / s - 0.5; the last visible row v - 1 gets no weight once
    # u >= v, i.e. i >= s (v + 1/2) - 1/2
    assert masked_zone_rows(14, 9, 224) == slice(88, 224)  # v = 5, s = 16: i > 87.5
    assert masked_zone_rows(8, 5, 64) == slice(28, 64)  # v = 3, s = 8: i > 27.5
    assert masked_zone_rows(7, 3, 224) == slice(144, 224)  # v = 4, s = 32: i > 143.5
    with pytest.raises(ValueError, match="masked_rows"):
        masked_zone_rows(7, 7, 224)


def test_rowwall_gradient_is_exactly_zero_in_masked_rows():
    wall = RowWall(2)
    a = torch.randn(2, 3, 5, 4, requires_grad=True)
    out = wall(a)
    assert torch.equal(out[..., 3:, :], torch.zeros_like(out[..., 3:, :]))
    assert torch.equal(out[..., :3, :], a[..., :3, :])
    (out * torch.randn_like(out)).sum().backward()
    assert torch.equal(a.grad[..., 3:, :], torch.zeros_like(a.grad[..., 3:, :]))
    assert (a.grad[..., :3, :] != 0).all()
    with pytest.raises(ValueError, match="no visible row"):
        RowWall(5)(a)


def _tiny_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(6, 3),
    ).eval()


def test_walled_model_equals_hand_written_wall():
    net = _tiny_cnn()
    walled = WalledModel(net, "3", masked_rows=3).eval()
    assert walled.target_layer == "net.3.inner"
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        a = net[3](net[2](net[1](net[0](x))))
        a[..., 5:, :] = 0
        expected = net[6](net[5](net[4](a)))
        assert torch.allclose(walled(x), expected, atol=1e-6)
        assert not torch.allclose(net(x), expected, atol=1e-6)  # the original is left unwalled


def test_lite0_wall_is_exact_in_features_but_leaves_no_dead_input_rows():
    timm = pytest.importorskip("timm")
    lite0 = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    for k in (1, 3, 6):  # RF 851 px > 224: no masking of bn2's rows leaves a dead input row
        assert dead_zone(lite0, 224, k, layer="bn2").n == 0
    walled = WalledModel(lite0, "bn2", 3).eval()
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    in_features = dead_zone_check(walled, x, 4, layer=walled.target_layer, noise_scale=10)
    assert in_features.holds and in_features.where == "net.bn2.inner"  # exact in feature space
    in_input = dead_zone_check(walled, x, masked_zone_rows(7, 3, 224))
    assert in_input.dead > 0  # but the input is seen
    # the same noise behind the wall of the unwalled network changes the logits
    assert dead_zone_check(lite0, x, 4, layer="bn2", noise_scale=10).dead > 0


def test_hirescam_exactly_zero_in_dead_zone_gradcam_not():
    model = _scaled(SCALED[0], trained=True)
    dz = dead_zone(model)
    b = load_data(RECIPES[SCALED[0]].data)
    sm = stack_mix(b.prepare(b.x_test[:200]), b.y_test[:200], split_row=dz.first, n_per_class=2)
    x = sm.images
    r = wall_scores(
        model,
        x,
        model.target_layer,
        ["hirescam", "gradcam", "gradcam++"],
        dz.as_slice(),
        model.masked_rows,
    )
    assert torch.equal(r["hirescam"]["max_feature"], torch.zeros(len(x)))
    assert torch.equal(r["hirescam"]["mu_pgc"], torch.zeros(len(x)))
    # Grad-CAM is exactly Eq. 7 of the raw map: check wall_scores against a direct computation
    raw = lib.cam.compute(model, x, model.target_layer, "gradcam")
    pgc = lib.cam.postprocess(raw, 64, preset=lib.cam.PGC_PRESET)
    empty = (raw <= 0).flatten(1).all(1)  # negative everywhere: nothing left after the ReLU
    assert empty.any() and not empty.all()  # this batch holds both kinds (issue #9, item 2)
    assert torch.equal(r["gradcam"]["empty"], empty)
    assert r["gradcam"]["mu_pgc"][empty].isnan().all()  # no mass: no mu, never a silent 0
    mu = dead_zone_ratio(pgc[~empty], dz.as_slice())
    assert torch.allclose(r["gradcam"]["mu_pgc"][~empty], mu)
    assert mu.mean() > 0.05 and (r["gradcam"]["mu_feature"][~empty] > 0).any()
    assert (r["gradcam++"]["mu_pgc"] > 0).all()


def test_hirescam_exactly_zero_on_random_masked_vgg():
    """Without training: a random masked VGG, on random inputs (the wall is architectural)."""
    torch.manual_seed(0)
    model = MaskedVGG(
        num_classes=5, width=0.125, input_size=64, hidden=32, in_channels=1, cfg="S", masked_rows=5
    ).eval()
    dz = dead_zone(model)
    x = torch.rand(6, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    hi = lib.cam.compute(model, x, model.target_layer, "hirescam")
    gc = lib.cam.compute(model, x, model.target_layer, "gradcam")
    assert torch.equal(hi[:, -5:], torch.zeros_like(hi[:, -5:]))
    assert gc[:, -5:].abs().max() > 0
    up = lib.cam.postprocess(hi, 64, preset=lib.cam.PGC_PRESET)
    assert float(up[:, dz.as_slice()].max()) == 0.0


def test_dead_zone_check_finds_a_misplaced_wall():
    """The check can fail both ways: one row too early (noise in a seen row) and one row too
    late (the row "just above" is itself dead)."""
    model = _scaled(SCALED[0], trained=False)
    dz = dead_zone(model)
    x = torch.rand(
        2, 1, model.input_size, model.input_size, generator=torch.Generator().manual_seed(3)
    )
    right = dead_zone_check(model, x, dz.as_slice())
    assert right.holds and right.rows == dz.as_slice() and right.where == "input"
    early = dead_zone_check(model, x, dz.first - 1)
    assert early.dead > 0 and not early.holds
    late = dead_zone_check(model, x, dz.first + 1)
    assert late.dead == 0.0 and late.above == 0.0 and not late.holds
    with pytest.raises(ValueError, match="no row just above"):
        dead_zone_check(model, x, 0)
    with pytest.raises(ValueError, match="consecutive"):
        dead_zone_check(model, x, slice(dz.first, None, 2))
