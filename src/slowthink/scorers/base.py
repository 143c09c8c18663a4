"""The Scorer role: who judges.

Two kinds of judging, both batched across problems (one engine / model call per search depth):

* **step scores** -- ``StepScorer.score(queries) -> list[ScoreResult]``: for each query (a problem
  and the steps of one path) one score per step, in [0, 1] (``None`` = unknown). PRMs, a pointwise
  LLM judge, the symbolic arithmetic checker.
* **pairwise verdicts** -- ``PairwiseJudge.compare(comparisons) -> list[Verdict]``: which of two
  candidates continuing the same prefix is better (LLaVA-CoT's stage-level judge).
* **reasoning checks** -- ``ReasoningChecker.check_reasoning(queries) -> list[Check]``: is a
  REASONING candidate correct (LLaVA-CoT's check inside each reasoning comparison).

A scorer object plays one or more of these roles (:data:`Scorer`); a strategy declares the roles it
needs (:class:`Role`, ``slowthink.search.STRATEGIES``) and ``slowthink.search.require`` checks them
before the first engine call.

Step scorers cache by (problem id, step prefix) in a :class:`StepCache` so that a step is scored
once across depths. Each result carries the compute it cost; :func:`charge` / :func:`charge_call`
are the one place where it is added to a problem's ``Compute``, apart from the policy's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

from slowthink.types import Compute, Problem


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


Scorer = StepScorer | PairwiseJudge | ReasoningChecker
"""What ``--scorer`` builds: an object playing one or more of the three roles (the LLM judge plays
all three, a PRM or the symbolic checker only :class:`StepScorer`)."""


@dataclass(frozen=True)
class Role:
    """One thing a strategy can ask of its scorer: the protocol that provides it, in words for
    error messages, and the ``--scorer`` that gives it."""

    protocol: type
    method: str
    """The protocol's method (named in the error when the scorer lacks it)."""
    what: str
    fix: str


STEP_SCORES = Role(StepScorer, "score", "step scores", "--scorer judge|symbolic|prm:PATH")
PAIRWISE = Role(PairwiseJudge, "compare", "pairwise comparisons", "--scorer judge")
REASONING_CHECKS = Role(ReasoningChecker, "check_reasoning", "reasoning checks", "--scorer judge")


@dataclass(frozen=True)
class Need:
    """A role a strategy needs under its settings (``because``: the setting, e.g. ``select=judge``)."""

    role: Role
    because: str = ""


# -- compute accounting --------------------------------------------------------------------------


class Cost(Protocol):
    """What a scorer result cost (``ScoreResult``, ``Verdict``, ``Check``)."""

    prompt_tokens: int
    generated_tokens: int
    calls: int


def charge(compute: Compute, results: Iterable[Cost]) -> None:
    """Charge one problem's :class:`~slowthink.types.Compute` for the scorer results it got from
    ONE scorer call (``ScoreResult`` s, ``Verdict`` s or pre-check ``Check`` s): their tokens are
    added to the scorer columns, and ``scorer_calls`` grows by the most calls any of them took
    part in (several verdicts from one batched engine call count as one call).

    Example:
        >>> c = Compute()
        >>> charge(c, [Verdict(0, prompt_tokens=200, generated_tokens=2, calls=1)] * 3)
        >>> (c.scorer_prompt_tokens, c.scorer_generated_tokens, c.scorer_calls)
        (600, 6, 1)
    """
    results = list(results)
    compute.scorer_prompt_tokens += sum(r.prompt_tokens for r in results)
    compute.scorer_generated_tokens += sum(r.generated_tokens for r in results)
    compute.scorer_calls += max((r.calls for r in results), default=0)


def charge_call(items: Iterable[tuple[Compute, Cost]]) -> None:
    """Charge the results of ONE scorer call to the problems they belong to: each problem's
    ``Compute`` is charged (:func:`charge`) once, with all of its results.

    Example:
        >>> a, b = Compute(), Compute()
        >>> charge_call([(a, ScoreResult([1.0], 5, 1, calls=1)), (b, ScoreResult([0.0], 7, 1, calls=1)),
        ...              (a, ScoreResult([1.0], 0, 0, calls=0))])
        >>> (a.scorer_prompt_tokens, a.scorer_calls), (b.scorer_prompt_tokens, b.scorer_calls)
        ((5, 1), (7, 1))
    """
    per: dict[int, tuple[Compute, list[Cost]]] = {}
    for compute, result in items:
        per.setdefault(id(compute), (compute, []))[1].append(result)
    for compute, results in per.values():
        charge(compute, results)


# -- the per-(problem, prefix) cache of step scorers ---------------------------------------------

PrefixKey = tuple[str, str]
"""(problem id, the concatenated steps of a path up to and including one step)."""
V = TypeVar("V")


class StepCache(Generic[V]):
    """What a step scorer knows about each (problem id, step prefix): a step is scored once across
    search depths and queries. The value is the scorer's (a score, or a score and a note). The first
    value stored for a key stays.

    Example:
        >>> cache: StepCache[float] = StepCache()
        >>> q1 = ScoreQuery(Problem("p", "?"), ["a", "b"])
        >>> q2 = ScoreQuery(Problem("p", "?"), ["a", "c"])
        >>> cache.keys(q1)
        [('p', 'a'), ('p', 'ab')]
        >>> cache.missing([q1, q2])  # each uncached prefix once: its first (query, step)
        {('p', 'a'): (0, 0), ('p', 'ab'): (0, 1), ('p', 'ac'): (1, 1)}
        >>> cache.put(("p", "a"), 0.9), cache.put(("p", "a"), 0.1), cache[("p", "a")]
        (0.9, 0.9, 0.9)
        >>> cache.missing([q1])
        {('p', 'ab'): (0, 1)}
    """

    def __init__(self) -> None:
        self._values: dict[PrefixKey, V] = {}

    @staticmethod
    def keys(query: ScoreQuery) -> list[PrefixKey]:
        """The key of every step of the query's path, in order."""
        out, text = [], ""
        for step in query.steps:
            text += step
            out.append((query.problem.id, text))
        return out

    def missing(self, queries: Sequence[ScoreQuery]) -> dict[PrefixKey, tuple[int, int]]:
        """Every uncached prefix of the queries, once, in order of first appearance, with the
        (query index, step index) where it first appears (that query pays for scoring it)."""
        out: dict[PrefixKey, tuple[int, int]] = {}
        for qi, q in enumerate(queries):
            for si, key in enumerate(self.keys(q)):
                if key not in self._values and key not in out:
                    out[key] = (qi, si)
        return out

    def put(self, key: PrefixKey, value: V) -> V:
        """Store ``value`` unless the key is known; return the stored value."""
        return self._values.setdefault(key, value)

    def __getitem__(self, key: PrefixKey) -> V:
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values
