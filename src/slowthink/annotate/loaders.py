"""Loaders for the papers' released data into the data engine's records (and so its datasets).

``load_release(name, path)`` -> :class:`Release` (accepted :class:`Annotation` records, rows skipped
by reason). The layouts, as released upstream:

* ``llava-cot-100k`` (Xkev/LLaVA-CoT-100k ``train.jsonl``): ``{"id", "image", "conversations":
  [{"from": "human", "value": "<image>\\nQ"}, {"from": "gpt", "value": "<SUMMARY>...</CONCLUSION>"},
  ...]}``; one record per human/gpt pair with four valid stages (``#k`` ids after the first pair).
* ``amath-sft`` (Quinn777/AMATH-SFT, sharegpt): a JSON list (or JSONL) of per-step rows
  ``{"image", "conversations": [{"from": "human", "value": "<image>\\nQ\\nAnswer the question using a
  single word or phrase.\\n\\nHISTORICAL REASONING STEPS:\\nSTEPS\\n\\nYour task is ..."}, {"from":
  "gpt", "value": "Step k: ..."}], "answer"}``; rows of one question are joined back into its chain
  (the longest history plus its next step).
* ``amath-prm`` (AtomThink's PRM data): ``{"question", "process": "Step 1 ...\\n\\nStep k ...\\n\\n\\n\\n\\n",
  "label": ["+"] | ["-"]}``; the label is the last step's, the steps before it are ``+``.
* ``prm800k`` (openai/prm800k ``phase*_*.jsonl``): ``{"question": {"problem", "ground_truth_answer"},
  "label": {"steps": [{"completions": [{"text", "rating"}], "human_completion", "chosen_completion"}],
  "finish_reason"}}``; the chain follows the chosen (or human) completion; a last step without one
  takes its rated completion; ratings 1 -> ``+``, -1 -> ``-``, 0 (neutral) -> ``neutral`` (default ``+``).
* ``math-shepherd`` (peiyi9979/Math-Shepherd): ``{"input": "Q Step 1: ... ки\\nStep 2: ... ки",
  "label": "Q Step 1: ... +\\nStep 2: ... -", "task"}``; one label per ``ки`` tag.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slowthink.annotate.datasets import IMAGE_TOKEN
from slowthink.annotate.modes.stages import check_stages
from slowthink.annotate.records import Annotation
from slowthink.annotate.text import final_answer_of
from slowthink.formats.stages import STAGES
from slowthink.jsonl import iter_jsonl
from slowthink.types import Problem, SlowthinkError

SHEPHERD_TAG = "ки"
_ATOM_QUESTION = re.compile(
    r"^(?:THE GIVEN QUESTION:\s*)?(.*?)(?:\nAnswer the question using a single word or phrase\.)?"
    r"\s*\n\s*\nHISTORICAL REASONING STEPS:\n?(.*?)(?:\n*Your task is to predict.*)?$",
    re.DOTALL,
)
_SHEPHERD_FIRST = re.compile(r"Step\s*1\s*[:.]")


@dataclass
class Release:
    name: str
    annotations: list[Annotation] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def _record(name: str, rid: str, problem: Problem, steps: list[str], **kw: Any) -> Annotation:
    return Annotation(
        rid,
        name,
        f"release:{name}",
        "release",
        problem,
        status="accepted",
        method="release",
        steps=steps,
        answer=kw.pop("answer", None) or final_answer_of(steps[-1:]),
        **kw,
    )


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Rows of a JSONL file, or of a JSON file holding a list (AMATH-SFT ships one JSON list)."""
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise SlowthinkError(f"{path} is not valid JSON ({e}); pass the released file as is") from None
        if not isinstance(data, list):
            raise SlowthinkError(f"{path} holds a JSON {type(data).__name__}, not a list of rows")
        yield from enumerate(data, 1)
    else:
        yield from iter_jsonl(path)


def _strip_image(text: str) -> str:
    return (
        text.replace(f"{IMAGE_TOKEN}\n", "").replace(f"\n{IMAGE_TOKEN}", "").replace(IMAGE_TOKEN, "").strip()
    )


