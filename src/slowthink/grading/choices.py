"""Multiple-choice answers: option letters, option texts matched back to letters, inline
``Choices:`` blocks.

Option letters A, B, C, ... are implied by the order of ``Problem.choices``. MathVista gives the
gold as the option *text*, MathVerse and MATH-V as a letter; both resolve to the letter here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from slowthink.grading._latex import latex_light, strip_wrappers, unwrap_text_commands
from slowthink.grading.numeric import parse_number
from slowthink.types import LETTERS, Problem

FUZZY_MIN_SCORE = 75.0
"""Fuzzy option matching needs at least this similarity (rapidfuzz ``ratio``, 0-100) ..."""
FUZZY_MIN_MARGIN = 10.0
"""... and must beat the second-best option by this much (a clear winner), unlike MathVista's
scorer, which always takes the nearest option."""
MAX_CHOICE_TEXT = 500
"""Longer candidate texts are not matched against options."""

_PURE_LETTER = re.compile(r"^(?:\(\s*([A-Za-z])\s*\)|([A-Za-z]))\s*[.:)]?$")
_OPTION_WORD = re.compile(
    r"^(?:the\s+)?(?:option|choice)(?:\s*:\s*|\s+|(?=\())\(?\s*([A-Za-z])\s*\)?(?![A-Za-z0-9])", re.IGNORECASE
)
_PAREN_LETTER = re.compile(r"^\(\s*([A-Za-z])\s*\)(?![A-Za-z0-9])")
_LETTER_PUNCT = re.compile(r"^([A-Z])\s*[.:),\]](?![A-Za-z0-9.])")
_LETTER_SPACE = re.compile(r"^([A-Z])\s+(\S?)")
_MULTI_SEP = re.compile(r"\band\b|[,;/&\s]+")
_HEADER = re.compile(r"\b(?:Choices?|Options?)[ \t]*:[ \t]*", re.IGNORECASE)
_LINE_OPTION = re.compile(r"^\s*\(?([A-Z])\)?\s*[:.)]\s*(.*)$")
_INLINE_OPTION = re.compile(r"(?:^|\s)\(([A-Z])\)\s*")
_ONE_ITEM_LIST = re.compile(r"\[\s*([^\[\],]+?)\s*\]")
_SEVERAL_ITEM_LIST = re.compile(r"\[.*,.*\]", re.DOTALL)


def letter_index(letter: str) -> int:
    """0 for ``A``, 1 for ``B``, ...

    >>> letter_index("C")
    2
    """
    return LETTERS.index(letter)


def parse_inline_choices(question: str) -> list[str] | None:
    """Option texts written into the question after a ``Choices:`` (or ``Options:``) header,
    one per line as ``A:40°``, ``A. 40``, ``(A) 40``, or on one line as ``(A) 40 (B) 60``.
    Letters must run A, B, C, ...; None without such a block.

    >>> parse_inline_choices("Find x.\\nChoices:\\nA:40°\\nB:60°\\nC:120°")
    ['40°', '60°', '120°']
    >>> parse_inline_choices("Pick one. Options: (A) 3 (B) 4"), parse_inline_choices("No options.")
    (['3', '4'], None)
    """
    if not question:
        return None
    headers = list(_HEADER.finditer(question))
    if not headers:
        return None
    tail = question[headers[-1].end() :].strip()
    options: list[str] = []
    for line in tail.split("\n"):
        m = _LINE_OPTION.match(line)
        if m and len(options) < len(LETTERS) and m.group(1) == LETTERS[len(options)]:
            options.append(m.group(2).strip())
        elif options and line.strip():
            break
    if len(options) >= 2:
        return options
    marks = list(_INLINE_OPTION.finditer(tail))
    if (
        len(marks) >= 2
        and marks[0].start() == 0
        and [m.group(1) for m in marks] == list(LETTERS[: len(marks)])
    ):
        ends = [m.start() for m in marks[1:]] + [len(tail)]
        options = [tail[m.end() : e].strip().rstrip(",;").strip() for m, e in zip(marks, ends)]
        if all(options):
            return options
    return None


def effective_choices(problem: Problem | None) -> list[str] | None:
    """The option texts of a problem: ``problem.choices``, else options written inline in the
    question (MathVerse style) when ``answer_type`` is ``auto``, ``choice`` or ``list``; else None.

    >>> effective_choices(Problem(id="1", question="x?\\nChoices:\\nA:1\\nB:2", answer="B"))
    ['1', '2']
    """
    if problem is None:
        return None
    if problem.choices:
        return list(problem.choices)
    if problem.answer_type in ("auto", "choice", "list"):
        return parse_inline_choices(problem.question)
    return None


def is_choice_problem(problem: Problem | None) -> bool:
    """Whether answers to this problem are option letters.

    >>> is_choice_problem(Problem(id="1", question="q", choices=["1", "2"])), is_choice_problem(None)
    (True, False)
    """
    return problem is not None and (problem.answer_type == "choice" or effective_choices(problem) is not None)


def choice_key(text: str) -> str:
    """The form option texts are compared in: light LaTeX normalisation, lower case, no spaces.

    >>> choice_key("$6 \\\\mathrm{~cm}$"), choice_key(" 6cm. ")
    ('6cm', '6cm')
    """
    return latex_light(strip_wrappers(text)).lower().replace(" ", "")


def _in_range(letter: str, n: int | None) -> str | None:
    letter = letter.upper()
    return letter if n is None or letter_index(letter) < n else None


def _exact_option(key: str, choices: Sequence[str]) -> str | None:
    for i, c in enumerate(choices[: len(LETTERS)]):
        if choice_key(c) == key:
            return LETTERS[i]
    return None


def _letter_list(s: str) -> list[str] | None:
    """The letters of ``A, C`` / ``A and C`` / ``A, b, c``, upper-cased; None unless ``s`` is
    only two or more single letters. Lower-case letters count only with a separator that is not
    a space (``I a`` is words)."""
    tokens = _MULTI_SEP.sub(" ", s).split()
    if len(tokens) < 2 or any(len(t) != 1 or t.upper() not in LETTERS for t in tokens):
        return None
    if any(t.islower() for t in tokens) and not re.search(r"[,;/&]|\band\b", s):
        return None
    return [t.upper() for t in tokens]


def _multi_letters(s: str, n: int | None) -> str | None:
    """``'A,C'`` for a reply naming several options; ``''`` for a letter list that names a
    letter beyond the options (no answer, and never its first letter alone); None otherwise."""
    tokens = _letter_list(s)
    if tokens is None:
        return None
    letters = sorted(set(tokens))
    if any(_in_range(x, n) is None for x in letters):
        return ""
    return ",".join(letters)


def _prefix_letter(s: str, n: int | None) -> str | None:
    for pattern in (_OPTION_WORD, _PAREN_LETTER, _LETTER_PUNCT):
        m = pattern.match(s)
        if m:
            return _in_range(m.group(1), n)
    m = _LETTER_SPACE.match(s)
    if m:
        # "B 12 cm" names option B; "A triangle" / "I think" are English words, not letters.
        if m.group(1) in "AI" and m.group(2).islower():
            return None
        return _in_range(m.group(1), n)
    return None


def _numeric_option(s: str, choices: Sequence[str]) -> str | None:
    one = _ONE_ITEM_LIST.fullmatch(s)  # '[40]', a program's printed list of one number
    value = parse_number(one.group(1) if one else s)
    if value is None:
        return None
    hits = [i for i, c in enumerate(choices[: len(LETTERS)]) if parse_number(c) == value]
    return LETTERS[hits[0]] if len(hits) == 1 else None


def leading_option(s: str, choices: Sequence[str]) -> str | None:
    """The one option that ``s`` opens with, as a whole word: ``No, there are not ...`` -> the
    option ``No`` (numeric options are left to the number rule).

    >>> leading_option("No, Chartreuse is not the roughest.", ["Yes", "No"]), leading_option("Nothing.", ["Yes", "No"])
    ('B', None)
    """
    low = s.lower()
    hits = []
    for i, c in enumerate(choices[: len(LETTERS)]):
        t = strip_wrappers(c).lower()
        if t and parse_number(t) is None and low.startswith(t) and not low[len(t) : len(t) + 1].isalnum():
            hits.append((len(t), i))
    hits.sort(reverse=True)
    if not hits or (len(hits) > 1 and hits[0][0] == hits[1][0]):
        return None
    return LETTERS[hits[0][1]]


def contained_option(key: str, choices: Sequence[str]) -> str | None:
    """The letter of the one option (3+ characters, not a number) whose :func:`choice_key` is in
    ``key`` (options inside another hit do not count), or None."""
    keys = [choice_key(c) for c in choices[: len(LETTERS)]]
    hits = [i for i, k in enumerate(keys) if len(k) >= 3 and parse_number(k) is None and k in key]
    hits = [i for i in hits if not any(j != i and keys[i] in keys[j] for j in hits)]
    return LETTERS[hits[0]] if len(hits) == 1 else None


def _fuzzy_option(key: str, choices: Sequence[str]) -> str | None:
    scores = sorted(
        ((fuzz.ratio(key, choice_key(c)), i) for i, c in enumerate(choices[: len(LETTERS)])), reverse=True
    )
    best, i = scores[0]
    second = scores[1][0] if len(scores) > 1 else 0.0
    if best >= FUZZY_MIN_SCORE and best - second >= FUZZY_MIN_MARGIN:
        return LETTERS[i]
    return None


def match_choice(text: str | None, choices: Sequence[str] | None, *, text_first: bool = False) -> str | None:
    """The option letter ``text`` names, or None.

    In order: a bare letter (``B``, ``(b)``, ``B.``); the exact option text (after light
    normalisation); several letters (``C, D`` -> ``'C,D'``, ``A, b, c`` -> ``'A,B,C'``: never the
    first letter alone); a leading letter (``B: 12 cm``,
    ``Option A``, ``option (b)``, ``(C) 5``); the same number as exactly one option (``145`` for
    ``145°``); the one option ``text`` opens with as a whole word (``No, there are ...``);
    exactly one option text contained in ``text``; a clear fuzzy winner. Letters
    beyond the options are ignored. ``text_first`` checks the exact option text before the bare
    letter (for gold answers, which MathVista gives as option text). ``choices`` None allows any
    letter and skips text matching.

    >>> opts = ["135°", "140°", "145°", "150°"]
    >>> match_choice("(C)", opts), match_choice("145", opts), match_choice("Option b", opts)
    ('C', 'C', 'B')
    >>> match_choice("The answer is B: 140°", None), match_choice("E", opts), match_choice("quarter to", ["half", "quarter to"])
    (None, None, 'B')
    """
    if text is None:
        return None
    s = strip_wrappers(text)
    if "\\" in s:  # \text{(C) } 6
        s = strip_wrappers(unwrap_text_commands(s))
    if not s or len(s) > MAX_CHOICE_TEXT:
        return None
    n = len(choices) if choices else None
    key = choice_key(s)
    if text_first and choices:
        hit = _exact_option(key, choices)
        if hit:
            return hit
    m = _PURE_LETTER.match(s)
    if m:
        letter = _in_range(m.group(1) or m.group(2), n)
        if letter:
            return letter
    if choices:
        hit = _exact_option(key, choices)
        if hit:
            return hit
    several = _multi_letters(s, n)
    if several is not None:  # "A, b, c" names three options, never the single answer "A"
        return several or None
    found = _prefix_letter(s, n)
    if found:
        return found
    if not choices:
        return None
    several = _SEVERAL_ITEM_LIST.fullmatch(s) is not None  # "['insects', 'mouse']" names no one option
    for found in (
        _numeric_option(s, choices),
        leading_option(s, choices),
        None if several else contained_option(key, choices),
    ):
        if found:
            return found
    if parse_number(s) is not None or not key:
        return None
    return _fuzzy_option(key, choices)
