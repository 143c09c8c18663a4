"""In-process doubles for evaluation logic tests (importable as ``py:tests.evaluate.eval_doubles:Class`` specs).

``ScriptedEngine`` answers "What is A + B?" questions in the atomic format: right with probability
``p_right`` per sample (seeded by the request seed and the sample index, so results do not depend
on batching), else off by one. A question holding ``BOOM`` makes ``generate`` raise. ``delay``
sleeps per call (for the kill-and-resume test). ``StepScorer`` scores a step 0.9 when it states
the right sum and 0.3 when it states a wrong one; ``Judge`` prefers the candidate with the right sum.
"""

from __future__ import annotations

import random
import re
import time

from slowthink.scorers.base import ScoreResult, Verdict
from slowthink.types import Completion

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


class ScriptedEngine:
    name = "scripted"
    supports_images = False
    calls = 0  # class-wide, so a test can see calls made through a spec-built instance

    def __init__(self, p_right: float = 0.6, delay: float = 0.0, steps: int = 2) -> None:
        self.p_right, self.delay, self.steps = float(p_right), float(delay), int(steps)

    def _answer(self, r, i: int) -> str:
        question = r.messages[-1].content
        gold = truth(question)
        rng = random.Random(f"{r.seed}-{i}-{r.prefix}")
        if gold is None:
            return "0"
        return str(gold if rng.random() < self.p_right else gold + rng.choice((-1, 1)))

    def _one(self, r, i: int) -> Completion:
        answer = self._answer(r, i)
        done = len(re.findall(r"^Step \d+:", r.prefix, flags=re.M))
        if not r.stop:
            body = "".join(f"Step {k + 1}: {_STEPS[k % len(_STEPS)]}\n" for k in range(self.steps))
            text = body + f"To sum up, the final answer is: {answer}"
        elif r.prefix.endswith("final answer is:"):
            text = f" {answer}\n"
        elif done >= self.steps:
            text = f"To sum up, the final answer is: {answer}\n"
        else:
            text = f"Step {done + 1}: {_STEPS[done % len(_STEPS)]}\n"
        return Completion(
            text,
            stop_str="\n" if text.endswith("\n") and r.stop else None,
            prompt_tokens=20,
            generated_tokens=len(text.split()),
        )

    def generate(self, requests):
        type(self).calls += 1
        if self.delay:
            time.sleep(self.delay)
        for r in requests:
            if "BOOM" in r.messages[-1].content:
                raise RuntimeError("scripted failure on a BOOM question")
        return [[self._one(r, i) for i in range(r.n)] for r in requests]


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
