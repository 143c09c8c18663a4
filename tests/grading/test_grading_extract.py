"""extract_answer: responses and answer spans -> answer strings / option letters."""

from __future__ import annotations

import pytest

from slowthink.grading import extract_answer, has_answer_cue, is_refusal
from tests.grading.grading_helpers import TIME_LIMIT_S, make_problem, timed

MC4 = make_problem(choices=["135°", "140°", "145°", "150°"], answer="145°", answer_type="choice")
CM = make_problem(choices=["6cm", "7cm", "4cm", "5cm"], answer="6cm", answer_type="choice")
CLOCK = make_problem(choices=["half", "quarter", "o'clock", "quarter to", "quarter past"], answer="quarter")
YESNO = make_problem(choices=["Yes", "No"], answer="Yes")
MATHV = make_problem(choices=["A", "B", "C", "D", "E"], answer="D", answer_type="choice")
MATHV_TEXT = make_problem(
    choices=["$\\frac{1}{3}$", "$\\frac{5}{4}$", "$\\frac{2}{9}$", "$\\frac{1}{2}$", "$\\frac{1}{4}$"],
    answer="D",
)
MATHVERSE = make_problem(
    question="then the size of angle CED is ()\nChoices:\nA:40°\nB:60°\nC:120°\nD:140°", answer="D"
)
MATHVERSE_MULTI = make_problem(
    question="Choose 2 answers:\nChoices:\nA:$\\tan (\\pi+\\theta)$\nB:$x$\nC:$y$\nD:$z$",
    answer="C, D",
    answer_type="list",
)
NUMBER = make_problem(answer="72", answer_type="number")
LIST = make_problem(answer="[2014, 2016]", answer_type="list")

EXTRACT_CASES = [
    # --- GSM8K-style numbers
    # gold-style #### line
    (
        "Natalia sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips.\n#### 72",
        None,
        "72",
    ),
    # currency kept, '.' stripped
    (
        "Each costs $5, so the total is $20.\nThe answer is $1,000.",
        None,
        "$1,000",
    ),
    ("So she earns 18.00 dollars. The answer is 18.00", None, "18.00"),  # last cue wins
    ("The answer is 3.5.", None, "3.5"),  # decimal point is not a sentence end
    ("The answer is 5 because 2+3=5.", None, "5"),  # cut at 'because'
    ("The answer is: 42", None, "42"),  # 'is:' cue
    ("Answer: 17", None, "17"),  # 'Answer:' cue
    ("**Answer:** 9", None, "9"),  # markdown bold cue
    ("The answer is **12**.", None, "12"),  # bold answer unwrapped
    ("The answer is:\n\n  64\n", None, "64"),  # answer on the next line
    ("First 3 + 4 = 7.\nThen 7 * 2 = 14.", None, "14"),  # no cue: last number (flexible extract)
    ("She has 5 apples left.", None, "5"),  # short sentence with one number
    ("The answer is probably 8 apples.", NUMBER, "8"),  # number answer: the number in the phrase
    ("72", NUMBER, "72"),  # a bare answer span
    ("The answer is -4.", None, "-4"),  # negative number
    # --- LaTeX answers (MATH-V / MathVerse free form)
    ("Step 2: so x = 1/2.\n\\boxed{\\frac{1}{2}}", None, "\\frac{1}{2}"),  # boxed wins
    ("\\boxed{1} then \\boxed{2\\sqrt{3}}", None, "2\\sqrt{3}"),  # last boxed
    ("The answer is $\\boxed{(0, 1]}$.", None, "(0, 1]"),  # boxed inside math mode
    ("The final answer is $2\\sqrt{3}$. I hope it is correct.", None, "2\\sqrt{3}"),  # Minerva cue
    ("The answer is $x=3$.", None, "x=3"),  # $...$ unwrapped
    ("Thus \\boxed{\\{1, 2\\}} is the set.", None, "\\{1, 2\\}"),  # escaped braces inside boxed
    ("The answer is \\boxed{\\frac{1}{", None, "\\boxed{\\frac{1}{"),  # unbalanced boxed: kept as text
    ("The answer is [0, 2, 0, 2]", LIST, "[0, 2, 0, 2]"),  # MathVista list answer
    # --- AtomThink / LLaVA-CoT formats
    ("Step 1: 3 + 4 = 7.\nTo sum up, the final answer is: 7", None, "7"),  # AtomThink final step
    # conclusion stage
    (
        "<SUMMARY>s</SUMMARY><REASONING>r 3</REASONING><CONCLUSION>12</CONCLUSION>",
        None,
        "12",
    ),
    ("<CONCLUSION>The answer is 9.</CONCLUSION>", None, "9"),  # cue inside conclusion
    # --- multiple choice: letters
    ("To sum up, the final answer is: B", MC4, "B"),  # AtomThink letter
    ("B", MC4, "B"),  # bare letter
    ("(C)", MC4, "C"),  # parenthesised letter
    ("C.", MC4, "C"),  # letter with period
    ("D)", MC4, "D"),  # letter with bracket
    ("Option A", MC4, "A"),  # 'Option X'
    ("I think it's option (b)", MC4, "B"),  # lower-case option in parentheses, no cue
    ("The answer is B: 140°", MC4, "B"),  # letter plus option text
    ("Therefore, the correct answer is (C) 145°.", MC4, "C"),  # cue + (C) text
    ("Therefore the answer is: **C**.", MATHV, "C"),  # bold letter
    ("**Answer:** D", MATHV, "D"),  # bold cue
    ("<CONCLUSION>The correct answer is E.</CONCLUSION>", MATHV, "E"),  # LLaVA-CoT conclusion
    ("Looking at the figure, the kittens match (D).", MATHV, "D"),  # no cue: last (X) mention
    ("The answer is F", MC4, "F"),  # letter beyond the options: text kept (graded wrong)
    # --- multiple choice: option text -> letter
    ("145°", MC4, "C"),  # exact option text
    ("The answer is 145", MC4, "C"),  # same number as one option
    ("<CONCLUSION>150 degrees</CONCLUSION>", MC4, "D"),  # number with unit word
    ("The answer is 6 cm", CM, "A"),  # MathVista '6cm' option, spacing differs
    ("quarter", CLOCK, "B"),  # exact beats the longer 'quarter to'
    ("The answer is quarter past.", CLOCK, "E"),  # longest contained option
    ("Yes", YESNO, "A"),  # yes/no option text
    ("The answer is no.", YESNO, "B"),  # case-insensitive
    ("The answer is \\frac{1}{2}", MATHV_TEXT, "D"),  # LaTeX option text (MATH-V)
    ("So the answer is 140°", MATHVERSE, "D"),  # MathVerse inline 'Choices:' block
    ("C and D", MATHVERSE_MULTI, "C,D"),  # MathVerse 'choose 2 answers'
    # --- nothing answer-like / refusals
    ("I cannot determine the answer from the image.", None, None),  # refusal
    ("The answer is: it cannot be determined.", None, None),  # refusal after a cue
    ("There is not enough information to answer.", MC4, None),  # refusal, multiple choice
    ("Let me think about the triangle.", None, None),  # reasoning opener, no number
    ("", None, None),  # empty
    ("   \n  ", None, None),  # whitespace only
    ("The figure shows a triangle and a circle.", MC4, None),  # multiple choice, no letter
]


