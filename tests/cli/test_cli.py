"""CLI: user errors give one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from slowthink.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    "args, message",
    [
        (["solve", "  "], "the question is empty"),
        (["solve", "What?", "--image", "/nope/missing.png"], "image not found: /nope/missing.png"),
        (["solve", "What?", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["solve", "What?", "--format", "nope"], "unknown format 'nope'"),
        (["solve", "What?", "--model", "/nope/m.gguf"], "GGUF model not found"),
        (["solve", "What?", "--engine", "foo"], "unknown engine 'foo'"),
        (["solve", "What?", "--choices", "only-one"], "at least two options"),
    ],
)
def test_user_errors(args, message):
    r = run(*args)
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert message in out and "Traceback" not in out


def test_broken_image(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    r = run("solve", "What is shown?", "--image", str(bad))
    assert r.exit_code == 2 and "cannot be read" in r.output


def test_no_traceback_in_a_real_process():
    r = subprocess.run(
        [sys.executable, "-m", "slowthink.cli", "solve", "", "--strategy", "quick"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "question is empty" in r.stderr


@pytest.mark.model
def test_image_on_text_engine_says_how_to_proceed(shared_data):
    img = str(next((shared_data / "math-v" / "images").glob("*.jpg")))
    r = run("solve", "What is shown?", "--image", img, "--strategy", "direct")
    assert r.exit_code == 2 and "--ignore-images" in " ".join(r.output.split())


@pytest.mark.model
def test_solve_json_trace():
    r = run("solve", "What is 2 + 3?", "--strategy", "majority", "--n", "2", "--format", "atomic", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["strategy"] == "majority" and len(d["nodes"]) == 3
    assert d["compute"]["generated_tokens"] > 0 and d["compute"]["engine_calls"] == 1


@pytest.mark.model
def test_solve_readable(shared_data):
    img = str(next((shared_data / "math-v" / "images").glob("*.jpg")))
    r = run(
        "solve",
        "What is 2 + 3?",
        "--image",
        img,
        "--ignore-images",
        "--strategy",
        "quick",
        "--format",
        "stages",
        "--answer",
        "5",
    )
    assert r.exit_code == 0, r.output
    assert "SUMMARY" in r.output and "answer" in r.output and "compute" in r.output


@pytest.mark.parametrize(
    "engine, model, base_url, spec",
    [
        ("llamacpp", None, None, "llamacpp"),
        ("llamacpp", "/m.gguf", None, "llamacpp:/m.gguf"),
        ("hf", "/models/llava", None, "hf:/models/llava"),
        ("openai", "qwen", "http://127.0.0.1:8000/v1", "openai:http://127.0.0.1:8000/v1#qwen"),
    ],
)
def test_engine_spec_from_options(engine, model, base_url, spec):
    from slowthink.cli import engine_spec_of

    assert engine_spec_of(engine, model, base_url) == spec


def test_base_url_needs_openai_and_unreachable_server_is_one_line():
    r = run("solve", "What?", "--engine", "hf", "--base-url", "http://127.0.0.1:9/v1")
    assert r.exit_code == 2 and "--base-url is for --engine openai" in r.output
