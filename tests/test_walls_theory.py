"""Paper 003, Section 2 (the walls-theory chapter): the masked [CNN], Proposition 2 (closed-form
alpha), Theorem 3, and the sign of Grad-CAM at initialisation (Figure 3)."""
import math

import pytest
import torch
import torch.nn.functional as F

from lib.chapters import walls_theory as theory
from lib.models.cnn003 import CNN003, effective_weight, init_gaussian_, mnist_cnn003
from lib.models.walled import dead_zone_check


def _images(n, seed=0, size=28):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=g, dtype=torch.float64)
    x[:, :, :, : size // 3] = 0  # blank columns, as on real digits: max-pool ties at 0
    return x


# ----------------------------------------------------------------------------- Proposition 2

@pytest.mark.parametrize("hidden", [(), (24, 16)], ids=["L=1", "L=3"])
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_prop2_closed_form_equals_autograd(hidden, bias):
    g = torch.Generator().manual_seed(1)
    model = CNN003(16, kernel_size=2, pool_size=2, input_size=(28, 28), pad=(0, 1, 1, 0),
                   hidden=hidden, n_classes=10, conv_bias=bias, mlp_bias=bias, mask_rows=7)
    init_gaussian_(model.double(), generator=g)
    x = _images(4)
    for target in (None, 3, torch.tensor([0, 9, 2, 5])):
        auto = theory.gradcam_alpha_autograd(model, x, target)
        closed = theory.gradcam_alpha_closed_form(model, x, target)
        scale = auto.abs().max()
        assert scale > 1e-3  # a non-trivial alpha, so the comparison means something
        assert (auto - closed).abs().max() < 1e-12 * max(1.0, float(scale))
    if hidden:  # with hidden layers alpha depends on the input (the indicators of Prop. 2)
        assert not torch.allclose(closed[0], closed[1])


def test_prop2_L1_is_row_sum_of_W_over_hw():
    """L = 1: alpha_v = 1/(hw) sum_{i,j} W_{c,v,i,j}, the same for every input (Appendix D)."""
    model = mnist_cnn003(8, generator=torch.Generator().manual_seed(2)).double()
    x = _images(3)
    w = effective_weight(model.dense_layers[0]).reshape(10, 8, 14, 14)
    assert (w[:, :, 7:] == 0).all() and (w[:, :, :7] != 0).all()
    expected = w[4].sum(dim=(1, 2)) / (28 * 28)
    alpha = theory.gradcam_alpha_autograd(model, x, 4)
    assert torch.allclose(alpha, expected.expand(3, -1), atol=1e-15, rtol=0)


def test_prop2_hand_computed_tiny_case():
    """V = 2 filters on a 3x3 image of ones, k = k' = 2, L = 2 (worked out by hand).

    C = (1, 2); a1 = W1 C = (5, 1, -5.5) -> indicators (1, 1, 0);
    rho = W1^T diag(1, 1, 0) W2^T = (1*1 + (-1)(-2), 2*1 + 1*(-2)) = (3, 0); alpha = rho / 4;
    y = W2 ReLU(a1) = 5 - 2 = 3; GC = ReLU(0.75 * B1 + 0 * B2) = 0.75 everywhere.
    """
    model = CNN003(2, kernel_size=2, pool_size=2, input_size=(3, 3), hidden=(3,),
                   n_classes=1).double()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([[[[0.25, 0.25], [0.25, 0.25]]],
                                              [[[2.0, 0.0], [0.0, 0.0]]]]))
        model.dense_layers[0].weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 1.0], [0.5, -3.0]]))
        model.dense_layers[1].weight.copy_(torch.tensor([[1.0, -2.0, 4.0]]))
    x = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    assert model(x).item() == 3.0
    expected = torch.tensor([[0.75, 0.0]], dtype=torch.float64)
    assert torch.equal(theory.gradcam_alpha_closed_form(model, x, 0), expected)
    assert torch.allclose(theory.gradcam_alpha_autograd(model, x, 0), expected, atol=1e-15)
    assert torch.allclose(theory.gradcam_map(model, x, 0), torch.full((1, 2, 2), 0.75,
                                                                     dtype=torch.float64))


def test_prop2_agrees_with_lib_cam():
    cam = pytest.importorskip("lib.cam")
    model = mnist_cnn003(16, hidden=(12,), generator=torch.Generator().manual_seed(3)).double()
    x = _images(2)
    signed = cam.compute(model, x, "relu", method="gradcam", target=1).detach()
    mine = torch.einsum("nv,nvij->nij", theory.gradcam_alpha_closed_form(model, x, 1),
                        model.features(x))
    assert signed.shape == (2, 28, 28)
    assert (signed - mine).abs().max() < 1e-13


# ----------------------------------------------------------------------------- the mask

