"""Pieces of the data engine: text helpers, record and dataset validation, mode options, the
atomic-segment checks against a scripted teacher, and the command line."""

from __future__ import annotations

import doctest
import importlib
import json

import pytest

from slowthink.annotate import AnnotateConfig, PRMRow, read_dataset, run_annotate
from slowthink.annotate.datasets import PRM, SFT_STEPS, LlavaSFTRow, RowError
from slowthink.annotate.modes import get_mode
from slowthink.annotate.text import missing_numbers, parse_step_reply, split_solution
from slowthink.cli import main
from slowthink.formats.atomic import AtomicFormat
from slowthink.types import SlowthinkError
from tests.annotate.conftest import write_jsonl
from tests.doubles import ScriptedEngine

MODULES = [
    "slowthink.annotate.text",
    "slowthink.annotate.runner",
    "slowthink.annotate.modes.stages",
    "slowthink.annotate.config",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    "reply, content, action, repaired",
    [
        ('{"content": "Step 1: a", "next_action": "continue"}', "Step 1: a", "continue", None),
        ("{'content': 'Step 2: b', 'next_action': 'verify'}", "Step 2: b", "verify", "single quotes"),
        (
            '{"content": "Step 3: c", "next_action": "final_answer"',
            "Step 3: c",
            "final_answer",
            "closing brace",
        ),
    ],
)
def test_step_replies_are_repaired(reply, content, action, repaired):
    got, reason = parse_step_reply(reply, ("continue", "verify", "final_answer"))
    assert reason is None and (got.content, got.action, got.repaired) == (content, action, repaired)


@pytest.mark.parametrize(
    "reply, reason",
    [
        ('{"content": "", "next_action": "continue"}', "JSON without a 'content' step"),
        ('{"content": "x", "next_action": "think"}', "unknown next_action 'think'"),
        ('{"content": "x" "next_action": "continue"}', "malformed JSON"),
        ('["content"]', "no JSON object in the reply"),
    ],
)
def test_unreadable_step_replies_give_a_reason(reply, reason):
    assert parse_step_reply(reply, ("continue", "final_answer")) == (None, reason)


def test_split_and_number_checks():
    steps, answer = split_solution(
        "He buys 3 packs of 12 = <<3*12=36>>36 pens. He gives 6 away.\nSo 36-6 = 30.\n#### 30"
    )
    assert (
        steps == ["He buys 3 packs of 12 = 36 pens.", "He gives 6 away.", "So 36-6 = 30."] and answer == "30"
    )
    assert (
        missing_numbers("3 packs of 12 cost $1,200.50", ["Step 1: 3 packs", "Step 2: 12 cost 1200.5"]) == []
    )
    assert missing_numbers("3 packs of 12", ["Step 12: 3 packs"]) == [
        "12"
    ]  # a step label is not a number kept


def test_rows_validate_on_write_and_read(tmp_path):
    with pytest.raises(RowError, match="one label per completion step"):
        PRMRow("x", "q", ["a", "b"], [True])
    with pytest.raises(RowError, match="soft_labels must be numbers in"):
        PRMRow("x", "q", ["a"], [True], soft_labels=[1.5])
    with pytest.raises(RowError, match="must hold <image>"):
        LlavaSFTRow("x", [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], image="a.png")
    path = tmp_path / PRM
    path.write_text(
        json.dumps({"id": "a", "prompt": "q", "completions": ["s"], "labels": [True]})
        + "\n"
        + json.dumps({"id": "b", "prompt": "q", "completions": ["s"], "labels": ["+"]})
        + "\n"
    )
    with pytest.raises(
        SlowthinkError, match=r"prm.jsonl:2 breaks the prm.jsonl layout: labels must be a list of booleans"
    ):
        read_dataset(path)


