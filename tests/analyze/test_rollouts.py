"""``--scorer rollouts``: each step scored by its Monte-Carlo rollout label from the data engine's
labeller, on a scripted policy whose completions' answers depend on the last step of the prefix, so
the per-capability scores are known by hand; one batched engine call, the cache, the CLI, bad input."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from slowthink.analyze import (
    RolloutScorer,
    RulesClassifier,
    analyze_capabilities,
    load_capabilities,
    parse_rollouts,
)
from slowthink.analyze.rollouts import CACHE, RolloutSettings, run_policy
from slowthink.cli import app
from slowthink.stats import wilson
from slowthink.types import Completion, SlowthinkError
from tests import doubles
from tests.analyze.runs import MODEL_A, write_run

CAPS = load_capabilities()
K = 4
#: Of K rollouts continuing a prefix that ends with this step, how many reach the gold answer 12.
RIGHT = {
    "Let x be the number of apples.": 3,
    "Add: 7 + 5 = 12.": 4,
    "Add: 7 + 6 = 12.": 1,
    "Add: 4 + 4 = 8.": 2,
    "Multiply 8 by 2 to get 16.": 0,
}
#: MODEL_A's steps by capability (rules) and their soft labels: a step's prefix INCLUDES the step;
#: a final "The answer is N." is graded itself (p1, p2: 12 right; p3: 16 wrong).
SOFT = {
    "calculation": [4 / K, 1 / K, 2 / K, 0 / K],
    "conclusion": [1.0, 1.0, 0.0],
    "variable_definition": [3 / K],
}
POLICY = "py:tests.analyze.test_rollouts:RolloutPolicy"


def last_step(prefix: str) -> str:
    """The prefix's last step, its ``Step k:`` label dropped (rollout prefixes keep the steps as
    the run wrote them: labelled or not)."""
    lines = [ln.strip() for ln in prefix.splitlines() if ln.strip()]
    return re.sub(r"^Step \d+:\s*", "", lines[-1]) if lines else ""


class RolloutPolicy(doubles.ScriptedEngine):
    """Sample i of a rollout answers 12 (right) when i < RIGHT[last step of the prefix], else 13."""

    def __init__(self) -> None:
        super().__init__(self.reply, name="rollout-policy")

    @staticmethod
    def reply(r, i):
        right = RIGHT.get(last_step(r.prefix), 0)  # an empty prefix (no step yet) never helps
        return (
            f"Step {doubles.steps_done(r.prefix) + 1}: Check it.\n{doubles.FINAL} {12 if i < right else 13}\n"
        )


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "model-a", MODEL_A)


def analyze(run, out, policy, **settings):
    scorer = RolloutScorer(policy, RolloutSettings(k=K, **settings))
    rules = RulesClassifier(CAPS)
    return analyze_capabilities([run], out, caps=CAPS, classifier=rules, scorer=scorer, plots=False)


def test_soft_rollout_scores_per_capability_in_one_engine_call(run, tmp_path):
    policy = RolloutPolicy()
    res = analyze(run, tmp_path / "out", policy)
    data = res.profile.to_dict()
    caps = data["runs"]["model-a"]["capabilities"]
    for name, labels in SOFT.items():
        assert caps[name]["steps"] == caps[name]["scored"] == len(labels)
        assert caps[name]["score"] == pytest.approx(sum(labels) / len(labels), abs=1e-4), name
        assert caps[name]["ci95"] == pytest.approx(list(wilson(sum(labels), len(labels))), abs=1e-4)
    assert caps["calculation"]["score"] == pytest.approx(0.4375)  # 7/16, by hand
    assert data["runs"]["model-a"]["all"]["score"] == pytest.approx(4.5 / 8)
    assert data["scorer"] == "rollouts#k=4,label=soft by rollout-policy"
    # every non-final prefix of every path in ONE engine call (p1: 2, p2: 1, p3: 2), k samples each
    assert len(policy.calls) == 1 and len(policy.calls[0]) == 5 and {r.n for r in policy.calls[0]} == {K}
    cost = data["scorer_cost"]
    assert (cost["paths"], cost["rolled_out"], cost["cached"], cost["calls"]) == (3, 3, 0, 1)


def test_hard_labels_and_a_rerun_come_from_the_cache(run, tmp_path):
    analyze(run, tmp_path / "out", RolloutPolicy())
    again = RolloutPolicy()
    res = analyze(run, tmp_path / "out", again, label="hard")
    assert again.calls == []  # nothing rolled out again, whatever the label
    caps = res.profile.to_dict()["runs"]["model-a"]["capabilities"]
    assert caps["calculation"]["score"] == pytest.approx(3 / 4)  # 4, 1, 2 of 4 right: any; 0: none
    assert caps["variable_definition"]["score"] == 1.0
    assert caps["conclusion"]["score"] == pytest.approx(2 / 3, abs=1e-4)
    assert res.profile.scorer_cost["cached"] == 3 and res.profile.scorer_cost["rolled_out"] == 0
    other = RolloutPolicy()
    analyze(run, tmp_path / "out", other, seed=7)  # other rollout settings are not the cached ones
    assert len(other.calls) == 1


def test_a_failing_policy_leaves_steps_unscored_and_uncached(run, tmp_path):
    policy = doubles.ScriptedEngine(lambda r, i: Completion("", finish_reason="error", error="down"))
    res = analyze(run, tmp_path / "out", policy)
    assert res.profile.to_dict()["runs"]["model-a"]["all"]["scored"] == 0
    assert res.profile.scorer_cost["failed"] == 3
    assert (tmp_path / "out" / CACHE).read_text() == ""


@pytest.mark.parametrize(
    "spec, problem",
    [
        ("rollouts#k=0", "k and max_tokens must be >= 1"),
        ("rollouts#label=medium", "label must be soft or hard"),
        ("rollouts#depth=3", "has no option 'depth'; valid: k, label, max_tokens, seed, temperature"),
        ("rollouts#k=two", "k must be int"),
        ("rollouts#k", "write key=value pairs"),
    ],
)
def test_bad_rollout_options_are_one_error(spec, problem):
    with pytest.raises(SlowthinkError, match=re.escape(problem)):
        parse_rollouts(spec)


def test_the_policy_defaults_to_the_runs_engine(run, tmp_path):
    assert run_policy([run]) == ("llamacpp", {})  # no config.json: the embedded model
    cfg = {"config": {"engine": "llamacpp", "model": "m.gguf", "engine_options": {"n_ctx": 2048}}}
    (run / "config.json").write_text(json.dumps(cfg))
    assert run_policy([run]) == ("llamacpp:m.gguf", {"n_ctx": 2048})
    other = write_run(tmp_path / "model-b", MODEL_A[:1])
    with pytest.raises(SlowthinkError, match="different engines"):
        run_policy([run, other])


def test_cli_rollouts_with_the_runs_engine_and_with_policy(run, tmp_path):
    (run / "config.json").write_text(json.dumps({"config": {"engine": POLICY, "model": None}}))
    out = tmp_path / "cap"
    args = ["analyze", "capabilities", str(run), "--scorer", f"rollouts#k={K},label=soft", "-o", str(out)]
    r = CliRunner().invoke(app, [*args, "--no-plots"])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "capabilities.json").read_text())
    assert data["runs"]["model-a"]["capabilities"]["calculation"]["score"] == pytest.approx(0.4375)
    assert len((out / CACHE).read_text().splitlines()) == 3
    r = CliRunner().invoke(
        app, [*args, "--no-plots", "--policy", POLICY, "--scorer", "rollouts#k=4,label=hard"]
    )
    assert r.exit_code == 0, r.output
    data = json.loads((out / "capabilities.json").read_text())
    assert (
        data["scorer"] == "rollouts#k=4,label=hard by rollout-policy" and data["scorer_cost"]["cached"] == 3
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scorer", "rollouts#k=0"], "k and max_tokens must be >= 1"),
        (["--scorer", "rollouts#colour=red"], "has no option 'colour'"),
        (["--policy", POLICY], "--policy is the rollout policy: use it with --scorer rollouts"),
        (["--scorer", "rollouts", "--policy", "nosuch:engine"], "unknown engine 'nosuch'"),
    ],
)
def test_cli_bad_rollout_input_is_one_line_and_exit_2(run, tmp_path, args, message):
    r = CliRunner().invoke(app, ["analyze", "capabilities", str(run), *args, "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and message in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
