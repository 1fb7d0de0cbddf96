"""Verdicts fixed before the run: a rule, a 95 % interval from SciPy, and one of three outcomes.

A chapter states each claim as a rule on a quantity computed here ("the mean paired difference
Grad-CAM − even map is above 0"), then calls one of the functions below on its numbers. Each
returns a :class:`Verdict`: the estimate, its 95 % interval, the outcome and the difference the
rule could detect at this sample size.

- *holds*: the whole interval lies on the claim's side of the rule's boundary;
- *does not hold*: the whole interval lies on the other side;
- *undecided*: the interval contains both answers (too little data to decide).

The intervals come from SciPy, never from hand-written formulas: ``scipy.stats.bootstrap`` for
means and paired differences (BCa, 9,999 resamples, a fixed seed so that a re-run gives the same
interval), Wilson intervals for proportions (``scipy.stats.binomtest(...).proportion_ci``), an
exact sign test for per-seed differences. Identities of the code (``check``) and deterministic
computations on an exact architecture (``exact``) have no sampling: their interval is the point.

Example:
    >>> v = paired_difference([0.9, 0.8, 0.85, 0.7, 0.95, 0.9], [0.2, 0.3, 0.25, 0.1, 0.2, 0.3],
    ...                       rule="Grad-CAM's mass in box above the even map's", unit="photographs")
    >>> v.outcome, round(v.estimate, 3)
    ('holds', 0.625)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from .formatting import format_number

__all__ = [
    "HOLDS",
    "FAILS",
    "UNDECIDED",
    "NOT_RUN",
    "OUTCOMES",
    "CONFIDENCE",
    "MIN_UNITS",
    "OUTCOME_COLOURS",
    "Verdict",
    "no_units",
    "mean_above",
    "mean_below",
    "paired_difference",
    "relative_gap_within",
    "proportion_above",
    "sign_test",
    "within",
    "exact",
    "check",
    "trend",
    "decide",
    "not_run",
    "all_of",
]

HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "undecided"
#: a claim of the ``full`` profile that this run could not test (its data or weights are absent)
NOT_RUN = "not run here"
#: how pages and figures colour each outcome (always beside its word, never alone)
OUTCOME_COLOURS = {HOLDS: "#1a7f37", FAILS: "#cf222e", UNDECIDED: "#9a6700", NOT_RUN: "#6e7781"}
OUTCOMES = (HOLDS, FAILS, UNDECIDED)
CONFIDENCE = 0.95
N_RESAMPLES = 9999
#: fewer independent units than this decide nothing: no two-sided 5 % sign test can (2 · 2^-5 >
#: 0.05), and a bootstrap interval from so few values is too narrow (it cannot show the spread
#: of what it has not seen). The interval is still computed and shown; the outcome is undecided.
MIN_UNITS = 6
# z_(1 - 0.05/2) + z_(0.8): a true effect of (this) x standard error is found 80 % of the time
_DETECT_Z = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.8))


@dataclass(frozen=True)
class Verdict:
    """The outcome of one rule on this run's numbers.

    Attributes:
        outcome: ``"holds"``, ``"does not hold"``, ``"undecided"`` (or ``"not run here"``).
        estimate: the quantity the rule is about (a mean, a difference, a proportion).
        low, high: its 95 % interval (equal to ``estimate`` where nothing is sampled).
        boundary: the value the rule compares the interval with (``None`` for an equivalence
            rule, whose band is in ``rule``).
        rule: the rule in words, written before the run ("mean(Grad-CAM − even map) > 0").
        method: how the interval was computed ("paired bootstrap over 8 photographs, BCa").
        n: the number of independent units (images, seeds, scenes) behind the interval.
        detectable: the smallest true difference from ``boundary`` that the rule finds 80 % of
            the time at this ``n`` (2.8 standard errors; for the sign test, the smallest share
            of positive seeds that can decide); ``None`` where no result could decide.
        tolerance: for an equivalence rule (:func:`within`), the half-width of the band
            ``boundary`` ± ``tolerance`` that the interval must lie in.
    """

    outcome: str
    estimate: float
    low: float
    high: float
    boundary: float | None
    rule: str
    method: str
    n: int
    detectable: float | None = None
    tolerance: float | None = None

    def __post_init__(self):
        if self.outcome not in OUTCOMES + (NOT_RUN,):
            raise ValueError(
                f"outcome must be one of {OUTCOMES + (NOT_RUN,)}, got {self.outcome!r}"
            )
        if self.outcome == NOT_RUN or self.unmeasured:
            return
        for name in ("estimate", "low", "high"):
            v = getattr(self, name)
            if v is None or not math.isfinite(float(v)):
                raise ValueError(
                    f"verdict {self.rule!r}: {name} is {v!r}; an interval needs finite "
                    "numbers (drop or explain the missing values first)"
                )

    @property
    def holds(self) -> bool:
        return self.outcome == HOLDS

    @property
    def unmeasured(self) -> bool:
        """Undecided with no unit at all (``no_units``): no estimate, no interval."""
        return (
            self.outcome == UNDECIDED
            and self.n == 0
            and not math.isfinite(float(self.estimate if self.estimate is not None else math.nan))
        )

    def as_record(self) -> dict:
        return {
            k: (float(v) if isinstance(v, (np.floating, np.integer)) else v)
            for k, v in asdict(self).items()
        }

    def interval_text(self, digits: int | None = None) -> str:
        """ "0.61 [0.52, 0.70]", or the estimate alone where nothing was sampled."""
        if self.outcome == NOT_RUN or self.unmeasured:
            return "—"

        def fmt(x):
            if digits is None and x != 0 and abs(x) < 1e-3:
                return f"{x:.1e}"  # a check's error: 4 decimals would show 0.0000
            return format_number(x, digits)

        if self.low == self.high == self.estimate:
            return fmt(self.estimate)
        return f"{fmt(self.estimate)} [{fmt(self.low)}, {fmt(self.high)}]"


def _values(values, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float).ravel()
    if a.size == 0:
        raise ValueError(f"{what}: no values; a verdict needs at least one measurement")
    bad = ~np.isfinite(a)
    if bad.any():
        raise ValueError(
            f"{what}: {int(bad.sum())} of {a.size} values are NaN or infinite; "
            "drop or explain them before the verdict (never a silent NaN)"
        )
    return a


def decide(low: float, high: float, boundary: float, direction: str = ">") -> str:
    """The outcome of "the quantity ``direction`` ``boundary``" given its interval: holds if the
    whole interval is on the claim's side, does not hold if it is all on the other side (or on the
    boundary), undecided if it straddles the boundary."""
    if direction not in (">", "<"):
        raise ValueError(f"direction must be '>' or '<', got {direction!r}")
    if direction == "<":
        return decide(-high, -low, -boundary, ">")
    if low > boundary:
        return HOLDS
    if high <= boundary:
        return FAILS
    return UNDECIDED


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, paired: bool):
    """SciPy's BCa bootstrap of ``statistic`` (95 %, fixed seed, in batches so that 10,000 images
    fit in memory); a sample with no spread (every resample gives the same value) gets the point
    as its interval, BCa's NaN never escapes."""
    if len(samples[0]) < 2:
        raise ValueError(
            "a bootstrap interval needs at least 2 units (images, scenes, seeds); "
            "give more, or use exact() for a deterministic number"
        )
    point = float(statistic(*samples))
    if all(np.ptp(s) == 0 for s in samples) or (paired and np.ptp(samples[0] - samples[1]) == 0):
        return point, point, point, 0.0, "no spread: every resample gives the same value"
    batch = max(1, int(2e7 // max(1, len(samples[0]) * len(samples))))
    kw = dict(
        paired=paired,
        vectorized=True,
        confidence_level=CONFIDENCE,
        batch=batch,
        n_resamples=N_RESAMPLES,
        rng=np.random.default_rng(0),
    )
    stat = _vectorised(statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's degenerate-jackknife warning: handled below
        res = stats.bootstrap(samples, stat, method="BCa", **kw)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        kind = "BCa"
        if not (math.isfinite(lo) and math.isfinite(hi)):
            kw["rng"] = np.random.default_rng(0)
            res = stats.bootstrap(samples, stat, method="percentile", **kw)
            lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
            kind = "percentile (BCa undefined for these values)"
    return point, min(lo, point), max(hi, point), float(res.standard_error), kind


def _vectorised(statistic):
    """``statistic`` along the last axis (SciPy's vectorised form) for the two statistics used
    here (a mean, a difference of means); any other one runs row by row."""
    if statistic is np.mean:
        return lambda a, axis=-1: np.mean(a, axis=axis)
    if statistic is _mean_diff:
        return lambda a, b, axis=-1: np.mean(a, axis=axis) - np.mean(b, axis=axis)
    if statistic is _relative_gap:
        return _relative_gap

    def rowwise(*arrays, axis=-1):
        arrays = [np.moveaxis(np.asarray(a), axis, -1) for a in arrays]
        shape = arrays[0].shape[:-1]
        flat = [a.reshape(-1, a.shape[-1]) for a in arrays]
        return np.array([statistic(*rows) for rows in zip(*flat)]).reshape(shape)

    return rowwise


def _relative_gap(a, b, axis=-1):
    return 100 * (np.mean(a, axis=axis) - np.mean(b, axis=axis)) / np.mean(b, axis=axis)


def _few(outcome: str, n: int) -> str:
    """The outcome, or undecided where ``n`` units are too few to decide (``MIN_UNITS``)."""
    return UNDECIDED if n < MIN_UNITS else outcome


def _few_note(method: str, n: int) -> str:
    return method + (f"; fewer than {MIN_UNITS} units decide nothing" if n < MIN_UNITS else "")


def mean_above(
    values: Sequence[float], boundary: float = 0.0, *, rule: str, unit: str = "images"
) -> Verdict:
    """Whether the mean of ``values`` (one per image, scene or seed) is above ``boundary``.

    Args:
        values: one number per independent unit (1-D).
        boundary: the value the mean must exceed.
        rule: the rule in words.
        unit: what one value is ("photographs", "scenes", "seeds"), for the method's text.

    Returns:
        A :class:`Verdict` on the mean with its BCa bootstrap interval.
    """
    return _mean_against(values, boundary, ">", rule, unit)


def mean_below(
    values: Sequence[float], boundary: float = 0.0, *, rule: str, unit: str = "images"
) -> Verdict:
    """Whether the mean of ``values`` is below ``boundary`` (see :func:`mean_above`)."""
    return _mean_against(values, boundary, "<", rule, unit)


def _mean_against(values, boundary: float, side: str, rule: str, unit: str) -> Verdict:
    a = _values(values, rule)
    est, lo, hi, se, kind = _bootstrap((a,), np.mean, paired=False)
    return Verdict(
        _few(decide(lo, hi, boundary, side), a.size),
        est,
        lo,
        hi,
        float(boundary),
        rule,
        _few_note(f"bootstrap over {a.size} {unit}, {kind}", a.size),
        a.size,
        _DETECT_Z * se or None,
    )


def _mean_diff(a, b):
    return np.mean(a) - np.mean(b)


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    margin: float = 0.0,
    *,
    rule: str,
    unit: str = "images",
    direction: str = ">",
) -> Verdict:
    """Whether mean(a) − mean(b) is above ``margin`` (``direction=">"``) or below it (``"<"``),
    with ``a[i]`` and ``b[i]`` measured on the same unit ``i`` (two methods on the same images, two
    models of the same seed): SciPy's paired bootstrap.

    Args:
        a, b: paired values, one per unit, the same length.
        margin: the difference the claim needs (0 for "a beats b").
        rule: the rule in words.
        unit: what one pair is.
        direction: ``">"`` (a exceeds b by more than ``margin``) or ``"<"``.

    Returns:
        A :class:`Verdict` on mean(a) − mean(b).

    Example:
        >>> paired_difference([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], rule="a > b").outcome
        'does not hold'
        >>> paired_difference([2, 3, 4, 5], [1, 2, 3, 4], rule="a > b").outcome  # 4 images
        'undecided'
    """
    a, b = _values(a, rule), _values(b, rule)
    if a.shape != b.shape:
        raise ValueError(f"{rule}: paired values need the same length, got {a.size} and {b.size}")
    est, lo, hi, se, kind = _bootstrap((a, b), _mean_diff, paired=True)
    return Verdict(
        _few(decide(lo, hi, margin, direction), a.size),
        est,
        lo,
        hi,
        float(margin),
        rule,
        _few_note(f"paired bootstrap over {a.size} {unit}, {kind}", a.size),
        a.size,
        _DETECT_Z * se or None,
    )


def relative_gap_within(
    a: Sequence[float],
    b: Sequence[float],
    target: float,
    tolerance: float,
    *,
    rule: str,
    unit: str = "images",
) -> Verdict:
    """Whether the relative gap 100 · (mean(a) − mean(b)) / mean(b) (in %) lies within
    ``target`` ± ``tolerance`` (a paper's "almost 10 % higher"), ``a[i]`` and ``b[i]`` paired:
    SciPy's paired BCa bootstrap of the ratio; fewer than ``MIN_UNITS`` pairs decide nothing.

    Example:
        >>> v = relative_gap_within([11, 12, 10, 11, 12, 10], [10, 11, 9, 10, 11, 9], 10, 5,
        ...                         rule="almost 10 % higher")
        >>> v.outcome, round(v.estimate, 2)
        ('holds', 10.0)
    """
    a, b = _values(a, rule), _values(b, rule)
    if a.shape != b.shape:
        raise ValueError(f"{rule}: paired values need the same length, got {a.size} and {b.size}")
    if np.mean(b) <= 0:
        raise ValueError(f"{rule}: mean(b) = {np.mean(b):g}; a relative gap needs a positive base")
    est, lo, hi, se, kind = _bootstrap((a, b), _relative_gap, paired=True)
    band_lo, band_hi = target - tolerance, target + tolerance
    outcome = (
        HOLDS
        if band_lo <= lo and hi <= band_hi
        else FAILS
        if hi < band_lo or lo > band_hi
        else UNDECIDED
    )
    return Verdict(
        _few(outcome, a.size),
        est,
        lo,
        hi,
        float(target),
        rule,
        _few_note(f"paired bootstrap over {a.size} {unit}, {kind}", a.size),
        a.size,
        _DETECT_Z * se or None,
        float(tolerance),
    )


def proportion_above(k: int, n: int, p0: float, *, rule: str, unit: str = "images") -> Verdict:
    """Whether a rate of ``k`` successes in ``n`` is above ``p0`` (chance, a baseline's rate):
    the Wilson interval of ``scipy.stats.binomtest(k, n).proportion_ci``.

    Example:
        >>> proportion_above(45, 50, 0.5, rule="hits above chance").outcome
        'holds'
        >>> proportion_above(3, 5, 0.5, rule="hits above chance").outcome
        'undecided'
    """
    k, n = int(k), int(n)
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"{rule}: need 0 <= k <= n and n > 0, got k={k}, n={n}")
    if not 0 <= p0 <= 1:
        raise ValueError(f"{rule}: p0 must be a proportion in [0, 1], got {p0}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    p = max(min(p0, 1 - 1e-9), 1e-9)
    return Verdict(
        decide(ci.low, ci.high, p0, ">"),
        k / n,
        float(ci.low),
        float(ci.high),
        float(p0),
        rule,
        f"Wilson interval, {k} of {n} {unit}",
        n,
        _DETECT_Z * math.sqrt(p * (1 - p) / n),
    )


def sign_test(differences: Sequence[float], *, rule: str, unit: str = "seeds") -> Verdict:
    """Whether paired differences (one per seed) are positive more often than not: the exact
    sign test (``scipy.stats.binomtest`` on the positive share, zeros dropped) and the exact
    (Clopper-Pearson) interval of that share; holds if its interval lies above 1/2.

    With ``n`` non-zero differences the test can decide only when every seed agrees and
    2 · 2^-n < 0.05 (``n`` ≥ 6); ``detectable`` is the smallest share of positive seeds that
    decides, ``None`` where none can.

    Example:
        >>> sign_test([0.1, 0.2, 0.05], rule="GAP above GMP in every seed").outcome
        'undecided'
    """
    d = _values(differences, rule)
    nz = d[d != 0]
    n, k = nz.size, int((nz > 0).sum())
    if n == 0:
        return Verdict(
            FAILS,
            0.5,
            0.5,
            0.5,
            0.5,
            rule,
            f"exact sign test, {d.size} {unit}, every difference zero",
            d.size,
            None,
        )
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    need = next(
        (
            j / n
            for j in range(n + 1)
            if stats.binomtest(j, n).proportion_ci(CONFIDENCE, "exact").low > 0.5
        ),
        None,
    )
    return Verdict(
        decide(ci.low, ci.high, 0.5, ">"),
        k / n,
        float(ci.low),
        float(ci.high),
        0.5,
        rule,
        f"exact sign test, {k} of {n} {unit} positive",
        n,
        need,
    )


def within(
    values: Sequence[float] | None,
    target: float,
    tolerance: float,
    *,
    rule: str,
    unit: str = "images",
    estimate: float | None = None,
    interval: tuple[float, float] | None = None,
) -> Verdict:
    """Whether a mean is within ``target`` ± ``tolerance`` (an equivalence claim: "about as well
    as", "within 1 point of the paper"): holds if the whole interval is inside the band, does not
    hold if the interval and the band do not meet, undecided otherwise. The interval is the
    bootstrap of ``values``' mean, or the ``interval`` given with ``estimate`` (a Wilson interval,
    for example, or ``(x, x)`` for a deterministic number ``x``). Fewer than ``MIN_UNITS`` values
    (one included) decide nothing: undecided.
    """
    if tolerance < 0:
        raise ValueError(f"{rule}: tolerance must be >= 0, got {tolerance}")
    if values is not None:
        a = _values(values, rule)
        if a.size == 1:  # one unit: no interval, and it decides nothing (MIN_UNITS)
            est = lo = hi = float(a[0])
            se, kind = 0.0, f"a single {unit[:-1] if unit.endswith('s') else unit}"
        else:
            est, lo, hi, se, kind = _bootstrap((a,), np.mean, paired=False)
            kind = f"bootstrap over {a.size} {unit}, {kind}"
        n = a.size
    else:
        if estimate is None or interval is None:
            raise ValueError(f"{rule}: give values, or estimate and interval")
        est, (lo, hi) = float(estimate), map(float, interval)
        se, kind, n = (hi - lo) / (2 * 1.96), "the interval given", 0
    band_lo, band_hi = target - tolerance, target + tolerance
    if band_lo <= lo and hi <= band_hi:
        outcome = HOLDS
    elif hi < band_lo or lo > band_hi:
        outcome = FAILS
    else:
        outcome = UNDECIDED
    if values is not None:  # a bootstrap over few units (or one number) decides nothing
        outcome, kind = _few(outcome, n), _few_note(kind, n)
    return Verdict(
        outcome, est, lo, hi, float(target), rule, kind, n, _DETECT_Z * se or None, float(tolerance)
    )


def exact(
    value: float,
    expected: float | None = None,
    *,
    rule: str,
    holds: bool | None = None,
    method: str = "exact computation, nothing sampled",
) -> Verdict:
    """A deterministic number (a receptive field traced from the architecture, a dead zone): no
    sampling, so its interval is the point. The outcome is ``value == expected``, or ``holds``
    where the rule compares more than one number (it must then be computed, not typed)."""
    v = float(value)
    if holds is None:
        if expected is None:
            raise ValueError(f"{rule}: give expected= or a computed holds=")
        holds = bool(v == float(expected))
    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"{rule}: holds must be a bool computed from the numbers, got {holds!r}")
    return Verdict(
        HOLDS if holds else FAILS,
        v,
        v,
        v,
        None if expected is None else float(expected),
        rule,
        method,
        1,
        0.0,
    )


def check(error: float, tolerance: float, *, rule: str) -> Verdict:
    """An identity of the code (CAM = Z · Grad-CAM, w = Z α): the largest measured ``error``
    against ``tolerance``. A check is shown with its error and never counted as evidence."""
    e = abs(float(error))
    if not math.isfinite(e):
        raise ValueError(f"{rule}: the measured error is {error!r}; a check needs a finite number")
    return Verdict(
        HOLDS if e <= tolerance else FAILS,
        e,
        e,
        e,
        float(tolerance),
        rule,
        "measured error, nothing sampled",
        1,
        None,
    )


def _slope(x, y):
    return stats.linregress(x, y).slope


def trend(
    x: Sequence[float],
    y: Sequence[float],
    *,
    rule: str,
    direction: str = ">",
    groups: Sequence | None = None,
    unit: str = "images",
) -> Verdict:
    """Whether ``y`` rises (``">"``) or falls (``"<"``) with ``x``: the least-squares slope, its
    interval from a paired bootstrap of the (x, y) pairs, or of whole ``groups`` (one image's
    values at every x stay together) when given."""
    x, y = _values(x, rule), _values(y, rule)
    if x.shape != y.shape:
        raise ValueError(f"{rule}: x and y need the same length, got {x.size} and {y.size}")
    if np.ptp(x) == 0:
        raise ValueError(f"{rule}: x has a single value; a trend needs at least two")
    if groups is None:
        est, lo, hi, se, kind = _bootstrap((x, y), _slope, paired=True)
        n, what = x.size, f"paired bootstrap over {x.size} points"
    else:
        g = np.asarray(groups)
        keys = list(dict.fromkeys(g.tolist()))
        idx = np.arange(len(keys))
        members = [np.flatnonzero(g == k) for k in keys]

        def stat(i):
            sel = np.concatenate([members[int(j)] for j in i])
            return _slope(x[sel], y[sel])

        est = float(_slope(x, y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(
                (idx,),
                stat,
                vectorized=False,
                confidence_level=CONFIDENCE,
                n_resamples=1999,
                method="percentile",
                rng=np.random.default_rng(0),
            )
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        se, kind = float(res.standard_error), "percentile"
        n, what = len(keys), f"bootstrap over {len(keys)} {unit} (each with all its points)"
    return Verdict(
        _few(decide(lo, hi, 0.0, direction), n),
        est,
        lo,
        hi,
        0.0,
        rule,
        _few_note(f"{what}, {kind}", n),
        n,
        _DETECT_Z * se or None,
    )


def no_units(rule: str, why: str) -> Verdict:
    """A rule that ran but found no unit to test (no attack succeeded, say): undecided, with
    ``why`` as its method, no estimate and no interval."""
    return Verdict(UNDECIDED, math.nan, math.nan, math.nan, None, rule, why, 0, None)


def not_run(rule: str, why: str) -> Verdict:
    """A claim of the ``full`` profile that this run does not test: shown as "not run here"."""
    return Verdict(NOT_RUN, math.nan, math.nan, math.nan, None, rule, why, 0, None)


def all_of(verdicts: Mapping[str, Verdict], rule: str, direction: str = ">") -> tuple[str, Verdict]:
    """One verdict for "the rule holds for every one of ``verdicts``" (an intersection-union
    test: each member at 95 %, no correction needed): it holds if every member holds, does not
    hold if any does not, and is undecided otherwise; if a member was not run, neither is the
    whole. The estimate and interval shown are the deciding member's, the least favourable one: a
    failing one first, then an undecided one, then the one whose interval comes nearest its
    boundary on the ``direction`` side (or, for an equivalence rule, to its band's nearer edge).
    Every member needs a boundary on one common scale.

    Returns:
        ``(name of the deciding member, the combined Verdict)``.
    """
    if not verdicts:
        raise ValueError(f"{rule}: no verdicts to combine")
    if direction not in (">", "<"):
        raise ValueError(f"direction must be '>' or '<', got {direction!r}")
    for name, v in verdicts.items():
        if v.outcome == NOT_RUN:
            return name, not_run(rule, f"{name}: {v.method}")
    if any(v.boundary is None for v in verdicts.values()):
        raise ValueError(f"{rule}: every member needs a boundary (a rule on a common scale)")
    rank = {FAILS: 0, UNDECIDED: 1, HOLDS: 2}

    def margin(v):
        if v.tolerance is not None:  # an equivalence band: the nearer edge
            return min(v.low - (v.boundary - v.tolerance), (v.boundary + v.tolerance) - v.high)
        return (v.low - v.boundary) if direction == ">" else (v.boundary - v.high)

    name, worst = min(verdicts.items(), key=lambda kv: (rank[kv[1].outcome], margin(kv[1])))
    outcomes = {v.outcome for v in verdicts.values()}
    outcome = FAILS if FAILS in outcomes else UNDECIDED if UNDECIDED in outcomes else HOLDS
    return name, replace(
        worst,
        outcome=outcome,
        rule=f"{rule} (every one of {len(verdicts)}; deciding: {name})",
        method=f"{name}: {worst.method}",
    )
