"""Deriving smaller N from one path-wise run at the largest N.

A path-wise strategy (majority, best_of_n) samples its N responses independently, as children of
the root node 0. The result at a smaller k is then the strategy's own selection rule
(``STRATEGIES[name].path``, a :class:`~slowthink.search.PathRule`) re-run on k of those N samples,
so one generation at ``N_max`` gives the whole scaling curve:

* ``seeds`` random k-subsets of the rule's pool (kept in sampling order, so "first sampled wins a
  tie" holds) are picked with the rule's ``pick``: majority's vote, best_of_n's score or weighted
  rule on the stored node scores (already aggregated with the run's ``aggregate``);
* a judge knockout (best_of_n, select=judge) on a subset would need new judge calls. The recorded
  bracket is used instead: with N_max a power of two, the aligned blocks of ``k`` (a power of two)
  consecutive entries of the shuffled pool are complete sub-brackets whose winners the recorded
  decisions already give (:func:`slowthink.search.knockout.replay`), each an exact knockout of k
  samples (k-1 comparisons). The result at k is the mean over those ``N_max / k`` blocks (not over
  ``seeds``).

Compute of a subset: the policy's generated tokens are the exact sum over the chosen samples;
prompt tokens are scaled by ``k / N`` (they are not stored per sample); scorer tokens are scaled by
``k / N`` for step scores (each sample is scored on its own) and by ``(k-1) / (N-1)`` for a judge
knockout (k-1 of the N-1 comparisons). Engine and scorer call counts stay as measured at N_max
(one batched call serves all N samples).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from slowthink.search import get_entry, make_config
from slowthink.search.base import stable_seed
from slowthink.search.knockout import bracket_order, replay
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


def _scale(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def derive(trace: Trace, problem: Problem, k: int, seeds: int) -> list[Derived]:
    """The selection rule of ``trace.strategy`` re-run on ``k``-subsets of its samples.

    Returns one :class:`Derived` per subset (``seeds`` of them, one when ``k`` covers every
    sample; for a judge knockout one per aligned sub-bracket).
    """
    rule = get_entry(trace.strategy).path
    if rule is None:
        raise ValueError(
            f"strategy '{trace.strategy}' is not path-wise: smaller N cannot be derived from its trace"
        )
    config = make_config(trace.strategy, **trace.config)
    pool = rule.pool(trace)
    c = trace.compute
    if not pool:
        return [Derived(None, [], None, 0, 0.0, 0.0, 0.0)]
    if rule.knockout(config):
        return _derive_judge(trace, pool, k)
    out = []
    for idx in subsets(len(pool), k, seeds, trace.problem_id):
        nodes = [pool[i] for i in idx]
        win, _ = rule.pick(nodes, problem, config)
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


def _derive_judge(trace: Trace, pool: list[Node], k: int) -> list[Derived]:
    by_id = {n.id: n for n in trace.nodes}
    c = trace.compute
    if k >= len(pool):
        win = trace.path[-1] if trace.path else None
        blocks = [[n.id for n in pool]]
        winners = [win]
    else:
        order = bracket_order(trace.decisions, [n.id for n in pool])
        blocks = [order[i : i + k] for i in range(0, len(order) - k + 1, k)]
        winners = [replay(b, trace.decisions) for b in blocks]
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