def test_mode_options_are_checked():
    with pytest.raises(
        SlowthinkError, match="mode 'stages' has no option 'k'; valid: hint_field, max_attempts"
    ):
        get_mode("stages").options({"k": 3})
    with pytest.raises(SlowthinkError, match="option max_attempts must be int"):
        get_mode("stages").options({"max_attempts": "many"})
    with pytest.raises(SlowthinkError, match="errors must be a comma list"):
        get_mode("negatives").options({"errors": "typo"})
    with pytest.raises(SlowthinkError, match="unknown annotate mode 'stage'"):
        get_mode("stage")


def segment_rule(prompt: str, body: dict) -> str:
    if "[lose]" in prompt:  # drops the 6
        return "Step 1: He buys 3 packs of 12, 36 pens.\nStep 2: He has 30 left.\nStep 3: To sum up, the final answer is: 30"
    if "[coarse]" in prompt:
        return (
            "Step 1: He buys 3 packs of 12 = 36 pens and gives 6 away, so 36 - 6 = 30.\n"
            "Step 2: To sum up, the final answer is: 30"
        )
    return (
        "Intro text.\nStep 1: He buys 3 packs of 12 pens.\nStep 2: That is 3 * 12 = 36 pens.\n"
        "Step 3: He gives 6 away.\nStep 4: 36 - 6 = 30.\nStep 5: To sum up, the final answer is: 30"
    )


def test_atomic_segment_keeps_the_teacher_only_when_it_beats_the_split(tmp_path, scripted):
    _, _, spec = scripted(segment_rule)
    sol = "He buys 3 packs of 12 = <<3*12=36>>36 pens. He gives 6 away.\nSo 36-6 = 30.\n#### 30"
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "ok", "q": "[ok] Pens?", "a": "30", "r": sol},
            {"id": "lose", "q": "[lose] Pens?", "a": "30", "r": sol},
            {"id": "coarse", "q": "[coarse] Pens?", "a": "30", "r": sol},
            {"id": "bad", "q": "[ok] Pens?", "a": "31", "r": sol},
            {"id": "nosol", "q": "[ok] Pens?", "a": "30"},
        ],
    )
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(
            mode="atomic-segment",
            teacher=spec,
            data=data,
            fields="question=q,answer=a,solution=r",
            out=str(out),
            mode_options={"max_attempts": 1},
        ),
        progress=False,
    )
    recs = {json.loads(x)["id"]: json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()}
    assert recs["ok"]["method"] == "teacher" and len(recs["ok"]["steps"]) == 5
    assert recs["lose"]["method"] == "split" and recs["lose"]["reasons"] == ["numbers lost: 6 (attempt 1)"]
    assert recs["coarse"]["method"] == "split" and recs["coarse"]["reasons"][0].startswith(
        "coarser than the split: 2 < 4"
    )
    assert recs["bad"]["status"] == "rejected" and recs["bad"]["reasons"][-1].startswith(
        "wrong answer: '30' vs '31' (split)"
    )
    assert r.summary["skipped_inputs"] == {"no source text in 'solution'": 1}
    assert r.summary["accepted_by_method"] == {"split": 2, "teacher": 1}
    rows = read_dataset(out / SFT_STEPS)
    assert rows[-1].step == "Step 4: To sum up, the final answer is: 30"