def load_llava_cot(path: Path, out: Release) -> None:
    for line, row in _rows(path):
        conv = row.get("conversations") if isinstance(row, dict) else None
        if not isinstance(conv, list):
            out.skipped["no conversations"] += 1
            continue
        rid = str(row.get("id", line))
        image = row.get("image")
        pairs = [(conv[i], conv[i + 1]) for i in range(0, len(conv) - 1, 2)]
        for k, (human, gpt) in enumerate(pairs):
            if not (isinstance(human, dict) and isinstance(gpt, dict)) or (
                human.get("from"),
                gpt.get("from"),
            ) != ("human", "gpt"):
                out.skipped["turns not human/gpt"] += 1
                continue
            stages, reason = check_stages(str(gpt.get("value", "")))
            if stages is None:
                out.skipped[f"malformed stages ({reason.split(':')[0]})"] += 1
                continue
            p = Problem(
                id=rid if k == 0 else f"{rid}#{k}",
                question=_strip_image(str(human.get("value", ""))),
                images=[image] if isinstance(image, str) else [],
                answer=stages["conclusion"],
            )
            out.annotations.append(
                _record(
                    out.name, p.id, p, [stages[s] for s in STAGES], stages=stages, answer=stages["conclusion"]
                )
            )


def load_amath_sft(path: Path, out: Release) -> None:
    chains: dict[tuple[str, str], tuple[list[str], str | None, int]] = {}
    for line, row in _rows(path):
        conv = row.get("conversations") if isinstance(row, dict) else None
        if not isinstance(conv, list) or len(conv) < 2:
            out.skipped["no conversations"] += 1
            continue
        m = _ATOM_QUESTION.match(_strip_image(str(conv[0].get("value", ""))))
        step = str(conv[1].get("value", "")).strip()
        if m is None or not step:
            out.skipped["not an AtomThink step prompt"] += 1
            continue
        question, history = m.group(1).strip(), [s.strip() for s in m.group(2).split("\n\n") if s.strip()]
        key = (str(row.get("image") or ""), question)
        chain = history + [step]
        if key not in chains or len(chain) > len(chains[key][0]):
            chains[key] = (chain, row.get("answer"), line)
    for (image, question), (chain, answer, line) in chains.items():
        p = Problem(
            id=f"amath-sft-{line}",
            question=question,
            images=[image] if image else [],
            answer=None if answer is None else str(answer),
        )
        out.annotations.append(_record(out.name, p.id, p, chain, answer=p.answer))


def load_amath_prm(path: Path, out: Release) -> None:
    for line, row in _rows(path):
        if not isinstance(row, dict) or not isinstance(row.get("process"), str) or not row.get("question"):
            out.skipped["no question/process"] += 1
            continue
        label = row.get("label")
        label = label[-1] if isinstance(label, list) and label else label
        if label not in ("+", "-"):
            out.skipped["label not + or -"] += 1
            continue
        steps = [s.strip() for s in row["process"].strip().split("\n\n") if s.strip()]
        if not steps:
            out.skipped["empty process"] += 1
            continue
        image = row.get("image")
        p = Problem(
            id=f"amath-prm-{line}",
            question=_strip_image(str(row["question"])),
            images=[image] if isinstance(image, str) else [],
        )
        out.annotations.append(
            _record(out.name, p.id, p, steps, labels=[True] * (len(steps) - 1) + [label == "+"])
        )


def load_prm800k(path: Path, out: Release, neutral: bool = True) -> None:
    for line, row in _rows(path):
        q = row.get("question") if isinstance(row, dict) else None
        steps_in = (row.get("label") or {}).get("steps") if isinstance(row, dict) else None
        if not isinstance(q, dict) or not q.get("problem") or not isinstance(steps_in, list):
            out.skipped["no question/steps"] += 1
            continue
        steps: list[str] = []
        labels: list[bool] = []
        for st in steps_in:
            comps = st.get("completions") or []
            chosen = st.get("chosen_completion")
            if isinstance(chosen, int) and 0 <= chosen < len(comps):
                pick = comps[chosen]
            elif st.get("human_completion"):
                human = st["human_completion"]  # a labeler's own step: right unless rated otherwise
                pick = {**human, "rating": 1 if human.get("rating") is None else human["rating"]}
            else:  # the step where the labeler stopped: its rated completion, preferring a wrong one
                rated = [c for c in comps if c.get("rating") is not None]
                pick = next((c for c in rated if c["rating"] == -1), rated[0] if rated else None)
            if pick is None or pick.get("rating") is None or not str(pick.get("text", "")).strip():
                break
            steps.append(str(pick["text"]).strip())
            labels.append(pick["rating"] == 1 or (pick["rating"] == 0 and neutral))
            if pick["rating"] == -1:
                break
        if not steps:
            out.skipped["no rated step"] += 1
            continue
        p = Problem(id=f"prm800k-{line}", question=str(q["problem"]), answer=q.get("ground_truth_answer"))
        out.annotations.append(_record(out.name, p.id, p, steps, labels=labels, answer=p.answer))


