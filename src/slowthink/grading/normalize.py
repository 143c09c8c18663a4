"""Canonical answer keys: two answers vote together iff their keys are equal.

Keys: the option letter for multiple choice (``'B'``, several letters as ``'C,D'``); a canonical
number for numbers (``'1000'``, ``'0.75'``, ``'1/3'``; with ``problem.precision`` the MathVista
rounding, ``'1.2'``); element-wise keys for lists, tuples and intervals (``'(0,1]'``); else a
light-normalised string (case, spaces, ``$``, ``\\left``, ``\\dfrac`` ...). Bounded: numbers
that are too long or too large stay strings (see :mod:`slowthink.grading.numeric`).
"""

from __future__ import annotations

import re

from slowthink.grading._latex import latex_light, strip_wrappers
from slowthink.grading.choices import effective_choices, is_choice_problem, match_choice
from slowthink.grading.numeric import format_number, parse_number
from slowthink.types import Problem

MAX_SEQUENCE_ITEMS = 64
"""Sequences with more items are keyed as plain strings."""

_OPEN_CLOSE = {"(": ")", "[": "]"}
_SET_OPEN, _SET_CLOSE = "\\{", "\\}"
_VAR_LABEL = re.compile(r"^[A-Za-z]\s*=\s*")


def _depth_split(body: str) -> list[str] | None:
    """Split at top-level commas; None when brackets do not nest."""
    items, depth, start, i = [], 0, 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in "{}":
            depth += 1 if body[i + 1] == "{" else -1
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
        if depth < 0:
            return None
        i += 1
    items.append(body[start:])
    return items


def _encloses(t: str) -> bool:
    """Whether the first character's bracket closes at the very end (``(0,1]`` yes, ``(0,1]\\cup[2,3)`` no)."""
    depth = 0
    for i, ch in enumerate(t):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0:
                return i == len(t) - 1
    return False


def split_sequence(text: str, *, force: bool = False) -> tuple[str, list[str], str] | None:
    """Split a list, tuple, interval or set into ``(open, items, close)``; None when ``text`` is
    not one. Bare ``1, 2`` counts (with empty brackets); with ``force`` so does ``[5]``.

    >>> split_sequence("(0, 1]"), split_sequence("[2014, 2016]"), split_sequence("1, 2")
    (('(', ['0', '1'], ']'), ('[', ['2014', '2016'], ']'), ('', ['1', '2'], ''))
    >>> split_sequence("(0,1] \\\\cup [2,3)") is None, split_sequence("f(x, y)") is None
    (True, True)
    """
    t = latex_light(strip_wrappers(text))
    if not t:
        return None
    if t.startswith(_SET_OPEN) and t.endswith(_SET_CLOSE) and len(t) >= 4:
        open_, body, close = _SET_OPEN, t[2:-2], _SET_CLOSE
    elif t[0] in _OPEN_CLOSE and t[-1] in ")]" and _encloses(t):
        open_, body, close = t[0], t[1:-1], t[-1]
    else:
        open_, body, close = "", t, ""
    items = _depth_split(body)
    if items is None or len(items) > MAX_SEQUENCE_ITEMS:
        return None
    items = [x.strip() for x in items]
    if any(not x for x in items):
        return None
    if len(items) < 2 and not (force and open_):
        return None
    return open_, items, close


def scalar_key(text: str, precision: int | None = None) -> str | None:
    """The key of one value: a canonical number, else the light-normalised string.

    >>> scalar_key("$1,000"), scalar_key("x = \\\\frac{3}{4}"), scalar_key("1.25", 1), scalar_key(" Yes. ")
    ('1000', '0.75', '1.2', 'yes')
    """
    s = strip_wrappers(text)
    if not s:
        return None
    value = parse_number(s)
    if value is not None:
        return format_number(value, precision)
    m = _VAR_LABEL.match(s)
    if m and "=" not in s[m.end() :] and m.end() < len(s):
        s = s[m.end() :]
        value = parse_number(s)
        if value is not None:
            return format_number(value, precision)
    return latex_light(s) or None


def normalize_answer(ans: str | None, problem: Problem | None = None) -> str | None:
    """The canonical voting key of an answer; None for no answer.

    Multiple choice (``problem.choices``, an inline ``Choices:`` block, or ``answer_type ==
    'choice'``): the option letter, whether ``ans`` is a letter form or the option text. Numbers:
    canonical decimal or ``p/q`` (``problem.precision`` rounds). Lists, tuples, intervals:
    element-wise. Else a case/space/LaTeX-light normalised string.

    >>> normalize_answer("$1,000.00"), normalize_answer("\\\\frac{3}{4}"), normalize_answer("3/4")
    ('1000', '0.75', '0.75')
    >>> normalize_answer("145", Problem(id="1", question="q", choices=["135°", "145°"]))
    'B'
    >>> normalize_answer("( 0 , 1 ]"), normalize_answer("  The Cat "), normalize_answer(None)
    ('(0,1]', 'the cat', None)
    """
    return _normalize(ans, problem, gold=False)


def _normalize(ans: str | None, problem: Problem | None, *, gold: bool) -> str | None:
    if ans is None:
        return None
    s = strip_wrappers(str(ans))
    if not s:
        return None
    if is_choice_problem(problem):
        letter = match_choice(s, effective_choices(problem), text_first=gold)
        if letter is not None:
            return letter
    precision = problem.precision if problem is not None else None
    answer_type = problem.answer_type if problem is not None else "auto"
    if answer_type == "text":
        return latex_light(s) or None
    value = parse_number(s)
    if value is not None:
        return format_number(value, precision)
    seq = split_sequence(s, force=answer_type == "list")
    if seq is not None:
        open_, items, close = seq
        keys = [scalar_key(x, precision) or "" for x in items]
        if open_ == _SET_OPEN:
            keys.sort()
        if answer_type == "list":
            open_, close = "[", "]"
        return f"{open_}{','.join(keys)}{close}"
    return scalar_key(s, precision)
