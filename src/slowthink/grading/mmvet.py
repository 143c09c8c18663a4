"""MM-Vet's grader: an LLM completes MM-Vet's few-shot table with a 0.0-1.0 correctness score.

The prompt is the one MM-Vet published (``grading.mmvet.prompt``; VLMEvalKit sends the same), run
on any engine (the policy, a served larger model, ...). As in VLMEvalKit, a reply must be a bare
number in [0, 1]; an unparseable or out-of-range reply is asked again with temperature
``0.5 * attempt`` (attempts 0..4), and after :data:`MMVET_TRIES` failed attempts the score is 0.0
and the log says so. Every attempt of a batch is ONE engine call for the items still unscored.
A failed engine call counts as a failed attempt for every item in it (VLMEvalKit's API wrapper
returns a failure text, which does not parse).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.prompts import get_template
from slowthink.types import Message, Request

MMVET_TRIES = 5
"""Attempts per item before its score is 0.0 (VLMEvalKit: 5)."""
MMVET_MAX_TOKENS = 16
"""Tokens a grader reply may use (a score is 3 tokens; a longer reply fails to parse anyway)."""


@dataclass(frozen=True)
class MMVetItem:
    """One prediction to grade: the question, MM-Vet's ground truth (may hold ``<AND>`` / ``<OR>``)
    and the model's answer."""

    question: str
    gold: str
    prediction: str


@dataclass(frozen=True)
class MMVetGrade:
    """A score in [0, 1] (0.0 after :data:`MMVET_TRIES` failed attempts), the attempts used, and a
    log of the failed replies (VLMEvalKit's ``log`` column)."""

    score: float
    tries: int
    log: str
    parsed: bool = True


def mmvet_prompt(item: MMVetItem) -> str:
    """MM-Vet's prompt with the item as the table's last row (``<AND>``/``<OR>`` spaced as upstream).

    >>> mmvet_prompt(MMVetItem("What is 2+2?", "4<OR>four", "4")).splitlines()[-1]
    'What is 2+2? | 4 <OR> four | 4 | '
    """
    gold = item.gold.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    row = get_template("grading.mmvet.row").format(
        question=item.question, gold=gold, prediction=item.prediction
    )
    return get_template("grading.mmvet.prompt") + row


def parse_mmvet_score(text: str | None) -> float | None:
    """The score in a grader reply: the whole reply as one number in [0, 1], else None.

    >>> [parse_mmvet_score(t) for t in ["0.4", " 1.0\\n", "1.5", "0.5 because", "nan", "", None]]
    [0.4, 1.0, None, None, None, None, None]
    """
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


class MMVetGrader:
    """Grades many predictions on one engine: one ``generate`` call per attempt round."""

    def __init__(self, engine, *, tries: int = MMVET_TRIES, max_tokens: int = MMVET_MAX_TOKENS) -> None:
        if tries < 1:
            raise ValueError(f"tries must be >= 1, got {tries}")
        self.engine, self.tries, self.max_tokens = engine, tries, max_tokens
        self.calls = 0

    def _request(self, item: MMVetItem, attempt: int) -> Request:
        return Request(
            messages=[Message("user", mmvet_prompt(item))],
            n=1,
            max_tokens=self.max_tokens,
            temperature=0.5 * attempt,
            seed=attempt,
        )

    def _replies(self, items: Sequence[MMVetItem], attempt: int) -> list[str | None]:
        try:
            outs = self.engine.generate([self._request(it, attempt) for it in items])
        except Exception as e:  # a failed grader call must not end the suite
            return [f"[error] {type(e).__name__}: {e}"[:200]] * len(items)
        finally:
            self.calls += 1
        texts: list[str | None] = []
        for i in range(len(items)):
            comps = outs[i] if i < len(outs) else []
            c = comps[0] if comps else None
            texts.append(None if c is None or c.finish_reason == "error" else c.text)
        return texts

    def grade(self, items: Sequence[MMVetItem]) -> list[MMVetGrade]:
        """One grade per item (never raises on a bad reply or a failed call)."""
        logs = [""] * len(items)
        done: dict[int, MMVetGrade] = {}
        for attempt in range(self.tries):
            todo = [i for i in range(len(items)) if i not in done]
            if not todo:
                break
            for i, text in zip(todo, self._replies([items[i] for i in todo], attempt)):
                score = parse_mmvet_score(text)
                if score is None:
                    logs[i] += f"Try {attempt}: output is {text!r}, failed to parse.\n"
                else:
                    done[i] = MMVetGrade(score, attempt + 1, logs[i] + "Succeed")
        for i in range(len(items)):
            if i not in done:
                done[i] = MMVetGrade(
                    0.0, self.tries, logs[i] + f"All {self.tries} retries failed.\n", parsed=False
                )
        return [done[i] for i in range(len(items))]
