"""MathVerse (testmini), any of its problem versions.

Upstream ships ``testmini.json`` (all six versions: Text Dominant, Text Lite, Text Only, Vision
Intensive, Vision Dominant, Vision Only; images under ``images/``) and
``testmini_text_only.json`` (Text Only, no image). Multiple-choice questions carry their options
inline after ``Choices:``; they are parsed into ``choices`` and cut from the question text (the
original stays in ``meta["raw_question"]``). Gold answers are letters (``"(C)"`` and option texts
are turned into letters; a two-letter gold such as ``"C\nD"`` becomes ``"C, D"`` with
``answer_type="list"``). ``meta`` holds
``problem_version``, ``subject``, ``subfield``, ``source`` and ``problem_index``;
``meta["category"]`` is the subject (pass ``category_by="problem_version"`` to group by version).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from slowthink.benchmarks.base import (
    MISSING_ANSWER,
    MISSING_QUESTION,
    Collector,
    SkipRow,
    guess_answer_type,
    require,
    text_or_none,
)
from slowthink.benchmarks.choices import as_letter, choice_answer, match_choice, parse_inline_choices
from slowthink.benchmarks.files import iter_json
from slowthink.benchmarks.images import ImageResolver, image_notes
from slowthink.types import Problem, SlowthinkError

DEFAULT_PATHS = ("mathverse/testmini.json", "mathverse/testmini_text_only.json")
VERSIONS = ("Text Dominant", "Text Lite", "Text Only", "Vision Intensive", "Vision Dominant", "Vision Only")
IMAGES_HINT = (
    "Download images.zip from the Hugging Face dataset AI4Math/MathVerse and unpack it in {folder} "
    "(so that images/ is there), or pass image_root=FOLDER."
)

_MULTI_SPLIT_RE = re.compile(r"[\s,;]+|\band\b")


def _letters(answer: str, n: int) -> list[str] | None:
    """``["C", "D"]`` for ``"C\\nD"`` / ``"C, D"`` (two or more distinct option letters)."""
    parts = [p for p in _MULTI_SPLIT_RE.split(answer) if p]
    letters = [as_letter(p, n) for p in parts]
    if len(letters) >= 2 and all(letters) and len(set(letters)) == len(letters):
        return [str(x) for x in letters]
    return None


def load_mathverse(
    path: Path,
    col: Collector,
    *,
    versions: str | Sequence[str] | None = None,
    image_root: str | Path | None = None,
    allow_missing_images: bool = False,
    text_only: bool = False,
    verify_images: bool = True,
) -> None:
    """Load MathVerse records from ``path`` into ``col``.

    Args:
        versions: keep only these problem versions (a list, or a comma-separated string such as
            ``"Text Only,Vision Only"``); default all in the file.
        image_root: folder the ``image`` fields are relative to; default the folder of ``path``.
        allow_missing_images / text_only / verify_images: as for MathVista.

    Example:
        >>> r = load_benchmark("mathverse")  # doctest: +SKIP
        >>> p = r.problems[0]; p.question[-32:], p.choices, p.answer  # doctest: +SKIP
        ('then the size of angle CED is ()', ['40°', '60°', '120°', '140°'], 'D')
    """
    wanted = _versions(versions)
    root = Path(image_root).expanduser() if image_root is not None else path.parent
    images = ImageResolver(
        root, verify=verify_images, text_only=text_only, allow_missing=allow_missing_images
    )
    filtered = 0
    for key, rec in iter_json(path):
        if col.full:
            break
        with col.row():
            if isinstance(rec, SkipRow):
                raise rec
            if wanted is not None and rec.get("problem_version") not in wanted:
                filtered += 1
                continue
            col.add(_problem(key, rec, images))
    if filtered:
        col.notes.append(f"{filtered} records of other problem versions left out")
    image_notes("mathverse", col, images, IMAGES_HINT.format(folder=root))


def _versions(versions: str | Sequence[str] | None) -> set[str] | None:
    if versions is None:
        return None
    names = [v.strip() for v in versions.split(",")] if isinstance(versions, str) else list(versions)
    by_lower = {v.lower(): v for v in VERSIONS}
    out = set()
    for v in names:
        if v.lower() not in by_lower:
            raise SlowthinkError(
                f"mathverse: unknown problem version '{v}': choose from {', '.join(VERSIONS)}"
            )
        out.add(by_lower[v.lower()])
    return out


def _problem(key: str | None, rec: dict, images: ImageResolver) -> Problem:
    sid = text_or_none(rec.get("sample_index")) or str(key)
    raw_question = text_or_none(rec.get("question")) or ""
    answer = require(rec.get("answer"), MISSING_ANSWER)
    paths, missing = images.resolve(rec.get("image"))
    if not raw_question and not paths:
        raise SkipRow(MISSING_QUESTION)
    metadata = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
    meta: dict = {
        "sample_index": sid,
        "problem_index": text_or_none(rec.get("problem_index")),
        "problem_version": rec.get("problem_version"),
        "question_type": rec.get("question_type"),
        "subject": metadata.get("subject"),
        "subfield": metadata.get("subfield"),
        "source": metadata.get("source"),
        "split": metadata.get("split"),
        "category": metadata.get("subject"),
    }
    if missing:
        meta["image_missing"] = True
    for k in ("query_wo", "query_cot"):
        if text_or_none(rec.get(k)):
            meta[k] = rec[k]

    question, choices = raw_question, None
    is_mc = str(rec.get("question_type", "")).lower().startswith("multi")
    if is_mc:
        question, choices = parse_inline_choices(raw_question)
        if question != raw_question:
            meta["raw_question"] = raw_question
    if choices:
        multi = _letters(answer, len(choices))
        if multi and match_choice(answer, choices) is None:
            answer, answer_type = ", ".join(multi), "list"
            meta["multiple_answers"] = True
            meta["answer_letter"] = multi
        else:  # MathVerse grades letters: an option-text gold becomes its letter
            _, letter = choice_answer(answer, choices)
            if letter != answer:
                meta["raw_answer"] = answer
            answer = meta["answer_letter"] = letter
            answer_type = "choice"
    elif is_mc and as_letter(answer) is not None:  # options drawn in the figure (vision versions)
        answer, answer_type = str(as_letter(answer)), "choice"
        meta["choices_in_image"] = True
    else:
        answer_type = guess_answer_type(answer)
    return Problem(
        id=sid,
        question=question,
        images=paths,
        choices=choices,
        answer=answer,
        answer_type=answer_type,
        meta=meta,
    )
