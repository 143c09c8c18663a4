"""Prompt templates of the LLM judge (``str.format`` strings, looked up by name).

Pairwise templates follow LLaVA-CoT's stage-level judge: one prompt per stage, each with the
question, the response chosen so far (shared by both candidates), the two candidates and the
criteria of that stage, and a fixed output format ``Better response: [1]`` / ``[2]``. The reply is
prefilled with ``judge.pair.verdict_prefix`` so that the judge's first token is the verdict (and its
log-probability can break an unparseable reply; see :mod:`slowthink.scorers.judge`).

A pairwise prompt is ``judge.pair.<stage>`` followed by ``judge.pair.format`` (verdict only) or
``judge.pair.format_reason`` (one sentence of reasons first, as in LLaVA-CoT).

Placeholders: ``{question}``, ``{prefix}``, ``{response_1}``, ``{response_2}`` (pairwise);
``{question}``, ``{response}`` (pre-check); ``{question}``, ``{history}``, ``{step}`` (pointwise).
"""

from __future__ import annotations

JUDGE_SYSTEM = (
    "You are a strict and fair judge of solutions to questions. You read the question and the "
    "candidate responses carefully, check facts and calculations, and answer in exactly the format "
    "you are asked for, with no other words."
)

_PAIR_BODY = (
    "{intro}\n\n"
    "Question:\n{{question}}\n\n"
    "Response so far (both candidates continue it):\n{{prefix}}\n\n"
    "Response 1:\n{{response_1}}\n\n"
    "Response 2:\n{{response_2}}\n\n"
    "{criteria}"
)

# Per stage: (what the two candidates are, what makes one better).
_STAGES: dict[str, tuple[str, str]] = {
    "summary": (
        "Two candidates wrote the SUMMARY stage of a solution: a short plan of how to solve the question.",
        "A better summary outlines the right approach for this question in a sentence or two. It should "
        "not do the calculations or state the answer yet, and it must not misread the question.",
    ),
    "caption": (
        "Two candidates wrote the CAPTION stage of a solution: the facts of the image and the question "
        "that matter for solving it.",
        "A better caption states the relevant facts accurately and completely (numbers, labels, "
        "relations) and does not invent things that are not in the image or the question.",
    ),
    "reasoning": (
        "Two candidates wrote the REASONING stage of a solution: the step-by-step reasoning.",
        "Check every calculation and every logical step. A better reasoning is correct, uses the facts "
        "of the question, and moves clearly towards the answer. Errors, contradictions, repetition "
        "and unfinished reasoning make a response worse.",
    ),
    "conclusion": (
        "Two candidates wrote the CONCLUSION stage of a solution: the final answer.",
        "A better conclusion gives the correct final answer to the question, follows from the "
        "reasoning so far, and states it clearly and briefly (for multiple choice, the right option).",
    ),
    "sentence": (
        "Two candidates wrote the next sentence of a solution.",
        "A better next sentence is correct (true facts, right calculations), relevant to the question, "
        "and a real step forward from the response so far.",
    ),
    "answer": (
        "Two candidates wrote a complete answer to the question.",
        "A better answer reaches the correct final answer with correct reasoning. Judge correctness "
        "first, then clarity; do not prefer a response just because it is longer.",
    ),
}

#: The stages that have a pairwise template (``Comparison.stage``).
PAIR_STAGES: tuple[str, ...] = tuple(_STAGES)

# Appended to a pairwise prompt: the output format, verdict only (default) or reason first.
PAIR_FORMAT = (
    'Reply in exactly this format, with nothing else: "Better response: [1]" or "Better response: [2]".'
)
PAIR_FORMAT_REASON = (
    "Give your reason in one sentence, then the verdict, in exactly this format: "
    '"Since <reason>, better response: [1]" or "Since <reason>, better response: [2]".'
)
PAIR_VERDICT_PREFIX = "Better response: ["

PRECHECK = (
    "Question:\n{question}\n\n"
    "Response:\n{response}\n\n"
    "Is the reasoning of this response correct, with no error of fact, calculation or logic? "
    'Reply in exactly this format, with nothing else: "Answer: Yes" (correct) or "Answer: No" (incorrect).'
)

STEP = (
    "Question:\n{question}\n\n"
    "Previous steps:\n{history}\n\n"
    "Latest step:\n{step}\n\n"
    "Is the latest step correct: true to the question, with right calculations, and a sensible "
    'move towards the answer? Reply in exactly this format, with nothing else: "Answer: Yes" or "Answer: No".'
)

YES_NO_PREFIX = "Answer:"
NO_PREFIX_TEXT = "(nothing yet)"

TEMPLATES: dict[str, str] = {
    "judge.system": JUDGE_SYSTEM,
    **{
        f"judge.pair.{stage}": _PAIR_BODY.format(intro=intro, criteria=crit)
        for stage, (intro, crit) in _STAGES.items()
    },
    "judge.pair.verdict_prefix": PAIR_VERDICT_PREFIX,
    "judge.pair.format": PAIR_FORMAT,
    "judge.pair.format_reason": PAIR_FORMAT_REASON,
    "judge.pair.empty_prefix": NO_PREFIX_TEXT,
    "judge.precheck": PRECHECK,
    "judge.precheck.prefix": YES_NO_PREFIX,
    "judge.step": STEP,
    "judge.step.prefix": YES_NO_PREFIX,
    "judge.step.empty_history": NO_PREFIX_TEXT,
}
