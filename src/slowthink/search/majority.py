"""``majority``: N whole samples, vote on normalised answers (self-consistency).

Ties are broken deterministically: among the answers with the most votes, the one sampled first
wins. Samples without an answer do not vote.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import SearchConfig, Tree, answer_key, finish_traces, sample_responses
from slowthink.types import Node, Problem, Trace


@dataclass
class MajorityConfig(SearchConfig):
    n: int = 8
    """Samples per problem."""


def vote(nodes: Sequence[Node], problem: Problem) -> tuple[Node | None, dict[str, float]]:
    """The winning node (first sample of the most voted answer) and the vote counts."""
    keys = [answer_key(n.answer, problem) for n in nodes]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None, {}
    best = max(counts.values())
    for node, key in zip(nodes, keys):
        if key is not None and counts[key] == best:
            return node, {k: float(v) for k, v in counts.most_common()}
    raise AssertionError("unreachable")


def run(problems: Sequence[Problem], engine: Engine, fmt: Format, config: MajorityConfig, scorer=None,
        reuse: Mapping[str, Trace] | None = None) -> list[Trace]:
    t0 = time.perf_counter()
    trees = [Tree(p, "majority", fmt, config) for p in problems]
    sample_responses(
        engine, trees, n=config.n, temperature=config.temperature, top_p=config.top_p, seed=config.seed,
        max_tokens=config.max_tokens, reuse=reuse,
    )
    for tree in trees:
        kids = [n for n in tree.trace.nodes if n.parent == 0]
        winner, votes = vote(kids, tree.problem)
        tree.trace.votes = votes
        if winner is not None:
            tree.choose(winner.id, winner.answer)
        elif kids:
            tree.choose(kids[0].id, None)
    return finish_traces(trees, t0)
