"""grade / is_equiv: benchmark conventions, tolerance, math-verify, threads and processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from slowthink.grading import METHODS, Grade, grade, is_equiv
from tests.grading.grading_helpers import TIME_LIMIT_S, make_problem, timed

P = make_problem

MC4 = dict(choices=["135°", "140°", "145°", "150°"], answer_type="choice")
MATHV = dict(choices=["A", "B", "C", "D", "E"], answer_type="choice")
MATHV_PAREN = dict(choices=["(A)", "(B)", "(C)", "(D)", "(E)"], answer_type="choice")
MATHV_SQRT = dict(
    choices=[
        "$\\frac{3\\sqrt{2}}{4}$",
        "$\\frac{7\\sqrt{6}}{16}$",
        "$\\frac{\\sqrt{5}}{2}$",
        "$\\frac{2\\sqrt{3}}{3}$",
    ],
    answer_type="choice",
)
VERSE_Q = "the size of angle CED is ()\nChoices:\nA:40°\nB:60°\nC:120°\nD:140°"
VERSE_TF = dict(choices=["True", "False"], answer_type="choice")

GRADE_CASES = [
    # --- GSM8K: numbers
    ("72", P("72", answer_type="number"), True, "number"),  # exact integer
    ("$1,000", P("1000", answer_type="number"), True, "number"),  # currency, separator
    ("18.00", P("18", answer_type="number"), True, "number"),  # trailing zeros
    ("18.5", P("18", answer_type="number"), False, "number"),  # different value
    # response + solution-style gold
    (
        "The answer is 72.",
        P("#### 72", answer_type="number"),
        True,
        "number",
    ),
    ("#### 5", P("5"), True, "number"),  # GSM8K-style prediction
    ("72 apples", P("72", answer_type="number"), True, "number"),  # unit word
    ("seventy-two", P("72", answer_type="number"), False, "number"),  # words are not numbers
    ("-3", P("-3", answer_type="number"), True, "number"),  # negative
    ("1e3", P("1000", answer_type="number"), True, "number"),  # scientific notation
    ("1.5 \\times 10^{3}", P("1500"), True, "number"),  # LaTeX scientific notation
    ("50%", P("50"), True, "number"),  # percent sign dropped
    # --- MathVista: precision, integers, lists, option text
    ("1.24", P("1.2", precision=1), True, "number"),  # rounds to gold
    ("1.16", P("1.2", precision=1), True, "number"),  # rounds up to gold
    ("1.26", P("1.2", precision=1), False, "number"),  # rounds away
    ("0.2149", P("0.21", precision=2), True, "number"),  # 2 decimals
    ("2.675", P("2.68", precision=2), False, "number"),  # binary 2.675 rounds down, as round() in MathVista
    ("131253.46", P("131253.5", precision=1), True, "number"),  # large float
    ("-4.3", P("-4.3", precision=1), True, "number"),  # negative float
    ("0", P("0.0", precision=1), True, "number"),  # zero
    ("\\frac{24}{5}", P("4.8"), True, "number"),  # LaTeX fraction vs decimal (MATH-V)
    ("[2014, 2016]", P("[2014, 2016]", answer_type="list"), True, "list"),  # list
    ("2014, 2016", P("[2014, 2016]", answer_type="list"), True, "list"),  # bare list
    ("[2016, 2014]", P("[2014, 2016]", answer_type="list"), False, "list"),  # order matters
    ("[2014]", P("[2014, 2016]", answer_type="list"), False, "list"),  # wrong length
    ("(2014, 2016)", P("[2014, 2016]", answer_type="list"), True, "list"),  # list: bracket kind ignored
    ("B", P("140°", **MC4), True, "choice"),  # letter vs gold option text
    ("C", P("140°", **MC4), False, "choice"),  # wrong letter
    ("140°", P("140°", **MC4), True, "choice"),  # option text
    ("140", P("140°", **MC4), True, "choice"),  # number of the option
    ("(B) 140°", P("140°", **MC4), True, "choice"),  # letter and text
    ("The answer is B.", P("140°", **MC4), True, "choice"),  # whole response
    ("6 cm", P("6cm", choices=["6cm", "7cm", "4cm", "5cm"]), True, "choice"),  # spacing in option text
    ("quarter to", P("quarter", choices=["half", "quarter", "quarter to"]), False, "choice"),  # near miss
    ("yes", P("Yes", choices=["Yes", "No"]), True, "choice"),  # case
    ("Maybe", P("Yes", choices=["Yes", "No"]), False, "choice"),  # no option
    # pid 168: gold text is option E
    (
        "E",
        P("(b)", choices=["(c)", "(a)", "(e)", "(d)", "(b)"]),
        True,
        "choice",
    ),
    # '(b)' is letter B, as MathVista
    (
        "(b)",
        P("(b)", choices=["(c)", "(a)", "(e)", "(d)", "(b)"]),
        False,
        "choice",
    ),
    # --- MATH-V: letters and LaTeX
    ("D", P("D", **MATHV), True, "choice"),  # letter
    ("(D)", P("D", **MATHV), True, "choice"),  # parenthesised letter
    ("d", P("D", **MATHV), True, "choice"),  # lower case
    ("E", P("D", **MATHV), False, "choice"),  # wrong letter
    ("Option D", P("D", **MATHV), True, "choice"),  # option word
    ("D", P("D", **MATHV_PAREN), True, "choice"),  # '(A)'-style option list
    ("\\frac{3\\sqrt{2}}{4}", P("A", **MATHV_SQRT), True, "choice"),  # option text in LaTeX
    ("\\frac{3}{4}\\sqrt{2}", P("A", **MATHV_SQRT), True, "choice"),  # equal option, other form
    ("\\frac{1}{2}", P("0.5"), True, "number"),  # fraction vs decimal
    ("2\\sqrt{3}", P("\\sqrt{12}"), True, "math_verify"),  # radicals
    ("4\\sqrt{3}", P("\\sqrt{12}"), False, "math_verify"),  # different radical
    ("\\frac{\\sqrt{30}}{2}", P("\\frac{\\sqrt{30}}{2}"), True, "string"),  # identical LaTeX
    ("\\frac{9\\sqrt3}{2}", P("\\frac{9\\sqrt{3}}{2}"), True, "string"),  # shorthand \sqrt3
    ("4+4\\sqrt{3}", P("4\\sqrt{3}+4"), True, "math_verify"),  # commuted sum
    ("(0, 1]", P("(0,1]"), True, "list"),  # interval, spacing
    ("[0, 1]", P("(0,1]"), False, "list"),  # closed vs half-open
    ("(0, \\frac{1}{2}]", P("(0, 0.5]"), True, "list"),  # element-wise numbers
    ("(3,-4)", P("(3,-4)"), True, "list"),  # point (MATH-V)
    ("3, -4", P("(3,-4)"), True, "list"),  # point without parentheses
    ("(-4,3)", P("(3,-4)"), False, "list"),  # swapped point
    ("-2", P("-2"), True, "number"),  # negative integer
    ("2.5", P("\\frac{5}{2}"), True, "number"),  # decimal vs fraction
    # --- MathVerse: inline choices, letters, free form
    ("D", P("D", question=VERSE_Q), True, "choice"),  # letter
    ("140°", P("D", question=VERSE_Q), True, "choice"),  # option text of inline choices
    ("A:40°", P("D", question=VERSE_Q), False, "choice"),  # 'A:40°' form, wrong
    ("B", P("False", **VERSE_TF), True, "choice"),  # gold as option text
    ("false", P("False", **VERSE_TF), True, "choice"),  # option text, case
    ("C, D", P("C, D", choices=["a", "b", "c", "d"], answer_type="list"), True, "choice"),  # choose 2
    ("D and C", P("C, D", choices=["a", "b", "c", "d"], answer_type="list"), True, "choice"),  # any order
    ("C", P("C, D", choices=["a", "b", "c", "d"], answer_type="list"), False, "choice"),  # half right
    ("(C)", P("(C)", choices=["x", "y", "z"]), True, "choice"),  # gold written '(C)'
    ("y=-2x+5", P("y=-2 x+5"), True, "string"),  # equation, spaces
    ("-2x+5", P("y=-2 x+5"), True, "string"),  # label dropped
    ("x^2+y^2=49", P("$x^{2}+y^{2}=49$"), True, "math_verify"),  # braces in powers
    ("y^2+x^2=49", P("$x^{2}+y^{2}=49$"), True, "math_verify"),  # commuted equation
    ("-\\frac{21}{29}", P("$-\\frac{21}{29}$"), True, "number"),  # negative fraction
    ("4.4", P("4.4 m"), True, "number"),  # unit in gold
    ("2191.7", P("2191.7 metres"), True, "number"),  # unit word in gold
    ("Perimeter = 18.8 cm", P("Perimeter $=18.8 \\mathrm{~cm}$"), True, "number"),  # labelled
    ("(-\\infty, 4]", P("(-\\infty, 4]"), True, "list"),  # infinite interval
    ("\\pi", P("\\pi"), True, "string"),  # symbol
    ("3.14", P("\\pi"), False, "math_verify"),  # approximation is not pi
    ("even", P("even"), True, "string"),  # word answer
    ("odd", P("even"), False, "string"),  # wrong word
    # --- text answers
    ("Paris", P("paris", answer_type="text"), True, "string"),  # case
    ("Pari", P("paris", answer_type="text"), False, "string"),  # no fuzzy matching for text
    # --- relative tolerance (DynaMath)
    ("1.0005", P("1.0"), False, "number"),  # exact by default
]

TOLERANCE_CASES = [
    ("1.0005", "1.0", 1e-3, True),  # within 0.1%
    ("1.002", "1.0", 1e-3, False),  # outside 0.1%
    ("100.05", "100", 1e-3, True),  # relative, not absolute
    ("0.0005", "0", 1e-3, True),  # absolute when gold is 0
    ("-2.001", "-2", 1e-3, True),  # negative
    ("\\frac{1}{3}", "0.3333", 1e-3, True),  # fraction vs decimal
]


@pytest.mark.parametrize(("pred", "problem", "correct", "method"), GRADE_CASES)
def test_grade(pred, problem, correct, method, mv_worker):
    g = grade(pred, problem)
    assert (g.correct, g.method) == (correct, method), g
    assert g.method in METHODS


@pytest.mark.parametrize(("pred", "gold", "tolerance", "correct"), TOLERANCE_CASES)
def test_grade_with_tolerance(pred, gold, tolerance, correct):
    g = grade(pred, P(gold), tolerance=tolerance)
    assert (g.correct, g.method) == (correct, "number")


def test_grade_reports_keys():
    g = grade("$1,000", P("1000.00", answer_type="number"))
    assert g == Grade(correct=True, method="number", pred_norm="1000", gold_norm="1000", note=None)


@pytest.mark.parametrize(
    ("pred", "problem", "method"),
    [
        (None, P("7"), "no_answer"),  # no prediction
        ("", P("7"), "no_answer"),  # empty prediction
        ("$$", P("7"), "no_answer"),  # only delimiters
        ("I cannot determine the answer. The answer is unknown.", P("7"), "no_answer"),  # refusal response
        ("7", P(None), "no_gold"),  # no gold
        ("7", P("   "), "no_gold"),  # blank gold
    ],
)
def test_grade_without_answer_or_gold(pred, problem, method):
    g = grade(pred, problem)
    assert not g.correct and g.method == method


ADVERSARIAL = [
    ("10**10**10", "1"),  # python power tower vs number
    ("10**10**10", "\\frac{1}{2}"),  # power tower vs LaTeX
    ("9^9^9^9", "\\sqrt{2}"),  # LaTeX power tower
    ("2^{2^{2^{100}}}", "\\sqrt{2}"),  # nested braces tower
    ("10^{1000000}", "\\sqrt{2}"),  # huge exponent
    ("100000!", "\\sqrt{2}"),  # huge factorial
    ("__import__('os').system('echo hacked')", "\\frac{1}{2}"),  # python code
    ("\\frac{1}{", "\\frac{1}{2}"),  # unbalanced braces
    ("\\sqrt{" * 500, "\\sqrt{2}"),  # deeply unbalanced
    ("9" * 5000, "9" * 5000),  # 5,000-digit numbers, equal
    ("9" * 5000, "\\sqrt{2}"),  # 5,000-digit number vs LaTeX
    ("\\frac{1}{2}", "9" * 5000 + "\\pi"),  # hostile gold
    ("x" * 100_000, "\\sqrt{2}"),  # runaway text
    ("(" * 3000 + ")" * 3000, "(1, 2)"),  # deep nesting
    ("[" * 1000, "[1, 2]"),  # 1,000 open brackets (took the whole 5 s timeout before)
    ("(" * 1000, "\\sqrt{2}"),  # 1,000 open parentheses
    ("{" * 400 + "}" * 400, "\\frac{1}{2}"),  # balanced braces 400 deep
    ("\\frac{1}{" * 90 + "2" + "}" * 90, "\\frac{1}{2}"),  # \frac nested 90 deep
    ("\\sqrt{" * 100 + "2" + "}" * 100, "\\sqrt{2}"),  # \sqrt nested 100 deep
    ("\\left(" * 60 + "1" + "\\right)" * 60, "1"),  # \left( chain
    ("\\left(" * 160, "(1, 2)"),  # unclosed \left( chain
    ("[" * 300, "[1, 2]"),  # 300 open brackets (under the length bound: the nesting rule)
    ("{" * 150 + "}" * 150, "\\frac{1}{2}"),  # balanced braces 150 deep
    ("\\frac{1}{" * 30 + "2" + "}" * 30, "\\frac{1}{2}"),  # \frac nested 30 deep
    ("\\sqrt{" * 50 + "2" + "}" * 50, "\\sqrt{2}"),  # \sqrt nested 50 deep
    ("\\left(" * 25 + "1" + "\\right)" * 25, "1"),  # \left( ... \right) 25 deep
    ("[" * 7 + "1" + "]" * 7, "[1]"),  # just past the nesting bound
    ("(" * 7 + "1" + ")" * 7, "1"),  # just past the nesting bound, parentheses
    ("\\frac{1}{2}", "[" * 1000),  # hostile gold
    ("e^{e^{e^{e^{100}}}}", "1"),  # symbolic power tower
    ("(999!)!", "1"),  # factorial of a factorial
    ("+".join(f"\\frac{{1}}{{{k}}}" for k in range(1, 80)), "\\pi"),  # long LaTeX sum (1,000 chars)
    ("x^{2}+" * 150 + "1", "\\sqrt{2}"),  # long polynomial (900 chars)
    ("x^{2}+" * 50 + "1", "\\sqrt{2}"),  # 50 terms in 300 chars
    ("(" + ",".join(str(k) for k in range(80)) + ")", "\\sqrt{2}"),  # an 80-tuple against a number
    ("\\sqrt{2}", "+".join(["\\sqrt{2}"] * 40)),  # hostile gold: 40 terms
]


@pytest.mark.parametrize(("pred", "gold"), ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_grade_adversarial_is_bounded(pred, gold, mv_worker):
    g, elapsed = timed(grade, pred, P(gold))
    assert elapsed < TIME_LIMIT_S
    assert g.correct == (pred == gold)


@pytest.mark.parametrize("worker", ["cold", "warm"])
def test_every_hostile_answer_grades_within_2s(worker):
    """Each row of the adversarial table, timed alone: from a stopped worker (each row starts
    with none running) and from a running one; no cached verdicts either way."""
    from slowthink.grading import safe_math

    slow = []
    try:
        for i, (pred, gold) in enumerate(ADVERSARIAL):
            safe_math._verify_cached.cache_clear()
            if worker == "cold":
                safe_math.shutdown()
            else:
                assert safe_math.start_worker()
            g, elapsed = timed(grade, pred, P(gold))
            assert g.correct == (pred == gold), i
            if elapsed >= TIME_LIMIT_S:
                slow.append((i, round(elapsed, 2), g.note))
    finally:
        assert safe_math.start_worker()  # later timed tests expect a running worker
    assert not slow, f"rows graded in {TIME_LIMIT_S} s or more (row, seconds, note): {slow}"


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),  # nested LaTeX, equal by math-verify
        ("[[1,2],[3,4]]", "[[1,2],[3,4]]"),  # nested list
        ("\\left(\\frac{1}{2}\\right)^{2}", "\\frac{1}{4}"),  # \left( ... \right) around a fraction
        ("\\sqrt{\\sqrt{\\sqrt{16}}}", "\\sqrt{2}"),  # three radicals deep
        ("((((1))))", "1"),  # parentheses 4 deep
        ("\\frac{1}{" * 5 + "\\frac{1}{2}" + "}" * 5, "2"),  # exactly at the nesting bound (MAX_NESTING = 6)
    ],
)
def test_reasonable_nesting_still_grades_right(pred, gold, mv_worker):
    g, elapsed = timed(grade, pred, P(gold))
    assert g.correct, g
    assert elapsed < TIME_LIMIT_S


def test_grade_adversarial_multiple_choice_is_bounded(mv_worker):
    problem = P("A", **MATHV_SQRT)
    for pred in ("10**10**10", "9^9^9^9", "__import__('os')", "\\frac{1}{", "9" * 5000):
        g, elapsed = timed(grade, pred, problem)
        assert elapsed < TIME_LIMIT_S and not g.correct


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("\\frac{1}{2}", "0.5", True),  # fraction vs decimal
        ("1,000", "1000", True),  # separator
        ("(0,1]", "[0,1]", False),  # interval ends
        ("2\\sqrt{3}", "\\sqrt{12}", True),  # radicals
        ("5", None, False),  # missing side
        (None, None, False),  # both missing
    ],
)
def test_is_equiv(a, b, expected, mv_worker):
    assert is_equiv(a, b) is expected


def test_is_equiv_uses_problem_choices():
    problem = P("140°", **MC4)
    assert is_equiv("B", "140°", problem)
    assert not is_equiv("A", "140°", problem)


# LaTeX cases that need math-verify: (pred, gold, correct)
LATEX_POOL_CASES = [
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("x^2+y^2=49", "y^2+x^2=49", True),
    ("4\\sqrt{5}", "\\sqrt{80}", True),
    ("\\sqrt{3}", "1.7", False),
    ("3\\pi", "\\frac{6\\pi}{2}", True),
    ("(-\\infty, 1] \\cup [3, \\infty)", "(-\\infty,1]\\cup[3,\\infty)", True),
    ("10**10**10", "\\sqrt{2}", False),
]


def _grade_case(case: tuple[str, str, bool]) -> tuple[bool, str]:
    pred, gold, _ = case
    g = grade(pred, P(gold))
    return g.correct, g.method


def _expected(case: tuple[str, str, bool]) -> bool:
    return case[2]


def test_grade_in_thread_pool(mv_worker):
    # math-verify's own signal.alarm timeouts would raise outside the main thread.
    cases = LATEX_POOL_CASES * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_grade_case, cases))
    assert [r[0] for r in results] == [_expected(c) for c in cases]
    assert {r[1] for r in results} <= {"math_verify", "string", "list"}


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_grade_in_process_pool(start_method, mv_worker):
    # With fork, the children inherit this process's worker and must start their own.
    ctx = multiprocessing.get_context(start_method)
    with ProcessPoolExecutor(max_workers=1 if start_method == "spawn" else 2, mp_context=ctx) as pool:
        results = list(pool.map(_grade_case, LATEX_POOL_CASES, timeout=120))
    assert [r[0] for r in results] == [_expected(c) for c in LATEX_POOL_CASES]
    # The parent's worker still serves after the children are gone.
    assert grade("\\sqrt{8}", P("2\\sqrt{2}")).correct
