"""The ``openai`` engine: request building and error handling offline (local proxy), then
behaviour against a real llama.cpp server (``@pytest.mark.server``)."""

from __future__ import annotations

import base64
import logging
import random
import time

import pytest
from PIL import Image

from slowthink.engines import load_engine
from slowthink.engines.openai import (
    OpenAIEngine,
    backoff_delay,
    chat_messages,
    gguf_chat_template,
    load_chat_template,
    map_finish_reason,
    recover_stop,
    split_count,
    stop_candidates_by_count,
)
from slowthink.types import Message, Request, SlowthinkError

DEAD = "http://127.0.0.1:9/v1"  # never contacted by the offline body tests
COUNT = [Message("user", "Count from 1 to 10, separated by commas.")]
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}
SECRET = "sk-test-SECRET-0123456789"


def make_png(path, color=(255, 0, 0)):
    Image.new("RGB", (2, 2), color).save(path)
    return path


def chat_reply(choices, usage=None):
    """A canned chat.completion body (for the proxy's ``reply``)."""
    return {
        "object": "chat.completion",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": c.pop("text")}, **c}
            for i, c in enumerate(choices)
        ],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
    }


# -- pure helpers ---------------------------------------------------------------------------------
class TestRecoverStop:
    @pytest.mark.parametrize(
        "text, finish, stops, choice, tokens, expected",
        [
            (
                " 5,",
                "stop",
                [","],
                None,
                None,
                (" 5,", ",", True),
            ),  # server kept the stop (vLLM include_stop_str)
            (" 5, 6", "stop", [","], None, None, (" 5,", ",", True)),  # text past a stop is cut
            (" 5", "stop", [",", "."], {"stop_reason": "."}, None, (" 5.", ".", True)),  # vLLM names it
            (" 5", "stop", [","], {"stop_reason": None}, None, (" 5", None, True)),  # vLLM: EOS
            (" 5", "stop", [","], {"stop_reason": 2}, None, (" 5", None, True)),  # vLLM: a stop token id
            (" 5", "stop", [",", "."], {"matched_stop": ","}, None, (" 5,", ",", True)),  # SGLang names it
            (" 5", "stop", [","], {"stopping_word": ""}, None, (" 5", None, False)),  # llama.cpp: no info
            (" 5", "stop", [",", "\n"], None, [" ", "5", ",\n"], (" 5,", ",", True)),  # logprob tokens
            (" 5", "length", [","], None, None, (" 5", None, True)),  # length: nothing to add
            (" 5", "stop", [], None, None, (" 5", None, True)),  # no stops asked
            (" 5", "stop", [","], None, None, (" 5", None, False)),  # says nothing: token counts decide
        ],
    )
    def test_table(self, text, finish, stops, choice, tokens, expected):
        assert recover_stop(text, finish, stops, choice, tokens) == expected


class TestHelpers:
    @pytest.mark.parametrize(
        "generated, text_count, with_stop, stops, expected",
        [
            (18, 18, [19], [","], []),  # every token is in the text: EOS
            (3, 2, [3, 5], [",", " and so"], [","]),  # one extra token: the 1-token stop
            (5, 2, [3, 5], [",", " and so"], [" and so"]),  # three extra tokens: the 3-token stop
            (8, 7, [8, 8], ["9", "7"], ["9", "7"]),  # tie: the engine peeks
        ],
    )
    def test_stop_candidates_by_count(self, generated, text_count, with_stop, stops, expected):
        assert stop_candidates_by_count(generated, text_count, with_stop, stops) == expected

    @pytest.mark.parametrize(
        "total, weights, expected",
        [
            (10, [1, 1, 1], [4, 3, 3]),  # even split, remainder to the first
            (12, [1, 2, 3], [2, 4, 6]),  # proportional
            (7, [0, 0], [4, 3]),  # no weights: even
            (0, [5, 1], [0, 0]),  # nothing reported
            (5, [], []),  # no choices
        ],
    )
    def test_split_count(self, total, weights, expected):
        out = split_count(total, weights)
        assert out == expected and sum(out) == (total if weights else 0)

    def test_backoff_is_capped_with_jitter(self):
        rng = random.Random(0)
        delays = [backoff_delay(a, 0.5, 4.0, rng) for a in range(8)]
        assert 0.25 <= delays[0] <= 0.5
        assert all(d <= 4.0 for d in delays) and delays[-1] >= 2.0  # capped, at least half the cap
        assert len({round(d, 6) for d in delays[4:]}) > 1  # jittered, not lockstep

    @pytest.mark.parametrize(
        "raw, expected",
        [("stop", "stop"), ("length", "length"), ("eos", "stop"), (None, "stop"), ("abort", "error")],
    )
    def test_finish_reason(self, raw, expected):
        assert map_finish_reason(raw) == expected


