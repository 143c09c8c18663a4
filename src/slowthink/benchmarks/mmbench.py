"""MMBench (VLMEvalKit's ``MMBench_DEV_EN.tsv`` layout) with its CircularEval copies.

The TSV is read by :func:`~slowthink.benchmarks.vlmeval.load_vlmeval_tsv` (columns ``index``,
``question``, ``hint``, ``A``-``D``, ``answer``, ``category``, ``l2-category``, ``split``, ``image``:
base64, or for a copy the ``index`` of the row holding the picture). CircularEval asks every
question once per rotation of its options; the question counts only when all are answered right.

* **copies in the file** (VLMEvalKit's MMBench DEV/TEST TSVs): a copy's ``index`` is the
  original's plus ``k * 1e6``; the group of a row is ``index % 1e6`` (``meta["g_index"]``).
* **originals only**: the copies are made as VLMEvalKit's ``CIRCULAR`` tool (``vlmeval/tools.py``)
  makes them: for a question with ``k`` options, rotation ``i`` (1 <= i < k) moves each option to
  the letter ``deque("AB..")`` rotated ``i`` times puts beside it (:func:`rotation_maps`; with four
  options, rotation 1 moves A->D, B->A, C->B, D->C), its ``index`` is the original's plus
  ``i * OFFSET`` (``OFFSET`` 1e6, times 10 while an index reaches it), and the answer letter moves
  with its option. "Abnormal" questions are not rotated (one copy): an option text that is itself
  an option letter, an option naming two or more option letters, or an answer that is not one of
  the letters. A note in the load summary says the copies were generated.

``limit`` counts questions (circular groups), each with all its copies. ``circular=off`` loads the
rows as they are (each its own group).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace
from pathlib import Path

from slowthink.benchmarks.base import Collector
from slowthink.benchmarks.choices import LETTERS
from slowthink.benchmarks.vlmeval import load_vlmeval_tsv
from slowthink.types import Problem, SlowthinkError

DEFAULT_PATHS = (
    "MMBench_DEV_EN.tsv",
    "mmbench/MMBench_DEV_EN.tsv",
    "MMBench_DEV_EN_V11.tsv",
    "mmbench/MMBench_DEV_EN_V11.tsv",
)
CIRCULAR_OFFSET = 1_000_000
"""VLMEvalKit's offset between a question's index and its copies' (``1e6``)."""
CIRCULAR_MODES = ("auto", "off")


def rotation_maps(k: int) -> list[dict[str, str]]:
    """For each rotation of ``k`` options, old letter -> new letter (rotation 0 is the identity),
    as VLMEvalKit's ``CIRCULAR`` tool builds them.

    >>> rotation_maps(4)[1], rotation_maps(4)[3]
    ({'A': 'D', 'B': 'A', 'C': 'B', 'D': 'C'}, {'A': 'B', 'B': 'C', 'C': 'D', 'D': 'A'})
    >>> len(rotation_maps(2)), rotation_maps(2)[1]
    (2, {'A': 'B', 'B': 'A'})
    """
    labels = list(LETTERS[:k])
    dq = deque(labels)
    maps = [dict(zip(labels, labels))]
    for _ in range(k - 1):
        dq.rotate(1)
        maps.append(dict(zip(labels, dq)))
    return maps


def rotate(problem: Problem, i: int, offset: int) -> Problem:
    """Copy ``i`` of a multiple-choice problem: options moved by :func:`rotation_maps`, the answer
    letter with them, ``id`` = original index + ``i * offset``.

    >>> p = Problem("7", "q", choices=["cat", "dog", "cow"], answer="B", answer_type="choice")
    >>> r = rotate(p, 1, 1_000_000)
    >>> r.id, r.choices, r.answer
    ('1000007', ['dog', 'cow', 'cat'], 'A')
    """
    choices = problem.choices or []
    cmap = rotation_maps(len(choices))[i]
    new = [""] * len(choices)
    for old, letter in cmap.items():
        new[LETTERS.index(letter)] = choices[LETTERS.index(old)]
    answer = cmap[str(problem.meta.get("answer_letter") or problem.answer)]
    meta = {**problem.meta, "answer_letter": answer, "g_index": problem.id, "circular": i}
    return replace(problem, id=str(int(problem.id) + i * offset), choices=new, answer=answer, meta=meta)


