"""Taimeskhanov et al., Section 2 (the walls-theory chapter): the masked [CNN], Proposition 2 (closed-form
alpha), Theorem 3, and the sign of Grad-CAM at initialisation (Figure 3)."""

import math

import pytest
import torch
import torch.nn.functional as F

from lib.chapters import walls_theory as theory
from lib.models.one_conv import OneConvNet, effective_weight, init_gaussian_, mnist_one_conv_net
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
    model = OneConvNet(
        16,
        kernel_size=2,
        pool_size=2,
        input_size=(28, 28),
        pad=(0, 1, 1, 0),
        hidden=hidden,
        n_classes=10,
        conv_bias=bias,
        mlp_bias=bias,
        mask_rows=7,
    )
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
    model = mnist_one_conv_net(8, generator=torch.Generator().manual_seed(2)).double()
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
    model = OneConvNet(
        2, kernel_size=2, pool_size=2, input_size=(3, 3), hidden=(3,), n_classes=1
    ).double()
    with torch.no_grad():
        model.conv.weight.copy_(
            torch.tensor([[[[0.25, 0.25], [0.25, 0.25]]], [[[2.0, 0.0], [0.0, 0.0]]]])
        )
        model.dense_layers[0].weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 1.0], [0.5, -3.0]]))
        model.dense_layers[1].weight.copy_(torch.tensor([[1.0, -2.0, 4.0]]))
    x = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    assert model(x).item() == 3.0
    expected = torch.tensor([[0.75, 0.0]], dtype=torch.float64)
    assert torch.equal(theory.gradcam_alpha_closed_form(model, x, 0), expected)
    assert torch.allclose(theory.gradcam_alpha_autograd(model, x, 0), expected, atol=1e-15)
    assert torch.allclose(
        theory.gradcam_map(model, x, 0), torch.full((1, 2, 2), 0.75, dtype=torch.float64)
    )


def test_prop2_agrees_with_lib_cam():
    cam = pytest.importorskip("lib.cam")
    model = mnist_one_conv_net(
        16, hidden=(12,), generator=torch.Generator().manual_seed(3)
    ).double()
    x = _images(2)
    signed = cam.compute(model, x, "relu", method="gradcam", target=1).detach()
    mine = torch.einsum(
        "nv,nvij->nij", theory.gradcam_alpha_closed_form(model, x, 1), model.features(x)
    )
    assert signed.shape == (2, 28, 28)
    assert (signed - mine).abs().max() < 1e-13


# ----------------------------------------------------------------------------- the mask


def test_mask_makes_logits_independent_of_the_dead_zone():
    g = torch.Generator().manual_seed(4)
    model = mnist_one_conv_net(8, generator=g).double()
    # paper set-up: B rows >= 14 are unseen, so input rows >= 14 (padded rows >= 15; the
    # authors' own check zeroes the last 14 of 29 padded rows)
    assert model.feature_dead_row == 14 and model.input_dead_row == 14
    x = _images(2)
    check = dead_zone_check(model, x, model.input_dead_row)
    assert check.dead == 0.0 and check.above > 0  # bit-identical, not merely close
    unmasked = mnist_one_conv_net(
        8, mask_rows=0, generator=torch.Generator().manual_seed(4)
    ).double()
    assert unmasked.input_dead_row == 28
    assert dead_zone_check(unmasked, x, 14).dead > 0


def test_mask_survives_training_and_reloading():
    g = torch.Generator().manual_seed(5)
    model = mnist_one_conv_net(4, hidden=(6,), generator=g).double()
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
        OneConvNet(4, kernel_size=2, pool_size=2, input_size=(28, 28))  # 27 x 27 not divisible
    model = mnist_one_conv_net(4)
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
        bound[0, 0].item() / 4, rel=1e-12
    )


def test_exact_expectation_small_V_by_hand():
    """E[sqrt(sum_q (Z_q^+)^2)]: V = 1 gives E[Z^+] = 1/sqrt(2 pi); V = 2 gives
    1/2 E[chi_1] + 1/4 E[chi_2] = 1/2 sqrt(2/pi) + 1/4 sqrt(pi/2)."""
    assert theory._mean_sqrt_rectified_chi2(1) == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert theory._mean_sqrt_rectified_chi2(2) == pytest.approx(
        0.5 * math.sqrt(2 / math.pi) + 0.25 * math.sqrt(math.pi / 2)
    )
    # the exact expectation dominates the bound, and by about sqrt(2) for large V
    xi = torch.rand(9, 9, generator=torch.Generator().manual_seed(6))
    for v, lo, hi in ((21, 20, 40), (256, 1.5, 1.6), (4096, 1.41, 1.43)):
        r = theory.theorem3_expectation(xi, v) / theory.theorem3_bound(xi, v)
        assert lo < r.min() and r.max() < hi


