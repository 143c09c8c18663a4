"""The data engine against a scripted OpenAI-compatible teacher on 127.0.0.1: chosen bad outputs
(missing tags, refusals, wrong answers, malformed JSON, runaway text), HTTP 500/429, slow replies."""

from __future__ import annotations

import json
import re

import pytest

from slowthink.annotate import AnnotateConfig, read_dataset, run_annotate
from slowthink.annotate.datasets import PRM, SFT_LLAVA, SFT_STEPS
from slowthink.types import SlowthinkError
from tests.annotate.conftest import write_jsonl

FAST = {"max_retries": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05}


def stages(conclusion: str, caption: str = "Numbers 3 and 4.") -> str:
    return (
        f"<SUMMARY> I will add them. </SUMMARY>\n\n<CAPTION> {caption} </CAPTION>\n\n"
        f"<REASONING> 3 + 4 = 7. </REASONING>\n\n<CONCLUSION> {conclusion} </CONCLUSION>"
    )


def marker(prompt: str) -> str:
    m = re.search(r"\[([a-z-]+)\]", prompt)
    return m.group(1) if m else ""


def stages_rule(teacher):
    def rule(prompt: str, body: dict):
        tag = marker(prompt)
        if prompt.startswith("Evaluate whether"):
            return "valid" if tag == "text-valid" else "Invalid."
        if tag == "tags-once" and teacher().count(tag) == 0:
            return "<SUMMARY> plan </SUMMARY> <REASONING> 3 + 4 = 7 </REASONING> <CONCLUSION> 7 </CONCLUSION>"
        if tag == "refuse":
            return "I'm sorry, I cannot help with that."
        if tag == "wrong":
            return stages("99")
        if tag == "runaway":
            return "<SUMMARY> " + "and so on " * 200, "length"
        if tag == "text-invalid":
            return stages("a blue square")
        if tag == "text-valid":
            return stages("the circle is red")
        return stages("7")

    return rule


def items(tmp_path, rows):
    return write_jsonl(tmp_path / "items.jsonl", rows)


def test_stages_accepts_retries_and_rejects_with_reasons(tmp_path, scripted):
    holder = {}
    proxy, teacher, spec = scripted(stages_rule(lambda: holder["t"]))
    holder["t"] = teacher
    data = items(
        tmp_path,
        [
            {"id": "good", "question": "[good] What is 3 + 4?", "answer": "7"},
            {"id": "tags", "question": "[tags-once] What is 3 + 4?", "answer": "7"},
            {"id": "refuse", "question": "[refuse] What is 3 + 4?", "answer": "7"},
            {"id": "wrong", "question": "[wrong] What is 3 + 4?", "answer": "7"},
            {"id": "runaway", "question": "[runaway] What is 3 + 4?", "answer": "7"},
            {"id": "tinv", "question": "[text-invalid] What shape is shown?", "answer": "a red circle"},
            {"id": "tval", "question": "[text-valid] What shape is shown?", "answer": "red circle"},
            {"id": "noans", "question": "[good] A question without an answer"},
        ],
    )
    out = tmp_path / "out"
    r = run_annotate(
        AnnotateConfig(
            mode="stages",
            teacher=spec,
            data=data,
            out=str(out),
            engine_options=FAST,
            mode_options={"max_attempts": 2},
        ),
        progress=False,
    )
    recs = {json.loads(x)["id"]: json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()}
    assert set(recs) == {"good", "tags", "refuse", "wrong", "runaway", "tinv", "tval"}
    assert recs["good"]["status"] == "accepted" and recs["good"]["attempts"] == 1
    assert recs["good"]["stages"]["conclusion"] == "7" and recs["good"]["prompt_version"] == "stages-v1"
    assert recs["tags"]["status"] == "accepted" and recs["tags"]["attempts"] == 2
    assert recs["tags"]["reasons"][0].startswith("tags: expected SUMMARY, CAPTION")
    assert recs["refuse"]["status"] == "rejected" and recs["refuse"]["reasons"] == [
        "refusal (attempt 1)",
        "refusal (attempt 2)",
    ]
    assert recs["wrong"]["status"] == "rejected" and recs["wrong"]["reasons"][0].startswith(
        "wrong answer: CONCLUSION '99'"
    )
    assert "verifications" not in recs["wrong"]["extra"]  # numbers: the rules decide, no teacher call
    assert recs["runaway"]["reasons"][0] == "runaway: cut at max_tokens (attempt 1)"
    assert (
        recs["tinv"]["status"] == "rejected"
        and "teacher verification said invalid" in recs["tinv"]["reasons"][0]
    )
    assert recs["tval"]["status"] == "accepted" and recs["tval"]["method"] == "teacher+verified"
    s = r.summary
    assert (s["accepted"], s["rejected"], s["errors"]) == (3, 4, 0)
    assert s["rejected_by_reason"] == {"refusal": 1, "wrong answer": 2, "runaway": 1}
    assert s["skipped_inputs"] == {"missing answer": 1}  # counted by the loader
    assert s["tokens"]["prompt"] > 0 and s["tokens"]["generated"] > 0
    rows = read_dataset(out / SFT_LLAVA)
    assert sorted(row.id for row in rows) == ["good", "tags", "tval"]
    gpt = rows[0].conversations[1]["value"]
    assert gpt.startswith("<SUMMARY>") and gpt.endswith("</CONCLUSION>")
    assert not (out / PRM).exists() and not (out / SFT_STEPS).exists()
    # resumed: nothing is asked again, nothing duplicated
    before = len(proxy.generation_attempts())
    again = run_annotate(
        AnnotateConfig(
            mode="stages",
            teacher=spec,
            data=data,
            out=str(out),
            engine_options=FAST,
            mode_options={"max_attempts": 2},
        ),
        progress=False,
    )
    assert again.new == 0 and again.resumed == 7 and len(proxy.generation_attempts()) == before
    assert len((out / "annotations.jsonl").read_text().splitlines()) == 7


