"""The LLM grading judge: which answers it sees, parsing, batching, and the eval integration."""

from __future__ import annotations

import json
import re

import pytest

from slowthink.engines.base import RecordingEngine
from slowthink.evaluate import EvalConfig, run_eval
from slowthink.grading import AnswerJudge, grade, grade_all, judge_eligible
from slowthink.grading.judge import parse_judgement
from slowthink.types import Completion, Problem
from tests.doubles import ScriptedEngine

SAME = {("two", "2"), ("an isosceles triangle", "isosceles triangle"), ("right angle", "90 degrees")}


class JudgeDouble(ScriptedEngine):
    """Says 1 for the pairs in SAME, 0 otherwise, 'maybe' for a prediction holding GARBLE."""

    def __init__(self) -> None:
        super().__init__(self.judgement, name="judge-double")

    @staticmethod
    def judgement(r, i: int) -> Completion:
        user = r.messages[-1].content
        gold = re.search(r"Reference answer: (.*)", user)[1].strip()
        pred = re.search(r"Student's final answer: (.*)", user)[1].strip()
        assert r.prefix == "Judgement:" and r.temperature == 0.0
        text = " maybe" if "GARBLE" in pred else (" 1" if (pred, gold) in SAME else " 0")
        return Completion(text=text, finish_reason="stop", prompt_tokens=50, generated_tokens=1)


def P(answer, **kw):
    return Problem(id=kw.pop("id", "p"), question="What is it?", answer=answer, **kw)


def test_parse_judgement():
    assert [parse_judgement(t) for t in [" 1", " 0", "1\n", "[0]", " 2", "one", "", "  10"]] == [
        True,
        False,
        True,
        False,
        None,
        None,
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("pred", "gold", "choices", "eligible"),
    [
        ("an isosceles triangle", "isosceles triangle", None, True),  # string
        ("two", "2", None, True),  # words for a number
        ("3", "2", None, False),  # a numeric mismatch: the rules are exact
        ("(1, 2)", "(1,2,3)", None, True),  # list
        ("B", "A", ["1", "2"], False),  # multiple choice never
        ("2", "2", None, False),  # already right
        (None, "2", None, False),  # no answer
    ],
)
def test_which_answers_the_judge_sees(pred, gold, choices, eligible):
    p = P(gold, choices=choices) if choices else P(gold)
    assert judge_eligible(grade(pred, p), pred, p) is eligible


def test_grade_all_batches_and_records_the_deciding_path():
    eng = RecordingEngine(JudgeDouble())
    items = [
        ("two", P("2", id="a")),
        ("an isosceles triangle", P("isosceles triangle", id="b")),
        ("3", P("2", id="c")),
        ("a square", P("isosceles triangle", id="d")),
        ("GARBLE", P("isosceles triangle", id="e")),
        ("7", P("7", id="f")),
    ]
    grades = grade_all(items, AnswerJudge(eng))
    assert eng.n_calls == 1 and eng.calls[0].n_requests == 4  # c (numeric) and f (right) not sent
    assert [g.correct for g in grades] == [True, True, False, False, False, True]
    assert [g.method for g in grades] == ["llm_judge", "llm_judge", "number", "llm_judge", "string", "number"]
    assert "rules (number) said wrong" in grades[0].note
    assert "unusable" in grades[4].note  # an unparseable reply keeps the rules' verdict, and says so
    assert grade_all(items) == [grade(a, p) for a, p in items]  # no judge: rules only


def test_a_failing_judge_engine_keeps_the_rules():
    def down(r, i: int) -> Completion:
        raise ConnectionError("server down")

    g = grade_all([("two", P("2"))], AnswerJudge(ScriptedEngine(down, name="broken")))[0]
    assert g.correct is False and g.method == "number" and "server down" in g.note


def test_eval_with_a_grade_judge_regrades_and_resumes(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"q": "What is 1 + 1?", "a": "2"}, {"q": "Name the triangle.", "a": "isosceles triangle"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def in_words(r, i: int) -> Completion:
        """Answers in words, which the rules cannot read."""
        words = {"What is 1 + 1?": "two", "Name the triangle.": "an isosceles triangle"}
        q = next(w for k, w in words.items() if k in r.messages[-1].content)
        return Completion(text=f"The answer is {q}.", finish_reason="stop", generated_tokens=5)

    def policy() -> ScriptedEngine:
        return ScriptedEngine(in_words, name="words")

    cfg = dict(
        data=str(data),
        fields="question=q,answer=a",
        strategies=["majority"],
        ns=[1, 2],
        format="free",
        out=str(tmp_path / "run"),
    )
    plain = run_eval(EvalConfig(**cfg), engine=policy(), progress=False, plots=False)
    assert [r["accuracy"] for r in plain.rows] == [0.0, 0.0]
    judge = RecordingEngine(JudgeDouble())
    judged = run_eval(EvalConfig(**cfg, grade_judge="policy"), engine=judge, progress=False, plots=True)
    assert "LLM grading judge" in (tmp_path / "run" / "report.html").read_text()
    assert [r["accuracy"] for r in judged.rows] == [1.0, 1.0]
    assert judge.n_calls == 1 and judge.calls[0].n_requests == 2  # distinct answers, one batched call
    g = judged.metrics["grading"]
    assert (g["judged"], g["judge_said_same"], g["judge_calls_this_run"]) == (2, 2, 1)
    stored = [json.loads(x) for x in (tmp_path / "run" / "grade_judge.jsonl").read_text().splitlines()]
    assert {s["answer"] for s in stored} == {"two", "an isosceles triangle"}
    other = run_eval(
        EvalConfig(
            **{**cfg, "out": str(tmp_path / "other")},
            grade_judge="py:tests.grading.test_grading_judge:JudgeDouble",
        ),
        engine=policy(),
        progress=False,
        plots=False,
    )  # a judge engine of its own
    assert [r["accuracy"] for r in other.rows] == [1.0, 1.0] and other.metrics["grading"]["judged"] == 2
    again = RecordingEngine(JudgeDouble())
    resumed = run_eval(EvalConfig(**cfg, grade_judge="policy"), engine=again, progress=False, plots=False)
    assert again.n_calls == 0 and [r["accuracy"] for r in resumed.rows] == [1.0, 1.0]
