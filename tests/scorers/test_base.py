"""The scorer contracts: the three role protocols (they match the real scorers and the test doubles),
the one per-(problem, prefix) step cache, and the one compute accounting path (every judge token is
charged to exactly one problem, once)."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

from slowthink.formats import get_format
from slowthink.scorers import SymbolicScorer, WeightedScorer
from slowthink.scorers.base import (
    PAIRWISE,
    REASONING_CHECKS,
    STEP_SCORES,
    PairwiseJudge,
    ReasoningChecker,
    ScoreQuery,
    ScoreResult,
    StepCache,
    StepScorer,
    Verdict,
    charge_call,
)
from slowthink.scorers.judge import LLMJudge
from slowthink.scorers.prm import PRMScorer
from slowthink.search import solve
from slowthink.types import Completion, Compute, Problem
from tests.evaluate import eval_doubles

ROLES = (STEP_SCORES, PAIRWISE, REASONING_CHECKS)


class JudgeEngine:
    """The judge's engine: 'Yes' to every step, Response 1 for every pair; a prompt's token count
    is its length in characters, so every request costs something different."""

    name, supports_images = "judge-engine", False

    def generate(self, requests):
        out = []
        for r in requests:
            text = "1]" if r.prefix.endswith("[") else " Yes"
            size = sum(len(m.content) for m in r.messages) + len(r.prefix)
            out.append([Completion(text, prompt_tokens=size, generated_tokens=len(text))])
        return out


@pytest.mark.parametrize("cls", [LLMJudge, SymbolicScorer, WeightedScorer, PRMScorer])
def test_every_real_scorer_method_has_its_protocols_signature(cls):
    found = 0
    for role in ROLES:
        if hasattr(cls, role.method):
            want = inspect.signature(getattr(role.protocol, role.method))
            assert inspect.signature(getattr(cls, role.method)) == want, (cls.__name__, role.method)
            found += 1
    assert found == (3 if cls is LLMJudge else 1)


def test_scorers_and_doubles_play_the_roles_they_have():
    judge = LLMJudge(JudgeEngine())
    assert all(isinstance(judge, r.protocol) for r in ROLES)
    for step_only in (SymbolicScorer(), WeightedScorer([(SymbolicScorer(), 1.0)]), eval_doubles.StepScorer()):
        assert isinstance(step_only, StepScorer)
        assert not isinstance(step_only, PairwiseJudge) and not isinstance(step_only, ReasoningChecker)
    double = eval_doubles.Judge()
    assert isinstance(double, PairwiseJudge) and not isinstance(double, StepScorer)


def test_the_cache_asks_each_prefix_once_and_knows_the_problem():
    cache: StepCache[float] = StepCache()
    p, q = Problem("p", "?"), Problem("q", "?")
    queries = [
        ScoreQuery(p, ["a", "b"]),
        ScoreQuery(p, ["a", "b"]),
        ScoreQuery(q, ["a"]),
        ScoreQuery(p, ["a", "c"]),
    ]
    assert cache.missing(queries) == {
        ("p", "a"): (0, 0),
        ("p", "ab"): (0, 1),
        ("q", "a"): (2, 0),
        ("p", "ac"): (3, 1),
    }
    for key in cache.missing(queries):
        cache.put(key, 0.5)
    assert cache.missing(queries) == {}
    assert cache.missing([ScoreQuery(p, ["a", "b", "d"])]) == {("p", "abd"): (0, 2)}


def test_symbolic_checks_a_shared_step_once_in_one_call():
    scorer = SymbolicScorer()
    s1, s2 = "Step 1: 6 * 4 = 24.\n", "Step 2: 24 + 1 = 26.\n"
    p = Problem("p", "?")
    out = scorer.score([ScoreQuery(p, [s1, s2]), ScoreQuery(p, [s1, s2]), ScoreQuery(p, [s1])])
    assert [r.scores for r in out] == [[1.0, 0.0], [1.0, 0.0], [1.0]]
    assert scorer.checked_steps == 2


def test_a_step_asked_once_is_charged_once():
    judge = LLMJudge(JudgeEngine())
    p = Problem("p", "What is 2 + 2?")
    s1, s2, s3 = "Step 1: 2 + 2 = 4.\n", "Step 2: So 4.\n", "Step 2: Four.\n"
    # Two siblings and a duplicate path in ONE call: s1 is asked once, paid by the first query.
    out = judge.score([ScoreQuery(p, [s1, s2]), ScoreQuery(p, [s1, s3]), ScoreQuery(p, [s1, s2])])
    assert judge.stats.requests == 3
    assert [r.calls for r in out] == [1, 1, 0]
    assert out[2].prompt_tokens == 0 and out[1].prompt_tokens < out[0].prompt_tokens
    assert sum(r.prompt_tokens for r in out) == judge.stats.prompt_tokens
    # Next depth: the cached prefixes cost nothing.
    again = judge.score([ScoreQuery(p, [s1, s2]), ScoreQuery(p, [s1, s3])])
    assert judge.stats.requests == 3 and [(r.calls, r.prompt_tokens) for r in again] == [(0, 0), (0, 0)]
    assert judge.stats.scored_steps == 3 and judge.stats.cached_steps == 3 + 4


def test_charge_call_charges_each_problem_one_call():
    a, b = Compute(), Compute()
    charge_call(
        [
            (a, Verdict(0, prompt_tokens=10, generated_tokens=1, calls=1)),
            (a, Verdict(1, prompt_tokens=20, generated_tokens=2, calls=1)),
            (b, ScoreResult([None], prompt_tokens=0, calls=0)),
        ]
    )
    assert (a.scorer_prompt_tokens, a.scorer_generated_tokens, a.scorer_calls) == (30, 3, 1)
    assert (b.scorer_prompt_tokens, b.scorer_calls) == (0, 0)


@pytest.mark.parametrize(
    "strategy, fmt, options",
    [
        ("step_beam", "atomic", {"n": 3, "beam": 2}),
        ("best_of_n", "atomic", {"n": 4}),
        ("best_of_n", "atomic", {"n": 4, "select": "judge"}),
        ("stage_beam", "stages", {"n": 3, "select": "score"}),
    ],
)
def test_every_judge_token_is_charged_to_exactly_one_problem(strategy, fmt, options):
    """What the traces' Compute says the judge spent is what its engine reported, to the token:
    cached steps, siblings with the same text and steps shared by paths are never charged twice."""
    judge = LLMJudge(JudgeEngine())
    problems = [Problem(f"q{i}", f"What is {i} + 3?", answer=str(i + 3)) for i in range(3)]
    traces = solve(
        problems, eval_doubles.ScriptedEngine(p_right=0.5), get_format(fmt), strategy, scorer=judge, **options
    )
    assert judge.stats.cached_steps > 0 or options.get("select") == "judge"
    assert sum(t.compute.scorer_prompt_tokens for t in traces) == judge.stats.prompt_tokens > 0
    assert sum(t.compute.scorer_generated_tokens for t in traces) == judge.stats.generated_tokens > 0
    assert all(1 <= t.compute.scorer_calls <= judge.stats.engine_calls for t in traces)


def test_doctests() -> None:
    result = doctest.testmod(importlib.import_module("slowthink.scorers.base"))
    assert result.attempted > 0 and result.failed == 0
