"""``free``: one-shot chain of thought (or a direct answer); the whole response is one step."""

from __future__ import annotations

import re

from slowthink.formats.base import Format, Parsed, ParsedStep, StepSpec, repeated_sentences

_ANSWER_CUE = re.compile(r"(?:final answer is|the answer is|answer\s*:|\\boxed\{)", re.IGNORECASE)


class FreeFormat(Format):
    name = "free"
    system_template = "free.cot.system"

    def next_step(self, prefix: str) -> StepSpec | None:
        if prefix:
            return None
        return self.full_spec()

    def is_final(self, text: str, kind: str) -> bool:
        return True

    def validate_step(self, text: str, history: list[str]) -> str | None:
        if not text.strip():
            return "empty response"
        if repeated_sentences(text):
            return "repeated sentences"
        return None

    def parse(self, response: str) -> Parsed:
        text = response.strip()
        notes: list[str] = []
        if not text:
            return Parsed([], None, False, ["empty response"])
        cues = list(_ANSWER_CUE.finditer(text))
        if cues:
            answer_text = text[cues[-1].start() :]
        else:
            # No cue: the last line is the best guess (grading extracts a number/letter from it).
            answer_text = text.splitlines()[-1]
            notes.append("no answer cue; used the last line")
        return Parsed([ParsedStep("response", text)], answer_text, bool(cues), notes)
