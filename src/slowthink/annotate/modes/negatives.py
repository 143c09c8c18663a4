"""``negatives``: corrupt one step of a correct chain with a teacher, for PRM data.

The chain is ``meta[source]`` (a list of steps, or a text cut into its lines), e.g. the accepted
steps of an earlier ``atomic-*`` run (``--from-run DIR``) or a released dataset. A seeded choice
picks the step and the kind of error (calculation, logic, misread fact); the teacher rewrites that
step alone. The corrupted step must be non-empty, not a refusal, really different from the original
(rapidfuzz ratio below ``max_similarity``), and, when it is the final step, give an answer that
grades wrong. The PRM record is the chain up to the corrupted step, labelled ``+`` before it and
``-`` on it; the correct chain (all ``+``) is exported beside it (``#pos``), as AtomThink does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from slowthink.annotate.modes.base import Ask, Mode, ModeContext, ModeOptions, replies
from slowthink.annotate.records import Annotation
from slowthink.annotate.text import declines, final_answer_of, label_steps, strip_label
from slowthink.grading import grade
from slowthink.prompts import get_template, user_prompt
from slowthink.prompts.annotate import NEGATIVE_ERRORS
from slowthink.search.base import stable_seed
from slowthink.types import Message, Problem, Request


@dataclass
class NegativesOptions(ModeOptions):
    source: str = "steps"
    """``meta`` field holding the correct chain (a list of steps, or one text with a step per line)."""
    errors: str = "calculation,logic,misread"
    """Kinds of error to choose from, comma-separated."""
    max_attempts: int = 2
    temperature: float = 0.7
    max_tokens: int = 160
    max_similarity: float = 97.0
    """A corrupted step this similar (rapidfuzz ratio, 0-100) to the original is no corruption."""

    def __post_init__(self) -> None:
        unknown = [e for e in self.kinds if e not in NEGATIVE_ERRORS]
        if unknown or not self.kinds:
            raise ValueError(
                f"errors must be a comma list of {', '.join(NEGATIVE_ERRORS)}, got {self.errors!r}"
            )
        if self.max_attempts < 1 or self.max_tokens < 1:
            raise ValueError("max_attempts and max_tokens must be >= 1")

    @property
    def kinds(self) -> list[str]:
        return [e.strip() for e in self.errors.split(",") if e.strip()]


def chain_of(problem: Problem, source: str, relabel: bool = True) -> list[str]:
    """The chain in ``meta[source]`` as labelled steps (empty when there is none); ``relabel=False``
    keeps each step's text as given."""
    value = problem.meta.get(source)
    if isinstance(value, str):
        value = [ln for ln in value.splitlines() if ln.strip()]
    if not isinstance(value, list):
        return []
    steps = [str(s) for s in value if str(s).strip()]
    return label_steps(steps) if relabel else steps


class NegativesMode(Mode):
    name = "negatives"
    Options = NegativesOptions

    def unusable(self, problem: Problem, options: NegativesOptions) -> str | None:
        if len(chain_of(problem, options.source)) < 1:
            return f"no chain in '{options.source}'"
        return super().unusable(problem, options)

    def run(self, problems: Sequence[Problem], ctx: ModeContext) -> list[Annotation]:
        opts: NegativesOptions = ctx.options
        anns = [self.new(p, ctx) for p in problems]
        plan: dict[int, tuple[list[str], int, str]] = {}
        for a in anns:
            chain = chain_of(a.problem, opts.source)
            rng = random.Random(stable_seed(ctx.seed, a.id, "negative"))
            plan[id(a)] = (chain, rng.randrange(len(chain)), rng.choice(opts.kinds))
        live = list(anns)
        for attempt in range(1, opts.max_attempts + 1):
            asks = [Ask(a, self._request(a, *plan[id(a)], opts, ctx.seed, attempt)) for a in live]
            for a, _ in replies(ctx.teacher, asks, attempt):
                chain, k, kind = plan[id(a)]
                step, reason = self._corrupted(a.response, chain, k, a.problem, opts)
                if reason:
                    a.reject(f"{reason} (attempt {attempt})")
                    continue
                a.status, a.method = "accepted", "teacher"
                a.steps = chain[:k] + [step]
                a.labels = [True] * k + [False]
                a.extra.update({"chain": chain, "corrupted_step": k + 1, "error": kind})
            ctx.accepted(live)
            live = [a for a in live if a.status == "rejected"]
            if not live:
                break
        return anns

    def _request(
        self,
        a: Annotation,
        chain: list[str],
        k: int,
        kind: str,
        opts: NegativesOptions,
        seed: int,
        attempt: int,
    ) -> Request:
        text = get_template("annotate.negative.user").format(
            number=k + 1,
            error=get_template(f"annotate.negative.error.{kind}"),
            question=user_prompt(a.problem),
            steps="\n".join(chain),
        )
        return Request(
            [Message("user", text, images=list(a.problem.images))],
            max_tokens=opts.max_tokens,
            temperature=opts.temperature,
            seed=stable_seed(seed, a.id, "negative", attempt),
        )

    @staticmethod
    def _corrupted(
        reply: str, chain: list[str], k: int, problem: Problem, opts: NegativesOptions
    ) -> tuple[str, str | None]:
        lines = [ln.strip() for ln in reply.strip().splitlines() if ln.strip()]
        body = strip_label(lines[0]) if lines else ""
        step = f"Step {k + 1}: {body}"
        if not body:
            return step, "empty reply"
        if declines(body):
            return step, "refusal"
        if fuzz.ratio(body, strip_label(chain[k])) >= opts.max_similarity:
            return step, "not corrupted: the step is unchanged"
        if k == len(chain) - 1 and final_answer_of([chain[k]]) is not None:
            answer = final_answer_of([step])
            if answer is not None and grade(answer, problem).correct:
                return step, "not corrupted: the final answer is still right"
        return step, None
