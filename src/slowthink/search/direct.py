"""``direct``: answer with no reasoning (AtomThink's Direct mode): one greedy short answer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import SearchConfig, Tree, finish_traces, sample_responses
from slowthink.types import Problem, Trace


@dataclass
class DirectConfig(SearchConfig):
    temperature: float = 0.0
    """Greedy by default."""


def run(problems: Sequence[Problem], engine: Engine, fmt: Format, config: DirectConfig, scorer=None) -> list[Trace]:
    t0 = time.perf_counter()
    trees = [Tree(p, "direct", fmt, config) for p in problems]
    sample_responses(engine, trees, n=1, temperature=config.temperature, top_p=config.top_p, seed=config.seed, direct=True)
    for tree in trees:
        kids = [n for n in tree.trace.nodes if n.parent == 0]
        if kids:
            tree.choose(kids[0].id, kids[0].answer)
    return finish_traces(trees, t0)
