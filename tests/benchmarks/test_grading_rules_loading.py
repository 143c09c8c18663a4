"""Grading rules per dataset at load time: abs_tol / rel_tol / precision as loader options and as
mapped fields, answer-type words, option lists given as one string with letter markers."""

from __future__ import annotations

import csv
import json

import pytest

from slowthink.benchmarks import load_benchmark, parse_options
from slowthink.benchmarks.choices import split_marked_options
from slowthink.benchmarks.generic import parse_choices
from slowthink.grading import grade
from slowthink.types import SlowthinkError

SEMICOLONS = "A. 300, 400;B. 400, 300;C. 3000, 4000;D. 4000, 3000; E. No correct answer"
PARENS = "(A) 12 (B) 15 (C) 18"


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- options in one string


@pytest.mark.parametrize(
    ("text", "options"),
    [
        (SEMICOLONS, ["300, 400", "400, 300", "3000, 4000", "4000, 3000", "No correct answer"]),
        (PARENS, ["12", "15", "18"]),
        ("A. 300, 400\nB. 400, 300\nC. 3000", ["300, 400", "400, 300", "3000"]),  # one per line, marked
        ("A) red\nB) green", ["red", "green"]),
        ("A: x; B: y", ["x", "y"]),
        ("(A) Vitamin B. 12 (B) none", ["Vitamin B. 12", "none"]),  # another style inside: text
        ("A. p\nC. q", None),  # letters must run A, B, C
        ("A. only one", None),
        ("(A) 1 (B)", None),  # an empty option
        ("x(A) 1 (B) 2", None),  # the first marker must open the string
    ],
)
def test_split_marked_options(text, options):
    assert split_marked_options(text) == options


def test_parse_choices_one_option_per_line_unmarked():
    assert parse_choices("12 apples\n15 apples\n18 apples") == ["12 apples", "15 apples", "18 apples"]


def test_choices_in_one_string_load_from_jsonl_and_csv(tmp_path):
    rows = [
        {"q": "Which pair?", "opts": SEMICOLONS, "a": "B"},
        {"q": "How many?", "opts": PARENS, "a": "15"},
        {"q": "Colour?", "opts": "A. red\nB. green\nC. blue", "a": "C"},
        {"q": "Fruit?", "opts": "apple\npear", "a": "pear"},
    ]
    path_jsonl = jsonl(tmp_path / "mc.jsonl", rows)
    path_csv = tmp_path / "mc.csv"
    with open(path_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["q", "opts", "a"])
        w.writeheader()
        w.writerows(rows)
    for path in (path_jsonl, path_csv):
        r = load_benchmark("jsonl", path, fields="question=q,choices=opts,answer=a")
        assert r.n_skipped == 0, r.summary()  # used to be 'bad choices' for every row
        p = {x.question: x for x in r.problems}
        assert p["Which pair?"].choices == [
            "300, 400",
            "400, 300",
            "3000, 4000",
            "4000, 3000",
            "No correct answer",
        ]
        assert p["Which pair?"].meta["answer_letter"] == "B"
        assert p["How many?"].choices == ["12", "15", "18"] and p["How many?"].meta["answer_letter"] == "B"
        assert p["Colour?"].choices == ["red", "green", "blue"]
        assert p["Fruit?"].choices == ["apple", "pear"]
        assert grade("B", p["Which pair?"]).correct and not grade("A", p["Which pair?"]).correct
        assert grade("(B) 15", p["How many?"]).correct and not grade("C", p["How many?"]).correct


# --------------------------------------------------------------------------- number tolerances


@pytest.fixture
def floats(tmp_path):
    return jsonl(tmp_path / "floats.jsonl", [{"question": "Compute x.", "answer": "2.0944"}])


def test_abs_tol_option_accepts_what_exact_rejects(floats):
    exact = load_benchmark("jsonl", floats).problems[0]
    assert not grade("2.094", exact).correct  # 4-decimal gold, 3-decimal answer: wrong without a rule
    opts = parse_options(["abs_tol=0.001"])  # what `-O abs_tol=0.001` gives
    tol = load_benchmark("jsonl", floats, **opts).problems[0]
    assert tol.abs_tol == 0.001
    assert grade("2.094", tol).correct
    assert grade("2.0954", tol).correct  # exactly 0.001 away: inside
    assert not grade("2.0955", tol).correct and not grade("2.09", tol).correct


