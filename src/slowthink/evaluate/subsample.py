"""Deriving smaller N from one path-wise run at the largest N.

A path-wise strategy (majority, best_of_n) samples its N responses independently, as children of
the root node 0. The result at a smaller k is then the selection rule re-run on k of those N
samples, so one generation at ``N_max`` gives the whole scaling curve:

* **majority**: ``seeds`` random k-subsets (kept in sampling order, so the "first sampled wins a
  tie" rule holds) are voted with :func:`slowthink.search.majority.vote`;
* **best_of_n, select=score / weighted**: the same subsets; the stored node scores (already
  aggregated with the run's ``aggregate``) pick the winner with best_of_n's own rule;
* **best_of_n, select=judge**: a knockout on a subset would need new judge calls. The recorded
  bracket is used instead: with N_max a power of two, the aligned blocks of ``k`` (a power of two)
  consecutive entries of the shuffled pool are complete sub-brackets whose winners the recorded
  decisions already give, each an exact knockout of k samples (k-1 comparisons). The result at k
  is the mean over those ``N_max / k`` blocks (not over ``seeds``).

Compute of a subset: the policy's generated tokens are the exact sum over the chosen samples;
prompt tokens are scaled by ``k / N`` (they are not stored per sample); scorer tokens are scaled by
``k / N`` for step scores (each sample is scored on its own) and by ``(k-1) / (N-1)`` for a judge
knockout (k-1 of the N-1 comparisons). Engine and scorer call counts stay as measured at N_max
(one batched call serves all N samples).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from slowthink.search.base import answer_key, rank_key, stable_seed
from slowthink.search.majority import vote
from slowthink.types import Node, Problem, Trace


@dataclass
class Derived:
    """The outcome of the selection rule on one subset of a path-wise trace's samples."""

    answer: str | None
    nodes: list[int]
    """The node ids of the subset, in sampling order."""
    winner: int | None
    policy_generated_tokens: float
    policy_prompt_tokens: float
    scorer_prompt_tokens: float
    scorer_generated_tokens: float


def samples(trace: Trace) -> list[Node]:
    """The whole-response samples of a path-wise trace (children of the root), in sampling order."""
    return [n for n in trace.nodes if n.parent == 0]


def subsets(size: int, k: int, seeds: int, *key: object) -> list[list[int]]:
    """``seeds`` random ``k``-subsets of ``range(size)``, each sorted; one subset when ``k >= size``.

    Deterministic in ``key`` (use the problem id): the same run gives the same subsets.

    >>> subsets(4, 4, 3, "p")
    [[0, 1, 2, 3]]
    >>> s = subsets(8, 2, 3, "p"); len(s), all(len(x) == 2 and x == sorted(x) for x in s)
    (3, True)
    >>> s == subsets(8, 2, 3, "p")
    True
    """
    if k >= size:
        return [list(range(size))]
    out = []
    for s in range(seeds):
        rng = random.Random(stable_seed("subsample", *key, k, s))
        out.append(sorted(rng.sample(range(size), k)))
    return out


def _choose_majority(nodes: Sequence[Node], problem: Problem) -> Node | None:
    winner, _ = vote(nodes, problem)
    return winner


def _choose_score(nodes: Sequence[Node], problem: Problem) -> Node | None:
    """best_of_n select=score: an answered sample first, then the best score; ties: first sampled."""
    if not nodes:
        return None
    return max(nodes, key=lambda n: (n.answer is not None, rank_key(n.score)))


def _choose_weighted(nodes: Sequence[Node], problem: Problem) -> Node | None:
    """best_of_n select=weighted: sum of scores per answer; the best-scored sample of the best answer."""
    if not nodes:
        return None
    totals: dict[str, float] = defaultdict(float)
    keys = [answer_key(n.answer, problem) for n in nodes]
    for n, key in zip(nodes, keys):
        if key is not None:
            totals[key] += rank_key(n.score)
    if not totals:
        return nodes[0]
    best = max(totals, key=lambda a: totals[a])
    return max((n for n, key in zip(nodes, keys) if key == best), key=lambda n: rank_key(n.score))


