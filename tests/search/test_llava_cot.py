"""LLaVA-CoT's stage-level search as published: the reasoning check inside every REASONING
comparison, the pool knockout, the reason-first judge reply and the ``llava-cot`` preset.

The doubles: a scripted policy whose odd-seeded samples reason right (3 + 4 = 7) and even-seeded
ones wrong (3 + 4 = 8), and judges that always prefer the response shown FIRST (pure position
bias), so only the reasoning check can make the right reasoning win.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from slowthink.engines.base import RecordingEngine
from slowthink.formats import get_format
from slowthink.prompts import get_template
from slowthink.scorers import load_scorer
from slowthink.scorers.base import Check, CheckQuery, Comparison, Verdict
from slowthink.scorers.judge import LLMJudge, parse_check
from slowthink.search import make_config, solve
from slowthink.search.base import Tree
from slowthink.search.knockout import KnockoutGroup, knockout, schedule
from slowthink.search.presets import apply_preset
from slowthink.search.stage_beam import StageBeamConfig
from slowthink.types import Completion, Problem, SlowthinkError
from tests.doubles import ScriptedEngine

RIGHT, WRONG = "4 + 3 = 7, so the sum is 7.", "4 + 3 = 8, so the sum is 8."


def problems(k: int = 6) -> list[Problem]:
    return [Problem(id=f"q{i}", question="What is 4 + 3?", answer="7") for i in range(k)]


def policy_reply(r, i: int) -> Completion:
    """Stage text by seed: odd seeds reason right, even seeds wrong; the conclusion follows the reasoning."""
    seed = (r.seed or 0) + i
    stage = re.findall(r"<(\w+)>\s*$", r.prefix)[-1]
    if stage == "CONCLUSION":
        body = "8" if "= 8" in r.prefix else "7"
    elif stage == "REASONING":
        body = RIGHT if seed % 2 else WRONG
    else:
        body = f"{stage.lower()} text {seed % 2}"
    return Completion(f"{body} </{stage}>", stop_str=f"</{stage}>", prompt_tokens=5, generated_tokens=4)


def judge_reply(r, i: int) -> Completion:
    """Answers the LLMJudge's requests: checks by the reasoning's arithmetic, comparisons always
    'response 1' (position bias), in the reply format of the prompt set."""
    text = r.messages[-1].content
    if "Reasoning Process:" in text:
        reasoning = text.split("Reasoning Process:", 1)[1]
        reply = "incorrect" if "= 8" in reasoning else "correct"
    elif r.prefix:  # slowthink's prefilled verdict
        reply = "1]"
    else:
        reply = "Since response 1 is clear, I choose response 1."
    return Completion(reply, prompt_tokens=30, generated_tokens=len(reply.split()))


def judge_engine() -> ScriptedEngine:
    return ScriptedEngine(judge_reply, name="scripted-judge")


class Both:
    """Policy and judge on one engine (the judge runs on the policy engine by default)."""

    name, supports_images = "scripted", False

    def __init__(self) -> None:
        self.policy, self.judge = ScriptedEngine(policy_reply, name="scripted-policy"), judge_engine()

    def generate(self, requests):
        judge = [not re.search(r"<\w+>\s*$", r.prefix) for r in requests]
        if any(judge):
            assert all(judge), "an engine call mixes policy and judge requests"
            return self.judge.generate(requests)
        return self.policy.generate(requests)


class FirstJudge:
    """compare: always the first shown; check_reasoning: wrong iff '= 8'. Records every call."""

    name = "first"

    def __init__(self) -> None:
        self.compare_calls: list[list[Comparison]] = []
        self.check_calls: list[list[CheckQuery]] = []

    def compare(self, comps):
        self.compare_calls.append(list(comps))
        return [Verdict(0, prompt_tokens=10, generated_tokens=2, calls=1) for _ in comps]

    def check_reasoning(self, queries):
        self.check_calls.append(list(queries))
        return [
            Check("= 8" not in q.candidate, prompt_tokens=7, generated_tokens=1, calls=1) for q in queries
        ]


def reasoning_group(texts: list[str], pid: str = "p") -> KnockoutGroup:
    tree = Tree(
        Problem(pid, "What is 4 + 3?", answer="7"), "stage_beam", get_format("stages"), StageBeamConfig()
    )
    s = tree.add(0, "<SUMMARY> add them </SUMMARY>", kind="summary")
    c = tree.add(s.id, "\n\n<CAPTION> the terms are 4 and 3 </CAPTION>", kind="caption")
    kids = [tree.add(c.id, f"\n\n<REASONING> {t} </REASONING>", kind="reasoning").id for t in texts]
    return KnockoutGroup(tree, c.id, kids, "reasoning")


def first_shown_seed(texts: list[str], first_text: str, pairing: str = "bracket") -> int:
    """A seed whose knockout of two candidates shows ``first_text`` first."""
    from slowthink.search.base import stable_seed

    for seed in range(100):
        g = reasoning_group(texts)
        ((x, _),) = schedule(g.candidates, pairing, random.Random(stable_seed(seed, "p", g.prefix_node, "t")))
        if g.tree.node(x[1]).text.count(first_text):
            return seed
    raise AssertionError("no seed shows it first")


# -- the check inside each reasoning comparison ---------------------------------------------------
@pytest.mark.parametrize("pairing", ["bracket", "pool"])
def test_wrong_reasoning_shown_first_loses_to_right_one_shown_second(pairing):
    seed = first_shown_seed([WRONG, RIGHT], WRONG, pairing)
    g, judge = reasoning_group([WRONG, RIGHT]), FirstJudge()
    knockout(judge, [g], seed, "t", pairing=pairing, check=True)
    (d,) = g.tree.trace.decisions
    assert WRONG in g.tree.node(d["a"]).text and RIGHT in g.tree.node(d["b"]).text  # B is shown second
    assert RIGHT in g.tree.node(g.winner).text and d["winner"] == d["b"]
    assert d["check"] == [False, True] and d["by"] == "check"
    assert judge.compare_calls == []  # decided by the check, no pairwise comparison asked
    assert g.tree.trace.compute.scorer_prompt_tokens == 14  # both checks charged
    # The same comparison without the check: the position-biased verdict keeps the wrong one.
    g2 = reasoning_group([WRONG, RIGHT])
    knockout(FirstJudge(), [g2], seed, "t", pairing=pairing)
    assert WRONG in g2.tree.node(g2.winner).text and "check" not in g2.tree.trace.decisions[0]


@pytest.mark.parametrize(
    "texts", [[WRONG, WRONG.replace("8", "8 indeed")], [RIGHT, RIGHT.replace("7.", "7 indeed.")]]
)
def test_both_or_neither_wrong_the_pairwise_verdict_decides(texts):
    g, judge = reasoning_group(texts), FirstJudge()
    knockout(judge, [g], 3, "t", check=True)
    (d,) = g.tree.trace.decisions
    assert d["by"] == "judge" and d["winner"] == d["a"]  # the (first-preferring) pairwise verdict
    assert len(judge.compare_calls) == 1 and len(judge.compare_calls[0]) == 1
    assert d["check"][0] == d["check"][1]


def test_all_checks_of_a_round_are_one_engine_call_for_the_whole_batch():
    eng = RecordingEngine(judge_engine())
    judge = LLMJudge(eng, prompts="llava-cot")
    groups = [reasoning_group([WRONG, RIGHT, WRONG, RIGHT], pid=f"p{i}") for i in range(3)]
    knockout(judge, groups, 0, "t", pairing="bracket", check=True)
    kinds = [
        {"check" if "Reasoning Process:" in r.messages[-1].content else "pair" for r in call}
        for call in eng.inner.calls
    ]
    checks = [c for c, k in zip(eng.inner.calls, kinds) if k == {"check"}]
    assert all(len(k) == 1 for k in kinds)  # no call mixes checks and comparisons
    # round 0: all 12 candidates of the 3 problems checked in ONE call; round 1 needs no new check
    assert [len(c) for c in checks] == [12]
    for g in groups:
        assert RIGHT in g.tree.node(g.winner).text and len(g.tree.trace.decisions) == 3
    # checked once each: a winner meeting another in round 1 is not asked again
    assert sum(len(c) for c in eng.inner.calls if "Reasoning Process:" in c[0].messages[-1].content) == 12


def test_checks_are_asked_once_per_wave_with_pool_pairing():
    judge = FirstJudge()
    texts = [f"{t} (#{k})" for k, t in enumerate([WRONG, RIGHT, WRONG, RIGHT, WRONG])]
    groups = [reasoning_group(texts, pid=f"p{i}") for i in range(4)]
    knockout(judge, groups, 1, "t", pairing="pool", check=True)
    asked = [(q.problem.id, q.candidate) for call in judge.check_calls for q in call]
    assert len(asked) == len(set(asked)) == 4 * 5  # every candidate checked exactly once
    for g in groups:
        assert RIGHT in g.tree.node(g.winner).text


@pytest.mark.parametrize("pairing", ["bracket", "pool"])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
def test_n_candidates_take_n_minus_1_comparisons(pairing, n):
    texts = [f"{RIGHT} #{i}" for i in range(n)]
    best = texts[n // 2] + " best"
    texts[n // 2] = best

    class Prefers(FirstJudge):
        def compare(self, comps):
            self.compare_calls.append(list(comps))
            return [Verdict(1 if "best" in c.b else 0) for c in comps]

    g, judge = reasoning_group(texts), Prefers()
    knockout(judge, [g], 5, "t", pairing=pairing)
    assert len(g.tree.trace.decisions) == n - 1 == sum(len(c) for c in judge.compare_calls)
    assert "best" in g.tree.node(g.winner).text  # the one the judge prefers survives every pairing


def test_pool_pairing_puts_the_winner_back_in_the_pool():
    """LLaVA-CoT's code draws two from the pool and appends the winner: for N=4 a winner often meets a
    fresh candidate while another is still waiting (a ladder), which a bracket never does."""
    ladders = 0
    for seed in range(40):
        plan = schedule([1, 2, 3, 4], "pool", random.Random(seed))
        assert len(plan) == 3
        if {plan[1][0][0], plan[1][1][0]} == {"node", "winner"}:
            ladders += 1
        bracket = schedule([1, 2, 3, 4], "bracket", random.Random(seed))
        assert [e[0] for m in bracket[2:] for e in m] == ["winner", "winner"]
    assert 15 <= ladders <= 36  # 2/3 of the draws in expectation; a bracket: never


# -- the judge's LLaVA-CoT prompts ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "winner"),
    [
        ("Since response 2 adds 4 and 3 correctly, I choose response 2.", 1),
        ("Since [it is right], I choose response [2].", 1),
        ("Since response 1 adds correctly, I choose response 1.", 0),
    ],
)
def test_reason_first_reply_parses_with_the_papers_prompt(reply, winner):
    eng = ScriptedEngine(
        lambda r, i: Completion(reply, prompt_tokens=40, generated_tokens=14), name="replies"
    )
    judge = LLMJudge(eng, prompts="llava-cot")
    g = reasoning_group([WRONG, RIGHT])
    (v,) = judge.compare(
        [
            Comparison(
                g.tree.problem,
                g.tree.text(g.prefix_node),
                g.tree.node(g.candidates[0]).text,
                g.tree.node(g.candidates[1]).text,
                "reasoning",
            )
        ]
    )
    assert (v.winner, v.parsed, v.generated_tokens) == (winner, True, 14)
    [[req]] = eng.calls
    assert [m.role for m in req.messages] == ["user"] and req.prefix == "" and not req.logprobs
    assert req.max_tokens == judge.config.reason_max_tokens
    text = req.messages[0].content
    assert text.startswith("Now you act as a judge") and text.endswith(
        'Output format: "Since [reason], I choose response [1/2]."'
    )
    assert "Hint about the Question: the terms are 4 and 3" in text  # the CAPTION, as LLaVA-CoT's code
    assert f"Response 1: {WRONG}\nResponse 2: {RIGHT}" in text  # inner texts, no tags
    assert "<REASONING>" not in text and "add them" not in text  # no summary in the reasoning hint


def test_llava_cot_check_prompt_and_reply():
    eng = judge_engine()
    judge = LLMJudge(eng, prompts="llava-cot")
    g = reasoning_group([WRONG, RIGHT])
    prefix = g.tree.text(g.prefix_node)
    checks = judge.check_reasoning(
        [CheckQuery(g.tree.problem, prefix, g.tree.node(k).text) for k in g.candidates]
    )
    assert [c.ok for c in checks] == [False, True] and len(eng.calls) == 1
    req = eng.calls[0][0]
    text = req.messages[-1].content
    assert text.startswith(get_template("judge.llava_cot.check").split("{info}")[0])
    assert "Given Information: the terms are 4 and 3\n\nReasoning Process: " + WRONG in text
    assert req.max_tokens == judge.config.check_max_tokens and not req.messages[-1].images
    assert [m.role for m in req.messages] == ["user"]  # LLaVA-CoT asks it as one user turn
    assert [parse_check(t) for t in ("Incorrect.", "correct", "The reasoning is correct", "unsure")] == [
        False,
        True,
        True,
        None,
    ]


def test_verdict_only_prompt_stays_the_default():
    eng = judge_engine()
    judge = LLMJudge(eng)
    g = reasoning_group([WRONG, RIGHT])
    judge.compare(
        [
            Comparison(
                g.tree.problem,
                g.tree.text(g.prefix_node),
                g.tree.node(g.candidates[0]).text,
                g.tree.node(g.candidates[1]).text,
                "reasoning",
            )
        ]
    )
    req = eng.calls[0][0]
    assert (
        req.prefix == get_template("judge.pair.verdict_prefix")
        and req.max_tokens == judge.config.verdict_max_tokens
    )
    assert req.messages[0].role == "system"
    with pytest.raises(ValueError, match="prompts"):
        LLMJudge(eng, prompts="gpt")


# -- the preset ----------------------------------------------------------------------------------
def test_preset_sets_the_whole_procedure():
    a = apply_preset("llava-cot", ["stage_beam"], fmt=None, scorer=None, options={"n": 4})
    cfg = make_config("stage_beam", **a.options)
    assert (cfg.select, cfg.pairing, cfg.precheck, cfg.temperature, cfg.top_p, cfg.n) == (
        "judge",
        "pool",
        True,
        0.6,
        0.9,
        4,
    )
    fmt = get_format(a.format)
    assert fmt.spec == "stages#style=llava-cot"
    system = fmt.messages(problems(1)[0])[0].content
    assert (
        "detailed description of the image" in system and "facts of the image or the question" not in system
    )
    judge = load_scorer(a.scorer, engine=judge_engine())
    assert judge.config.prompts == "llava-cot"
    # explicit choices win
    b = apply_preset(
        "llava-cot", ["stage_beam"], fmt="stages", scorer="judge", options={"pairing": "bracket"}
    )
    assert (b.format, b.scorer, b.options["pairing"], b.options["precheck"]) == (
        "stages",
        "judge",
        "bracket",
        True,
    )
    with pytest.raises(SlowthinkError, match="for --strategy stage_beam"):
        apply_preset("llava-cot", ["majority"], fmt=None, scorer=None, options={})
    with pytest.raises(SlowthinkError, match="unknown preset"):
        apply_preset("llava", ["stage_beam"], fmt=None, scorer=None, options={})


def run_preset(k: int = 6, **override):
    eng = Both()
    a = apply_preset("llava-cot", ["stage_beam"], fmt=None, scorer=None, options={"n": 4, **override})
    judge = load_scorer(a.scorer, engine=eng)
    return eng, solve(problems(k), eng, get_format(a.format), "stage_beam", scorer=judge, seed=0, **a.options)


def test_preset_end_to_end_right_reasoning_wins_against_a_position_biased_judge():
    eng, traces = run_preset()
    for t in traces:
        assert [s.kind for s in t.steps] == ["summary", "caption", "reasoning", "conclusion"]
        assert t.answer == "7" and RIGHT in t.response
        assert len(t.decisions) == 4 * 3  # N-1 comparisons per stage
        reasoning = [d for d in t.decisions if d["stage"] == "reasoning"]
        assert all("check" in d for d in reasoning) and not any(
            "check" in d for d in t.decisions if d not in reasoning
        )
    pol = [r for call in eng.policy.calls for r in call]
    assert all(r.temperature == 0.6 and r.top_p == 0.9 for r in pol)
    assert pol[0].messages[0].content == get_template("stages.llava_cot.system")
    # the reasoning stage's checks: one engine call per wave for all 6 problems, never mixed
    check_calls = [c for c in eng.judge.calls if "Reasoning Process:" in c[0].messages[-1].content]
    assert check_calls and sum(len(c) for c in check_calls) == 6 * 4
    # without the in-comparison check the same judge keeps a wrong reasoning somewhere
    _, plain = run_preset(precheck=False)
    assert any(t.answer == "8" for t in plain)


def test_preset_reaches_solve_and_eval(monkeypatch):
    from typer.testing import CliRunner

    import slowthink.cli as cli
    from slowthink.cli import app
    from slowthink.evaluate.config import EvalConfig, plan_jobs

    monkeypatch.setattr(cli, "load_engine", lambda spec, **kw: Both())
    res = CliRunner().invoke(
        app,
        [
            "solve",
            "What is 4 + 3?",
            "--strategy",
            "stage_beam",
            "--preset",
            "llava-cot",
            "--n",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    trace = json.loads(res.output[res.output.index("{") :])
    assert trace["format"] == "stages#style=llava-cot"
    assert (trace["config"]["pairing"], trace["config"]["precheck"], trace["config"]["temperature"]) == (
        "pool",
        True,
        0.6,
    )
    cfg = EvalConfig(benchmark="gsm8k", strategies=["majority", "stage_beam"], preset="llava-cot", ns=[4])
    assert (cfg.format, cfg.scorer) == ("stages#style=llava-cot", "judge#prompts=llava-cot")
    jobs = {j.strategy: dict(j.options()) for j in plan_jobs(cfg)}
    assert jobs["stage_beam"]["pairing"] == "pool" and jobs["stage_beam"]["precheck"] is True
    assert "pairing" not in jobs["majority"] and "temperature" not in jobs["majority"]
    with pytest.raises(SlowthinkError, match="preset 'llava-cot' is for --strategy stage_beam"):
        EvalConfig(benchmark="gsm8k", strategies=["majority"], preset="llava-cot")


def test_trace_view_shows_stages_and_checks():
    from rich.console import Console

    from slowthink.display import render_trace

    _, (trace,) = run_preset(1)
    console = Console(record=True, width=200)
    render_trace(trace, problems(1)[0], console)
    out = console.export_text()
    assert "REASONING" in out and "CONCLUSION" in out  # stage labels for stages#style=llava-cot
    assert "check: #" in out and "decided by" in out
