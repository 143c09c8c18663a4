"""``stages`` (LLaVA-CoT): question (+ images) + standard answer (+ hints) -> the four tagged stages.

Each round sends one request per item still without an accepted answer (one engine call for the
batch). A reply passes when it holds the four tags in order, each closed and non-empty, and its
CONCLUSION agrees with the standard answer: by the grading rules where they decide (numbers,
options, lists), otherwise by a teacher verification call (LLaVA-CoT's valid/invalid judge), one
call for all replies of the round that need it. A failed item is asked again with a new seed, up to
``max_attempts``; every attempt's reason is kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.annotate.modes.base import Ask, Mode, ModeContext, ModeOptions, replies
from slowthink.annotate.records import Annotation
from slowthink.annotate.text import declines
from slowthink.formats.stages import STAGES
from slowthink.grading import gold_text, grade
from slowthink.prompts import clip_head, get_template, user_prompt
from slowthink.search.base import stable_seed
from slowthink.types import Message, Problem, Request

_TAG = re.compile(r"<\s*(/?)\s*(SUMMARY|CAPTION|REASONING|CONCLUSION)\s*>", re.IGNORECASE)
#: Grading methods whose "wrong" is final; any other "wrong" goes to the teacher's verification.
RULES_DECIDE: frozenset[str] = frozenset({"choice", "number", "list", "no_answer"})


@dataclass
class StagesOptions(ModeOptions):
    max_attempts: int = 3
    """Requests per item at most (a failed reply is asked again with a new seed)."""
    temperature: float = 0.7
    max_tokens: int = 1024
    verify: bool = True
    """Ask the teacher whether the CONCLUSION agrees where the grading rules cannot decide."""
    verify_max_tokens: int = 16
    hint_field: str = "hints"
    """``meta`` field holding hints (a string or a list; LLaVA-CoT's input has ``hints``), added as
    ``Hint:`` lines."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_tokens < 1 or self.verify_max_tokens < 1:
            raise ValueError("max_attempts, max_tokens and verify_max_tokens must be >= 1")


def check_stages(text: str) -> tuple[dict[str, str] | None, str | None]:
    """The four stages of a reply, or why the reply breaks the format (a reason ``code: detail``).

    >>> check_stages("<SUMMARY> a </SUMMARY><CAPTION> b </CAPTION><REASONING> c </REASONING><CONCLUSION> 4 </CONCLUSION>")[0]
    {'summary': 'a', 'caption': 'b', 'reasoning': 'c', 'conclusion': '4'}
    >>> check_stages("<SUMMARY> a </SUMMARY><REASONING> c </REASONING><CONCLUSION> 4 </CONCLUSION>")[1]
    'tags: expected SUMMARY, CAPTION, REASONING, CONCLUSION in order, got SUMMARY, REASONING, CONCLUSION'
    """
    tags = [(m.group(1) == "/", m.group(2).lower(), m) for m in _TAG.finditer(text)]
    opens = [name for closing, name, _ in tags if not closing]
    if opens != list(STAGES):
        got = ", ".join(s.upper() for s in opens) or "no tags"
        return None, f"tags: expected SUMMARY, CAPTION, REASONING, CONCLUSION in order, got {got}"
    if [(c, n) for c, n, _ in tags] != [(c, s) for s in STAGES for c in (False, True)]:
        missing = [s.upper() for s in STAGES if (True, s) not in {(c, n) for c, n, _ in tags}]
        detail = f"missing </{missing[0]}>" if missing else "stages overlap"
        return None, f"tags: {detail}"
    stages: dict[str, str] = {}
    for i, stage in enumerate(STAGES):
        body = text[tags[2 * i][2].end() : tags[2 * i + 1][2].start()].strip()
        if not body:
            return None, f"empty stage: {stage.upper()}"
        stages[stage] = body
    return stages, None


class StagesMode(Mode):
    name = "stages"
    Options = StagesOptions

    def run(self, problems: Sequence[Problem], ctx: ModeContext) -> list[Annotation]:
        opts: StagesOptions = ctx.options
        anns = [self.new(p, ctx) for p in problems]
        live = list(anns)
        for attempt in range(1, opts.max_attempts + 1):
            asks = [Ask(a, self._request(a, opts, ctx.seed, attempt)) for a in live]
            to_verify: list[Annotation] = []
            for a, reply in replies(ctx.teacher, asks, attempt):
                reason, stages = self._check(a.problem, reply.text, reply.finish_reason)
                if reason:
                    a.reject(f"{reason} (attempt {attempt})")
                    continue
                a.stages = stages
                a.steps = [stages[s] for s in STAGES]
                a.answer = stages["conclusion"]
                verdict = grade(stages["conclusion"], a.problem)
                if verdict.correct:
                    a.status, a.method = "accepted", "teacher"
                elif opts.verify and verdict.method not in RULES_DECIDE:
                    to_verify.append(a)
                else:
                    a.reject(
                        f"wrong answer: CONCLUSION {clip_head(a.answer, 60)!r} vs {gold_text(a.problem.answer)!r} "
                        f"(attempt {attempt})"
                    )
            self._verify(to_verify, opts, ctx, attempt)
            ctx.accepted(live)
            live = [a for a in live if a.status == "rejected"]
            if not live:
                break
        for a in anns:
            if a.status != "accepted":
                a.stages = None
        return anns

    def _request(self, a: Annotation, opts: StagesOptions, seed: int, attempt: int) -> Request:
        p = a.problem
        hints = p.meta.get(opts.hint_field)
        hints = [hints] if isinstance(hints, str) else [str(h) for h in hints or []]
        hint_text = "".join(get_template("annotate.stages.hint").format(hint=h) for h in hints if h.strip())
        text = get_template("annotate.stages.user").format(
            question=user_prompt(p), answer=gold_text(p.answer) or p.answer, hints=hint_text
        )
        return Request(
            [Message("user", text, images=list(p.images))],
            max_tokens=opts.max_tokens,
            temperature=opts.temperature,
            seed=stable_seed(seed, p.id, "stages", attempt),
        )

    @staticmethod
    def _check(problem: Problem, text: str, finish_reason: str) -> tuple[str | None, dict[str, str] | None]:
        if not text.strip():
            return "empty reply", None
        if finish_reason == "length" and "</CONCLUSION>" not in text.upper():
            return "runaway: cut at max_tokens", None
        stages, reason = check_stages(text)
        if reason:
            return ("refusal" if declines(text) else reason), None
        if declines(stages["conclusion"]):
            return "refusal: CONCLUSION declines to answer", None
        return None, stages

    def _verify(self, items: list[Annotation], opts: StagesOptions, ctx: ModeContext, attempt: int) -> None:
        if not items:
            return
        template = get_template("annotate.stages.verify")
        asks = [
            Ask(
                a,
                Request(
                    [
                        Message(
                            "user",
                            template.format(
                                question=user_prompt(a.problem),
                                answer=gold_text(a.problem.answer),
                                response=a.answer,
                            ),
                        )
                    ],
                    max_tokens=opts.verify_max_tokens,
                    temperature=0.0,
                    seed=stable_seed(ctx.seed, a.id, "verify", attempt),
                ),
            )
            for a in items
        ]
        for a, reply in replies(ctx.teacher, asks):
            verdict = reply.text.strip().lower()
            a.extra.setdefault("verifications", []).append(verdict[:80])
            if "invalid" in verdict:
                a.reject(f"wrong answer: teacher verification said invalid (attempt {attempt})")
            elif "valid" in verdict:
                a.status, a.method = "accepted", "teacher+verified"
            else:
                a.reject(f"verification unreadable: {verdict[:40]!r} (attempt {attempt})")
