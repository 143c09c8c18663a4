"""Accuracy tables from records: per strategy and N, overall and per meta group, with Wilson 95%
confidence intervals, and the compute spent.

Every planned problem with a record counts: a record with an ``error`` counts as wrong (and in
``errors``) in ``accuracy``; ``accuracy_ran`` (with ``ci95_ran``) is the accuracy over the ``ran``
problems, those whose record holds no error, so failed problems do not pass for wrong answers.
A derived (subsampled) N scores each problem by its mean correctness over the subsets, so
``correct`` may be fractional; the interval then uses that mean as the proportion over the
problems (an approximation: it ignores the subsampling variance, which only narrows it).

Token and call columns are means per problem; ``wall_time_s`` is the total over problems (each
problem gets ``batch wall time / batch size``; a derived N gets ``k / N_max`` of it). Token totals
(:data:`TOKEN_TOTALS`): ``total_tokens`` = policy prompt + policy generated + scorer/judge prompt +
scorer/judge generated (the default x axis of the token plots), ``policy_tokens`` = policy prompt +
generated, ``generated_tokens`` = policy + scorer/judge generated (the old x axis). The LLM grading
judge (``--grade-judge``) grades, it is not part of a strategy's compute: its tokens are in
``metrics.json["grading"]``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slowthink.evaluate.config import Job
from slowthink.evaluate.records import RecordKey
from slowthink.evaluate.subsample import derive
from slowthink.grading import grade, judge_eligible
from slowthink.stats import wilson
from slowthink.types import Problem, Trace

#: Problem meta keys that get their own accuracy breakdown when the problems have them.
GROUP_KEYS: tuple[str, ...] = ("category", "subject", "level", "problem_version")

#: Row fields that sum per-problem token means: name -> the mean fields it adds up.
TOKEN_TOTALS: dict[str, tuple[str, ...]] = {
    "total_tokens": (
        "policy_prompt_tokens",
        "policy_generated_tokens",
        "scorer_prompt_tokens",
        "scorer_generated_tokens",
    ),
    "policy_tokens": ("policy_prompt_tokens", "policy_generated_tokens"),
    "generated_tokens": ("policy_generated_tokens", "scorer_generated_tokens"),
}


def token_total(row: Mapping[str, Any], name: str = "total_tokens") -> float:
    """A token total of a metrics row, summed from its parts when the row predates the field.

    >>> token_total({"policy_prompt_tokens": 40, "policy_generated_tokens": 10,
    ...              "scorer_prompt_tokens": 30, "scorer_generated_tokens": 2})
    82.0
    """
    if row.get(name) is not None:
        return float(row[name])
    return round(math.fsum(float(row.get(k) or 0) for k in TOKEN_TOTALS[name]), 2)


@dataclass
class Outcome:
    """How one problem went under one strategy and N (means over subsets for a derived N)."""

    problem_id: str
    meta: dict[str, Any] = field(default_factory=dict)
    correct: float = 0.0
    answered: float = 0.0
    oracle: float | None = None
    """Path-wise: whether any sample in the subset is right (mean over subsets)."""
    error: bool = False
    policy_generated_tokens: float = 0.0
    policy_prompt_tokens: float = 0.0
    scorer_generated_tokens: float = 0.0
    scorer_prompt_tokens: float = 0.0
    engine_calls: float = 0.0
    scorer_calls: float = 0.0
    wall_time_s: float = 0.0


class Grader:
    """``grade`` with a cache by (problem id, answer); unknown gold -> not correct.

    With an LLM grading judge (``slowthink eval --grade-judge``), verdicts of the judge on answers
    the rules call wrong (see :mod:`slowthink.grading.judge`) override the rules; they are kept in
    ``store`` (a JSONL file in the run folder), so a resumed run never asks twice.
    """

    def __init__(self, judge=None, store: Path | None = None) -> None:
        self._cache: dict[tuple[str, str | None], bool] = {}
        self.judge = judge
        self.store = store
        self.verdicts: dict[tuple[str, str], dict[str, Any]] = {}
        self.judge_calls = 0
        if store is not None and store.is_file():
            for line in store.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    v = json.loads(line)
                    self.verdicts[(str(v["id"]), str(v["answer"]))] = v
                except (ValueError, KeyError, TypeError):
                    continue  # a torn or foreign line: that answer is judged again

    @property
    def uses_judge(self) -> bool:
        return self.judge is not None or bool(self.verdicts)

    def __call__(self, answer: str | None, problem: Problem) -> bool:
        key = (problem.id, answer)
        if key not in self._cache:
            v = self.verdicts.get((problem.id, answer)) if answer is not None else None
            if v is not None and v.get("correct") is not None:
                self._cache[key] = bool(v["correct"])
            else:
                self._cache[key] = grade_dict(answer, problem)["correct"]
        return self._cache[key]

    def pending(self, pairs: Iterable[tuple[str | None, Problem]]) -> list[tuple[str, Problem]]:
        """The distinct (answer, problem) pairs the judge should see and has not yet."""
        out, seen = [], set()
        for answer, problem in pairs:
            key = (problem.id, answer)
            if answer is None or key in seen or key in self.verdicts:
                continue
            seen.add(key)
            try:
                g = grade(answer, problem)
            except Exception:  # grading must never end a run
                continue
            if judge_eligible(g, answer, problem):
                out.append((answer, problem))
            elif problem.answer is not None:
                self._cache[key] = bool(g.correct)  # the rules' verdict stands: not graded again
        return out

    def run_judge(self, items: Sequence[tuple[str, Problem]], batch: int = 64) -> None:
        """Judge ``items`` in batches (one engine call each); append every verdict to ``store``."""
        for i in range(0, len(items), batch):
            chunk = items[i : i + batch]
            verdicts = self.judge.judge(chunk)
            self.judge_calls += 1
            lines = []
            for (answer, problem), v in zip(chunk, verdicts):
                rec = {
                    "id": problem.id,
                    "answer": answer,
                    "gold": problem.answer,
                    "correct": v.correct,
                    "raw": v.raw,
                    "prompt_tokens": v.prompt_tokens,
                    "generated_tokens": v.generated_tokens,
                }
                self.verdicts[(problem.id, answer)] = rec
                lines.append(json.dumps(rec, ensure_ascii=False))
                self._cache.pop((problem.id, answer), None)
            if self.store is not None and lines:
                with self.store.open("a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")

    def summary(self) -> dict[str, Any]:
        vs = list(self.verdicts.values())
        return {
            "judged": len(vs),
            "judge_said_same": sum(v.get("correct") is True for v in vs),
            "judge_said_different": sum(v.get("correct") is False for v in vs),
            "judge_unusable": sum(v.get("correct") is None for v in vs),
            "judge_calls_this_run": self.judge_calls,
            "judge_prompt_tokens": sum(v.get("prompt_tokens") or 0 for v in vs),
            "judge_generated_tokens": sum(v.get("generated_tokens") or 0 for v in vs),
        }


def grade_dict(answer: str | None, problem: Problem) -> dict[str, Any]:
    """Grading's verdict as a plain dict; a grading failure is a wrong answer with the reason."""
    if problem.answer is None:
        return {"correct": False, "method": "no gold answer", "pred_norm": None, "gold_norm": None}
    try:
        g = grade(answer, problem)
    except Exception as e:  # grading must never end a run
        return {
            "correct": False,
            "method": f"grading error: {type(e).__name__}: {e}"[:300],
            "pred_norm": None,
            "gold_norm": None,
        }
    d = asdict(g) if hasattr(g, "__dataclass_fields__") else dict(vars(g))
    d["correct"] = bool(d.get("correct"))
    return d


