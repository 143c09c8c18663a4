"""The embedded llama.cpp engine against the real SmolLM2 GGUF."""

from __future__ import annotations

import pytest

from slowthink.engines import EngineSpec, load_engine
from slowthink.types import Message, Request, SlowthinkError

MSGS = [Message("system", "You are a helpful assistant."), Message("user", "What is 3 + 4?")]
COUNT = [Message("user", "Count from 1 to 10, separated by commas.")]


@pytest.mark.model
class TestLlamaCpp:
    def test_prefix_continued_exactly(self, smol_engine):
        prompt = smol_engine.render(Request(MSGS, prefix="Step 1:"))
        assert prompt.endswith("<|im_start|>assistant\nStep 1:")
        [[c]] = smol_engine.generate([Request(MSGS, prefix="Step 1:", stop=["\n"], temperature=0, max_tokens=40)])
        assert not c.text.startswith("Step 1")  # continues after the prefix, does not restart
        assert c.generated_tokens > 0 and c.prompt_tokens == smol_engine.count_tokens(prompt)

    def test_stop_kept_and_reported(self, smol_engine):
        # greedy counting surely reaches each stop: which one matched is reported, the text ends with it
        one, two, newline = smol_engine.generate(
            [
                Request(COUNT, prefix="1, 2, 3, 4,", stop=[","], temperature=0, max_tokens=12),
                Request(COUNT, prefix="1, 2, 3, 4,", stop=["9", "7"], temperature=0, max_tokens=30),
                Request(COUNT, prefix="1,\n2,\n3,\n", stop=["zzz", "\n"], temperature=0, max_tokens=30),
            ]
        )
        assert (one[0].text, one[0].stop_str, one[0].finish_reason) == (" 5,", ",", "stop")
        assert two[0].text.endswith("7") and two[0].stop_str == "7" and "9" not in two[0].text
        assert (newline[0].text, newline[0].stop_str, newline[0].finish_reason) == ("4,\n", "\n", "stop")

    def test_length_limit(self, smol_engine):
        [[c]] = smol_engine.generate(
            [Request(MSGS, prefix="Let me write a long story:", stop=["zzz"], temperature=0, max_tokens=5)]
        )
        assert c.finish_reason == "length" and c.generated_tokens == 5 and c.stop_str is None

    def test_n_and_seeds(self, smol_engine):
        req = Request(MSGS, n=3, temperature=0.9, seed=11, max_tokens=24)
        [a] = smol_engine.generate([req])
        [b] = smol_engine.generate([req])
        assert len(a) == 3 and [c.text for c in a] == [c.text for c in b]
        assert len({c.text for c in a}) > 1  # siblings differ

    def test_logprobs(self, smol_engine):
        [[c]] = smol_engine.generate([Request(MSGS, temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)])
        assert len(c.logprobs) == c.generated_tokens == len(c.top_logprobs)
        assert all(lp <= 0 for lp in c.logprobs)
        # greedy: the chosen token is the most likely one
        assert all(abs(max(t.values()) - lp) < 1e-6 for t, lp in zip(c.top_logprobs, c.logprobs))

    def test_image_rejected_with_fix(self, smol_engine, shared_data):
        img = str(next((shared_data / "math-v" / "images").glob("*.jpg")))
        with pytest.raises(SlowthinkError, match="--ignore-images"):
            smol_engine.generate([Request([Message("user", "What is this?", images=[img])])])

    def test_prompt_too_long_fails_only_its_request(self, smol_engine):
        long = [Message("user", "word " * 5000)]
        [[bad], [good]] = smol_engine.generate([Request(long, max_tokens=4), Request(MSGS, max_tokens=4)])
        assert bad.finish_reason == "error" and "context" in bad.error
        assert good.finish_reason in ("stop", "length")


def test_missing_gguf():
    with pytest.raises(SlowthinkError, match="GGUF model not found"):
        load_engine("llamacpp:/nonexistent/model.gguf")


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("llamacpp", EngineSpec("llamacpp")),
        ("/x/m.gguf", EngineSpec("llamacpp", "/x/m.gguf")),
        ("hf:/models/llava", EngineSpec("hf", "/models/llava")),
        ("openai:http://127.0.0.1:8000/v1#qwen", EngineSpec("openai", "http://127.0.0.1:8000/v1", "qwen")),
    ],
)
def test_engine_spec(spec, expected):
    assert EngineSpec.parse(spec) == expected


def test_unknown_engine():
    with pytest.raises(SlowthinkError, match="unknown engine 'foo'"):
        EngineSpec.parse("foo:bar")
