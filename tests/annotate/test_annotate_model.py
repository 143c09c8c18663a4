"""The data engine with real SmolLM2-135M teachers (structure only: its content is weak): through a
real ``llama_cpp.server`` on 127.0.0.1, and in process (``llamacpp``)."""

from __future__ import annotations

import json

import pytest

from slowthink.annotate import AnnotateConfig, run_annotate
from tests.annotate.conftest import write_jsonl

ROWS = [
    {
        "id": "a",
        "q": "Tom has 3 apples and buys 4 more. How many apples does he have?",
        "a": "7",
        "r": "Tom has 3 apples. He buys 4 more, so 3 + 4 = 7.\n#### 7",
    },
    {
        "id": "b",
        "q": "A pen costs 2 dollars. How much do 5 pens cost?",
        "a": "10",
        "r": "Each pen costs 2 dollars. 5 pens cost 5 * 2 = 10 dollars.\n#### 10",
    },
]


def check_structure(out, summary, n):
    recs = [json.loads(x) for x in (out / "annotations.jsonl").read_text().splitlines()]
    assert len(recs) == n and summary["items"] == n
    assert summary["accepted"] + summary["rejected"] + summary["errors"] == n and summary["errors"] == 0
    for r in recs:
        assert r["status"] in ("accepted", "rejected")
        assert r["status"] == "accepted" or r["reasons"], r
        assert r["usage"]["generated_tokens"] > 0 and r["usage"]["calls"] >= 1
    return recs


@pytest.mark.server
@pytest.mark.slow
def test_stages_and_dynamic_through_a_real_llama_cpp_server(tmp_path, llama_server):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    spec = f"openai:{llama_server.base_url}#{llama_server.model}"
    out = tmp_path / "stages"
    r = run_annotate(
        AnnotateConfig(
            mode="stages",
            teacher=spec,
            data=data,
            fields="question=q,answer=a",
            out=str(out),
            mode_options={"max_attempts": 1, "max_tokens": 96},
            engine_options={"max_concurrency": 2},
        ),
        progress=False,
    )
    check_structure(out, r.summary, 2)
    out = tmp_path / "dynamic"
    r = run_annotate(
        AnnotateConfig(
            mode="atomic-dynamic",
            teacher=spec,
            data=data,
            fields="question=q,answer=a",
            out=str(out),
            mode_options={"max_steps": 2, "json_retries": 0, "step_tokens": 48, "close_tokens": 32},
        ),
        progress=False,
    )
    recs = check_structure(out, r.summary, 2)
    for rec in recs:  # every reply either parsed into a step or left its reason
        assert rec["status"] == "accepted" or rec["reasons"][-1].split(":")[0] in (
            "malformed reply",
            "wrong answer",
            "no final answer",
        )


@pytest.mark.model
@pytest.mark.slow
def test_atomic_segment_with_the_embedded_teacher(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", ROWS)
    out = tmp_path / "seg"
    r = run_annotate(
        AnnotateConfig(
            mode="atomic-segment",
            teacher="llamacpp",
            threads=1,
            data=data,
            fields="question=q,answer=a,solution=r",
            out=str(out),
            mode_options={"max_attempts": 1, "max_tokens": 96},
        ),
        progress=False,
    )
    recs = check_structure(out, r.summary, 2)
    assert {rec["method"] for rec in recs if rec["status"] == "accepted"} <= {"teacher", "split"}
    assert r.summary["accepted"] == 2  # the split is the fallback: these solutions always pass it


@pytest.mark.hf
def test_stages_with_an_in_process_vlm_teacher_and_images(tmp_path, tiny_llava_dir):
    """A tiny random LLaVA (hf engine) as the teacher: the image reaches the model in process; its
    output is noise, so every item is rejected with a reason, and nothing crashes."""
    from PIL import Image

    Image.new("RGB", (28, 28), "blue").save(tmp_path / "blue.png")
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [{"id": "v", "q": "What colour is the square?", "a": "blue", "image": "blue.png"}],
    )
    out = tmp_path / "o"
    r = run_annotate(
        AnnotateConfig(
            mode="stages",
            teacher=f"hf:{tiny_llava_dir}",
            data=data,
            fields="question=q,answer=a,image=image",
            out=str(out),
            mode_options={"max_attempts": 2, "max_tokens": 16},
        ),
        progress=False,
    )
    rec = json.loads((out / "annotations.jsonl").read_text())
    assert r.summary["items"] == 1 and rec["status"] == "rejected" and len(rec["reasons"]) == 2
    assert rec["problem"]["images"][0].endswith("blue.png") and rec["usage"]["prompt_tokens"] > 0
