"""The LLM judge's pure parts (verdict parsing, the unparseable rule) and its batching, swap,
caching and accounting, on a scripted in-process engine. The real model is in test_judge_model.py."""

from __future__ import annotations

import math
import re

import pytest

from slowthink.prompts import get_template
from slowthink.prompts.judge import PAIR_STAGES
from slowthink.scorers.base import CheckQuery, Comparison, PairwiseJudge, ScoreQuery, StepScorer
from slowthink.scorers.judge import (
    JudgeConfig,
    LLMJudge,
    digit_probs,
    parse_verdict,
    parse_yes_no,
    resolve_verdict,
    yes_probability,
)
from slowthink.types import Completion, Problem, SlowthinkError
from tests.doubles import ScriptedEngine

VERDICTS = [
    # (judge reply, 0 = response 1 / 1 = response 2 / None = unparseable)
    ("Better response: [1]", 0),  # the asked-for format
    ("Better response: [2]", 1),
    ("better response:[2]", 1),  # spacing and case
    ("Better response: 2", 1),  # no brackets
    ("Better response is Response 1.", 0),
    ("1]", 0),  # what the prefilled reply looks like
    ("2]\n\nBecause it adds up.", 1),
    ("1", 0),  # a bare digit
    (" 2.", 1),
    ("[2]", 1),
    ("(1)", 0),
    ("Response 2 is better.", 1),
    ("response 1 is the better one", 0),
    ("The better one is 1", 0),
    ("The best is response 2", 1),
    ("I choose response 1.", 0),
    ("I prefer [2].", 1),
    ("Since the math is right, I choose response [2]", 1),  # LLaVA-CoT's reason-first format
    ("The second response is better.", 1),  # ordinals
    ("The first one is better", 0),
    ("Response 1 is wrong.", 1),  # the worse one named
    ("Response 2 is not better", 0),
    ("Response 1 wins", 0),
    ("", None),  # junk
    ("   ", None),
    ("Both responses are equally good.", None),
    ("[3]", None),  # a number that is no response
    ("12", None),
    ("1.5", None),
    ("[1] and [2] are the same", None),  # both: ambiguous
    ("Better response: [", None),  # the prefix alone
    ("<SUMMARY> I will add. </SUMMARY>", None),  # the judge continued the task instead
]


@pytest.mark.parametrize(("text", "expected"), VERDICTS)
def test_parse_verdict(text: str, expected: int | None) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" Yes", True),
        ("yes.", True),
        ("No", False),
        (" no, the sum is wrong", False),
        ("Correct", True),
        ("Incorrect", False),
        ("The reasoning is not correct.", False),
        ("wrong", False),
        ("", None),
        ("maybe", None),
    ],
)
def test_parse_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


def _c(text: str, top: dict[str, float] | None = None, pt: int = 10, gt: int = 1) -> Completion:
    return Completion(text=text, prompt_tokens=pt, generated_tokens=gt, top_logprobs=[top] if top else None)


def test_first_token_probabilities() -> None:
    c = _c("x", {"1": math.log(0.2), " 2": math.log(0.5), "[1": math.log(0.1), "The": math.log(0.2)})
    p1, p2 = digit_probs(c)
    assert p1 == pytest.approx(0.3 / 0.8) and p2 == pytest.approx(0.5 / 0.8)
    assert digit_probs(_c("x", {"The": -0.1})) is None
    assert digit_probs(_c("x")) is None
    y = _c("x", {" Yes": math.log(0.6), "yes": math.log(0.1), " No": math.log(0.1), "Maybe": math.log(0.2)})
    assert yes_probability(y) == pytest.approx(0.7 / 0.8)
    assert yes_probability(_c("x", {"Maybe": -0.1})) is None


def test_unparseable_rule_never_defaults_to_b() -> None:
    assert resolve_verdict("Better response: [2]", (0.99, 0.01)) == (1, True)  # the text decides
    assert resolve_verdict("no idea", (0.4, 0.6)) == (1, False)  # then the first-token logprobs
    assert resolve_verdict("no idea", (0.5, 0.5)) == (0, False)  # a tie keeps the incumbent
    assert resolve_verdict("no idea", None) == (0, False)  # else the incumbent a


P = Problem("p1", "Tom has 3 apples and buys 5 more. How many apples does he have now?", images=["img.png"])


