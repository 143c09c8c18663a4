"""What every loader shares: the result type, skip reasons, and small answer helpers.

A loader turns rows of a local file into :class:`~slowthink.types.Problem` objects. A bad row
(missing field, bad JSON line, unreadable image, ...) never stops a load: it is counted in
:attr:`LoadResult.skipped` under one of the reasons below.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from slowthink.types import Problem, SlowthinkError

# Skip reasons (the keys of ``LoadResult.skipped``); a closed vocabulary so reports can group them.
BAD_JSON_LINE = "bad JSON line"
BAD_CSV_ROW = "bad CSV row"
NOT_AN_OBJECT = "not a JSON object"
MISSING_QUESTION = "missing question"
MISSING_ANSWER = "missing answer"
IMAGE_MISSING = "image missing"
IMAGE_UNREADABLE = "image unreadable"
BAD_IMAGE_DATA = "bad image data"
BAD_CHOICES = "bad choices"
ANSWER_NOT_IN_CHOICES = "answer not in choices"
BAD_TOLERANCE = "bad tolerance"
DUPLICATE_ID = "duplicate id"
MALFORMED_RECORD = "malformed record"

SKIP_REASONS: tuple[str, ...] = (
    BAD_JSON_LINE,
    BAD_CSV_ROW,
    NOT_AN_OBJECT,
    MISSING_QUESTION,
    MISSING_ANSWER,
    IMAGE_MISSING,
    IMAGE_UNREADABLE,
    BAD_IMAGE_DATA,
    BAD_CHOICES,
    ANSWER_NOT_IN_CHOICES,
    BAD_TOLERANCE,
    DUPLICATE_ID,
    MALFORMED_RECORD,
)

# Answer-type names found in benchmark files -> slowthink answer types. Keys are lower case with
# spaces and dashes as underscores ("Multiple Choice", "multi-choice" -> "multiple_choice").
ANSWER_TYPE_ALIASES: dict[str, str] = {
    "auto": "auto",
    "number": "number",
    "numeric": "number",
    "numerical": "number",
    "integer": "number",
    "int": "number",
    "float": "number",
    "decimal": "number",
    "real": "number",
    "choice": "choice",
    "multi_choice": "choice",
    "multichoice": "choice",
    "multiple_choice": "choice",
    "multiple_choices": "choice",
    "mc": "choice",
    "mcq": "choice",
    "text": "text",
    "str": "text",
    "string": "text",
    "yes_no": "text",
    "bool": "text",
    "boolean": "text",
    "latex": "latex",
    "math": "latex",
    "expression": "latex",
    "formula": "latex",
    "list": "list",
    "free_form": "auto",
    "freeform": "auto",
    "open": "auto",
    "open_ended": "auto",
    "short_answer": "auto",
}

_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class SkipRow(Exception):
    """Raised inside a loader to skip the current row; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class LoadResult:
    """The problems a loader produced and the rows it skipped.

    ``skipped`` maps a reason (see :data:`SKIP_REASONS`) to how many rows were skipped for it;
    ``notes`` holds remarks such as "text-only: 1000 images missing".

    Example:
        >>> from slowthink.types import Problem
        >>> r = LoadResult([Problem("1", "1+1?", answer="2")], Counter({"bad JSON line": 2}), name="demo")
        >>> r.summary()
        'demo: 1 problem; skipped 2 (bad JSON line: 2)'
    """

    problems: list[Problem] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    name: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def by_category(self) -> Counter[str]:
        """How many problems each ``meta["category"]`` has."""
        return Counter(str(p.meta.get("category")) for p in self.problems)

    def summary(self) -> str:
        """One line: name, count, source, skip reasons, notes."""
        n = len(self.problems)
        head = f"{self.name}: {n} problem{'s' if n != 1 else ''}"
        if self.source:
            head += f" from {self.source}"
        if self.skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in self.skipped.most_common())
            head += f"; skipped {self.n_skipped} ({reasons})"
        else:
            head += "; skipped 0"
        if self.notes:
            head += "; " + "; ".join(self.notes)
        return head


class Collector:
    """Accumulates problems and skip counts for one load, and stops at ``limit``.

    Loaders write ``with col.row(): ...`` around the handling of one row: a :class:`SkipRow`
    (or a data error such as a ``KeyError`` on a malformed record) inside the block is counted,
    never raised.
    """

    def __init__(self, name: str, limit: int | None = None) -> None:
        self.name = name
        self.limit = limit
        self.problems: list[Problem] = []
        self.skipped: Counter[str] = Counter()
        self.notes: list[str] = []
        self._ids: set[str] = set()

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.problems) >= self.limit

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def add(self, problem: Problem) -> None:
        if problem.id in self._ids:
            raise SkipRow(DUPLICATE_ID)
        problem.meta.setdefault("benchmark", self.name)
        problem.meta.setdefault("category", self.name)
        if problem.meta["category"] is None or problem.meta["category"] == "":
            problem.meta["category"] = self.name
        self._ids.add(problem.id)
        self.problems.append(problem)

    @contextmanager
    def row(self) -> Iterator[None]:
        try:
            yield
        except SkipRow as e:
            self.skip(e.reason)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            self.skip(MALFORMED_RECORD)

    def add_all(self, records: Iterable[tuple[str, Any]], make: Callable[[str, Any], Problem]) -> None:
        """Add ``make(key, record)`` for each (key, record) until ``limit``; a :class:`SkipRow`
        record or a row error is counted, never raised."""
        for key, rec in records:
            if self.full:
                break
            with self.row():
                if isinstance(rec, SkipRow):
                    raise rec
                self.add(make(key, rec))

    def result(self, source: str = "") -> LoadResult:
        return LoadResult(self.problems, self.skipped, name=self.name, source=source, notes=self.notes)


