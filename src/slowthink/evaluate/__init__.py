"""Evaluation: a resumable runner (one JSONL record per finished problem), accuracy per strategy,
N and meta group with Wilson intervals, scaling curves (path-wise strategies sampled once at the
largest N, smaller N derived by subsampling), plots and HTML reports.

::

    from slowthink.evaluate import EvalConfig, run_eval

    r = run_eval(EvalConfig(benchmark="gsm8k", limit=20, strategies=["majority"], ns=[1, 2, 4, 8],
                            out="runs/gsm8k-majority"))
    for row in r.rows:
        print(row["strategy"], row["n"], row["accuracy"], row["ci95"], row["generated_tokens"])

Command line: ``slowthink eval`` and ``slowthink report`` (see :mod:`slowthink.evaluate.cli`).
Nothing here imports a model library; matplotlib loads only when plotting.
"""

from __future__ import annotations

from slowthink.evaluate.config import EvalConfig, Job, parse_ns, parse_strategies, plan_jobs
from slowthink.evaluate.metrics import GROUP_KEYS, Grader, Outcome, job_rows, outcome, summarize, wilson
from slowthink.evaluate.records import RECORDS, read_records
from slowthink.evaluate.runner import EvalResult, run_eval
from slowthink.evaluate.subsample import Derived, derive, subsets

__all__ = [
    "GROUP_KEYS",
    "RECORDS",
    "Derived",
    "EvalConfig",
    "EvalResult",
    "Grader",
    "Job",
    "Outcome",
    "derive",
    "job_rows",
    "outcome",
    "parse_ns",
    "parse_strategies",
    "plan_jobs",
    "read_records",
    "run_eval",
    "subsets",
    "summarize",
    "wilson",
]
