"""Numbers in answers: parse ``$1,000``, ``18.00``, ``50%``, ``40°``, ``3/4``, ``\\frac{3}{4}``,
``1.5 \\times 10^{3}``, ``1e3``, ``12 cm`` into exact rationals, and print them canonically.

Parsing is regex-only and bounded: inputs longer than :data:`MAX_NUMBER_CHARS`, numbers with
more than :data:`MAX_DIGITS` digits or exponents beyond :data:`MAX_EXPONENT` are not numbers
(they stay plain strings), so ``10**10**10`` or a 5,000-digit answer can never blow up.
"""

from __future__ import annotations

import re
from fractions import Fraction

from slowthink.grading._latex import fix_latex_shorthand, remove_degrees, strip_wrappers, unwrap_text_commands

MAX_NUMBER_CHARS = 300
"""Longer strings are never parsed as numbers."""
MAX_DIGITS = 100
"""At most this many digits in one number (mantissa, numerator or denominator)."""
MAX_EXPONENT = 100
"""At most this exponent magnitude in scientific notation (so every number fits a float)."""

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+"
_SNUM = rf"[+-]?\s*(?:{_NUM})"
_SCI_TIMES = re.compile(
    rf"(?P<m>{_SNUM})\s*(?:\\times|×|\\cdot|\*|x)\s*10\s*\^\s*(?:\{{\s*(?P<e1>[+-]?\d+)\s*\}}|(?P<e2>[+-]?\d+))"
)
_POW10 = re.compile(r"(?P<sign>[+-]?)\s*10\s*\^\s*(?:\{\s*(?P<e1>[+-]?\d+)\s*\}|(?P<e2>[+-]?\d+))")
_SCI_E = re.compile(rf"(?P<m>{_SNUM})[eE](?P<e>[+-]?\d+)")
_FRAC_LATEX = re.compile(
    rf"(?P<sign>[+-]?)\s*\\frac\s*\{{\s*(?P<n>{_SNUM})\s*\}}\s*\{{\s*(?P<d>{_SNUM})\s*\}}"
)
_FRAC_SLASH = re.compile(rf"(?P<n>{_SNUM})\s*/\s*(?P<d>{_SNUM})")
_PLAIN = re.compile(_SNUM)

_CURRENCY = re.compile(r"\\\$|\$|\\textdollar|US\$|€|£|¥|₹|\bUSD\b|\bEUR\b|\bRs\.?(?=\s*\d)", re.IGNORECASE)
_APPROX = re.compile(
    r"^(?:\\approx|≈|~|approx\.?|approximately|about|around|roughly|nearly)\s*", re.IGNORECASE
)
_LABEL = re.compile(r"^[A-Za-z][A-Za-z_ ]{0,30}?(?:\([a-z]\))?\s*(?:=|:)\s*")
_UNIT_TAIL = re.compile(
    r"(?:\s*(?:[A-Za-z]+\.?|[μΩ]+[A-Za-z]*)(?:\s*(?:\^\s*\{?\s*[23]\s*\}?|[²³]))?(?:\s*/\s*[A-Za-z]+(?:\^\s*\{?\s*[23]\s*\}?)?)?){1,3}\s*"
)
_UNIT_WORD = re.compile(r"[A-Za-zμΩ]+")
_SINGLE_LETTER_UNITS = frozenset("mgshlLKNJWVA")
_NOT_UNITS = frozenset(
    {
        "pi", "sqrt", "ln", "log", "sin", "cos", "tan", "cot", "sec", "csc", "exp", "inf", "infty",
        "infinity", "and", "or", "to", "times", "plus", "minus", "over", "divided", "by", "of",
        "hundred", "hundreds", "thousand", "thousands", "million", "millions", "billion", "billions",
        "trillion", "dozen", "dozens", "half", "third", "thirds", "quarter", "quarters", "i", "e",
        "x", "y", "z", "n", "k", "a", "b", "c", "d", "t", "r", "p", "q", "u", "v", "w", "f",
    }
)  # fmt: skip
_PERCENT = re.compile(r"\\?%|\s*\bpercent\b|\s*\bper cent\b", re.IGNORECASE)
_DEGREE_WORDS = re.compile(r"\s*\b(?:degrees?|deg)\b\.?", re.IGNORECASE)
_CJK_UNIT = re.compile(r"(?<=\d)\s*[\u4e00-\u9fff]{1,3}$")  # 4.40米, 5个, 30元


