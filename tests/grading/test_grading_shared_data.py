"""Every gold answer of the shared benchmark files grades as correct against itself, as its
option letter, and when wrapped in a typical response; a different option grades wrong.

Problems are built straight from the raw records (not through the loaders) so this checks
grading alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slowthink.grading import extract_answer, grade
from slowthink.grading.choices import match_choice, parse_inline_choices
from slowthink.types import LETTERS, Problem


def _mathvista(root: Path) -> list[Problem]:
    data = json.loads((root / "mathvista" / "testmini.json").read_text())
    out = []
    for pid, r in data.items():
        kind = {"integer": "number", "float": "number", "list": "list"}.get(r["answer_type"], "auto")
        out.append(
            Problem(
                id=f"mathvista-{pid}",
                question=r["question"],
                choices=r["choices"] or None,
                answer=r["answer"],
                answer_type="choice" if r["choices"] else kind,
                precision=int(r["precision"]) if r["precision"] is not None else None,
            )
        )
    return out


def _mathv(root: Path) -> list[Problem]:
    out = []
    for line in (root / "math-v" / "testmini.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append(
            Problem(
                id=f"mathv-{r['id']}",
                question=r["question"],
                choices=r["options"] or None,
                answer=r["answer"],
                answer_type="choice" if r["options"] else "auto",
            )
        )
    return out


def _mathverse(root: Path) -> list[Problem]:
    data = json.loads((root / "mathverse" / "testmini_text_only.json").read_text())
    return [
        Problem(
            id=f"mathverse-{r['sample_index']}",
            question=r["question"],
            answer=r["answer"],
            answer_type="auto",
        )
        for r in data
    ]


def _gsm8k(root: Path) -> list[Problem]:
    lines = (root / "gsm8k" / "test.jsonl").read_text().splitlines()
    return [
        Problem(
            id=f"gsm8k-{i}",
            question=json.loads(x)["question"],
            answer=json.loads(x)["answer"],
            answer_type="number",
        )
        for i, x in enumerate(lines)
    ]


LOADERS = {"mathvista": _mathvista, "math-v": _mathv, "mathverse": _mathverse, "gsm8k": _gsm8k}


def _gold_letter(p: Problem) -> str | None:
    choices = p.choices or parse_inline_choices(p.question)
    if not choices:
        return None
    return match_choice(p.answer, choices, text_first=True)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_gold_grades_as_correct(name, shared_data, mv_worker):
    problems = LOADERS[name](shared_data)
    assert problems
    wrong = []
    for p in problems:
        gold = p.answer.rsplit("####", 1)[-1].strip()
        preds = [gold]
        if "\n" not in gold:  # a response states a one-line answer
            preds.append(f"Step 1: ...\nTo sum up, the final answer is: {gold}")
        if p.choices and any(
            match_choice(c, None) not in (None, LETTERS[i]) for i, c in enumerate(p.choices)
        ):
            # Options like ['(c)', '(a)', '(b)']: an answer '(b)' names option B, as in MathVista's
            # scorer, not the option whose text is '(b)' (see test_grade).
            continue
        for pred in preds:
            g = grade(pred, p)
            if not g.correct:
                wrong.append((p.id, pred[-60:], g))
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("name", ["mathvista", "math-v", "mathverse"])
def test_gold_letter_and_other_letters(name, shared_data):
    checked = 0
    for p in LOADERS[name](shared_data):
        letter = _gold_letter(p)
        choices = p.choices or parse_inline_choices(p.question)
        if letter is None or "," in letter:
            continue
        checked += 1
        assert grade(letter, p).correct, (p.id, letter)
        assert grade(f"The answer is ({letter}).", p).correct, p.id
        other = LETTERS[(LETTERS.index(letter) + 1) % len(choices)]
        same_text = choices[LETTERS.index(other)] == choices[LETTERS.index(letter)]  # MathVista 781: 18, 18
        assert grade(other, p).correct is same_text, (p.id, other)
    assert checked > 100


def test_gsm8k_solutions_extract_to_their_answer(shared_data):
    # The worked solution itself (with its '#### N' line) is a response whose answer is N.
    for p in _gsm8k(shared_data)[:300]:
        gold = p.answer.rsplit("####", 1)[-1].strip()
        assert extract_answer(p.answer, p) == gold, p.id
        assert grade(p.answer, p).correct, p.id
