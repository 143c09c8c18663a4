"""Released data layouts (small fixture files written in the upstream layout) into the same records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slowthink.annotate import read_dataset
from slowthink.annotate.datasets import PRM, SFT_LLAVA, SFT_STEPS
from slowthink.annotate.loaders import load_release
from slowthink.annotate.runner import run_import
from slowthink.types import SlowthinkError

FIX = Path(__file__).parent / "fixtures"


def test_llava_cot_100k_train_jsonl():
    rel = load_release("llava-cot-100k", FIX / "llava_cot_train.jsonl")
    assert [a.id for a in rel.annotations] == ["sqa-1", "sqa-1#1"]
    a = rel.annotations[0]
    assert a.problem.question.startswith("Which of these states") and a.problem.images == [
        "sqa/train/1/image.png"
    ]
    assert a.stages["conclusion"] == "B" and a.answer == "B" and a.status == "accepted"
    assert rel.skipped == {"no conversations": 1, "malformed stages (tags)": 1}


def test_amath_sft_rows_join_back_into_chains():
    rel = load_release("amath-sft", FIX / "amath_sft.json")
    (a,) = rel.annotations
    assert a.problem.question == "Find the perimeter of the square with side 3."
    assert a.steps == [
        "Step 1: The side of the square is 3.",
        "Step 2: The perimeter is 4 * 3 = 12.",
        "Step 3: To sum up, the final answer is: 12",
    ]
    assert a.answer == "12" and a.problem.images == ["geo/17.png"]
    assert rel.skipped == {"not an AtomThink step prompt": 1}


def test_amath_prm_labels_the_last_step():
    rel = load_release("amath-prm", FIX / "amath_prm.json")
    assert [a.labels for a in rel.annotations] == [[True], [True, False]]
    assert rel.annotations[1].steps[1] == "Step 2: The perimeter is 3 * 3 = 9."
    assert rel.skipped == {"label not + or -": 1}


def test_prm800k_follows_the_chosen_completion():
    rel = load_release("prm800k", FIX / "prm800k.jsonl")
    a, b = rel.annotations
    assert a.steps == ["The divisors of 6 are 1, 2, 3 and 6.", "So 6 has 3 divisors."] and a.labels == [
        True,
        False,
    ]
    assert a.problem.answer == "4"
    assert b.steps == ["2 + 2 = 4.", "# Answer\n\n4"] and b.labels == [True, True]  # neutral counts as +


def test_math_shepherd_one_label_per_tag():
    rel = load_release("math-shepherd", FIX / "math_shepherd.jsonl")
    a, b = rel.annotations
    assert a.problem.question == "Janet has 3 apples and buys 4 more. How many does she have?"
    assert a.steps == ["Step 1: She has 3 apples.", "Step 2: 3 + 4 = 7.", "Step 3: The answer is: 7"]
    assert a.labels == [True, True, True] and b.labels == [False, False]
    assert rel.skipped == {"no input/label": 1}


def test_import_writes_validated_datasets_and_dedups(tmp_path):
    out = tmp_path / "rel"
    r = run_import("llava-cot-100k", str(FIX / "llava_cot_train.jsonl"), str(out))
    assert r.new == 2 and r.datasets == {SFT_LLAVA: 2}
    rows = read_dataset(out / SFT_LLAVA)
    assert rows[0].image == "sqa/train/1/image.png" and rows[0].conversations[0]["value"].startswith(
        "<image>\n"
    )
    run_import("amath-sft", str(FIX / "amath_sft.json"), str(out))
    run_import("math-shepherd", str(FIX / "math_shepherd.jsonl"), str(out))
    again = run_import("math-shepherd", str(FIX / "math_shepherd.jsonl"), str(out))
    assert again.new == 0 and again.resumed == 2
    assert len(read_dataset(out / SFT_STEPS)) == 3
    prm = read_dataset(out / PRM)
    assert [p.labels for p in prm] == [[True, True, True], [False, False]]
    assert len((out / "annotations.jsonl").read_text().splitlines()) == 5


def test_bad_release_input_is_one_error_line(tmp_path):
    with pytest.raises(SlowthinkError, match="unknown release 'amath'"):
        load_release("amath", FIX / "amath_prm.json")
    with pytest.raises(SlowthinkError, match="not found"):
        load_release("prm800k", tmp_path / "nope.jsonl")
    (tmp_path / "e.jsonl").write_text(json.dumps({"x": 1}) + "\n")
    with pytest.raises(SlowthinkError, match="holds no usable math-shepherd row"):
        load_release("math-shepherd", tmp_path / "e.jsonl")


def test_our_step_rows_read_back_as_amath_sft(tmp_path):
    """The per-step rows we write carry AtomThink's step prompt: the AMATH-SFT loader rebuilds the chains."""
    from slowthink.annotate import AnnotateConfig, run_annotate
    from tests.annotate.conftest import write_jsonl

    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"q": "Pens?", "a": "30", "r": "3 * 12 = 36. 36 - 6 = 30.\n#### 30"},
            {"q": "Apples?", "a": "7", "r": "3 + 4 = 7.\n#### 7"},
        ],
    )
    out = tmp_path / "seg"
    run_annotate(
        AnnotateConfig(
            mode="atomic-segment", data=data, fields="question=q,answer=a,solution=r", out=str(out)
        ),
        progress=False,
    )
    written = {
        json.loads(x)["problem"]["question"]: json.loads(x)["steps"]
        for x in (out / "annotations.jsonl").read_text().splitlines()
    }
    rel = load_release("amath-sft", out / SFT_STEPS)
    assert {a.problem.question: a.steps for a in rel.annotations} == written


def test_reasoning_stages_of_an_import_are_cut_into_atomic_steps(tmp_path):
    """LLaVA-CoT-100k -> annotate folder -> atomic-segment of its REASONING stages (split, no teacher)."""
    from slowthink.annotate import AnnotateConfig, run_annotate

    rel = tmp_path / "rel"
    run_import("llava-cot-100k", str(FIX / "llava_cot_train.jsonl"), str(rel))
    out = tmp_path / "seg"
    r = run_annotate(
        AnnotateConfig(
            mode="atomic-segment", from_run=str(rel), out=str(out), mode_options={"source": "reasoning"}
        ),
        progress=False,
    )
    assert r.summary["accepted"] == 2
    rows = read_dataset(out / SFT_STEPS)
    assert [row.step for row in rows if row.item == "sqa-1#1"] == [
        "Step 1: Ohio and Maine: 2.",
        "Step 2: To sum up, the final answer is: 2",
    ]
