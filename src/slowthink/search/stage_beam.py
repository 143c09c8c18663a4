"""``stage_beam``: LLaVA-CoT's stage-level beam search.

For each step of the format (the four stages SUMMARY, CAPTION, REASONING, CONCLUSION with the
``stages`` format) every problem samples ``n`` candidates continuing its chosen prefix (ONE engine
call for the batch). With ``select="judge"`` a seeded random pairwise knockout with the stage's
judge prompt picks the winner (N-1 comparisons, ONE judge call per knockout wave for the whole
batch, see :mod:`slowthink.search.knockout`); with ``precheck`` every REASONING comparison first
checks both candidates' reasoning (LLaVA-CoT). With ``select="score"`` the step scorer's top
candidate wins. The winner becomes the prefix of the next stage. A stage whose candidates were all
rejected is sampled again; when no final answer appears within ``max_depth`` steps the
direct-answer fallback closes the response.

``--preset llava-cot`` (:mod:`slowthink.search.presets`) sets LLaVA-CoT's procedure end to end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.prompts.judge import PAIR_STAGES
from slowthink.scorers.aggregate import Aggregation
from slowthink.scorers.base import REASONING_CHECKS, Need, Scorer
from slowthink.search.base import (
    SearchConfig,
    Tree,
    finish_traces,
    force_answers,
    grow,
    rank_key,
    score_nodes,
)
from slowthink.search.knockout import KnockoutGroup, Pairing, by_knockout, knockout, need_of
from slowthink.types import Problem, Trace


@dataclass
class StageBeamConfig(SearchConfig):
    n: int = 4
    """Candidates sampled per stage."""
    select: Literal["judge", "score"] = "judge"
    """How a stage's winner is picked: judge (pairwise knockout) | score (top step score)."""
    aggregate: Aggregation = "last"
    """With select=score: how step scores rank a path (min | last | mean | prod)."""
    max_depth: int = 8
    """Most steps (stages, sentences) on the path."""
    precheck: bool = False
    """LLaVA-CoT's reasoning check inside every REASONING comparison: the judge checks both
    candidates' reasoning first (all checks of a wave in one call); one judged incorrect loses to one
    that is not, otherwise the pairwise verdict decides (needs ``--scorer judge``)."""
    pairing: Pairing = "bracket"
    """How the knockout pairs candidates: bracket (shuffled rounds) | pool (LLaVA-CoT's code: two
    random candidates from the pool, the winner goes back)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.precheck and not by_knockout(self.select):
            raise ValueError("precheck works inside the judge's comparisons: it needs select=judge")


def judge_stage(kind: str) -> str:
    """The judge prompt for a step kind: the stage itself, else the sentence prompt."""
    return kind if kind in PAIR_STAGES else "sentence"


def needs(config: StageBeamConfig) -> tuple[Need, ...]:
    """A pairwise judge with ``select=judge`` (and the reasoning check with ``precheck``), else a
    step scorer."""
    return (need_of(config.select), *((Need(REASONING_CHECKS, "precheck"),) if config.precheck else ()))


def run(
    problems: Sequence[Problem],
    engine: Engine,
    fmt: Format,
    config: StageBeamConfig,
    scorer: Scorer,
    name: str = "stage_beam",
) -> list[Trace]:
    t0 = time.perf_counter()
    trees = [Tree(p, name, fmt, config) for p in problems]
    chosen = {i: 0 for i in range(len(trees))}
    done: set[int] = set()
    for depth in range(config.max_depth):
        live = [i for i in chosen if i not in done and trees[i].trace.error is None]
        if not live:
            break
        kids = grow(
            engine,
            [(trees[i], chosen[i]) for i in live],
            n=config.n,
            temperature=config.temperature,
            top_p=config.top_p,
            seed=config.seed,
            depth=depth,
        )
        pools = {i: ks for i, ks in zip(live, kids) if ks}
        for i in live:
            if trees[i].fmt.next_step(trees[i].text(chosen[i])) is None:
                done.add(i)  # the format says the path is complete
        if by_knockout(config.select):
            groups = {
                i: KnockoutGroup(trees[i], chosen[i], ks, judge_stage(trees[i].node(ks[0]).kind))
                for i, ks in pools.items()
                if len(ks) > 1
            }
            knockout(
                scorer,
                list(groups.values()),
                config.seed,
                depth,
                pairing=config.pairing,
                check=config.precheck,
            )
            winners = {i: groups[i].winner if i in groups else ks[0] for i, ks in pools.items()}
        else:
            score_nodes(scorer, [(trees[i], k) for i, ks in pools.items() for k in ks], config.aggregate)
            winners = {
                i: max(ks, key=lambda k, t=trees[i]: rank_key(t.node(k).score)) for i, ks in pools.items()
            }
        for i, win in winners.items():
            chosen[i] = win
            trees[i].commit(win)
            if trees[i].node(win).final:
                done.add(i)
    todo = [i for i in chosen if i not in done and trees[i].trace.error is None]
    reason = f"no final answer within {config.max_depth} steps"
    for i, nid in zip(
        todo, force_answers(engine, [(trees[i], chosen[i], reason) for i in todo], config.seed)
    ):
        chosen[i] = nid
    for i, tree in enumerate(trees):
        if chosen[i] != 0:
            node = tree.node(chosen[i])
            answer = node.answer if node.final else tree.fmt.answer(tree.text(node.id), tree.problem)
            tree.choose(chosen[i], answer)
    return finish_traces(trees, t0)
