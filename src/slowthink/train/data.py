"""The training record formats of ``slowthink train``: what the data engine writes, what the trainers read.

Files are JSON Lines (one record per line) or a JSON list. Image paths are absolute or relative to
the data file's folder. Every record may carry any other field (``meta``, scores, ...): it is ignored.

**SFT, LLaVA conversation layout** (LLaVA-CoT's and LLaVA's ``sharegpt`` files, AtomThink's AMATH-SFT)::

    {"id": "p1", "image": "img/p1.png",                  # or a list of paths, or absent
     "conversations": [
        {"from": "system", "value": "..."},              # optional
        {"from": "human", "value": "<image>\\nWhat is ...?"},
        {"from": "gpt", "value": "<SUMMARY>...</SUMMARY> ... <CONCLUSION>B</CONCLUSION>"}]}

``from`` is ``system`` | ``human`` (or ``user``) | ``gpt`` (or ``assistant``); turns alternate
human/gpt and end with a gpt turn; every gpt turn is trained. ``<image>`` marks where an image goes
(its marker is removed; a human turn's images come before its text, the model's own image tokens
are inserted by its chat template); images with no marker go to the first human turn. The number of
``<image>`` markers may not exceed the number of images.

**SFT, AtomThink per-step layout** (one record per atomic step: history state -> next action)::

    {"id": "p1#3", "question": "What is 2 + 3 * 4?", "image": "img/p1.png",   # image optional
     "choices": ["12", "14"],                               # optional, multiple choice
     "history": ["Step 1: ...", "Step 2: ..."],            # the steps before, in order ([] first)
     "step": "Step 3: 2 + 12 = 14.",                        # the step to learn
     "format": "atomic#style=atomthink"}                    # optional; this is the default

The prompt is exactly the one the ``format`` sends at inference for the next step
(:meth:`slowthink.formats.base.Format.step_request`): with ``atomic#style=atomthink`` the user
turn holds the question and the historical steps and the step is a fresh assistant turn; with
``atomic`` (line style) the assistant turn is continued, the history is a masked prefix of it.
Only the step (and the end-of-turn token that follows it) is trained.

**PRM, stepwise layout** (TRL's stepwise supervision, plus ``id``, images and soft labels)::

    {"id": "p1#0", "prompt": "What is 2 + 3 * 4?",          # the question (not a rendered prompt)
     "image": "img/p1.png", "choices": [...],               # optional
     "completions": ["Step 1: 3 * 4 = 12.", "Step 2: 2 + 12 = 15."],
     "labels": [true, false]}                               # or probabilities in [0, 1] (soft)

One label per completion step: ``true``/``1`` good, ``false``/``0`` bad, a float in between is a
soft label (Math-Shepherd's completion rate). The PRM's input is built exactly as the scorer
builds it at inference (:class:`slowthink.scorers.prm.PRMScorer`), from the question, images and steps.

A record in the wrong layout, a missing label or step, or an image that is not there is one
:class:`~slowthink.types.SlowthinkError` naming the file, the line and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slowthink.formats import get_format
from slowthink.images import check_image
from slowthink.types import Message, Problem, SlowthinkError

IMAGE_MARK = "<image>"
ATOMIC_FORMAT = "atomic#style=atomthink"
"""The format of an AtomThink per-step record without ``format``."""
ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
LAYOUTS = ("conversations", "atomic_step", "stepwise")


@dataclass
class ChatExample:
    """One SFT example: chat messages; every assistant message is trained except its first
    ``prefix`` characters of the last one (an assistant turn continued from history)."""

    id: str
    messages: list[Message]
    prefix: str = ""
    """Masked text that opens the last assistant message (the ``atomic`` line style's history)."""

    @property
    def images(self) -> list[str]:
        return [i for m in self.messages for i in m.images]


@dataclass
class StepExample:
    """One PRM example: a problem, its steps, and a label in [0, 1] per step (1 = good)."""

    problem: Problem
    steps: list[str]
    labels: list[float] = field(default_factory=list)


def read_records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of a JSON Lines file or a JSON list; bad JSON is one clear error."""
    p = Path(path)
    if not p.is_file():
        raise SlowthinkError(f"training data not found: {p} (pass --data FILE.jsonl)")
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise SlowthinkError(f"{p}: not valid JSON ({e}); write JSON Lines or one JSON list") from e
        out = list(enumerate(items, 1))
    else:
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise SlowthinkError(f"{p}:{n}: not valid JSON ({e.msg}); one JSON object per line") from e
    if not out:
        raise SlowthinkError(f"{p}: no records (the training data is empty)")
    for n, rec in out:
        if not isinstance(rec, dict):
            raise SlowthinkError(f"{p}:{n}: a record must be a JSON object, got {type(rec).__name__}")
    return out


def layout_of(record: dict[str, Any]) -> str | None:
    """Which layout a record is in (:data:`LAYOUTS`), or None."""
    if "conversations" in record:
        return "conversations"
    if "question" in record and "step" in record:
        return "atomic_step"
    if "prompt" in record and "completions" in record:
        return "stepwise"
    return None


def _images(record: dict[str, Any], base: Path, where: str) -> list[str]:
    raw = record.get("images", record.get("image"))
    if raw in (None, "", []):
        return []
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise SlowthinkError(f"{where}: 'image' must be a path or a list of paths")
    out = []
    for item in items:
        path = Path(item) if Path(item).is_absolute() else base / item
        out.append(check_image(path, fix=f"{where}: image paths are relative to the data file's folder"))
    return out


def _text(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SlowthinkError(f"{where}: '{name}' must be a non-empty string")
    return value


def _problem(record: dict[str, Any], question_key: str, where: str, base: Path) -> Problem:
    choices = record.get("choices")
    if choices is not None and not (isinstance(choices, list) and all(isinstance(c, str) for c in choices)):
        raise SlowthinkError(f"{where}: 'choices' must be a list of strings")
    return Problem(
        id=str(record.get("id", where)),
        question=_text(record.get(question_key), question_key, where),
        images=_images(record, base, where),
        choices=choices,
    )


def conversation_example(record: dict[str, Any], where: str, base: Path) -> ChatExample:
    """A LLaVA conversation record as a :class:`ChatExample`."""
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        raise SlowthinkError(f"{where}: 'conversations' must be a non-empty list of {{from, value}} turns")
    images = _images(record, base, where)
    messages: list[Message] = []
    left = list(images)
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise SlowthinkError(f"{where}: turn {i} must be an object with 'from' and 'value'")
        role = ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise SlowthinkError(
                f"{where}: turn {i} is from '{turn['from']}'; use human, gpt or system (LLaVA conversation layout)"
            )
        value = _text(turn["value"], f"conversations[{i}].value", where)
        marks = value.count(IMAGE_MARK) if role == "user" else 0
        if marks > len(left):
            raise SlowthinkError(
                f"{where}: {value.count(IMAGE_MARK)} '<image>' marker(s) but only {len(images)} image(s) "
                "given: add the record's 'image' paths"
            )
        mine, left = left[:marks], left[marks:]
        text = value.replace(IMAGE_MARK + "\n", "").replace(IMAGE_MARK, "").strip() if marks else value
        messages.append(Message(role, text, images=mine))
    if left:  # images with no marker belong to the first user turn
        first = next((m for m in messages if m.role == "user"), None)
        if first is None:
            raise SlowthinkError(f"{where}: images given but no human turn to attach them to")
        first.images = left + first.images
    if messages[-1].role != "assistant":
        raise SlowthinkError(f"{where}: the conversation must end with a gpt turn (the text to learn)")
    if not any(m.role == "user" for m in messages):
        raise SlowthinkError(f"{where}: the conversation has no human turn")
    return ChatExample(id=str(record.get("id", where)), messages=messages)


def atomic_step_example(record: dict[str, Any], where: str, base: Path) -> ChatExample:
    """An AtomThink per-step record as a :class:`ChatExample`: the format's own next-step prompt."""
    problem = _problem(record, "question", where, base)
    history = record.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise SlowthinkError(f"{where}: 'history' must be a list of step strings ([] for the first step)")
    step = _text(record.get("step"), "step", where)
    fmt = get_format(str(record.get("format", ATOMIC_FORMAT)))
    spec = fmt.next_step("".join(history))
    if spec is None:
        raise SlowthinkError(
            f"{where}: the history already ends with the final answer; no next step to learn"
        )
    messages, prefix = fmt.step_request(problem, history, spec)
    return ChatExample(
        id=problem.id, messages=[*messages, Message("assistant", prefix + step.strip())], prefix=prefix
    )


def stepwise_example(record: dict[str, Any], where: str, base: Path) -> StepExample:
    """A stepwise PRM record as a :class:`StepExample` (labels as floats in [0, 1])."""
    problem = _problem(record, "prompt", where, base)
    steps = record.get("completions")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise SlowthinkError(f"{where}: 'completions' must be a non-empty list of step strings")
    labels = record.get("labels")
    if not isinstance(labels, list) or len(labels) != len(steps):
        raise SlowthinkError(
            f"{where}: 'labels' must be a list with one label per step ({len(steps)}), got "
            f"{'none' if labels is None else labels!r}; the data engine's rollout labels go here"
        )
    out = []
    for lab in labels:
        value = float(lab) if isinstance(lab, (bool, int, float)) else None
        if value is None or not 0.0 <= value <= 1.0:
            raise SlowthinkError(f"{where}: label {lab!r} is not true/false or a probability in [0, 1]")
        out.append(value)
    return StepExample(problem=problem, steps=list(steps), labels=out)


def load_sft(path: str | Path) -> list[ChatExample]:
    """The SFT examples of a file in either SFT layout (records may mix them)."""
    base = Path(path).resolve().parent
    out = []
    for n, rec in read_records(path):
        where = f"{path}:{n}"
        kind = layout_of(rec)
        if kind == "conversations":
            out.append(conversation_example(rec, where, base))
        elif kind == "atomic_step":
            out.append(atomic_step_example(rec, where, base))
        else:
            raise SlowthinkError(_wrong_layout(where, rec, "sft"))
    return out


def load_stepwise(path: str | Path) -> list[StepExample]:
    """The PRM examples of a file in the stepwise layout."""
    base = Path(path).resolve().parent
    out = []
    for n, rec in read_records(path):
        where = f"{path}:{n}"
        if layout_of(rec) != "stepwise":
            raise SlowthinkError(_wrong_layout(where, rec, "prm"))
        out.append(stepwise_example(rec, where, base))
    return out


def _wrong_layout(where: str, record: dict[str, Any], command: str) -> str:
    keys = ", ".join(sorted(record)) or "none"
    want = (
        "'conversations' (LLaVA layout) or 'question' + 'history' + 'step' (AtomThink per-step layout)"
        if command == "sft"
        else "'prompt' + 'completions' + 'labels' (stepwise PRM layout)"
    )
    found = layout_of(record)
    hint = (
        f"; this is a {found} record: use 'slowthink train {'prm' if command == 'sft' else 'sft'}'"
        if found
        else ""
    )
    return f"{where}: not a '{command}' training record (keys: {keys}); expected {want}{hint}"
