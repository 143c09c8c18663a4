"""``symbolic``: check the arithmetic a step writes down, with a safe parser (never ``eval``).

A step like ``Step 2: He buys 5 more, so he has 3 + 5 = 8 apples.`` claims ``3 + 5 = 8``; the
:class:`SymbolicScorer` finds such claims, computes both sides exactly (``fractions.Fraction``) and
scores the step ``1.0`` when every claim holds, ``0.0`` when one is false and ``None`` when the step
makes no claim it can check. It costs no model call.

What is understood:

* operators ``+ - * / ^ **``, ``x``/``X`` between numbers, ``×``, ``·``, ``÷``, ``−``, parentheses,
  implicit products ``2(3 + 4)`` and ``2x``, ``sqrt(..)``/``√``, ``²``/``³``; a few LaTeX forms
  (``\\times``, ``\\cdot``, ``\\div``, ``\\frac{a}{b}``, ``\\sqrt{a}``, braces);
* numbers with thousands commas (``1,200``), decimals, ``$`` signs, percentages (``20% of 50``,
  ``25% = 0.25``; a percentage added to a number, ``50 + 10%``, is ambiguous and left unknown);
* chains ``3 + 4 = 7 * 2 = 14`` read as running calculations (``7`` continues the previous result);
* rounding: a side written with ``d`` decimals may be off by one unit of its last digit
  (``10 / 3 = 3.33``); ``≈`` allows 1 % relative error;
* simple equations: a single-letter variable defined in the step or an earlier step (``x = 2``)
  is substituted into the other claims (``2x + 3 = 7``); claims with unbound variables are unknown.

Safety: model output is untrusted. Numbers over :data:`MAX_DIGITS` digits, values over
:data:`MAX_BITS` bits, exponents over :data:`MAX_EXPONENT`, nesting over :data:`MAX_DEPTH`, and
very long expressions are *unknown*, so ``9^9^9``, ``10**10**10``, 5,000-digit numbers and
``__import__('os')`` cost microseconds and never raise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from slowthink.scorers.base import ScoreQuery, ScoreResult, StepCache, StepScorer

#: Longest number literal (digits) that is evaluated; longer ones make the claim unknown.
MAX_DIGITS = 30
#: Largest numerator / denominator (bits) of any intermediate value.
MAX_BITS = 2048
#: Largest integer exponent evaluated.
MAX_EXPONENT = 512
#: Deepest parenthesis / unary nesting.
MAX_DEPTH = 40
#: Most tokens in one side of a claim.
MAX_SIDE_TOKENS = 80
#: Most claims checked in one step.
MAX_CLAIMS = 64
#: Most characters of a step that are read.
MAX_TEXT_CHARS = 20_000
#: Relative tolerance of ``≈`` claims.
APPROX_REL_TOL = 0.01
#: Relative tolerance of comparisons that involve a float (irrational roots, fractional powers).
FLOAT_REL_TOL = 1e-9
_FLOAT_LIMIT = 1e300


class Unknown(Exception):
    """The expression cannot be evaluated safely or has no definite value."""


class _ParseError(Exception):
    pass


# --- text normalisation ----------------------------------------------------------------------
_TRANSLATE = str.maketrans(
    {
        "×": "*",
        "·": "*",
        "⋅": "*",
        "∗": "*",
        "✕": "*",
        "÷": "/",
        "∕": "/",
        "⁄": "/",
        "−": "-",
        "–": "-",
        "﹣": "-",
        "－": "-",
        "＝": "=",
        "≃": "≈",
        "≅": "≈",
        "＋": "+",
        "（": "(",
        "）": ")",
        "[": "(",
        "]": ")",
        "{": "(",
        "}": ")",
        "√": " sqrt",
        "²": "^2",
        "³": "^3",
    }
)
_LATEX = [
    (re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\sqrt\s*\{([^{}]*)\}"), r" sqrt(\1)"),
    (re.compile(r"\\(?:times|cdot|ast)\b"), "*"),
    (re.compile(r"\\div\b"), "/"),
    (re.compile(r"\\approx\b"), "≈"),
    (re.compile(r"\\(?:left|right)\b"), ""),
    (re.compile(r"\\[,;:! ]"), " "),
    (re.compile(r"\\([%$])"), r"\1"),
    (re.compile(r"\\(?:\(|\)|\[|\])"), " "),
]
_BULLET = re.compile(r"^[ \t]*[-*•][ \t]+", re.MULTILINE)


def _normalize(text: str) -> str:
    text = text[:MAX_TEXT_CHARS]
    if "\\" in text:
        for pattern, repl in _LATEX:
            text = pattern.sub(repl, text)
    text = _BULLET.sub("", text)
    return text.translate(_TRANSLATE)


# --- tokens ----------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?|\.\d+)
    |(?P<op>\*\*|[-+*/^])
    |(?P<eq>==|~=|=|≈)
    |(?P<lp>\()
    |(?P<rp>\))
    |(?P<pct>%)
    |(?P<skip>\$)
    |(?P<word>[^\W\d]+)
    |(?P<ws>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# Token kinds that can be part of an arithmetic run.
_MATH = {"num", "op", "eq", "lp", "rp", "pct", "var", "func"}


@dataclass
class _Tok:
    kind: str
    text: str
    start: int
    end: int
    spaced: bool
    """Whitespace (or a ``$``) right before this token."""


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    spaced = True
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind in ("ws", "skip"):
            spaced = True
            continue
        value = m.group()
        if kind == "op" and value == "**":
            value = "^"
        if kind == "eq":
            value = "≈" if value in ("≈", "~=") else "="
        toks.append(_Tok(kind, value, m.start(), m.end(), spaced))
        spaced = False
    # Words: 'x' between two operands is a product, '% of' is a product, sqrt is a function,
    # other single letters are variables, longer words end an arithmetic run.
    operand_end = {"num", "rp", "pct"}
    operand_start = {"num", "lp"}
    for i, t in enumerate(toks):
        if t.kind != "word":
            continue
        low = t.text.lower()
        prev = toks[i - 1] if i > 0 else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        times = low == "x" and prev and nxt and prev.kind in operand_end and nxt.kind in operand_start
        percent_of = low == "of" and prev and prev.kind == "pct"
        if times or percent_of:
            t.kind, t.text = "op", "*"
        elif low == "sqrt":
            t.kind = "func"
        elif len(t.text) == 1 and t.text.isascii():
            t.kind = "var"
    return toks


# --- parser: tokens -> tree (tuples) ----------------------------------------------------------
# ("num", Fraction | None, decimals, digits)  ("var", name)  ("pct", node)  ("neg", node)
# ("bin", op, left, right)  ("sqrt", node)


class _Parser:
    def __init__(self, toks: Sequence[_Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse(self) -> tuple:
        node = self.expr()
        if self.i != len(self.toks):
            raise _ParseError(f"unexpected {self.toks[self.i].text!r}")
        return node

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _ParseError("too deep")

    def expr(self) -> tuple:
        node = self.term()
        while (t := self.peek()) is not None and t.kind == "op" and t.text in "+-":
            self.take()
            node = ("bin", t.text, node, self.term())
        return node

    def term(self) -> tuple:
        node = self.unary()
        while (t := self.peek()) is not None:
            if t.kind == "op" and t.text in "*/":
                self.take()
                node = ("bin", t.text, node, self.unary())
            elif t.kind in ("lp", "func") or (t.kind == "var" and not t.spaced):
                node = ("bin", "*", node, self.unary())  # implicit product: 2(3+4), 2x, 2 sqrt(4)
            else:
                break
        return node

    def unary(self) -> tuple:
        t = self.peek()
        if t is not None and t.kind == "op" and t.text in "+-":
            self.take()
            self._enter()
            inner = self.unary()
            self.depth -= 1
            return ("neg", inner) if t.text == "-" else inner
        return self.power()

    def power(self) -> tuple:
        base = self.postfix()
        t = self.peek()
        if t is not None and t.kind == "op" and t.text == "^":
            self.take()
            self._enter()
            exponent = self.unary()  # right-associative: 2^3^2 = 2^9
            self.depth -= 1
            return ("bin", "^", base, exponent)
        return base

    def postfix(self) -> tuple:
        node = self.atom()
        t = self.peek()
        if t is not None and t.kind == "pct":
            self.take()
            node = ("pct", node)
        return node

    def atom(self) -> tuple:
        t = self.peek()
        if t is None:
            raise _ParseError("unexpected end")
        if t.kind == "num":
            self.take()
            return _number(t.text)
        if t.kind == "var":
            self.take()
            return ("var", t.text)
        if t.kind == "lp":
            self.take()
            self._enter()
            node = self.expr()
            self.depth -= 1
            close = self.peek()
            if close is None or close.kind != "rp":
                raise _ParseError("unclosed parenthesis")
            self.take()
            return node
        if t.kind == "func":
            self.take()
            self._enter()
            node = ("sqrt", self.postfix())
            self.depth -= 1
            return node
        raise _ParseError(f"unexpected {t.text!r}")


def _number(text: str) -> tuple:
    plain = text.replace(",", "")
    whole, _, frac = plain.partition(".")
    digits = len(whole.lstrip("0")) + len(frac)
    if digits > MAX_DIGITS:
        return ("num", None, len(frac), digits)  # too big: evaluating it is unknown
    return ("num", Fraction(plain), len(frac), digits)


def _parse(toks: Sequence[_Tok]) -> tuple | None:
    if not toks or len(toks) > MAX_SIDE_TOKENS:
        return None
    try:
        return _Parser(toks).parse()
    except _ParseError:
        return None


# --- evaluation --------------------------------------------------------------------------------
Value = Fraction | float


def _check(v: Value) -> Value:
    if isinstance(v, Fraction):
        if v.numerator.bit_length() > MAX_BITS or v.denominator.bit_length() > MAX_BITS:
            raise Unknown("value too large")
        return v
    if not math.isfinite(v) or abs(v) > _FLOAT_LIMIT:
        raise Unknown("value out of range")
    return v


def _float(v: Value) -> float:
    try:
        return float(v)
    except OverflowError as e:
        raise Unknown("value out of range") from e


def _pow(base: Value, exp: Value) -> Value:
    if isinstance(exp, Fraction) and exp.denominator == 1 and isinstance(base, Fraction):
        n = exp.numerator
        if abs(n) > MAX_EXPONENT:
            raise Unknown("exponent too large")
        size = max(base.numerator.bit_length(), base.denominator.bit_length(), 1)
        if size * abs(n) > MAX_BITS:
            raise Unknown("power too large")
        if base == 0 and n < 0:
            raise Unknown("zero to a negative power")
        return base**n
    b, e = _float(base), _float(exp)
    if b < 0 or (b == 0 and e <= 0):
        raise Unknown("no real power")
    if abs(e) > MAX_EXPONENT or (b > 0 and abs(e * math.log2(b)) > 1000):
        raise Unknown("power too large")
    return b**e


def _sqrt(v: Value) -> Value:
    if v < 0:
        raise Unknown("square root of a negative number")
    if isinstance(v, Fraction):
        rn, rd = math.isqrt(v.numerator), math.isqrt(v.denominator)
        if rn * rn == v.numerator and rd * rd == v.denominator:
            return Fraction(rn, rd)
    return math.sqrt(_float(v))


def _evaluate(node: tuple, env: dict[str, Value]) -> Value:
    kind = node[0]
    if kind == "num":
        if node[1] is None:
            raise Unknown("number too long")
        return node[1]
    if kind == "var":
        if node[1] not in env:
            raise Unknown(f"unbound variable {node[1]}")
        return env[node[1]]
    if kind == "pct":
        return _check(_evaluate(node[1], env) / 100)
    if kind == "neg":
        return -_evaluate(node[1], env)
    if kind == "sqrt":
        return _check(_sqrt(_evaluate(node[1], env)))
    _, op, left, right = node
    if op in "+-" and (left[0] == "pct" or right[0] == "pct"):
        raise Unknown("a percentage added to a number is ambiguous")
    a, b = _evaluate(left, env), _evaluate(right, env)
    if isinstance(a, float) or isinstance(b, float):
        a, b = _float(a), _float(b)
    if op == "+":
        return _check(a + b)
    if op == "-":
        return _check(a - b)
    if op == "*":
        return _check(a * b)
    if op == "/":
        if b == 0:
            raise Unknown("division by zero")
        return _check(a / b)
    return _check(_pow(a, b))


# --- claims ------------------------------------------------------------------------------------
@dataclass
class Claim:
    """One checked equality as written in the step."""

    text: str
    holds: bool | None
    """True / False, or ``None`` when it could not be checked (unbound variable, too large, ...)."""
    detail: str = ""


@dataclass
class _Side:
    node: tuple
    toks: list[_Tok]


def _literal_decimals(node: tuple) -> int | None:
    """Decimals of a side that is a bare number (possibly negative or a percentage)."""
    while node[0] in ("neg", "pct"):
        node = node[1]
    return node[2] if node[0] == "num" else None


def _leading_literal(node: tuple) -> tuple | None:
    """The leftmost number of an operation (``7`` in ``7 * 2``), for running chains."""
    if node[0] != "bin":
        return None
    while node[0] == "bin":
        node = node[2]
    return node if node[0] == "num" else None


def _candidates(node: tuple, env: dict[str, Value]) -> list[Value]:
    """Values of a side; a bare percentage also stands for its number (``25% `` vs ``25``)."""
    v = _evaluate(node, env)
    if node[0] == "pct" and node[1][0] == "num":
        return [v, _evaluate(node[1], env)]
    return [v]


def _close(a: Value, b: Value, decimals: int, approx: bool) -> bool:
    decimals = min(decimals, 12)
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        diff: Value = abs(a - b)
        tol: Value = Fraction(1, 10**decimals) if decimals > 0 else Fraction(0)
        if approx:
            tol = max(tol, Fraction(1, 2 * 10**decimals), abs(b) * Fraction(APPROX_REL_TOL))
        return diff <= tol
    fa, fb = _float(a), _float(b)
    tol_f = 10.0**-decimals if decimals > 0 else 0.0
    if approx:
        tol_f = max(tol_f, 0.5 * 10.0**-decimals, abs(fb) * APPROX_REL_TOL)
    return abs(fa - fb) <= tol_f + FLOAT_REL_TOL * max(abs(fa), abs(fb), 1.0)


def _equal(left: _Side, right: _Side, env: dict[str, Value], approx: bool) -> bool:
    decimals = max(_literal_decimals(left.node) or 0, _literal_decimals(right.node) or 0)
    return any(
        _close(a, b, decimals, approx)
        for a in _candidates(left.node, env)
        for b in _candidates(right.node, env)
    )


def _split_runs(toks: list[_Tok]) -> list[list[_Tok]]:
    runs: list[list[_Tok]] = []
    cur: list[_Tok] = []
    for t in toks:
        if t.kind in _MATH:
            if cur and t.kind == "num" and t.spaced and cur[-1].kind in ("num", "rp", "pct", "var"):
                runs.append(cur)  # a number right after an operand starts a new expression
                cur = []
            cur.append(t)
        else:
            if cur:
                runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return [r for r in runs if any(t.kind == "eq" for t in r)]


_GLUED_BEFORE = re.compile(r"\d[:/,.]$")
_GLUED_AFTER = re.compile(r"^[:/,]\d")


def _cuttable(seg: Sequence[_Tok], i: int) -> bool:
    """Whether a side may be cut between tokens ``i - 1`` and ``i``."""
    return seg[i].spaced or seg[i].kind in ("lp", "rp") or seg[i - 1].kind in ("lp", "rp")


def _chain(run: list[_Tok], text: str) -> tuple[list[_Side | None], list[str]]:
    """Cut a run at its ``=`` signs and parse each side; the outer sides are trimmed to what parses."""
    segments: list[list[_Tok]] = [[]]
    relations: list[str] = []
    for t in run:
        if t.kind == "eq":
            segments.append([])
            relations.append(t.text)
        else:
            segments[-1].append(t)
    sides: list[_Side | None] = []
    last = len(segments) - 1
    for k, seg in enumerate(segments):
        node = _parse(seg)
        if node is None and seg and k in (0, last) and len(seg) <= MAX_SIDE_TOKENS:
            # Words next to the outer sides ("a 3 + 4", "7 )"): keep the longest part that parses,
            # cut only where the text has a space or a parenthesis ("1e5" is not cut into "5").
            cuts = range(1, len(seg)) if k == 0 else range(len(seg) - 1, 0, -1)
            for c in cuts:
                if not _cuttable(seg, c):
                    continue
                part = seg[c:] if k == 0 else seg[:c]
                node = _parse(part)
                if node is not None:
                    seg = part
                    break
        sides.append(_Side(node, seg) if node is not None else None)
    # A run glued to digits outside it ("3:4 = 0.75", "= 6:8", "= 3,5") is part of something else.
    if sides and sides[0] is not None and _GLUED_BEFORE.search(text[: sides[0].toks[0].start]):
        sides[0] = None
    if sides and sides[-1] is not None and _GLUED_AFTER.match(text[sides[-1].toks[-1].end :]):
        sides[-1] = None
    return sides, relations


def _definition(sides: list[_Side | None]) -> str | None:
    """The variable a chain defines (``x = 7 - 3 = 4`` defines x), else None."""
    first = sides[0]
    if first is not None and first.node[0] == "var" and len(sides) > 1:
        return first.node[1]
    return None


def _define(sides: list[_Side | None], env: dict[str, Value]) -> None:
    name = _definition(sides)
    if name is None:
        return
    for side in reversed(sides[1:]):
        if side is None:
            continue
        try:
            env[name] = _evaluate(side.node, env)
        except Unknown:
            env.pop(name, None)
        return


def _chains(text: str) -> tuple[str, list[tuple[list[_Side | None], list[str]]]]:
    norm = _normalize(text)
    return norm, [_chain(run, norm) for run in _split_runs(_tokenize(norm))[:MAX_CLAIMS]]


def _bindings(history: Iterable[str]) -> dict[str, Value]:
    env: dict[str, Value] = {}
    for step in history:
        for sides, _ in _chains(step)[1]:
            _define(sides, env)
    return env


def find_claims(text: str, history: Sequence[str] = ()) -> list[Claim]:
    """The arithmetic claims of ``text`` and whether each holds.

    ``history`` holds earlier steps: variables they define (``x = 4``) are known here.

    Example:
        >>> [(c.text, c.holds) for c in find_claims("So he has 3 + 5 = 8 apples, and 8 x 2 = 15.")]
        [('3 + 5 = 8', True), ('8 x 2 = 15', False)]
        >>> [(c.text, c.holds) for c in find_claims("3 + 4 = 7 * 2 = 14")]  # a running chain
        [('3 + 4 = 7 * 2', True), ('7 * 2 = 14', True)]
        >>> [c.holds for c in find_claims("10 / 3 = 3.33, $1,200 * 5% = $60")]
        [True, True]
        >>> [c.holds for c in find_claims("2x + 3 = 7, so x = 2")]
        [True]
        >>> [c.holds for c in find_claims("9^9^9 = 1")]  # too large to evaluate: unknown
        [None]
        >>> find_claims("__import__('os').system('ls')")
        []
    """
    norm, chains = _chains(text)
    env = _bindings(history)
    for sides, _ in chains:  # definitions anywhere in the step are known to all its claims
        _define(sides, env)
    claims: list[Claim] = []
    for sides, relations in chains:
        start = 1 if _definition(sides) is not None else 0
        for k in range(start, len(sides) - 1):
            left, right = sides[k], sides[k + 1]
            if left is None or right is None:
                continue
            if len(claims) >= MAX_CLAIMS:
                return claims
            approx = relations[k] == "≈"
            claim_text = norm[left.toks[0].start : right.toks[-1].end]
            try:
                holds = _equal(left, right, env, approx)
                detail = ""
                if not holds:
                    lead = _leading_literal(right.node)
                    if lead is not None:  # running chain: "3 + 4 = 7 * 2" continues from 7
                        lead_side = _Side(lead, right.toks[:1])
                        holds = _equal(left, lead_side, env, approx)
                    if not holds:
                        detail = f"left side is {_show(_evaluate(left.node, env))}"
                claims.append(Claim(claim_text, holds, detail))
            except Unknown as e:
                claims.append(Claim(claim_text, None, str(e)))
            except (ArithmeticError, ValueError) as e:  # defensive: never let a claim crash a run
                claims.append(Claim(claim_text, None, f"{type(e).__name__}: {e}"))
    return claims


def _show(v: Value) -> str:
    if isinstance(v, Fraction) and v.denominator == 1:
        return str(v.numerator)
    return f"{_float(v):.6g}"


def check_step(text: str, history: Sequence[str] = ()) -> float | None:
    """1.0 when every checkable claim of the step holds, 0.0 when one is false, else None.

    Example:
        >>> check_step("Step 1: 6 pens cost 6 * 4 = 24 dollars.")
        1.0
        >>> check_step("Step 2: Her change is 30 - 24 = 5 dollars.")
        0.0
        >>> check_step("Step 3: Tom has three apples.") is None
        True
    """
    return _score(find_claims(text, history))


def _score(claims: Sequence[Claim]) -> float | None:
    verdicts = [c.holds for c in claims if c.holds is not None]
    if not verdicts:
        return None
    return 1.0 if all(verdicts) else 0.0


# --- scorers -----------------------------------------------------------------------------------
class SymbolicScorer:
    """Step scores from the arithmetic the steps write down (no model call).

    ``1.0`` when all of a step's claims hold, ``0.0`` when one is false, ``None`` when the step
    has no checkable claim. Each (problem id, step prefix) is checked once and cached.
    """

    name = "symbolic"

    def __init__(self) -> None:
        self._cache: StepCache[tuple[float | None, str | None]] = StepCache()
        self.checked_steps = 0
        """Steps checked (not served from the cache), for tests and benchmarks."""

    def score(self, queries: Sequence[ScoreQuery]) -> list[ScoreResult]:
        for key, (qi, si) in self._cache.missing(queries).items():
            self._cache.put(key, self._check(si, queries[qi].steps))
        results = []
        for q in queries:
            checked = [self._cache[key] for key in self._cache.keys(q)]
            results.append(ScoreResult(scores=[s for s, _ in checked], notes=[n for _, n in checked if n]))
        return results

    def _check(self, i: int, steps: Sequence[str]) -> tuple[float | None, str | None]:
        """Step ``i``'s score (the earlier steps bind variables) and a note naming its false claims."""
        self.checked_steps += 1
        claims = find_claims(steps[i], steps[:i])
        false = [f"{c.text} ({c.detail})" if c.detail else c.text for c in claims if c.holds is False]
        return _score(claims), f"step {i + 1}: false claim {'; '.join(false)}" if false else None


