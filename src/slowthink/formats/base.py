"""The Format role: how a response is cut into steps.

A format owns its prompt templates, the stop strings for the next step, how a step is finished and
checked, when a path is final, how a whole response is parsed (tolerating malformed model output)
and where the answer is. Strategies only talk to formats through this interface.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slowthink.grading import extract_answer
from slowthink.prompts import get_template, user_prompt
from slowthink.types import Completion, Message, Problem, SlowthinkError


@dataclass
class StepSpec:
    """What to ask for next: ``opener`` is appended to the prefix (the model continues after it),
    ``stop`` ends the step, ``kind`` names it (a stage name, ``step`` or ``response``)."""

    kind: str
    opener: str = ""
    stop: list[str] = field(default_factory=list)
    max_tokens: int = 128


@dataclass
class ParsedStep:
    kind: str
    text: str


@dataclass
class Parsed:
    """A parsed response. ``answer_text`` is the raw answer span (before grading's extraction);
    ``notes`` says what was recovered from malformed output."""

    steps: list[ParsedStep]
    answer_text: str | None
    complete: bool
    notes: list[str] = field(default_factory=list)


_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")


def repeated_ratio(text: str) -> float:
    """Share of the sentences of ``text`` that occur more than once (distinct repeated sentences over
    all sentences, AtomThink's ``get_repeated_sentence_ratio``); fragments of 8 characters or less
    (numbers, labels) are not sentences. 0.0 when there is none."""
    sents = [s.strip().lower() for s in _SENT_SPLIT.split(text) if len(s.strip()) > 8]
    if not sents:
        return 0.0
    return sum(1 for s in set(sents) if sents.count(s) > 1) / len(sents)


def repeated_sentences(text: str) -> bool:
    """True when the same sentence occurs twice in ``text`` (a degenerate loop)."""
    return repeated_ratio(text) > 0


class Format(ABC):
    """Base class of the formats; subclasses set ``name`` and ``system_template``."""

    name: str = ""
    system_template: str = ""
    #: Token budget of a whole response (majority, best-of-n, cot).
    full_max_tokens: int = 512
    #: Whether the model stopping on its own (end of sequence) ends the response.
    eos_ends_response: bool = True

    def configure(self, options: dict[str, Any]) -> None:
        """Apply the ``k=v`` options of a format spec (``atomic#style=atomthink``); this format takes none."""
        if options:
            raise SlowthinkError(
                f"format '{self.name}' takes no options, got {', '.join(options)}; write --format {self.name}"
            )

    @property
    def spec(self) -> str:
        """The format spec that rebuilds this format (``name`` or ``name#k=v,...``); recorded in traces."""
        return self.name

    def step_request(
        self, problem: Problem, history: Sequence[str], spec: StepSpec
    ) -> tuple[list[Message], str]:
        """The messages and assistant prefix asking for ``spec`` after the steps ``history`` (node texts).

        Default: one assistant turn continued, the prefix is the response so far plus the opener.
        """
        return self.messages(problem), "".join(history) + spec.opener

    def messages(self, problem: Problem, *, direct: bool = False) -> list[Message]:
        system = get_template("free.direct.system" if direct else self.system_template)
        user = Message("user", user_prompt(problem), images=list(problem.images))
        return [Message("system", system), user] if system else [user]

    def full_spec(self) -> StepSpec:
        """How to ask for a whole response in one request."""
        return StepSpec(kind="response", opener=self.full_opener(), stop=[], max_tokens=self.full_max_tokens)

    def full_opener(self) -> str:
        return ""

    def direct_spec(self) -> StepSpec:
        """How to ask for a direct answer with no reasoning (the ``direct`` strategy, AtomThink's
        Direct mode): one short line after the direct-answer system prompt (``messages(direct=True)``)."""
        return StepSpec(kind="response", opener="", stop=["\n"], max_tokens=48)

    @abstractmethod
    def next_step(self, prefix: str) -> StepSpec | None:
        """What the next step after ``prefix`` is; ``None`` when the path is complete."""

    def finish_step(self, spec: StepSpec, completion: Completion) -> tuple[str, str | None]:
        """Node text for a completion of ``spec`` (opener + completion), and a note on any repair."""
        return spec.opener + completion.text, None

    def validate_step(self, text: str, history: list[str]) -> str | None:
        """Why a freshly generated step is unusable (``None`` when it is fine)."""
        if not text.strip():
            return "empty step"
        return None

    @abstractmethod
    def is_final(self, text: str, kind: str) -> bool:
        """Whether a step of this kind with this text ends the response."""

    @abstractmethod
    def parse(self, response: str) -> Parsed:
        """Cut a whole response into steps and find the answer span. Never raises."""

    def answer_opener(self, prefix: str) -> StepSpec:
        """How to force a final answer after ``prefix`` (the direct-answer fallback)."""
        sep = "" if not prefix or prefix.endswith("\n") else "\n"
        return StepSpec(kind="answer", opener=sep + "The answer is", stop=["\n"], max_tokens=24)

    def answer(self, response: str, problem: Problem | None = None) -> str | None:
        """The extracted answer of a whole response (``None`` when there is none)."""
        parsed = self.parse(response)
        if parsed.answer_text is None:
            return None
        return extract_answer(parsed.answer_text, problem)
