"""normalize_answer (voting keys) and the number parser under it."""

from __future__ import annotations

from fractions import Fraction

import pytest

from slowthink.grading import normalize_answer
from slowthink.grading.numeric import format_number, parse_number
from tests.grading.grading_helpers import TIME_LIMIT_S, make_problem, timed

MC4 = make_problem(choices=["135°", "140°", "145°", "150°"], answer="145°")
MATHV = make_problem(choices=["A", "B", "C", "D", "E"], answer="D", answer_type="choice")
MATHVERSE = make_problem(question="angle CED is ()\nChoices:\nA:40°\nB:60°\nC:120°\nD:140°", answer="D")
FLOAT1 = make_problem(answer="1.2", answer_type="number", precision=1)
FLOAT2 = make_problem(answer="0.21", answer_type="number", precision=2)
LIST = make_problem(answer="[2014, 2016]", answer_type="list")
TEXT = make_problem(answer="Paris", answer_type="text")

NORMALIZE_CASES = [
    # --- numbers (GSM8K)
    ("72", None, "72"),  # integer
    ("$1,000", None, "1000"),  # currency and thousands separator
    ("1,234,567.50", None, "1234567.5"),  # several separators, trailing zero
    ("18.00", None, "18"),  # trailing .00
    ("$18.00 dollars", None, "18"),  # currency word
    ("-7", None, "-7"),  # negative
    ("−7", None, "-7"),  # unicode minus
    ("+3", None, "3"),  # explicit plus
    (".5", None, "0.5"),  # no leading zero
    ("007", None, "7"),  # leading zeros
    ("50%", None, "50"),  # percent sign dropped (MathVista)
    ("50\\%", None, "50"),  # LaTeX percent
    ("40°", None, "40"),  # degree sign
    ("40^{\\circ}", None, "40"),  # LaTeX degrees
    ("12 cm", None, "12"),  # unit
    ("4.4 m", None, "4.4"),  # one-letter unit (MathVerse)
    ("60.21 \\mathrm{m}^2", None, "60.21"),  # LaTeX unit with power
    ("Area $=113.1 \\mathrm{~cm}^{2}$", None, "113.1"),  # MathVerse labelled answer
    ("x = 5", None, "5"),  # variable label
    ("1e3", None, "1000"),  # scientific notation
    ("1.5 \\times 10^{3}", None, "1500"),  # LaTeX scientific notation
    ("2.5e-2", None, "0.025"),  # negative exponent
    ("3/4", None, "0.75"),  # fraction with a finite decimal
    ("\\frac{3}{4}", None, "0.75"),  # LaTeX fraction, same key as 3/4
    ("\\dfrac34", None, "0.75"),  # shorthand fraction
    ("-\\frac{21}{29}", None, "-21/29"),  # fraction without a finite decimal
    ("1/3", None, "1/3"),  # exact rational kept
    ("$\\boxed{72}$", None, "72"),  # wrappers
    # --- MathVista precision
    ("1.24", FLOAT1, "1.2"),  # rounded to 1 decimal
    ("1.25", FLOAT1, "1.2"),  # Python float rounding, as MathVista's round()
    ("0.2149", FLOAT2, "0.21"),  # rounded to 2 decimals
    ("-0.01", FLOAT1, "0.0"),  # no negative zero
    # --- multiple choice -> letter
    ("B", MC4, "B"),  # letter
    ("(c)", MC4, "C"),  # lower-case letter in parentheses
    ("145°", MC4, "C"),  # option text
    ("145", MC4, "C"),  # option number
    ("D", MATHV, "D"),  # MATH-V letter options
    ("140°", MATHVERSE, "D"),  # MathVerse inline choices
    ("Z", MC4, "z"),  # out-of-range letter stays text
    # --- lists, tuples, intervals, sets
    ("[2014, 2016]", LIST, "[2014,2016]"),  # MathVista list
    ("2014, 2016", LIST, "[2014,2016]"),  # bare list
    ("(3, -4)", None, "(3,-4)"),  # point
    ("( 0 , 1 ]", None, "(0,1]"),  # half-open interval
    ("(-\\infty, 4]", None, "(-\\infty,4]"),  # infinite interval
    ("\\{3, 1, 2\\}", None, "\\{1,2,3\\}"),  # set: sorted
    ("(1/2, 0.5]", None, "(0.5,0.5]"),  # element-wise numbers
    # --- strings
    ("  The Cat  ", None, "the cat"),  # case and spaces
    ("Paris.", TEXT, "paris"),  # trailing period
    ("\\left( \\frac{\\sqrt3}{2} \\right)", None, "(\\frac{\\sqrt{3}}{2})"),  # LaTeX light
    ("y = -2 x + 5", None, "-2x+5"),  # label and spaces in maths
    ("2 \\pi r", None, "2\\pi r"),  # a space that ends a command is kept
    ("\\text{even}", None, "even"),  # text command
    # --- no answer
    (None, None, None),  # None
    ("", None, None),  # empty
    ("$$", None, None),  # only delimiters
]