def _shown(request) -> tuple[str, str]:
    text = request.messages[-1].content
    r1 = re.search(r"Response 1:\n(.*?)\n\nResponse 2:", text, re.S).group(1)
    r2 = re.search(r"Response 2:\n(.*?)\n\n", text, re.S).group(1)
    return r1, r2


def prefers_eight(request, i: int) -> Completion:
    """A content-faithful judge: the response that says 8 is better."""
    r1, _ = _shown(request)
    return _c("1]" if "8" in r1 else "2]", pt=100, gt=2)


def test_compare_is_one_engine_call_with_well_formed_requests() -> None:
    eng = ScriptedEngine(prefers_eight)
    judge = LLMJudge(eng)
    assert isinstance(judge, PairwiseJudge) and isinstance(judge, StepScorer)
    comps = [
        Comparison(
            P,
            "",
            "<SUMMARY> add 3 and 5 to get 8 </SUMMARY>",
            "<SUMMARY> apples are red </SUMMARY>",
            "summary",
        ),
        Comparison(
            P,
            "<SUMMARY> add </SUMMARY>",
            "<REASONING> 3 + 5 = 9 </REASONING>",
            "<REASONING> 3 + 5 = 8 </REASONING>",
            "reasoning",
        ),
        Comparison(
            P,
            "<REASONING> 3 + 5 = 8 </REASONING>",
            "<CONCLUSION> 8 </CONCLUSION>",
            "<CONCLUSION> 9 </CONCLUSION>",
            "conclusion",
        ),
    ]
    verdicts = judge.compare(comps)
    assert len(eng.calls) == 1 and len(eng.calls[0]) == 3
    assert [v.winner for v in verdicts] == [0, 1, 0]
    assert all(
        v.parsed and v.calls == 1 and v.prompt_tokens == 100 and v.generated_tokens == 2 for v in verdicts
    )
    assert verdicts[0].raw == "Better response: [1]"
    for req, comp in zip(eng.calls[0], comps):
        assert req.temperature == 0 and req.n == 1
        assert req.prefix == get_template("judge.pair.verdict_prefix") and "]" in req.stop
        assert req.logprobs and req.top_logprobs == 20
        assert req.messages[0].role == "system"
        user = req.messages[-1].content
        assert P.question in user and comp.a in user and comp.b in user and comp.stage.upper() in user
        assert (comp.prefix or get_template("judge.pair.empty_prefix")) in user
        assert req.messages[-1].images == []  # text-only engine: no images
    assert judge.stats.verdicts == 3 and judge.stats.verdicts_parsed == 3


def test_every_stage_has_a_template() -> None:
    for stage in PAIR_STAGES:
        text = get_template(f"judge.pair.{stage}")
        assert {"{question}", "{prefix}", "{response_1}", "{response_2}"} <= set(re.findall(r"\{\w+\}", text))
    with pytest.raises(SlowthinkError, match="unknown judge stage"):
        LLMJudge(ScriptedEngine(prefers_eight)).compare([Comparison(P, "", "a", "b", "poem")])


def test_images_go_to_a_multimodal_judge_only() -> None:
    eng = ScriptedEngine(prefers_eight, supports_images=True)
    LLMJudge(eng).compare([Comparison(P, "", "8", "9", "answer")])
    assert eng.calls[0][0].messages[-1].images == ["img.png"]
    eng2 = ScriptedEngine(prefers_eight, supports_images=True)
    LLMJudge(eng2, images=False).compare([Comparison(P, "", "8", "9", "answer")])
    assert eng2.calls[0][0].messages[-1].images == []


def test_unparseable_verdicts_are_recorded_and_resolved() -> None:
    replies = iter(
        [
            _c("I think both are fine"),  # no logprobs: the incumbent a
            _c("hmm", {"2": math.log(0.7), "1": math.log(0.2)}),  # logprobs favour Response 2
            Completion("", finish_reason="error", error="boom"),  # engine error: the incumbent
        ]
    )
    judge = LLMJudge(ScriptedEngine(lambda r, i: next(replies)))
    v = judge.compare([Comparison(P, "", "a", "b", "answer")] * 3)
    assert [(x.winner, x.parsed) for x in v] == [(0, False), (1, False), (0, False)]
    assert v[0].raw == "Better response: [I think both are fine"
    assert "boom" in v[2].raw
    assert judge.stats.verdicts_from_logprobs == 1 and judge.stats.verdicts_incumbent == 2


