"""LLaVA-CoT's pairwise knockout, batched across problems.

N candidates (children of one node) compete in N-1 pairwise comparisons; the last winner is kept.
Two ways to pair them (``pairing``), both seeded per (problem, node, tag):

* ``bracket``: shuffle the pool, pair it off round by round (the odd one out gets a bye and joins
  the end of the next round). The sub-brackets of a recorded bracket are exact knockouts of the
  smaller pools: :func:`bracket_order` and :func:`replay` give their winners from the recorded
  decisions (what :mod:`slowthink.evaluate.subsample` uses to derive smaller N).
* ``pool``: LLaVA-CoT's code: draw two random candidates from the pool, compare them, put the
  winner back at the end of the pool, until one is left. Which pairs meet depends only on the draws,
  never on the verdicts, so the whole schedule is drawn first and run in waves.

Either way a **wave** (every comparison whose two entrants are known, over all groups of all
problems) is ONE judge call; a bracket's waves are its rounds.

With ``check`` (LLaVA-CoT's REASONING stage) every comparison of a ``reasoning`` group first asks
the judge whether each entrant's reasoning is correct (:meth:`check_reasoning`, ONE call for all
unchecked entrants of the wave; an entrant is checked once, its result reused in later waves). An
entrant judged incorrect loses to one that is not; when both or neither are judged incorrect, the
pairwise verdict decides.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from slowthink.scorers.base import (
    PAIRWISE,
    STEP_SCORES,
    Check,
    CheckQuery,
    Comparison,
    Need,
    PairwiseJudge,
    ReasoningChecker,
    charge_call,
)
from slowthink.search.base import Tree, stable_seed

Pairing = Literal["bracket", "pool"]
PAIRINGS: tuple[Pairing, ...] = get_args(Pairing)
#: The stages whose comparisons are preceded by the reasoning check.
CHECKED_STAGES: frozenset[str] = frozenset({"reasoning"})

Entrant = tuple[str, int]
"""``("node", node id)`` or ``("winner", index of an earlier comparison of the schedule)``."""


def by_knockout(select: str) -> bool:
    """Whether a strategy's ``select`` picks candidates by a judge knockout (``judge``) rather than
    by step scores (any other value)."""
    return select == "judge"


def need_of(select: str) -> Need:
    """What ``select`` asks of the scorer: a pairwise judge for the knockout, else step scores.

    Example:
        >>> need_of("judge").role.what, need_of("score").because
        ('pairwise comparisons', 'select=score')
    """
    return Need(PAIRWISE if by_knockout(select) else STEP_SCORES, f"select={select}")


@dataclass
class KnockoutGroup:
    """Candidates (node ids, all children of one node) competing for one slot of one tree."""

    tree: Tree
    prefix_node: int
    candidates: list[int]
    stage: str
    winner: int | None = None


def schedule(candidates: Sequence[int], pairing: str, rng: random.Random) -> list[tuple[Entrant, Entrant]]:
    """The comparisons of a knockout of ``candidates``: ``(shown first, shown second)`` each, in the
    order they are drawn; the last one is the final. ``len(candidates) - 1`` comparisons.

    Example:
        >>> [len(schedule(range(n), p, random.Random(0))) for p in PAIRINGS for n in (1, 2, 5, 8)]
        [0, 1, 4, 7, 0, 1, 4, 7]
        >>> schedule([10, 11, 12], "bracket", random.Random(1))
        [(('node', 11), ('node', 12)), (('winner', 0), ('node', 10))]
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    pool: list[Entrant] = [("node", c) for c in candidates]
    matches: list[tuple[Entrant, Entrant]] = []
    if pairing == "pool":
        while len(pool) > 1:
            first = pool.pop(rng.randrange(len(pool)))
            second = pool.pop(rng.randrange(len(pool)))
            matches.append((first, second))
            pool.append(("winner", len(matches) - 1))
        return matches
    rng.shuffle(pool)
    return bracket(pool)


def bracket(pool: Sequence[Entrant]) -> list[tuple[Entrant, Entrant]]:
    """The comparisons of a bracket over ``pool`` in this order: pairs off round by round, the odd
    one out of a round gets a bye and joins the end of the next round."""
    matches: list[tuple[Entrant, Entrant]] = []
    pool = list(pool)
    while len(pool) > 1:
        nxt: list[Entrant] = []
        for k in range(0, len(pool) - 1, 2):
            matches.append((pool[k], pool[k + 1]))
            nxt.append(("winner", len(matches) - 1))
        if len(pool) % 2 == 1:  # the odd one out gets a bye
            nxt.append(pool[-1])
        pool = nxt
    return matches


def bracket_order(decisions: Sequence[Mapping[str, Any]], candidates: Sequence[int]) -> list[int]:
    """The shuffled pool of a recorded bracket knockout of ``candidates`` (node ids): the first
    round's pairs in order, then the bye (and any candidate never compared)."""
    first = [d for d in decisions if d.get("round", 0) == 0]
    order = [x for d in first for x in (d["a"], d["b"])]
    seen = set(order)
    return order + [c for c in candidates if c not in seen]


