"""The training datasets the data engine writes, validated on write and on read.

Three JSONL files in the output folder, rebuilt from the accepted records of ``annotations.jsonl``
at the end of every run (so a resumed run never duplicates a row):

``sft_llava.jsonl`` (:class:`LlavaSFTRow`, the LLaVA-CoT-100k ``train.jsonl`` layout)::

    {"id": "...", "image": "images/6.jpg",
     "conversations": [{"from": "human", "value": "<image>\\nQUESTION"},
                       {"from": "gpt", "value": "<SUMMARY> ... </SUMMARY>\\n\\n... <CONCLUSION> D </CONCLUSION>"}]}

``sft_steps.jsonl`` (:class:`StepSFTRow`, AtomThink's per-step SFT: question + history -> next step,
one row per step; ``conversations`` is the AMATH-SFT layout, the human turn AtomThink's step prompt)::

    {"id": "...#3", "item": "...", "images": [...], "question": "...", "history": ["Step 1: ...", ...],
     "step": "Step 3: ...", "answer": "72", "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}

``prm.jsonl`` (:class:`PRMRow`, TRL's stepwise-supervision layout plus images and soft labels)::

    {"id": "...", "prompt": "QUESTION", "completions": ["Step 1: ...", ...], "labels": [true, false],
     "soft_labels": [0.75, 0.0], "images": [...]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slowthink.annotate.records import Annotation
from slowthink.formats.stages import STAGES, close_tag, open_tag
from slowthink.jsonl import iter_jsonl
from slowthink.prompts import get_template, user_prompt
from slowthink.types import SlowthinkError

SFT_LLAVA = "sft_llava.jsonl"
SFT_STEPS = "sft_steps.jsonl"
PRM = "prm.jsonl"
IMAGE_TOKEN = "<image>"


class RowError(ValueError):
    """A dataset row that breaks its layout (the message says what)."""


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise RowError(what)


def _str_list(value: Any, what: str) -> list[str]:
    _need(
        isinstance(value, list) and all(isinstance(v, str) for v in value),
        f"{what} must be a list of strings",
    )
    return list(value)


def _conversations(value: Any) -> list[dict[str, str]]:
    _need(
        isinstance(value, list) and len(value) >= 2, "conversations must hold at least a human and a gpt turn"
    )
    for i, turn in enumerate(value):
        _need(
            isinstance(turn, dict) and isinstance(turn.get("value"), str), f"turn {i} needs a string 'value'"
        )
        want = "human" if i % 2 == 0 else "gpt"
        _need(turn.get("from") == want, f"turn {i} must be from '{want}' (turns alternate, human first)")
        _need(bool(turn["value"].strip()), f"turn {i} is empty")
    return [{"from": t["from"], "value": t["value"]} for t in value]


@dataclass
class LlavaSFTRow:
    id: str
    conversations: list[dict[str, str]]
    image: str | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.id, str) and bool(self.id), "id must be a non-empty string")
        self.conversations = _conversations(self.conversations)
        _need(self.image is None or isinstance(self.image, str), "image must be a path string")
        first = self.conversations[0]["value"]
        if self.image is not None:
            _need(
                IMAGE_TOKEN in first, f"the first human turn of a row with an image must hold {IMAGE_TOKEN}"
            )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id}
        if self.image is not None:
            d["image"] = self.image
        d["conversations"] = self.conversations
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LlavaSFTRow:
        return cls(id=str(d.get("id", "")), conversations=d.get("conversations"), image=d.get("image"))


@dataclass
class StepSFTRow:
    id: str
    item: str
    question: str
    history: list[str]
    step: str
    answer: str | None = None
    images: list[str] = field(default_factory=list)
    conversations: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        _need(isinstance(self.id, str) and bool(self.id), "id must be a non-empty string")
        _need(
            isinstance(self.question, str) and bool(self.question.strip()),
            "question must be a non-empty string",
        )
        self.history = _str_list(self.history, "history")
        self.images = _str_list(self.images, "images")
        _need(isinstance(self.step, str) and bool(self.step.strip()), "step must be a non-empty string")
        if not self.conversations:
            self.conversations = [
                {"from": "human", "value": step_prompt(self.question, self.history, bool(self.images))},
                {"from": "gpt", "value": self.step},
            ]
        self.conversations = _conversations(self.conversations)
        _need(self.conversations[-1]["value"] == self.step, "the gpt turn must be the step")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepSFTRow:
        return cls(
            id=str(d.get("id", "")),
            item=str(d.get("item", "")),
            question=d.get("question"),
            history=d.get("history"),
            step=d.get("step"),
            answer=d.get("answer"),
            images=d.get("images", []),
            conversations=d.get("conversations") or [],
        )


@dataclass
class PRMRow:
    id: str
    prompt: str
    completions: list[str]
    labels: list[bool]
    soft_labels: list[float] | None = None
    images: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _need(isinstance(self.id, str) and bool(self.id), "id must be a non-empty string")
        _need(isinstance(self.prompt, str) and bool(self.prompt.strip()), "prompt must be a non-empty string")
        self.completions = _str_list(self.completions, "completions")
        _need(bool(self.completions), "completions must hold at least one step")
        _need(all(c.strip() for c in self.completions), "a completion step is empty")
        _need(
            isinstance(self.labels, list) and all(isinstance(v, bool) for v in self.labels),
            "labels must be a list of booleans",
        )
        _need(len(self.labels) == len(self.completions), "one label per completion step")
        if self.soft_labels is not None:
            ok = isinstance(self.soft_labels, list) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                for v in self.soft_labels
            )
            _need(ok, "soft_labels must be numbers in [0, 1]")
            _need(len(self.soft_labels) == len(self.completions), "one soft label per completion step")
            self.soft_labels = [float(v) for v in self.soft_labels]
        self.images = _str_list(self.images, "images")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.soft_labels is None:
            del d["soft_labels"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PRMRow:
        return cls(
            id=str(d.get("id", "")),
            prompt=d.get("prompt"),
            completions=d.get("completions"),
            labels=d.get("labels"),
            soft_labels=d.get("soft_labels"),
            images=d.get("images", []),
        )


Row = LlavaSFTRow | StepSFTRow | PRMRow
#: File name -> row type.
DATASETS: dict[str, type] = {SFT_LLAVA: LlavaSFTRow, SFT_STEPS: StepSFTRow, PRM: PRMRow}


def step_prompt(question: str, history: list[str], image: bool) -> str:
    """AtomThink's per-step SFT input: its step template with the question and the steps so far."""
    text = get_template("atomic.atomthink.user").format(question=question, history="\n\n".join(history))
    return f"{IMAGE_TOKEN}\n{text}" if image else text


