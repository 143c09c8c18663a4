"""MM-Vet's grader (slowthink.grading.mmvet) on the scripted engine: the published prompt, the score
parse, VLMEvalKit's retries (temperature 0.5 * attempt, 5 attempts, then 0.0), one engine call per
attempt round."""

from __future__ import annotations

from slowthink.grading.mmvet import MMVetGrader, MMVetItem, mmvet_prompt, parse_mmvet_score
from slowthink.prompts import get_template
from tests.doubles import ScriptedEngine


def last_row(request) -> str:
    return request.messages[-1].content.splitlines()[-1]


def test_prompt_is_mmvets_table_with_the_item_as_last_row():
    text = mmvet_prompt(MMVetItem("How many?", "2<AND>two", "two"))
    head = get_template("grading.mmvet.prompt")
    assert text.startswith(head) and text.startswith(
        "\nCompare the ground truth and prediction from AI models"
    )
    assert "What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0" in head
    assert "The correctness score is 0.0 (totally wrong), 0.1, 0.2" in head
    assert text.endswith("\nHow many? | 2 <AND> two | two | ")


def test_parse_score():
    assert [parse_mmvet_score(t) for t in ["0.7", "1", "0", " 0.3 \n", "-0.1", "1.01", "0.5.", "inf"]] == [
        0.7,
        1.0,
        0.0,
        0.3,
        None,
        None,
        None,
        None,
    ]


def test_grades_retry_unparseable_replies_then_score_zero():
    def reply(r, i):
        row = last_row(r)
        if "| never |" in row:
            return "The prediction is half right."  # never a bare number
        if "| late |" in row:
            return "0.8" if r.temperature >= 1.0 else "eight tenths"  # parses at attempt 2
        return "0.2"

    engine = ScriptedEngine(reply)
    items = [MMVetItem("q1", "a", "late"), MMVetItem("q2", "a", "fine"), MMVetItem("q3", "a", "never")]
    grades = MMVetGrader(engine).grade(items)
    assert [g.score for g in grades] == [0.8, 0.2, 0.0]
    assert [g.tries for g in grades] == [3, 1, 5]
    assert [g.parsed for g in grades] == [True, True, False]
    assert grades[2].log.count("failed to parse") == 5 and grades[2].log.endswith("All 5 retries failed.\n")
    # one call per attempt round, only the items still unscored, temperatures 0, 0.5, 1.0, 1.5, 2.0
    assert [len(c) for c in engine.calls] == [3, 2, 2, 1, 1]
    assert [c[0].temperature for c in engine.calls] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert all(r.messages[0].role == "user" and len(r.messages) == 1 for c in engine.calls for r in c)


def test_a_failing_engine_scores_zero_and_does_not_raise():
    class Down:
        calls = 0

        def generate(self, requests):
            type(self).calls += 1
            raise ConnectionError("server down")

    grades = MMVetGrader(Down(), tries=2).grade([MMVetItem("q", "a", "p")])
    assert grades[0].score == 0.0 and not grades[0].parsed and "ConnectionError" in grades[0].log
    assert Down.calls == 2
