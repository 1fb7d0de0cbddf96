"""How the book writes a number: integers as integers, other floats to three significant
figures (or given decimals), NaN and None as a dash, booleans as yes / no."""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

__all__ = ["format_number", "auto_digits", "is_number", "is_integral"]


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
