"""Multiple-choice helpers: option letters, inline option blocks, gold-answer resolution.

Option letters A, B, C, ... are implied by the order of ``Problem.choices``.
"""

from __future__ import annotations

import re

from slowthink.benchmarks.base import ANSWER_NOT_IN_CHOICES, SkipRow
from slowthink.types import LETTERS

_LETTER_RE = re.compile(r"^\(?\s*([A-Z])\s*\)?[.:]?$")
_HEADER_RE = re.compile(r"(?:^|\n)[ \t]*(?:Choices?|Options?)[ \t]*:[ \t]*", re.IGNORECASE)
_OPTION_RE = re.compile(r"^\s*\(?([A-Z])\)?\s*[:.．)：]\s*(.*)$")
_INLINE_RE = re.compile(r"(?:^|\s)\(?([A-Z])\)?\s*[:.)]\s*")


def as_letter(text: str | None, n_choices: int | None = None) -> str | None:
    """The option letter in ``"C"``, ``"(C)"``, ``"C)"`` or ``"C."``; None otherwise or out of range.

    >>> as_letter("(C)"), as_letter("c"), as_letter("E", 4), as_letter("Cat")
    ('C', None, None, None)
    """
    if text is None:
        return None
    m = _LETTER_RE.match(text.strip())
    if not m:
        return None
    letter = m.group(1)
    if n_choices is not None and LETTERS.index(letter) >= n_choices:
        return None
    return letter


def letter_options(options: list[str]) -> bool:
    """True when the options are just the letters A, B, C, ... (the real options are in the image).

    >>> letter_options(["A", "B", "C", "D", "E"]), letter_options(["(A)", "(B)"]), letter_options(["A", "C"])
    (True, True, False)
    """
    return bool(options) and [as_letter(o) for o in options] == list(LETTERS[: len(options)])


def _norm_option(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("$", "")).strip().lower()


def match_choice(answer: str, choices: list[str]) -> str | None:
    """The letter of the option whose text is ``answer`` (exact first, then ignoring case, spaces, $).

    >>> match_choice("145°", ["135°", "145°"]), match_choice("$ 2 $", ["1", "2"]), match_choice("9", ["1"])
    ('B', 'B', None)
    """
    for i, c in enumerate(choices[: len(LETTERS)]):
        if c == answer:
            return LETTERS[i]
    want = _norm_option(answer)
    for i, c in enumerate(choices[: len(LETTERS)]):
        if _norm_option(c) == want:
            return LETTERS[i]
    return None


def choice_answer(answer: str, choices: list[str]) -> tuple[str, str]:
    """Resolve a multiple-choice gold answer given as option text or as a letter.

    Returns ``(answer, letter)``: an option text is kept as given, a letter form like ``"(B)"``
    becomes ``"B"``. Raises :class:`SkipRow` (``answer not in choices``) when it names no option.

    >>> choice_answer("(B)", ["x", "y"]), choice_answer("y", ["x", "y"])
    (('B', 'B'), ('y', 'B'))
    """
    letter = match_choice(answer, choices)
    if letter is not None:
        return answer, letter
    letter = as_letter(answer, len(choices))
    if letter is not None:
        return letter, letter
    raise SkipRow(ANSWER_NOT_IN_CHOICES)