def test_ensemble_equals_the_model_draw_by_draw():
    """The batched Monte Carlo implementation and OneConvNet + autograd give the same maps."""
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
            model = mnist_one_conv_net(v).double()
            with torch.no_grad():
                model.conv.weight.copy_(filters[i, :, None])
                model.dense_layers[0].weight.copy_(weights[i].reshape(10, -1))
            ref = theory.gradcam_map(
                model, x[None, None], None if target == "predicted" else target
            )[0]
            assert (maps[i] - ref).abs().max() < 1e-14
            assert ref.max() > 0 and ref[14:].max() > 0  # positive scores in the unseen rows


def test_monte_carlo_matches_exact_expectation_and_beats_the_bound():
    xi = torch.rand(9, 9, generator=torch.Generator().manual_seed(8))
    xi[:, :3] = 0  # blank patches: GC and bound are both exactly 0 there
    v, n = 64, 3000
    mc = theory.monte_carlo_gradcam(xi, v, n, seed=1, progress=False, max_elements=2**20)
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
    assert check["n_pixels"] == 4 * 6 and check["p_exact"] == pytest.approx(0.5 * (1 - 2**-32))
    assert check["holds"] and abs(check["share_positive"] - 0.5) < 0.03
    # a map positive in every draw (e.g. a sign error that ReLUs |.|) fails the test
    always = theory.MonteCarloResult(**{**mc.__dict__, "positive": torch.full((8, 8), 2000)})
    assert not theory.sign_check(always, xi)["holds"]
    # a map that respects the wall (never positive behind it) fails too
    walled = mc.positive.clone()
    walled[4:] = 0
    assert not theory.sign_check(
        theory.MonteCarloResult(**{**mc.__dict__, "positive": walled}), xi, region=unseen
    )["holds"]
    with pytest.raises(ValueError, match="fixed class"):
        theory.sign_check(theory.MonteCarloResult(**{**mc.__dict__, "target": "predicted"}), xi)


def test_figure3_counts_by_hand():
    """figure3's counts of positive pixels equal a direct computation with the CAM engine."""
    cam = pytest.importorskip("lib.cam")
    image = _images(1, seed=11)[0, 0]
    f = theory.figure3(image, n_filters=32, seed=3)
    model = mnist_one_conv_net(32, generator=torch.Generator().manual_seed(3)).double()
    gc = torch.relu(cam.compute(model, image[None, None], "relu", method="gradcam"))[0]
    assert torch.allclose(f.gc, gc, atol=1e-12)
    nonblank = theory.patch_norms(F.pad(image, (0, 1, 1, 0)), 2) > 0
    pos = (gc > 0) & nonblank
    assert f.positive["unseen"] == (int(pos[14:].sum()), int(nonblank[14:].sum()))
    assert f.positive["seen"] == (int(pos[:14].sum()), int(nonblank[:14].sum()))
    assert f.share_norm_unseen == pytest.approx(float(gc[14:].norm() / gc.norm()))
    assert (f.dead_row, f.input_dead_row) == (14, 15)  # 15 in the padded 29 x 29 input


# ----------------------------------------------------------------------------- verdicts


def _v(outcome, est, low, high, boundary=0.0):
    from lib.verdict import Verdict

    return Verdict(outcome, est, low, high, boundary, f"rule {est}", "hand-made", 10, None)


def _fake_mc(draws, n_filters=64, target=0):
    """A MonteCarloResult built from hand-made draws (n, h, w)."""
    d = torch.as_tensor(draws, dtype=torch.float64)
    n = d.shape[0]
    return theory.MonteCarloResult(
        mean=d.mean(0),
        sem=d.std(0) / math.sqrt(n),
        n_draws=n,
        n_filters=n_filters,
        tau=1.0,
        target=target,
        first=d[0],
        draw_totals=d.sum((1, 2)),
        positive=(d > 0).sum(0),
        draws=d.float(),
    )