def _pool(trace: Trace) -> list[Node]:
    kids = samples(trace)
    if trace.strategy == "best_of_n":  # best_of_n ignores samples whose generation failed
        kids = [n for n in kids if n.finish_reason != "error"]
    return kids


def _scale(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def derive(trace: Trace, problem: Problem, k: int, seeds: int) -> list[Derived]:
    """The selection rule of ``trace.strategy`` re-run on ``k``-subsets of its samples.

    Returns one :class:`Derived` per subset (``seeds`` of them, one when ``k`` covers every
    sample; for a judge knockout one per aligned sub-bracket).
    """
    pool = _pool(trace)
    c = trace.compute
    if not pool:
        return [Derived(None, [], None, 0, 0.0, 0.0, 0.0)]
    select = trace.config.get("select", "score") if trace.strategy == "best_of_n" else "vote"
    if select == "judge":
        return _derive_judge(trace, pool, k)
    rule = {"vote": _choose_majority, "score": _choose_score, "weighted": _choose_weighted}[select]
    out = []
    for idx in subsets(len(pool), k, seeds, trace.problem_id):
        nodes = [pool[i] for i in idx]
        win = rule(nodes, problem)
        ratio = len(nodes) / len(pool)
        out.append(
            Derived(
                answer=None if win is None else win.answer,
                nodes=[n.id for n in nodes],
                winner=None if win is None else win.id,
                policy_generated_tokens=sum(n.generated_tokens for n in nodes),
                policy_prompt_tokens=c.prompt_tokens * ratio,
                scorer_prompt_tokens=c.scorer_prompt_tokens * ratio,
                scorer_generated_tokens=c.scorer_generated_tokens * ratio,
            )
        )
    return out


def bracket_order(trace: Trace, pool: Sequence[Node]) -> list[int]:
    """The shuffled pool order of a recorded knockout: the round-0 pairs in order, then the bye."""
    first = [d for d in trace.decisions if d.get("round", 0) == 0]
    order = [x for d in first for x in (d["a"], d["b"])]
    seen = set(order)
    order += [n.id for n in pool if n.id not in seen]  # the bye (and any sample never compared)
    return order


def _knockout_winner(block: list[int], won: dict[frozenset[int], int]) -> int | None:
    """Replay a knockout of ``block`` (in pool order) from recorded decisions; None if a match is missing."""
    pool = list(block)
    while len(pool) > 1:
        nxt = []
        for i in range(0, len(pool) - 1, 2):
            w = won.get(frozenset((pool[i], pool[i + 1])))
            if w is None:
                return None
            nxt.append(w)
        if len(pool) % 2 == 1:
            nxt.append(pool[-1])
        pool = nxt
    return pool[0] if pool else None


def _derive_judge(trace: Trace, pool: list[Node], k: int) -> list[Derived]:
    by_id = {n.id: n for n in trace.nodes}
    c = trace.compute
    if k >= len(pool):
        win = trace.path[-1] if trace.path else None
        blocks = [[n.id for n in pool]]
        winners = [win]
    else:
        order = bracket_order(trace, pool)
        won = {frozenset((d["a"], d["b"])): d["winner"] for d in trace.decisions}
        blocks = [order[i : i + k] for i in range(0, len(order) - k + 1, k)]
        winners = [_knockout_winner(b, won) for b in blocks]
        keep = [(b, w) for b, w in zip(blocks, winners) if w is not None]
        if not keep:
            raise ValueError(f"judge knockout of {trace.problem_id}: no complete sub-bracket of size {k}")
        blocks, winners = [b for b, _ in keep], [w for _, w in keep]
    out = []
    for block, win in zip(blocks, winners):
        share = _scale(len(block) - 1, len(pool) - 1)
        ratio = len(block) / len(pool)
        out.append(
            Derived(
                answer=None if win is None else by_id[win].answer,
                nodes=sorted(block),
                winner=win,
                policy_generated_tokens=sum(by_id[i].generated_tokens for i in block),
                policy_prompt_tokens=c.prompt_tokens * ratio,
                scorer_prompt_tokens=c.scorer_prompt_tokens * share,
                scorer_generated_tokens=c.scorer_generated_tokens * share,
            )
        )
    return out
