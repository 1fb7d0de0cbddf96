"""lib.verdict: each rule gives each of its three outcomes on hand-made cases, and its interval is
SciPy's (the bootstrap, Wilson and Clopper-Pearson intervals recomputed here independently)."""

import math

import numpy as np
import pytest
from scipy import stats

from lib import verdict as V


# -- decide: the three outcomes from an interval -----------------------------------------------------
@pytest.mark.parametrize(
    "low, high, direction, outcome",
    [
        (0.1, 0.5, ">", V.HOLDS),  # all above 0
        (-0.5, -0.1, ">", V.FAILS),  # all below
        (-0.1, 0.5, ">", V.UNDECIDED),  # contains both answers
        (-0.5, 0.0, ">", V.FAILS),  # on the boundary is not above it
        (-0.5, -0.1, "<", V.HOLDS),
        (0.1, 0.5, "<", V.FAILS),
        (-0.1, 0.1, "<", V.UNDECIDED),
    ],
)
def test_decide_by_hand(low, high, direction, outcome):
    assert V.decide(low, high, 0.0, direction) == outcome


# -- paired bootstrap ---------------------------------------------------------------------------------
def test_paired_difference_gives_each_outcome():
    rng = np.random.default_rng(3)
    b = rng.random(40)
    assert (
        V.paired_difference(b + 0.3 + 0.01 * rng.standard_normal(40), b, rule="a > b").outcome
        == V.HOLDS
    )
    assert V.paired_difference(b - 0.3, b, rule="a > b").outcome == V.FAILS
    noisy = b + rng.standard_normal(40)  # a difference of mean ~0 with SD 1 over 40 pairs
    assert V.paired_difference(noisy - np.mean(noisy - b), b, rule="a > b").outcome == V.UNDECIDED


def test_paired_difference_is_scipys_paired_bca_bootstrap():
    a = np.array([0.9, 0.8, 0.85, 0.7, 0.95, 0.9, 0.6, 0.75])
    b = np.array([0.2, 0.3, 0.25, 0.1, 0.2, 0.3, 0.5, 0.4])
    v = V.paired_difference(a, b, rule="a > b", unit="photographs")
    ref = stats.bootstrap(
        (a, b),
        lambda x, y: np.mean(x) - np.mean(y),
        paired=True,
        vectorized=False,
        n_resamples=9999,
        method="BCa",
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert v.estimate == pytest.approx(np.mean(a - b))
    assert (v.low, v.high) == pytest.approx((ref.low, ref.high))
    assert v.n == 8 and "paired bootstrap over 8 photographs" in v.method
    # the pairing matters: the same values unpaired spread the differences differently
    assert V.paired_difference(a, b, rule="a > b").low == v.low  # a re-run gives the same interval


def test_pairing_is_what_makes_a_small_consistent_difference_decidable():
    base = np.linspace(0.0, 1.0, 20)
    a, b = base + 0.02, base  # a beats b by 0.02 on every image, images vary by 1.0
    assert V.paired_difference(a, b, rule="a > b").outcome == V.HOLDS


def test_margin_and_direction():
    a = np.array([1.0, 1.2, 0.9, 1.1, 1.05, 0.95])
    b = np.zeros(6)
    assert V.paired_difference(a, b, 0.5, rule="a - b > 0.5").outcome == V.HOLDS
    assert V.paired_difference(a, b, 2.0, rule="a - b > 2").outcome == V.FAILS
    assert V.paired_difference(b, a, 0.0, rule="a < b", direction="<").outcome == V.HOLDS


def test_no_spread_gives_the_point_not_a_nan():
    v = V.paired_difference([2.0, 3.0, 4.0, 5, 6, 7], [1.0, 2.0, 3.0, 4, 5, 6], rule="a > b")
    assert (v.estimate, v.low, v.high) == (1.0, 1.0, 1.0) and v.outcome == V.HOLDS
    v = V.mean_above([0.0] * 6, 0.0, rule="m > 0")
    assert v.outcome == V.FAILS and v.low == v.high == 0.0


def test_fewer_than_six_units_decide_nothing():
    """Four photographs that all agree: the BCa interval excludes 0, but no two-sided 5 % test on
    4 units can decide (the sign test's smallest p is 2/16), so the outcome is undecided."""
    a, b = [0.9, 0.8, 0.85, 0.7], [0.2, 0.3, 0.25, 0.1]
    v = V.paired_difference(a, b, rule="a > b", unit="photographs")
    assert v.low > 0 and v.outcome == V.UNDECIDED and "fewer than 6 units" in v.method
    assert V.mean_above([1.0, 1.1, 0.9], 0.0, rule="m > 0").outcome == V.UNDECIDED
    assert V.within([1.0, 1.01, 0.99], 1.0, 0.5, rule="≈ 1").outcome == V.UNDECIDED
    with pytest.raises(ValueError, match="at least 2 units"):
        V.paired_difference([1.0], [0.0], rule="a > b")


def test_ten_thousand_images_fit_in_memory_and_match_the_normal_interval():
    rng = np.random.default_rng(0)
    a = (rng.random(10_000) < 0.9).astype(float)  # correct / wrong per test image
    b = (rng.random(10_000) < 0.88).astype(float)
    v = V.paired_difference(a, b, rule="accuracy a > b")
    d = a - b
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert (v.low, v.high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-3)


def test_nan_and_mismatched_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="1 of 3 values are NaN"):
        V.mean_above([1.0, math.nan, 2.0], rule="m > 0")
    with pytest.raises(ValueError, match="same length"):
        V.paired_difference([1.0, 2.0], [1.0], rule="a > b")
    with pytest.raises(ValueError, match="no values"):
        V.mean_above([], rule="m > 0")


