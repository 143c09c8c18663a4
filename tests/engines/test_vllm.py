"""The ``vllm`` engine: its pure helpers with stand-in objects; vLLM itself only where installed."""

from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace

import pytest

from slowthink.engines import load_engine
from slowthink.engines.vllm import (
    INSTALL_HINT,
    chat_dicts,
    convert_output,
    join_prompt,
    sampling_kwargs,
)
from slowthink.types import Message, Request, SlowthinkError

HAS_VLLM = importlib.util.find_spec("vllm") is not None
MSGS = [Message("user", "What is 3 + 4?")]


def sample(text, token_ids, finish="stop", stop_reason=None, logprobs=None):
    """A stand-in for ``vllm.CompletionOutput``."""
    return SimpleNamespace(
        text=text, token_ids=token_ids, finish_reason=finish, stop_reason=stop_reason, logprobs=logprobs
    )


def lp(value, token):
    """A stand-in for ``vllm.sequence.Logprob``."""
    return SimpleNamespace(logprob=value, rank=1, decoded_token=token)


class TestSamplingKwargs:
    @pytest.mark.parametrize(
        "request_kw, expected",
        [
            ({}, {"n": 1, "temperature": 0.7, "top_p": 1.0, "max_tokens": 256}),  # defaults
            ({"n": 4, "seed": 5}, {"n": 4, "seed": 5}),  # n and seed pass through
            ({"n": 4, "temperature": 0.0}, {"n": 1, "temperature": 0.0}),  # greedy: one sample, copied
            (
                {"stop": ["\n"]},
                {"stop": ["\n"], "include_stop_str_in_output": True},
            ),  # stops kept in the text
            ({"logprobs": True}, {"logprobs": 0}),  # sampled token's logprob only
            ({"logprobs": True, "top_logprobs": 3}, {"logprobs": 3}),
        ],
    )
    def test_table(self, request_kw, expected):
        kw = sampling_kwargs(Request(MSGS, **request_kw))
        assert {k: kw[k] for k in expected} == expected
        if "stop" not in request_kw:
            assert "stop" not in kw and "include_stop_str_in_output" not in kw
        if not request_kw.get("logprobs"):
            assert "logprobs" not in kw


class TestPrompt:
    def test_chat_dicts_put_image_parts_first(self):
        msgs = chat_dicts([Message("system", "s"), Message("user", "look", images=["a.png", "b.png"])])
        assert msgs[0] == {"role": "system", "content": "s"}
        assert msgs[1]["content"] == [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "look"}]

    @pytest.mark.parametrize(
        "rendered, prefix, bos, expected",
        [
            ("<s>[INST] hi [/INST]", "Step 1:", "<s>", "[INST] hi [/INST]Step 1:"),  # BOS stripped
            ("<|im_start|>assistant\n", "", None, "<|im_start|>assistant\n"),  # no BOS token
            ("A<s>", " x", "<s>", "A<s> x"),  # only a leading BOS
        ],
    )
    def test_join_prompt(self, rendered, prefix, bos, expected):
        assert join_prompt(rendered, prefix, bos) == expected


class TestConvertOutput:
    def test_n_samples_counts_and_stop(self):
        out = SimpleNamespace(
            prompt_token_ids=list(range(10)),
            outputs=[
                sample(" 4.\n", [1, 2, 3], stop_reason="\n"),  # stop kept by include_stop_str_in_output
                sample(" 4", [1, 2], stop_reason=None),  # EOS
                sample(" 4 and", [1, 2, 3, 4, 5], finish="length"),
            ],
        )
        cs = convert_output(out, Request(MSGS, n=3, stop=["\n"]))
        assert [(c.text, c.stop_str, c.finish_reason) for c in cs] == [
            (" 4.\n", "\n", "stop"),
            (" 4", None, "stop"),
            (" 4 and", None, "length"),
        ]
        assert [c.generated_tokens for c in cs] == [3, 2, 5]
        assert sum(c.prompt_tokens for c in cs) == 10  # the prompt once, split over the samples

    def test_stop_reason_without_stop_in_text_is_appended(self):
        out = SimpleNamespace(prompt_token_ids=[1], outputs=[sample(" 4", [1], stop_reason="</s1>")])
        [c] = convert_output(out, Request(MSGS, stop=["</s1>", "</s2>"]))
        assert c.text == " 4</s1>" and c.stop_str == "</s1>"

    def test_greedy_n_copies(self):
        out = SimpleNamespace(prompt_token_ids=[1, 2, 3, 4], outputs=[sample(" 7", [9])])
        cs = convert_output(out, Request(MSGS, n=3, temperature=0.0))
        assert [c.text for c in cs] == [" 7"] * 3 and [c.prompt_tokens for c in cs] == [2, 1, 1]

    def test_logprobs(self):
        entries = [{5: lp(-0.1, " 4"), 6: lp(-2.5, " 5")}, {7: lp(-0.3, "."), 5: lp(-1.9, " 4")}]
        out = SimpleNamespace(prompt_token_ids=[1], outputs=[sample(" 4.", [5, 7], logprobs=entries)])
        [c] = convert_output(out, Request(MSGS, logprobs=True, top_logprobs=2))
        assert c.logprobs == [-0.1, -0.3]
        assert c.top_logprobs == [{" 4": -0.1, " 5": -2.5}, {".": -0.3, " 4": -1.9}]
        [c0] = convert_output(out, Request(MSGS, logprobs=True))
        assert c0.logprobs == [-0.1, -0.3] and c0.top_logprobs is None
        [c1] = convert_output(out, Request(MSGS))
        assert c1.logprobs is None and not any(math.isnan(x) for x in c0.logprobs)

    def test_no_output_is_an_error(self):
        cs = convert_output(SimpleNamespace(prompt_token_ids=[], outputs=[]), Request(MSGS, n=2))
        assert len(cs) == 2 and all(c.finish_reason == "error" for c in cs)

    def test_abort_is_an_error(self):
        out = SimpleNamespace(prompt_token_ids=[1], outputs=[sample("", [], finish="abort")])
        [c] = convert_output(out, Request(MSGS))
        assert c.finish_reason == "error" and "aborted" in c.error


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed")
def test_missing_vllm_gives_install_hint():
    with pytest.raises(SlowthinkError) as e:
        load_engine("vllm:/some/model")
    assert str(e.value) == INSTALL_HINT and "pip install vllm" in INSTALL_HINT


def test_spec_needs_a_model():
    with pytest.raises(SlowthinkError, match="needs a model"):
        load_engine("vllm")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed (needs a GPU)")
def test_real_vllm_prefix_and_stop(tmp_path):  # pragma: no cover - runs only where vLLM is
    import os

    model = os.environ.get("SLOWTHINK_VLLM_MODEL")
    if not model:
        pytest.skip("set SLOWTHINK_VLLM_MODEL to a local model folder to run vLLM tests")
    eng = load_engine(f"vllm:{model}", supports_images=False, gpu_memory_utilization=0.5)
    count = [Message("user", "Count from 1 to 10, separated by commas.")]
    [[a], b] = eng.generate(
        [
            Request(count, prefix="1, 2, 3, 4,", stop=[","], temperature=0, max_tokens=8),
            Request(count, n=3, temperature=0.8, seed=1, max_tokens=8),
        ]
    )
    assert a.text == " 5," and a.stop_str == ","
    assert len(b) == 3 and all(c.ok for c in b)