def test_swap_asks_both_orders_in_the_same_call() -> None:
    eng = ScriptedEngine(prefers_eight)
    judge = LLMJudge(eng, swap=True)
    v = judge.compare(
        [Comparison(P, "", "it is 8", "it is 9", "answer"), Comparison(P, "", "it is 9", "it is 8", "answer")]
    )
    assert len(eng.calls) == 1 and len(eng.calls[0]) == 4
    assert _shown(eng.calls[0][0]) == ("it is 8", "it is 9") and _shown(eng.calls[0][1]) == (
        "it is 9",
        "it is 8",
    )
    assert [(x.winner, x.parsed) for x in v] == [(0, True), (1, True)]  # consistent: the content wins
    assert v[0].prompt_tokens == 200 and v[0].calls == 1 and "swapped" in v[0].raw


def test_swap_with_position_bias_falls_back_to_logprobs_then_incumbent() -> None:
    # Always "1" (pure position bias): the two orders disagree about a/b.
    biased = LLMJudge(ScriptedEngine(lambda r, i: _c("1]")), swap=True)
    (v,) = biased.compare([Comparison(P, "", "x", "y", "answer")])
    assert (v.winner, v.parsed) == (0, False)  # no logprobs: the incumbent
    # With logprobs: P(1) = 0.6 in both orders -> P(a) = mean(0.6, 1 - 0.6) = 0.5 -> tie keeps a.
    tied = LLMJudge(
        ScriptedEngine(lambda r, i: _c("1]", {"1": math.log(0.6), "2": math.log(0.4)})), swap=True
    )
    assert tied.compare([Comparison(P, "", "x", "y", "answer")])[0].winner == 0
    # Nothing parses; order (a, b) is sure of 2, order (b, a) mildly of 1: both favour b.
    replies = iter(
        [
            _c("?", {"1": math.log(0.1), "2": math.log(0.9)}),
            _c("?", {"1": math.log(0.55), "2": math.log(0.45)}),
        ]
    )
    swayed = LLMJudge(ScriptedEngine(lambda r, i: next(replies)), swap=True)
    (v,) = swayed.compare([Comparison(P, "", "x", "y", "answer")])
    assert (v.winner, v.parsed) == (1, False)
    # Only one order parses: it decides.
    replies = iter([_c("junk"), _c("1]")])
    one = LLMJudge(ScriptedEngine(lambda r, i: next(replies)), swap=True)
    (v,) = one.compare([Comparison(P, "", "x", "y", "answer")])
    assert (v.winner, v.parsed) == (1, True)


def test_reason_first_mode() -> None:
    eng = ScriptedEngine(lambda r, i: _c("Since 3 + 5 = 8, better response: [2]", gt=12))
    judge = LLMJudge(eng, reason_first=True)
    (v,) = judge.compare([Comparison(P, "", "9", "8", "answer")])
    req = eng.calls[0][0]
    assert req.prefix == "" and req.max_tokens == judge.config.reason_max_tokens
    assert get_template("judge.pair.format_reason") in req.messages[-1].content
    assert (v.winner, v.parsed, v.generated_tokens) == (1, True, 12)


def yes_if_eight(request, i: int) -> Completion:
    step = request.messages[-1].content.split("Latest step:\n", 1)[1]
    p = 0.9 if "= 8" in step else 0.2
    return _c(" Yes" if p > 0.5 else " No", {" Yes": math.log(p), " No": math.log(1 - p)}, pt=50)


def test_pointwise_scores_are_p_yes_cached_per_prefix() -> None:
    eng = ScriptedEngine(yes_if_eight)
    judge = LLMJudge(eng)
    s1, s2, bad = "Step 1: Tom has 3 apples.\n", "Step 2: 3 + 5 = 8.\n", "Step 2: 3 + 5 = 9.\n"
    out = judge.score([ScoreQuery(P, [s1, s2]), ScoreQuery(P, [s1, bad])])
    assert len(eng.calls) == 1 and len(eng.calls[0]) == 3  # s1 asked once for both paths
    assert out[0].scores == [pytest.approx(0.2), pytest.approx(0.9)]
    assert out[1].scores == [pytest.approx(0.2), pytest.approx(0.2)]
    assert out[0].calls == 1 and out[0].prompt_tokens == 100 and out[1].prompt_tokens == 50
    req = eng.calls[0][0]
    assert req.max_tokens == 1 and req.logprobs and req.top_logprobs == 20 and req.temperature == 0
    assert req.prefix == get_template("judge.step.prefix")
    assert get_template("judge.step.empty_history") in req.messages[-1].content  # first step: no history
    assert s1.strip() in eng.calls[0][1].messages[-1].content.split("Latest step:")[0]  # history of step 2
    # Next depth: only the new step is asked; cached steps cost nothing.
    again = judge.score([ScoreQuery(P, [s1, s2, "Step 3: The answer is 8.\n"]), ScoreQuery(P, [s1, bad])])
    assert len(eng.calls) == 2 and len(eng.calls[1]) == 1
    assert again[1].calls == 0 and again[1].prompt_tokens == 0 and again[1].scores == out[1].scores
    assert judge.stats.cached_steps == 5  # s1 once in call 1 (shared), then 2 + 2


