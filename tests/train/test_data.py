"""The training record layouts (slowthink.train.data) and the recipe: parsing and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from slowthink.train.data import load_sft, load_stepwise
from slowthink.train.recipe import Recipe
from slowthink.types import SlowthinkError
from tests.train.conftest import ATOMIC_STEP, CONVERSATION, IMAGE_CONVERSATION, STEPWISE, write_jsonl


def test_both_sft_layouts_read_into_chat_examples(data_dir):
    f = write_jsonl(data_dir / "sft.jsonl", [CONVERSATION, IMAGE_CONVERSATION, ATOMIC_STEP])
    conv, img, step = load_sft(f)
    assert [m.role for m in conv.messages] == ["user", "assistant"] and conv.prefix == ""
    assert img.messages[0].content == "Which option is correct?"  # the <image> marker is removed
    assert img.images == [str(data_dir / "red.png")]
    # AtomThink per-step: the atomthink step prompt (question + history in the user turn), step alone.
    assert "HISTORICAL REASONING STEPS" in step.messages[0].content
    assert "Step 1: We add the numbers." in step.messages[0].content
    assert step.messages[-1].content == "Step 2: The answer is 6."


def test_line_style_atomic_record_masks_the_history_prefix(data_dir):
    rec = {**ATOMIC_STEP, "history": ["Step 1: We add the numbers.\n"], "format": "atomic"}
    (ex,) = load_sft(write_jsonl(data_dir / "sft.jsonl", [rec]))
    assert ex.prefix == "Step 1: We add the numbers.\n"
    assert ex.messages[-1].content == ex.prefix + "Step 2: The answer is 6."


def test_stepwise_records_with_hard_and_soft_labels(data_dir):
    a, b, c = load_stepwise(write_jsonl(data_dir / "prm.jsonl", STEPWISE))
    assert a.labels == [1.0, 1.0] and b.labels == [1.0, 0.0] and c.labels == [0.2]
    assert b.problem.question == "What is 2 + 3?" and b.steps[1] == "The answer is 42."


@pytest.mark.parametrize(
    ("loader", "records", "needle"),
    [
        (load_sft, [STEPWISE[0]], "not a 'sft' training record"),
        (load_stepwise, [CONVERSATION], "not a 'prm' training record"),
        (load_stepwise, [{k: v for k, v in STEPWISE[0].items() if k != "labels"}], "'labels' must be a list"),
        (load_stepwise, [{**STEPWISE[0], "labels": [True]}], "one label per step (2)"),
        (load_stepwise, [{**STEPWISE[0], "labels": [True, 1.5]}], "not true/false or a probability"),
        (load_sft, [{**IMAGE_CONVERSATION, "image": "missing.png"}], "image not found"),
        (load_sft, [{**IMAGE_CONVERSATION, "image": None}], "'<image>' marker(s) but only 0 image(s)"),
        (
            load_sft,
            [{"id": "x", "conversations": [{"from": "human", "value": "hi"}]}],
            "must end with a gpt turn",
        ),
        (
            load_sft,
            [{"id": "x", "conversations": [{"from": "bot", "value": "hi"}]}],
            "use human, gpt or system",
        ),
    ],
)
def test_bad_records_are_one_clear_error(data_dir, loader, records, needle):
    f = write_jsonl(data_dir / "bad.jsonl", records)
    with pytest.raises(SlowthinkError) as e:
        loader(f)
    assert needle in str(e.value) and "bad.jsonl:1" in str(e.value)
    assert "\n" not in str(e.value)


def test_not_json_and_empty_files(data_dir):
    (data_dir / "x.jsonl").write_text("{not json\n")
    with pytest.raises(SlowthinkError, match="x.jsonl:1: not valid JSON"):
        load_sft(data_dir / "x.jsonl")
    (data_dir / "e.jsonl").write_text("\n")
    with pytest.raises(SlowthinkError, match="no records"):
        load_sft(data_dir / "e.jsonl")
    with pytest.raises(SlowthinkError, match="training data not found"):
        load_sft(data_dir / "nope.jsonl")


def test_recipe_yaml_and_overrides(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("description: test\nlearning_rate: 2e-6\nepochs: 1\nbatch_size: 8\nlora: true\n")
    r = Recipe.load(f, batch_size=2, lora=None)
    assert (r.learning_rate, r.batch_size, r.lora) == (2e-6, 2, True)
    f.write_text("learnig_rate: 1\n")
    with pytest.raises(SlowthinkError, match="unknown key"):
        Recipe.load(f)
    with pytest.raises(SlowthinkError, match="protocol must be"):
        Recipe(protocol="cls")


def test_shipped_recipes_load():
    recipes = sorted((Path(__file__).resolve().parents[2] / "recipes" / "train").glob("*.yaml"))
    assert len(recipes) >= 4
    for path in recipes:
        Recipe.load(path)
