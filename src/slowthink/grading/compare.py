"""Is a predicted answer right? Rules first, math-verify for what the rules cannot settle.

1. Multiple choice: the predicted letter (or option text, matched back to its letter) against
   the gold letter or gold option text (MathVista gives the text, MathVerse/MATH-V a letter).
2. Numbers: equal exactly, or accepted by any rule the problem sets (:class:`NumberRules`):
   ``problem.precision`` after MathVista's rounding (``round(float(pred), precision)``);
   ``problem.abs_tol`` within that absolute error (``|pred - gold| <= 1e-3``);
   ``problem.rel_tol`` within that relative error (DynaMath-style ``1e-3``; absolute when the
   gold is 0). ``grade(tolerance=...)`` replaces them all with one relative tolerance.
3. Lists, tuples, intervals: element-wise with the same brackets (``list`` answers ignore
   bracket kind; sets ignore order).
4. Strings: equal after light normalisation.
5. Anything with maths in it that the rules did not accept: math-verify, bounded in time
   (:mod:`slowthink.grading.safe_math`).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from slowthink.grading._latex import last_boxed, latex_light, strip_wrappers
from slowthink.grading.choices import choice_key, effective_choices, is_choice_problem, letter_index
from slowthink.grading.extract import extract_answer, has_answer_cue
from slowthink.grading.normalize import _normalize, normalize_answer, scalar_key, split_sequence
from slowthink.grading.numeric import parse_number
from slowthink.grading.safe_math import DEFAULT_TIMEOUT_S, verify_latex, within_grade_budget
from slowthink.types import LETTERS, Problem

METHODS = ("choice", "number", "list", "string", "math_verify", "llm_judge", "no_answer", "no_gold")
"""Every value ``Grade.method`` takes."""
MAX_PLAIN_ANSWER_CHARS = 120
"""A ``pred`` up to this long is an answer, unless it has an answer cue (then it is extracted)."""
MAX_ONE_LINE_ANSWER_CHARS = 400
"""A longer ``pred`` without a cue is a response (extracted first); between the two limits, a
one-line ``pred`` or one naming an option is still an answer."""
MAX_OPTIONS_VERIFIED = 10
"""An unmatched multiple-choice answer is checked with math-verify against at most this many options."""

_MATHY = re.compile(r"[\\^{}()\[\]=<>+*/|\d]|sqrt|pi\b|infty")
_SEQ_PAIRS = {("(", ")"), ("[", "]")}


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer.

    ``method`` says which rule decided (one of :data:`METHODS`); ``pred_norm``/``gold_norm`` are
    the normalised keys (:func:`normalize_answer`); ``note`` tells why math-verify could not
    decide (``timeout``, ``rejected pred: power tower`` ...) or how an option was matched.
    """

    correct: bool
    method: str
    pred_norm: str | None = None
    gold_norm: str | None = None
    note: str | None = None


def gold_text(answer: str | None) -> str | None:
    """The gold answer string: the part after ``####`` (GSM8K solutions) or in the last
    ``\\boxed{}`` (MATH solutions), else the answer as given; None when empty.

    >>> gold_text("She sold 48 + 24 = 72.\\n#### 72"), gold_text("so \\\\boxed{\\\\frac{1}{2}}"), gold_text(" ")
    ('72', '\\\\frac{1}{2}', None)
    """
    if answer is None:
        return None
    if "####" in answer:
        answer = answer.rsplit("####", 1)[1]
    elif "\\boxed" in answer or "\\fbox" in answer:
        answer = last_boxed(answer) or answer
    answer = answer.strip()
    return answer or None


def _is_response(pred: str, problem: Problem) -> bool:
    """Whether ``pred`` is a whole response to extract from rather than an answer: it has an
    answer cue, or it is long and several lines (or very long) and names no option."""
    if has_answer_cue(pred):
        return True
    if len(pred) <= MAX_PLAIN_ANSWER_CHARS:
        return False
    if is_choice_problem(problem) and _is_letter_key(normalize_answer(pred, problem)):
        return False
    return "\n" in pred.strip() or len(pred) > MAX_ONE_LINE_ANSWER_CHARS


def _is_letter_key(key: str | None) -> bool:
    return bool(key) and all(len(x) == 1 and x in LETTERS for x in key.split(","))


def _same_option(a: str | None, b: str, choices: list[str] | None) -> bool:
    """Whether single letters ``a`` and ``b`` name options with the same text (a data slip such as
    MathVista's ``['9', '12', '18', '18']``: D is as right as C)."""
    if not a or not choices or "," in a or "," in b:
        return False
    i, j = letter_index(a), letter_index(b)
    return i < len(choices) and j < len(choices) and choice_key(choices[i]) == choice_key(choices[j])