def test_cli_annotate_recipe_and_one_line_errors(tmp_path, capsys):
    data = write_jsonl(
        tmp_path / "d.jsonl", [{"q": "Pens?", "a": "30", "r": "3 * 12 = 36. 36 - 6 = 30.\n#### 30"}]
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"mode: atomic-segment\ndata: {data}\nfields: question=q,answer=a,solution=r\n"
        f"out: {tmp_path / 'o'}\nmode_options: {{max_step_chars: 300}}\n"
    )
    with pytest.raises(SystemExit) as e:
        main(["annotate", "--config", str(recipe), "--no-progress", "--json"])
    assert e.value.code == 0
    s = json.loads(capsys.readouterr().out)
    assert s["accepted"] == 1 and s["datasets"] == {SFT_STEPS: 3} and s["teacher"] == "none"
    for args, message in [
        (
            ["annotate", "--mode", "stages", "--data", data, "--out", str(tmp_path / "x")],
            "mode 'stages' needs a teacher",
        ),
        (
            ["annotate", "--mode", "nope", "--data", data, "--out", str(tmp_path / "x")],
            "unknown annotate mode 'nope'",
        ),
        (["annotate", "--mode", "stages", "--out", str(tmp_path / "x")], "name the items once"),
        (
            [
                "annotate",
                "--mode",
                "stages",
                "--teacher",
                "llamacpp",
                "--max-concurrency",
                "4",
                "--data",
                data,
                "--out",
                str(tmp_path / "x"),
            ],
            "engine 'llamacpp' has no option 'max_concurrency'",
        ),
        (["annotate", "--config", str(tmp_path / "none.yaml")], "cannot be read"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(args)
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and err.count("\n") == 1, err


def test_progress_bar_shows_accept_rate_and_cost(tmp_path, scripted):
    import io

    from rich.console import Console

    from tests.annotate.test_annotate_http import stages

    _, _, spec = scripted(lambda p, b: stages("7") if "[ok]" in p else "no tags at all")
    data = write_jsonl(
        tmp_path / "d.jsonl", [{"q": "[ok] 3 + 4?", "a": "7"}, {"q": "[bad] 3 + 4?", "a": "7"}]
    )
    buf = io.StringIO()
    r = run_annotate(
        AnnotateConfig(
            mode="stages",
            teacher=spec,
            data=data,
            fields="question=q,answer=a",
            out=str(tmp_path / "o"),
            price="1000,2000",
            mode_options={"max_attempts": 1},
        ),
        console=Console(file=buf, width=160),
    )
    text = buf.getvalue()
    assert "accepted 50% (1/2)" in text and "$" in text
    t = r.summary["tokens"]
    assert t["cost_usd"] == pytest.approx((t["prompt"] * 1000 + t["generated"] * 2000) / 1e6)
    with pytest.raises(SlowthinkError, match="--price 'cheap'"):
        AnnotateConfig(mode="stages", out="x", data="d", price="cheap")


def test_items_per_round_follow_max_concurrency():
    base = {"mode": "stages", "out": "x", "data": "d"}
    assert AnnotateConfig(**base).items_per_round == 16
    assert AnnotateConfig(**base, engine_options={"max_concurrency": 32}).items_per_round == 64
    assert AnnotateConfig(**base, batch_size=4, engine_options={"max_concurrency": 32}).items_per_round == 4


def test_images_go_to_the_teacher_and_into_the_llava_rows(tmp_path, scripted):
    from PIL import Image

    from tests.annotate.test_annotate_http import stages

    Image.new("RGB", (8, 8), "red").save(tmp_path / "red.png")
    seen = []

    def rule(prompt, body):
        parts = body["messages"][-1]["content"]
        seen.append(any(isinstance(p, dict) and p.get("type") == "image_url" for p in parts))
        return stages("7")

    _, _, spec = scripted(rule)
    data = write_jsonl(tmp_path / "d.jsonl", [{"q": "3 + 4?", "a": "7", "image": "red.png"}])
    out = tmp_path / "o"
    run_annotate(
        AnnotateConfig(
            mode="stages", teacher=spec, data=data, fields="question=q,answer=a,image=image", out=str(out)
        ),
        progress=False,
    )
    assert seen == [True]
    (row,) = read_dataset(out / "sft_llava.jsonl")
    assert row.image.endswith("red.png") and row.conversations[0]["value"].startswith("<image>\n3 + 4?")
    with pytest.raises(SlowthinkError, match="text-only but item d-0 has an image: pass --ignore-images"):
        run_annotate(
            AnnotateConfig(
                mode="stages",
                teacher=spec,
                data=data,
                fields="question=q,answer=a,image=image",
                out=str(tmp_path / "o2"),
                engine_options={"supports_images": False},
            ),
            progress=False,
        )


def test_cli_prints_the_summary(tmp_path, capsys):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"q": "Pens?", "a": "30", "r": "3 * 12 = 36. 36 - 6 = 30.\n#### 30"},
            {"q": "No solution?", "a": "1"},
        ],
    )
    with pytest.raises(SystemExit) as e:
        main(
            [
                "annotate",
                "--mode",
                "atomic-segment",
                "--data",
                data,
                "--map",
                "question=q,answer=a,solution=r",
                "--out",
                str(tmp_path / "o"),
                "--no-progress",
            ]
        )
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "accepted 1 (100.0%)" in out and "skipped inputs: no source text in 'solution' 1" in out
    assert "sft_steps.jsonl (3 rows)" in out