def test_transient_500_and_429_are_retried_by_the_engine(tmp_path, scripted):
    proxy, _, spec = scripted(lambda p, b: stages("7"), fail=[500, 429])
    data = items(tmp_path, [{"id": "a", "question": "What is 3 + 4?", "answer": "7"}])
    r = run_annotate(
        AnnotateConfig(mode="stages", teacher=spec, data=data, out=str(tmp_path / "o"), engine_options=FAST),
        progress=False,
    )
    assert r.summary["accepted"] == 1 and len(proxy.generation_attempts()) == 3


def test_a_first_batch_failing_in_the_engine_stops_and_records_nothing(tmp_path, scripted):
    _, _, spec = scripted(lambda p, b: stages("7"), always=500)
    data = items(tmp_path, [{"id": str(i), "question": "What is 3 + 4?", "answer": "7"} for i in range(3)])
    out = tmp_path / "o"
    with pytest.raises(SlowthinkError, match="every item of the first batch failed"):
        run_annotate(
            AnnotateConfig(mode="stages", teacher=spec, data=data, out=str(out), engine_options=FAST),
            progress=False,
        )
    assert not (out / "annotations.jsonl").exists() or (out / "annotations.jsonl").read_text() == ""


def test_slow_replies_run_concurrently_within_max_concurrency(tmp_path, scripted):
    proxy, _, spec = scripted(lambda p, b: stages("7"), delay_s=0.2)
    data = items(
        tmp_path, [{"id": str(i), "question": f"What is 3 + 4? ({i})", "answer": "7"} for i in range(8)]
    )
    r = run_annotate(
        AnnotateConfig(
            mode="stages",
            teacher=spec,
            data=data,
            out=str(tmp_path / "o"),
            engine_options={**FAST, "max_concurrency": 3},
            batch_size=8,
        ),
        progress=False,
    )
    assert r.summary["accepted"] == 8
    assert proxy.max_in_flight == 3
    assert r.summary["wall_time_s"] < 8 * 0.2  # not one at a time


def dynamic_rule(teacher):
    def rule(prompt: str, body: dict):
        tag = marker(prompt)
        if "Give the final answer" in prompt:
            return "Step 4: To sum up, the final answer is: 7"
        step = int(re.search(r"JSON object of step (\d+)", prompt).group(1))
        if tag == "never-json":
            return "Sure! Let me think about adding the numbers."
        if tag == "malformed-once" and step == 1 and teacher().count(tag) == 0:
            return '{"content": "Step 1: 3 + 4 = 7", "next_action": '
        if tag == "bound":
            return json.dumps({"content": f"Step {step}: keep going {step}", "next_action": "continue"})
        if step == 1:
            return 'Here you go: {"content": "Step 1: 3 + 4 = 7", "next_action": "Continue"}'
        return '```json\n{"content": "Step 2: To sum up, the final answer is: 7", "next_action": "final_answer",}\n```'

    return rule


