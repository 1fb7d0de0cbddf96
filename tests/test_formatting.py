"""lib.formatting: the words around a count or a difference agree with the number."""

import doctest

import pytest

from lib import formatting
from lib.formatting import at_most_times, count_of


def test_count_of_agrees_in_number():
    assert count_of(1, "counterfactual map") == "1 counterfactual map"
    assert count_of(2, "counterfactual map") == "2 counterfactual maps"
    assert count_of(0, "counterfactual map") == "no counterfactual map"
    assert count_of(3, "image", none="not one") == "3 images"
    assert count_of(1.0, "box") == "1 box"
    assert count_of(4, "box", "boxes") == "4 boxes"
    for bad in (-1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="a count is a whole number"):
            count_of(bad, "map")


def test_at_most_times_says_identical_instead_of_at_most_zero_times():
    assert at_most_times(0.0, "x") == "are identical, bit for bit"
    assert at_most_times(0, "x", equal="equals the engine's") == "equals the engine's, bit for bit"
    assert (
        at_most_times(1.25e-7, "its largest absolute value", verb="differs")
        == "differs by at most 1.2e-07 times its largest absolute value"
    )
    assert "0 times" not in at_most_times(0.0, "x")
    with pytest.raises(ValueError, match="finite and >= 0"):
        at_most_times(float("nan"), "x")


def test_the_examples_in_the_docstrings_run():
    failed, tried = doctest.testmod(formatting)
    assert tried >= 3 and failed == 0


def test_mean_std_by_hand():
    assert formatting.mean_std(0.2, 0.031) == "0.20 ± 0.03"
    assert formatting.mean_std(12.345, 0.06, 1, "one image") == "12.3 ± 0.1"
    assert formatting.mean_std(0.2, float("nan")) == "0.20 (one seed)"
    assert formatting.mean_std(0.2, None, 1, "one image") == "0.2 (one image)"
    assert formatting.mean_std(float("nan"), 0.1) == "—"  # never "nan"
