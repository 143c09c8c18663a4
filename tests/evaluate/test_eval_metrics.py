"""Metrics: Wilson intervals and the per-strategy / per-group table on known outcomes."""

from __future__ import annotations

import pytest

from slowthink.evaluate.metrics import Outcome, summarize, wilson


@pytest.mark.parametrize(
    "correct, n, lo, hi",
    [
        (8, 10, 0.4902, 0.9433),  # textbook example
        (50, 100, 0.4038, 0.5962),  # symmetric around 0.5
        (0, 5, 0.0, 0.4345),  # no success: the interval still has width
        (5, 5, 0.5655, 1.0),  # all successes
        (1, 1, 0.2065, 1.0),  # a single problem
        (0, 0, 0.0, 0.0),  # nothing evaluated yet
    ],
)
def test_wilson_known_values(correct, n, lo, hi):
    got = wilson(correct, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)


def test_wilson_contains_the_proportion_and_narrows_with_n():
    for n in (5, 20, 100, 1000):
        lo, hi = wilson(0.3 * n, n)
        assert lo < 0.3 < hi
    assert (wilson(30, 100)[1] - wilson(30, 100)[0]) > (wilson(300, 1000)[1] - wilson(300, 1000)[0])


def known_table() -> list[Outcome]:
    """10 problems: category A has 6 (4 right), B has 4 (1 right, 1 error); levels 1 and 2."""
    rows = [
        # category, level, correct, answered, error, policy tokens, scorer tokens
        ("A", 1, 1, 1, False, 100, 10),
        ("A", 1, 1, 1, False, 100, 10),
        ("A", 2, 1, 1, False, 200, 10),
        ("A", 2, 1, 1, False, 200, 10),
        ("A", 2, 0, 1, False, 300, 10),
        ("A", 2, 0, 0, False, 300, 10),
        ("B", 1, 1, 1, False, 50, 0),
        ("B", 1, 0, 1, False, 50, 0),
        ("B", 2, 0, 0, False, 150, 0),
        ("B", 2, 0, 0, True, 0, 0),
    ]
    return [
        Outcome(
            f"p{i}",
            {"category": c, "level": lv},
            correct=ok,
            answered=ans,
            error=err,
            policy_generated_tokens=tok,
            scorer_generated_tokens=st,
            engine_calls=2,
            wall_time_s=0.5,
        )
        for i, (c, lv, ok, ans, err, tok, st) in enumerate(rows)
    ]


def test_summary_of_a_known_table():
    row = summarize(known_table())
    assert row["problems"] == 10 and row["correct"] == 5 and row["accuracy"] == 0.5
    assert row["ci95"] == pytest.approx(wilson(5, 10), abs=1e-4)
    assert row["errors"] == 1 and row["no_answer"] == 0.3
    assert row["policy_generated_tokens"] == 145.0 and row["scorer_generated_tokens"] == 6.0
    assert row["generated_tokens"] == 151.0
    assert row["engine_calls"] == 2.0 and row["wall_time_s"] == 5.0
    a, b = row["by"]["category"]["A"], row["by"]["category"]["B"]
    assert (a["problems"], a["correct"], a["accuracy"]) == (6, 4, 0.6667)
    assert (b["problems"], b["correct"], b["accuracy"]) == (4, 1, 0.25)
    assert a["ci95"] == pytest.approx(wilson(4, 6), abs=1e-4)
    assert row["by"]["level"]["1"]["accuracy"] == 0.75 and row["by"]["level"]["2"]["accuracy"] == round(
        2 / 6, 4
    )
    assert "subject" not in row["by"]  # only meta keys the problems have


def test_fractional_correct_from_subsampling():
    outs = [Outcome("a", {"category": "x"}, correct=0.5), Outcome("b", {"category": "x"}, correct=1 / 3)]
    row = summarize(outs)
    assert row["correct"] == pytest.approx(0.8333, abs=1e-4)
    assert row["accuracy"] == pytest.approx(0.4167, abs=1e-4)
    assert row["ci95"] == pytest.approx(wilson(5 / 6, 2), abs=1e-4)


def test_accuracy_over_the_problems_that_ran_and_token_totals():
    row = summarize(known_table())  # 10 problems, 5 right, 1 error (a wrong one)
    assert (row["ran"], row["errors"]) == (9, 1)
    assert row["accuracy_ran"] == round(5 / 9, 4) and row["accuracy"] == 0.5
    assert row["ci95_ran"] == pytest.approx(wilson(5, 9), abs=1e-4)
    outs = [
        Outcome(
            "a",
            policy_prompt_tokens=200,
            policy_generated_tokens=40,
            scorer_prompt_tokens=300,
            scorer_generated_tokens=3,
        ),
        Outcome(
            "b",
            policy_prompt_tokens=100,
            policy_generated_tokens=20,
            scorer_prompt_tokens=0,
            scorer_generated_tokens=0,
        ),
    ]
    t = summarize(outs)
    assert t["total_tokens"] == (543 + 120) / 2 and t["policy_tokens"] == (240 + 120) / 2
    assert t["generated_tokens"] == (43 + 20) / 2  # generated only (the old axis)
