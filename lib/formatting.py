"""How the book writes a number: integers as integers, other floats to three significant
figures (or given decimals), NaN and None as a dash, booleans as yes / no."""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

__all__ = [
    "format_number",
    "auto_digits",
    "is_number",
    "is_integral",
    "count_of",
    "at_most_times",
    "signed",
    "with_interval",
    "named_intervals",
    "mean_std",
]


def is_number(v: Any) -> bool:
    return isinstance(v, (numbers.Real, np.number)) and not isinstance(v, (bool, np.bool_))


def is_integral(v: Any) -> bool:
    return is_number(v) and math.isfinite(float(v)) and float(v).is_integer()


def auto_digits(values: Iterable[Any]) -> int:
    """Decimals that give the largest finite, non-zero |value| three significant figures, from 0
    to 4 (22.7 -> 1, 0.142948 -> 3, 1047.3 -> 0, 0.0004 -> 4)."""
    mags = [abs(float(v)) for v in values if is_number(v) and math.isfinite(float(v)) and v != 0]
    if not mags:
        return 0
    return int(min(4, max(0, 2 - math.floor(math.log10(max(mags))))))


def format_number(v: Any, digits: int | None = None, na: str = "—") -> str:
    """``v`` as the page shows it: an integral number as an integer (1047.0 -> "1047"), another
    float with ``digits`` decimals (default: three significant figures, ``auto_digits``), NaN or
    None as ``na``, a bool as "yes" / "no", anything else as ``str(v)``."""
    if v is None:
        return na
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if hasattr(v, "detach") and getattr(v, "ndim", None) == 0:  # a 0-d torch tensor
        v = v.item()
    if not is_number(v):
        return str(v)
    f = float(v)
    if math.isnan(f):
        return na
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    if digits is None:
        if f.is_integer():
            return str(int(f))
        digits = auto_digits([f])
    text = f"{f:.{digits}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def count_of(n: int, singular: str, plural: str | None = None, none: str = "no") -> str:
    """``n`` things in words whose number agrees with ``n``: the noun in the singular for 1, in
    the plural (``plural``, default ``singular + "s"``) otherwise, ``none`` for 0.

    >>> count_of(1, "counterfactual map"), count_of(3, "counterfactual map"), count_of(0, "map")
    ('1 counterfactual map', '3 counterfactual maps', 'no map')
    """
    if not is_integral(n) or n < 0:
        raise ValueError(f"count_of: a count is a whole number >= 0, got {n!r}")
    n = int(n)
    if n == 0:
        return f"{none} {singular}"
    return f"1 {singular}" if n == 1 else f"{n} {plural or singular + 's'}"


def at_most_times(
    difference: float, of: str, verb: str = "differ", equal: str = "are identical", fmt: str = ".1e"
) -> str:
    """A largest relative difference in words: ``verb`` by at most ``difference`` times ``of``,
    or ``equal`` (bit for bit) when it is exactly 0, where "at most 0 times" would say nothing.

    >>> at_most_times(3.2e-8, "the map's largest absolute value")
    "differ by at most 3.2e-08 times the map's largest absolute value"
    >>> at_most_times(0.0, "the map's largest absolute value")
    'are identical, bit for bit'
    """
    d = float(difference)
    if not math.isfinite(d) or d < 0:
        raise ValueError(f"at_most_times: a difference is finite and >= 0, got {difference!r}")
    if d == 0:
        return f"{equal}, bit for bit"
    return f"{verb} by at most {d:{fmt}} times {of}"


def signed(v: Any, digits: int = 2, na: str = "—") -> str:
    """``v`` with its sign always written and ``digits`` decimals (a difference: "+0.44",
    "-0.07"), NaN or None as ``na`` (a verdict that was not run has no estimate).

    >>> signed(0.4417), signed(-0.07), signed(float("nan"))
    ('+0.44', '-0.07', '—')
    """
    if v is None or (is_number(v) and math.isnan(float(v))):
        return na
    if not is_number(v):
        raise ValueError(f"signed: a number or NaN, got {v!r}")
    return f"{float(v):+.{digits}f}"


def with_interval(estimate: Any, low: Any, high: Any, digits: int = 3) -> str:
    """An estimate and its interval, each with its sign (:func:`signed`): "+0.040 [+0.021,
    +0.060]"; a NaN or None reads "—".

    >>> with_interval(0.04, 0.0213, 0.06)
    '+0.040 [+0.021, +0.060]'
    """
    return f"{signed(estimate, digits)} [{signed(low, digits)}, {signed(high, digits)}]"


def named_intervals(per: Any, digits: int = 3, words: Any = None) -> str:
    """Each entry of ``per`` (a name -> anything with ``estimate``, ``low`` and ``high``, e.g. a
    ``lib.verdict.Verdict``) as "name estimate [low, high]" (:func:`with_interval`), joined by
    "; ". With ``words`` (an outcome -> its words, given by the page), each is followed by
    ", " and the words for its ``outcome``.

    >>> from types import SimpleNamespace as V
    >>> named_intervals({"a": V(estimate=0.3, low=0.2, high=0.4, outcome="holds")}, 2)
    'a +0.30 [+0.20, +0.40]'
    >>> named_intervals({"a": V(estimate=0.3, low=0.2, high=0.4, outcome="holds")}, 2, {"holds": "holds"})
    'a +0.30 [+0.20, +0.40], holds'
    """
    parts = []
    for name, v in per.items():
        text = f"{name} {with_interval(v.estimate, v.low, v.high, digits)}"
        if words is not None:
            if v.outcome not in words:
                raise ValueError(
                    f"named_intervals: no words for the outcome {v.outcome!r} of {name!r}; "
                    f"words has {sorted(words)}: add it"
                )
            text += f", {words[v.outcome]}"
        parts.append(text)
    return "; ".join(parts)


def mean_std(mean: float, std: float | None, digits: int = 2, single: str = "one seed") -> str:
    """ "mean ± std" to ``digits`` decimals; "mean (``single``)" where the spread is undefined
    (one value: None or NaN); "—" where the mean is.

    >>> mean_std(0.2, 0.031), mean_std(0.2, float("nan")), mean_std(float("nan"), 1.0)
    ('0.20 ± 0.03', '0.20 (one seed)', '—')
    """
    if mean is None or math.isnan(float(mean)):
        return "—"
    if std is None or math.isnan(float(std)):
        return f"{mean:.{digits}f} ({single})"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
