"""In-process doubles for evaluation logic tests (importable as ``py:tests.evaluate.eval_doubles:Class`` specs).

``ScriptedEngine`` (the shared :class:`tests.doubles.ScriptedEngine` with an atomic writer) answers
"What is A + B?" questions in the atomic format: right with probability
``p_right`` per sample (seeded by the request seed and the sample index, so results do not depend
on batching), else off by one. A question holding ``BOOM`` makes ``generate`` raise. ``delay``
sleeps per call (for the kill-and-resume test). ``die_on=TEXT,marker=PATH`` ends the process
(``os._exit(1)``, as a crashed worker) at the first request whose question holds ``TEXT`` while
the file ``PATH`` does not exist, creating it first: the retry on another process succeeds. ``StepScorer`` scores a step 0.9 when it states
the right sum and 0.3 when it states a wrong one; ``Judge`` prefers the candidate with the right sum.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from pathlib import Path

from slowthink.evaluate import EvalConfig, EvalResult, run_eval
from slowthink.scorers.base import ScoreResult, Verdict
from tests import doubles

_Q = re.compile(r"What is (\d+) \+ (\d+)\?")
_STEPS = (
    "Read the two numbers in the question.",
    "Line them up by place value.",
    "Add the ones digits first.",
    "Carry over when the sum is ten or more.",
)


def truth(text: str) -> int | None:
    m = _Q.search(text)
    return int(m[1]) + int(m[2]) if m else None


class ScriptedEngine(doubles.ScriptedEngine):
    generate_calls = 0  # class-wide, so a test can see calls made through a spec-built instance

    def __init__(
        self, p_right: float = 0.6, delay: float = 0.0, steps: int = 2, die_on: str = "", marker: str = ""
    ) -> None:
        self.p_right, self.delay = float(p_right), float(delay)
        self.die_on, self.marker = str(die_on), str(marker)
        writer = doubles.AtomicWriter(lambda r, i, k: _STEPS[k % len(_STEPS)], self._answer, steps=int(steps))
        super().__init__(writer, prompt_tokens=20)

    def _answer(self, r, i: int) -> str:
        gold = truth(r.messages[-1].content)
        rng = random.Random(f"{r.seed}-{i}-{r.prefix}")
        if gold is None:
            return "0"
        return str(gold if rng.random() < self.p_right else gold + rng.choice((-1, 1)))

    def generate(self, requests):
        type(self).generate_calls += 1
        if self.delay:
            time.sleep(self.delay)
        for r in requests:
            if self.die_on and self.die_on in r.messages[-1].content and not os.path.exists(self.marker):
                open(self.marker, "w").close()
                os._exit(1)
            if "BOOM" in r.messages[-1].content:
                raise RuntimeError("scripted failure on a BOOM question")
        return super().generate(requests)


def _stated(step: str) -> int | None:
    m = re.search(r"final answer is:\s*(-?\d+)", step)
    return int(m[1]) if m else None


class StepScorer:
    name = "scripted-scorer"

    def score(self, queries):
        out = []
        for q in queries:
            gold = truth(q.problem.question)
            scores = []
            for s in q.steps:
                said = _stated(s)
                scores.append(0.8 if said is None else 0.9 if said == gold else 0.3)
            out.append(
                ScoreResult(scores, prompt_tokens=10 * len(q.steps), generated_tokens=len(q.steps), calls=1)
            )
        return out


class Judge:
    name = "scripted-judge"

    def compare(self, comparisons):
        out = []
        for c in comparisons:
            gold = truth(c.problem.question)
            a_ok, b_ok = _stated(c.a) == gold, _stated(c.b) == gold
            out.append(
                Verdict(winner=1 if b_ok and not a_ok else 0, prompt_tokens=30, generated_tokens=2, calls=1)
            )
        return out


def sums_run(tmp: Path, out: Path, k: int = 3, **config: object) -> EvalResult:
    """A small eval run (with plots) of ``k`` "What is i + 3?" problems on :class:`ScriptedEngine`
    (right half the time) and :class:`StepScorer`, into ``out``; ``config``: EvalConfig fields."""
    data = tmp / "sums.jsonl"
    data.write_text("".join(json.dumps({"q": f"What is {i} + 3?", "a": str(i + 3)}) + "\n" for i in range(k)))
    cfg = EvalConfig(
        data=str(data),
        fields="question=q,answer=a",
        engine="py:tests.evaluate.eval_doubles:ScriptedEngine",
        scorer="py:tests.evaluate.eval_doubles:StepScorer",
        out=str(out),
        **config,  # type: ignore[arg-type]
    )
    return run_eval(cfg, progress=False, plots=True, engine=ScriptedEngine(p_right=0.5), scorer=StepScorer())
