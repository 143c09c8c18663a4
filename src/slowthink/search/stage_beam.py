"""``stage_beam``: LLaVA-CoT's stage-level beam search.

For each step of the format (the four stages SUMMARY, CAPTION, REASONING, CONCLUSION with the
``stages`` format) every problem samples ``n`` candidates continuing its chosen prefix (ONE engine
call for the batch). With ``select="judge"`` a seeded random pairwise knockout with the stage's
judge prompt picks the winner (N-1 comparisons, ONE judge call per knockout round for the whole
batch); with ``select="score"`` the step scorer's top candidate wins. The winner becomes the prefix
of the next stage. A stage whose candidates were all rejected is sampled again; when no final
answer appears within ``max_depth`` steps the direct-answer fallback closes the response.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.engines.base import Engine
from slowthink.formats.base import Format
from slowthink.search.base import (
    KnockoutGroup,
    SearchConfig,
    Tree,
    finish_traces,
    force_answers,
    grow,
    knockout,
    rank_key,
    score_nodes,
)
from slowthink.types import Problem, SlowthinkError, Trace

SELECT = ("judge", "score")
JUDGE_STAGES = ("summary", "caption", "reasoning", "conclusion", "sentence", "answer")


@dataclass
class StageBeamConfig(SearchConfig):
    n: int = 4
    """Candidates sampled per stage."""
    select: str = "judge"
    """How a stage's winner is picked: judge (pairwise knockout) | score (top step score)."""
    aggregate: str = "last"
    """With select=score: how step scores rank a path (min | last | mean | prod)."""
    max_depth: int = 8
    """Most steps (stages, sentences) on the path."""
    precheck: bool = False
    """LLaVA-CoT's reasoning pre-check: the judge checks the chosen REASONING; judged incorrect, it is
    sampled again (needs a judge with ``precheck_results``, e.g. ``--scorer judge``)."""
    precheck_retries: int = 1
    """How many times a reasoning judged incorrect is sampled again."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.select not in SELECT:
            raise ValueError(f"select must be one of {SELECT}, got {self.select!r}")


def judge_stage(kind: str) -> str:
    """The judge prompt for a step kind: the stage itself, else the sentence prompt."""
    return kind if kind in JUDGE_STAGES else "sentence"


def run(problems: Sequence[Problem], engine: Engine, fmt: Format, config: StageBeamConfig, scorer=None,
        name: str = "stage_beam") -> list[Trace]:
    need = "compare" if config.select == "judge" else "score"
    if scorer is None or not hasattr(scorer, need):
        what = "a pairwise judge (--scorer judge)" if need == "compare" else "a step scorer (--scorer ...)"
        raise SlowthinkError(f"{name} with select={config.select} needs {what}")
    t0 = time.perf_counter()
    trees = [Tree(p, name, fmt, config) for p in problems]
    chosen = {i: 0 for i in range(len(trees))}
    retries = {i: 0 for i in range(len(trees))}
    done: set[int] = set()
    if config.precheck and not hasattr(scorer, "precheck_results"):
        raise SlowthinkError(f"{name} with precheck needs a judge that can check reasoning (--scorer judge)")
    for depth in range(config.max_depth):
        live = [i for i in chosen if i not in done and trees[i].trace.error is None]
        if not live:
            break
        kids = grow(engine, [(trees[i], chosen[i]) for i in live], n=config.n, temperature=config.temperature,
                    top_p=config.top_p, seed=config.seed, depth=depth)
        pools = {i: ks for i, ks in zip(live, kids) if ks}
        for i in live:
            if trees[i].fmt.next_step(trees[i].text(chosen[i])) is None:
                done.add(i)  # the format says the path is complete
        if config.select == "judge":
            groups = {i: KnockoutGroup(trees[i], chosen[i], ks, judge_stage(trees[i].node(ks[0]).kind))
                      for i, ks in pools.items() if len(ks) > 1}
            knockout(scorer, list(groups.values()), config.seed, depth)
            winners = {i: groups[i].winner if i in groups else ks[0] for i, ks in pools.items()}
        else:
            score_nodes(scorer, [(trees[i], k) for i, ks in pools.items() for k in ks], config.aggregate)
            winners = {i: max(ks, key=lambda k, t=trees[i]: rank_key(t.node(k).score)) for i, ks in pools.items()}
        for i, win in winners.items():
            chosen[i] = win
            if trees[i].node(win).final:
                done.add(i)
        if config.precheck:
            _precheck(scorer, trees, chosen, [i for i in winners if trees[i].node(winners[i]).kind == "reasoning"],
                      retries, config.precheck_retries)
    todo = [i for i in chosen if i not in done and trees[i].trace.error is None]
    reason = f"no final answer within {config.max_depth} steps"
    for i, nid in zip(todo, force_answers(engine, [(trees[i], chosen[i], reason) for i in todo], config.seed)):
        chosen[i] = nid
    for i, tree in enumerate(trees):
        if chosen[i] != 0:
            node = tree.node(chosen[i])
            answer = node.answer if node.final else tree.fmt.answer(tree.text(node.id), tree.problem)
            tree.choose(chosen[i], answer)
    return finish_traces(trees, t0)


def _precheck(judge, trees: list[Tree], chosen: dict[int, int], which: list[int], retries: dict[int, int],
              max_retries: int) -> None:
    """Check every freshly chosen REASONING in ONE judge call; an incorrect one is dropped so the
    next depth samples the stage again (at most ``max_retries`` times per problem)."""
    which = [i for i in which if retries[i] < max_retries]
    if not which:
        return
    checks = judge.precheck_results([trees[i].problem for i in which], [trees[i].text(chosen[i]) for i in which])
    for i, check in zip(which, checks):
        tree, node = trees[i], trees[i].node(chosen[i])
        c = tree.trace.compute
        c.scorer_prompt_tokens += check.prompt_tokens
        c.scorer_generated_tokens += check.generated_tokens
        c.scorer_calls += check.calls
        tree.trace.decisions.append({"stage": "precheck", "node": node.id, "ok": check.ok, "p_yes": check.p_yes})
        if check.ok is False:
            retries[i] += 1
            node.note = "; ".join(filter(None, [node.note, "precheck: judged incorrect, reasoning sampled again"]))
            chosen[i] = node.parent
