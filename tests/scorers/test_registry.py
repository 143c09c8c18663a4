"""Scorer specs: names, combinations, weights, options, errors."""

from __future__ import annotations

import pytest

from slowthink.scorers import SCORERS, WeightedScorer, load_scorer
from slowthink.scorers.base import ScoreQuery
from slowthink.scorers.judge import LLMJudge
from slowthink.scorers.symbolic import SymbolicScorer
from slowthink.types import Completion, Problem, SlowthinkError
from tests.doubles import ScriptedEngine


def yes_engine() -> ScriptedEngine:
    """An engine double answering ' Yes' with P = 0.8 (for the pointwise judge)."""
    top = [{" Yes": -0.2231435513, " No": -1.6094379124}]
    return ScriptedEngine(lambda r, i: Completion(" Yes", top_logprobs=top), name="yes")


def test_single_names() -> None:
    assert set(SCORERS) == {"judge", "symbolic", "prm"}
    assert isinstance(load_scorer("symbolic"), SymbolicScorer)
    judge = load_scorer("judge", engine=yes_engine(), swap=True)
    assert isinstance(judge, LLMJudge) and judge.config.swap


@pytest.mark.parametrize(
    ("spec", "weights"),
    [
        ("judge+symbolic", [1.0, 1.0]),
        ("judge:0.5+symbolic:0.5", [0.5, 0.5]),
        (" judge:3 + symbolic ", [3.0, 1.0]),
    ],
)
def test_combinations(spec: str, weights: list[float]) -> None:
    scorer = load_scorer(spec, engine=yes_engine())
    assert isinstance(scorer, WeightedScorer) and scorer.name == "judge+symbolic"
    assert [w for _, w in scorer.parts] == weights


def test_combination_scores() -> None:
    eng = yes_engine()
    scorer = load_scorer("judge:1+symbolic:3", engine=eng)
    p = Problem("p", "What is 6 * 4?")
    (res,) = scorer.score([ScoreQuery(p, ["6 * 4 = 25\n", "It is a product.\n"])])
    # step 1: judge 0.8 (P(yes)), symbolic 0.0 -> (0.8 + 0) / 4; step 2: symbolic unknown -> judge alone
    assert res.scores == [pytest.approx(0.2), pytest.approx(0.8)]
    assert len(eng.calls) == 1 and res.calls == 1


def test_options_go_to_the_parts_that_take_them() -> None:
    scorer = load_scorer("judge+symbolic", engine=yes_engine(), swap=True, top_logprobs=5)
    judge = scorer.parts[0][0]
    assert judge.config.swap and judge.config.top_logprobs == 5


def test_judge_options_in_the_spec() -> None:
    """``judge#swap=true,top_logprobs=5`` sets options from a CLI/YAML string; keyword options win."""
    judge = load_scorer("judge#swap=true,top_logprobs=5", engine=yes_engine())
    assert judge.config.swap is True and judge.config.top_logprobs == 5
    assert load_scorer("judge#swap=true", engine=yes_engine(), swap=False).config.swap is False
    mixed = load_scorer("judge#swap=true:0.3+symbolic:0.7", engine=yes_engine())
    assert mixed.parts[0][0].config.swap and [w for _, w in mixed.parts] == [0.3, 0.7]


@pytest.mark.parametrize(
    ("spec", "kwargs", "match"),
    [
        ("oracle", {}, "unknown scorer 'oracle'.*judge, symbolic, prm"),
        ("judge+magic", {"engine": yes_engine()}, "unknown scorer 'magic'"),
        ("", {}, "empty scorer spec"),
        ("judge", {}, "needs an engine"),
        ("symbolic", {"swap": True}, "takes no option swap"),
        ("judge", {"engine": yes_engine(), "sawp": True}, "valid: .*swap"),
        ("judge:0+symbolic", {"engine": yes_engine()}, "weight must be > 0"),
        ("symbolic:/some/path", {}, "takes no path"),
        ("judge:/some/path", {"engine": yes_engine()}, "takes no path"),
        ("judge#sawp=true", {"engine": yes_engine()}, "no option 'sawp'; valid: .*swap"),
        ("judge#swap", {"engine": yes_engine()}, "key=value"),
    ],
)
def test_errors(spec: str, kwargs: dict, match: str) -> None:
    with pytest.raises(SlowthinkError, match=match):
        load_scorer(spec, **kwargs)


@pytest.mark.hf
def test_prm_spec_with_protocol_and_weight(tiny_token_cls_prm) -> None:
    scorer = load_scorer(f"prm:{tiny_token_cls_prm}#token_cls:2+symbolic", batch_size=2)
    prm = scorer.parts[0][0]
    assert prm.config.protocol == "token_cls" and prm.config.batch_size == 2 and scorer.parts[0][1] == 2.0
    assert load_scorer(f"prm:{tiny_token_cls_prm}#token_cls").config.protocol == "token_cls"
