"""Strategies: batching (one engine call per depth for the whole batch), trees and accounting.

The scripted engine (``tests/doubles.py``) is an in-process double for pure search logic; the same properties are
checked against the real embedded model in ``test_strategies_model.py``.
"""

from __future__ import annotations

import pytest

from slowthink.engines.base import RecordingEngine
from slowthink.formats import get_format
from slowthink.prompts import get_template
from slowthink.search import make_config, solve
from slowthink.search.majority import vote
from slowthink.types import Completion, Node, Problem, SlowthinkError
from tests.doubles import AtomicWriter, ScriptedEngine


def scripted(
    steps: int = 2, answer: str = "7", bad_first: bool = False, never_final: bool = False
) -> ScriptedEngine:
    """Writes 'Step k: ...' lines and a final answer after ``steps`` steps; can misbehave on cue:
    ``bad_first`` writes an empty step for every greedy step request (rejected, re-sampled hotter)."""
    writer = AtomicWriter(
        lambda r, i, k: f"work {k} for {r.seed}." if r.stop else f"work {k}.",
        lambda r, i: answer,
        steps=steps,
        never_final=never_final,
    )

    def reply(r, i: int) -> str:
        if bad_first and r.stop and r.temperature == 0 and not r.prefix.endswith("final answer is:"):
            return "\n"
        return writer(r, i)

    return ScriptedEngine(reply)


def problems(k: int = 3) -> list[Problem]:
    return [Problem(id=f"p{i}", question=f"What is {i} + 7?", answer="7") for i in range(k)]


def check_tree(trace) -> None:
    ids = [n.id for n in trace.nodes]
    assert ids == list(range(len(ids)))
    assert trace.path[0] == 0
    for a, b in zip(trace.path, trace.path[1:]):
        assert trace.nodes[b].parent == a
    assert all(trace.nodes[i].chosen for i in trace.path)
    assert sum(n.generated_tokens for n in trace.nodes) == trace.compute.generated_tokens


def test_quick_one_engine_call_per_depth():
    eng = RecordingEngine(scripted(steps=2))
    traces = solve(problems(3), eng, get_format("atomic"), "quick")
    # depth 0, 1: steps; depth 2: final answer -> 3 calls for 3 problems, 3 requests each
    assert eng.n_calls == 3 and [c.n_requests for c in eng.calls] == [3, 3, 3]
    for t in traces:
        check_tree(t)
        assert t.answer == "7" and t.compute.engine_calls == 3
        assert [n.kind for n in t.steps] == ["step", "step", "step"]
        assert t.steps[-1].final


def test_quick_resamples_invalid_steps_hotter():
    eng = RecordingEngine(scripted(steps=1, bad_first=True))
    traces = solve(problems(2), eng, get_format("atomic"), "quick")
    t = traces[0]
    rejected = [n for n in t.nodes if n.note and n.note.startswith("rejected")]
    assert rejected and all("empty step" in n.note for n in rejected)
    assert not any(n.chosen for n in rejected)
    assert t.answer == "7"
    # every retry round is still one call for the whole batch
    assert all(c.n_requests == 2 for c in eng.calls)


def test_quick_fallback_when_no_final():
    eng = scripted(never_final=True)
    traces = solve(problems(2), eng, get_format("atomic"), "quick", max_depth=3)
    t = traces[0]
    assert t.answer == "7"
    assert t.steps[-1].kind == "answer" and "fallback" in t.steps[-1].note
    assert len(t.steps) == 4 and any("no final answer within 3 steps" in n for n in t.notes)


def test_majority_single_call_and_vote():
    eng = RecordingEngine(scripted())
    traces = solve(problems(4), eng, get_format("atomic"), "majority", n=5)
    assert eng.n_calls == 1 and eng.calls[0].n_samples == 20
    for t in traces:
        check_tree(t)
        assert len(t.nodes) == 6 and t.votes == {"7": 5.0} and t.answer == "7"


def test_vote_ties_first_sampled_wins_and_none_skipped():
    p = Problem(id="x", question="q")
    nodes = [
        Node(1, 0, answer=None),
        Node(2, 0, answer="3"),
        Node(3, 0, answer="5"),
        Node(4, 0, answer="5.0"),
        Node(5, 0, answer="3"),
    ]
    winner, votes = vote(nodes, p)
    assert winner.id == 2 and votes == {"3": 2.0, "5": 2.0}
    assert vote([Node(1, 0)], p) == (None, {})


def test_seeds_independent_of_batch():
    eng = scripted()
    alone = solve(problems(3)[1:2], eng, get_format("atomic"), "quick", temperature=0.5)
    batch = solve(problems(3), eng, get_format("atomic"), "quick", temperature=0.5)
    assert alone[0].response == batch[1].response


def test_unknown_strategy_and_option():
    with pytest.raises(SlowthinkError, match="unknown strategy 'beam9'"):
        make_config("beam9")
    with pytest.raises(SlowthinkError, match="no option"):
        make_config("quick", beam=3)


def test_engine_error_recorded_not_raised():
    broken = ScriptedEngine(lambda r, i: Completion("", finish_reason="error", error="boom"), name="broken")
    for strategy in ("direct", "cot", "quick", "majority"):
        t = solve(problems(1), broken, get_format("atomic"), strategy)[0]
        assert t.error == "boom" and t.answer is None and "no answer" in t.notes


def test_trace_json_roundtrip():
    from slowthink.types import Trace

    t = solve(problems(1), scripted(), get_format("atomic"), "quick")[0]
    back = Trace.from_dict(__import__("json").loads(t.to_json()))
    assert back == t and back.response == t.response


@pytest.mark.parametrize("fmt", ["free", "atomic", "stages", "sentences"])
def test_direct_asks_for_the_formats_direct_spec(fmt):
    seen = []

    def reply(r, i: int) -> str:
        seen.append(r)
        return " The answer is 7.\n"

    t = solve(problems(1), ScriptedEngine(reply), get_format(fmt), "direct")[0]
    (r,) = seen
    spec = get_format(fmt).direct_spec()
    assert (spec.kind, spec.opener, spec.stop, spec.max_tokens) == ("response", "", ["\n"], 48)
    assert (r.prefix, r.stop, r.max_tokens, r.temperature) == ("", ["\n"], 48, 0.0)
    assert r.messages[0].content == get_template("free.direct.system")
    assert t.answer == "7"