@dataclass
class WeightedScorer:
    """Several step scorers combined: per step, the weighted mean of the scores that are known.

    ``WeightedScorer([(judge, 0.5), (SymbolicScorer(), 0.5)])`` is named ``judge+symbolic``. A step
    no scorer can judge stays ``None``. Compute (tokens, calls) and notes of the parts are summed.
    """

    parts: list[tuple[Any, float]]
    name: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("WeightedScorer needs at least one (scorer, weight) pair")
        for scorer, weight in self.parts:
            if not isinstance(scorer, StepScorer):
                raise ValueError(f"WeightedScorer: {scorer!r} is not a step scorer (it has no score())")
            if not weight > 0:
                raise ValueError(f"WeightedScorer: weights must be > 0, got {weight} for {scorer.name}")
        self.name = "+".join(s.name for s, _ in self.parts)

    def score(self, queries: Sequence[ScoreQuery]) -> list[ScoreResult]:
        per_part = [scorer.score(queries) for scorer, _ in self.parts]
        results = []
        for qi, q in enumerate(queries):
            combined: list[float | None] = []
            for si in range(len(q.steps)):
                total = weights = 0.0
                for (_, weight), res in zip(self.parts, per_part):
                    s = res[qi].scores[si] if si < len(res[qi].scores) else None
                    if s is not None and not math.isnan(s):
                        total += weight * s
                        weights += weight
                combined.append(total / weights if weights else None)
            parts = [res[qi] for res in per_part]
            results.append(
                ScoreResult(
                    scores=combined,
                    prompt_tokens=sum(p.prompt_tokens for p in parts),
                    generated_tokens=sum(p.generated_tokens for p in parts),
                    calls=sum(p.calls for p in parts),
                    notes=[n for p in parts for n in p.notes],
                )
            )
        return results
