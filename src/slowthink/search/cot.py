"""``cot``: one chain of thought in the chosen format, generated in one request (greedy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import SearchConfig, one_response
from slowthink.types import Problem, Trace


@dataclass
class CotConfig(SearchConfig):
    temperature: float = 0.0
    """Greedy by default."""


def run(
    problems: Sequence[Problem], engine: Engine, fmt: Format, config: CotConfig, scorer=None
) -> list[Trace]:
    return one_response(problems, engine, fmt, config, "cot", direct=False)
