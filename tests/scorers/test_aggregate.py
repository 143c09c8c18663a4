"""Aggregation of step scores: one table, one function."""

from __future__ import annotations

import math

import pytest

from slowthink.scorers.aggregate import AGGREGATIONS, aggregate

CASES = [
    # (scores, how, expected)
    ([0.9, 0.5, 0.8], "min", 0.5),  # weakest step
    ([0.9, 0.5, 0.8], "last", 0.8),  # the PRM's view of the whole path
    ([0.9, 0.5, 0.8], "mean", (0.9 + 0.5 + 0.8) / 3),
    ([0.9, 0.5, 0.8], "prod", 0.9 * 0.5 * 0.8),
    ([None, 0.4, None], "min", 0.4),  # unknown steps are skipped
    ([0.7, None], "last", 0.7),  # last *known* score
    ([1.0, None, 0.0], "mean", 0.5),
    ([None, 0.5, 0.5], "prod", 0.25),
    ([0.3, float("nan")], "min", 0.3),  # NaN counts as unknown
    ([], "min", None),  # nothing known
    ([None, None], "mean", None),
    ([1], "prod", 1.0),  # ints are fine
]


@pytest.mark.parametrize(("scores", "how", "expected"), CASES)
def test_aggregate_table(scores, how, expected) -> None:
    got = aggregate(scores, how)
    if expected is None:
        assert got is None
    else:
        assert isinstance(got, float)
        assert math.isclose(got, expected)


def test_names_are_the_four() -> None:
    assert set(AGGREGATIONS) == {"min", "last", "mean", "prod"}


@pytest.mark.parametrize("bad", ["max", "", "MIN", None])
def test_unknown_name_lists_valid_ones(bad) -> None:
    with pytest.raises(ValueError) as err:
        aggregate([0.5], bad)
    for name in AGGREGATIONS:
        assert name in str(err.value)
