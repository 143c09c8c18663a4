"""Procedurally generated tasks from reasoning-gym (optional extra ``slowthink[bench]``).

``load_benchmark("reasoning-gym:chain_sum", size=10, seed=1234, min_terms=2, max_terms=2)`` makes
10 problems of the ``chain_sum`` task; every option besides ``size``, ``seed`` and ``config`` is a
field of the task's config (``config="min_terms=2,max_terms=2"`` works too, for CLI strings).
Each problem keeps what is needed to score it with the task's own ``score_answer``:
``meta["reasoning_gym"]`` (task, size, seed, config, index) and ``meta["rg_entry"]`` (the
entry, JSON-safe); :func:`score_reasoning_gym` does the scoring.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from slowthink.benchmarks.base import (
    MISSING_ANSWER,
    MISSING_QUESTION,
    Collector,
    guess_answer_type,
    require,
)
from slowthink.options import parse_kv
from slowthink.types import Problem, SlowthinkError

INSTALL_HINT = "reasoning-gym is not installed: pip install 'slowthink[bench]' (or pip install reasoning-gym)"
DEFAULT_SIZE = 100
DEFAULT_SEED = 1234


def _module() -> Any:
    try:
        import reasoning_gym
    except ImportError:
        raise SlowthinkError(INSTALL_HINT) from None
    return reasoning_gym


@lru_cache(maxsize=16)
def _dataset(task: str, size: int, seed: int | None, config_json: str) -> Any:
    rg = _module()
    config = json.loads(config_json)
    try:
        return rg.create_dataset(task, size=size, seed=seed, **config)
    except Exception as e:  # unknown task, unknown config field, invalid range: all user errors here
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SlowthinkError(
            f"reasoning-gym:{task} (size={size}, seed={seed}, config={config}): {msg}"
        ) from None


def _json_safe(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def load_reasoning_gym(
    path: Path | None,
    col: Collector,
    *,
    task: str,
    size: int = DEFAULT_SIZE,
    seed: int | None = DEFAULT_SEED,
    config: str | dict[str, Any] | None = None,
    **task_config: Any,
) -> None:
    """Generate ``size`` problems of reasoning-gym ``task`` into ``col``.

    Args:
        task: the reasoning-gym dataset name (``chain_sum``, ``leg_counting``, ...).
        size: number of problems to generate.
        seed: generator seed (same seed, same problems).
        config: task config as ``"k=v,k=v"`` or a dict; merged with ``task_config``.

    Example:
        >>> r = load_benchmark("reasoning-gym:chain_sum", size=2, seed=1234, min_terms=2, max_terms=2)  # doctest: +SKIP
        >>> r.problems[0].meta["category"], score_reasoning_gym(r.problems[0], r.problems[0].answer)  # doctest: +SKIP
        ('chain_sum', 1.0)
    """
    if path is not None:
        raise SlowthinkError(f"reasoning-gym:{task} generates its problems: pass no path")
    cfg = dict(parse_kv(config, what="config entry") if isinstance(config, str) else (config or {}))
    clash = set(cfg) & set(task_config)
    if clash:
        raise SlowthinkError(
            f"reasoning-gym:{task}: {', '.join(sorted(clash))} given both in config and as option"
        )
    cfg.update(task_config)
    if not isinstance(size, int) or size < 1:
        raise SlowthinkError(f"reasoning-gym:{task}: size must be a positive integer, got {size!r}")
    n = size if col.limit is None else min(size, col.limit)
    ds = _dataset(task, size, seed, json.dumps(cfg, sort_keys=True))
    for i in range(n):
        with col.row():
            entry = ds[i]
            question = require(entry.get("question"), MISSING_QUESTION)
            answer = require(entry.get("answer"), MISSING_ANSWER)
            meta = {
                "category": task,
                "reasoning_gym": {"task": task, "size": size, "seed": seed, "config": cfg, "index": i},
                "rg_entry": _json_safe(entry),
                "scorer": "reasoning-gym",
            }
            col.add(
                Problem(
                    id=f"{task}-{seed}-{i}",
                    question=question,
                    answer=answer,
                    answer_type=guess_answer_type(answer),
                    meta=meta,
                )
            )


def score_reasoning_gym(problem: Problem, prediction: str | None) -> float:
    """Score ``prediction`` with the task's own ``score_answer`` (1.0 right, 0.0 wrong, partial between).

    The dataset is rebuilt from ``meta["reasoning_gym"]`` (cached), so the entry has its
    original types.
    """
    info = problem.meta.get("reasoning_gym")
    if not isinstance(info, dict):
        raise SlowthinkError(
            f"problem {problem.id} does not come from reasoning-gym (no meta['reasoning_gym'])"
        )
    ds = _dataset(info["task"], info["size"], info["seed"], json.dumps(info["config"], sort_keys=True))
    entry = ds[info["index"]]
    try:
        return float(ds.score_answer(answer=prediction, entry=entry))
    except Exception:  # a task scorer choking on odd model output counts as wrong
        return 0.0