# -- request bodies (no server) -------------------------------------------------------------------
class TestBodies:
    def test_images_are_data_urls_before_the_text(self, tmp_path):
        png = make_png(tmp_path / "a.png")
        Image.new("RGB", (2, 2), (0, 0, 255)).save(tmp_path / "b.jpg")
        msgs = chat_messages(
            [
                Message("system", "Be brief."),
                Message("user", "What?", images=[str(png), str(tmp_path / "b.jpg")]),
            ]
        )
        assert msgs[0] == {"role": "system", "content": "Be brief."}  # text-only stays a plain string
        parts = msgs[1]["content"]
        assert [p["type"] for p in parts] == ["image_url", "image_url", "text"] and parts[2][
            "text"
        ] == "What?"
        url = parts[0]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert base64.b64decode(url.split(",", 1)[1]) == png.read_bytes()
        assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")

    def test_chat_body_with_continue_prefix(self, tmp_path):
        eng = OpenAIEngine(DEAD, "m", prefix_mode="continue")
        req = Request(
            [Message("user", "hi", images=[str(make_png(tmp_path / "x.png"))])],
            prefix="Step 1:",
            stop=["\n"],
            seed=7,
            n=2,
            logprobs=True,
            top_logprobs=3,
        )
        body = eng.request_body(req)
        assert body["messages"][-1] == {"role": "assistant", "content": "Step 1:"}
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
        assert body["include_stop_str_in_output"] is True and body["stop"] == ["\n"]
        assert (body["n"], body["seed"], body["logprobs"], body["top_logprobs"]) == (2, 7, True, 3)
        assert body["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png")
        # the k-th extra sample of a server that drops n gets seed + k
        assert eng.request_body(req, n=1, sample=2)["seed"] == 9

    def test_plain_openai_body_without_extensions(self):
        eng = OpenAIEngine(
            DEAD, "m", prefix_mode="continue", server_extensions=False, extra_body={"top_k": 0}
        )
        body = eng.request_body(Request(COUNT, stop=[","]))
        assert not set(body) & {"include_stop_str_in_output", "no_stop_trim", "continue_final_message"}
        assert body["top_k"] == 0
        with pytest.raises(SlowthinkError, match="continue_final_message"):
            eng.request_body(Request(COUNT, prefix="1,"))

    def test_completions_prompt_is_rendered_chat_plus_prefix(self):
        eng = OpenAIEngine(DEAD, "m", prefix_mode="completions", chat_template="chatml")
        # the template comes from the option: no network (the server at DEAD is never reached)
        body = eng.request_body(
            Request([Message("user", "hi")], prefix="Step 1:", logprobs=True, top_logprobs=2)
        )
        assert eng.template is not None and eng.template.source == "chatml"
        assert eng.stats["http_requests"] == 0
        assert body["prompt"] == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nStep 1:"
        assert body["logprobs"] == 2 and "messages" not in body

    def test_template_sources(self, tmp_path, smollm2_gguf):
        cfg = tmp_path / "tokenizer_config.json"
        cfg.write_text('{"chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}'
                       '{% if add_generation_prompt %}[assistant]{% endif %}", "bos_token": "<s>"}')  # fmt: skip
        tpl = load_chat_template(str(tmp_path))
        assert (
            tpl.render([Message("user", "hi")]) == "[user]hi[assistant]"
        )  # BOS stripped: the server adds it
        gguf = gguf_chat_template(smollm2_gguf)
        text = gguf.render([Message("user", "hi")])
        assert text.startswith("<|im_start|>system\n") and text.endswith(
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        )
        with pytest.raises(SlowthinkError, match="chat_template"):
            load_chat_template(str(tmp_path / "nope"))
        strict = load_chat_template("{{ raise_exception('roles must alternate') }}")
        with pytest.raises(SlowthinkError, match="rejected the messages: roles must alternate"):
            strict.render([Message("user", "hi")])


