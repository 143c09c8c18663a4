"""Aggregation of step scores into one path score, in one place.

Every strategy that ranks whole paths by their step scores (best-of-N, weighted vote, beam search)
calls :func:`aggregate` with a name from :data:`AGGREGATIONS`:

``min``
    the weakest step (a path is as good as its worst step; how Math-Shepherd and Lightman et al.
    rank whole solutions for best-of-N, and best_of_n's default here);
``last``
    the score of the last step (a PRM's view of the whole path). The default of step-level search:
    AtomThink's released code ranks SlowThink candidates by the last step score unless told
    ``aggregation: min|avg`` (``atomthink_slow.py``), and search-and-learn's beam search uses
    ``agg_strategy="last"``. With ``min`` in a step search every child of a beam ties at the
    prefix's minimum, so the search ranks ties by the new step's own score
    (:func:`slowthink.search.base.path_rank`);
``mean``
    the average step score;
``prod``
    the product of step scores (the probability that every step is right, steps independent).

``None`` (and NaN) entries (steps a scorer could not judge) are skipped; a path with no known score
aggregates to ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal


def _last(scores: Sequence[float]) -> float:
    return scores[-1]


def _mean(scores: Sequence[float]) -> float:
    return math.fsum(scores) / len(scores)


def _prod(scores: Sequence[float]) -> float:
    return math.prod(scores)


Aggregation = Literal["min", "last", "mean", "prod"]
"""An aggregation's name: the type of the strategies' ``aggregate`` option (checked when a config is
built). The keys of :data:`AGGREGATIONS`."""

#: Aggregation name -> function of a non-empty list of known scores.
AGGREGATIONS: dict[Aggregation, Callable[[Sequence[float]], float]] = {
    "min": min,
    "last": _last,
    "mean": _mean,
    "prod": _prod,
}


def aggregate(scores: Sequence[float | None], how: str) -> float | None:
    """One score for a path from its step scores.

    Args:
        scores: one score per step; ``None`` = unknown (skipped).
        how: a name from :data:`AGGREGATIONS` (``min``, ``last``, ``mean``, ``prod``).

    Returns:
        The aggregate of the known scores, or ``None`` when no score is known.

    Raises:
        ValueError: ``how`` is not a known aggregation (the message lists the valid names).

    Example:
        >>> aggregate([0.9, 0.5, 0.8], "min")
        0.5
        >>> aggregate([0.9, 0.5, 0.8], "last")
        0.8
        >>> aggregate([1.0, None, 0.5], "mean")
        0.75
        >>> aggregate([0.5, 0.5, None], "prod")
        0.25
        >>> aggregate([0.9, None], "last")  # the last *known* score
        0.9
        >>> aggregate([None, None], "min") is None
        True
        >>> aggregate([0.5], "max")
        Traceback (most recent call last):
        ...
        ValueError: unknown aggregation 'max'; choose one of: last, mean, min, prod
    """
    try:
        fn = AGGREGATIONS[how]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown aggregation {how!r}; choose one of: {', '.join(sorted(AGGREGATIONS))}"
        ) from None
    known = [float(s) for s in scores if s is not None and not math.isnan(s)]
    if not known:
        return None
    return float(fn(known))