def outcome(
    rec: dict[str, Any], k: int | None, seeds: int, grader: Grader, problem: Problem | None = None
) -> Outcome:
    """The outcome of one record at N = ``k`` (derived by subsampling when ``k < rec["n"]``)."""
    problem = problem or Problem.from_dict(rec["problem"])
    out = Outcome(problem_id=problem.id, meta=dict(problem.meta))
    trace_d = rec.get("trace")
    if rec.get("error") and not trace_d:
        out.error = True
        return out
    trace = Trace.from_dict(trace_d)
    c = trace.compute
    per = c.batch_size or 1
    out.error = bool(rec.get("error"))
    out.engine_calls, out.scorer_calls = c.engine_calls, c.scorer_calls
    gen_n = rec.get("n")
    if k is None or gen_n is None or k >= gen_n or not rec.get("pathwise"):
        if grader.uses_judge:
            out.correct = float(grader(rec.get("answer"), problem))
        else:
            out.correct = float(bool((rec.get("grade") or {}).get("correct")))
        out.answered = float(rec.get("answer") is not None)
        out.policy_generated_tokens, out.policy_prompt_tokens = c.generated_tokens, c.prompt_tokens
        out.scorer_generated_tokens, out.scorer_prompt_tokens = (
            c.scorer_generated_tokens,
            c.scorer_prompt_tokens,
        )
        out.wall_time_s = c.wall_time_s / per
        if rec.get("pathwise"):
            out.oracle = float(
                any(grader(n.answer, problem) for n in trace.nodes if n.parent == 0 and n.answer is not None)
            )
        return out
    subs = derive(trace, problem, k, seeds)
    m = len(subs)
    by_id = {n.id: n for n in trace.nodes}
    out.correct = sum(grader(d.answer, problem) for d in subs if d.answer is not None) / m
    out.answered = sum(d.answer is not None for d in subs) / m
    out.oracle = (
        sum(
            any(grader(by_id[i].answer, problem) for i in d.nodes if by_id[i].answer is not None)
            for d in subs
        )
        / m
    )
    out.policy_generated_tokens = sum(d.policy_generated_tokens for d in subs) / m
    out.policy_prompt_tokens = sum(d.policy_prompt_tokens for d in subs) / m
    out.scorer_generated_tokens = sum(d.scorer_generated_tokens for d in subs) / m
    out.scorer_prompt_tokens = sum(d.scorer_prompt_tokens for d in subs) / m
    out.wall_time_s = c.wall_time_s / per * k / gen_n
    return out


