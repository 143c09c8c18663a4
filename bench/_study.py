"""Shared by the study benchmarks (bench_scaling.py, bench_slow.py): the datasets and run folders.

Every study run folder is named by what makes its identity (dataset, format, scorer, select), so
benchmarks that need the same (strategy, N) on the same problems resume each other's records
instead of generating them again, and path-wise strategies of a folder share their samples.
"""

from __future__ import annotations

from pathlib import Path

#: The easy reasoning-gym set: 2 one-digit terms; always the first problems of a 100-problem set
#: (seed 1234), so --limit 50 and --limit 100 runs share their first 50 problems.
RG_CONFIG = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}
RG_SIZE = 100

#: Token budget of a whole response per format (identity of a run folder: keep it fixed).
MAX_TOKENS = {"free": 160, "atomic": 256, "stages": None, "sentences": None}


def dataset_options(name: str) -> dict:
    if name == "chain_sum":
        return {
            "benchmark": "reasoning-gym:chain_sum",
            "benchmark_options": {"size": RG_SIZE, "seed": 1234, **RG_CONFIG},
        }
    if name == "gsm8k":
        return {"benchmark": "gsm8k"}
    raise SystemExit(f"unknown dataset '{name}': choose chain_sum and/or gsm8k")


def run_folder(
    root: str | Path, dataset: str, fmt: str, scorer: str | None, select: str | None = None
) -> Path:
    parts = [dataset, fmt, (scorer or "none").split(":")[0]] + ([select] if select else [])
    return Path(root) / "-".join(parts)
