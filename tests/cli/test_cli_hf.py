"""``slowthink solve --image`` end to end on the hf engine with tiny random VLMs built offline,
on a real MATH-V image, with the LLaVA-CoT stages format."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slowthink.cli import app

pytestmark = pytest.mark.hf


@pytest.mark.parametrize("model_fixture", ["tiny_llava_dir", "tiny_qwen2vl_dir"])
def test_solve_image_stages_on_tiny_vlm(request, model_fixture, shared_data):
    model_dir = request.getfixturevalue(model_fixture)
    image = shared_data / "math-v" / "images" / "6.jpg"
    r = CliRunner().invoke(
        app,
        [
            "solve",
            "How many kittens are striped?",
            "--image",
            str(image),
            "--engine",
            f"hf:{model_dir}",
            "--format",
            "stages",
            "--strategy",
            "quick",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    trace = json.loads(r.output)
    kinds = [n["kind"] for n in trace["nodes"] if n["chosen"] and n["parent"] is not None]
    # a random model writes junk, but the search still walks the four stages (closing what it left open)
    assert kinds == ["summary", "caption", "reasoning", "conclusion"]
    assert trace["response"].startswith("<SUMMARY>") and trace["response"].rstrip().endswith("</CONCLUSION>")
    assert trace["compute"]["prompt_tokens"] > 0 and trace["compute"]["engine_calls"] == 4