def test_rel_tol_and_precision_options(floats):
    rel = load_benchmark("jsonl", floats, rel_tol=0.001).problems[0]
    assert grade("2.096", rel).correct and not grade("2.097", rel).correct  # 0.1% of 2.0944 = 0.0021
    prec = load_benchmark("jsonl", floats, precision=2).problems[0]
    assert grade("2.09", prec).correct and not grade("2.1", prec).correct


@pytest.mark.parametrize(
    ("opts", "match"),
    [
        ({"abs_tol": -1}, "abs_tol must be a finite number >= 0"),
        ({"rel_tol": "lots"}, "rel_tol must be a finite number >= 0"),
        ({"precision": 1.5}, "precision must be a whole number"),
    ],
)
def test_bad_rule_options_are_one_clear_error(floats, opts, match):
    with pytest.raises(SlowthinkError, match=match):
        load_benchmark("jsonl", floats, **opts)


def test_per_problem_fields_precision_abs_tol_and_answer_type_words(tmp_path):
    rows = [
        {"q": "a", "gold": "2.0944", "digits": 3, "kind": "float"},
        {"q": "b", "gold": "2.0944", "tol": "0.001", "kind": "Float"},
        {"q": "c", "gold": "12", "kind": "integer"},
        {"q": "d", "gold": "B", "kind": "multiple choice", "opts": "(A) 12 (B) 15"},
        {"q": "e", "gold": "x^2", "kind": "free form"},
        {"q": "f", "gold": "Paris", "kind": "text"},
        {"q": "g", "gold": "1", "tol": "-3", "kind": "float"},  # bad tolerance: skipped, counted
    ]
    path = jsonl(tmp_path / "typed.jsonl", rows)
    fields = "question=q,answer=gold,precision=digits,abs_tol=tol,answer_type=kind,choices=opts"
    r = load_benchmark("jsonl", path, fields=fields)
    assert dict(r.skipped) == {"bad tolerance": 1}
    p = {x.question: x for x in r.problems}
    assert [p[k].answer_type for k in "abcdef"] == ["number", "number", "number", "choice", "auto", "text"]
    assert (p["a"].precision, p["a"].abs_tol) == (3, None)
    assert (p["b"].precision, p["b"].abs_tol) == (None, 0.001)
    assert grade("2.0941", p["a"]).correct and not grade("2.093", p["a"]).correct  # 3 decimals
    assert grade("2.094", p["b"]).correct and not grade("2.092", p["b"]).correct  # within 0.001
    assert grade("2.094", p["a"]).correct  # 2.0944 at 3 decimals is 2.094
    assert p["d"].choices == ["12", "15"] and grade("15", p["d"]).correct and not grade("A", p["d"]).correct
    # the option fills only the rows without a value of their own
    q = {x.question: x for x in load_benchmark("jsonl", path, fields=fields, abs_tol=0.5).problems}
    assert (q["a"].abs_tol, q["b"].abs_tol) == (0.5, 0.001)
    assert not grade("2.092", q["b"]).correct  # its own 0.001, not the option's 0.5


def test_unknown_field_for_a_rule_names_the_fields(floats):
    with pytest.raises(SlowthinkError, match="field 'tol' \\(mapped to abs_tol\\) is not in the data"):
        load_benchmark("jsonl", floats, fields="question=question,answer=answer,abs_tol=tol")


def test_options_apply_to_registered_benchmarks_too(tmp_path):
    path = tmp_path / "gsm.jsonl"
    jsonl(path, [{"question": "q", "answer": "so\n#### 10"}])
    p = load_benchmark("gsm8k", path, rel_tol=0.01).problems[0]
    assert p.rel_tol == 0.01 and grade("10.05", p).correct and not grade("10.2", p).correct
