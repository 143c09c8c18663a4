"""``solve(..., on_commit=...)``: each node of the chosen path is heard once, in order, as soon as
the search commits to it (before the search ends for quick and stage_beam)."""

from __future__ import annotations

import pytest

from slowthink.formats import get_format
from slowthink.search import solve
from slowthink.types import Problem
from tests.evaluate.eval_doubles import Judge, ScriptedEngine


@pytest.mark.parametrize(
    ("strategy", "options", "early"),
    [("quick", {}, True), ("stage_beam", {"n": 2}, True), ("majority", {"n": 3}, False)],
)
def test_committed_nodes_are_heard_in_path_order(strategy: str, options: dict, early: bool) -> None:
    engine = ScriptedEngine(p_right=1.0, steps=3)
    problems = [Problem("a", "What is 1 + 2?"), Problem("b", "What is 3 + 4?")]
    heard: list[tuple[str, int, int]] = []

    def listener(problem_id, node):
        heard.append((problem_id, node.id, len(engine.calls)))

    scorer = Judge() if strategy == "stage_beam" else None
    traces = solve(
        problems, engine, get_format("atomic"), strategy, scorer=scorer, on_commit=listener, **options
    )
    for trace in traces:
        assert [nid for pid, nid, _ in heard if pid == trace.problem_id] == trace.path[1:]
    first_heard_after = min(calls for *_, calls in heard)
    assert (first_heard_after < len(engine.calls)) is early  # step-wise: heard while the search still runs
    solve(problems, engine, get_format("atomic"), strategy, scorer=scorer, **options)  # no listener: fine
