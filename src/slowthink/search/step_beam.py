"""``step_beam``: AtomThink's SlowThink, step-level beam search guided by a step scorer (a PRM,
the LLM judge's P(yes), the symbolic checker, or a weighted mix). ``greedy_step`` is width 1.

Each depth: every live beam of every problem samples ``n`` candidate next steps (ONE engine call
for the batch), the scorer scores all new candidates (ONE scorer call), each problem keeps its
``beam`` best paths by aggregated step score (default ``last``: the new step's own score),
ties broken by the steps' own scores, newest first. Paths that reach a final answer are set aside; the
search of a problem stops when ``beam`` paths are finished or at ``max_depth``, where unfinished
beams get the direct-answer fallback; so do paths the model ended (EOS) without a readable final
answer (one engine call for all of them). The best finished path wins by the same ranking (full ties: first found).
Unknown scores rank as :data:`~slowthink.search.base.NEUTRAL_SCORE`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.scorers.aggregate import Aggregation
from slowthink.scorers.base import STEP_SCORES, Need, StepScorer
from slowthink.search.base import (
    SearchConfig,
    Tree,
    finish_traces,
    force_answers,
    grow,
    path_rank,
    score_nodes,
)
from slowthink.types import Problem, Trace


@dataclass
class StepBeamConfig(SearchConfig):
    n: int = 4
    """Candidate next steps sampled under each beam."""
    beam: int = 2
    """Paths kept per problem after each step (1 = greedy step search)."""
    aggregate: Aggregation = "last"
    """How step scores rank a path: last (the new step's own score: AtomThink's code and
    search-and-learn rank beams this way) | min | mean | prod. Ties break by the steps' own scores,
    newest first (:func:`~slowthink.search.base.path_rank`), never by sampling order."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beam < 1:
            raise ValueError(f"beam must be >= 1, got {self.beam}")


@dataclass
class GreedyStepConfig(StepBeamConfig):
    beam: int = 1
    """Greedy step search keeps one path."""


def needs(config: StepBeamConfig) -> tuple[Need, ...]:
    """Step search ranks candidates by step scores."""
    return (Need(STEP_SCORES),)


def run(
    problems: Sequence[Problem], engine: Engine, fmt: Format, config: StepBeamConfig, scorer: StepScorer
) -> list[Trace]:
    t0 = time.perf_counter()
    name = "greedy_step" if config.beam == 1 else "step_beam"
    trees = [Tree(p, name, fmt, config) for p in problems]
    beams: dict[int, list[int]] = {i: [0] for i in range(len(trees))}
    finished: dict[int, list[int]] = {i: [] for i in range(len(trees))}
    for depth in range(config.max_depth):
        frontier = [(i, trees[i], b) for i in beams for b in beams[i] if trees[i].trace.error is None]
        if not frontier:
            break
        kids = grow(
            engine,
            [(t, b) for _, t, b in frontier],
            n=config.n,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed,
            depth=depth,
        )
        pools: dict[int, list[int]] = {i: [] for i in beams}
        for (i, _, _), ks in zip(frontier, kids):
            pools[i].extend(ks)
        score_nodes(scorer, [(trees[i], k) for i, ks in pools.items() for k in ks], config.aggregate)
        for i, pool in pools.items():
            if not pool:  # every candidate rejected: the same beams try again (new seeds at the next depth)
                continue
            tree = trees[i]
            slots = config.beam - len(finished[i])
            best = sorted(pool, key=lambda k, t=tree: path_rank(t, k), reverse=True)[:slots]  # stable
            finished[i].extend(k for k in best if tree.node(k).final)
            beams[i] = [k for k in best if not tree.node(k).final]
        beams = {i: b for i, b in beams.items() if b and len(finished[i]) < config.beam}
    # Unfinished beams (depth limit, or every candidate rejected) and paths the model ended without
    # a readable final answer get the direct-answer fallback, all in one engine call.
    leftovers = [
        (i, b, f"no final answer within {config.max_depth} steps")
        for i, bs in beams.items()
        for b in bs
        if trees[i].trace.error is None
    ]
    for i, ks in finished.items():
        for k in [k for k in ks if trees[i].node(k).answer is None]:
            ks.remove(k)
            leftovers.append((i, k, "the response ended without a final answer"))
    new = force_answers(engine, [(trees[i], b, reason) for i, b, reason in leftovers], config.seed)
    for (i, b, _), nid in zip(leftovers, new):
        trees[i].node(nid).score = trees[i].node(b).score
        finished[i].append(nid)
    for i, tree in enumerate(trees):
        if finished[i]:
            win = max(finished[i], key=lambda k, t=tree: (t.node(k).answer is not None, *path_rank(t, k)))
            tree.choose(win, tree.node(win).answer)
    return finish_traces(trees, t0)