def _digits(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def _to_fraction(num: str) -> Fraction | None:
    num = num.replace(" ", "").replace(",", "")
    if _digits(num) > MAX_DIGITS:
        return None
    sign = -1 if num.startswith("-") else 1
    num = num.lstrip("+-")
    whole, _, frac = num.partition(".")
    if not whole and not frac:
        return None
    value = Fraction(int(whole or "0"))
    if frac:
        value += Fraction(int(frac), 10 ** len(frac))
    return sign * value


def _exponent(m: re.Match[str]) -> int | None:
    e = m.group("e1") if "e1" in m.re.groupindex else m.group("e")
    if e is None:
        e = m.group("e2")
    if _digits(e) > 4 or abs(int(e)) > MAX_EXPONENT:
        return None
    return int(e)


def _core(s: str) -> tuple[Fraction, str] | None:
    """The number at the start of ``s`` and the rest of the string."""
    for pattern in (_SCI_TIMES, _SCI_E):
        m = pattern.match(s)
        if m:
            mant, exp = _to_fraction(m.group("m")), _exponent(m)
            if mant is None or exp is None:
                return None
            return mant * Fraction(10) ** exp, s[m.end() :]
    m = _FRAC_LATEX.match(s)
    if m:
        n, d = _to_fraction(m.group("n")), _to_fraction(m.group("d"))
        if n is None or d is None or d == 0:
            return None
        value = n / d
        return (-value if m.group("sign") == "-" else value), s[m.end() :]
    m = _FRAC_SLASH.match(s)
    if m:
        n, d = _to_fraction(m.group("n")), _to_fraction(m.group("d"))
        if n is None or d is None or d == 0:
            return None
        return n / d, s[m.end() :]
    m = _POW10.match(s)
    if m and not s[m.end() :].strip():
        exp = _exponent(m)
        if exp is None:
            return None
        value = Fraction(10) ** exp
        return (-value if m.group("sign") == "-" else value), ""
    m = _PLAIN.match(s)
    if m:
        value = _to_fraction(m.group(0))
        if value is None:
            return None
        return value, s[m.end() :]
    return None


def _is_unit_tail(rest: str) -> bool:
    rest = rest.strip()
    if not rest:
        return True
    if not _UNIT_TAIL.fullmatch(rest):
        return False
    words = _UNIT_WORD.findall(rest)
    for w in words:
        if w.lower() in _NOT_UNITS and not (len(w) == 1 and w in _SINGLE_LETTER_UNITS):
            return False
        if len(w) == 1 and w not in _SINGLE_LETTER_UNITS:
            return False
    return True


def clean_number_text(s: str) -> str:
    """Strip what never changes a number's value: wrappers, ``$``/currency, ``%``, degree marks,
    LaTeX spacing and text commands, ``{,}`` separators, a leading ``x =`` / ``Area =`` label.

    >>> clean_number_text("$1{,}000$ dollars")
    '1,000 dollars'
    >>> clean_number_text("Area $=113.1 \\\\mathrm{~cm}^{2}$")
    '113.1  cm^{2}'
    """
    s = strip_wrappers(s)
    s = s.replace("−", "-").replace("{,}", ",").replace("\\!", "")
    s = unwrap_text_commands(s)
    s = re.sub(r"\\[,;: ]|~", " ", s)
    s = _CURRENCY.sub("", s)
    s = _PERCENT.sub("", s)
    s = remove_degrees(s)
    s = _DEGREE_WORDS.sub("", s)
    s = _CJK_UNIT.sub("", s)
    s = s.strip()
    s = _APPROX.sub("", s)
    m = _LABEL.match(s)
    if m and s.count("=") <= 1 and m.end() < len(s):
        s = s[m.end() :]
    s = fix_latex_shorthand(strip_wrappers(s))
    return s.strip()


def parse_number(s: str | None) -> Fraction | None:
    """The exact value of a numeric answer, or None when ``s`` is not (only) a number.

    Units and currency are dropped (``12 cm``, ``$5``, ``5 dollars``), as are ``%`` and degree
    marks. Bounded: too long, too many digits or too large an exponent gives None.

    >>> parse_number("$1,000.00"), parse_number("\\\\frac{3}{4}"), parse_number("-1.5 \\\\times 10^{3}")
    (Fraction(1000, 1), Fraction(3, 4), Fraction(-1500, 1))
    >>> parse_number("40°"), parse_number("2 \\\\pi"), parse_number("10**10**10")
    (Fraction(40, 1), None, None)
    """
    if s is None or len(s) > MAX_NUMBER_CHARS:
        return None
    t = clean_number_text(s)
    if not t or len(t) > MAX_NUMBER_CHARS:
        return None
    got = _core(t)
    if got is None:
        return None
    value, rest = got
    if not _is_unit_tail(rest):
        return None
    return value


def format_number(x: Fraction, precision: int | None = None) -> str:
    """The canonical string of a number: integers plainly, finite decimals without trailing
    zeros, other rationals as ``p/q``; with ``precision``, rounded as MathVista does
    (``round(float(x), precision)``) and printed with that many decimals.

    >>> format_number(Fraction(18)), format_number(Fraction(3, 4)), format_number(Fraction(1, 3))
    ('18', '0.75', '1/3')
    >>> format_number(Fraction(2371, 1000), 1), format_number(Fraction(-1, 100), 1)
    ('2.4', '0.0')
    """
    if precision is not None:
        p = max(0, int(precision))
        v = round(float(x), p) + 0.0  # + 0.0 turns -0.0 into 0.0
        return f"{v:.{p}f}"
    if x.denominator == 1:
        return str(x.numerator)
    d, twos, fives = x.denominator, 0, 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{x.numerator}/{x.denominator}"
    k = max(twos, fives)
    scaled = abs(x.numerator) * 10**k // x.denominator
    whole, frac = divmod(scaled, 10**k)
    sign = "-" if x < 0 else ""
    return f"{sign}{whole}.{str(frac).rjust(k, '0').rstrip('0')}"
