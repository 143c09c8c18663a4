"""Text helpers of the data engine: the deterministic atomic split, numbers, step labels, JSON repair.

Everything here is pure and never raises on model output.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from slowthink.grading import is_refusal
from slowthink.prompts import get_template

FINAL_MARKER = get_template("atomic.final_marker")
_CALC_NOTE = re.compile(r"<<[^<>]*>>")
_STEP_LABEL = re.compile(r"^\s*\**\s*Step\s*\d+\s*\**\s*[:.]\s*\**\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'$])")
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?|(?<![\w\d])\.\d+")
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
#: A step that states the answer (the atomic format's final-answer cues).
_FINAL = re.compile(r"(?:final answer is|the answer is)\s*:?\s*(.*)", re.IGNORECASE | re.DOTALL)
_DECLINE = re.compile(
    r"\b(?:I'?m sorry|I am sorry|I (?:can ?not|can't|am unable to|'m unable to|won't) "
    r"(?:help|assist|answer|provide|identify|recognize|recognise|comply|do that))",
    re.IGNORECASE,
)


def declines(text: str) -> bool:
    """Whether a teacher reply is a refusal: an assistant declining ("I'm sorry, I can't help"), or an
    answer that declines (grading's :func:`~slowthink.grading.is_refusal`: "cannot be determined").

    >>> declines("I'm sorry, I cannot help with that."), declines("Cannot be determined."), declines("7")
    (True, True, False)
    """

    head = text.strip()[:300]
    return bool(_DECLINE.search(head)) or is_refusal(head)


def strip_calculator_notes(text: str) -> str:
    """GSM8K's ``<<48/2=24>>`` calculator notes removed.

    >>> strip_calculator_notes("She sold 48/2 = <<48/2=24>>24 clips.")
    'She sold 48/2 = 24 clips.'
    """
    return _CALC_NOTE.sub("", text)


def strip_label(step: str) -> str:
    """A step without its ``Step k:`` label (and markdown bold around it).

    >>> strip_label("**Step 2:** add them"), strip_label("no label")
    ('add them', 'no label')
    """
    return _STEP_LABEL.sub("", step, count=1).strip()


def label_steps(steps: list[str]) -> list[str]:
    """``Step 1: ...``, ``Step 2: ...`` whatever labels the steps had."""
    return [f"Step {i}: {strip_label(s)}" for i, s in enumerate(steps, 1)]


def final_step(answer: str, number: int) -> str:
    return f"Step {number}: {FINAL_MARKER} {answer.strip()}"


def final_answer_of(steps: list[str]) -> str | None:
    """The answer of a chain: what follows ``final answer is`` / ``the answer is`` in its last step
    that has it.

    >>> final_answer_of(["Step 1: 3 + 4 = 7", "Step 2: To sum up, the final answer is: 7."]), final_answer_of(["The answer is 9"])
    ('7', '9')
    """
    for step in reversed(steps):
        m = _FINAL.search(step)
        if m:
            ans = m.group(1).strip().rstrip(".").strip()
            return ans or None
    return None


def split_solution(solution: str) -> tuple[list[str], str | None]:
    """The deterministic atomic split of a worked solution: one step per sentence (lines first,
    then sentence ends), calculator notes dropped, labels removed; and the answer after ``####``.

    >>> split_solution("Natalia sold 48/2 = <<48/2=24>>24 clips in May. So 48+24 = 72 in all.\\n#### 72")
    (['Natalia sold 48/2 = 24 clips in May.', 'So 48+24 = 72 in all.'], '72')
    """
    text = strip_calculator_notes(solution)
    answer = None
    if "####" in text:
        text, _, tail = text.rpartition("####")
        answer = tail.strip().replace(",", "") or None
    pieces: list[str] = []
    for line in text.splitlines():
        for sentence in _SENTENCE_END.split(line):
            s = strip_label(sentence)
            if s and not _FINAL.search(s):
                pieces.append(s)
            elif s and answer is None:
                answer = final_answer_of([s])
    return pieces, answer


def numbers_in(text: str) -> set[str]:
    """The numbers of ``text``, normalised (``1,000`` -> ``1000``, ``2.50`` -> ``2.5``, ``3.0`` -> ``3``).

    >>> sorted(numbers_in("Pay $1,000.50 for 3.0 kg, or .5 each; 2.50 total"))
    ['0.5', '1000.5', '2.5', '3']
    """
    out: set[str] = set()
    for m in _NUMBER.finditer(strip_calculator_notes(text)):
        raw = m.group(0).replace(",", "")
        try:
            d = Decimal(raw)
        except InvalidOperation:
            continue
        if abs(d.adjusted()) > 60:  # not a quantity anyone writes out; keep it as text
            out.add(raw)
            continue
        norm = format(d.normalize(), "f")
        out.add(norm if norm != "-0" else "0")
    return out


def missing_numbers(source: str, steps: list[str]) -> list[str]:
    """Numbers of ``source`` that no step mentions (step labels do not count), sorted."""
    present = numbers_in("\n".join(strip_label(s) for s in steps))
    return sorted(numbers_in(source) - present)


@dataclass(frozen=True)
class StepReply:
    """One parsed reply of the dynamic-prompting teacher."""

    content: str
    action: str
    repaired: str | None = None
    """What was repaired to read it (``None``: valid JSON as sent)."""


def parse_step_reply(text: str, actions: tuple[str, ...]) -> tuple[StepReply | None, str | None]:
    """Read ``{"content": ..., "next_action": ...}`` from a teacher reply, repairing what is cheap to
    repair (code fences, text around the object, trailing commas, single quotes, a missing closing
    brace, an unknown action's case); ``(None, reason)`` when it cannot be read.

    >>> parse_step_reply('```json\\n{"content": "Step 1: 2+2=4", "next_action": "Continue",}\\n```', ("continue",))
    (StepReply(content='Step 1: 2+2=4', action='continue', repaired='code fence; trailing comma'), None)
    >>> parse_step_reply("I think the answer is 4", ("continue",))
    (None, 'no JSON object in the reply')
    """
    repairs: list[str] = []
    body = text.strip()
    fence = _FENCE.search(body)
    if fence:
        body = fence.group(1).strip()
        repairs.append("code fence")
    start = body.find("{")
    if start < 0:
        return None, "no JSON object in the reply"
    end = body.rfind("}")
    if end < start:
        body = body[start:] + "}"
        repairs.append("closing brace")
    else:
        if start > 0 or end < len(body) - 1:
            repairs.append("text around the object")
        body = body[start : end + 1]
    obj = _loads(body)
    if obj is None and _TRAILING_COMMA.search(body):
        body = _TRAILING_COMMA.sub(r"\1", body)
        repairs.append("trailing comma")
        obj = _loads(body)
    if obj is None and '"' not in body and "'" in body:
        body = body.replace("'", '"')
        repairs.append("single quotes")
        obj = _loads(body)
    if obj is None:
        return None, "malformed JSON"
    content = obj.get("content")
    action = obj.get("next_action", obj.get("action"))
    if not isinstance(content, str) or not content.strip():
        return None, "JSON without a 'content' step"
    if not isinstance(action, str):
        return None, "JSON without a 'next_action'"
    act = action.strip().lower().replace(" ", "_")
    if act not in actions:
        return None, f"unknown next_action {action[:40]!r}"
    return StepReply(content.strip(), act, "; ".join(repairs) or None), None


def _loads(body: str) -> dict | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None