@pytest.mark.parametrize(("ans", "problem", "expected"), NORMALIZE_CASES)
def test_normalize_answer(ans, problem, expected):
    assert normalize_answer(ans, problem) == expected


VOTE_GROUPS = [
    # each group: answers that must share one key
    (["72", "72.0", "$72", "72 dollars", "\\boxed{72}", "72."], None),  # GSM8K
    (["0.5", "1/2", "\\frac{1}{2}", "\\dfrac12", "$\\frac{1}{2}$", "5e-1"], None),  # one half
    (["B", "(B)", "b", "140°", "140", "Option B"], MC4),  # one option
    (["(0,1]", "( 0, 1 ]", "\\left(0,1\\right]"], None),  # one interval
]


@pytest.mark.parametrize(("answers", "problem"), VOTE_GROUPS)
def test_vote_groups_share_a_key(answers, problem):
    keys = {normalize_answer(a, problem) for a in answers}
    assert len(keys) == 1, keys


@pytest.mark.parametrize(
    ("a", "b", "problem"),
    [
        ("0.5", "0.51", None),  # different numbers
        ("(0,1]", "[0,1]", None),  # open vs closed
        ("A", "B", MC4),  # different options
        ("1/3", "0.333", None),  # exact vs truncated
    ],
)
def test_different_answers_get_different_keys(a, b, problem):
    assert normalize_answer(a, problem) != normalize_answer(b, problem)


HOSTILE = [
    "9" * 5000,  # 5,000-digit number
    "10**10**10",  # power tower
    "9^9^9^9",  # LaTeX power tower
    "1e999999999",  # huge exponent
    "1.5 \\times 10^{99999999}",  # huge LaTeX exponent
    "10^{10^{10}}",  # nested exponent
    "\\frac{" + "9" * 400 + "}{7}",  # huge numerator
    "__import__('os').system('echo hi')",  # python code
    "\\frac{1}{",  # unbalanced
    "(" * 5000 + "1" + "," * 5000,  # deep nesting and many commas
    "1," * 20000,  # long list
]


@pytest.mark.parametrize("ans", HOSTILE, ids=range(len(HOSTILE)))
def test_normalize_hostile_is_bounded_and_a_string(ans):
    key, elapsed = timed(normalize_answer, ans, None)
    assert elapsed < TIME_LIMIT_S
    assert isinstance(key, str)


@pytest.mark.parametrize(
    "text",
    ["9" * 101, "1e101", "10^{101}", "1.5 \\times 10^{-1000}", "10**10**10", "9^9^9^9", "2^{10}"],
)
def test_parse_number_refuses_absurd_values(text):
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9" * 100, Fraction(int("9" * 100))),  # at the digit cap
        ("1e100", Fraction(10) ** 100),  # at the exponent cap
        ("10^{3}", Fraction(1000)),  # power of ten
        ("\\frac{-3}{4}", Fraction(-3, 4)),  # sign in the numerator
        ("3/0", None),  # division by zero
        ("1,0000", None),  # not a thousands separator
        ("2x", None),  # a variable is no unit
        ("2 \\pi", None),  # pi is no unit
        ("5 million", None),  # a scale word is no unit
        ("3.5 km/h", Fraction(7, 2)),  # compound unit
    ],
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    ("x", "precision", "expected"),
    [
        (Fraction(7, 8), None, "0.875"),  # finite decimal
        (Fraction(2, 3), None, "2/3"),  # repeating decimal
        (Fraction(-5, 2), None, "-2.5"),  # negative
        (Fraction(1, 20), 2, "0.05"),  # fixed decimals
        (Fraction(131253463, 1000), 1, "131253.5"),  # MathVista pid 383
    ],
)
def test_format_number(x, precision, expected):
    assert format_number(x, precision) == expected
