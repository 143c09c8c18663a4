"""HallusionBench (VLMEvalKit's ``HallusionBench.tsv`` layout): Yes/No questions about figures.

Columns: ``index``, ``category`` (``VD`` visual dependent / ``VS`` visual supplement),
``l2-category`` (the subcategory: chart, table, map, ocr, illusion, math, figure, video),
``question``, ``answer`` (``Yes``/``No``), ``image`` (base64, or the index of the row holding it).
The ids the official metrics group by come from the index, as VLMEvalKit reads them:
``index.split("_")`` items 3, 4 and 5 are ``set_id``, ``figure_id`` and ``question_id``
(e.g. ``VD_figure_1_2_0_1``); ``set_id`` / ``figure_id`` / ``question_id`` columns, when the file
has them, win. A row with neither keeps None there: it then forms its own figure and question
group (a note in the load summary counts them).
"""

from __future__ import annotations

from pathlib import Path

from slowthink.benchmarks.base import Collector, text_or_none
from slowthink.benchmarks.vlmeval import load_vlmeval_tsv

DEFAULT_PATHS = (
    "HallusionBench.tsv",
    "hallusionbench/HallusionBench.tsv",
    "HallusionBench/HallusionBench.tsv",
)
GROUP_IDS = ("set_id", "figure_id", "question_id")


def index_ids(index: str) -> dict[str, str | None]:
    """``set_id`` / ``figure_id`` / ``question_id`` from a HallusionBench index (items 3-5 of its
    ``_`` parts, as VLMEvalKit's ``Hallusion_rating`` reads them); None when it has fewer parts.

    >>> index_ids("VD_figure_1_2_0_1")
    {'set_id': '2', 'figure_id': '0', 'question_id': '1'}
    >>> index_ids("17")["set_id"] is None
    True
    """
    parts = str(index).split("_")
    if len(parts) < 6:
        return dict.fromkeys(GROUP_IDS)
    return dict(zip(GROUP_IDS, parts[3:6]))


def load_hallusionbench(
    path: Path,
    col: Collector,
    *,
    image_dir: str | Path | None = None,
    image_root: str | Path | None = None,
    allow_missing_images: bool = False,
    text_only: bool = False,
    verify_images: bool = True,
) -> None:
    """Load HallusionBench.tsv into ``col``; options as :func:`~slowthink.benchmarks.vlmeval.load_vlmeval_tsv`."""
    load_vlmeval_tsv(
        path,
        col,
        image_dir=image_dir,
        image_root=image_root,
        allow_missing_images=allow_missing_images,
        text_only=text_only,
        verify_images=verify_images,
    )
    missing = 0
    for p in col.problems:
        ids = index_ids(p.id)
        for key in GROUP_IDS:  # a column of the file wins over the index
            given = text_or_none(p.meta.get(key))
            p.meta[key] = given if given is not None else ids[key]
        p.answer_type = "text"
        missing += any(p.meta[k] is None for k in GROUP_IDS)
    if missing:
        col.notes.append(f"{missing} row(s) without set/figure/question ids: each is its own fAcc/qAcc group")
