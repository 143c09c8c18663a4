"""GSM8K from the upstream ``test.jsonl`` / ``train.jsonl``.

The gold answer is the text after ``####`` on the solution's last line, commas stripped
(``"1,000"`` -> ``"1000"``); ``answer_type`` is ``number``. Ids are ``gsm8k-<split>-<line>``
(0-based line index), the split taken from the file name unless given. The worked solution (with
its ``<<expr=result>>`` calculator notes) is in ``meta["solution"]``.
"""

from __future__ import annotations

from pathlib import Path

from slowthink.benchmarks.base import (
    MISSING_ANSWER,
    MISSING_QUESTION,
    Collector,
    SkipRow,
    require,
)
from slowthink.benchmarks.files import iter_jsonl
from slowthink.types import Problem

DEFAULT_PATHS = ("gsm8k/{split}.jsonl",)


def final_answer(solution: str) -> str | None:
    """The number after the last ``####`` of a GSM8K solution, commas and spaces stripped.

    >>> final_answer("She pays 2*500 = <<2*500=1000>>1000.\\n#### 1,000")
    '1000'
    >>> final_answer("no marker") is None
    True
    """
    if "####" not in solution:
        return None
    ans = solution.rsplit("####", 1)[1].strip().replace(",", "").replace(" ", "")
    return ans or None


def load_gsm8k(path: Path, col: Collector, *, split: str | None = None) -> None:
    """Load GSM8K records from ``path`` into ``col``.

    Args:
        split: name used in ids and for the default file (``test`` or ``train``); default the
            file's stem.

    Example:
        >>> r = load_benchmark("gsm8k")  # doctest: +SKIP
        >>> r.problems[0].id, r.problems[0].answer, len(r)  # doctest: +SKIP
        ('gsm8k-test-0', '18', 1319)
    """
    split = split or path.stem
    for key, rec in iter_jsonl(path):
        if col.full:
            break
        with col.row():
            if isinstance(rec, SkipRow):
                raise rec
            question = require(rec.get("question"), MISSING_QUESTION)
            solution = require(rec.get("answer"), MISSING_ANSWER)
            answer = final_answer(solution)
            if answer is None:
                raise SkipRow(MISSING_ANSWER)
            col.add(
                Problem(
                    id=f"gsm8k-{split}-{key}",
                    question=question,
                    answer=answer,
                    answer_type="number",
                    meta={"split": split, "solution": solution, "category": "gsm8k"},
                )
            )
