"""Any dataset in JSONL, JSON, CSV, TSV or parquet, with a field mapping: no code needed.

Example (Python, CLI-style strings, or YAML)::

    load_benchmark("jsonl", "my_set.jsonl", fields="question=problem,answer=solution",
                   answer_extract="boxed")
    load_benchmark("jsonl", "vqa.csv", fields={"question": "q", "answer": "a", "image": "img"},
                   image_root="/data/vqa")

    # eval.yaml
    benchmark: jsonl
    path: data/my_set.parquet
    fields: {question: problem, answer: answer, category: metadata.subject}
    answer_type: latex

Grading rules per row come from mapped fields (``answer_type=type`` with words such as
``float``/``multiple choice``/``free form``, ``precision=digits``, ``abs_tol=tol``,
``rel_tol=rtol``); ``abs_tol=``/``rel_tol=``/``precision=`` loader options (any benchmark, see
:func:`~slowthink.benchmarks.load_benchmark`) fill the rows that have none.

See :mod:`slowthink.benchmarks.fields` for the mapping syntax and the names guessed when a key is
left out. Multiple-choice rows: the gold may be a letter (``"B"``, ``"(B)"``) or an option text
(kept as given; the letter goes to ``meta["answer_letter"]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from slowthink.benchmarks.base import (
    BAD_CHOICES,
    MISSING_ANSWER,
    MISSING_QUESTION,
    Collector,
    SkipRow,
    answer_text,
    get_path,
    guess_answer_type,
    last_boxed,
    normalize_answer_type,
    parse_precision,
    parse_tolerance,
    text_or_none,
)
from slowthink.benchmarks.choices import LETTERS, choice_answer, split_marked_options
from slowthink.benchmarks.fields import FieldMap
from slowthink.benchmarks.files import detect_format, read_records
from slowthink.benchmarks.gsm8k import final_answer
from slowthink.benchmarks.images import ImageResolver, image_notes
from slowthink.types import ANSWER_TYPES, Problem, SlowthinkError

ANSWER_EXTRACT = ("none", "boxed", "####")
IMAGES_HINT = "Image paths are read relative to {folder}: pass image_root=FOLDER where they are."
_SAMPLE_ROWS = 200


def load_generic(
    path: Path,
    col: Collector,
    *,
    fields: FieldMap | Mapping[str, Any] | str | Path | None = None,
    format: str | None = None,
    answer_type: str | None = None,
    answer_extract: Literal["none", "boxed", "####"] = "none",
    require_answer: bool = True,
    image_root: str | Path | None = None,
    image_dir: str | Path | None = None,
    allow_missing_images: bool = False,
    text_only: bool = False,
    verify_images: bool = True,
) -> None:
    """Load any local dataset into ``col`` through a field mapping.

    Args:
        fields: the field mapping (``"question=q,answer=a"``, a dict, or a YAML file).
        format: ``jsonl``, ``json``, ``csv``, ``tsv`` or ``parquet``; default from the suffix.
        answer_type: one answer type for every row (``number``, ``choice``, ``latex``, ...); default
            the mapped ``answer_type`` field, else ``choice`` with choices, else guessed.
        answer_extract: take the gold answer from a worked solution: ``boxed`` (last
            ``\\boxed{}``) or ``####`` (GSM8K style); ``none`` uses the field as is.
        require_answer: skip rows without a gold answer (False for unlabeled data).
        image_root: folder image paths are relative to; default the data file's folder.
        image_dir: where embedded (base64 / bytes) images are written; default a temp folder.
        allow_missing_images / text_only / verify_images: as for MathVista.

    Example:
        >>> import json, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "x.jsonl").write_text(json.dumps({"problem": "2+2?", "solution": "4"}) + "\\n")
        >>> from slowthink.benchmarks import load_benchmark
        >>> r = load_benchmark("jsonl", d / "x.jsonl", fields="question=problem,answer=solution")
        >>> r.problems[0].question, r.problems[0].answer, r.problems[0].answer_type
        ('2+2?', '4', 'number')
    """
    fmt = detect_format(path, format)
    if answer_extract not in ANSWER_EXTRACT:
        raise SlowthinkError(
            f"answer_extract must be one of {', '.join(ANSWER_EXTRACT)}, got {answer_extract!r}"
        )
    fixed_type = None
    if answer_type is not None:
        fixed_type = normalize_answer_type(answer_type)
        if fixed_type is None:
            raise SlowthinkError(f"answer_type must be one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}")
    records = list(read_records(path, fmt))
    sample = [r for _, r in records[:_SAMPLE_ROWS] if isinstance(r, dict)]
    available = {k for r in sample for k in r}
    fm = FieldMap.parse(fields).resolve(
        available, where=f"{col.name} ({path})", require_answer=require_answer
    )
    root = Path(image_root).expanduser() if image_root is not None else path.parent
    images = ImageResolver(
        root,
        cache_dir=image_dir,
        verify=verify_images,
        text_only=text_only,
        allow_missing=allow_missing_images,
    )
    row = _RowReader(fm, images, fixed_type, answer_extract, require_answer, path.stem)
    col.add_all(records, row)
    image_notes(col.name, col, images, IMAGES_HINT.format(folder=root))


class _RowReader:
    """Turns one record into a Problem under a resolved field mapping."""

    def __init__(
        self,
        fm: FieldMap,
        images: ImageResolver,
        fixed_type: str | None,
        answer_extract: str,
        require_answer: bool,
        stem: str,
    ) -> None:
        self.fm = fm
        self.images = images
        self.fixed_type = fixed_type
        self.answer_extract = answer_extract
        self.require_answer = require_answer
        self.stem = stem

    def __call__(self, key: str | None, rec: dict[str, Any]) -> Problem:
        fm = self.fm
        paths, missing = self.images.resolve(get_path(rec, fm.image)) if fm.image else ([], False)
        question = text_or_none(get_path(rec, fm.question)) if fm.question else None
        if question is None and not paths:
            raise SkipRow(MISSING_QUESTION)
        answer = self._answer(rec)
        choices = self._choices(rec)
        meta: dict[str, Any] = {k: get_path(rec, src) for k, src in fm.meta.items()}
        if missing:
            meta["image_missing"] = True
        if fm.category:
            meta["category"] = text_or_none(get_path(rec, fm.category))
        answer_type = self.fixed_type or (
            normalize_answer_type(get_path(rec, fm.answer_type)) if fm.answer_type else None
        )
        if answer_type is None or (choices and answer_type == "auto"):  # "free form" with options
            answer_type = "choice" if choices else guess_answer_type(answer)
        if choices and answer is not None and answer_type == "choice":
            answer, meta["answer_letter"] = choice_answer(answer, choices)
        pid = text_or_none(get_path(rec, fm.id)) if fm.id else None
        return Problem(
            id=pid or f"{self.stem}-{key}",
            question=question or "",
            images=paths,
            choices=choices,
            answer=answer,
            answer_type=answer_type,
            precision=parse_precision(get_path(rec, fm.precision)) if fm.precision else None,
            meta=meta,
            abs_tol=parse_tolerance(get_path(rec, fm.abs_tol), "abs_tol") if fm.abs_tol else None,
            rel_tol=parse_tolerance(get_path(rec, fm.rel_tol), "rel_tol") if fm.rel_tol else None,
        )

    def _answer(self, rec: dict[str, Any]) -> str | None:
        answer = answer_text(get_path(rec, self.fm.answer)) if self.fm.answer else None
        if answer is not None and self.answer_extract == "boxed":
            answer = last_boxed(answer)
        elif answer is not None and self.answer_extract == "####":
            answer = final_answer(answer)
        if answer is None and self.require_answer:
            raise SkipRow(MISSING_ANSWER)
        return answer

    def _choices(self, rec: dict[str, Any]) -> list[str] | None:
        spec = self.fm.choices
        if spec is None:
            return None
        if isinstance(spec, list):
            values = [text_or_none(get_path(rec, c)) for c in spec]
            while values and values[-1] is None:  # 2-option rows leave trailing columns empty
                values.pop()
            if any(v is None for v in values):
                raise SkipRow(BAD_CHOICES)
            return _checked([str(v) for v in values])
        return parse_choices(get_path(rec, spec))


def _checked(values: list[str]) -> list[str] | None:
    if not values:
        return None
    if len(values) < 2 or len(values) > len(LETTERS):
        raise SkipRow(BAD_CHOICES)
    return values


def parse_choices(value: Any) -> list[str] | None:
    """Option texts from a cell: a list, a JSON list string, a ``{"A": ..., "B": ...}`` dict, one
    string with letter markers (``A. x;B. y``, ``(A) 12 (B) 15``, one ``A. x`` per line; see
    :func:`~slowthink.benchmarks.choices.split_marked_options`), or one option per line.

    >>> parse_choices('["1", "2"]'), parse_choices({"B": "y", "A": "x"}), parse_choices("x\\ny"), parse_choices(None)
    (['1', '2'], ['x', 'y'], ['x', 'y'], None)
    >>> parse_choices("A. 300, 400;B. 400, 300"), parse_choices("(A) 12 (B) 15 (C) 18")
    (['300, 400', '400, 300'], ['12', '15', '18'])
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, Mapping):
        return _checked([str(value[k]) for k in sorted(value, key=str)])
    if isinstance(value, (list, tuple)):
        return _checked([str(v) for v in value])
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except json.JSONDecodeError:
                raise SkipRow(BAD_CHOICES) from None
            return parse_choices(parsed) if isinstance(parsed, list) else None
        marked = split_marked_options(s)
        if marked is not None:
            return _checked(marked)
        lines = [ln.strip() for ln in s.splitlines() if ln.strip()]
        if len(lines) >= 2:
            return _checked(lines)
    raise SkipRow(BAD_CHOICES)
