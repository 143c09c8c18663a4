"""Synthetic run folders for the capability analysis tests: records with known grades."""

from __future__ import annotations

import json
from pathlib import Path

from slowthink.types import Node, Problem, Trace

#: Three problems: p1 right, p2 and p3 wrong (8 steps: 4 calculation, 3 conclusion, 1 variable definition).
MODEL_A: list[tuple[str, list[str], str, bool]] = [
    ("p1", ["Let x be the number of apples.", "Add: 7 + 5 = 12.", "The answer is 12."], "12", True),
    ("p2", ["Add: 7 + 6 = 12.", "The answer is 12."], "12", False),
    ("p3", ["Add: 4 + 4 = 8.", "Multiply 8 by 2 to get 16.", "The answer is 16."], "16", False),
]


def trace(pid: str, steps: list[str], answer: str) -> Trace:
    nodes = [Node(0, None)] + [Node(i + 1, i, text=s, depth=i + 1, kind="step") for i, s in enumerate(steps)]
    nodes.append(Node(len(steps) + 1, 0, text="An unchosen sibling: 1 + 1 = 3.", depth=1, kind="step"))
    return Trace(pid, "quick", "atomic", nodes, list(range(len(steps) + 1)), answer=answer)


def write_run(run: Path, items: list[tuple[str, list[str], str, bool]]) -> Path:
    run.mkdir(parents=True)
    with (run / "records.jsonl").open("w") as f:
        for pid, steps, answer, ok in items:
            p = Problem(pid, f"Question {pid}?", answer="12")
            rec = {
                "id": pid,
                "strategy": "quick",
                "key": "n=1",
                "problem": p.to_dict(),
                "trace": trace(pid, steps, answer).to_dict(),
                "grade": {"correct": ok},
            }
            f.write(json.dumps(rec) + "\n")
        f.write(json.dumps({"id": "boom", "strategy": "quick", "key": "n=1", "trace": None}) + "\n")
        f.write('{"id": "cut')
    return run
