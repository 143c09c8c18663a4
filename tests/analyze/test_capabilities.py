"""The capability analysis: rules classifier agreement with a hand-labelled fixture, the LLM
classifier's prompt and reply parsing (scripted engine), outcome and step-scorer profiles on a
synthetic run folder with known answers, the files written, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slowthink.analyze import (
    LLMClassifier,
    RulesClassifier,
    analyze_capabilities,
    load_capabilities,
    parse_capabilities,
    parse_labels,
    run_steps,
)
from slowthink.cli import app
from slowthink.scorers import ScoreQuery, ScoreResult, load_scorer
from slowthink.stats import wilson
from slowthink.types import SlowthinkError
from tests import doubles
from tests.analyze.labelled import LABELLED
from tests.analyze.runs import MODEL_A, write_run

CAPS = load_capabilities()


def test_default_set_has_the_atomthink_capabilities():
    assert set(CAPS.names) == {
        "image_recognition",
        "variable_definition",
        "calculation",
        "formula_application",
        "logical_deduction",
        "knowledge_recall",
        "verification",
        "conclusion",
    }
    assert all(c.description and (c.keywords or c.patterns) for c in CAPS.capabilities)


def test_fixture_covers_every_capability_and_rules_agree():
    assert len(LABELLED) >= 20 and {label for _, label in LABELLED} == set(CAPS.names)
    rules = RulesClassifier(CAPS)
    got = rules.classify([t for t, _ in LABELLED]).labels
    agree = sum(g == want for g, (_, want) in zip(got, LABELLED)) / len(LABELLED)
    assert agree >= 0.9, [(t, w, g) for g, (t, w) in zip(got, LABELLED) if g != w]
    assert got == rules.classify([t for t, _ in LABELLED]).labels  # deterministic


def test_rules_give_the_default_to_a_step_without_any_cue():
    assert RulesClassifier(CAPS).label("Hmm.") == CAPS.default


def test_an_edited_capability_set_is_used(tmp_path):
    f = tmp_path / "caps.yaml"
    f.write_text(
        "default: other\ncapabilities:\n  - name: counting\n    description: counts\n"
        "    keywords: [count]\n  - name: other\n    description: the rest\n"
    )
    caps = load_capabilities(f)
    assert RulesClassifier(caps).classify(["Count the apples.", "Hmm."]).labels == ["counting", "other"]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("capabilities: [", "not valid YAML"),
        ("capabilities: []", "non-empty 'capabilities'"),
        ("capabilities:\n  - name: a b\n", "needs a 'name'"),
        ("capabilities:\n  - name: a\n    patterns: ['(']\n", "bad pattern"),
        ("capabilities:\n  - name: a\n    colour: red\n", "unknown field"),
        ("capabilities:\n  - name: a\n  - name: a\n", "unique"),
        ("default: z\ncapabilities:\n  - name: a\n", "default 'z'"),
    ],
)
def test_a_bad_capability_set_is_one_error(text, problem):
    with pytest.raises(SlowthinkError, match=re.escape(problem)):
        parse_capabilities(text, "x.yaml")


def test_reply_parsing_is_robust():
    reply = "1: calculation\n[2] Verification\n3. logical deduction\nStep 4: `conclusion`\n5: juggling\n"
    assert parse_labels(reply, 6, CAPS) == [
        "calculation",
        "verification",
        "logical_deduction",
        "conclusion",
        None,
        None,
    ]
    assert parse_labels("I cannot tell.", 2, CAPS) == [None, None]


def scripted_labeller(truth: dict[str, str], *, garble: int | None = None):
    """Replies with the true label of each numbered step of the prompt (garbled for batch ``garble``)."""

    def reply(r, i):
        steps = re.findall(r"^\[(\d+)\] (.*)$", r.messages[-1].content, re.MULTILINE)
        if garble is not None and r.tag == garble:
            return "Sorry, here are my thoughts instead."
        return "\n".join(f"{k}: {truth[t]}" for k, t in steps)

    return reply


def test_llm_classifier_batches_in_one_call_and_parses_its_prompt_reply():
    truth = dict(LABELLED)
    engine = doubles.ScriptedEngine(scripted_labeller(truth))
    texts = [t for t, _ in LABELLED]
    out = LLMClassifier(CAPS, engine, batch=8).classify(texts)
    assert out.labels == [truth[t] for t in texts] and out.fallbacks == 0
    assert len(engine.calls) == 1 and len(engine.calls[0]) == 4  # 25 steps, 8 per request, one call
    prompt = engine.calls[0][0].messages[-1].content
    assert all(f"- {c.name}: {c.description}" in prompt for c in CAPS.capabilities)
    assert engine.calls[0][0].temperature == 0.0


def test_llm_classifier_falls_back_to_rules_on_a_malformed_reply_and_counts_it():
    truth = dict(LABELLED)
    texts = [t for t, _ in LABELLED]
    engine = doubles.ScriptedEngine(scripted_labeller(truth, garble=8))  # the second batch
    out = LLMClassifier(CAPS, engine, batch=8).classify(texts)
    assert out.fallbacks == 8
    assert out.labels[8:16] == RulesClassifier(CAPS).classify(texts[8:16]).labels


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(tmp_path / "model-a", MODEL_A)


def test_steps_are_the_chosen_paths(run):
    steps = run_steps(run)
    assert [s.text for s in steps][:3] == [
        "Let x be the number of apples.",
        "Add: 7 + 5 = 12.",
        "The answer is 12.",
    ]
    assert len(steps) == 8 and all("unchosen" not in s.text for s in steps)
    assert steps[2].history == ("Let x be the number of apples.", "Add: 7 + 5 = 12.")


def test_outcome_scores_on_a_run_with_known_answers(run, tmp_path):
    res = analyze_capabilities([run], tmp_path / "out", caps=CAPS, classifier=RulesClassifier(CAPS))
    caps = res.profile.to_dict()["runs"]["model-a"]["capabilities"]
    assert caps["calculation"]["steps"] == 4 and caps["calculation"]["score"] == 0.25
    assert caps["calculation"]["ci95"] == pytest.approx(list(wilson(1, 4)), abs=1e-4)
    assert caps["conclusion"]["steps"] == 3 and caps["conclusion"]["score"] == pytest.approx(1 / 3, abs=1e-4)
    assert caps["variable_definition"] == {
        "steps": 1,
        "share": 0.125,
        "scored": 1,
        "score": 1.0,
        "ci95": pytest.approx(list(wilson(1, 1)), abs=1e-4),
    }
    assert caps["image_recognition"]["steps"] == 0 and caps["image_recognition"]["score"] is None


class TextScorer:
    """A step scorer double: 0.2 for a step with a wrong sum, 0.9 otherwise."""

    name = "text-prm"

    def __init__(self):
        self.queries: list[ScoreQuery] = []

    def score(self, queries):
        self.queries += queries
        return [
            ScoreResult([0.2 if "7 + 6" in s or "4 + 4 = 8" in s else 0.9 for s in q.steps]) for q in queries
        ]


def test_step_scorer_profile_is_the_mean_step_score(run, tmp_path):
    scorer = TextScorer()
    res = analyze_capabilities(
        [run], tmp_path / "out", caps=CAPS, classifier=RulesClassifier(CAPS), scorer=scorer, plots=False
    )
    assert len(scorer.queries) == 3 and scorer.queries[0].steps[0] == "Let x be the number of apples."
    caps = res.profile.to_dict()["runs"]["model-a"]["capabilities"]
    assert caps["calculation"]["score"] == pytest.approx((0.9 + 0.2 + 0.2 + 0.9) / 4, abs=1e-4)
    assert res.profile.to_dict()["scorer"] == "text-prm"
    assert res.profile.weakest("model-a") == "calculation"


def test_cli_writes_json_tables_and_plots_for_two_runs(run, tmp_path):
    other = write_run(tmp_path / "model-b", [("p1", ["Add: 7 + 5 = 12.", "The answer is 12."], "12", True)])
    out = tmp_path / "cap"
    r = CliRunner().invoke(app, ["analyze", "capabilities", str(run), str(other), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "model-a: 8 steps, weakest capability: calculation" in r.output
    data = json.loads((out / "capabilities.json").read_text())
    assert list(data["runs"]) == ["model-a", "model-b"] and data["classifier"] == "rules"
    assert data["runs"]["model-b"]["all"]["score"] == 1.0
    for png in ("capabilities_bar.png", "capabilities_radar.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| calculation | 4 | 0.25 [" in (out / "capabilities.md").read_text()
    assert "<table>" in (out / "capabilities.html").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["nowhere"], "no records.jsonl in nowhere"),
        (["RUN", "--scorer", "oracle"], "unknown scorer 'oracle'"),
        (["RUN", "--capabilities", "missing.yaml"], "cannot read capability set missing.yaml"),
        (["RUN", "--classifier", "nosuch:engine"], "unknown engine 'nosuch'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run, tmp_path, args, message):
    args = [str(run) if a == "RUN" else a for a in args]
    r = CliRunner().invoke(app, ["analyze", "capabilities", *args, "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and message in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_run_without_steps_is_an_error(tmp_path):
    empty = write_run(tmp_path / "empty", [])
    with pytest.raises(SlowthinkError, match="no reasoning step"):
        analyze_capabilities([empty], tmp_path / "o", caps=CAPS, classifier=RulesClassifier(CAPS))


def test_llm_classifier_fallbacks_and_cost_reach_the_profile(run, tmp_path):
    engine = doubles.ScriptedEngine(lambda r, i: "1: variable definition\n2: nonsense")
    res = analyze_capabilities(
        [run], tmp_path / "o", caps=CAPS, classifier=LLMClassifier(CAPS, engine, batch=3), plots=False
    )
    data = res.profile.to_dict()
    assert data["classifier_fallbacks"] == 8 - 3  # one known label per request of 3, 3, 2 steps
    assert data["classifier_cost"]["calls"] == 1 and data["classifier_cost"]["prompt_tokens"] == 30
    assert data["runs"]["model-a"]["capabilities"]["variable_definition"]["steps"] == 3


def test_two_runs_with_one_name_are_an_error(run, tmp_path):
    twin = write_run(tmp_path / "elsewhere" / "model-a", [("p1", ["The answer is 12."], "12", True)])
    with pytest.raises(SlowthinkError, match="share a name"):
        analyze_capabilities([run, twin], tmp_path / "o", caps=CAPS, classifier=RulesClassifier(CAPS))


def test_judge_scorer_profile_counts_unscored_steps(run, tmp_path):
    def reply(r, i):
        step = r.messages[-1].content.split("Latest step:\n", 1)[1].splitlines()[0]
        return (
            " perhaps" if "Multiply" in step else (" Yes" if "7 + 5" in step or "answer" in step else " No")
        )

    judge = load_scorer("judge", engine=doubles.ScriptedEngine(reply))
    res = analyze_capabilities(
        [run], tmp_path / "o", caps=CAPS, classifier=RulesClassifier(CAPS), scorer=judge, plots=False
    )
    calc = res.profile.to_dict()["runs"]["model-a"]["capabilities"]["calculation"]
    assert (calc["steps"], calc["scored"]) == (4, 3) and calc["score"] == pytest.approx(1 / 3, abs=1e-4)
