"""``cot``: one chain of thought in the chosen format, generated in one request (greedy)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import SearchConfig, Tree, finish_traces, sample_responses
from slowthink.types import Problem, Trace


@dataclass
class CotConfig(SearchConfig):
    temperature: float = 0.0
    """Greedy by default."""


def run(problems: Sequence[Problem], engine: Engine, fmt: Format, config: CotConfig, scorer=None) -> list[Trace]:
    t0 = time.perf_counter()
    trees = [Tree(p, "cot", fmt, config) for p in problems]
    sample_responses(
        engine, trees, n=1, temperature=config.temperature, top_p=config.top_p, seed=config.seed,
        max_tokens=config.max_tokens,
    )
    for tree in trees:
        kids = [n for n in tree.trace.nodes if n.parent == 0]
        if kids:
            tree.choose(kids[0].id, kids[0].answer)
    return finish_traces(trees, t0)