def _exact(tol: float) -> Fraction:
    """``0.001`` as exactly 1/1000 (not the binary float), so a difference of exactly the
    tolerance is inside it."""
    return Fraction(repr(float(tol)))


@dataclass(frozen=True)
class NumberRules:
    """When two numbers count as the same answer: equal, or within any rule that is set.

    >>> NumberRules(abs_tol=1e-3).equal(Fraction("2.094"), Fraction("2.0944"))
    True
    >>> NumberRules().equal(Fraction("2.094"), Fraction("2.0944"))
    False
    """

    precision: int | None = None
    abs_tol: float | None = None
    rel_tol: float | None = None

    @classmethod
    def of(cls, problem: Problem, tolerance: float | None = None) -> NumberRules:
        """The problem's rules; ``tolerance`` (a relative tolerance) replaces them all."""
        if tolerance is not None:
            return cls(rel_tol=tolerance)
        return cls(problem.precision, problem.abs_tol, problem.rel_tol)

    def equal(self, p: Fraction, g: Fraction) -> bool:
        if p == g:
            return True
        diff = abs(p - g)
        if self.abs_tol is not None and diff <= _exact(self.abs_tol):
            return True
        if self.rel_tol is not None:
            tol = _exact(self.rel_tol)
            if diff <= (tol * abs(g) if g != 0 else tol):
                return True
        if self.precision is not None:
            try:
                return round(float(p), int(self.precision)) == round(float(g), int(self.precision))
            except OverflowError:
                return False
        return False


def _math_verify(gold: str, pred: str, timeout_s: float) -> tuple[bool, str, str | None]:
    r = verify_latex(gold, pred, timeout_s=timeout_s)
    return r.equivalent, "math_verify", r.note


def number_rules_summary(problems: Iterable[Problem]) -> dict[str, dict[str, int]]:
    """How many problems grade numbers under each rule value (``metrics.json`` records it):
    ``{"precision": {"2": 40}, "abs_tol": {"0.001": 60}, "rel_tol": {}}``.

    >>> number_rules_summary([Problem("1", "q", abs_tol=0.001), Problem("2", "q", precision=2)])
    {'precision': {'2': 1}, 'abs_tol': {'0.001': 1}, 'rel_tol': {}}
    """
    out: dict[str, Counter[str]] = {k: Counter() for k in ("precision", "abs_tol", "rel_tol")}
    for p in problems:
        for key, counts in out.items():
            value = getattr(p, key)
            if value is not None:
                counts[repr(value)] += 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _scalar(
    pred: str, gold: str, rules: NumberRules, timeout_s: float, number_only: bool
) -> tuple[bool, str, str | None]:
    g, p = parse_number(gold), parse_number(pred)
    if g is not None and p is not None:
        return rules.equal(p, g), "number", None
    if scalar_key(pred, rules.precision) == scalar_key(gold, rules.precision):
        return True, "number" if g is not None else "string", None
    if g is not None and not _MATHY.search(pred):  # a number against words
        return False, "number", None
    if _MATHY.search(gold) or _MATHY.search(pred):
        return _math_verify(gold, pred, timeout_s)
    return False, "number" if number_only else "string", None


def _brackets_ok(g: tuple[str, str], p: tuple[str, str], list_type: bool) -> bool:
    if list_type or g == p:
        return True
    if p == ("", ""):
        return g in _SEQ_PAIRS
    if g == ("", ""):
        return p in _SEQ_PAIRS
    return False


def _compare(
    pred: str, gold: str, problem: Problem, tolerance: float | None, timeout_s: float
) -> tuple[bool, str, str | None]:
    atype, rules = problem.answer_type, NumberRules.of(problem, tolerance)
    if atype == "text":
        return latex_light(pred) == latex_light(gold), "string", None
    list_type = atype == "list"
    g_num = parse_number(gold)
    gseq = None if g_num is not None else split_sequence(gold, force=list_type)
    pseq = split_sequence(pred, force=list_type) if gseq is not None else None
    if gseq is not None and pseq is not None:
        (go, gitems, gc), (po, pitems, pc) = gseq, pseq
        if len(gitems) != len(pitems) or not _brackets_ok((go, gc), (po, pc), list_type):
            return False, "list", None
        if go == "\\{":  # a set: order does not matter
            gitems = sorted(gitems, key=lambda x: scalar_key(x) or "")
            pitems = sorted(pitems, key=lambda x: scalar_key(x) or "")
        notes = []
        for p_item, g_item in zip(pitems, gitems):
            ok, _, note = _scalar(p_item, g_item, rules, timeout_s, number_only=False)
            if note:
                notes.append(note)
            if not ok:
                return False, "list", "; ".join(notes) or None
        return True, "list", "; ".join(notes) or None
    if list_type and gseq is not None:
        return False, "list", None
    return _scalar(pred, gold, rules, timeout_s, number_only=atype == "number")