def test_atomic_dynamic_repairs_retries_bounds_and_closes(tmp_path, scripted):
    holder = {}
    proxy, teacher, spec = scripted(dynamic_rule(lambda: holder["t"]))
    holder["t"] = teacher
    data = items(
        tmp_path,
        [
            {"id": "good", "question": "[good] What is 3 + 4?", "answer": "7"},
            {"id": "once", "question": "[malformed-once] What is 3 + 4?", "answer": "7"},
            {"id": "never", "question": "[never-json] What is 3 + 4?", "answer": "7"},
            {"id": "bound", "question": "[bound] What is 3 + 4?", "answer": "7"},
        ],
    )
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(
            mode="atomic-dynamic",
            teacher=spec,
            data=data,
            out=str(out),
            engine_options=FAST,
            mode_options={"max_steps": 3, "json_retries": 1},
        ),
        progress=False,
    )
    recs = {json.loads(x)["id"]: json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()}
    assert recs["good"]["status"] == "accepted"
    assert recs["good"]["steps"] == ["Step 1: 3 + 4 = 7", "Step 2: To sum up, the final answer is: 7"]
    assert recs["good"]["extra"]["repaired_replies"] == 2 and recs["good"]["extra"]["actions"] == [
        "continue",
        "final_answer",
    ]
    assert recs["once"]["status"] == "accepted" and recs["once"]["extra"]["malformed"] == ["malformed JSON"]
    assert recs["never"]["status"] == "rejected" and recs["never"]["reasons"] == [
        "malformed reply: no JSON object in the reply (2 tries at step 1)"
    ]
    assert recs["bound"]["status"] == "accepted" and recs["bound"]["extra"]["hit_step_bound"]
    assert recs["bound"]["steps"][-1] == "Step 4: To sum up, the final answer is: 7"
    assert r.summary["rejected_by_reason"] == {"malformed reply": 1}
    rows = read_dataset(out / SFT_STEPS)
    assert [row.id for row in rows if row.item == "good"] == ["good#1", "good#2"]
    assert (
        rows[1].history == ["Step 1: 3 + 4 = 7"]
        and "HISTORICAL REASONING STEPS" in rows[1].conversations[0]["value"]
    )


def test_negatives_label_the_corrupted_step(tmp_path, scripted):
    def rule(prompt: str, body: dict):
        k = int(re.search(r"Rewrite ONLY step (\d+)", prompt).group(1))
        if "[same]" in prompt:
            return re.search(rf"Step {k}: [^\n]*", prompt.split("Solution:")[1]).group(0)
        return f"Step {k}: 3 + 4 = 8, so the total is 8"

    _, _, spec = scripted(rule)
    chain = ["Step 1: 3 + 4 = 7", "Step 2: 7 - 0 = 7", "Step 3: To sum up, the final answer is: 7"]
    data = items(
        tmp_path,
        [
            {"id": "n1", "question": "What is 3 + 4 - 0?", "answer": "7", "steps": chain},
            {"id": "n2", "question": "[same] What is 3 + 4 - 0?", "answer": "7", "steps": chain},
            {"id": "n3", "question": "What is 3 + 4 - 0?", "answer": "7"},
        ],
    )
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(
            mode="negatives", teacher=spec, data=data, fields="steps=steps", out=str(out), engine_options=FAST
        ),
        progress=False,
    )
    assert r.summary["skipped_inputs"] == {"no chain in 'steps'": 1}
    rec = json.loads((out / "annotations.jsonl").read_text().splitlines()[0])
    k = rec["extra"]["corrupted_step"]
    assert rec["labels"] == [True] * (k - 1) + [False] and rec["steps"][: k - 1] == chain[: k - 1]
    assert r.summary["rejected_by_reason"] == {"not corrupted": 1}
    rows = {row.id: row for row in read_dataset(out / PRM)}
    assert rows["n1"].labels[-1] is False and rows["n1#pos"].labels == [True, True, True]