def test_mask_makes_logits_independent_of_the_dead_zone():
    g = torch.Generator().manual_seed(4)
    model = mnist_cnn003(8, generator=g).double()
    # paper set-up: B rows >= 14 are unseen, so input rows >= 14 (padded rows >= 15; the
    # authors' own check zeroes the last 14 of 29 padded rows)
    assert model.feature_dead_row == 14 and model.input_dead_row == 14
    x = _images(2)
    check = dead_zone_check(model, x, model.input_dead_row)
    assert check.dead == 0.0 and check.above > 0  # bit-identical, not merely close
    unmasked = mnist_cnn003(8, mask_rows=0, generator=torch.Generator().manual_seed(4)).double()
    assert unmasked.input_dead_row == 28
    assert dead_zone_check(unmasked, x, 14).dead > 0


def test_mask_survives_training_and_reloading():
    g = torch.Generator().manual_seed(5)
    model = mnist_cnn003(4, hidden=(6,), generator=g).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x = _images(4)
    loss = F.cross_entropy(model(x), torch.tensor([1, 2, 3, 4]))
    loss.backward()
    opt.step()
    state = model.state_dict()
    state["mlp.0.weight"] = torch.randn_like(state["mlp.0.weight"])  # no zeros in the file
    model.load_state_dict(state)
    x_dead = x.clone()
    x_dead[:, :, 20:] = 1.0
    assert torch.equal(model(x_dead), model(x))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="pool_size"):
        CNN003(4, kernel_size=2, pool_size=2, input_size=(28, 28))  # 27 x 27 not divisible
    model = mnist_cnn003(4)
    with pytest.raises(ValueError, match="built for"):
        model(torch.zeros(1, 1, 29, 29))
    xi = torch.rand(29, 29)
    with pytest.raises(ValueError, match="V > 20"):
        theory.theorem3_bound(xi, 20)
    with pytest.raises(ValueError, match="h' even"):
        theory.theorem3_bound(torch.rand(7, 7), 32)  # h = 6, h' = 3
    with pytest.raises(ValueError, match="float"):
        theory.theorem3_bound(torch.zeros(29, 29, dtype=torch.uint8), 32)
    with pytest.raises(ValueError, match="NaN"):
        theory.patch_norms(torch.full((5, 5), float("nan")), 2)


# ----------------------------------------------------------------------------- Theorem 3

def test_theorem3_bound_hand_value():
    """H = 5, k = 2 -> h = w = 4, h' = w' = 2; V = 36, tau = 1, ||m|| = 1 at (0, 0):
    (36-20)/6 * sqrt(4/(16 pi)) / 16 = 1 / (12 sqrt(pi))."""
    xi = torch.zeros(5, 5, dtype=torch.float64)
    xi[0, 0] = 1.0
    xi[4, 4] = 0.5  # (3, 3) sees ||m|| = 0.5
    bound = theory.theorem3_bound(xi, 36)
    assert bound[0, 0].item() == pytest.approx(1 / (12 * math.sqrt(math.pi)), rel=1e-12)
    assert bound[3, 3].item() == pytest.approx(0.5 / (12 * math.sqrt(math.pi)), rel=1e-12)
    assert bound[1, 1].item() == 0.0
    # tau enters squared
    assert theory.theorem3_bound(xi, 36, tau=0.5)[0, 0].item() == pytest.approx(
        bound[0, 0].item() / 4, rel=1e-12)


def test_exact_expectation_small_V_by_hand():
    """E[sqrt(sum_q (Z_q^+)^2)]: V = 1 gives E[Z^+] = 1/sqrt(2 pi); V = 2 gives
    1/2 E[chi_1] + 1/4 E[chi_2] = 1/2 sqrt(2/pi) + 1/4 sqrt(pi/2)."""
    assert theory._mean_sqrt_rectified_chi2(1) == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert theory._mean_sqrt_rectified_chi2(2) == pytest.approx(
        0.5 * math.sqrt(2 / math.pi) + 0.25 * math.sqrt(math.pi / 2))
    # the exact expectation dominates the bound, and by about sqrt(2) for large V
    xi = torch.rand(9, 9, generator=torch.Generator().manual_seed(6))
    for v, lo, hi in ((21, 20, 40), (256, 1.5, 1.6), (4096, 1.41, 1.43)):
        r = theory.theorem3_expectation(xi, v) / theory.theorem3_bound(xi, v)
        assert lo < r.min() and r.max() < hi


def test_ensemble_equals_the_model_draw_by_draw():
    """The batched Monte Carlo implementation and CNN003 + autograd give the same maps."""
    g = torch.Generator().manual_seed(7)
    d, v = 3, 24
    filters = torch.randn(d, v, 2, 2, generator=g, dtype=torch.float64)
    weights = torch.randn(d, 10, v, 14, 14, generator=g, dtype=torch.float64)
    mask = torch.ones(14, 14, dtype=torch.float64)
    mask[7:] = 0
    x = _images(1)[0, 0]
    xi = F.pad(x, (0, 1, 1, 0))
    for target in (6, "predicted"):
        maps = theory.ensemble_gradcam(xi, filters, weights, 2, mask, target)
        for i in range(d):
            model = mnist_cnn003(v).double()
            with torch.no_grad():
                model.conv.weight.copy_(filters[i, :, None])
                model.dense_layers[0].weight.copy_(weights[i].reshape(10, -1))
            ref = theory.gradcam_map(model, x[None, None], None if target == "predicted"
                                    else target)[0]
            assert (maps[i] - ref).abs().max() < 1e-14
            assert ref.max() > 0 and ref[14:].max() > 0  # positive scores in the unseen rows


