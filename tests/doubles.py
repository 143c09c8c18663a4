"""The test suite's engine double: one scripted in-process engine, configured by a reply function.

``ScriptedEngine(reply)`` answers sample ``i`` of every request with ``reply(request, i)``: a string
becomes a :class:`Completion` cut after the request's first stop string, as a real engine cuts it
(that stop is its ``stop_str``), with ``prompt_tokens`` and one generated token a word; a
Completion is returned as is. Every ``generate`` call's requests are kept in ``calls``.

``AtomicWriter`` is the reply of a policy writing the atomic format: ``Step k: ...`` lines, the
final-answer line after ``steps`` steps, the answer alone after the direct-answer opener, and a
whole response when the request has no stop string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slowthink.types import Completion, Request

#: ``reply(request, i)``: sample ``i`` of ``request``.
Reply = Callable[[Request, int], "str | Completion"]

FINAL = "To sum up, the final answer is:"


def steps_done(text: str) -> int:
    """How many ``Step k:`` lines ``text`` holds."""
    return len(re.findall(r"^Step \d+:", text, flags=re.M))


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, str | None]:
    """``text`` up to and including the first stop string in it, and that stop (``None``: none)."""
    cuts = [(text.find(s), s) for s in stop if text.find(s) >= 0]
    if not cuts:
        return text, None
    i, s = min(cuts)
    return text[: i + len(s)], s


class ScriptedEngine:
    """An in-process engine: ``reply(request, i)`` writes sample ``i`` of each request."""

    def __init__(
        self, reply: Reply, *, name: str = "scripted", supports_images: bool = False, prompt_tokens: int = 10
    ) -> None:
        self.reply = reply
        self.name = name
        self.supports_images = supports_images
        self.prompt_tokens = prompt_tokens
        self.calls: list[list[Request]] = []

    def complete(self, request: Request, i: int) -> Completion:
        out = self.reply(request, i)
        if isinstance(out, Completion):
            return out
        text, stop = cut_at_stop(out, request.stop)
        return Completion(
            text, stop_str=stop, prompt_tokens=self.prompt_tokens, generated_tokens=len(text.split())
        )

    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        self.calls.append(list(requests))
        return [[self.complete(r, i) for i in range(r.n)] for r in requests]


@dataclass
class AtomicWriter:
    """A reply writing the atomic format. ``step(request, i, k)``: the text of step ``k`` (from 0)
    of sample ``i``; ``answer(request, i)``: its final answer; ``never_final``: steps forever."""

    step: Callable[[Request, int, int], str]
    answer: Callable[[Request, int], str]
    steps: int = 2
    never_final: bool = False

    def __call__(self, r: Request, i: int) -> str:
        done = steps_done(r.prefix)
        if not r.stop:  # a whole response
            body = "".join(f"Step {k + 1}: {self.step(r, i, k)}\n" for k in range(self.steps))
            return f"{body}{FINAL} {self.answer(r, i)}"
        if r.prefix.endswith("final answer is:"):  # the direct-answer fallback
            return f" {self.answer(r, i)}\n"
        if done >= self.steps and not self.never_final:
            return f"{FINAL} {self.answer(r, i)}\n"
        return f"Step {done + 1}: {self.step(r, i, done)}\n"
