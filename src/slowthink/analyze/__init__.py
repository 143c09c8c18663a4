"""AtomThink's atomic capability analysis (``slowthink analyze capabilities``).

Each step on the chosen path of each record of one or more eval runs is mapped to a capability of a
documented, editable capability set (:mod:`slowthink.analyze.capset`, default ``capabilities.yaml``)
by a classifier (:mod:`slowthink.analyze.classify`: deterministic rules, or an LLM with the prompt
``analyze.capability``), then scored (:mod:`slowthink.analyze.profile`: outcome supervision, or a
step scorer such as a PRM, or each step's Monte-Carlo rollout label by the data engine's labeller:
:mod:`slowthink.analyze.rollouts`), per run and capability with Wilson 95% intervals; the profile is
written as JSON, a markdown and an HTML table, a bar and a radar plot (:mod:`slowthink.analyze.report`),
and each run's own profile goes into its folder, where its ``report.html`` shows the table
(:mod:`slowthink.inspect.capabilities`).

This package reads run folders (never the evaluation's code) and may run models (a classifier engine,
a PRM or judge scorer, a rollout policy through ``annotate``); it sits beside ``inspect``, which
never runs a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slowthink.analyze.capset import Capability, CapabilitySet, load_capabilities, parse_capabilities
from slowthink.analyze.classify import Classifier, Labels, LLMClassifier, RulesClassifier, parse_labels
from slowthink.analyze.profile import Profile, build_profile, outcome_scores, step_scores
from slowthink.analyze.report import write_into_runs, write_report
from slowthink.analyze.rollouts import CACHE, RolloutScorer, RolloutSettings, parse_rollouts
from slowthink.analyze.steps import Step, run_steps
from slowthink.scorers import StepScorer
from slowthink.types import SlowthinkError


@dataclass
class Analysis:
    profile: Profile
    files: dict[str, Path]
    steps: int
    reports: list[Path]
    """The runs' ``report.html`` files that now show the capability table."""


def analyze_capabilities(
    runs: Sequence[Path],
    out: Path,
    *,
    caps: CapabilitySet,
    classifier: Classifier,
    scorer: StepScorer | RolloutScorer | Literal["outcome"] = "outcome",
    plots: bool = True,
    into_runs: bool = True,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Analysis:
    """Classify and score the steps of ``runs``; ``scorer`` is ``"outcome"``, a step scorer or a
    :class:`RolloutScorer` (its cache is ``out/rollouts_cache.jsonl``). With ``into_runs`` each
    run's profile is also written into its folder and its ``report.html`` shows the table."""
    if not runs:
        raise SlowthinkError("no run folder given: pass one or more folders made by slowthink eval --out")
    if len({Path(run).resolve().name for run in runs}) != len(runs):
        raise SlowthinkError(
            "two run folders share a name: the profile labels runs by folder name; rename one"
        )
    steps: list[Step] = [s for run in runs for s in run_steps(Path(run))]
    if not steps:
        raise SlowthinkError(
            f"no reasoning step in {', '.join(map(str, runs))}: the runs hold no trace with steps"
        )
    progress(f"classifying {len(steps)} steps with {classifier.name}")
    labels = classifier.classify([s.text for s in steps])
    scorer_cost = None
    if isinstance(scorer, str):
        scores, scorer_name = outcome_scores(steps), "outcome"
    elif isinstance(scorer, RolloutScorer):
        progress(f"scoring {len(steps)} steps by rollouts ({scorer.name})")
        Path(out).mkdir(parents=True, exist_ok=True)
        scores, scorer_name = scorer.score_steps(steps, Path(out) / CACHE), scorer.name
        scorer_cost = scorer.cost
    else:
        progress(f"scoring {len(steps)} steps with {scorer.name}")
        scores, scorer_name = step_scores(steps, scorer), scorer.name
    profile = build_profile(
        caps, steps, labels, scores, classifier=classifier.name, scorer=scorer_name, scorer_cost=scorer_cost
    )
    files = write_report(profile, Path(out), plots=plots)
    folders = {Path(run).resolve().name: Path(run) for run in runs}
    reports = write_into_runs(profile.to_dict(), folders, plots=plots) if into_runs else []
    return Analysis(profile, files, len(steps), reports)


__all__ = [
    "Analysis",
    "Capability",
    "CapabilitySet",
    "Classifier",
    "LLMClassifier",
    "Labels",
    "Profile",
    "RolloutScorer",
    "RolloutSettings",
    "RulesClassifier",
    "Step",
    "analyze_capabilities",
    "build_profile",
    "load_capabilities",
    "outcome_scores",
    "parse_capabilities",
    "parse_labels",
    "parse_rollouts",
    "run_steps",
    "step_scores",
    "write_report",
]
