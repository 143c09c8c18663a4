"""``best_of_n``: N whole samples, one picked by a verifier.

``select``:

* ``score`` -- the scorer scores each response's steps, aggregated (min/last/mean/prod); the best
  response wins (ties: first sampled);
* ``weighted`` -- weighted self-consistency: each distinct (normalised) answer gets the sum of its
  responses' scores; the best answer wins, shown with its best-scored response;
* ``judge`` -- LLaVA-CoT's best-of-N: a seeded random pairwise knockout of the responses with the
  judge's whole-answer prompt (N-1 comparisons, one judge call per round for the whole batch).

:func:`pool` and :func:`pick` are the selection rule as pure functions: :func:`run` and the
evaluation's subsampling (:mod:`slowthink.evaluate.subsample`) use them both.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.scorers.aggregate import Aggregation
from slowthink.scorers.base import Need, Scorer
from slowthink.search.base import (
    SearchConfig,
    Tree,
    answer_key,
    finish_traces,
    rank_key,
    sample_responses,
    samples,
    score_nodes,
)
from slowthink.search.knockout import KnockoutGroup, by_knockout, knockout, need_of
from slowthink.types import Node, Problem, Trace


@dataclass
class BestOfNConfig(SearchConfig):
    n: int = 8
    """Samples per problem."""
    select: Literal["score", "weighted", "judge"] = "score"
    """How the best sample is picked: score | weighted | judge."""
    aggregate: Aggregation = "min"
    """How step scores make a response score: min | last | mean | prod."""


def needs(config: BestOfNConfig) -> tuple[Need, ...]:
    """A pairwise judge with ``select=judge``, else a step scorer."""
    return (need_of(config.select),)


def knockout_picks(config: BestOfNConfig) -> bool:
    """``select=judge``: the winner comes from a judge knockout, not from :func:`pick`."""
    return by_knockout(config.select)


def pool(trace: Trace) -> list[Node]:
    """The samples best_of_n picks from: every sample whose generation did not fail."""
    return [n for n in samples(trace) if n.finish_reason != "error"]


def pick(
    nodes: Sequence[Node], problem: Problem, config: BestOfNConfig
) -> tuple[Node | None, dict[str, float] | None]:
    """The winner among scored samples (``node.score`` = the aggregated step score; sampling
    order) and the votes: for ``weighted`` the score total per answer, else ``None``.

    ``select=score``: an answered sample before an unanswered one, then the best score (ties: first
    sampled). ``select=weighted``: the answer with the largest total (ties: first seen), shown with
    its best-scored sample; no answer at all: the first sample.
    """
    if not nodes:
        return None, None
    if config.select == "score":
        return max(nodes, key=lambda n: (n.answer is not None, rank_key(n.score))), None
    if config.select != "weighted":
        raise ValueError(f"best_of_n with select={config.select} picks by a judge knockout, not by scores")
    totals: dict[str, float] = defaultdict(float)
    keys = [answer_key(n.answer, problem) for n in nodes]
    for n, key in zip(nodes, keys):
        if key is not None:
            totals[key] += rank_key(n.score)
    if not totals:
        return nodes[0], {}
    best = max(totals, key=lambda a: totals[a])  # first inserted wins ties
    win = max((n for n, key in zip(nodes, keys) if key == best), key=lambda n: rank_key(n.score))
    return win, dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def run(
    problems: Sequence[Problem],
    engine: Engine,
    fmt: Format,
    config: BestOfNConfig,
    scorer: Scorer,
    reuse: Mapping[str, Trace] | None = None,
) -> list[Trace]:
    t0 = time.perf_counter()
    trees = [Tree(p, "best_of_n", fmt, config) for p in problems]
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
    kids = {id(t): pool(t.trace) for t in trees}
    if knockout_picks(config):
        groups = [
            KnockoutGroup(t, 0, [k.id for k in kids[id(t)]], "answer") for t in trees if len(kids[id(t)]) > 1
        ]
        knockout(scorer, groups, config.seed, "best_of_n")
        winners = {id(g.tree): g.winner for g in groups}
        for t in trees:
            win = winners.get(id(t), kids[id(t)][0].id if kids[id(t)] else None)
            if win is not None:
                t.choose(win, t.node(win).answer)
        return finish_traces(trees, t0)
    score_nodes(
        scorer, [(t, k.id) for t in trees for k in kids[id(t)]], config.aggregate, split_responses=True
    )
    for t in trees:
        win, votes = pick(kids[id(t)], t.problem, config)
        if win is not None:
            t.trace.votes = votes
            t.choose(win.id, win.answer)
    return finish_traces(trees, t0)