def stages_response(stages: dict[str, str]) -> str:
    """The four stages, tagged, separated by blank lines."""
    return "\n\n".join(f"{open_tag(s)} {stages[s].strip()} {close_tag(s)}" for s in STAGES)


def rows_of(a: Annotation) -> dict[str, list[Row]]:
    """The dataset rows of an accepted annotation, by file name (none for a rejected one)."""
    if a.status != "accepted":
        return {}
    p = a.problem
    question = user_prompt(p)
    if a.stages is not None:  # LLaVA-CoT stages (the stages mode, LLaVA-CoT-100k)
        human = f"{IMAGE_TOKEN}\n{question}" if p.images else question
        image = p.images[0] if p.images else None
        return {
            SFT_LLAVA: [
                LlavaSFTRow(
                    a.id,
                    [
                        {"from": "human", "value": human},
                        {"from": "gpt", "value": stages_response(a.stages or {})},
                    ],
                    image,
                )
            ]
        }
    if a.labels is not None:  # PRM data (negatives, rollout labels, released PRM sets)
        rows = [PRMRow(a.id, question, list(a.steps), list(a.labels), a.soft_labels, list(p.images))]
        chain = a.extra.get("chain")
        if chain:  # negatives: the correct chain too, every step +
            rows.append(
                PRMRow(f"{a.id}#pos", question, list(chain), [True] * len(chain), None, list(p.images))
            )
        return {PRM: rows}
    return {
        SFT_STEPS: [
            StepSFTRow(f"{a.id}#{i + 1}", a.id, question, a.steps[:i], step, a.answer, list(p.images))
            for i, step in enumerate(a.steps)
        ]
    }


def export_datasets(out_dir: Path, annotations: Iterable[Annotation]) -> dict[str, int]:
    """(Re)write the dataset files from the accepted annotations; rows of each file, by name.

    Each file is written to a temporary name and renamed, so a reader never sees half a file; a
    file no annotation feeds is removed."""
    rows: dict[str, list[Row]] = {name: [] for name in DATASETS}
    for a in annotations:
        for name, got in rows_of(a).items():
            rows[name].extend(got)
    counts: dict[str, int] = {}
    for name, items in rows.items():
        path = Path(out_dir) / name
        if not items:
            path.unlink(missing_ok=True)
            continue
        write_rows(path, items)
        counts[name] = len(items)
    return counts


def write_rows(path: Path, rows: Iterable[Row]) -> None:
    """Write rows as JSONL atomically (each row was validated when it was built)."""

    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_dataset(path: str | Path, kind: str | None = None) -> list[Row]:
    """Read and validate a dataset file (``kind`` = a file name of :data:`DATASETS`; default the
    file's own name). A row that breaks the layout is one :class:`SlowthinkError` naming file and line."""
    path = Path(path)
    kind = kind or path.name
    if kind not in DATASETS:
        raise SlowthinkError(f"unknown dataset kind '{kind}': choose one of {', '.join(DATASETS)}")
    if not path.is_file():
        raise SlowthinkError(f"dataset not found: {path}; run 'slowthink annotate' first or check the path")
    cls = DATASETS[kind]
    out = []
    for line, obj in iter_jsonl(path):
        if obj is None:
            raise SlowthinkError(f"{path}:{line} is not a JSON object; the file is damaged, re-export it")
        try:
            out.append(cls.from_dict(obj))
        except (RowError, TypeError, ValueError) as e:
            raise SlowthinkError(f"{path}:{line} breaks the {kind} layout: {e}") from None
    return out
