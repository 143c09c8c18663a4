"""``slowthink serve`` as a real process on 127.0.0.1, driven by the official ``openai`` client,
``curl`` and raw HTTP: answers, streaming, errors, limits, coalescing and images."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import threading
import time

import httpx
import pytest
from PIL import Image

from tests.serve.conftest import KEY, SCRIPTED, VISION, chat_body, post, serve

openai = pytest.importorskip("openai", reason="the openai client is in the dev extra")


def test_models_are_listed(scripted) -> None:
    client = openai.OpenAI(base_url=scripted.base, api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == [
        "quick",
        "majority?n=8",
        "stage_beam?n=4&scorer=judge",
        "step_beam?n=4&beam=2",
    ]


def test_the_openai_client_gets_the_answer_the_reasoning_and_all_compute(scripted) -> None:
    client = openai.OpenAI(base_url=scripted.base, api_key="unused", max_retries=0, timeout=20)
    out = client.chat.completions.create(
        model="stage_beam?n=2", messages=[{"role": "user", "content": "What is 12 + 30?"}]
    )
    message = out.choices[0].message
    assert message.content == "42"
    reasoning = message.model_extra["reasoning_content"]
    assert reasoning.startswith("Step 1:") and "final answer is: 42" in reasoning
    compute = out.model_extra["slowthink"]["compute"]
    assert compute["scorer_prompt_tokens"] > 0  # the judge ran and is counted
    assert out.usage.prompt_tokens == compute["prompt_tokens"] + compute["scorer_prompt_tokens"]
    assert out.usage.completion_tokens == compute["generated_tokens"] + compute["scorer_generated_tokens"]
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


def test_the_openai_client_streams_each_step_then_the_answer(scripted) -> None:
    client = openai.OpenAI(base_url=scripted.base, api_key="unused", max_retries=0, timeout=20)
    stream = client.chat.completions.create(
        model="stage_beam?n=2",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "What is 1 + 2?"}],
    )
    steps, content, usage, finish = [], "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if (delta.model_extra or {}).get("reasoning_content"):
                steps.append(delta.model_extra["reasoning_content"])
            content += delta.content or ""
            finish = choice.finish_reason or finish
    assert content == "3" and finish == "stop"
    assert len(steps) == 3 and steps[0].startswith("Step 1:") and "final answer is: 3" in steps[-1]
    assert usage is not None and usage.total_tokens > 0


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_raw_requests(scripted) -> None:
    def curl(*args: str) -> str:
        return subprocess.run(
            ["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True, check=True
        ).stdout

    models = json.loads(curl(scripted.base + "/models"))
    assert models["object"] == "list"
    out = json.loads(
        curl(
            scripted.base + "/chat/completions",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(chat_body("quick", "What is 4 + 4?")),
        )
    )
    assert out["object"] == "chat.completion" and out["choices"][0]["message"]["content"] == "8"
    sse = curl("-N", scripted.base + "/chat/completions", "-d", json.dumps(chat_body("quick", stream=True)))
    events = [line.removeprefix("data: ") for line in sse.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[0])["object"] == "chat.completion.chunk"


def test_bad_requests_are_openai_errors_and_the_server_lives_on(scripted) -> None:
    for body in (b"{not json", b"\xff\xfe", b"[]", json.dumps({"model": "quick"}).encode()):
        r = post(scripted, body)
        assert r.status_code == 400, body
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = post(scripted, chat_body("nope?n=2"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = post(scripted, chat_body("majority?n=0"))
    assert r.status_code == 404 and "n must be >= 1" in r.json()["error"]["message"]
    r = post(scripted, chat_body("majority?n=2", temperature=-1))
    assert r.status_code == 400 and "temperature must be >= 0" in r.json()["error"]["message"]
    r = httpx.get(scripted.url + "/v2/anything", timeout=5)
    assert r.status_code == 404 and "error" in r.json()
    r = post(scripted, b"x" * (21 * 1024 * 1024))
    assert r.status_code == 413
    assert post(scripted, chat_body("quick")).status_code == 200  # still serving
    client = openai.OpenAI(base_url=scripted.base, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])


def test_a_wrong_key_is_401_and_never_logged(tmp_path) -> None:
    with serve(tmp_path, SCRIPTED, "--api-key-env", "SERVE_KEY", env={"SERVE_KEY": KEY}) as server:
        ok = openai.OpenAI(base_url=server.base, api_key=KEY, max_retries=0, timeout=20)
        assert ok.chat.completions.create(
            model="quick", messages=[{"role": "user", "content": "What is 1 + 1?"}]
        )
        bad = openai.OpenAI(base_url=server.base, api_key="sk-wrong", max_retries=0, timeout=20)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="quick", messages=[{"role": "user", "content": "hi"}])
        r = post(server, chat_body("quick"))  # no key at all
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(server.base + "/models", timeout=5).status_code == 401
    assert KEY not in server.output() and "sk-wrong" not in server.output()


def test_a_full_server_answers_429_and_a_slow_search_504(tmp_path) -> None:
    engine = f"{SCRIPTED}#delay=1.5"
    with serve(tmp_path, engine, "--max-concurrent", "1", "--request-timeout", "0.5") as server:
        first: list[httpx.Response] = []
        t = threading.Thread(target=lambda: first.append(post(server, chat_body("quick"))))
        t.start()
        time.sleep(0.3)
        busy = post(server, chat_body("quick"))
        t.join(timeout=20)
        assert busy.status_code == 429 and busy.json()["error"]["type"] == "rate_limit_exceeded"
        assert first[0].status_code == 504 and first[0].json()["error"]["code"] == "timeout"


def _concurrent(server, n: int, model: str = "majority?n=2") -> list[dict]:
    out: list[dict] = [{}] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait(timeout=10)
        r = post(server, chat_body(model, f"What is {i} + 1?"))
        out[i] = r.json()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


@pytest.mark.parametrize("coalesce", [True, False])
def test_concurrent_requests_are_coalesced_into_one_search(tmp_path, coalesce: bool) -> None:
    log = tmp_path / "calls.log"
    args = ["--batch-window-ms", "300"] if coalesce else ["--no-coalesce"]
    with serve(tmp_path, f"{SCRIPTED}#log={log},p_right=1.0", *args) as server:
        out = _concurrent(server, 10)
    assert [o["choices"][0]["message"]["content"] for o in out] == [str(i + 1) for i in range(10)]
    calls = [int(x) for x in log.read_text().split()]
    if coalesce:  # majority samples whole responses: one engine call for all ten searches
        assert calls == [10]
        assert {o["slowthink"]["compute"]["batch_size"] for o in out} == {10}
    else:
        assert calls == [1] * 10


def png_data_url(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_images_reach_a_vision_engine(tmp_path) -> None:
    local = tmp_path / "local.png"
    Image.new("RGB", (23, 5)).save(local)

    def ask(server, url: str):
        return post(
            server,
            {
                "model": "quick",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "How wide is the picture?"},
                            {"type": "image_url", "image_url": {"url": url}},
                        ],
                    }
                ],
            },
        )

    with serve(tmp_path, VISION) as server:
        r = ask(server, png_data_url(31, 4))
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "31"
        refused = ask(server, str(local))
        assert refused.status_code == 400 and "--allow-local-images" in refused.json()["error"]["message"]
    with serve(tmp_path, VISION, "--allow-local-images") as server:
        assert ask(server, str(local)).json()["choices"][0]["message"]["content"] == "23"
        assert ask(server, local.as_uri()).json()["choices"][0]["message"]["content"] == "23"
        assert ask(server, str(tmp_path / "missing.png")).status_code == 400
    with serve(tmp_path, SCRIPTED) as server:  # a text-only engine refuses images with a 400
        r = ask(server, png_data_url(3, 3))
        assert r.status_code == 400 and "text-only" in r.json()["error"]["message"]


def test_a_bad_start_is_one_error_line(tmp_path) -> None:
    import os
    import sys

    from tests.serve.conftest import REPO

    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    env.pop("NO_SUCH_KEY_VAR", None)
    for args, says in (
        (["--api-key-env", "NO_SUCH_KEY_VAR"], "NO_SUCH_KEY_VAR"),
        (["--model-name", "majority?n=0"], "n must be >= 1"),
    ):
        out = subprocess.run(
            [sys.executable, "-m", "slowthink.cli", "serve", "--engine", SCRIPTED, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
        )
        assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_steps_are_streamed_as_the_search_commits_to_them(tmp_path) -> None:
    # quick commits each accepted step; each engine call takes 0.4 s (3 calls: 2 steps and the answer)
    with serve(tmp_path, f"{SCRIPTED}#delay=0.4,p_right=1.0") as server:
        t0, arrivals = time.monotonic(), []
        with httpx.stream(
            "POST",
            server.base + "/chat/completions",
            timeout=20,
            json=chat_body("quick", "What is 5 + 6?", stream=True),
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    delta = json.loads(line[6:])["choices"][0]["delta"]
                    kind = (
                        "reasoning"
                        if "reasoning_content" in delta
                        else "content"
                        if delta.get("content")
                        else None
                    )
                    if kind:
                        arrivals.append((kind, time.monotonic() - t0))
    kinds = [k for k, _ in arrivals]
    assert kinds == ["reasoning"] * 3 + ["content"]
    first_step, answer = arrivals[0][1], arrivals[-1][1]
    assert answer - first_step > 0.5  # step 1 came while the search still had two engine calls to make


def test_a_failing_search_is_a_500_body_and_the_server_lives_on(scripted) -> None:
    r = post(scripted, chat_body("quick", "BOOM What is 1 + 1?"))
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    assert "scripted failure" in r.json()["error"]["message"]
    assert post(scripted, chat_body("quick")).json()["choices"][0]["message"]["content"] == "5"


def test_a_streamed_search_past_the_timeout_ends_with_an_error_event(tmp_path) -> None:
    with (
        serve(tmp_path, f"{SCRIPTED}#delay=1.0", "--request-timeout", "0.3") as server,
        httpx.stream(
            "POST", server.base + "/chat/completions", timeout=20, json=chat_body("majority?n=2", stream=True)
        ) as r,
    ):
        assert r.status_code == 200
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert json.loads(events[-2])["error"]["code"] == "timeout" and events[-1] == "[DONE]"
