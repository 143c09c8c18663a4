"""``sentences``: a response generated one sentence per step, for sentence-level search.

It wraps another format (``free`` by default) for the prompt, the parser and the answer; only
the cutting into steps differs: a step ends at a sentence end (kept in the text).
"""

from __future__ import annotations

import re

from slowthink.formats.base import Format, Parsed, StepSpec, repeated_sentences
from slowthink.formats.free import FreeFormat

SENTENCE_STOPS = [". ", ".\n", "? ", "?\n", "! ", "!\n", "\n\n"]
_FINAL = re.compile(r"(?:final answer is|the answer is|</CONCLUSION>)", re.IGNORECASE)


class SentencesFormat(Format):
    name = "sentences"
    step_max_tokens: int = 64

    def __init__(self, base: Format | None = None) -> None:
        self.base = base or FreeFormat()
        self.system_template = self.base.system_template

    def full_spec(self) -> StepSpec:
        return self.base.full_spec()

    def next_step(self, prefix: str) -> StepSpec | None:
        if prefix and _FINAL.search(prefix):
            return None
        opener = self.base.full_opener() if not prefix else ""
        return StepSpec(
            kind="sentence", opener=opener, stop=list(SENTENCE_STOPS), max_tokens=self.step_max_tokens
        )

    def validate_step(self, text: str, history: list[str]) -> str | None:
        if not text.strip():
            return "empty sentence"
        if text.strip() in {h.strip() for h in history}:
            return "repeats an earlier sentence"
        if repeated_sentences(text):
            return "repeated sentences"
        return None

    def is_final(self, text: str, kind: str) -> bool:
        return kind == "answer" or bool(_FINAL.search(text))

    def answer_opener(self, prefix: str) -> StepSpec:
        return self.base.answer_opener(prefix)

    def parse(self, response: str) -> Parsed:
        return self.base.parse(response)
