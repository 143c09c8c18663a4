"""The atomic format's two prompt layouts: ``line`` (one assistant turn, a step per line) and
``atomthink`` (AtomThink's step prompt: question + historical steps in the user turn, the next step
in a fresh assistant turn, multi-line, ending at end of turn or at the next ``Step`` marker).

The engine double (``tests/doubles.py``) applies stop strings the way the real engines do (the first match ends the text
and is kept at its end); the real model runs the atomthink style at the end.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from slowthink.formats import get_format
from slowthink.formats.atomic import NEXT_MARKER
from slowthink.formats.base import StepSpec
from slowthink.scorers.base import ScoreResult
from slowthink.search import solve
from slowthink.types import Completion, Problem, SlowthinkError
from tests.doubles import ScriptedEngine, steps_done

ATOMTHINK = "atomic#style=atomthink"


class TwoStyleEngine(ScriptedEngine):
    """Writes two-line steps 'Step k: a + b = c after N checks.' / 'So we have c.' and then the final
    answer after ``steps`` steps (N: the sample's seed mod 3); a whole response when no stop is set. Counts the steps done from the prefix (one assistant turn) or from the user turn's
    HISTORICAL REASONING STEPS (fresh turn). ``run_on`` writes the next step too (the stop ends it)."""

    def __init__(self, steps: int = 2, run_on: bool = False):
        super().__init__(self._raw, name="two-style")
        self.steps, self.run_on = steps, run_on

    @staticmethod
    def done(r) -> int:
        user = r.messages[-1].content
        seen = user.split("HISTORICAL REASONING STEPS:")[-1] if "HISTORICAL" in user else r.prefix
        return steps_done(seen)

    WORDS = ("Read the numbers in the question", "Now add one more to the total", "Then count again")

    @classmethod
    def step(cls, k: int, checks: int) -> str:
        what = cls.WORDS[k % len(cls.WORDS)]
        return f"Step {k + 1}: {what}: {k} + 1 = {k + 1} after {checks} checks.\nSo we have {k + 1}.\n"

    def _raw(self, r, i: int) -> str:
        k = self.done(r)
        checks = ((r.seed or 0) + i) % 3
        if not r.stop:  # a whole response
            return (
                "".join(self.step(j, checks) for j in range(self.steps)) + "To sum up, the final answer is: 7"
            )
        if r.prefix.endswith("final answer is:"):
            return " 7\n"
        if k >= self.steps:
            return "To sum up, the final answer is: 7\n"
        return self.step(k, checks) + (f"Step {k + 2}: more.\n" if self.run_on else "")


class Spy:
    """Keeps the Requests of every generate call (``calls[i][j]``: request j of call i)."""

    def __init__(self, inner):
        self.inner, self.name, self.supports_images = inner, inner.name, inner.supports_images
        self.calls: list[list] = []

    def generate(self, requests):
        self.calls.append(list(requests))
        return self.inner.generate(requests)


class LastStepScorer:
    """Scores the newest step by its number of checks (more is better); None for the final line."""

    name = "checks"

    def score(self, queries):
        out = []
        for q in queries:
            scores = []
            for s in q.steps:
                m = re.search(r"after (\d) checks", s)
                scores.append(int(m[1]) / 2 if m else None)
            out.append(ScoreResult(scores, calls=1))
        return out


def problems(k: int = 2) -> list[Problem]:
    return [Problem(id=f"p{i}", question=f"What is {i} + 7?", answer="7") for i in range(k)]


# -- the rendered request -----------------------------------------------------------------------


def test_depth_two_request_has_question_and_both_steps_in_the_user_turn():
    eng = Spy(TwoStyleEngine(steps=3))
    solve(problems(1), eng, get_format(ATOMTHINK), "quick")
    req = eng.calls[2][0]  # the third step: two steps done
    assert [m.role for m in req.messages] == ["user"]  # no system prompt, like AtomThink's conversation
    user = req.messages[0].content
    assert user.startswith(
        "THE GIVEN QUESTION:\nWhat is 0 + 7?\nAnswer the question using a single word or phrase."
    )
    history = user.split("HISTORICAL REASONING STEPS:\n")[1].split(
        "\n\nYour task is to predict the next step"
    )[0]
    assert re.fullmatch(
        r"Step 1: [^\n]*0 \+ 1 = 1 after \d checks\.\nSo we have 1\.\n\n"
        r"Step 2: [^\n]*1 \+ 1 = 2 after \d checks\.\nSo we have 2\.",
        history,
    )
    assert 'simply reply with "To sum up, the final answer is: ...".' in user
    assert req.prefix == ""  # a fresh assistant turn
    assert req.stop == [NEXT_MARKER] and req.max_tokens == 96
    first = eng.calls[0][0].messages[0].content
    assert "HISTORICAL REASONING STEPS:\n\n\nYour task" in first  # empty history


def test_line_style_request_is_unchanged():
    eng = Spy(TwoStyleEngine(steps=3))
    solve(problems(1), eng, get_format("atomic"), "quick")
    req = eng.calls[2][0]
    assert [m.role for m in req.messages] == ["system", "user"] and req.messages[
        1
    ].content == "What is 0 + 7?"
    assert req.prefix.count("Step ") == 2 and req.stop == ["\n"] and req.max_tokens == 96
    assert get_format("atomic").spec == get_format("atomic#style=line").spec == "atomic"


# -- how a step ends ----------------------------------------------------------------------------


@pytest.mark.parametrize("run_on", [False, True], ids=["end-of-turn", "next-marker"])
def test_multiline_step_kept_whole(run_on):
    traces = solve(problems(1), TwoStyleEngine(steps=2, run_on=run_on), get_format(ATOMTHINK), "quick")
    t = traces[0]
    texts = [n.text for n in t.steps]
    assert len(texts) == 3 and texts[2] == "To sum up, the final answer is: 7\n\n"
    for k, text in enumerate(texts[:2]):  # both lines, without the next step's marker, one blank line after
        assert re.fullmatch(
            rf"Step {k + 1}: [^\n]*{k} \+ 1 = {k + 1} after \d checks\.\nSo we have {k + 1}\.\n\n", text
        )
    assert t.answer == "7" and t.response == "".join(texts)
    parsed = get_format(ATOMTHINK).parse(t.response)
    assert [s.text for s in parsed.steps][:2] == [x.strip() for x in texts[:2]] and parsed.answer_text == "7"


def test_finish_step_strips_the_next_marker_and_blank_lines():
    fmt = get_format(ATOMTHINK)
    spec = fmt.next_step("")
    text, note = fmt.finish_step(spec, Completion("Step 1: a\n\nb\nStep ", stop_str="\nStep "))
    assert text == "Step 1: a\nb\n\n" and note is None
    assert fmt.next_step("Step 1: a\nb\n\nTo sum up, the final answer is: 3\n\n") is None
    assert fmt.next_step("Step 1: the answer is near\nb\n\n") is None  # final phrase inside a block
    assert fmt.next_step("Step 1: a\nb\n\n") == StepSpec("step", "", [NEXT_MARKER], 96)
    # end of turn ends the step, not the response
    assert fmt.eos_ends_response is False and get_format("atomic").eos_ends_response is True


# -- validity thresholds ------------------------------------------------------------------------


def test_thresholds_are_options():
    long_step = "Step 1: " + "x" * 450
    assert get_format("atomic").validate_step(long_step, []).startswith("too long")
    assert get_format(ATOMTHINK).validate_step(long_step, []) is None  # AtomThink's ~500-word cap
    assert get_format(ATOMTHINK + ",max_chars=100").validate_step(long_step, []).startswith("too long")
    assert get_format("atomic#min_chars=20").validate_step("Step 1: 3.", []).startswith("too short")
    two = "Step 1: a.\nStep 2: b."
    assert get_format("atomic").validate_step(two, []) == "several 'Step' markers in one step"
    assert get_format(ATOMTHINK).validate_step(two, []) is None
    loop = "We add the two numbers. We add the two numbers. Then we get seven here."
    assert get_format("atomic").validate_step(loop, []) == "repeated sentences"
    assert get_format(ATOMTHINK).validate_step(loop, []) is None  # 1 of 3 sentences repeated <= 0.45
    prev = ["Step 1: 3 + 4 = 7."]
    assert get_format("atomic").validate_step("Step 2: 3 + 4 = 7.", prev) == "near-copy of the previous step"
    assert get_format("atomic#near_copy=none").validate_step("Step 2: 3 + 4 = 7.", prev) is None


def test_spec_round_trip_and_errors():
    fmt = get_format("atomic#style=atomthink, max_chars=600, near_copy=none")
    assert fmt.spec == "atomic#style=atomthink,max_chars=600,near_copy=None"
    assert get_format(fmt.spec).options == fmt.options
    with pytest.raises(
        SlowthinkError,
        match=r"unknown atomic format option\(s\) colour: valid keys are style, "
        r"step_tokens, min_chars, max_chars, max_markers, repeat_ratio, near_copy",
    ):
        get_format("atomic#style=atomthink,colour=red")
    with pytest.raises(SlowthinkError, match="style='atom': must be line or atomthink"):
        get_format("atomic#style=atom")
    with pytest.raises(SlowthinkError, match="step_tokens=0: must be a whole number >= 1"):
        get_format("atomic#step_tokens=0")
    with pytest.raises(SlowthinkError, match="format 'free' takes no options"):
        get_format("free#style=atomthink")
    with pytest.raises(SlowthinkError, match="write key=value pairs"):
        get_format("atomic#atomthink")


def test_cli_and_eval_config_take_the_spec():
    from slowthink.cli import app
    from slowthink.evaluate.config import EvalConfig

    r = CliRunner().invoke(app, ["solve", "What?", "--format", "atomic#style=atomthink,colour=red"])
    assert (
        r.exit_code == 2
        and "valid keys are style" in " ".join(r.output.split())
        and "Traceback" not in r.output
    )
    cfg = EvalConfig(benchmark="gsm8k", format="atomic#style=atomthink,near_copy=92")
    assert cfg.format == "atomic#style=atomthink"  # canonical: default values dropped
    with pytest.raises(SlowthinkError, match="valid keys"):
        EvalConfig(benchmark="gsm8k", format="atomic#colour=red")


# -- strategies end to end ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["atomic", ATOMTHINK])
@pytest.mark.parametrize("strategy", ["quick", "greedy_step"])
def test_strategies_run_with_both_styles(spec, strategy):
    eng = Spy(TwoStyleEngine(steps=2))
    opts = {"n": 3, "scorer": LastStepScorer(), "temperature": 0.7} if strategy == "greedy_step" else {}
    traces = solve(problems(2), eng, get_format(spec), strategy, **opts)
    for t in traces:
        assert t.error is None and t.answer == "7" and t.format == get_format(spec).spec
        assert [n.kind for n in t.steps] == ["step", "step", "step"] and t.steps[-1].final
        step_lines = [ln for n in t.steps[:2] for ln in n.text.splitlines() if ln.strip()]
        assert len(step_lines) == (4 if spec == ATOMTHINK else 2)  # line style cuts at the newline
        assert t.response == "".join(n.text for n in t.steps)
        assert get_format(t.format).answer(t.response) == "7"
    assert all(len(c) == 2 for c in eng.calls)  # still one engine call per depth for the batch
    if strategy == "greedy_step":
        # the best-scored candidate (most checks) was kept at every step
        for t in traces:
            assert all("after 2 checks" in n.text for n in t.steps[:2])


def test_whole_response_strategies_keep_one_assistant_turn():
    eng = Spy(TwoStyleEngine(steps=2))
    traces = solve(problems(1), eng, get_format(ATOMTHINK), "majority", n=2)
    req = eng.calls[0][0]
    assert req.messages[0].role == "system" and req.stop == []
    assert traces[0].answer == "7"


def test_fallback_answer_in_a_fresh_turn():
    class NeverFinal(TwoStyleEngine):
        def __init__(self):
            super().__init__(steps=99)

    eng = Spy(NeverFinal())
    t = solve(problems(1), eng, get_format(ATOMTHINK), "quick", max_depth=2)[0]
    last = eng.calls[-1][0]
    assert last.prefix == "To sum up, the final answer is:" and "1 + 1 = 2 after" in last.messages[0].content
    assert t.answer == "7" and t.steps[-1].kind == "answer" and t.steps[-1].text.endswith("\n\n")


@pytest.mark.model
def test_atomthink_style_on_the_real_model(smol_engine):
    eng = Spy(smol_engine)
    p = Problem(id="a", question="What is 2 + 6?", answer="8")
    t = solve([p], eng, get_format(ATOMTHINK), "quick", max_depth=2, max_retries=1)[0]
    assert t.error is None and t.format == ATOMTHINK and t.path[0] == 0
    assert "HISTORICAL REASONING STEPS" in eng.calls[0][0].messages[-1].content
    assert eng.calls[0][0].prefix == ""
    assert t.nodes[t.path[-1]].final and t.compute.generated_tokens > 0
    assert t.response == "".join(n.text for n in t.steps)


def test_eval_yaml_recipe_and_flag_take_the_style(tmp_path):
    import json

    from slowthink.evaluate.cli import app

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"q": f"What is {i} + {7 - i}?", "a": "7"}) + "\n" for i in range(3)))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"data: {data}\nfields: 'question=q,answer=a'\nstrategies: [quick]\n"
        "engine: 'py:tests.formats.test_atomthink_style:TwoStyleEngine'\n"
        "format: 'atomic#style=atomthink'\n"
    )
    out = tmp_path / "R"
    r = CliRunner().invoke(
        app, ["eval", "--config", str(recipe), "--out", str(out), "--no-progress", "--no-plots", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"][0]["accuracy"] == 1.0
    assert json.loads((out / "config.json").read_text())["identity"]["format"] == ATOMTHINK
    rec = json.loads((out / "records.jsonl").read_text().splitlines()[0])
    assert rec["trace"]["format"] == ATOMTHINK and rec["trace"]["response"].count("\n\n") == 3
    bad = CliRunner().invoke(
        app,
        [
            "eval",
            "--config",
            str(recipe),
            "--format",
            "atomic#style=atomthink,colour=red",
            "--out",
            str(tmp_path / "X"),
            "--no-progress",
        ],
    )
    assert bad.exit_code == 2 and "valid keys are style" in " ".join(bad.output.split())
