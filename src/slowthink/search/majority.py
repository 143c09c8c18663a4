"""``majority``: N whole samples, vote on normalised answers (self-consistency).

Ties are broken deterministically: among the answers with the most votes, the one sampled first
wins. Samples without an answer do not vote. :func:`vote` is the rule as a pure function, used by
:func:`run` and by the evaluation's subsampling (through :func:`pick`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import SearchConfig, Tree, answer_key, finish_traces, sample_responses, samples
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


def pick(
    nodes: Sequence[Node], problem: Problem, config: MajorityConfig
) -> tuple[Node | None, dict[str, float]]:
    """majority's selection rule in the form every path-wise strategy gives it (see
    ``slowthink.search.PathRule``): :func:`vote`; the config changes nothing."""
    return vote(nodes, problem)


def run(
    problems: Sequence[Problem],
    engine: Engine,
    fmt: Format,
    config: MajorityConfig,
    scorer=None,
    reuse: Mapping[str, Trace] | None = None,
) -> list[Trace]:
    t0 = time.perf_counter()
    trees = [Tree(p, "majority", fmt, config) for p in problems]
    sample_responses(
        engine,
        trees,
        n=config.n,
        temperature=config.temperature,
        top_p=config.top_p,
        seed=config.seed,
        max_tokens=config.max_tokens,
        reuse=reuse,
    )
    for tree in trees:
        kids = samples(tree.trace)
        winner, votes = pick(kids, tree.problem, config)
        tree.trace.votes = votes
        if winner is not None:
            tree.choose(winner.id, winner.answer)
        elif kids:
            tree.choose(kids[0].id, None)
    return finish_traces(trees, t0)
