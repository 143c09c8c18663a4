"""``atomic``: AtomThink atomic steps, ``Step k: ...`` one per line, ending with
``To sum up, the final answer is: ...``. One step per engine call."""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from slowthink.formats.base import Format, Parsed, ParsedStep, StepSpec, repeated_sentences
from slowthink.prompts import get_template
from slowthink.types import Completion

FINAL_MARKER = get_template("atomic.final_marker")
_FINAL = re.compile(r"(?:to sum up|final answer is|the answer is)", re.IGNORECASE)
_FINAL_SPAN = re.compile(r"(?:final answer is|the answer is)\s*:?", re.IGNORECASE)
_STEP_LABEL = re.compile(r"\bStep\s*\d+\s*[:.]", re.IGNORECASE)

#: A step longer than this many characters is not atomic (AtomThink keeps steps short).
MAX_STEP_CHARS = 400
#: A step this similar (rapidfuzz ratio, 0-100) to the previous one is a near-copy.
NEAR_COPY_RATIO = 92.0


class AtomicFormat(Format):
    name = "atomic"
    system_template = "atomic.system"
    step_max_tokens: int = 96
    max_steps: int = 16

    def next_step(self, prefix: str) -> StepSpec | None:
        if prefix and self.is_final(prefix.rstrip().splitlines()[-1], "step"):
            return None
        opener = "" if not prefix or prefix.endswith("\n") else "\n"
        return StepSpec(kind="step", opener=opener, stop=["\n"], max_tokens=self.step_max_tokens)

    def finish_step(self, spec: StepSpec, completion: Completion) -> tuple[str, str | None]:
        text = spec.opener + completion.text
        note = None
        if completion.finish_reason == "length":
            text = text.rstrip() + "\n"
            note = "step cut at the token limit"
        return text, note

    def validate_step(self, text: str, history: list[str]) -> str | None:
        body = text.strip()
        if not body:
            return "empty step"
        if len(body) > MAX_STEP_CHARS:
            return f"too long ({len(body)} chars > {MAX_STEP_CHARS})"
        if len(_STEP_LABEL.findall(body)) > 1:
            return "several 'Step' markers in one step"
        if repeated_sentences(_STEP_LABEL.sub("", body)):
            return "repeated sentences"
        if history:
            prev = _STEP_LABEL.sub("", history[-1]).strip()
            cur = _STEP_LABEL.sub("", body).strip()
            if prev and fuzz.ratio(prev, cur) >= NEAR_COPY_RATIO:
                return "near-copy of the previous step"
        return None

    def is_final(self, text: str, kind: str) -> bool:
        return kind == "answer" or bool(_FINAL.search(text))

    def answer_opener(self, prefix: str) -> StepSpec:
        sep = "" if not prefix or prefix.endswith("\n") else "\n"
        return StepSpec(kind="answer", opener=sep + FINAL_MARKER, stop=["\n"], max_tokens=24)

    def parse(self, response: str) -> Parsed:
        notes: list[str] = []
        lines = [ln.strip() for ln in response.splitlines() if ln.strip()]
        # Runaway text: several steps glued on one line are split at their labels.
        split: list[str] = []
        for ln in lines:
            parts = [p.strip() for p in re.split(r"(?=\bStep\s*\d+\s*[:.])", ln) if p.strip()]
            if len(parts) > 1:
                notes.append("split a line holding several steps")
            split.extend(parts)
        steps: list[ParsedStep] = []
        answer_text = None
        for ln in split:
            if _FINAL.search(ln):
                steps.append(ParsedStep("final", ln))
                m = _FINAL_SPAN.search(ln)
                answer_text = ln[m.end():].strip() if m else ln
                break
            steps.append(ParsedStep("step", ln))
        if len(steps) < len(split):
            notes.append(f"ignored {len(split) - len(steps)} line(s) after the final answer")
        if answer_text is None and steps:
            notes.append("no final-answer step")
        return Parsed(steps, answer_text, answer_text is not None, notes)
