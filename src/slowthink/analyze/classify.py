"""Step -> capability classifiers: deterministic rules (keywords and patterns of the capability set)
or an LLM (prompt ``analyze.capability``: a numbered batch of steps per request, all batches in one
``Engine.generate`` call; a step whose line is missing or names no known capability falls back to the
rules, and is counted)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from slowthink.analyze.capset import CapabilitySet
from slowthink.engines import Engine
from slowthink.prompts import clip_head, get_template
from slowthink.types import Message, Request

#: A reply line ``k: name`` (also ``[k] name``, ``k. name``, ``k) name``, ``Step k: name``).
LINE = re.compile(r"^\W*(?:step\s*)?\[?(\d+)\]?\s*[:.)\]-]?\s*[`*\"']*([A-Za-z][A-Za-z _-]*)", re.IGNORECASE)
STEP_CHARS = 300
"""A step is cut to this many characters in the classifier prompt."""


@dataclass
class Labels:
    labels: list[str]
    fallbacks: int = 0
    """Steps the model left unlabelled or labelled with an unknown name (labelled by the rules)."""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    calls: int = 0


class Classifier(Protocol):
    name: str

    def classify(self, steps: Sequence[str]) -> Labels: ...


@dataclass
class RulesClassifier:
    caps: CapabilitySet
    name: str = "rules"

    def label(self, text: str) -> str:
        best, points = self.caps.default, 0
        for c in self.caps.capabilities:  # first listed wins a tie
            p = c.points(text)
            if p > points:
                best, points = c.name, p
        return best

    def classify(self, steps: Sequence[str]) -> Labels:
        return Labels([self.label(s) for s in steps])


def parse_labels(reply: str, n: int, caps: CapabilitySet) -> list[str | None]:
    """The capability of each of ``n`` steps in a reply (``None`` where missing or unknown)."""
    known = {c.lower().replace("_", " "): c for c in caps.names}
    out: list[str | None] = [None] * n
    for line in reply.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        k = int(m.group(1)) - 1
        name = re.sub(r"[\s_-]+", " ", m.group(2).strip().lower())
        if 0 <= k < n and out[k] is None:
            out[k] = known.get(name)
    return out


@dataclass
class LLMClassifier:
    caps: CapabilitySet
    engine: Engine
    batch: int = 8
    max_tokens_per_step: int = 12
    name: str = "llm"

    def requests(self, steps: Sequence[str]) -> list[Request]:
        caps = "\n".join(f"- {c.name}: {c.description}" for c in self.caps.capabilities)
        out = []
        for start in range(0, len(steps), self.batch):
            chunk = steps[start : start + self.batch]
            body = "\n".join(f"[{k + 1}] {clip_head(s, STEP_CHARS)}" for k, s in enumerate(chunk))
            out.append(
                Request(
                    [
                        Message("system", get_template("analyze.capability.system")),
                        Message(
                            "user", get_template("analyze.capability").format(capabilities=caps, steps=body)
                        ),
                    ],
                    max_tokens=self.max_tokens_per_step * len(chunk) + 16,
                    temperature=0.0,
                    seed=0,
                    tag=start,
                )
            )
        return out

    def classify(self, steps: Sequence[str]) -> Labels:
        if not steps:
            return Labels([])
        rules = RulesClassifier(self.caps)
        reqs = self.requests(steps)
        replies = self.engine.generate(reqs)
        out = Labels([], calls=1)
        for req, completions in zip(reqs, replies):
            chunk = steps[req.tag : req.tag + self.batch]
            c = completions[0] if completions else None
            parsed = parse_labels(c.text if c is not None and c.ok else "", len(chunk), self.caps)
            if c is not None:
                out.prompt_tokens += c.prompt_tokens
                out.generated_tokens += c.generated_tokens
            for text, label in zip(chunk, parsed):
                if label is None:
                    out.fallbacks += 1
                    label = rules.label(text)
                out.labels.append(label)
        return out
