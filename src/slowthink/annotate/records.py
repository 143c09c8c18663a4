"""The annotation record: one JSON line per finished item in ``annotations.jsonl``.

::

    {"v": 1, "id": "gsm8k-train-0", "mode": "atomic-segment", "teacher": "llamacpp",
     "prompt_version": "atomic-segment-v1", "status": "accepted", "method": "teacher",
     "steps": ["Step 1: ...", "Step 2: To sum up, the final answer is: 72"], "answer": "72",
     "labels": null, "soft_labels": null, "stages": null, "response": "...", "reasons": [],
     "attempts": 1, "usage": {"prompt_tokens": 210, "generated_tokens": 64, "calls": 1},
     "problem": {...Problem.to_dict()...}, "extra": {}, "time": "2026-01-01T12:00:00+00:00"}

``(id, mode, teacher, prompt_version)`` identifies a record (:func:`Annotation.key`); a later line
with the same key wins (an ``error`` record retried). ``status`` is ``accepted`` (passed every
check: it goes into the datasets), ``rejected`` (the teacher's output failed a check; ``reasons``
says which, one entry per attempt) or ``error`` (the engine failed: retried by the next run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from slowthink.types import Completion, Problem

RECORD_VERSION = 1
STATUSES: tuple[str, ...] = ("accepted", "rejected", "error")
Status = Literal["accepted", "rejected", "error"]
AnnotationKey = tuple[str, str, str, str]


@dataclass
class Usage:
    """What an item cost: tokens of every completion it received and the engine calls it took part in."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    calls: int = 0

    def add(self, completions: list[Completion]) -> None:
        for c in completions:
            self.prompt_tokens += c.prompt_tokens
            self.generated_tokens += c.generated_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.generated_tokens


@dataclass
class Annotation:
    """What the data engine made of one item (accepted or not)."""

    id: str
    mode: str
    teacher: str
    prompt_version: str
    problem: Problem
    status: Status = "rejected"
    method: str | None = None
    """Who made the accepted steps: ``teacher``, ``split`` (deterministic), ``rollout``, ``release`` (a loader)."""
    steps: list[str] = field(default_factory=list)
    answer: str | None = None
    labels: list[bool] | None = None
    """Step labels for PRM data (True = ``+``), one per step."""
    soft_labels: list[float] | None = None
    """Share of rollouts reaching the gold answer, one per step (``rollout-labels``)."""
    stages: dict[str, str] | None = None
    """The four LLaVA-CoT stages by name (``stages``)."""
    response: str | None = None
    """The teacher's raw text behind the record (the last attempt when rejected)."""
    reasons: list[str] = field(default_factory=list)
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    extra: dict[str, Any] = field(default_factory=dict)
    time: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Annotation.status must be one of {STATUSES}, got {self.status!r}")
        if self.labels is not None and len(self.labels) != len(self.steps):
            raise ValueError(f"Annotation {self.id}: {len(self.labels)} labels for {len(self.steps)} steps")
        if self.soft_labels is not None and len(self.soft_labels) != len(self.steps):
            raise ValueError(
                f"Annotation {self.id}: {len(self.soft_labels)} soft labels for {len(self.steps)} steps"
            )

    @property
    def key(self) -> AnnotationKey:
        return (self.id, self.mode, self.teacher, self.prompt_version)

    def reject(self, reason: str) -> None:
        """Note why an attempt failed (the record stays ``rejected`` unless a later attempt passes)."""
        self.status = "rejected"
        self.reasons.append(reason)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["v"] = RECORD_VERSION
        d["time"] = self.time or datetime.now(timezone.utc).isoformat(timespec="seconds")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Annotation:
        """Rebuild a record; raises ``KeyError``/``TypeError``/``ValueError`` on a malformed one."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["problem"] = Problem.from_dict(d["problem"])
        kw["usage"] = Usage(**(d.get("usage") or {}))
        return cls(**kw)


def record_key(d: dict[str, Any]) -> AnnotationKey:
    """The dedup key of a record read back as a dict."""
    return (str(d["id"]), str(d["mode"]), str(d["teacher"]), str(d["prompt_version"]))
