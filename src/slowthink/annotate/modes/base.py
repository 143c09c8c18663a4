"""What every annotation mode shares: the mode interface, its options, and the batched engine call.

A mode turns a batch of problems into one :class:`~slowthink.annotate.records.Annotation` each. It
talks to engines only through :func:`call`: ONE ``Engine.generate`` for all the requests of a round
(every item of the batch that still needs one), so an HTTP engine sends them concurrently (bounded
by its ``max_concurrency``) and an in-process engine batches them. A mode never raises on model
output: bad output becomes a rejected annotation with its reason; an engine failure becomes an
``error`` annotation (the runner retries it on the next run).
"""

from __future__ import annotations

import dataclasses
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from slowthink.annotate.records import Annotation
from slowthink.engines import Engine
from slowthink.prompts.annotate import PROMPT_VERSIONS
from slowthink.types import Completion, Problem, Request, SlowthinkError


@dataclass
class ModeContext:
    """What a mode runs with: engines, its parsed options, the base seed and the run's identity."""

    options: Any
    seed: int = 0
    teacher: Engine | None = None
    policy: Engine | None = None
    teacher_id: str = "none"
    finished: Callable[[list[Annotation]], None] | None = None
    """Where accepted annotations go as soon as they are final, before their batch ends (the runner
    writes them at once); the rest of a batch is written when ``Mode.run`` returns."""

    def accepted(self, annotations: Iterable[Annotation]) -> None:
        """Hand over the accepted ones among ``annotations`` (a round's items) to ``finished``."""
        final = [a for a in annotations if a.status == "accepted"]
        if final and self.finished is not None:
            self.finished(final)


@dataclass
class ModeOptions:
    """Base of every mode's options (``-M key=value`` / YAML ``mode_options``)."""


class Mode(ABC):
    """One way of annotating an item. Subclasses set the class attributes and :meth:`run`."""

    name: ClassVar[str]
    Options: ClassVar[type[ModeOptions]] = ModeOptions
    needs_teacher: ClassVar[bool] = True
    """False: the teacher is optional (``atomic-segment`` falls back to the deterministic split)."""
    needs_policy: ClassVar[bool] = False
    needs_answer: ClassVar[bool] = True

    @property
    def prompt_version(self) -> str:
        return PROMPT_VERSIONS[self.name]

    def options(self, raw: dict[str, Any]) -> ModeOptions:
        """The mode's options from ``key=value`` pairs; unknown keys and wrong types are one error line."""
        return parse_options(self.Options, raw, f"mode '{self.name}'")

    def unusable(self, problem: Problem, options: Any) -> str | None:
        """Why an input item cannot be annotated by this mode (a skip reason), or ``None``."""
        if self.needs_answer and not (problem.answer or "").strip():
            return "no standard answer"
        return None

    def new(self, problem: Problem, ctx: ModeContext) -> Annotation:
        return Annotation(problem.id, self.name, ctx.teacher_id, self.prompt_version, problem)

    @abstractmethod
    def run(self, problems: Sequence[Problem], ctx: ModeContext) -> list[Annotation]:
        """One annotation per problem, in order."""


def parse_options(cls: type, raw: dict[str, Any], what: str) -> Any:
    """Build the options dataclass ``cls`` from ``raw``, checking names and simple types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            raise SlowthinkError(f"{what} has no option '{key}'; valid: {valid}")
        kw[key] = _coerce(value, hints[key], f"{what} option {key}")
    try:
        return cls(**kw)
    except ValueError as e:
        raise SlowthinkError(f"{what}: {e}") from None


def _coerce(value: Any, hint: Any, what: str) -> Any:
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    if value is None and type(None) in typing.get_args(hint):
        return None
    for t in kinds:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    names = "/".join(getattr(t, "__name__", str(t)) for t in kinds)
    raise SlowthinkError(f"{what} must be {names}, got {value!r}")


@dataclass
class Ask:
    """One request made for one annotation (its usage is charged with the completions)."""

    annotation: Annotation
    request: Request
    results: list[Completion] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        """The engine's error when every completion failed."""
        if self.results and all(c.finish_reason == "error" for c in self.results):
            return self.results[0].error or "engine error"
        return None


def call(engine: Engine, asks: Sequence[Ask]) -> None:
    """All ``asks`` in ONE engine call; fills ``ask.results`` and charges each annotation's usage
    (tokens of its completions, one call per annotation that took part)."""
    if not asks:
        return
    outputs = engine.generate([a.request for a in asks])
    if len(outputs) != len(asks):
        raise RuntimeError(f"engine {engine.name} returned {len(outputs)} results for {len(asks)} requests")
    seen: set[int] = set()
    for ask, comps in zip(asks, outputs):
        ask.results = list(comps)
        ask.annotation.usage.add(ask.results)
        if id(ask.annotation) not in seen:
            ask.annotation.usage.calls += 1
            seen.add(id(ask.annotation))


def replies(
    engine: Engine, asks: Sequence[Ask], attempt: int | None = None
) -> Iterator[tuple[Annotation, Completion]]:
    """Run ``asks`` in one engine call (:func:`call`) and yield ``(annotation, first completion)`` for
    each that got an answer; an ask the engine failed marks its annotation ``error`` instead. With
    ``attempt``, each answered annotation records it and the reply text (``attempts``, ``response``)."""
    call(engine, asks)
    for ask in asks:
        a = ask.annotation
        if ask.error:
            engine_error(a, ask.error)
            continue
        if attempt is not None:
            a.attempts = attempt
            a.response = ask.results[0].text
        yield a, ask.results[0]


def engine_error(a: Annotation, message: str) -> None:
    """Mark ``a`` as failed by the engine (retried by the next run, not a rejection)."""
    a.status = "error"
    a.reasons.append(f"engine error: {message[:300]}")
