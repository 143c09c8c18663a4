"""Every strategy on the real embedded model: complete trees, consistent accounting, batching."""

from __future__ import annotations

import json

import pytest

from slowthink.engines.base import RecordingEngine
from slowthink.formats import get_format
from slowthink.search import solve
from slowthink.types import Problem, Trace

pytestmark = pytest.mark.model

PROBLEMS = [
    Problem(id="a", question="Tom has 3 apples and buys 4 more. How many apples does he have?", answer="7"),
    Problem(id="b", question="What is 2 + 6?", answer="8"),
]


def check_trace(t: Trace, engine: RecordingEngine, fmt: str) -> None:
    assert t.error is None
    assert t.path and t.path[0] == 0
    for a, b in zip(t.path, t.path[1:]):
        assert t.nodes[b].parent == a
    c = t.compute
    assert c.generated_tokens == sum(n.generated_tokens for n in t.nodes) > 0
    assert c.prompt_tokens > 0 and c.samples == len(t.nodes) - 1
    assert 1 <= c.engine_calls <= engine.n_calls
    assert c.wall_time_s > 0 and c.batch_size == len(PROBLEMS)
    assert (t.answer is None) == ("no answer" in t.notes)
    # the answer is the one the format reads from the chosen response
    problem = next(p for p in PROBLEMS if p.id == t.problem_id)
    assert t.answer == get_format(fmt).answer(t.response, problem)
    back = Trace.from_dict(json.loads(t.to_json()))
    assert back == t and back.response == t.response


@pytest.mark.parametrize(
    "strategy, fmt, opts",
    [
        ("direct", "free", {}),
        ("cot", "free", {}),
        ("cot", "stages", {}),
        ("quick", "atomic", {"max_depth": 4}),
        ("quick", "stages", {}),
        ("majority", "atomic", {"n": 3, "max_tokens": 96}),
    ],
)
def test_strategy_on_real_model(smol_engine, strategy, fmt, opts):
    eng = RecordingEngine(smol_engine)
    traces = solve(PROBLEMS, eng, get_format(fmt), strategy, seed=1, **opts)
    assert [t.problem_id for t in traces] == ["a", "b"]
    # one engine call per depth for the whole batch: every call carries both problems
    # (quick may re-sample only the problems whose step was rejected)
    assert all(c.n_requests <= 2 for c in eng.calls)
    assert eng.calls[0].n_requests == 2
    for t in traces:
        check_trace(t, eng, fmt)
    if strategy in ("direct", "cot", "majority"):
        assert eng.n_calls == 1
    if strategy == "majority":
        assert all(len([n for n in t.nodes if n.parent == 0]) == 3 for t in traces)
    if strategy == "quick" and fmt == "stages":
        kinds = [n.kind for n in traces[0].steps]
        assert kinds[:1] == ["summary"] and kinds[-1] == "conclusion"


def test_same_seed_same_result(smol_engine):
    a = solve(PROBLEMS[:1], smol_engine, get_format("atomic"), "majority", n=2, seed=5, max_tokens=64)[0]
    b = solve(PROBLEMS, smol_engine, get_format("atomic"), "majority", n=2, seed=5, max_tokens=64)[0]
    assert [n.text for n in a.nodes] == [n.text for n in b.nodes]


@pytest.mark.parametrize(
    "strategy, fmt, scorer, opts",
    [
        ("best_of_n", "atomic", "symbolic", {"n": 2, "max_tokens": 64}),
        ("best_of_n", "atomic", "symbolic", {"n": 2, "max_tokens": 64, "select": "weighted"}),
        ("best_of_n", "free", "judge", {"n": 2, "max_tokens": 48, "select": "judge"}),
        ("step_beam", "atomic", "symbolic", {"n": 2, "beam": 2, "max_depth": 3}),
        ("greedy_step", "atomic", "judge", {"n": 2, "max_depth": 2}),
        ("stage_beam", "stages", "judge", {"n": 2}),
        ("sentence_beam", "free", "judge", {"n": 2, "max_depth": 3}),
    ],
)
def test_verifier_strategy_on_real_model(smol_engine, strategy, fmt, scorer, opts):
    from slowthink.scorers import load_scorer

    eng = RecordingEngine(smol_engine)
    judge = load_scorer(scorer, engine=eng)
    traces = solve(PROBLEMS, eng, get_format(fmt), strategy, scorer=judge, seed=3, **opts)
    assert eng.calls[0].n_requests == 2  # the first depth carries both problems in one call
    for t in traces:
        check_trace(t, eng, fmt)
        if scorer == "judge":
            assert t.compute.scorer_calls > 0 and t.compute.scorer_prompt_tokens > 0
    if strategy == "stage_beam":
        t = traces[0]
        assert [n.kind for n in t.steps] == ["summary", "caption", "reasoning", "conclusion"]
        # 2 candidates: at most 1 comparison per stage (none where a candidate was rejected)
        assert 1 <= len([d for d in t.decisions if "winner" in d]) <= 4
