"""Prompt templates of the LLM judge (``str.format`` strings, looked up by name).

Pairwise templates follow LLaVA-CoT's stage-level judge: one prompt per stage, each with the
question, the response chosen so far (shared by both candidates), the two candidates and the
criteria of that stage, and a fixed output format ``Better response: [1]`` / ``[2]``. The reply is
prefilled with ``judge.pair.verdict_prefix`` so that the judge's first token is the verdict (and its
log-probability can break an unparseable reply; see :mod:`slowthink.scorers.judge`).

A pairwise prompt is ``judge.pair.<stage>`` followed by ``judge.pair.format`` (verdict only) or
``judge.pair.format_reason`` (one sentence of reasons first, as in LLaVA-CoT).

``judge.llava_cot.<stage>`` are LLaVA-CoT's own pairwise prompts (reason first: "Since [reason], I
choose response [1/2]."), and ``judge.llava_cot.check`` its reasoning check, asked inside each
REASONING comparison (see :mod:`slowthink.search.knockout`).

Placeholders: ``{question}``, ``{prefix}``, ``{response_1}``, ``{response_2}`` (pairwise);
``{question}``, ``{hint}``, ``{response_1}``, ``{response_2}`` (LLaVA-CoT pairwise, ``{hint}`` empty or
``judge.llava_cot.hint``); ``{info}``, ``{reasoning}`` (reasoning check); ``{question}``,
``{history}``, ``{step}`` (pointwise).
"""

from __future__ import annotations

from slowthink.prompts.formats import STAGES