_NON_LETTER = re.compile(r"[^A-Za-z ]")


def is_abnormal(problem: Problem) -> bool:
    """A question VLMEvalKit's ``CIRCULAR`` tool leaves unrotated (see the module docstring).

    >>> is_abnormal(Problem("1", "q", choices=["A", "B"], answer="A"))
    True
    >>> is_abnormal(Problem("1", "q", choices=["both A and B", "none"], answer="A"))
    True
    >>> is_abnormal(Problem("1", "q", choices=["a cat", "B dog"], answer="B"))
    False
    """
    choices = problem.choices or []
    letters = set(LETTERS[: len(choices)])
    if len(choices) < 2:
        return True
    for text in choices:
        if len({w for w in _NON_LETTER.sub(" ", text).split() if w in letters}) > 1 or text in LETTERS:
            return True
    answer = str(problem.meta.get("answer_letter") or problem.answer or "")
    return answer not in letters


def circular_offset(ids: list[int]) -> int:
    """VLMEvalKit's offset for generated copies: 1e6, times 10 while an index reaches it.

    >>> circular_offset([3, 999_999]), circular_offset([1_500_000])
    (1000000, 10000000)
    """
    offset = CIRCULAR_OFFSET
    while ids and max(ids) >= offset:
        offset *= 10
    return offset


def _as_int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"\d+", text) else None


def circular_groups(problems: list[Problem]) -> tuple[list[list[Problem]], str]:
    """Problems in circular groups (original first), and a note on how the groups were made."""
    ints = [_as_int(p.id) for p in problems]
    if any(i is None for i in ints):
        for p in problems:
            p.meta["g_index"] = p.id
        return [[p] for p in problems], "circular: indexes are not whole numbers, so no CircularEval groups"
    if any(i >= CIRCULAR_OFFSET for i in ints if i is not None):
        groups: dict[int, list[Problem]] = {}
        for p, i in zip(problems, ints):
            g = (i or 0) % CIRCULAR_OFFSET
            p.meta["g_index"] = str(g)
            groups.setdefault(g, []).append(p)
        ordered = [sorted(g, key=lambda p: int(p.id)) for g in groups.values()]
        return ordered, "circular: copies read from the file (group = index % 1e6)"
    offset = circular_offset([i for i in ints if i is not None])
    out = []
    for p in problems:
        p.meta["g_index"], p.meta["circular"] = p.id, 0
        if not p.choices or is_abnormal(p):
            out.append([p])
        else:
            out.append([p] + [rotate(p, i, offset) for i in range(1, len(p.choices))])
    return out, f"circular: copies generated as VLMEvalKit's CIRCULAR tool does (offset {offset})"


def load_mmbench(
    path: Path,
    col: Collector,
    *,
    circular: str = "auto",
    image_dir: str | Path | None = None,
    image_root: str | Path | None = None,
    allow_missing_images: bool = False,
    text_only: bool = False,
    verify_images: bool = True,
) -> None:
    """Load an MMBench TSV into ``col`` with its circular copies (``circular=auto``) or as is
    (``circular=off``); other options as :func:`~slowthink.benchmarks.vlmeval.load_vlmeval_tsv`."""
    if circular not in CIRCULAR_MODES:
        raise SlowthinkError(
            f"mmbench: circular must be one of {', '.join(CIRCULAR_MODES)}, got {circular!r}"
        )
    rows = Collector(col.name)  # every row: the limit counts questions, not rows
    load_vlmeval_tsv(
        path,
        rows,
        image_dir=image_dir,
        image_root=image_root,
        allow_missing_images=allow_missing_images,
        text_only=text_only,
        verify_images=verify_images,
    )
    col.skipped.update(rows.skipped)
    col.notes.extend(rows.notes)
    if circular == "off":
        groups, note = [[p] for p in rows.problems], "circular: off"
        for p in rows.problems:
            p.meta["g_index"] = p.id
    else:
        groups, note = circular_groups(rows.problems)
    col.notes.append(note)
    for n, group in enumerate(groups):
        if col.limit is not None and n >= col.limit:
            break
        for p in group:
            with col.row():
                col.add(p)
