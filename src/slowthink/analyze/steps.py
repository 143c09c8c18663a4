"""The atomic steps of eval runs: each step of each record's chosen path, with its run and outcome.

Reads a run folder's ``records.jsonl`` with the viewer's reader (:func:`slowthink.inspect.load.read_jsonl`:
the last line of a record key wins, a cut line is skipped). A record without a trace (its problem
failed) has no step and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slowthink.inspect.load import RECORDS, read_jsonl
from slowthink.types import Problem, SlowthinkError, Trace


@dataclass(frozen=True)
class Step:
    run: str
    """The run's label (its folder name)."""
    problem: Problem
    strategy: str
    key: str
    index: int
    """0-based position on the chosen path."""
    text: str
    history: tuple[str, ...]
    """The texts of the steps before it on the same path."""
    correct: bool
    """The record's final answer was graded right."""


def run_steps(run: Path) -> list[Step]:
    """Every step on the chosen path of every record of one run folder."""
    path = Path(run) / RECORDS
    if not path.is_file():
        raise SlowthinkError(f"no {RECORDS} in {run}: pass folders made by slowthink eval --out")
    out: list[Step] = []
    label = Path(run).resolve().name
    for rec in read_jsonl(path):
        if not rec.get("trace"):
            continue
        try:
            trace = Trace.from_dict(rec["trace"])
            problem = Problem.from_dict(rec["problem"]) if rec.get("problem") else Problem(str(rec["id"]), "")
        except (TypeError, KeyError, ValueError) as e:
            raise SlowthinkError(
                f"{path}: record {rec.get('id')!r} is not a slowthink record ({e})"
            ) from None
        correct = bool((rec.get("grade") or {}).get("correct"))
        texts = [n.text.strip() for n in trace.steps if n.text.strip()]
        for i, text in enumerate(texts):
            out.append(
                Step(
                    label,
                    problem,
                    trace.strategy,
                    str(rec.get("key", "")),
                    i,
                    text,
                    tuple(texts[:i]),
                    correct,
                )
            )
    return out
