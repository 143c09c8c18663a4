"""The official metrics of LLaVA-CoT's suite (slowthink.evaluate.official), on hand-computed cases."""

from __future__ import annotations

import pytest

from slowthink.evaluate.official import (
    Item,
    accuracy_splits,
    circular_splits,
    hallusion_splits,
    mmvet_splits,
)
from slowthink.grading.yesno import yes_no


def table(splits):
    return {(s.by, s.split): (s.n, {k: round(v, 2) for k, v in s.values.items()}) for s in splits}


def test_circular_eval_one_failed_rotation_fails_the_question():
    rows = [
        # question 5: three rotations, the middle one wrong -> the question is wrong
        Item("5", True, "scene", "perception", g_index="5"),
        Item("1000005", False, "scene", "perception", g_index="5"),
        Item("2000005", True, "scene", "perception", g_index="5"),
        # question 7: both rotations right
        Item("7", True, "scene", "perception", g_index="7"),
        Item("1000007", True, "scene", "perception", g_index="7"),
        # question 9 (another category): its only copy is right, its original wrong
        Item("9", False, "logic", "reasoning", g_index="9"),
        Item("1000009", True, "logic", "reasoning", g_index="9"),
        # a copy whose original is not among the predictions: not counted (VLMEvalKit keeps main rows)
        Item("1000011", True, "logic", "reasoning", g_index="11"),
    ]
    t = table(circular_splits(rows))
    assert t[("overall", "Overall")] == (3, {"circular": 33.33, "vanilla": 71.43})  # 1/3; 5/7 rows
    assert t[("l2-category", "perception")] == (2, {"circular": 50.0, "vanilla": 80.0})
    assert t[("category", "logic")] == (1, {"circular": 0.0, "vanilla": 50.0})
    assert [s.by for s in circular_splits(rows)] == [
        "overall",
        "l2-category",
        "l2-category",
        "category",
        "category",
    ]


def test_circular_eval_all_rotations_right_counts():
    rows = [Item("0", True, g_index="0"), Item("1000000", True, g_index="0")]
    assert circular_splits(rows)[0].values == {"circular": 100.0, "vanilla": 100.0}


def test_hallusion_figure_and_question_accuracy_differ_from_all_questions():
    def item(index, ok, cat="VD", sub="chart"):
        set_id, figure_id, question_id = index.split("_")[3:6]
        return Item(index, ok, cat, sub, set_id=set_id, figure_id=figure_id, question_id=question_id)

    rows = [
        item("VD_chart_0_1_0_0", True),  # set 1, figure 0: q0 right, q1 wrong
        item("VD_chart_0_1_0_1", False),
        item("VD_chart_0_1_1_0", True),  # set 1, figure 1 (edited): q0 right, q1 right
        item("VD_chart_0_1_1_1", True),
        item("VD_chart_0_2_0_0", True),  # set 2: one figure, q0 right
        item("VS_chart_0_1_0_0", False, "VS"),  # same set/figure ids in another category: its own group
    ]
    t = table(hallusion_splits(rows))
    # aAcc 4/6; figures: (VD,1,0) no, (VD,1,1) yes, (VD,2,0) yes, (VS,1,0) no -> 2/4;
    # questions: (VD,1,q0) yes, (VD,1,q1) no, (VD,2,q0) yes, (VS,1,q0) no -> 2/4
    assert t[("overall", "Overall")] == (6, {"aAcc": 66.67, "fAcc": 50.0, "qAcc": 50.0})
    # VD alone: aAcc 4/5; figures 2/3; questions 2/3
    assert t[("category", "VD")] == (5, {"aAcc": 80.0, "fAcc": 66.67, "qAcc": 66.67})
    assert t[("category", "VS")] == (1, {"aAcc": 0.0, "fAcc": 0.0, "qAcc": 0.0})
    assert t[("l2-category", "chart")][1]["aAcc"] == 66.67


def test_hallusion_fAcc_and_qAcc_differ():
    def item(i, ok, fig, q):
        return Item(i, ok, "VS", "map", set_id="3", figure_id=fig, question_id=q)

    # figure 0: q0, q1 right; figure 1: q0 wrong, q1 right; figure 2: only q1, right
    rows = [
        item("a", True, "0", "0"),
        item("b", True, "0", "1"),
        item("c", False, "1", "0"),
        item("d", True, "1", "1"),
        item("e", True, "2", "1"),
    ]
    # aAcc 4/5; fAcc: fig0 yes, fig1 no, fig2 yes -> 2/3; qAcc: q0 no, q1 yes -> 1/2
    values = hallusion_splits(rows)[0].values
    assert {k: round(v, 2) for k, v in values.items()} == {"aAcc": 80.0, "fAcc": 66.67, "qAcc": 50.0}


def test_hallusion_rows_without_ids_are_their_own_groups():
    rows = [Item("x", True, "VD", "ocr"), Item("y", False, "VD", "ocr")]
    assert hallusion_splits(rows)[0].values == {"aAcc": 50.0, "fAcc": 50.0, "qAcc": 50.0}


def test_mmvet_capabilities_and_combinations():
    rows = [
        Item("0", category="rec,ocr", score=1.0),
        Item("1", category="rec,know,gen", score=0.3),
        Item("2", category="ocr,math", score=0.5),
        Item("3", category="rec", score=0.0),
        Item("4", category="ocr,math", score=1.0),
    ]
    t = table(mmvet_splits(rows))
    assert t[("overall", "Overall")] == (5, {"score": 56.0})  # (1 + .3 + .5 + 0 + 1) / 5
    assert t[("capability", "rec")] == (3, {"score": 43.33})  # (1 + .3 + 0) / 3
    assert t[("capability", "ocr")] == (3, {"score": 83.33})
    assert t[("capability", "math")] == (2, {"score": 75.0})
    assert t[("capability", "know")] == t[("capability", "gen")] == (1, {"score": 30.0})
    assert ("capability", "spat") not in t  # no question of it
    assert t[("capabilities", "ocr_math")] == (2, {"score": 75.0})
    assert t[("capabilities", "rec_know_gen")] == (1, {"score": 30.0})


def test_accuracy_per_l2_category_and_category():
    rows = [
        Item("0", True, "a", "x"),
        Item("1", False, "a", "y"),
        Item("2", False, "b", "y"),
        Item("3", True),
    ]
    t = table(accuracy_splits(rows))
    assert t[("overall", "Overall")] == (4, {"accuracy": 50.0})
    assert t[("l2-category", "y")] == (2, {"accuracy": 0.0})
    assert t[("category", "a")] == (2, {"accuracy": 50.0})


@pytest.mark.parametrize(
    "prediction, expected",
    [
        ("Yes", "Yes"),
        ("yes.", "Yes"),
        ("No, the left bar is taller.", "No"),
        ("The answer is yes", "Yes"),
        ("Yes and no", "Unknown"),  # both words
        ("Not sure", "Unknown"),  # "not" is not "no"
        ("Nope", "Unknown"),
        ("No-one can tell; yes-men would say yes", "Unknown"),  # '-' becomes a space: both words
        ("", "Unknown"),
    ],
)
def test_yes_no_reads_as_vlmevalkit(prediction, expected):
    assert yes_no(prediction) == expected
