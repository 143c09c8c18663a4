"""``slowthink serve`` on the embedded SmolLM2-135M (llama.cpp, one thread) behind the openai client."""

from __future__ import annotations

import pytest

from tests.serve.conftest import serve

pytestmark = pytest.mark.model
openai = pytest.importorskip("openai", reason="the openai client is in the dev extra")
pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (make install)")


def test_the_embedded_model_answers_and_streams_through_the_openai_client(tmp_path) -> None:
    with serve(tmp_path, "llamacpp", "--threads", "1", wait_s=120) as server:
        client = openai.OpenAI(base_url=server.base, api_key="unused", max_retries=0, timeout=300)
        question = [{"role": "user", "content": "What is 2 + 3?"}]
        out = client.chat.completions.create(model="majority?n=2", messages=question, max_tokens=48, seed=1)
        message = out.choices[0].message
        assert isinstance(message.content, str) and message.model_extra["reasoning_content"].strip()
        assert out.usage.completion_tokens > 0 and out.usage.prompt_tokens > 0
        assert out.model_extra["slowthink"]["compute"]["samples"] == 2
        steps, finish = [], None
        for chunk in client.chat.completions.create(
            model="quick", messages=question, max_tokens=48, stream=True
        ):
            for choice in chunk.choices:
                if (choice.delta.model_extra or {}).get("reasoning_content"):
                    steps.append(choice.delta.model_extra["reasoning_content"])
                finish = choice.finish_reason or finish
        assert steps and finish == "stop"
