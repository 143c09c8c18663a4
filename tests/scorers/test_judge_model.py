"""The LLM judge on the real embedded SmolLM2-135M (llama.cpp): batching, verdicts that follow the
model's replies, swap debiasing, accounting and caching. SmolLM2 is a weak judge (it names the
response shown first whatever it is shown): these tests assert behaviour, never quality. That the
judge picks by content is tested on scripted engines in test_judge.py."""

from __future__ import annotations

import pytest

from slowthink.engines.base import RecordingEngine
from slowthink.scorers import load_scorer
from slowthink.scorers.base import CheckQuery, Comparison, ScoreQuery
from slowthink.scorers.judge import LLMJudge, parse_check, parse_verdict, resolve_verdict
from slowthink.types import Problem, Request

pytestmark = pytest.mark.model

APPLES = Problem("apples", "Tom has 3 apples and buys 5 more. How many apples does he have now?")
PENS = Problem("pens", "A pen costs 4 dollars. How much do 6 pens cost?")


@pytest.fixture()
def recorded(smol_engine) -> RecordingEngine:
    return RecordingEngine(smol_engine)


def test_pairwise_batch_is_one_engine_call(recorded: RecordingEngine) -> None:
    judge = load_scorer("judge", engine=recorded)
    comps = [
        Comparison(
            APPLES,
            "",
            "<SUMMARY> I will add the apples. </SUMMARY>",
            "<SUMMARY> Apples are red. </SUMMARY>",
            "summary",
        ),
        Comparison(
            APPLES,
            "<SUMMARY> I will add. </SUMMARY>",
            "<REASONING> 3 + 5 = 8. </REASONING>",
            "<REASONING> 3 + 5 = 9. </REASONING>",
            "reasoning",
        ),
        Comparison(PENS, "", "6 * 4 = 24. The answer is 24.", "6 + 4 = 10. The answer is 10.", "answer"),
    ]
    verdicts = judge.compare(comps)
    assert recorded.n_calls == 1 and recorded.calls[0].n_requests == 3
    assert len(verdicts) == 3
    for v in verdicts:
        assert v.raw.startswith("Better response: [")
        # a readable reply is the verdict; an unreadable one goes to the first-token probabilities
        choice = parse_verdict(v.raw)
        assert choice is None or v.winner == choice
        assert (
            v.prompt_tokens > 100
            and 0 < v.generated_tokens <= judge.config.verdict_max_tokens
            and v.calls == 1
        )
        # parsed verdicts agree with the parser; unparsed ones follow the documented rule
        assert v.parsed == (parse_verdict(v.raw) is not None)
    assert judge.stats.verdicts == 3
    assert (
        judge.stats.verdicts_parsed + judge.stats.verdicts_from_logprobs + judge.stats.verdicts_incumbent == 3
    )


class SameReplies:
    """The real engine, giving byte-identical requests of a call one reply: llama.cpp's
    log-probabilities for one prompt vary slightly with what its prompt cache holds."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.supports_images = inner, inner.name, inner.supports_images
        self.calls: list[list[Request]] = []

    def generate(self, requests):
        self.calls.append(list(requests))
        keys = [repr(r) for r in requests]
        unique = dict(zip(keys, requests))
        replies = dict(zip(unique, self.inner.generate(list(unique.values()))))
        return [replies[k] for k in keys]


def test_swap_picks_the_same_candidate_in_both_orders(smol_engine) -> None:
    """(a, b) and (b, a) get one verdict: the same candidate wins. A constant judge, or one that
    reads a position-biased model without the swap, gives Response 1 both times and fails."""
    eng = SameReplies(smol_engine)
    right, wrong = "6 * 4 = 24. The answer is 24.", "6 + 4 = 10. The answer is 10."
    ab, ba = LLMJudge(eng, swap=True).compare(
        [Comparison(PENS, "", right, wrong, "answer"), Comparison(PENS, "", wrong, right, "answer")]
    )
    assert len(eng.calls) == 1 and len(eng.calls[0]) == 4  # both orders of both, in one call
    assert ab.winner == 1 - ba.winner
    assert ab.calls == ba.calls == 1 and ab.prompt_tokens == ba.prompt_tokens > 200


def test_pointwise_scores_and_cache(recorded: RecordingEngine) -> None:
    judge = LLMJudge(recorded)
    good = ["Step 1: 6 pens cost 6 * 4 = 24 dollars.\n"]
    bad = ["Step 1: 6 pens cost 6 * 4 = 30 dollars.\n"]
    out = judge.score([ScoreQuery(PENS, good), ScoreQuery(PENS, bad)])
    assert recorded.n_calls == 1
    for r in out:
        assert len(r.scores) == 1 and r.scores[0] is not None and 0.0 <= r.scores[0] <= 1.0
        assert r.calls == 1 and r.prompt_tokens > 50 and r.generated_tokens == 1
    # llama.cpp gives top log-probabilities: the score is a probability, not a 0/1 parse
    assert not any(r.notes for r in out)
    again = judge.score([ScoreQuery(PENS, good)])
    assert recorded.n_calls == 1 and again[0].scores == out[0].scores and again[0].calls == 0


def test_reasoning_check_on_the_model(recorded: RecordingEngine) -> None:
    judge = LLMJudge(recorded, prompts="llava-cot")
    prefix = "<SUMMARY> I will add. </SUMMARY>\n\n<CAPTION> Tom has 3 apples and buys 5 more. </CAPTION>"
    checks = judge.check_reasoning(
        [CheckQuery(APPLES, prefix, "\n\n<REASONING> 3 + 5 = 8. </REASONING>")] * 2
    )
    assert recorded.n_calls == 1 and len(checks) == 2
    for c in checks:
        assert c.ok == parse_check(c.raw)  # the reading follows the model's reply
        assert c.prompt_tokens > 50 and 0 < c.generated_tokens <= 48 and c.calls == 1
    assert checks[0].ok == checks[1].ok  # greedy: the same reading


def test_llava_cot_pairwise_on_the_model(recorded: RecordingEngine) -> None:
    judge = LLMJudge(recorded, prompts="llava-cot", reason_max_tokens=64)
    comps = [
        Comparison(
            APPLES,
            "<SUMMARY> I will add. </SUMMARY>",
            "\n\n<CAPTION> Tom has 3 apples. </CAPTION>",
            "\n\n<CAPTION> Tom has 3 apples and buys 5 more apples. </CAPTION>",
            "caption",
        )
    ] * 2
    verdicts = judge.compare(comps)
    assert recorded.n_calls == 1
    for v in verdicts:
        # the reason-first reply states the choice ("I choose response [2]"); unreadable -> Response 1
        assert (v.winner, v.parsed) == resolve_verdict(v.raw, None)
        assert v.generated_tokens > 1 and v.calls == 1
