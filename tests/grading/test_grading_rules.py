"""Number rules per problem (precision, abs_tol, rel_tol) and multi-letter replies."""

from __future__ import annotations

from fractions import Fraction

import pytest

from slowthink.grading import NumberRules, extract_answer, grade, normalize_answer, number_rules_summary
from slowthink.types import Problem

MC4 = ["135°", "140°", "145°", "150°"]


def P(answer: str, **kw) -> Problem:
    return Problem(id="t", question="q", answer=answer, **kw)


@pytest.mark.parametrize(
    ("pred", "problem", "correct"),
    [
        ("2.094", P("2.0944"), False),  # exact by default
        ("2.094", P("2.0944", abs_tol=1e-3), True),
        ("2.0954", P("2.0944", abs_tol=1e-3), True),  # exactly the tolerance away: inside
        ("2.0955", P("2.0944", abs_tol=1e-3), False),
        ("100.05", P("100", abs_tol=1e-3), False),  # absolute, not relative
        ("100.05", P("100", rel_tol=1e-3), True),  # relative
        ("0.0005", P("0", rel_tol=1e-3), True),  # relative is absolute when the gold is 0
        ("2.09", P("2.0944", precision=2), True),  # rounded to 2 decimals
        ("2.1", P("2.0944", precision=2, abs_tol=1e-3), False),  # no rule accepts it
        ("2.0951", P("2.0944", precision=2, abs_tol=1e-3), True),  # 2.10 vs 2.09, but within 0.001
        ("[2.094, 5]", P("[2.0944, 5]", abs_tol=1e-3, answer_type="list"), True),  # element-wise
        ("x = 2.094 m", P("2.0944", abs_tol=1e-3), True),  # label and unit dropped
    ],
)
def test_number_rules(pred, problem, correct):
    g = grade(pred, problem)
    assert g.correct is correct, g


def test_tolerance_argument_replaces_the_problems_rules():
    p = P("2.0944", abs_tol=1e-3)
    assert grade("2.094", p).correct
    assert not grade("2.094", p, tolerance=1e-6).correct


def test_rules_and_summary():
    assert NumberRules.of(P("1", precision=1, abs_tol=0.5)) == NumberRules(1, 0.5, None)
    assert NumberRules(rel_tol=0.1).equal(Fraction(-105, 100), Fraction(-1))
    problems = [P("1", abs_tol=0.001), P("2", abs_tol=0.001), P("3", precision=4), P("4")]
    assert number_rules_summary(problems) == {"precision": {"4": 1}, "abs_tol": {"0.001": 2}, "rel_tol": {}}


@pytest.mark.parametrize("bad", [-0.1, float("inf"), True])
def test_problem_rejects_a_bad_tolerance(bad):
    with pytest.raises(ValueError, match="abs_tol must be a finite number >= 0"):
        P("1", abs_tol=bad)


def test_problem_round_trips_its_rules():
    p = P("2.0944", abs_tol=0.001, rel_tol=0.01, precision=3)
    assert Problem.from_dict(p.to_dict()) == p
    assert Problem.from_dict({"id": "1", "question": "q"}).abs_tol is None  # records written before


# --------------------------------------------------------------------------- several letters


@pytest.mark.parametrize("reply", ["A, b, c", "A, B, C", "a, b and c", "A; c", "A and C", "A/B"])
def test_multi_letter_reply_is_not_the_single_answer_a(reply):
    p = P("135°", choices=MC4, answer_type="choice")  # gold A
    g = grade(reply, p)
    assert not g.correct, g
    assert g.pred_norm is not None and "," in g.pred_norm  # read as several options, not as "A"
    assert "," in (extract_answer(f"The answer is {reply}.", p) or "")


def test_multi_letter_reply_right_when_the_gold_names_the_same_options():
    p = P("A, C", choices=MC4, answer_type="list")
    assert grade("a, c", p).correct and grade("C and A", p).correct and not grade("A", p).correct


@pytest.mark.parametrize(
    ("reply", "correct"),
    [
        ("A, b, z", False),  # a letter beyond the options: no option, never "A"
        ("A, 12 cm", True),  # one letter with some text
        ("A.", True),
        ("I a", False),  # words, not letters
        ("C", False),
    ],
)
def test_letter_lists_and_single_letters(reply, correct):
    p = P("135°", choices=MC4)  # gold A
    assert grade(reply, p).correct is correct
    assert (normalize_answer(reply, p) == "A") is correct


# --------------------------------------------------------------------------- found in MathVista's outputs
# (bench/bench_official_grading.py: disagreements with the official verdicts where slowthink was wrong)

YES_NO = ["Yes", "No"]