def _group(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    n = len(outcomes)
    correct = math.fsum(o.correct for o in outcomes)
    lo, hi = wilson(correct, n)
    return {
        "problems": n,
        "correct": round(correct, 4),
        "accuracy": round(correct / n, 4) if n else 0.0,
        "ci95": [round(lo, 4), round(hi, 4)],
    }


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return round(math.fsum(xs) / len(xs), 2) if xs else 0.0


def summarize(outcomes: Sequence[Outcome], group_keys: Sequence[str] = GROUP_KEYS) -> dict[str, Any]:
    """One table row: accuracy + CI, compute means, and the accuracy per meta group."""
    row: dict[str, Any] = _group(outcomes)
    row["errors"] = sum(o.error for o in outcomes)
    ran = _group([o for o in outcomes if not o.error])
    row["ran"], row["accuracy_ran"], row["ci95_ran"] = ran["problems"], ran["accuracy"], ran["ci95"]
    row["no_answer"] = round(1 - _mean(o.answered for o in outcomes), 4) if outcomes else 0.0
    oracles = [o.oracle for o in outcomes if o.oracle is not None]
    row["oracle"] = round(math.fsum(oracles) / len(oracles), 4) if oracles else None
    for name in (
        "policy_generated_tokens",
        "policy_prompt_tokens",
        "scorer_generated_tokens",
        "scorer_prompt_tokens",
        "engine_calls",
        "scorer_calls",
    ):
        row[name] = _mean(getattr(o, name) for o in outcomes)
    for name, parts in TOKEN_TOTALS.items():
        row[name] = _mean(math.fsum(getattr(o, k) for k in parts) for o in outcomes)
    row["wall_time_s"] = round(math.fsum(o.wall_time_s for o in outcomes), 2)
    by: dict[str, dict[str, Any]] = {}
    for key in group_keys:
        groups: dict[str, list[Outcome]] = defaultdict(list)
        for o in outcomes:
            if key in o.meta and o.meta[key] is not None:
                groups[str(o.meta[key])].append(o)
        if groups:
            by[key] = {g: _group(os) for g, os in sorted(groups.items())}
    row["by"] = by
    return row


def job_rows(
    jobs: Sequence[Job],
    records: dict[RecordKey, dict[str, Any]],
    problem_ids: Sequence[str],
    seeds: int,
    grader: Grader | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[dict[str, Any]]:
    """A metrics row per (job, reported N) over the planned problems that have a record."""
    grader = grader or Grader()
    rows = []
    problems: dict[str, Problem] = {}
    for job in jobs:
        recs = [
            records[(pid, job.strategy, job.key)]
            for pid in problem_ids
            if (pid, job.strategy, job.key) in records
        ]
        for k in job.report_ns:
            outs = []
            for rec in recs:
                pid = str(rec["id"])
                if pid not in problems:
                    problems[pid] = Problem.from_dict(rec["problem"])
                o = outcome(rec, k, seeds, grader, problems[pid])
                outs.append(o)
                if on_outcome:
                    on_outcome(o)
            derived = job.pathwise and k is not None and job.n is not None and k < job.n
            row = {
                "strategy": job.strategy,
                "n": k,
                "key": job.key,
                "derived_from": job.n if derived else None,
                "seeds": seeds if derived else None,
                "planned": len(problem_ids),
                "missing": len(problem_ids) - len(recs),
            }
            row.update(summarize(outs))
            rows.append(row)
    return rows
