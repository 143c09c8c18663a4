"""Real traces for the viewer tests, made by running strategies on the scripted engine doubles,
and a large synthetic run for the load-time test."""

from __future__ import annotations

import json
from pathlib import Path

from slowthink.formats import get_format
from slowthink.search import solve
from slowthink.types import Compute, Node, Problem, Trace
from tests import doubles
from tests.evaluate.eval_doubles import StepScorer, truth
from tests.search.test_llava_cot import Both, FirstJudge, problems

#: Model text that would break a page that does not escape it.
HOSTILE = "</script><script>window.PWNED=1</script><!-- <b>bold</b> & \u2028"


def step_text(r, i: int, k: int) -> str:
    """Samples 0 and 2 repeat their step text at every depth (the atomic format rejects a near-copy
    of the previous step); sample 2 writes hostile text."""
    return "x" if i == 1 else f"Add the numbers, part {k}. {HOSTILE if i == 2 else ''}"


def answer(r, i: int) -> str:
    return str(truth(r.messages[-1].content))


def step_beam_traces() -> tuple[list[Problem], list[Trace]]:
    ps = [Problem(id=f"a{i}", question=f"What is {i} + 3?", answer=str(i + 3)) for i in range(3)]
    engine = doubles.ScriptedEngine(doubles.AtomicWriter(step_text, answer, steps=2))
    return ps, solve(ps, engine, get_format("atomic"), "step_beam", scorer=StepScorer(), n=3, beam=2, seed=0)


def stage_beam_traces(precheck: bool = False) -> tuple[list[Problem], list[Trace]]:
    """LLaVA-CoT's stage search; the judge prefers the first shown candidate, and with ``precheck``
    its reasoning check fails a reasoning that says 4 + 3 = 8."""
    ps = problems(2)
    return ps, solve(
        ps, Both(), get_format("stages"), "stage_beam", scorer=FirstJudge(), n=4, seed=0, precheck=precheck
    )


def write_run(run: Path, ps: list[Problem], traces: list[Trace], correct: list[bool]) -> Path:
    """A run folder as slowthink eval writes it (the fields the viewer reads)."""
    run.mkdir(parents=True, exist_ok=True)
    with (run / "records.jsonl").open("w") as f:
        for p, t, ok in zip(ps, traces, correct):
            rec = {
                "v": 1,
                "id": p.id,
                "strategy": t.strategy,
                "key": "n=4",
                "n": 4,
                "problem": p.to_dict(),
                "trace": t.to_dict(),
                "answer": t.answer,
                "grade": {"correct": ok},
                "error": None,
            }
            f.write(json.dumps(rec) + "\n")
        err = {
            "id": "boom",
            "strategy": "step_beam",
            "key": "n=4",
            "trace": None,
            "error": "RuntimeError: boom",
        }
        f.write(json.dumps({**err, "grade": {"correct": False}}) + "\n")
        f.write('{"id": "cut-by-a-kil')  # a line cut short by a kill is skipped
    return run


def synthetic_views(problems_n: int, nodes_n: int) -> list[dict]:
    """``problems_n`` traces of ``nodes_n`` nodes each (a tree of branching 4), as viewer dicts."""
    from slowthink.inspect import problem_view

    out = []
    for p in range(problems_n):
        nodes = [Node(0, None, chosen=True)]
        for i in range(1, nodes_n):
            parent = (i - 1) // 4
            nodes.append(
                Node(
                    i,
                    parent,
                    f"Step {i}: some reasoning text of node {i} of problem {p}. " * 2,
                    depth=nodes[parent].depth + 1,
                    kind="step",
                    score=0.5,
                    step_score=0.5,
                    generated_tokens=20,
                )
            )
        path = [0]
        while True:
            kids = [n.id for n in nodes if n.parent == path[-1]]
            if not kids:
                break
            path.append(kids[0])
        for i in path:
            nodes[i].chosen = True
        t = Trace(
            f"p{p}",
            "step_beam",
            "atomic",
            nodes=nodes,
            path=path,
            answer="1",
            compute=Compute(generated_tokens=20 * nodes_n, samples=nodes_n),
        )
        out.append(
            problem_view(t, {"question": f"question {p}", "answer": "1"}, {"correct": p % 3 != 0}, "n=4")
        )
    return out
