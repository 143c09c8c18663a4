"""``best_of_n``: N whole samples, one picked by a verifier.

``select``:

* ``score`` -- the scorer scores each response's steps, aggregated (min/last/mean/prod); the best
  response wins (ties: first sampled);
* ``weighted`` -- weighted self-consistency: each distinct (normalised) answer gets the sum of its
  responses' scores; the best answer wins, shown with its best-scored response;
* ``judge`` -- LLaVA-CoT's best-of-N: a seeded random pairwise knockout of the responses with the
  judge's whole-answer prompt (N-1 comparisons, one judge call per round for the whole batch).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import (
    SearchConfig,
    Tree,
    answer_key,
    finish_traces,
    rank_key,
    sample_responses,
    score_nodes,
)
from slowthink.search.knockout import KnockoutGroup, knockout
from slowthink.types import Problem, SlowthinkError, Trace

SELECT = ("score", "weighted", "judge")


@dataclass
class BestOfNConfig(SearchConfig):
    n: int = 8
    """Samples per problem."""
    select: str = "score"
    """How the best sample is picked: score | weighted | judge."""
    aggregate: str = "min"
    """How step scores make a response score: min | last | mean | prod."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.select not in SELECT:
            raise ValueError(f"select must be one of {SELECT}, got {self.select!r}")


def run(problems: Sequence[Problem], engine: Engine, fmt: Format, config: BestOfNConfig, scorer=None,
        reuse: Mapping[str, Trace] | None = None) -> list[Trace]:
    need = "compare" if config.select == "judge" else "score"
    if scorer is None or not hasattr(scorer, need):
        what = "a pairwise judge (--scorer judge)" if need == "compare" else "a step scorer (--scorer judge|symbolic|prm:PATH)"
        raise SlowthinkError(f"best_of_n with select={config.select} needs {what}")
    t0 = time.perf_counter()
    trees = [Tree(p, "best_of_n", fmt, config) for p in problems]
    sample_responses(engine, trees, n=config.n, temperature=config.temperature, top_p=config.top_p,
                     seed=config.seed, max_tokens=config.max_tokens, reuse=reuse)
    kids = {id(t): [n.id for n in t.trace.nodes if n.parent == 0 and n.finish_reason != "error"] for t in trees}
    if config.select == "judge":
        groups = [KnockoutGroup(t, 0, kids[id(t)], "answer") for t in trees if len(kids[id(t)]) > 1]
        knockout(scorer, groups, config.seed, "best_of_n")
        winners = {id(g.tree): g.winner for g in groups}
        for t in trees:
            win = winners.get(id(t), kids[id(t)][0] if kids[id(t)] else None)
            if win is not None:
                t.choose(win, t.node(win).answer)
        return finish_traces(trees, t0)
    score_nodes(scorer, [(t, k) for t in trees for k in kids[id(t)]], config.aggregate, split_responses=True)
    for t in trees:
        ks = kids[id(t)]
        if not ks:
            continue
        if config.select == "score":
            win = max(ks, key=lambda k: (t.node(k).answer is not None, rank_key(t.node(k).score)))
        else:
            totals: dict[str, float] = defaultdict(float)
            for k in ks:
                key = answer_key(t.node(k).answer, t.problem)
                if key is not None:
                    totals[key] += rank_key(t.node(k).score)
            t.trace.votes = dict(sorted(totals.items(), key=lambda kv: -kv[1]))
            if totals:
                best = max(totals, key=lambda a: totals[a])  # first inserted wins ties
                win = max((k for k in ks if answer_key(t.node(k).answer, t.problem) == best),
                          key=lambda k: rank_key(t.node(k).score))
            else:
                win = ks[0]
        t.choose(win, t.node(win).answer)
    return finish_traces(trees, t0)
