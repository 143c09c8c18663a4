"""Per-capability step counts and scores of each run, with Wilson 95% intervals.

Scores (``--scorer``):

- ``outcome``: AtomThink's outcome supervision — the share of a capability's steps that lie on a
  chain whose final answer was graded right (a step gets 1 or 0);
- a step scorer (``prm:PATH``, ``judge``, any :func:`slowthink.scorers.load_scorer` spec that scores
  steps): the mean step score in [0, 1], one scorer query per chosen path; a step the scorer cannot
  tell (``None``) is counted as unscored;
- ``rollouts``: the mean Monte-Carlo rollout label of the steps (:mod:`slowthink.analyze.rollouts`).

The interval of a mean of scores in [0, 1] is the Wilson interval of its sum as fractional successes
(the same interval the evaluation gives a fractional accuracy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slowthink.analyze.capset import CapabilitySet
from slowthink.analyze.classify import Labels
from slowthink.analyze.steps import Step
from slowthink.scorers import ScoreQuery, StepScorer
from slowthink.stats import wilson
from slowthink.types import SlowthinkError

#: The weakest capability of a run is picked among those with at least this many scored steps
#: (among all scored ones when none has that many).
MIN_STEPS = 5


def outcome_scores(steps: Sequence[Step]) -> list[float | None]:
    return [1.0 if s.correct else 0.0 for s in steps]


def step_scores(steps: Sequence[Step], scorer: Any) -> list[float | None]:
    """Scores of ``steps`` by a step scorer: one query per chosen path (its steps in order)."""
    if not isinstance(scorer, StepScorer):
        raise SlowthinkError(
            f"scorer '{getattr(scorer, 'name', scorer)}' does not score steps; use outcome, judge or prm:PATH"
        )
    paths: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for i, s in enumerate(steps):
        paths[(s.run, s.problem.id, s.strategy, s.key)].append(i)
    keys = list(paths)
    queries = [
        ScoreQuery(
            steps[paths[k][0]].problem, [*steps[paths[k][0]].history, *(steps[i].text for i in paths[k])]
        )
        for k in keys
    ]
    out: list[float | None] = [None] * len(steps)
    for k, res in zip(keys, scorer.score(queries)):
        for i in paths[k]:  # a query's steps are the path from its first step: position = step index
            j = steps[i].index
            out[i] = res.scores[j] if j < len(res.scores) else None
    return out


@dataclass
class Cell:
    steps: int = 0
    scored: int = 0
    total: float = 0.0

    def row(self, run_steps: int) -> dict[str, Any]:
        mean = self.total / self.scored if self.scored else None
        lo, hi = wilson(self.total, self.scored)
        return {
            "steps": self.steps,
            "share": round(self.steps / run_steps, 4) if run_steps else 0.0,
            "scored": self.scored,
            "score": None if mean is None else round(mean, 4),
            "ci95": [round(lo, 4), round(hi, 4)] if self.scored else None,
        }


@dataclass
class Profile:
    caps: CapabilitySet
    classifier: str
    scorer: str
    labels: Labels
    """The classifier's output: its labels, fallbacks to the rules and model cost."""
    runs: dict[str, dict[str, Cell]] = field(default_factory=dict)
    scorer_cost: dict[str, Any] | None = None
    """What a model-running scorer spent (rollouts: paths rolled out, cached, failed; calls, tokens)."""

    def weakest(self, run: str) -> str | None:
        cells = {n: c for n, c in self.runs[run].items() if c.scored}
        enough = {n: c for n, c in cells.items() if c.scored >= MIN_STEPS} or cells
        if not enough:
            return None
        return min(enough, key=lambda n: (enough[n].total / enough[n].scored, -enough[n].scored))

    def to_dict(self) -> dict[str, Any]:
        runs = {}
        for run, cells in self.runs.items():
            n = sum(c.steps for c in cells.values())
            every = Cell(n, sum(c.scored for c in cells.values()), sum(c.total for c in cells.values()))
            runs[run] = {
                "all": every.row(n),
                "capabilities": {name: cells[name].row(n) for name in self.caps.names},
                "weakest": self.weakest(run),
            }
        return {
            "capability_set": self.caps.source,
            "capabilities": [{"name": c.name, "description": c.description} for c in self.caps.capabilities],
            "classifier": self.classifier,
            "classifier_fallbacks": self.labels.fallbacks,
            "classifier_cost": {
                "calls": self.labels.calls,
                "prompt_tokens": self.labels.prompt_tokens,
                "generated_tokens": self.labels.generated_tokens,
            },
            "scorer": self.scorer,
            **({"scorer_cost": self.scorer_cost} if self.scorer_cost is not None else {}),
            "runs": runs,
        }


def build_profile(
    caps: CapabilitySet,
    steps: Sequence[Step],
    labels: Labels,
    scores: Sequence[float | None],
    *,
    classifier: str,
    scorer: str,
    scorer_cost: dict[str, Any] | None = None,
) -> Profile:
    prof = Profile(caps, classifier, scorer, labels, scorer_cost=scorer_cost)
    for s in steps:  # every run listed, in order, even with a capability of no step
        prof.runs.setdefault(s.run, {name: Cell() for name in caps.names})
    for s, label, score in zip(steps, labels.labels, scores, strict=True):
        cell = prof.runs[s.run][label]
        cell.steps += 1
        if score is not None:
            cell.scored += 1
            cell.total += min(1.0, max(0.0, float(score)))
    return prof