def test_theorem3_verdict_decides_at_the_weakest_pixel_by_hand():
    """Bound 1 at both pixels; pixel A: mean 2 with a small spread (z = 46), pixel B: values
    whose mean is exactly 1 (z = 0): B is the weakest and its interval contains 1 -> undecided.
    B shifted up by 1 -> holds; B at 0.5 +- 0.1 -> does not hold."""
    a = [2.0, 2.2, 1.8, 2.0, 2.1, 1.9, 2.0, 2.0]
    b = [0.5, 1.5, 0.9, 1.1, 1.4, 0.6, 1.2, 0.8]
    bound = torch.ones(1, 2, dtype=torch.float64)
    draws = torch.tensor([a, b], dtype=torch.float64).T.reshape(8, 1, 2)
    v, info = theory.theorem3_verdict(_fake_mc(draws), bound)
    assert info["pixel"] == (0, 1) and info["z"] == pytest.approx(0.0, abs=1e-6)
    assert info["n_pixels"] == 2
    assert v.outcome == "undecided" and v.estimate == pytest.approx(1.0) and v.n == 8
    assert v.boundary == 1.0 and v.low < 1 < v.high
    up = draws.clone()
    up[:, 0, 1] += 1.0  # mean 2.0, spread unchanged; A (same spread 0.12, mean 2) vs B (0.35)
    v, info = theory.theorem3_verdict(_fake_mc(up), bound)
    assert info["pixel"] == (0, 1) and v.outcome == "holds" and v.estimate == pytest.approx(2.0)
    low = draws.clone()
    low[:, 0, 1] = torch.tensor([0.5, 0.6, 0.4, 0.5, 0.55, 0.45, 0.5, 0.5])
    v, _ = theory.theorem3_verdict(_fake_mc(low), bound)
    assert v.outcome == "does not hold" and v.estimate == pytest.approx(0.5)
    # a blank pixel (bound 0) is never the weakest; draws must be kept
    blank = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    _, info = theory.theorem3_verdict(_fake_mc(draws), blank)
    assert info["pixel"] == (0, 1) and info["n_pixels"] == 1
    with pytest.raises(ValueError, match="keep_draws"):
        theory.theorem3_verdict(
            theory.MonteCarloResult(**{**_fake_mc(draws).__dict__, "draws": None}), bound
        )


def test_theorem3_verdict_on_a_real_monte_carlo():
    """keep_draws stores every draw; the verdict holds for the true bound and fails for a bound
    that forgets the 1/sqrt(V) (sqrt(64) = 8 times too large)."""
    xi = torch.rand(9, 9, generator=torch.Generator().manual_seed(8))
    xi[:, :3] = 0
    v_, n = 64, 600
    mc = theory.monte_carlo_gradcam(
        xi, v_, n, seed=1, progress=False, keep_draws=True, max_elements=2**18
    )  # several chunks
    assert mc.draws.shape == (n, 8, 8) and mc.draws.dtype == torch.float32
    assert torch.allclose(mc.draws.double().mean(0), mc.mean, rtol=1e-5, atol=1e-7)
    assert theory.monte_carlo_gradcam(xi, v_, 4, seed=1, progress=False).draws is None
    bound = theory.theorem3_bound(xi, v_)
    v, info = theory.theorem3_verdict(mc, bound)
    assert v.outcome == "holds" and v.low > 1 and info["n_pixels"] == 8 * 6
    assert theory.theorem3_verdict(mc, bound * math.sqrt(v_))[0].outcome == "does not hold"


def test_figure3_verdict_by_hand():
    """xi of ones, k = 2: a 2 x 2 map, every patch non-blank; unseen = row 1. Positive unseen
    pixels per draw 2, 1, 0, 1, 2, 0 -> shares 1, 1/2, 0, 1/2, 1, 0 (mean 1/2): holds (above 0).
    A map that respects the wall (never positive behind it) does not hold; three draws are too
    few to decide (lib.verdict.MIN_UNITS)."""
    xi = torch.ones(3, 3, dtype=torch.float64)
    unseen = torch.tensor([[False, False], [True, True]])
    draws = torch.zeros(6, 2, 2)
    draws[:, 0] = 1.0  # the seen row is positive everywhere: it does not count
    draws[0, 1] = torch.tensor([0.3, 0.1])
    draws[1, 1] = torch.tensor([0.2, -0.4])
    draws[2, 1] = torch.tensor([-0.1, 0.0])
    draws[3, 1] = torch.tensor([0.0, 0.7])
    draws[4, 1] = torch.tensor([0.2, 0.2])
    draws[5, 1] = torch.tensor([-0.2, -0.3])
    mc = _fake_mc(draws, target="predicted")
    share = theory.unseen_positive_share(mc, xi, unseen)
    assert share.tolist() == [1.0, 0.5, 0.0, 0.5, 1.0, 0.0]
    assert theory.figure3_verdict(_fake_mc(draws[:3]), xi, unseen).outcome == "undecided"
    v = theory.figure3_verdict(mc, xi, unseen)
    assert v.outcome == "holds" and v.estimate == pytest.approx(0.5) and v.boundary == 0.0
    assert "predicted class" in v.rule
    walled = draws.clone()
    walled[:, 1] = -1.0
    assert theory.figure3_verdict(_fake_mc(walled), xi, unseen).outcome == "does not hold"
    blank = torch.zeros(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="non-blank"):
        theory.unseen_positive_share(mc, blank, unseen)


