"""The Scorer role: who judges.

Two kinds of judging, both batched across problems (one engine / model call per search depth):

* **step scores** -- ``StepScorer.score(queries) -> list[ScoreResult]``: for each query (a problem
  and the steps of one path) one score per step, in [0, 1] (``None`` = unknown). PRMs, a pointwise
  LLM judge, the symbolic arithmetic checker.
* **pairwise verdicts** -- ``PairwiseJudge.compare(comparisons) -> list[Verdict]``: which of two
  candidates continuing the same prefix is better (LLaVA-CoT's stage-level judge).
* **reasoning checks** -- ``ReasoningChecker.check_reasoning(queries) -> list[Check]``: is a
  REASONING candidate correct (LLaVA-CoT's check inside each reasoning comparison).

Scorers cache by (problem id, step prefix) so that a step is scored once across depths. Each
result carries the compute it cost, which strategies charge to the problem's ``Compute`` apart
from the policy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from slowthink.types import Problem


@dataclass
class ScoreQuery:
    problem: Problem
    steps: list[str]
    """The steps of one path, in order (node texts); the last one is usually the new step."""


@dataclass
class ScoreResult:
    scores: list[float | None]
    """One score per step of the query (``None`` = the scorer cannot tell)."""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    calls: int = 0
    """Model/engine calls this query took part in (0 when every step came from the cache)."""
    notes: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    problem: Problem
    prefix: str
    """The chosen response so far (both candidates continue it)."""
    a: str
    b: str
    stage: str
    """Which judge prompt: summary | caption | reasoning | conclusion | sentence | answer."""


@dataclass
class Verdict:
    winner: int
    """0 when ``a`` wins, 1 when ``b`` wins."""
    parsed: bool = True
    """False when the judge's output could not be parsed and the documented rule decided."""
    raw: str = ""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    calls: int = 0


@dataclass
class CheckQuery:
    """One reasoning check (LLaVA-CoT): is ``candidate`` correct, given the response so far?"""

    problem: Problem
    prefix: str
    """The chosen response so far (SUMMARY and CAPTION for a REASONING candidate)."""
    candidate: str
    """The reasoning to check (a REASONING stage node text)."""


@dataclass
class Check:
    """One reasoning check's result."""

    ok: bool | None
    """True = judged correct, False = judged incorrect, None = no usable reply (counts as not wrong)."""
    raw: str = ""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    calls: int = 0


@runtime_checkable
class StepScorer(Protocol):
    name: str

    def score(self, queries: Sequence[ScoreQuery]) -> list[ScoreResult]: ...


@runtime_checkable
class PairwiseJudge(Protocol):
    name: str

    def compare(self, comparisons: Sequence[Comparison]) -> list[Verdict]: ...


@runtime_checkable
class ReasoningChecker(Protocol):
    """Checks reasoning candidates for correctness, all queries in one engine call."""

    name: str

    def check_reasoning(self, queries: Sequence[CheckQuery]) -> list[Check]: ...