def replay(order: Sequence[int], decisions: Sequence[Mapping[str, Any]]) -> int | None:
    """The winner of a bracket knockout of ``order`` (node ids in pool order) read from recorded
    decisions; ``None`` when one of its comparisons was never made. An aligned block of a recorded
    pool (:func:`bracket_order`) of a power-of-two size is a sub-bracket whose comparisons all were.

    Example:
        >>> decisions = [{"a": 3, "b": 1, "winner": 1}, {"a": 2, "b": 4, "winner": 4}, {"a": 1, "b": 4, "winner": 4}]
        >>> replay([3, 1, 2, 4], decisions), replay([2, 4], decisions), replay([3, 2], decisions)
        (4, 4, None)
    """
    won = {frozenset((d["a"], d["b"])): d["winner"] for d in decisions}
    winners: list[int] = []
    for x, y in bracket([("node", c) for c in order]):
        a, b = (e[1] if e[0] == "node" else winners[e[1]] for e in (x, y))
        w = won.get(frozenset((a, b)))
        if w is None:
            return None
        winners.append(w)
    return winners[-1] if winners else (order[0] if order else None)


def knockout(
    judge: PairwiseJudge,
    groups: Sequence[KnockoutGroup],
    seed: int,
    tag: Any = "",
    *,
    pairing: str = "bracket",
    check: bool = False,
) -> None:
    """Run the knockouts of all ``groups`` together, one judge call per wave (plus one check call
    per wave of reasoning comparisons with ``check``, where ``judge`` is also a
    :class:`~slowthink.scorers.base.ReasoningChecker`); set each group's ``winner``, count each
    candidate's wins in ``node.score``, record every decision in its trace and charge the judge's
    compute to its problem."""
    plans = [
        schedule(
            g.candidates, pairing, random.Random(stable_seed(seed, g.tree.problem.id, g.prefix_node, tag))
        )
        for g in groups
    ]
    won: list[dict[int, int]] = [{} for _ in groups]  # comparison index -> winning node
    checked: dict[tuple[int, int], Check] = {}  # (group, node) -> Check

    def who(gi: int, e: Entrant) -> int | None:
        return e[1] if e[0] == "node" else won[gi].get(e[1])

    wave = 0
    while True:
        ready = []
        for gi, plan in enumerate(plans):
            for mi, (x, y) in enumerate(plan):
                a, b = who(gi, x), who(gi, y)
                if mi not in won[gi] and a is not None and b is not None:
                    ready.append((gi, mi, a, b))
        if not ready:
            break
        by_check: dict[tuple[int, int], int] = {}
        if check:
            todo = list(
                dict.fromkeys(
                    (gi, n)
                    for gi, _, a, b in ready
                    if groups[gi].stage in CHECKED_STAGES
                    for n in (a, b)
                    if (gi, n) not in checked
                )
            )
            if todo:
                queries = [
                    CheckQuery(
                        groups[gi].tree.problem,
                        groups[gi].tree.text(groups[gi].prefix_node),
                        groups[gi].tree.node(n).text,
                    )
                    for gi, n in todo
                ]
                results = cast(ReasoningChecker, judge).check_reasoning(queries)
                if len(results) != len(queries):
                    raise RuntimeError(f"judge returned {len(results)} checks for {len(queries)} queries")
                checked.update(zip(todo, results))
                charge_call((groups[gi].tree.trace.compute, r) for (gi, _), r in zip(todo, results))
            for gi, mi, a, b in ready:
                if groups[gi].stage in CHECKED_STAGES:
                    wrong_a, wrong_b = checked[(gi, a)].ok is False, checked[(gi, b)].ok is False
                    if wrong_a != wrong_b:
                        by_check[(gi, mi)] = b if wrong_a else a
        rest = [m for m in ready if (m[0], m[1]) not in by_check]
        comps = [
            Comparison(
                groups[gi].tree.problem,
                groups[gi].tree.text(groups[gi].prefix_node),
                groups[gi].tree.node(a).text,
                groups[gi].tree.node(b).text,
                groups[gi].stage,
            )
            for gi, _, a, b in rest
        ]
        verdicts = judge.compare(comps) if comps else []
        if len(verdicts) != len(comps):
            raise RuntimeError(f"judge returned {len(verdicts)} verdicts for {len(comps)} comparisons")
        charge_call((groups[gi].tree.trace.compute, v) for (gi, *_), v in zip(rest, verdicts))
        verdict_of = {(gi, mi): v for (gi, mi, _, _), v in zip(rest, verdicts)}
        for gi, mi, a, b in ready:
            g = groups[gi]
            v = verdict_of.get((gi, mi))
            win = by_check[(gi, mi)] if v is None else (a if v.winner == 0 else b)
            won[gi][mi] = win
            node = g.tree.node(win)
            node.score = (node.score or 0.0) + 1.0  # comparisons won
            d = {
                "stage": g.stage,
                "round": wave,
                "a": a,
                "b": b,
                "winner": win,
                "parsed": True if v is None else v.parsed,
            }
            if check and g.stage in CHECKED_STAGES:
                d["check"] = [checked[(gi, a)].ok, checked[(gi, b)].ok]
                d["by"] = "check" if v is None else "judge"
            g.tree.trace.decisions.append(d)
        wave += 1
    for gi, g in enumerate(groups):
        plan = plans[gi]
        g.winner = won[gi][len(plan) - 1] if plan else (g.candidates[0] if g.candidates else None)
