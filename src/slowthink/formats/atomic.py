"""``atomic``: AtomThink atomic steps, ending with ``To sum up, the final answer is: ...``. One step
per engine call. Two prompt layouts (the ``style`` option of ``atomic#k=v,...``):

* ``line`` (default): one assistant turn continued step by step; ``Step k: ...`` one per line, each
  step cut at the newline.
* ``atomthink``: AtomThink's own step prompt. The user turn holds the question and the steps so far
  ("HISTORICAL REASONING STEPS"), the next single step is asked for in a fresh assistant turn and may
  span several lines; it ends at the model's end of turn or at the next ``Step`` marker on a new line.
  Steps are joined by blank lines in the recorded response.

Validity thresholds (why a step is rejected) are options too; see :class:`AtomicOptions`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from slowthink.formats.base import Format, Parsed, ParsedStep, StepSpec, repeated_ratio
from slowthink.prompts import get_template, user_prompt
from slowthink.types import Completion, Message, Problem, SlowthinkError

FINAL_MARKER = get_template("atomic.final_marker")
_FINAL = re.compile(r"(?:to sum up|final answer is|the answer is)", re.IGNORECASE)
_FINAL_SPAN = re.compile(r"(?:final answer is|the answer is)\s*:?", re.IGNORECASE)
_STEP_LABEL = re.compile(r"\bStep\s*\d+\s*[:.]", re.IGNORECASE)
#: Where an atomthink-style response is cut into steps: blank lines, and new lines that open a step
#: (``Step k:``) or the final answer (``To sum up``).
_BLANK = re.compile(r"\n[ \t]*\n\s*")
_BLOCK_SPLIT = re.compile(r"\n(?=[ \t]*(?:Step\s*\d+\s*[:.]|To sum up))", re.IGNORECASE)
#: The stop string of an atomthink-style step: the next step marker on a new line.
NEXT_MARKER = "\nStep "

#: A step longer than this many characters is not atomic (AtomThink keeps steps short).
MAX_STEP_CHARS = 400
#: A step this similar (rapidfuzz ratio, 0-100) to the previous one is a near-copy.
NEAR_COPY_RATIO = 92.0

STYLES: tuple[str, ...] = ("line", "atomthink")


@dataclass(frozen=True)
class AtomicOptions:
    """The options of the atomic format (``atomic#style=atomthink,max_chars=600``). ``None`` turns a
    check off. The defaults depend on the style (:data:`STYLE_DEFAULTS`)."""

    style: str = "line"
    """``line`` (one assistant turn, a step per line) or ``atomthink`` (AtomThink's step prompt)."""
    step_tokens: int = 96
    """Token budget of one step."""
    min_chars: int = 1
    """A step shorter than this (stripped) is rejected."""
    max_chars: int | None = MAX_STEP_CHARS
    """A step longer than this (stripped) is rejected as not atomic."""
    max_markers: int | None = 1
    """Most ``Step k:`` labels in one step (more: several steps glued together)."""
    repeat_ratio: float | None = 0.0
    """A step whose share of repeated sentences (:func:`repeated_ratio`) is above this is rejected."""
    near_copy: float | None = NEAR_COPY_RATIO
    """A step this similar (rapidfuzz ratio, 0-100, labels removed) to the previous one is rejected."""

    def __post_init__(self) -> None:
        def bad(key: str, what: str) -> SlowthinkError:
            return SlowthinkError(f"atomic format option {key}={getattr(self, key)!r}: must be {what}")

        if self.style not in STYLES:
            raise bad("style", " or ".join(STYLES))
        for key, low, optional in (
            ("step_tokens", 1, False),
            ("min_chars", 0, False),
            ("max_chars", 1, True),
            ("max_markers", 0, True),
        ):
            v = getattr(self, key)
            if (v is None and not optional) or (v is not None and (type(v) is not int or v < low)):
                raise bad(key, f"a whole number >= {low}" + (" or none" if optional else ""))
        for key, high in (("repeat_ratio", 1.0), ("near_copy", 100.0)):
            v = getattr(self, key)
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= high
            ):
                raise bad(key, f"a number from 0 to {high:g} or none")


#: Defaults per style. ``atomthink`` takes AtomThink's own thresholds (``txt_verifier``): a share of
#: repeated sentences above 0.45, more than two ``Step`` markers, more than 500 words (~2500
#: characters). Both styles give a step the same token budget, so they differ in layout only.
STYLE_DEFAULTS: dict[str, AtomicOptions] = {
    "line": AtomicOptions(),
    "atomthink": AtomicOptions(style="atomthink", max_chars=2500, max_markers=2, repeat_ratio=0.45),
}
OPTION_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AtomicOptions))


