"""Strategies by name. Each is one module with a config dataclass and
``run(problems, engine, fmt, config, scorer=None) -> list[Trace]`` over the whole batch.

The registry (:data:`STRATEGIES`) also says what each strategy is: what it needs of its scorer
under a given config (:func:`require` checks it before any generation), whether it samples whole
responses (path-wise: its selection rule is a :class:`PathRule`, which the evaluation re-runs on
subsets of the samples) and whether N changes it at all (``n_free``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slowthink.scorers.base import Need, Scorer
from slowthink.search import (
    best_of_n,
    cot,
    direct,
    majority,
    quick,
    sentence_beam,
    stage_beam,
    step_beam,
)
from slowthink.search.base import CommitListener, SearchConfig, commit_listener, samples
from slowthink.types import Node, Problem, SlowthinkError, Trace


def _needs_nothing(config: Any) -> tuple[Need, ...]:
    return ()


def _never(config: Any) -> bool:
    return False


@dataclass(frozen=True)
class PathRule:
    """How a path-wise strategy picks one of its whole-response samples. Its ``run`` and the
    evaluation's subsampling (:mod:`slowthink.evaluate.subsample`, which derives smaller N from one
    run) call the same functions."""

    pool: Callable[[Trace], list[Node]]
    """The samples the rule picks from, in sampling order."""
    pick: Callable[[Sequence[Node], Problem, Any], tuple[Node | None, dict[str, float] | None]]
    """The winner among some of the pool's samples (in sampling order) under the strategy's config,
    and the votes (``None`` when the rule does not vote)."""
    knockout: Callable[[Any], bool] = _never
    """True when the config picks by a judge knockout instead of :attr:`pick`: new verdicts would be
    needed for a subset, so subsampling replays the recorded bracket (:func:`knockout.replay`)."""


@dataclass(frozen=True)
class StrategyEntry:
    run: Callable[..., list[Trace]]
    config: type[SearchConfig]
    needs: Callable[[Any], tuple[Need, ...]] = _needs_nothing
    """What the strategy needs of its scorer under a config (:func:`require` checks it)."""
    path: PathRule | None = None
    """Path-wise strategies sample whole responses: smaller N can be derived by subsampling."""
    n_free: bool = False
    """N does not change the strategy (greedy, one response): run once, reported without N."""

    @property
    def pathwise(self) -> bool:
        return self.path is not None

    @property
    def needs_scorer(self) -> bool:
        """Whether the strategy needs a scorer at all (under its default config)."""
        return bool(self.needs(self.config()))


STRATEGIES: dict[str, StrategyEntry] = {
    "direct": StrategyEntry(direct.run, direct.DirectConfig, n_free=True),
    "cot": StrategyEntry(cot.run, cot.CotConfig, n_free=True),
    "quick": StrategyEntry(quick.run, quick.QuickConfig, n_free=True),  # a greedy rollout never reads n
    "majority": StrategyEntry(majority.run, majority.MajorityConfig, path=PathRule(samples, majority.pick)),
    "best_of_n": StrategyEntry(
        best_of_n.run,
        best_of_n.BestOfNConfig,
        needs=best_of_n.needs,
        path=PathRule(best_of_n.pool, best_of_n.pick, best_of_n.knockout_picks),
    ),
    "step_beam": StrategyEntry(step_beam.run, step_beam.StepBeamConfig, needs=step_beam.needs),
    "greedy_step": StrategyEntry(step_beam.run, step_beam.GreedyStepConfig, needs=step_beam.needs),
    "stage_beam": StrategyEntry(stage_beam.run, stage_beam.StageBeamConfig, needs=stage_beam.needs),
    "sentence_beam": StrategyEntry(
        sentence_beam.run, sentence_beam.SentenceBeamConfig, needs=stage_beam.needs
    ),
}


def get_entry(name: str) -> StrategyEntry:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise SlowthinkError(f"unknown strategy '{name}': choose one of {', '.join(STRATEGIES)}") from None


def make_config(name: str, **overrides: Any) -> SearchConfig:
    """The strategy's config with ``overrides`` (``None`` values keep the default). A bad value
    (``n=0``, ``select`` or ``aggregate`` not among its choices) is a ValueError naming it."""
    cls = get_entry(name).config
    fields = cls.__dataclass_fields__
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise SlowthinkError(
            f"strategy '{name}' has no option(s) {', '.join(unknown)}; options: {', '.join(fields)}"
        )
    return cls(**{k: v for k, v in overrides.items() if v is not None})


def require(name: str, config: SearchConfig, scorer: Scorer | None) -> None:
    """Fail before any generation when the scorer cannot do what strategy ``name`` needs under
    ``config`` (:attr:`StrategyEntry.needs`): one SlowthinkError line naming what is missing and
    the ``--scorer`` that gives it.

    Example:
        >>> from slowthink.scorers import SymbolicScorer
        >>> require("best_of_n", make_config("best_of_n", select="judge"), SymbolicScorer())
        Traceback (most recent call last):
        ...
        slowthink.types.SlowthinkError: strategy 'best_of_n' with select=judge needs a scorer with pairwise comparisons; scorer 'symbolic' has no compare(): pass --scorer judge
    """
    for need in get_entry(name).needs(config):
        if isinstance(scorer, need.role.protocol):
            continue
        settings = f" with {need.because}" if need.because else ""
        missing = (
            "no scorer was given"
            if scorer is None
            else f"scorer '{getattr(scorer, 'name', type(scorer).__name__)}' has no {need.role.method}()"
        )
        raise SlowthinkError(
            f"strategy '{name}'{settings} needs a scorer with {need.role.what}; {missing}: pass {need.role.fix}"
        )


def check_engine_fits(problems: Sequence[Problem], engine) -> None:
    """Fail before any generation when the engine cannot take the problems: a text-only engine
    (``supports_images`` false) given problems with images. Every request would fail the same way."""
    if getattr(engine, "supports_images", True):
        return
    with_images = [p for p in problems if p.images]
    if with_images:
        first = with_images[0]
        raise SlowthinkError(
            f"engine '{getattr(engine, 'name', type(engine).__name__)}' is text-only but "
            f"{len(with_images)} of {len(problems)} problem(s) have images (e.g. {first.id}: {first.images[0]}): "
            "pass --ignore-images to drop the images, or use a multimodal engine (--engine hf/openai/vllm)"
        )


def solve(
    problems: Sequence[Problem],
    engine,
    fmt,
    strategy: str = "quick",
    scorer: Scorer | None = None,
    reuse: Mapping[str, Trace] | None = None,
    on_commit: CommitListener | None = None,
    **overrides: Any,
) -> list[Trace]:
    """Run one strategy on a batch of problems.

    ``reuse`` (path-wise strategies only): problem id -> a path-wise trace of the same format,
    sampling settings and seed whose samples are taken instead of generated again.
    ``on_commit(problem_id, node)`` hears each node of a problem's chosen path once, as soon as the
    search commits to it (``quick``: each accepted step; ``stage_beam``: each stage's winner; the
    other strategies: the whole path when they choose it), on the thread running the search.
    """
    config = make_config(strategy, **overrides)
    require(strategy, config, scorer)
    check_engine_fits(problems, engine)
    entry = STRATEGIES[strategy]
    if reuse and not entry.pathwise:
        raise ValueError(f"reuse: strategy '{strategy}' does not sample whole responses")
    with commit_listener(on_commit):
        if reuse:
            return entry.run(list(problems), engine, fmt, config, scorer=scorer, reuse=reuse)
        return entry.run(list(problems), engine, fmt, config, scorer=scorer)


__all__ = [
    "STRATEGIES",
    "CommitListener",
    "PathRule",
    "SearchConfig",
    "StrategyEntry",
    "check_engine_fits",
    "get_entry",
    "make_config",
    "require",
    "solve",
]