def test_mean_above_and_below():
    x = np.array([0.31, 0.29, 0.35, 0.33, 0.30, 0.32])
    assert V.mean_above(x, 0.2, rule="m > 0.2").outcome == V.HOLDS
    assert V.mean_above(x, 0.4, rule="m > 0.4").outcome == V.FAILS
    assert V.mean_above(x, 0.32, rule="m > 0.32").outcome == V.UNDECIDED
    assert V.mean_below(x, 0.4, rule="m < 0.4").outcome == V.HOLDS


# -- proportions --------------------------------------------------------------------------------------
def test_proportion_is_the_wilson_interval_and_gives_each_outcome():
    v = V.proportion_above(45, 50, 0.5, rule="hit rate > 1/2")
    p, n, z = 0.9, 50, stats.norm.ppf(0.975)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)  # Wilson's interval by hand
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (v.low, v.high) == pytest.approx((centre - half, centre + half))
    assert v.outcome == V.HOLDS
    assert V.proportion_above(5, 50, 0.5, rule="r").outcome == V.FAILS
    assert V.proportion_above(3, 5, 0.5, rule="r").outcome == V.UNDECIDED  # 5 images decide little
    with pytest.raises(ValueError, match="0 <= k <= n"):
        V.proportion_above(6, 5, 0.5, rule="r")


# -- the sign test --------------------------------------------------------------------------------------
def test_three_seeds_can_never_decide():
    """'Higher in every seed' over 3 seeds is a sign test with p = 1/8: undecided, and no share of
    3 seeds could decide (``detectable`` is None)."""
    v = V.sign_test([0.1, 0.2, 0.3], rule="GAP > GMP")
    assert v.outcome == V.UNDECIDED and v.detectable is None
    ci = stats.binomtest(3, 3).proportion_ci(0.95, "exact")
    assert (v.low, v.high) == pytest.approx((ci.low, ci.high))


def test_sign_test_decides_with_enough_seeds():
    assert V.sign_test([0.1] * 8, rule="r").outcome == V.HOLDS
    assert V.sign_test([-0.1] * 8, rule="r").outcome == V.FAILS
    assert V.sign_test([0.1] * 5 + [-0.1] * 3, rule="r").outcome == V.UNDECIDED
    assert V.sign_test([0.1] * 8, rule="r").detectable == 1.0  # only 8 of 8 decides at n = 8


# -- equivalence, exact numbers, checks, trends --------------------------------------------------------
def test_within_gives_each_outcome():
    assert V.within([1.0, 1.02, 0.98, 1.01, 1.0, 0.99], 1.0, 0.1, rule="≈ 1").outcome == V.HOLDS
    assert V.within([2.0, 2.02, 1.98, 2.01, 2.0, 1.99], 1.0, 0.1, rule="≈ 1").outcome == V.FAILS
    assert V.within([1.0, 1.02, 0.98, 1.01, 1.0, 0.99], 1.0, 0.1, rule="≈ 1").tolerance == 0.1
    assert (
        V.within(None, 1.0, 0.1, rule="≈ 1", estimate=1.05, interval=(0.95, 1.15)).outcome
        == V.UNDECIDED
    )
    one = V.within([1.05], 1.0, 0.1, rule="≈ 1")  # one image: its value, deciding nothing
    assert (one.low, one.high, one.outcome) == (1.05, 1.05, V.UNDECIDED)
    exact = V.within(None, 1.0, 0.1, rule="≈ 1", estimate=1.05, interval=(1.05, 1.05))
    assert exact.outcome == V.HOLDS  # a deterministic number, said so by the caller