#: The stages that have a pairwise template (``Comparison.stage``): LLaVA-CoT's four, a sentence
#: (sentence-level search) and a whole answer (best-of-N).
PAIR_STAGES: tuple[str, ...] = (*STAGES, "sentence", "answer")

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
_PAIR_TEXTS: dict[str, tuple[str, str]] = {
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

# Appended to a pairwise prompt: the output format, verdict only (default) or reason first.
PAIR_FORMAT = (
    'Reply in exactly this format, with nothing else: "Better response: [1]" or "Better response: [2]".'
)
PAIR_FORMAT_REASON = (
    "Give your reason in one sentence, then the verdict, in exactly this format: "
    '"Since <reason>, better response: [1]" or "Since <reason>, better response: [2]".'
)
PAIR_VERDICT_PREFIX = "Better response: ["

STEP = (
    "Question:\n{question}\n\n"
    "Previous steps:\n{history}\n\n"
    "Latest step:\n{step}\n\n"
    "Is the latest step correct: true to the question, with right calculations, and a sensible "
    'move towards the answer? Reply in exactly this format, with nothing else: "Answer: Yes" or "Answer: No".'
)

YES_NO_PREFIX = "Answer:"
NO_PREFIX_TEXT = "(nothing yet)"

# --- LLaVA-CoT's own judge (``judge#prompts=llava-cot``) --------------------------------------
# The prompts of LLaVA-CoT's public inference code (inference/demo/simple_inference.py, ``judge``;
# the same text in inference/VLMEvalKit/inference_demo.py), near verbatim: typos fixed
# ("Repsonse", "invovles"), the check's f-string indentation dropped. One user turn, no system
# prompt; the candidates are the inner texts of the stage, the hint is what the code passes.
# Per stage: (intro, recall). ``answer`` is the code's ``all`` (best-of-N), ``sentence`` its sentence beam.
_LLAVA_COT_TEXTS: dict[str, tuple[str, str]] = {
    "answer": (
        "Now you act as a judge, helping me determine which of the two texts I provide better answers the question.",
        "",
    ),
    "sentence": (
        "Now you act as a judge, helping me determine which of the two texts I provide is a better next "
        "sentence for the answer to the question.",
        "",
    ),
    "summary": (
        "Now you act as a judge, helping me determine which of the two texts I provide better provides a "
        "summary of what it should do to solve the question. The summary should focus on outlining the main "
        "approach instead of stating specific analytical reasoning or math formula.",
        "Please note that a better summary should focus on outlining the main approach instead of stating "
        "specific analytical reasoning or math formula.",
    ),
    "caption": (
        "Now you act as a judge, helping me determine which of the two texts I provide better summarizes the "
        "information in the image related to the question, and has fewer errors. It is essential that the "
        "captions are as thorough as possible while remaining accurate, capturing as many details as possible "
        "rather than providing only general commentary.",
        "Please note that a better caption should be as thorough as possible while remaining accurate, "
        "capturing as many details as possible rather than providing only general commentary.",
    ),
    "reasoning": (
        "Now you act as a judge, helping me determine which of the two texts I provide better explains the "
        "reasoning process to solve the question, and has fewer errors. Begin by thoroughly reviewing the "
        "question, followed by an in-depth examination of each answer individually, noting any differences. "
        "Subsequently, analyze these differences to determine which response demonstrates stronger reasoning "
        "and provide a clear conclusion.",
        "Begin by thoroughly reviewing the question, followed by an in-depth examination of each answer "
        "individually, noting any differences. Subsequently, analyze these differences to determine which "
        "response demonstrates stronger reasoning and provide a clear conclusion.",
    ),
    "conclusion": (
        "Now you act as a judge, helping me determine which of the two texts I provide offers a more effective "
        "conclusion to the question. The conclusion should align with the reasoning presented in the hint. "
        "The conclusion should never refuse to answer the question.",
        "Please note that a better conclusion should align with the reasoning presented in the hint. The "
        "conclusion should never refuse to answer the question.",
    ),
}
_LLAVA_COT_PAIR = (
    "{intro}\n\n"
    "Question: {{question}}{{hint}}\n"
    "Response 1: {{response_1}}\n"
    "Response 2: {{response_2}}\n\n"
    "{recall} Please strictly follow the following format requirements when outputting, and don't have "
    "any other unnecessary words.\n\n"
    'Output format: "Since [reason], I choose response [1/2]."'
)
LLAVA_COT_HINT = "\n\nHint about the Question: {hint}"
LLAVA_COT_CHECK = (
    "Now you act as a judge, helping me determine whether the reasoning process in the given text is correct "
    "and accurate based on the given information.\n"
    "You should assume that the given information about the image is correct.\n"
    "You should only consider the reasoning process itself, not the correctness of the background information.\n"
    "If the reasoning process involves any calculations, you should verify the accuracy of the calculations.\n"
    "You should output 'correct' if you don't find any errors in the reasoning process, and 'incorrect' if "
    "you find any errors.\n\n"
    "Given Information: {info}\n\n"
    "Reasoning Process: {reasoning}"
)

TEMPLATES: dict[str, str] = {
    "judge.system": JUDGE_SYSTEM,
    **{
        f"judge.pair.{stage}": _PAIR_BODY.format(intro=_PAIR_TEXTS[stage][0], criteria=_PAIR_TEXTS[stage][1])
        for stage in PAIR_STAGES
    },
    "judge.pair.verdict_prefix": PAIR_VERDICT_PREFIX,
    "judge.pair.format": PAIR_FORMAT,
    "judge.pair.format_reason": PAIR_FORMAT_REASON,
    "judge.pair.empty_prefix": NO_PREFIX_TEXT,
    "judge.step": STEP,
    "judge.step.prefix": YES_NO_PREFIX,
    "judge.step.empty_history": NO_PREFIX_TEXT,
    **{
        f"judge.llava_cot.{stage}": _LLAVA_COT_PAIR.format(
            intro=_LLAVA_COT_TEXTS[stage][0], recall=_LLAVA_COT_TEXTS[stage][1]
        )
        for stage in PAIR_STAGES
    },
    "judge.llava_cot.hint": LLAVA_COT_HINT,
    "judge.llava_cot.check": LLAVA_COT_CHECK,
}