# --------------------------------------------------------------------------- small helpers


def text_or_none(value: Any) -> str | None:
    """A stripped string, or None for None / NaN / empty.

    >>> text_or_none("  7 "), text_or_none(""), text_or_none(3), text_or_none(float("nan"))
    ('7', None, '3', None)
    """
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    s = str(value).strip()
    return s or None


def is_number(text: str) -> bool:
    """True for a plain decimal number (no commas, units or LaTeX).

    >>> is_number("-3.5"), is_number("1e3"), is_number("1,000"), is_number("\\\\frac{1}{2}")
    (True, True, False, False)
    """
    return _NUMBER_RE.fullmatch(text.strip()) is not None


def guess_answer_type(answer: str | None) -> str:
    """``number`` for a plain number, else ``auto`` (the grader decides).

    >>> guess_answer_type("42"), guess_answer_type("$\\\\frac{1}{2}$")
    ('number', 'auto')
    """
    return "number" if answer is not None and is_number(answer) else "auto"


def normalize_answer_type(value: Any) -> str | None:
    """Map a file's answer-type name (any case; spaces, dashes or underscores) to a slowthink one;
    None when unknown.

    >>> normalize_answer_type("integer"), normalize_answer_type("Multiple Choice"), normalize_answer_type("free form")
    ('number', 'choice', 'auto')
    >>> normalize_answer_type("float"), normalize_answer_type("multi-choice"), normalize_answer_type("x")
    ('number', 'choice', None)
    """
    s = text_or_none(value)
    return ANSWER_TYPE_ALIASES.get(re.sub(r"[\s_-]+", "_", s.lower())) if s else None


def parse_tolerance(value: Any, name: str) -> float | None:
    """A tolerance from a data cell (``0.001``, ``"1e-3"``); None when empty; :class:`SkipRow`
    (``bad tolerance``) when it is not a finite number >= 0.

    >>> parse_tolerance("1e-3", "abs_tol"), parse_tolerance(None, "abs_tol"), parse_tolerance(0.5, "rel_tol")
    (0.001, None, 0.5)
    """
    if (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and value != value)
    ):
        return None
    try:
        return check_tolerance(value, name)
    except SlowthinkError:
        raise SkipRow(BAD_TOLERANCE) from None


def check_tolerance(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0, or one :class:`SlowthinkError` line naming the fix.

    >>> check_tolerance(0.001, "abs_tol")
    0.001
    """
    try:
        tol = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        tol = -1.0
    if not 0 <= tol < float("inf"):
        raise SlowthinkError(f"{name} must be a finite number >= 0, got {value!r}; e.g. {name}=0.001")
    return tol


def parse_precision(value: Any) -> int | None:
    """Decimals as an int (MathVista stores ``1`` or ``1.0``); None when absent or not a number.

    >>> parse_precision(2.0), parse_precision(None), parse_precision("x")
    (2, None, None)
    """
    try:
        return None if value is None or value == "" else int(float(value))
    except (TypeError, ValueError):
        return None


def get_path(record: Mapping[str, Any], dotted: str) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; a key holding a dot is tried whole first.

    >>> get_path({"metadata": {"category": "x"}}, "metadata.category")
    'x'
    """
    if dotted in record:
        return record[dotted]
    cur: Any = record
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def require(value: Any, reason: str) -> str:
    """``text_or_none(value)`` or raise :class:`SkipRow` with ``reason``."""
    s = text_or_none(value)
    if s is None:
        raise SkipRow(reason)
    return s


def nothing_usable(name: str, source: str, skipped: Counter[str]) -> SlowthinkError:
    """The one-line error for a load that produced no problem."""
    if skipped:
        reasons = ", ".join(f"{k}: {v}" for k, v in skipped.most_common())
        return SlowthinkError(
            f"{name}: no usable problem in {source} (skipped {sum(skipped.values())}: {reasons})"
        )
    return SlowthinkError(f"{name}: no problem found in {source} (the file holds no records)")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced.

    >>> last_boxed("so $x = \\\\boxed{\\\\frac{1}{2}}$.")
    '\\\\frac{1}{2}'
    >>> last_boxed("no box") is None
    True
    """
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j].strip() or None
    return None


def answer_text(value: Any) -> str | None:
    """A gold answer as text: numbers via ``str``, lists as JSON, None/NaN/empty as None.

    >>> answer_text(3), answer_text([2014, 2016]), answer_text(" B ")
    ('3', '[2014, 2016]', 'B')
    """
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    if isinstance(value, bool):
        return str(value)
    return text_or_none(value)
