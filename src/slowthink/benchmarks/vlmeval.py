"""VLMEvalKit-style TSV files (MMStar, MMBench, ...): images embedded as base64.

Columns: ``index`` (id), ``question``, optional ``hint`` (prepended as ``Hint: ...``), option
columns ``A``, ``B``, ``C``, ... (trailing empty ones dropped), ``answer`` (a letter for
multiple choice), ``category`` and ``l2-category``/``l2_category`` (into ``meta``), ``image``
(base64; a short number instead refers to the row with that index, as in MMBench; a JSON list for
several images) or ``image_path`` (relative to the TSV's folder). A row with neither (a
meta-only TSV) takes the image VLMEvalKit itself extracted: ``images/<DATASET>/<index>.jpg`` next
to the TSV (its ``LMUData`` layout; ``<DATASET>`` is the file's stem, ``.png`` too); when that
folder exists, a row without its image there counts as image-missing. Images are
decoded once into ``image_dir`` (a new temp folder when not given), named by content hash.

Rows without option columns are parsed for an inline ``Options:`` block; rows with neither are
free-form (``answer_type`` and ``precision`` columns used when present).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slowthink.benchmarks.base import (
    BAD_CHOICES,
    IMAGE_MISSING,
    MISSING_ANSWER,
    MISSING_QUESTION,
    Collector,
    SkipRow,
    answer_text,
    guess_answer_type,
    normalize_answer_type,
    parse_precision,
    text_or_none,
)
from slowthink.benchmarks.choices import LETTERS, choice_answer, parse_inline_choices
from slowthink.benchmarks.files import iter_csv
from slowthink.benchmarks.images import ImageResolver, image_notes
from slowthink.types import Problem

DEFAULT_PATHS = ("mmstar/MMStar.tsv", "MMStar.tsv")
AI2D_PATHS = ("AI2D_TEST.tsv", "ai2d/AI2D_TEST.tsv", "AI2D/AI2D_TEST.tsv")
MMVET_PATHS = ("MMVet.tsv", "mmvet/MMVet.tsv", "MM-Vet/MMVet.tsv")
IMAGES_HINT = "Image paths are read relative to {folder}: pass image_root=FOLDER where they are."
_META_COLUMNS = (
    "category",
    "l2-category",
    "l2_category",
    "split",
    "source",
    "bench",
    "question_type",
    "subject",
    "set_id",  # HallusionBench's grouping ids, when a file has them as columns
    "figure_id",
    "question_id",
)


def load_vlmeval_tsv(
    path: Path,
    col: Collector,
    *,
    image_dir: str | Path | None = None,
    image_root: str | Path | None = None,
    allow_missing_images: bool = False,
    text_only: bool = False,
    verify_images: bool = True,
) -> None:
    """Load a VLMEvalKit TSV into ``col``.

    Args:
        image_dir: folder the decoded images are written to (reused across runs); default a new
            temp folder.
        image_root: folder ``image_path`` values are relative to; default the TSV's folder.
        allow_missing_images / text_only / verify_images: as for MathVista.

    Example:
        >>> r = load_benchmark("mmstar", "MMStar.tsv", image_dir="~/.cache/slowthink/mmstar")  # doctest: +SKIP
        >>> r.problems[0].choices, r.problems[0].answer, r.problems[0].meta["l2_category"]  # doctest: +SKIP
    """
    root = Path(image_root).expanduser() if image_root is not None else path.parent
    images = ImageResolver(
        root,
        cache_dir=image_dir,
        verify=verify_images,
        text_only=text_only,
        allow_missing=allow_missing_images,
    )
    rows = list(iter_csv(path, delimiter="\t"))
    by_index = {
        str(r.get("index")): r["image"]
        for _, r in rows
        if isinstance(r, dict) and r.get("image") and len(str(r["image"])) > 64
    }
    dumped: Path | None = root / "images" / path.stem  # where VLMEvalKit extracts a dataset's images
    if not dumped.is_dir():
        dumped = None
    col.add_all(rows, lambda key, rec: _problem(key, rec, images, by_index, dumped))
    image_notes(col.name, col, images, IMAGES_HINT.format(folder=root))


def extracted_image(dumped: Path, index: str | None) -> str | None:
    """VLMEvalKit's extracted image of row ``index`` (``dumped/<index>.jpg``, or ``.png``): the
    ``.jpg`` path when neither is there (the resolver then reports it missing)."""
    if not index:
        return None
    for ext in (".jpg", ".png", ".jpeg"):
        if (dumped / f"{index}{ext}").is_file():
            return str(dumped / f"{index}{ext}")
    return str(dumped / f"{index}.jpg")


def _images(
    rec: dict[str, Any], by_index: dict[str, str], images: ImageResolver, dumped: Path | None = None
) -> tuple[list[str], bool]:
    value = text_or_none(rec.get("image"))
    if value is None:  # no embedded image: a path column, else the image VLMEvalKit extracted
        path = text_or_none(rec.get("image_path"))
        if path is None and dumped is not None:
            path = extracted_image(dumped, text_or_none(rec.get("index")))
        return images.resolve(path)
    if len(value) <= 64 and value.isdigit():  # MMBench: a reference to another row's image
        if value not in by_index:
            raise SkipRow(IMAGE_MISSING)
        value = by_index[value]
    return images.resolve(value, encoded=True)


def _problem(
    key: str | None,
    rec: dict[str, Any],
    images: ImageResolver,
    by_index: dict[str, str],
    dumped: Path | None = None,
) -> Problem:
    pid = text_or_none(rec.get("index")) or text_or_none(rec.get("id")) or str(key)
    paths, missing = _images(rec, by_index, images, dumped)
    question = text_or_none(rec.get("question")) or ""
    if not question and not paths:
        raise SkipRow(MISSING_QUESTION)
    answer = answer_text(rec.get("answer"))
    if answer is None:
        raise SkipRow(MISSING_ANSWER)
    meta: dict[str, Any] = {}
    for c in _META_COLUMNS:
        if text_or_none(rec.get(c)) is not None:
            meta[c.replace("-", "_")] = rec[c]
    if missing:
        meta["image_missing"] = True

    values = [text_or_none(rec.get(c)) for c in LETTERS if c in rec]
    while values and values[-1] is None:
        values.pop()
    choices: list[str] | None = [str(v) for v in values] if values else None
    if choices is not None and (len(choices) < 2 or any(v is None for v in values)):
        raise SkipRow(BAD_CHOICES)
    if choices is None and question:
        stem, inline = parse_inline_choices(question)
        if inline:
            meta["raw_question"], question, choices = question, stem, inline
    hint = text_or_none(rec.get("hint"))
    if hint:
        meta["hint"] = hint
        question = f"Hint: {hint}\n{question}" if question else f"Hint: {hint}"

    if choices:
        answer, meta["answer_letter"] = choice_answer(answer, choices)
        answer_type = "choice"
    else:
        answer_type = normalize_answer_type(rec.get("answer_type")) or guess_answer_type(answer)
        if answer_type == "choice":
            answer_type = "text"
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
