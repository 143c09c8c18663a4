"""``stages``: LLaVA-CoT's four tagged stages, one stage per engine call.

``<SUMMARY>`` plan, ``<CAPTION>`` what matters in the image/question, ``<REASONING>`` the
reasoning, ``<CONCLUSION>`` the answer. Generation of a stage stops at its closing tag (or at
any other stage tag the model starts on its own, which is then cut off and the stage closed).

Two system prompts (the ``style`` option, ``stages#style=llava-cot``): ``slowthink`` (default: a
one-sentence plan, the facts that matter, the reasoning, the answer, with a worked example) and
``llava-cot`` (the stage descriptions of LLaVA-CoT's annotation prompt: the CAPTION describes the
image in detail, emphasising what the question needs).
"""

from __future__ import annotations

import re
from typing import Any

from slowthink.formats.base import Format, Parsed, ParsedStep, StepSpec
from slowthink.prompts import STAGES
from slowthink.types import Completion, SlowthinkError

STAGE_MAX_TOKENS: dict[str, int] = {"summary": 96, "caption": 160, "reasoning": 384, "conclusion": 48}
_TAG = re.compile(rf"<\s*(/?)\s*({'|'.join(s.upper() for s in STAGES)})\s*>", re.IGNORECASE)
#: System prompt per ``style``.
STYLES: dict[str, str] = {"slowthink": "stages.system", "llava-cot": "stages.llava_cot.system"}


def open_tag(stage: str) -> str:
    return f"<{stage.upper()}>"


def close_tag(stage: str) -> str:
    return f"</{stage.upper()}>"


def stage_contents(text: str) -> dict[str, str]:
    """The inner text of each stage in ``text`` (tags dropped), by stage name; untagged text counts
    as ``reasoning`` (see :meth:`StagesFormat.parse`).

    Example:
        >>> stage_contents("<SUMMARY> plan </SUMMARY>\\n\\n<CAPTION> 3 and 4 </CAPTION>")
        {'summary': 'plan', 'caption': '3 and 4'}
    """
    return {s.kind: s.text for s in StagesFormat().parse(text).steps}


class StagesFormat(Format):
    name = "stages"
    system_template = "stages.system"
    full_max_tokens = 640
    eos_ends_response = False  # an unclosed stage is closed and the next stage follows

    def __init__(self, style: str = "slowthink") -> None:
        self.configure({"style": style})

    def configure(self, options: dict[str, Any]) -> None:
        unknown = [k for k in options if k != "style"]
        style = options.get("style", "slowthink")
        if unknown or style not in STYLES:
            what = f"option(s) {', '.join(unknown)}" if unknown else f"style={style!r}"
            raise SlowthinkError(
                f"stages format {what}: the only option is style, one of {', '.join(STYLES)} "
                "(e.g. --format 'stages#style=llava-cot')"
            )
        self.style = style
        self.system_template = STYLES[style]

    @property
    def spec(self) -> str:
        return self.name if self.style == "slowthink" else f"{self.name}#style={self.style}"

    def full_opener(self) -> str:
        return open_tag("summary")

    def _done_stages(self, prefix: str) -> list[str]:
        return [m.group(2).lower() for m in _TAG.finditer(prefix) if m.group(1)]

    def next_step(self, prefix: str) -> StepSpec | None:
        done = set(self._done_stages(prefix))
        for stage in STAGES:
            if stage not in done:
                sep = "" if not prefix else "\n\n"
                others = [t for s in STAGES if s != stage for t in (open_tag(s), close_tag(s))]
                return StepSpec(
                    kind=stage,
                    opener=sep + open_tag(stage) + " ",
                    stop=[close_tag(stage), *others],
                    max_tokens=STAGE_MAX_TOKENS[stage],
                )
        return None

    def finish_step(self, spec: StepSpec, completion: Completion) -> tuple[str, str | None]:
        body = completion.text
        closing = close_tag(spec.kind)
        if completion.stop_str == closing:
            return spec.opener + body, None
        if completion.stop_str:
            body = body[: -len(completion.stop_str)]
            note = f"model started {completion.stop_str} inside {spec.kind}; cut it and closed the stage"
        else:
            note = f"{spec.kind} not closed ({completion.finish_reason}); closed it"
        return spec.opener + body.rstrip() + " " + closing, note

    def validate_step(self, text: str, history: list[str]) -> str | None:
        inner = _TAG.sub("", text).strip()
        if not inner:
            return "empty stage"
        return None

    def is_final(self, text: str, kind: str) -> bool:
        return kind in ("conclusion", "answer")

    def answer_opener(self, prefix: str) -> StepSpec:
        """Jump straight to the conclusion stage."""
        sep = "" if not prefix else "\n\n"
        return StepSpec(
            kind="conclusion",
            opener=sep + open_tag("conclusion") + " ",
            stop=[close_tag("conclusion")],
            max_tokens=STAGE_MAX_TOKENS["conclusion"],
        )

    def parse(self, response: str) -> Parsed:
        notes: list[str] = []
        tags = list(_TAG.finditer(response))
        spans: dict[str, str] = {}
        order: list[str] = []
        i = 0
        while i < len(tags):
            m = tags[i]
            stage = m.group(2).lower()
            if m.group(1):  # a closing tag without its opening tag
                notes.append(f"stray closing tag {close_tag(stage)}")
                i += 1
                continue
            # Content runs to this stage's closing tag, else to the next tag, else to the end.
            end = len(response)
            nxt = i + 1
            if nxt < len(tags):
                end = tags[nxt].start()
                if tags[nxt].group(1) and tags[nxt].group(2).lower() == stage:
                    nxt += 1
                else:
                    notes.append(f"{close_tag(stage)} missing")
            else:
                notes.append(f"{close_tag(stage)} missing")
            content = response[m.end() : end].strip()
            if stage in spans:
                notes.append(f"duplicated {open_tag(stage)}; kept the last")
            else:
                order.append(stage)
            spans[stage] = content
            i = nxt
        if not tags and response.strip():
            notes.append("no stage tags; treated the whole text as reasoning")
            spans["reasoning"] = response.strip()
            order.append("reasoning")
        steps = [ParsedStep(s, spans[s]) for s in order]
        answer_text = spans.get("conclusion")
        if answer_text is None and "reasoning" in spans:
            notes.append("no CONCLUSION; looked for the answer in REASONING")
            answer_text = spans["reasoning"]
        complete = all(s in spans for s in STAGES)
        return Parsed(steps, answer_text or None, complete, notes)