def parse_inline_choices(question: str) -> tuple[str, list[str] | None]:
    """Split ``"...stem\\nChoices:\\nA:40°\\nB:60°"`` into ``(stem, ["40°", "60°"])``.

    The block starts at the last ``Choices:``/``Choice:``/``Options:`` header. Options may read
    ``A:x``, ``A.x``, ``A. x``, ``(A) x``, one per line (a line that starts no option continues
    the previous one) or all on one line. Letters must run A, B, C, ...; at least two options
    must have text (an empty one, an upstream typo, keeps its letter).
    Returns ``(question, None)`` when no such block is found.

    >>> parse_inline_choices("Find x.\\nChoices:\\nA:3\\nB:4")
    ('Find x.', ['3', '4'])
    >>> parse_inline_choices("Which?\\nChoice:\\nA. True\\nB. False")
    ('Which?', ['True', 'False'])
    >>> parse_inline_choices("Where is the cat?\\nOptions: A: on the mat, B: under the bed")
    ('Where is the cat?', ['on the mat', 'under the bed'])
    >>> parse_inline_choices("No options here.")
    ('No options here.', None)
    """
    matches = list(_HEADER_RE.finditer(question))
    if not matches:
        return question, None
    m = matches[-1]
    stem, tail = question[: m.start()].rstrip(), question[m.end() :].strip()
    options = _options_by_line(tail) or _options_inline(tail)
    if options is None:
        return question, None
    return stem, options


_MARK_RE = re.compile(r"\(([A-Z])\)|(?<![A-Za-z0-9])([A-Z])\s*([.:)．：])(?![A-Za-z0-9])")
_SEP_CHARS = " \t\r\n;,|"


def split_marked_options(text: str) -> list[str] | None:
    """Option texts of ONE string whose options carry letter markers, or None.

    Markers are ``A.``, ``A)``, ``A:`` or ``(A)``, all of one style, the first at the start; the
    options are separated by ``;``, new lines or just spaces, and may hold commas. Letters must
    run A, B, C, ... (a marker-looking ``B.`` inside an option that is not the next letter
    stays text); every option must have text.

    >>> split_marked_options("A. 300, 400;B. 400, 300;C. 3000, 4000;D. 4000, 3000; E. No correct answer")
    ['300, 400', '400, 300', '3000, 4000', '4000, 3000', 'No correct answer']
    >>> split_marked_options("(A) 12 (B) 15 (C) 18"), split_marked_options("A) x\\nB) y")
    (['12', '15', '18'], ['x', 'y'])
    >>> split_marked_options("A. only one"), split_marked_options("plain text")
    (None, None)
    """
    s = text.strip()
    first = _MARK_RE.match(s)
    if first is None or (first.group(1) or first.group(2)) != "A":
        return None
    style = "()" if first.group(1) else first.group(3)
    marks = [first]
    for m in _MARK_RE.finditer(s, first.end()):
        letter, this_style = (m.group(1), "()") if m.group(1) else (m.group(2), m.group(3))
        if this_style != style or len(marks) >= len(LETTERS) or letter != LETTERS[len(marks)]:
            continue
        if m.start() > 0 and s[m.start() - 1] not in _SEP_CHARS:
            continue  # "x(B)" or "2B." are not markers
        marks.append(m)
    if len(marks) < 2:
        return None
    ends = [m.start() for m in marks[1:]] + [len(s)]
    options = [s[m.end() : e].strip(_SEP_CHARS) for m, e in zip(marks, ends, strict=True)]
    return options if all(options) else None


def _options_by_line(tail: str) -> list[str] | None:
    options: list[str] = []
    for line in tail.split("\n"):
        om = _OPTION_RE.match(line)
        if om and len(options) < len(LETTERS) and om.group(1) == LETTERS[len(options)]:
            options.append(om.group(2).strip())
        elif options and line.strip():
            options[-1] = f"{options[-1]}\n{line.strip()}"
        elif not options:
            return None
    return options if sum(1 for o in options if o) >= 2 else None


def _options_inline(tail: str) -> list[str] | None:
    marks = list(_INLINE_RE.finditer(tail))
    if len(marks) < 2 or marks[0].start() != 0:
        return None
    if [mk.group(1) for mk in marks] != list(LETTERS[: len(marks)]):
        return None
    ends = [mk.start() for mk in marks[1:]] + [len(tail)]
    options = [tail[mk.end() : e].strip().rstrip(",;").strip() for mk, e in zip(marks, ends, strict=True)]
    return options if all(options) else None