def test_rollout_labels_soft_and_hard_from_one_batched_call(tmp_path, scripted):
    def rule(prompt: str, body: dict):
        prefix = text_of_last(body)
        return (
            "Step 3: To sum up, the final answer is: 8"
            if "= 8" in prefix
            else "Step 3: To sum up, the final answer is: 7"
        )

    proxy, _, spec = scripted(rule)
    chain = ["Step 1: We add 3 and 4.", "Step 2: 3 + 4 = 8.", "Step 3: To sum up, the final answer is: 8"]
    data = items(
        tmp_path,
        [{"id": f"r{i}", "question": "What is 3 + 4?", "answer": "7", "steps": chain} for i in range(3)],
    )
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(
            mode="rollout-labels",
            policy=spec,
            data=data,
            fields="steps=steps",
            out=str(out),
            engine_options={**FAST, "prefix_mode": "continue"},
            mode_options={"k": 4},
        ),
        progress=False,
    )
    assert r.summary["accepted"] == 3
    rows = read_dataset(out / PRM)
    assert rows[0].labels == [True, False, False] and rows[0].soft_labels == [1.0, 0.0, 0.0]
    gen = [a.body for a in proxy.generation_attempts()]
    assert len(gen) == 6 and all(b["n"] == 4 for b in gen)  # 2 prefixes x 3 items, one engine call


def test_rollout_labels_binary_search_finds_the_first_wrong_step(tmp_path, scripted):
    def rule(prompt: str, body: dict):
        answer = 8 if "= 8" in text_of_last(body) else 7
        return f"Step 4: To sum up, the final answer is: {answer}"

    proxy, _, spec = scripted(rule)
    chain = (
        ["Step 1: We add 3 and 4.", "Step 2: 3 + 4 = 8."]
        + [f"Step {k}: 8 + 0 = 8." for k in range(3, 8)]
        + ["Step 8: To sum up, the final answer is: 8"]
    )
    data = items(
        tmp_path,
        [{"id": f"r{i}", "question": "What is 3 + 4?", "answer": "7", "steps": chain} for i in range(2)],
    )
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(
            mode="rollout-labels",
            policy=spec,
            data=data,
            fields="steps=steps",
            out=str(out),
            engine_options={**FAST, "prefix_mode": "continue"},
            mode_options={"k": 2, "search": "binary"},
        ),
        progress=False,
    )
    assert r.summary["accepted"] == 2
    rows = read_dataset(out / PRM)
    assert (
        rows[0].completions == chain[:2] and rows[0].labels == [True, False] and rows[0].soft_labels is None
    )
    # depths 5, 3, 2 (wrong) then 1 (right): four rounds of one request per item, where measuring
    # every prefix takes 7 requests per item
    assert len(proxy.generation_attempts()) == 8


def text_of_last(body: dict) -> str:
    msgs = body.get("messages") or []
    return str(msgs[-1].get("content")) if msgs and msgs[-1].get("role") == "assistant" else ""


def test_negatives_from_an_earlier_run(tmp_path, scripted):
    data = items(
        tmp_path,
        [
            {
                "id": f"g{i}",
                "question": f"Pens {i}?",
                "answer": str(30 + i),
                "solution": f"He buys 3 packs of 12 = 36 pens. He gives {6 - i} away.\n#### {30 + i}",
            }
            for i in range(3)
        ],
    )
    seg = tmp_path / "seg"
    run_annotate(
        AnnotateConfig(mode="atomic-segment", data=data, fields="solution=solution", out=str(seg)),
        progress=False,
    )
    step = re.compile(r"Rewrite ONLY step (\d+)")
    _, _, spec = scripted(lambda p, b: f"Step {step.search(p).group(1)}: 3 packs of 12 = 38 pens.")
    out = tmp_path / "neg"
    r = run_annotate(
        AnnotateConfig(mode="negatives", teacher=spec, from_run=str(seg), out=str(out)), progress=False
    )
    assert r.summary["accepted"] == 3 and r.summary["source"].startswith("3 accepted chains from")
    rows = read_dataset(out / PRM)
    pos = [row for row in rows if row.id.endswith("#pos")]
    assert len(rows) == 6 and all(len(p.completions) == 3 and all(p.labels) for p in pos)
    with pytest.raises(SlowthinkError, match="holds no annotations.jsonl"):
        run_annotate(
            AnnotateConfig(mode="negatives", teacher=spec, from_run=str(tmp_path), out=str(out)),
            progress=False,
        )


