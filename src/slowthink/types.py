"""Plain, JSON-serialisable dataclasses shared by every role.

The data flow is ``Problem -> Strategy -> [Request] -> Engine -> [Completion] -> Trace``.
Nothing here imports a model library.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

AnswerType = Literal["auto", "number", "choice", "text", "latex", "list"]
ANSWER_TYPES: tuple[str, ...] = ("auto", "number", "choice", "text", "latex", "list")
#: The option letters of ``Problem.choices``, in order.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class SlowthinkError(Exception):
    """A user-facing error: the message names the problem and the fix. The CLI prints it on one line."""


def _asdict(obj: Any) -> Any:
    return dataclasses.asdict(obj)


@dataclass
class Problem:
    """One question to answer.

    ``images`` are file paths (the engine opens them). ``choices`` holds the option texts of a
    multiple-choice question, in order (option letters A, B, C, ... are implied). ``answer`` is the
    gold answer when known (for grading); ``answer_type`` tells the grader how to compare and
    ``precision`` is the number of decimals for float answers (MathVista convention).
    ``abs_tol`` / ``rel_tol`` accept a numeric answer within that absolute error
    (``|pred - gold| <= abs_tol``) or relative error (``<= rel_tol * |gold|``; absolute when the
    gold is 0). A number is right when it is equal or any of the rules set accepts it.
    """

    id: str
    question: str
    images: list[str] = field(default_factory=list)
    choices: list[str] | None = None
    answer: str | None = None
    answer_type: str = "auto"
    precision: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    abs_tol: float | None = None
    rel_tol: float | None = None

    def __post_init__(self) -> None:
        self.id = str(self.id)
        for name in ("abs_tol", "rel_tol"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not 0 <= float(value) < float("inf")):
                raise ValueError(f"Problem.{name} must be a finite number >= 0, got {value!r}")
            if value is not None:
                setattr(self, name, float(value))
        if self.answer is not None and not isinstance(self.answer, str):
            self.answer = str(self.answer)
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"Problem.answer_type must be one of {ANSWER_TYPES}, got {self.answer_type!r}")
        if self.choices is not None:
            self.choices = [str(c) for c in self.choices]

    @property
    def is_multiple_choice(self) -> bool:
        return bool(self.choices)

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Message:
    """One chat message. ``images`` are file paths attached to this message (before the text)."""

    role: Literal["system", "user", "assistant"]
    content: str
    images: list[str] = field(default_factory=list)


@dataclass
class Request:
    """What a strategy asks an engine for.

    The engine renders ``messages`` with the model's chat template, opens the assistant turn and
    appends ``prefix`` byte for byte: the model continues that text (the steps already chosen).
    ``stop`` strings end generation and are *kept* at the end of the completion text.
    """

    messages: list[Message]
    prefix: str = ""
    n: int = 1
    stop: list[str] = field(default_factory=list)
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    tag: Any = None
    """Opaque bookkeeping for the caller (never sent to a model)."""

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if self.n < 1:
            raise ValueError(f"Request.n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"Request.max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"Request.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Request.top_p must be in (0, 1], got {self.top_p}")

    @property
    def images(self) -> list[str]:
        return [img for m in self.messages for img in m.images]


@dataclass
class Completion:
    """One sample. ``text`` is what the model wrote after the prefix, ending with the stop string
    that ended it (``stop_str``) when ``finish_reason == "stop"`` and a stop string matched."""

    text: str
    finish_reason: Literal["stop", "length", "error"] = "stop"
    stop_str: str | None = None
    prompt_tokens: int = 0
    generated_tokens: int = 0
    logprobs: list[float] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.finish_reason != "error"


@dataclass
class Compute:
    """Compute a trace used. Policy and scorer/judge compute are counted apart.

    ``engine_calls`` counts ``Engine.generate`` calls this problem took part in (a batched call
    serving many problems counts once for each of them); ``wall_time_s`` is the wall time of the
    batch the problem was solved in, shared by ``batch_size`` problems.
    """

    prompt_tokens: int = 0
    generated_tokens: int = 0
    engine_calls: int = 0
    samples: int = 0
    scorer_prompt_tokens: int = 0
    scorer_generated_tokens: int = 0
    scorer_calls: int = 0
    wall_time_s: float = 0.0
    batch_size: int = 1

    def add_completion(self, c: Completion) -> None:
        """Charge one policy sample (scorer and judge tokens go through :func:`slowthink.scorers.charge`)."""
        self.prompt_tokens += c.prompt_tokens
        self.generated_tokens += c.generated_tokens
        self.samples += 1

    @property
    def total_generated_tokens(self) -> int:
        return self.generated_tokens + self.scorer_generated_tokens


@dataclass
class Node:
    """One generated piece of text in the search tree: a step, a stage, or a whole response.

    ``text`` is what this node adds to its parent's text. The root (id 0) holds no text.
    """

    id: int
    parent: int | None
    text: str = ""
    depth: int = 0
    kind: str = "root"
    score: float | None = None
    """The path score: the scorer's step scores of the path up to here, aggregated (or judge wins)."""
    step_score: float | None = None
    """This node's own step score (the scorer's last entry for the path); ``None`` = unknown/unscored."""
    finish_reason: str | None = None
    generated_tokens: int = 0
    final: bool = False
    answer: str | None = None
    chosen: bool = False
    note: str | None = None


@dataclass
class Trace:
    """What a strategy did for one problem: the tree, the chosen path, the answer, the compute."""

    problem_id: str
    strategy: str
    format: str
    nodes: list[Node] = field(default_factory=list)
    path: list[int] = field(default_factory=list)
    answer: str | None = None
    compute: Compute = field(default_factory=Compute)
    votes: dict[str, float] | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """Judge decisions, in order: ``{"stage", "a", "b", "winner", "parsed"}`` (node ids)."""
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def steps(self) -> list[Node]:
        """The chosen path without the root."""
        by_id = {n.id: n for n in self.nodes}
        return [by_id[i] for i in self.path if by_id[i].parent is not None]

    @property
    def response(self) -> str:
        return "".join(n.text for n in self.steps)

    @property
    def has_answer(self) -> bool:
        return self.answer is not None

    def to_dict(self) -> dict[str, Any]:
        d = _asdict(self)
        d["response"] = self.response
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kw)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        d = dict(d)
        d.pop("response", None)
        d["nodes"] = [Node(**n) for n in d.get("nodes", [])]
        d["compute"] = Compute(**d.get("compute", {}))
        return cls(**d)