def _option_by_math(pred: str, choices: list[str], timeout_s: float) -> str | None:
    """The one option math-verify finds equal to ``pred`` (e.g. ``\\frac{3}{4}\\sqrt{2}`` for
    ``$\\frac{3\\sqrt{2}}{4}$``), or None."""
    if len(choices) > MAX_OPTIONS_VERIFIED:
        return None
    hits = []
    for i, c in enumerate(choices):
        if (_MATHY.search(c) or _MATHY.search(pred)) and verify_latex(
            c, pred, timeout_s=timeout_s
        ).equivalent:
            hits.append(i)
    return LETTERS[hits[0]] if len(hits) == 1 else None


@within_grade_budget
def grade(
    pred: str | None,
    problem: Problem,
    *,
    tolerance: float | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Grade:
    """Grade one predicted answer against ``problem.answer``.

    ``pred`` is an extracted answer (a whole response, one with an answer cue or a long
    multi-line text, is extracted first).
    Numbers follow the problem's ``precision``/``abs_tol``/``rel_tol`` (:class:`NumberRules`);
    ``tolerance``, a relative tolerance, replaces them;
    ``timeout_s`` bounds a math-verify call, and all of a grade's calls together take at most
    ``safe_math.GRADE_BUDGET_S``. Never raises on bad answers, never hangs.

    >>> grade("$18.00", Problem(id="1", question="q", answer="18")).correct
    True
    >>> p = Problem(id="2", question="q", choices=["135°", "145°"], answer="145°")
    >>> grade("B", p).correct, grade("145", p).method, grade("A", p).correct
    (True, 'choice', False)
    >>> grade("1.24", Problem(id="3", question="q", answer="1.2", precision=1))
    Grade(correct=True, method='number', pred_norm='1.2', gold_norm='1.2', note=None)
    >>> grade("\\\\sqrt{12}", Problem(id="4", question="q", answer="2\\\\sqrt{3}")).method
    'math_verify'
    >>> grade(None, Problem(id="5", question="q", answer="7")).method
    'no_answer'
    """
    gold = gold_text(problem.answer)
    if pred is not None and _is_response(pred, problem):
        pred = extract_answer(pred, problem)
    pred_norm = normalize_answer(pred, problem) if pred is not None else None
    if gold is None:
        return Grade(False, "no_gold", pred_norm, None)
    gold_norm = _normalize(gold, problem, gold=True)
    if pred is None or not strip_wrappers(pred):
        return Grade(False, "no_answer", None, gold_norm)

    if is_choice_problem(problem):
        choices = effective_choices(problem)
        pred_letter = pred_norm if _is_letter_key(pred_norm) else None
        note = None
        if pred_letter is None and choices and _is_letter_key(gold_norm):
            pred_letter = _option_by_math(pred, choices, timeout_s)
            note = "option matched by math-verify" if pred_letter else None
        if _is_letter_key(gold_norm):
            ok = pred_letter == gold_norm or _same_option(pred_letter, gold_norm, choices)
            return Grade(ok, "choice", pred_letter or pred_norm, gold_norm, note)
        # The gold names no option (a data slip): compare the chosen option's text with it.
        if (
            pred_letter is not None
            and choices
            and "," not in pred_letter
            and letter_index(pred_letter) < len(choices)
        ):
            pred = choices[letter_index(pred_letter)]

    correct, method, note = _compare(pred, gold, problem, tolerance, timeout_s)
    return Grade(correct, method, pred_norm, gold_norm, note)


def is_equiv(
    a: str | None, b: str | None, problem: Problem | None = None, *, tolerance: float | None = None
) -> bool:
    """Whether two answers are the same answer (``b`` taken as the reference), with the rules of
    :func:`grade`; ``problem`` supplies choices, answer type and precision.

    >>> is_equiv("\\\\frac{1}{2}", "0.5"), is_equiv("1,000", "1000"), is_equiv("(0,1]", "[0,1]")
    (True, True, False)
    """
    if a is None or b is None:
        return False
    base = problem if problem is not None else Problem(id="is_equiv", question="")
    return grade(a, dataclasses.replace(base, answer=b), tolerance=tolerance).correct
