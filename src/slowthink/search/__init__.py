"""Strategies by name. Each is one module with a config dataclass and
``run(problems, engine, fmt, config, scorer=None) -> list[Trace]`` over the whole batch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slowthink.search.base import SearchConfig
from slowthink.types import Problem, SlowthinkError, Trace


@dataclass(frozen=True)
class StrategyEntry:
    module: str
    config: str
    needs_scorer: bool = False
    pathwise: bool = False
    """Path-wise strategies sample whole responses: smaller N can be derived by subsampling."""


STRATEGIES: dict[str, StrategyEntry] = {
    "direct": StrategyEntry("slowthink.search.direct", "DirectConfig"),
    "cot": StrategyEntry("slowthink.search.cot", "CotConfig"),
    "quick": StrategyEntry("slowthink.search.quick", "QuickConfig"),
    "majority": StrategyEntry("slowthink.search.majority", "MajorityConfig", pathwise=True),
    "best_of_n": StrategyEntry("slowthink.search.best_of_n", "BestOfNConfig", needs_scorer=True, pathwise=True),
    "step_beam": StrategyEntry("slowthink.search.step_beam", "StepBeamConfig", needs_scorer=True),
    "greedy_step": StrategyEntry("slowthink.search.step_beam", "GreedyStepConfig", needs_scorer=True),
    "stage_beam": StrategyEntry("slowthink.search.stage_beam", "StageBeamConfig", needs_scorer=True),
    "sentence_beam": StrategyEntry("slowthink.search.sentence_beam", "SentenceBeamConfig", needs_scorer=True),
}


def _entry(name: str) -> StrategyEntry:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise SlowthinkError(f"unknown strategy '{name}': choose one of {', '.join(STRATEGIES)}") from None


def make_config(name: str, **overrides: Any) -> SearchConfig:
    """The strategy's config with ``overrides`` (``None`` values keep the default)."""
    entry = _entry(name)
    cls = getattr(importlib.import_module(entry.module), entry.config)
    fields = cls.__dataclass_fields__
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise SlowthinkError(f"strategy '{name}' has no option(s) {', '.join(unknown)}; options: {', '.join(fields)}")
    return cls(**{k: v for k, v in overrides.items() if v is not None})


def get_strategy(name: str) -> Callable[..., list[Trace]]:
    return importlib.import_module(_entry(name).module).run


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
    problems: Sequence[Problem], engine, fmt, strategy: str = "quick", scorer=None,
    reuse: Mapping[str, Trace] | None = None, **overrides: Any
) -> list[Trace]:
    """Run one strategy on a batch of problems.

    ``reuse`` (path-wise strategies only): problem id -> a path-wise trace of the same format,
    sampling settings and seed whose samples are taken instead of generated again.
    """
    config = make_config(strategy, **overrides)
    check_engine_fits(problems, engine)
    if reuse:
        if not STRATEGIES[strategy].pathwise:
            raise ValueError(f"reuse: strategy '{strategy}' does not sample whole responses")
        return get_strategy(strategy)(list(problems), engine, fmt, config, scorer=scorer, reuse=reuse)
    return get_strategy(strategy)(list(problems), engine, fmt, config, scorer=scorer)


__all__ = ["STRATEGIES", "SearchConfig", "check_engine_fits", "get_strategy", "make_config", "solve"]