@pytest.mark.parametrize(
    ("response", "choices", "letter"),
    [
        ('The correct answer is "A." The unfolded cube is the same as cube A.', ["A", "B", "C"], "A"),
        ('The correct answer is "soup." Soup has few carbs.', ["soup", "water", "buns"], "A"),
        ("the length is $\\boxed{\\text{(C) } 6}$.", ["3", "3 \\sqrt 2", "6", "6 \\sqrt 2"], "C"),
        ("so $\\boxed{\\textbf{(C) }18}$", ["9", "12", "18", "20"], "C"),
        ("No, Chartreuse is not the roughest. The roughest is Salmon.", YES_NO, "B"),
        ("The answer is (B) No.\n\nThe correct answer is therefore choice (B).", YES_NO, "B"),
        ("So the answer is still **(B) No**.", YES_NO, "B"),
        ("Nothing here names an option, no.", YES_NO, None),  # 'No' must open the text
    ],
)
def test_option_found_where_slowthink_missed_it(response, choices, letter):
    p = Problem(id="mv", question="q", choices=choices, answer=choices[0])
    assert extract_answer(response, p) == letter


def test_repeated_option_text_is_right_under_either_letter():
    p = P("18", choices=["9", "12", "18", "18"])  # MathVista testmini pid 781
    assert grade("C", p).correct and grade("D", p).correct and not grade("B", p).correct


@pytest.mark.parametrize(
    ("pred", "choices", "correct"),
    [
        ("4.40", ["3.85米", "4.00米", "4.40米", "4.50米"], True),  # a unit in Chinese
        ("[40]", ["30°", "40°", "50°", "60°"], True),  # a program printed a one-number list
        ("['insects', 'mouse', 'cricket']", ["Insects", "Hawk and snake", "Mouse and cricket"], False),
        ("0.8", ["\\frac{3}{5}", "\\frac{4}{5}", "\\frac{3}{4}"], True),  # the option's value
        ("92.5", ["97", "102", "107", "122"], False),  # no option: never the nearest one
        ("N/A", ["Yes", "No"], False),
        ("Cannot be determined", ["Yes", "No"], False),
    ],
)
def test_official_disagreements_ruled(pred, choices, correct):
    gold = {"4.40": "4.40米", "[40]": "40°", "0.8": "\\frac{4}{5}", "92.5": "97"}.get(pred, choices[0])
    assert grade(pred, P(gold, choices=choices)).correct is correct


@pytest.mark.parametrize(
    ("response", "choices", "letter"),
    [
        (
            "If the trees died, the population of porcupine would most likely decrease.",
            ["double", "decrease", "increase"],
            "B",
        ),
        (
            "The largest city in the nation where this plane is headquartered is Tokyo.",
            ["osaka", "tokyo"],
            "B",
        ),
        ("So the square has side 6 units, so the correct option letter is C: 6 units.", ["3", "4", "6"], "C"),
        (
            "Grasshoppers eat grass and snakes eat mice. Both would suffer.",
            ["grass", "snakes", "mice"],
            None,
        ),  # none alone
    ],
)
def test_cue_less_option_in_the_last_sentence(response, choices, letter):
    assert (
        extract_answer(response, Problem(id="mv", question="q", choices=choices, answer=choices[0])) == letter
    )


def test_a_new_question_written_after_the_answer_is_not_read():
    p = Problem(id="781", question="q", choices=["9", "12", "18", "20"], answer="18")
    response = "CD = 16 + 8 = 24\n\nThe answer is C.\n\nQuestion: A bag holds 10 marbles.\nThe answer is A."
    assert extract_answer(response, p) == "C"
    assert (
        extract_answer("Question: Find CD.\nSo CD is 18. The answer is C.", p) == "C"
    )  # a restated question


@pytest.mark.parametrize(
    "response",
    [
        "(C) yes\n(D) no",
        "Determine the next shape.\nChoices:\n(A) A\n(B) B",
        "A) Statement 1.\nB) Statement 2.",
    ],
)
def test_echoed_option_list_is_no_answer(response):
    p = Problem(id="e", question="q", choices=["yes", "no"], answer="yes")
    assert extract_answer(response, p) is None
    assert extract_answer("(A) 1 is too small.\n(B) 2 fits.\nSo the answer is (B).", p) == "B"


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        ("The answer to the question is 2, as there are two stores where items sold less than 5 units.", "2"),
        ("The question requires an integer answer and the final value is 2. In 2008 and 2014 it rose.", "2"),
        ("Without the total, we cannot provide a specific integer. Remaining = total - 5", None),
    ],
)
def test_number_answers_seen_in_mathvista_outputs(response, answer):
    assert extract_answer(response, P("2", answer_type="number")) == answer