def test_stages_on_llava_conversation_input_with_hints(tmp_path, scripted):
    prompts = []

    def rule(prompt, body):
        prompts.append(prompt)
        return stages("B" if "farthest" in prompt else "2")

    _, _, spec = scripted(rule)
    (tmp_path / "img").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "img" / "map.png")
    data = tmp_path / "input.jsonl"
    data.write_text(
        json.dumps(
            {
                "id": "sqa-1",
                "image": "img/map.png",
                "hints": ["Maine is in New England."],
                "conversations": [
                    {"from": "human", "value": "<image>\nWhich is farthest north? A. Ohio B. Maine"},
                    {"from": "gpt", "value": "B"},
                    {"from": "human", "value": "How many states?"},
                    {"from": "gpt", "value": "2"},
                ],
            }
        )
        + "\n"
    )
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(mode="stages", teacher=spec, data=str(data), data_layout="llava", out=str(out)),
        progress=False,
    )
    assert r.summary["accepted"] == 2 and r.summary["source"].startswith("2 LLaVA question/answer pairs")
    assert any("Standard answer: B\nHint: Maine is in New England." in p for p in prompts)
    assert not any("<image>" in p for p in prompts)
    rows = read_dataset(out / SFT_LLAVA)
    assert [row.id for row in rows] == ["sqa-1", "sqa-1#1"] and rows[0].image == str(
        tmp_path / "img" / "map.png"
    )


def test_a_corrupted_final_step_must_answer_wrong(tmp_path, scripted):
    def rule(prompt: str, body: dict):
        return (
            "Step 1: To sum up, the final answer is: 7."
            if "[keep]" in prompt
            else "Step 1: To sum up, the final answer is: 9"
        )

    _, _, spec = scripted(rule)
    chain = ["Step 1: To sum up, the final answer is: 7"]
    data = items(
        tmp_path,
        [
            {"id": "keep", "question": "[keep] 3 + 4?", "answer": "7", "steps": chain},
            {"id": "flip", "question": "[flip] 3 + 4?", "answer": "7", "steps": chain},
        ],
    )
    out = tmp_path / "o"
    run_annotate(
        AnnotateConfig(
            mode="negatives",
            teacher=spec,
            data=data,
            fields="steps=steps",
            out=str(out),
            mode_options={"max_attempts": 1, "max_similarity": 99.5},
        ),
        progress=False,
    )
    recs = {json.loads(x)["id"]: json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()}
    assert recs["keep"]["reasons"] == ["not corrupted: the final answer is still right (attempt 1)"]
    assert recs["flip"]["status"] == "accepted" and recs["flip"]["labels"] == [False]


def test_an_accepted_item_is_on_disk_before_its_batch_ends(tmp_path, scripted):
    out = tmp_path / "o"
    seen_on_disk = []
    holder = {}

    def rule(prompt: str, body: dict):
        if "[late]" in prompt:
            if holder["t"].count("late") == 0:
                return "no tags"
            path = out / "annotations.jsonl"  # the second round: is the first item written already?
            seen_on_disk.append(
                [json.loads(x)["id"] for x in path.read_text().splitlines()] if path.exists() else []
            )
        return stages("7")

    _, teacher, spec = scripted(rule)
    holder["t"] = teacher
    data = items(
        tmp_path,
        [
            {"id": "early", "question": "3 + 4?", "answer": "7"},
            {"id": "late", "question": "[late] 3 + 4?", "answer": "7"},
        ],
    )
    r = run_annotate(AnnotateConfig(mode="stages", teacher=spec, data=data, out=str(out)), progress=False)
    assert seen_on_disk == [["early"]] and r.summary["accepted"] == 2 and r.new == 2
    assert [json.loads(x)["id"] for x in (out / "annotations.jsonl").read_text().splitlines()] == [
        "early",
        "late",
    ]
