"""Helpers shared by the grading tests (a uniquely named module, imported by the test files)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slowthink.types import Problem

TIME_LIMIT_S = 2.0
"""Every adversarial case must return within this many seconds (issue 9: under 2 s)."""


def make_problem(answer: str | None = None, **kw: Any) -> Problem:
    """A Problem with only the fields a grading case needs."""
    return Problem(id=kw.pop("id", "t"), question=kw.pop("question", "q"), answer=answer, **kw)


def timed(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, float]:
    """``fn(*args, **kw)`` and the seconds it took."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0