class TestOptions:
    def test_spec_and_validation(self):
        eng = load_engine("openai:http://127.0.0.1:8000/v1#my-model", n_ctx=4096, max_concurrency=3)
        assert isinstance(eng, OpenAIEngine) and eng.model == "my-model" and eng.options.max_concurrency == 3
        assert OpenAIEngine("http://127.0.0.1:8000", "m").base_url == "http://127.0.0.1:8000/v1"
        with pytest.raises(SlowthinkError, match="needs the server URL"):
            load_engine("openai")
        with pytest.raises(SlowthinkError, match="not an http"):
            OpenAIEngine("127.0.0.1:8000", "m")
        with pytest.raises(ValueError, match="prefix_mode"):
            OpenAIEngine(DEAD, "m", prefix_mode="magic")
        with pytest.raises(SlowthinkError, match="unknown openai engine option"):
            OpenAIEngine(DEAD, "m", max_concurency=2)

    def test_text_only_setting_rejects_images(self, tmp_path):
        eng = OpenAIEngine(DEAD, "m", supports_images=False)
        with pytest.raises(SlowthinkError, match="text-only"):
            eng.generate([Request([Message("user", "x", images=[str(make_png(tmp_path / "i.png"))])])])


# -- errors, retries and the key, through the local proxy (no model) --------------------------------
class TestErrors:
    def test_4xx_is_not_retried(self, flaky_proxy):
        proxy = flaky_proxy(always=400, error_body={"error": {"message": "max_tokens is too large"}})
        eng = OpenAIEngine(proxy.url, "proxy-model", prefix_mode="continue", **FAST)
        [[c]] = eng.generate([Request(COUNT, max_tokens=4)])
        assert c.finish_reason == "error" and len(proxy.generation_attempts()) == 1
        assert "HTTP 400" in c.error and proxy.url in c.error and "max_tokens is too large" in c.error

    def test_5xx_retried_then_reported(self, flaky_proxy):
        proxy = flaky_proxy(always=503)
        eng = OpenAIEngine(proxy.url, "proxy-model", prefix_mode="continue", max_retries=2, **FAST)
        [[c]] = eng.generate([Request(COUNT, max_tokens=4)])
        assert len(proxy.generation_attempts()) == 3 and eng.stats["retries"] == 2
        assert c.finish_reason == "error" and "HTTP 503 after 3 attempts" in c.error

    def test_unreachable_server_gives_error_completions(self, unreachable_url):
        eng = OpenAIEngine(unreachable_url, "m", prefix_mode="continue", max_retries=1, **FAST)
        t0 = time.monotonic()
        out = eng.generate([Request(COUNT, n=2), Request(COUNT)])
        assert time.monotonic() - t0 < 10
        assert [len(cs) for cs in out] == [2, 1]
        for c in (c for cs in out for c in cs):
            assert c.finish_reason == "error"
            assert "openai engine" in c.error and unreachable_url in c.error and "start the server" in c.error
        # without a model name the engine asks /models first: same clear error, no exception
        [[c]] = OpenAIEngine(unreachable_url, max_retries=0, **FAST).generate([Request(COUNT)])
        assert c.finish_reason == "error" and "cannot reach" in c.error

    def test_wrong_model_lists_served_models(self, flaky_proxy):
        proxy = flaky_proxy(
            always=404,
            error_body={"error": {"message": "The model `nope` does not exist."}},
            models=["smol-a", "smol-b"],
        )
        [[c]] = OpenAIEngine(proxy.url, "nope", prefix_mode="continue", **FAST).generate([Request(COUNT)])
        assert (
            c.finish_reason == "error" and "'nope' is not served" in c.error and "smol-a, smol-b" in c.error
        )
        assert f"openai:{proxy.url}#smol-a" in c.error

    def test_one_bad_request_does_not_fail_the_batch(self, flaky_proxy):
        proxy = flaky_proxy(
            reply=lambda m, p, b: (200, chat_reply([{"text": "ok", "finish_reason": "stop"}]))
        )
        eng = OpenAIEngine(proxy.url, "proxy-model", prefix_mode="continue")
        good, bad = eng.generate([Request(COUNT), Request([Message("user", "x", images=["/no/such.png"])])])
        assert good[0].text == "ok" and good[0].ok
        assert bad[0].finish_reason == "error" and "/no/such.png" in bad[0].error

    def test_api_key_from_env_never_shown(self, flaky_proxy, monkeypatch, caplog):
        monkeypatch.setenv("SLOWTHINK_TEST_KEY", SECRET)
        # a server that echoes the key back in its error message
        proxy = flaky_proxy(always=401, error_body={"error": {"message": f"invalid key {SECRET}"}})
        caplog.set_level(logging.DEBUG)
        eng = OpenAIEngine(
            proxy.url, "proxy-model", prefix_mode="continue", api_key_env="SLOWTHINK_TEST_KEY", **FAST
        )
        [[c]] = eng.generate([Request(COUNT)])
        assert proxy.generation_attempts()[0].headers["authorization"] == f"Bearer {SECRET}"  # it is sent
        shown = [repr(eng), str(eng), repr(vars(eng)), c.error, repr(c), caplog.text, *eng.notes]
        assert all(SECRET not in s for s in shown)
        assert "SLOWTHINK_TEST_KEY" in c.error and "HTTP 401" in c.error
        monkeypatch.delenv("SLOWTHINK_TEST_KEY")
        with pytest.raises(SlowthinkError, match="SLOWTHINK_TEST_KEY"):
            OpenAIEngine(proxy.url, "m", api_key_env="SLOWTHINK_TEST_KEY")

    def test_vllm_style_reply_n_usage_and_stop_reason(self, flaky_proxy):
        body = chat_reply(
            [
                {"text": " 5", "finish_reason": "stop", "stop_reason": ","},
                {
                    "text": " 5, 6, 7",
                    "finish_reason": "length",
                    "stop_reason": None,
                },  # server ran past the stop
                {"text": " 5", "finish_reason": "stop", "stop_reason": None},
            ],
            usage={"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
        )
        proxy = flaky_proxy(reply=lambda m, p, b: (200, body))
        [cs] = OpenAIEngine(proxy.url, "proxy-model", prefix_mode="continue").generate(
            [Request(COUNT, n=3, stop=[","])]
        )
        assert [(c.text, c.stop_str, c.finish_reason) for c in cs] == [
            (" 5,", ",", "stop"),
            (" 5,", ",", "stop"),  # a stop inside the text is cut after the earliest match
            (" 5", None, "stop"),
        ]
        assert sum(c.prompt_tokens for c in cs) == 30 and sum(c.generated_tokens for c in cs) == 12
        assert proxy.generation_attempts()[0].body["include_stop_str_in_output"] is True

    def test_greedy_n_is_sampled_once_and_copied(self, flaky_proxy):
        proxy = flaky_proxy(reply=lambda m, p, b: (200, chat_reply([{"text": "7", "finish_reason": "stop"}])))
        [cs] = OpenAIEngine(proxy.url, "proxy-model").generate([Request(COUNT, n=3, temperature=0)])
        assert [c.text for c in cs] == ["7"] * 3 and len({id(c) for c in cs}) == 3
        [attempt] = proxy.generation_attempts()
        assert attempt.body["n"] == 1

    def test_rejected_extensions_are_dropped(self, flaky_proxy):
        def reply(method, path, body):
            if "include_stop_str_in_output" in body:
                return 400, {
                    "error": {"message": "Unrecognized request argument supplied: include_stop_str_in_output"}
                }
            return 200, chat_reply([{"text": "a.", "finish_reason": "stop"}])

        proxy = flaky_proxy(reply=reply)
        eng = OpenAIEngine(proxy.url, "proxy-model", prefix_mode="continue")
        [[c]] = eng.generate([Request(COUNT, stop=["."])])
        assert c.text == "a." and c.stop_str == "." and not eng.server_extensions
        assert len(proxy.generation_attempts()) == 2 and any("rejects" in n for n in eng.notes)


# -- against the real llama.cpp server --------------------------------------------------------------
@pytest.fixture(scope="module")
def engine(llama_server):
    eng = OpenAIEngine(llama_server.base_url, max_concurrency=4)
    yield eng
    eng.close()


@pytest.mark.server
class TestLlamaServer:
    def test_auto_continues_the_prefix_exactly(self, engine):
        [[c]] = engine.generate([Request(COUNT, prefix="1, 2, 3, 4,", temperature=0, max_tokens=6)])
        assert engine.prefix_mode == "completions"  # llama.cpp ignores continue_final_message
        assert c.ok and c.text.startswith(" 5")  # continues right after the prefix
        assert not c.text.lstrip().startswith("1")  # not a restart of the answer
        assert c.prompt_tokens > 0 and c.generated_tokens == 6

    def test_continue_mode_is_not_exact_on_llama_cpp(self, llama_server):
        """Why ``auto`` picks ``completions`` here: the chat endpoint closes the assistant turn."""
        eng = OpenAIEngine(llama_server.base_url, prefix_mode="continue")
        [[c]] = eng.generate([Request(COUNT, prefix="1, 2, 3, 4,", temperature=0, max_tokens=6)])
        assert c.text.startswith("1, 2")  # the model restarted

    def test_n_is_filled_when_the_server_drops_it(self, llama_server):
        eng = OpenAIEngine(llama_server.base_url, max_concurrency=2)
        [cs] = eng.generate([Request(COUNT, n=3, temperature=0.9, seed=3, max_tokens=8)])
        assert len(cs) == 3 and all(c.ok and c.generated_tokens > 0 for c in cs)
        assert eng.stats["fill_requests"] == 2 and any("n=3" in n for n in eng.notes)
        [cs2] = eng.generate([Request(COUNT, n=2, temperature=0.9, seed=3, max_tokens=8)])
        assert len(cs2) == 2 and eng.stats["fill_requests"] == 2  # split up front now
        assert [c.text for c in cs2] == [c.text for c in cs[:2]]  # sample k used seed + k both times

    def test_stop_kept(self, engine):
        one, two, eos = engine.generate(
            [
                Request(COUNT, prefix="1, 2, 3, 4,", stop=[","], temperature=0, max_tokens=12),
                Request(COUNT, prefix="1, 2, 3, 4,", stop=["9", "7"], temperature=0, max_tokens=30),
                Request(COUNT, prefix="1, 2, 3, 4,", stop=["zzz"], temperature=0, max_tokens=40),
            ]
        )
        assert (one[0].text, one[0].stop_str, one[0].finish_reason) == (" 5,", ",", "stop")
        assert two[0].text.endswith("7") and two[0].stop_str == "7" and "9" not in two[0].text
        assert (
            eos[0].finish_reason == "stop" and eos[0].stop_str is None and eos[0].text.rstrip().endswith("10")
        )

    def test_seed_determinism(self, engine):
        req = Request(
            [Message("user", "Write a short poem about the sea.")], temperature=0.7, seed=1234, max_tokens=12
        )
        a, b, c = engine.generate([req, req, Request(req.messages, temperature=0.7, seed=99, max_tokens=12)])
        assert a[0].text == b[0].text  # llama.cpp honours the seed
        assert a[0].text != c[0].text or a[0].generated_tokens < 3

    def test_logprobs(self, engine):
        [[c]] = engine.generate(
            [Request(COUNT, prefix="1, 2,", temperature=0, max_tokens=5, logprobs=True, top_logprobs=2)]
        )
        assert len(c.logprobs) == c.generated_tokens == 5 and all(lp <= 0 for lp in c.logprobs)
        assert len(c.top_logprobs) == 5 and all(1 <= len(t) <= 3 for t in c.top_logprobs)
        # greedy: the chosen token is the most likely
        assert all(abs(max(t.values()) - lp) < 1e-4 for t, lp in zip(c.top_logprobs, c.logprobs))

    def test_concurrent_requests_map_back_in_order(self, llama_server, flaky_proxy):
        proxy = flaky_proxy(upstream=llama_server.base_url)
        eng = OpenAIEngine(proxy.url, llama_server.model, max_concurrency=4)
        prefixes = ["1, 2, 3,", "1, 2, 3, 4, 5, 6,", "1, 2,", "1, 2, 3, 4, 5,"]
        out = eng.generate(
            [Request(COUNT, prefix=p, stop=[","], temperature=0, max_tokens=6) for p in prefixes]
        )
        assert [cs[0].text for cs in out] == [" 4,", " 7,", " 3,", " 6,"]
        assert proxy.max_in_flight >= 2  # sent concurrently (the server queues them)

    def test_retries_through_failing_proxy(self, llama_server, flaky_proxy):
        proxy = flaky_proxy(upstream=llama_server.base_url, fail=[500, 429])
        eng = OpenAIEngine(proxy.url, llama_server.model, prefix_mode="completions", **FAST)
        [[c]] = eng.generate([Request(COUNT, prefix="1, 2, 3, 4,", stop=[","], temperature=0, max_tokens=6)])
        assert c.ok and c.text == " 5,"
        assert len(proxy.generation_attempts()) == 3 and eng.stats["retries"] == 2

    def test_key_forwarded_and_hidden(self, llama_server, flaky_proxy, monkeypatch, caplog):
        monkeypatch.setenv("SLOWTHINK_TEST_KEY", SECRET)
        caplog.set_level(logging.DEBUG)
        proxy = flaky_proxy(upstream=llama_server.base_url)
        eng = OpenAIEngine(proxy.url, llama_server.model, api_key_env="SLOWTHINK_TEST_KEY")
        [[c]] = eng.generate([Request(COUNT, prefix="1,", temperature=0, max_tokens=3)])
        assert c.ok and all(a.headers.get("authorization") == f"Bearer {SECRET}" for a in proxy.attempts)
        assert SECRET not in caplog.text + repr(eng) + repr(c)
