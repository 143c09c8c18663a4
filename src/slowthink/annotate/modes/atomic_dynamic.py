"""``atomic-dynamic`` (AtomThink's dynamic prompting): a state loop that grows an atomic chain.

At each round every live item of the batch sends one request (one engine call for the batch): the
question, the steps so far and the allowed actions; the teacher replies with ONE next step and an
action, ``{"content": "Step k: ...", "next_action": "continue" | "verify" | "final_answer"}``.
A malformed reply is repaired where cheap (:func:`~slowthink.annotate.text.parse_step_reply`) and
otherwise asked again with a new seed, at most ``json_retries`` times per state, after which the
item is rejected. A reply that repeats the previous step, or whose step runs over
``max_step_chars``, counts as malformed. After
``final_answer``, or when ``max_steps`` is hit, a closing request (one call for all such items)
asks for the plain ``Step N: To sum up, the final answer is: ...`` line, unless the last step
already holds it; the final answer is graded against the standard answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from slowthink.annotate.modes.base import Ask, Mode, ModeContext, ModeOptions, replies
from slowthink.annotate.records import Annotation
from slowthink.annotate.text import final_answer_of, label_steps, parse_step_reply, strip_label
from slowthink.grading import gold_text, grade
from slowthink.prompts import get_template, user_prompt
from slowthink.search.base import stable_seed
from slowthink.types import Message, Problem, Request

ACTIONS: tuple[str, ...] = ("continue", "verify", "final_answer")


@dataclass
class DynamicOptions(ModeOptions):
    max_steps: int = 12
    """Steps at most before the closing request."""
    json_retries: int = 2
    """New requests for one state after a malformed reply, before the item is rejected."""
    temperature: float = 0.2
    step_tokens: int = 200
    close_tokens: int = 100
    max_step_chars: int = 400
    """A step longer than this is runaway text, not one atomic step (handled like a malformed reply)."""

    def __post_init__(self) -> None:
        if (
            min(self.max_steps, self.step_tokens, self.close_tokens, self.max_step_chars) < 1
            or self.json_retries < 0
        ):
            raise ValueError(
                "max_steps, step_tokens, close_tokens and max_step_chars must be >= 1, json_retries >= 0"
            )


@dataclass
class _State:
    annotation: Annotation
    steps: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    failures: int = 0
    """Malformed replies for the current state."""
    repairs: int = 0
    done: bool = False


class AtomicDynamicMode(Mode):
    name = "atomic-dynamic"
    Options = DynamicOptions

    def run(self, problems: Sequence[Problem], ctx: ModeContext) -> list[Annotation]:
        opts: DynamicOptions = ctx.options
        states = [_State(self.new(p, ctx)) for p in problems]
        live = list(states)
        round_no = 0
        while live:
            round_no += 1
            by_annotation = {id(s.annotation): s for s in live}
            asks = [Ask(s.annotation, self._step_request(s, opts, ctx.seed)) for s in live]
            for a, completion in replies(ctx.teacher, asks):
                s = by_annotation[id(a)]
                a.attempts += 1
                a.response = completion.text
                reply, reason = parse_step_reply(a.response, ACTIONS)
                if reply is not None and s.steps and strip_label(reply.content) == strip_label(s.steps[-1]):
                    reply, reason = None, "repeated step"
                if reply is not None and len(strip_label(reply.content)) > opts.max_step_chars:
                    reply, reason = None, f"step not atomic (over {opts.max_step_chars} characters)"
                if reply is None:
                    s.failures += 1
                    a.extra.setdefault("malformed", []).append(reason)
                    if s.failures > opts.json_retries:
                        a.reject(f"malformed reply: {reason} ({s.failures} tries at step {len(s.steps) + 1})")
                        s.done = True
                    continue
                s.failures = 0
                s.repairs += reply.repaired is not None
                s.steps.append(reply.content)
                s.actions.append(reply.action)
                if reply.action == "final_answer" or len(s.steps) >= opts.max_steps:
                    s.done = True
                    if reply.action != "final_answer":
                        a.extra["hit_step_bound"] = True
            live = [s for s in live if not s.done and s.annotation.status != "error"]
        closing = [
            s
            for s in states
            if s.annotation.status == "rejected"
            and not s.annotation.reasons
            and final_answer_of(s.steps[-1:]) is None
        ]
        self._close(closing, opts, ctx)
        for s in states:
            self._finish(s)
        return [s.annotation for s in states]

    def _history(self, steps: list[str]) -> str:
        return "\n".join(label_steps(steps)) if steps else get_template("annotate.dynamic.no_steps")

    def _step_request(self, s: _State, opts: DynamicOptions, seed: int) -> Request:
        p = s.annotation.problem
        user = get_template("annotate.dynamic.user").format(
            question=user_prompt(p),
            history=self._history(s.steps),
            actions=", ".join(ACTIONS),
            number=len(s.steps) + 1,
        )
        return Request(
            [
                Message("system", get_template("annotate.dynamic.system")),
                Message("user", user, images=list(p.images)),
            ],
            max_tokens=opts.step_tokens,
            temperature=opts.temperature if s.failures == 0 else max(opts.temperature, 0.7),
            seed=stable_seed(seed, p.id, "dynamic", len(s.steps), s.failures),
        )

    def _close(self, states: list[_State], opts: DynamicOptions, ctx: ModeContext) -> None:
        asks = []
        for s in states:
            p = s.annotation.problem
            text = get_template("annotate.dynamic.close").format(
                question=user_prompt(p), history=self._history(s.steps), number=len(s.steps) + 1
            )
            asks.append(
                Ask(
                    s.annotation,
                    Request(
                        [Message("user", text, images=list(p.images))],
                        max_tokens=opts.close_tokens,
                        temperature=0.0,
                        seed=stable_seed(ctx.seed, p.id, "close"),
                    ),
                )
            )
        by_annotation = {id(s.annotation): s for s in states}
        for a, completion in replies(ctx.teacher, asks):
            s = by_annotation[id(a)]
            line = next((ln for ln in completion.text.splitlines() if final_answer_of([ln])), None)
            if line is None:
                s.annotation.response = completion.text
                s.annotation.reject("no final answer: the closing reply has none")
            else:
                s.steps.append(line.strip())
                s.actions.append("close")

    @staticmethod
    def _finish(s: _State) -> None:
        a = s.annotation
        a.extra["actions"] = s.actions
        a.extra["repaired_replies"] = s.repairs
        a.steps = label_steps(s.steps)  # a rejected record keeps the steps it got
        if a.status != "rejected" or a.reasons:
            return
        a.answer = final_answer_of(a.steps[-1:])
        if a.answer is not None and grade(a.answer, a.problem).correct:
            a.status, a.method = "accepted", "teacher"
        else:
            a.reject(f"wrong answer: {str(a.answer)[:60]!r} vs {gold_text(a.problem.answer)!r}")