def load_math_shepherd(path: Path, out: Release) -> None:
    for line, row in _rows(path):
        text, lab = (row.get("input"), row.get("label")) if isinstance(row, dict) else (None, None)
        if not isinstance(text, str) or not isinstance(lab, str) or SHEPHERD_TAG not in text:
            out.skipped["no input/label"] += 1
            continue
        m = _SHEPHERD_FIRST.search(text)
        if m is None:
            out.skipped["no 'Step 1:'"] += 1
            continue
        question, body = text[: m.start()].strip(), text[m.start() :]
        pieces = body.split(SHEPHERD_TAG)
        positions = [i for i in range(len(text)) if text.startswith(SHEPHERD_TAG, i)]
        marks = [
            lab[p - j * (len(SHEPHERD_TAG) - 1)] if p - j * (len(SHEPHERD_TAG) - 1) < len(lab) else ""
            for j, p in enumerate(positions)
        ]
        if any(c not in "+-" for c in marks):
            out.skipped["label misaligned with the tags"] += 1
            continue
        steps = [s.strip() for s in pieces[: len(marks)]]
        if not all(steps):
            out.skipped["empty step"] += 1
            continue
        p = Problem(id=f"math-shepherd-{line}", question=question, meta={"task": row.get("task")})
        out.annotations.append(_record(out.name, p.id, p, steps, labels=[c == "+" for c in marks]))


def llava_items(path: Path, limit: int | None = None) -> tuple[list[Problem], Counter, str]:
    """Items to annotate from LLaVA conversation data (LLaVA-CoT's input: ``{"id", "image",
    "conversations": [human, gpt, ...], "hints"}``): one item per human/gpt pair, the gpt turn as the
    standard answer, ``hints`` in ``meta``; image paths relative to the data file's folder."""
    if not path.is_file():
        raise SlowthinkError(f"data file not found: {path}; pass a LLaVA conversation JSONL/JSON file")
    problems: list[Problem] = []
    skipped: Counter = Counter()
    for line, row in _rows(path):
        conv = row.get("conversations") if isinstance(row, dict) else None
        if not isinstance(conv, list):
            skipped["no conversations"] += 1
            continue
        image = row.get("image")
        images = [str(path.parent / image)] if isinstance(image, str) and image else []
        for k in range(0, len(conv) - 1, 2):
            human, gpt = conv[k], conv[k + 1]
            if not (isinstance(human, dict) and isinstance(gpt, dict)) or (
                human.get("from"),
                gpt.get("from"),
            ) != ("human", "gpt"):
                skipped["turns not human/gpt"] += 1
                continue
            question, answer = _strip_image(str(human.get("value", ""))), str(gpt.get("value", "")).strip()
            if not question or not answer:
                skipped["empty question or answer"] += 1
                continue
            rid = str(row.get("id", line))
            problems.append(
                Problem(
                    id=rid if k == 0 else f"{rid}#{k // 2}",
                    question=question,
                    answer=answer,
                    images=images,
                    meta={"hints": row.get("hints") or []},
                )
            )
        if limit is not None and len(problems) >= limit:
            problems = problems[:limit]
            break
    if not problems:
        raise SlowthinkError(
            f"{path} holds no human/gpt pair to annotate; check the file is in the LLaVA layout"
        )
    return problems, skipped, f"{len(problems)} LLaVA question/answer pairs from {path}"


RELEASES: dict[str, Callable[[Path, Release], None]] = {
    "llava-cot-100k": load_llava_cot,
    "amath-sft": load_amath_sft,
    "amath-prm": load_amath_prm,
    "prm800k": load_prm800k,
    "math-shepherd": load_math_shepherd,
}


def load_release(name: str, path: str | Path, limit: int | None = None) -> Release:
    """Read a released dataset into accepted records; malformed rows are counted by reason."""
    if name not in RELEASES:
        raise SlowthinkError(f"unknown release '{name}': choose one of {', '.join(RELEASES)}")
    path = Path(path)
    if not path.is_file():
        raise SlowthinkError(f"{name} file not found: {path}; pass the released file")
    out = Release(name)
    RELEASES[name](path, out)
    if limit is not None:
        out.annotations = out.annotations[:limit]
    if not out.annotations:
        reasons = ", ".join(f"{k} {v}" for k, v in out.skipped.items()) or "empty file"
        raise SlowthinkError(
            f"{path} holds no usable {name} row ({reasons}); check the file and the release name"
        )
    return out
