"""What the viewer shows of one solved problem, extracted from its :class:`~slowthink.types.Trace`.

:func:`problem_view` turns a trace (and, from a run folder, its problem and grade) into a plain
JSON-able dict: every node with its text, kind, scores, rejection reason, other notes, the judge
decisions it took part in, its own generated tokens and those of its subtree, and whether it is on
the chosen path; the trace's compute, votes, decisions and notes. The page's script renders
exactly this dict, so everything it shows is tested here without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from slowthink.types import Node, Trace

REJECTED = "rejected: "


def rejection(node: Node) -> tuple[str | None, str | None]:
    """``(rejection reason, other notes)`` of a node: a note part ``rejected: REASON`` is the reason."""
    if not node.note:
        return None, None
    reason, other = None, []
    for part in node.note.split("; "):
        if part.startswith(REJECTED) and reason is None:
            reason = part[len(REJECTED) :]
        else:
            other.append(part)
    return reason, "; ".join(other) or None


def chosen_ids(trace: Trace) -> set[int]:
    """Nodes on the chosen path: the trace's path, and any node a strategy marked chosen."""
    return set(trace.path) | {n.id for n in trace.nodes if n.chosen}


def node_decisions(trace: Trace) -> dict[int, list[dict[str, Any]]]:
    """Each judge decision, seen from each of its two candidates: who it met, in which stage and
    round, whether it won, how the winner was picked (judge or reasoning check) and, with the
    reasoning check, whether its own reasoning passed it (``checked``)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for i, d in enumerate(trace.decisions):
        a, b, win = d.get("a"), d.get("b"), d.get("winner")
        check = d.get("check")
        for side, (me, other) in enumerate(((a, b), (b, a))):
            if me is None:
                continue
            seen = {
                "i": i,
                "vs": other,
                "won": win == me,
                "stage": d.get("stage"),
                "round": d.get("round"),
                "parsed": d.get("parsed"),
                "by": d.get("by", "judge"),
            }
            if check is not None:
                seen["checked"] = bool(check[side])
            out.setdefault(int(me), []).append(seen)
    return out


def subtree_tokens(trace: Trace) -> dict[int, int]:
    """Generated tokens of each node's subtree (the node itself included)."""
    total = {n.id: n.generated_tokens for n in trace.nodes}
    # children always come after their parent in ``nodes``: one pass from the end adds them up
    for n in reversed(trace.nodes):
        if n.parent is not None and n.parent in total:
            total[n.parent] += total[n.id]
    return total


def node_view(
    node: Node, chosen: set[int], decisions: Mapping[int, list], sub: Mapping[int, int]
) -> dict[str, Any]:
    reason, note = rejection(node)
    out: dict[str, Any] = {
        "id": node.id,
        "parent": node.parent,
        "depth": node.depth,
        "kind": node.kind,
        "text": node.text,
        "score": node.score,
        "step_score": node.step_score,
        "tokens": node.generated_tokens,
        "subtree_tokens": sub.get(node.id, node.generated_tokens),
        "chosen": node.id in chosen,
        "final": node.final,
        "answer": node.answer,
        "finish": node.finish_reason,
        "rejected": reason,
        "note": note,
    }
    if node.id in decisions:
        out["decisions"] = decisions[node.id]
    return out


def problem_view(
    trace: Trace,
    problem: Mapping[str, Any] | None = None,
    grade: Mapping[str, Any] | None = None,
    key: str = "",
) -> dict[str, Any]:
    """The viewer's data of one trace (see the module doc)."""
    chosen = chosen_ids(trace)
    decisions = node_decisions(trace)
    sub = subtree_tokens(trace)
    problem = problem or {}
    correct = None if grade is None else bool(grade.get("correct"))
    return {
        "id": trace.problem_id,
        "strategy": trace.strategy,
        "key": key,
        "format": trace.format,
        "question": problem.get("question"),
        "gold": problem.get("answer"),
        "answer": trace.answer,
        "correct": correct,
        "error": trace.error,
        "compute": asdict(trace.compute),
        "votes": trace.votes,
        "decisions": trace.decisions,
        "notes": trace.notes,
        "path": trace.path,
        "nodes": [node_view(n, chosen, decisions, sub) for n in trace.nodes],
    }
