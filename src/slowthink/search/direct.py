"""``direct``: answer with no reasoning (AtomThink's Direct mode): one greedy short answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import SearchConfig, one_response
from slowthink.types import Problem, Trace


@dataclass
class DirectConfig(SearchConfig):
    temperature: float = 0.0
    """Greedy by default."""


def run(
    problems: Sequence[Problem], engine: Engine, fmt: Format, config: DirectConfig, scorer=None
) -> list[Trace]:
    return one_response(problems, engine, fmt, config, "direct", direct=True)
