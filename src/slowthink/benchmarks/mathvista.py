"""MathVista (testmini / test) from the upstream ``testmini.json``.

The file is a JSON object keyed by ``pid``. Multiple-choice gold answers are option *text*
(``"145°"``): they are kept as given, with ``choices`` set and the letter in
``meta["answer_letter"]``. ``answer_type`` maps ``integer``/``float`` -> ``number``, ``list`` ->
``list``, ``text`` with choices -> ``choice`` (else ``text``); ``precision`` is the number of
decimals of a float answer.

Images (``images/<pid>.jpg``) are not in the upstream git repository: unpack ``images.zip`` from
the Hugging Face dataset ``AI4Math/MathVista`` next to ``testmini.json`` (or pass ``image_root``).
Without them, load text-only::

    load_benchmark("mathvista", allow_missing_images=True)   # keeps all 1000, no images
"""

from __future__ import annotations

from pathlib import Path

from slowthink.benchmarks.base import (
    BAD_CHOICES,
    MISSING_ANSWER,
    MISSING_QUESTION,
    Collector,
    SkipRow,
    normalize_answer_type,
    parse_precision,
    require,
    text_or_none,
)
from slowthink.benchmarks.choices import choice_answer
from slowthink.benchmarks.files import iter_json
from slowthink.benchmarks.images import ImageResolver, image_notes
from slowthink.types import Problem

DEFAULT_PATHS = ("mathvista/testmini.json",)
IMAGES_HINT = (
    "Download images.zip from the Hugging Face dataset AI4Math/MathVista and unpack it in {folder} "
    "(so that images/1.jpg is there), or pass image_root=FOLDER."
)
_META_KEYS = (
    "split",
    "language",
    "source",
    "category",
    "task",
    "context",
    "grade",
    "skills",
    "img_width",
    "img_height",
)


def load_mathvista(
    path: Path,
    col: Collector,
    *,
    image_root: str | Path | None = None,
    allow_missing_images: bool = False,
    text_only: bool = False,
    verify_images: bool = True,
) -> None:
    """Load MathVista records from ``path`` into ``col``.

    Args:
        image_root: folder the ``image`` fields (``images/1.jpg``) are relative to; default the
            folder of ``path``.
        allow_missing_images: keep a problem whose image is missing, without the image.
        text_only: attach no image at all.
        verify_images: open each image header with PIL; unreadable images skip the row.

    Example:
        >>> from slowthink.benchmarks import load_benchmark
        >>> r = load_benchmark("mathvista", allow_missing_images=True)  # doctest: +SKIP
        >>> r.problems[2].choices, r.problems[2].answer, r.problems[2].meta["answer_letter"]  # doctest: +SKIP
        (['135°', '140°', '145°', '150°'], '145°', 'C')
    """
    root = Path(image_root).expanduser() if image_root is not None else path.parent
    images = ImageResolver(
        root, verify=verify_images, text_only=text_only, allow_missing=allow_missing_images
    )
    col.add_all(iter_json(path), lambda key, rec: _problem(key, rec, images))
    image_notes("mathvista", col, images, IMAGES_HINT.format(folder=root))


def _problem(key: str | None, rec: dict, images: ImageResolver) -> Problem:
    pid = text_or_none(rec.get("pid")) or str(key)
    question = require(rec.get("question"), MISSING_QUESTION)
    answer = require(rec.get("answer"), MISSING_ANSWER)
    raw_type = text_or_none(rec.get("answer_type"))
    meta: dict = {"pid": pid, "question_type": rec.get("question_type"), "raw_answer_type": raw_type}
    meta["unit"] = text_or_none(rec.get("unit"))
    metadata = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
    for k in _META_KEYS:
        if k in metadata:
            meta[k] = metadata[k]
    if text_or_none(rec.get("query")):
        meta["query"] = rec["query"]

    choices = rec.get("choices")
    if choices is not None and (not isinstance(choices, list) or len(choices) < 2):
        raise SkipRow(BAD_CHOICES)
    if choices:
        choices = [str(c) for c in choices]
        answer, meta["answer_letter"] = choice_answer(answer, choices)
        answer_type = "choice"
    else:
        choices = None
        answer_type = normalize_answer_type(raw_type) or "auto"
        if answer_type == "choice":  # text answer declared multiple choice but no options
            answer_type = "text"

    paths = images.attach(rec.get("image"), meta)
    return Problem(
        id=pid,
        question=question,
        images=paths,
        choices=choices,
        answer=answer,
        answer_type=answer_type,
        precision=parse_precision(rec.get("precision")),
        meta=meta,
    )
