"""``atomic-segment`` (AtomThink's short-CoT augmentation): an existing solution -> atomic steps.

The source is a text field of the item (``meta[source]``: a GSM8K rationale, a MATH-V
``solution``, a LLaVA-CoT REASONING stage, any mapped field). Two candidates:

* the deterministic split (:func:`~slowthink.annotate.text.split_solution`: lines, then sentence
  ends; GSM8K calculator notes dropped) plus a final ``To sum up, the final answer is: GOLD`` step:
  the baseline, and the fallback;
* the teacher's rewrite (one request per item, one engine call for the batch; a failed rewrite is
  asked again with a new seed up to ``max_attempts``).

Checks on a candidate: at least two steps, every number of the source survives in the steps, the
final answer grades right against the standard answer. The teacher's rewrite is kept when it passes
and is at least as fine-grained as the split (as many steps or more); otherwise the split is kept
when it passes (``method == "split"``, the teacher's reasons recorded); otherwise the item is
rejected. Without a teacher the split is the annotation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.annotate.modes.base import Ask, Mode, ModeContext, ModeOptions, replies
from slowthink.annotate.records import Annotation
from slowthink.annotate.text import (
    declines,
    final_answer_of,
    final_step,
    label_steps,
    missing_numbers,
    split_solution,
    strip_calculator_notes,
    strip_label,
)
from slowthink.grading import gold_text, grade
from slowthink.prompts import get_template, user_prompt
from slowthink.search.base import stable_seed
from slowthink.types import Message, Problem, Request

_LABEL_LINE = re.compile(r"^\s*\**\s*Step\s*\d+\s*\**\s*[:.]", re.IGNORECASE)


@dataclass
class SegmentOptions(ModeOptions):
    source: str = "solution"
    """``meta`` field holding the solution to cut (``--map solution=FIELD`` puts any column there)."""
    max_attempts: int = 2
    temperature: float = 0.3
    max_tokens: int = 768
    max_step_chars: int = 400
    """A step longer than this is not atomic (rejects a candidate)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_tokens < 1 or self.max_step_chars < 1:
            raise ValueError("max_attempts, max_tokens and max_step_chars must be >= 1")


def teacher_steps(reply: str) -> list[str]:
    """The ``Step k:`` steps of a reply (a line without a label continues the step before it;
    text before the first label is dropped)."""
    steps: list[str] = []
    for line in reply.splitlines():
        if _LABEL_LINE.match(line):
            steps.append(line.strip())
        elif steps and line.strip():
            steps[-1] += " " + line.strip()
    return label_steps(steps)


def check_chain(steps: list[str], source: str, problem: Problem, max_step_chars: int) -> str | None:
    """Why a candidate chain fails (``code: detail``), or ``None``."""
    if len(steps) < 2:
        return f"too few steps: {len(steps)}"
    long = [i + 1 for i, s in enumerate(steps) if len(strip_label(s)) > max_step_chars]
    if long:
        return f"step not atomic: step {long[0]} is over {max_step_chars} characters"
    lost = missing_numbers(source, steps)
    if lost:
        return f"numbers lost: {', '.join(lost[:6])}"
    answer = final_answer_of(steps[-1:])
    if answer is None:
        return "no final answer step"
    if not grade(answer, problem).correct:
        return f"wrong answer: {answer[:60]!r} vs {gold_text(problem.answer)!r}"
    return None


def split_chain(source: str, problem: Problem) -> list[str]:
    """The deterministic split of ``source`` with the final-answer step (gold answer when the
    source names none)."""
    pieces, answer = split_solution(source)
    answer = answer or gold_text(problem.answer) or ""
    return label_steps(pieces) + [final_step(answer, len(pieces) + 1)]


class AtomicSegmentMode(Mode):
    name = "atomic-segment"
    Options = SegmentOptions
    needs_teacher = False

    def unusable(self, problem: Problem, options: SegmentOptions) -> str | None:
        value = problem.meta.get(options.source)
        if not isinstance(value, str) or not value.strip():
            return f"no source text in '{options.source}'"
        return super().unusable(problem, options)

    def run(self, problems: Sequence[Problem], ctx: ModeContext) -> list[Annotation]:
        opts: SegmentOptions = ctx.options
        anns = [self.new(p, ctx) for p in problems]
        splits: dict[int, tuple[list[str], str | None]] = {}
        for a in anns:
            source = a.problem.meta[opts.source]
            steps = split_chain(source, a.problem)
            splits[id(a)] = (steps, check_chain(steps, source, a.problem, opts.max_step_chars))
            a.extra["split_steps"] = len(steps)
        live = list(anns) if ctx.teacher is not None else []
        for attempt in range(1, opts.max_attempts + 1):
            asks = [Ask(a, self._request(a, opts, ctx.seed, attempt)) for a in live]
            for a, completion in replies(ctx.teacher, asks, attempt):
                reply = completion.text
                steps = teacher_steps(reply)
                reason = "refusal" if declines(reply) and len(steps) < 2 else None
                reason = reason or check_chain(
                    steps, a.problem.meta[opts.source], a.problem, opts.max_step_chars
                )
                split_steps, _ = splits[id(a)]
                if reason is None and len(steps) < len(split_steps):
                    reason = f"coarser than the split: {len(steps)} < {len(split_steps)} steps"
                if reason:
                    a.reject(f"{reason} (attempt {attempt})")
                    continue
                a.status, a.method, a.steps = "accepted", "teacher", steps
                a.answer = final_answer_of(steps[-1:])
            ctx.accepted(live)
            live = [a for a in live if a.status == "rejected"]
            if not live:
                break
        for a in anns:
            if a.status != "rejected":
                continue
            steps, reason = splits[id(a)]
            if reason is None:
                a.status, a.method, a.steps, a.answer = (
                    "accepted",
                    "split",
                    steps,
                    final_answer_of(steps[-1:]),
                )
            else:
                a.reject(f"{reason} (split)")
        return anns

    def _request(self, a: Annotation, opts: SegmentOptions, seed: int, attempt: int) -> Request:
        p = a.problem
        text = get_template("annotate.segment.user").format(
            question=user_prompt(p),
            solution=strip_calculator_notes(p.meta[opts.source]).strip(),
            answer=gold_text(p.answer),
        )
        return Request(
            [Message("user", text, images=list(p.images))],
            max_tokens=opts.max_tokens,
            temperature=opts.temperature if attempt > 1 else 0.0,
            seed=stable_seed(seed, p.id, "segment", attempt),
        )
