"""The official metrics of LLaVA-CoT's benchmarks, as VLMEvalKit computes them: pure functions.

Each takes one :class:`Item` per prediction (a problem's answer in one run job, already judged:
``correct`` for a choice or Yes/No answer, ``score`` for an MM-Vet grade) and returns
:class:`Split` rows: ``Overall`` first, then one per group value. Values are percentages (0-100).

* :func:`accuracy_splits` (MMStar, AI2D, MathVista): plain accuracy, per ``l2-category`` and
  ``category`` (VLMEvalKit's ``report_acc``).
* :func:`circular_splits` (MMBench): CircularEval. Rows are grouped by ``g_index`` (a question
  and its copies with rotated options); a group counts right only when every row of it is right.
  Only groups whose original row (``index == g_index``) is present count, and the original's
  category is the group's (VLMEvalKit's ``mcq_circular_eval``). ``vanilla`` beside it is plain
  accuracy over the same rows.
* :func:`hallusion_splits` (HallusionBench): ``aAcc`` over questions; ``fAcc`` over figures (all
  questions about one figure right: category, subcategory, set_id, figure_id); ``qAcc`` over
  questions (all figure variants of one question right: category, subcategory, set_id,
  question_id); Overall, per ``category`` and per ``l2-category``.
* :func:`mmvet_splits` (MM-Vet): mean grader score x 100, Overall, per capability (``rec``,
  ``ocr``, ``know``, ``gen``, ``spat``, ``math``: a question counts for each capability named in
  its ``category``) and per capability combination (``rec_ocr``), as ``MMVet_acc``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

OVERALL = "Overall"
MMVET_CAPABILITIES: tuple[str, ...] = ("rec", "ocr", "know", "gen", "spat", "math")


@dataclass(frozen=True)
class Item:
    """One prediction as the official metrics read it (fields a metric does not use stay None)."""

    index: str
    correct: bool = False
    category: str | None = None
    l2_category: str | None = None
    g_index: str | None = None
    """MMBench: the circular group (the original question's index)."""
    set_id: str | None = None
    figure_id: str | None = None
    question_id: str | None = None
    score: float | None = None
    """MM-Vet: the grader's score in [0, 1]."""


@dataclass(frozen=True)
class Split:
    """One row of a benchmark's table: ``split`` is ``Overall`` or a group value, ``by`` the
    column it groups (``overall``, ``category``, ``l2-category``, ``capability``,
    ``capabilities``), ``n`` the units counted (questions, or circular groups)."""

    split: str
    by: str
    n: int
    values: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {"split": self.split, "by": self.by, "n": self.n, "values": dict(self.values)}


def _pct(xs: Sequence[bool] | Sequence[float]) -> float:
    return 100.0 * sum(float(x) for x in xs) / len(xs) if xs else 0.0


def _by(items: Iterable[Item], key: Callable[[Item], str | None]) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = {}
    for it in items:
        k = key(it)
        if k is not None:
            groups.setdefault(k, []).append(it)
    return dict(sorted(groups.items()))


_GROUPINGS: dict[str, Callable[[Item], str]] = {
    "l2-category": lambda it: it.l2_category,
    "category": lambda it: it.category,
}


def _splits(
    items: Sequence[Item],
    score: Callable[[Sequence[Item]], tuple[int, dict[str, float]]],
    order: Sequence[str] = ("l2-category", "category"),
) -> list[Split]:
    """Overall, then per grouping of ``order`` (default: VLMEvalKit's MCQ order, ``l2-category``
    then ``category``)."""
    n, values = score(items)
    out = [Split(OVERALL, "overall", n, values)]
    for by in order:
        key = _GROUPINGS[by]
        for value, group in _by(items, key).items():
            n, values = score(group)
            out.append(Split(value, by, n, values))
    return out


def accuracy_splits(items: Sequence[Item]) -> list[Split]:
    """Plain accuracy (VLMEvalKit's vanilla MCQ evaluation and ``report_acc``).

    >>> [(s.split, s.n, s.values["accuracy"]) for s in accuracy_splits(
    ...     [Item("1", True, "a"), Item("2", False, "a"), Item("3", True, "b"), Item("4", True, "b")])]
    [('Overall', 4, 75.0), ('a', 2, 50.0), ('b', 2, 100.0)]
    """
    return _splits(items, lambda xs: (len(xs), {"accuracy": _pct([x.correct for x in xs])}))


def circular_groups(items: Sequence[Item]) -> list[tuple[Item, list[Item]]]:
    """(original row, every row of its group) for each group whose original row is present."""
    groups = _by(items, lambda it: it.g_index if it.g_index is not None else it.index)
    return [
        (main, rows)
        for g, rows in groups.items()
        for main in [next((r for r in rows if r.index == g), None)]
        if main is not None
    ]


def circular_splits(items: Sequence[Item]) -> list[Split]:
    """MMBench CircularEval (see the module docstring); ``n`` counts questions (groups).

    >>> rows = [Item("1", True, "c", g_index="1"), Item("1000001", False, "c", g_index="1"),
    ...         Item("2", True, "c", g_index="2"), Item("1000002", True, "c", g_index="2")]
    >>> s = circular_splits(rows)[0]
    >>> s.n, s.values
    (2, {'circular': 50.0, 'vanilla': 75.0})
    """
    groups = circular_groups(items)

    def score(group_items: Sequence[Item]) -> tuple[int, dict[str, float]]:
        mains = {it.index for it in group_items}
        chosen = [rows for main, rows in groups if main.index in mains]
        hits = [all(r.correct for r in rows) for rows in chosen]
        every = [r.correct for rows in chosen for r in rows]
        return len(chosen), {"circular": _pct(hits), "vanilla": _pct(every)}

    return _splits([main for main, _ in groups], score)


def _all_right(items: Sequence[Item], key: Callable[[Item], tuple[object, ...]]) -> list[bool]:
    groups: dict[tuple[object, ...], list[bool]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it.correct)
    return [all(v) for v in groups.values()]


def _figure_key(it: Item) -> tuple[object, ...]:
    if it.set_id is None or it.figure_id is None:
        return ("row", it.index)
    return (it.category, it.l2_category, it.set_id, it.figure_id)


def _question_key(it: Item) -> tuple[object, ...]:
    if it.set_id is None or it.question_id is None:
        return ("row", it.index)
    return (it.category, it.l2_category, it.set_id, it.question_id)


def hallusion_splits(items: Sequence[Item]) -> list[Split]:
    """HallusionBench aAcc / fAcc / qAcc (see the module docstring); ``n`` counts questions.

    Two questions about figure 0 of set 1 (one wrong) and the same question about figure 1:

    >>> rows = [Item("VD_map_0_1_0_0", True, "VD", "map", set_id="1", figure_id="0", question_id="0"),
    ...         Item("VD_map_0_1_0_1", False, "VD", "map", set_id="1", figure_id="0", question_id="1"),
    ...         Item("VD_map_0_1_1_0", True, "VD", "map", set_id="1", figure_id="1", question_id="0")]
    >>> {k: round(v, 2) for k, v in hallusion_splits(rows)[0].values.items()}
    {'aAcc': 66.67, 'fAcc': 50.0, 'qAcc': 50.0}
    """

    def score(xs: Sequence[Item]) -> tuple[int, dict[str, float]]:
        return len(xs), {
            "aAcc": _pct([x.correct for x in xs]),
            "fAcc": _pct(_all_right(xs, _figure_key)),
            "qAcc": _pct(_all_right(xs, _question_key)),
        }

    return _splits(items, score, order=("category", "l2-category"))


def mmvet_splits(items: Sequence[Item]) -> list[Split]:
    """MM-Vet: mean grader score x 100, Overall, per capability, per capability combination.

    >>> rows = [Item("1", category="rec,ocr", score=1.0), Item("2", category="ocr", score=0.4),
    ...         Item("3", category="rec", score=0.0)]
    >>> [(s.split, s.n, round(s.values["score"], 1)) for s in mmvet_splits(rows)]
    [('Overall', 3, 46.7), ('rec', 2, 50.0), ('ocr', 2, 70.0), ('ocr', 1, 40.0), ('rec', 1, 0.0), ('rec_ocr', 1, 100.0)]
    """

    def mean(xs: Sequence[Item]) -> tuple[int, dict[str, float]]:
        return len(xs), {"score": _pct([x.score or 0.0 for x in xs])}

    n, values = mean(items)
    out = [Split(OVERALL, "overall", n, values)]
    for cap in MMVET_CAPABILITIES:  # a substring test on the category, as MMVet_acc does
        group = [it for it in items if cap in (it.category or "")]
        if group:
            n, values = mean(group)
            out.append(Split(cap, "capability", n, values))
    for combo, group in _by(items, lambda it: (it.category or "").replace(",", "_") or None).items():
        n, values = mean(group)
        out.append(Split(combo, "capabilities", n, values))
    return out


@dataclass(frozen=True)
class Metric:
    """An official metric by name: its function, the value the summary shows, and its label."""

    splits: Callable[[Sequence[Item]], list[Split]]
    headline: str
    label: str


METRICS: dict[str, Metric] = {
    "accuracy": Metric(accuracy_splits, "accuracy", "accuracy"),
    "circular": Metric(circular_splits, "circular", "CircularEval accuracy"),
    "hallusion": Metric(hallusion_splits, "aAcc", "aAcc (fAcc, qAcc)"),
    "mmvet": Metric(mmvet_splits, "score", "GPT-style score (0-100)"),
}
