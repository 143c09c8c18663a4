"""The suite's scripted engine (``py:tests.evaluate.suite_doubles:SuiteEngine``): a multimodal policy
that reads the tags of the VLMEvalKit fixtures (tests/benchmarks/fixtures/vlmeval/make_fixtures.py),
and the MM-Vet grader on the same engine.

Policy: a multiple-choice question answers ``The answer is X.`` with the letter of the option named
by ``Pick: WORD`` (``A`` when no option is WORD, or when the question holds ``TRICK``); ``[yes]`` /
``[no]`` reply ``Yes, it is.`` / ``No, it is not.``; ``[say:TEXT]`` replies TEXT.

Grader (a prompt holding MM-Vet's table): a prediction holding ``unsure`` gets an unparseable reply
every time (score 0 after the retries); one holding ``partial`` gets an unparseable reply at
temperature 0 and ``0.5`` on the retry; otherwise ``1.0`` when the prediction is the ground truth,
else ``0.0``.
"""

from __future__ import annotations

import re

from slowthink.types import Request
from tests import doubles

GRADER_MARK = "Compare the ground truth and prediction"
_OPTION = re.compile(r"^\(([A-Z])\) (.*)$", re.M)


def policy_reply(text: str) -> str:
    if "Choices:" in text:
        options = dict((t.strip(), letter) for letter, t in _OPTION.findall(text))
        m = re.search(r"Pick: (\w+)", text)
        letter = "A" if "TRICK" in text or m is None else options.get(m[1], "A")
        return f"The answer is {letter}."
    if "[yes]" in text:
        return "Yes, it is."
    if "[no]" in text:
        return "No, it is not."
    m = re.search(r"\[say:([^\]]*)\]", text)
    return m[1] if m else "I do not know."


def grader_reply(prompt: str, temperature: float) -> str:
    row = prompt.rstrip().removesuffix("|").rstrip()  # the last row: question | gold | prediction |
    question, gold, prediction = [c.strip() for c in row.splitlines()[-1].split(" | ")[:3]]
    if "unsure" in prediction:
        return "I cannot tell."
    if "partial" in prediction:
        return "0.5" if temperature > 0 else "about half"
    return "1.0" if prediction == gold else "0.0"


def reply(r: Request, i: int) -> str:
    text = r.messages[-1].content
    if GRADER_MARK in text:
        return grader_reply(text, r.temperature)
    return policy_reply(text)


class SuiteEngine(doubles.ScriptedEngine):
    def __init__(self, name: str = "suite-scripted") -> None:
        super().__init__(reply, name=name, supports_images=True)