def test_add_claims_kinds_tiers_and_a_failing_check():
    """Proposition 2 is a check (its measured error, never tallied); Theorem 3 and Figure 3 are
    paper claims on stand-ins; a closed form off by 1e-3 fails the check."""
    import pandas as pd

    from lib import report

    good = _v("holds", 1.5, 1.2, 1.8, boundary=1.0)
    bad = _v("undecided", 1.1, 0.9, 1.3, boundary=1.0)
    results = {25: {"verdict": bad}, 64: {"verdict": good}}
    fig3_v = _v("holds", 0.5, 0.45, 0.55)
    fig3 = theory.Figure3(
        xi=None,
        gc=None,
        shown=None,
        predicted=0,
        dead_row=14,
        input_dead_row=15,
        share_norm_unseen=0.3,
        positive={"unseen": (5, 10), "seen": (6, 10)},
    )
    prop2 = pd.DataFrame(
        {theory.PROP2_ERRORS[0]: [1e-16, 3e-16], theory.PROP2_ERRORS[1]: [2e-16, 1e-15]}
    )
    claims = report.Claims("04_walls_theory", "smoke")
    theory.add_claims(claims, prop2, results, fig3_v, fig3)
    rows = {c.claim_id: c for c in claims.rows}
    assert rows["prop2"].kind == "check" and rows["prop2"].tier is None
    assert rows["prop2"].verdict.estimate == pytest.approx(1e-15) and rows["prop2"].holds
    assert rows["theorem3"].kind == "paper" and rows["theorem3"].tier == "stand-in"
    assert rows["theorem3"].outcome == "undecided"  # V = 25 decides: every V must hold
    assert "deciding: V = 25" in rows["theorem3"].verdict.rule
    assert rows["figure3"].tier == "stand-in" and "5 of 10" in rows["figure3"].ours_text
    assert (
        report.tally(claims.rows)["undecided"] == 1 and sum(report.tally(claims.rows).values()) == 2
    )
    off = prop2.copy()
    off.loc[1, theory.PROP2_ERRORS[0]] = 1e-3
    claims = report.Claims("04_walls_theory", "smoke")
    theory.add_claims(claims, off, results, fig3_v, fig3)
    assert claims.rows[0].outcome == "does not hold" and claims.rows[0].verdict.estimate == 1e-3


def test_theorem3_overall_is_decided_by_the_weakest_v():
    """Every V must hold: one undecided V makes the whole undecided and is named; with every V
    holding, the V whose interval comes nearest 1 (low 1.1 < 1.2) decides; one failing V fails."""
    good = _v("holds", 1.5, 1.2, 1.8, boundary=1.0)
    near = _v("holds", 1.3, 1.1, 1.5, boundary=1.0)
    bad = _v("undecided", 1.1, 0.9, 1.3, boundary=1.0)
    worse = _v("does not hold", 0.8, 0.7, 0.9, boundary=1.0)
    at, v = theory.theorem3_overall({25: {"verdict": bad}, 64: {"verdict": good}})
    assert (at, v.outcome, v.low) == ("V = 25", "undecided", 0.9)
    at, v = theory.theorem3_overall({25: {"verdict": good}, 64: {"verdict": near}})
    assert (at, v.outcome, v.estimate) == ("V = 64", "holds", 1.3)
    at, v = theory.theorem3_overall({25: {"verdict": bad}, 64: {"verdict": worse}})
    assert (at, v.outcome) == ("V = 64", "does not hold")
    assert v.rule.startswith(theory.THEOREM3_RULE)