class RaisingTeacher:
    """An in-process engine double: raises for a request holding ``[boom]``, else a valid reply."""

    name = "raising"
    supports_images = False

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, requests):
        from slowthink.types import Completion
        from tests.annotate.test_annotate_http import stages

        self.calls += 1
        if any("[boom]" in m.content for r in requests for m in r.messages):
            raise RuntimeError("boom")
        return [[Completion(stages("7"), prompt_tokens=5, generated_tokens=9)] for _ in requests]


def test_an_item_that_raises_gets_an_error_record_and_is_retried(tmp_path):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "a", "q": "3 + 4?", "a": "7"},
            {"id": "b", "q": "[boom] 3 + 4?", "a": "7"},
            {"id": "c", "q": "3 + 4?", "a": "7"},
            {"id": "a", "q": "again 3 + 4?", "a": "7"},
        ],
    )
    config = AnnotateConfig(
        mode="stages", data=data, fields="question=q,answer=a,id=id", out=str(tmp_path / "o")
    )
    teacher = RaisingTeacher()
    r = run_annotate(config, teacher=teacher, progress=False)
    assert (r.summary["accepted"], r.summary["errors"]) == (2, 1)
    assert r.summary["skipped_inputs"] == {"duplicate id": 1} and r.summary["teacher"] == "raising"
    recs = {
        json.loads(x)["id"]: json.loads(x)
        for x in (tmp_path / "o" / "annotations.jsonl").read_text().splitlines()
    }
    assert recs["b"]["status"] == "error" and recs["b"]["reasons"] == ["raised RuntimeError: boom"]
    again = run_annotate(config, teacher=teacher, progress=False)
    assert again.new == 1 and again.resumed == 2  # only the errored item runs again


def test_every_item_of_many_small_batches_is_written_once(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": str(i), "q": f"{i} + 4?", "a": "7"} for i in range(40)])
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(
            mode="stages", data=data, fields="question=q,answer=a,id=id", out=str(out), batch_size=1
        ),
        teacher=RaisingTeacher(),
        progress=False,
    )
    ids = [json.loads(x)["id"] for x in (out / "annotations.jsonl").read_text().splitlines()]
    assert sorted(ids, key=int) == [str(i) for i in range(40)] and r.new == 40 and r.summary["accepted"] == 40


def test_rollout_labels_keep_the_policy_steps_as_the_search_scores_them(tmp_path):
    """The PRM rows hold the policy chain's steps verbatim (the atomic format's parse, as best_of_n
    hands them to a PRM), not renumbered ``Step k:`` texts the scorer never sees."""
    chain = "We add 3 and 4: 3 + 4 = 7.\nTo sum up, the final answer is: 7"

    def reply(request, i):
        if not request.prefix:  # the greedy chain
            return chain
        return "To sum up, the final answer is: " + ("9" if i % 2 == 0 else "7")  # rollouts: 2 of 4 right

    data = write_jsonl(tmp_path / "q.jsonl", [{"id": "q1", "question": "What is 3 + 4?", "answer": "7"}])
    out = tmp_path / "o"
    run_annotate(
        AnnotateConfig(mode="rollout-labels", data=data, out=str(out), mode_options={"k": 4}),
        policy=ScriptedEngine(reply),
        progress=False,
    )
    (row,) = read_dataset(out / PRM)
    scored = [s.text for s in AtomicFormat().parse(chain).steps]
    assert row.completions == scored == ["We add 3 and 4: 3 + 4 = 7.", "To sum up, the final answer is: 7"]
    assert row.soft_labels == [0.5, 1.0] and row.labels == [True, True]
