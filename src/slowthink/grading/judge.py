"""An LLM judge for free-form answers the rules call wrong (MathVerse-style), on any engine.

Rules and math-verify decide first (:func:`~slowthink.grading.grade`). A free-form answer they
call wrong may still be right in other words ("an isosceles triangle", "two", "right angle" for
90 degrees). :class:`AnswerJudge` asks a model whether the prediction and the reference mean the
same thing: every eligible answer of a batch in ONE engine call, greedy, a few tokens each, with
the reply prefilled to ``Judgement:``. Each verdict keeps its raw reply; :class:`Grade` says which
path decided (``method="llm_judge"``, the rules' method in ``note``).

What is sent: answers the rules graded wrong by ``string``, ``list`` or ``math_verify``, and by
``number`` only when the prediction is not a number at all (words). Never multiple choice, a
numeric mismatch, no answer or no gold: the rules are exact there, and a small judge would only
add noise. An unparseable or failed reply leaves the rules' verdict (wrong) and says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from slowthink.grading.choices import is_choice_problem
from slowthink.grading.compare import Grade, gold_text, grade
from slowthink.grading.numeric import parse_number
from slowthink.prompts import clip_head, get_template, user_prompt
from slowthink.types import Message, Problem, Request

JUDGED_METHODS: tuple[str, ...] = ("string", "list", "math_verify")
"""Rule methods whose wrong verdicts the judge may overturn (plus ``number`` for word answers)."""

_VERDICT = re.compile(r"^\W*([01])\b")


@dataclass(frozen=True)
class JudgeVerdict:
    """The judge's reply on one (prediction, problem): ``correct`` is None when unusable."""

    correct: bool | None
    raw: str
    prompt_tokens: int = 0
    generated_tokens: int = 0


def parse_judgement(text: str) -> bool | None:
    """The verdict in a reply that continues ``Judgement:``; None when it is not a clear 0 or 1.

    >>> [parse_judgement(t) for t in [" 1", " 0\\n", "1.", " [1]", "yes", " 10", ""]]
    [True, False, True, True, None, None, None]
    """
    m = _VERDICT.match(text or "")
    return None if m is None else m[1] == "1"


def judge_eligible(g: Grade, pred: str | None, problem: Problem) -> bool:
    """May the judge overturn this rule verdict? (See the module docstring.)"""
    if g.correct or pred is None or not pred.strip() or is_choice_problem(problem):
        return False
    if g.method in JUDGED_METHODS:
        return True
    return g.method == "number" and parse_number(g.pred_norm or pred) is None


class AnswerJudge:
    """Batched answer-equivalence judge on any engine (the policy model, a served larger model ...)."""

    def __init__(
        self, engine, *, max_question_chars: int = 2000, max_answer_chars: int = 300, max_tokens: int = 4
    ) -> None:
        self.engine = engine
        self.max_question_chars, self.max_answer_chars, self.max_tokens = (
            max_question_chars,
            max_answer_chars,
            max_tokens,
        )
        self.calls = 0

    def _request(self, pred: str, problem: Problem) -> Request:
        user = get_template("grading.judge.user").format(
            question=clip_head(user_prompt(problem), self.max_question_chars),
            gold=clip_head(gold_text(problem.answer) or "", self.max_answer_chars),
            pred=clip_head(pred, self.max_answer_chars),
        )
        return Request(
            messages=[Message("system", get_template("grading.judge.system")), Message("user", user)],
            prefix=get_template("grading.judge.prefix"),
            n=1,
            stop=["\n"],
            max_tokens=self.max_tokens,
            temperature=0.0,
            seed=0,
        )

    def judge(self, items: Sequence[tuple[str, Problem]]) -> list[JudgeVerdict]:
        """One verdict per (prediction, problem), all in one engine call (never raises on a bad reply)."""
        if not items:
            return []
        requests = [self._request(pred, p) for pred, p in items]
        try:
            outs = self.engine.generate(requests)
        except Exception as e:  # a failed judge call must not end an evaluation
            return [JudgeVerdict(None, f"[error] {type(e).__name__}: {e}"[:300]) for _ in items]
        self.calls += 1
        verdicts = []
        for i in range(len(items)):
            comps = outs[i] if i < len(outs) else []
            c = comps[0] if comps else None
            if c is None or c.finish_reason == "error":
                verdicts.append(JudgeVerdict(None, f"[error] {getattr(c, 'error', None) or 'no completion'}"))
                continue
            verdicts.append(
                JudgeVerdict(parse_judgement(c.text), c.text, c.prompt_tokens, c.generated_tokens)
            )
        return verdicts


def apply_verdict(g: Grade, v: JudgeVerdict) -> Grade:
    """The final grade: the judge's verdict when usable, else the rules' with a note."""
    if v.correct is None:
        return replace(g, note=f"judge reply unusable ({v.raw.strip()[:60]!r}); rules' verdict kept")
    return Grade(
        v.correct,
        "llm_judge",
        g.pred_norm,
        g.gold_norm,
        note=f"rules ({g.method}) said wrong; judge said {'same' if v.correct else 'different'}",
    )


def grade_all(items: Sequence[tuple[str | None, Problem]], judge: AnswerJudge | None = None) -> list[Grade]:
    """Grade many answers: rules for all, then the judge on the eligible ones in one engine call."""
    grades = [grade(pred, p) for pred, p in items]
    if judge is None:
        return grades
    todo = [i for i, ((pred, p), g) in enumerate(zip(items, grades)) if judge_eligible(g, pred, p)]
    verdicts = judge.judge([(items[i][0], items[i][1]) for i in todo])
    for i, v in zip(todo, verdicts):
        grades[i] = apply_verdict(grades[i], v)
    return grades
