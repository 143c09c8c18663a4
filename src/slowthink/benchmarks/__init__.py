"""Benchmarks: loaders from local files to :class:`~slowthink.types.Problem`.

::

    from slowthink.benchmarks import load_benchmark

    r = load_benchmark("math-v")                      # default path: $SLOWTHINK_DATA or ../shared/data
    r = load_benchmark("mathvista", allow_missing_images=True, limit=100)
    r = load_benchmark("gsm8k", "data/gsm8k/test.jsonl")
    r = load_benchmark("jsonl", "mine.csv", fields="question=problem,answer=solution")
    r = load_benchmark("reasoning-gym:chain_sum", size=10, seed=1234, min_terms=2, max_terms=2)
    print(r.summary())          # "math-v: 304 problems from ...; skipped 0"
    r.problems, r.skipped       # list[Problem], Counter(reason -> rows)

Every problem has ``meta["category"]`` (the benchmark's own grouping: MathVista category,
MathVerse subject, MATH-V subject, MMStar category; the benchmark name otherwise) and
``meta["benchmark"]``. Bad rows are counted in ``skipped`` by reason (:data:`SKIP_REASONS`),
never raised; a load with nothing usable raises one :class:`~slowthink.types.SlowthinkError` line.
"""

from __future__ import annotations

from slowthink.benchmarks.base import SKIP_REASONS, LoadResult
from slowthink.benchmarks.fields import FieldMap
from slowthink.benchmarks.files import DATA_ENV, default_data_dir
from slowthink.benchmarks.reasoning_gym import score_reasoning_gym
from slowthink.benchmarks.registry import (
    ALIASES,
    BENCHMARKS,
    BenchmarkInfo,
    benchmark_names,
    get_benchmark,
    load_benchmark,
    parse_options,
)

__all__ = [
    "ALIASES",
    "BENCHMARKS",
    "DATA_ENV",
    "SKIP_REASONS",
    "BenchmarkInfo",
    "FieldMap",
    "LoadResult",
    "benchmark_names",
    "default_data_dir",
    "get_benchmark",
    "load_benchmark",
    "parse_options",
    "score_reasoning_gym",
]
