"""AtomThink's atomic capability analysis (``slowthink analyze capabilities``).

Each step on the chosen path of each record of one or more eval runs is mapped to a capability of a
documented, editable capability set (:mod:`slowthink.analyze.capset`, default ``capabilities.yaml``)
by a classifier (:mod:`slowthink.analyze.classify`: deterministic rules, or an LLM with the prompt
``analyze.capability``), then scored (:mod:`slowthink.analyze.profile`: outcome supervision, or a
step scorer such as a PRM), per run and capability with Wilson 95% intervals; the profile is written
as JSON, a markdown and an HTML table, a bar and a radar plot (:mod:`slowthink.analyze.report`).

This package reads run folders (never the evaluation's code) and may run models (a classifier engine,
a PRM or judge scorer); it sits beside ``inspect``, which never runs a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slowthink.analyze.capset import Capability, CapabilitySet, load_capabilities, parse_capabilities
from slowthink.analyze.classify import Classifier, Labels, LLMClassifier, RulesClassifier, parse_labels
from slowthink.analyze.profile import Profile, build_profile, outcome_scores, step_scores
from slowthink.analyze.report import write_report
from slowthink.analyze.steps import Step, run_steps
from slowthink.scorers import StepScorer
from slowthink.types import SlowthinkError


@dataclass
class Analysis:
    profile: Profile
    files: dict[str, Path]
    steps: int


def analyze_capabilities(
    runs: Sequence[Path],
    out: Path,
    *,
    caps: CapabilitySet,
    classifier: Classifier,
    scorer: StepScorer | Literal["outcome"] = "outcome",
    plots: bool = True,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Analysis:
    """Classify and score the steps of ``runs``; ``scorer`` is ``"outcome"`` or a step scorer."""
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
    if scorer == "outcome":
        scores, scorer_name = outcome_scores(steps), "outcome"
    else:
        progress(f"scoring {len(steps)} steps with {scorer.name}")
        scores, scorer_name = step_scores(steps, scorer), scorer.name
    profile = build_profile(caps, steps, labels, scores, classifier=classifier.name, scorer=scorer_name)
    return Analysis(profile, write_report(profile, Path(out), plots=plots), len(steps))


__all__ = [
    "Analysis",
    "Capability",
    "CapabilitySet",
    "Classifier",
    "LLMClassifier",
    "Labels",
    "Profile",
    "RulesClassifier",
    "Step",
    "analyze_capabilities",
    "build_profile",
    "load_capabilities",
    "outcome_scores",
    "parse_capabilities",
    "parse_labels",
    "run_steps",
    "step_scores",
    "write_report",
]
