"""The embedded llama.cpp engine against the real SmolLM2 GGUF."""

from __future__ import annotations

from collections import Counter

import pytest

from slowthink.engines import EngineSpec, load_engine
from slowthink.types import Message, Request, SlowthinkError

MSGS = [Message("system", "You are a helpful assistant."), Message("user", "What is 3 + 4?")]
COUNT = [Message("user", "Count from 1 to 10, separated by commas.")]


def _user(question: str, **kw) -> Request:
    return Request([Message("user", question)], **kw)


@pytest.fixture(scope="module")
def par_engine():
    """parallel=True with 4 sequences, one thread."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (make install)")
    return load_engine("llamacpp", n_threads=1, n_ctx=1024, n_seq=4)


def _delta(engine, before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in engine.stats.items()}


@pytest.mark.model
class TestLlamaCpp:
    def test_prefix_continued_exactly(self, smol_engine):
        prompt = smol_engine.render(Request(MSGS, prefix="Step 1:"))
        assert prompt.endswith("<|im_start|>assistant\nStep 1:")
        [[c]] = smol_engine.generate(
            [Request(MSGS, prefix="Step 1:", stop=["\n"], temperature=0, max_tokens=40)]
        )
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
        [[c]] = smol_engine.generate(
            [Request(MSGS, temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)]
        )
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


@pytest.mark.model
class TestParallelSequences:
    def test_samples_share_one_prefill(self, par_engine):
        par_engine.reset_cache()
        before = par_engine.stats
        [comps] = par_engine.generate([Request(MSGS, n=4, temperature=0.9, seed=3, max_tokens=8)])
        n_prompt = par_engine.count_tokens(par_engine.render(Request(MSGS)))
        d = _delta(par_engine, before)
        assert len(comps) == 4 and all(c.prompt_tokens == n_prompt for c in comps)
        assert d["prompt_tokens_decoded"] == n_prompt  # once, not once per sample
        assert d["kv_copies"] == 3  # the prompt's cells copied to the 3 other samples' sequences
        # all samples decode together: one llama_decode per generated position, not per sample
        assert d["decode_calls"] <= 1 + max(c.generated_tokens for c in comps)
        assert d["generated_tokens_decoded"] >= max(c.generated_tokens for c in comps) - 1

    def test_longer_prefix_decodes_only_the_new_tokens(self, par_engine):
        par_engine.reset_cache()
        [[c1]] = par_engine.generate(
            [Request(MSGS, prefix="Step 1:", stop=["\n"], temperature=0, max_tokens=24)]
        )
        before = par_engine.stats
        req2 = Request(
            MSGS,
            prefix="Step 1:" + c1.text + "Step 2:",
            stop=["\n"],
            temperature=0,
            max_tokens=8,
            logprobs=True,
        )
        [[c2]] = par_engine.generate([req2])
        d = _delta(par_engine, before)
        assert c2.prompt_tokens > c1.prompt_tokens + 3
        # the previous prompt comes from the cache; its step and "Step 2:" are decoded
        assert d["prompt_tokens_reused"] >= c1.prompt_tokens - 1  # (tokens may merge at the boundary)
        assert d["prompt_tokens_decoded"] == c2.prompt_tokens - d["prompt_tokens_reused"]
        assert d["prompt_tokens_decoded"] <= c2.prompt_tokens - c1.prompt_tokens + 1
        par_engine.reset_cache()
        [[fresh]] = par_engine.generate([req2])
        assert (fresh.text, fresh.logprobs) == (c2.text, c2.logprobs)

    @pytest.mark.parametrize("temperature", [0.0, 0.8])
    def test_same_output_alone_and_in_a_batch(self, par_engine, temperature):
        system = Message("system", "You are a careful assistant who answers in short steps. " * 12)

        def ask(q: str, **kw) -> Request:
            return Request([system, Message("user", q)], max_tokens=24, **kw)

        req = ask("Write a haiku about rain.", n=2, temperature=temperature, seed=5, logprobs=True)
        others = [ask(q, n=2, temperature=0.8, seed=9) for q in ("Name a color.", "What is 12 * 3?")]
        par_engine.reset_cache()
        [alone] = par_engine.generate([req])
        par_engine.reset_cache()
        batched = par_engine.generate([others[0], req, others[1]])[1]  # 6 samples: two waves of 4 sequences
        [warm] = par_engine.generate([req])  # prompt from the cache, only its last two tokens decoded
        par_engine.reset_cache()
        par_engine.generate([others[0]])
        [shared] = par_engine.generate([req])  # system prompt copied from the other problem's sequence
        for a, b, w, s in zip(alone, batched, warm, shared):
            assert a.text == b.text == w.text == s.text
            assert a.logprobs == b.logprobs == w.logprobs == s.logprobs  # bit for bit (flash attention off)

    def test_prompts_read_together_give_what_each_gives_alone(self, par_engine, monkeypatch):
        """Unrelated prompts of different lengths are prefilled together (rounds of an equal token
        count per sequence, none left with one token); each one's logits and samples are bit for bit
        what it gets alone."""
        questions = [
            "Name a color.",
            "What is 12 * 3? Answer with the number only, please, and nothing else at all.",
            "Write one short sentence about the sea and the wind and the rain in the evening light.",
            "Is 7 prime?",
            "List three fruits that are red when they are ripe, separated by commas, no other words.",
        ]
        reqs = [
            Request(
                [Message("system", f"{i}: answer briefly."), Message("user", q)],
                max_tokens=6,
                temperature=0.8,
                seed=40 + i,
                logprobs=True,
            )
            for i, q in enumerate(questions)
        ]
        alone = []
        for r in reqs:
            par_engine.reset_cache()
            alone.append(par_engine.generate([r])[0][0])
        decoder = par_engine._decoder
        calls: list[list[tuple[int, int, int, bool]]] = []
        real = decoder._decode
        monkeypatch.setattr(decoder, "_decode", lambda items: (calls.append(list(items)), real(items))[1])
        par_engine.reset_cache()
        together = [c[0] for c in par_engine.generate(reqs)]
        assert [(c.text, c.logprobs) for c in together] == [(c.text, c.logprobs) for c in alone]
        prefill = [
            c for c in calls if any(not out for *_, out in c)
        ]  # prompt pieces (not every row wants logits)
        assert max(len({seq for _, _, seq, _ in c}) for c in prefill) >= 3  # several prompts in one call
        for c in prefill:  # equal pieces, never one token of a sequence
            per_seq = Counter(seq for _, _, seq, _ in c)
            assert len(set(per_seq.values())) == 1 and min(per_seq.values()) >= 2

    def test_seeds_do_not_depend_on_the_number_of_sequences(self, par_engine):
        narrow = load_engine("llamacpp", n_threads=1, n_ctx=256, n_seq=2)
        req = Request(MSGS, n=5, temperature=0.9, seed=21, max_tokens=10)
        [wide] = par_engine.generate([req])
        [waves] = narrow.generate([req])  # samples 0-1, 2-3, 4 in three waves
        assert [c.text for c in wide] == [c.text for c in waves]
        assert len({c.text for c in wide}) > 1

    def test_stop_strings_kept(self, par_engine):
        [comps] = par_engine.generate(
            [Request(MSGS, prefix="Step 1:", n=3, stop=["\n", "zzz"], temperature=0.7, seed=4, max_tokens=60)]
        )
        for c in comps:
            assert c.finish_reason in ("stop", "length")
            if c.stop_str is not None:
                assert c.finish_reason == "stop" and c.text.endswith(c.stop_str) and c.text.count("\n") <= 1

    def test_logprobs_one_per_generated_token(self, par_engine):
        [comps] = par_engine.generate(
            [Request(MSGS, n=2, temperature=0.7, seed=2, max_tokens=6, logprobs=True, top_logprobs=3)]
        )
        for c in comps:
            assert len(c.logprobs) == c.generated_tokens == len(c.top_logprobs)
            assert all(lp <= 0 for lp in c.logprobs)
        [[g]] = par_engine.generate([Request(MSGS, temperature=0, max_tokens=6, top_logprobs=2)])
        assert all(abs(max(t.values()) - lp) < 1e-9 for t, lp in zip(g.top_logprobs, g.logprobs))

    def test_length_budget_and_context_overflow(self, par_engine):
        [[c]] = par_engine.generate(
            [Request(MSGS, prefix="Let me write a long story:", temperature=0, max_tokens=5)]
        )
        assert c.finish_reason == "length" and c.generated_tokens == 5
        long = [Message("user", "word " * 1500)]  # over n_ctx=1024
        [[bad], [good]] = par_engine.generate([Request(long, max_tokens=4), Request(MSGS, max_tokens=4)])
        assert bad.finish_reason == "error" and "context of 1024" in bad.error
        assert good.finish_reason in ("stop", "length")

    def test_eviction_with_more_prompts_than_sequences(self):
        eng = load_engine("llamacpp", n_threads=1, n_ctx=256, n_seq=2)
        reqs = [
            _user(q, temperature=0, max_tokens=6)
            for q in ("Name a color.", "What is 12 * 3?", "Who wrote Hamlet?")
        ]
        first = eng.generate(reqs)  # 3 prompts, 2 sequences: two waves, the third evicts the first
        assert all(c.ok for [c] in first)
        before = eng.stats
        [[again]] = eng.generate([reqs[0]])  # evicted: decoded again past the shared chat template
        d = _delta(eng, before)
        assert again.text == first[0][0].text
        assert d["prompt_tokens_decoded"] > 1
        before = eng.stats
        [[cached]] = eng.generate([reqs[2]])  # still cached: only its last two prompt tokens
        assert cached.text == first[2][0].text and _delta(eng, before)["prompt_tokens_decoded"] == 2

    def test_sequential_path_kept(self):
        seq = load_engine("llamacpp", n_threads=1, n_ctx=512, parallel=False)
        assert not seq.parallel
        [comps] = seq.generate([Request(MSGS, n=2, temperature=0.9, seed=11, max_tokens=8)])
        n_prompt = seq.count_tokens(seq.render(Request(MSGS)))
        assert len(comps) == 2 and all(c.ok for c in comps)
        # the second sample re-uses the first one's prompt (one token re-decoded for its logits)
        assert seq.stats["prompt_tokens_decoded"] == n_prompt + 1


def test_bad_parallel_options():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (make install)")
    with pytest.raises(SlowthinkError, match="n_seq must be between 1 and"):
        load_engine("llamacpp:/nonexistent/model.gguf", n_seq=0)
    with pytest.raises(SlowthinkError, match="parallel must be true or false"):
        load_engine("llamacpp:/nonexistent/model.gguf", parallel="yes")


class TestSampleToken:
    @pytest.fixture(autouse=True)
    def _np(self):
        self.np = pytest.importorskip("numpy")
        from slowthink.engines._llamacpp_seqs import sample_token

        self.sample = sample_token

    def draw(self, logits, seed=0, **kw):
        opts = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, **kw}
        return self.sample(
            self.np.asarray(logits, dtype=self.np.float32), self.np.random.default_rng(seed), **opts
        )

    def test_greedy_and_filters_that_leave_one_token(self):
        logits = [0.1, 2.0, 1.9, -3.0]
        assert self.draw(logits, temperature=0) == 1
        assert all(self.draw(logits, seed=s, top_k=1) == 1 for s in range(20))
        assert all(self.draw(logits, seed=s, top_p=0.01) == 1 for s in range(20))
        assert all(self.draw(logits, seed=s, min_p=0.99) == 1 for s in range(20))

    def test_seeded_and_following_the_distribution(self):
        np = self.np
        logits = np.log([0.1, 0.2, 0.3, 0.4])
        assert [self.draw(logits, seed=s) for s in range(30)] == [
            self.draw(logits, seed=s) for s in range(30)
        ]
        counts = np.bincount([self.draw(logits, seed=s) for s in range(4000)], minlength=4) / 4000
        assert np.allclose(counts, [0.1, 0.2, 0.3, 0.4], atol=0.03)
        # top-p on the temperature-1 distribution keeps {0.4, 0.3} (cumulative 0.7 >= 0.6)
        kept = {self.draw(logits, seed=s, top_p=0.6) for s in range(200)}
        assert kept == {2, 3}
        # a big vocabulary: the nucleus found in the first window equals the one from a full sort
        big = np.random.default_rng(1).normal(size=5000) * 3
        assert {self.draw(big, seed=s, top_p=0.5) for s in range(50)} <= set(np.argsort(-big)[:300].tolist())


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
