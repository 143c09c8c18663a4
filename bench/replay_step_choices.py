"""Replay the step choices of recorded greedy_step runs under other ranking rules (no generation).

A greedy step search keeps one child per depth. Every candidate it sampled is in the trace with
its own step score (``Node.step_score``), so the choice each ranking rule WOULD have made at a
depth can be recomputed from the same candidates:

* ``last``: the aggregate of today's default, ties by own step score (``search.base.path_rank``);
* ``min``: today's ``min``: the weakest step of the path, ties by own step score, newest first;
* ``min_first_sampled``: the rule before the fix: ``min`` with ties going to the first sampled
  candidate (which ignored the scorer whenever the children tied at the prefix's minimum).

As long as two rules pick the same child at every depth, their runs are identical (seeds derive
from problem, depth and node id), so a rule that agrees with the recorded choices everywhere
would have produced the very same traces. Prints one JSON object: per run folder and N, the
decisions with more than one candidate, and how often each rule agrees with the recorded choice.

    .venv/bin/python bench/replay_step_choices.py runs/study/chain_sum-atomic-symbolic
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from slowthink.evaluate.records import read_records
from slowthink.scorers.aggregate import aggregate
from slowthink.search.base import rank_key


def _rank(prefix: list[float | None], own: float | None, how: str) -> tuple[float, ...]:
    scores = [*prefix, own]
    return (rank_key(aggregate(scores, how)), *(rank_key(s) for s in reversed(scores)))


def choose(prefix: list[float | None], kids: list[dict], rule: str) -> int:
    """Index in ``kids`` (sampling order) of the child ``rule`` keeps."""
    if rule == "min_first_sampled":
        keys = [rank_key(aggregate([*prefix, k["step_score"]], "min")) for k in kids]
        return keys.index(max(keys))  # first of the best: sampling order breaks ties
    keys = [_rank(prefix, k["step_score"], rule) for k in kids]
    return keys.index(max(keys))


RULES = ("last", "min", "min_first_sampled")


def replay(trace: dict) -> list[dict]:
    """One entry per depth of the chosen path where the search had more than one valid candidate."""
    nodes = {n["id"]: n for n in trace["nodes"]}
    children: dict[int, list[dict]] = defaultdict(list)
    for n in trace["nodes"]:
        if n["parent"] is not None:
            children[n["parent"]].append(n)
    out = []
    path = trace["path"]
    for parent, chosen in zip(path, path[1:]):
        kids = [
            k
            for k in children[parent]
            if not (k.get("note") or "").startswith("rejected") and k["kind"] != "answer"
        ]
        if nodes[chosen]["kind"] == "answer" or len(kids) < 2:
            continue
        prefix = [nodes[i].get("step_score") for i in path[1 : path.index(parent) + 1]]
        recorded = [k["id"] for k in kids].index(chosen)
        picks = {rule: choose(prefix, kids, rule) for rule in RULES}
        out.append(
            {
                "recorded": recorded,
                **picks,
                "tied_on_min": len({rank_key(aggregate([*prefix, k["step_score"]], "min")) for k in kids})
                == 1,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders holding greedy_step records")
    ap.add_argument("--strategy", default="greedy_step")
    args = ap.parse_args()
    report: dict = {}
    for run in args.runs:
        records, _ = read_records(Path(run) / "records.jsonl")
        by_n: dict[int, list[dict]] = defaultdict(list)
        aggregates = set()
        for (_, strategy, _), rec in records.items():
            if strategy == args.strategy and rec.get("trace"):
                aggregates.add(rec["trace"]["config"].get("aggregate"))
                by_n[rec["n"]].extend(replay(rec["trace"]))
        rows = {}
        for n, ds in sorted(by_n.items()):
            rows[f"n={n}"] = {
                "decisions_with_2+_candidates": len(ds),
                "all_tied_on_min": sum(d["tied_on_min"] for d in ds),
                **{f"agree_{rule}": sum(d[rule] == d["recorded"] for d in ds) for rule in RULES},
                "old_rule_picked_first_sampled_while_scores_differed": sum(
                    d["min_first_sampled"] != d["last"] for d in ds
                ),
            }
        report[run] = {"recorded_with_aggregate": sorted(map(str, aggregates)), "by_n": rows}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