class AtomicFormat(Format):
    name = "atomic"
    system_template = "atomic.system"
    max_steps: int = 16

    def __init__(self, options: AtomicOptions | None = None) -> None:
        self.options = options or STYLE_DEFAULTS["line"]

    def configure(self, options: dict[str, Any]) -> None:
        unknown = [k for k in options if k not in OPTION_KEYS]
        if unknown:
            raise SlowthinkError(
                f"unknown atomic format option(s) {', '.join(unknown)}: valid keys are {', '.join(OPTION_KEYS)} "
                "(e.g. --format 'atomic#style=atomthink,max_chars=600')"
            )
        style = options.get("style", "line")
        if style not in STYLE_DEFAULTS:
            raise SlowthinkError(f"atomic format option style={style!r}: must be {' or '.join(STYLES)}")
        self.options = dataclasses.replace(STYLE_DEFAULTS[style], **options)

    @property
    def atomthink(self) -> bool:
        return self.options.style == "atomthink"

    @property
    def step_max_tokens(self) -> int:
        return self.options.step_tokens

    @property
    def eos_ends_response(self) -> bool:  # type: ignore[override]
        # AtomThink: the end of the assistant turn ends the step, not the response.
        return not self.atomthink

    @property
    def spec(self) -> str:
        base = STYLE_DEFAULTS[self.options.style]
        keys = [k for k in OPTION_KEYS if k == "style" or getattr(self.options, k) != getattr(base, k)]
        if not self.atomthink:
            keys.remove("style")
        opts = ",".join(f"{k}={getattr(self.options, k)}" for k in keys)
        return f"{self.name}#{opts}" if opts else self.name

    # -- requests ------------------------------------------------------------------------------
    def step_request(
        self, problem: Problem, history: Sequence[str], spec: StepSpec
    ) -> tuple[list[Message], str]:
        if not self.atomthink or spec.kind == "response":
            return super().step_request(problem, history, spec)
        # AtomThink: question + historical steps in the user turn (no system prompt), fresh assistant turn.
        user = get_template("atomic.atomthink.user").format(
            question=user_prompt(problem), history="\n\n".join(h.strip() for h in history if h.strip())
        )
        return [Message("user", user, images=list(problem.images))], spec.opener

    def next_step(self, prefix: str) -> StepSpec | None:
        if self.atomthink:
            blocks = [b for b in _BLANK.split(prefix) if b.strip()]
            if blocks and self.is_final(blocks[-1], "step"):
                return None
            return StepSpec(kind="step", opener="", stop=[NEXT_MARKER], max_tokens=self.step_max_tokens)
        if prefix and self.is_final(prefix.rstrip().splitlines()[-1], "step"):
            return None
        opener = "" if not prefix or prefix.endswith("\n") else "\n"
        return StepSpec(kind="step", opener=opener, stop=["\n"], max_tokens=self.step_max_tokens)

    def finish_step(self, spec: StepSpec, completion: Completion) -> tuple[str, str | None]:
        if self.atomthink and spec.kind != "response":
            text = completion.text
            if completion.stop_str and text.endswith(completion.stop_str):
                text = text[
                    : len(text) - len(completion.stop_str)
                ]  # the next step's marker is not this step's
            # One step, one block: blank lines inside it would read as a step boundary.
            body = _BLANK.sub("\n", (spec.opener + text).strip())
            note = "step cut at the token limit" if completion.finish_reason == "length" else None
            return (body + "\n\n" if body else ""), note
        text = spec.opener + completion.text
        note = None
        if completion.finish_reason == "length":
            text = text.rstrip() + "\n"
            note = "step cut at the token limit"
        return text, note

    def answer_opener(self, prefix: str) -> StepSpec:
        if self.atomthink:  # a fresh assistant turn that starts with the final-answer marker
            return StepSpec(kind="answer", opener=FINAL_MARKER, stop=["\n"], max_tokens=24)
        sep = "" if not prefix or prefix.endswith("\n") else "\n"
        return StepSpec(kind="answer", opener=sep + FINAL_MARKER, stop=["\n"], max_tokens=24)

    # -- checks --------------------------------------------------------------------------------
    def validate_step(self, text: str, history: list[str]) -> str | None:
        o = self.options
        body = text.strip()
        if not body:
            return "empty step"
        if len(body) < o.min_chars:
            return f"too short ({len(body)} chars < {o.min_chars})"
        if o.max_chars is not None and len(body) > o.max_chars:
            return f"too long ({len(body)} chars > {o.max_chars})"
        if o.max_markers is not None and len(_STEP_LABEL.findall(body)) > o.max_markers:
            return "several 'Step' markers in one step"
        if o.repeat_ratio is not None and repeated_ratio(_STEP_LABEL.sub("", body)) > o.repeat_ratio:
            return "repeated sentences"
        if history and o.near_copy is not None:
            prev = _STEP_LABEL.sub("", history[-1]).strip()
            cur = _STEP_LABEL.sub("", body).strip()
            if prev and fuzz.ratio(prev, cur) >= o.near_copy:
                return "near-copy of the previous step"
        return None

    def is_final(self, text: str, kind: str) -> bool:
        return kind == "answer" or bool(_FINAL.search(text))

    # -- parsing -------------------------------------------------------------------------------
    def parse(self, response: str) -> Parsed:
        notes: list[str] = []
        if self.atomthink:
            # Steps are blocks (one step may span several lines), cut at blank lines and at new
            # lines that open a step or the final answer.
            pieces = [p.strip() for b in _BLANK.split(response) for p in _BLOCK_SPLIT.split(b) if p.strip()]
        else:
            pieces = [ln.strip() for ln in response.splitlines() if ln.strip()]
        # Runaway text: several steps glued on one line are split at their labels.
        split: list[str] = []
        for piece in pieces:
            parts = [p.strip() for p in re.split(r"(?=\bStep\s*\d+\s*[:.])", piece) if p.strip()]
            if len(parts) > 1 and not self.atomthink:
                notes.append("split a line holding several steps")
                split.extend(parts)
            else:
                split.append(piece)
        steps: list[ParsedStep] = []
        answer_text = None
        for piece in split:
            if _FINAL.search(piece):
                steps.append(ParsedStep("final", piece))
                line = next(ln for ln in piece.splitlines() if _FINAL.search(ln))
                m = _FINAL_SPAN.search(line)
                answer_text = line[m.end() :].strip() if m else line
                break
            steps.append(ParsedStep("step", piece))
        if len(steps) < len(split):
            what = "step(s)" if self.atomthink else "line(s)"
            notes.append(f"ignored {len(split) - len(steps)} {what} after the final answer")
        if answer_text is None and steps:
            notes.append("no final-answer step")
        return Parsed(steps, answer_text, answer_text is not None, notes)