def test_monte_carlo_matches_exact_expectation_and_beats_the_bound():
    xi = torch.rand(9, 9, generator=torch.Generator().manual_seed(8))
    xi[:, :3] = 0  # blank patches: GC and bound are both exactly 0 there
    v, n = 64, 3000
    mc = theory.monte_carlo_gradcam(xi, v, n, seed=1, progress=False, max_elements=2 ** 20)
    bound = theory.theorem3_bound(xi, v)
    exact = theory.theorem3_expectation(xi, v).double()
    assert mc.mean.shape == (8, 8) and mc.draw_totals.shape == (n,)
    assert torch.equal(mc.mean[:, :2], torch.zeros(8, 2, dtype=torch.float64))
    check = theory.bound_check(mc, bound)
    assert check["frac_holds"] == 1.0 and check["frac_violated"] == 0.0
    assert check["frac_interval"] == (1.0, 1.0) and check["n_pixels"] == 8 * 6
    unseen = torch.zeros(8, 8, dtype=torch.bool)
    unseen[4:] = True
    assert theory.bound_check(mc, bound, region=unseen)["frac_holds"] == 1.0
    # Eq. 11 evaluated exactly: the map-wide mean within 4 standard errors
    assert abs(mc.mean.sum() - exact.sum()) < 4 * mc.total_sem
    z = ((mc.mean - exact) / mc.sem)[bound > 0]
    assert z.abs().max() < 5
    # a wrong bound (one that forgets the 1/sqrt(V)) is caught
    too_big = bound * math.sqrt(v)
    assert theory.bound_check(mc, too_big)["frac_violated"] == 1.0


# ----------------------------------------------------------------------------- Figure 3: the sign

def test_sign_check_half_of_the_draws_positive_behind_the_wall():
    """Fixed class, L = 1: P(GC_ij > 0) = (1 - 2^-V) / 2 for every non-blank pixel, the unseen
    rows included; the counts of the Monte Carlo agree, and made-up counts are caught."""
    xi = torch.rand(9, 9, generator=torch.Generator().manual_seed(9))
    xi[:, :3] = 0
    mc = theory.monte_carlo_gradcam(xi, 32, 2000, seed=2, progress=False)
    assert mc.positive.shape == (8, 8) and mc.positive.dtype == torch.int64
    assert torch.equal(mc.positive[:, :2], torch.zeros(8, 2, dtype=torch.int64))  # blank patches
    unseen = torch.zeros(8, 8, dtype=torch.bool)
    unseen[4:] = True
    check = theory.sign_check(mc, xi, region=unseen)
    assert check["n_pixels"] == 4 * 6 and check["p_exact"] == pytest.approx(0.5 * (1 - 2 ** -32))
    assert check["holds"] and abs(check["share_positive"] - 0.5) < 0.03
    # a map positive in every draw (e.g. a sign error that ReLUs |.|) fails the test
    always = theory.MonteCarloResult(**{**mc.__dict__, "positive": torch.full((8, 8), 2000)})
    assert not theory.sign_check(always, xi)["holds"]
    # a map that respects the wall (never positive behind it) fails too
    walled = mc.positive.clone()
    walled[4:] = 0
    assert not theory.sign_check(theory.MonteCarloResult(**{**mc.__dict__, "positive": walled}),
                                 xi, region=unseen)["holds"]
    with pytest.raises(ValueError, match="fixed class"):
        theory.sign_check(theory.MonteCarloResult(**{**mc.__dict__, "target": "predicted"}), xi)


def test_figure3_counts_by_hand():
    """figure3's counts of positive pixels equal a direct computation with the CAM engine."""
    cam = pytest.importorskip("lib.cam")
    image = _images(1, seed=11)[0, 0]
    f = theory.figure3(image, n_filters=32, seed=3)
    model = mnist_cnn003(32, generator=torch.Generator().manual_seed(3)).double()
    gc = torch.relu(cam.compute(model, image[None, None], "relu", method="gradcam"))[0]
    assert torch.allclose(f.gc, gc, atol=1e-12)
    nonblank = theory.patch_norms(F.pad(image, (0, 1, 1, 0)), 2) > 0
    pos = (gc > 0) & nonblank
    assert f.positive["unseen"] == (int(pos[14:].sum()), int(nonblank[14:].sum()))
    assert f.positive["seen"] == (int(pos[:14].sum()), int(nonblank[:14].sum()))
    assert f.share_norm_unseen == pytest.approx(float(gc[14:].norm() / gc.norm()))
    assert (f.dead_row, f.input_dead_row) == (14, 15)  # 15 in the padded 29 x 29 input
