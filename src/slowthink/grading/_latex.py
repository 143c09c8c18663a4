"""Small text and LaTeX helpers shared by extraction and normalisation.

Pure string work with bounded loops: nothing here parses maths or evaluates anything.
"""

from __future__ import annotations

import re

MAX_UNWRAP_ROUNDS = 6
"""How many nested wrappers (``$..$``, ``\\boxed{..}``, ``**..**``) ``strip_wrappers`` peels off."""

MAX_BOXED_TRIED = 50
"""``last_boxed`` looks at most at this many ``\\boxed`` commands from the end."""

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_PAIRS = (("$$", "$$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))
"""Two-character wrappers ``strip_wrappers`` peels off."""
_BOX_TOKEN = re.compile(r"[ \t]+([^\s${}]+)")
_TRAILING_PUNCT = ".,;!?。，；！？"
_TEXT_COMMANDS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mbox|operatorname)\s*\{([^{}]*)\}"
)
_SPACE_COMMANDS = re.compile(r"\\[,!;: ]|\\q?quad(?![a-zA-Z])|~")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ(?![a-zA-Z])|\\degree(?![a-zA-Z])|°|º")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])")
_SQRT_SHORT = re.compile(r"\\sqrt\s*([0-9a-zA-Z])")
_FRAC_SHORT2 = re.compile(r"\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])")
_FRAC_SHORT_NUM = re.compile(r"\\frac\s*([0-9a-zA-Z])\s*\{")
_FRAC_SHORT_DEN = re.compile(r"\\frac\s*(\{[^{}]*\})\s*([0-9a-zA-Z])")
_MATH_CHARS = re.compile(r"[\\^_=+*/<>]")
_MATH_SPACE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])|\s+")
_SPACE_BETWEEN = re.compile(r"(?<=[^0-9a-zA-Z]) | (?=[^0-9a-zA-Z])")


def braced_after(text: str, start: int, stop: int | None = None) -> tuple[str, int] | None:
    """The content of the ``{...}`` group that opens at ``text[start]`` (after spaces), and the
    index just past it. Escaped braces ``\\{`` do not count. None when unbalanced or absent, or
    when the group does not close before ``stop``.

    >>> braced_after("{a{b}c} d", 0)
    ('a{b}c', 7)
    >>> braced_after("{a", 0) is None
    True
    """
    i = start
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    j = i
    end = len(text) if stop is None else min(stop, len(text))
    while j < end:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    return None


def balanced(text: str) -> bool:
    """Whether the unescaped braces of ``text`` balance.

    >>> balanced("\\\\frac{1}{2}"), balanced("\\\\frac{1}{")
    (True, False)
    """
    depth = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def last_boxed(text: str) -> str | None:
    """The content of the last well-formed ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    >>> last_boxed("so \\\\boxed{\\\\frac{1}{2}} and \\\\boxed{7}")
    '7'
    >>> last_boxed("\\\\boxed{3") is None
    True
    """
    positions = sorted(
        (m.start(), m.end())
        for cmd in _BOX_COMMANDS
        for m in re.finditer(re.escape(cmd) + r"(?![a-zA-Z])", text)
    )
    # A group that fails to close stays open to the end, so an earlier group can only close
    # before it: scanning each candidate up to the last failure keeps this linear.
    limit = len(text)
    for _start, end in reversed(positions[-MAX_BOXED_TRIED:]):
        got = braced_after(text, end, limit)
        if got is not None and got[0].strip():
            return got[0].strip()
        if got is None:
            limit = end
            m = _BOX_TOKEN.match(text, end)  # \boxed 5
            if m and "{" not in m.group(1):
                return m.group(1)
    return None


