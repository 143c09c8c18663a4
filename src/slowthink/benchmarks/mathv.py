"""MATH-Vision (MATH-V) from the upstream ``testmini.jsonl`` / ``test.jsonl``.

Each record has one image, ``images/<id>.jpg`` relative to the jsonl's folder; it must exist.
When ``options`` are only the letters ``A``-``E`` (also written ``(A)`` or ``A)``) the options
are drawn in the image: ``choices`` becomes ``["A", ..., "E"]`` and
``meta["choices_in_image"] = True``. Otherwise ``choices`` are the option texts. Gold answers of
multiple-choice questions are letters; free-form answers are numbers or short LaTeX.

Questions mark where upstream pasted sub-figures with ``<image1>``, ``<image2>``...; all of them
are drawn in the single image file. With ``placeholders="strip"`` (default) a placeholder on a
line of its own is removed and one inside a sentence becomes ``[image N]``; ``"keep"`` keeps the
text as given. ``meta`` holds ``subject`` (= ``category``), ``level`` (1-5) and ``solution``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from slowthink.benchmarks.base import (
    ANSWER_NOT_IN_CHOICES,
    BAD_CHOICES,
    MISSING_ANSWER,
    MISSING_QUESTION,
    Collector,
    SkipRow,
    guess_answer_type,
    require,
    text_or_none,
)
from slowthink.benchmarks.choices import LETTERS, as_letter, letter_options
from slowthink.benchmarks.files import iter_jsonl
from slowthink.benchmarks.images import ImageResolver, image_notes
from slowthink.types import Problem, SlowthinkError

DEFAULT_PATHS = ("math-v/testmini.jsonl", "math-v/test.jsonl", "MATH-V/testmini.jsonl")
IMAGES_HINT = (
    "Put the MATH-V images folder (images/<id>.jpg, from the MATH-V repository) next to the jsonl in "
    "{folder}, or pass image_root=FOLDER."
)
_PLACEHOLDER_RE = re.compile(r"<image(\d+)>")
_LINE_PLACEHOLDERS_RE = re.compile(r"^[ \t]*(?:<image\d+>[ \t]*)+$", re.MULTILINE)


def strip_placeholders(question: str) -> str:
    """Drop ``<imageN>`` lines; turn an inline ``<imageN>`` into ``[image N]``.

    >>> strip_placeholders("How many digits?\\n<image1>")
    'How many digits?'
    >>> strip_placeholders("Which side is opposite to <image3>?\\n<image4>")
    'Which side is opposite to [image 3]?'
    """
    text = _LINE_PLACEHOLDERS_RE.sub("", question)
    text = _PLACEHOLDER_RE.sub(lambda m: f"[image {m.group(1)}]", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_mathv(
    path: Path,
    col: Collector,
    *,
    image_root: str | Path | None = None,
    placeholders: Literal["strip", "keep"] = "strip",
    allow_missing_images: bool = False,
    text_only: bool = False,
    verify_images: bool = True,
) -> None:
    """Load MATH-V records from ``path`` into ``col``.

    Args:
        image_root: folder the ``image`` fields are relative to; default the jsonl's folder.
        placeholders: ``strip`` or ``keep`` the ``<imageN>`` marks in the question.
        allow_missing_images / text_only / verify_images: as for MathVista.

    Example:
        >>> r = load_benchmark("math-v")  # doctest: +SKIP
        >>> p = r.problems[2]; p.choices, p.answer, p.meta["subject"], p.meta["level"]  # doctest: +SKIP
        (['A', 'B', 'C', 'D', 'E'], 'D', 'logic', 3)
    """
    if placeholders not in ("strip", "keep"):
        raise SlowthinkError(f"math-v: placeholders must be 'strip' or 'keep', got {placeholders!r}")
    root = Path(image_root).expanduser() if image_root is not None else path.parent
    images = ImageResolver(
        root, verify=verify_images, text_only=text_only, allow_missing=allow_missing_images
    )
    col.add_all(iter_jsonl(path), lambda key, rec: _problem(key, rec, images, placeholders))
    image_notes("math-v", col, images, IMAGES_HINT.format(folder=root))


def _problem(key: str | None, rec: dict, images: ImageResolver, placeholders: str) -> Problem:
    pid = text_or_none(rec.get("id")) or str(key)
    raw_question = require(rec.get("question"), MISSING_QUESTION)
    answer = require(rec.get("answer"), MISSING_ANSWER)
    options = rec.get("options") or []
    if not isinstance(options, list):
        raise SkipRow(BAD_CHOICES)
    meta: dict = {
        "subject": rec.get("subject"),
        "category": rec.get("subject"),
        "level": rec.get("level"),
        "solution": rec.get("solution"),
        "image_placeholders": len(_PLACEHOLDER_RE.findall(raw_question)),
    }
    question = strip_placeholders(raw_question) if placeholders == "strip" else raw_question
    if question != raw_question:
        meta["raw_question"] = raw_question
    choices: list[str] | None = None
    if options:
        options = [str(o) for o in options]
        if len(options) < 2 or len(options) > len(LETTERS):
            raise SkipRow(BAD_CHOICES)
        if letter_options(options):
            choices = list(LETTERS[: len(options)])
            meta["choices_in_image"] = True
        else:
            choices = options
        letter = as_letter(answer, len(choices))
        if letter is None:
            raise SkipRow(ANSWER_NOT_IN_CHOICES)
        answer, answer_type = letter, "choice"
    else:
        answer_type = guess_answer_type(answer)
    paths = images.attach(rec.get("image"), meta)
    return Problem(
        id=pid,
        question=question,
        images=paths,
        choices=choices,
        answer=answer,
        answer_type=answer_type,
        meta=meta,
    )