@pytest.mark.parametrize(("text", "problem", "expected"), EXTRACT_CASES)
def test_extract_answer(text, problem, expected):
    assert extract_answer(text, problem) == expected


ADVERSARIAL = [
    "9" * 5000,  # 5,000-digit number
    "The answer is " + "9" * 5000,  # after a cue
    "The answer is 10**10**10",  # power tower, as text
    "answer: __import__('os').system('echo hacked')",  # python code
    "\\boxed{" * 3000,  # 3,000 unclosed boxes
    "{" * 20000 + "The answer is 5",  # deep braces before the cue
    "The answer is " + "(" * 5000,  # unbalanced parentheses
    "Step 1: " + "x" * 200_000,  # runaway text with no answer
    ("A " * 30000) + "The answer is B",  # many letter-like tokens
    "$" * 10001 + "The answer is 1",  # odd dollar signs
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
@pytest.mark.parametrize("problem", [None, MC4, NUMBER], ids=["none", "choice", "number"])
def test_extract_adversarial_is_bounded(text, problem):
    out, elapsed = timed(extract_answer, text, problem)
    assert elapsed < TIME_LIMIT_S
    assert out is None or isinstance(out, str)


def test_extract_never_evaluates():
    # The text is returned as text: nothing was run.
    assert extract_answer("The answer is __import__('os').getcwd()") == "__import__('os').getcwd()"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So the answer is 5.", True),  # cue
        ("\\boxed{5}", True),  # boxed
        ("<CONCLUSION>5</CONCLUSION>", True),  # LLaVA-CoT stage
        ("5", False),  # bare answer
        ("Answer the question.", False),  # 'answer' as a verb is no cue
    ],
)
def test_has_answer_cue(text, expected):
    assert has_answer_cue(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It cannot be determined.", True),  # passive
        ("I don't know", True),  # plain
        ("Not enough information is given", True),  # missing info
        ("The answer is 12", False),  # an answer
        ("We can determine x from the figure", False),  # 'can', not 'cannot'
    ],
)
def test_is_refusal(text, expected):
    assert is_refusal(text) is expected