def test_pointwise_falls_back_to_the_reply_text() -> None:
    replies = iter([_c(" No"), _c(" perhaps"), Completion("", finish_reason="error", error="down")])
    judge = LLMJudge(ScriptedEngine(lambda r, i: next(replies)))
    (res,) = judge.score([ScoreQuery(P, ["a\n", "b\n", "c\n"])])
    assert res.scores == [0.0, None, None]
    assert any("perhaps" in n for n in res.notes) and any("down" in n for n in res.notes)
    # The errored step is not cached: it is asked again next time.
    eng = ScriptedEngine(lambda r, i: _c(" Yes"))
    judge.engine = eng
    (res,) = judge.score([ScoreQuery(P, ["a\n", "b\n", "c\n"])])
    assert res.scores == [0.0, None, 1.0] and len(eng.calls[0]) == 1


def test_check_reasoning() -> None:
    """LLaVA-CoT's check: its prompt with the CAPTION as given information, no image, the reply read
    as its code reads it ('incorrect' anywhere -> wrong), all queries in one engine call."""
    replies = iter(
        [
            _c("correct"),
            _c("Incorrect: 3 + 5 is 8"),
            _c("I cannot tell"),
            Completion("", finish_reason="error", error="down"),
        ]
    )
    eng = ScriptedEngine(lambda r, i: next(replies), supports_images=True)
    judge = LLMJudge(eng)
    prefix = "<SUMMARY> add </SUMMARY>\n\n<CAPTION> Tom has 3 apples and buys 5. </CAPTION>"
    res = judge.check_reasoning(
        [
            CheckQuery(P, prefix, f"\n\n<REASONING> {r} </REASONING>")
            for r in ("3 + 5 = 8", "3 + 5 = 9", "?", "?")
        ]
    )
    assert [c.ok for c in res] == [True, False, None, None]
    assert len(eng.calls) == 1 and all(c.calls == 1 for c in res) and res[0].prompt_tokens == 10
    req = eng.calls[0][0]
    text = req.messages[-1].content
    assert "Given Information: Tom has 3 apples and buys 5.\n\nReasoning Process: 3 + 5 = 8" in text
    assert "add" not in text.split("Given Information:")[1]  # the summary is not given information
    assert (
        req.messages[-1].images == [] and req.max_tokens == judge.config.check_max_tokens and not req.logprobs
    )
    assert [m.role for m in req.messages] == [
        "system",
        "user",
    ]  # slowthink's prompt set keeps its system turn


def test_no_engine_call_for_nothing() -> None:
    eng = ScriptedEngine(prefers_eight)
    judge = LLMJudge(eng)
    assert judge.compare([]) == [] and judge.score([]) == [] and judge.check_reasoning([]) == []
    assert eng.calls == []


def test_long_inputs_are_cut() -> None:
    eng = ScriptedEngine(prefers_eight)
    judge = LLMJudge(eng, max_prefix_chars=100, max_candidate_chars=50)
    judge.compare([Comparison(P, "p" * 10_000 + "END", "a" * 10_000, "b" * 10_000, "reasoning")])
    user = eng.calls[0][0].messages[-1].content
    assert len(user) < 2000 and "END" in user  # the prefix keeps its end


@pytest.mark.parametrize(
    "bad", [{"verdict_max_tokens": 0}, {"top_logprobs": 50}, {"temperature": -1}, {"max_prefix_chars": 1}]
)
def test_config_validation(bad) -> None:
    with pytest.raises(ValueError):
        JudgeConfig(**bad)


def test_needs_an_engine() -> None:
    with pytest.raises(SlowthinkError, match="engine"):
        LLMJudge(None)
