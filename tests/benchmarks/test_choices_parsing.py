"""Option parsing and gold-answer resolution, as tables."""

from __future__ import annotations

import pytest

from slowthink.benchmarks.base import SkipRow, guess_answer_type
from slowthink.benchmarks.choices import as_letter, choice_answer, letter_options, parse_inline_choices
from slowthink.benchmarks.gsm8k import final_answer
from slowthink.benchmarks.mathv import strip_placeholders


@pytest.mark.parametrize(
    ("question", "stem", "choices"),
    [
        # MathVerse standard
        ("Find x.\nChoices:\nA:3\nB:4\nC:5", "Find x.", ["3", "4", "5"]),
        # "Choice:" header and "A. " style
        ("True?\nChoice:\nA. True\nB. False", "True?", ["True", "False"]),
        # "A." without a space, LaTeX
        ("Rate?\nChoices:\nA.$y$ grows\nB.$y$ falls", "Rate?", ["$y$ grows", "$y$ falls"]),
        # "(A) x" style
        ("Pick.\nChoices:\n(A) one\n(B) two", "Pick.", ["one", "two"]),
        # all on the header line, MMStar "Options:" style
        ("Cat?\nOptions: A: mat, B: bed, C: roof", "Cat?", ["mat", "bed", "roof"]),
        # an empty option keeps its letter (upstream typo)
        ("Q\nChoices:\nA:x\nB:\nC:z", "Q", ["x", "", "z"]),
        # letters out of order: not an option block
        ("Q\nChoices:\nB:x\nA:y", "Q\nChoices:\nB:x\nA:y", None),
        # one option only: not a block
        ("Q\nChoices:\nA:x", "Q\nChoices:\nA:x", None),
        # the word choices inside a sentence is no header
        ("Which choices: are right", "Which choices: are right", None),
    ],
)
def test_parse_inline_choices(question: str, stem: str, choices) -> None:
    assert parse_inline_choices(question) == (stem, choices)


@pytest.mark.parametrize(
    ("text", "n", "letter"),
    [
        ("B", None, "B"),
        ("(B)", None, "B"),
        ("B)", None, "B"),
        ("B.", None, "B"),
        (" C ", 3, "C"),
        ("D", 3, None),
        ("b", None, None),
        ("AB", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_as_letter(text, n, letter) -> None:
    assert as_letter(text, n) == letter


@pytest.mark.parametrize(
    ("answer", "choices", "expected"),
    [
        ("145°", ["135°", "145°"], ("145°", "B")),  # option text kept as given
        ("$2$", ["1", "2"], ("$2$", "B")),  # $ and spaces ignored
        ("(A)", ["x", "y"], ("A", "A")),  # letter forms normalised
        ("A", ["A", "C", "D"], ("A", "A")),  # option text equal to a letter wins
        ("C", ["A", "C", "D"], ("C", "B")),
    ],
)
def test_choice_answer(answer, choices, expected) -> None:
    assert choice_answer(answer, choices) == expected


def test_choice_answer_not_found() -> None:
    with pytest.raises(SkipRow) as e:
        choice_answer("Z", ["x", "y"])
    assert e.value.reason == "answer not in choices"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["A", "B", "C", "D", "E"], True),
        (["(A)", "(B)"], True),
        (["A)", "B)"], True),
        (["A", "B", "D", "F", "G"], False),
        (["red", "blue"], False),
        ([], False),
    ],
)
def test_letter_options(options, expected) -> None:
    assert letter_options(options) is expected


@pytest.mark.parametrize(
    ("solution", "answer"),
    [
        ("x\n#### 18", "18"),
        ("#### 1,000", "1000"),
        ("#### -3", "-3"),
        ("a #### b #### 7", "7"),
        ("none", None),
        ("####  ", None),
    ],
)
def test_gsm8k_final_answer(solution, answer) -> None:
    assert final_answer(solution) == answer


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many?\n<image1>", "How many?"),
        ("<image1>\nIn the picture...", "In the picture..."),
        ("Opposite to <image3>?\n<image4>", "Opposite to [image 3]?"),
        ("Look:\n<image1>\n\n<image2>\nWhich?", "Look:\n\nWhich?"),
    ],
)
def test_strip_placeholders(question, expected) -> None:
    assert strip_placeholders(question) == expected


@pytest.mark.parametrize(
    ("answer", "kind"),
    [("42", "number"), ("-0.5", "number"), ("1,000", "auto"), ("\\pi", "auto"), (None, "auto")],
)
def test_guess_answer_type(answer, kind) -> None:
    assert guess_answer_type(answer) == kind