def strip_wrappers(s: str) -> str:
    """Peel presentation off an answer: math delimiters, ``\\boxed``/``\\text`` around the whole,
    markdown bold, quotes, and trailing sentence punctuation.

    >>> strip_wrappers("$\\\\boxed{72}$.")
    '72'
    >>> strip_wrappers("**B**")
    'B'
    >>> strip_wrappers("$1,000")
    '$1,000'
    """
    s = s.strip()
    for _ in range(MAX_UNWRAP_ROUNDS):
        before = s
        s = s.strip()
        while s and s[-1] in _TRAILING_PUNCT and not s.endswith("..."):
            s = s[:-1].rstrip()
        pair = next((p for p in _PAIRS if len(s) >= 4 and s.startswith(p[0]) and s.endswith(p[1])), None)
        if pair is not None:
            s = s[2:-2]
        elif (
            len(s) >= 2
            and s.startswith("$")
            and s.endswith("$")
            and s.count("$") == 2
            or len(s) >= 2
            and s[0] == s[-1]
            and s[0] in "\"'`"
        ):
            s = s[1:-1]
        else:
            for cmd in (*_BOX_COMMANDS, "\\text", "\\textbf", "\\mathrm", "\\mathbf"):
                if s.startswith(cmd) and not s[len(cmd) : len(cmd) + 1].isalpha():
                    got = braced_after(s, len(cmd))
                    if got is not None and got[1] == len(s):
                        s = got[0]
                        break
        if s == before:
            break
    return s.strip()


def fix_latex_shorthand(s: str) -> str:
    """Spell out ``\\frac34``, ``\\frac{1}2``, ``\\sqrt3`` and ``\\dfrac``/``\\tfrac`` canonically.

    >>> fix_latex_shorthand("\\\\dfrac34 + \\\\sqrt3")
    '\\\\frac{3}{4} + \\\\sqrt{3}'
    """
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _FRAC_SHORT2.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_SHORT_NUM.sub(r"\\frac{\1}{", s)
    s = _FRAC_SHORT_DEN.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    return s


def unwrap_text_commands(s: str) -> str:
    """Replace ``\\text{..}``, ``\\mathrm{..}`` and similar by their content (innermost first).

    >>> unwrap_text_commands("5 \\\\mathrm{~cm}^{2}")
    '5 ~cm^{2}'
    """
    for _ in range(MAX_UNWRAP_ROUNDS):
        new = _TEXT_COMMANDS.sub(r"\1", s)
        if new == s:
            break
        s = new
    return s


def remove_degrees(s: str) -> str:
    """Drop degree marks: ``°``, ``^\\circ``, ``^{\\circ}``, ``\\degree``.

    >>> remove_degrees("40^{\\\\circ}"), remove_degrees("40°")
    ('40', '40')
    """
    return _DEGREES.sub("", s)


def latex_light(s: str) -> str:
    """A light canonical form for comparing answers as strings: no ``$``, no ``\\left``/``\\right``,
    no spacing commands, text commands unwrapped, degree marks dropped, shorthand spelled out;
    in maths no spaces (but ``\\pi r``), in words spaces only between two alphanumerics; lower
    case unless the string holds LaTeX commands.

    >>> latex_light("$\\\\left( 0 , 1 \\\\right]$")
    '(0,1]'
    >>> latex_light("  New   York "), latex_light("y = -2 x + 5"), latex_light("2 \\\\pi r")
    ('new york', 'y=-2x+5', '2\\\\pi r')
    >>> latex_light("\\\\dfrac{\\\\sqrt3}{2}")
    '\\\\frac{\\\\sqrt{3}}{2}'
    """
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "%")
    s = unwrap_text_commands(s)
    s = _LEFT_RIGHT.sub("", s)
    s = _SPACE_COMMANDS.sub(" ", s)
    s = remove_degrees(s)
    s = fix_latex_shorthand(s)
    s = re.sub(r"\s+", " ", s).strip()
    if _MATH_CHARS.search(s):
        # Maths: spaces never matter, except one that ends a command (``\pi r``).
        s = _MATH_SPACE.sub(lambda m: m.group(1) + " " if m.group(1) else "", s)
    else:
        s = _SPACE_BETWEEN.sub("", s)
    while s and s[-1] in _TRAILING_PUNCT and not s.endswith("..."):
        s = s[:-1]
    if "\\" not in s:
        s = s.lower()
    return s