def test_exact_and_check():
    assert V.exact(427, 427, rule="RF = 427 px").outcome == V.HOLDS
    assert V.exact(431, 427, rule="RF = 427 px").outcome == V.FAILS
    with pytest.raises(TypeError, match="holds must be a bool"):
        V.exact(1, rule="r", holds="yes")
    c = V.check(3e-7, 1e-5, rule="|CAM − Z·Grad-CAM| ≤ 1e-5")
    assert c.outcome == V.HOLDS and c.estimate == 3e-7 and c.interval_text() == "3.0e-07"
    assert V.check(1e-3, 1e-5, rule="r").outcome == V.FAILS
    with pytest.raises(ValueError, match="finite"):
        V.check(math.nan, 1e-5, rule="r")


def test_trend_by_groups():
    x = np.tile([1.0, 2.0, 3.0, 4.0], 8)
    rng = np.random.default_rng(0)
    falling = 4 - x + 0.05 * rng.standard_normal(32)
    groups = np.repeat(np.arange(8), 4)
    v = V.trend(x, falling, rule="falls with depth", direction="<", groups=groups, unit="images")
    assert v.outcome == V.HOLDS and v.estimate == pytest.approx(stats.linregress(x, falling).slope)
    assert v.n == 8
    flat = 0.5 * rng.standard_normal(32)
    assert V.trend(x, flat, rule="r", direction="<", groups=groups).outcome == V.UNDECIDED
    assert V.trend(x, -falling, rule="r", direction="<", groups=groups).outcome == V.FAILS


def test_not_run_and_bad_outcomes():
    v = V.not_run("within 1 point", "needs ILSVRC 2012 val (profile full)")
    assert v.outcome == V.NOT_RUN and v.interval_text() == "—"
    with pytest.raises(ValueError, match="outcome must be one of"):
        V.Verdict("yes", 1.0, 1.0, 1.0, 0.0, "r", "m", 1)
    with pytest.raises(ValueError, match="finite"):
        V.Verdict(V.HOLDS, math.nan, 0.0, 1.0, 0.0, "r", "m", 1)


def test_the_docstring_examples_run():
    import doctest

    result = doctest.testmod(V, raise_on_error=False)
    assert result.attempted >= 6 and result.failed == 0


def _hand(outcome, est, low, high, boundary=0.0):
    return V.Verdict(outcome, est, low, high, boundary, f"rule {est}", "hand-made", 10, None)


def test_all_of_gives_each_of_the_three_outcomes():
    """Every member must hold: all hold -> the smallest lower end decides; one undecided (and none
    failing) -> undecided; one failing -> does not hold, the most clearly reversed deciding."""
    a, b = _hand("holds", 5.0, 3.0, 7.0), _hand("holds", 2.0, 0.5, 3.5)
    name, v = V.all_of({"a": a, "b": b}, "both above 0")
    assert (name, v.outcome, v.estimate, v.low) == ("b", "holds", 2.0, 0.5)
    assert v.rule == "both above 0 (every one of 2; deciding: b)" and v.method == "b: hand-made"
    u = _hand("undecided", 1.0, -0.5, 2.5)
    name, v = V.all_of({"a": a, "u": u, "b": b}, "all above 0")
    assert (name, v.outcome) == ("u", "undecided")
    f1, f2 = _hand("does not hold", -1.0, -2.0, -0.5), _hand("does not hold", -3.0, -4.0, -2.0)
    name, v = V.all_of({"a": a, "u": u, "f1": f1, "f2": f2}, "all above 0")
    assert (name, v.outcome) == ("f2", "does not hold")
    with pytest.raises(ValueError, match="no verdicts"):
        V.all_of({}, "nothing")
    # direction "<": the least favourable is the one whose interval reaches highest
    lo_a, lo_b = _hand("holds", -0.7, -0.9, -0.5), _hand("holds", -0.2, -0.3, -0.1)
    assert V.all_of({"a": lo_a, "b": lo_b}, "both < 0", "<")[1].high == -0.1
    # one member not run: neither is the whole
    name, v = V.all_of({"a": lo_a, "full": V.not_run("r", "profile full")}, "both < 0", "<")
    assert (name, v.outcome) == ("full", V.NOT_RUN) and "profile full" in v.method


def test_no_units_is_undecided_and_says_why():
    v = V.no_units("share > 0.9", "no attack succeeded")
    assert v.outcome == V.UNDECIDED and v.n == 0 and v.method == "no attack succeeded"
    assert v.interval_text() == "—" and v.outcome != V.NOT_RUN
